"""Coinbase Advanced Trade market data: ``level2``, ``market_trades``, ``candles``, ``ticker``.

One subscribe message per channel. ``heartbeats`` is always subscribed: it keeps quiet
connections open, and every frame of the connection carries one ``sequence_num`` counter, so a
heartbeat also reveals a frame lost on a quiet channel. After a gap the Rust session asks to
resubscribe every book: each symbol's ``level2`` is unsubscribed and subscribed again, which
makes Coinbase send that product's snapshot.

Depth: ``level2`` is the whole book (no depth choice), so every ``depth`` of 1 or more is served
by it: the book is kept whole and views show ``depth`` levels.

Candles: Coinbase has five-minute buckets only, so ``candle_interval`` must be ``"5m"`` when
candles are asked for. ``quotes`` subscribes ``ticker``, whose best bid and ask (with their
quantities) the Rust core turns into ``Quote`` events.
"""

from __future__ import annotations

import orjson

from lobfeed.venues.base import BOOK, CANDLES, QUOTES, TRADES, Subscription, VenueSpec

#: Feed channel -> Coinbase channel, in the order they are subscribed.
CHANNEL_NAMES = (
    (BOOK, "level2"),
    (TRADES, "market_trades"),
    (CANDLES, "candles"),
    (QUOTES, "ticker"),
)
HEARTBEATS = "heartbeats"
#: The only candle width Coinbase Advanced Trade streams.
CANDLE_INTERVALS = ("5m",)


def _message(kind: str, products: list[str], channel: str) -> str:
    return orjson.dumps({"type": kind, "product_ids": products, "channel": channel}).decode()


class CoinbaseSpec(VenueSpec):
    name = "coinbase"
    ws_url = "wss://advanced-trade-ws.coinbase.com"
    rest_url = "https://api.coinbase.com"
    channels = frozenset({BOOK, TRADES, CANDLES, QUOTES})
    candle_intervals = CANDLE_INTERVALS
    # Subscribing sends a snapshot of recent trades and the last candles (hours old).
    history_channels = frozenset({TRADES, CANDLES})

    def instruments_url(self, rest_url: str, sub: Subscription) -> str | None:
        return f"{rest_url.rstrip('/')}/api/v3/brokerage/market/products"

    def listed_symbols(self, body: bytes) -> frozenset[str] | None:
        try:
            answer = orjson.loads(body)
            if answer.get("pagination", {}).get("has_next"):
                return None
            return frozenset(product["product_id"] for product in answer["products"])
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            return None

    def subscribe_messages(self, sub: Subscription) -> list[str]:
        products = list(sub.symbols)
        messages = [_message("subscribe", products, HEARTBEATS)]
        for channel, name in CHANNEL_NAMES:
            if channel in sub.channels:
                messages.append(_message("subscribe", products, name))
        return messages

    def resubscribe_messages(
        self, symbol: str, sub: Subscription, *, channel: int | None = None
    ) -> list[str]:
        return [
            _message("unsubscribe", [symbol], "level2"),
            _message("subscribe", [symbol], "level2"),
        ]


SPEC = CoinbaseSpec()
