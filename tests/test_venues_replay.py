"""`verify`, `replay` and the `lobfeed verify` CLI on the real tapes of every venue but Binance.

Each venue's books are proven against what the exchange itself put in the tape: OKX's and
Kraken's CRC32 checksums, Bybit's constant 200-level depth, Coinbase's and Bitfinex's
connection sequence numbers, and everywhere a book that is never crossed.
"""

from __future__ import annotations

import gzip
import io
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import MORE_TAPES, REAL_TAPES, TAPES_DIR
from lobfeed.replay import Proof, format_proof, replay, snapshot_symbol, verify
from lobfeed.tape import Tape
from lobfeed.venues import SPECS


@dataclass(frozen=True)
class Expected:
    tape: str
    book_updates: int
    trades: int
    candles: int = 0
    checksums: int = 0
    quotes: int = 0
    """Quotes checked against the book (all must agree)."""


EXPECTED = {
    "bybit": Expected("bybit-2026.jsonl.gz", 2148, 347, candles=100),
    "okx": Expected("okx-books-3inst-2022.jsonl.gz", 290, 74, checksums=290),
    "kraken": Expected("kraken-v1-book1000-10sym-2021.jsonl.gz", 4279, 10, checksums=4269),
    "coinbase": Expected("coinbase-2026.jsonl.gz", 775, 279, candles=204),
    "gemini": Expected("gemini-v2-l2-10sym-2021.jsonl.gz", 655, 516),
    "bitfinex": Expected("bitfinex-book-p0-7sym-2021.jsonl.gz", 1600, 210),
    "kucoin": Expected("kucoin-l2-10sym-2021.jsonl.gz", 3814, 18, candles=6, quotes=819),
    "ascendex": Expected("ascendex-depth-10sym-2021.jsonl.gz", 279, 4),
    "htx-swap": Expected("htx-swap-depth150-10sym-2022.jsonl.gz", 2862, 25),
    # Upbit's tas/tbs totals are counted as checksums: 145 books, 145 totals.
    "upbit": Expected("upbit-orderbook-10sym-2021.jsonl.gz", 145, 304, checksums=145),
    "gateio": Expected("gateio-spot-10sym-2021.jsonl.gz", 168, 9, candles=14),
    # 16 book tickers at an update's `u`, 2 at a REST snapshot's `id`.
    "gateio-futures": Expected("gateio-futures-10sym-2023.jsonl.gz", 326, 0, candles=1, quotes=18),
    # Trades and candles: 500 and 10,000 of them history sent on subscribe.
    "bitget": Expected(
        "bitget-books-checksum-10sym-2022.jsonl.gz", 637, 555, candles=10060, checksums=637
    ),
    # Trades subscribed but none traded; each ticker is the book at its timestamp.
    "deribit": Expected("deribit-options-10inst-2021.jsonl.gz", 46, 0, quotes=89),
    # Every quote row is found among the book's top-of-book states, in order.
    "bitmex": Expected("bitmex-l2-10sym-2021.jsonl.gz", 1979, 27, quotes=426),
}
VENUES = sorted(EXPECTED)


@pytest.fixture(scope="module")
def proofs(tape_path: Callable[[str], Path]) -> dict[str, Proof]:
    return {venue: verify(Tape.open(tape_path(e.tape))) for venue, e in EXPECTED.items()}


@pytest.mark.parametrize("venue", VENUES)
def test_verify_counts(venue: str, proofs: dict[str, Proof]) -> None:
    proof, expected = proofs[venue], EXPECTED[venue]
    assert proof.venue == venue
    assert proof.book_updates == expected.book_updates
    assert proof.trades == expected.trades
    assert (proof.quotes_checked, proof.quotes_agreed) == (expected.quotes, expected.quotes)
    assert proof.candles == expected.candles
    assert proof.checksums_checked == expected.checksums
    assert proof.checksum_mismatches == 0
    assert proof.crossed == 0
    assert proof.gaps == 0
    assert proof.resyncs == 0
    assert proof.frame_errors == 0
    assert proof.failures() == []


def test_okx_every_checksum_matches(proofs: dict[str, Proof]) -> None:
    proof = proofs["okx"]
    assert (proof.checksums_checked, proof.checksum_mismatches) == (290, 0)


def test_kraken_every_checksum_matches(proofs: dict[str, Proof]) -> None:
    proof = proofs["kraken"]
    assert (proof.checksums_checked, proof.checksum_mismatches) == (4269, 0)


def test_bybit_books_stay_at_200_levels(proofs: dict[str, Proof]) -> None:
    """Every applied update of both connections (linear and spot) leaves 200 levels a side."""
    proof = proofs["bybit"]
    assert proof.min_depth == proof.max_depth == (200, 200)
    assert proof.gaps == 0 and proof.crossed == 0
    assert proof.candles > 0


@pytest.mark.parametrize("venue", ["coinbase", "bitfinex"])
def test_connection_sequences_have_no_gap(venue: str, proofs: dict[str, Proof]) -> None:
    assert proofs[venue].gaps == 0
    assert proofs[venue].crossed == 0


def test_proof_reports_min_depth(proofs: dict[str, Proof]) -> None:
    report = proofs["bybit"].as_dict()
    assert report["min_depth"] == [200, 200]
    assert report["max_depth"] == [200, 200]


# -- replay: one line format for every venue ------------------------------------------------


def _recorded_seq(venue: str, frame: Any) -> int | None:
    """The venue's own update id of a recorded book frame, where the venue gives one."""
    if venue == "bybit":
        u: int = frame["data"]["u"]
        return u
    if venue == "coinbase":
        seq: int = frame["sequence_num"]
        return seq
    if venue == "bitfinex":
        last: int = frame[-1]
        return last
    if venue == "kucoin":
        end: int = frame["data"]["sequenceEnd"]
        return end
    if venue == "ascendex":
        seqnum: int = frame["data"]["seqnum"]
        return seqnum
    if venue == "htx-swap":
        version: int = frame["tick"]["version"]
        return version
    if venue.startswith("gateio"):
        update_id: int = frame["result"]["u"]
        return update_id
    if venue == "deribit":
        change_id: int = frame["params"]["data"]["change_id"]
        return change_id
    return None  # OKX's 2022 tape has no seqId; Kraken and Gemini number nothing


def _market(venue: str, url: str | None) -> str:
    """The one spec of ``venue``'s session that connects to ``url`` (else ``venue`` itself)."""
    native = SPECS[venue].session_venue
    serving = [
        s.name
        for s in SPECS.values()
        if url is not None and s.session_venue == native and s.serves_url(url)
    ]
    return serving[0] if len(serving) == 1 else venue


@pytest.mark.parametrize("venue", VENUES)
def test_replay_lines_have_one_format(venue: str, tape_path: Callable[[str], Path]) -> None:
    tape = Tape.open(tape_path(EXPECTED[venue].tape))
    out = io.BytesIO()
    written = replay(tape, out, depth=10)
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert written == len(lines) == EXPECTED[venue].book_updates
    sent = "".join(r.data or "" for r in tape.iter_records("send"))
    by_line = {r.line: r for r in tape.records}
    opened = {r.conn: r.url or "" for r in tape.iter_records("open")}
    for line in lines:
        assert list(line) == ["line", "venue", "symbol", "seq", "ts_ns", "bids", "asks"]
        # The market of the line's connection: Bybit's and Bitget's tapes hold two each.
        assert line["venue"] == _market(venue, opened.get(by_line[line["line"]].conn))
        # The symbol as the venue spells it: the recording client asked for it so (as a
        # string, or as the end of a Bybit topic, or in a KuCoin topic's list; Deribit
        # channels are `book.SYMBOL.raw`, BitMEX topics `orderBookL2:SYMBOL`).
        assert re.search(rf'[".:,]{re.escape(line["symbol"])}[".,]', sent)
        record = by_line[line["line"]]
        assert record.ts_ns == line["ts_ns"]
        if record.type == "http":
            # A REST snapshot bridging the updates buffered before it (KuCoin's all come
            # late): the book stands at the snapshot's id, or past it.
            body = orjson.loads(record.payload)
            snapshot_id = body["id"] if "id" in body else int(body["data"]["sequence"])
            assert line["seq"] >= snapshot_id
        else:
            assert record.type == "recv"
            payload = record.payload
            if payload[:2] == b"\x1f\x8b":  # HTX's binary frames are gzip
                payload = gzip.decompress(payload)
            assert line["seq"] == _recorded_seq(venue, orjson.loads(payload))
        # Deribit's option books can have an empty side, or two.
        least = 0 if venue == "deribit" else 1
        assert least <= len(line["bids"]) <= 10 and least <= len(line["asks"]) <= 10
        assert all(isinstance(p, str) and isinstance(q, str) for p, q in line["bids"])
        if line["bids"] and line["asks"]:
            assert Decimal(line["bids"][0][0]) < Decimal(line["asks"][0][0])


@pytest.mark.parametrize("venue", ["bybit", "coinbase"])
def test_instrument_lists_are_not_snapshots(venue: str, tape_path: Callable[[str], Path]) -> None:
    """Bybit's and Coinbase's tapes hold REST instrument lists: replay must pass them by."""
    tape = Tape.open(tape_path(EXPECTED[venue].tape))
    urls = [r.url or "" for r in tape.iter_records("http")]
    assert urls
    assert all(snapshot_symbol(url) is None for url in urls)


def test_snapshot_symbol_of_each_rest_book() -> None:
    assert snapshot_symbol("https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000") == (
        "BTCUSDT"
    )
    assert snapshot_symbol("https://www.okx.com/api/v5/market/books?instId=BTC-USDT&sz=400") == (
        "BTC-USDT"
    )
    assert snapshot_symbol("https://api.bybit.com/v5/market/instruments-info?category=spot") is None
    assert snapshot_symbol("https://api.coinbase.com/api/v3/brokerage/market/products") is None


# -- the CLI on every tape --------------------------------------------------------------------


def test_every_venue_has_a_tape(tapes_dir: Path) -> None:
    assert tapes_dir == TAPES_DIR
    assert {e.tape for e in EXPECTED.values()} <= set(REAL_TAPES) | set(MORE_TAPES)


@pytest.mark.parametrize("name", REAL_TAPES + MORE_TAPES)
def test_verify_cli_passes_on_every_tape(name: str, tape_path: Callable[[str], Path]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lobfeed", "verify", str(tape_path(name))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: no truth contradicted" in result.stdout


def test_markets_of_one_venue_are_told_apart(tape_path: Callable[[str], Path]) -> None:
    """Bybit linear and spot BTCUSDT are two books: six markets, not four symbols."""
    proof = verify(Tape.open(tape_path("bybit-2026.jsonl.gz")))
    assert proof.symbols == 6
    out = io.BytesIO()
    replay(Tape.open(tape_path("bybit-2026.jsonl.gz")), out, depth=1)
    markets = {
        (line["venue"], line["symbol"]) for line in map(orjson.loads, out.getvalue().splitlines())
    }
    assert markets == {
        ("bybit", "BTCUSDT"),
        ("bybit", "ETHUSDT"),
        ("bybit", "SOLUSDT"),
        ("bybit", "DOGEUSDT"),
        ("bybit-spot", "BTCUSDT"),
        ("bybit-spot", "ETHUSDT"),
    }


def test_kucoin_tickers_agree_with_the_book_at_the_same_sequence(
    proofs: dict[str, Proof],
) -> None:
    """819 tickers carry a sequence the book stood at: best bid and ask agree at every one;
    the sequenceStart/End chain never breaks, though every snapshot came after its symbol's
    first update (all nine bridged)."""
    proof = proofs["kucoin"]
    assert (proof.quotes_checked, proof.quotes_agreed) == (819, 819)
    assert (proof.gaps, proof.resyncs, proof.symbols) == (0, 0, 9)


def test_verify_fails_when_a_deribit_ticker_contradicts_the_book(
    tape_path: Callable[[str], Path], tmp_path: Path
) -> None:
    """One ticker's best bid amount changed: the time tie finds it, and the CLI exits non-zero."""
    source = tape_path("deribit-options-10inst-2021.jsonl.gz")
    lines = gzip.decompress(source.read_bytes()).decode().splitlines()
    at = next(i for i, line in enumerate(lines) if '"best_bid_amount\\":91.6' in line)
    lines[at] = lines[at].replace('"best_bid_amount\\":91.6', '"best_bid_amount\\":91.7', 1)
    tampered = tmp_path / "deribit-tampered.jsonl.gz"
    tampered.write_bytes(gzip.compress("\n".join(lines).encode() + b"\n"))
    proof = verify(Tape.open(tampered))
    assert (proof.quotes_checked, proof.quotes_agreed) == (89, 88)
    result = subprocess.run(
        [sys.executable, "-m", "lobfeed", "verify", str(tampered)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "ticker at its time      88/89" in result.stdout
    assert "FAILED" in result.stdout


def test_verify_fails_when_a_bitmex_quote_is_no_state_of_the_book(
    tape_path: Callable[[str], Path], tmp_path: Path
) -> None:
    """One ``quote`` row's ask size changed: no top of the book holds it, and the CLI says so."""
    source = tape_path("bitmex-l2-10sym-2021.jsonl.gz")
    lines = gzip.decompress(source.read_bytes()).decode().splitlines()
    row = '\\"askPrice\\":17.297,\\"askSize\\":123}'
    at = next(
        i for i, line in enumerate(lines) if '\\"table\\":\\"quote\\"' in line and row in line
    )
    lines[at] = lines[at].replace(row, row.replace("123", "987654321"), 1)
    tampered = tmp_path / "bitmex-tampered.jsonl.gz"
    tampered.write_bytes(gzip.compress("\n".join(lines).encode() + b"\n"))
    proof = verify(Tape.open(tampered))
    assert (proof.quotes_checked, proof.quotes_agreed) == (426, 425)
    result = subprocess.run(
        [sys.executable, "-m", "lobfeed", "verify", str(tampered)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "quotes found in order   425/426" in result.stdout
    assert "is not a later top of the book" in result.stdout


@pytest.mark.parametrize(
    ("name", "truth"),
    [
        ("upbit-orderbook-10sym-2021.jsonl.gz", "tas/tbs totals matched  145/145"),
        ("kucoin-l2-10sym-2021.jsonl.gz", "ticker at the same id   819/819"),
        ("bitget-books-checksum-10sym-2022.jsonl.gz", "checksums matched       637/637"),
        ("gateio-futures-10sym-2023.jsonl.gz", "ticker at the same id   18/18"),
        ("binance-spot-4sym-2021.jsonl.gz", "bookTicker agreement    26/26"),
    ],
)
def test_verify_names_each_venues_own_truth(
    name: str, truth: str, tape_path: Callable[[str], Path]
) -> None:
    proof = verify(Tape.open(tape_path(name)))
    assert truth in format_proof(proof)
    assert proof.failures() == []
