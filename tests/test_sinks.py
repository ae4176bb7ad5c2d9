"""``Feed(sinks=...)``: every sink sees what the callbacks see, in order, and is started and
closed exactly once, also when the feed ends with an error."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lobfeed import BookUpdate, Feed, Trade
from lobfeed.exceptions import ConfigError, ConnectError
from lobfeed.sinks import Sink, feed_callbacks
from lobfeed.tape import Tape
from lobfeed.testing import ExchangeServer

ETH_TAPE = "binance-ethusdt-20240808.jsonl.gz"
TIMEOUT = 60


class Recording(Sink):
    name = "recording"

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.books: list[tuple[str, int | None, Any]] = []
        self.trades: list[str] = []

    async def start(self) -> None:
        self.calls.append("start")

    def on_book(self, update: BookUpdate) -> None:
        # The view is only good during the call: a sink copies what it keeps.
        self.books.append((update.symbol, update.seq, update.book.bids(1)))

    def on_trade(self, trade: Trade) -> None:
        self.trades.append(trade.trade_id)

    async def close(self) -> None:
        self.calls.append("close")


async def test_sinks_see_what_the_callbacks_see(tape_path: Callable[[str], Path]) -> None:
    first, second = Recording(), Recording()
    seen_books: list[tuple[str, int | None, Any]] = []
    seen_trades: list[str] = []

    async def on_trade(trade: Trade) -> None:  # an async callback beside sync sinks
        seen_trades.append(trade.trade_id)

    async with ExchangeServer(Tape.open(tape_path(ETH_TAPE)), speed=float("inf")) as server:
        feed = Feed(
            "binance",
            ["ETHUSDT"],
            channels=("book", "trades"),
            on_book=lambda u: seen_books.append((u.symbol, u.seq, u.book.bids(1))),
            on_trade=on_trade,
            sinks=[first, second],
            ws_url=server.ws_url,
            rest_url=server.rest_url,
            reconnect=False,
        )
        await asyncio.wait_for(feed.run(), TIMEOUT)
    assert len(seen_books) > 1000 and seen_trades
    for sink in (first, second):
        assert sink.calls == ["start", "close"]
        assert sink.books == seen_books
        assert sink.trades == seen_trades


async def test_sinks_are_closed_when_the_feed_fails() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = Recording()
    feed = Feed(
        "binance",
        ["ETHUSDT"],
        sinks=[sink],
        ws_url=f"ws://127.0.0.1:{port}",
        rest_url=f"http://127.0.0.1:{port}",
        reconnect=False,
    )
    with pytest.raises(ConnectError):
        await asyncio.wait_for(feed.run(), TIMEOUT)
    assert sink.calls == ["start", "close"]


def test_feed_callbacks_fans_out_and_names_a_wrong_callback() -> None:
    sink = Recording()
    got: list[object] = []
    callbacks = feed_callbacks([sink], on_book=got.append)
    assert callbacks["on_quote"] is None and callbacks["on_candle"] is None
    assert callbacks["on_trade"] == sink.on_trade
    with pytest.raises(ConfigError, match="on_books"):
        feed_callbacks([sink], on_books=got.append)
