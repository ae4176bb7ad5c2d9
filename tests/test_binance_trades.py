"""Binance trades from the ``trade`` or the ``aggTrade`` stream (``venue_options``).

The 2021 tapes were recorded with ``aggTrade`` streams: a Feed asking for them gets, over
loopback from ``lobfeed serve``, exactly the aggTrade frames of the tape, each with its
aggregate id and the venue's digits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from lobfeed import Feed, Trade
from lobfeed.exceptions import ConfigError
from lobfeed.tape import Tape
from lobfeed.testing import ExchangeServer
from lobfeed.venues import Subscription, spec_for

TIMEOUT = 60

TAPES = [
    ("binance", "binance-spot-4sym-2021.jsonl.gz", 2),
    ("binance-usdm", "binance-usdm-4sym-2021.jsonl.gz", 91),
    ("binance-coinm", "binance-coinm-10sym-2021.jsonl.gz", 51),
]

TradeRow = tuple[str, str, str, str, str | None]


def recorded_agg_trades(tape: Tape) -> tuple[list[str], list[TradeRow]]:
    """The tape's symbols (from its stream names) and its aggTrade events, read line by line."""
    symbols: list[str] = []
    trades: list[TradeRow] = []
    for record in tape.iter_records("open"):
        for name in (record.url or "").split("streams=", 1)[1].split("/"):
            symbol = name.split("@", 1)[0].upper()
            if symbol not in symbols:
                symbols.append(symbol)
    for record in tape.iter_records("recv"):
        frame = orjson.loads(record.data or "null")
        event = frame.get("data", frame) if isinstance(frame, dict) else None
        if isinstance(event, dict) and event.get("e") == "aggTrade":
            side = "sell" if event["m"] else "buy"
            trades.append((event["s"], str(event["a"]), event["p"], event["q"], side))
    return symbols, trades


@pytest.mark.parametrize(("venue", "name", "frames"), TAPES, ids=[t[0] for t in TAPES])
async def test_agg_trades_over_loopback(
    venue: str, name: str, frames: int, tape_path: Callable[[str], Path], tmp_path: Path
) -> None:
    tape = Tape.open(tape_path(name))
    symbols, expected = recorded_agg_trades(tape)
    assert len(expected) == frames
    got: list[TradeRow] = []

    def on_trade(trade: Trade) -> None:
        got.append((trade.symbol, trade.trade_id, trade.price, trade.size, trade.side))

    recording = tmp_path / "feed.jsonl"
    async with ExchangeServer(tape, speed=float("inf")) as server:
        feed = Feed(
            venue,
            symbols,
            channels=("trades",),
            on_trade=on_trade,
            venue_options={"trade_stream": "aggTrade"},
            ws_url=server.ws_url,
            rest_url=server.rest_url,
            reconnect=False,
            record=str(recording),
        )
        await asyncio.wait_for(feed.run(), TIMEOUT)
    assert got == expected
    assert feed.stats.frame_errors == 0
    # What was asked of the venue: the aggTrade stream of each symbol, no other.
    (opened,) = [r.url or "" for r in Tape.open(recording).iter_records("open")]
    streams = opened.split("streams=", 1)[1].split("/")
    assert streams == [f"{symbol.lower()}@aggTrade" for symbol in symbols]


def test_trade_stream_option_picks_the_stream() -> None:
    spec = spec_for("binance-usdm")
    plain = Subscription(("BTCUSDT",), frozenset({"trades"}))
    agg = Subscription(("BTCUSDT",), frozenset({"trades"}), options=(("trade_stream", "aggTrade"),))
    trade = Subscription(("BTCUSDT",), frozenset({"trades"}), options=(("trade_stream", "trade"),))
    assert spec.streams(plain) == spec.streams(trade) == ["btcusdt@trade"]
    assert spec.streams(agg) == ["btcusdt@aggTrade"]
    assert spec.options == {"trade_stream": ("trade", "aggTrade")}
    with pytest.raises(ConfigError, match=r"trade_stream='aggtrade' is not one of trade, aggTrade"):
        Feed("binance", ["BTCUSDT"], venue_options={"trade_stream": "aggtrade"})
