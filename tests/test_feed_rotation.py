"""Rotation: connections replaced make-before-break before the venue closes them.

The local exchange closes every connection with 1001 after a short lifetime, as Binance does
after 24 h; the Feed, told to rotate a little earlier, must hand every symbol to a new
connection with no gap and no duplicate in the callbacks.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lobfeed import BookUpdate, Feed, Trade
from lobfeed.aio import Backoff
from lobfeed.aio.options import ConnectOptions
from lobfeed.events import Connected, Disconnected, StatusChanged
from lobfeed.replay import TapeReplayer
from lobfeed.tape import Tape
from lobfeed.testing import ExchangeServer, FaultPlan

SPOT = "binance-ethusdt-20240808.jsonl.gz"
OKX = "okx-books-3inst-2022.jsonl.gz"
TIMEOUT = 120.0


async def test_rotation_hands_over_with_no_gap_and_no_duplicate(
    tape_path: Callable[[str], Path],
) -> None:
    path = tape_path(SPOT)
    # Every trade id of the tape, in order: what was delivered must be a run of them.
    tape_trades = [
        int(ev.trade_id)
        for _, ev in TapeReplayer(Tape.open(path)).events()
        if isinstance(ev, Trade)
    ]
    books: list[int] = []
    trades: list[int] = []
    statuses: list[Any] = []

    def on_book(update: BookUpdate) -> None:
        assert update.seq is not None
        books.append(update.seq)

    def on_trade(trade: Trade) -> None:
        trades.append(int(trade.trade_id))

    plan = FaultPlan.parse("lifetime=4s")
    options = ConnectOptions(
        backoff=Backoff(initial=0.05, maximum=0.5), rotate_after=2.0, stale_after=60.0
    )
    async with ExchangeServer(path, speed=4, loop=True, live=True, faults=plan) as server:
        feed = Feed(
            "binance",
            ["ETHUSDT"],
            channels=("book", "trades"),
            on_book=on_book,
            on_trade=on_trade,
            on_status=statuses.append,
            ws_url=server.ws_url,
            rest_url=server.rest_url,
            options=options,
        )
        run = asyncio.ensure_future(feed.run())
        start = time.monotonic()
        while feed.stats.rotations < 3:
            assert time.monotonic() - start < TIMEOUT, "three rotations"
            assert not run.done()
            await asyncio.sleep(0.05)
        feed.stop()
        await asyncio.wait_for(run, TIMEOUT)
    # Every connection was replaced before the exchange's lifetime ran out: no 1001 from it,
    # and the symbol never left ``live`` once it got there.
    closes = [s for s in statuses if isinstance(s, Disconnected)]
    assert all(c.reason.startswith("rotated to") for c in closes[:3])
    assert len([s for s in statuses if isinstance(s, Connected)]) >= 4
    changes = [(s.old, s.new) for s in statuses if isinstance(s, StatusChanged)]
    first_live = changes.index(("syncing", "live"))
    assert all(new == "live" for _, new in changes[first_live:])
    # Book ids only go up (no duplicate, nothing from an older connection)...
    assert all(b > a for a, b in itertools.pairwise(books))
    # ...and the trades delivered are exactly a run of the tape's: none twice, none missed.
    assert trades and len(set(trades)) == len(trades)
    first = tape_trades.index(trades[0])
    assert trades == tape_trades[first : first + len(trades)]
    assert feed.stats.rotations >= 3


async def test_rotation_default_comes_from_the_venue() -> None:
    assert Feed("binance", ["ETHUSDT"]).rotate_after == 24 * 3600 - 600
    assert Feed("okx", ["BTC-USDT"]).rotate_after is None
    assert Feed("okx", ["BTC-USDT"], options=ConnectOptions(rotate_after=60)).rotate_after == 60


async def test_a_venue_notice_of_closing_starts_a_rotation(
    tape_path: Callable[[str], Path],
) -> None:
    """OKX announces a service-upgrade close (notice 64008) and closes soon after: the Feed
    moves to a new connection on the notice, books live throughout."""
    statuses: list[Any] = []
    plan = FaultPlan.parse("notice=40,conns=1,notice_close_after=2s")
    symbols = ("BTC-USD-220527", "UNI-USD-SWAP", "BTC-USDT")
    async with ExchangeServer(tape_path(OKX), speed=4, loop=True, faults=plan) as server:
        feed = Feed(
            "okx",
            symbols,
            channels=("book",),
            on_status=statuses.append,
            ws_url=server.ws_url,
            rest_url=server.rest_url,
            options=ConnectOptions(backoff=Backoff(initial=0.05, maximum=0.5), stale_after=60),
        )
        run = asyncio.ensure_future(feed.run())
        start = time.monotonic()
        while feed.stats.rotations < 1:
            assert time.monotonic() - start < TIMEOUT, "a rotation"
            assert not run.done()
            await asyncio.sleep(0.05)
        # The old connection closes (rotated away from, before the venue's close).
        while not any(isinstance(s, Disconnected) for s in statuses):
            assert time.monotonic() - start < TIMEOUT, "the old connection's close"
            await asyncio.sleep(0.05)
        health = feed.health()
        feed.stop()
        await asyncio.wait_for(run, TIMEOUT)
    assert feed.stats.closing_notices == 1
    closes = [s for s in statuses if isinstance(s, Disconnected)]
    assert closes and closes[0].connection == "c1" and closes[0].reason.startswith("rotated to")
    assert all(h.state == "live" and h.connection == "c2" for h in health.values())
    assert all(h.reconnects == 0 for h in health.values())
