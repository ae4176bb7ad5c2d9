"""Bitfinex websocket v2 for the local exchange server.

``/ws/2``: a client is greeted with the recorded ``info`` event; ``conf`` is answered with the
flags the client asked for; ``subscribe`` (``channel`` and ``symbol``, books also ``prec``) is
answered by the recorded ``subscribed`` event of that subscription, which is replayed in its
recorded place with the channel id Bitfinex assigned then (the data frames use it), or by an
error event when the tape has no such subscription. ``unsubscribe`` takes that recorded
``chanId``. Books are served at the recorded length, whatever ``len`` the client asked for.

The tapes were recorded with conf flag 65536: the last element of every data frame is one
sequence counter of the connection. When frames of subscriptions the client did not ask for
are left out, the frames sent are renumbered so the client's sequence has no holes.
"""

from __future__ import annotations

import re
import time
from typing import Any

import orjson

from lobfeed.tape import Tape, TapeRecord
from lobfeed.testing.profiles._common import FrameInfo, KeyedProfile, KeyedSubscription, record_json
from lobfeed.testing.server import register_profile

PATH = "/ws/2"
DEFAULT_PRECISION = "P0"
_LAST_NUMBER = re.compile(r",\s*(\d+)\s*\]\s*$")

Key = tuple[str, ...]


def _key(channel: object, symbol: object, prec: object = None) -> Key | None:
    if not isinstance(channel, str) or not isinstance(symbol, str):
        return None
    if channel == "book":
        return (channel, symbol, prec if isinstance(prec, str) else DEFAULT_PRECISION)
    return (channel, symbol)


def _dumps(obj: object) -> str:
    return orjson.dumps(obj).decode()


class BitfinexSubscription(KeyedSubscription):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.index = -1
        """Index of the last recorded frame the replay looked at."""


@register_profile
class BitfinexProfile(KeyedProfile[BitfinexSubscription]):
    venues = ("bitfinex",)

    def __init__(self, tape: Tape) -> None:
        # (conn, chanId) -> key, from every recorded `subscribed` event (a channel's first
        # frames can be recorded before the event that names it).
        self.channels: dict[tuple[str, int], Key] = {}
        self.chan_ids: dict[Key, int] = {}
        # key -> (index among the recv frames, text) of its recorded `subscribed` event.
        self.announcements: dict[Key, tuple[int, str]] = {}
        self.info: str | None = None
        for index, record in enumerate(tape.iter_records("recv")):
            text = record.data or ""
            if '"subscribed"' not in text:
                continue
            msg = orjson.loads(text)
            if isinstance(msg, dict) and msg.get("event") == "subscribed":
                key = _key(msg.get("channel"), msg.get("symbol"), msg.get("prec"))
                chan_id = msg.get("chanId")
                if key is not None and isinstance(chan_id, int):
                    self.channels[(record.conn or "", chan_id)] = key
                    self.chan_ids.setdefault(key, chan_id)
                    self.announcements.setdefault(key, (index, text))
        super().__init__(tape)

    def classify(self, record: TapeRecord) -> FrameInfo | None:
        conn = record.conn or ""
        msg = record_json(record)
        if isinstance(msg, list):
            key = self.channels.get((conn, msg[0])) if msg and isinstance(msg[0], int) else None
            return FrameInfo(conn, frozenset({key}), counted=True) if key else None
        if not isinstance(msg, dict):
            return None
        event = msg.get("event")
        if event == "info" and self.info is None:
            self.info = record.data
        if event == "subscribed":
            key = self.channels.get((conn, msg.get("chanId", -1)))
            return FrameInfo(conn, frozenset({key})) if key else None
        return None  # conf, pong, unsubscribed, errors: made by the server

    def renumber(self, text: str, skipped: int) -> str:
        match = _LAST_NUMBER.search(text)
        if match is None:
            return text
        start, end = match.span(1)
        return f"{text[:start]}{int(match.group(1)) - skipped}{text[end:]}"

    def frame_for(
        self, sub: BitfinexSubscription, index: int, record: TapeRecord
    ) -> str | bytes | None:
        sub.index = index
        return super().frame_for(sub, index, record)

    def subscribe_path(self, path: str) -> BitfinexSubscription | None:
        route = path.split("?")[0].rstrip("/")
        return BitfinexSubscription(route) if route == PATH else None

    def greeting(self, sub: BitfinexSubscription) -> list[str]:
        return [self.info] if self.info else []

    def on_message(self, sub: BitfinexSubscription, text: str) -> list[str]:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [_dumps({"event": "error", "msg": "malformed request", "code": 10000})]
        if not isinstance(msg, dict):
            return [_dumps({"event": "error", "msg": "malformed request", "code": 10000})]
        event = msg.get("event")
        if event == "ping":
            pong: dict[str, Any] = {"event": "pong", "ts": time.time_ns() // 1_000_000}
            if "cid" in msg:
                pong["cid"] = msg["cid"]
            return [_dumps(pong)]
        if event == "conf":
            return [_dumps({"event": "conf", "status": "OK", "flags": msg.get("flags", 0)})]
        if event == "subscribe":
            return self._subscribe(sub, msg)
        if event == "unsubscribe":
            chan_id = msg.get("chanId")
            keys = [k for k, c in self.chan_ids.items() if c == chan_id and k in sub.keys]
            if not keys:
                error = {"event": "error", "msg": "unsubscribe: invalid", "code": 10400}
                return [_dumps({**error, "chanId": chan_id})]
            self.unsubscribe(sub, keys)
            return [_dumps({"event": "unsubscribed", "status": "OK", "chanId": chan_id})]
        return [_dumps({"event": "error", "msg": f"unknown event {event!r}", "code": 10001})]

    def _subscribe(self, sub: BitfinexSubscription, msg: dict[str, Any]) -> list[str]:
        symbol = msg.get("symbol")
        if symbol is None and isinstance(msg.get("pair"), str):
            symbol = f"t{msg['pair']}"
        key = _key(msg.get("channel"), symbol, msg.get("prec"))
        if key is None or not self.recorded(key):
            error = {"event": "error", "msg": "subscribe: invalid", "code": 10300}
            error.update((k, msg[k]) for k in ("channel", "symbol", "pair") if k in msg)
            return [_dumps(error)]
        if key in sub.keys:
            error = {"event": "error", "msg": "subscribe: dup", "code": 10301}
            return [_dumps({**error, "channel": key[0], "chanId": self.chan_ids[key]})]
        self.subscribe(sub, [key])
        index, announcement = self.announcements[key]
        if sub.index >= index:
            # The replay is past the recorded answer (a late subscription, or a second one
            # after an unsubscribe): answer now, with the recorded channel id.
            return [announcement]
        return []  # the recorded `subscribed` event is replayed in its place

    def example_urls(self, ws_url: str, rest_url: str) -> list[tuple[str, str]]:
        return [("websocket v2", f"{ws_url}{PATH}")]
