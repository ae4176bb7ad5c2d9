"""Quotes where the venue's ticker does not give them as Binance's bookTicker does, and the
refusals the Binance, Bybit and Coinbase specs make at construction.

Bybit spot tickers carry no best bid or ask: spot ``quotes`` are the ``orderbook.1`` topic,
Bybit's own top of book. The recorded tape has ``orderbook.200`` only, so the test tape here
adds, beside the recorded frames, the ``orderbook.1`` message Bybit sends each time a recorded
book's top changes, made from that book. Coinbase ``ticker`` frames are on its tape as recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from lobfeed import BookUpdate, Feed, Quote
from lobfeed._native import Session
from lobfeed.exceptions import ConfigError
from lobfeed.tape import Tape, TapeWriter
from lobfeed.testing import ExchangeServer
from lobfeed.venues import Subscription, spec_for

TIMEOUT = 60
INF = float("inf")

Top = tuple[str, str, str, str, str]
"""Symbol, bid price, bid size, ask price, ask size."""


def top_of_book_tape(source: Tape, path: Path) -> list[Top]:
    """Writes the spot connection of ``source`` with the ``orderbook.1`` messages its books
    call for; returns the tops they carry, in order."""
    session = Session("bybit")
    last: dict[str, Top] = {}
    tops: list[Top] = []
    with TapeWriter(path, "bybit") as out:
        for r in source.records:
            if r.conn != "c3":
                continue
            if r.type == "open" and r.url is not None:
                out.open(r.conn, r.url, r.ts_ns)
            if r.type != "recv" or r.data is None:
                continue
            out.recv(r.conn, r.data, r.ts_ns)
            for event in session.receive(r.data, r.ts_ns):
                if not isinstance(event, BookUpdate):
                    continue
                view = session.book(event.symbol)
                ((bid, bid_size),), ((ask, ask_size),) = view.bids(1), view.asks(1)
                top = (event.symbol, bid, bid_size, ask, ask_size)
                if last.get(event.symbol) == top:
                    continue
                last[event.symbol] = top
                tops.append(top)
                ts = orjson.loads(r.data)["ts"]
                message = {
                    "topic": f"orderbook.1.{event.symbol}",
                    "type": "snapshot",
                    "ts": ts,
                    "data": {
                        "s": event.symbol,
                        "b": [[bid, bid_size]],
                        "a": [[ask, ask_size]],
                        "u": event.seq,
                        "seq": event.seq,
                    },
                    "cts": ts,
                }
                out.recv(r.conn, orjson.dumps(message).decode(), r.ts_ns)
    return tops


def quote_row(quote: Quote) -> Top:
    return (quote.symbol, quote.bid_price, quote.bid_size, quote.ask_price, quote.ask_size)


async def run(venue: str, tape: Tape, symbols: list[str], **options: Any) -> Feed:
    async with ExchangeServer(tape, speed=INF) as server:
        feed = Feed(
            venue,
            symbols,
            ws_url=server.ws_url,
            rest_url=server.rest_url,
            reconnect=False,
            **options,
        )
        await asyncio.wait_for(feed.run(), TIMEOUT)
    return feed


async def test_bybit_spot_quotes_from_the_top_of_book_topic(
    tape_path: Callable[[str], Path], tmp_path: Path
) -> None:
    path = tmp_path / "spot.jsonl"
    expected = top_of_book_tape(Tape.open(tape_path("bybit-2026.jsonl.gz")), path)
    assert len(expected) == 259
    quotes: list[Quote] = []
    books: list[BookUpdate] = []
    feed = await run(
        "bybit-spot",
        Tape.open(path),
        ["BTCUSDT", "ETHUSDT"],
        channels=("book", "quotes"),
        on_quote=quotes.append,
        on_book=books.append,
    )
    assert [quote_row(q) for q in quotes] == expected
    # Kept apart from the book (orderbook.200): no seq of its own, and the book is the recorded one.
    assert {q.seq for q in quotes} == {None}
    assert len(books) == 550
    assert feed.stats.frame_errors == 0


async def test_coinbase_tickers_are_quotes(tape_path: Callable[[str], Path]) -> None:
    tape = Tape.open(tape_path("coinbase-2026.jsonl.gz"))
    expected: list[Top] = []
    for record in tape.iter_records("recv"):
        frame = orjson.loads(record.data or "null")
        if frame.get("channel") != "ticker":
            continue
        for event in frame["events"]:
            for t in event["tickers"]:
                expected.append(
                    (
                        t["product_id"],
                        t["best_bid"],
                        t["best_bid_quantity"],
                        t["best_ask"],
                        t["best_ask_quantity"],
                    )
                )
    assert len(expected) == 160
    quotes: list[Quote] = []
    feed = await run(
        "coinbase", tape, ["BTC-USD", "ETH-USD"], channels=("quotes",), on_quote=quotes.append
    )
    assert [quote_row(q) for q in quotes] == expected
    # Numbered with the connection's counter, as book updates are, in order.
    seqs = [q.seq for q in quotes if q.seq is not None]
    assert len(seqs) == len(quotes) and seqs == sorted(seqs)
    assert feed.stats.frame_errors == feed.stats.gaps == 0


def sub(*symbols: str, **kw: Any) -> Subscription:
    return Subscription(symbols, frozenset(kw.pop("channels", ("book",))), **kw)


def test_bybit_depths_and_quote_topics() -> None:
    linear, spot = spec_for("bybit"), spec_for("bybit-spot")
    for depth, topic in [
        (None, "orderbook.200.X"),
        (1, "orderbook.1.X"),
        (2, "orderbook.50.X"),
        (50, "orderbook.50.X"),
        (51, "orderbook.200.X"),
        (201, "orderbook.1000.X"),
        (1000, "orderbook.1000.X"),
    ]:
        assert linear.streams(sub("X", depth=depth)) == [topic]
        assert spot.streams(sub("X", depth=depth)) == [topic]
    both = ("book", "quotes")
    assert spot.streams(sub("X", channels=both)) == ["orderbook.200.X", "orderbook.1.X"]
    assert linear.streams(sub("X", channels=both)) == ["orderbook.200.X", "tickers.X"]
    assert spot.streams(sub("X", channels=("quotes",))) == ["orderbook.1.X"]
    # A depth-1 book is the top of book already: the one topic gives book and quotes.
    assert spot.streams(sub("X", channels=both, depth=1)) == ["orderbook.1.X"]
    assert linear.streams(sub("X", channels=both, depth=1)) == ["orderbook.1.X"]


VENUES = ["binance", "binance-usdm", "binance-coinm", "bybit", "bybit-spot", "coinbase"]


@pytest.mark.parametrize("venue", VENUES)
def test_impossible_depths_are_refused(venue: str) -> None:
    for depth in (0, -5, True, 2.5, "10"):
        with pytest.raises(ConfigError, match=venue) as info:
            Feed(venue, ["X"], depth=depth)  # type: ignore[arg-type]
        assert repr(depth) in str(info.value) or str(depth) in str(info.value)
    Feed(venue, ["X"], depth=1)


@pytest.mark.parametrize(
    ("venue", "deepest"),
    [("binance", 1000), ("binance-usdm", 1000), ("bybit", 1000), ("bybit-spot", 1000)],
)
def test_depths_past_what_the_venue_serves_are_refused(venue: str, deepest: int) -> None:
    Feed(venue, ["X"], depth=deepest)
    with pytest.raises(ConfigError, match=rf"cannot serve depth {deepest + 1}: 1 to {deepest}"):
        Feed(venue, ["X"], depth=deepest + 1)


def test_coinbase_serves_any_depth_of_its_whole_book() -> None:
    Feed("coinbase", ["BTC-USD"], depth=100_000)


@pytest.mark.parametrize(
    ("venue", "good", "bad"),
    [
        ("binance", ["1s", "1m", "8h", "3d", "1M"], ["7m", "1y", "1S", "60"]),
        ("binance-usdm", ["1m", "8h", "1M"], ["1s", "7m"]),
        ("binance-coinm", ["1m", "12h", "1w"], ["1s", "10m"]),
        ("bybit", ["1m", "3m", "2h", "12h", "1d", "1w", "1M"], ["7m", "8h", "3d", "1s"]),
        ("bybit-spot", ["1m", "6h"], ["7m"]),
        ("coinbase", ["5m"], ["1m", "1h", "5M"]),
    ],
)
def test_candle_intervals_the_venue_lacks_are_refused(
    venue: str, good: list[str], bad: list[str]
) -> None:
    for interval in good:
        Feed(venue, ["X"], channels=("candles",), candle_interval=interval)
    for interval in bad:
        with pytest.raises(ConfigError, match=f"{venue} has no '{interval}' candles"):
            Feed(venue, ["X"], channels=("candles",), candle_interval=interval)
        # Without candles the interval is not used, and not refused.
        Feed(venue, ["X"], channels=("book",), candle_interval=interval)


def test_coinbase_candles_are_five_minutes_only() -> None:
    with pytest.raises(ConfigError, match=r"coinbase has no '1m' candles; its intervals: 5m"):
        Feed("coinbase", ["BTC-USD"], channels=("candles",), candle_interval="1m")
    # Without an interval a feed asks for 1m where the venue has it, else the venue's own.
    assert Feed("coinbase", ["BTC-USD"], channels=("candles",)).subscription.candle_interval == (
        "5m"
    )
    assert Feed("binance", ["BTCUSDT"], channels=("candles",)).subscription.candle_interval == (
        "1m"
    )
