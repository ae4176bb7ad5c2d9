"""BitMEX realtime websocket: ``orderBookL2``, ``trade``, ``quote``.

One ``{"op":"subscribe","args":["orderBookL2:XBTUSD","trade:XBTUSD","quote:XBTUSD", ...]}`` on
``/realtime``. The book comes in-band: a ``partial`` (the whole book) on subscribe, then rows
keyed by level ``id``; a row for an id the book does not hold means a missed update, and that
symbol's ``orderBookL2`` is unsubscribed and subscribed again for a new ``partial``. ``trade``'s
``partial`` is the last trades before subscribing (history, marked ``is_snapshot``). ``quotes``
subscribes ``quote`` (best bid/ask rows, no id: ``lobfeed verify`` finds each among the book's
top-of-book states, in order). BitMEX closes a connection that stays silent: the text ``ping``
is sent every ``heartbeat_interval`` seconds and answered ``pong``.

``depth``: ``orderBookL2`` streams the whole book, so any ``depth`` is served (it is how many
levels views show); ``orderBookL2_25`` (25 levels) is not used.
"""

from __future__ import annotations

import orjson

from lobfeed.venues.base import BOOK, QUOTES, TRADES, Subscription, VenueSpec

TABLES = {BOOK: "orderBookL2", TRADES: "trade", QUOTES: "quote"}


def _op(op: str, args: list[str]) -> str:
    return orjson.dumps({"op": op, "args": args}).decode()


class BitmexSpec(VenueSpec):
    name = "bitmex"
    ws_url = "wss://ws.bitmex.com"
    rest_url = "https://www.bitmex.com"
    # PROTOCOLS.md: BitMEX wants a `ping` when the connection has been idle for 5 s.
    heartbeat_interval = 5.0
    channels = frozenset({BOOK, TRADES, QUOTES})
    history_channels = frozenset({TRADES})
    quote_tie = "order"

    def topics(self, sub: Subscription) -> list[str]:
        return [
            f"{TABLES[channel]}:{symbol}"
            for channel in (BOOK, QUOTES, TRADES)
            if channel in sub.channels
            for symbol in sub.symbols
        ]

    def connect_url(self, ws_url: str, sub: Subscription) -> str:
        return f"{ws_url.rstrip('/')}/realtime"

    def subscribe_messages(self, sub: Subscription) -> list[str]:
        return [_op("subscribe", self.topics(sub))]

    def resubscribe_messages(
        self, symbol: str, sub: Subscription, *, channel: int | None = None
    ) -> list[str]:
        book = [f"{TABLES[BOOK]}:{symbol}"]
        return [_op("unsubscribe", book), _op("subscribe", book)]

    def heartbeat_message(self) -> str | None:
        return "ping"


SPEC = BitmexSpec()
