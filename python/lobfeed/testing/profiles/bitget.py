"""Bitget public websocket v1 (``/spot/v1/stream``, ``/mix/v1/stream``) for the local exchange.

Clients send ``{"op":"subscribe","args":[{"instType","channel","instId"}, ...]}``; Bitget
answers each argument with ``{"event":"subscribe","arg":{..}}``, instType in lower case (so
does the server; the recorded answers are not replayed), the text ``ping`` gets ``pong``, and
the recorded frames of each subscribed ``(instType, channel, instId)`` are streamed. REST: the
instrument lists the tape holds.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import orjson

from lobfeed.tape import TapeRecord
from lobfeed.testing.profiles._common import FrameInfo, Key, KeyedProfile, KeyedSubscription
from lobfeed.testing.server import RestRequest, RestResponse, register_profile

#: Websocket path -> the instType its subscriptions name.
MARKETS = {"/spot/v1/stream": "sp", "/mix/v1/stream": "mc"}


def _error(code: int, msg: str) -> str:
    return orjson.dumps({"event": "error", "code": code, "msg": msg}).decode()


def _arg_key(arg: object) -> Key | None:
    if not isinstance(arg, dict):
        return None
    inst_type, channel, inst = arg.get("instType"), arg.get("channel"), arg.get("instId")
    if isinstance(inst_type, str) and isinstance(channel, str) and isinstance(inst, str):
        return inst_type.lower(), channel, inst
    return None


class BitgetSubscription(KeyedSubscription):
    def __init__(self, path: str, inst_type: str) -> None:
        super().__init__(path)
        self.inst_type = inst_type


@register_profile
class BitgetProfile(KeyedProfile[BitgetSubscription]):
    venues = ("bitget", "bitget-futures")

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

    def subscribe_path(self, path: str) -> BitgetSubscription | None:
        route = urlsplit(path).path.rstrip("/")
        inst_type = MARKETS.get(route)
        return BitgetSubscription(route, inst_type) if inst_type else None

    def on_message(self, sub: BitgetSubscription, text: str) -> list[str]:
        if text == "ping":
            return ["pong"]
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [_error(30001, f"request is not JSON: {text[:64]}")]
        if not isinstance(msg, dict):
            return [_error(30001, "request is not an object")]
        op, args = msg.get("op"), msg.get("args")
        if op not in ("subscribe", "unsubscribe"):
            return [_error(30002, f"unknown op {op!r}")]
        if not isinstance(args, list) or not args:
            return [_error(30003, "args must be a non-empty list")]
        answers: list[str] = []
        keys: list[Key] = []
        for arg in args:
            key = _arg_key(arg)
            if key is None or key[0] != sub.inst_type:
                arg_text = orjson.dumps(arg).decode()
                answers.append(_error(30001, f"{arg_text} is not a {sub.inst_type} channel"))
                continue
            keys.append(key)
            ack = {"instType": key[0], "channel": key[1], "instId": key[2]}
            answers.append(orjson.dumps({"event": op, "arg": ack}).decode())
        if op == "subscribe":
            self.subscribe(sub, keys)
        else:
            self.unsubscribe(sub, keys)
        return answers

    def not_found(self, request: RestRequest) -> RestResponse:
        body = {"code": "40404", "msg": f"Request URL NOT FOUND: {request.path}", "data": None}
        return RestResponse.json(404, body)

    def example_urls(self, ws_url: str, rest_url: str) -> list[tuple[str, str]]:
        return [(f"{market} stream", f"{ws_url}{path}") for path, market in MARKETS.items()]
