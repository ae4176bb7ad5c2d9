"""Bitfinex and Gemini specs keep the event contract: the depths each can serve, and Bitfinex's
ticker delivered as quotes by a Feed against the local exchange replaying the real tape."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from lobfeed import Feed, Quote
from lobfeed.aio import Backoff
from lobfeed.exceptions import ConfigError
from lobfeed.tape import Tape
from lobfeed.testing import ExchangeServer
from lobfeed.venues import spec_for
from lobfeed.venues.base import Subscription

TIMEOUT = 60
BITFINEX_TAPE = "bitfinex-book-p0-7sym-2021.jsonl.gz"
BITFINEX_SYMBOLS = (
    "tBFTUSD",
    "tIOTETH",
    "tDOGUSD",
    "tMNABTC",
    "tODEUSD",
    "tTESTBTC:TESTUSD",
    "tSNGUSD",
)


def sub(*symbols: str, depth: Any = None, channels: tuple[str, ...] = ("book",)) -> Subscription:
    return Subscription(symbols=symbols, channels=frozenset(channels), depth=depth)


def book_len(message: str) -> str:
    length: str = json.loads(message)["len"]
    return length


#: Wanted depth -> the ``len`` Bitfinex is asked for.
BITFINEX_LENGTHS = [
    (None, "25"),
    (1, "1"),
    (2, "25"),
    (25, "25"),
    (26, "100"),
    (100, "100"),
    (101, "250"),
    (250, "250"),
]


@pytest.mark.parametrize(("depth", "length"), BITFINEX_LENGTHS)
def test_bitfinex_depth_picks_the_shortest_book_that_holds_it(
    depth: int | None, length: str
) -> None:
    spec = spec_for("bitfinex")
    spec.check(sub("tBTCUSD", depth=depth))
    conf, book = spec.subscribe_messages(sub("tBTCUSD", depth=depth))
    assert json.loads(conf)["event"] == "conf"
    assert book_len(book) == length
    # A resubscribe asks for the same book.
    assert book_len(spec.resubscribe_messages("tBTCUSD", sub("tBTCUSD", depth=depth))[0]) == length


@pytest.mark.parametrize("depth", [0, -1, 251, 1000, 2.5, "25", True])
def test_bitfinex_refuses_depths_it_cannot_serve(depth: Any) -> None:
    with pytest.raises(ConfigError) as refused:
        spec_for("bitfinex").check(sub("tBTCUSD", depth=depth))
    message = str(refused.value)
    assert repr(depth) in message
    if type(depth) is int and depth > 0:  # a number of levels, but more than Bitfinex sends
        assert "1 to 250" in message and "1, 25, 100, 250" in message


def test_bitfinex_feed_refuses_a_depth_at_construction() -> None:
    with pytest.raises(ConfigError, match=r"bitfinex cannot serve depth 300: 1 to 250"):
        Feed("bitfinex", ["tBTCUSD"], depth=300)
    Feed("bitfinex", ["tBTCUSD"], depth=250, channels=("book", "trades", "quotes"))


@pytest.mark.parametrize("depth", [None, 1, 10, 5000])
def test_gemini_serves_any_depth_from_the_whole_book(depth: int | None) -> None:
    spec = spec_for("gemini")
    spec.check(sub("BTCUSD", depth=depth))
    # One l2 stream whatever the depth: Gemini has no depth to choose.
    assert spec.subscribe_messages(sub("BTCUSD", depth=depth)) == spec.subscribe_messages(
        sub("BTCUSD")
    )


@pytest.mark.parametrize("depth", [0, -5, 2.5, "10", True])
def test_gemini_refuses_depths_that_are_no_number_of_levels(depth: Any) -> None:
    with pytest.raises(ConfigError) as refused:
        spec_for("gemini").check(sub("BTCUSD", depth=depth))
    assert repr(depth) in str(refused.value)
    with pytest.raises(ConfigError, match="depth"):
        Feed("gemini", ["BTCUSD"], depth=depth)


def test_gemini_does_not_offer_quotes() -> None:
    with pytest.raises(ConfigError, match=r"gemini does not offer \['quotes'\]"):
        Feed("gemini", ["BTCUSD"], channels=("book", "quotes"))


def tape_tickers(path: Path) -> list[tuple[str, Decimal, Decimal, Decimal, Decimal]]:
    """(symbol, bid, bid size, ask, ask size) of every ticker frame of the tape, in order, read
    with the numbers' own digits."""
    channels: dict[int, tuple[str, str]] = {}
    tickers = []
    for record in Tape.open(path).iter_records("recv"):
        frame = json.loads(record.data or "", parse_float=Decimal)
        if isinstance(frame, dict):
            if frame.get("event") == "subscribed":
                channels[frame["chanId"]] = (frame["channel"], frame["symbol"])
            continue
        channel, symbol = channels.get(frame[0], ("", ""))
        if channel == "ticker" and isinstance(frame[1], list):
            bid, bid_size, ask, ask_size = (Decimal(n) for n in frame[1][:4])
            tickers.append((symbol, bid, bid_size, ask, ask_size))
    return tickers


async def test_bitfinex_ticker_is_delivered_as_quotes(
    tape_path: Callable[[str], Path],
) -> None:
    expected = tape_tickers(tape_path(BITFINEX_TAPE))
    assert len(expected) == 21
    quotes: list[Quote] = []
    events: list[Any] = []
    async with ExchangeServer(Tape.open(tape_path(BITFINEX_TAPE)), speed=float("inf")) as server:
        feed = Feed(
            "bitfinex",
            BITFINEX_SYMBOLS,
            channels=("quotes",),
            on_quote=quotes.append,
            on_event=events.append,
            ws_url=server.ws_url,
            rest_url=server.rest_url,
            reconnect=False,
            backoff=Backoff(initial=0.01, maximum=0.05),
        )
        await asyncio.wait_for(feed.run(), TIMEOUT)
    got = [
        (
            q.symbol,
            Decimal(q.bid_price),
            Decimal(q.bid_size),
            Decimal(q.ask_price),
            Decimal(q.ask_size),
        )
        for q in quotes
    ]
    assert got == expected
    # Each quote carries its frame's number in the connection's sequence (which the server
    # renumbers, as only tickers were asked for).
    seqs = [q.seq for q in quotes]
    assert None not in seqs
    numbers = [s for s in seqs if s is not None]
    assert numbers == sorted(set(numbers))
    assert events == []
    assert (feed.stats.gaps, feed.stats.frame_errors) == (0, 0)
