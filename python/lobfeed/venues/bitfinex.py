"""Bitfinex websocket v2 (``wss://api-pub.bitfinex.com/ws/2``): P0 books, trades, tickers.

The first message is ``conf`` with flags 65536 (one sequence number on every frame of the
connection) and 131072 (book checksums). Then one subscribe per channel and symbol; symbols
are spelled the Bitfinex way (``tBTCUSD``). Bitfinex assigns each subscription a ``chanId``
and unsubscribes only by ``chanId``, which the Rust session keeps (``Session.channel``): a
book is resynced by ``{"event":"unsubscribe","chanId":N}`` then the book's subscribe again,
whose answer is a fresh snapshot. A gap in the connection's sequence resyncs every book of the
connection that way.

``depth`` picks the book length Bitfinex serves (``len``): the shortest that holds it.

==============  ==========
``depth``       ``len``
==============  ==========
None            25
1               1
2 to 25         25
26 to 100       100
101 to 250      250
==============  ==========

Bitfinex keeps the book at that length itself (a level leaving it is deleted) and checksums its
top 25 levels, so the session keeps all of it and views show ``depth`` levels. Deeper than 250
is refused.

``trades`` subscribes ``trades``, whose first message is recent history (marked
``is_snapshot``). ``quotes`` subscribes ``ticker``, which becomes ``Quote`` events: ``seq`` is
the frame's connection sequence number, and the sizes are Bitfinex's sums of the 25 best levels
of a side. The ticker runs on its own schedule and can lag the book.
"""

from __future__ import annotations

import orjson

from lobfeed.venues.base import BOOK, QUOTES, TRADES, Subscription, VenueSpec, pick_depth

FLAG_SEQ_ALL = 65536
FLAG_CHECKSUM = 131072
#: Book lengths Bitfinex offers for P precisions.
LENGTHS = (1, 25, 100, 250)
DEFAULT_LENGTH = 25
PRECISION = "P0"


def _dumps(obj: object) -> str:
    return orjson.dumps(obj).decode()


class BitfinexSpec(VenueSpec):
    name = "bitfinex"
    ws_url = "wss://api-pub.bitfinex.com"
    rest_url = "https://api-pub.bitfinex.com"
    channels = frozenset({BOOK, TRADES, QUOTES})
    book_depths = LENGTHS
    max_depth = max(LENGTHS)
    flags = FLAG_SEQ_ALL | FLAG_CHECKSUM
    # "You can subscribe to 25 channels at the same time on the same connection"
    # (docs.bitfinex.com/docs/ws-public); each symbol's book, trades and ticker are a channel.
    max_streams_per_connection = 25
    # Trades are preceded by a snapshot of recent ones on subscribe.
    history_channels = frozenset({TRADES})

    def normalize_symbol(self, symbol: str) -> str:
        # Trading pairs are ``t`` + upper case (``tBTCUSD``, ``tTESTBTC:TESTUSD``), funding
        # currencies ``f`` + upper case; a bare pair is a trading pair.
        if len(symbol) > 1 and symbol[0] in "tTfF" and symbol[1:].isupper():
            return symbol[0].lower() + symbol[1:]
        body = symbol[1:] if len(symbol) > 4 and symbol[0] in "tf" else symbol
        return "t" + body.upper()

    def connect_url(self, ws_url: str, sub: Subscription) -> str:
        return f"{ws_url.rstrip('/')}/ws/2"

    @staticmethod
    def book_subscribe(symbol: str, sub: Subscription) -> str:
        length = str(pick_depth(sub.depth, LENGTHS, DEFAULT_LENGTH))
        book = {"channel": "book", "symbol": symbol, "prec": PRECISION, "len": length}
        return _dumps({"event": "subscribe", **book})

    def subscribe_messages(self, sub: Subscription) -> list[str]:
        messages = [_dumps({"event": "conf", "flags": self.flags})]
        for symbol in sub.symbols:
            if BOOK in sub.channels:
                messages.append(self.book_subscribe(symbol, sub))
            if TRADES in sub.channels:
                messages.append(
                    _dumps({"event": "subscribe", "channel": "trades", "symbol": symbol})
                )
            if QUOTES in sub.channels:
                messages.append(
                    _dumps({"event": "subscribe", "channel": "ticker", "symbol": symbol})
                )
        return messages

    def resubscribe_messages(
        self, symbol: str, sub: Subscription, *, channel: int | None = None
    ) -> list[str]:
        subscribe = self.book_subscribe(symbol, sub)
        if channel is None:
            # No book channel held (its subscription failed or was already dropped).
            return [subscribe]
        return [_dumps({"event": "unsubscribe", "chanId": channel}), subscribe]


SPEC = BitfinexSpec()
