"""The README's Python blocks run as written, against ``lobfeed serve`` instead of Binance.

Each ``Feed`` the README makes is pointed at a local exchange replaying the real ETHUSDT
capture; the README's BTCUSDT is not on that tape, which the feed must report (``silent``)
rather than leave unsaid.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import lobfeed
from lobfeed.tape import Tape

ROOT = Path(__file__).resolve().parents[1]
ETH_TAPE = "binance-ethusdt-20240808.jsonl.gz"


def python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


@pytest.fixture
def local_exchange(tape_path: Callable[[str], Path]) -> Iterator[tuple[str, str]]:
    serve = ("serve", str(tape_path(ETH_TAPE)), "--port", "0", "--speed", "20", "--live", "--loop")
    proc = subprocess.Popen(
        [sys.executable, "-m", "lobfeed", *serve],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ws_url = rest_url = None
        while ws_url is None or rest_url is None:
            line = proc.stdout.readline()
            assert line, "lobfeed serve exited before printing its URLs"
            if m := re.search(r"websocket: (\S+)", line):
                ws_url = m.group(1)
            if m := re.search(r"rest: +(\S+)", line):
                rest_url = m.group(1)
        yield ws_url, rest_url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def local_lobfeed(ws_url: str, rest_url: str, feeds: list[Any]) -> Any:
    """``lobfeed`` as the README imports it, its ``Feed`` aimed at the local exchange and
    stopping itself once it has shown enough."""

    class LocalFeed(lobfeed.Feed):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("ws_url", ws_url)
            kwargs.setdefault("rest_url", rest_url)
            kwargs.setdefault("stale_after", 2.0)
            super().__init__(*args, **kwargs)
            feeds.append(self)

        async def run(self) -> None:
            watch = asyncio.ensure_future(self._stop_when_shown())
            try:
                await super().run()
            finally:
                watch.cancel()

        async def _stop_when_shown(self) -> None:
            # Once books flowed and the unlisted BTCUSDT was called silent (or a minute).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(60):
                    while not (
                        self.health()["ETHUSDT"].updates > 10
                        and self.health()["BTCUSDT"].state == "silent"
                    ):
                        await asyncio.sleep(0.05)
            self.stop()

    module = type(sys)("lobfeed")
    module.__dict__.update(vars(lobfeed))
    module.Feed = LocalFeed  # type: ignore[attr-defined]
    return module


def test_the_readme_has_the_blocks_this_test_runs() -> None:
    blocks = python_blocks()
    assert len(blocks) == 3
    assert "lobfeed.Feed(" in blocks[0] and "asyncio.run(feed.run())" in blocks[0]
    assert "lobfeed.Session(" in blocks[1]
    assert "feed.health()" in blocks[2]


def test_the_api_block_and_the_health_block_run(local_exchange: tuple[str, str]) -> None:
    api, _session, health = python_blocks()
    feeds: list[Any] = []
    out = io.StringIO()
    namespace: dict[str, Any] = {"__name__": "readme"}
    api = api.replace("import lobfeed\n", "")
    namespace["lobfeed"] = local_lobfeed(*local_exchange, feeds)
    with contextlib.redirect_stdout(out):
        exec(compile(api, "README.md:api", "exec"), namespace)
    printed = out.getvalue().splitlines()
    # on_book prints "ETHUSDT <seq> <best bid> <best ask> <spread>", on_trade "ETHUSDT <side> ..".
    books = [line.split(" ", 2) for line in printed if re.match(r"ETHUSDT \d+ ", line)]
    trades = [line for line in printed if re.match(r"ETHUSDT (buy|sell) ", line)]
    assert len(books) > 10 and trades, printed[:20]
    seqs = [int(seq) for _symbol, seq, _rest in books]
    assert seqs == sorted(seqs)
    feed = feeds[0]
    assert feed.health()["BTCUSDT"].state == "silent"

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(health, "README.md:health", "exec"), namespace)
    rows = {line.split()[0]: line.split()[1] for line in out.getvalue().splitlines()}
    assert set(rows) == {"BTCUSDT", "ETHUSDT"}
    assert rows["BTCUSDT"] == "connecting"  # a new feed, not yet run


def test_the_session_block_runs(tape_path: Callable[[str], Path]) -> None:
    _api, session_block, _health = python_blocks()
    tape = Tape.open(tape_path(ETH_TAPE))
    frame = next(r for r in tape.iter_records("recv") if r.data and "depthUpdate" in r.data)
    snapshot = next(r for r in tape.iter_records("http") if r.data)
    namespace: dict[str, Any] = {
        "lobfeed": lobfeed,
        "frame_bytes": (frame.data or "").encode(),
        "rest_body": (snapshot.data or "").encode(),
        "ts_ns": frame.ts_ns,
    }
    exec(compile(session_block, "README.md:session", "exec"), namespace)
    # The README feeds a BTCUSDT snapshot; this tape's frame was ETHUSDT's, which waits for
    # its own snapshot: both books exist, the snapshot's is live.
    session = namespace["s"]
    assert sorted(session.symbols()) == ["BTCUSDT", "ETHUSDT"]
    assert [type(ev).__name__ for ev in namespace["events"]] == ["BookUpdate"]
    assert session.state("BTCUSDT") == "live" and session.state("ETHUSDT") != "live"


def _top_level_items(cell: str) -> list[str]:
    items, depth, current = [], 0, ""
    for ch in cell:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            items.append(current.strip())
            current = ""
        else:
            current += ch
    return [*items, current.strip()]


def test_the_venue_table_lists_the_channels_each_venue_offers() -> None:
    from lobfeed.venues import CHANNELS, SPECS

    text = (ROOT / "README.md").read_text()
    start = text.index("| venue (`Feed` names)")
    rows = [line for line in text[start:].splitlines()[2:] if line.startswith("|")]
    rows = rows[: next(i for i, r in enumerate([*rows, ""]) if not r.startswith("| "))]
    seen: set[str] = set()
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        names = [n for n in re.findall(r"`([a-z0-9-]+)`", cells[0]) if n in SPECS]
        listed = {item.split()[0] for item in _top_level_items(cells[1])} & CHANNELS
        for name in names:
            assert listed == SPECS[name].channels, (name, listed)
            seen.add(name)
    assert seen == set(SPECS)


def test_the_health_states_the_readme_lists_are_the_states() -> None:
    from lobfeed.events import STATES

    text = (ROOT / "README.md").read_text()
    line = next(line for line in text.splitlines() if "`state` is one of" in line)
    assert tuple(re.findall(r"`([a-z]+)`", line.split("is one of", 1)[1])) == STATES
