"""KuCoin spot: a connection token per connection, topics by message, REST snapshot bridging.

Connecting: ``POST /api/v1/bullet-public`` answers a ``token`` and ``instanceServers`` (each an
``endpoint`` and its ``pingInterval`` in ms); the connection opens ``endpoint?token=..&
connectId=..`` and pings ``{"id":..,"type":"ping"}`` every ``pingInterval``. The venue greets
with ``{"type":"welcome"}``.

Topics: ``/market/level2:`` (the book's changes), ``/market/match:`` (trades),
``/market/ticker:`` (best bid/ask at the book's sequence: quotes) with up to 100 symbols each,
and ``/market/candles:SYMBOL_TYPE`` one symbol each.

Depth: the level2 stream is every change of the whole book, bridged to the REST snapshot
``/api/v1/market/orderbook/level2_100`` (100 levels a side, no API key; the full book is
``/api/v3/market/orderbook/level2``, which needs one). So ``depth`` 1 to 100 is served: the book
is kept whole and views show ``depth`` levels; deeper is refused, levels past the snapshot being
unknown until they change.
"""

from __future__ import annotations

import itertools
import time
from urllib.parse import urlencode, urlsplit

import orjson

from lobfeed.exceptions import ConnectError
from lobfeed.venues.base import (
    BOOK,
    CANDLES,
    QUOTES,
    TRADES,
    Endpoint,
    Subscription,
    VenueSpec,
    WeightLimit,
    chunks,
)

SNAPSHOT_PATH = "/api/v1/market/orderbook/level2_100"
#: The full book (with an API key); tapes recorded by other clients hold it.
FULL_SNAPSHOT_PATH = "/api/v3/market/orderbook/level2"
SNAPSHOT_DEPTH = 100
TOKEN_PATH = "/api/v1/bullet-public"
#: "The maximum number of batch subscriptions is 100 symbols" per topic message
#: (www.kucoin.com/docs/websocket/basic-info/subscribe/introduction).
SYMBOLS_PER_TOPIC = 100

#: Our candle intervals and KuCoin's spelling of them (the ``type`` of "Klines" in the spot
#: market data docs).
CANDLE_TYPES = {
    "1m": "1min",
    "3m": "3min",
    "5m": "5min",
    "15m": "15min",
    "30m": "30min",
    "1h": "1hour",
    "2h": "2hour",
    "4h": "4hour",
    "6h": "6hour",
    "8h": "8hour",
    "12h": "12hour",
    "1d": "1day",
    "1w": "1week",
}

_ids = itertools.count(1)


def _message(payload: dict[str, object]) -> str:
    return orjson.dumps(payload).decode()


class KucoinSpec(VenueSpec):
    name = "kucoin"
    ws_url = "wss://ws-api-spot.kucoin.com"
    rest_url = "https://api.kucoin.com"
    channels = frozenset({BOOK, TRADES, CANDLES, QUOTES})
    # Overridden per connection by the token answer's pingInterval (18 s when this was written).
    heartbeat_interval = 18.0
    max_depth = SNAPSHOT_DEPTH
    book_depths = (SNAPSHOT_DEPTH,)
    candle_intervals = tuple(CANDLE_TYPES)
    # "Maximum number of topics per connection: 400" (www.kucoin.com/docs/websocket/basic-info/
    # subscribe/introduction, "Subscription limit").
    max_streams_per_connection = 400
    # The public REST pool: 2,000 weight per 30 s per IP; "Get Part OrderBook (aggregated)"
    # weighs 2 (www.kucoin.com/docs/basic-info/request-rate-limit/rest-api).
    rest_weight = WeightLimit(2000, 30.0, 2, "KuCoin public REST pool; level2_100 weight 2")

    def connect_url(self, ws_url: str, sub: Subscription) -> str:
        return ws_url

    def token_url(self, rest_url: str) -> str | None:
        return f"{rest_url.rstrip('/')}{TOKEN_PATH}"

    def endpoint(self, body: bytes, sub: Subscription) -> Endpoint:
        try:
            answer = orjson.loads(body)
            data = answer["data"]
            token = data["token"]
            server = data["instanceServers"][0]
            url, ping_ms = server["endpoint"], server.get("pingInterval")
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError) as e:
            raise ConnectError(
                f"kucoin: the token answer is not usable ({type(e).__name__}: {e}): "
                f"{body[:200].decode('utf-8', 'replace')}"
            ) from None
        if not isinstance(token, str) or not isinstance(url, str) or not token:
            raise ConnectError(f"kucoin: the token answer names no token or endpoint: {data}")
        query = urlencode({"token": token, "connectId": f"lobfeed-{next(_ids)}"})
        beat = ping_ms / 1000 if isinstance(ping_ms, int) and ping_ms > 0 else None
        return Endpoint(f"{url}?{query}", beat or self.heartbeat_interval)

    def streams(self, sub: Subscription) -> list[str]:
        return [f"{symbol}:{channel}" for symbol in sub.symbols for channel in sub.channels]

    def subscribe_messages(self, sub: Subscription) -> list[str]:
        topics: list[str] = []
        for group in chunks(list(sub.symbols), SYMBOLS_PER_TOPIC):
            joined = ",".join(group)
            if BOOK in sub.channels:
                topics.append(f"/market/level2:{joined}")
            if TRADES in sub.channels:
                topics.append(f"/market/match:{joined}")
            if QUOTES in sub.channels:
                topics.append(f"/market/ticker:{joined}")
        if CANDLES in sub.channels:
            kind = CANDLE_TYPES[sub.candle_interval]
            topics += [f"/market/candles:{symbol}_{kind}" for symbol in sub.symbols]
        return [
            _message(
                {
                    "id": str(next(_ids)),
                    "type": "subscribe",
                    "topic": topic,
                    "privateChannel": False,
                    "response": True,
                }
            )
            for topic in topics
        ]

    def snapshot_url(self, rest_url: str, symbol: str, sub: Subscription) -> str | None:
        return f"{rest_url.rstrip('/')}{SNAPSHOT_PATH}?{urlencode({'symbol': symbol})}"

    def snapshot_symbol(self, url: str) -> str | None:
        # Tapes may hold the full book (v3) as well as the 100 levels this spec asks for.
        parts = urlsplit(url)
        if parts.path.rstrip("/") == FULL_SNAPSHOT_PATH:
            url = f"{SNAPSHOT_PATH}?{parts.query}"
        return VenueSpec.snapshot_symbol(self, url)

    def instruments_url(self, rest_url: str, sub: Subscription) -> str | None:
        return f"{rest_url.rstrip('/')}/api/v1/symbols"

    def listed_symbols(self, body: bytes) -> frozenset[str] | None:
        try:
            items = orjson.loads(body)["data"]
            return frozenset(item["symbol"] for item in items)
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None

    def heartbeat_message(self) -> str | None:
        return _message({"id": str(time.time_ns() // 1_000_000), "type": "ping"})


KUCOIN = KucoinSpec()
