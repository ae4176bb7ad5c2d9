"""Deribit API v2 JSON-RPC websocket for the local exchange server.

``/ws/api/v2``: clients send JSON-RPC requests. ``public/subscribe`` and
``public/unsubscribe`` name channels (``book.BTC-PERPETUAL.raw``); the server answers with the
channel list as Deribit does and streams the recorded ``subscription`` frames of each channel
subscribed (the recorded answers are not replayed). ``public/set_heartbeat`` is answered
``"ok"`` and followed at once by one ``test_request``, as the venue sends one per interval: a
client must answer it with ``public/test`` (counted in ``test_answers``), which makes the
heartbeat path testable without waiting for an interval. REST: the recorded
``/api/v2/public/get_instruments`` answers.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import orjson

from lobfeed.tape import Tape, TapeRecord
from lobfeed.testing.profiles._common import FrameInfo, KeyedProfile, KeyedSubscription
from lobfeed.testing.server import register_profile

PATH = "/ws/api/v2"
TEST_REQUEST = '{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}'
# JSON-RPC's own code for bad parameters, which Deribit uses.
INVALID_PARAMS = -32602
METHOD_NOT_FOUND = -32601


def _answer(request_id: Any, result: Any) -> str:
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}).decode()


def _error(request_id: Any, code: int, message: str) -> str:
    error = {"code": code, "message": message}
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "error": error}).decode()


@register_profile
class DeribitProfile(KeyedProfile[KeyedSubscription]):
    venues = ("deribit",)

    def __init__(self, tape: Tape) -> None:
        super().__init__(tape)
        self.test_answers = 0
        """``public/test`` requests received: answers to the ``test_request``s sent."""

    def classify(self, record: TapeRecord) -> FrameInfo | None:
        try:
            msg = orjson.loads(record.data or "")
        except orjson.JSONDecodeError:
            return None
        if not isinstance(msg, dict) or msg.get("method") != "subscription":
            return None  # answers: made by the server
        params = msg.get("params")
        channel = params.get("channel") if isinstance(params, dict) else None
        if not isinstance(channel, str):
            return None
        return FrameInfo(record.conn or "", frozenset({(channel,)}))

    def subscribe_path(self, path: str) -> KeyedSubscription | None:
        route = urlsplit(path).path.rstrip("/")
        return KeyedSubscription(route) if route == PATH else None

    def on_message(self, sub: KeyedSubscription, text: str) -> list[str]:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [_error(None, INVALID_PARAMS, f"not JSON: {text[:64]}")]
        if not isinstance(msg, dict):
            return [_error(None, INVALID_PARAMS, "a request is a JSON object")]
        request_id, method = msg.get("id"), msg.get("method")
        params = msg.get("params")
        params = params if isinstance(params, dict) else {}
        if method == "public/set_heartbeat":
            return [_answer(request_id, "ok"), TEST_REQUEST]
        if method == "public/test":
            self.test_answers += 1
            return [_answer(request_id, {"version": "lobfeed-serve"})]
        if method not in ("public/subscribe", "public/unsubscribe"):
            return [_error(request_id, METHOD_NOT_FOUND, f"Method not found: {method!r}")]
        channels = params.get("channels")
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            return [_error(request_id, INVALID_PARAMS, "channels must be a list of names")]
        keys = [(channel,) for channel in channels]
        if method == "public/subscribe":
            self.subscribe(sub, keys)
        else:
            self.unsubscribe(sub, keys)
        return [_answer(request_id, channels)]

    def example_urls(self, ws_url: str, rest_url: str) -> list[tuple[str, str]]:
        return [("JSON-RPC stream", f"{ws_url}{PATH}")]
