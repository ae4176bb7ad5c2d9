"""``lobfeed bench latency``: from the server's send to the user's callback, over loopback.

Two processes, so that the client being measured never shares an interpreter (or a GIL) with
the server's pacing work:

- the **server process** runs :class:`PacedExchangeServer`, the local exchange server
  (:class:`lobfeed.testing.server.ExchangeServer`: same websocket paths, same REST depth
  snapshots) with its tape pacing replaced by a fixed rate. It runs on uvloop when installed,
  whatever ``--loop`` says, to keep its own overhead low;
- the **client process** (the ``lobfeed bench`` command) runs one client at a time and drives
  the server through a pipe.

One measurement, for one client at one rate:

1. the client asks the server to *arm* a run: ``count`` depth frames at ``rate`` per second;
2. the client connects and subscribes like any user would. The server sends the frames up to
   the one that bridges the tape's REST snapshot, unpaced, and the client fetches the snapshot
   over REST and syncs (nothing is measured yet);
3. once the client's callback has seen the bridging update it says *go*, and the server sends
   the next ``count`` frames on schedule (frame ``i`` is due ``i / rate`` s after the start;
   with ``--burst``, bursts of ``burst_size`` frames are due back to back). For each frame it
   records ``time.perf_counter_ns()`` right before writing it to the socket;
4. the client records ``time.perf_counter_ns()`` when its callback runs, and the venue's
   update id (``u``); the server's send times come back over the pipe, keyed by the same ids.
   The raw transport client matches frames by order on its connection instead (TCP keeps it).

Both processes read the same clock (``CLOCK_MONOTONIC``) on the same machine, so a latency is
one subtraction. The server writes each frame straight to the socket (a pre-built websocket
frame), so that it can keep 100,000 frames/s where Python's websockets could not; the send time
is taken before that write, and a frame that waits in the server's buffer because the client
reads too slowly counts that wait in its latency. The server never holds frames back for a slow
client, so the latencies do not hide the backlog (no coordinated omission). Each result also
says how late the server itself was against the schedule.

The number of frames is ``rate * duration``, capped by the frames the tape has after the
snapshot (``--tape``; the 2024 COIN-M tape has the most: about 22,900).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import math
import multiprocessing.connection
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from websockets.asyncio.server import ServerConnection

from lobfeed.bench.depth import DepthTape
from lobfeed.testing.profiles.binance import BinanceSubscription
from lobfeed.testing.server import ExchangeServer, LiveStream
from lobfeed.venues import BOOK, Subscription, spec_for

__all__ = [
    "CLIENTS",
    "DEFAULT_RATES",
    "LOOPS",
    "ClientRun",
    "LatencyStats",
    "PacedExchangeServer",
    "ServerProcess",
    "default_clients",
    "latency_stats",
    "run_latency",
]

log = logging.getLogger("lobfeed.bench.latency")

DEFAULT_RATES: Final = (1_000, 10_000, 100_000)
CLIENTS: Final = (
    "lobfeed",
    "cryptofeed",
    "transport",
    "lobfeed_picows",
    "lobfeed_websockets",
    "transport_picows",
)
LOOPS: Final = ("asyncio", "uvloop")

_SPIN_NS: Final = 50_000  # closer to a frame's due time than this, the server spins
_YIELD_EVERY: Final = 32  # frames between yields to the server's loop when behind schedule
_SYNC_TIMEOUT_S: Final = 20.0
_DRAIN_TIMEOUT_S: Final = 10.0


# --------------------------------------------------------------------------------------------
# Server process
# --------------------------------------------------------------------------------------------


def _ws_text_frame(payload: bytes) -> bytes:
    """A server-to-client websocket text frame: FIN, opcode 1, no mask, no extension."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x81, n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x81, 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 127, n)
    return head + payload


def _send(conn: multiprocessing.connection.Connection, message: object) -> None:
    # An event loop watching the pipe (add_reader) may have made it non-blocking (uvloop
    # does); a large message must not fail half-written.
    os.set_blocking(conn.fileno(), True)
    conn.send(message)


def _recv(conn: multiprocessing.connection.Connection) -> Any:
    os.set_blocking(conn.fileno(), True)
    return conn.recv()


@dataclass
class _Plan:
    rate: float
    count: int
    burst: int
    go: asyncio.Event = field(default_factory=asyncio.Event)
    taken: bool = False


class PacedExchangeServer(ExchangeServer):
    """The local exchange server, sending one symbol's depth frames at a fixed rate.

    Only :meth:`_replay` (what one websocket client is sent) differs from
    :class:`ExchangeServer`: REST snapshots, paths and subscriptions are the same.
    """

    def __init__(self, tape_path: str | os.PathLike[str], report: Callable[[object], None]):
        self.depth = DepthTape.open(tape_path)
        super().__init__(tape_path, speed=math.inf)
        self.symbol = self.depth.symbol_list[0]
        mine = [i for i, s in enumerate(self.depth.symbols) if s == self.symbol]
        bridge = self.depth.bridge_index[self.symbol]
        self.sync_indices = [i for i in mine if i <= bridge]
        self.measured_indices = [i for i in mine if i > bridge]
        self.bridge_seq = self.depth.final_ids[bridge]
        self.wire = [_ws_text_frame(f) for f in self.depth.frames]
        self.report = report
        self.plan: _Plan | None = None

    @property
    def stream_key(self) -> str:
        return f"{self.symbol.lower()}@depth"

    def arm(self, rate: float, count: int, burst: int) -> dict[str, Any]:
        count = min(count, len(self.measured_indices))
        self.plan = _Plan(rate, count, max(1, burst))
        measured = self.measured_indices[:count]
        return {
            "symbol": self.symbol,
            "venue": self.depth.venue,
            "sync_frames": len(self.sync_indices),
            "bridge_seq": self.bridge_seq,
            "count": count,
            "first_seq": self.depth.final_ids[measured[0]],
            "last_seq": self.depth.final_ids[measured[-1]],
        }

    async def _replay(self, ws: ServerConnection, live: LiveStream) -> bool:
        try:
            return await self._paced(ws, live)
        except Exception as e:
            self.report(("error", repr(e)))
            raise

    async def _paced(self, ws: ServerConnection, live: LiveStream) -> bool:
        plan = self.plan
        sub = live.subscription
        if (
            plan is None
            or plan.taken
            or not isinstance(sub, BinanceSubscription)
            or not sub.combined
            or self.stream_key not in sub.streams
        ):
            log.warning("unexpected connection %s: nothing armed for it", ws.request)
            await ws.wait_closed()
            return False
        plan.taken = True
        transport = ws.transport
        write = transport.write
        for i in self.sync_indices:
            write(self.wire[i])
        await plan.go.wait()

        indices = self.measured_indices[: plan.count]
        wire = [self.wire[i] for i in indices]
        interval_ns = 1e9 / plan.rate
        due_offsets = [int((k // plan.burst) * plan.burst * interval_ns) for k in range(len(wire))]
        send_ns = [0] * len(wire)
        clock = time.perf_counter_ns
        sleep = time.sleep
        start = clock() + 1_000_000
        behind = 0
        for k, frame in enumerate(wire):
            due = start + due_offsets[k]
            wait = due - clock()
            if wait > 0:
                if transport.get_write_buffer_size():
                    await asyncio.sleep(0)  # let the loop push out what the socket did not take
                    wait = due - clock()
                if wait > _SPIN_NS:
                    sleep((wait - _SPIN_NS // 2) / 1e9)  # blocking: nothing else is due
                while clock() < due:
                    pass
            else:
                behind += 1
                if behind % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            send_ns[k] = clock()
            write(frame)
        self.report(
            (
                "sent",
                {
                    "seqs": [self.depth.final_ids[i] for i in indices],
                    "send_ns": send_ns,
                    "due_ns": [start + d for d in due_offsets],
                },
            )
        )
        await ws.wait_closed()
        return False


def _tight_timer_slack() -> None:
    """Ask Linux to wake this process's sleeps within 1 us of their time, not the default 50 us.

    The server then sleeps between frames down to short gaps instead of spinning, and leaves
    the CPU to the client (the machine may have only two cores).
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        pr_set_timerslack = 29
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_timerslack, 1_000, 0, 0, 0)


def _serve(tape_path: str, conn: multiprocessing.connection.Connection) -> None:
    """The server process: serves until told to quit (or the client process goes away)."""
    _tight_timer_slack()
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
        loop_name = "uvloop"
    except ImportError:
        runner = asyncio.Runner()
        loop_name = "asyncio"

    async def main() -> None:
        server = PacedExchangeServer(tape_path, lambda message: _send(conn, message))
        loop = asyncio.get_running_loop()
        quit_ = asyncio.Event()

        def on_control() -> None:
            while conn.poll():
                try:
                    message = _recv(conn)
                except EOFError:
                    quit_.set()
                    return
                kind = message[0]
                if kind == "arm":
                    try:
                        _send(conn, ("armed", server.arm(*message[1:])))
                    except Exception as e:
                        _send(conn, ("error", repr(e)))
                elif kind == "go":
                    if server.plan is not None:
                        server.plan.go.set()
                elif kind == "quit":
                    quit_.set()

        async with server:
            loop.add_reader(conn.fileno(), on_control)
            _send(
                conn,
                (
                    "listening",
                    {
                        "ws_url": server.ws_url,
                        "rest_url": server.rest_url,
                        "loop": loop_name,
                        "symbol": server.symbol,
                        "venue": server.depth.venue,
                        "available": len(server.measured_indices),
                        "tape": str(tape_path),
                    },
                ),
            )
            await quit_.wait()
            loop.remove_reader(conn.fileno())

    with runner:
        runner.run(main())


class ServerProcess:
    """The server process and its control pipe, seen from the client process.

    The server is ``python -m lobfeed.bench.latency --serve TAPE --fd N``: a fresh interpreter
    (not a fork of this one), handed one end of a socket pair for control messages.
    """

    def __init__(self, tape_path: str | os.PathLike[str]) -> None:
        parent, child = socket.socketpair()
        self.conn = multiprocessing.connection.Connection(parent.detach())
        fd = child.fileno()
        self.process = subprocess.Popen(
            [sys.executable, "-m", __name__, "--serve", str(tape_path), "--fd", str(fd)],
            pass_fds=(fd,),
        )
        child.close()
        if not self.conn.poll(60):
            self.close()
            raise RuntimeError("the bench server did not start")
        kind, self.info = _recv(self.conn)
        if kind != "listening":
            self.close()
            raise RuntimeError(f"the bench server failed to start: {self.info}")
        self.ws_url: str = self.info["ws_url"]
        self.rest_url: str = self.info["rest_url"]

    def arm(self, rate: float, count: int, burst: int) -> dict[str, Any]:
        _send(self.conn, ("arm", rate, count, burst))
        if not self.conn.poll(30):
            raise RuntimeError("the bench server did not answer")
        kind, armed = _recv(self.conn)
        if kind != "armed":
            raise RuntimeError(f"the bench server answered {kind}: {armed}")
        result: dict[str, Any] = armed
        return result

    def go(self) -> None:
        _send(self.conn, ("go",))

    async def sent(self, timeout: float) -> dict[str, Any]:
        """Wait (without a thread) for the server's send times of the armed run."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        fd = self.conn.fileno()

        def readable() -> None:
            if future.done() or not self.conn.poll():
                return
            kind, body = _recv(self.conn)
            if kind == "sent":
                future.set_result(body)
            else:
                future.set_exception(RuntimeError(f"the bench server failed: {body}"))

        loop.add_reader(fd, readable)
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            loop.remove_reader(fd)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            _send(self.conn, ("quit",))
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            self.process.wait(5)
        self.conn.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------


@dataclass
class Recorder:
    """What a client's callback writes down: the update id and the time, per book update."""

    bridge_seq: int
    last_seq: int
    seqs: list[int] = field(default_factory=list)
    times: list[int] = field(default_factory=list)
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, seq: int | None, t: int) -> None:
        if seq is None:
            return
        self.seqs.append(seq)
        self.times.append(t)
        if seq >= self.bridge_seq:
            self.synced.set()
        if seq >= self.last_seq:
            self.done.set()


@dataclass(frozen=True)
class Target:
    ws_url: str
    rest_url: str
    venue: str
    symbol: str
    sync_frames: int
    count: int

    @property
    def stream_url(self) -> str:
        sub = Subscription(symbols=(self.symbol,), channels=frozenset({BOOK}))
        return spec_for(self.venue).connect_url(self.ws_url, sub)


class Client(abc.ABC):
    """One client under test: start, then stop when measured; it fills its recorder."""

    by_order = False
    """True: the client records every frame it receives, matched to send times by order."""

    def __init__(self, target: Target, recorder: Recorder) -> None:
        self.target = target
        self.recorder = recorder

    @abc.abstractmethod
    async def start(self) -> None:
        """Connects and starts recording."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Disconnects and releases what `start` opened."""


class LobfeedClient(Client):
    """``lobfeed.Feed``, as a user runs it: the default transport (picows when installed)."""

    transport = "auto"
    busy_poll = False

    async def start(self) -> None:
        from lobfeed._native import BookUpdate
        from lobfeed.aio.feed import Feed

        record = self.recorder.record
        clock = time.perf_counter_ns

        def on_book(update: BookUpdate) -> None:
            t = clock()
            update.book.best_bid()
            record(update.seq, t)

        t = self.target
        self.feed = Feed(
            t.venue,
            [t.symbol],
            channels=(BOOK,),
            on_book=on_book,
            ws_url=t.ws_url,
            rest_url=t.rest_url,
            reconnect=False,
            transport=self.transport,
            busy_poll=self.busy_poll,
        )
        self.task = asyncio.ensure_future(self.feed.run())

    async def stop(self) -> None:
        self.feed.stop()
        await asyncio.gather(self.task, return_exceptions=True)


class CryptofeedClient(Client):
    """cryptofeed's Binance feed, pointed at the local server."""

    async def start(self) -> None:
        from lobfeed.bench.peers import live_feed

        record = self.recorder.record
        clock = time.perf_counter_ns

        def on_book(seq: int, book: Any) -> None:
            t = clock()
            book.book.bids.index(0)
            record(seq, t)

        t = self.target
        self.feed = live_feed(t.venue, [t.symbol], t.ws_url, t.rest_url, on_book)
        self.feed.start()

    async def stop(self) -> None:
        await self.feed.stop()


class TransportClient(Client):
    """The websockets library alone: the same ``connect`` as lobfeed's Feed, a recv loop."""

    by_order = True

    async def start(self) -> None:
        from websockets.asyncio.client import connect

        recorder = self.recorder
        times = recorder.times
        clock = time.perf_counter_ns
        sync_frames = self.target.sync_frames
        total = sync_frames + self.target.count

        async def loop() -> None:
            async with connect(
                self.target.stream_url, open_timeout=10, close_timeout=1, compression=None
            ) as ws:
                self.ws = ws
                recv = ws.recv
                while len(times) < total:
                    await recv(decode=False)
                    times.append(clock())
                    if len(times) == sync_frames:
                        recorder.synced.set()
                recorder.done.set()
                await ws.wait_closed()

        self.task = asyncio.ensure_future(loop())

    async def stop(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


class PicowsTransportClient(Client):
    """picows (a websocket client written in Cython) alone: a frame callback, nothing else."""

    by_order = True

    async def start(self) -> None:
        from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

        recorder = self.recorder
        times = recorder.times
        clock = time.perf_counter_ns
        sync_frames = self.target.sync_frames
        total = sync_frames + self.target.count

        class Listener(WSListener):
            def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
                if frame.msg_type != WSMsgType.TEXT:
                    return
                frame.get_payload_as_bytes()
                times.append(clock())
                n = len(times)
                if n == sync_frames:
                    recorder.synced.set()
                elif n == total:
                    recorder.done.set()

        self.transport, _ = await ws_connect(Listener, self.target.stream_url)

    async def stop(self) -> None:
        self.transport.disconnect()
        await self.transport.wait_disconnected()


class PicowsLobfeedClient(LobfeedClient):
    """``lobfeed.Feed(transport="picows")``: the same Feed on the Cython websocket client."""

    transport = "picows"


class BusyPollLobfeedClient(LobfeedClient):
    """``lobfeed.Feed(busy_poll=True)``: the loop polls instead of sleeping between frames."""

    busy_poll = True


class WebsocketsLobfeedClient(LobfeedClient):
    """``lobfeed.Feed(transport="websockets")``: the fallback client."""

    transport = "websockets"


_CLIENT_CLASSES: Final[dict[str, type[Client]]] = {
    "lobfeed": LobfeedClient,
    "cryptofeed": CryptofeedClient,
    "transport": TransportClient,
    "lobfeed_picows": PicowsLobfeedClient,
    "lobfeed_busy_poll": BusyPollLobfeedClient,
    "lobfeed_websockets": WebsocketsLobfeedClient,
    "transport_picows": PicowsTransportClient,
}


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def default_clients() -> list[str]:
    """lobfeed (its default transport), lobfeed with ``busy_poll=True``, cryptofeed,
    transport (websockets alone), and when picows is installed (lobfeed's default then)
    lobfeed on websockets and picows alone."""
    names = ["lobfeed", "lobfeed_busy_poll", "cryptofeed", "transport"]
    if _installed("picows"):
        names += ["lobfeed_websockets", "transport_picows"]
    return names


# --------------------------------------------------------------------------------------------
# One measurement, and statistics
# --------------------------------------------------------------------------------------------


@dataclass
class ClientRun:
    """Latencies of one client at one rate (nanoseconds, one per measured frame received)."""

    client: str
    loop: str
    rate: float
    burst: int
    latencies_ns: list[int]
    expected: int
    send_lag_ns: list[int]
    send_span_ns: int
    client_span_ns: int = 0
    """From the first frame's send to the last callback."""
    repeat: int = 0

    @property
    def missing(self) -> int:
        return self.expected - len(self.latencies_ns)

    @property
    def client_rate(self) -> float:
        """Frames per second the client handled: the send rate while it keeps up, its
        capacity once it does not (frames received over first send to last callback)."""
        if self.client_span_ns <= 0 or len(self.latencies_ns) < 2:
            return float("nan")
        return len(self.latencies_ns) * 1e9 / self.client_span_ns

    @property
    def send_rate(self) -> float:
        """Frames per second the server actually sent at."""
        if self.send_span_ns <= 0 or self.expected < 2:
            return float("nan")
        return (self.expected - 1) * 1e9 / self.send_span_ns


@dataclass(frozen=True)
class LatencyStats:
    p50_us: float
    p90_us: float
    p99_us: float
    p999_us: float
    max_us: float
    mean_us: float
    frames: int

    def as_dict(self) -> dict[str, float]:
        return {
            "p50_us": round(self.p50_us, 1),
            "p90_us": round(self.p90_us, 1),
            "p99_us": round(self.p99_us, 1),
            "p999_us": round(self.p999_us, 1),
            "max_us": round(self.max_us, 1),
            "mean_us": round(self.mean_us, 1),
            "frames": self.frames,
        }


def latency_stats(values_ns: Sequence[int]) -> LatencyStats:
    """Percentiles of latencies: an HDR histogram (3 significant digits) when ``hdrhistogram``
    is installed, else exact percentiles of the sorted values."""
    if not values_ns:
        nan = float("nan")
        return LatencyStats(nan, nan, nan, nan, nan, nan, 0)
    try:
        from hdrh.histogram import HdrHistogram
    except ImportError:
        HdrHistogram = None
    mean_us = sum(values_ns) / len(values_ns) / 1e3
    if HdrHistogram is not None:
        hist = HdrHistogram(1, 600_000_000_000, 3)
        for v in values_ns:
            hist.record_value(max(1, v))
        p = hist.get_value_at_percentile
        return LatencyStats(
            p(50) / 1e3,
            p(90) / 1e3,
            p(99) / 1e3,
            p(99.9) / 1e3,
            hist.get_max_value() / 1e3,
            mean_us,
            len(values_ns),
        )
    ordered = sorted(values_ns)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1)] / 1e3

    return LatencyStats(at(50), at(90), at(99), at(99.9), ordered[-1] / 1e3, mean_us, len(ordered))


async def _measure(
    server: ServerProcess, client_name: str, loop_name: str, rate: float, count: int, burst: int
) -> ClientRun:
    armed = server.arm(rate, count, burst)
    target = Target(
        server.ws_url,
        server.rest_url,
        armed["venue"],
        armed["symbol"],
        armed["sync_frames"],
        armed["count"],
    )
    recorder = Recorder(armed["bridge_seq"], armed["last_seq"])
    client = _CLIENT_CLASSES[client_name](target, recorder)
    await client.start()
    try:
        try:
            await asyncio.wait_for(recorder.synced.wait(), _SYNC_TIMEOUT_S)
        except TimeoutError:
            raise RuntimeError(
                f"{client_name} did not sync within {_SYNC_TIMEOUT_S:.0f}s"
            ) from None
        server.go()
        sent = await server.sent(timeout=armed["count"] / rate + 60)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(recorder.done.wait(), _DRAIN_TIMEOUT_S)
    finally:
        await client.stop()
    send_ns: list[int] = sent["send_ns"]
    due_ns: list[int] = sent["due_ns"]
    latencies: list[int] = []
    last_at = 0
    if client.by_order:
        received = recorder.times[target.sync_frames :][: len(send_ns)]
        latencies = [r - s for r, s in zip(received, send_ns, strict=False)]
        last_at = max(received, default=0)
    else:
        at: dict[int, int] = {}
        for seq, t in zip(recorder.seqs, recorder.times, strict=True):
            at.setdefault(seq, t)
        for seq, s in zip(sent["seqs"], send_ns, strict=True):
            received_at = at.get(seq)
            if received_at is not None:
                latencies.append(received_at - s)
                last_at = max(last_at, received_at)
    return ClientRun(
        client=client_name,
        loop=loop_name,
        rate=rate,
        burst=burst,
        latencies_ns=latencies,
        expected=len(send_ns),
        send_lag_ns=[s - d for s, d in zip(send_ns, due_ns, strict=True)],
        send_span_ns=send_ns[-1] - send_ns[0] if send_ns else 0,
        client_span_ns=last_at - send_ns[0] if send_ns and last_at else 0,
    )


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if name == "asyncio":
        return None
    if name == "uvloop":
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
        return factory
    raise ValueError(f"unknown event loop {name!r} (known: {', '.join(LOOPS)})")


def _run_on(loop_name: str, coro: Coroutine[Any, Any, ClientRun]) -> ClientRun:
    with asyncio.Runner(loop_factory=_loop_factory(loop_name)) as runner:
        return runner.run(coro)


def run_latency(
    tape_path: str | os.PathLike[str],
    *,
    rates: Sequence[float] = DEFAULT_RATES,
    clients: Sequence[str] | None = None,
    loops: Sequence[str] = ("asyncio",),
    duration: float = 5.0,
    burst: int = 1,
    repeats: int = 3,
    warmup_frames: int = 500,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], list[ClientRun]]:
    """Measure every client at every rate on every loop, ``repeats`` times.

    Each client first does one short untimed run (``warmup_frames`` at the lowest rate). Then
    the repeats go round all rates, and within a rate all clients, in an order that rotates:
    noise from elsewhere on the machine falls on a different client each time.
    Returns (server info, every timed run).
    """
    names = list(clients) if clients is not None else default_clients()
    for name in names:
        if name not in _CLIENT_CLASSES:
            raise ValueError(f"unknown client {name!r} (known: {', '.join(CLIENTS)})")
    for loop_name in loops:
        _loop_factory(loop_name)  # fails early on an unknown or missing loop
    runs: list[ClientRun] = []
    with ServerProcess(Path(tape_path)) as server:
        info = dict(server.info)
        combos = [(loop_name, name) for loop_name in loops for name in names]
        if warmup_frames > 0:
            rate = min(rates)
            for loop_name, name in combos:
                _run_on(loop_name, _measure(server, name, loop_name, rate, warmup_frames, burst))
            if progress is not None:
                progress(f"warm-up done ({warmup_frames} frames per client)")
        turn = 0
        for repeat in range(repeats):
            for rate in rates:
                count = max(2, int(rate * duration))
                shift = turn % len(combos)
                turn += 1
                for loop_name, name in combos[shift:] + combos[:shift]:
                    run = _run_on(loop_name, _measure(server, name, loop_name, rate, count, burst))
                    run.repeat = repeat
                    runs.append(run)
                    if progress is not None:
                        stats = latency_stats(run.latencies_ns)
                        progress(
                            f"repeat {repeat + 1}/{repeats} rate {rate:g}/s "
                            f"{name}@{loop_name}: {stats.frames} frames, "
                            f"p50 {stats.p50_us:.0f} us, p99 {stats.p99_us:.0f} us, "
                            f"sent at {run.send_rate:,.0f}/s"
                        )
    return info, runs


def result_key(run: ClientRun, loops: Sequence[str]) -> str:
    """The client's name on the first ``--loop``, ``name@loop`` on any further one."""
    return run.client if run.loop == loops[0] else f"{run.client}@{run.loop}"


def _median(values: Sequence[float]) -> float:
    finite = sorted(v for v in values if math.isfinite(v))
    if not finite:
        return float("nan")
    mid = len(finite) // 2
    return finite[mid] if len(finite) % 2 else (finite[mid - 1] + finite[mid]) / 2


def summarize(runs: Sequence[ClientRun]) -> dict[str, Any]:
    """One client at one rate over its repeats: the median of each statistic.

    A repeat disturbed by other work on the machine then moves no figure on its own.
    ``frames`` and ``missing`` are totals over the repeats.
    """
    stats = [latency_stats(run.latencies_ns) for run in runs]
    lags = [latency_stats([max(0, v) for v in run.send_lag_ns]) for run in runs]
    entry: dict[str, Any] = {}
    for key in ("p50_us", "p90_us", "p99_us", "p999_us", "max_us", "mean_us"):
        entry[key] = round(_median([getattr(s, key) for s in stats]), 1)
    send_rate = _median([run.send_rate for run in runs])
    client_rate = _median([run.client_rate for run in runs])
    entry.update(
        frames=sum(s.frames for s in stats),
        missing=sum(run.missing for run in runs),
        repeats=len(runs),
        send_rate=round(send_rate) if math.isfinite(send_rate) else None,
        client_rate=round(client_rate) if math.isfinite(client_rate) else None,
        server_lag_p99_us=round(_median([lag.p99_us for lag in lags]), 1),
    )
    return entry


def results_json(
    info: dict[str, Any], runs: Sequence[ClientRun], loops: Sequence[str], burst: int
) -> dict[str, Any]:
    rates_order = list(dict.fromkeys(run.rate for run in runs))
    # Rows in a fixed order (rates as given, each loop's clients in order), whatever order
    # the runs took turns in.
    clients = list(dict.fromkeys(run.client for run in runs))
    ordered = sorted(
        runs,
        key=lambda r: (list(loops).index(r.loop), clients.index(r.client), r.repeat),
    )
    grouped: dict[str, dict[str, list[ClientRun]]] = {}
    for run in sorted(runs, key=lambda r: rates_order.index(r.rate)):
        grouped.setdefault(f"{run.rate:g}", {})
    for run in ordered:
        grouped[f"{run.rate:g}"].setdefault(result_key(run, loops), []).append(run)
    rates = {
        rate: {key: summarize(group) for key, group in clients.items()}
        for rate, clients in grouped.items()
    }
    return {
        "rates": rates,
        "tape": Path(info["tape"]).name,
        "venue": info["venue"],
        "symbol": info["symbol"],
        "loops": list(loops),
        "server_loop": info["loop"],
        "burst": burst,
        "repeats": max((run.repeat for run in runs), default=0) + 1,
    }


def _server_main(argv: Sequence[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="lobfeed bench latency: the server process")
    parser.add_argument("--serve", required=True, metavar="TAPE")
    parser.add_argument("--fd", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    conn = multiprocessing.connection.Connection(args.fd)
    try:
        _serve(args.serve, conn)
    except Exception as e:
        with contextlib.suppress(OSError):
            _send(conn, ("error", repr(e)))
        raise


if __name__ == "__main__":
    _server_main()
