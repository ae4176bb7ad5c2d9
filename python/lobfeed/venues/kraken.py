"""Kraken spot websocket: v1 (venue ``kraken``, as in the recorded tapes) and v2 (``kraken-v2``).

Both are decoded by the Rust ``kraken`` session, which tells them apart by shape. Pairs are
spelled the way each version wants them (v1 ``XBT/USD``, v2 ``BTC/USD``). Books come in-band
with a CRC32 of the top 10 levels on every update; a resync is an unsubscribe and a subscribe
of the symbol's book. ``quotes`` subscribes ``ticker``, whose best bid and ask (price and lot
volume) the Rust core turns into ``Quote`` events (no ``seq``; v1 tickers carry no exchange
time, v2 ones do); candles (``ohlc``) are not decoded and not offered.

``depth`` is the number of levels a side keeps and shows. Kraken serves books of 10, 25, 100,
500 or 1000 levels (v1 and v2 alike), and the smallest that is at least ``depth`` is subscribed:
1 to 10 -> 10, 11 to 25 -> 25, 26 to 100 -> 100, 101 to 500 -> 500, 501 to 1000 -> 1000, None ->
10. The book is kept at the subscribed depth (Kraken deletes nothing past it, and its checksum
needs it whole) and views show ``depth`` levels. A ``depth`` that is not an int from 1 to 1000
is refused (``ConfigError``).
"""

from __future__ import annotations

from typing import Any

import orjson

from lobfeed.venues.base import BOOK, QUOTES, TRADES, Subscription, VenueSpec, pick_depth

#: The book depths Kraken serves (the Rust session's ``kraken::DEPTHS``).
DEPTHS = (10, 25, 100, 500, 1000)
DEFAULT_DEPTH = 10
HEARTBEAT_INTERVAL = 30.0


def _dumps(obj: object) -> str:
    return orjson.dumps(obj).decode()


class KrakenV1Spec(VenueSpec):
    """``wss://ws.kraken.com``: ``{"event":"subscribe","pair":[..],"subscription":{..}}``."""

    name = "kraken"
    ws_url = "wss://ws.kraken.com"
    heartbeat_interval = HEARTBEAT_INTERVAL
    channels = frozenset({BOOK, TRADES, QUOTES})
    book_depths = DEPTHS
    max_depth = DEPTHS[-1]

    @staticmethod
    def book_subscription(sub: Subscription) -> dict[str, Any]:
        return {"name": "book", "depth": pick_depth(sub.depth, DEPTHS, DEFAULT_DEPTH)}

    def _event(self, event: str, pairs: list[str], subscription: dict[str, Any]) -> str:
        return _dumps({"event": event, "pair": pairs, "subscription": subscription})

    def subscribe_messages(self, sub: Subscription) -> list[str]:
        pairs = list(sub.symbols)
        messages: list[str] = []
        if BOOK in sub.channels:
            messages.append(self._event("subscribe", pairs, self.book_subscription(sub)))
        if TRADES in sub.channels:
            messages.append(self._event("subscribe", pairs, {"name": "trade"}))
        if QUOTES in sub.channels:
            messages.append(self._event("subscribe", pairs, {"name": "ticker"}))
        return messages

    def resubscribe_messages(
        self, symbol: str, sub: Subscription, *, channel: int | None = None
    ) -> list[str]:
        book = self.book_subscription(sub)
        return [
            self._event("unsubscribe", [symbol], book),
            self._event("subscribe", [symbol], book),
        ]

    def heartbeat_message(self) -> str | None:
        return '{"event":"ping"}'


class KrakenV2Spec(VenueSpec):
    """``wss://ws.kraken.com/v2``: ``{"method":"subscribe","params":{"channel":..}}``."""

    name = "kraken-v2"
    native_venue = "kraken"
    ws_url = "wss://ws.kraken.com"
    heartbeat_interval = HEARTBEAT_INTERVAL
    channels = frozenset({BOOK, TRADES, QUOTES})
    book_depths = DEPTHS
    max_depth = DEPTHS[-1]

    def connect_url(self, ws_url: str, sub: Subscription) -> str:
        return f"{ws_url.rstrip('/')}/v2"

    @staticmethod
    def _method(method: str, params: dict[str, Any]) -> str:
        return _dumps({"method": method, "params": params})

    @staticmethod
    def book_params(symbols: list[str], sub: Subscription) -> dict[str, Any]:
        depth = pick_depth(sub.depth, DEPTHS, DEFAULT_DEPTH)
        return {"channel": "book", "symbol": symbols, "depth": depth}

    def subscribe_messages(self, sub: Subscription) -> list[str]:
        symbols = list(sub.symbols)
        messages: list[str] = []
        if BOOK in sub.channels:
            messages.append(self._method("subscribe", self.book_params(symbols, sub)))
        if TRADES in sub.channels:
            messages.append(self._method("subscribe", {"channel": "trade", "symbol": symbols}))
        if QUOTES in sub.channels:
            messages.append(self._method("subscribe", {"channel": "ticker", "symbol": symbols}))
        return messages

    def resubscribe_messages(
        self, symbol: str, sub: Subscription, *, channel: int | None = None
    ) -> list[str]:
        params = self.book_params([symbol], sub)
        return [self._method("unsubscribe", params), self._method("subscribe", params)]

    def heartbeat_message(self) -> str | None:
        return '{"method":"ping"}'


V1 = KrakenV1Spec()
V2 = KrakenV2Spec()
SPECS = (V1, V2)
