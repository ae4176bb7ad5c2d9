"""Coinbase Advanced Trade market data for the local exchange server.

``/``: clients send ``{"type":"subscribe","product_ids":[..],"channel":"level2"}`` (one channel
per message; a ``channels`` list is taken too). Recorded frames are keyed by subscription
channel and product (``l2_data`` frames belong to ``level2``; a frame naming several products
goes to a client that asked for any of them); ``heartbeats`` is keyed by channel alone, and the
recorded ``subscriptions`` frames (Coinbase's answers to subscribing) go to every client.

Every frame of a connection carries one ``sequence_num`` counter: when frames of channels the
client did not ask for are left out, the server lowers the numbers of the frames it sends so
the client's sequence has no holes, as Coinbase's own counter would for that client.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from lobfeed.tape import TapeRecord
from lobfeed.testing.profiles._common import FrameInfo, KeyedProfile, KeyedSubscription, record_json
from lobfeed.testing.server import register_profile

#: Channel name in frames -> the subscription channel that carries it.
FRAME_CHANNELS = {"l2_data": "level2", "level2": "level2"}
#: Per-product lists inside an event, by subscription channel.
PRODUCT_LISTS = {
    "market_trades": "trades",
    "candles": "candles",
    "ticker": "tickers",
    "ticker_batch": "tickers",
}
ANY_PRODUCT = "*"
CONNECTION_WIDE = frozenset({"heartbeats", "status"})
_SEQUENCE = re.compile(r'"sequence_num":(\d+)')


def _products(channel: str, events: object) -> Iterator[str]:
    if not isinstance(events, list):
        return
    inner = PRODUCT_LISTS.get(channel)
    for event in events:
        if not isinstance(event, dict):
            continue
        product = event.get("product_id")
        if isinstance(product, str):
            yield product
        items = event.get(inner) if inner else None
        if isinstance(items, list):
            for item in items:
                if isinstance(item, dict) and isinstance(item.get("product_id"), str):
                    yield item["product_id"]


def _error(message: str) -> str:
    return orjson.dumps({"type": "error", "message": message}).decode()


@register_profile
class CoinbaseProfile(KeyedProfile[KeyedSubscription]):
    venues = ("coinbase",)

    def classify(self, record: TapeRecord) -> FrameInfo | None:
        conn = record.conn or ""
        msg = record_json(record)
        if not isinstance(msg, dict):
            return None
        counted = "sequence_num" in msg
        frame_channel = msg.get("channel")
        if not isinstance(frame_channel, str):
            return None  # errors: made by the server
        if frame_channel == "subscriptions":
            return FrameInfo(conn, counted=counted)
        channel = FRAME_CHANNELS.get(frame_channel, frame_channel)
        if channel in CONNECTION_WIDE:
            return FrameInfo(conn, frozenset({(channel, ANY_PRODUCT)}), counted)
        keys = frozenset((channel, product) for product in _products(channel, msg.get("events")))
        if not keys:
            # A frame of a channel that names no product (an empty update): goes with the channel.
            keys = frozenset({(channel, ANY_PRODUCT)})
        return FrameInfo(conn, keys, counted)

    def subscribe(self, sub: KeyedSubscription, keys: Iterable[Any]) -> None:
        wanted = set(keys)
        # Asking for any product of a channel also brings the channel's product-less frames.
        wanted |= {(channel, ANY_PRODUCT) for channel, _ in wanted}
        super().subscribe(sub, wanted)

    def unsubscribe(self, sub: KeyedSubscription, keys: Iterable[Any]) -> None:
        dropped = set(keys)
        kept = {channel for channel, product in sub.keys - dropped if product != ANY_PRODUCT}
        dropped |= {
            (channel, ANY_PRODUCT)
            for channel, _ in dropped
            if channel not in CONNECTION_WIDE and channel not in kept
        }
        super().unsubscribe(sub, dropped)

    def renumber(self, text: str, skipped: int) -> str:
        def lower(match: re.Match[str]) -> str:
            return f'"sequence_num":{int(match.group(1)) - skipped}'

        return _SEQUENCE.sub(lower, text, count=1)

    def subscribe_path(self, path: str) -> KeyedSubscription | None:
        return KeyedSubscription(path) if path.split("?")[0] in ("", "/") else None

    def on_message(self, sub: KeyedSubscription, text: str) -> list[str]:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [_error("failure to parse the request")]
        if not isinstance(msg, dict):
            return [_error("the request must be an object")]
        kind = msg.get("type")
        if kind not in ("subscribe", "unsubscribe"):
            return [_error(f"unknown request type {kind!r}")]
        channels = msg.get("channels", [msg.get("channel")])
        products = msg.get("product_ids", [])
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            return [_error("channel must be a channel name")]
        if not isinstance(products, list) or not all(isinstance(p, str) for p in products):
            return [_error("product_ids must be a list of product ids")]
        keys: set[tuple[str, str]] = set()
        for channel in channels:
            if channel in CONNECTION_WIDE:
                keys.add((channel, ANY_PRODUCT))
            elif not products:
                return [_error(f"{channel} needs product_ids")]
            else:
                keys.update((channel, product) for product in products)
        if kind == "subscribe":
            self.subscribe(sub, keys)
        else:
            self.unsubscribe(sub, keys)
        return []  # Coinbase answers with a `subscriptions` frame: the recorded ones are replayed

    def example_urls(self, ws_url: str, rest_url: str) -> list[tuple[str, str]]:
        urls = [("websocket", f"{ws_url}/")]
        urls += [("rest", f"{rest_url}{path}") for path in sorted(self.recorded_rest.paths())]
        return urls
