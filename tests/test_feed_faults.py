"""Every exchange fault of the reliability issue, through the real Feed against ``lobfeed serve``.

Each test injects one fault with the local exchange's ``FaultPlan`` and asserts the recovery: the
books delivered afterwards equal a clean replay of the tape at the same update id (never a
wrong book), the symbols the fault did not touch kept updating, and the fault was seen (a
status, an event, a counter) or ended ``run()`` with a typed error.

The Binance cases run the exchange in live mode (one clock; a reconnecting client joins the
stream where it is, and REST snapshots are built at the current position), as a real venue does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lobfeed import BookUpdate, Feed, SyncLost
from lobfeed.aio import Backoff
from lobfeed.aio.options import ConnectOptions
from lobfeed.events import Connected, Disconnected, StatusChanged
from lobfeed.exceptions import (
    ConnectError,
    HandshakeRejectedError,
    SubscriptionRejectedError,
    SymbolRejectedError,
)
from lobfeed.testing import ExchangeServer, FaultPlan
from lobfeed.testing.soak import Truth, matches_truth
from lobfeed.testing.soak import clean_books as replayed_books

COINM = "binance-coinm-10sym-2021.jsonl.gz"
OKX = "okx-books-3inst-2022.jsonl.gz"
OKX_SYMBOLS = ("BTC-USD-220527", "UNI-USD-SWAP", "BTC-USDT")
KRAKEN = "kraken-v1-book1000-10sym-2021.jsonl.gz"
TIMEOUT = 60.0


def fast_options(**overrides: Any) -> ConnectOptions:
    base: dict[str, Any] = {
        "backoff": Backoff(initial=0.02, maximum=0.2),
        "open_timeout": 5.0,
        "idle_timeout": 5.0,
        "resync_timeout": 1.0,
        "healthy_after": 0.5,
        "stale_after": 3.0,
    }
    base.update(overrides)
    return ConnectOptions(**base)


_TRUTHS: dict[str, Truth] = {}
_WATCHES: list[Watch] = []
#: Seconds from a fault being seen to every book live again, by test; written to
#: target/fault-recovery.json for the README's fault table.
RECOVERY: dict[str, float] = {}
RECOVERY_FILE = Path(__file__).resolve().parents[1] / "target" / "fault-recovery.json"


@pytest.fixture(autouse=True)
def _measure_recovery(request: pytest.FixtureRequest) -> Iterator[None]:
    _WATCHES.clear()
    yield
    took = [w.recovery() for w in _WATCHES]
    measured = [t for t in took if t is not None]
    if measured:
        RECOVERY[request.node.name] = round(max(measured), 3)
        RECOVERY_FILE.parent.mkdir(exist_ok=True)
        RECOVERY_FILE.write_text(json.dumps(RECOVERY, indent=1, sort_keys=True) + "\n")


def clean_books(path: Path) -> Truth:
    """The clean replay's books of a tape (see ``lobfeed.testing.soak.clean_books``), once."""
    key = str(path)
    if key not in _TRUTHS:
        _TRUTHS[key] = replayed_books(path)
    return _TRUTHS[key]


def tape_symbols(path: Path) -> tuple[str, ...]:
    return tuple(sorted({symbol for symbol, _ in clean_books(path)}))


@dataclass
class Watch:
    """What a Feed told: books (each checked against the clean replay), events, statuses."""

    truth: Truth = field(default_factory=dict)
    updates: Counter[str] = field(default_factory=Counter)
    checked: int = 0
    wrong: list[tuple[str, int]] = field(default_factory=list)
    crossed: int = 0
    events: list[Any] = field(default_factory=list)
    statuses: list[Any] = field(default_factory=list)
    live_at: dict[str, float] = field(default_factory=dict)
    #: When each symbol left ``live`` (a drop, a lost book, silence), until it is back.
    left_at: dict[str, float] = field(default_factory=dict)
    #: Seconds each symbol spent out of ``live`` per fault, from leaving it to being back.
    outages: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        _WATCHES.append(self)

    def recovery(self) -> float | None:
        return max(self.outages) if self.outages else None

    def on_book(self, update: BookUpdate) -> None:
        self.updates[update.symbol] += 1
        book = update.book
        if book.crossed:
            self.crossed += 1
        verdict = matches_truth(self.truth, update) if self.truth else None
        if verdict is not None:
            self.checked += 1
            if not verdict:
                self.wrong.append((update.symbol, update.seq or 0))

    def on_event(self, ev: Any) -> None:
        self.events.append(ev)

    def on_status(self, ev: Any) -> None:
        self.statuses.append(ev)
        if not isinstance(ev, StatusChanged):
            return
        now = time.monotonic()
        if ev.old == "live":
            self.left_at.setdefault(ev.symbol, now)
        elif ev.new == "live":
            self.live_at[ev.symbol] = now
            left = self.left_at.pop(ev.symbol, None)
            if left is not None:
                self.outages.append(now - left)

    def kinds(self, kind: type) -> list[Any]:
        return [e for e in (*self.events, *self.statuses) if isinstance(e, kind)]

    def went(self, symbol: str, state: str) -> bool:
        return any(
            isinstance(e, StatusChanged) and e.symbol == symbol and e.new == state
            for e in self.statuses
        )


def make_feed(
    server: ExchangeServer, watch: Watch, venue: str, symbols: tuple[str, ...], **kwargs: Any
) -> Feed:
    options = kwargs.pop("options", None) or fast_options()
    return Feed(
        venue,
        symbols,
        channels=kwargs.pop("channels", ("book",)),
        on_book=kwargs.pop("on_book", watch.on_book),
        on_event=watch.on_event,
        on_status=watch.on_status,
        ws_url=server.ws_url,
        rest_url=server.rest_url,
        options=options,
        **kwargs,
    )


async def until(check: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> float:
    """Waits for ``check()``; returns the seconds it took."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


def all_live(feed: Feed) -> bool:
    return all(h.state == "live" for h in feed.health().values())


class Running:
    """A feed's run() as a task, stopped and awaited on exit (its error re-raised)."""

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> asyncio.Task[None]:
        self.task = asyncio.ensure_future(self.feed.run())
        return self.task

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.feed.stop()
        await asyncio.wait_for(asyncio.gather(self.task, return_exceptions=True), TIMEOUT)


@contextlib.asynccontextmanager
async def coinm_running(
    path: Path,
    watch: Watch,
    spec: str = "",
    *,
    symbols: tuple[str, ...] | None = None,
    speed: float = 4,
    **feed_kwargs: Any,
) -> AsyncIterator[tuple[ExchangeServer, Feed]]:
    """A COIN-M feed running against the local exchange in live mode with ``spec``'s faults."""
    plan = FaultPlan.parse(spec)
    async with ExchangeServer(path, speed=speed, loop=True, live=True, faults=plan) as server:
        chosen = symbols if symbols is not None else tape_symbols(path)
        feed = make_feed(server, watch, "binance-coinm", chosen, **feed_kwargs)
        async with Running(feed):
            yield server, feed


async def live_then_fault_then_live(
    feed: Feed, watch: Watch, fault_seen: Callable[[], bool], what: str
) -> float:
    """All books live; the fault seen; all live again. Returns the seconds to recover."""
    await until(lambda: all_live(feed), "every book live")
    await until(fault_seen, what)
    seen_at = time.monotonic()
    await until(lambda: all_live(feed), f"every book live again after {what}")
    return time.monotonic() - seen_at


# -- REST snapshots ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["html", "truncated", "venue-error", "oversized:3000000"])
async def test_unusable_snapshot_bodies_are_retried_until_the_book_is_live(
    kind: str, tape_path: Callable[[str], Path]
) -> None:
    path = tape_path(COINM)
    symbols = tape_symbols(path)
    victim = symbols[0]
    watch = Watch(clean_books(path))
    async with coinm_running(
        path,
        watch,
        f"rest={kind}@1-3,restsym={victim}",
        symbols=symbols,
        options=fast_options(max_body_bytes=1_000_000),
    ) as (_server, feed):
        await until(lambda: all_live(feed), "every book live")
        others_before = sum(watch.updates[s] for s in symbols[1:])
        await until(lambda: watch.updates[victim] >= 5, "the victim's books")
    assert feed.stats.snapshot_failures == 3
    assert feed.stats.snapshot_retries == 3
    assert sum(watch.updates[s] for s in symbols[1:]) > others_before
    assert watch.wrong == [] and watch.checked > 50
    # The victim was seen waiting, with why.
    assert any(
        isinstance(e, StatusChanged) and e.symbol == victim and "snapshot retry" in e.reason
        for e in watch.statuses
    )


async def test_a_rest_404_ends_run_with_a_typed_error(tape_path: Callable[[str], Path]) -> None:
    path = tape_path(COINM)
    watch = Watch()
    async with ExchangeServer(
        path, speed=4, loop=True, live=True, faults=FaultPlan.parse("rest=404")
    ) as server:
        feed = make_feed(server, watch, "binance-coinm", tape_symbols(path)[:2])
        with pytest.raises(SymbolRejectedError) as caught:
            await asyncio.wait_for(feed.run(), TIMEOUT)
    assert caught.value.status == 404
    assert "/dapi/v1/depth" in str(caught.value)
    assert any(isinstance(e, StatusChanged) and e.new == "failed" for e in watch.statuses)


async def test_rate_limits_hold_back_every_request_and_are_jittered(
    tape_path: Callable[[str], Path],
) -> None:
    path = tape_path(COINM)
    symbols = tape_symbols(path)
    watch = Watch(clean_books(path))
    plan = FaultPlan.parse("rest=418@1-2,retry=1")
    async with ExchangeServer(path, speed=4, loop=True, live=True, faults=plan) as server:
        feed = make_feed(server, watch, "binance-coinm", symbols)
        started = time.monotonic()
        async with Running(feed):
            await until(lambda: all_live(feed), "every book live")
        took = time.monotonic() - started
    assert feed.stats.rate_limited == 2
    # The two refused symbols waited out the ban (1 s); nothing else was asked twice.
    assert took >= 1.0
    assert server.stats.snapshot_requests == len(symbols) + 2
    assert watch.wrong == []


# -- connection closes and refusals -----------------------------------------------------------


@pytest.mark.parametrize("code", [1000, 1001, 1011, 1006])
async def test_every_close_code_right_after_the_handshake_reconnects(
    code: int, tape_path: Callable[[str], Path]
) -> None:
    watch = Watch()
    plan = FaultPlan.parse(f"close={code}@0,conns=1")
    async with ExchangeServer(tape_path(OKX), speed=4, loop=True, faults=plan) as server:
        feed = make_feed(server, watch, "okx", OKX_SYMBOLS)
        async with Running(feed) as run:
            await until(lambda: all_live(feed), "every book live after the close")
            assert not run.done()
    closes = watch.kinds(Disconnected)
    assert closes[0].code == code and closes[0].connection == "c1"
    assert [c.connection for c in watch.kinds(Connected)][:2] == ["c1", "c2"]


async def test_closes_mid_stream_keep_books_right(tape_path: Callable[[str], Path]) -> None:
    path = tape_path(COINM)
    symbols = tape_symbols(path)
    watch = Watch(clean_books(path))
    async with coinm_running(path, watch, "close=1006@400,conns=2", symbols=symbols) as (
        _server,
        feed,
    ):
        await until(lambda: len(watch.kinds(Connected)) >= 3, "a third connection")
        await until(lambda: all_live(feed), "every book live")
    assert watch.wrong == [] and watch.checked > 100
    assert [d.code for d in watch.kinds(Disconnected)][:2] == [1006, 1006]


@pytest.mark.parametrize("status", [401, 403, 404, 414])
async def test_a_permanent_handshake_refusal_ends_run(
    status: int, tape_path: Callable[[str], Path]
) -> None:
    watch = Watch()
    plan = FaultPlan.parse(f"status={status}")
    async with ExchangeServer(tape_path(OKX), faults=plan) as server:
        feed = make_feed(server, watch, "okx", OKX_SYMBOLS)
        with pytest.raises(HandshakeRejectedError) as caught:
            await asyncio.wait_for(feed.run(), TIMEOUT)
        url = server.ws_url
    assert caught.value.status == status
    assert caught.value.url is not None and caught.value.url.startswith(url)
    assert f"HTTP {status}" in str(caught.value)
    assert watch.kinds(Disconnected)[0].code == status


@pytest.mark.parametrize("status", [429, 503])
async def test_a_transient_handshake_refusal_is_retried(
    status: int, tape_path: Callable[[str], Path]
) -> None:
    watch = Watch()
    plan = FaultPlan.parse(f"status={status}@2")
    async with ExchangeServer(tape_path(OKX), speed=4, loop=True, faults=plan) as server:
        feed = make_feed(server, watch, "okx", OKX_SYMBOLS)
        async with Running(feed):
            await until(lambda: all_live(feed), "every book live")
    assert feed.stats.connect_failures == 2
    assert [d.code for d in watch.kinds(Disconnected)][:2] == [status, status]


async def test_refused_connections_give_up_after_max_attempts() -> None:
    # A port nothing listens on: bind one, close it, use its number.
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    watch = Watch()
    feed = Feed(
        "okx",
        OKX_SYMBOLS,
        ws_url=f"ws://127.0.0.1:{port}",
        on_status=watch.on_status,
        options=fast_options(max_attempts=3),
    )
    with pytest.raises(ConnectError) as caught:
        await asyncio.wait_for(feed.run(), TIMEOUT)
    assert "3 connection attempts" in str(caught.value)
    assert len(watch.kinds(Disconnected)) == 3
    assert all(h.state == "connecting" for h in feed.health().values())


# Delays without jitter, doubling from 10 ms to a 160 ms cap: what each reconnect waited is
# then known exactly.
DOUBLING = Backoff(initial=0.01, maximum=0.16, factor=2.0, jitter=0.0)


async def test_backoff_grows_when_connections_never_become_healthy(
    tape_path: Callable[[str], Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "lobfeed.feed")
    watch = Watch()
    plan = FaultPlan.parse("close=1000@1,conns=all")
    async with ExchangeServer(tape_path(OKX), speed=4, loop=True, faults=plan) as server:
        feed = make_feed(
            server,
            watch,
            "okx",
            OKX_SYMBOLS,
            options=fast_options(backoff=DOUBLING, max_attempts=6),
        )
        with pytest.raises(ConnectError):
            await asyncio.wait_for(feed.run(), TIMEOUT)
    delays = reconnect_delays(caplog)
    assert delays == [0.01, 0.02, 0.04, 0.08, 0.16]
    assert server.stats.connections == 6


async def test_backoff_starts_again_after_a_healthy_connection(
    tape_path: Callable[[str], Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "lobfeed.feed")
    watch = Watch()
    plan = FaultPlan.parse("close=1006@1.5s,conns=all")
    async with ExchangeServer(tape_path(OKX), speed=4, loop=True, faults=plan) as server:
        feed = make_feed(
            server,
            watch,
            "okx",
            OKX_SYMBOLS,
            options=fast_options(backoff=DOUBLING, healthy_after=0.3),
        )
        async with Running(feed):
            await until(lambda: len(watch.kinds(Disconnected)) >= 4, "four closes")
    delays = reconnect_delays(caplog)
    assert delays[:3] == [0.01, 0.01, 0.01]


def reconnect_delays(caplog: pytest.LogCaptureFixture) -> list[float]:
    """The delays the feed chose before each reconnect, as it logged them."""
    delays: list[float] = []
    for record in caplog.records:
        if str(record.msg).startswith("%s: reconnecting in") and isinstance(record.args, tuple):
            delays.append(float(str(record.args[1])))
    return delays


# -- stalls --------------------------------------------------------------------------------


async def test_a_data_stall_is_dropped_after_idle_timeout(tape_path: Callable[[str], Path]) -> None:
    path = tape_path(COINM)
    symbols = tape_symbols(path)
    watch = Watch(clean_books(path))
    async with coinm_running(
        path, watch, "stall=30s@300", symbols=symbols, options=fast_options(idle_timeout=1.0)
    ) as (_server, feed):
        await until(lambda: len(watch.kinds(Connected)) >= 2, "a new connection")
        await until(lambda: all_live(feed), "every book live")
    first = watch.kinds(Disconnected)[0]
    assert "idle_timeout" in first.reason
    assert feed.stats.idle_timeouts == 1
    assert watch.wrong == []


async def test_a_tcp_stall_is_caught_by_pings(tape_path: Callable[[str], Path]) -> None:
    watch = Watch()
    plan = FaultPlan.parse("tcpstall=30s@50")
    async with ExchangeServer(tape_path(OKX), speed=4, loop=True, faults=plan) as server:
        feed = make_feed(
            server,
            watch,
            "okx",
            OKX_SYMBOLS,
            options=fast_options(ping_interval=0.3, ping_timeout=0.3, idle_timeout=20),
        )
        async with Running(feed):
            await until(lambda: len(watch.kinds(Connected)) >= 2, "a new connection")
            await until(lambda: all_live(feed), "every book live")
    first = watch.kinds(Disconnected)[0]
    assert first.code == 1006 and "keepalive ping timeout" in first.reason


async def test_one_silent_symbol_goes_stale_while_the_others_flow(
    tape_path: Callable[[str], Path],
) -> None:
    path = tape_path(COINM)
    symbols = tape_symbols(path)
    busiest = Counter(s for s, _ in clean_books(path)).most_common(2)
    victim, other = busiest[0][0], busiest[1][0]
    watch = Watch(clean_books(path))
    async with coinm_running(
        path, watch, f"hold={victim}:4s@200", symbols=symbols, options=fast_options(stale_after=1.0)
    ) as (_server, feed):
        await until(lambda: watch.went(victim, "stale"), "the victim stale")
        others = watch.updates[other]
        assert feed.health()[other].state == "live"
        await until(lambda: watch.updates[other] > others, "the others updating")
        await until(lambda: feed.health()[victim].state == "live", "the victim live again")
    assert watch.wrong == []
    # Stale from one second into the four-second hold until its frames came back.
    assert watch.outages and max(watch.outages) > 1.5
    stale = [
        e
        for e in watch.statuses
        if isinstance(e, StatusChanged) and e.new == "stale" and e.symbol == victim
    ]
    assert stale and "no update for" in stale[0].reason


# -- book faults ---------------------------------------------------------------------------


async def test_update_ids_going_backwards_resync_that_symbol(
    tape_path: Callable[[str], Path],
) -> None:
    path = tape_path(COINM)
    symbols = tape_symbols(path)
    watch = Watch(clean_books(path))
    async with coinm_running(path, watch, "rewind=60@400", symbols=symbols) as (_server, feed):
        took = await live_then_fault_then_live(
            feed, watch, lambda: bool(watch.kinds(SyncLost)), "ids going backwards"
        )
    lost = watch.kinds(SyncLost)
    assert {e.reason for e in lost} == {"ids-backwards"}
    assert len(watch.kinds(Connected)) == 1  # a resync of the symbol, not a reconnect
    assert watch.wrong == [] and watch.checked > 100
    assert took < 10


async def test_a_crossed_book_is_never_delivered(tape_path: Callable[[str], Path]) -> None:
    path = tape_path(COINM)
    symbols = tape_symbols(path)
    watch = Watch(clean_books(path))
    async with coinm_running(path, watch, "crossed=300/600", symbols=symbols) as (_server, feed):
        await live_then_fault_then_live(
            feed, watch, lambda: len(watch.kinds(SyncLost)) >= 2, "two crossed books"
        )
    lost = watch.kinds(SyncLost)
    assert [e.reason for e in lost] == ["crossed", "crossed"]
    assert all(">=" in e.detail for e in lost)
    assert watch.crossed == 0
    assert watch.wrong == []


@pytest.mark.parametrize(
    ("tape", "venue", "symbols"),
    [
        (OKX, "okx", OKX_SYMBOLS),
        (KRAKEN, "kraken", ("WAVES/EUR", "XMR/USD", "ETH/CHF")),
    ],
    ids=["okx", "kraken"],
)
async def test_a_checksum_mismatch_with_no_answer_to_resubscribe_escalates(
    tape: str, venue: str, symbols: tuple[str, ...], tape_path: Callable[[str], Path]
) -> None:
    watch = Watch()
    plan = FaultPlan.parse("checksum=20,noresub,fconns=1")
    async with ExchangeServer(tape_path(tape), speed=4, loop=True, faults=plan) as server:
        feed = make_feed(
            server,
            watch,
            venue,
            symbols,
            options=fast_options(resync_timeout=0.3, resubscribe_attempts=2),
        )
        async with Running(feed):
            await until(lambda: len(watch.kinds(Connected)) >= 2, "a new connection")
            await until(lambda: all_live(feed), "every book live")
    assert {e.reason for e in watch.kinds(SyncLost)} == {"checksum"}
    assert feed.stats.resubscribes == 2
    assert feed.stats.resync_timeouts == 2
    assert feed.stats.replaced_connections == 1
    assert "resubscribes brought no fresh book" in watch.kinds(Disconnected)[0].reason


async def test_a_venue_refusing_a_symbol_ends_run(tape_path: Callable[[str], Path]) -> None:
    watch = Watch()
    async with ExchangeServer(tape_path(KRAKEN), speed=4, loop=True) as server:
        feed = make_feed(server, watch, "kraken", ("WAVES/EUR", "NOPE/USD"))
        with pytest.raises(SubscriptionRejectedError) as caught:
            await asyncio.wait_for(feed.run(), TIMEOUT)
    assert caught.value.symbol == "NOPE/USD"
    assert "NOPE/USD" in str(caught.value)
    assert feed.health()["NOPE/USD"].state == "failed"
    assert feed.stats.connections == 1


# -- outages, foreign symbols ------------------------------------------------------------------


async def test_during_an_outage_the_book_says_it_is_disconnected(
    tape_path: Callable[[str], Path],
) -> None:
    path = tape_path(COINM)
    symbols = tape_symbols(path)
    watch = Watch()
    async with coinm_running(path, watch, "close=1006@200,refuse=2s@close", symbols=symbols) as (
        _server,
        feed,
    ):
        await until(lambda: bool(watch.kinds(Disconnected)), "the drop")
        view = feed.book(symbols[0])
        assert view.state == "disconnected"
        assert feed.health()[symbols[0]].state == "connecting"
        await until(lambda: all_live(feed), "every book live again")
        assert feed.book(symbols[0]).state == "live"
    assert feed.stats.connect_failures >= 1


async def test_frames_for_symbols_nobody_subscribed_are_counted_and_dropped(
    tape_path: Callable[[str], Path],
) -> None:
    path = tape_path(COINM)
    symbols = tape_symbols(path)[:3]
    watch = Watch(clean_books(path))
    async with coinm_running(path, watch, "foreign=500", symbols=symbols) as (server, feed):
        await until(lambda: all_live(feed), "every book live")
        await until(lambda: feed.stats.unsubscribed_frames > 200, "foreign frames")
        session = feed.session
        assert session is not None
        assert sorted(session.symbols()) == sorted(symbols)
    assert server.stats.snapshot_requests == len(symbols)
    assert watch.wrong == []


# -- slow consumers ---------------------------------------------------------------------------


async def test_a_blocking_callback_with_conflate_sees_only_fresh_books(
    tape_path: Callable[[str], Path],
) -> None:
    path = tape_path(COINM)
    symbols = tape_symbols(path)
    watch = Watch(clean_books(path))

    def slow(update: BookUpdate) -> None:
        watch.on_book(update)
        time.sleep(0.02)

    async with ExchangeServer(path, speed=8, loop=True, live=True) as server:
        feed = make_feed(server, watch, "binance-coinm", symbols, on_book=slow, conflate=True)
        async with Running(feed):
            await until(lambda: sum(watch.updates.values()) >= 100, "a hundred callbacks")
            stopped_at = time.monotonic()
            feed.stop()
            assert feed.session is not None
        # stop() is honoured although frames keep coming faster than they are consumed: the
        # backlog is not worked through first (it used to take as long as the backlog).
        assert time.monotonic() - stopped_at < 10
    assert feed.dispatcher.stats.conflated + feed.dispatcher.stats.flushes > 0
    assert watch.wrong == []


async def test_an_async_callback_on_a_lock_stays_bounded(tape_path: Callable[[str], Path]) -> None:
    path = tape_path(COINM)
    symbols = tape_symbols(path)
    lock = asyncio.Lock()
    seen: list[int] = []
    tasks: list[int] = []

    async def on_book(update: BookUpdate) -> None:
        async with lock:
            await asyncio.sleep(0.005)
            seen.append(update.seq or 0)
            tasks.append(len(asyncio.all_tasks()))

    watch = Watch()
    async with ExchangeServer(path, speed=8, loop=True, live=True) as server:
        feed = make_feed(server, watch, "binance-coinm", symbols, on_book=on_book, async_queue=64)
        async with Running(feed):
            await until(lambda: len(seen) >= 200, "two hundred callbacks")
    assert feed.dispatcher.stats.queued_high_water <= 64
    assert max(tasks) < 30


async def test_a_consumer_falling_behind_is_measured_and_warned(
    tape_path: Callable[[str], Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "lobfeed.dispatch")
    path = tape_path(COINM)
    symbols = tape_symbols(path)
    watch = Watch()

    def slow(update: BookUpdate) -> None:
        watch.on_book(update)
        time.sleep(0.02)

    async with ExchangeServer(path, speed=8, loop=True, live=True) as server:
        feed = make_feed(server, watch, "binance-coinm", symbols, on_book=slow, lag_warning=0.3)
        async with Running(feed):
            await until(lambda: feed.dispatcher.stats.lag_warnings >= 1, "a lag warning")
            lags = [h.lag_ns for h in feed.health().values() if h.lag_ns is not None]
    # ts_ns is stamped when a frame is read, so it cannot show this; the exchange clock does.
    assert max(lags) > 300_000_000
    assert any("behind" in r.getMessage() for r in caplog.records)


async def test_a_symbol_waiting_long_for_its_snapshot_keeps_a_bounded_buffer(
    tape_path: Callable[[str], Path],
) -> None:
    path = tape_path(COINM)
    symbols = tape_symbols(path)
    busiest = Counter(s for s, _ in clean_books(path)).most_common(1)[0][0]
    watch = Watch(clean_books(path))
    async with coinm_running(
        path,
        watch,
        f"rest=slow:2s@1,restsym={busiest}",
        symbols=symbols,
        speed=8,
        options=fast_options(max_buffer_bytes=4096),
    ) as (_server, feed):
        await until(lambda: all_live(feed), "every book live")
        session = feed.session
        assert session is not None
        counters = session.counters(busiest)
    # The oldest deltas went while the snapshot was awaited, counted; the book still came.
    assert counters["buffer_dropped"] > 0
    assert feed.health()[busiest].dropped >= counters["buffer_dropped"]
    assert watch.wrong == []
