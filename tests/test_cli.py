"""The command line as a user runs it: `lobfeed serve` with a Feed on it, and `lobfeed demo`."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from lobfeed import BookUpdate, Feed, Quote, Trade

TIMEOUT = 60


async def test_feed_on_lobfeed_serve_agrees_with_the_ticker(
    tape_path: Callable[[str], Path],
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lobfeed",
        "serve",
        str(tape_path("binance-usdm-ethusdt-20240808.jsonl.gz")),
        "--port",
        "0",
        "--speed",
        "max",
        "--once",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        ws_url = rest_url = None
        while ws_url is None or rest_url is None:
            line = (await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)).decode()
            assert line, "lobfeed serve exited before printing its URLs"
            if m := re.search(r"websocket: (\S+)", line):
                ws_url = m.group(1)
            if m := re.search(r"rest: +(\S+)", line):
                rest_url = m.group(1)
        assert ws_url.startswith("ws://127.0.0.1:")

        tops: dict[int, tuple[tuple[str, str] | None, tuple[str, str] | None]] = {}
        quotes: dict[int, tuple[tuple[str, str], tuple[str, str]]] = {}
        trades: list[Trade] = []

        def on_book(update: BookUpdate) -> None:
            assert update.seq is not None
            tops[update.seq] = (update.book.best_bid_exact(), update.book.best_ask_exact())

        def on_quote(quote: Quote) -> None:
            assert quote.seq is not None
            quotes[quote.seq] = (
                (quote.bid_price, quote.bid_size),
                (quote.ask_price, quote.ask_size),
            )

        feed = Feed(
            "binance-usdm",
            ["ETHUSDT"],
            channels=("book", "trades", "quotes"),
            on_book=on_book,
            on_quote=on_quote,
            on_trade=trades.append,
            ws_url=ws_url,
            rest_url=rest_url,
            reconnect=False,
        )
        await asyncio.wait_for(feed.run(), TIMEOUT)
        checked = [seq for seq in quotes if seq in tops]
        assert len(checked) > 300
        assert all(tops[seq] == quotes[seq] for seq in checked)
        assert len(trades) > 1000
        assert feed.stats.gaps == 0 and feed.stats.frame_errors == 0
        # With its only client finished, the server ends by itself.
        assert await asyncio.wait_for(proc.wait(), TIMEOUT) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_demo_runs_to_its_end() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lobfeed", "demo", "--speed", "max"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "binance ETHUSDT" in out
    assert "state live" in out
    assert re.search(r"\d+ book updates, \d+ frames, 0 gaps, 0 rejected frames", out)
    # The final ladder shows the book as the tape left it.
    assert "2682.50000000" in out and "2682.51000000" in out
