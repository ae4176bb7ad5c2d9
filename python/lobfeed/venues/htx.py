"""HTX (formerly Huobi): ``htx-swap`` (coin- and USDT-margined swaps) and ``htx`` (spot).

Every frame HTX sends is binary, gzip-compressed JSON; the Rust session inflates it. HTX pings
the client (``{"ping": T}``) and closes a connection that does not answer ``{"pong": T}`` within
seconds: the session turns each ping into a reply the Feed sends, so no heartbeat of ours is
needed.

Subscriptions are one ``{"sub": "market.<symbol>.<channel>", "id": ...}`` per topic:
``depth.step0`` for the book and ``trade.detail`` for trades. Every ``depth.step0`` push is
the whole book, up to 150 levels a side, and replaces the last one: ``depth`` 1 to 150 is served by
it (views show ``depth`` levels); more is refused (``ConfigError``). The incremental ``mbp``
channels are not used.

Swaps live on two endpoints of ``api.hbdm.com``: coin-margined contracts (``BTC-USD``) on
``/swap-ws``, USDT-margined ones (``BTC-USDT``) on ``/linear-swap-ws``; a subscription mixing
both is split into one connection per endpoint. Spot is ``api.huobi.pro/ws``, with lower-case
symbols (``btcusdt``). The spot spec shares the swap session: the frames are the same shapes
(spot depth pushes carry ``version`` without ``mrid``, spot trades a ``tradeId``).
"""

from __future__ import annotations

import itertools

import orjson

from lobfeed.venues.base import BOOK, TRADES, Subscription, VenueSpec

#: The most levels a side of a ``depth.step0`` push.
STEP0_LEVELS = 150
COIN_MARGINED_PATH = "/swap-ws"
USDT_MARGINED_PATH = "/linear-swap-ws"
SPOT_PATH = "/ws"

_ids = itertools.count(1)


def _request(op: str, topic: str) -> str:
    return orjson.dumps({op: topic, "id": str(next(_ids))}).decode()


class HtxSpec(VenueSpec):
    """What the spot and swap specs share: topics, requests, depth."""

    native_venue = "htx-swap"
    channels = frozenset({BOOK, TRADES})
    max_depth = STEP0_LEVELS
    book_depths = (STEP0_LEVELS,)

    def topics(self, symbol: str, sub: Subscription) -> list[str]:
        topics = []
        if BOOK in sub.channels:
            topics.append(f"market.{symbol}.depth.step0")
        if TRADES in sub.channels:
            topics.append(f"market.{symbol}.trade.detail")
        return topics

    def subscribe_messages(self, sub: Subscription) -> list[str]:
        return [_request("sub", t) for symbol in sub.symbols for t in self.topics(symbol, sub)]

    def resubscribe_messages(
        self, symbol: str, sub: Subscription, *, channel: int | None = None
    ) -> list[str]:
        topic = f"market.{symbol}.depth.step0"
        return [_request("unsub", topic), _request("sub", topic)]


class HtxSwapSpec(HtxSpec):
    name = "htx-swap"
    ws_url = "wss://api.hbdm.com"
    rest_url = "https://api.hbdm.com"

    @staticmethod
    def path(symbol: str) -> str:
        """The endpoint of a contract: USDT-margined ones end in ``-USDT``."""
        return USDT_MARGINED_PATH if symbol.upper().endswith("-USDT") else COIN_MARGINED_PATH

    def fits(self, sub: Subscription) -> bool:
        # One connection serves one endpoint: coin- and USDT-margined symbols go apart.
        return len({self.path(s) for s in sub.symbols}) == 1 and super().fits(sub)

    def connect_url(self, ws_url: str, sub: Subscription) -> str:
        return f"{ws_url.rstrip('/')}{self.path(sub.symbols[0])}"

    def serves_url(self, url: str) -> bool:
        return any(url.rstrip("/").endswith(p) for p in (COIN_MARGINED_PATH, USDT_MARGINED_PATH))


class HtxSpotSpec(HtxSpec):
    name = "htx"
    ws_url = "wss://api.huobi.pro"
    rest_url = "https://api.huobi.pro"

    def normalize_symbol(self, symbol: str) -> str:
        return symbol.lower()

    def connect_url(self, ws_url: str, sub: Subscription) -> str:
        return f"{ws_url.rstrip('/')}{SPOT_PATH}"


SPECS = (HtxSwapSpec(), HtxSpotSpec())
