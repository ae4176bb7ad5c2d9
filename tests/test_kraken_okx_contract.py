"""Kraken and OKX keep the event contract: ``depth`` is checked and served, tickers are quotes.

Quotes are counted over loopback against the local exchange replaying the real tapes, every
one of them: Kraken's ticker connection holds 18 ticker frames, OKX's 28 ticker items.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lobfeed import Feed, Quote
from lobfeed.exceptions import ConfigError
from lobfeed.testing import ExchangeServer
from lobfeed.venues import spec_for
from lobfeed.venues.base import Subscription
from lobfeed.venues.kraken import V1, V2
from lobfeed.venues.okx import OkxSpec

TIMEOUT = 60
KRAKEN_TAPE = "kraken-v1-book1000-10sym-2021.jsonl.gz"
KRAKEN_PAIRS = (
    "WAVES/EUR",
    "XMR/USD",
    "KSM/XBT",
    "GRT/ETH",
    "SC/EUR",
    "ETH/CHF",
    "OCEAN/XBT",
    "OMG/USD",
    "XBT/CHF",
    "ADA/XBT",
)
OKX_TAPE = "okx-books-3inst-2022.jsonl.gz"
OKX_INSTRUMENTS = ("BTC-USD-220527", "UNI-USD-SWAP", "BTC-USDT")


def sub(depth: Any) -> Subscription:
    return Subscription(symbols=("BTC-USDT",), depth=depth)


@pytest.mark.parametrize(
    ("depth", "channel"),
    [(None, "books"), (1, "books5"), (5, "books5"), (6, "books"), (50, "books"), (400, "books")],
)
def test_okx_subscribes_the_channel_serving_the_depth(depth: int | None, channel: str) -> None:
    spec = spec_for("okx")
    spec.check(sub(depth))
    assert OkxSpec.book_channel(sub(depth)) == channel
    assert f'"channel":"{channel}"' in spec.subscribe_messages(sub(depth))[0]


@pytest.mark.parametrize("depth", [0, -5, 401, 1000, 2.5, "10", True])
def test_okx_refuses_a_depth_no_channel_serves(depth: Any) -> None:
    with pytest.raises(ConfigError) as refused:
        Feed("okx", ["BTC-USDT"], depth=depth)
    message = str(refused.value)
    assert message.startswith("okx: ") or message.startswith("okx cannot serve")
    assert repr(depth) in message
    if type(depth) is int and depth > 0:
        assert "1 to 400 levels a side (it streams 5, 400 levels)" in message


@pytest.mark.parametrize(
    ("depth", "served"),
    [(None, 10), (1, 10), (10, 10), (11, 25), (25, 25), (26, 100), (101, 500), (501, 1000)],
)
def test_kraken_subscribes_the_smallest_book_at_least_as_deep(
    depth: int | None, served: int
) -> None:
    for spec in (V1, V2):
        spec.check(sub(depth))
    assert V1.book_subscription(sub(depth)) == {"name": "book", "depth": served}
    assert V2.book_params(["BTC/USD"], sub(depth))["depth"] == served


@pytest.mark.parametrize("depth", [0, -1, 1001, 10.0, "25", False])
def test_kraken_refuses_a_depth_no_book_serves(depth: Any) -> None:
    for venue in ("kraken", "kraken-v2"):
        with pytest.raises(ConfigError, match=venue) as refused:
            Feed(venue, ["XBT/USD"], depth=depth)
        assert repr(depth) in str(refused.value)
        if type(depth) is int and depth > 0:
            assert "1 to 1000 levels a side (it streams 10, 25, 100, 500, 1000 levels)" in str(
                refused.value
            )


async def quotes_over_loopback(tape: Path, venue: str, symbols: tuple[str, ...]) -> list[Quote]:
    quotes: list[Quote] = []
    events: list[Any] = []
    async with ExchangeServer(tape, speed=float("inf")) as server:
        feed = Feed(
            venue,
            symbols,
            channels=("quotes",),
            on_quote=quotes.append,
            on_event=events.append,
            ws_url=server.ws_url,
            rest_url=server.rest_url,
            reconnect=False,
        )
        await asyncio.wait_for(feed.run(), TIMEOUT)
    assert events == []
    assert feed.stats.frame_errors == 0
    return quotes


def top(quote: Quote) -> tuple[str, str | None, str, str, str, str, int]:
    return (
        quote.symbol,
        None if quote.seq is None else str(quote.seq),
        quote.bid_price,
        quote.bid_size,
        quote.ask_price,
        quote.ask_size,
        quote.exchange_ts_ns,
    )


async def test_kraken_tickers_are_quotes(tape_path: Callable[[str], Path]) -> None:
    quotes = await quotes_over_loopback(tape_path(KRAKEN_TAPE), "kraken", KRAKEN_PAIRS)
    assert len(quotes) == 18
    # [1668,{"a":["13.253900",35,"35.72892241"],"b":["13.232900",185,"185.18432037"],..},
    #  "ticker","WAVES/EUR"]: the lot volume is the size; v1 tickers carry no time.
    assert top(quotes[0]) == (
        "WAVES/EUR",
        None,
        "13.232900",
        "185.18432037",
        "13.253900",
        "35.72892241",
        0,
    )
    assert quotes[0].ts_ns > 0
    assert {q.symbol for q in quotes} == set(KRAKEN_PAIRS)
    assert all(float(q.bid_price) < float(q.ask_price) for q in quotes)


async def test_okx_tickers_are_quotes(tape_path: Callable[[str], Path]) -> None:
    quotes = await quotes_over_loopback(tape_path(OKX_TAPE), "okx", OKX_INSTRUMENTS)
    assert len(quotes) == 28
    assert top(quotes[0]) == (
        "BTC-USD-220527",
        None,
        "30210.4",
        "4",
        "30220.1",
        "3",
        1_652_459_223_003_000_000,
    )
    assert {q.symbol for q in quotes} == set(OKX_INSTRUMENTS)
    assert all(float(q.bid_price) < float(q.ask_price) for q in quotes)
