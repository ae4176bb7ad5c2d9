"""Kraken Futures ws v1: ``book`` and ``trade`` feeds, by ``product_ids``.

Built from the protocol notes (``shared/docs/PROTOCOLS.md``); no capture of this venue is
shared, so nothing here is proven on the venue's own frames and the local exchange cannot serve
it. One ``{"event":"subscribe","feed":..,"product_ids":[..]}`` per feed on ``/ws/v1``. The book
comes in-band: ``book_snapshot``, then one ``book`` message per level change with a per-product
``seq`` that goes up by one; a gap unsubscribes and subscribes that product's ``book`` again
for a new snapshot. ``trade_snapshot`` (the last trades, sent on subscribe) is history. Product
ids are upper case (``PI_XBTUSD``). Quotes are not offered: ``ticker_lite`` has no sizes.

``depth``: the ``book`` feed streams the whole book, so any ``depth`` is served (it is how many
levels views show).
"""

from __future__ import annotations

import orjson

from lobfeed.venues.base import BOOK, TRADES, Subscription, VenueSpec

FEEDS = {BOOK: "book", TRADES: "trade"}


def _event(event: str, feed: str, products: list[str]) -> str:
    return orjson.dumps({"event": event, "feed": feed, "product_ids": products}).decode()


class KrakenFuturesSpec(VenueSpec):
    name = "kraken-futures"
    ws_url = "wss://futures.kraken.com"
    rest_url = "https://futures.kraken.com"
    channels = frozenset({BOOK, TRADES})
    history_channels = frozenset({TRADES})

    def connect_url(self, ws_url: str, sub: Subscription) -> str:
        return f"{ws_url.rstrip('/')}/ws/v1"

    def subscribe_messages(self, sub: Subscription) -> list[str]:
        products = list(sub.symbols)
        return [
            _event("subscribe", FEEDS[channel], products)
            for channel in (BOOK, TRADES)
            if channel in sub.channels
        ]

    def resubscribe_messages(
        self, symbol: str, sub: Subscription, *, channel: int | None = None
    ) -> list[str]:
        return [_event("unsubscribe", "book", [symbol]), _event("subscribe", "book", [symbol])]


SPEC = KrakenFuturesSpec()
