"""The Dispatcher: routing, the bounded async queue, conflation, lag and callback errors.

Real events come from a real tape fed through a real session; lag is checked on small fake
events whose timestamps the test chooses, with a fake clock, so nothing depends on timing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, ClassVar

import pytest

from lobfeed._native import BookUpdate, Candle, NeedSnapshot, Quote, Session, Trade
from lobfeed.aio.dispatch import BOOK, CANDLE, Dispatcher
from lobfeed.replay import snapshot_symbol
from lobfeed.tape import Tape

TAPE = "binance-coinm-10sym-2021.jsonl.gz"
SECOND = 1_000_000_000


def frames(session: Session, path: Path) -> Iterator[tuple[object, ...]]:
    """Each recorded frame's events, in file order, REST snapshots handed in where they
    were recorded; lazily, so that the session's books are those of the frame just read."""
    for record in Tape.open(path).iter_records("recv", "http"):
        assert record.data is not None
        if record.type == "recv":
            yield session.receive(record.data.encode(), record.ts_ns)
        else:
            assert record.url is not None
            symbol = snapshot_symbol(record.url)
            assert symbol is not None
            yield session.receive_snapshot(symbol, record.data.encode(), record.ts_ns)


@pytest.fixture
def tape(tape_path: Callable[[str], Path]) -> Path:
    return tape_path(TAPE)


def all_events(tape: Path) -> list[object]:
    return [ev for events in frames(Session("binance-coinm"), tape) for ev in events]


# -- routing ----------------------------------------------------------------------------


def test_each_type_goes_to_its_callback_and_sync_events_to_control(tape: Path) -> None:
    expected = Counter(type(ev) for ev in all_events(tape))
    got: dict[str, list[Any]] = {k: [] for k in ("book", "trade", "candle", "quote", "control")}
    d = Dispatcher(
        "binance-coinm",
        on_book=got["book"].append,
        on_trade=got["trade"].append,
        on_candle=got["candle"].append,
        on_quote=got["quote"].append,
        on_event=lambda ev: pytest.fail(f"dispatch gave {ev!r} to on_event"),
        control=got["control"].append,
    )
    for events in frames(Session("binance-coinm"), tape):
        d.dispatch(events)
    assert len(got["book"]) == expected[BookUpdate] > 1000
    assert len(got["trade"]) == expected[Trade] == 51
    assert len(got["quote"]) == expected[Quote] > 1000
    assert all(isinstance(ev, BookUpdate) for ev in got["book"])
    assert all(isinstance(ev, Trade) for ev in got["trade"])
    assert all(isinstance(ev, Quote) for ev in got["quote"])
    # Closed candles only, by default: the tape's 33 are all still open.
    assert expected[Candle] == 33 and got["candle"] == []
    # The session's sync events reach the control hook, nothing else does.
    assert [type(ev) for ev in got["control"]] == [NeedSnapshot] * 10
    assert {ev.symbol for ev in got["control"]} == {ev.symbol for ev in got["book"]}
    assert d.stats.callback_errors == 0


def test_default_path_calls_the_users_function_itself(tape: Path) -> None:
    def on_trade(trade: Trade) -> None:
        pass

    d = Dispatcher("binance-coinm", on_trade=on_trade, on_book=print)
    handlers = d._handlers
    assert handlers[Trade] is on_trade
    assert handlers[BookUpdate] is print
    # Data nobody asked for is dropped, not handed to control.
    assert Quote in handlers and handlers[Quote] is None


def test_open_candles_on_request_and_emitters(tape: Path) -> None:
    candles: list[Candle] = []
    seen: list[object] = []
    statuses: list[object] = []
    d = Dispatcher(
        "binance-coinm",
        on_candle=candles.append,
        on_event=seen.append,
        on_status=statuses.append,
        closed_candles_only=False,
    )
    for events in frames(Session("binance-coinm"), tape):
        d.dispatch(events)
    assert len(candles) == 33 and any(not c.closed for c in candles)
    assert seen == []  # no control hook: sync events go nowhere, never to on_event
    d.emit_event("gap")
    d.emit_status("connected")
    assert seen == ["gap"] and statuses == ["connected"]


def test_control_gets_sync_events_in_frame_order_and_unknown_types() -> None:
    class SyncLost:  # a type a later session might add
        symbol = "BTCUSDT"

    order: list[str] = []
    d = Dispatcher(
        "binance",
        on_trade=lambda t: order.append("trade"),
        control=lambda ev: order.append(type(ev).__name__),
    )
    s = Session("binance")
    depth = (
        b'{"stream":"btcusdt@depth","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT",'
        b'"U":10,"u":11,"b":[["1.0","1"]],"a":[]}}'
    )
    events = s.receive(depth, 1)
    assert [type(e) for e in events] == [NeedSnapshot]
    d.dispatch((*events, SyncLost()))
    assert order == ["NeedSnapshot", "SyncLost"]


@dataclass
class FakeCandle:
    symbol: str
    closed: bool
    exchange_ts_ns: int = 0
    ts_ns: int = 0


class CandleDispatcher(Dispatcher):
    ROUTES: ClassVar = {FakeCandle: CANDLE}


async def test_only_closed_candles_by_default_sync_and_async() -> None:
    candles = [FakeCandle("X", closed) for closed in (False, True, False, True)]
    plain: list[Any] = []
    every: list[Any] = []
    queued: list[Any] = []

    async def on_candle(candle: Any) -> None:
        queued.append(candle)

    closed_only = CandleDispatcher("test", on_candle=plain.append)
    everything = CandleDispatcher("test", on_candle=every.append, closed_candles_only=False)
    through_queue = CandleDispatcher("test", on_candle=on_candle)
    await through_queue.start()
    for d in (closed_only, everything, through_queue):
        d.dispatch(tuple(candles))
    await through_queue.stop(drain=30)
    assert plain == queued == [candles[1], candles[3]]
    assert every == candles


# -- the async queue --------------------------------------------------------------------


async def test_async_callbacks_share_one_bounded_queue(tape: Path) -> None:
    session = Session("binance-coinm")
    lock = asyncio.Lock()
    delivered: list[Any] = []

    async def consume(ev: Any) -> None:
        async with lock:
            delivered.append(ev)

    bound = 50
    d = Dispatcher(
        "binance-coinm",
        on_book=consume,
        on_trade=consume,
        on_quote=consume,
        on_candle=consume,
        async_queue=bound,
    )
    await d.start()
    sent = Counter[type]()
    await lock.acquire()  # the consumer is stuck: everything piles up
    for i, events in enumerate(frames(session, tape)):
        d.dispatch(events)
        sent.update(type(ev) for ev in events if not isinstance(ev, Candle) or ev.closed)
        if i % 100 == 0:
            await asyncio.sleep(0)
            assert len(asyncio.all_tasks()) <= 2  # this test and one worker
            assert d.stats.queued <= bound
    data = sent[BookUpdate] + sent[Trade] + sent[Quote] + sent[Candle]
    stats = d.stats
    assert stats.queued_high_water == bound
    assert stats.dropped > 0 and stats.conflated > 0
    # Every event was queued once, or replaced a queued book of its symbol.
    assert stats.queued_total + stats.conflated == data
    lock.release()
    await d.stop(drain=30)
    assert stats.discarded == 0 and stats.queued == 0
    assert len(delivered) == stats.async_delivered == data - stats.dropped - stats.conflated
    # Books are replaced, never dropped while trades or quotes can be: each symbol's last
    # delivered book is the session's current one.
    last: dict[str, int | None] = {}
    for ev in delivered:
        if isinstance(ev, BookUpdate):
            last[ev.symbol] = ev.seq
    assert len(last) == 10
    assert all(session.book(symbol).seq == seq for symbol, seq in last.items())
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_stop_cancels_a_stuck_worker_and_leaves_no_task(tape: Path) -> None:
    never = asyncio.Event()

    async def stuck(ev: object) -> None:
        await never.wait()

    d = Dispatcher("binance-coinm", on_trade=stuck, on_quote=stuck, on_event=stuck)
    await d.start()
    for events in frames(Session("binance-coinm"), tape):
        d.dispatch(events)
    d.emit_event("resynced")
    await asyncio.sleep(0)
    assert len(asyncio.all_tasks()) == 2
    await d.stop()
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert d.stats.discarded == d.stats.queued_total - 1  # one was being awaited
    assert d.stats.queued == 0 and d.stats.async_delivered == 0
    # A stopped dispatcher can start again.
    await d.start()
    await d.stop()
    assert asyncio.all_tasks() == {asyncio.current_task()}


# -- conflation -------------------------------------------------------------------------


async def test_conflate_delivers_the_newest_book_to_a_slow_sync_callback(tape: Path) -> None:
    session = Session("binance-coinm")
    deliveries: list[tuple[int | None, int | None]] = []
    trades: list[Trade] = []

    def slow_on_book(update: BookUpdate) -> None:
        # A view of a book that moved on would raise StaleBookError here.
        deliveries.append((update.book.seq, session.book(update.symbol).seq))

    d = Dispatcher("binance-coinm", on_book=slow_on_book, on_trade=trades.append, conflate=True)
    await d.start()
    books = 0
    # While the callback blocked the loop, frames piled up in the socket: the reader then
    # reads a burst of them before the loop gets to deliver anything.
    burst = 25
    for i, events in enumerate(frames(session, tape)):
        books += sum(isinstance(ev, BookUpdate) for ev in events)
        d.dispatch(events)
        if i % burst == burst - 1:
            await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert deliveries and all(seq == current for seq, current in deliveries)
    assert len(deliveries) == d.stats.flushes < books
    assert d.stats.flushes + d.stats.conflated == books
    assert len(trades) == 51  # trades are never conflated
    await d.stop()
    assert d.stats.discarded == 0


# -- lag --------------------------------------------------------------------------------


@dataclass
class FakeBook:
    """The attributes of a BookUpdate the dispatcher reads, with chosen timestamps."""

    symbol: str
    seq: int
    exchange_ts_ns: int
    ts_ns: int


class FakeDispatcher(Dispatcher):
    ROUTES: ClassVar = {FakeBook: BOOK}


def test_lag_grows_while_the_consumer_falls_behind_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The exchange sends an update every 100 ms; its clock is 3 years behind ours (a replayed
    # tape) plus 2 ms of network. A slow callback takes 150 ms: the reader falls behind and
    # stamps ts_ns late, which hides the backlog from `now - ts_ns`.
    offset = 3 * 365 * 86400 * SECOND + 2_000_000
    t0 = 1_600_000_000 * SECOND
    clock = {"now": t0 + offset}
    cost = {"ns": 0}

    def on_book(update: Any) -> None:
        clock["now"] += cost["ns"]

    d = FakeDispatcher("test", on_book=on_book, clock=lambda: clock["now"], lag_warning=5.0)
    lags: list[tuple[int | None, int]] = []
    hidden: list[int] = []

    def run(first: int, count: int) -> None:
        for i in range(first, first + count):
            exchange_ts = t0 + i * 100_000_000
            clock["now"] = max(clock["now"], exchange_ts + offset)  # read when it arrives
            update = FakeBook("BTCUSDT", i, exchange_ts, clock["now"])
            d.dispatch((update,))
            hidden.append(clock["now"] - update.ts_ns)
            d.sample_lag()  # what the timer does, here after every frame
            lags.append((d.lag("BTCUSDT"), update.ts_ns - exchange_ts - offset))

    caplog.set_level(logging.INFO, logger="lobfeed.dispatch")
    cost["ns"] = 150_000_000
    run(0, 300)  # 30 s of exchange time take 45 s to deliver
    assert all(lag == expected for lag, expected in lags)
    measured = [lag for lag, _ in lags]
    assert all(a is not None and b is not None and b > a for a, b in pairwise(measured))
    assert lags[-1][0] == 299 * 50_000_000  # ~15 s behind
    assert max(hidden) == 150_000_000  # what `now - ts_ns` would have said
    assert d.stats.lag_warnings == 1
    assert d.stats.max_lag_ns == lags[-1][0]
    cost["ns"] = 0
    run(300, 300)  # a fast consumer catches up
    assert d.lag("BTCUSDT") == 0
    assert d.stats.lag_warnings == 1
    cost["ns"] = 150_000_000
    run(600, 300)  # and falls behind again: a second warning
    assert d.stats.lag_warnings == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all(r.__dict__["venue"] == "test" for r in warnings)
    assert all(r.__dict__["symbol"] == "BTCUSDT" for r in warnings)
    assert all(r.__dict__["lag_s"] > 5.0 for r in warnings)
    assert d.lag("ETHUSDT") is None


async def test_lag_of_async_callbacks_is_measured_at_delivery() -> None:
    clock = {"now": 10 * SECOND}
    got: list[int] = []

    async def on_book(update: Any) -> None:
        got.append(update.seq)

    d = FakeDispatcher("test", on_book=on_book, clock=lambda: clock["now"])
    await d.start()
    d.dispatch((FakeBook("X", 1, 9 * SECOND, 10 * SECOND),))
    await asyncio.sleep(0)
    assert got == [1] and d.lag("X") == 0
    d.dispatch((FakeBook("X", 2, 10 * SECOND, 11 * SECOND),))
    clock["now"] = 18 * SECOND  # the worker gets to it 7 s after it was read
    await asyncio.sleep(0)
    assert got == [1, 2]
    assert d.lag("X") == 7 * SECOND
    assert d.stats.lag_warnings == 1
    await d.stop()


# -- callback errors --------------------------------------------------------------------


@pytest.mark.parametrize("interval", [3600.0, 0.0])
async def test_a_callback_that_keeps_raising_logs_one_traceback(
    tape: Path, caplog: pytest.LogCaptureFixture, interval: float
) -> None:
    def bad_trade(trade: Trade) -> None:
        raise ValueError(f"bad trade {trade.trade_id}")

    async def bad_quote(quote: Quote) -> None:
        raise RuntimeError("bad quote")

    d = Dispatcher(
        "binance-coinm", on_trade=bad_trade, on_quote=bad_quote, error_log_interval=interval
    )
    await d.start()
    caplog.set_level(logging.INFO, logger="lobfeed.dispatch")
    for i, events in enumerate(frames(Session("binance-coinm"), tape)):
        d.dispatch(events)
        if i % 10 == 0:
            await asyncio.sleep(0)
    await d.stop(drain=30)
    assert d.stats.async_delivered > 10
    assert d.stats.callback_errors == 51 + d.stats.async_delivered
    # (The tape's 2021 timestamps also make lag warnings: this test ignores them.)
    traced = [r for r in caplog.records if r.exc_info]
    assert sorted(r.__dict__["callback"] for r in traced) == ["on_quote", "on_trade"]
    assert {r.exc_info[0] for r in traced if r.exc_info} == {ValueError, RuntimeError}
    summaries = [r for r in caplog.records if "callback" in r.__dict__ and not r.exc_info]
    assert all(r.levelno == logging.WARNING for r in summaries)
    if interval > 0:
        assert summaries == []
    else:
        assert sum(r.__dict__["count"] for r in summaries) == d.stats.callback_errors - 2
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_start_arms_the_lag_timer_of_inline_deliveries_and_stop_disarms_it() -> None:
    class Prompt(FakeDispatcher):
        LAG_SAMPLE_INTERVAL: ClassVar[float] = 0.0  # every loop iteration

    d = Prompt("test", on_book=lambda update: None)
    d.dispatch((FakeBook("X", 1, 9 * SECOND, 10 * SECOND),))
    d.dispatch((FakeBook("X", 2, 10 * SECOND, 13 * SECOND),))
    assert d.lag("X") is None  # dispatch itself measures nothing
    await d.start()
    for _ in range(3):
        await asyncio.sleep(0)
    # Only the last frame is measured, against the offset it alone shows.
    assert d.lag("X") == 0
    d.dispatch((FakeBook("X", 3, 11 * SECOND, 20 * SECOND),))  # read 6 s later than it could
    for _ in range(3):
        await asyncio.sleep(0)
    assert d.lag("X") == 6 * SECOND and d.stats.lag_warnings == 1
    await d.stop()
    d.dispatch((FakeBook("X", 4, 12 * SECOND, 40 * SECOND),))
    for _ in range(3):
        await asyncio.sleep(0)
    assert d.lag("X") == 6 * SECOND  # no timer after stop()
