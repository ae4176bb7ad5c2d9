"""OKX v5 public websocket: ``books`` (400 levels) or ``books5``, ``trades``, ``tickers``.

The book comes in-band on subscribe (a resync is an unsubscribe and a subscribe); the REST
book (``GET /api/v5/market/books``) is there for sessions that ask for a snapshot instead
(``Feed("okx", .., resync="snapshot")``).
The connection wants the text ``ping`` within 30 s of silence: one is sent every 25 s.
``quotes`` subscribes ``tickers``, whose best bid/ask the Rust core turns into ``Quote`` events
(no ``seq``).
Candles live on OKX's ``/ws/v5/business`` endpoint and are not offered here.
"""

from __future__ import annotations

from urllib.parse import urlencode

import orjson

from lobfeed.venues.base import BOOK, QUOTES, TRADES, Subscription, VenueSpec, WeightLimit

#: ``books`` carries 400 levels a side, ``books5`` the top 5 in full every message.
BOOK_CHANNELS = ((5, "books5"), (400, "books"))
SNAPSHOT_SIZE = 400


def _op(op: str, args: list[dict[str, str]]) -> str:
    return orjson.dumps({"op": op, "args": args}).decode()


class OkxSpec(VenueSpec):
    name = "okx"
    ws_url = "wss://ws.okx.com:8443"
    rest_url = "https://www.okx.com"
    heartbeat_interval = 25.0
    channels = frozenset({BOOK, TRADES, QUOTES})

    @staticmethod
    def book_channel(sub: Subscription) -> str:
        if sub.depth is not None:
            for levels, channel in BOOK_CHANNELS:
                if sub.depth <= levels:
                    return channel
        return "books"

    def args(self, sub: Subscription) -> list[dict[str, str]]:
        args: list[dict[str, str]] = []
        for inst in sub.symbols:
            if BOOK in sub.channels:
                args.append({"channel": self.book_channel(sub), "instId": inst})
            if TRADES in sub.channels:
                args.append({"channel": "trades", "instId": inst})
            if QUOTES in sub.channels:
                args.append({"channel": "tickers", "instId": inst})
        return args

    def connect_url(self, ws_url: str, sub: Subscription) -> str:
        return f"{ws_url.rstrip('/')}/ws/v5/public"

    def subscribe_messages(self, sub: Subscription) -> list[str]:
        return [_op("subscribe", self.args(sub))]

    def resubscribe_messages(
        self, symbol: str, sub: Subscription, *, channel: int | None = None
    ) -> list[str]:
        arg = {"channel": self.book_channel(sub), "instId": symbol}
        return [_op("unsubscribe", [arg]), _op("subscribe", [arg])]

    # GET /api/v5/market/books: "Rate Limit: 40 requests per 2 seconds", by IP
    # (www.okx.com/docs-v5/en/#order-book-trading-market-data-get-order-book).
    rest_weight = WeightLimit(40, 2.0, 1, "OKX GET /api/v5/market/books")

    def snapshot_url(self, rest_url: str, symbol: str, sub: Subscription) -> str | None:
        query = urlencode({"instId": symbol, "sz": SNAPSHOT_SIZE})
        return f"{rest_url.rstrip('/')}/api/v5/market/books?{query}"

    def heartbeat_message(self) -> str | None:
        return "ping"


SPEC = OkxSpec()
