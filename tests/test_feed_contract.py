"""What a new user gets wrong, and what the Feed answers: typed errors at construction, the
venue's spelling of symbols, and a symbol that never streams reported instead of silence."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lobfeed import BookUpdate, Feed, LobfeedError
from lobfeed.events import LIVE, SILENT, StatusChanged
from lobfeed.exceptions import (
    BookUnavailableError,
    ConfigError,
    SymbolRejectedError,
    UnknownVenueError,
)
from lobfeed.tape import Tape
from lobfeed.testing import ExchangeServer

ETH_TAPE = "binance-ethusdt-20240808.jsonl.gz"
TIMEOUT = 60


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"symbols": "NKNUSDT"}, "['NKNUSDT']"),
        ({"symbols": []}, "at least one symbol"),
        ({"symbols": ["BTCUSDT", "btcusdt"]}, "given twice"),
        ({"symbols": ["BTCUSDT", 42]}, "42"),
        ({"symbols": [" BTCUSDT"]}, "' BTCUSDT'"),
        ({"channels": ()}, "no channels"),
        ({"channels": ("book", "orders")}, "orders"),
        ({"depth": -5}, "-5"),
        ({"depth": 0}, "got 0"),
        ({"depth": 2.5}, "2.5"),
        ({"depth": True}, "True"),
        ({"venue_options": {"speed": "fast"}}, "speed"),
    ],
)
def test_mistakes_are_config_errors_at_construction(kwargs: dict[str, Any], named: str) -> None:
    args: dict[str, Any] = {"symbols": ["BTCUSDT"], **kwargs}
    symbols = args.pop("symbols")
    with pytest.raises(ConfigError) as caught:
        Feed("binance", symbols, **args)
    assert named in str(caught.value)
    assert isinstance(caught.value, LobfeedError)


def test_an_unknown_venue_is_typed_and_lists_the_known() -> None:
    with pytest.raises(UnknownVenueError, match=r"'nasdaq'.*binance"):
        Feed("nasdaq", ["BTCUSDT"])


def test_symbols_take_the_venue_spelling() -> None:
    feed = Feed("binance", ["ethusdt", "BtcUsdt"])
    assert feed.subscription.symbols == ("ETHUSDT", "BTCUSDT")
    assert set(feed.health()) == {"ETHUSDT", "BTCUSDT"}
    with pytest.raises(BookUnavailableError, match="not connected"):
        feed.book("ethusdt")


async def test_a_lower_case_symbol_streams_and_is_found_in_any_case(
    tape_path: Callable[[str], Path],
) -> None:
    updates: list[BookUpdate] = []
    async with ExchangeServer(Tape.open(tape_path(ETH_TAPE)), speed=float("inf")) as server:
        feed = Feed(
            "binance",
            ["ethusdt"],
            channels=("book",),
            on_book=updates.append,
            ws_url=server.ws_url,
            rest_url=server.rest_url,
            reconnect=False,
        )
        run = asyncio.ensure_future(feed.run())
        try:
            async with asyncio.timeout(TIMEOUT):
                while len(updates) < 50:
                    await asyncio.sleep(0.01)
            assert {u.symbol for u in updates} == {"ETHUSDT"}
            for spelling in ("ethusdt", "ETHUSDT", "EthUsdt"):
                assert feed.book(spelling).best_bid() is not None
            assert feed.health()["ETHUSDT"].state == LIVE
        finally:
            feed.stop()
            await asyncio.gather(run, return_exceptions=True)


async def test_a_symbol_that_never_streams_is_reported_silent(
    tape_path: Callable[[str], Path], caplog: pytest.LogCaptureFixture
) -> None:
    """The README's own BTCUSDT is not on the ETHUSDT tape: the feed says so, once, with a
    reason, while ETHUSDT goes live beside it."""
    statuses: list[StatusChanged] = []
    async with ExchangeServer(Tape.open(tape_path(ETH_TAPE)), speed=1.0) as server:
        feed = Feed(
            "binance",
            ["ETHUSDT", "BTCUSDT"],
            channels=("book",),
            on_status=lambda s: statuses.append(s) if isinstance(s, StatusChanged) else None,
            ws_url=server.ws_url,
            rest_url=server.rest_url,
            reconnect=False,
            stale_after=2.0,
        )
        caplog.set_level(logging.WARNING, logger="lobfeed")
        run = asyncio.ensure_future(feed.run())
        try:
            async with asyncio.timeout(TIMEOUT):
                while not any(s.symbol == "BTCUSDT" and s.new == SILENT for s in statuses):
                    await asyncio.sleep(0.05)
            health = feed.health()
            assert health["BTCUSDT"].state == SILENT
            assert "is the symbol listed on binance" in health["BTCUSDT"].reason
            assert health["BTCUSDT"].frames == 0
            assert health["ETHUSDT"].state == LIVE
        finally:
            feed.stop()
            await asyncio.gather(run, return_exceptions=True)
    silent = [s for s in statuses if s.new == SILENT]
    assert [s.symbol for s in silent] == ["BTCUSDT"]
    warned = [r for r in caplog.records if "BTCUSDT" in r.getMessage() and SILENT in r.getMessage()]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING


@pytest.mark.parametrize(
    ("venue", "tape", "listed", "unlisted"),
    [
        ("bybit-spot", "bybit-2026.jsonl.gz", "BTCUSDT", "NOPEUSDT"),
        ("bybit", "bybit-2026.jsonl.gz", "SOLUSDT", "NOPEUSDT"),
        ("coinbase", "coinbase-2026.jsonl.gz", "BTC-USD", "NOPE-USD"),
    ],
)
async def test_a_symbol_the_venue_does_not_list_is_refused_before_subscribing(
    venue: str, tape: str, listed: str, unlisted: str, tape_path: Callable[[str], Path]
) -> None:
    """Where the venue publishes its instrument list (the tape recorded it), a symbol missing
    from it ends run() at once, named, instead of waiting to be called silent."""
    statuses: list[StatusChanged] = []
    async with ExchangeServer(Tape.open(tape_path(tape)), speed=float("inf")) as server:
        feed = Feed(
            venue,
            [listed, unlisted.lower()],
            channels=("book",),
            on_status=lambda s: statuses.append(s) if isinstance(s, StatusChanged) else None,
            ws_url=server.ws_url,
            rest_url=server.rest_url,
            reconnect=False,
        )
        with pytest.raises(SymbolRejectedError, match=f"{venue} does not list {unlisted} "):
            await asyncio.wait_for(feed.run(), TIMEOUT)
    assert feed.health()[unlisted].state == "failed"
    assert feed.stats.frames == 0  # nothing was subscribed
    assert [s.symbol for s in statuses if s.new == "failed"] == [unlisted]
