"""Binance's profile: spot, USDⓈ-M and COIN-M combined and raw streams, SUBSCRIBE, REST depth.

In live mode (see :class:`lobfeed.testing.server.ExchangeServer`) a depth snapshot request is
answered with the book as it stands at the server's current position: the tape's recorded
snapshot brought forward through the recorded depth updates by a native ``Session``, so that the
snapshot bridges the stream a client joining mid-tape receives.
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
    VenueProfile,
    register_profile,
)

__all__ = ["BinanceProfile", "BinanceSubscription", "binance_stream_key"]

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
        entries = self._snapshots.get(symbol)
        if not entries:
            return RestResponse.json(400, {"code": -1121, "msg": "Invalid symbol."})
        if request.position_ns is not None:
            depth = min(int(limit), 5000) if limit else 100
            built = self._live_depth(symbol, entries, request.position_ns, depth)
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
