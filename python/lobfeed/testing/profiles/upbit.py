"""Upbit for the local exchange server.

``/websocket/v1``: the client sends one request,
``[{"ticket":..},{"format":"SIMPLE"},{"type":"orderbook","codes":[..]},{"type":"trade",..}]``,
and each new request replaces what the connection streams (as on Upbit). The recorded
``orderbook`` and ``trade`` frames of the codes asked for are streamed back as binary frames,
byte for byte; the text ``PING`` gets ``{"status":"UP"}``. REST: ``/v1/market/all`` and
anything else recorded is answered from the tape's ``http`` records.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import orjson

from lobfeed.tape import TapeRecord
from lobfeed.testing.profiles._common import (
    FrameInfo,
    Key,
    KeyedProfile,
    KeyedSubscription,
    record_json,
)
from lobfeed.testing.server import register_profile

PATH = "/websocket/v1"
TYPES = ("orderbook", "trade")


def _error(name: str, message: str) -> bytes:
    return orjson.dumps({"error": {"name": name, "message": message}})


@register_profile
class UpbitProfile(KeyedProfile[KeyedSubscription]):
    venues = ("upbit",)

    def classify(self, record: TapeRecord) -> FrameInfo | None:
        msg = record_json(record)
        if not isinstance(msg, dict):
            return None
        kind, code = msg.get("ty"), msg.get("cd")
        if kind in TYPES and isinstance(code, str):
            return FrameInfo(record.conn or "", frozenset({(kind, code)}))
        return None

    def subscribe_path(self, path: str) -> KeyedSubscription | None:
        return KeyedSubscription(PATH) if urlsplit(path).path.rstrip("/") == PATH else None

    def on_message(self, sub: KeyedSubscription, text: str) -> list[str | bytes]:
        if text == "PING":
            return ['{"status":"UP"}']
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [_error("INVALID_REQUEST", f"not JSON: {text[:64]}")]
        if not isinstance(request, list) or not any(
            isinstance(part, dict) and "ticket" in part for part in request
        ):
            return [_error("NO_TICKET", "a request is a list starting with a ticket")]
        keys: list[Key] = []
        for part in request:
            if not isinstance(part, dict) or "type" not in part:
                continue
            kind, codes = part.get("type"), part.get("codes")
            if kind not in TYPES or not isinstance(codes, list):
                return [_error("INVALID_REQUEST", f"unknown type {kind!r} or no codes")]
            keys.extend((kind, code) for code in codes if isinstance(code, str))
        # A new request replaces what the connection streamed.
        self.unsubscribe(sub, list(sub.keys))
        self.subscribe(sub, keys)
        return []
