"""OKX v5 public websocket for the local exchange server.

``/ws/v5/public`` (and ``/ws/v5/business``): clients send
``{"op":"subscribe","args":[{"channel":..,"instId":..}, ...]}``; OKX answers every argument
with its own ``{"event":"subscribe","arg":{..}}`` (so does the server; the recorded answers are
not replayed), the text ``ping`` gets ``pong``, and the recorded frames of each subscribed
``(channel, instId)`` are streamed. REST: ``/api/v5/market/books`` and anything else recorded
is answered from the tape's ``http`` records.
"""

from __future__ import annotations

import itertools
from urllib.parse import urlsplit

import orjson

from lobfeed.tape import Tape, TapeRecord
from lobfeed.testing.profiles._common import FrameInfo, KeyedProfile, KeyedSubscription
from lobfeed.testing.server import RestRequest, RestResponse, register_profile

PATHS = ("/ws/v5/public", "/ws/v5/business")
BOOKS_PATH = "/api/v5/market/books"
# OKX's websocket "notice" event, code 64008: sent before a connection is closed for a service
# upgrade (www.okx.com/docs-v5/en, "WebSocket" > "Notification": "The connection will soon be
# closed for a service upgrade. Please reconnect.").
NOTICE_CODE = "64008"
NOTICE_MSG = "The connection will soon be closed for a service upgrade. Please reconnect."


def _error(code: str, msg: str) -> str:
    return orjson.dumps({"event": "error", "code": code, "msg": msg}).decode()


def _arg_key(arg: object) -> tuple[str, str] | None:
    if not isinstance(arg, dict):
        return None
    channel, inst = arg.get("channel"), arg.get("instId")
    if isinstance(channel, str) and isinstance(inst, str):
        return channel, inst
    return None


@register_profile
class OkxProfile(KeyedProfile[KeyedSubscription]):
    venues = ("okx",)

    def __init__(self, tape: Tape) -> None:
        super().__init__(tape)
        self._conn_ids = itertools.count(1)

    def notice_frame(self) -> str | None:
        # connId: OKX's are 8 hex digits; these are made up, one per notice.
        conn_id = f"{next(self._conn_ids) & 0xFFFFFFFF:08x}"
        notice = {"event": "notice", "code": NOTICE_CODE, "msg": NOTICE_MSG, "connId": conn_id}
        return orjson.dumps(notice).decode()

    def classify(self, record: TapeRecord) -> FrameInfo | None:
        text = record.data or ""
        if not text.startswith("{"):
            return None  # pong
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(msg, dict) or "event" in msg or "data" not in msg:
            return None  # acks and errors: made by the server
        key = _arg_key(msg.get("arg"))
        return FrameInfo(record.conn or "", frozenset({key})) if key else None

    def subscribe_path(self, path: str) -> KeyedSubscription | None:
        route = urlsplit(path).path.rstrip("/")
        return KeyedSubscription(route) if route in PATHS else None

    def on_message(self, sub: KeyedSubscription, text: str) -> list[str]:
        if text == "ping":
            return ["pong"]
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [_error("60012", f"Invalid request: {text[:64]}")]
        if not isinstance(msg, dict):
            return [_error("60012", "Invalid request: not an object")]
        op, args = msg.get("op"), msg.get("args")
        if op not in ("subscribe", "unsubscribe"):
            return [_error("60012", f"Invalid request: unknown op {op!r}")]
        if not isinstance(args, list) or not args:
            return [_error("60012", "Invalid request: args must be a non-empty list")]
        answers: list[str] = []
        keys: list[tuple[str, str]] = []
        for arg in args:
            key = _arg_key(arg)
            if key is None:
                answers.append(
                    _error("60018", f"Wrong URL or channel:{orjson.dumps(arg).decode()}")
                )
                continue
            keys.append(key)
            ack = {"channel": key[0], "instId": key[1]}
            answers.append(orjson.dumps({"event": op, "arg": ack}).decode())
        if op == "subscribe":
            self.subscribe(sub, keys)
        else:
            self.unsubscribe(sub, keys)
        return answers

    def is_snapshot_request(self, path: str) -> bool:
        return path == BOOKS_PATH

    def not_found(self, request: RestRequest) -> RestResponse:
        if request.path == BOOKS_PATH:
            inst = request.param("instId")
            msg = f"Instrument ID {inst} has no recorded book" if inst else "instId is required"
            return RestResponse.json(400, {"code": "51001", "msg": msg, "data": []})
        return RestResponse.json(404, {"code": "50000", "msg": f"no path {request.path}"})

    def example_urls(self, ws_url: str, rest_url: str) -> list[tuple[str, str]]:
        return [("public stream", f"{ws_url}{PATHS[0]}")]
