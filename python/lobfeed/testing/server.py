"""A local exchange that replays a tape over loopback.

:class:`ExchangeServer` listens on one port for both websocket upgrades and plain HTTP GETs.
Every websocket client gets its own replay of the tape's ``recv`` records (all connections of
the tape, in file order), filtered by what that client subscribed to and paced by the recorded
timestamps; REST requests are answered from the tape's ``http`` records.

What a venue's URLs, subscribe messages and REST endpoints look like is a venue *profile*: a
:class:`VenueProfile` subclass registered with :func:`register_profile`.  The server core knows
nothing venue-specific.  Binance (``binance``, ``binance-usdm``, ``binance-coinm``) is built in;
another venue is added by writing a module ``lobfeed/testing/profiles/<family>.py`` (``<family>``
being the venue name up to its first ``-``) that defines and registers a profile: the server
imports it the first time a tape of that venue is served.  Profiles ship for ``bybit``, ``okx``,
``kraken`` (ws v1), ``coinbase``, ``gemini`` (v2) and ``bitfinex``.

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
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Generic, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from lobfeed.exceptions import UnknownVenueError
from lobfeed.tape import Tape, TapeRecord

__all__ = [
    "MALFORMED_FRAME",
    "BinanceProfile",
    "BinanceSubscription",
    "ExchangeServer",
    "FaultPlan",
    "LiveStream",
    "RestRequest",
    "RestResponse",
    "ServerStats",
    "Subscription",
    "VenueProfile",
    "binance_stream_key",
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


# -- Binance ---------------------------------------------------------------------------------

_UPDATE_SPEED = re.compile(r"\d+m?s")
_COMBINED_PREFIX = re.compile(r'\{"stream":"([^"\\]+)","data":')
_BINANCE_SYMBOL = re.compile(r"[A-Z0-9\-_.]{1,20}")
_BINANCE_REST: Final[Mapping[str, str]] = {
    "binance": "/api/v3",
    "binance-usdm": "/fapi/v1",
    "binance-coinm": "/dapi/v1",
}
_BINANCE_EVENT_STREAMS: Final[Mapping[str, str]] = {
    "depthUpdate": "depth",
    "trade": "trade",
    "aggTrade": "aggtrade",
    "bookTicker": "bookticker",
    "24hrTicker": "ticker",
    "24hrMiniTicker": "miniticker",
    "markPriceUpdate": "markprice",
}


def binance_stream_key(name: str) -> str:
    """Canonical form of a Binance stream name, for matching.

    Lower case, and without an update-speed suffix, so ``BTCUSDT@depth@100ms``,
    ``btcusdt@depth@0ms`` and ``btcusdt@depth`` are all ``btcusdt@depth``.
    """
    parts = name.strip().lower().split("@")
    if len(parts) >= 3 and _UPDATE_SPEED.fullmatch(parts[-1]):
        parts.pop()
    return "@".join(parts)


def _binance_event_key(obj: object) -> str | None:
    """Stream key of an unwrapped event (a tape recorded on a raw ``/ws`` connection)."""
    if not isinstance(obj, dict):
        return None
    symbol = obj.get("s")
    if not isinstance(symbol, str):
        return None
    event = obj.get("e")
    if event is None and {"u", "b", "a"} <= obj.keys():
        event = "bookTicker"  # spot bookTicker events carry no "e"
    if event == "kline":
        kline = obj.get("k")
        interval = kline.get("i") if isinstance(kline, dict) else None
        return f"{symbol.lower()}@kline_{interval}" if isinstance(interval, str) else None
    suffix = _BINANCE_EVENT_STREAMS.get(event) if isinstance(event, str) else None
    return f"{symbol.lower()}@{suffix}" if suffix else None


def _binance_error(code: int, msg: str, req_id: object = None) -> str:
    return orjson.dumps({"error": {"code": code, "msg": msg}, "id": req_id}).decode()


class BinanceSubscription(Subscription):
    def __init__(self, combined: bool, names: Sequence[str] = ()) -> None:
        super().__init__()
        self.combined = combined
        """``/stream`` (frames wrapped as ``{"stream":..,"data":..}``) or raw ``/ws``."""
        self.streams: dict[str, str] = {}
        """Canonical key (see :func:`binance_stream_key`) -> the name as the client wrote it."""
        self.add(names)

    def add(self, names: Sequence[str]) -> None:
        for name in names:
            self.streams.setdefault(binance_stream_key(name), name)
        if self.streams:
            self.ready = True

    def remove(self, names: Sequence[str]) -> None:
        for name in names:
            self.streams.pop(binance_stream_key(name), None)

    @property
    def symbols(self) -> set[str]:
        return {key.split("@", 1)[0] for key in self.streams}


@register_profile
class BinanceProfile(VenueProfile[BinanceSubscription]):
    """Binance spot, USDⓈ-M and COIN-M: combined and raw streams, SUBSCRIBE, depth snapshots."""

    venues = ("binance", "binance-usdm", "binance-coinm")

    def __init__(self, tape: Tape) -> None:
        super().__init__(tape)
        self.rest_prefix = _BINANCE_REST.get(self.venue, "/api/v3")
        self.depth_path = f"{self.rest_prefix}/depth"
        # Per recorded frame: canonical stream key (None: not a stream event) and whether the
        # frame is wrapped as a combined-stream message.
        self._keys: list[str | None] = []
        self._wrapped: list[bool] = []
        self._names: dict[str, str] = {}  # key -> name as first recorded, in order seen
        for record in self.frames:
            key, wrapped, name = self._classify(record.data or "")
            self._keys.append(key)
            self._wrapped.append(wrapped)
            if key is not None and name is not None:
                self._names.setdefault(key, name)
        self._unwrapped: dict[int, str] = {}
        # Depth snapshots by upper-case symbol: (ts_ns, body) in file order.
        self._snapshots: dict[str, list[tuple[int, str]]] = {}
        for record in tape.iter_records("http"):
            url = urlsplit(record.url or "")
            if not url.path.endswith("/depth"):
                continue
            symbol = (parse_qs(url.query).get("symbol") or [""])[0].upper()
            if symbol:
                self._snapshots.setdefault(symbol, []).append((record.ts_ns, record.data or ""))

    @staticmethod
    def _classify(text: str) -> tuple[str | None, bool, str | None]:
        match = _COMBINED_PREFIX.match(text)
        if match is not None and text.endswith("}"):
            return binance_stream_key(match.group(1)), True, match.group(1)
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError:
            return None, False, None
        if isinstance(obj, dict):
            stream = obj.get("stream")
            if isinstance(stream, str) and "data" in obj:
                return binance_stream_key(stream), True, stream
        key = _binance_event_key(obj)
        return key, False, key

    # -- websocket ----------------------------------------------------------------------------

    def subscribe_path(self, path: str) -> BinanceSubscription | None:
        url = urlsplit(path)
        route = url.path.rstrip("/") or "/"
        if route == "/stream":
            names = [
                unquote(name)
                for value in parse_qs(url.query).get("streams", [])
                for name in value.split("/")
                if name
            ]
            return BinanceSubscription(combined=True, names=names)
        if route == "/ws":
            return BinanceSubscription(combined=False)
        if route.startswith("/ws/"):
            names = [unquote(name) for name in route[4:].split("/") if name]
            return BinanceSubscription(combined=False, names=names)
        return None

    def on_message(self, sub: BinanceSubscription, text: str) -> list[str]:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [_binance_error(3, "Invalid JSON")]
        if not isinstance(msg, dict):
            return [_binance_error(2, "Invalid request: expected a JSON object")]
        req_id = msg.get("id")
        method = msg.get("method")
        params = msg.get("params", [])
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                return [_binance_error(2, "Invalid request: params must be stream names", req_id)]
            if method == "SUBSCRIBE":
                sub.add(params)
            else:
                sub.remove(params)
            return [orjson.dumps({"result": None, "id": req_id}).decode()]
        if method == "LIST_SUBSCRIPTIONS":
            names = list(sub.streams.values())
            return [orjson.dumps({"result": names, "id": req_id}).decode()]
        if method == "SET_PROPERTY":
            return [orjson.dumps({"result": None, "id": req_id}).decode()]
        if method == "GET_PROPERTY":
            return [orjson.dumps({"result": sub.combined, "id": req_id}).decode()]
        return [_binance_error(2, f"Invalid request: unknown method {method!r}", req_id)]

    def frame_for(self, sub: BinanceSubscription, index: int, record: TapeRecord) -> str | None:
        key = self._keys[index]
        if key is None:
            return None
        name = sub.streams.get(key)
        if name is None:
            return None
        text = record.data or ""
        if sub.combined:
            if self._wrapped[index]:
                return text
            return '{"stream":' + orjson.dumps(name).decode() + ',"data":' + text + "}"
        if not self._wrapped[index]:
            return text
        raw = self._unwrapped.get(index)
        if raw is None:
            raw = self._unwrapped[index] = self._unwrap(text)
        return raw

    @staticmethod
    def _unwrap(text: str) -> str:
        """The ``data`` part of a combined-stream frame, sliced from the text when possible."""
        obj = orjson.loads(text)
        match = _COMBINED_PREFIX.match(text)
        if match is not None and list(obj) == ["stream", "data"] and text.endswith("}"):
            return text[match.end() : -1].rstrip()
        return orjson.dumps(obj["data"]).decode()

    # -- REST ---------------------------------------------------------------------------------

    def is_snapshot_request(self, path: str) -> bool:
        return path == self.depth_path

    def rest(self, request: RestRequest) -> RestResponse:
        if request.path == self.depth_path:
            return self._depth(request)
        if request.path == f"{self.rest_prefix}/ping":
            return RestResponse.json(200, {})
        if request.path == f"{self.rest_prefix}/time":
            return RestResponse.json(200, {"serverTime": time.time_ns() // 1_000_000})
        return RestResponse.json(404, {"code": -1000, "msg": f"Unknown path {request.path}."})

    def rate_limited(self, request: RestRequest) -> RestResponse:
        msg = "Too much request weight used; retry after the time given in Retry-After."
        return RestResponse.json(429, {"code": -1003, "msg": msg}, (("Retry-After", "1"),))

    def _depth(self, request: RestRequest) -> RestResponse:
        symbol = request.param("symbol")
        if not symbol:
            msg = "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
            return RestResponse.json(400, {"code": -1102, "msg": msg})
        if not _BINANCE_SYMBOL.fullmatch(symbol):
            msg = "Illegal characters found in parameter 'symbol'."
            return RestResponse.json(400, {"code": -1100, "msg": msg})
        limit = request.param("limit")
        if limit is not None and not limit.isdigit():
            msg = "Illegal characters found in parameter 'limit'."
            return RestResponse.json(400, {"code": -1100, "msg": msg})
        entries = self._snapshots.get(symbol)
        if not entries:
            return RestResponse.json(400, {"code": -1121, "msg": "Invalid symbol."})
        position = self._position(request.streams, symbol.lower())
        chosen = entries[0][1]
        if position is not None:
            for ts_ns, body in entries:
                if ts_ns <= position:
                    chosen = body
        return RestResponse(200, chosen.encode())

    @staticmethod
    def _position(streams: Sequence[LiveStream], symbol: str) -> int | None:
        """Replay position of the client streaming ``symbol`` (else of any client)."""
        mine: list[int] = []
        other: list[int] = []
        for stream in streams:
            if stream.position_ns is None:
                continue
            sub = stream.subscription
            if isinstance(sub, BinanceSubscription) and symbol in sub.symbols:
                mine.append(stream.position_ns)
            else:
                other.append(stream.position_ns)
        if mine:
            return max(mine)
        return max(other) if other else None

    def example_urls(self, ws_url: str, rest_url: str) -> list[tuple[str, str]]:
        urls: list[tuple[str, str]] = []
        if self._names:
            streams = "/".join(self._names.values())
            urls.append(("combined streams", f"{ws_url}/stream?streams={streams}"))
            first = next(iter(self._names.values()))
            urls.append(("raw stream", f"{ws_url}/ws/{first}"))
        if self._snapshots:
            symbol = next(iter(self._snapshots))
            query = f"?symbol={symbol}&limit=1000"
            urls.append(("depth snapshot", f"{rest_url}{self.depth_path}{query}"))
        return urls


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
