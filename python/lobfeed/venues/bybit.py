"""Bybit v5 public streams: one URL per product category, topics subscribed by message.

Venue names: ``bybit`` and ``bybit-linear`` (USDT/USDC perpetuals and futures, the default),
``bybit-spot``, ``bybit-inverse``. The same symbol is a different market in each category, so
the category is part of the venue name; all of them are decoded by the Rust ``bybit`` session
and recorded under the tape venue ``bybit`` (the connection URL keeps the category).

Books are the in-band ``orderbook.N`` topic: a snapshot on subscribe, then deltas; a resync
is an unsubscribe and a subscribe of the symbol's book topic. Each category offers the depths of
``BOOK_DEPTHS``, and a ``depth`` is served by the smallest of them at least as deep (``depth=1``:
``orderbook.1``; 2 to 50: ``orderbook.50``; 51 to 200: ``orderbook.200``; 201 to 1000:
``orderbook.1000``; no ``depth``: ``orderbook.200``); deeper than 1000 is refused. Bybit's own
deltas keep a depth-N topic at N levels a side, and views show ``depth`` of them.

``quotes``: on linear and inverse, ``tickers`` (its ``bid1Price``/``ask1Price`` fields; the Rust
core gives ``Quote`` events without ``seq``). Spot tickers carry no best bid or ask, so on spot
``quotes`` subscribes ``orderbook.1``, the venue's own top of book (snapshots only, every 10 ms
while it changes), which the Rust core turns into ``Quote`` events without touching the book.
Wherever the book itself is ``orderbook.1`` (``depth=1``), that one topic gives the book and the
quotes, and ``tickers`` is not subscribed besides.

Candles: the kline intervals Bybit has (``KLINE_INTERVALS``); any other is refused.
"""

from __future__ import annotations

import orjson

from lobfeed.venues.base import (
    BOOK,
    CANDLES,
    QUOTES,
    TRADES,
    Subscription,
    VenueSpec,
    chunks,
    pick_depth,
)

DEFAULT_DEPTH = 200
#: Book depths each category offers (``orderbook.{depth}.{symbol}``), as the v5 orderbook page
#: lists them (bybit-exchange.github.io/docs/v5/websocket/public/orderbook, "Depths"; linear
#: and inverse went from 500 to 1000 levels).
BOOK_DEPTHS: dict[str, tuple[int, ...]] = {
    "spot": (1, 50, 200, 1000),
    "linear": (1, 50, 200, 1000),
    "inverse": (1, 50, 200, 1000),
}
#: The depth whose topic is the venue's top of book.
TOP_OF_BOOK = 1
#: ``candle_interval`` (Binance spelling, used by ``Feed``) -> Bybit ``kline`` interval
#: (bybit-exchange.github.io/docs/v5/websocket/public/kline: 1 3 5 15 30 60 120 240 360 720 D W M).
KLINE_INTERVALS: dict[str, str] = {
    "1m": "1",
    "3m": "3",
    "5m": "5",
    "15m": "15",
    "30m": "30",
    "1h": "60",
    "2h": "120",
    "4h": "240",
    "6h": "360",
    "12h": "720",
    "1d": "D",
    "1w": "W",
    "1M": "M",
}
# Bybit spot takes at most 10 topics per subscribe request; the other categories take more,
# but one limit for all keeps the messages the same shape.
MAX_ARGS = 10
# "For one public connection, you cannot have length of "args" array over 21,000 characters"
# (bybit-exchange.github.io/docs/v5/ws/connect, "How to subscribe to topics").
MAX_TOPIC_CHARS_PER_CONNECTION = 21_000


def _op(op: str, args: list[str]) -> str:
    return orjson.dumps({"op": op, "args": args}).decode()


class BybitSpec(VenueSpec):
    native_venue = "bybit"
    rest_url = "https://api.bybit.com"
    ws_url = "wss://stream.bybit.com"
    heartbeat_interval = 20.0
    channels = frozenset({BOOK, TRADES, CANDLES, QUOTES})

    def __init__(self, name: str, category: str) -> None:
        if category not in BOOK_DEPTHS:
            raise ValueError(f"unknown Bybit category {category!r}")
        self.name = name
        self.category = category
        self.book_depths = BOOK_DEPTHS[category]
        self.max_depth = max(self.book_depths)
        self.candle_intervals = tuple(KLINE_INTERVALS)

    def book_depth(self, sub: Subscription) -> int:
        """The venue depth (``orderbook.N``) that serves ``sub.depth``."""
        return pick_depth(sub.depth, BOOK_DEPTHS[self.category], DEFAULT_DEPTH)

    def book_topic(self, symbol: str, sub: Subscription) -> str:
        return f"orderbook.{self.book_depth(sub)}.{symbol}"

    def quote_topic(self, symbol: str, sub: Subscription) -> str | None:
        """The topic that gives ``symbol``'s quotes, ``None`` when the book topic gives them."""
        if BOOK in sub.channels and self.book_depth(sub) == TOP_OF_BOOK:
            return None
        if self.category == "spot":
            return f"orderbook.{TOP_OF_BOOK}.{symbol}"
        return f"tickers.{symbol}"

    def instruments_url(self, rest_url: str, sub: Subscription) -> str | None:
        # One page of 1000 holds every instrument of a category (800 linear, 557 spot in 2026).
        query = f"category={self.category}&status=Trading&limit=1000"
        return f"{rest_url.rstrip('/')}/v5/market/instruments-info?{query}"

    def listed_symbols(self, body: bytes) -> frozenset[str] | None:
        try:
            answer = orjson.loads(body)
            result = answer["result"]
            if answer.get("retCode") != 0 or result.get("nextPageCursor"):
                return None
            return frozenset(item["symbol"] for item in result["list"])
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            return None

    def topics(self, sub: Subscription) -> list[str]:
        self.check(sub)  # a subscription made without a Feed meets the same refusals
        topics: list[str] = []
        for symbol in sub.symbols:
            if BOOK in sub.channels:
                topics.append(self.book_topic(symbol, sub))
            if TRADES in sub.channels:
                topics.append(f"publicTrade.{symbol}")
            if CANDLES in sub.channels:
                topics.append(f"kline.{KLINE_INTERVALS[sub.candle_interval]}.{symbol}")
            if QUOTES in sub.channels:
                quote_topic = self.quote_topic(symbol, sub)
                if quote_topic is not None:
                    topics.append(quote_topic)
        return topics

    def streams(self, sub: Subscription) -> list[str]:
        return self.topics(sub)

    def fits(self, sub: Subscription) -> bool:
        return sum(len(topic) for topic in self.topics(sub)) <= MAX_TOPIC_CHARS_PER_CONNECTION

    def connect_url(self, ws_url: str, sub: Subscription) -> str:
        return f"{ws_url.rstrip('/')}/v5/public/{self.category}"

    def subscribe_messages(self, sub: Subscription) -> list[str]:
        return [_op("subscribe", args) for args in chunks(self.topics(sub), MAX_ARGS)]

    def resubscribe_messages(
        self, symbol: str, sub: Subscription, *, channel: int | None = None
    ) -> list[str]:
        topic = self.book_topic(symbol, sub)
        return [_op("unsubscribe", [topic]), _op("subscribe", [topic])]

    def heartbeat_message(self) -> str | None:
        return '{"op":"ping"}'


LINEAR = BybitSpec("bybit", "linear")
LINEAR_ALIAS = BybitSpec("bybit-linear", "linear")
SPOT = BybitSpec("bybit-spot", "spot")
INVERSE = BybitSpec("bybit-inverse", "inverse")
SPECS = (LINEAR, LINEAR_ALIAS, SPOT, INVERSE)
