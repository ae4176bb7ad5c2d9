"""One contract for every event: each names its feed (``venue``) and ``symbol``, reprs read as
Python, and trades and candles say whether they are history (``is_snapshot``).

Real tapes replayed through ``Session``; the sync events come from the same real frames with one
left out (a gap) or one checksum altered (a mismatch).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lobfeed import (
    BookUpdate,
    Candle,
    ChecksumMismatch,
    FrameError,
    GapDetected,
    NeedResubscribe,
    NeedSnapshot,
    Quote,
    Resynced,
    Session,
    StaleBookError,
    SyncLost,
    Trade,
)
from lobfeed.replay import snapshot_symbol
from lobfeed.tape import Tape, TapeRecord

EVENT_KINDS = (
    BookUpdate,
    Trade,
    Candle,
    Quote,
    SyncLost,
    GapDetected,
    ChecksumMismatch,
    Resynced,
    NeedSnapshot,
    NeedResubscribe,
)


def feed(session: Session, record: TapeRecord, data: str | None = None) -> tuple[object, ...]:
    """One recorded frame (or REST snapshot) through the session; a refused frame gives the
    events it caused before it failed."""
    body = (record.data if data is None else data) or ""
    try:
        if record.type == "http":
            symbol = snapshot_symbol(record.url or "")
            assert symbol is not None
            return session.receive_snapshot(symbol, body.encode(), record.ts_ns)
        return session.receive(body.encode(), record.ts_ns)
    except FrameError as e:
        return e.events


def replay(
    tape: Path,
    sessions: dict[str, Session],
    edit: Callable[[TapeRecord], str | None] = lambda r: r.data,
) -> Iterator[object]:
    """Every event of a tape, each connection through its own session; `edit` may change a
    frame's text or drop it (None)."""
    for record in Tape.open(tape).iter_records():
        if record.type == "recv" and record.conn in sessions:
            data = edit(record)
            if data is not None:
                yield from feed(sessions[record.conn], record, data)
        elif record.type == "http" and record.url and snapshot_symbol(record.url):
            yield from feed(next(iter(sessions.values())), record)


def assert_names(event: Any, venue: str) -> None:
    assert event.venue == venue
    assert isinstance(event.symbol, str) and event.symbol
    text = repr(event)
    assert text.startswith(f"{type(event).__name__}(venue='{venue}', symbol=")
    assert "Some(" not in text


def test_bybit_spot_and_linear_differ_though_one_decoder_reads_both(
    tape_path: Callable[[str], Path],
) -> None:
    # c3 is Bybit's spot stream, c2 its linear one: both decoded by the "bybit" session.
    spot = Session("bybit", name="bybit-spot")
    linear = Session("bybit")
    assert (spot.venue, spot.name) == ("bybit", "bybit-spot")
    assert (linear.venue, linear.name) == ("bybit", "bybit")
    kinds: dict[str, set[type]] = {"bybit-spot": set(), "bybit": set()}
    spot_update: BookUpdate | None = None
    for event in replay(tape_path("bybit-2026.jsonl.gz"), {"c3": spot, "c2": linear}):
        venue = event.venue  # type: ignore[attr-defined]
        assert_names(event, venue)
        kinds[venue].add(type(event))
        if venue == "bybit-spot" and isinstance(event, BookUpdate):
            spot_update = spot_update or event
    assert kinds["bybit"] == {BookUpdate, Trade, Candle, Quote}
    # Spot tickers carry no best bid/ask on this tape: no quotes there.
    assert kinds["bybit-spot"] == {BookUpdate, Trade, Candle}
    # The book a spot update points at names the same feed.
    assert spot_update is not None and spot_update.book.venue == "bybit-spot"


def test_binance_events_carry_the_feed_name(tape_path: Callable[[str], Path]) -> None:
    session = Session("binance", name="binance-test")
    seen: set[type] = set()
    for event in replay(tape_path("binance-spot-4sym-2021.jsonl.gz"), {"c1": session}):
        assert_names(event, "binance-test")
        seen.add(type(event))
    assert seen == {NeedSnapshot, BookUpdate, Quote, Trade, Candle}


def test_a_missing_frame_gives_named_gap_loss_and_resync_events(
    tape_path: Callable[[str], Path],
) -> None:
    path = tape_path("bybit-2026.jsonl.gz")
    topic = "orderbook.200.BTCUSDT"
    deltas = 0
    first_snapshot: str | None = None

    def drop_the_fifth_delta(record: TapeRecord) -> str | None:
        nonlocal deltas, first_snapshot
        data = record.data or ""
        if topic in data and '"snapshot"' in data and first_snapshot is None:
            first_snapshot = data
        if topic in data and '"delta"' in data:
            deltas += 1
            if deltas == 5:
                return None
        return data

    spot = Session("bybit", name="bybit-spot")
    sync_events = [
        e
        for e in replay(path, {"c3": spot}, drop_the_fifth_delta)
        if not isinstance(e, BookUpdate | Trade | Candle | Quote)
    ]
    assert [type(e) for e in sync_events] == [GapDetected, SyncLost, NeedResubscribe]
    for event in sync_events:
        assert_names(event, "bybit-spot")
        assert event.symbol == "BTCUSDT"  # type: ignore[attr-defined]
    gap = sync_events[0]
    assert isinstance(gap, GapDetected) and gap.received == gap.expected + 1
    # The venue's answer to the resubscribe: the book again, in-band (here the first one).
    assert first_snapshot is not None
    resynced, update = spot.receive(first_snapshot.encode(), 1)
    assert isinstance(resynced, Resynced) and isinstance(update, BookUpdate)
    assert_names(resynced, "bybit-spot")
    assert re.fullmatch(
        r"Resynced\(venue='bybit-spot', symbol='BTCUSDT', seq=\d+\)", repr(resynced)
    )


def test_an_altered_checksum_gives_named_mismatch_events(tape_path: Callable[[str], Path]) -> None:
    updates = 0

    def alter_the_third_checksum(record: TapeRecord) -> str | None:
        nonlocal updates
        data = record.data or ""
        if '"action":"update"' in data:
            updates += 1
            if updates == 3:
                return re.sub(r'"checksum":(-?\d+)', lambda m: f'"checksum":{int(m[1]) + 1}', data)
        return data

    session = Session("okx", resync="snapshot")
    sync_events = [
        e
        for e in replay(
            tape_path("okx-books-3inst-2022.jsonl.gz"), {"c1": session}, alter_the_third_checksum
        )
        if not isinstance(e, BookUpdate | Trade | Candle | Quote)
    ]
    assert [type(e) for e in sync_events] == [ChecksumMismatch, SyncLost, NeedSnapshot]
    for event in sync_events:
        assert_names(event, "okx")
    lost = sync_events[1]
    assert isinstance(lost, SyncLost) and lost.reason == "checksum"


def test_every_event_kind_has_venue_and_symbol() -> None:
    for kind in EVENT_KINDS:
        assert "venue" in vars(kind) and "symbol" in vars(kind), kind


def test_trades_and_candles_say_whether_they_are_history(tape_path: Callable[[str], Path]) -> None:
    trades = candles = 0
    for event in replay(
        tape_path("binance-usdm-4sym-2021.jsonl.gz"), {"c1": Session("binance-usdm")}
    ):
        if isinstance(event, Trade | Candle):
            # Binance sends no history on subscribe: every one is live.
            assert event.is_snapshot is False
            assert repr(event).endswith("is_snapshot=False)")
            trades += isinstance(event, Trade)
            candles += isinstance(event, Candle)
    assert trades > 0 and candles > 0


def test_reprs_read_as_python(tape_path: Callable[[str], Path]) -> None:
    events = list(replay(tape_path("binance-spot-4sym-2021.jsonl.gz"), {"c1": Session("binance")}))
    first_update = next(e for e in events if isinstance(e, BookUpdate))
    assert re.fullmatch(
        r"BookUpdate\(venue='binance', symbol='\w+', seq=\d+, ts_ns=\d+\)", repr(first_update)
    )
    trade = next(e for e in events if isinstance(e, Trade))
    assert re.fullmatch(
        r"Trade\(venue='binance', symbol='\w+', price='[\d.]+', size='[\d.]+', "
        r"side=('buy'|'sell'|None), trade_id='\d+', is_snapshot=False\)",
        repr(trade),
    )
    quote = next(e for e in events if isinstance(e, Quote))
    assert "seq=Some" not in repr(quote) and repr(quote).startswith("Quote(venue='binance', ")


def test_stale_view_message_shows_the_seq_not_rust_debug_text(
    tape_path: Callable[[str], Path],
) -> None:
    session = Session("binance")
    updates = (
        e
        for e in replay(tape_path("binance-spot-4sym-2021.jsonl.gz"), {"c1": session})
        if isinstance(e, BookUpdate)
    )
    first = next(updates)
    view = first.book
    assert repr(view) == f"BookView(venue='binance', symbol='{first.symbol}', seq={first.seq})"
    next(u for u in updates if u.symbol == first.symbol)
    with pytest.raises(StaleBookError) as info:
        view.bids()
    message = str(info.value)
    assert "Some(" not in message and "None" not in message
    assert message == (
        f"{first.symbol}: the book has changed since this view (at seq {first.seq}) was made"
    )
