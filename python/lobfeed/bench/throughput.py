"""``lobfeed bench throughput``: a tape's book frames through each implementation, in-process.

Every implementation gets the same frames (the tape's ``depthUpdate`` frames, see
:mod:`lobfeed.bench.depth`) and the same snapshot bridging. Each run starts from a fresh state,
brings every symbol in sync untimed, then times the rest of the frames:

``lobfeed``
    the path a live ``Feed`` runs for each websocket message: ``time.time_ns()``,
    ``Feed.frame_handler`` (``Session.receive_routed``: into Rust to decode, validate and
    apply, then straight from Rust to the callbacks) and a trivial user callback that reads
    ``update.book.best_bid()``.
``lobfeed_receive``
    ``Session.receive(frame, ts)`` in a Python loop, the events dropped: the cost of crossing
    into Rust and back once per frame, without the Feed's dispatch or a callback.
``lobfeed_core``
    ``Session.receive_batch(frames, ts)``: one call for all frames, no Python object per frame.
``cryptofeed``
    cryptofeed's feed for the venue: ``await feed.message_handler(frame, conn, time.time())``
    per frame (text as ``str``, a binary frame as its bytes),
    its ``order_book`` books, and a callback that reads the best bid
    (``book.book.bids.index(0)``).
``cryptofeed_noread``
    the same with a callback that does not read the book. Reading an ``order_book`` side after
    it changed costs cryptofeed much of its time on deep books; this row shows what the rest
    costs, so that lobfeed is not only compared on that read.
``naive``
    :mod:`lobfeed.bench.naive`: orjson, dicts of floats, both sides sorted on every update.

Runs alternate between implementations (the order rotates each round) so that a burst of
noise from other work on the machine spreads over all of them; the figure reported is the
median over the timed rounds, after warm-up rounds. After the last round every implementation's
final best bid and ask, for every symbol, must equal lobfeed's, or the command fails.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any, Protocol

from lobfeed._native import BookUpdate, NeedSnapshot, Session
from lobfeed.aio.feed import Feed
from lobfeed.bench.depth import DepthTape, Top, top_equal
from lobfeed.bench.naive import (
    BRIDGED,
    PARSERS,
    BridgedBooks,
    InBandBooks,
    NaiveBook,
    NaiveBooks,
    PlainBook,
)
from lobfeed.exceptions import FrameError

__all__ = [
    "IMPLEMENTATIONS",
    "ImplResult",
    "TapeResult",
    "bench_tape",
    "lobfeed_tops",
    "profile_lobfeed",
]

IMPLEMENTATIONS = (
    "lobfeed",
    "lobfeed_receive",
    "lobfeed_core",
    "cryptofeed",
    "cryptofeed_noread",
    "naive",
)
REQUIRED = ("lobfeed", "lobfeed_core", "cryptofeed", "naive")
# Peers count book callbacks their own way (cryptofeed calls back on snapshots too, and not
# for a message that changes nothing); their books are checked at the end instead.
PEERS = ("cryptofeed", "cryptofeed_noread")


class Runner(Protocol):
    name: str
    updates: int

    def prepare(self) -> None:
        """A fresh state, synced on the tape's sync frames (not timed)."""

    def run(self) -> int:
        """The timed frames; returns the elapsed nanoseconds."""

    def tops(self) -> dict[str, Top]:
        """Each symbol's best bid and ask after the last run."""


def _synced_session(tape: DepthTape) -> Session:
    session = Session(tape.session_venue, name=tape.venue)
    for frame in tape.sync_frames:
        try:
            events = session.receive(frame, 0)
        except FrameError as e:  # a venue's error reply to a subscription, say
            events = e.events
        for ev in events:
            if isinstance(ev, NeedSnapshot):
                session.receive_snapshot(ev.symbol, tape.snapshots[ev.symbol], 0)
    for symbol in tape.symbol_list:
        if session.state(symbol) != "live":
            raise RuntimeError(f"{tape.name}: lobfeed did not sync {symbol} on the sync frames")
    return session


def lobfeed_tops(session: Session, symbols: Sequence[str]) -> dict[str, Top]:
    tops: dict[str, Top] = {}
    for symbol in symbols:
        book = session.book(symbol)
        tops[symbol] = (book.best_bid_exact(), book.best_ask_exact())
    return tops


class LobfeedRunner:
    name = "lobfeed"

    def __init__(self, tape: DepthTape) -> None:
        self.tape = tape
        self.frames = tape.timed_frames
        self.updates = 0
        self.session: Session | None = None
        self.feed: Feed | None = None

    def _on_book(self, update: BookUpdate) -> None:
        self.updates += 1
        update.book.best_bid()

    def prepare(self) -> None:
        self.session = _synced_session(self.tape)
        self.feed = Feed(
            self.tape.venue, self.tape.symbol_list, channels=("book",), on_book=self._on_book
        )
        self.updates = 0

    def run(self) -> int:
        assert self.session is not None and self.feed is not None
        session = self.session
        # What a live Feed's transport calls for every websocket message (see
        # Connection.plain_handler).
        on_frame = self.feed.frame_handler(session)
        clock = time.time_ns
        start = time.perf_counter_ns()
        for frame in self.frames:
            on_frame(frame, clock())
        return time.perf_counter_ns() - start

    def tops(self) -> dict[str, Top]:
        assert self.session is not None
        return lobfeed_tops(self.session, self.tape.symbol_list)


class LobfeedReceiveRunner(LobfeedRunner):
    name = "lobfeed_receive"

    def run(self) -> int:
        assert self.session is not None
        receive = self.session.receive
        clock = time.time_ns
        updates = 0
        start = time.perf_counter_ns()
        for frame in self.frames:
            for ev in receive(frame, clock()):
                if type(ev) is BookUpdate:
                    updates += 1
        elapsed = time.perf_counter_ns() - start
        self.updates = updates
        return elapsed


class LobfeedCoreRunner(LobfeedRunner):
    name = "lobfeed_core"

    def run(self) -> int:
        assert self.session is not None
        receive_batch = self.session.receive_batch
        frames = self.frames
        start = time.perf_counter_ns()
        updates = receive_batch(frames, time.time_ns())
        elapsed = time.perf_counter_ns() - start
        self.updates = updates
        return elapsed


class CryptofeedRunner:
    name = "cryptofeed"
    touch = True

    def __init__(self, tape: DepthTape, loop: asyncio.AbstractEventLoop) -> None:
        from lobfeed.bench.peers import CryptofeedBooks

        self._books_class = CryptofeedBooks
        self.tape = tape
        self.loop = loop
        # What cryptofeed's websocket connection hands its handler: a text frame as str, a
        # binary one as its bytes.
        self.sync_texts: list[str | bytes] = self._as_received(tape.sync_frames)
        self.texts: list[str | bytes] = self._as_received(tape.timed_frames)
        self.books: Any = None
        self.updates = 0

    def _as_received(self, frames: list[bytes]) -> list[str | bytes]:
        return list(frames) if self.tape.binary else [f.decode() for f in frames]

    def prepare(self) -> None:
        tape = self.tape
        books = self._books_class(
            tape.venue,
            tape.symbol_list,
            tape.snapshots.__getitem__,
            touch=self.touch,
            address=tape.url,
        )

        async def sync() -> None:
            for text in self.sync_texts:
                await books.receive(text, books.conn, time.time())

        self.loop.run_until_complete(sync())
        books.reset_counts()
        self.books = books

    def run(self) -> int:
        books = self.books
        texts = self.texts

        async def timed() -> int:
            receive = books.receive
            conn = books.conn
            clock = time.time
            start = time.perf_counter_ns()
            for text in texts:
                await receive(text, conn, clock())
            return time.perf_counter_ns() - start

        elapsed = self.loop.run_until_complete(timed())
        self.updates = books.updates
        return elapsed

    def tops(self) -> dict[str, Top]:
        return {s: self.books.top(s) for s in self.tape.symbol_list}


class CryptofeedNoReadRunner(CryptofeedRunner):
    name = "cryptofeed_noread"
    touch = False


def _float_level(level: tuple[float, float] | None) -> tuple[str, str] | None:
    return None if level is None else (repr(level[0]), repr(level[1]))


class NaiveRunner:
    name = "naive"

    def __init__(self, tape: DepthTape) -> None:
        self.tape = tape
        self.frames = tape.timed_frames
        self.books: NaiveBooks | InBandBooks | BridgedBooks | None = None
        self.updates = 0

    def _on_book(self, symbol: str, book: NaiveBook | PlainBook) -> None:
        self.updates += 1
        if book.top_bids:  # the user callback reads the best bid
            book.top_bids[0]

    def prepare(self) -> None:
        tape = self.tape
        if tape.venue in BRIDGED:
            self.books = BridgedBooks(tape.venue, tape.snapshots.__getitem__, self._on_book)
        elif tape.cut >= 0:
            self.books = InBandBooks(tape.venue, self._on_book)
        else:
            self.books = NaiveBooks(tape.venue, tape.snapshots.__getitem__, self._on_book)
        for frame in self.tape.sync_frames:
            self.books.receive(frame)
        self.updates = 0

    def run(self) -> int:
        assert self.books is not None
        receive = self.books.receive
        start = time.perf_counter_ns()
        for frame in self.frames:
            receive(frame)
        return time.perf_counter_ns() - start

    def tops(self) -> dict[str, Top]:
        assert self.books is not None
        tops: dict[str, Top] = {}
        for symbol in self.tape.symbol_list:
            book = self.books.books.get(symbol)
            if book is None:
                tops[symbol] = (None, None)
                continue
            bid = max(book.bids.items(), default=None)
            ask = min(book.asks.items(), default=None)
            tops[symbol] = (_float_level(bid), _float_level(ask))
        return tops


@dataclass
class ImplResult:
    runs_ns: list[int] = field(default_factory=list)
    frames: int = 0

    @property
    def ns_per_frame(self) -> float:
        return median(self.runs_ns) / self.frames

    @property
    def frames_per_s(self) -> float:
        return 1e9 / self.ns_per_frame

    def as_dict(self) -> dict[str, Any]:
        return {
            "ns_per_frame": round(self.ns_per_frame, 1),
            "frames_per_s": round(self.frames_per_s),
            "runs_ns_per_frame": [round(r / self.frames, 1) for r in self.runs_ns],
        }


@dataclass
class TapeResult:
    tape: DepthTape
    repeats: int
    warmup: int
    results: dict[str, ImplResult]
    tops: dict[str, Top]
    disagreements: list[str]
    skipped: dict[str, str] = field(default_factory=dict)
    """Implementations asked for that cannot read this tape, and why."""

    @property
    def frames(self) -> int:
        return len(self.tape.timed_frames)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tape": self.tape.name,
            "venue": self.tape.venue,
            "frames": self.frames,
            "results": {name: r.as_dict() for name, r in self.results.items()},
            "symbols": self.tape.symbol_list,
            "repeats": self.repeats,
            "warmup": self.warmup,
            "tops": {s: [list(side) if side else None for side in t] for s, t in self.tops.items()},
            "books_agree": not self.disagreements,
            "disagreements": self.disagreements,
            "updates": self.tape.updates,
            "timed_bytes": sum(len(f) for f in self.tape.timed_frames),
            "skipped": self.skipped,
        }


def _runners(
    tape: DepthTape,
    names: Sequence[str],
    loop: asyncio.AbstractEventLoop,
    skipped: dict[str, str],
) -> list[Runner]:
    """The runners of ``names`` that can read the tape; why the others cannot, in ``skipped``."""
    from lobfeed.bench.peers import cryptofeed_cannot_read

    why_not = cryptofeed_cannot_read(tape.venue)
    if why_not is not None:
        for name in names:
            if name in PEERS:
                skipped[name] = why_not
    if "naive" in names and tape.cut >= 0 and tape.venue not in PARSERS | BRIDGED:
        skipped["naive"] = f"the naive baseline has no parser for {tape.venue!r}"
    made: dict[str, Callable[[], Runner]] = {
        "lobfeed": lambda: LobfeedRunner(tape),
        "lobfeed_receive": lambda: LobfeedReceiveRunner(tape),
        "lobfeed_core": lambda: LobfeedCoreRunner(tape),
        "cryptofeed": lambda: CryptofeedRunner(tape, loop),
        "cryptofeed_noread": lambda: CryptofeedNoReadRunner(tape, loop),
        "naive": lambda: NaiveRunner(tape),
    }
    return [made[name]() for name in names if name not in skipped]


def bench_tape(
    tape: DepthTape,
    *,
    implementations: Sequence[str] = IMPLEMENTATIONS,
    repeats: int = 7,
    warmup: int = 2,
    progress: Callable[[str], None] | None = None,
) -> TapeResult:
    """Time each implementation on the tape; see the module docstring."""
    if "lobfeed" not in implementations:
        implementations = ["lobfeed", *implementations]
    frames = len(tape.timed_frames)
    if frames == 0:
        raise ValueError(f"{tape.name}: no frame after the sync frames to time")
    loop = asyncio.new_event_loop()
    try:
        skipped: dict[str, str] = {}
        runners = _runners(tape, implementations, loop, skipped)
        results = {r.name: ImplResult(frames=frames) for r in runners}
        for round_no in range(warmup + repeats):
            shift = round_no % len(runners)
            for runner in runners[shift:] + runners[:shift]:
                runner.prepare()
                gc.collect()
                elapsed = runner.run()
                if runner.updates != tape.updates and runner.name not in PEERS:
                    raise RuntimeError(
                        f"{tape.name}: {runner.name} made {runner.updates} book updates "
                        f"from {frames} frames, not {tape.updates}"
                    )
                if round_no >= warmup:
                    results[runner.name].runs_ns.append(elapsed)
            if progress is not None:
                kind = "warm-up" if round_no < warmup else "round"
                progress(f"{tape.name}: {kind} {round_no + 1}/{warmup + repeats} done")
        reference = runners[[r.name for r in runners].index("lobfeed")].tops()
        disagreements: list[str] = []
        for runner in runners:
            for symbol, top in runner.tops().items():
                if not top_equal(top, reference[symbol]):
                    disagreements.append(
                        f"{runner.name} {symbol}: {top} != lobfeed {reference[symbol]}"
                    )
    finally:
        loop.close()
    return TapeResult(tape, repeats, warmup, results, reference, disagreements, skipped)


def profile_lobfeed(tape: DepthTape, *, limit: int = 12) -> str:
    """cProfile of one lobfeed run on the tape: own time per frame of the busiest functions.

    cProfile adds its own cost to every Python call, so the Python share is overstated; the
    stage rows (``lobfeed_core``, ``lobfeed_receive``, ``lobfeed``) measure it without.
    """
    import cProfile
    import pstats

    runner = LobfeedRunner(tape)
    runner.prepare()
    profiler = cProfile.Profile()
    profiler.enable()
    runner.run()
    profiler.disable()
    frames = len(runner.frames)
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, object]]
    raw = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = sorted(raw.items(), key=lambda item: item[1][2], reverse=True)
    total = sum(v[2] for v in raw.values()) or 1.0
    lines = [f"{'own ns/frame':>12}  {'share':>5}  {'calls':>7}  function"]
    for (filename, line, func), (_cc, calls, own, _cum, _callers) in rows[:limit]:
        where = func if filename == "~" else f"{Path(filename).name}:{line} {func}"
        lines.append(f"{own * 1e9 / frames:12,.0f}  {100 * own / total:4.0f}%  {calls:7d}  {where}")
    return "\n".join(lines)
