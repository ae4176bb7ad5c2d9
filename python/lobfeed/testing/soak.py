"""The soak: several venues at once through the local exchange, with random seeded faults, for long.

``lobfeed soak --seconds N --seed S --report FILE`` (``make soak``) starts one
:class:`~lobfeed.testing.server.ExchangeServer` and one :class:`~lobfeed.aio.feed.Feed` per venue
in this process, replays each tape in a loop at several times its recorded speed, and injects
random faults for ``N`` seconds:

- ``binance-coinm-10sym-2021`` and ``binance-usdm-4sym-2021``, in live mode: drops, duplicates,
  reorders, crossed books, closes (the close code rotates through 1000, 1001, 1011, 1006) and
  REST snapshot faults (every few seconds the next two snapshot requests get the next kind of
  429, 418, 500, 503, slow, html, truncated, venue-error, oversized);
- ``okx-books-3inst-2022`` and ``kraken-v1-book1000-10sym-2021``: closes and corrupted checksums.

Then the faults stop (on the open connections too: nothing is reconnected for them, so a symbol
stuck in a resync would show) and every symbol gets ``settle`` seconds to be live again. The
checks, each reported with its numbers:

``books``
    every book delivered for a venue with update ids equals a clean in-process replay's book at
    that id (top 5 levels a side), and no venue ever delivered a crossed book;
``recovery``
    every feed is still running, and after the faults stopped every symbol was live again
    within the settle time (faults injected by kind, reconnects, resyncs per venue);
``rss``
    resident memory, sampled every second, did not grow: the mean of the last 20% of the samples
    is at most ``rss_bound_mb`` above the mean of the 20%-40% window;
``latency``
    frame receive (``BookUpdate.ts_ns``) to ``on_book``: the p99 of the last fifth of the run is at
    most ``latency_factor`` times that of the first fifth (or under ``latency_floor_ms``).

Everything is bounded: the soak ends by itself after ``seconds + settle`` (plus start-up and a
bounded stop), and memory kept per book is constant (latency goes into fixed histograms).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import dataclasses
import json
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from lobfeed._native import BookUpdate, SyncLost
from lobfeed.aio.backoff import Backoff
from lobfeed.aio.feed import Feed
from lobfeed.aio.options import ConnectOptions
from lobfeed.events import LIVE, Connected, Disconnected, StatusChanged
from lobfeed.replay import TapeReplayer
from lobfeed.tape import Tape
from lobfeed.testing.faults import FaultPlan
from lobfeed.testing.server import ExchangeServer
from lobfeed.venues import spec_for

__all__ = ["VENUES", "SoakVenue", "format_summary", "main", "run_soak"]

TOP = 5
"""Levels a side compared with the clean replay."""

Top = tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]
Truth = dict[tuple[str, int], set[Top]]

REST_KINDS = ("429", "418", "500", "503", "slow", "html", "truncated", "venue-error", "oversized")
CLOSE_ROTATION = (1000, 1001, 1011, 1006)


@dataclass(frozen=True)
class SoakVenue:
    """One venue of the soak: its tape, how it is served, and its random faults."""

    venue: str
    tape: str
    speed: float
    live: bool
    faults: str
    """A fault spec (``lobfeed.testing.faults``) without ``seed``: the soak adds it."""
    rest_faults: bool = False
    """Rotate REST snapshot faults (venues that take snapshots over REST)."""


VENUES: tuple[SoakVenue, ...] = (
    SoakVenue(
        "binance-coinm",
        "binance-coinm-10sym-2021.jsonl.gz",
        speed=8,
        live=True,
        faults="close=1006@p0.0001,conns=all,drop=p0.0005,dup=p0.0005,reorder=p0.0005,"
        "crossed=p0.0001",
        rest_faults=True,
    ),
    SoakVenue(
        "binance-usdm",
        "binance-usdm-4sym-2021.jsonl.gz",
        speed=10,
        live=True,
        faults="close=1000@p0.0002,conns=all,drop=p0.001,dup=p0.001,reorder=p0.001",
        rest_faults=True,
    ),
    SoakVenue(
        "okx",
        "okx-books-3inst-2022.jsonl.gz",
        speed=10,
        live=False,
        faults="close=1011@p0.001,conns=all,checksum=p0.01",
    ),
    SoakVenue(
        "kraken",
        "kraken-v1-book1000-10sym-2021.jsonl.gz",
        speed=8,
        live=False,
        faults="close=1006@p0.0003,conns=all,checksum=p0.002",
    ),
)


def soak_options() -> ConnectOptions:
    """Quick reconnects and resyncs, so that many faults fit in a run."""
    return ConnectOptions(
        backoff=Backoff(initial=0.05, maximum=1.0),
        open_timeout=5.0,
        idle_timeout=5.0,
        resync_timeout=2.0,
        healthy_after=0.5,
        stale_after=10.0,
        max_body_bytes=1_000_000,
    )


# -- measurements ------------------------------------------------------------------------------


class Histogram:
    """Latencies in fixed log-spaced buckets (1 us to 100 s, ~2% wide): constant memory."""

    _EDGES: ClassVar[list[float]] = [
        1e-6 * 1.02**i for i in range(int(math.log(1e8) / math.log(1.02)) + 2)
    ]

    def __init__(self) -> None:
        self.counts = [0] * (len(self._EDGES) + 1)
        self.total = 0

    def add(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self._EDGES, seconds)] += 1
        self.total += 1

    def quantile(self, q: float) -> float | None:
        """The upper edge of the bucket holding quantile ``q``, in seconds."""
        if not self.total:
            return None
        rank = max(1, math.ceil(q * self.total))
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                return self._EDGES[min(index, len(self._EDGES) - 1)]
        return self._EDGES[-1]


def rss_bytes() -> int:
    """This process's resident set size (``VmRSS`` of /proc/self/status)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def clean_books(path: Path) -> Truth:
    """The top of every book of a clean in-process replay, by (symbol, update id).

    An id can carry two books (a recorded snapshot taken part-way through the delta ending at
    the same id, and that delta applied): either is the venue's book at that id.
    """
    truth: Truth = {}
    for _record, ev in TapeReplayer(Tape.open(path)).events():
        if isinstance(ev, BookUpdate) and ev.seq is not None:
            book = ev.book
            truth.setdefault((ev.symbol, ev.seq), set()).add(
                (tuple(book.bids(TOP)), tuple(book.asks(TOP)))
            )
    return truth


def matches_truth(truth: Truth, update: BookUpdate) -> bool | None:
    """Whether a delivered book equals the clean replay's at its update id; ``None`` when the
    replay has no book at that id (or the venue has no ids)."""
    if update.seq is None:
        return None
    expected = truth.get((update.symbol, update.seq))
    if expected is None:
        return None
    book = update.book
    return (tuple(book.bids(TOP)), tuple(book.asks(TOP))) in expected


@dataclass
class VenueWatch:
    """What one Feed delivered, kept in constant memory."""

    venue: str
    truth: Truth
    phase: Callable[[], int]
    """Which fifth of the fault phase it is (0..4; 4 also during settle)."""
    histograms: list[Histogram]
    books: int = 0
    checked: int = 0
    wrong: int = 0
    first_wrong: list[str] = field(default_factory=list)
    crossed: int = 0
    sync_lost: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    connected: int = 0
    disconnected: Counter[str] = field(default_factory=Counter)
    left_at: dict[str, float] = field(default_factory=dict)
    #: The states and reasons each symbol went through since it left ``live`` (the last few).
    path: dict[str, list[str]] = field(default_factory=dict)
    outages: int = 0
    longest_outage_s: float = 0.0
    longest_outage: list[str] = field(default_factory=list)
    """The symbol and the states of the longest outage."""

    def on_book(self, update: BookUpdate) -> None:
        self.histograms[self.phase()].add((time.time_ns() - update.ts_ns) / 1e9)
        self.books += 1
        book = update.book
        if book.crossed:
            self.crossed += 1
        if not self.truth:
            return
        verdict = matches_truth(self.truth, update)
        if verdict is not None:
            self.checked += 1
            if not verdict:
                self.wrong += 1
                if len(self.first_wrong) < 10:
                    self.first_wrong.append(f"{update.symbol}@{update.seq}")

    def on_event(self, ev: Any) -> None:
        self.events[type(ev).__name__] += 1
        if isinstance(ev, SyncLost):
            self.sync_lost[str(ev.reason)] += 1

    def on_status(self, ev: Any) -> None:
        if isinstance(ev, Connected):
            self.connected += 1
        elif isinstance(ev, Disconnected):
            self.disconnected[str(ev.code)] += 1
        elif isinstance(ev, StatusChanged):
            now = time.monotonic()
            if ev.old == LIVE:
                self.left_at.setdefault(ev.symbol, now)
                self.path[ev.symbol] = []
            elif ev.new == LIVE:
                left = self.left_at.pop(ev.symbol, None)
                path = self.path.pop(ev.symbol, [])
                if left is not None:
                    self.outages += 1
                    if now - left > self.longest_outage_s:
                        self.longest_outage_s = now - left
                        self.longest_outage = [ev.symbol, *path]
            if ev.new != LIVE and ev.symbol in self.path:
                steps = self.path[ev.symbol]
                steps.append(f"+{now - self.left_at[ev.symbol]:.2f}s {ev.new}: {ev.reason}")
                del steps[:-8]


# -- faults ------------------------------------------------------------------------------------


class Faults:
    """A venue's fault plans over the run: rotating REST faults and close codes, then calm.

    The server reads ``server.faults`` for closes and REST answers, and each connection's frame
    pipeline keeps the plan it started with; :meth:`calm` zeroes every plan handed out, in place,
    so that the faults stop on the open connections too, without a reconnect.
    """

    def __init__(self, spec: SoakVenue, seed: int, server: ExchangeServer) -> None:
        self.spec = spec
        self.server = server
        self.rng = random.Random(seed)
        self.plans = [server.faults]
        self.turn = 0

    def rotate(self) -> None:
        """The next two snapshot requests get the next REST fault; the close code moves on."""
        self.turn += 1
        plan = self.server.faults
        changes: dict[str, Any] = {
            "close_code": CLOSE_ROTATION[self.turn % len(CLOSE_ROTATION)],
        }
        if self.spec.rest_faults:
            kind = self.rng.choice(REST_KINDS)
            asked = self.server.stats.snapshot_requests
            changes.update(
                rest_fault=kind,
                rest_from=asked + 1,
                rest_to=asked + 2,
                rest_delay_s=1.5 if kind == "slow" else 0.0,
                rest_body_bytes=3_000_000 if kind == "oversized" else 0,
            )
        new = dataclasses.replace(plan, **changes)
        self.plans.append(new)
        self.server.faults = new

    def calm(self) -> None:
        quiet: dict[str, Any] = {
            "close_prob": 0.0,
            "rest_fault": None,
            **{f.name: 0.0 for f in dataclasses.fields(FaultPlan) if f.name.endswith("_prob")},
        }
        for plan in self.plans:
            for name, value in quiet.items():
                # FaultPlan is frozen; these plans are ours, shared only with the server.
                object.__setattr__(plan, name, value)


# -- the run -----------------------------------------------------------------------------------


@dataclass
class Running:
    spec: SoakVenue
    server: ExchangeServer
    feed: Feed
    watch: VenueWatch
    faults: Faults
    task: asyncio.Task[None]


def _all_live(feed: Feed) -> bool:
    return all(h.state == LIVE for h in feed.health().values())


def _symbols(truth: Truth, path: Path) -> tuple[str, ...]:
    if truth:
        return tuple(sorted({symbol for symbol, _ in truth}))
    names = set()
    for _record, ev in TapeReplayer(Tape.open(path)).events():
        if isinstance(ev, BookUpdate):
            names.add(ev.symbol)
    return tuple(sorted(names))


async def run_soak(
    seconds: float,
    seed: int,
    *,
    tapes: Path,
    settle: float = 30.0,
    venues: tuple[SoakVenue, ...] = VENUES,
    rotate_every: float = 5.0,
    rss_bound_mb: float = 10.0,
    latency_factor: float = 5.0,
    latency_floor_ms: float = 50.0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Runs the soak and returns its report (``report["passed"]`` and each check's)."""
    say = progress or (lambda _text: None)
    histograms = [Histogram() for _ in range(5)]
    started = 0.0

    def phase() -> int:
        if not started:
            return 0
        return min(4, int((time.monotonic() - started) / seconds * 5))

    runs: list[Running] = []
    stack = contextlib.AsyncExitStack()
    async with stack:
        for number, spec in enumerate(venues):
            path = tapes / spec.tape
            truth = clean_books(path)
            plan = FaultPlan.parse(f"{spec.faults},seed={seed * 100 + number}")
            # The tape's time runs ``speed`` times faster, and so does the venue's REST
            # weight window, on the exchange and in the feed's budget alike: the same number
            # of snapshots fits in a window of the replayed market.
            weight = spec_for(spec.venue).rest_weight
            window = weight.window / spec.speed if weight is not None else None
            server = await stack.enter_async_context(
                ExchangeServer(
                    path,
                    speed=spec.speed,
                    loop=True,
                    live=spec.live,
                    faults=plan,
                    rest_window_s=window,
                )
            )
            options = soak_options()
            if weight is not None and window is not None:
                options = dataclasses.replace(
                    options, rest_weight=dataclasses.replace(weight, window=window)
                )
            watch = VenueWatch(spec.venue, truth, phase, histograms)
            feed = Feed(
                spec.venue,
                _symbols(truth, path),
                channels=("book",),
                on_book=watch.on_book,
                on_event=watch.on_event,
                on_status=watch.on_status,
                ws_url=server.ws_url,
                rest_url=server.rest_url,
                options=options,
            )
            faults = Faults(spec, seed * 100 + number, server)
            runs.append(
                Running(spec, server, feed, watch, faults, asyncio.ensure_future(feed.run()))
            )
        rss: list[tuple[float, int]] = []
        started = time.monotonic()
        say(f"soak: {len(runs)} venues, faults for {seconds:g}s, seed {seed}")
        end = started + seconds
        next_rotation = started + rotate_every
        next_note = started + 60.0
        try:
            while (now := time.monotonic()) < end:
                rss.append((now - started, rss_bytes()))
                if now >= next_rotation:
                    for run in runs:
                        run.faults.rotate()
                    next_rotation += rotate_every
                if now >= next_note:
                    next_note += 60.0
                    books = sum(r.watch.books for r in runs)
                    say(f"  {now - started:5.0f}s  {books} books  rss {rss[-1][1] / 2**20:.1f} MB")
                dead = [r for r in runs if r.task.done()]
                if dead:
                    break
                await asyncio.sleep(min(1.0, max(0.0, end - time.monotonic())))
            fault_phase_s = time.monotonic() - started
            for run in runs:
                run.faults.calm()
            settled_at = time.monotonic()
            settle_s: dict[str, float | None] = {r.spec.venue: None for r in runs}
            while time.monotonic() - settled_at < settle:
                for run in runs:
                    if settle_s[run.spec.venue] is None and _all_live(run.feed):
                        settle_s[run.spec.venue] = round(time.monotonic() - settled_at, 3)
                if all(v is not None for v in settle_s.values()) or any(
                    r.task.done() for r in runs
                ):
                    break
                await asyncio.sleep(0.1)
            states = {r.spec.venue: {s: h.state for s, h in r.feed.health().items()} for r in runs}
        finally:
            for run in runs:
                run.feed.stop()
            await asyncio.wait([r.task for r in runs], timeout=15.0)
            for run in runs:
                if not run.task.done():
                    run.task.cancel()
            await asyncio.gather(*(r.task for r in runs), return_exceptions=True)
    errors = {
        r.spec.venue: repr(r.task.exception())
        for r in runs
        if not r.task.cancelled() and r.task.exception() is not None
    }
    return _report(
        runs,
        seconds=seconds,
        seed=seed,
        fault_phase_s=fault_phase_s,
        settle=settle,
        settle_s=settle_s,
        states=states,
        errors=errors,
        rss=rss,
        histograms=histograms,
        rss_bound_mb=rss_bound_mb,
        latency_factor=latency_factor,
        latency_floor_ms=latency_floor_ms,
    )


def _mean(values: list[int]) -> float:
    return sum(values) / len(values) if values else float("nan")


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1e3, 3)


def _report(
    runs: list[Running],
    *,
    seconds: float,
    seed: int,
    fault_phase_s: float,
    settle: float,
    settle_s: dict[str, float | None],
    states: dict[str, dict[str, str]],
    errors: dict[str, str],
    rss: list[tuple[float, int]],
    histograms: list[Histogram],
    rss_bound_mb: float,
    latency_factor: float,
    latency_floor_ms: float,
) -> dict[str, Any]:
    venues: dict[str, Any] = {}
    for run in runs:
        stats, watch = run.feed.stats, run.watch
        venues[run.spec.venue] = {
            "tape": run.spec.tape,
            "speed": run.spec.speed,
            "live_mode": run.spec.live,
            "faults": dict(sorted(run.server.stats.faults.items())),
            "faults_injected": run.server.stats.faults_injected,
            "connections": stats.connections,
            "reconnects": stats.reconnects,
            "disconnects_by_code": dict(sorted(watch.disconnected.items())),
            "resyncs": stats.resyncs,
            "gaps": stats.gaps,
            "sync_lost": dict(sorted(watch.sync_lost.items())),
            "checksum_mismatches": stats.checksum_mismatches,
            "snapshots": stats.snapshots,
            "snapshot_failures": stats.snapshot_failures,
            "snapshot_retries": stats.snapshot_retries,
            "stale_snapshots": stats.stale_snapshots,
            "snapshot_requests": run.server.stats.snapshot_requests,
            "rate_limited": stats.rate_limited,
            "resubscribes": stats.resubscribes,
            "replaced_connections": stats.replaced_connections,
            "frame_errors": stats.frame_errors,
            "outages": watch.outages,
            "longest_outage_s": round(watch.longest_outage_s, 3),
            "longest_outage": watch.longest_outage,
            "books": watch.books,
            "books_checked": watch.checked,
            "wrong_books": watch.wrong,
            "first_wrong": watch.first_wrong,
            "crossed_books": watch.crossed,
            "settle_s": settle_s[run.spec.venue],
            "not_live_at_end": {s: st for s, st in states[run.spec.venue].items() if st != LIVE},
            "run_error": errors.get(run.spec.venue),
        }
    checked = sum(v["books_checked"] for v in venues.values())
    wrong = sum(v["wrong_books"] for v in venues.values())
    crossed = sum(v["crossed_books"] for v in venues.values())
    books_ok = wrong == 0 and crossed == 0 and checked > 0

    # Each close the server made ended a connection the feed saw end (and came back from).
    unseen_closes = {
        name: v["faults"].get("close", 0) - sum(v["disconnects_by_code"].values())
        for name, v in venues.items()
        if v["faults"].get("close", 0) > sum(v["disconnects_by_code"].values())
    }
    recovered = (
        not errors
        and not unseen_closes
        and all(v["settle_s"] is not None and not v["not_live_at_end"] for v in venues.values())
    )
    faults_total = sum(v["faults_injected"] for v in venues.values())

    values = [value for _, value in rss]
    n = len(values)
    window = values[n // 5 : max(n // 5 + 1, 2 * n // 5)]
    last = values[n - max(1, n // 5) :]
    rss_window, rss_last = _mean(window), _mean(last)
    growth_mb = (rss_last - rss_window) / 2**20
    rss_ok = n >= 5 and growth_mb <= rss_bound_mb

    first, final = histograms[0], histograms[4]
    first_p99, last_p99 = first.quantile(0.99), final.quantile(0.99)
    latency_ok = (
        first_p99 is not None
        and last_p99 is not None
        and (last_p99 <= latency_factor * first_p99 or last_p99 * 1e3 <= latency_floor_ms)
    )
    checks = {
        "books": {
            "passed": books_ok,
            "checked": checked,
            "wrong": wrong,
            "crossed": crossed,
            "delivered": sum(v["books"] for v in venues.values()),
        },
        "recovery": {
            "passed": recovered,
            "faults_injected": faults_total,
            "settle_limit_s": settle,
            "settle_s": settle_s,
            "run_errors": errors,
            "closes_not_seen": unseen_closes,
            "reconnects": {name: v["reconnects"] for name, v in venues.items()},
            "resyncs": {name: v["resyncs"] for name, v in venues.items()},
        },
        "rss": {
            "passed": rss_ok,
            "samples": n,
            "start_mb": round(values[0] / 2**20, 1) if values else None,
            "warm_mb": round(rss_window / 2**20, 1),
            "end_mb": round(rss_last / 2**20, 1),
            "growth_mb": round(growth_mb, 2),
            "bound_mb": rss_bound_mb,
        },
        "latency": {
            "passed": latency_ok,
            "what": "frame receive to on_book callback",
            "first_p50_ms": _ms(first.quantile(0.5)),
            "first_p99_ms": _ms(first_p99),
            "last_p50_ms": _ms(final.quantile(0.5)),
            "last_p99_ms": _ms(last_p99),
            "first_books": first.total,
            "last_books": final.total,
            "factor": latency_factor,
            "floor_ms": latency_floor_ms,
        },
    }
    return {
        "passed": all(c["passed"] for c in checks.values()),
        "seconds": seconds,
        "fault_phase_s": round(fault_phase_s, 1),
        "seed": seed,
        "checks": checks,
        "venues": venues,
    }


def format_summary(report: dict[str, Any]) -> str:
    """The report as a plain-text table."""
    checks = report["checks"]
    venues: dict[str, Any] = report["venues"]
    names = list(venues)
    width = max(14, *(len(n) for n in names))
    lines = [
        f"lobfeed soak: {report['fault_phase_s']}s of faults, seed {report['seed']}: "
        + ("PASSED" if report["passed"] else "FAILED"),
        "",
        f"{'':24}" + "".join(f"{n:>{width}}" for n in names),
    ]
    kinds = sorted({k for v in venues.values() for k in v["faults"]})

    def row(label: str, cells: list[Any]) -> None:
        lines.append(f"{label:24}" + "".join(f"{c!s:>{width}}" for c in cells))

    for kind in kinds:
        row(f"fault {kind}", [v["faults"].get(kind, 0) for v in venues.values()])
    for key in (
        "faults_injected",
        "reconnects",
        "resyncs",
        "checksum_mismatches",
        "snapshot_requests",
        "snapshot_failures",
        "stale_snapshots",
        "rate_limited",
        "resubscribes",
        "outages",
        "longest_outage_s",
        "settle_s",
        "books",
        "books_checked",
        "wrong_books",
        "crossed_books",
    ):
        row(key, [v[key] for v in venues.values()])
    b, r, m, lat = checks["books"], checks["recovery"], checks["rss"], checks["latency"]

    def verdict(check: dict[str, Any]) -> str:
        return "ok" if check["passed"] else "FAIL"

    lines += [
        "",
        f"books     {verdict(b)}: {b['wrong']} wrong of {b['checked']} checked "
        f"({b['delivered']} delivered, {b['crossed']} crossed)",
        f"recovery  {verdict(r)}: {r['faults_injected']} faults; every symbol live again "
        f"within {r['settle_limit_s']}s: {r['settle_s']}"
        + (f"; run errors {r['run_errors']}" if r["run_errors"] else "")
        + (f"; closes never seen {r['closes_not_seen']}" if r["closes_not_seen"] else ""),
        f"rss       {verdict(m)}: start {m['start_mb']} MB, 20-40% {m['warm_mb']} MB, "
        f"last 20% {m['end_mb']} MB (growth {m['growth_mb']} MB, bound {m['bound_mb']} MB)",
        f"latency   {verdict(lat)}: first fifth p50 {lat['first_p50_ms']} ms p99 "
        f"{lat['first_p99_ms']} ms; last fifth p50 {lat['last_p50_ms']} ms p99 "
        f"{lat['last_p99_ms']} ms (limit x{lat['factor']:g} or {lat['floor_ms']:g} ms)",
    ]
    return "\n".join(lines)


def _say(text: str) -> None:
    print(text, flush=True)


def main(
    seconds: float,
    seed: int,
    report_path: str | None,
    tapes: str,
    settle: float,
    verbose: bool = False,
) -> int:
    """``lobfeed soak``: run, print the summary, write the JSON report; 1 if a check failed."""
    if not verbose:
        # Thousands of injected faults each log a warning; the report counts them instead.
        logging.getLogger("lobfeed").setLevel(logging.ERROR)
    report = asyncio.run(run_soak(seconds, seed, tapes=Path(tapes), settle=settle, progress=_say))
    print(format_summary(report), flush=True)
    if report_path is not None:
        out = Path(report_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1) + "\n")
    return 0 if report["passed"] else 1
