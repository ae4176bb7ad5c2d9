"""Binance spot, USDⓈ-M and COIN-M: combined streams by URL, REST depth snapshots."""

from __future__ import annotations

from urllib.parse import urlencode

from lobfeed.venues.base import BOOK, CANDLES, QUOTES, TRADES, Subscription, VenueSpec, WeightLimit

# The REST snapshot depth asked for; 1000 keeps the request weight moderate.
SNAPSHOT_LIMIT = 1000


# Longest subscription URL: Binance documents none; a 25,758-byte one for 300 symbols x 4
# channels was refused with 414, and 8 KiB is the request line common HTTP front ends accept.
MAX_URL_BYTES = 8000


class BinanceSpec(VenueSpec):
    depth_path = "/api/v3/depth"
    # "A single connection ... is only valid for 24 hours; expect to be disconnected at the 24
    # hour mark" (the spot and futures websocket stream pages).
    connection_lifetime = 24 * 3600.0
    max_url_bytes = MAX_URL_BYTES

    def __init__(
        self,
        name: str,
        ws_url: str,
        rest_url: str,
        depth_path: str,
        max_streams: int,
        rest_weight: WeightLimit,
    ) -> None:
        self.name = name
        self.ws_url = ws_url
        self.rest_url = rest_url
        self.depth_path = depth_path
        self.max_streams_per_connection = max_streams
        self.rest_weight = rest_weight

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


# Streams per connection: "A single connection can listen to a maximum of 1024 streams" (spot,
# developers.binance.com/docs/binance-spot-api-docs/web-socket-streams); 200 on USDⓈ-M and
# COIN-M futures (developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-
# streams, .../coin-margined-futures/websocket-market-streams).
# REST weight: spot allows 6,000 a minute per IP and a depth snapshot of limit=1000 weighs 50
# (developers.binance.com/docs/binance-spot-api-docs/rest-api/limits, .../market-data-
# endpoints#order-book); USDⓈ-M and COIN-M allow 2,400 a minute and limit=1000 weighs 20
# (.../derivatives/usds-margined-futures/market-data/rest-api/Order-Book, and COIN-M's page).
SPOT = BinanceSpec(
    "binance",
    "wss://stream.binance.com:9443",
    "https://api.binance.com",
    "/api/v3/depth",
    max_streams=1024,
    rest_weight=WeightLimit(6000, 60.0, 50, "Binance spot REST limits; depth limit=1000"),
)
USDM = BinanceSpec(
    "binance-usdm",
    "wss://fstream.binance.com",
    "https://fapi.binance.com",
    "/fapi/v1/depth",
    max_streams=200,
    rest_weight=WeightLimit(2400, 60.0, 20, "Binance USDⓈ-M REST limits; depth limit=1000"),
)
COINM = BinanceSpec(
    "binance-coinm",
    "wss://dstream.binance.com",
    "https://dapi.binance.com",
    "/dapi/v1/depth",
    max_streams=200,
    rest_weight=WeightLimit(2400, 60.0, 20, "Binance COIN-M REST limits; depth limit=1000"),
)
