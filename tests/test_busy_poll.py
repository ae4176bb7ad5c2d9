"""``Feed(busy_poll=True)``: the loop is kept polling while the feed runs, and only then."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from lobfeed import BookUpdate, ConfigError, Feed
from lobfeed.aio.busy_poll import BusyPoll, _spinners
from lobfeed.testing import ExchangeServer

ETH_TAPE = "binance-ethusdt-20240808.jsonl.gz"
TIMEOUT = 60


async def test_a_busy_polling_feed_keeps_the_loop_awake_while_it_runs(
    tape_path: Callable[[str], Path],
) -> None:
    loop = asyncio.get_running_loop()
    seen: list[bool] = []
    tops: list[tuple[float, float] | None] = []
    async with ExchangeServer(tape_path(ETH_TAPE), speed=40) as server:

        def on_book(update: BookUpdate) -> None:
            seen.append(BusyPoll.spinning(loop))
            tops.append(update.book.best_bid())
            if len(seen) >= 50:
                feed.stop()

        feed = Feed(
            "binance",
            ["ETHUSDT"],
            channels=("book",),
            on_book=on_book,
            ws_url=server.ws_url,
            rest_url=server.rest_url,
            reconnect=False,
            busy_poll=True,
        )
        assert not BusyPoll.spinning(loop)
        await asyncio.wait_for(feed.run(), TIMEOUT)
    assert len(seen) >= 50 and all(seen)
    assert all(top is not None for top in tops)
    assert not BusyPoll.spinning(loop), "the loop still spins after the feed ended"


async def test_feeds_on_one_loop_share_the_spinner_until_the_last_lets_go() -> None:
    loop = asyncio.get_running_loop()
    first, second = BusyPoll(), BusyPoll()
    with first:
        with second:
            assert BusyPoll.spinning(loop)
        assert BusyPoll.spinning(loop)
        # The spinner queues itself again on every turn of the loop: a new handle each turn.
        handles = []
        for _ in range(5):
            handles.append(_spinners[loop].handle)
            await asyncio.sleep(0)
        assert len({id(h) for h in handles}) == len(handles)
    assert not BusyPoll.spinning(loop)


def test_busy_poll_takes_only_a_bool() -> None:
    with pytest.raises(ConfigError, match="busy_poll must be True or False, got 'yes'"):
        Feed("binance", ["ETHUSDT"], busy_poll="yes")  # type: ignore[arg-type]
