"""Binance's profile: spot, USDⓈ-M and COIN-M combined and raw streams, SUBSCRIBE, REST depth.

In live mode (see :class:`lobfeed.testing.server.ExchangeServer`) a depth snapshot request is
answered with the book as it stands at the server's current position: the tape's recorded
snapshot brought forward through the recorded depth updates by a native ``Session``, so that the
snapshot bridges the stream a client joining mid-tape receives.

Symbol clones (``ExchangeServer(..., clones=N)``): every recorded symbol is also served under N
aliases ``C1<SYMBOL>``, ``C2<SYMBOL>``, ... (``ETHUSD_PERP`` -> ``C1ETHUSD_PERP``, streams
``c1ethusd_perp@depth``...).  An alias's frames are the original's with ``"s"`` and the stream
name renamed (update ids, prices, times unchanged), sent right after the original's at the same
recorded time; its depth snapshots are the original's.  A frame is renamed once per alias, the
first time a client is sent it.

Limits, as Binance documents them (see :class:`BinanceProfile.default_limits`): streams per
connection, incoming messages per second, REST request weight per minute with depth weights by
``limit`` and the ``X-MBX-USED-WEIGHT-1M`` header, 429 then 418.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Final
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from lobfeed._native import Session
from lobfeed.tape import Tape, TapeRecord
from lobfeed.testing.server import (
    LiveStream,
    RestRequest,
    RestResponse,
    Subscription,
    VenueLimits,
    VenueProfile,
    register_profile,
)

__all__ = [
    "BinanceProfile",
    "BinanceSubscription",
    "binance_stream_key",
    "clone_symbol",
    "rename_frame",
]

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


# Streams per connection.  Spot: "A single connection can listen to a maximum of 1024 streams."
# https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams
# USDⓈ-M and COIN-M futures: "A single connection can listen to a maximum of 200 streams." (the
# number these docs gave through 2024 and that client libraries enforce; the pages now say 1024)
# https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams
# https://developers.binance.com/docs/derivatives/coin-margined-futures/websocket-market-streams
_SPOT_STREAMS: Final = 1024
_FUTURES_STREAMS: Final = 200
# Incoming messages per connection: spot "5 incoming messages per second", futures "10 incoming
# messages per second"; "A connection that goes beyond the limit will be disconnected" (same
# pages).  Binance closes it with 1008 "Too many requests".
_SPOT_MESSAGES_PER_S: Final = 5
_FUTURES_MESSAGES_PER_S: Final = 10
# Request line: Binance documents none; 8 KiB is what websockets' own server answers 414 beyond
# (websockets.http11.MAX_LINE_LENGTH).
_REQUEST_LINE_BYTES: Final = 8192
# REST request weight per IP per minute (exchangeInfo rateLimits REQUEST_WEIGHT).  Spot 6,000:
# https://developers.binance.com/docs/binance-spot-api-docs/rest-api/limits
# USDⓈ-M 2,400:
# https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info#limits
# COIN-M 2,400:
# https://developers.binance.com/docs/derivatives/coin-margined-futures/general-info#limits
# Over the limit: 429 with Retry-After; "Repeatedly violating rate limits and/or failing to back
# off after receiving 429s will result in an automated IP ban (HTTP status 418)", bans lasting
# "from 2 minutes to 3 days" (spot limits page above).
_REST_WEIGHT: Final[Mapping[str, int]] = {
    "binance": 6000,
    "binance-usdm": 2400,
    "binance-coinm": 2400,
}
_BAN_S: Final = 120.0
# Depth weight by limit.  Spot (default limit 100): 1-100: 5, 101-500: 25, 501-1000: 50,
# 1001-5000: 250.
# https://developers.binance.com/docs/binance-spot-api-docs/rest-api/market-data-endpoints#order-book
_SPOT_DEPTH_WEIGHTS: Final = ((100, 5), (500, 25), (1000, 50))
_SPOT_DEPTH_MAX_WEIGHT: Final = 250
# Futures (default limit 500): 5, 10, 20, 50: 2; 100: 5; 500: 10; 1000: 20.
# https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Order-Book
# https://developers.binance.com/docs/derivatives/coin-margined-futures/market-data/rest-api/Order-Book
_FUTURES_DEPTH_WEIGHTS: Final = ((50, 2), (100, 5), (500, 10))
_FUTURES_DEPTH_MAX_WEIGHT: Final = 20

_CLONE_PREFIX: Final = "C"


def clone_symbol(symbol: str, n: int) -> str:
    """The ``n``-th alias (1-based) of a Binance symbol: ``C<n><SYMBOL>``."""
    return f"{_CLONE_PREFIX}{n}{symbol.upper()}"


def _rename_json(value: object, symbol: str, alias: str, lower: str, alias_lower: str) -> object:
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for k, v in value.items():
            if k == "s" and v == symbol:
                out[k] = alias
            elif k == "stream" and isinstance(v, str) and v.lower().startswith(lower + "@"):
                out[k] = alias_lower + v[len(lower) :]
            else:
                out[k] = _rename_json(v, symbol, alias, lower, alias_lower)
        return out
    if isinstance(value, list):
        return [_rename_json(v, symbol, alias, lower, alias_lower) for v in value]
    return value


def rename_frame(text: str, symbol: str, alias: str) -> str:
    """A recorded Binance frame of ``symbol`` with its ``"s"`` and stream name made ``alias``."""
    lower, alias_lower = symbol.lower(), alias.lower()
    field = f'"s":"{symbol}"'
    if field in text:  # compact JSON, as Binance sends it: plain replacement
        text = text.replace(field, f'"s":"{alias}"')
        prefix = f'{{"stream":"{lower}@'
        if text[: len(prefix)].lower() == prefix:
            text = f'{{"stream":"{alias_lower}@' + text[len(prefix) :]
        return text
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    return orjson.dumps(_rename_json(obj, symbol, alias, lower, alias_lower)).decode()


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


class _LiveBook:
    """One symbol's book as of the live clock, kept between snapshot requests."""

    def __init__(self, session: Session, base_ts: int, body: str) -> None:
        self.session = session
        self.base_ts = base_ts
        self.body = body
        self.snapshotted = False
        self.next_index = 0
        self.position_ns = 0
        self.last_index: int | None = None

    def apply_snapshot(self, symbol: str) -> None:
        # Updates recorded before the snapshot were buffered by the session, as a client's are.
        self.session.receive_snapshot(symbol, self.body, self.base_ts)
        self.snapshotted = True


@register_profile
class BinanceProfile(VenueProfile[BinanceSubscription]):
    """Binance spot, USDⓈ-M and COIN-M: combined and raw streams, SUBSCRIBE, depth snapshots."""

    venues = ("binance", "binance-usdm", "binance-coinm")
    weight_header = "X-MBX-USED-WEIGHT-1M"

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
        self._live_books: dict[str, _LiveBook] = {}
        # Clones: per frame, (recorded symbol, alias) to rename it to (None: sent as recorded),
        # the renamed texts made so far, and alias -> recorded symbol (upper case).
        self._renames: list[tuple[str, str] | None] = [None] * len(self.frames)
        self._renamed: dict[int, str] = {}
        self.aliases: dict[str, str] = {}
        """Served alias (upper case) -> the recorded symbol it copies."""

    # -- clones and limits ----------------------------------------------------------------------

    def set_clones(self, clones: int) -> None:
        if not clones:
            return
        if self.aliases:
            raise RuntimeError("clones are set once")
        frames: list[TapeRecord] = []
        keys: list[str | None] = []
        wrapped: list[bool] = []
        renames: list[tuple[str, str] | None] = []
        for record, key, wrap in zip(self.frames, self._keys, self._wrapped, strict=True):
            frames.append(record)
            keys.append(key)
            wrapped.append(wrap)
            renames.append(None)
            if key is None:
                continue
            lower, stream = key.split("@", 1)
            symbol = lower.upper()
            for n in range(1, clones + 1):
                alias = clone_symbol(symbol, n)
                self.aliases[alias] = symbol
                frames.append(record)
                keys.append(f"{alias.lower()}@{stream}")
                wrapped.append(wrap)
                renames.append((symbol, alias))
        for symbol in list(self._snapshots):
            for n in range(1, clones + 1):
                self.aliases.setdefault(clone_symbol(symbol, n), symbol)
        self.frames, self._keys, self._wrapped, self._renames = frames, keys, wrapped, renames
        self._unwrapped.clear()

    def default_limits(self) -> VenueLimits:
        spot = self.venue == "binance"
        return VenueLimits(
            streams_per_connection=_SPOT_STREAMS if spot else _FUTURES_STREAMS,
            request_line_bytes=_REQUEST_LINE_BYTES,
            messages_per_s=_SPOT_MESSAGES_PER_S if spot else _FUTURES_MESSAGES_PER_S,
            rest_weight_limit=_REST_WEIGHT.get(self.venue, _REST_WEIGHT["binance"]),
            rest_window_s=60.0,
            rest_ban_after=3,
            rest_ban_s=_BAN_S,
        )

    def stream_count(self, sub: BinanceSubscription) -> int:
        return len(sub.streams)

    def rest_weight(self, request: RestRequest) -> int:
        if request.path != self.depth_path:
            return 1  # ping, time, and unknown paths
        spot = self.venue == "binance"
        raw = request.param("limit")
        limit = int(raw) if raw is not None and raw.isdigit() else (100 if spot else 500)
        table = _SPOT_DEPTH_WEIGHTS if spot else _FUTURES_DEPTH_WEIGHTS
        for upto, weight in table:
            if limit <= upto:
                return weight
        return _SPOT_DEPTH_MAX_WEIGHT if spot else _FUTURES_DEPTH_MAX_WEIGHT

    def too_many_streams(self, sub: BinanceSubscription, limit: int) -> RestResponse:
        msg = f"Too many streams: {len(sub.streams)} requested, at most {limit} per connection."
        return RestResponse.json(400, {"code": -1100, "msg": msg})

    def _text(self, index: int, record: TapeRecord) -> str:
        rename = self._renames[index]
        if rename is None:
            return record.data or ""
        text = self._renamed.get(index)
        if text is None:
            text = self._renamed[index] = rename_frame(record.data or "", *rename)
        return text

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
                limit = self.limits.streams_per_connection
                new = {binance_stream_key(p) for p in params} - sub.streams.keys()
                if limit and len(sub.streams) + len(new) > limit:
                    # Refused whole, the connection stays open (see the module docstring).
                    sub.limit_hits.append("subscribe-streams")
                    msg = (
                        f"Invalid request: too many streams: {len(sub.streams) + len(new)}, "
                        f"at most {limit} per connection"
                    )
                    return [_binance_error(2, msg, req_id)]
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
        text = self._text(index, record)
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

    def rate_limited(
        self, request: RestRequest, status: int = 429, retry_after: int = 1
    ) -> RestResponse:
        if status == 418:
            banned_until = time.time_ns() // 1_000_000 + retry_after * 1000
            msg = f"Way too much request weight used; IP banned until {banned_until}."
        else:
            msg = "Too much request weight used; retry after the time given in Retry-After."
        headers = (("Retry-After", str(retry_after)),)
        return RestResponse.json(status, {"code": -1003, "msg": msg}, headers)

    def error_body(self, request: RestRequest) -> bytes:
        return b'{"code":-1121,"msg":"Invalid symbol."}'

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
        recorded = self.aliases.get(symbol, symbol)
        entries = self._snapshots.get(recorded)
        if not entries:
            return RestResponse.json(400, {"code": -1121, "msg": "Invalid symbol."})
        if request.position_ns is not None:
            depth = min(int(limit), 5000) if limit else 100
            built = self._live_depth(recorded, entries, request.position_ns, depth)
            if built is not None:
                return built
        position = self._position(request.streams, symbol.lower())
        chosen = entries[0][1]
        if position is not None:
            for ts_ns, body in entries:
                if ts_ns <= position:
                    chosen = body
        return RestResponse(200, chosen.encode())

    def _live_depth(
        self, symbol: str, entries: list[tuple[int, str]], position_ns: int, depth: int
    ) -> RestResponse | None:
        """The book at ``position_ns``: the last recorded snapshot before it (else the first)
        brought forward by the recorded depth updates; None if the book cannot be built."""
        base_ts, body = entries[0]
        for ts_ns, recorded in entries:
            if ts_ns <= position_ns:
                base_ts, body = ts_ns, recorded
        book = self._live_books.get(symbol)
        if book is None or book.base_ts != base_ts or position_ns < book.position_ns:
            # Built afresh when the clock went back (a looping tape) or a newer snapshot applies.
            book = self._live_books[symbol] = _LiveBook(Session(self.venue), base_ts, body)
        key = f"{symbol.lower()}@depth"
        frames = self.frames
        index = book.next_index
        while index < len(frames) and frames[index].ts_ns <= position_ns:
            record = frames[index]
            if self._keys[index] == key:
                if not book.snapshotted and record.ts_ns > base_ts:
                    book.apply_snapshot(symbol)
                book.session.receive(record.data or "", record.ts_ns)
                book.last_index = index
            index += 1
        book.next_index = index
        book.position_ns = position_ns
        if not book.snapshotted:
            book.apply_snapshot(symbol)
        if book.session.state(symbol) != "live":
            return None
        view = book.session.book(symbol)
        answer: dict[str, object] = {"lastUpdateId": view.seq}
        if self.venue != "binance" and book.last_index is not None:
            # Futures snapshots carry the message and transaction times; spot ones do not.
            event = orjson.loads(frames[book.last_index].data or "{}")
            event = event.get("data", event)
            answer["E"] = event.get("E")
            answer["T"] = event.get("T", event.get("E"))
        answer["bids"] = [list(level) for level in view.bids(depth)]
        answer["asks"] = [list(level) for level in view.asks(depth)]
        return RestResponse.json(200, answer)

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
