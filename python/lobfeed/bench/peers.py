"""cryptofeed, the peer lobfeed is measured against, behind a small typed adapter.

cryptofeed has no type information; everything it returns is ``Any`` and stays in this module.
Its feed for each venue it reads (``_FEED_CLASSES``: Binance's three, and the in-band venues'
ones) is used as it is: its ``message_handler`` parses each frame (``Decimal`` prices), checks
the update ids and applies the deltas to an ``order_book.OrderBook`` (a C extension), then awaits
the user callback. Two things are swapped for the benchmarks, and nothing on the hot path:

- the instrument list, which cryptofeed downloads from the exchange when a feed is made, is set
  from the tape's symbols (identity mapping: the exchange's names are used as the normalized
  ones);
- where it connects: in-process (:class:`CryptofeedBooks`) the REST snapshot fetch returns the
  tape's recorded body; live (:func:`live_feed`) its websocket and REST endpoints are the local
  exchange server's.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

from lobfeed.bench.depth import Top

__all__ = [
    "CryptofeedBooks",
    "LiveCryptofeed",
    "cryptofeed_cannot_read",
    "cryptofeed_version",
    "live_feed",
]

# cryptofeed's WSAsyncConn only accepts wss:// addresses. The feed is made with this one, which
# never resolves (.invalid is reserved), and the connection's address is rewritten to the local
# server's ws:// URL before it connects.
_PLACEHOLDER_WS = "wss://lobfeed-bench.invalid"


def cryptofeed_version() -> str | None:
    """The installed cryptofeed version, or ``None`` when it is not installed."""
    try:
        return importlib.metadata.version("cryptofeed")
    except importlib.metadata.PackageNotFoundError:
        return None


# cryptofeed's feed class for each venue whose tapes it reads.
_FEED_CLASSES = {
    "binance": "Binance",
    "binance-usdm": "BinanceFutures",
    "binance-coinm": "BinanceDelivery",
    "bybit": "Bybit",
    "okx": "OKX",
    "kraken": "Kraken",
    "coinbase": "Coinbase",
    "gemini": "Gemini",
    "bitfinex": "Bitfinex",
    "ascendex": "AscendEX",
    "bitget": "Bitget",
    "bitmex": "Bitmex",
    "htx-swap": "HuobiSwap",
    "upbit": "Upbit",
    "gateio": "Gateio",
    "gateio-futures": "GateioFutures",
}
# Venues it has a feed for but cannot be compared on, and why.
_CANNOT_COMPARE: dict[str, str] = {}
# Venues of issue 12 cryptofeed has a feed for, which the bench cannot drive, and why.
_NOT_DRIVEN = {
    "deribit": (
        "cryptofeed 2.4.1's Deribit feed, made for L2_BOOK alone, refuses to start "
        "('Authenticated channel subscribed to, but no auth keys provided')"
    ),
    "kucoin": (
        "cryptofeed's KuCoin feed asks api.kucoin.com for a token when it is made; "
        "the bench contacts no exchange"
    ),
}
# The query parameter naming the symbol in each venue's REST depth request.
_SYMBOL_PARAMS = ("symbol", "currency_pair", "contract")


def cryptofeed_cannot_read(venue: str) -> str | None:
    """Why the benchmark's cryptofeed runner cannot read ``venue``'s tapes; None if it can."""
    if venue in _CANNOT_COMPARE:
        return _CANNOT_COMPARE[venue]
    if venue in _NOT_DRIVEN:
        return _NOT_DRIVEN[venue]
    if venue not in _FEED_CLASSES:
        return f"cryptofeed has no feed for {venue!r}"
    return None


def _feed_class(venue: str) -> Any:
    import cryptofeed.exchanges

    try:
        return getattr(cryptofeed.exchanges, _FEED_CLASSES[venue])
    except KeyError:
        raise ValueError(f"no cryptofeed adapter for venue {venue!r}") from None


def _set_symbols(cls: Any, symbols: Sequence[str]) -> None:
    """Give cryptofeed its instrument list without the REST call it would make."""
    from cryptofeed.symbols import Symbols

    mapping: dict[str, str] = {}
    info: dict[str, Any] = {}
    if Symbols.populated(cls.id):
        known, known_info = Symbols.get(cls.id)
        mapping.update(known)
        info.update(known_info)
    mapping.update({s: s for s in symbols})
    Symbols.set(cls.id, mapping, info)


def _level(level: Any) -> tuple[str, str]:
    price, size = level
    return str(price), str(size)


def book_top(book: Any) -> Top:
    """Best bid and ask of a cryptofeed ``OrderBook``, as exact strings."""
    sides = book.book
    bid = _level(sides.bids.index(0)) if len(sides.bids) else None
    ask = _level(sides.asks.index(0)) if len(sides.asks) else None
    return bid, ask


class _RecordedSnapshots:
    """Stands in for cryptofeed's ``HTTPAsyncConn``: depth requests get the tape's bodies."""

    def __init__(self, snapshot_for: Callable[[str], bytes]) -> None:
        self.snapshot_for = snapshot_for
        self.requests = 0

    async def read(self, address: str, *args: object, **kwargs: object) -> str:
        self.requests += 1
        query = parse_qs(urlsplit(address).query)
        named = [query[p][0] for p in _SYMBOL_PARAMS if p in query]
        if not named:
            raise ValueError(f"no symbol in the snapshot request {address!r}")
        return self.snapshot_for(named[0]).decode()

    async def close(self) -> None:
        return None


def _prepare_in_band(venue: str, feed: Any, symbols: Sequence[str], conn: Any) -> None:
    """What a feed's ``subscribe`` would have set up before the first message."""
    from cryptofeed.types import OrderBook

    if venue == "gemini":
        # Gemini's handler adds to a book its subscribe made empty.
        for symbol in symbols:
            feed._l2_book[symbol] = OrderBook(feed.id, symbol, max_depth=feed.max_depth)
    elif venue == "bitfinex":
        # Messages are numbered from 1 on a connection (conf flag 65536).
        feed.seq_no[conn.uuid] = 0
    elif venue == "ascendex":
        feed._AscendEX__reset()  # its per-symbol seqnum table, made by subscribe
    elif venue in ("bitmex", "gateio", "gateio-futures"):
        feed._reset()  # BitMEX's order-id tables, Gate.io's last update ids: made by subscribe


async def _drop_reply(message: str) -> None:
    """A reply the feed sends on its connection (HTX answers pings): nothing to send it to."""


class CryptofeedBooks:
    """A cryptofeed Binance feed driven in-process, one frame at a time, no network.

    ``await receive(frame_text, ts)`` is what cryptofeed's connection handler does for each
    websocket message. ``touch`` runs on each book callback (the trivial user callback).
    """

    def __init__(
        self,
        venue: str,
        symbols: Sequence[str],
        snapshot_for: Callable[[str], bytes],
        *,
        touch: bool = True,
        address: str = "",
    ) -> None:
        from cryptofeed.defines import L2_BOOK

        cls = _feed_class(venue)
        _set_symbols(cls, symbols)
        # A tape holds channels the feed was not asked for (tickers, heartbeats): cryptofeed
        # logs a warning for each, which would time the log handler, not the feed.
        logging.getLogger("feedhandler").setLevel(logging.ERROR)
        self.updates = 0

        async def on_book(book: Any, receipt_timestamp: float) -> None:
            self.updates += 1
            if touch:
                book.book.bids.index(0)

        self._feed: Any = cls(
            symbols=list(symbols), channels=[L2_BOOK], callbacks={L2_BOOK: on_book}
        )
        self.snapshots = _RecordedSnapshots(snapshot_for)
        self._feed.http_conn = self.snapshots
        # What a cryptofeed connection is to its feed's handler: an id, and the address (Bybit
        # reads the market from it).
        self.conn = SimpleNamespace(
            uuid="lobfeed-bench", address=address, subscription={}, write=_drop_reply
        )
        _prepare_in_band(venue, self._feed, symbols, self.conn)
        handler: Callable[[str | bytes, object, float], Awaitable[None]] = (
            self._feed.message_handler
        )
        self.receive = handler

    def top(self, symbol: str) -> Top:
        books: Mapping[str, Any] = self._feed._l2_book
        book = books.get(symbol)
        return book_top(book) if book is not None else (None, None)

    def reset_counts(self) -> None:
        self.updates = 0


class LiveCryptofeed:
    """A cryptofeed feed connected to the local exchange server (see :func:`live_feed`)."""

    def __init__(self, feed: Any) -> None:
        self._feed = feed

    def start(self) -> None:
        self._feed.start(asyncio.get_running_loop())

    async def stop(self) -> None:
        self._feed.stop()
        await self._feed.shutdown()

    def top(self, symbol: str) -> Top:
        book = self._feed._l2_book.get(symbol)
        return book_top(book) if book is not None else (None, None)


def live_feed(
    venue: str,
    symbols: Sequence[str],
    ws_url: str,
    rest_url: str,
    on_book: Callable[[int, Any], None],
) -> LiveCryptofeed:
    """cryptofeed's Binance feed for ``venue``, pointed at a local server.

    ``on_book(sequence_number, book)`` runs (from cryptofeed's async callback) on every book
    update, with the venue's final update id ``u``.
    """
    from cryptofeed.connection import RestEndpoint, WebsocketEndpoint, WSAsyncConn
    from cryptofeed.defines import L2_BOOK

    base = _feed_class(venue)
    _set_symbols(base, symbols)
    target = ws_url.rstrip("/")

    def connect(self: Any) -> Any:
        connections = base.connect(self)
        for connection, *_ in connections:
            if isinstance(connection, WSAsyncConn):
                connection.address = connection.address.replace(_PLACEHOLDER_WS, target, 1)
        return connections

    # Made with type(): cryptofeed's classes are untyped (Any), and mypy refuses a class
    # statement deriving from Any.
    local = type(
        f"Local{base.__name__}",
        (base,),
        {
            "websocket_endpoints": [
                WebsocketEndpoint(
                    _PLACEHOLDER_WS, options=dict(base.websocket_endpoints[0].options)
                )
            ],
            "rest_endpoints": [
                RestEndpoint(rest_url.rstrip("/"), routes=base.rest_endpoints[0].routes)
            ],
            "connect": connect,
        },
    )

    async def callback(book: Any, receipt_timestamp: float) -> None:
        on_book(book.sequence_number, book)

    feed = local(
        symbols=list(symbols),
        channels=[L2_BOOK],
        callbacks={L2_BOOK: callback},
        timeout=-1,  # no idle watchdog task
        retries=0,
    )
    return LiveCryptofeed(feed)
