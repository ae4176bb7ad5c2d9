"""`lobfeed bench`: the commands run, print the documented JSON, and compare like with like.

No timing is asserted: the machines these run on are shared and noisy. What is asserted is
what makes the numbers mean something: every implementation built the same books, and every
frame sent was measured.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import MORE_TAPES
from lobfeed._native import NeedSnapshot, Session
from lobfeed.bench.depth import DepthTape
from lobfeed.bench.peers import CryptofeedBooks

TIMEOUT = 120
SMALL_TAPES = ("binance-spot-4sym-2021.jsonl.gz", "binance-usdm-4sym-2021.jsonl.gz")
REQUIRED = ("lobfeed", "lobfeed_core", "cryptofeed", "naive")
LATENCY_KEYS = ("p50_us", "p90_us", "p99_us", "p999_us", "max_us")


def _lobfeed(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "lobfeed", "bench", *args],
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )


def _positive_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def test_throughput_json_and_report(tape_path: Callable[[str], Path], tmp_path: Path) -> None:
    paths = [str(tape_path(name)) for name in SMALL_TAPES]
    report_dir = tmp_path / "report"
    proc = _lobfeed(
        "throughput", *paths, "--json", "--repeats", "1", "--warmup", "0", "--report",
        str(report_dir),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == len(paths), "one JSON object per tape, one per line"
    for line, name in zip(lines, SMALL_TAPES, strict=True):
        obj = orjson.loads(line)
        assert obj["tape"] == name.removesuffix(".jsonl.gz")
        assert isinstance(obj["frames"], int) and obj["frames"] > 0
        for impl in REQUIRED:
            result = obj["results"][impl]
            assert _positive_number(result["ns_per_frame"]), (impl, result)
            assert _positive_number(result["frames_per_s"]), (impl, result)
        assert obj["books_agree"] is True, obj["disagreements"]
    text = (report_dir / "throughput.md").read_text()
    assert "| cryptofeed |" in text and "## Machine" in text
    assert (report_dir / "throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _cryptofeed_levels(books: CryptofeedBooks, symbol: str, n: int) -> tuple[list[Any], ...]:
    sides = books._feed._l2_book[symbol].book
    return tuple(
        [(str(p), str(q)) for p, q in side.to_list()[:n]] for side in (sides.bids, sides.asks)
    )


@pytest.mark.parametrize("name", [*SMALL_TAPES, "binance-coinm-10sym-2021.jsonl.gz"])
def test_cryptofeed_builds_the_same_books_as_lobfeed(
    tape_path: Callable[[str], Path], name: str
) -> None:
    """The peer really builds books: 20 levels a side equal lobfeed's, digit for digit."""
    tape = DepthTape.open(tape_path(name))
    session = Session(tape.venue)
    books = CryptofeedBooks(tape.venue, tape.symbol_list, tape.snapshots.__getitem__)

    async def feed_cryptofeed() -> None:
        for frame in tape.sync_frames + tape.timed_frames:
            await books.receive(frame.decode(), None, 0.0)

    asyncio.run(feed_cryptofeed())
    for frame in tape.sync_frames + tape.timed_frames:
        for ev in session.receive(frame, 0):
            if isinstance(ev, NeedSnapshot):
                session.receive_snapshot(ev.symbol, tape.snapshots[ev.symbol], 0)
    assert books.snapshots.requests == len(tape.symbol_list)
    for symbol in tape.symbol_list:
        view = session.book(symbol)
        ours = (view.bids(20), view.asks(20))
        assert ours[0] and ours[1]
        assert _cryptofeed_levels(books, symbol, 20) == ours, symbol


def test_latency_json_and_report(tape_path: Callable[[str], Path], tmp_path: Path) -> None:
    report_dir = tmp_path / "report"
    proc = _lobfeed(
        "latency", "--tape", str(tape_path("binance-ethusdt-20240808.jsonl.gz")),
        "--rates", "2000", "--duration", "0.4", "--repeats", "1", "--warmup-frames", "20",
        "--json", "--report", str(report_dir),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == 1
    obj = orjson.loads(lines[0])
    assert list(obj["rates"]) == ["2000"]
    clients = obj["rates"]["2000"]
    for name in ("lobfeed", "cryptofeed", "transport"):
        stats = clients[name]
        for key in LATENCY_KEYS:
            assert _positive_number(stats[key]), (name, key, stats)
        assert stats["p50_us"] <= stats["p99_us"] <= stats["max_us"]
        assert stats["frames"] == 800, (name, stats)
        assert stats["missing"] == 0, (name, stats)
    text = (report_dir / "latency.md").read_text()
    assert "| transport |" in text and "## Machine" in text
    assert (report_dir / "latency-cdf.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


IN_BAND_TAPES = (
    "bybit-2026.jsonl.gz",
    "okx-books-3inst-2022.jsonl.gz",
    "kraken-v1-book1000-10sym-2021.jsonl.gz",
    "coinbase-2026.jsonl.gz",
    "gemini-v2-l2-10sym-2021.jsonl.gz",
    "bitfinex-book-p0-7sym-2021.jsonl.gz",
)


def test_throughput_on_every_venue_builds_the_same_books(
    tape_path: Callable[[str], Path], tmp_path: Path
) -> None:
    """Every venue's tape through lobfeed (Feed path, receive, core), cryptofeed's feed for
    that venue and the naive book: all end with lobfeed's best bid and ask; and the README's
    tables are written from that JSON."""
    paths = [str(tape_path(name)) for name in (*IN_BAND_TAPES, SMALL_TAPES[0])]
    proc = _lobfeed("throughput", *paths, "--json", "--repeats", "1", "--warmup", "0")
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == len(paths)
    venues = set()
    for line in lines:
        obj = orjson.loads(line)
        venues.add(obj["venue"])
        assert obj["books_agree"] is True, (obj["tape"], obj["disagreements"])
        assert obj["skipped"] == {}, obj["skipped"]
        assert obj["updates"] > 0 and obj["timed_bytes"] > 0
        for impl in (*REQUIRED, "lobfeed_receive", "cryptofeed_noread"):
            assert _positive_number(obj["results"][impl]["ns_per_frame"]), (obj["tape"], impl)
        for symbol, (bid, ask) in obj["tops"].items():
            assert bid is not None and ask is not None, (obj["tape"], symbol)
    assert venues == {"bybit", "okx", "kraken", "coinbase", "gemini", "bitfinex", "binance"}

    from lobfeed.bench.readme import update

    (tmp_path / "throughput.jsonl").write_bytes(proc.stdout)
    readme = tmp_path / "README.md"
    markers = "".join(
        f"<!-- bench:{n} -->\nold\n<!-- /bench:{n} -->\n" for n in ("targets", "throughput")
    )
    readme.write_text("# x\n" + markers + "<!-- bench:latency -->\n<!-- /bench:latency -->\n")
    update(tmp_path, readme)
    text = readme.read_text()
    assert "old" not in text
    assert "| bitfinex-book-p0-7sym-2021 (bitfinex) |" in text
    assert "7 venues; cryptofeed on 7" in text


CRYPTOFEED_MORE = {"ascendex", "bitget", "bitmex", "gateio", "gateio-futures", "htx-swap", "upbit"}
NAIVE_MORE = {
    "ascendex", "bitget", "bitmex", "deribit", "gateio", "gateio-futures", "htx-swap", "kucoin",
    "upbit",
}  # fmt: skip


def test_throughput_on_the_more_venues_builds_the_same_books(
    tape_path: Callable[[str], Path],
) -> None:
    """Every tape of ``tapes-more`` (binary frames, REST-bridged books, two-market tapes)
    through lobfeed's three rows, and cryptofeed and the naive book where they read the venue:
    all build the same books; a row the venue lacks is named in ``skipped`` with its reason,
    never silently absent."""
    from lobfeed.bench.throughput import IMPLEMENTATIONS

    paths = [str(tape_path(name)) for name in MORE_TAPES]
    proc = _lobfeed("throughput", *paths, "--json", "--repeats", "1", "--warmup", "0")
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == len(paths)
    venues = set()
    for line in lines:
        obj = orjson.loads(line)
        venues.add(obj["venue"])
        assert obj["books_agree"] is True, (obj["tape"], obj["disagreements"])
        assert obj["updates"] > 0 and obj["timed_bytes"] > 0, obj["tape"]
        for impl in ("lobfeed", "lobfeed_receive", "lobfeed_core"):
            assert _positive_number(obj["results"][impl]["ns_per_frame"]), (obj["tape"], impl)
        for impl in IMPLEMENTATIONS:
            reason = obj["skipped"].get(impl)
            assert (impl in obj["results"]) != bool(reason), (obj["tape"], impl, obj["skipped"])
        assert any(bid and ask for bid, ask in obj["tops"].values()), obj["tape"]
        for impl, venues_run in (("cryptofeed", CRYPTOFEED_MORE), ("naive", NAIVE_MORE)):
            assert (impl in obj["results"]) == (obj["venue"] in venues_run), (obj["tape"], impl)
    assert venues == {
        "ascendex", "bitget", "bitmex", "deribit", "gateio", "gateio-futures", "htx-swap",
        "kucoin", "upbit",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("name", "first_bytes"),
    [
        ("htx-swap-depth150-10sym-2022.jsonl.gz", b"\x1f\x8b"),
        ("upbit-orderbook-10sym-2021.jsonl.gz", b"{"),
    ],
)
def test_binary_frames_reach_the_bench_as_their_bytes(
    tape_path: Callable[[str], Path], name: str, first_bytes: bytes
) -> None:
    """HTX's gzip frames and Upbit's binary JSON frames are handed over as the bytes a live
    connection receives, not as the tape's base64 text."""
    tape = DepthTape.open(tape_path(name))
    assert tape.frames and all(f.startswith(first_bytes) for f in tape.frames), name


@pytest.mark.parametrize(
    "name",
    [
        "gateio-spot-10sym-2021.jsonl.gz",
        "gateio-futures-10sym-2023.jsonl.gz",
        "kucoin-l2-10sym-2021.jsonl.gz",
    ],
)
def test_rest_bridged_venues_sync_on_the_tapes_snapshots(
    tape_path: Callable[[str], Path], name: str
) -> None:
    """Gate.io and KuCoin books start from the tape's REST snapshot of each symbol."""
    tape = DepthTape.open(tape_path(name))
    assert tape.symbol_list and set(tape.symbol_list) <= set(tape.snapshots), name


@pytest.mark.parametrize(
    "name",
    [
        "gateio-spot-10sym-2021.jsonl.gz",
        "gateio-futures-10sym-2023.jsonl.gz",
        "kucoin-l2-10sym-2021.jsonl.gz",
    ],
)
def test_naive_bridged_books_see_a_missing_update(
    tape_path: Callable[[str], Path], name: str
) -> None:
    """The naive Gate.io and KuCoin books follow the tape's id chains end to end, and an
    update taken out of the chain stops them (their baseline does sequence what the venue
    documents, so it is compared with lobfeed like for like)."""
    from lobfeed.bench.naive import BridgedBooks, NaiveGapError

    tape = DepthTape.open(tape_path(name))
    frames = tape.sync_frames + tape.timed_frames
    whole = BridgedBooks(tape.venue, tape.snapshots.__getitem__)
    for frame in frames:
        whole.receive(frame)
    # A symbol whose snapshot is newer than all its updates has a book and nothing to bridge.
    assert set(whole.books) == set(tape.symbol_list) and whole.synced, name
    # The last applied update of the busiest symbol, taken out: the one after it must fail.
    applied: list[int] = []
    probe = BridgedBooks(tape.venue, tape.snapshots.__getitem__)
    busiest = max(tape.symbol_list, key=tape.symbols.count)
    for index, frame in enumerate(frames):
        before = probe.last_ids.get(busiest)
        probe.receive(frame)
        if busiest in probe.synced and probe.last_ids[busiest] != before:
            applied.append(index)
    assert len(applied) >= 3, (name, busiest)
    missing = applied[len(applied) // 2]
    gapped = BridgedBooks(tape.venue, tape.snapshots.__getitem__)
    with pytest.raises(NaiveGapError, match=busiest):
        for index, frame in enumerate(frames):
            if index != missing:
                gapped.receive(frame)
