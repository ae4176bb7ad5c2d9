"""The naive baseline: a Binance book the way tutorials build one, in plain Python.

``orjson`` parses each frame into dicts; each side of the book is a ``dict`` of float price to
float size; after every update both sides are sorted to get the top levels, which is what the
callback reads. The sync rules are Binance's documented ones (drop what the snapshot covers,
the first event must bridge it, then ids must follow on), so it builds the same books as
lobfeed and cryptofeed, only in floats.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from lobfeed.bench.depth import bridges

__all__ = ["NaiveBook", "NaiveBooks", "NaiveGapError"]

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
