"""``lobfeed run``: one ``[[sinks]]`` entry serving several feeds is one sink (one ZeroMQ port,
one Parquet directory), and the events it gets name their feed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lobfeed.config import load
from lobfeed.record import Runner
from lobfeed.sinks.base import Sink
from lobfeed.tape import Tape
from lobfeed.testing import ExchangeServer

MADE: list[Collect] = []


class Collect(Sink):
    """A sink the test names by ``module:Factory`` in the config file."""

    name = "collect"

    def __init__(self, venue: str | None = None) -> None:
        self.venue = venue
        self.books: list[tuple[str, str]] = []
        self.started = self.closed = 0
        MADE.append(self)

    async def start(self) -> None:
        self.started += 1

    def on_book(self, update: Any) -> None:
        self.books.append((update.venue, update.symbol))

    async def close(self) -> None:
        self.closed += 1


async def test_one_sink_entry_is_one_sink_for_every_feed(
    tape_path: Callable[[str], Path], tmp_path: Path
) -> None:
    MADE.clear()
    usdm = Tape.open(tape_path("binance-usdm-4sym-2021.jsonl.gz"))
    coinm = Tape.open(tape_path("binance-coinm-10sym-2021.jsonl.gz"))
    # Looped: a tape played once at full speed can end before a REST snapshot is answered
    # (picows hands over the whole tape and the close at once); the run is stopped instead
    # once both feeds delivered a book.
    async with (
        ExchangeServer(usdm, speed=20, loop=True) as first,
        ExchangeServer(coinm, speed=20, loop=True) as second,
    ):
        lines = []
        for venue, server, symbol in (
            ("binance-usdm", first, "SUSHIUSDT"),
            ("binance-coinm", second, "LINKUSD_PERP"),
        ):
            lines += [
                "[[feeds]]",
                f'venue = "{venue}"',
                f'symbols = ["{symbol}"]',
                'channels = ["book"]',
                f'ws_url = "{server.ws_url}"',
                f'rest_url = "{server.rest_url}"',
                "reconnect = false",
            ]
        lines += ["[[sinks]]", 'type = "test_run_shared_sinks:Collect"']
        path = tmp_path / "run.toml"
        path.write_text("\n".join(lines) + "\n")
        runner = Runner(load(path))
        running = asyncio.ensure_future(runner.run())
        deadline = asyncio.get_running_loop().time() + 120
        while not running.done() and not (
            MADE and {venue for venue, _ in MADE[0].books} == {"binance-usdm", "binance-coinm"}
        ):
            assert asyncio.get_running_loop().time() < deadline, "no book from both feeds"
            await asyncio.sleep(0.05)
        runner.stop()
        assert await asyncio.wait_for(running, 120) == 0, runner.failures
    assert len(MADE) == 1
    sink = MADE[0]
    assert sink.venue is None  # it serves two feeds: each event names its own
    assert (sink.started, sink.closed) == (1, 1)
    assert {venue for venue, _ in sink.books} == {"binance-usdm", "binance-coinm"}
    assert {symbol for _, symbol in sink.books} == {"SUSHIUSDT", "LINKUSD_PERP"}
