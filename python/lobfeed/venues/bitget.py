"""Bitget public websocket v1: spot (``bitget``) and USDT perpetuals (``bitget-futures``).

One connection per market (``/spot/v1/stream``, instType ``SP``; ``/mix/v1/stream``,
instType ``MC``), one ``{"op":"subscribe","args":[{"instType","channel","instId"}, ...]}``.
The text ``ping`` is sent every ``heartbeat_interval`` seconds; Bitget answers ``pong`` and
closes a connection that stays silent for 2 minutes.

Depth: ``books`` is the whole book (a snapshot on subscribe, then updates), each message with
the CRC32 of its top 25 levels, which the Rust core checks; so every ``depth`` is served by it
(views show ``depth`` levels). A mismatch resubscribes that one symbol
(``resubscribe_messages``): Bitget sends a fresh snapshot on subscribe.

Trades (``trade``) and candles (``candle1m`` ... ``candle1W``): the snapshot sent on subscribe
is history (``Feed(history=True)`` delivers it). ``ticker`` carries no sizes: no ``quotes``.
"""

from __future__ import annotations

import orjson

from lobfeed.venues.base import BOOK, CANDLES, TRADES, Subscription, VenueSpec

#: lobfeed's candle intervals and the channel of each (hours, days and weeks in upper case).
CANDLE_CHANNELS = {
    "1m": "candle1m",
    "5m": "candle5m",
    "15m": "candle15m",
    "30m": "candle30m",
    "1h": "candle1H",
    "4h": "candle4H",
    "12h": "candle12H",
    "1d": "candle1D",
    "1w": "candle1W",
}


def _op(op: str, args: list[dict[str, str]]) -> str:
    return orjson.dumps({"op": op, "args": args}).decode()


class BitgetSpec(VenueSpec):
    ws_url = "wss://ws.bitget.com"
    rest_url = "https://api.bitget.com"
    native_venue = "bitget"
    channels = frozenset({BOOK, TRADES, CANDLES})
    history_channels = frozenset({TRADES, CANDLES})
    candle_intervals = tuple(CANDLE_CHANNELS)
    # "ping" within 30 s keeps a connection (www.bitget.com/api-doc/common/websocket-intro,
    # "Connect": the server closes it after 2 minutes without one).
    heartbeat_interval = 25.0
    # "It is recommended to subscribe to fewer than 50 channels per connection for stability"
    # (same page, "Subscription limit").
    max_streams_per_connection = 50

    def __init__(
        self, name: str, ws_path: str, inst_type: str, instruments_path: str, suffix: str
    ) -> None:
        self.name = name
        self.ws_path = ws_path
        self.inst_type = inst_type
        self.instruments_path = instruments_path
        self.suffix = suffix

    def _arg(self, channel: str, symbol: str) -> dict[str, str]:
        return {"instType": self.inst_type, "channel": channel, "instId": symbol}

    def args(self, sub: Subscription) -> list[dict[str, str]]:
        args: list[dict[str, str]] = []
        for symbol in sub.symbols:
            if BOOK in sub.channels:
                args.append(self._arg("books", symbol))
            if TRADES in sub.channels:
                args.append(self._arg("trade", symbol))
            if CANDLES in sub.channels:
                args.append(self._arg(CANDLE_CHANNELS[sub.candle_interval], symbol))
        return args

    def streams(self, sub: Subscription) -> list[str]:
        return [f"{a['channel']}:{a['instId']}" for a in self.args(sub)]

    def connect_url(self, ws_url: str, sub: Subscription) -> str:
        return f"{ws_url.rstrip('/')}{self.ws_path}"

    def subscribe_messages(self, sub: Subscription) -> list[str]:
        return [_op("subscribe", self.args(sub))]

    def resubscribe_messages(
        self, symbol: str, sub: Subscription, *, channel: int | None = None
    ) -> list[str]:
        arg = self._arg("books", symbol)
        return [_op("unsubscribe", [arg]), _op("subscribe", [arg])]

    def instruments_url(self, rest_url: str, sub: Subscription) -> str | None:
        return f"{rest_url.rstrip('/')}{self.instruments_path}"

    def listed_symbols(self, body: bytes) -> frozenset[str] | None:
        """The websocket ``instId`` of each listed product: the REST ``symbol`` without its
        market suffix (``BTCUSDT_SPBL``, ``BTCUSDT_UMCBL`` -> ``BTCUSDT``)."""
        try:
            answer = orjson.loads(body)
            if answer.get("code") != "00000":
                return None
            return frozenset(item["symbol"].removesuffix(self.suffix) for item in answer["data"])
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            return None

    def heartbeat_message(self) -> str | None:
        return "ping"


SPOT = BitgetSpec("bitget", "/spot/v1/stream", "SP", "/api/spot/v1/public/products", "_SPBL")
FUTURES = BitgetSpec(
    "bitget-futures",
    "/mix/v1/stream",
    "MC",
    "/api/mix/v1/market/contracts?productType=umcbl",
    "_UMCBL",
)
