"""Gate API v4 (spot ``/ws/v4/``, USDT futures ``/v4/ws/usdt``) for the local exchange server.

Clients send one ``{"time","channel","event":"subscribe","payload":[..]}`` per channel; each is
acknowledged as Gate does (``"result":{"status":"success"}``; the recorded acks are not
replayed), ``<market>.ping`` gets ``<market>.pong``, and the recorded ``update`` frames of each
subscribed ``(channel, symbol)`` are streamed. Candles are keyed by Gate's own name for them,
``<interval>_<symbol>``. REST: the order books (``with_id=true``) and the instrument lists the
tape holds; a book the tape lacks is answered as Gate answers an unknown pair.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import orjson

from lobfeed.tape import Tape, TapeRecord
from lobfeed.testing.profiles._common import (
    FrameInfo,
    Key,
    KeyedProfile,
    KeyedSubscription,
    record_json,
)
from lobfeed.testing.server import RestRequest, RestResponse, register_profile

#: Websocket path -> market prefix of its channels.
MARKETS = {"/ws/v4": "spot", "/v4/ws/usdt": "futures"}
BOOK_PATHS = {"spot": "/api/v4/spot/order_book", "futures": "/api/v4/futures/usdt/order_book"}
#: The field naming the symbol of a trade or ticker row.
SYMBOL_FIELDS = ("s", "currency_pair", "contract")


def _answer(channel: str, event: str, result: Any = None, error: Any = None) -> str:
    now_ms = time.time_ns() // 1_000_000
    message = {
        "time": now_ms // 1000,
        "time_ms": now_ms,
        "channel": channel,
        "event": event,
        "error": error,
        "result": result,
    }
    return orjson.dumps(message).decode()


def _row_key(channel: str, row: object) -> Key | None:
    if not isinstance(row, dict):
        return None
    if channel.endswith(".candlesticks"):
        name = row.get("n")
        return (channel, name) if isinstance(name, str) else None
    for field in SYMBOL_FIELDS:
        symbol = row.get(field)
        if isinstance(symbol, str):
            return (channel, symbol)
    return None


def subscription_keys(channel: str, payload: list[str]) -> list[Key]:
    """The keys one subscribe message asks for: a book is ``[symbol, speed]``, candles are
    ``[interval, symbol]``, the other channels a list of symbols."""
    if channel.endswith(".order_book_update") or channel.endswith(".order_book"):
        return [(channel, payload[0])] if payload else []
    if channel.endswith(".candlesticks"):
        return [(channel, f"{payload[0]}_{payload[1]}")] if len(payload) == 2 else []
    return [(channel, symbol) for symbol in payload]


class GateSubscription(KeyedSubscription):
    def __init__(self, path: str, market: str) -> None:
        super().__init__(path)
        self.market = market


@register_profile
class GateProfile(KeyedProfile[GateSubscription]):
    venues = ("gateio", "gateio-futures")

    def __init__(self, tape: Tape) -> None:
        super().__init__(tape)
        self.book_path = BOOK_PATHS["futures" if self.venue == "gateio-futures" else "spot"]

    def classify(self, record: TapeRecord) -> FrameInfo | None:
        msg = record_json(record)
        if not isinstance(msg, dict) or msg.get("event") not in ("update", "all"):
            return None  # acks, pongs and errors: made by the server
        channel, result = msg.get("channel"), msg.get("result")
        if not isinstance(channel, str):
            return None
        rows = result if isinstance(result, list) else [result]
        keys = {key for key in (_row_key(channel, row) for row in rows) if key is not None}
        return FrameInfo(record.conn or "", frozenset(keys)) if keys else None

    def subscribe_path(self, path: str) -> GateSubscription | None:
        route = urlsplit(path).path.rstrip("/")
        market = MARKETS.get(route)
        return GateSubscription(route, market) if market else None

    def on_message(self, sub: GateSubscription, text: str) -> list[str]:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [_answer("", "", error={"code": 1, "message": "invalid argument: not JSON"})]
        if not isinstance(msg, dict):
            return [_answer("", "", error={"code": 1, "message": "invalid argument"})]
        channel, event, payload = msg.get("channel"), msg.get("event"), msg.get("payload")
        if not isinstance(channel, str) or not channel.startswith(f"{sub.market}."):
            message = f"unknown channel {channel!r} on the {sub.market} endpoint"
            return [_answer(str(channel), str(event), error={"code": 2, "message": message})]
        if channel.endswith(".ping"):
            return [_answer(f"{sub.market}.pong", "")]
        if event not in ("subscribe", "unsubscribe"):
            message = f"unknown event {event!r}"
            return [_answer(channel, str(event), error={"code": 1, "message": message})]
        if not isinstance(payload, list) or not all(isinstance(p, str) for p in payload):
            message = "payload must be a list of strings"
            return [_answer(channel, event, error={"code": 1, "message": message})]
        keys = subscription_keys(channel, payload)
        if not keys:
            message = f"payload {payload!r} does not fit {channel}"
            return [_answer(channel, event, error={"code": 2, "message": message})]
        if event == "subscribe":
            self.subscribe(sub, keys)
        else:
            self.unsubscribe(sub, keys)
        return [_answer(channel, event, result={"status": "success"})]

    def is_snapshot_request(self, path: str) -> bool:
        return path == self.book_path

    def not_found(self, request: RestRequest) -> RestResponse:
        if request.path == self.book_path:
            pair = request.param("currency_pair") or request.param("contract")
            body = {"label": "INVALID_CURRENCY", "message": f"Invalid currency {pair}"}
            return RestResponse.json(400, body)
        return RestResponse.json(404, {"label": "NOT_FOUND", "message": request.path})

    def example_urls(self, ws_url: str, rest_url: str) -> list[tuple[str, str]]:
        market = "futures" if self.venue == "gateio-futures" else "spot"
        path = next(p for p, m in MARKETS.items() if m == market)
        return [(f"{market} stream", f"{ws_url}{path}")]
