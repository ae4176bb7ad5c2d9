"""Upbit (``upbit``): ``orderbook`` and ``trade`` in the ``SIMPLE`` format.

One request names every channel and code:
``[{"ticket":..},{"format":"SIMPLE"},{"type":"orderbook","codes":[..]},{"type":"trade",..}]``;
a new request replaces the connection's subscription (Upbit has no unsubscribe), so a resync
sends the whole request again. Frames come back as binary websocket frames of JSON text.

Every ``orderbook`` message is the whole book, 15 units (levels) a side, with the totals
``tas``/``tbs`` that the session checks against the book on every message. ``depth`` 1 to 15
is served by it (views show ``depth`` levels); more is refused (``ConfigError``).

Upbit closes a connection after 120 s without a message from the client: the text ``PING`` is
sent every 60 s (Upbit answers ``{"status":"UP"}``, which the session ignores).
"""

from __future__ import annotations

import uuid

import orjson

from lobfeed.venues.base import BOOK, TRADES, Subscription, VenueSpec

#: Units a side of a ``SIMPLE`` orderbook message.
ORDERBOOK_UNITS = 15


class UpbitSpec(VenueSpec):
    name = "upbit"
    checksum_truth = "tas/tbs totals matched"
    ws_url = "wss://api.upbit.com"
    rest_url = "https://api.upbit.com"
    heartbeat_interval = 60.0
    channels = frozenset({BOOK, TRADES})
    max_depth = ORDERBOOK_UNITS
    book_depths = (ORDERBOOK_UNITS,)

    def connect_url(self, ws_url: str, sub: Subscription) -> str:
        return f"{ws_url.rstrip('/')}/websocket/v1"

    def subscribe_messages(self, sub: Subscription) -> list[str]:
        request: list[dict[str, object]] = [{"ticket": f"lobfeed-{uuid.uuid4()}"}]
        request.append({"format": "SIMPLE"})
        codes = list(sub.symbols)
        if BOOK in sub.channels:
            request.append({"type": "orderbook", "codes": codes, "isOnlyRealtime": True})
        if TRADES in sub.channels:
            request.append({"type": "trade", "codes": codes, "isOnlyRealtime": True})
        return [orjson.dumps(request).decode()]

    def resubscribe_messages(
        self, symbol: str, sub: Subscription, *, channel: int | None = None
    ) -> list[str]:
        # The next orderbook message is a whole book anyway; asking again replaces nothing
        # the connection streams.
        return self.subscribe_messages(sub)

    def instruments_url(self, rest_url: str, sub: Subscription) -> str | None:
        return f"{rest_url.rstrip('/')}/v1/market/all"

    def listed_symbols(self, body: bytes) -> frozenset[str] | None:
        try:
            markets = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(markets, list):
            return None
        codes = {m.get("market") for m in markets if isinstance(m, dict)}
        listed = frozenset(c for c in codes if isinstance(c, str))
        return listed or None

    def heartbeat_message(self) -> str | None:
        return "PING"


SPEC = UpbitSpec()
