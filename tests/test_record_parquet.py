"""The seeds' kline recorder: spot, USDⓈ-M and COIN-M feeds in one process, closed 1 m candles
to Parquet, each against its own local exchange; and ``lobfeed record --parquet``."""

from __future__ import annotations

import contextlib
import gzip
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import orjson

from lobfeed.sinks.parquet import read_table
from test_record import lobfeed_env, serve

TAPES = {
    "binance": ("binance-spot-4sym-2021.jsonl.gz", ["NKNUSDT", "BLZETH", "LRCBTC", "RUNEEUR"]),
    "binance-usdm": ("binance-usdm-4sym-2021.jsonl.gz", []),
    "binance-coinm": ("binance-coinm-10sym-2021.jsonl.gz", []),
}


def closed_klines(path: Path) -> dict[tuple[str, int], dict[str, object]]:
    """The closed klines of a tape, read with nothing of lobfeed's: (symbol, open ms) -> k."""
    found: dict[tuple[str, int], dict[str, object]] = {}
    with gzip.open(path, "rt") as lines:
        for line in lines:
            record = orjson.loads(line)
            if record.get("type") != "recv":
                continue
            data = orjson.loads(record["data"]).get("data", {})
            if isinstance(data, dict) and data.get("e") == "kline" and data["k"]["x"]:
                found[(data["s"], data["k"]["t"])] = data["k"]
    return found


def tape_symbols(path: Path) -> list[str]:
    symbols: set[str] = set()
    with gzip.open(path, "rt") as lines:
        for line in lines:
            record = orjson.loads(line)
            if record.get("type") == "recv":
                data = orjson.loads(record["data"]).get("data", {})
                if isinstance(data, dict) and data.get("e") == "kline":
                    symbols.add(data["s"])
    return sorted(symbols)


def test_three_binance_markets_record_closed_candles_to_parquet_in_one_process(
    tape_path: Callable[[str], Path], tmp_path: Path
) -> None:
    out = tmp_path / "candles"
    config = ["[[sinks]]", 'type = "parquet"', f'directory = "{out}"', ""]
    expected: dict[tuple[str, str, int], dict[str, object]] = {}
    with contextlib.ExitStack() as servers:
        for venue, (name, _symbols) in TAPES.items():
            path = tape_path(name)
            served = servers.enter_context(serve(path, "--speed", "max", "--once"))
            symbols = tape_symbols(path)
            for (symbol, open_ms), k in closed_klines(path).items():
                expected[(venue, symbol, open_ms)] = k
            config += [
                "[[feeds]]",
                f'venue = "{venue}"',
                f"symbols = {orjson.dumps(symbols).decode()}",
                'channels = ["candles"]',
                f'ws_url = "{served.ws_url}"',
                f'rest_url = "{served.rest_url}"',
                "reconnect = false",
                "",
            ]
        file = tmp_path / "recorder.toml"
        file.write_text("\n".join(config))
        done = subprocess.run(
            [sys.executable, "-m", "lobfeed", "run", str(file)],
            capture_output=True,
            text=True,
            timeout=300,
            env=lobfeed_env(),
            check=False,
        )
    assert done.returncode == 0, done.stderr
    # Every market ran (its summary line), and every closed kline of the tapes is a row.
    for venue in TAPES:
        assert f"{venue}:" in done.stdout, done.stdout
    assert len(expected) == 4  # the USDⓈ-M capture closes four; the others close none
    rows = read_table(out, "candles").to_pylist()
    got = {(r["venue"], r["symbol"], r["open_time"].value // 1_000_000): r for r in rows}
    assert set(got) == set(expected)
    for key, k in expected.items():
        row = got[key]
        assert row["interval"] == k["i"] == "1m"
        for column, field in (("open", "o"), ("high", "h"), ("low", "l"), ("close", "c")):
            assert row[column] == Decimal(str(k[field])), (key, column)
        assert row["volume"] == Decimal(str(k["v"]))
        assert row["trades"] == k["n"]


def test_lobfeed_record_writes_parquet_beside_or_instead_of_a_tape(
    tape_path: Callable[[str], Path], tmp_path: Path
) -> None:
    path = tape_path("binance-usdm-4sym-2021.jsonl.gz")
    with serve(path, "--speed", "max", "--once") as served:
        args = ["record", "binance-usdm", *tape_symbols(path), "--channels", "candles"]
        args += ["--parquet", str(tmp_path / "pq"), "--no-reconnect"]
        args += ["--ws-url", served.ws_url, "--rest-url", served.rest_url]
        done = subprocess.run(
            [sys.executable, "-m", "lobfeed", *args],
            capture_output=True,
            text=True,
            timeout=300,
            env=lobfeed_env(),
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert read_table(tmp_path / "pq", "candles").num_rows == len(closed_klines(path)) == 4
    assert not (tmp_path / "pq" / "trades").exists()  # not asked for
