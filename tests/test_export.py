"""`lobfeed export TAPE --format tardis-csv DIR`: Tardis's CSV layouts, rows held against the
tape's own frames and `lobfeed replay`; and the command's usage errors."""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lobfeed.exceptions import ConfigError
from lobfeed.sinks.tardis import TardisCsvSink, tardis_exchange

ETH_TAPE = "binance-ethusdt-20240808.jsonl.gz"
TIMEOUT = 120

# Written out here from Tardis.dev's documentation of its downloadable CSV files, not taken
# from the code under test.
L2_HEADER = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"
TRADES_HEADER = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount"
SNAPSHOT_HEADER = "exchange,symbol,timestamp,local_timestamp," + ",".join(
    f"asks[{i}].price,asks[{i}].amount,bids[{i}].price,bids[{i}].amount" for i in range(25)
)


def lobfeed(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lobfeed", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def records(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            yield json.loads(line)


def csv_rows(path: Path) -> tuple[str, list[list[str]]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as text:
        header = text.readline().rstrip("\n")
        return header, list(csv.reader(text))


@pytest.fixture(scope="module")
def tardis_dir(tape_path: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tardis")
    result = lobfeed("export", str(tape_path(ETH_TAPE)), "--format", "tardis-csv", str(out))
    assert result.returncode == 0, result.stderr
    assert "3 tardis-csv files" in result.stdout
    return out


@pytest.fixture(scope="module")
def replay_lines(tape_path: Callable[[str], Path]) -> list[dict[str, Any]]:
    result = lobfeed("replay", str(tape_path(ETH_TAPE)), "--depth", "25")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if '"bids"' in line]


def test_one_file_per_data_type_symbol_and_day_with_tardis_headers(tardis_dir: Path) -> None:
    names = sorted(p.name for p in tardis_dir.iterdir())
    assert names == [
        "binance_book_snapshot_25_2024-08-08_ETHUSDT.csv.gz",
        "binance_incremental_book_L2_2024-08-08_ETHUSDT.csv.gz",
        "binance_trades_2024-08-08_ETHUSDT.csv.gz",
    ]
    headers = {name.split("_2024")[0]: csv_rows(tardis_dir / name)[0] for name in names}
    assert headers == {
        "binance_book_snapshot_25": SNAPSHOT_HEADER,
        "binance_incremental_book_L2": L2_HEADER,
        "binance_trades": TRADES_HEADER,
    }


def test_trades_rows_are_the_tapes_trades(
    tardis_dir: Path, tape_path: Callable[[str], Path]
) -> None:
    want = []
    for record in records(tape_path(ETH_TAPE)):
        if record["type"] != "recv":
            continue
        d = json.loads(record["data"])["data"]
        if d.get("e") == "trade":
            side = "sell" if d["m"] else "buy"  # the buyer made the market: a taker sold
            local = record["ts_ns"] // 1000
            want.append(
                [
                    "binance",
                    "ETHUSDT",
                    str(d["T"] * 1000),
                    str(local),
                    str(d["t"]),
                    side,
                    d["p"],
                    d["q"],
                ]
            )
    _, rows = csv_rows(tardis_dir / "binance_trades_2024-08-08_ETHUSDT.csv.gz")
    assert rows == want
    assert len(rows) == 6106


def test_incremental_l2_starts_with_the_rest_snapshot_and_rebuilds_the_replay_books(
    tardis_dir: Path, tape_path: Callable[[str], Path], replay_lines: list[dict[str, Any]]
) -> None:
    _, rows = csv_rows(tardis_dir / "binance_incremental_book_L2_2024-08-08_ETHUSDT.csv.gz")
    http = next(r for r in records(tape_path(ETH_TAPE)) if r["type"] == "http")
    body = json.loads(http["data"])
    local = str(http["ts_ns"] // 1000)
    snapshot = [r for r in rows if r[4] == "true"]
    # The venue gives no time for a REST snapshot: timestamp falls back to local_timestamp.
    assert snapshot == [
        ["binance", "ETHUSDT", local, local, "true", side, price, size]
        for side, levels in (("bid", body["bids"]), ("ask", body["asks"]))
        for price, size in levels
    ]
    assert rows[: len(snapshot)] == snapshot

    bids: dict[Decimal, str] = {}
    asks: dict[Decimal, str] = {}

    def top(side: dict[Decimal, str], descending: bool) -> list[list[str]]:
        best = sorted(side, reverse=descending)[:25]
        return [[str(p), side[p]] for p in best]

    # Rows of one update share local_timestamp: compare after each update whose receive
    # microsecond no other update shares.
    stamps = [line["ts_ns"] // 1000 for line in replay_lines]
    unique = {s for s, n in Counter(stamps).items() if n == 1}
    i, compared = 0, 0
    for line, stamp in zip(replay_lines, stamps, strict=True):
        while i < len(rows) and int(rows[i][3]) <= stamp:
            _, _, _, _, _, side, price, amount = rows[i]
            book = bids if side == "bid" else asks
            if Decimal(amount) == 0:
                book.pop(Decimal(price), None)
            else:
                book[Decimal(price)] = amount
            i += 1
        if stamp in unique:
            assert top(bids, True) == line["bids"], line["seq"]
            assert top(asks, False) == line["asks"], line["seq"]
            compared += 1
    assert i == len(rows)
    assert compared > 3000


def test_book_snapshot_rows_are_the_replay_tops_asks_and_bids_interleaved(
    tardis_dir: Path, replay_lines: list[dict[str, Any]]
) -> None:
    _, rows = csv_rows(tardis_dir / "binance_book_snapshot_25_2024-08-08_ETHUSDT.csv.gz")
    by_stamp: dict[str, list[dict[str, Any]]] = {}
    for line in replay_lines:
        by_stamp.setdefault(str(line["ts_ns"] // 1000), []).append(line)
    assert len(rows) > 3000
    for row in rows:
        assert row[:2] == ["binance", "ETHUSDT"]
        levels = row[4:]
        assert len(levels) == 100
        asks = [[levels[4 * i], levels[4 * i + 1]] for i in range(25)]
        bids = [[levels[4 * i + 2], levels[4 * i + 3]] for i in range(25)]
        candidates = by_stamp[row[3]]
        assert any(c["asks"] == asks and c["bids"] == bids for c in candidates), row[3]


def test_pandas_reads_the_files_with_tardis_types(tardis_dir: Path) -> None:
    trades = pd.read_csv(tardis_dir / "binance_trades_2024-08-08_ETHUSDT.csv.gz")
    assert list(trades.columns) == TRADES_HEADER.split(",")
    assert trades["timestamp"].dtype == "int64" and trades["price"].dtype == "float64"
    l2 = pd.read_csv(tardis_dir / "binance_incremental_book_L2_2024-08-08_ETHUSDT.csv.gz")
    assert l2["is_snapshot"].dtype == bool
    assert set(l2["side"]) == {"bid", "ask"}


def test_exchange_ids_follow_tardis() -> None:
    assert tardis_exchange("binance-usdm", "ETHUSDT") == "binance-futures"
    assert tardis_exchange("binance-coinm", "ETHUSD_PERP") == "binance-delivery"
    assert tardis_exchange("okx", "BTC-USDT-SWAP") == "okex-swap"
    assert tardis_exchange("okx", "BTC-USD-220624") == "okex-futures"
    assert tardis_exchange("okx", "BTC-USDT") == "okex"


def test_candles_have_no_tardis_layout(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'candles'"):
        TardisCsvSink(tmp_path, channels=["trades", "candles"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give --parquet DIR or --format FORMAT DIR"),
        (["--parquet", "a", "--format", "tardis-csv", "b"], "not both"),
        (["--format", "xls", "out"], "unknown format 'xls'"),
        (["--format", "tardis-csv", "out", "--channels", "candles"], "no candle layout"),
        (["--parquet", "out", "--channels", "book,quotes"], "unknown channel 'quotes'"),
        (["--parquet", "out", "--depth", "0"], "--depth: must be >= 1, got 0"),
        (["--parquet", "out", "--roll-seconds", "never"], "--roll-seconds: not a number"),
        (["--parquet", "out", "--flush-rows", "1.5"], "--flush-rows: not an integer: '1.5'"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    args: list[str], message: str, tape_path: Callable[[str], Path], tmp_path: Path
) -> None:
    args = [str(tmp_path / a) if a in ("a", "b", "out") else a for a in args]
    result = lobfeed("export", str(tape_path(ETH_TAPE)), *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lobfeed export: ")
    assert message in lines[0]
    assert not list(tmp_path.iterdir())


def test_a_missing_tape_is_a_usage_error(tmp_path: Path) -> None:
    result = lobfeed("export", str(tmp_path / "nope.jsonl.gz"), "--parquet", str(tmp_path / "o"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"lobfeed export: no such tape: {tmp_path / 'nope.jsonl.gz'}"
    ]


def test_a_directory_with_files_needs_append(
    tape_path: Callable[[str], Path], tmp_path: Path
) -> None:
    tape = str(tape_path("binance-spot-4sym-2021.jsonl.gz"))
    first = lobfeed("export", tape, "--parquet", str(tmp_path), "--channels", "trades")
    assert first.returncode == 0, first.stderr
    again = lobfeed("export", tape, "--parquet", str(tmp_path), "--channels", "trades")
    assert again.returncode == 2
    assert "is not empty" in again.stderr and "--append" in again.stderr
    appended = lobfeed(
        "export", tape, "--parquet", str(tmp_path), "--channels", "trades", "--append"
    )
    assert appended.returncode == 0, appended.stderr
    partitions = {p.parent for p in tmp_path.rglob("*.parquet")}
    assert partitions
    assert all(len(list(d.glob("*.parquet"))) == 2 for d in partitions)
