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

:class:`~lobfeed.testing.faults.FaultPlan` injects the failures a feed handler must survive
(closes, stalls, refusals, handshake statuses, REST snapshot faults, frame faults), reproducibly;
the plan, its spec grammar and the frame mutators live in :mod:`lobfeed.testing.faults`, and the
server only decides when each one is due.  With ``live=True`` every client shares one clock, as
on a real exchange.
"""

from __future__ import annotations

import abc
import asyncio
import bisect
import collections
import contextlib
import dataclasses
import email.utils
import http
import importlib
import logging
import math
import os
import random
import re
import socket
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Generic, TypeVar
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from lobfeed.exceptions import ConfigError, FaultSpecError, UnknownVenueError
from lobfeed.tape import Tape, TapeRecord
from lobfeed.testing.faults import MALFORMED_FRAME, ConnectionFaults, FaultPlan, oversized_frame

__all__ = [
    "MALFORMED_FRAME",
    "ExchangeServer",
    "FaultPlan",
    "LiveStream",
    "RestRequest",
    "RestResponse",
    "ServerStats",
    "Subscription",
    "VenueLimits",
    "VenueProfile",
    "profile_class_for",
    "register_profile",
    "run_server",
]

log = logging.getLogger(__name__)

_YIELD_EVERY: Final = 256
_MIN_SLEEP_S: Final = 0.0005  # frames due sooner than this are sent without sleeping
# Close reasons of the server's own closes, by fault kind.
_CLOSE_REASONS: Final[Mapping[str, str]] = {
    "close": "lobfeed fault",
    "lifetime": "connection lifetime",
    "notice-close": "service upgrade",
}


# --------------------------------------------------------------------------------------------
# Public data types
# --------------------------------------------------------------------------------------------


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
    """Faults injected, of every kind."""
    faults: dict[str, int] = field(default_factory=dict)
    """Faults injected, by kind: ``close``, ``lifetime``, ``stall``, ``tcpstall``, ``refuse``,
    ``reset``, ``status``, ``rest-<kind>`` (``rest-429``, ``rest-html``, ...), ``drop``, ``dup``,
    ``reorder``, ``corrupt``, ``checksum``, ``crossed``, ``rewind``, ``hold`` (once per hold),
    ``foreign``, ``noresub``, ``notice`` (a venue maintenance notice sent), ``notice-close`` (the
    close that follows it), and the original plan's ``rest429``, ``cut``, ``malformed``,
    ``oversized``."""

    refused: dict[str, int] = field(default_factory=dict)
    """Connections and requests turned away by a venue limit (see :class:`VenueLimits`), by
    reason: ``url-length`` (414 to a request line over the limit), ``streams`` (handshake
    refused: more streams in the URL than a connection may carry), ``subscribe-streams``
    (a subscribe message refused for the same reason; the connection stays open),
    ``message-rate`` (connection closed for sending too many messages a second),
    ``subscribe-args`` (a subscribe message with more args than one request may carry),
    ``args-length`` (a subscribe message taking the connection's args over their length
    limit)."""
    weight_429s: int = 0
    """REST requests answered 429 for going over the request-weight limit."""
    weight_418s: int = 0
    """REST requests answered 418 (the IP is banned for going on after 429s)."""
    max_weight_used: int = 0
    """The most request weight used within one window."""

    def count(self, kind: str) -> None:
        self.faults_injected += 1
        self.faults[kind] = self.faults.get(kind, 0) + 1


class Subscription:
    """What one websocket client subscribed to.  Profiles subclass it with their own state.

    Replay starts once :attr:`ready` is true (at connect time for URL subscriptions, after the
    first subscribe message otherwise).
    """

    def __init__(self) -> None:
        self.ready = False
        self.limit_hits: list[str] = []
        """Limits this client ran into (a profile appends; the server counts and clears)."""


@dataclass(eq=False, slots=True)
class LiveStream:
    """One connected websocket client, as the server sees it."""

    index: int
    """0 for the server's first connection, 1 for the next, ..."""
    subscription: Subscription
    position_ns: int | None = None
    """Recorded ``ts_ns`` of the last frame sent to this client (the replay position)."""


@dataclass(frozen=True, slots=True)
class VenueLimits:
    """The limits a venue enforces, as the server applies them.  ``None`` or 0: not enforced.

    A profile gives its venue's defaults (:meth:`VenueProfile.default_limits`); each can be
    overridden by an :class:`ExchangeServer` keyword so that tests can shrink them.
    """

    streams_per_connection: int | None = None
    """Streams one websocket connection may carry.  Over it in the URL: the handshake is
    answered 400; a subscribe message that would go over it is answered with an error and
    changes nothing."""
    request_line_bytes: int | None = None
    """Longest HTTP request line (``GET <path> HTTP/1.1\\r\\n``) answered; longer: 414.
    websockets itself answers 414 to request lines over 8,192 bytes, so a larger value has no
    effect."""
    messages_per_s: int | None = None
    """Messages a client may send in any one-second span (rolling); one more closes the
    connection with 1008.  Ping and pong frames are answered by websockets and not counted."""
    rest_weight_limit: int | None = None
    """REST request weight per window, for the whole server (one IP)."""
    rest_window_s: float = 60.0
    """Length of the fixed weight window; windows start at the server's start, back to back."""
    rest_ban_after: int = 3
    """429s answered within one window before the next over-limit request bans the IP (418)."""
    rest_ban_s: float = 120.0
    """How long a ban lasts: every request is answered 418 until it ends."""
    args_per_request: int | None = None
    """Topics one subscribe message may carry (Bybit spot: 10); more: the request is refused
    with the venue's error answer, the connection stays open."""
    args_chars_per_connection: int | None = None
    """Total characters of the topics one connection may be subscribed to (Bybit: 21,000); a
    subscribe message that would go over it is refused the same way."""


@dataclass(frozen=True, slots=True)
class RestRequest:
    """A plain HTTP request, as handed to :meth:`VenueProfile.rest`."""

    method: str
    path: str
    """The path without the query string."""
    query: Mapping[str, Sequence[str]]
    streams: Sequence[LiveStream]
    """The connected websocket clients, to relate the request to a replay position."""
    position_ns: int | None = None
    """In live mode, the server's current position: the recorded ``ts_ns`` the stream is at."""
    host: str | None = None
    """The ``Host`` the client asked for, for answers that point back at this server."""

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
    def on_message(self, sub: SubT, text: str) -> Sequence[str | bytes]:
        """Apply a text message from the client to ``sub``; return the frames to answer (text,
        or bytes sent as binary frames)."""

    @abc.abstractmethod
    def frame_for(self, sub: SubT, index: int, record: TapeRecord) -> str | bytes | None:
        """The frame to send for recorded frame ``index`` (text, or bytes sent as a binary
        frame), or ``None`` if ``sub`` excludes it."""

    rest_methods: ClassVar[frozenset[str]] = frozenset({"GET"})
    """HTTP methods the venue's REST API answers (KuCoin hands out tokens to a POST)."""

    weight_header: ClassVar[str | None] = None
    """Response header telling a client the request weight it used in the current window."""

    limits: VenueLimits = VenueLimits()
    """The limits in force (set by the server from :meth:`default_limits` and its keywords)."""

    def default_limits(self) -> VenueLimits:
        """The venue's own limits; none by default."""
        return VenueLimits()

    def stream_count(self, sub: SubT) -> int:
        """How many streams ``sub`` carries, for :attr:`VenueLimits.streams_per_connection`."""
        return 0

    def rest_weight(self, request: RestRequest) -> int:
        """The request weight of a REST request."""
        return 1

    def too_many_streams(self, sub: SubT, limit: int) -> RestResponse:
        """The handshake answer to a URL asking for more than ``limit`` streams."""
        count = self.stream_count(sub)
        msg = f"too many streams: {count}, at most {limit} per connection"
        return RestResponse.json(400, {"error": msg})

    def set_clones(self, clones: int) -> None:
        """Serve every recorded symbol also under ``clones`` aliases (see the Binance profile)."""
        if clones:
            raise ConfigError(f"the {self.venue} profile cannot serve symbol clones")

    def notice_frame(self) -> str | None:
        """The venue's "this connection will soon be closed for maintenance" frame (sent by the
        ``notice=N`` fault); ``None``: the venue sends none, and a plan asking for one is
        refused."""
        return None

    def greeting(self, sub: SubT) -> list[str]:
        """Frames the venue sends as soon as a websocket is open (before any subscription)."""
        return []

    def is_snapshot_request(self, path: str) -> bool:
        """Whether a REST path is a book snapshot (these are counted and can be rate-limited)."""
        return False

    def rest(self, request: RestRequest) -> RestResponse:
        """Answer a plain HTTP request."""
        return RestResponse.json(404, {"error": "not found", "path": request.path})

    def rate_limited(
        self, request: RestRequest, status: int = 429, retry_after: int = 1
    ) -> RestResponse:
        """The answer to a snapshot request a :class:`FaultPlan` refuses with 429 or 418."""
        headers = (("Retry-After", str(retry_after)),)
        return RestResponse.json(status, {"error": "too many requests"}, headers)

    def error_body(self, request: RestRequest) -> bytes:
        """The venue's error JSON for a bad symbol (sent with 200 by ``rest=venue-error``)."""
        return b'{"error":"invalid symbol"}'

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


_HTML_PAGE: Final = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>cloudfront</center>"
    b"</body></html>\n"
)
_STREAM_CHUNK: Final = 256 * 1024
_WRITE_HIGH_WATER: Final = 4 * 1024 * 1024


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _http_response(answer: RestResponse) -> Response:
    headers = Headers()
    headers["Date"] = email.utils.formatdate(usegmt=True)
    headers["Content-Type"] = answer.content_type
    headers["Content-Length"] = str(len(answer.body))
    headers["Connection"] = "close"
    for name, value in answer.headers:
        headers[name] = value
    return Response(answer.status, _reason(answer.status), headers, answer.body)


def _dummy_response() -> Response:
    """Returned to websockets after the connection was taken over; it is never sent."""
    return Response(500, "Internal Server Error", Headers(), b"")


async def _flush_and_abort(transport: asyncio.WriteTransport) -> None:
    """Let what was sent reach the client, then cut the TCP connection: no close frame."""
    clock = asyncio.get_running_loop().time
    deadline = clock() + 2.0
    while transport.get_write_buffer_size() and clock() < deadline:
        await asyncio.sleep(0.001)
    transport.abort()


def _reset(transport: asyncio.Transport) -> None:
    """Close with a TCP RST rather than a FIN."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class _WeightCounter:
    """REST request weight of the whole server (one IP), in fixed windows.

    Windows of ``rest_window_s`` follow each other from the server's start (Binance counts per
    calendar minute: its ``X-MBX-USED-WEIGHT-1M`` falls to 0 at each minute's start).  A request
    that would take the window's weight over the limit is refused with 429 and adds nothing;
    after ``rest_ban_after`` 429s in one window the next over-limit request bans the IP for
    ``rest_ban_s``: every request is then answered 418 until the ban ends.
    """

    def __init__(self, limits: VenueLimits) -> None:
        self.limits = limits
        self.window_start = 0.0
        self.used = 0
        self.max_used = 0
        self.strikes = 0
        self.banned_until: float | None = None

    def start(self, now: float) -> None:
        self.window_start = now
        self.used = self.strikes = 0
        self.banned_until = None

    def charge(self, now: float, weight: int) -> tuple[int, int] | None:
        """Count a request; None if it is served, else (status, Retry-After seconds)."""
        limits = self.limits
        limit = limits.rest_weight_limit
        if not limit:
            return None
        window = limits.rest_window_s
        if now >= self.window_start + window:
            self.window_start += window * math.floor((now - self.window_start) / window)
            self.used = self.strikes = 0
        if self.banned_until is not None:
            if now < self.banned_until:
                return 418, max(1, math.ceil(self.banned_until - now))
            self.banned_until = None
        if self.used + weight <= limit:
            self.used += weight
            self.max_used = max(self.max_used, self.used)
            return None
        if self.strikes >= limits.rest_ban_after:
            self.banned_until = now + limits.rest_ban_s
            return 418, max(1, math.ceil(limits.rest_ban_s))
        self.strikes += 1
        return 429, max(1, math.ceil(self.window_start + window - now))


class ExchangeServer:
    """Replay a tape as a local exchange, on one port for websocket and REST.

    Use it as ``async with ExchangeServer(tape_or_path) as srv:`` and point the client at
    :attr:`ws_url` / :attr:`rest_url`.  ``speed`` divides the recorded gaps between frames
    (``float("inf")``: as fast as the client reads); ``loop`` restarts the tape at its end instead
    of closing the connection with code 1000.

    Each connection's clock starts when its subscription is known, at the tape's first ``recv``
    record: a stream whose first frame was recorded 10 s into the tape arrives 10 s / ``speed``
    after subscribing.  With ``live=True`` there is one clock instead, started with the server:
    a client joins the stream where it stands when the client subscribes (as on a real
    exchange), and a snapshot request is answered as of that position (the Binance profile
    builds the book it serves).  ``live`` needs a finite ``speed``; with ``loop`` the live clock
    wraps around at the tape's end.

    ``faults`` (a :class:`~lobfeed.testing.faults.FaultPlan`) injects failures.  ``profile``
    overrides the venue profile chosen from the tape header's venue.

    ``clones`` serves every recorded symbol also under that many aliases, each a full copy of
    the original's streams and snapshots (profiles that support it: Binance, Bybit).

    The venue's limits (:class:`VenueLimits`, from the profile) are enforced unless
    ``enforce_limits`` is false; each is overridden by its keyword (``None``: the venue's value,
    0: not enforced): ``max_streams``, ``max_request_line``, ``max_messages_per_s``,
    ``rest_weight_limit``, ``rest_window_s``, ``rest_ban_after``, ``rest_ban_s``.
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
        live: bool = False,
        clones: int = 0,
        enforce_limits: bool = True,
        max_streams: int | None = None,
        max_request_line: int | None = None,
        max_messages_per_s: int | None = None,
        rest_weight_limit: int | None = None,
        rest_window_s: float | None = None,
        rest_ban_after: int | None = None,
        rest_ban_s: float | None = None,
    ) -> None:
        if not speed > 0:  # also refuses NaN
            raise ConfigError(f"speed must be positive, got {speed!r}")
        if live and not math.isfinite(speed):
            raise ConfigError("live mode needs a finite speed: its clock is the tape's, scaled")
        self.tape = tape if isinstance(tape, Tape) else Tape.open(tape)
        self.host = host
        self.speed = float(speed)
        self.loop = loop
        self.live = live
        self.faults = faults if faults is not None else FaultPlan()
        self.profile: VenueProfile[Any] = (
            profile if profile is not None else profile_class_for(self.tape.venue)(self.tape)
        )
        if clones < 0:
            raise ConfigError(f"clones must be 0 or more, got {clones!r}")
        self.clones = clones
        self.profile.set_clones(clones)
        if self.faults.notice_after is not None and self.profile.notice_frame() is None:
            raise FaultSpecError(
                f"notice={self.faults.notice_after}: the {self.tape.venue} profile has no "
                "maintenance notice to send"
            )
        limits = self.profile.default_limits() if enforce_limits else VenueLimits()
        overrides: dict[str, Any] = {
            "streams_per_connection": max_streams,
            "request_line_bytes": max_request_line,
            "messages_per_s": max_messages_per_s,
            "rest_weight_limit": rest_weight_limit,
            "rest_window_s": rest_window_s,
            "rest_ban_after": rest_ban_after,
            "rest_ban_s": rest_ban_s,
        }
        limits = dataclasses.replace(
            limits, **{name: value for name, value in overrides.items() if value is not None}
        )
        if not limits.rest_window_s > 0:
            raise ValueError(f"rest_window_s must be positive, got {limits.rest_window_s!r}")
        self.limits = limits
        self.profile.limits = limits
        self.stats = ServerStats()
        self._weight = _WeightCounter(limits)
        self._requested_port = port
        self._port: int | None = None
        self._server: Server | None = None
        self._servers: list[Server] = []
        self._background: set[asyncio.Task[None]] = set()
        self._live: set[LiveStream] = set()
        self._unfinished: set[LiveStream] = set()
        self._done = asyncio.Event()
        self._next_index = 0
        self._upgrade_attempts = 0
        self._counted_snapshots = 0
        self._reset_until: float | None = None
        self._refused = False
        self._clock_start = 0.0
        frames = self.profile.frames
        self._ts = [record.ts_ns for record in frames]
        self._t0_ns = frames[0].ts_ns if frames else 0
        span = frames[-1].ts_ns - self._t0_ns if frames else 0
        # A lap lasts the recorded span plus one average gap, so laps do not overlap.
        self._lap_ns = span + (span // (len(frames) - 1) if len(frames) > 1 else 1_000_000)

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the server is already started")
        await self._listen()
        self._clock_start = asyncio.get_running_loop().time()
        self._weight.start(self._clock_start)
        if self.faults.refuse_s is not None and not self.faults.refuse_after_close:
            self._refuse()

    async def _listen(self) -> None:
        self._server = await serve(
            self._handle,
            self.host,
            self._port if self._port is not None else self._requested_port,
            process_request=self._process_request,
            compression=None,
            server_header="lobfeed-exchange-server",
            # Slow and streamed REST answers are written during the opening handshake.
            open_timeout=None,
        )
        self._servers.append(self._server)
        if self._port is None:
            self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for task in list(self._background):
            task.cancel()
        servers, self._servers, self._server = self._servers, [], None
        for server in servers:
            server.close()
        for server in servers:
            await server.wait_closed()
        self._port = None

    async def __aenter__(self) -> ExchangeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def wait_done(self) -> None:
        """Wait until at least one client connected and every client finished streaming."""
        await self._done.wait()

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- connection refusals --------------------------------------------------------------------

    def _refuse(self) -> None:
        """Start the plan's refusal window (once per server)."""
        if self._refused or self.faults.refuse_s is None:
            return
        self._refused = True
        self.stats.count("refuse")
        duration = self.faults.refuse_s
        if self.faults.refuse_reset:
            self._reset_until = asyncio.get_running_loop().time() + duration
            return
        server = self._server
        if server is not None:
            # Only the listening socket closes: established connections carry on.
            server.server.close()
        self._spawn(self._listen_again(duration))

    async def _listen_again(self, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._port is not None:
            await self._listen()

    def _resetting(self) -> bool:
        return (
            self._reset_until is not None and asyncio.get_running_loop().time() < self._reset_until
        )

    # -- addresses ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the server is not started")
        return self._port

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

    def live_position_ns(self) -> int | None:
        """In live mode, the recorded ``ts_ns`` the server's clock stands at; else None."""
        if not self.live or self._port is None:
            return None
        return self._t0_ns + self._live_offset()[1]

    def _live_offset(self) -> tuple[int, int]:
        """(lap, ns into the lap) of the live clock."""
        elapsed = asyncio.get_running_loop().time() - self._clock_start
        elapsed_ns = int(elapsed * self.speed * 1e9)
        if self.loop:
            lap, offset = divmod(elapsed_ns, self._lap_ns)
            return lap, offset
        return 0, elapsed_ns

    def describe(self) -> list[str]:
        """Lines telling a user what is served and where."""
        frames = self.profile.frames
        span = (frames[-1].ts_ns - frames[0].ts_ns) / 1e9 if frames else 0.0
        speed = "max" if math.isinf(self.speed) else f"{self.speed:g}x"
        lines = [
            f"lobfeed exchange server: {self.tape.path.name} (venue {self.tape.venue}, "
            f"{len(frames)} frames over {span:.1f} s), speed {speed}"
            + (", looping" if self.loop else "")
            + (", live" if self.live else ""),
            f"  websocket: {self.ws_url}",
            f"  rest:      {self.rest_url}",
        ]
        spec = self.faults.spec()
        if spec:
            lines.append(f"  faults:    {spec}")
        if self.clones:
            lines.append(f"  clones:    every symbol also served under {self.clones} aliases")
        limits = self.limits
        shown = [
            f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
            for name, value in dataclasses.asdict(limits).items()
            if value and (limits.rest_weight_limit or not name.startswith("rest_"))
        ]
        if shown:
            lines.append(f"  limits:    {', '.join(shown)}")
        lines += [
            f"  {label}: {url}"
            for label, url in self.profile.example_urls(self.ws_url, self.rest_url)
        ]
        return lines

    # -- HTTP ---------------------------------------------------------------------------------

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        if self._resetting():
            self.stats.count("reset")
            _reset(connection.transport)
            await asyncio.shield(connection.connection_lost_waiter)
            return _dummy_response()
        line_limit = self.limits.request_line_bytes
        if line_limit and len(request.path.encode()) + len("GET  HTTP/1.1\r\n") > line_limit:
            self._refused_for("url-length")
            body = {"error": "request line too long", "limit": line_limit}
            return _http_response(RestResponse.json(414, body))
        if "websocket" in request.headers.get("Upgrade", "").lower():
            sub = self.profile.subscribe_path(request.path)
            if sub is None:
                return _http_response(RestResponse.json(404, {"error": "no such stream path"}))
            stream_limit = self.limits.streams_per_connection
            if stream_limit and self.profile.stream_count(sub) > stream_limit:
                self._refused_for("streams")
                return _http_response(self.profile.too_many_streams(sub, stream_limit))
            self._upgrade_attempts += 1
            plan = self.faults
            status = plan.handshake_status
            if status is not None and (
                plan.handshake_first is None or self._upgrade_attempts <= plan.handshake_first
            ):
                self.stats.count("status")
                headers: tuple[tuple[str, str], ...] = ()
                if status in (418, 429, 503):
                    headers = (("Retry-After", str(plan.retry_after)),)
                body = {"error": _reason(status), "status": status}
                return _http_response(RestResponse.json(status, body, headers))
            return None
        return await self._answer_rest(connection, request)

    async def _answer_rest(self, connection: ServerConnection, request: Request) -> Response:
        self.stats.rest_requests += 1
        url = urlsplit(request.path)
        rest_request = RestRequest(
            method=str(getattr(request, "method", "GET")),
            path=url.path,
            query=parse_qs(url.query),
            streams=tuple(self._live),
            position_ns=self.live_position_ns(),
            host=request.headers.get("Host"),
        )
        plan = self.faults
        answer: RestResponse | None = None
        limited = self._weight.charge(
            asyncio.get_running_loop().time(), self.profile.rest_weight(rest_request)
        )
        self.stats.max_weight_used = self._weight.max_used
        if limited is not None:
            status, retry_after = limited
            if status == 418:
                self.stats.weight_418s += 1
            else:
                self.stats.weight_429s += 1
            answer = self.profile.rate_limited(rest_request, status, retry_after)
        elif rest_request.method not in self.profile.rest_methods:
            allowed = ", ".join(sorted(self.profile.rest_methods))
            answer = RestResponse.json(405, {"error": f"only {allowed} is served"})
        elif self.profile.is_snapshot_request(rest_request.path):
            self.stats.snapshot_requests += 1
            if self.stats.snapshot_requests <= plan.rest_429_first_n:
                self.stats.count("rest429")
                answer = self.profile.rate_limited(rest_request)
            elif self._counts_for_rest_faults(rest_request):
                self._counted_snapshots += 1
                kind = plan.rest_fault_for(self._counted_snapshots)
                if kind == "oversized":
                    self.stats.count("rest-oversized")
                    await self._stream_body(connection, plan.rest_body_bytes)
                    return _dummy_response()
                if kind is not None:
                    self.stats.count(f"rest-{kind}")
                    answer = await self._rest_fault(kind, rest_request)
        if answer is None:
            answer = self.profile.rest(rest_request)
        if answer.status >= 400:
            self.stats.rejected_requests += 1
        header = self.profile.weight_header
        if header is not None and self.limits.rest_weight_limit:
            used = (header, str(self._weight.used))
            answer = dataclasses.replace(answer, headers=(*answer.headers, used))
        return _http_response(answer)

    def _refused_for(self, reason: str) -> None:
        self.stats.refused[reason] = self.stats.refused.get(reason, 0) + 1

    def _counts_for_rest_faults(self, request: RestRequest) -> bool:
        symbol = self.faults.rest_symbol
        if symbol is None:
            return True
        return any(v.upper() == symbol.upper() for vs in request.query.values() for v in vs)

    async def _rest_fault(self, kind: str, request: RestRequest) -> RestResponse:
        plan = self.faults
        if kind in ("429", "418"):
            return self.profile.rate_limited(request, int(kind), plan.retry_after)
        if kind.isdigit():
            status = int(kind)
            return RestResponse.json(status, {"error": _reason(status), "status": status})
        if kind == "slow":
            await asyncio.sleep(plan.rest_delay_s)
            return self.profile.rest(request)
        if kind == "html":
            return RestResponse(200, _HTML_PAGE, content_type="text/html")
        if kind == "truncated":
            answer = self.profile.rest(request)
            return RestResponse(200, answer.body[: max(1, len(answer.body) // 2)])
        if kind == "venue-error":
            return RestResponse(200, self.profile.error_body(request))
        raise AssertionError(f"unhandled rest fault {kind!r}")

    async def _stream_body(self, connection: ServerConnection, size: int) -> None:
        """Answer 200 with a ``size``-byte JSON body written in chunks, never held whole."""
        transport = connection.transport
        head = (
            f"HTTP/1.1 200 OK\r\nDate: {email.utils.formatdate(usegmt=True)}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {size}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        transport.write(head)
        prefix, suffix = b'{"pad":"', b'"}'
        if size < len(prefix) + len(suffix):
            prefix, suffix = b"", b""
        remaining = size - len(prefix) - len(suffix)
        transport.write(prefix)
        filler = b"x" * _STREAM_CHUNK
        while remaining > 0 and not transport.is_closing():
            n = min(remaining, _STREAM_CHUNK)
            transport.write(filler[:n])
            remaining -= n
            while transport.get_write_buffer_size() > _WRITE_HIGH_WATER:
                if transport.is_closing():
                    break
                await asyncio.sleep(0.001)
        if not transport.is_closing():
            transport.write(suffix)
            transport.close()
        await asyncio.shield(connection.connection_lost_waiter)

    # -- websocket ----------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        sub = self.profile.subscribe_path(ws.request.path)
        if sub is None:  # refused in _process_request already
            await ws.close(1008, "unknown path")
            return
        plan = self.faults
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
        streamer: asyncio.Task[None] | None = None
        timers: list[asyncio.Task[None]] = []
        closes = plan.closes(live.index) and plan.close_code is not None
        try:
            if closes and plan.close_after_frames == 0:
                await self._close(ws, plan.close_code or 1006, "close")
                return
            if closes and plan.close_after_s is not None:
                timers.append(
                    asyncio.create_task(
                        self._close_later(ws, plan.close_after_s, plan.close_code or 1006, "close")
                    )
                )
            if plan.lifetime_s is not None:
                timers.append(
                    asyncio.create_task(self._close_later(ws, plan.lifetime_s, 1001, "lifetime"))
                )
            streamer = asyncio.create_task(self._stream(ws, live, ready, activity))
            subscribed = sub.ready
            for frame in self.profile.greeting(sub):
                await ws.send(frame)
            rate_limit = self.limits.messages_per_s
            arrivals: collections.deque[float] = collections.deque()
            clock = asyncio.get_running_loop().time
            async for message in ws:
                if rate_limit:
                    now = clock()
                    arrivals.append(now)
                    while arrivals[0] <= now - 1.0:
                        arrivals.popleft()
                    if len(arrivals) > rate_limit:
                        # Binance closes with 1008 "Too many requests".
                        self._refused_for("message-rate")
                        await ws.close(1008, "Too many requests")
                        break
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                if subscribed and plan.ignore_resubscribe and "subscribe" in text.lower():
                    self.stats.count("noresub")
                    continue
                for reply in self.profile.on_message(sub, text):
                    await ws.send(reply)
                for reason in sub.limit_hits:
                    self._refused_for(reason)
                sub.limit_hits.clear()
                activity.set()
                if sub.ready:
                    subscribed = True
                    ready.set()
        except ConnectionClosed:
            pass
        finally:
            for timer in timers:
                timer.cancel()
            if streamer is not None:
                if not streamer.done():
                    streamer.cancel()
                await asyncio.wait([streamer])
                if not streamer.cancelled() and streamer.exception() is not None:
                    log.error("replay failed", exc_info=streamer.exception())
            self._live.discard(live)
            self.stats.active_connections -= 1
            self._finished(live)
            if live.index == 0 and plan.refuse_after_close:
                self._refuse()

    async def _close(self, ws: ServerConnection, code: int, kind: str) -> None:
        self.stats.count(kind)
        if code == 1006:
            await _flush_and_abort(ws.transport)
        else:
            await ws.close(code, _CLOSE_REASONS.get(kind, "connection lifetime"))

    async def _close_later(self, ws: ServerConnection, delay: float, code: int, kind: str) -> None:
        await asyncio.sleep(delay)
        if ws.state is State.OPEN:
            await self._close(ws, code, kind)

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
        """Send the tape to one client; False if the connection was ended by a fault."""
        plan = self.faults
        first = live.index == 0
        frames = self.profile.frames
        frame_for = self.profile.frame_for
        sub = live.subscription
        stats = self.stats
        paced = math.isfinite(self.speed)
        scale = 1e-9 / self.speed
        clock = asyncio.get_running_loop().time
        pipeline = ConnectionFaults(plan, live.index, stats.count, clock)
        closes = plan.closes(live.index) and plan.close_code is not None
        # Its own stream of draws, so that adding frame faults does not move random closes.
        close_rng = random.Random(plan.seed * 7919 + live.index * 104_729 + 1)
        processed = since_yield = 0
        if self.live:
            start = self._clock_start
            lap, into_lap = self._live_offset()
            begin = bisect.bisect_right(self._ts, self._t0_ns + into_lap)
        else:
            start, lap, begin = clock(), 0, 0

        if first and plan.oversized_frame_bytes is not None:
            await ws.send(oversized_frame(plan.oversized_frame_bytes))
            stats.count("oversized")
        while True:
            sent_in_lap = 0
            offset_ns = lap * self._lap_ns - self._t0_ns
            for index in range(begin, len(frames)):
                record = frames[index]
                since_yield += 1
                text = frame_for(sub, index, record)
                if text is None:
                    if since_yield >= _YIELD_EVERY:
                        since_yield = 0
                        await asyncio.sleep(0)
                    continue
                if processed == 0:
                    pause = await self._due_after(ws, live, 0, closes, close_rng)
                    if pause is None:
                        return False
                    start += pause
                if paced:
                    delay = start + (offset_ns + record.ts_ns) * scale - clock()
                    due = pipeline.due_s()
                    if due is not None and due < delay:
                        # Held frames go out when their hold ends, not with the next frame.
                        await asyncio.sleep(due)
                        for out in pipeline.release():
                            await ws.send(out)
                        delay = start + (offset_ns + record.ts_ns) * scale - clock()
                    if delay > _MIN_SLEEP_S:
                        since_yield = 0
                        await asyncio.sleep(delay)
                if since_yield >= _YIELD_EVERY:
                    since_yield = 0
                    await asyncio.sleep(0)
                live.position_ns = record.ts_ns
                for out in pipeline.frame(text):
                    await ws.send(out)
                if not pipeline.dropped:
                    stats.frames_sent += 1
                processed += 1
                sent_in_lap += 1
                pause = await self._due_after(ws, live, processed, closes, close_rng)
                if pause is None:
                    return False
                start += pause
            for out in pipeline.flush():
                await ws.send(out)
            if not self.loop:
                return True
            lap += 1
            begin = 0
            if not sent_in_lap and not paced:
                await asyncio.sleep(0.05)  # nothing matches yet: do not spin

    async def _due_after(
        self,
        ws: ServerConnection,
        live: LiveStream,
        processed: int,
        closes: bool,
        close_rng: random.Random,
    ) -> float | None:
        """Connection faults due after ``processed`` frames: None if the connection was ended,
        else how long the data stalled (the pacing clock moves on by as much)."""
        plan = self.faults
        first = live.index == 0
        if first and plan.malformed_after is not None and processed == plan.malformed_after:
            await ws.send(MALFORMED_FRAME)
            self.stats.count("malformed")
        if first and plan.drop_after_frames is not None and processed >= plan.drop_after_frames:
            self.stats.count("cut")
            await _flush_and_abort(ws.transport)
            return None
        if not plan.closes(live.index):
            return 0.0
        if plan.notice_after is not None and processed == plan.notice_after:
            notice = self.profile.notice_frame()
            if notice is not None:
                await ws.send(notice)
                self.stats.count("notice")
                if plan.notice_close_after_s is not None:
                    self._spawn(
                        self._close_later(ws, plan.notice_close_after_s, 1001, "notice-close")
                    )
        if closes and plan.close_code is not None and processed:
            due = processed == plan.close_after_frames
            if plan.close_prob and close_rng.random() < plan.close_prob:
                due = True
            if due:
                await self._close(ws, plan.close_code, "close")
                return None
        paused = 0.0
        if plan.stall_s is not None and processed == plan.stall_after:
            self.stats.count("stall")
            await asyncio.sleep(plan.stall_s)
            paused += plan.stall_s
        if plan.tcp_stall_s is not None and processed == plan.tcp_stall_after:
            self.stats.count("tcpstall")
            transport = ws.transport
            transport.pause_reading()
            try:
                await asyncio.sleep(plan.tcp_stall_s)
            finally:
                if not transport.is_closing():
                    transport.resume_reading()
            paused += plan.tcp_stall_s
        return paused


def run_server(
    tape_path: str,
    host: str = "127.0.0.1",
    port: int = 0,
    speed: float = 1.0,
    loop: bool = False,
    *,
    faults: FaultPlan | None = None,
    live: bool = False,
    once: bool = False,
    clones: int = 0,
    enforce_limits: bool = True,
) -> None:
    """Serve a tape until Ctrl-C, or with ``once`` until every client has finished."""
    tape = Tape.open(tape_path)

    async def main() -> None:
        async with ExchangeServer(
            tape,
            host,
            port,
            speed,
            loop,
            faults,
            live=live,
            clones=clones,
            enforce_limits=enforce_limits,
        ) as srv:
            for line in srv.describe():
                print(line, flush=True)
            if once:
                print("  (stops when every client has finished; Ctrl-C to stop)", flush=True)
                await srv.wait_done()
                print("all clients finished", flush=True)
            else:
                print("  (Ctrl-C to stop)", flush=True)
                await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
