"""What the ZeroMQ and NATS fan-out tests share: the lines ``lobfeed replay`` writes for a
tape, and a tape's book updates handed to a sink with a pause in the middle."""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

from lobfeed._native import BookUpdate
from lobfeed.replay import TapeReplayer, replay
from lobfeed.sinks import wire
from lobfeed.sinks.base import Sink
from lobfeed.tape import Tape

TIMEOUT = 120


def replay_book_lines(path: Path, depth: int = wire.DEFAULT_DEPTH) -> list[bytes]:
    """``lobfeed replay``'s book lines for the tape, as it writes them but without the tape
    line number (a reader of a feed has none)."""
    out = io.BytesIO()
    replay(Tape.open(path), out, depth=depth)
    lines = []
    for raw in out.getvalue().splitlines():
        line = orjson.loads(raw)
        if "event" in line:
            continue
        del line["line"]
        lines.append(orjson.dumps(line))
    return lines


def as_line(message: dict[str, Any]) -> bytes:
    """What ``lobfeed sub --json`` prints for the message."""
    return orjson.dumps(wire.as_line(message))


async def publish_books(
    sink: Sink,
    path: Path,
    *,
    pause_after: int | None = None,
    at_pause: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Hands the tape's book updates to ``sink`` in order; after ``pause_after`` of them,
    awaits ``at_pause()`` before going on. Yields to the loop now and then, as a feed does
    between frames. Returns the number of updates."""
    count = 0
    for _record, event in TapeReplayer(Tape.open(path)).events():
        if not isinstance(event, BookUpdate):
            continue
        sink.on_book(event)
        count += 1
        if count == pause_after and at_pause is not None:
            await at_pause()
        elif count % 32 == 0:
            await asyncio.sleep(0)
    return count


def lobfeed_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "lobfeed", *args]


async def read_until(stream: asyncio.StreamReader, needle: str) -> str:
    """The first line of ``stream`` containing ``needle`` (fails at end of stream)."""
    while True:
        line = (await asyncio.wait_for(stream.readline(), TIMEOUT)).decode()
        assert line, f"the process ended before printing {needle!r}"
        if needle in line:
            return line
