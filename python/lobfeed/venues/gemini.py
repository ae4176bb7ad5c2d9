"""Gemini market data v2 (``wss://api.gemini.com/v2/marketdata``): the ``l2`` subscription.

``l2`` carries both the book (the first ``l2_updates`` of a symbol is its full book) and the
trades, so either channel subscribes it. There are no sequence numbers; a resync is an
unsubscribe and a subscribe of the symbol's ``l2``, whose answer is a fresh full book. The first
frame's recent trades are history (marked ``is_snapshot``). The v1 per-symbol protocol (Rust
session ``gemini-v1:SYMBOL``) has no spec here.

Gemini streams whole books, with no depth to choose: any ``depth`` of 1 or more is served by
the same ``l2`` stream, the session keeps the whole book (cutting a diff stream would lose levels
that come back into view) and views show ``depth`` levels. ``quotes`` is not offered: ``l2``
has no best bid/ask message.
"""

from __future__ import annotations

import orjson

from lobfeed.venues.base import BOOK, TRADES, Subscription, VenueSpec


def _message(kind: str, symbols: list[str]) -> str:
    return orjson.dumps(
        {"type": kind, "subscriptions": [{"name": "l2", "symbols": symbols}]}
    ).decode()


class GeminiSpec(VenueSpec):
    name = "gemini"
    ws_url = "wss://api.gemini.com"
    rest_url = "https://api.gemini.com"
    channels = frozenset({BOOK, TRADES})
    # Recent trades come as a batch on subscribe, before the live ones.
    history_channels = frozenset({TRADES})

    def connect_url(self, ws_url: str, sub: Subscription) -> str:
        return f"{ws_url.rstrip('/')}/v2/marketdata"

    def subscribe_messages(self, sub: Subscription) -> list[str]:
        return [_message("subscribe", list(sub.symbols))]

    def resubscribe_messages(
        self, symbol: str, sub: Subscription, *, channel: int | None = None
    ) -> list[str]:
        return [_message("unsubscribe", [symbol]), _message("subscribe", [symbol])]


SPEC = GeminiSpec()
