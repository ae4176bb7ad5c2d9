"""The book printer as a person sees it: driven headless in tmux, screen read back."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rich.console import Console

from lobfeed.printer import BookPrinter, replay_into
from lobfeed.tape import Tape

ETH_TAPE = "binance-ethusdt-20240808.jsonl.gz"


@pytest.fixture
def tmux() -> Iterator[Callable[[str], str]]:
    """Starts a command in a detached 130x40 tmux session; yields a screen reader."""
    if shutil.which("tmux") is None:
        pytest.fail("tmux is missing: `make test` installs it (apt-get install tmux)")
    name = f"lobfeed-{uuid.uuid4().hex[:8]}"
    started = False

    def start(command: str) -> str:
        nonlocal started
        # Without COLUMNS/LINES from the test runner's environment, rich asks the terminal.
        command = f"env -u COLUMNS -u LINES {command}"
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", name, "-x", "130", "-y", "40", command],
            check=True,
        )
        subprocess.run(["tmux", "set-option", "-t", name, "remain-on-exit", "on"], check=True)
        started = True
        return name

    yield start
    if started:
        subprocess.run(["tmux", "kill-session", "-t", name], check=False)


def screen(session: str, *, scrollback: bool = False) -> str:
    """The pane as shown; with ``scrollback``, the lines scrolled above it too.

    A detached session may still be at tmux's default size when a fast command starts, so
    what it printed first can scroll above the visible pane before the test looks.
    """
    history = ["-S", "-"] if scrollback else []
    return subprocess.run(
        ["tmux", "capture-pane", "-p", *history, "-t", session],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def wait_for(session: str, *texts: str, timeout: float = 60, scrollback: bool = False) -> str:
    """The screen once all `texts` show at once (a redraw may be caught half done)."""
    deadline = time.monotonic() + timeout
    shown = ""
    while time.monotonic() < deadline:
        shown = screen(session, scrollback=scrollback)
        if all(text in shown for text in texts):
            return shown
        time.sleep(0.2)
    raise AssertionError(f"{texts!r} never appeared together; the screen was:\n{shown}")


def test_replayed_book_on_a_terminal(
    tmux: Callable[[str], str], tape_path: Callable[[str], Path]
) -> None:
    command = (
        f"{sys.executable} -m lobfeed book binance ETHUSDT --depth 8 "
        f"--replay {tape_path(ETH_TAPE)} --speed 400 --hold 30"
    )
    session = tmux(command)
    shown = wait_for(session, "updates 3433", "2682.50000000", "gaps 0")
    assert "binance ETHUSDT   seq 35346671849" in shown
    assert "state live" in shown
    assert "spread 0.01   mid 2682.505" in shown
    assert "gaps 0  resyncs 0  snapshots 1" in shown
    # The ladder: best bid and ask with the venue's digits, size bars beside them.
    top = next(line for line in shown.splitlines() if "2682.50000000" in line)
    assert "3.31680000" in top and "2682.51000000" in top and "48.97390000" in top
    assert "█" in top
    # Eight rows of levels.
    assert sum("│ 2682." in line or "2682.4" in line for line in shown.splitlines()) >= 8


def test_live_demo_on_a_terminal(tmux: Callable[[str], str]) -> None:
    session = tmux(f"{sys.executable} -m lobfeed demo --speed max")
    # The banner is printed once, before the ladder: it may have scrolled up by now.
    shown = wait_for(session, "book updates,", "state live", scrollback=True)
    assert "local exchange on ws://127.0.0.1:" in shown
    assert "replaying binance-ethusdt-20240808.jsonl.gz" in shown
    assert "binance ETHUSDT" in shown
    assert "state live" in shown
    assert "0 gaps, 0 rejected frames" in shown


async def test_render_shows_counters_and_depth(tape_path: Callable[[str], Path]) -> None:
    printer = BookPrinter("binance", "ETHUSDT", depth=5)
    await replay_into(printer, Tape.open(tape_path(ETH_TAPE)), float("inf"))
    console = Console(record=True, width=120)
    console.print(printer.render())
    text = console.export_text()
    assert printer.updates == 3433
    assert "2682.50000000" in text and "2682.51000000" in text
    assert "frame→callback n/a (replay)" in text
    assert text.count("2682.") >= 10
