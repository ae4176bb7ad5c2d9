"""Faults on real frames: every lost book says why, statuses reach views, the subscription list
keeps other symbols out, and the pre-snapshot buffer stays within its byte bound."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from lobfeed import exceptions
from lobfeed._native import BookUpdate, NeedSnapshot, Session, SyncLost
from lobfeed.tape import Tape

COINM = "binance-coinm-10sym-2021.jsonl.gz"
SYMBOL = "XRPUSD_PERP"


def replay(session: Session, path: Path, *, snapshots: bool = True) -> list[object]:
    """Every recorded frame (and REST snapshot) of a one-connection tape, in order."""
    events: list[object] = []
    for record in Tape.open(path).iter_records("recv", "http"):
        data = record.data or ""
        if record.type == "recv":
            try:
                events += session.receive(data, record.ts_ns)
            except exceptions.FrameError as e:
                events += e.events
        elif snapshots and record.url:
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(record.url).query)
            events += session.receive_snapshot(query["symbol"][0], data, record.ts_ns)
    return events


def last_depth(path: Path, symbol: str) -> dict[str, Any]:
    """The last recorded depth event of ``symbol`` (the `data` of its combined-stream frame)."""
    found: dict[str, Any] | None = None
    for record in Tape.open(path).iter_records("recv"):
        frame = orjson.loads(record.data or "{}")
        data = frame.get("data", {})
        if data.get("e") == "depthUpdate" and data.get("s") == symbol:
            found = data
    assert found is not None
    return found


def frame(data: dict[str, Any]) -> bytes:
    return orjson.dumps({"stream": f"{data['s'].lower()}@depth@100ms", "data": data})


@pytest.fixture
def live(tape_path: Callable[[str], Path]) -> tuple[Session, dict[str, Any]]:
    """A COIN-M session after the whole tape, and the tape's last depth event of SYMBOL."""
    path = tape_path(COINM)
    session = Session("binance-coinm")
    replay(session, path)
    assert session.state(SYMBOL) == "live"
    return session, last_depth(path, SYMBOL)


def sync_lost(events: tuple[object, ...] | list[object]) -> list[SyncLost]:
    return [e for e in events if isinstance(e, SyncLost)]


def test_crossing_update_loses_sync_with_prices_in_the_detail(
    live: tuple[Session, dict[str, Any]],
) -> None:
    session, last = live
    ask = session.book(SYMBOL).best_ask_exact()
    assert ask is not None
    u = session.book(SYMBOL).seq
    assert u is not None
    crossing = dict(last, U=u + 1, u=u + 5, pu=u, b=[[ask[0], "7"]], a=[])
    events = session.receive(frame(crossing), 1)
    assert [type(e) for e in events] == [SyncLost, NeedSnapshot]
    lost = events[0]
    assert isinstance(lost, SyncLost)
    assert (lost.symbol, lost.reason) == (SYMBOL, "crossed")
    assert lost.detail == f"bid {ask[0]} >= ask {ask[0]}"
    assert "Some(" not in repr(lost)
    assert session.state(SYMBOL) == "awaiting_snapshot"
    assert session.counters(SYMBOL)["crossed"] == 1
    assert session.book(SYMBOL).depth() == (0, 0)


def test_ids_going_backwards_lose_sync_but_a_repeat_is_stale(
    live: tuple[Session, dict[str, Any]],
) -> None:
    session, last = live
    u = session.book(SYMBOL).seq
    assert u is not None
    stale_before = session.counters(SYMBOL)["stale_dropped"]
    repeat = dict(last, U=u - 3, u=u, pu=u - 4)
    assert session.receive(frame(repeat), 1) == ()
    assert session.counters(SYMBOL)["stale_dropped"] == stale_before + 1
    # The book's last update is the tape's last event: anything ending before its first id
    # (U) is wholly older than it.
    assert last["u"] == u
    overlapping = dict(last, U=last["U"] - 100, u=last["U"], pu=last["U"] - 101)
    assert session.receive(frame(overlapping), 2) == ()
    assert session.counters(SYMBOL)["stale_dropped"] == stale_before + 2
    backwards = dict(last, U=last["U"] - 100, u=last["U"] - 1, pu=last["U"] - 101)
    events = session.receive(frame(backwards), 3)
    assert [type(e) for e in events] == [SyncLost, NeedSnapshot]
    lost = events[0]
    assert isinstance(lost, SyncLost)
    assert lost.reason == "ids-backwards"
    assert lost.detail == f"update id {last['U'] - 1} after {u}"
    counters = session.counters(SYMBOL)
    assert (counters["ids_backwards"], counters["crossed"]) == (1, 0)


def test_gap_and_bad_frame_say_why(live: tuple[Session, dict[str, Any]]) -> None:
    session, last = live
    u = session.book(SYMBOL).seq
    assert u is not None
    gap = dict(last, U=u + 10, u=u + 20, pu=u + 9)
    lost = sync_lost(session.receive(frame(gap), 1))
    assert [(e.reason, e.detail) for e in lost] == [
        ("gap", f"expected update {u}, received {u + 9}")
    ]

    other = "BCHUSD_PERP"
    assert session.state(other) == "live"
    broken = frame(dict(last_depth_of(session, last, other)))[:-30]
    with pytest.raises(exceptions.DecodeError) as info:
        session.receive(broken, 2)
    lost = sync_lost(info.value.events)
    assert [(e.symbol, e.reason) for e in lost] == [(other, "bad-frame")]
    assert lost[0].detail and "Some(" not in lost[0].detail


def last_depth_of(session: Session, template: dict[str, Any], symbol: str) -> dict[str, Any]:
    """A depth event of ``symbol`` that follows its book (fields copied from ``template``)."""
    u = session.book(symbol).seq
    assert u is not None
    return dict(template, s=symbol, U=u + 1, u=u + 2, pu=u)


def test_status_reaches_views_and_clears(live: tuple[Session, dict[str, Any]]) -> None:
    session, last = live
    view = session.book(SYMBOL)
    assert view.state == "live"
    session.set_status(SYMBOL, "stale")
    assert view.state == "stale"
    assert session.book(SYMBOL).state == "stale"
    session.set_status(SYMBOL, None)
    assert view.state == "live"
    # A symbol the session never saw: nothing is created.
    before = session.symbols()
    session.set_status("NOPE_PERP", "connecting")
    assert session.symbols() == before
    with pytest.raises(KeyError):
        session.book("NOPE_PERP")
    # Losing sync shows as syncing until the Python layer says more.
    u = session.book(SYMBOL).seq
    assert u is not None
    session.receive(frame(dict(last, U=u + 10, u=u + 20, pu=u + 9)), 1)
    assert session.book(SYMBOL).state == "syncing"
    session.set_status(SYMBOL, "resyncing")
    assert session.book(SYMBOL).state == "resyncing"


def test_mark_disconnected_covers_every_symbol(live: tuple[Session, dict[str, Any]]) -> None:
    session, _ = live
    symbols = session.symbols()
    assert len(symbols) == 10
    views = [session.book(s) for s in symbols]
    session.mark_disconnected()
    assert {v.state for v in views} == {"disconnected"}
    session.set_status(symbols[0], "connecting")
    assert views[0].state == "connecting"
    assert views[1].state == "disconnected"
    session.set_status(symbols[1], None)
    assert views[1].state == "live"


def test_subscription_list_keeps_other_symbols_out(tape_path: Callable[[str], Path]) -> None:
    path = tape_path(COINM)
    everything = Session("binance-coinm")
    replay(everything, path)
    assert len(everything.symbols()) == 10
    assert everything.stats()["unsubscribed"] == 0

    wanted = ["xrpusd_perp", "BchUsd_Perp"]
    session = Session("binance-coinm", symbols=wanted)
    events = replay(session, path)
    assert sorted(session.symbols()) == ["BCHUSD_PERP", "XRPUSD_PERP"]
    assert session.stats()["unsubscribed"] > 0
    assert {getattr(e, "symbol", None) for e in events} <= {"BCHUSD_PERP", "XRPUSD_PERP"}
    assert any(isinstance(e, BookUpdate) for e in events)
    for symbol in ("BCHUSD_PERP", "XRPUSD_PERP"):
        assert session.book(symbol).snapshot(1000) == everything.book(symbol).snapshot(1000)
        assert session.counters(symbol) == everything.counters(symbol)
    stats, full = session.stats(), everything.stats()
    assert stats["frames"] == full["frames"]
    with pytest.raises(KeyError):
        session.book("ETHUSD_PERP")


def test_buffer_is_bounded_in_bytes(tape_path: Callable[[str], Path]) -> None:
    path = tape_path(COINM)
    default = Session("binance-coinm")
    replay(default, path, snapshots=False)
    assert default.counters(SYMBOL)["buffer_dropped"] == 0
    assert default.state(SYMBOL) == "awaiting_snapshot"

    bounded = Session("binance-coinm", max_buffer_bytes=16 * 1024)
    replay(bounded, path, snapshots=False)
    dropped = bounded.counters(SYMBOL)["buffer_dropped"]
    assert dropped > 0
    # A snapshot older than what is left in the buffer cannot bridge: it is refused, and the
    # session asks again instead of applying a book with a hole.
    for record in Tape.open(path).iter_records("http"):
        if record.url and f"symbol={SYMBOL}&" in record.url:
            events = bounded.receive_snapshot(SYMBOL, record.data or "", record.ts_ns)
            assert [type(e) for e in events] == [NeedSnapshot]
    assert bounded.counters(SYMBOL)["stale_snapshots"] == 1


def test_session_options_are_checked() -> None:
    with pytest.raises(exceptions.ConfigError, match="symbols"):
        Session("binance", symbols="BTCUSDT")  # type: ignore[arg-type]
    s = Session("binance", symbols=[], max_buffer_bytes=0)
    assert s.receive(b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[]}', 1) == ()
    assert s.symbols() == []
    assert s.stats()["unsubscribed"] == 1


def test_ids_restarting_while_a_snapshot_is_awaited_let_the_next_snapshot_in() -> None:
    """A gap, then the venue's ids restart lower before a snapshot came: the deltas buffered
    from the old stream are dropped, so a snapshot of the new stream bridges (it used to be
    judged stale for ever, until the connection was replaced)."""

    def delta(first: int, last: int, prev: int) -> bytes:
        data = {
            "e": "depthUpdate",
            "E": 1,
            "T": 1,
            "s": "XUSDT",
            "U": first,
            "u": last,
            "pu": prev,
            "b": [["10.0", "1"]],
            "a": [["11.0", "1"]],
        }
        return orjson.dumps({"stream": "xusdt@depth@100ms", "data": data})

    def snapshot(last: int) -> bytes:
        return orjson.dumps(
            {"lastUpdateId": last, "E": 1, "T": 1, "bids": [["9.0", "1"]], "asks": [["12.0", "1"]]}
        )

    s = Session("binance-usdm")
    s.receive(delta(1000, 1010, 999), 1)
    s.receive_snapshot("XUSDT", snapshot(1005), 2)
    s.receive(delta(1011, 1020, 1010), 3)
    assert s.state("XUSDT") == "live"
    s.receive(delta(1031, 1040, 1030), 4)  # a gap: awaiting a snapshot
    s.receive(delta(1041, 1050, 1040), 5)
    assert s.state("XUSDT") == "awaiting_snapshot"
    s.receive(delta(100, 110, 99), 6)  # the ids restart lower
    for i in range(5):
        s.receive(delta(111 + 10 * i, 120 + 10 * i, 110 + 10 * i), 7 + i)
    events = s.receive_snapshot("XUSDT", snapshot(125), 20)
    assert s.state("XUSDT") == "live", events
    assert s.counters("XUSDT")["ids_backwards"] == 1
    assert s.book("XUSDT").seq == 160
