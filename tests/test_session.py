"""The bindings: one call per frame, typed errors, lazy views that refuse to go stale."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

import lobfeed
from lobfeed import (
    BookUpdate,
    DecodeError,
    FrameError,
    GapDetected,
    LobfeedError,
    NeedSnapshot,
    OversizedFrameError,
    Quote,
    Resynced,
    Session,
    StaleBookError,
    SyncLost,
    Trade,
    UnknownVenueError,
    VenueErrorMessage,
)


def depth(
    symbol: str, first: int, last: int, bids: list[list[str]], asks: list[list[str]]
) -> bytes:
    data = {"e": "depthUpdate", "E": 1, "s": symbol, "U": first, "u": last, "b": bids, "a": asks}
    return orjson.dumps({"stream": f"{symbol.lower()}@depth", "data": data})


def snapshot(last_update_id: int, bids: list[list[str]], asks: list[list[str]]) -> bytes:
    return orjson.dumps({"lastUpdateId": last_update_id, "bids": bids, "asks": asks})


def synced_session() -> Session:
    s = Session("binance")
    events = s.receive(depth("BTCUSDT", 100, 101, [["10.00", "1"]], []), 1)
    assert [type(e) for e in events] == [NeedSnapshot]
    events = s.receive_snapshot("BTCUSDT", snapshot(100, [["9.00", "2"]], [["11.00", "3"]]), 2)
    assert [type(e) for e in events] == [BookUpdate]
    return s


def test_buffered_delta_is_bridged_to_the_snapshot() -> None:
    s = synced_session()
    book = s.book("BTCUSDT")
    assert book.seq == 101
    assert book.bids(5) == [("10.00", "1"), ("9.00", "2")]
    assert book.asks(5) == [("11.00", "3")]
    assert book.best_bid() == (10.0, 1.0)
    assert book.best_ask_exact() == ("11.00", "3")
    assert book.spread() == pytest.approx(1.0)
    assert book.mid() == pytest.approx(10.5)
    assert book.depth() == (2, 1)
    assert not book.crossed
    assert s.state("BTCUSDT") == "live"


def test_frames_may_be_str_or_bytes() -> None:
    s = synced_session()
    (update,) = s.receive(depth("BTCUSDT", 102, 102, [], [["11.00", "0"]]).decode(), 3)
    assert isinstance(update, BookUpdate)
    assert update.book.asks() == []
    with pytest.raises(TypeError):
        s.receive(123, 4)  # type: ignore[arg-type]


def test_gap_resyncs_only_that_symbol() -> None:
    s = synced_session()
    s.receive(depth("ETHUSDT", 5, 6, [["1.0", "1"]], []), 3)
    s.receive_snapshot("ETHUSDT", snapshot(6, [["1.0", "1"]], [["2.0", "1"]]), 4)
    events = s.receive(depth("BTCUSDT", 150, 151, [["10.00", "5"]], []), 5)
    assert [type(e) for e in events] == [GapDetected, SyncLost, NeedSnapshot]
    gap = events[0]
    assert isinstance(gap, GapDetected)
    assert (gap.symbol, gap.expected, gap.received) == ("BTCUSDT", 102, 150)
    lost = events[1]
    assert isinstance(lost, SyncLost)
    assert (lost.symbol, lost.reason, lost.detail) == (
        "BTCUSDT",
        "gap",
        "expected update 102, received 150",
    )
    assert s.state("BTCUSDT") == "awaiting_snapshot"
    assert s.state("ETHUSDT") == "live"
    # ETHUSDT keeps flowing while BTCUSDT waits.
    (eth,) = s.receive(depth("ETHUSDT", 7, 7, [["1.1", "2"]], []), 6)
    assert isinstance(eth, BookUpdate) and eth.book.best_bid_exact() == ("1.1", "2")
    events = s.receive_snapshot("BTCUSDT", snapshot(151, [["10.00", "5"]], [["11.00", "1"]]), 7)
    assert [type(e) for e in events] == [Resynced, BookUpdate]
    assert s.counters("BTCUSDT")["gaps"] == 1
    assert s.counters("BTCUSDT")["resyncs"] == 1


def test_views_refuse_to_show_a_later_book() -> None:
    s = synced_session()
    view = s.book("BTCUSDT")
    assert view.is_current
    kept = view.snapshot(5)
    s.receive(depth("BTCUSDT", 102, 102, [["10.50", "1"]], []), 3)
    assert not view.is_current
    with pytest.raises(StaleBookError):
        view.best_bid()
    assert kept["bids"] == [("10.00", "1"), ("9.00", "2")]
    assert s.book("BTCUSDT").best_bid_exact() == ("10.50", "1")


def test_malformed_frame_is_a_typed_error() -> None:
    s = synced_session()
    with pytest.raises(DecodeError) as info:
        s.receive(b'{"stream":"x","data":{', 3)
    assert isinstance(info.value, FrameError)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, LobfeedError)
    assert info.value.symbol is None
    assert s.state("BTCUSDT") == "live"


def test_bad_number_in_a_depth_frame_resyncs_that_symbol() -> None:
    s = synced_session()
    with pytest.raises(DecodeError) as info:
        s.receive(depth("BTCUSDT", 102, 102, [["10.x", "1"]], []), 3)
    assert info.value.symbol == "BTCUSDT"
    assert [type(e) for e in info.value.events] == [SyncLost, NeedSnapshot]
    assert info.value.events[0].reason == "bad-frame"
    assert s.state("BTCUSDT") == "awaiting_snapshot"
    assert s.counters("BTCUSDT")["errors"] == 1


def test_negative_quantity_is_rejected_without_touching_the_book() -> None:
    s = synced_session()
    with pytest.raises(lobfeed.BookRejectedError):
        s.receive(depth("BTCUSDT", 102, 102, [["10.00", "-1"]], []), 3)
    assert s.state("BTCUSDT") == "awaiting_snapshot"


def test_oversized_frame() -> None:
    s = Session("binance", max_frame_bytes=64)
    with pytest.raises(OversizedFrameError):
        s.receive(b" " * 65, 1)
    assert s.stats() == {
        "frames": 1,
        "ignored": 0,
        "errors": 1,
        "unsubscribed": 0,
        "closing_notices": 0,
        "replies": 0,
        "replies_unanswered": 0,
    }


def test_venue_error_message() -> None:
    s = Session("binance")
    with pytest.raises(VenueErrorMessage):
        s.receive_snapshot("NOPE", b'{"code":-1121,"msg":"Invalid symbol."}', 1)


def test_unknown_venue() -> None:
    with pytest.raises(UnknownVenueError):
        Session("nasdaq")
    assert "binance" in lobfeed.supported_venues()


def test_trades_quotes_and_candles(tape_path: Callable[[str], Path]) -> None:
    s = Session("binance-coinm")
    kinds: dict[str, int] = {}
    trades: list[Trade] = []
    quotes: list[Quote] = []
    with gzip.open(tape_path("binance-coinm-10sym-2021.jsonl.gz")) as f:
        for raw in f.read().splitlines()[1:]:
            record = orjson.loads(raw)
            if record["type"] != "recv":
                continue
            for ev in s.receive(record["data"].encode(), record["ts_ns"]):
                kinds[type(ev).__name__] = kinds.get(type(ev).__name__, 0) + 1
                if isinstance(ev, Trade):
                    trades.append(ev)
                elif isinstance(ev, Quote):
                    quotes.append(ev)
    assert kinds["Trade"] == 51
    assert kinds["Candle"] == 33
    assert kinds["Quote"] > 0
    trade = trades[0]
    assert trade.venue == "binance-coinm"
    assert trade.side in ("buy", "sell")
    assert trade.trade_id.isdigit()
    assert float(trade.price) == trade.price_float
    assert trade.exchange_ts_ns > 1_600_000_000 * 10**9
    assert quotes and quotes[0].bid_price.count(".") == 1


def test_receive_batch_applies_in_rust_and_invalidates_views() -> None:
    s = synced_session()
    view = s.book("BTCUSDT")
    frames = [
        depth("BTCUSDT", 102, 102, [["10.50", "1"]], []),
        b"{not json",
        depth("BTCUSDT", 103, 103, [], [["10.90", "2"]]),
    ]
    assert s.receive_batch(frames, 5) == 2
    assert s.stats()["errors"] == 1
    assert not view.is_current
    book = s.book("BTCUSDT")
    assert book.best_bid_exact() == ("10.50", "1")
    assert book.best_ask_exact() == ("10.90", "2")


def test_default_frame_limit_is_8_mib() -> None:
    s = Session("binance")
    with pytest.raises(OversizedFrameError):
        s.receive(b" " * (8 * 1024 * 1024 + 1), 1)


def test_replier_must_be_callable_and_replies_start_uncounted() -> None:
    s = Session("binance")
    with pytest.raises(lobfeed.ConfigError, match="replier must be callable or None, not int"):
        s.set_replier(5)  # type: ignore[arg-type]
    sent: list[str] = []
    s.set_replier(sent.append)
    s.receive(depth("BTCUSDT", 1, 2, [["10.00", "1"]], []), 1)
    # Binance never asks for an answer: nothing is sent, nothing is counted.
    assert sent == []
    stats = s.stats()
    assert (stats["replies"], stats["replies_unanswered"]) == (0, 0)
    s.set_replier(None)
