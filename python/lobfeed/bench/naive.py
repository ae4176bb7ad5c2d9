"""The naive baseline: books the way tutorials build them, in plain Python.

``orjson`` parses each frame into dicts; each side of the book is a ``dict`` of float price to
float size; after every update both sides are sorted to get the top levels, which is what the
callback reads. On Binance (:class:`NaiveBooks`) the sync rules are its documented ones (drop
what the snapshot covers, the first event must bridge it, then ids must follow on), so it
builds the same books as lobfeed and cryptofeed, only in floats. The venues that send their
snapshot in-band (:class:`InBandBooks`, one small parser per venue in ``PARSERS``) replace the
book on each snapshot and apply each update as it comes, checking neither sequence numbers
nor checksums: what a first client of each venue does (HTX's gzip frames are unpacked with
``gzip.decompress`` first; BitMEX's levels, named by id, are turned back into prices with a
dict of id to price). Gate.io and KuCoin (:class:`BridgedBooks`, ``BRIDGED``) bridge a REST
snapshot as their documentation says, the way :class:`NaiveBooks` does for Binance.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any

import orjson

from lobfeed.bench.depth import bridges

__all__ = [
    "BRIDGED",
    "PARSERS",
    "BridgedBooks",
    "InBandBooks",
    "NaiveBook",
    "NaiveBooks",
    "NaiveGapError",
    "PlainBook",
]

DEFAULT_TOP = 10


class NaiveGapError(Exception):
    """An event that does not follow on from the book: the naive client gives up."""


class NaiveBook:
    __slots__ = ("asks", "bids", "last_id", "synced", "top_asks", "top_bids", "venue")

    def __init__(self, venue: str, snapshot: dict[str, Any]) -> None:
        self.venue = venue
        self.bids: dict[float, float] = {float(p): float(q) for p, q in snapshot["bids"]}
        self.asks: dict[float, float] = {float(p): float(q) for p, q in snapshot["asks"]}
        self.last_id: int = snapshot["lastUpdateId"]
        self.synced = False
        self.top_bids: list[tuple[float, float]] = []
        self.top_asks: list[tuple[float, float]] = []

    def apply(self, event: dict[str, Any], top: int = DEFAULT_TOP) -> bool:
        """Apply one depth event; False when the snapshot already covers it."""
        first: int = event["U"]
        final: int = event["u"]
        if not self.synced and (
            final < self.last_id or (final == self.last_id and self.venue == "binance")
        ):
            return False
        if not self.synced:
            if not bridges(self.venue, self.last_id, first, final):
                raise NaiveGapError(f"{event['s']}: event {first}..{final} misses the snapshot")
            self.synced = True
        elif self.venue == "binance":
            if first != self.last_id + 1:
                raise NaiveGapError(f"{event['s']}: expected {self.last_id + 1}, got {first}")
        elif event["pu"] != self.last_id:
            raise NaiveGapError(f"{event['s']}: expected pu {self.last_id}, got {event['pu']}")
        self.last_id = final
        for side, levels in ((self.bids, event["b"]), (self.asks, event["a"])):
            for p, q in levels:
                price = float(p)
                size = float(q)
                if size == 0.0:
                    side.pop(price, None)
                else:
                    side[price] = size
        self.top_bids = sorted(self.bids.items(), reverse=True)[:top]
        self.top_asks = sorted(self.asks.items())[:top]
        return True


class NaiveBooks:
    """All symbols of a combined stream; fetches a snapshot with ``snapshot_for(symbol)``."""

    def __init__(
        self,
        venue: str,
        snapshot_for: Callable[[str], bytes],
        on_book: Callable[[str, NaiveBook], object] | None = None,
        top: int = DEFAULT_TOP,
    ) -> None:
        self.venue = venue
        self.snapshot_for = snapshot_for
        self.on_book = on_book
        self.top = top
        self.books: dict[str, NaiveBook] = {}

    def receive(self, frame: bytes | str) -> None:
        event = orjson.loads(frame)["data"]
        symbol: str = event["s"]
        book = self.books.get(symbol)
        if book is None:
            book = self.books[symbol] = NaiveBook(
                self.venue, orjson.loads(self.snapshot_for(symbol))
            )
        if book.apply(event, self.top) and self.on_book is not None:
            self.on_book(symbol, book)


# -- venues with in-band snapshots ---------------------------------------------------------

Levels = list[Any]
"""A side's levels as the venue sends them: ``[price, size, ...]`` per level."""
BookMessage = tuple[str, bool, Levels, Levels]
"""One book message of a frame: symbol, whether it is a whole book, bids, asks."""


class PlainBook:
    """A side is a ``dict`` of float price to float size; sorted after every update."""

    __slots__ = ("asks", "bids", "top_asks", "top_bids")

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.top_bids: list[tuple[float, float]] = []
        self.top_asks: list[tuple[float, float]] = []

    def apply(self, whole: bool, bids: Levels, asks: Levels, top: int) -> None:
        if whole:
            self.bids.clear()
            self.asks.clear()
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for level in levels:
                price = float(level[0])
                size = float(level[1])
                if size == 0.0:
                    side.pop(price, None)
                else:
                    side[price] = size
        self.top_bids = sorted(self.bids.items(), reverse=True)[:top]
        self.top_asks = sorted(self.asks.items())[:top]


def _bybit(msg: Any, _state: dict[Any, Any]) -> list[BookMessage]:
    if not isinstance(msg, dict) or not str(msg.get("topic", "")).startswith("orderbook."):
        return []
    data = msg["data"]
    return [(data["s"], msg["type"] == "snapshot", data["b"], data["a"])]


def _okx(msg: Any, _state: dict[Any, Any]) -> list[BookMessage]:
    arg = msg.get("arg") if isinstance(msg, dict) else None
    if not arg or not str(arg.get("channel", "")).startswith("books") or "data" not in msg:
        return []
    data = msg["data"][0]
    return [(arg["instId"], msg.get("action") == "snapshot", data["bids"], data["asks"])]


def _kraken(msg: Any, _state: dict[Any, Any]) -> list[BookMessage]:
    # [channelID, {book}, ({book},) "book-N", "PAIR"]: a snapshot has "as"/"bs".
    if not isinstance(msg, list) or len(msg) < 4 or not str(msg[-2]).startswith("book"):
        return []
    parts = msg[1:-2]
    whole = "as" in parts[0] or "bs" in parts[0]
    bids = [lv for p in parts for lv in p.get("bs" if whole else "b", ())]
    asks = [lv for p in parts for lv in p.get("as" if whole else "a", ())]
    return [(msg[-1], whole, bids, asks)]


def _coinbase(msg: Any, _state: dict[Any, Any]) -> list[BookMessage]:
    if not isinstance(msg, dict) or msg.get("channel") != "l2_data":
        return []
    out: list[BookMessage] = []
    for event in msg["events"]:
        updates = event["updates"]
        bids = [(u["price_level"], u["new_quantity"]) for u in updates if u["side"] == "bid"]
        asks = [(u["price_level"], u["new_quantity"]) for u in updates if u["side"] != "bid"]
        out.append((event["product_id"], event["type"] == "snapshot", bids, asks))
    return out


def _gemini(msg: Any, state: dict[Any, Any]) -> list[BookMessage]:
    # The first l2_updates of a symbol is its whole book.
    if not isinstance(msg, dict) or msg.get("type") != "l2_updates":
        return []
    symbol = msg["symbol"]
    whole = symbol not in state
    state[symbol] = symbol
    changes = msg["changes"]
    bids = [c[1:] for c in changes if c[0] == "buy"]
    asks = [c[1:] for c in changes if c[0] != "buy"]
    return [(symbol, whole, bids, asks)]


def _bitfinex_level(level: list[Any], bids: Levels, asks: Levels) -> None:
    price, count, amount = level[0], level[1], level[2]
    # count 0 deletes the price from the side amount's sign names (1 bids, -1 asks).
    (bids if amount > 0 else asks).append((price, abs(amount) if count else 0))


def _bitfinex(msg: Any, state: dict[Any, Any]) -> list[BookMessage]:
    if isinstance(msg, dict):
        if msg.get("event") == "subscribed" and msg.get("channel") == "book":
            state[msg["chanId"]] = msg["symbol"]
        return []
    if not isinstance(msg, list) or len(msg) < 2:
        return []
    symbol = state.get(msg[0])
    body = msg[1]
    if symbol is None or not isinstance(body, list) or not body:
        return []  # heartbeats ("hb"), checksums ("cs"), other channels
    bids: Levels = []
    asks: Levels = []
    whole = isinstance(body[0], list)
    for level in body if whole else [body]:
        _bitfinex_level(level, bids, asks)
    return [(symbol, whole, bids, asks)]


def _deribit(msg: Any, _state: dict[Any, Any]) -> list[BookMessage]:
    params = msg.get("params") if isinstance(msg, dict) else None
    if not params or not str(params.get("channel", "")).startswith("book."):
        return []
    data = params["data"]
    # Each level is [action, price, amount]; "delete" removes the price.
    sides = [
        [(lv[1], 0 if lv[0] == "delete" else lv[2]) for lv in data[key]] for key in ("bids", "asks")
    ]
    return [(data["instrument_name"], data.get("type") == "snapshot", sides[0], sides[1])]


def _upbit(msg: Any, _state: dict[Any, Any]) -> list[BookMessage]:
    # SIMPLE format; every orderbook message is the whole (short) book, ask/bid pairs per row.
    if not isinstance(msg, dict) or msg.get("ty") != "orderbook":
        return []
    units: list[dict[str, Any]] = msg["obu"]
    bids = [(u["bp"], u["bs"]) for u in units]
    asks = [(u["ap"], u["as"]) for u in units]
    return [(msg["cd"], True, bids, asks)]


def _ascendex(msg: Any, _state: dict[Any, Any]) -> list[BookMessage]:
    kind = msg.get("m") if isinstance(msg, dict) else None
    if kind not in ("depth", "depth-snapshot"):
        return []
    data = msg["data"]
    return [(msg["symbol"], kind == "depth-snapshot", data["bids"], data["asks"])]


def _bitget(msg: Any, _state: dict[Any, Any]) -> list[BookMessage]:
    arg = msg.get("arg") if isinstance(msg, dict) else None
    if not arg or arg.get("channel") != "books" or "data" not in msg:
        return []
    data = msg["data"][0]
    return [(arg["instId"], msg.get("action") == "snapshot", data["bids"], data["asks"])]


def _htx(msg: Any, _state: dict[Any, Any]) -> list[BookMessage]:
    if not isinstance(msg, dict) or ".depth." not in str(msg.get("ch", "")):
        return []
    tick = msg["tick"]
    symbol = msg["ch"].split(".")[1]
    # depth.step*: every push is the whole book; size_* incremental ones name their event.
    whole = tick.get("event", "snapshot") == "snapshot"
    return [(symbol, whole, tick.get("bids") or [], tick.get("asks") or [])]


def _bitmex(msg: Any, state: dict[Any, Any]) -> list[BookMessage]:
    # orderBookL2 names each level by id; only `partial` and `insert` carry its price.
    if not isinstance(msg, dict) or msg.get("table") != "orderBookL2" or "data" not in msg:
        return []
    action = msg["action"]
    whole = action == "partial"
    by_symbol: dict[str, tuple[Levels, Levels]] = {}
    for row in msg["data"]:
        symbol = row["symbol"]
        key = (symbol, row["id"])
        if action in ("partial", "insert"):
            price = state[key] = row["price"]
        elif action == "delete":
            price = state.pop(key)
        else:
            price = state[key]
        size = 0 if action == "delete" else row["size"]
        bids, asks = by_symbol.setdefault(symbol, ([], []))
        (bids if row["side"] == "Buy" else asks).append((price, size))
    return [(symbol, whole, bids, asks) for symbol, (bids, asks) in by_symbol.items()]


PARSERS: dict[str, Callable[[Any, dict[Any, Any]], list[BookMessage]]] = {
    "bybit": _bybit,
    "okx": _okx,
    "kraken": _kraken,
    "coinbase": _coinbase,
    "gemini": _gemini,
    "bitfinex": _bitfinex,
    "deribit": _deribit,
    "upbit": _upbit,
    "ascendex": _ascendex,
    "bitget": _bitget,
    "htx-swap": _htx,
    "bitmex": _bitmex,
}
"""Venue -> what reads the book messages of one parsed frame (and keeps channel state)."""


class InBandBooks:
    """The naive client of a venue that sends its snapshots in-band (``PARSERS``)."""

    def __init__(
        self,
        venue: str,
        on_book: Callable[[str, PlainBook], object] | None = None,
        top: int = DEFAULT_TOP,
    ) -> None:
        try:
            self.parse = PARSERS[venue]
        except KeyError:
            raise ValueError(f"no naive book for venue {venue!r}") from None
        self.gzipped = venue.startswith("htx")
        self.on_book = on_book
        self.top = top
        self.state: dict[Any, Any] = {}
        self.books: dict[str, PlainBook] = {}

    def receive(self, frame: bytes | str) -> None:
        if self.gzipped:  # HTX sends every message gzip-compressed, in a binary frame
            frame = gzip.decompress(frame if isinstance(frame, bytes) else frame.encode())
        for symbol, whole, bids, asks in self.parse(orjson.loads(frame), self.state):
            book = self.books.get(symbol)
            if book is None:
                book = self.books[symbol] = PlainBook()
            book.apply(whole, bids, asks, self.top)
            if self.on_book is not None:
                self.on_book(symbol, book)


# -- venues that bridge a REST snapshot (Gate.io, KuCoin) ----------------------------------

Update = tuple[str, int, int, Levels, Levels]
"""One depth update of a frame: symbol, first and last id, bids, asks."""


def _gate_levels(levels: list[Any]) -> Levels:
    # Spot sends [price, size]; futures {"p": price, "s": size} with integer sizes.
    return [(lv["p"], lv["s"]) if isinstance(lv, dict) else lv for lv in levels]


def _gate(msg: Any) -> list[Update]:
    if not isinstance(msg, dict) or msg.get("event") != "update":
        return []
    if not str(msg.get("channel", "")).endswith(".order_book_update"):
        return []
    r = msg["result"]
    return [(r["s"], r["U"], r["u"], _gate_levels(r["b"]), _gate_levels(r["a"]))]


def _gate_snapshot(body: Any) -> tuple[int, Levels, Levels]:
    return body["id"], _gate_levels(body["bids"]), _gate_levels(body["asks"])


def _kucoin(msg: Any) -> list[Update]:
    if not isinstance(msg, dict) or msg.get("subject") != "trade.l2update":
        return []
    data = msg["data"]
    changes = data["changes"]
    first, last = data["sequenceStart"], data["sequenceEnd"]
    return [(data["symbol"], first, last, changes["bids"], changes["asks"])]


def _kucoin_snapshot(body: Any) -> tuple[int, Levels, Levels]:
    data = body["data"]
    return int(data["sequence"]), data["bids"], data["asks"]


SnapshotReader = Callable[[Any], tuple[int, Levels, Levels]]
"""Reads a parsed REST snapshot: its id, bids and asks."""

BRIDGED: dict[str, tuple[Callable[[Any], list[Update]], SnapshotReader]] = {
    "gateio": (_gate, _gate_snapshot),
    "gateio-futures": (_gate, _gate_snapshot),
    "kucoin": (_kucoin, _kucoin_snapshot),
}
"""Venue -> (what reads the depth updates of a parsed frame, what reads a REST snapshot)."""


class BridgedBooks:
    """The naive client of Gate.io and KuCoin: a symbol's REST snapshot (``snapshot_for``) is
    fetched when its first update comes; updates it covers are dropped, the first one applied
    must reach across its id, and each later one must start where the last ended."""

    def __init__(
        self,
        venue: str,
        snapshot_for: Callable[[str], bytes],
        on_book: Callable[[str, PlainBook], object] | None = None,
        top: int = DEFAULT_TOP,
    ) -> None:
        try:
            self.parse, self.parse_snapshot = BRIDGED[venue]
        except KeyError:
            raise ValueError(f"no REST-bridged naive book for venue {venue!r}") from None
        # KuCoin numbers each change: on the bridging message only those past the snapshot apply.
        self.change_ids = venue == "kucoin"
        self.snapshot_for = snapshot_for
        self.on_book = on_book
        self.top = top
        self.books: dict[str, PlainBook] = {}
        self.last_ids: dict[str, int] = {}
        self.synced: set[str] = set()

    def _book(self, symbol: str) -> PlainBook:
        book = self.books.get(symbol)
        if book is None:
            last_id, bids, asks = self.parse_snapshot(orjson.loads(self.snapshot_for(symbol)))
            book = self.books[symbol] = PlainBook()
            book.apply(True, bids, asks, self.top)
            self.last_ids[symbol] = last_id
        return book

    def receive(self, frame: bytes | str) -> None:
        for symbol, first, last, bids, asks in self.parse(orjson.loads(frame)):
            book = self._book(symbol)
            last_id = self.last_ids[symbol]
            if symbol in self.synced:
                if first != last_id + 1:
                    raise NaiveGapError(f"{symbol}: expected {last_id + 1}, got {first}")
            elif last <= last_id:
                continue
            elif first > last_id + 1:
                raise NaiveGapError(f"{symbol}: update {first}..{last} misses the snapshot")
            else:
                self.synced.add(symbol)
                if self.change_ids:
                    bids = [c for c in bids if int(c[2]) > last_id]
                    asks = [c for c in asks if int(c[2]) > last_id]
            if self.change_ids:  # KuCoin's price "0" changes carry only a sequence number
                bids = [c for c in bids if c[0] != "0"]
                asks = [c for c in asks if c[0] != "0"]
            book.apply(False, bids, asks, self.top)
            self.last_ids[symbol] = last
            if self.on_book is not None:
                self.on_book(symbol, book)
