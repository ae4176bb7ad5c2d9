"""`lobfeed record` against a real `lobfeed serve`, as separate processes: what it records replays
to the source's books, a SIGKILL loses nothing flushed, SIGTERM closes the tape whole, rotation
gives whole tapes, and a cut tape still replays, verifies and serves."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import websockets

import lobfeed
from lobfeed import BookUpdate, Feed
from lobfeed.gzmembers import MemberReader
from lobfeed.replay import replay, verify
from lobfeed.tape import Tape, TapeRecord, TapeWriter
from lobfeed.testing.server import ExchangeServer

TIMEOUT = 120
USDM_4SYM = "binance-usdm-4sym-2021.jsonl.gz"
ETHUSDT = "binance-ethusdt-20240808.jsonl.gz"


def lobfeed_env() -> dict[str, str]:
    """The environment of a `lobfeed` child process: this checkout's package first."""
    package_root = Path(lobfeed.__file__).resolve().parents[1]
    return {**os.environ, "PYTHONPATH": str(package_root)}


@dataclass
class Served:
    proc: subprocess.Popen[str]
    ws_url: str
    rest_url: str


@contextlib.contextmanager
def serve(tape: Path, *options: str) -> Iterator[Served]:
    """`lobfeed serve TAPE --port 0 OPTIONS` in a child process, until the block ends."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "lobfeed", "serve", str(tape), "--port", "0", *options],
        stdout=subprocess.PIPE,
        text=True,
        env=lobfeed_env(),
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
        assert ws_url.startswith("ws://127.0.0.1:")
        yield Served(proc, ws_url, rest_url)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def record_args(
    server: Served, venue: str, *symbols: str, tape: Path, extra: tuple[str, ...] = ()
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "lobfeed",
        "record",
        venue,
        *symbols,
        "--tape",
        str(tape),
        "--ws-url",
        server.ws_url,
        "--rest-url",
        server.rest_url,
        *extra,
    ]


def book_lines(tape: Tape, symbols: set[str]) -> dict[str, list[tuple[Any, ...]]]:
    """`lobfeed replay`'s book lines per symbol, without what only says when they were made."""
    out = io.BytesIO()
    replay(tape, out, depth=25)
    books: dict[str, list[tuple[Any, ...]]] = {}
    for line in out.getvalue().splitlines():
        obj = orjson.loads(line)
        if obj["symbol"] in symbols and "bids" in obj:
            books.setdefault(obj["symbol"], []).append((obj["seq"], obj["bids"], obj["asks"]))
    return books


def frames_of(tape: Tape, streams: set[str] | None = None) -> list[str]:
    """The data of the recv records, only of Binance ``streams`` when given."""
    frames = []
    for record in tape.iter_records("recv"):
        assert record.data is not None
        if streams is None or orjson.loads(record.data).get("stream") in streams:
            frames.append(record.data)
    return frames


def streams_in(frames: list[str]) -> set[str]:
    return {orjson.loads(frame)["stream"] for frame in frames}


def whole_members(path: Path) -> int:
    """Complete gzip members in the file as it is now (its writer may be writing)."""
    reader = MemberReader(io.BytesIO(path.read_bytes()))
    while reader.read(1 << 20):
        pass
    return reader.members


def wait_for(condition: Callable[[], bool], what: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert proc.poll() is None, f"the recorder exited (code {proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def assert_same_books(source: Tape, recorded: Tape, symbols: set[str]) -> None:
    """Every book the recording replays to is the source's at the same update, and the
    recording replays to the end of the source's."""
    expected = book_lines(source, symbols)
    got = book_lines(recorded, symbols)
    assert set(got) == symbols
    for symbol in symbols:
        first = got[symbol][0][0]
        # The recorder's book starts where its snapshot put it; from there on, every update.
        assert got[symbol] == [b for b in expected[symbol] if b[0] >= first], symbol
        assert got[symbol][-1] == expected[symbol][-1]


def test_recorded_tape_replays_to_the_books_of_the_source(
    tape_path: Callable[[str], Path], tmp_path: Path
) -> None:
    source_path = tape_path(USDM_4SYM)
    out = tmp_path / "rec.jsonl.gz"
    symbols = {"SUSHIUSDT", "KEEPUSDT"}
    with serve(source_path, "--speed", "10", "--once") as server:
        done = subprocess.run(
            record_args(
                server, "binance-usdm", *sorted(symbols), tape=out, extra=("--no-reconnect",)
            ),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=lobfeed_env(),
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert server.proc.wait(TIMEOUT) == 0
    assert re.search(r"binance-usdm: \d+ frames, 0 gaps, 0 reconnects; tape: ", done.stdout)
    source = Tape.open(source_path)
    recorded = Tape.open(out, strict=True)  # closed properly: whole, with its end mark
    assert recorded.venue == "binance-usdm"
    types = [r.type for r in recorded.iter_records()]
    assert types[0] == "open" and "send" not in types  # Binance subscribes in the URL
    assert types.count("http") == len(symbols)  # one snapshot per symbol
    # Every frame the server sent, byte for byte and in order.
    frames = frames_of(recorded)
    assert frames == frames_of(source, streams_in(frames))
    # Binance names its streams; the tape has no "@trade" stream, only "@aggTrade".
    assert streams_in(frames) == {f"{s.lower()}@depth@100ms" for s in symbols}
    assert_same_books(source, recorded, symbols)


def started_recorder(server: Served, tape: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        record_args(server, "binance", "ETHUSDT", tape=tape, extra=extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=lobfeed_env(),
    )


def test_sigkill_loses_nothing_that_was_flushed(
    tape_path: Callable[[str], Path], tmp_path: Path
) -> None:
    source = Tape.open(tape_path(ETHUSDT))
    out = tmp_path / "killed.jsonl.gz"
    with serve(source.path, "--speed", "10") as server:
        proc = started_recorder(server, out)
        try:
            # Header, then three flushes at least: the recorder has been writing for seconds.
            wait_for(lambda: out.exists() and whole_members(out) >= 4, "three flushes", proc)
            seen = Tape.from_bytes(out.read_bytes(), "seen").records
            wait_for(lambda: whole_members(out) >= 6, "two more flushes", proc)
            proc.send_signal(signal.SIGKILL)
            killed_ns = time.time_ns()
            assert proc.wait(TIMEOUT) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
    tape = Tape.open(out)
    records = tape.records  # every line read parsed as a record
    # Nothing that was in the file before the kill is lost, and more came after it.
    assert records[: len(seen)] == seen
    assert len(records) > len(seen)
    # The reader says the tape was cut: no end mark (and perhaps a member cut short).
    assert tape.damage is not None
    assert tape.damage.last_line == records[-1].line
    assert "no end mark" in tape.damage.reason or "cut short" in tape.damage.reason
    with pytest.raises(lobfeed.TapeFormatError):
        list(Tape.open(out, strict=True).iter_records())
    # What was recorded is the stream from its start, no frame missing up to the cut.
    frames = frames_of(tape)
    assert len(frames) > 100
    assert frames == frames_of(source, streams_in(frames))[: len(frames)]
    lost_ms = (killed_ns - records[-1].ts_ns) / 1e6
    print(f"SIGKILL: {len(records)} records kept; the last was received {lost_ms:.0f} ms earlier")


def test_sigterm_closes_the_tape_whole(tape_path: Callable[[str], Path], tmp_path: Path) -> None:
    source = Tape.open(tape_path(ETHUSDT))
    out = tmp_path / "stopped.jsonl.gz"
    with serve(source.path, "--speed", "10") as server:
        proc = started_recorder(server, out)
        try:
            wait_for(lambda: out.exists() and whole_members(out) >= 4, "three flushes", proc)
            proc.send_signal(signal.SIGTERM)
            stdout, stderr = proc.communicate(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, stderr
    assert "lobfeed record: binance:" in stdout
    tape = Tape.open(out, strict=True)  # raises on any cut
    records = tape.records
    assert tape.damage is None
    frames = frames_of(tape)
    assert frames == frames_of(source, streams_in(frames))[: len(frames)]
    assert records[-1].type in ("recv", "http")


def test_rotation_gives_whole_tapes_that_replay_in_sequence(
    tape_path: Callable[[str], Path], tmp_path: Path
) -> None:
    source_path = tape_path(USDM_4SYM)
    base = tmp_path / "rot.jsonl.gz"
    symbols = {"SUSHIUSDT", "AKROUSDT"}
    extra = ("--no-reconnect", "--rotate-bytes", "4K", "--flush-interval", "0.2")
    with serve(source_path, "--speed", "10", "--once") as server:
        done = subprocess.run(
            record_args(server, "binance-usdm", *sorted(symbols), tape=base, extra=extra),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=lobfeed_env(),
            check=False,
        )
    assert done.returncode == 0, done.stderr
    files = sorted(tmp_path.glob("rot.*.jsonl.gz"))
    assert len(files) >= 3, files
    assert not base.exists()
    for number, path in enumerate(files, 1):
        tape = Tape.open(path, strict=True)  # each a whole tape, header and end mark
        assert tape.venue == "binance-usdm"
        assert tape.header.extra["segment"] == number
        assert path.name.startswith(f"rot.{number:05d}.")
    sequence = Tape.open_sequence(files, strict=True)
    frames = frames_of(sequence)
    assert frames == frames_of(Tape.open(source_path), streams_in(frames))
    assert_same_books(Tape.open(source_path), sequence, symbols)


def test_a_cut_tape_replays_verifies_and_serves(
    tape_path: Callable[[str], Path], tmp_path: Path
) -> None:
    source = Tape.open(tape_path(USDM_4SYM))
    whole = tmp_path / "whole.jsonl.gz"
    with TapeWriter(whole, source.venue, flush_interval=None, flush_bytes=4096) as writer:
        for record in source.iter_records():
            if record.type == "open":
                assert record.conn is not None and record.url is not None
                writer.open(record.conn, record.url, record.ts_ns)
            elif record.type == "recv":
                assert record.conn is not None
                writer.recv(record.conn, record.data or "", record.ts_ns)
            elif record.type == "http":
                assert record.url is not None
                writer.http(record.url, record.data or "", record.ts_ns)
    raw = whole.read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(raw[: len(raw) * 2 // 3])
    kept = Tape.open(cut).records
    assert 100 < len(kept) < len(source.records)

    done = subprocess.run(
        [sys.executable, "-m", "lobfeed", "replay", str(cut), "--depth", "5"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=lobfeed_env(),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") > 50
    warning = re.search(
        r"lines 1 to (\d+) are whole and were read; dropped ([\d,]+) bytes", done.stderr
    )
    assert warning is not None, done.stderr
    assert int(warning.group(1)) == kept[-1].line
    assert int(warning.group(2).replace(",", "")) > 0

    done = subprocess.run(
        [sys.executable, "-m", "lobfeed", "verify", str(cut)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=lobfeed_env(),
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cut tape" in done.stdout and "OK: no truth contradicted" in done.stdout
    proof = verify(Tape.open(cut))
    assert proof.cut is not None and proof.book_updates > 50

    books: list[int] = []

    def on_book(update: BookUpdate) -> None:
        books.append(update.seq or 0)

    async def run_feed() -> None:
        async with ExchangeServer(Tape.open(cut), speed=20) as server:
            feed = Feed(
                "binance-usdm",
                ["SUSHIUSDT"],
                channels=("book",),
                on_book=on_book,
                ws_url=server.ws_url,
                rest_url=server.rest_url,
                reconnect=False,
            )
            await asyncio.wait_for(feed.run(), TIMEOUT)

    asyncio.run(run_feed())
    assert len(books) > 10 and books == sorted(books)


async def test_the_feed_records_binary_frames_as_they_came(tmp_path: Path) -> None:
    """A real websocket server on loopback sends text and binary frames; the Feed's tape keeps
    each byte for byte (a binary frame as base64)."""
    frames: list[str | bytes] = [
        b"\x1f\x8b\x08\x00 binary, not UTF-8 \xff\xfe",
        '{"result":null,"id":1}',
        bytes(range(256)),
    ]

    async def exchange(ws: Any) -> None:
        for frame in frames:
            await ws.send(frame)
        await ws.close(1000, "done")

    out = tmp_path / "binary.jsonl.gz"
    async with websockets.serve(exchange, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        feed = Feed(
            "binance",
            ["BTCUSDT"],
            channels=("book",),
            ws_url=f"ws://127.0.0.1:{port}",
            rest_url=f"http://127.0.0.1:{port}",
            reconnect=False,
            record=str(out),
        )
        await asyncio.wait_for(feed.run(), TIMEOUT)
    received: list[TapeRecord] = list(Tape.open(out, strict=True).iter_records("recv"))
    assert [r.payload for r in received] == [
        f if isinstance(f, bytes) else f.encode() for f in frames
    ]
    assert [r.encoding for r in received] == ["base64", None, "base64"]
    assert feed.tape_paths == [out]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ["binance", "BTCUSDT", "--tape", "t.jsonl.gz", "--depth", "-5"],
            "--depth: must be a positive integer, got -5",
        ),
        (["binanse", "BTCUSDT", "--tape", "t.jsonl.gz"], "unknown venue 'binanse'"),
        (
            ["--feed", "binance:BTCUSDT", "--feed", "okx:BTC-USDT", "--tape", "t.jsonl.gz"],
            "{venue}",
        ),
        (
            ["binance", "BTCUSDT", "--tape", "nowhere/t.jsonl.gz"],
            "--tape 'nowhere/t.jsonl.gz': the directory 'nowhere' does not exist",
        ),
        (["binance", "BTCUSDT", "--feed", "okx:BTC-USDT", "--tape", "t.jsonl.gz"], "not both"),
        (
            ["binance", "BTCUSDT", "--tape", "t.jsonl.gz", "--channels", "books"],
            "unknown channel 'books'",
        ),
        (
            ["binance", "BTCUSDT", "--tape", "t.jsonl.gz", "--rotate-bytes", "lots"],
            "--rotate-bytes: must be a number of bytes",
        ),
        (["binance", "BTCUSDT"], "--tape"),
    ],
)
def test_record_usage_errors_are_one_line_and_exit_2(
    tmp_path: Path, args: list[str], words: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lobfeed", "record", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=tmp_path,
        env=lobfeed_env(),
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("lobfeed record: ")
    assert words in done.stderr
    assert not list(tmp_path.iterdir())  # nothing was created


@pytest.mark.parametrize(
    ("record", "words"),
    [
        ("missing/t.jsonl.gz", "the directory '.*missing' does not exist"),
        ("file/t.jsonl.gz", "is not a directory"),
        (".", "is a directory"),
    ],
)
def test_a_bad_record_path_is_refused_by_the_feed_constructor(
    tmp_path: Path, record: str, words: str
) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(lobfeed.ConfigError, match=words):
        Feed("binance", ["BTCUSDT"], record=str(tmp_path / record))


def test_duration_ends_the_recording_with_a_whole_tape(
    tape_path: Callable[[str], Path], tmp_path: Path
) -> None:
    out = tmp_path / "timed.jsonl.gz"
    with serve(tape_path(USDM_4SYM), "--speed", "1", "--loop") as server:
        done = subprocess.run(
            record_args(server, "binance-usdm", "SUSHIUSDT", tape=out, extra=("--duration", "2")),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=lobfeed_env(),
            check=False,
        )
    assert done.returncode == 0, done.stderr
    tape = Tape.open(out, strict=True)
    assert [r.type for r in tape.records][:1] == ["open"]
    assert tape.damage is None


def test_several_venues_record_in_one_process_one_tape_each(tmp_path: Path) -> None:
    from lobfeed.cli import _parser
    from lobfeed.record import Runner, _record_config

    args = _parser().parse_args(
        [
            "record",
            "--feed",
            "binance:BTCUSDT,ETHUSDT",
            "--feed",
            "binance-usdm:BTCUSDT",
            "--feed",
            "binance-coinm:BTCUSD_PERP",
            "--tape",
            str(tmp_path / "rec-{venue}.jsonl.gz"),
            "--rotate-bytes",
            "1M",
        ]
    )
    config = _record_config(args)
    runner = Runner(config)
    assert [(r.name, r.feed.subscription.symbols) for r in runner.feeds] == [
        ("binance", ("BTCUSDT", "ETHUSDT")),
        ("binance-usdm", ("BTCUSDT",)),
        ("binance-coinm", ("BTCUSD_PERP",)),
    ]
    recordings = [r.feed._record for r in runner.feeds]
    assert [Path(r.path).name for r in recordings if r is not None] == [
        "rec-binance.jsonl.gz",
        "rec-binance-usdm.jsonl.gz",
        "rec-binance-coinm.jsonl.gz",
    ]
    assert {r.rotate_bytes for r in recordings if r is not None} == {1 << 20}
