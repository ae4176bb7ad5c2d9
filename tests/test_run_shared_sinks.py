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
    async with (
        ExchangeServer(usdm, speed=float("inf")) as first,
        ExchangeServer(coinm, speed=float("inf")) as second,
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
        assert await asyncio.wait_for(runner.run(), 120) == 0, runner.failures
    assert len(MADE) == 1
    sink = MADE[0]
    assert sink.venue is None  # it serves two feeds: each event names its own
    assert (sink.started, sink.closed) == (1, 1)
    assert {venue for venue, _ in sink.books} == {"binance-usdm", "binance-coinm"}
    assert {symbol for _, symbol in sink.books} == {"SUSHIUSDT", "LINKUSD_PERP"}
