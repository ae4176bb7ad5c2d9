"""Kraken websocket v1 for the local exchange server.

``/`` (``wss://ws.kraken.com``): a client is greeted with the recorded ``systemStatus``, then
sends ``{"event":"subscribe","pair":[..],"subscription":{"name":..}}``. Each pair is answered
with the recorded ``subscriptionStatus`` of that subscription (it carries the channel id the
recorded frames use, and for books the recorded depth, which is the depth served whatever the
client asked for), or with an error status when the tape has none. ``{"event":"ping"}`` gets
a ``pong``. Recorded data frames are keyed by ``(name, pair)`` from their channel name and
pair; the tapes keep each subscription on its own connection (books, trades and tickers on
three), and one client connection gets all it asked for, merged in file order.
"""

from __future__ import annotations

from typing import Any

import orjson

from lobfeed.tape import Tape, TapeRecord
from lobfeed.testing.profiles._common import FrameInfo, KeyedProfile, KeyedSubscription, record_json
from lobfeed.testing.server import register_profile

Key = tuple[str, str]


def _name(channel_name: str) -> str:
    """The subscription name of a channel name: ``book-1000`` is ``book``; ``ohlc-5`` stays."""
    return "book" if channel_name.startswith("book") else channel_name


def _request_name(subscription: dict[str, Any]) -> str | None:
    name = subscription.get("name")
    if not isinstance(name, str):
        return None
    if name == "ohlc":
        return f"ohlc-{subscription.get('interval', 1)}"
    return name


@register_profile
class KrakenProfile(KeyedProfile[KeyedSubscription]):
    venues = ("kraken",)

    def __init__(self, tape: Tape) -> None:
        self.statuses: dict[Key, dict[str, Any]] = {}
        self.system_status: str | None = None
        super().__init__(tape)

    def classify(self, record: TapeRecord) -> FrameInfo | None:
        conn = record.conn or ""
        msg = record_json(record)
        if isinstance(msg, list):
            if len(msg) >= 4 and isinstance(msg[-1], str) and isinstance(msg[-2], str):
                return FrameInfo(conn, frozenset({(_name(msg[-2]), msg[-1])}))
            return None
        if not isinstance(msg, dict):
            return None
        event = msg.get("event")
        if event == "heartbeat":
            return FrameInfo(conn)
        if event == "systemStatus" and self.system_status is None:
            self.system_status = record.data
        elif event == "subscriptionStatus" and msg.get("status") == "subscribed":
            channel, pair = msg.get("channelName"), msg.get("pair")
            if isinstance(channel, str) and isinstance(pair, str):
                self.statuses.setdefault((_name(channel), pair), msg)
        return None  # statuses and pongs are answers to the client, made by the server

    def subscribe_path(self, path: str) -> KeyedSubscription | None:
        return KeyedSubscription(path) if path.split("?")[0] in ("", "/") else None

    def greeting(self, sub: KeyedSubscription) -> list[str]:
        return [self.system_status] if self.system_status else []

    def on_message(self, sub: KeyedSubscription, text: str) -> list[str]:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [_dumps({"errorMessage": "Malformed request", "event": "error"})]
        if not isinstance(msg, dict):
            return [_dumps({"errorMessage": "Malformed request", "event": "error"})]
        event = msg.get("event")
        reqid = msg.get("reqid")
        if event == "ping":
            return [_dumps(_with_reqid({"event": "pong"}, reqid))]
        if event not in ("subscribe", "unsubscribe"):
            return [
                _dumps(_with_reqid({"errorMessage": "Unsupported event", "event": "error"}, reqid))
            ]
        pairs, subscription = msg.get("pair"), msg.get("subscription")
        name = _request_name(subscription) if isinstance(subscription, dict) else None
        error: dict[str, Any]
        if name is None or not isinstance(pairs, list) or not pairs:
            error = {
                "errorMessage": "Malformed request",
                "event": "subscriptionStatus",
                "status": "error",
            }
            return [_dumps(_with_reqid(error, reqid))]
        assert isinstance(subscription, dict)
        answers: list[str] = []
        keys: list[Key] = []
        for pair in pairs:
            recorded = self.statuses.get((name, pair)) if isinstance(pair, str) else None
            if recorded is None:
                error = {
                    "errorMessage": f"Subscription {name} of {pair} is not in the tape",
                    "event": "subscriptionStatus",
                    "pair": pair,
                    "status": "error",
                    "subscription": subscription,
                }
                answers.append(_dumps(_with_reqid(error, reqid)))
                continue
            keys.append((name, pair))
            status = dict(recorded)
            if event == "unsubscribe":
                status["status"] = "unsubscribed"
            answers.append(_dumps(_with_reqid(status, reqid)))
        if event == "subscribe":
            self.subscribe(sub, keys)
        else:
            self.unsubscribe(sub, keys)
        return answers

    def example_urls(self, ws_url: str, rest_url: str) -> list[tuple[str, str]]:
        return [("websocket v1", f"{ws_url}/")]


def _with_reqid(obj: dict[str, Any], reqid: object) -> dict[str, Any]:
    if reqid is not None:
        obj["reqid"] = reqid
    return obj


def _dumps(obj: object) -> str:
    return orjson.dumps(obj).decode()
