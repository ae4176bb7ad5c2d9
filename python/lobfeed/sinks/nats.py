"""NATS JetStream fan-out: :class:`NatsSink` publishes a feed, :class:`Subscriber` reads it.

Subjects are ``lobfeed.<channel>.<venue>.<symbol>`` (parts escaped as in
:mod:`lobfeed.sinks.wire`), all in one JetStream stream (``LOBFEED`` unless told) that the
sink creates or updates with its limits: ``max_age`` seconds, ``max_bytes``, the oldest
messages discarded first. Each message whose venue gives a sequence carries a
``Nats-Msg-Id`` made of (channel, venue, symbol, seq, venue timestamp), trades their trade
id: within ``dedup_window`` seconds the stream stores one copy however many publishers (or
restarts of one) send it. The venue timestamp is part of the id because Binance's futures
streams now and then send two different updates ending at the same id.

The sink never waits for NATS on the feed's path: ``on_*`` puts the message in a queue of at
most ``queue`` messages that a task publishes from (acknowledged asynchronously by
JetStream); when the queue is full, ``policy`` drops the oldest (``drop-oldest``, the
default: the freshest data goes on) or the newest message, and ``dropped`` counts them.

Readers use durable consumers (a name; they resume where they were acknowledged after a
restart, on any machine) or ephemeral ones, starting with ``all`` the stream holds, the
``last`` message of every subject (the current books, then every update: the counterpart of
the ZeroMQ snapshot), or only ``new`` ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from lobfeed.exceptions import ConfigError, ConnectError, WireFormatError
from lobfeed.sinks import wire

log = logging.getLogger(__name__)

SUBJECT_PREFIX = "lobfeed"
DEFAULT_STREAM = "LOBFEED"
DEFAULT_MAX_AGE = 24 * 3600.0
DEFAULT_MAX_BYTES = 1 << 30
DEFAULT_DEDUP_WINDOW = 120.0
DEFAULT_QUEUE = 100_000
POLICIES = ("drop-oldest", "drop-newest")
DELIVER = {
    "all": api.DeliverPolicy.ALL,
    "last": api.DeliverPolicy.LAST_PER_SUBJECT,
    "new": api.DeliverPolicy.NEW,
}


def check_url(url: str) -> str:
    """``nats://HOST:PORT`` as given, or ``ConfigError`` naming the form."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("nats", "tls") or not parts.hostname or port is None:
        raise ConfigError(f"{url!r} is not a NATS address; write nats://HOST:PORT")
    return url


async def connect(url: str, *, name: str, timeout: float = 10.0) -> Client:
    """A connection that reconnects for ever once made; ``ConnectError`` when the server
    cannot be reached within ``timeout`` seconds at first."""

    async def quiet(exc: Exception) -> None:
        log.info("NATS %s: %s", url, exc)

    try:
        return await asyncio.wait_for(
            nats.connect(
                check_url(url),
                name=name,
                connect_timeout=min(5.0, timeout),
                max_reconnect_attempts=-1,
                allow_reconnect=True,
                error_cb=quiet,
            ),
            timeout,
        )
    except (OSError, TimeoutError, nats.errors.NoServersError, nats.errors.TimeoutError) as exc:
        raise ConnectError(
            f"cannot reach NATS at {url} within {timeout:g} s: {exc or type(exc).__name__}",
            url=url,
        ) from None


def stream_config(
    name: str,
    max_age: float = DEFAULT_MAX_AGE,
    max_bytes: int = DEFAULT_MAX_BYTES,
    dedup_window: float = DEFAULT_DEDUP_WINDOW,
) -> api.StreamConfig:
    """The JetStream stream of every ``lobfeed.>`` subject, on disk, oldest dropped first."""
    return api.StreamConfig(
        name=name,
        subjects=[f"{SUBJECT_PREFIX}.>"],
        storage=api.StorageType.FILE,
        retention=api.RetentionPolicy.LIMITS,
        discard=api.DiscardPolicy.OLD,
        max_age=max_age,
        max_bytes=max_bytes,
        duplicate_window=dedup_window,
    )


class NatsSink(wire.WireSink):
    """Publishes a feed to NATS JetStream (see the module's docstring)."""

    name = "nats"

    def __init__(
        self,
        url: str,
        *,
        venue: str | None = None,
        depth: int = wire.DEFAULT_DEPTH,
        deltas: bool = False,
        stream: str = DEFAULT_STREAM,
        max_age: float = DEFAULT_MAX_AGE,
        max_bytes: int = DEFAULT_MAX_BYTES,
        dedup_window: float = DEFAULT_DEDUP_WINDOW,
        queue: int = DEFAULT_QUEUE,
        policy: str = "drop-oldest",
        connect_timeout: float = 10.0,
    ) -> None:
        super().__init__(venue=venue, depth=depth, deltas=deltas)
        self.url = check_url(url)
        if policy not in POLICIES:
            raise ConfigError(f"policy {policy!r}; known: {', '.join(POLICIES)}")
        if queue < 1:
            raise ConfigError(f"queue {queue}: the send queue holds at least 1 message")
        if max_age <= 0 or max_bytes <= 0 or dedup_window <= 0:
            raise ConfigError(
                f"stream limits max_age={max_age}, max_bytes={max_bytes}, "
                f"dedup_window={dedup_window}: each must be > 0"
            )
        if dedup_window > max_age:
            raise ConfigError(
                f"dedup_window {dedup_window} s is longer than max_age {max_age} s: NATS "
                "refuses a duplicate window longer than the messages live"
            )
        self.connect_timeout = connect_timeout
        self.stream_name = stream
        self.max_age = max_age
        self.max_bytes = max_bytes
        self.dedup_window = dedup_window
        self.queue_size = queue
        self.drop_oldest = policy == "drop-oldest"
        self._queue: deque[tuple[str, bytes, str | None]] = deque()
        self._wake = asyncio.Event()
        #: Set while everything queued has been handed to JetStream.
        self._drained = asyncio.Event()
        self._drained.set()
        self._closing = False
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._sender: asyncio.Task[None] | None = None
        self.queued = 0
        self.dropped = 0
        self.acked = 0
        self.duplicates = 0
        self.failed = 0

    async def start(self) -> None:
        self._nc = await connect(self.url, name="lobfeed-publish", timeout=self.connect_timeout)
        self._js = self._nc.jetstream()
        await self._ensure_stream(self._js)
        self._sender = asyncio.create_task(self._send_loop(), name="lobfeed-nats-send")

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        config = stream_config(self.stream_name, self.max_age, self.max_bytes, self.dedup_window)
        try:
            await js.add_stream(config)
        except nats.js.errors.BadRequestError:
            # It exists (another shard made it, or an earlier run): these limits now hold.
            await js.update_stream(config)

    def _name(self, channel: str, venue: str, symbol: str | None) -> str:
        return wire.nats_subject(SUBJECT_PREFIX, channel, venue, symbol)

    def _send(self, stream: wire.Stream, payload: bytes, msg_id: str | None) -> None:
        queue = self._queue
        if len(queue) >= self.queue_size:
            self.dropped += 1
            if not self.drop_oldest:
                return
            queue.popleft()
        queue.append((stream.name, payload, msg_id))
        self.queued += 1
        if len(queue) == 1:
            self._drained.clear()
            self._wake.set()

    async def _send_loop(self) -> None:
        js = self._js
        assert js is not None
        queue = self._queue
        while True:
            if not queue:
                self._drained.set()
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            subject, payload, msg_id = queue.popleft()
            headers = None if msg_id is None else {"Nats-Msg-Id": msg_id}
            try:
                ack = await js.publish_async(subject, payload, headers=headers)
            except (nats.errors.Error, OSError) as exc:
                self.failed += 1
                log.warning("NATS publish failed: %s", exc)
                continue
            ack.add_done_callback(self._on_ack)

    def _on_ack(self, ack: asyncio.Future[api.PubAck]) -> None:
        if ack.cancelled() or ack.exception() is not None:
            self.failed += 1
            return
        if ack.result().duplicate:
            self.duplicates += 1
        else:
            self.acked += 1

    async def flush(self) -> None:
        """Waits until everything queued so far is published and acknowledged."""
        if self._sender is None or self._js is None:
            return
        if self._sender.done():
            await self._sender  # raises what ended it, if anything did
        else:
            await self._drained.wait()
        await self._js.publish_async_completed()

    async def close(self, timeout: float = 30.0) -> None:
        """Publishes what is queued and waits for JetStream's acknowledgements (at most
        ``timeout`` seconds), then closes the connection."""
        self._closing = True
        self._wake.set()
        if self._sender is not None:
            try:
                await asyncio.wait_for(self.flush(), timeout)
            except TimeoutError:
                pending = len(self._queue)
                if self._js is not None:
                    pending += self._js.publish_async_pending()
                log.warning("NATS: %d messages unacknowledged at close", pending)
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
            self._sender = None
        if self._nc is not None:
            await self._nc.close()
            self._nc = None

    def stats(self) -> dict[str, int]:
        return {
            "published": self.published,
            "dropped": self.dropped,
            "acked": self.acked,
            "duplicates": self.duplicates,
            "failed": self.failed,
            "queue": len(self._queue),
        }


class Subscriber:
    """Reads what :class:`NatsSink` publishes, through a JetStream pull consumer::

        async with Subscriber("nats://127.0.0.1:4222", ["book.binance"], durable="strat") as sub:
            async for message in sub:
                ...

    ``topics`` are ``CHANNEL[.VENUE[.SYMBOL]]`` filters (``*``: everything). ``durable``
    names a consumer kept by the server: a reader that stops and starts again with the same
    name goes on after the last message it acknowledged. A message is acknowledged when the
    reader asks for the next one or closes, so each is handed out once when the reader
    closes cleanly; messages fetched but not handed out are given back (NAK) at close.
    ``deliver`` (``all``, ``last``, ``new``) says where a new consumer starts; a durable
    one that exists keeps its own position.
    """

    def __init__(
        self,
        url: str,
        topics: Iterable[str] = ("*",),
        *,
        durable: str | None = None,
        deliver: str = "last",
        stream: str = DEFAULT_STREAM,
        batch: int = 256,
        connect_timeout: float = 10.0,
    ) -> None:
        self.url = check_url(url)
        self.filters = [wire.Filter.parse(t) for t in topics] or [wire.Filter(None)]
        if deliver not in DELIVER:
            raise ConfigError(f"deliver {deliver!r}; known: {', '.join(DELIVER)}")
        if durable is not None and (not durable or any(c in durable for c in ".*> \t")):
            raise ConfigError(
                f"durable consumer name {durable!r}: letters, digits, '-' and '_' only"
            )
        self.durable = durable
        self.deliver = deliver
        self.stream_name = stream
        self.batch = batch
        self.connect_timeout = connect_timeout
        self._nc: Client | None = None
        self._psub: JetStreamContext.PullSubscription | None = None
        self._consumer: str | None = None
        self._fetched: deque[Msg] = deque()
        self._unacked: Msg | None = None
        self._last_n: dict[str, tuple[int, int]] = {}
        self.received = 0
        self.missed = 0
        self.unreadable = 0

    async def __aenter__(self) -> Subscriber:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        self._nc = await connect(self.url, name="lobfeed-sub", timeout=self.connect_timeout)
        js = self._nc.jetstream()
        subjects = [f.nats_subject(SUBJECT_PREFIX) for f in self.filters]
        config = api.ConsumerConfig(
            ack_policy=api.AckPolicy.EXPLICIT,
            deliver_policy=DELIVER[self.deliver],
            filter_subjects=subjects if len(subjects) > 1 else None,
            filter_subject=subjects[0] if len(subjects) == 1 else None,
            max_ack_pending=-1,
        )
        try:
            await js.stream_info(self.stream_name)
        except nats.js.errors.NotFoundError:
            # A reader may start before any publisher: it makes the stream (with the default
            # limits, which the first publisher then sets to its own).
            with contextlib.suppress(nats.js.errors.BadRequestError):
                await js.add_stream(stream_config(self.stream_name))
        self._psub = await js.pull_subscribe(
            subjects[0], durable=self.durable, stream=self.stream_name, config=config
        )

    def stats(self) -> dict[str, int]:
        return {"received": self.received, "missed": self.missed, "unreadable": self.unreadable}

    def __aiter__(self) -> Subscriber:
        return self

    async def __anext__(self) -> dict[str, Any]:
        return await self.recv()

    async def recv(self, timeout: float | None = None) -> dict[str, Any]:
        """The next message; ``timeout`` seconds at most (``TimeoutError``), else waits."""
        psub = self._psub
        if psub is None:
            raise ConfigError("Subscriber: start() it (or use 'async with') before reading")
        if self._unacked is not None:
            await self._unacked.ack()
            self._unacked = None
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            while not self._fetched:
                wait = 5.0 if deadline is None else min(5.0, deadline - loop.time())
                if wait <= 0:
                    raise TimeoutError("no message within the timeout")
                try:
                    self._fetched.extend(await psub.fetch(self.batch, timeout=wait))
                except (TimeoutError, nats.errors.TimeoutError):
                    continue
            msg = self._fetched.popleft()
            message = self._take(msg)
            if message is not None:
                self._unacked = msg
                return message
            await msg.ack()  # unreadable: nothing would ever read it

    def _take(self, msg: Msg) -> dict[str, Any] | None:
        try:
            message = wire.decode(msg.data)
        except WireFormatError as exc:
            self.unreadable += 1
            if self.unreadable == 1:
                log.warning("%s: %s", msg.subject, exc)
            return None
        self.received += 1
        last = self._last_n.get(msg.subject)
        n, pub = message["n"], message["pub"]
        if last is not None and last[1] == pub and n > last[0] + 1:
            self.missed += n - last[0] - 1
        self._last_n[msg.subject] = (n, pub)
        return message

    async def close(self) -> None:
        """Acknowledges the last message handed out, gives back the ones fetched but not
        handed out, and closes."""
        nc = self._nc
        if nc is None:
            return
        try:
            if self._unacked is not None:
                await self._unacked.ack()
                self._unacked = None
            while self._fetched:
                await self._fetched.popleft().nak()
            if self._psub is not None and self.durable is None:
                await self._psub.unsubscribe()
            await nc.flush()
        finally:
            self._nc = None
            await nc.close()
