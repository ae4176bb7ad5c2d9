"""Gate API v4: spot (``gateio``) and USDT perpetual futures (``gateio-futures``).

Both markets speak the same protocol: one connection, one ``subscribe`` message per channel
(``{"time":T,"channel":"spot.order_book_update","event":"subscribe","payload":[..]}``), and
an application ping (``spot.ping`` / ``futures.ping``) every ``heartbeat_interval`` seconds.

Depth: the book is ``<market>.order_book_update`` at ``100ms`` (every level that changed, for
the whole book) bridged to the REST book ``order_book?limit=100&with_id=true`` by its ``id``, so
one venue depth serves every ``depth`` from 1 to 100: the book is kept whole (cutting a diff
stream would lose levels that come back into range) and views show ``depth`` levels. Deeper
than 100 is refused: levels past the snapshot are unknown until they change.

``quotes`` subscribes ``<market>.book_ticker``: the best bid/ask at an order book update id
``u``, which the Rust core turns into ``Quote`` events with that ``seq`` (a cross-check of the
book). Futures sizes are whole contracts.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

import orjson

from lobfeed.venues.base import (
    BOOK,
    CANDLES,
    QUOTES,
    TRADES,
    Subscription,
    VenueSpec,
    WeightLimit,
)

#: The REST book depth asked for; also the deepest ``depth`` served.
SNAPSHOT_LIMIT = 100
#: ``order_book_update`` speeds are 20ms (futures, 20 levels) and 100ms; 100ms is the one
#: that streams changes to the whole book on both markets.
UPDATE_SPEED = "100ms"

#: Candle intervals of ``spot.candlesticks`` and ``futures.candlesticks`` (www.gate.io/docs/
#: developers/apiv4/ws/en, "Candlesticks Channel"; futures have no ``30d``).
SPOT_CANDLE_INTERVALS = ("10s", "1m", "5m", "15m", "30m", "1h", "4h", "8h", "1d", "7d", "30d")
FUTURES_CANDLE_INTERVALS = SPOT_CANDLE_INTERVALS[:-1]

# Public REST endpoints: "200 requests per 10 seconds" per endpoint, by IP (www.gate.io/docs/
# developers/apiv4, "Frequency limit rule"); a snapshot is one request.
REST_WEIGHT = WeightLimit(200, 10.0, 1, "Gate API v4 frequency limit rule, public endpoints")


class GateSpec(VenueSpec):
    channels = frozenset({BOOK, TRADES, CANDLES, QUOTES})
    max_depth = SNAPSHOT_LIMIT
    rest_weight = REST_WEIGHT
    # Gate documents no ping period; it closes connections silent for long, and its own
    # clients ping every 10 to 30 seconds.
    heartbeat_interval = 15.0

    def __init__(
        self,
        name: str,
        ws_url: str,
        ws_path: str,
        market: str,
        book_path: str,
        symbol_param: str,
        instruments_path: str,
        instrument_key: str,
        candle_intervals: tuple[str, ...],
    ) -> None:
        self.name = name
        self.ws_url = ws_url
        self.ws_path = ws_path
        self.rest_url = "https://api.gateio.ws"
        self.market = market
        self.book_path = book_path
        self.symbol_param = symbol_param
        self.instruments_path = instruments_path
        self.instrument_key = instrument_key
        self.candle_intervals = candle_intervals

    def _message(self, channel: str, payload: list[str], event: str = "subscribe") -> str:
        message = {
            "time": int(time.time()),
            "channel": f"{self.market}.{channel}",
            "event": event,
            "payload": payload,
        }
        return orjson.dumps(message).decode()

    def subscribe_messages(self, sub: Subscription) -> list[str]:
        symbols = list(sub.symbols)
        messages: list[str] = []
        if TRADES in sub.channels:
            messages.append(self._message("trades", symbols))
        if BOOK in sub.channels:
            # One book per message: the payload is a symbol and a speed.
            messages.extend(
                self._message("order_book_update", [symbol, UPDATE_SPEED]) for symbol in symbols
            )
        if CANDLES in sub.channels:
            messages.extend(
                self._message("candlesticks", [sub.candle_interval, symbol]) for symbol in symbols
            )
        if QUOTES in sub.channels:
            messages.append(self._message("book_ticker", symbols))
        return messages

    def connect_url(self, ws_url: str, sub: Subscription) -> str:
        return f"{ws_url.rstrip('/')}{self.ws_path}"

    def streams(self, sub: Subscription) -> list[str]:
        return [f"{self.market}.{c}:{s}" for s in sub.symbols for c in sorted(sub.channels)]

    def snapshot_url(self, rest_url: str, symbol: str, sub: Subscription) -> str | None:
        query = urlencode({self.symbol_param: symbol, "limit": SNAPSHOT_LIMIT, "with_id": "true"})
        return f"{rest_url.rstrip('/')}{self.book_path}?{query}"

    def instruments_url(self, rest_url: str, sub: Subscription) -> str | None:
        return f"{rest_url.rstrip('/')}{self.instruments_path}"

    def listed_symbols(self, body: bytes) -> frozenset[str] | None:
        try:
            items = orjson.loads(body)
            if not isinstance(items, list):
                return None  # an error answer
            return frozenset(item[self.instrument_key] for item in items)
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None

    def heartbeat_message(self) -> str | None:
        return orjson.dumps({"time": int(time.time()), "channel": f"{self.market}.ping"}).decode()


SPOT = GateSpec(
    "gateio",
    "wss://api.gateio.ws",
    "/ws/v4/",
    "spot",
    "/api/v4/spot/order_book",
    "currency_pair",
    "/api/v4/spot/currency_pairs",
    "id",
    SPOT_CANDLE_INTERVALS,
)
FUTURES = GateSpec(
    "gateio-futures",
    "wss://fx-ws.gateio.ws",
    "/v4/ws/usdt",
    "futures",
    "/api/v4/futures/usdt/order_book",
    "contract",
    "/api/v4/futures/usdt/contracts",
    "name",
    FUTURES_CANDLE_INTERVALS,
)
