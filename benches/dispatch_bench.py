"""Per-event cost of event delivery: the Feed's old ``_dispatch`` against ``Dispatcher``.

    PYTHONPATH=python python benches/dispatch_bench.py [TAPE] [--repeat 7] [--rounds 3]

The tape's frames are decoded once by a real Session (REST snapshots handed in where they were
recorded); what is timed is only handing each frame's events to no-op callbacks, so the
numbers are the delivery overhead alone. Each case runs ``repeat`` times per round and keeps
the best; rounds interleave the cases so that a noisy neighbour hurts them alike.

``old`` is the Feed's delivery before the Dispatcher (commit 4d3d567 of feed.py), copied here
so that the comparison survives feed.py's rewrite: a dict lookup by type and a call for sync
callbacks, one task per event for async ones.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from lobfeed._native import (
    BookUpdate,
    Candle,
    ChecksumMismatch,
    GapDetected,
    NeedResubscribe,
    NeedSnapshot,
    Quote,
    Resynced,
    Session,
    Trade,
)
from lobfeed.aio.dispatch import Dispatcher
from lobfeed.exceptions import FrameError
from lobfeed.replay import snapshot_symbol
from lobfeed.tape import Tape

DEFAULT_TAPE = (
    Path(__file__).resolve().parents[2]
    / "shared/data/tapes/binance-coinm-ethusd_perp-20240808.jsonl.gz"
)

Frames = list[tuple[Any, ...]]


def decode(path: Path) -> Frames:
    tape = Tape.open(path)
    session = Session(tape.venue)
    out: Frames = []
    for record in tape.iter_records("recv", "http"):
        if record.data is None:
            continue
        try:
            if record.type == "recv":
                # payload: the frame's bytes, binary ones (HTX, Upbit) decoded from base64.
                events = session.receive(record.payload, record.ts_ns)
            else:
                symbol = snapshot_symbol(record.url or "")
                if symbol is None:
                    continue
                events = session.receive_snapshot(symbol, record.payload, record.ts_ns)
        except FrameError as e:
            events = e.events
        if events:
            out.append(events)
    return out


def noop(ev: object) -> None:
    pass


async def anoop(ev: object) -> None:
    pass


class OldDispatch:
    """The Feed's delivery as it was: ``_dispatch``, ``_build_handlers``, ``_wrap``."""

    def __init__(self, on_data: Callable[[Any], object], closed_candles_only: bool = True):
        self.closed_candles_only = closed_candles_only
        self.callback_errors = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._on_book = self._wrap(on_data)
        self._on_trade = self._wrap(on_data)
        self._on_candle = self._wrap(on_data)
        self._on_quote = self._wrap(on_data)
        self._handlers = self._build_handlers()

    def _dispatch(self, events: tuple[Any, ...]) -> None:
        handlers = self._handlers
        for ev in events:
            handler = handlers.get(type(ev))
            if handler is not None:
                try:
                    handler(ev)
                except Exception:
                    self.callback_errors += 1

    def _build_handlers(self) -> dict[type, Callable[[Any], object]]:
        handlers: dict[type, Callable[[Any], object]] = {
            kind: self._on_sync_event
            for kind in (NeedSnapshot, NeedResubscribe, GapDetected, ChecksumMismatch, Resynced)
        }
        for kind, callback in (
            (BookUpdate, self._on_book),
            (Trade, self._on_trade),
            (Quote, self._on_quote),
        ):
            if callback is not None:
                handlers[kind] = callback
        if self._on_candle is not None:
            handlers[Candle] = self._candle
        return handlers

    def _candle(self, candle: Candle) -> None:
        if self._on_candle is not None and (candle.closed or not self.closed_candles_only):
            self._on_candle(candle)

    def _on_sync_event(self, ev: Any) -> None:
        pass

    def _wrap(self, callback: Any) -> Callable[[Any], object] | None:
        if callback is None or not asyncio.iscoroutinefunction(callback):
            return callback  # type: ignore[no-any-return]
        coroutine_fn = callback

        def schedule(arg: Any) -> None:
            task = asyncio.ensure_future(self._guard(coroutine_fn(arg)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        return schedule

    async def _guard(self, awaitable: Awaitable[object]) -> None:
        try:
            await awaitable
        except Exception:
            self.callback_errors += 1


def events_in(frames: Frames) -> int:
    return sum(len(f) for f in frames)


def time_sync(dispatch: Callable[[tuple[Any, ...]], None], frames: Frames) -> int:
    start = time.perf_counter_ns()
    for events in frames:
        dispatch(events)
    return time.perf_counter_ns() - start


async def time_old_async(frames: Frames) -> int:
    old = OldDispatch(anoop)
    start = time.perf_counter_ns()
    for events in frames:
        old._dispatch(events)
    while old._tasks:
        await asyncio.gather(*old._tasks)
    return time.perf_counter_ns() - start


async def time_new_async(frames: Frames) -> int:
    d = Dispatcher(
        "bench", on_book=anoop, on_trade=anoop, on_candle=anoop, on_quote=anoop, control=noop
    )
    d.async_queue = events_in(frames)  # nothing dropped: the same work as the old path
    await d.start()
    start = time.perf_counter_ns()
    for events in frames:
        d.dispatch(events)
    await d.stop(drain=600)
    return time.perf_counter_ns() - start


async def time_in_loop(frames: Frames, burst: int, conflate: bool) -> int:
    """Dispatching inside a running loop that gets control back every ``burst`` frames (the
    frames a reader drains at once): with ``conflate``, books are delivered by the flush."""
    d = Dispatcher(
        "bench",
        on_book=noop,
        on_trade=noop,
        on_candle=noop,
        on_quote=noop,
        control=noop,
        conflate=conflate,
    )
    await d.start()
    start = time.perf_counter_ns()
    for i, events in enumerate(frames):
        d.dispatch(events)
        if i % burst == 0:
            await asyncio.sleep(0)
    await asyncio.sleep(0)
    elapsed = time.perf_counter_ns() - start
    await d.stop()
    return elapsed


def run(coro: Coroutine[Any, Any, int]) -> int:
    return asyncio.run(coro)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tape", nargs="?", type=Path, default=DEFAULT_TAPE)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    # The tape's timestamps are years old: every delivery is "late". Not what is measured.
    logging.getLogger("lobfeed.dispatch").setLevel(logging.ERROR)
    frames = decode(args.tape)
    n = events_in(frames)
    print(f"{args.tape.name}: {len(frames)} frames, {n} events")

    old = OldDispatch(noop)
    new = Dispatcher(
        "bench", on_book=noop, on_trade=noop, on_candle=noop, on_quote=noop, control=noop
    )
    cases: dict[str, Callable[[], int]] = {
        "old _dispatch, sync callbacks": lambda: time_sync(old._dispatch, frames),
        "Dispatcher.dispatch, sync callbacks": lambda: time_sync(new.dispatch, frames),
        "old, async callbacks (task per event)": lambda: run(time_old_async(frames)),
        "Dispatcher, async callbacks (queue)": lambda: run(time_new_async(frames)),
        "in a loop, bursts of 1, conflate=False": lambda: run(time_in_loop(frames, 1, False)),
        "in a loop, bursts of 1, conflate=True": lambda: run(time_in_loop(frames, 1, True)),
        "in a loop, bursts of 25, conflate=False": lambda: run(time_in_loop(frames, 25, False)),
        "in a loop, bursts of 25, conflate=True": lambda: run(time_in_loop(frames, 25, True)),
    }
    best: dict[str, int] = {}
    for _ in range(args.rounds):
        for name, case in cases.items():
            for _ in range(args.repeat):
                elapsed = case()
                best[name] = min(best.get(name, elapsed), elapsed)
    width = max(map(len, cases))
    for name, elapsed in best.items():
        print(f"  {name:<{width}}  {elapsed / n:8.1f} ns/event")


if __name__ == "__main__":
    main()
