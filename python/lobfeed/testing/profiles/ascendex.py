"""AscendEX (pro API v1) for the local exchange server.

``/<account group>/api/pro/v1/stream``: greeted with ``{"m":"connected","type":"unauth"}``;
``{"op":"sub","ch":"depth:A,B"}`` (and ``trades:``) is answered per symbol with
``{"m":"sub","ch":"depth:A","code":0}``; ``{"op":"req","action":"depth-snapshot",..}`` streams
the recorded snapshot of that symbol; the recorded ``{"m":"ping"}`` frames go with the
connection and the client's ``{"op":"pong"}`` answers are counted (``pongs``). REST: the product
list from the tape.
"""

from __future__ import annotations

import re

import orjson

from lobfeed.tape import Tape, TapeRecord
from lobfeed.testing.profiles._common import FrameInfo, KeyedProfile, KeyedSubscription, record_json
from lobfeed.testing.server import register_profile

PATH = re.compile(r"^/[^/]+/api/pro/v1/stream/?$")
CHANNELS = ("depth", "trades")
SNAPSHOT = "depth-snapshot"
# AscendEX's code for a request it cannot read ("INVALID_WS_REQUEST_DATA").
INVALID_REQUEST = 100005


def _frame(payload: dict[str, object]) -> str:
    return orjson.dumps(payload).decode()


def _error(info: str) -> str:
    return _frame(
        {"m": "error", "code": INVALID_REQUEST, "reason": "INVALID_WS_REQUEST_DATA", "info": info}
    )


@register_profile
class AscendexProfile(KeyedProfile[KeyedSubscription]):
    venues = ("ascendex",)

    def __init__(self, tape: Tape) -> None:
        super().__init__(tape)
        #: ``{"op":"pong"}`` answers received from clients.
        self.pongs = 0

    def classify(self, record: TapeRecord) -> FrameInfo | None:
        msg = record_json(record)
        if not isinstance(msg, dict):
            return None
        kind, symbol, conn = msg.get("m"), msg.get("symbol"), record.conn or ""
        if kind == "ping":
            return FrameInfo(conn)
        if kind in (*CHANNELS, SNAPSHOT) and isinstance(symbol, str):
            return FrameInfo(conn, frozenset({(kind, symbol)}))
        return None  # connected, sub answers: made by the server

    def subscribe_path(self, path: str) -> KeyedSubscription | None:
        route = path.split("?")[0]
        return KeyedSubscription(route) if PATH.match(route) else None

    def greeting(self, sub: KeyedSubscription) -> list[str]:
        return [_frame({"m": "connected", "type": "unauth"})]

    def on_message(self, sub: KeyedSubscription, text: str) -> list[str]:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [_error("not JSON")]
        if not isinstance(msg, dict):
            return [_error("not an object")]
        op = msg.get("op")
        if op == "pong":
            self.pongs += 1
            return []
        if op == "ping":
            return [_frame({"m": "pong", "hp": 3})]
        if op == "req":
            args = msg.get("args")
            symbol = args.get("symbol") if isinstance(args, dict) else None
            if msg.get("action") != SNAPSHOT or not isinstance(symbol, str):
                return [_error(f"Invalid request action: {msg.get('action')}")]
            self.subscribe(sub, [(SNAPSHOT, symbol)])
            return []
        channel, _, symbols = str(msg.get("ch", "")).partition(":")
        if op not in ("sub", "unsub") or channel not in CHANNELS or not symbols:
            return [_error(f"Invalid request: {text[:64]}")]
        keys = [(channel, symbol) for symbol in symbols.split(",") if symbol]
        if op == "sub":
            self.subscribe(sub, keys)
        else:
            self.unsubscribe(sub, keys)
        return [_frame({"m": op, "ch": f"{channel}:{symbol}", "code": 0}) for _, symbol in keys]

    def example_urls(self, ws_url: str, rest_url: str) -> list[tuple[str, str]]:
        return [("stream", f"{ws_url}/1/api/pro/v1/stream")]
