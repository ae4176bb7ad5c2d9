"""HTX swaps and spot for the local exchange server.

``/swap-ws`` and ``/linear-swap-ws`` (swaps), ``/ws`` (spot): clients send
``{"sub": "market.<symbol>.<channel>", "id": ...}`` (``unsub`` to stop); the server answers
each with ``{"id","subbed","ts","status":"ok"}`` (the recorded answers are not replayed) and
streams the recorded frames of every subscribed topic. Like HTX, everything it sends is a
binary frame of gzip-compressed JSON: the recorded frames go back byte for byte, its own
answers are compressed. The recorded ``{"ping":T}`` frames are replayed to every client of
their connection; a ``{"pong":T}`` is taken and counted in :attr:`pongs`.
"""

from __future__ import annotations

import gzip
import time
from urllib.parse import urlsplit

import orjson

from lobfeed.tape import Tape, TapeRecord
from lobfeed.testing.profiles._common import (
    FrameInfo,
    KeyedProfile,
    KeyedSubscription,
    record_json,
)
from lobfeed.testing.server import register_profile

PATHS = ("/swap-ws", "/linear-swap-ws", "/ws")


def _compressed(message: dict[str, object]) -> bytes:
    return gzip.compress(orjson.dumps(message), mtime=0)


@register_profile
class HtxProfile(KeyedProfile[KeyedSubscription]):
    venues = ("htx-swap", "htx")

    def __init__(self, tape: Tape) -> None:
        super().__init__(tape)
        self.pongs = 0
        """The ``{"pong":T}`` answers clients sent."""

    def classify(self, record: TapeRecord) -> FrameInfo | None:
        msg = record_json(record)
        if not isinstance(msg, dict):
            return None
        conn = record.conn or ""
        if "ping" in msg:
            return FrameInfo(conn)
        channel = msg.get("ch")
        if isinstance(channel, str) and "tick" in msg:
            return FrameInfo(conn, frozenset({(channel,)}))
        return None  # subscription answers: made by the server

    def subscribe_path(self, path: str) -> KeyedSubscription | None:
        route = urlsplit(path).path.rstrip("/")
        return KeyedSubscription(route) if route in PATHS else None

    def on_message(self, sub: KeyedSubscription, text: str) -> list[str | bytes]:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [self._error(None, "bad-request", f"invalid json: {text[:64]}")]
        if not isinstance(msg, dict):
            return [self._error(None, "bad-request", "a request is a JSON object")]
        if "pong" in msg:
            self.pongs += 1
            return []
        request_id = msg.get("id")
        for op, answer in (("sub", "subbed"), ("unsub", "unsubbed")):
            topic = msg.get(op)
            if topic is None:
                continue
            if not isinstance(topic, str) or not topic.startswith("market."):
                return [self._error(request_id, "bad-request", f"invalid topic {topic}")]
            if op == "sub":
                self.subscribe(sub, [(topic,)])
            else:
                self.unsubscribe(sub, [(topic,)])
            ts = time.time_ns() // 1_000_000
            return [_compressed({"id": request_id, answer: topic, "ts": ts, "status": "ok"})]
        return [self._error(request_id, "bad-request", "neither sub nor unsub")]

    @staticmethod
    def _error(request_id: object, code: str, message: str) -> bytes:
        ts = time.time_ns() // 1_000_000
        error = {
            "status": "error",
            "ts": ts,
            "id": request_id,
            "err-code": code,
            "err-msg": message,
        }
        return _compressed(error)

    def example_urls(self, ws_url: str, rest_url: str) -> list[tuple[str, str]]:
        return [(f"stream {path}", f"{ws_url}{path}") for path in PATHS]
