"""AscendEX (pro API v1): channels by message, the book's snapshot asked for on the socket.

``wss://ascendex.com/<account group>/api/pro/v1/stream``; ``{"op":"sub","ch":"depth:A,B"}`` and
``trades:``; each book starts from ``{"op":"req","action":"depth-snapshot","args":{"symbol":S}}``,
sent with the subscription and again whenever the symbol loses sync (the resubscribe). The venue
pings with ``{"m":"ping"}``; the session answers ``{"op":"pong"}`` through the Feed.

Depth: the ``depth`` channel is every change of the whole book, bridged to the snapshot; the
book is kept whole and views show ``depth`` levels.
"""

from __future__ import annotations

import orjson

from lobfeed.venues.base import BOOK, TRADES, Subscription, VenueSpec

#: The account group of the stream path; public market data is served on any.
ACCOUNT_GROUP = "1"
STREAM_PATH = "/api/pro/v1/stream"


def _message(payload: dict[str, object]) -> str:
    return orjson.dumps(payload).decode()


def snapshot_request(symbol: str) -> str:
    return _message({"op": "req", "action": "depth-snapshot", "args": {"symbol": symbol}})


class AscendexSpec(VenueSpec):
    name = "ascendex"
    ws_url = "wss://ascendex.com"
    rest_url = "https://ascendex.com"
    channels = frozenset({BOOK, TRADES})

    def connect_url(self, ws_url: str, sub: Subscription) -> str:
        return f"{ws_url.rstrip('/')}/{ACCOUNT_GROUP}{STREAM_PATH}"

    def subscribe_messages(self, sub: Subscription) -> list[str]:
        joined = ",".join(sub.symbols)
        messages: list[str] = []
        if BOOK in sub.channels:
            messages.append(_message({"op": "sub", "ch": f"depth:{joined}"}))
        if TRADES in sub.channels:
            messages.append(_message({"op": "sub", "ch": f"trades:{joined}"}))
        if BOOK in sub.channels:
            messages += [snapshot_request(symbol) for symbol in sub.symbols]
        return messages

    def resubscribe_messages(
        self, symbol: str, sub: Subscription, *, channel: int | None = None
    ) -> list[str]:
        # The depth stream goes on: only a fresh snapshot is needed to bridge it again.
        return [snapshot_request(symbol)]

    def instruments_url(self, rest_url: str, sub: Subscription) -> str | None:
        return f"{rest_url.rstrip('/')}/api/pro/v1/products"

    def listed_symbols(self, body: bytes) -> frozenset[str] | None:
        try:
            items = orjson.loads(body)["data"]
            return frozenset(item["symbol"] for item in items)
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None


ASCENDEX = AscendexSpec()
