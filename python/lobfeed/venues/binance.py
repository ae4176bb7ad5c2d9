"""Binance spot, USDⓈ-M and COIN-M: combined streams by URL, REST depth snapshots."""

from __future__ import annotations

from urllib.parse import urlencode

from lobfeed.venues.base import BOOK, CANDLES, QUOTES, TRADES, Subscription, VenueSpec

# The REST snapshot depth asked for; 1000 keeps the request weight moderate.
SNAPSHOT_LIMIT = 1000


class BinanceSpec(VenueSpec):
    depth_path = "/api/v3/depth"

    def __init__(self, name: str, ws_url: str, rest_url: str, depth_path: str) -> None:
        self.name = name
        self.ws_url = ws_url
        self.rest_url = rest_url
        self.depth_path = depth_path

    def streams(self, sub: Subscription) -> list[str]:
        names: list[str] = []
        for symbol in sub.symbols:
            s = symbol.lower()
            if BOOK in sub.channels:
                names.append(f"{s}@depth@100ms")
            if QUOTES in sub.channels:
                names.append(f"{s}@bookTicker")
            if TRADES in sub.channels:
                names.append(f"{s}@trade")
            if CANDLES in sub.channels:
                names.append(f"{s}@kline_{sub.candle_interval}")
        return names

    def connect_url(self, ws_url: str, sub: Subscription) -> str:
        return f"{ws_url.rstrip('/')}/stream?streams={'/'.join(self.streams(sub))}"

    def snapshot_url(self, rest_url: str, symbol: str, sub: Subscription) -> str | None:
        query = urlencode({"symbol": symbol.upper(), "limit": SNAPSHOT_LIMIT})
        return f"{rest_url.rstrip('/')}{self.depth_path}?{query}"


SPOT = BinanceSpec(
    "binance", "wss://stream.binance.com:9443", "https://api.binance.com", "/api/v3/depth"
)
USDM = BinanceSpec(
    "binance-usdm", "wss://fstream.binance.com", "https://fapi.binance.com", "/fapi/v1/depth"
)
COINM = BinanceSpec(
    "binance-coinm", "wss://dstream.binance.com", "https://dapi.binance.com", "/dapi/v1/depth"
)
