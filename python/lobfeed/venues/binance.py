"""Binance spot, USDⓈ-M and COIN-M: combined streams by URL, REST depth snapshots.

Depth: the book is the diff stream ``<symbol>@depth@100ms`` (every level that changes, no depth
choice) bridged to a REST snapshot of ``SNAPSHOT_LIMIT`` (1000) levels a side, so one venue depth
serves every ``depth`` from 1 to 1000: the book is kept whole (cutting a diff stream would lose
levels that come back into range) and views show ``depth`` levels. Deeper than 1000 is refused:
levels past the snapshot are unknown until they change.

Trades: ``<symbol>@trade`` (one event per fill) by default; ``venue_options={"trade_stream":
"aggTrade"}`` subscribes ``<symbol>@aggTrade`` instead (fills of one taker order at one price
merged; the trade id is the aggregate id ``a``).

Candles: the kline intervals Binance has (``SPOT_KLINE_INTERVALS``, ``FUTURES_KLINE_INTERVALS``:
``1s`` is spot only); any other ``candle_interval`` is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import urlencode

from lobfeed.venues.base import BOOK, CANDLES, QUOTES, TRADES, Subscription, VenueSpec, WeightLimit

# The REST snapshot depth asked for; 1000 keeps the request weight moderate. It is also the
# deepest `depth` served.
SNAPSHOT_LIMIT = 1000

#: Kline intervals of the futures markets (developers.binance.com/docs/derivatives/usds-margined-
#: futures/market-data/websocket-market-streams/Kline-Candlestick-Streams, and COIN-M's page).
FUTURES_KLINE_INTERVALS = (
    "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M",
)  # fmt: skip
#: Spot adds one-second klines (developers.binance.com/docs/binance-spot-api-docs/web-socket-
#: streams, "Kline/Candlestick Streams").
SPOT_KLINE_INTERVALS = ("1s", *FUTURES_KLINE_INTERVALS)

TRADE_STREAMS = ("trade", "aggTrade")


# Longest subscription URL: Binance documents none; a 25,758-byte one for 300 symbols x 4
# channels was refused with 414, and 8 KiB is the request line common HTTP front ends accept.
MAX_URL_BYTES = 8000


class BinanceSpec(VenueSpec):
    # "A single connection ... is only valid for 24 hours; expect to be disconnected at the 24
    # hour mark" (the spot and futures websocket stream pages).
    connection_lifetime = 24 * 3600.0
    max_url_bytes = MAX_URL_BYTES
    max_depth = SNAPSHOT_LIMIT
    options: ClassVar[Mapping[str, tuple[str, ...]]] = {"trade_stream": TRADE_STREAMS}

    def __init__(
        self,
        name: str,
        ws_url: str,
        rest_url: str,
        depth_path: str,
        max_streams: int,
        rest_weight: WeightLimit,
        kline_intervals: tuple[str, ...],
    ) -> None:
        self.name = name
        self.ws_url = ws_url
        self.rest_url = rest_url
        self.depth_path = depth_path
        self.max_streams_per_connection = max_streams
        self.rest_weight = rest_weight
        self.candle_intervals = kline_intervals

    def streams(self, sub: Subscription) -> list[str]:
        names: list[str] = []
        for symbol in sub.symbols:
            s = symbol.lower()
            if BOOK in sub.channels:
                names.append(f"{s}@depth@100ms")
            if QUOTES in sub.channels:
                names.append(f"{s}@bookTicker")
            if TRADES in sub.channels:
                names.append(f"{s}@{sub.option('trade_stream', 'trade')}")
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
    kline_intervals=SPOT_KLINE_INTERVALS,
)
USDM = BinanceSpec(
    "binance-usdm",
    "wss://fstream.binance.com",
    "https://fapi.binance.com",
    "/fapi/v1/depth",
    max_streams=200,
    rest_weight=WeightLimit(2400, 60.0, 20, "Binance USDⓈ-M REST limits; depth limit=1000"),
    kline_intervals=FUTURES_KLINE_INTERVALS,
)
COINM = BinanceSpec(
    "binance-coinm",
    "wss://dstream.binance.com",
    "https://dapi.binance.com",
    "/dapi/v1/depth",
    max_streams=200,
    rest_weight=WeightLimit(2400, 60.0, 20, "Binance COIN-M REST limits; depth limit=1000"),
    kline_intervals=FUTURES_KLINE_INTERVALS,
)
