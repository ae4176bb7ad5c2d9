"""KuCoin spot for the local exchange server.

Connecting takes a token, as on the venue: ``POST /api/v1/bullet-public`` answers one with an
``instanceServers`` endpoint on this server (``/endpoint``); a websocket upgrade without a token
the server issued is refused (404). The connection is greeted with ``{"type":"welcome"}``.
Clients send ``{"id":..,"type":"subscribe","topic":"/market/level2:A,B",..}`` (also
``/market/match:``, ``/market/ticker:``, ``/market/candles:A_1min``), acknowledged with
``{"id":..,"type":"ack"}``; ``{"id":..,"type":"ping"}`` gets ``pong``. REST: the instrument list
and the book snapshots are answered from the tape; a snapshot asked for at 100 levels
(``level2_100``) is the recorded full book cut to 100 levels a side.
"""

from __future__ import annotations

import dataclasses
import secrets
from urllib.parse import parse_qs, urlsplit

import orjson

from lobfeed.tape import Tape, TapeRecord
from lobfeed.testing.profiles._common import FrameInfo, KeyedProfile, KeyedSubscription, record_json
from lobfeed.testing.server import RestRequest, RestResponse, register_profile
from lobfeed.venues.kucoin import FULL_SNAPSHOT_PATH, SNAPSHOT_DEPTH, SNAPSHOT_PATH, TOKEN_PATH

WS_PATH = "/endpoint"
PING_INTERVAL_MS = 18_000
# KuCoin's answer to a request it cannot serve (the REST "code" of a bad parameter).
BAD_REQUEST = "400100"


def _frame(payload: dict[str, object]) -> str:
    return orjson.dumps(payload).decode()


def _keys(topic: str) -> list[tuple[str, str]] | None:
    """``/market/level2:A,B`` -> ``[("level2", "A"), ("level2", "B")]``; candles keep their
    interval (``("candles", "A_1min")``)."""
    prefix, _, symbols = topic.partition(":")
    channel = prefix.removeprefix("/market/")
    if not prefix.startswith("/market/") or not channel or not symbols:
        return None
    return [(channel, symbol) for symbol in symbols.split(",") if symbol]


class KucoinSubscription(KeyedSubscription):
    def __init__(self, path: str, connect_id: str) -> None:
        super().__init__(path)
        self.connect_id = connect_id


@register_profile
class KucoinProfile(KeyedProfile[KucoinSubscription]):
    venues = ("kucoin",)
    rest_methods = frozenset({"GET", "POST"})

    def __init__(self, tape: Tape) -> None:
        super().__init__(tape)
        self.tokens: set[str] = set()
        #: The ``pingInterval`` token answers give (tests shorten it).
        self.ping_interval_ms = PING_INTERVAL_MS

    def classify(self, record: TapeRecord) -> FrameInfo | None:
        msg = record_json(record)
        if not isinstance(msg, dict) or msg.get("type") != "message":
            return None  # welcome, ack, pong: made by the server
        topic = msg.get("topic")
        keys = _keys(topic) if isinstance(topic, str) else None
        return FrameInfo(record.conn or "", frozenset(keys)) if keys else None

    def subscribe_path(self, path: str) -> KucoinSubscription | None:
        url = urlsplit(path)
        query = parse_qs(url.query)
        token = (query.get("token") or [""])[0]
        if url.path.rstrip("/") != WS_PATH or token not in self.tokens:
            return None
        connect_id = (query.get("connectId") or ["lobfeed"])[0]
        return KucoinSubscription(url.path, connect_id)

    def greeting(self, sub: KucoinSubscription) -> list[str]:
        return [_frame({"id": sub.connect_id, "type": "welcome"})]

    def on_message(self, sub: KucoinSubscription, text: str) -> list[str]:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [_frame({"type": "error", "code": 400, "data": "not JSON"})]
        if not isinstance(msg, dict):
            return [_frame({"type": "error", "code": 400, "data": "not an object"})]
        ident, kind, topic = msg.get("id"), msg.get("type"), msg.get("topic")
        if kind == "ping":
            return [_frame({"id": ident, "type": "pong"})]
        if kind not in ("subscribe", "unsubscribe"):
            return [_frame({"id": ident, "type": "error", "code": 400, "data": f"type {kind}"})]
        keys = _keys(topic) if isinstance(topic, str) else None
        if keys is None:
            data = f"topic {topic} is not found"
            return [_frame({"id": ident, "type": "error", "code": 404, "data": data})]
        if kind == "subscribe":
            self.subscribe(sub, keys)
        else:
            self.unsubscribe(sub, keys)
        return [_frame({"id": ident, "type": "ack"})] if msg.get("response") else []

    def is_snapshot_request(self, path: str) -> bool:
        return path in (SNAPSHOT_PATH, FULL_SNAPSHOT_PATH)

    def rest(self, request: RestRequest) -> RestResponse:
        if request.path == TOKEN_PATH:
            return self._token(request)
        if request.path == SNAPSHOT_PATH:
            full = self.recorded_rest.answer(dataclasses.replace(request, path=FULL_SNAPSHOT_PATH))
            if full is None:
                return self.not_found(request)
            return RestResponse(200, _cut(full.body, SNAPSHOT_DEPTH))
        return super().rest(request)

    def _token(self, request: RestRequest) -> RestResponse:
        if request.method != "POST":
            return RestResponse.json(405, {"code": BAD_REQUEST, "msg": "POST only"})
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        server = {
            "endpoint": f"ws://{request.host or '127.0.0.1'}{WS_PATH}",
            "encrypt": False,
            "protocol": "websocket",
            "pingInterval": self.ping_interval_ms,
            "pingTimeout": 10_000,
        }
        return RestResponse.json(
            200, {"code": "200000", "data": {"token": token, "instanceServers": [server]}}
        )

    def not_found(self, request: RestRequest) -> RestResponse:
        symbol = request.param("symbol")
        msg = f"symbol {symbol} has no recorded book" if symbol else f"no path {request.path}"
        return RestResponse.json(400, {"code": BAD_REQUEST, "msg": msg})

    def error_body(self, request: RestRequest) -> bytes:
        return orjson.dumps({"code": BAD_REQUEST, "msg": "symbol not exists"})

    def example_urls(self, ws_url: str, rest_url: str) -> list[tuple[str, str]]:
        return [("token (POST)", f"{rest_url}{TOKEN_PATH}")]


def _cut(body: bytes, depth: int) -> bytes:
    """A recorded full book with ``depth`` levels a side kept."""
    answer = orjson.loads(body)
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, dict):
        return body
    for side in ("bids", "asks"):
        if isinstance(data.get(side), list):
            data[side] = data[side][:depth]
    return orjson.dumps(answer)
