"""BitMEX realtime websocket for the local exchange server.

``/realtime``: the server greets with BitMEX's ``{"info": ...}`` frame; clients send
``{"op":"subscribe"|"unsubscribe","args":["orderBookL2:XBTUSD", ...]}``, each argument answered
``{"success":true,"subscribe":arg,"request":..}`` (the recorded answers are not replayed), and
the recorded frames of each subscribed ``(table, symbol)`` are streamed. The text ``ping`` gets
``pong``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import orjson

from lobfeed.tape import TapeRecord
from lobfeed.testing.profiles._common import FrameInfo, KeyedProfile, KeyedSubscription
from lobfeed.testing.server import register_profile

PATH = "/realtime"
WELCOME = {
    "info": "Welcome to the BitMEX Realtime API.",
    "docs": "https://www.bitmex.com/app/wsAPI",
}


def _error(message: str, request: Any) -> str:
    return orjson.dumps({"status": 400, "error": message, "request": request}).decode()


@register_profile
class BitmexProfile(KeyedProfile[KeyedSubscription]):
    venues = ("bitmex",)

    def classify(self, record: TapeRecord) -> FrameInfo | None:
        try:
            msg = orjson.loads(record.data or "")
        except orjson.JSONDecodeError:
            return None  # pong
        if not isinstance(msg, dict) or not isinstance(msg.get("table"), str):
            return None  # the greeting and answers: made by the server
        rows = msg.get("data")
        rows = rows if isinstance(rows, list) else []
        keys = frozenset(
            (msg["table"], row["symbol"])
            for row in rows
            if isinstance(row, dict) and isinstance(row.get("symbol"), str)
        )
        return FrameInfo(record.conn or "", keys) if keys else None

    def subscribe_path(self, path: str) -> KeyedSubscription | None:
        route = urlsplit(path).path.rstrip("/")
        return KeyedSubscription(route) if route == PATH else None

    def greeting(self, sub: KeyedSubscription) -> list[str]:
        return [orjson.dumps(WELCOME).decode()]

    def on_message(self, sub: KeyedSubscription, text: str) -> list[str]:
        if text == "ping":
            return ["pong"]
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [_error(f"Unable to parse request: {text[:64]}", None)]
        if not isinstance(msg, dict):
            return [_error("Request must be an object", msg)]
        op, args = msg.get("op"), msg.get("args")
        if op not in ("subscribe", "unsubscribe"):
            return [_error(f"Unknown or unsupported command {op!r}", msg)]
        if isinstance(args, str):
            args = [args]
        if not isinstance(args, list) or not args:
            return [_error("args must be a topic or a list of topics", msg)]
        answers: list[str] = []
        keys: list[tuple[str, str]] = []
        for arg in args:
            table, _, symbol = arg.partition(":") if isinstance(arg, str) else ("", "", "")
            if not table or not symbol:
                answers.append(_error(f"Unknown table or missing symbol: {arg!r}", msg))
                continue
            keys.append((table, symbol))
            answers.append(orjson.dumps({"success": True, op: arg, "request": msg}).decode())
        if op == "subscribe":
            self.subscribe(sub, keys)
        else:
            self.unsubscribe(sub, keys)
        return answers

    def example_urls(self, ws_url: str, rest_url: str) -> list[tuple[str, str]]:
        return [("realtime stream", f"{ws_url}{PATH}")]
