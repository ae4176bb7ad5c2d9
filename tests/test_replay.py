"""`lobfeed replay` and `lobfeed verify` on every real Binance tape."""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from lobfeed import SyncLost
from lobfeed.replay import TapeReplayer, replay, verify
from lobfeed.tape import Tape, TapeWriter

BINANCE_TAPES = [
    "binance-spot-4sym-2021.jsonl.gz",
    "binance-usdm-4sym-2021.jsonl.gz",
    "binance-coinm-10sym-2021.jsonl.gz",
    "binance-ethusdt-20240808.jsonl.gz",
    "binance-usdm-ethusdt-20240808.jsonl.gz",
    "binance-coinm-ethusd_perp-20240808.jsonl.gz",
]


@pytest.mark.parametrize("name", BINANCE_TAPES)
def test_verify_agrees_with_every_book_ticker(name: str, tape_path: Callable[[str], Path]) -> None:
    proof = verify(Tape.open(tape_path(name)))
    assert proof.book_updates > 0
    assert proof.quotes_checked > 0
    assert proof.quotes_agreed == proof.quotes_checked
    assert proof.crossed == 0
    assert proof.gaps == 0
    assert proof.frame_errors == 0
    assert proof.failures() == []


def test_replay_lines_follow_the_contract(tape_path: Callable[[str], Path]) -> None:
    path = tape_path("binance-ethusdt-20240808.jsonl.gz")
    out = io.BytesIO()
    written = replay(Tape.open(path), out, depth=25)
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert written == len(lines) == 3433
    with gzip.open(path) as f:
        tape_lines = f.read().splitlines()
    first = lines[0]
    assert list(first) == ["line", "venue", "symbol", "seq", "ts_ns", "bids", "asks"]
    assert first["venue"] == "binance" and first["symbol"] == "ETHUSDT"
    for line in lines:
        record = orjson.loads(tape_lines[line["line"] - 1])
        # The line number points at the record that produced the update.
        assert record["type"] in ("recv", "http")
        assert record["ts_ns"] == line["ts_ns"]
        assert len(line["bids"]) == 25 and len(line["asks"]) == 25
        assert all(isinstance(p, str) and isinstance(q, str) for p, q in line["bids"])
        assert float(line["bids"][0][0]) < float(line["asks"][0][0])
        if record["type"] == "recv":
            data = orjson.loads(record["data"])["data"]
            assert data["u"] == line["seq"]
            # Digits exactly as the venue writes them.
            assert all(len(p.split(".")[1]) == 8 for p, _ in line["bids"])
    # The snapshot arrives after the bridging event in this tape: the first update is the
    # snapshot record itself, with the buffered event applied.
    assert orjson.loads(tape_lines[first["line"] - 1])["type"] == "http"


def test_snapshot_moved_later_still_verifies(
    tape_path: Callable[[str], Path], tmp_path: Path
) -> None:
    source = Tape.open(tape_path("binance-usdm-4sym-2021.jsonl.gz"))
    moved = tmp_path / "moved.jsonl.gz"
    held = []
    with TapeWriter(moved, source.header.venue, source=source.header.source) as out:
        recv_seen = 0
        for record in source.records:
            if record.type == "http":
                held.append((recv_seen + 40, record))
                continue
            if record.type == "open":
                assert record.conn is not None and record.url is not None
                out.open(record.conn, record.url, record.ts_ns)
            elif record.type == "recv":
                assert record.conn is not None and record.data is not None
                out.recv(record.conn, record.data, record.ts_ns)
                recv_seen += 1
            for due, http in [h for h in held if h[0] <= recv_seen]:
                assert http.url is not None and http.data is not None
                out.http(http.url, http.data, http.ts_ns)
                held.remove((due, http))
    proof = verify(Tape.open(moved))
    assert proof.failures() == []
    assert proof.quotes_checked > 0


def test_verify_fails_on_a_contradicted_truth(
    tape_path: Callable[[str], Path], tmp_path: Path
) -> None:
    """A tape whose venue truth (bookTicker) disagrees with its book: verify must notice.

    (A made-up level in the snapshot used to be the contradiction; it soon crosses the book,
    which the session now drops at once with SyncLost "crossed": see the next test.)"""
    source = Tape.open(tape_path("binance-ethusdt-20240808.jsonl.gz"))
    broken = tmp_path / "broken.jsonl.gz"
    with TapeWriter(broken, "binance") as out:
        for record in source.records:
            if record.type == "recv":
                assert record.conn is not None and record.data is not None
                frame = orjson.loads(record.data)
                if frame.get("stream", "").endswith("@bookTicker"):
                    frame["data"]["B"] = "999.00000000"
                out.recv(record.conn, orjson.dumps(frame).decode(), record.ts_ns)
            elif record.type == "http":
                assert record.url is not None and record.data is not None
                out.http(record.url, record.data, record.ts_ns)
    proof = verify(Tape.open(broken))
    assert proof.quotes_checked > 0
    assert proof.quotes_agreed == 0
    result = subprocess.run(
        [sys.executable, "-m", "lobfeed", "verify", str(broken)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "FAILED" in result.stdout


def test_verify_cli_reports_full_agreement(tape_path: Callable[[str], Path]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lobfeed", "verify", "--json", str(tape_path(BINANCE_TAPES[0]))],
        capture_output=True,
        check=True,
    )
    report = orjson.loads(result.stdout)
    assert report["quotes_checked"] == report["quotes_agreed"] == 26
    assert report["crossed"] == 0


def test_replay_cli_writes_a_file(tape_path: Callable[[str], Path], tmp_path: Path) -> None:
    out = tmp_path / "books.jsonl"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "lobfeed",
            "replay",
            str(tape_path(BINANCE_TAPES[0])),
            "--depth",
            "3",
            "--out",
            str(out),
        ],
        check=True,
    )
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert len(lines) == 176
    assert all(len(line["bids"]) <= 3 for line in lines)


def test_a_made_up_snapshot_level_crosses_and_drops_the_book(
    tape_path: Callable[[str], Path], tmp_path: Path
) -> None:
    """A snapshot bid the venue never had ends up at or above the best ask: the session drops
    the book (SyncLost "crossed") instead of publishing a crossed book."""
    source = Tape.open(tape_path("binance-ethusdt-20240808.jsonl.gz"))
    broken = tmp_path / "phantom.jsonl.gz"
    with TapeWriter(broken, "binance") as out:
        for record in source.records:
            if record.type == "recv":
                assert record.conn is not None and record.data is not None
                out.recv(record.conn, record.data, record.ts_ns)
            elif record.type == "http":
                assert record.url is not None and record.data is not None
                body = orjson.loads(record.data)
                body["bids"].insert(0, ["2683.80500000", "1.00000000"])
                out.http(record.url, orjson.dumps(body).decode(), record.ts_ns)
    replayer = TapeReplayer(Tape.open(broken))
    lost = [ev for _, ev in replayer.events() if isinstance(ev, SyncLost)]
    assert [ev.reason for ev in lost] == ["crossed"]
    assert lost[0].detail.startswith("bid 2683.805")
    (session,) = replayer.sessions.values()
    assert session.counters("ETHUSDT")["crossed"] == 1
    assert session.state("ETHUSDT") == "awaiting_snapshot"
