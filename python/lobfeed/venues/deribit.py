"""Deribit API v2 over its JSON-RPC websocket: ``book.{instrument}.raw``, ``trades.{..}.raw``,
``ticker.{..}.raw``.

Everything is asked for with JSON-RPC requests on ``/ws/api/v2``: ``public/set_heartbeat``
first (the venue then sends a ``test_request`` every ``HEARTBEAT_SECONDS`` and closes the
connection unless it is answered: the Rust session answers each with ``public/test``, which the
Feed sends), then one ``public/subscribe`` naming every channel. The book comes in-band: a
snapshot on subscribe, then changes chained by ``prev_change_id``; a broken chain unsubscribes
and subscribes that instrument's book again for a fresh snapshot. ``quotes`` subscribes
``ticker``, whose best bid/ask become ``Quote`` events (no ``seq``: a ticker carries no
``change_id``; it is tied to the book by its ``timestamp``).

``depth``: the ``raw`` book channel streams the whole book of an instrument (Deribit's options
and futures books are tens of levels), so any ``depth`` is served; it is how many levels a side
views show. Instrument names are Deribit's own (``BTC-PERPETUAL``, ``BTC-24SEP21-8000-P``),
upper case.
"""

from __future__ import annotations

import itertools

import orjson

from lobfeed.venues.base import BOOK, QUOTES, TRADES, Subscription, VenueSpec

#: Seconds between the venue's ``test_request``s (what ``public/set_heartbeat`` asks for).
HEARTBEAT_SECONDS = 30

CHANNEL_NAMES = {BOOK: "book", TRADES: "trades", QUOTES: "ticker"}


class DeribitSpec(VenueSpec):
    name = "deribit"
    ws_url = "wss://www.deribit.com"
    rest_url = "https://www.deribit.com"
    channels = frozenset({BOOK, TRADES, QUOTES})
    quote_tie = "time"

    def __init__(self) -> None:
        # JSON-RPC wants an id per request; answers are matched by nothing but the session's
        # error reporting, so a process-wide counter is enough.
        self._ids = itertools.count(1)

    def _request(self, method: str, params: dict[str, object]) -> str:
        message = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        return orjson.dumps(message).decode()

    @staticmethod
    def channel_names(sub: Subscription) -> list[str]:
        return [
            f"{CHANNEL_NAMES[channel]}.{symbol}.raw"
            for channel in (BOOK, TRADES, QUOTES)
            if channel in sub.channels
            for symbol in sub.symbols
        ]

    def connect_url(self, ws_url: str, sub: Subscription) -> str:
        return f"{ws_url.rstrip('/')}/ws/api/v2"

    def subscribe_messages(self, sub: Subscription) -> list[str]:
        return [
            self._request("public/set_heartbeat", {"interval": HEARTBEAT_SECONDS}),
            self._request("public/subscribe", {"channels": self.channel_names(sub)}),
        ]

    def resubscribe_messages(
        self, symbol: str, sub: Subscription, *, channel: int | None = None
    ) -> list[str]:
        book = [f"book.{symbol}.raw"]
        return [
            self._request("public/unsubscribe", {"channels": book}),
            self._request("public/subscribe", {"channels": book}),
        ]


SPEC = DeribitSpec()
