"""Gemini market data v2 for the local exchange server.

``/v2/marketdata``: clients send
``{"type":"subscribe","subscriptions":[{"name":"l2","symbols":[..]}]}``. ``l2`` carries a
symbol's ``l2_updates`` and ``trade`` frames; other subscriptions (``candles_1m``, ...) carry
``<name>_updates`` frames. Gemini does not acknowledge subscriptions; bad requests get its
``{"result":"error",..}``. ``heartbeat`` frames go with the connection.
"""

from __future__ import annotations

from typing import Any

import orjson

from lobfeed.tape import TapeRecord
from lobfeed.testing.profiles._common import FrameInfo, KeyedProfile, KeyedSubscription, record_json
from lobfeed.testing.server import register_profile

PATH = "/v2/marketdata"
L2_TYPES = frozenset({"l2_updates", "trade"})


def _error(reason: str, message: str) -> str:
    return orjson.dumps({"result": "error", "reason": reason, "message": message}).decode()


@register_profile
class GeminiProfile(KeyedProfile[KeyedSubscription]):
    venues = ("gemini",)

    def classify(self, record: TapeRecord) -> FrameInfo | None:
        conn = record.conn or ""
        msg = record_json(record)
        if not isinstance(msg, dict):
            return None
        kind, symbol = msg.get("type"), msg.get("symbol")
        if kind == "heartbeat":
            return FrameInfo(conn)
        if not isinstance(kind, str) or not isinstance(symbol, str):
            return None
        if kind in L2_TYPES:
            return FrameInfo(conn, frozenset({("l2", symbol)}))
        if kind.endswith("_updates"):
            return FrameInfo(conn, frozenset({(kind.removesuffix("_updates"), symbol)}))
        return None

    def subscribe_path(self, path: str) -> KeyedSubscription | None:
        route = path.split("?")[0].rstrip("/")
        return KeyedSubscription(route) if route == PATH else None

    def on_message(self, sub: KeyedSubscription, text: str) -> list[str]:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [_error("InvalidJson", "Failed to parse the request")]
        if not isinstance(msg, dict):
            return [_error("InvalidJson", "The request must be an object")]
        kind, subscriptions = msg.get("type"), msg.get("subscriptions")
        if kind not in ("subscribe", "unsubscribe") or not isinstance(subscriptions, list):
            return [_error("InvalidRequest", f"Unknown request type {kind!r}")]
        keys: list[tuple[str, str]] = []
        for item in subscriptions:
            name, symbols = _fields(item)
            if name is None or symbols is None:
                return [_error("InvalidRequest", "Each subscription needs a name and symbols")]
            keys.extend((name, symbol) for symbol in symbols)
        if kind == "subscribe":
            self.subscribe(sub, keys)
        else:
            self.unsubscribe(sub, keys)
        return []

    def example_urls(self, ws_url: str, rest_url: str) -> list[tuple[str, str]]:
        return [("websocket v2", f"{ws_url}{PATH}")]


def _fields(item: Any) -> tuple[str | None, list[str] | None]:
    if not isinstance(item, dict):
        return None, None
    name, symbols = item.get("name"), item.get("symbols")
    if not isinstance(name, str):
        return None, None
    if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
        return name, None
    return name, symbols
