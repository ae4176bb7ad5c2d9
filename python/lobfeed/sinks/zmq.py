"""ZeroMQ fan-out: :class:`ZmqSink` publishes a feed, :class:`Subscriber` reads it.

``zmq://HOST:PORT`` is two sockets of the publisher, after ZeroMQ's "Clone" pattern:

- ``PORT``: an XPUB socket sending every message as ``[topic, payload]`` (topics in
  :mod:`lobfeed.sinks.wire`). Each subscriber has its own queue of at most ``hwm`` messages
  in ZeroMQ; a subscriber that falls that far behind loses the newest messages, alone: the
  feed never waits and the other subscribers are not touched. Every message is numbered per
  stream, so the reader counts exactly what it lost (``Subscriber.stats()["missed"]``).
- ``PORT + 1``: a ROUTER socket answering snapshot requests with the newest book message of
  every book (and delta) stream under the asked prefixes, then an ``END``.

Every ``heartbeat`` seconds each stream also gets a ``beat`` message carrying its count so far:
a reader that lost the last messages of a stream learns it then (not only with the stream's
next message), and a quiet publisher is told from a dead one. Readers never hand beats out.

A reader joins in three steps so that no update falls between the snapshot and the stream:
it subscribes to its topics and to a topic of its own, ``hello.<token>.``; the publisher,
which sees subscriptions on its XPUB socket in the order the reader sent them, answers that
one with a ``hello`` message, proving that the reader's other subscriptions are in place;
only then does the reader ask for the snapshot. Updates numbered up to the snapshot's are
dropped, later ones applied: the reader is whole whenever it starts, and again after the
publisher restarts (its subscriptions, the hello among them, reach the new publisher, which
answers with a new ``pub`` id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, cast
from urllib.parse import urlsplit

import zmq
import zmq.asyncio

from lobfeed.exceptions import ConfigError, WireFormatError
from lobfeed.sinks import wire

log = logging.getLogger(__name__)

#: Messages queued per subscriber before ZeroMQ drops that subscriber's newest ones.
DEFAULT_HWM = 100_000
HELLO = b"hello."
SNAP = b"SNAP"
END = b"END"


def _readable(sock: zmq.Socket[bytes]) -> bool:
    """Whether a message waits (reading EVENTS also re-arms the socket's FD)."""
    return bool(cast(int, sock.getsockopt(zmq.EVENTS)) & zmq.POLLIN)


def parse_url(url: str) -> tuple[str, int]:
    """``zmq://HOST:PORT`` -> ``(HOST, PORT)``; PORT 0 lets the publisher pick."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "zmq" or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise ConfigError(
            f"{url!r} is not a ZeroMQ address; write zmq://HOST:PORT (the snapshot socket is "
            "PORT+1; PORT 0 picks free ports when publishing)"
        )
    return parts.hostname, port


class ZmqSink(wire.WireSink):
    """Publishes books (top ``depth`` levels per update), trades, candles, quotes and sync
    and status events on ``zmq://HOST:PORT`` (see the module's docstring).

    ``hwm`` is each subscriber's queue in messages; ``linger`` the seconds ``close`` gives
    queued messages to leave. After ``start``, ``url`` is the address readers connect to
    (with the port picked when 0 was asked for).
    """

    name = "zmq"

    def __init__(
        self,
        url: str,
        *,
        venue: str | None = None,
        depth: int = wire.DEFAULT_DEPTH,
        deltas: bool = False,
        hwm: int = DEFAULT_HWM,
        linger: float = 2.0,
        heartbeat: float = 1.0,
    ) -> None:
        super().__init__(venue=venue, depth=depth, deltas=deltas)
        if heartbeat <= 0:
            raise ConfigError(f"heartbeat {heartbeat}: seconds between beats, > 0")
        self.heartbeat_interval = heartbeat
        self._beat_timer: asyncio.TimerHandle | None = None
        self.host, self.port = parse_url(url)
        if hwm < 1:
            raise ConfigError(f"hwm {hwm}: a subscriber queue holds at least 1 message")
        self.hwm = hwm
        self.linger = linger
        self._ctx: zmq.Context[zmq.Socket[bytes]] | None = None
        self._pub: zmq.Socket[bytes] | None = None
        self._snap: zmq.Socket[bytes] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._check_due = False
        self.sent = 0
        self.dropped = 0
        self.joins = 0
        self.snapshots = 0
        self.snapshot_failures = 0

    @property
    def url(self) -> str:
        return f"zmq://{self.host}:{self.port}"

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self._ctx = ctx
        try:
            self._pub, self._snap = self._bind(ctx)
        except BaseException:
            ctx.destroy(linger=0)
            raise
        self._loop.add_reader(self._pub.FD, self._read_subscriptions)
        self._loop.add_reader(self._snap.FD, self._read_requests)
        # Events that came before the readers were added raise no new edge on the FDs.
        self._read_subscriptions()
        self._read_requests()
        self._beat_timer = self._loop.call_later(self.heartbeat_interval, self._beat)
        log.info("publishing on %s (snapshots on port %d)", self.url, self.port + 1)

    def _bind(self, ctx: zmq.Context[zmq.Socket[bytes]]) -> tuple[zmq.Socket[bytes], ...]:
        attempts = 50 if self.port == 0 else 1
        for _ in range(attempts):
            pub = ctx.socket(zmq.XPUB)
            pub.setsockopt(zmq.SNDHWM, self.hwm)
            pub.setsockopt(zmq.LINGER, int(self.linger * 1000))
            snap = ctx.socket(zmq.ROUTER)
            snap.setsockopt(zmq.ROUTER_MANDATORY, 1)
            snap.setsockopt(zmq.SNDHWM, 0)
            snap.setsockopt(zmq.LINGER, 0)
            try:
                if self.port == 0:
                    port = pub.bind_to_random_port(f"tcp://{self.host}")
                else:
                    port = self.port
                    pub.bind(f"tcp://{self.host}:{port}")
                snap.bind(f"tcp://{self.host}:{port + 1}")
            except zmq.ZMQError as exc:
                pub.close(linger=0)
                snap.close(linger=0)
                if self.port == 0 and exc.errno == zmq.EADDRINUSE:
                    continue  # the port above the one picked is taken: pick again
                raise ConfigError(
                    f"cannot publish on {self.url} (ports {self.port} and {self.port + 1}): "
                    f"{exc.strerror}"
                ) from None
            self.port = port
            return pub, snap
        raise ConfigError(f"found no two free neighbouring ports on {self.host}")

    # -- the hot path ---------------------------------------------------------------

    def _send(self, stream: wire.Stream, payload: bytes, msg_id: str | None) -> None:
        pub = self._pub
        if pub is None:
            raise ConfigError("ZmqSink: start() it before the feed runs")
        try:
            pub.send(stream.name, zmq.SNDMORE | zmq.NOBLOCK)
            pub.send(payload, zmq.NOBLOCK)
            self.sent += 1
        except zmq.Again:
            self.dropped += 1
        if not self._check_due:
            # A send may take the edge of the socket's FD with it: look for subscriptions
            # once this loop iteration's sends are done.
            self._check_due = True
            assert self._loop is not None
            self._loop.call_soon(self._read_subscriptions)

    def _name(self, channel: str, venue: str, symbol: str | None) -> bytes:
        return wire.zmq_topic(channel, venue, symbol)

    def heartbeat(self) -> None:
        """Sends every stream's ``beat`` now (the timer does it every ``heartbeat`` s)."""
        pub = self._pub
        if pub is None:
            return
        for stream in self._streams.values():
            beat = self._head(wire.BEAT, stream.venue, stream.symbol, None, None, time.time_ns())
            beat["n"] = stream.n
            try:
                pub.send(stream.name, zmq.SNDMORE | zmq.NOBLOCK)
                pub.send(wire.encode(beat), zmq.NOBLOCK)
            except zmq.Again:
                pass
        self._read_subscriptions()

    def _beat(self) -> None:
        self.heartbeat()
        if self._loop is not None and self._pub is not None:
            self._beat_timer = self._loop.call_later(self.heartbeat_interval, self._beat)

    # -- joins and snapshots ----------------------------------------------------------

    def _read_subscriptions(self) -> None:
        self._check_due = False
        pub = self._pub
        if pub is None:
            return
        while _readable(pub):
            frame = pub.recv(zmq.NOBLOCK)
            if frame[:1] == b"\x01" and frame[1:].startswith(HELLO):
                # The reader's earlier subscriptions are in place: tell it so.
                self.joins += 1
                hello = {"v": wire.VERSION, "type": "hello", "pub": self.pub_id}
                pub.send(frame[1:], zmq.SNDMORE | zmq.NOBLOCK)
                pub.send(wire.encode(hello), zmq.NOBLOCK)

    def _read_requests(self) -> None:
        snap = self._snap
        if snap is None:
            return
        while _readable(snap):
            frames = snap.recv_multipart(zmq.NOBLOCK)
            if len(frames) < 3 or frames[1] != SNAP:
                continue
            self._answer(snap, frames[0], frames[2], frames[3:])

    def _answer(
        self, snap: zmq.Socket[bytes], peer: bytes, request: bytes, prefixes: list[bytes]
    ) -> None:
        replies: list[tuple[bytes, bytes]] = []
        for stream in self._streams.values():
            if not any(stream.name.startswith(p) for p in prefixes):
                continue
            if stream.channel == wire.BOOK and stream.last is not None:
                replies.append((stream.name, stream.last))
            elif stream.channel == wire.DELTA:
                reset = self.delta_snapshot(stream)
                if reset is not None:
                    replies.append((stream.name, reset))
        end = {"v": wire.VERSION, "type": "end", "pub": self.pub_id, "count": len(replies)}
        try:
            for topic, payload in replies:
                snap.send_multipart([peer, topic, payload], zmq.NOBLOCK)
            snap.send_multipart([peer, END, request, wire.encode(end)], zmq.NOBLOCK)
            self.snapshots += 1
        except zmq.ZMQError as exc:
            # Gone, or not reading: it asks again when its request times out.
            self.snapshot_failures += 1
            log.info("snapshot to a reader not sent: %s", exc.strerror)

    async def close(self) -> None:
        if self._beat_timer is not None:
            self._beat_timer.cancel()
        if self._loop is not None:
            for sock in (self._pub, self._snap):
                if sock is not None and not sock.closed:
                    self._loop.remove_reader(sock.FD)
        for sock in (self._pub, self._snap):
            if sock is not None:
                sock.close()
        self._pub = self._snap = None
        if self._ctx is not None:
            # term() waits up to ``linger`` for queued messages to leave.
            await asyncio.to_thread(self._ctx.term)
            self._ctx = None

    def stats(self) -> dict[str, int]:
        return {
            "published": self.published,
            "sent": self.sent,
            "dropped": self.dropped,
            "joins": self.joins,
            "snapshots": self.snapshots,
            "snapshot_failures": self.snapshot_failures,
        }


class Subscriber:
    """Reads a :class:`ZmqSink` from ``zmq://HOST:PORT``, whole from the start::

        async with Subscriber("zmq://127.0.0.1:5555", ["book.binance.BTCUSDT"]) as sub:
            async for message in sub:
                print(message["symbol"], message["bids"][0])

    ``topics`` are ``CHANNEL[.VENUE[.SYMBOL]]`` filters (``*``: everything). Each message is
    the wire map (:mod:`lobfeed.sinks.wire`). The first book of each stream comes from the
    publisher's snapshot (``snapshot=False``: from the stream only); delta streams are
    assembled into ``book`` messages unless ``assemble=False``. ``hwm`` is this reader's
    receive queue in messages; ``request_timeout`` the seconds before a snapshot request
    is sent again.
    """

    def __init__(
        self,
        url: str,
        topics: Iterable[str] = ("*",),
        *,
        snapshot: bool = True,
        assemble: bool = True,
        hwm: int = DEFAULT_HWM,
        request_timeout: float = 5.0,
    ) -> None:
        host, port = parse_url(url)
        if port == 0:
            raise ConfigError(f"{url!r}: a reader needs the publisher's port, not 0")
        self.url = url
        self.filters = [wire.Filter.parse(t) for t in topics] or [wire.Filter(None)]
        self.snapshot = snapshot
        self.assemble = assemble
        self.hwm = hwm
        self.request_timeout = request_timeout
        self._endpoints = (f"tcp://{host}:{port}", f"tcp://{host}:{port + 1}")
        self._ctx: zmq.Context[zmq.Socket[bytes]] | None = None
        self._sub: zmq.Socket[bytes] | None = None
        self._req: zmq.Socket[bytes] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._hello = HELLO + os.urandom(8).hex().encode() + b"."
        self._pub: int | None = None
        #: Snapshot requests not yet answered: id -> (loop time sent, prefixes).
        self._pending: dict[bytes, tuple[float, list[bytes]]] = {}
        self._held: list[list[bytes]] = []
        self._ready: deque[dict[str, Any]] = deque()
        self._last_n: dict[bytes, int] = {}
        self._books: dict[bytes, tuple[dict[str, str], dict[str, str]]] = {}
        self._joined = False
        self._requests = 0
        self.received = 0
        self.missed = 0
        self.unreadable = 0
        self.snapshot_messages = 0
        self.resyncs = 0

    async def __aenter__(self) -> Subscriber:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self._ctx = ctx
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.RCVHWM, self.hwm)
        sub.setsockopt(zmq.LINGER, 0)
        sub.connect(self._endpoints[0])
        for f in self.filters:
            sub.setsockopt(zmq.SUBSCRIBE, f.zmq_prefix())
        # Last: its answer proves the subscriptions above are in place at the publisher.
        sub.setsockopt(zmq.SUBSCRIBE, self._hello)
        req = ctx.socket(zmq.DEALER)
        req.setsockopt(zmq.LINGER, 0)
        req.connect(self._endpoints[1])
        self._sub, self._req = sub, req
        for sock in (sub, req):
            self._loop.add_reader(sock.FD, self._wake.set)

    async def close(self) -> None:
        for sock in (self._sub, self._req):
            if sock is not None:
                if self._loop is not None:
                    self._loop.remove_reader(sock.FD)
                sock.close(linger=0)
        self._sub = self._req = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    def stats(self) -> dict[str, int]:
        return {
            "received": self.received,
            "missed": self.missed,
            "unreadable": self.unreadable,
            "snapshot_messages": self.snapshot_messages,
            "resyncs": self.resyncs,
        }

    def __aiter__(self) -> Subscriber:
        return self

    async def __anext__(self) -> dict[str, Any]:
        return await self.recv()

    async def recv(self) -> dict[str, Any]:
        """The next message (waits for it)."""
        await self._pump(lambda: bool(self._ready))
        return self._ready.popleft()

    async def joined(self) -> None:
        """Waits until the publisher answered this reader's hello and its snapshot: from
        then on, everything published reaches this reader."""
        await self._pump(lambda: self._joined and not self._pending)

    async def _pump(self, done: Callable[[], bool]) -> None:
        sub, req, loop = self._sub, self._req, self._loop
        if sub is None or req is None or loop is None:
            raise ConfigError("Subscriber: start() it (or use 'async with') before reading")
        while not done():
            # Reading EVENTS until it says "nothing" re-arms each socket's FD, so the wait
            # below cannot sleep through a message that is already there.
            while _readable(req):
                self._on_reply(req.recv_multipart(zmq.NOBLOCK))
            taken = 0
            while taken < 1024 and _readable(sub):
                self._on_update(sub.recv_multipart(zmq.NOBLOCK))
                taken += 1
            now = loop.time()
            for rid, (sent, prefixes) in list(self._pending.items()):
                if now - sent >= self.request_timeout:
                    del self._pending[rid]
                    log.info("snapshot request unanswered; asking again")
                    self._request(prefixes)
            if done() or taken or _readable(req):
                continue
            self._wake.clear()
            timeout = None
            if self._pending:
                oldest = min(sent for sent, _ in self._pending.values())
                timeout = max(0.0, oldest + self.request_timeout - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _request(self, prefixes: list[bytes]) -> None:
        assert self._req is not None and self._loop is not None
        self._requests += 1
        rid = str(self._requests).encode()
        self._pending[rid] = (self._loop.time(), prefixes)
        try:
            self._req.send_multipart([SNAP, rid, *prefixes], zmq.NOBLOCK)
        except zmq.Again:
            log.info("snapshot request not sent yet; asking again after the timeout")

    def _on_update(self, frames: list[bytes]) -> None:
        if len(frames) != 2:
            self.unreadable += 1
            return
        topic, payload = frames
        if topic.startswith(HELLO):
            if topic == self._hello:  # (a '*' reader also gets the others' hellos)
                self._on_hello(payload)
            return
        if not self._joined:
            return  # sent before this reader's subscriptions were all in place
        if self._pending:
            self._held.append(frames)
            return
        self._take(topic, payload, from_snapshot=False)

    def _on_hello(self, payload: bytes) -> None:
        try:
            hello = wire.decode(payload)
        except WireFormatError as exc:
            self.unreadable += 1
            log.warning("the publisher speaks another format: %s", exc)
            return
        if self._joined and hello["pub"] == self._pub:
            return
        if self._joined:
            log.info("publisher restarted: reading its snapshot again")
            self.resyncs += 1
        self._pub = hello["pub"]
        self._joined = True
        self._last_n.clear()
        self._books.clear()
        self._pending.clear()
        self._held.clear()
        if self.snapshot:
            self._request([f.zmq_prefix() for f in self.filters])

    def _on_reply(self, frames: list[bytes]) -> None:
        if len(frames) == 3 and frames[0] == END:
            if self._pending.pop(frames[1], None) is not None and not self._pending:
                held, self._held = self._held, []
                for topic, payload in held:
                    self._take(topic, payload, from_snapshot=False)
            return
        if len(frames) == 2 and self._pending:
            self.snapshot_messages += 1
            self._take(frames[0], frames[1], from_snapshot=True)

    def _take(self, topic: bytes, payload: bytes, *, from_snapshot: bool) -> None:
        try:
            message = wire.decode(payload)
        except WireFormatError as exc:
            self.unreadable += 1
            if self.unreadable == 1:
                log.warning("%s", exc)
            return
        n = message["n"]
        last = self._last_n.get(topic)
        if message["pub"] != self._pub:
            last = None  # a message of another publisher run: no count to go on from
        if message["type"] == wire.BEAT:
            if last is not None and n > last:
                self.missed += n - last
                if topic in self._books:
                    del self._books[topic]
                    self._resync(topic)
            self._last_n[topic] = max(n, last or 0)
            return
        elif last is not None and not from_snapshot:
            if n <= last:
                return  # the snapshot already held it
            if n > last + 1:
                self.missed += n - last - 1
                if message["type"] == wire.DELTA and self.assemble:
                    self._last_n[topic] = n
                    self._books.pop(topic, None)
                    self._resync(topic)
                    return
        self._last_n[topic] = n
        self.received += 1
        if message["type"] == wire.DELTA and self.assemble:
            book = self._books.get(topic)
            if book is None:
                if not message["reset"]:
                    self._resync(topic)
                    return
                book = self._books[topic] = ({}, {})
            wire.apply_delta(book, message)
            message = wire.book_from_levels(message, book)
        self._ready.append(message)

    def _resync(self, topic: bytes) -> None:
        """A delta stream lost its thread: ask for its book again."""
        self.resyncs += 1
        self._request([topic])
