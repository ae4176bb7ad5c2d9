"""OKX v5 public websocket: ``books5`` or ``books``, ``trades``, ``tickers``.

The book comes in-band on subscribe (a resync is an unsubscribe and a subscribe); the REST
book (``GET /api/v5/market/books``) is there for sessions that ask for a snapshot instead
(``Feed("okx", .., resync="snapshot")``).
The connection wants the text ``ping`` within 30 s of silence: one is sent every 25 s.
``quotes`` subscribes ``tickers``, whose best bid/ask the Rust core turns into ``Quote`` events
(no ``seq``).
Candles live on OKX's ``/ws/v5/business`` endpoint and are not offered here.

``depth`` is the number of levels a side keeps and shows; the public book channel that
serves it is subscribed, the smallest that is deep enough:

==============  ============  ======================================================
``depth``       channel       what OKX sends
==============  ============  ======================================================
1 to 5          ``books5``    the top 5 levels a side, whole, in every message
6 to 400, None  ``books``     400 levels: a snapshot, then updates with a CRC32 of 25
==============  ============  ======================================================

The book is kept as the channel sends it (5 or 400 levels; truncating ``books`` would corrupt
it) and views show ``depth`` levels. A ``depth`` that is not an int from 1 to 400 is refused
(``ConfigError``). ``bbo-tbt`` (the top level alone) is not used for ``depth=1``: ``books5``
serves it, and the tick-by-tick ``books-l2-tbt``/``books50-l2-tbt`` need a login.
"""

from __future__ import annotations

from urllib.parse import urlencode

import orjson

from lobfeed.venues.base import BOOK, QUOTES, TRADES, Subscription, VenueSpec, WeightLimit

#: ``books`` carries 400 levels a side, ``books5`` the top 5 in full every message.
BOOK_CHANNELS = ((5, "books5"), (400, "books"))
MAX_DEPTH = BOOK_CHANNELS[-1][0]
SNAPSHOT_SIZE = 400


def _op(op: str, args: list[dict[str, str]]) -> str:
    return orjson.dumps({"op": op, "args": args}).decode()


class OkxSpec(VenueSpec):
    name = "okx"
    ws_url = "wss://ws.okx.com:8443"
    rest_url = "https://www.okx.com"
    heartbeat_interval = 25.0
    channels = frozenset({BOOK, TRADES, QUOTES})
    book_depths = (5, MAX_DEPTH)
    max_depth = MAX_DEPTH

    @staticmethod
    def book_channel(sub: Subscription) -> str:
        """The book channel serving ``sub.depth`` (``check`` refused what none serves)."""
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
