"""A local exchange that replays a tape over loopback.

:class:`ExchangeServer` listens on one port for both websocket upgrades and plain HTTP GETs.
Every websocket client gets its own replay of the tape's ``recv`` records (all connections of
the tape, in file order), filtered by what that client subscribed to and paced by the recorded
timestamps; REST requests are answered from the tape's ``http`` records.

What a venue's URLs, subscribe messages and REST endpoints look like is a venue *profile*: a
:class:`VenueProfile` subclass registered with :func:`register_profile`.  The server core knows
nothing venue-specific.  A venue is added by writing a module
``lobfeed/testing/profiles/<family>.py`` (``<family>`` being the venue name up to its first ``-``)
that defines and registers a profile: the server imports it the first time a tape of that venue
is served.  Profiles ship for ``binance`` (spot, ``binance-usdm``, ``binance-coinm``), ``bybit``,
``okx``, ``kraken`` (ws v1), ``coinbase``, ``gemini`` (v2) and ``bitfinex``.

:class:`FaultPlan` injects the failures a feed handler must survive: rate-limited snapshots,
dropped connections, gaps, garbage and oversized frames.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import email.utils
import http
import importlib
import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Generic, TypeVar
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from lobfeed.exceptions import UnknownVenueError
from lobfeed.tape import Tape, TapeRecord

__all__ = [
    "MALFORMED_FRAME",
    "ExchangeServer",
    "FaultPlan",
    "LiveStream",
    "RestRequest",
    "RestResponse",
    "ServerStats",
    "Subscription",
    "VenueProfile",
    "profile_class_for",
    "register_profile",
    "run_server",
]

log = logging.getLogger(__name__)

MALFORMED_FRAME: Final = '{"stream":"x","data":{'
"""The garbage text frame sent by :attr:`FaultPlan.malformed_after`."""

_YIELD_EVERY: Final = 256
_MIN_SLEEP_S: Final = 0.0005  # frames due sooner than this are sent without sleeping


# --------------------------------------------------------------------------------------------
# Public data types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Failures to inject, for tests of a client's error handling."""

    rest_429_first_n: int = 0
    """The first N snapshot requests are answered 429 with ``Retry-After: 1``."""
    drop_after_frames: int | None = None
    """Abort the TCP connection (no close frame) of the first connection after N frames."""
    drop_frames: frozenset[int] = frozenset()
    """Indices, per connection, over the frames it would send, of frames to leave out."""
    malformed_after: int | None = None
    """Send :data:`MALFORMED_FRAME` once, on the first connection, after N frames."""
    oversized_frame_bytes: int | None = None
    """Send once, first thing on the first connection, a text frame of this many bytes."""


@dataclass(slots=True)
class ServerStats:
    """Counters of what the server did (mutated as it runs)."""

    connections: int = 0
    """Websocket connections accepted."""
    active_connections: int = 0
    frames_sent: int = 0
    """Recorded frames sent, over all connections (injected faults not included)."""
    rest_requests: int = 0
    snapshot_requests: int = 0
    """REST depth-snapshot requests, rate-limited ones included."""
    rejected_requests: int = 0
    """REST requests answered with an error status (4xx, 5xx)."""
    faults_injected: int = 0


class Subscription:
    """What one websocket client subscribed to.  Profiles subclass it with their own state.

    Replay starts once :attr:`ready` is true (at connect time for URL subscriptions, after the
    first subscribe message otherwise).
    """

    def __init__(self) -> None:
        self.ready = False


@dataclass(eq=False, slots=True)
class LiveStream:
    """One connected websocket client, as the server sees it."""

    index: int
    """0 for the server's first connection, 1 for the next, ..."""
    subscription: Subscription
    position_ns: int | None = None
    """Recorded ``ts_ns`` of the last frame sent to this client (the replay position)."""


@dataclass(frozen=True, slots=True)
class RestRequest:
    """A plain HTTP request, as handed to :meth:`VenueProfile.rest`."""

    method: str
    path: str
    """The path without the query string."""
    query: Mapping[str, Sequence[str]]
    streams: Sequence[LiveStream]
    """The connected websocket clients, to relate the request to a replay position."""

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass(frozen=True, slots=True)
class RestResponse:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json"

    @classmethod
    def json(
        cls, status: int, obj: object, headers: tuple[tuple[str, str], ...] = ()
    ) -> RestResponse:
        return cls(status, orjson.dumps(obj), headers)


# --------------------------------------------------------------------------------------------
# Venue profiles
# --------------------------------------------------------------------------------------------

SubT = TypeVar("SubT", bound=Subscription)


class VenueProfile(abc.ABC, Generic[SubT]):
    """How one venue's websocket and REST API look, for replaying its tapes.

    A profile is made once per server from the tape.  :attr:`frames` are the tape's ``recv``
    records, in file order; the index handed to :meth:`frame_for` is a position in that list.
    """

    venues: ClassVar[tuple[str, ...]] = ()
    """Tape header venue names this profile serves."""

    settle_s: ClassVar[float] = 0.0
    """Once a subscription is ready, wait until the client has sent nothing for this long
    before replaying.  Venues subscribed by several messages set it, so that every channel the
    client asks for right after connecting is known before the first frame goes out (a real
    venue answers each subscription with its own snapshot; a replay cannot)."""

    def __init__(self, tape: Tape) -> None:
        self.tape = tape
        self.venue = tape.header.venue
        self.frames: list[TapeRecord] = list(tape.iter_records("recv"))

    @abc.abstractmethod
    def subscribe_path(self, path: str) -> SubT | None:
        """Parse a websocket request path (with its query); ``None`` refuses it with 404."""

    @abc.abstractmethod
    def on_message(self, sub: SubT, text: str) -> list[str]:
        """Apply a text message from the client to ``sub``; return the frames to answer."""

    @abc.abstractmethod
    def frame_for(self, sub: SubT, index: int, record: TapeRecord) -> str | None:
        """The text to send for recorded frame ``index``, or ``None`` if ``sub`` excludes it."""

    def greeting(self, sub: SubT) -> list[str]:
        """Frames the venue sends as soon as a websocket is open (before any subscription)."""
        return []

    def is_snapshot_request(self, path: str) -> bool:
        """Whether a REST path is a book snapshot (these are counted and can be rate-limited)."""
        return False

    def rest(self, request: RestRequest) -> RestResponse:
        """Answer a plain HTTP request."""
        return RestResponse.json(404, {"error": "not found", "path": request.path})

    def rate_limited(self, request: RestRequest) -> RestResponse:
        """The answer to a snapshot request refused by :attr:`FaultPlan.rest_429_first_n`."""
        return RestResponse.json(429, {"error": "too many requests"}, (("Retry-After", "1"),))

    def example_urls(self, ws_url: str, rest_url: str) -> list[tuple[str, str]]:
        """(label, URL) pairs worth printing for a user of this tape."""
        return []


_PROFILES: dict[str, type[VenueProfile[Any]]] = {}
_ProfileT = TypeVar("_ProfileT", bound=type[VenueProfile[Any]])


def register_profile(cls: _ProfileT) -> _ProfileT:
    """Class decorator: serve the venues in ``cls.venues`` with ``cls``."""
    if not cls.venues:
        raise ValueError(f"{cls.__name__} names no venues")
    for venue in cls.venues:
        _PROFILES[venue] = cls
    return cls


def profile_class_for(venue: str) -> type[VenueProfile[Any]]:
    """The profile class serving ``venue``, importing ``lobfeed.testing.profiles.<family>``."""
    cls = _PROFILES.get(venue)
    if cls is None:
        family = re.sub(r"[^a-z0-9_]", "_", venue.split("-", 1)[0].lower())
        module = f"{__package__}.profiles.{family}"
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if not (exc.name and module.startswith(exc.name)):
                raise
        cls = _PROFILES.get(venue)
    if cls is None:
        known = ", ".join(sorted(_PROFILES))
        raise UnknownVenueError(f"no replay profile for venue {venue!r} (known: {known})")
    return cls


# --------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------


def _oversized_frame(size: int) -> str:
    """A valid JSON text frame of exactly ``size`` bytes (just filler when ``size`` is tiny)."""
    head, tail = '{"stream":"lobfeed.oversized","data":{"pad":"', '"}}'
    if size < len(head) + len(tail):
        return "x" * size
    return head + "x" * (size - len(head) - len(tail)) + tail


def _http_response(answer: RestResponse) -> Response:
    try:
        reason = http.HTTPStatus(answer.status).phrase
    except ValueError:
        reason = "Unknown"
    headers = Headers()
    headers["Date"] = email.utils.formatdate(usegmt=True)
    headers["Content-Type"] = answer.content_type
    headers["Content-Length"] = str(len(answer.body))
    headers["Connection"] = "close"
    for name, value in answer.headers:
        headers[name] = value
    return Response(answer.status, reason, headers, answer.body)


class ExchangeServer:
    """Replay a tape as a local exchange, on one port for websocket and REST.

    Use it as ``async with ExchangeServer(tape_or_path) as srv:`` and point the client at
    :attr:`ws_url` / :attr:`rest_url`.  ``speed`` divides the recorded gaps between frames
    (``float("inf")``: as fast as the client reads); ``loop`` restarts the tape at its end instead
    of closing the connection with code 1000.

    Each connection's clock starts when its subscription is known, at the tape's first ``recv``
    record: a stream whose first frame was recorded 10 s into the tape arrives 10 s / ``speed``
    after subscribing.  ``faults`` (a :class:`FaultPlan`) injects failures.  ``profile``
    overrides the venue profile chosen from the tape header's venue.
    """

    def __init__(
        self,
        tape: Tape | str | os.PathLike[str],
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float = 1.0,
        loop: bool = False,
        faults: FaultPlan | None = None,
        *,
        profile: VenueProfile[Any] | None = None,
    ) -> None:
        if not speed > 0:  # also refuses NaN
            raise ValueError(f"speed must be positive, got {speed!r}")
        self.tape = tape if isinstance(tape, Tape) else Tape.open(tape)
        self.host = host
        self.speed = float(speed)
        self.loop = loop
        self.faults = faults if faults is not None else FaultPlan()
        self.profile: VenueProfile[Any] = (
            profile if profile is not None else profile_class_for(self.tape.venue)(self.tape)
        )
        self.stats = ServerStats()
        self._requested_port = port
        self._server: Server | None = None
        self._live: set[LiveStream] = set()
        self._unfinished: set[LiveStream] = set()
        self._done = asyncio.Event()
        self._next_index = 0
        frames = self.profile.frames
        self._t0_ns = frames[0].ts_ns if frames else 0
        span = frames[-1].ts_ns - self._t0_ns if frames else 0
        # A lap lasts the recorded span plus one average gap, so laps do not overlap.
        self._lap_ns = span + (span // (len(frames) - 1) if len(frames) > 1 else 1_000_000)

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the server is already started")
        self._server = await serve(
            self._handle,
            self.host,
            self._requested_port,
            process_request=self._process_request,
            compression=None,
            server_header="lobfeed-exchange-server",
        )

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def __aenter__(self) -> ExchangeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def wait_done(self) -> None:
        """Wait until at least one client connected and every client finished streaming."""
        await self._done.wait()

    # -- addresses ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def _netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self._netloc}"

    @property
    def rest_url(self) -> str:
        return f"http://{self._netloc}"

    def describe(self) -> list[str]:
        """Lines telling a user what is served and where."""
        frames = self.profile.frames
        span = (frames[-1].ts_ns - frames[0].ts_ns) / 1e9 if frames else 0.0
        speed = "max" if math.isinf(self.speed) else f"{self.speed:g}x"
        lines = [
            f"lobfeed exchange server: {self.tape.path.name} (venue {self.tape.venue}, "
            f"{len(frames)} frames over {span:.1f} s), speed {speed}"
            + (", looping" if self.loop else ""),
            f"  websocket: {self.ws_url}",
            f"  rest:      {self.rest_url}",
        ]
        lines += [
            f"  {label}: {url}"
            for label, url in self.profile.example_urls(self.ws_url, self.rest_url)
        ]
        return lines

    # -- HTTP ---------------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if "websocket" in request.headers.get("Upgrade", "").lower():
            if self.profile.subscribe_path(request.path) is None:
                return _http_response(RestResponse.json(404, {"error": "no such stream path"}))
            return None
        return self._answer_rest(request)

    def _answer_rest(self, request: Request) -> Response:
        self.stats.rest_requests += 1
        url = urlsplit(request.path)
        rest_request = RestRequest(
            method=str(getattr(request, "method", "GET")),
            path=url.path,
            query=parse_qs(url.query),
            streams=tuple(self._live),
        )
        if rest_request.method != "GET":
            answer = RestResponse.json(405, {"error": "only GET is served"})
        elif self.profile.is_snapshot_request(rest_request.path):
            self.stats.snapshot_requests += 1
            if self.stats.snapshot_requests <= self.faults.rest_429_first_n:
                self.stats.faults_injected += 1
                answer = self.profile.rate_limited(rest_request)
            else:
                answer = self.profile.rest(rest_request)
        else:
            answer = self.profile.rest(rest_request)
        if answer.status >= 400:
            self.stats.rejected_requests += 1
        return _http_response(answer)

    # -- websocket ----------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        sub = self.profile.subscribe_path(ws.request.path)
        if sub is None:  # refused in _process_request already
            await ws.close(1008, "unknown path")
            return
        live = LiveStream(self._next_index, sub)
        self._next_index += 1
        self.stats.connections += 1
        self.stats.active_connections += 1
        self._live.add(live)
        self._unfinished.add(live)
        self._done.clear()
        ready = asyncio.Event()
        activity = asyncio.Event()
        if sub.ready:
            ready.set()
        streamer = asyncio.create_task(self._stream(ws, live, ready, activity))
        try:
            for frame in self.profile.greeting(sub):
                await ws.send(frame)
            async for message in ws:
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                for reply in self.profile.on_message(sub, text):
                    await ws.send(reply)
                activity.set()
                if sub.ready:
                    ready.set()
        except ConnectionClosed:
            pass
        finally:
            if not streamer.done():
                streamer.cancel()
            await asyncio.wait([streamer])
            if not streamer.cancelled() and streamer.exception() is not None:
                log.error("replay failed", exc_info=streamer.exception())
            self._live.discard(live)
            self.stats.active_connections -= 1
            self._finished(live)

    def _finished(self, live: LiveStream) -> None:
        self._unfinished.discard(live)
        if not self._unfinished and self.stats.connections:
            self._done.set()

    async def _stream(
        self, ws: ServerConnection, live: LiveStream, ready: asyncio.Event, activity: asyncio.Event
    ) -> None:
        try:
            await ready.wait()
            settle = self.profile.settle_s
            # At most 20 settle periods: a client that never stops talking still gets its data.
            for _ in range(20 if settle > 0 else 0):
                activity.clear()
                try:
                    await asyncio.wait_for(activity.wait(), settle)
                except TimeoutError:
                    break
            if await self._replay(ws, live):
                await ws.close(1000, "end of tape")
        except ConnectionClosed:
            pass
        finally:
            self._finished(live)

    async def _replay(self, ws: ServerConnection, live: LiveStream) -> bool:
        """Send the tape to one client; False if the connection was dropped on purpose."""
        faults = self.faults
        first = live.index == 0
        frames = self.profile.frames
        frame_for = self.profile.frame_for
        sub = live.subscription
        stats = self.stats
        paced = math.isfinite(self.speed)
        scale = 1e-9 / self.speed
        clock = asyncio.get_running_loop().time
        start = clock()
        would_send = sent = since_yield = lap = 0

        if first and faults.oversized_frame_bytes is not None:
            await ws.send(_oversized_frame(faults.oversized_frame_bytes))
            stats.faults_injected += 1
        if first and await self._inject_after(ws, 0):
            return False
        while True:
            sent_in_lap = 0
            offset_ns = lap * self._lap_ns - self._t0_ns
            for index, record in enumerate(frames):
                since_yield += 1
                text = frame_for(sub, index, record)
                if text is None:
                    if since_yield >= _YIELD_EVERY:
                        since_yield = 0
                        await asyncio.sleep(0)
                    continue
                position = would_send
                would_send += 1
                if position in faults.drop_frames:
                    continue
                if paced:
                    delay = start + (offset_ns + record.ts_ns) * scale - clock()
                    if delay > _MIN_SLEEP_S:
                        since_yield = 0
                        await asyncio.sleep(delay)
                if since_yield >= _YIELD_EVERY:
                    since_yield = 0
                    await asyncio.sleep(0)
                live.position_ns = record.ts_ns
                await ws.send(text)
                sent += 1
                sent_in_lap += 1
                stats.frames_sent += 1
                if first and await self._inject_after(ws, sent):
                    return False
            if not self.loop:
                return True
            lap += 1
            if not sent_in_lap and not paced:
                await asyncio.sleep(0.05)  # nothing matches yet: do not spin

    async def _inject_after(self, ws: ServerConnection, sent: int) -> bool:
        """Faults of the first connection due after ``sent`` frames; True if it was dropped."""
        faults = self.faults
        if faults.malformed_after is not None and sent == faults.malformed_after:
            await ws.send(MALFORMED_FRAME)
            self.stats.faults_injected += 1
        if faults.drop_after_frames is not None and sent >= faults.drop_after_frames:
            self.stats.faults_injected += 1
            transport = ws.transport
            clock = asyncio.get_running_loop().time
            deadline = clock() + 2.0
            # Let what was sent reach the client, then cut the TCP connection: no close frame.
            while transport.get_write_buffer_size() and clock() < deadline:
                await asyncio.sleep(0.001)
            transport.abort()
            return True
        return False


def run_server(
    tape_path: str,
    host: str = "127.0.0.1",
    port: int = 0,
    speed: float = 1.0,
    loop: bool = False,
) -> None:
    """Serve a tape until Ctrl-C (or, without ``loop``, until every client has finished)."""
    tape = Tape.open(tape_path)

    async def main() -> None:
        async with ExchangeServer(tape, host, port, speed, loop) as srv:
            for line in srv.describe():
                print(line, flush=True)
            if loop:
                print("  (looping; Ctrl-C to stop)", flush=True)
                await asyncio.Event().wait()
            else:
                print("  (stops when every client has finished; Ctrl-C to stop)", flush=True)
                await srv.wait_done()
                print("all clients finished", flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
