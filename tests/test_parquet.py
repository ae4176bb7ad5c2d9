"""Parquet from real tapes (`lobfeed export`) and from a live feed (`ParquetSink`), read back
with pyarrow, pandas and polars and held against the tape's own frames and `lobfeed replay`."""

from __future__ import annotations

import asyncio
import bisect
import gzip
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from lobfeed import Feed
from lobfeed._native import Candle, Trade
from lobfeed.exceptions import ConfigError
from lobfeed.replay import TapeReplayer
from lobfeed.sinks import feed_callbacks
from lobfeed.sinks.parquet import ParquetSink, dataset_files, read_table
from lobfeed.tape import Tape
from lobfeed.testing import ExchangeServer

KLINE_TAPE = "binance-usdm-4sym-2021.jsonl.gz"
ETH_TAPE = "binance-ethusdt-20240808.jsonl.gz"
COINBASE_TAPE = "coinbase-2026.jsonl.gz"
TIMEOUT = 120
TS_UTC = pa.timestamp("ns", tz="UTC")


def lobfeed(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lobfeed", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def export(tape: Path, out: Path, *extra: str) -> None:
    result = lobfeed("export", str(tape), "--parquet", str(out), *extra)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def tape_frames(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(receive ts_ns, decoded frame) of every received text frame, read without lobfeed."""
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            if record["type"] == "recv":
                yield record["ts_ns"], json.loads(record["data"])


def partition(root: Path, channel: str, venue: str, symbol: str) -> Path:
    return root / f"channel={channel}" / f"venue={venue}" / f"symbol={symbol}"


@pytest.fixture(scope="module")
def kline_export(
    tape_path: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("klines")
    export(tape_path(KLINE_TAPE), out)
    return out


@pytest.fixture(scope="module")
def eth_export(tape_path: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("eth")
    export(tape_path(ETH_TAPE), out)
    return out


# -- candles --------------------------------------------------------------------------------


def test_closed_klines_match_the_tape_field_by_field(
    kline_export: Path, tape_path: Callable[[str], Path]
) -> None:
    expected: dict[tuple[str, int], dict[str, Any]] = {}
    for ts_ns, frame in tape_frames(tape_path(KLINE_TAPE)):
        data = frame.get("data", {})
        if data.get("e") != "kline" or not data["k"]["x"]:
            continue
        k = data["k"]
        # The last closed frame of an open time is the one kept if the venue repeats it.
        expected.setdefault(
            (k["s"], k["t"]),
            {
                "venue": "binance-usdm",
                "symbol": k["s"],
                "interval": k["i"],
                "open_time": k["t"] * 1_000_000,
                # Binance's T is the interval's last millisecond; close_time is its end.
                "close_time": (k["T"] + 1) * 1_000_000,
                "open": k["o"],
                "high": k["h"],
                "low": k["l"],
                "close": k["c"],
                "volume": k["v"],
                "trades": k["n"],
                "exchange_ts": data["E"] * 1_000_000,
                "ts": ts_ns,
            },
        )
    assert len(expected) == 4

    table = read_table(kline_export, "candles")
    assert table.num_rows == len(expected)
    for name in ("open_time", "close_time", "exchange_ts", "ts"):
        assert table.schema.field(name).type == TS_UTC
    for name in ("open", "high", "low", "close", "volume"):
        assert pa.types.is_decimal128(table.schema.field(name).type)
    assert table.schema.field("trades").type == pa.int64()

    # Each file on its own, so each decimal keeps the scale it was written with.
    seen = 0
    for path in dataset_files(kline_export, "candles"):
        for row in pq.read_table(path).to_pylist():
            want = expected[(row["symbol"], row["open_time"].value // 1_000_000)]
            seen += 1
            for name in ("venue", "symbol", "interval", "trades"):
                assert row[name] == want[name], name
            for name in ("open", "high", "low", "close", "volume"):
                # The venue's digits, trailing zeros included: exact, not just equal.
                assert str(row[name]) == want[name], (name, row[name], want[name])
            for name in ("open_time", "close_time", "exchange_ts", "ts"):
                assert row[name].value == want[name], name
    assert seen == len(expected)


def test_closed_candles_are_written_once_per_open_time(
    tape_path: Callable[[str], Path], tmp_path: Path
) -> None:
    candles = [
        ev
        for _, ev in TapeReplayer(Tape.open(tape_path(COINBASE_TAPE))).events()
        if isinstance(ev, Candle)
    ]
    closed = {(c.symbol, c.interval, c.open_ts_ns) for c in candles if c.closed}
    assert len(closed) > 20
    sink = ParquetSink(tmp_path, venue="coinbase", channels=["candles"], flush_seconds=None)
    sink.open()
    for candle in candles + candles:  # every candle twice: a reconnect that repeats history
        sink.on_candle(candle)
    sink.finish()
    table = read_table(tmp_path, "candles")
    keys = [(row["symbol"], row["interval"], row["open_time"].value) for row in table.to_pylist()]
    assert sorted(keys) == sorted(closed)
    assert sink.stats()["candle_repeats"] >= len(closed)


# -- every table, three readers -------------------------------------------------------------


def test_trades_read_back_exactly_with_pyarrow_pandas_and_polars(
    eth_export: Path, tape_path: Callable[[str], Path]
) -> None:
    want = [
        (
            str(d["t"]),
            "sell" if d["m"] else "buy",
            d["p"],
            d["q"],
            d["T"] * 1_000_000,
            ts_ns,
        )
        for ts_ns, frame in tape_frames(tape_path(ETH_TAPE))
        if (d := frame["data"]).get("e") == "trade"
    ]
    assert len(want) == 6106
    where = partition(eth_export, "trades", "binance", "ETHUSDT")

    arrow = pq.read_table(where)
    assert arrow.schema.field("price").type == pa.decimal128(18, 8)
    assert arrow.schema.field("size").type == pa.decimal128(18, 8)
    assert arrow.schema.field("exchange_ts").type == TS_UTC
    assert arrow.schema.field("ts").type == TS_UTC
    got_arrow = [
        (
            r["trade_id"],
            r["side"],
            str(r["price"]),
            str(r["size"]),
            r["exchange_ts"].value,
            r["ts"].value,
        )
        for r in arrow.to_pylist()
    ]
    assert got_arrow == want

    frame = pd.read_parquet(where)
    assert str(frame["ts"].dtype) == "datetime64[ns, UTC]"
    assert str(frame["exchange_ts"].dtype) == "datetime64[ns, UTC]"
    assert isinstance(frame["price"].iloc[0], Decimal)
    got_pandas = list(
        zip(
            frame["trade_id"],
            frame["side"],
            (str(v) for v in frame["price"]),
            (str(v) for v in frame["size"]),
            (t.value for t in frame["exchange_ts"]),
            (t.value for t in frame["ts"]),
            strict=True,
        )
    )
    assert got_pandas == want

    lazy = pl.scan_parquet(where / "**" / "*.parquet", hive_partitioning=True)
    polars = lazy.collect()
    assert polars.schema["price"] == pl.Decimal(18, 8)
    assert polars.schema["ts"] == pl.Datetime("ns", "UTC")
    got_polars = list(
        zip(
            polars["trade_id"].to_list(),
            polars["side"].to_list(),
            (str(v) for v in polars["price"].to_list()),
            (str(v) for v in polars["size"].to_list()),
            polars["exchange_ts"].dt.epoch("ns").to_list(),
            polars["ts"].dt.epoch("ns").to_list(),
            strict=True,
        )
    )
    assert got_polars == want


def words(text: str) -> list[str]:
    return text.split()


def test_every_table_has_its_columns_in_all_three_readers(
    eth_export: Path, kline_export: Path
) -> None:
    tables = {
        "book": (eth_export, "binance", "ETHUSDT"),
        "book_snapshot_25": (eth_export, "binance", "ETHUSDT"),
        "trades": (eth_export, "binance", "ETHUSDT"),
        "candles": (kline_export, "binance-usdm", "KEEPUSDT"),
    }
    levels = [
        f"{side}_{what}_{i}"
        for i in range(25)
        for side, what in (("bid", "price"), ("bid", "size"), ("ask", "price"), ("ask", "size"))
    ]
    columns = {
        "book": words("venue symbol is_snapshot side price size seq exchange_ts ts"),
        "trades": words("venue symbol trade_id side price size exchange_ts ts is_snapshot"),
        "candles": words(
            "venue symbol interval open_time close_time open high low close volume trades "
            "exchange_ts ts"
        ),
        "book_snapshot_25": ["venue", "symbol", "seq", "exchange_ts", "ts", *levels],
    }
    for channel, (root, venue, symbol) in tables.items():
        where = partition(root, channel, venue, symbol)
        arrow = ds.dataset(where, format="parquet").to_table()
        assert arrow.column_names == columns[channel], channel
        assert arrow.num_rows > 0
        frame = pd.read_parquet(where)
        assert list(frame.columns) == [*columns[channel], "date"], channel
        assert len(frame) == arrow.num_rows
        assert set(frame["symbol"]) == {symbol} and set(frame["venue"]) == {venue}
        polars = pl.scan_parquet(where / "**" / "*.parquet", hive_partitioning=True).collect()
        # polars adds every key=value directory of the path as a column.
        assert polars.columns == [*columns[channel], "channel", "date"], channel
        assert polars.height == arrow.num_rows
        for name, dtype in polars.schema.items():
            if name in ("price", "size", "open", "volume", "bid_price_0", "ask_size_24"):
                assert isinstance(dtype, pl.Decimal), (channel, name)
            if name in ("ts", "exchange_ts", "open_time", "close_time"):
                assert dtype == pl.Datetime("ns", "UTC"), (channel, name)


# -- books ----------------------------------------------------------------------------------


class RebuiltSide:
    """One side of a book rebuilt from incremental rows, kept sorted best first."""

    def __init__(self, descending: bool) -> None:
        self.sign = -1 if descending else 1
        self.keys: list[Decimal] = []
        self.sizes: dict[Decimal, Decimal] = {}

    def clear(self) -> None:
        self.keys.clear()
        self.sizes.clear()

    def set(self, price: Decimal, size: Decimal) -> None:
        key = self.sign * price
        if size == 0:
            if price in self.sizes:
                del self.sizes[price]
                self.keys.pop(bisect.bisect_left(self.keys, key))
            return
        if price not in self.sizes:
            bisect.insort(self.keys, key)
        self.sizes[price] = size

    def top(self, n: int) -> list[list[Decimal]]:
        return [[self.sign * k, self.sizes[self.sign * k]] for k in self.keys[:n]]


def replay_lines(tape: Path, depth: int) -> list[dict[str, Any]]:
    result = lobfeed("replay", str(tape), "--depth", str(depth))
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if '"bids"' in line]


def as_decimals(levels: list[list[str]]) -> list[list[Decimal]]:
    return [[Decimal(p), Decimal(s)] for p, s in levels]


def check_rebuilt_books(book: pa.Table, lines: list[dict[str, Any]], depth: int) -> int:
    """Applies the rows in order; after the rows of each replay line's seq (or earlier), the
    rebuilt top ``depth`` levels must equal that line. Returns how many updates had rows."""
    bids, asks = RebuiltSide(descending=True), RebuiltSide(descending=False)
    seqs = book.column("seq").to_pylist()
    snaps = book.column("is_snapshot").to_pylist()
    sides = book.column("side").to_pylist()
    prices = book.column("price").to_pylist()
    sizes = book.column("size").to_pylist()
    i, n = 0, len(seqs)
    for line in lines:
        while i < n and seqs[i] <= line["seq"]:
            if snaps[i] and (i == 0 or seqs[i - 1] != seqs[i] or not snaps[i - 1]):
                bids.clear()  # a book written whole replaces the one before
                asks.clear()
            (bids if sides[i] == "bid" else asks).set(prices[i], sizes[i])
            i += 1
        assert bids.top(depth) == as_decimals(line["bids"]), line["seq"]
        assert asks.top(depth) == as_decimals(line["asks"]), line["seq"]
    assert i == n, "rows after the last replayed update"
    return len(set(seqs))


def test_incremental_l2_rebuilds_the_books_of_lobfeed_replay(
    eth_export: Path, tape_path: Callable[[str], Path]
) -> None:
    lines = replay_lines(tape_path(ETH_TAPE), 25)
    assert len(lines) == 3433
    book = pq.read_table(partition(eth_export, "book", "binance", "ETHUSDT"))
    assert book.schema.field("price").type == pa.decimal128(18, 8)
    assert book.column("is_snapshot").to_pylist().count(True) > 1000  # the REST snapshot
    updates_with_rows = check_rebuilt_books(book, lines, 25)
    # All but the updates that left every level as it was (a resent size) have rows.
    assert len(lines) - 5 < updates_with_rows <= len(lines)


def test_book_snapshots_equal_the_replay_lines_at_their_seq(
    eth_export: Path, tape_path: Callable[[str], Path]
) -> None:
    lines = {line["seq"]: line for line in replay_lines(tape_path(ETH_TAPE), 25)}
    rows = pq.read_table(partition(eth_export, "book_snapshot_25", "binance", "ETHUSDT"))
    assert rows.num_rows > 3000
    previous = None
    for row in rows.to_pylist():
        line = lines[row["seq"]]
        assert row["ts"].value == line["ts_ns"]
        for side in ("bid", "ask"):
            got = [
                [str(row[f"{side}_price_{i}"]), str(row[f"{side}_size_{i}"])]
                for i in range(25)
                if row[f"{side}_price_{i}"] is not None
            ]
            assert got == line[f"{side}s"], row["seq"]
        top = (line["bids"], line["asks"])
        assert top != previous  # a row only when the top 25 changed
        previous = top


def test_a_depth_limit_writes_the_top_levels_exactly(
    tape_path: Callable[[str], Path], tmp_path: Path
) -> None:
    tape = tape_path("binance-coinm-ethusd_perp-20240808.jsonl.gz")
    export(tape, tmp_path, "--depth", "10", "--channels", "book")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["channel=book"]
    book = read_table(tmp_path, "book")
    lines = replay_lines(tape, 10)
    assert len(lines) > 20_000
    updates_with_rows = check_rebuilt_books(book, lines, 10)
    # Updates beyond the top 10 write nothing.
    assert 1000 < updates_with_rows < len(lines)


def test_timed_book_snapshots_take_the_first_update_of_each_period(
    tape_path: Callable[[str], Path], tmp_path: Path
) -> None:
    tape = tape_path(ETH_TAPE)
    export(tape, tmp_path, "--channels", "book_snapshot", "--snapshot-every-ms", "1000")
    rows = read_table(tmp_path, "book_snapshot_25").to_pylist()
    seconds = [row["ts"].value // 1_000_000_000 for row in rows]
    assert seconds == sorted(set(seconds))  # one row a second at most
    # ... and in every second with an update, the row of its first update.
    firsts: dict[int, int] = {}
    for line in replay_lines(tape, 25):
        firsts.setdefault(line["ts_ns"] // 1_000_000_000, line["seq"])
    assert [row["seq"] for row in rows] == [firsts[s] for s in sorted(firsts)]


# -- files ----------------------------------------------------------------------------------


def test_files_roll_by_tape_time_one_row_group_per_flush(
    tape_path: Callable[[str], Path], tmp_path: Path
) -> None:
    export(
        tape_path(ETH_TAPE),
        tmp_path,
        "--channels",
        "trades",
        "--roll-seconds",
        "60",
        "--flush-rows",
        "500",
    )
    files = dataset_files(tmp_path, "trades")
    # About six minutes of tape: six or seven files of a minute, not one a flush.
    assert 5 <= len(files) <= 8
    total = 0
    for path in files:
        meta = pq.ParquetFile(path).metadata
        assert meta.num_row_groups >= 1
        assert all(meta.row_group(i).num_rows <= 500 for i in range(meta.num_row_groups))
        ts = pq.read_table(path, columns=["ts"]).column("ts").to_pylist()
        assert (ts[-1] - ts[0]).total_seconds() < 120
        total += meta.num_rows
    assert total == 6106
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]


def test_a_value_with_more_digits_starts_a_wider_file(
    tape_path: Callable[[str], Path], tmp_path: Path
) -> None:
    trades = [
        ev
        for _, ev in TapeReplayer(Tape.open(tape_path(COINBASE_TAPE))).events()
        if isinstance(ev, Trade)
    ]
    # Coinbase trims trailing zeros: "65091" and "65095.58" are the same market.
    scales = {len(t.price.partition(".")[2]) for t in trades}
    assert len(scales) > 1
    sink = ParquetSink(
        tmp_path, channels=["trades"], flush_rows=1, flush_seconds=None, when_full="wait"
    )
    sink.open()
    for trade in trades:
        sink.on_trade(trade)
    sink.finish()
    stats = sink.stats()
    assert stats["decimal_widenings"] >= 1
    assert stats["rows_dropped"] == 0
    table = read_table(tmp_path, "trades")
    assert table.num_rows == len(trades)
    got = {(r["symbol"], r["trade_id"]): (r["price"], r["size"]) for r in table.to_pylist()}
    for t in trades:
        assert got[(t.symbol, t.trade_id)] == (Decimal(t.price), Decimal(t.size))
    # read_table's unified types also suit polars, whatever the files' own types.
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    assert isinstance(frame.schema["price"], pl.Decimal)


def test_a_full_queue_drops_and_counts_instead_of_waiting(
    tape_path: Callable[[str], Path], tmp_path: Path
) -> None:
    trades = [
        ev
        for _, ev in TapeReplayer(Tape.open(tape_path(ETH_TAPE))).events()
        if isinstance(ev, Trade)
    ]
    # One batch a trade and room for one batch: the writer cannot keep up with a loop that
    # hands it 6106 batches at once, and the loop must not wait for it.
    sink = ParquetSink(
        tmp_path, channels=["trades"], flush_rows=1, flush_seconds=None, max_queued_batches=1
    )
    sink.open()
    for trade in trades:
        sink.on_trade(trade)
    sink.finish()
    stats = sink.stats()
    assert stats["rows_dropped"] > 0
    assert stats["batches_dropped"] == stats["rows_dropped"]
    assert stats["rows_written"] + stats["rows_dropped"] == len(trades)
    assert read_table(tmp_path, "trades").num_rows == stats["rows_written"]


def test_bad_arguments_are_config_errors_naming_the_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'quotes'"):
        ParquetSink(tmp_path, channels=["book", "quotes"])
    with pytest.raises(ConfigError, match="roll_seconds"):
        ParquetSink(tmp_path, roll_seconds=0)
    with pytest.raises(ConfigError, match="depth"):
        ParquetSink(tmp_path, depth=0)
    with pytest.raises(ConfigError, match="flush_rows"):
        ParquetSink(tmp_path, flush_rows=-1)
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="not a directory"):
        ParquetSink(tmp_path / "file")
    with pytest.raises(ConfigError, match="channel 'book'"):
        read_table(tmp_path, "book")


# -- a live feed ----------------------------------------------------------------------------


async def test_a_live_feed_writes_what_export_writes(
    tape_path: Callable[[str], Path], eth_export: Path, tmp_path: Path
) -> None:
    sink = ParquetSink(tmp_path, venue="binance")
    await sink.start()
    callbacks = feed_callbacks([sink])
    async with ExchangeServer(Tape.open(tape_path(ETH_TAPE)), speed=float("inf")) as server:
        feed = Feed(
            "binance",
            ["ETHUSDT"],
            channels=("book", "trades"),
            ws_url=server.ws_url,
            rest_url=server.rest_url,
            reconnect=False,
            on_book=callbacks["on_book"],
            on_trade=callbacks["on_trade"],
            on_event=callbacks["on_event"],
            on_status=callbacks["on_status"],
        )
        await asyncio.wait_for(feed.run(), TIMEOUT)
    await sink.close()
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]
    assert sink.stats()["rows_dropped"] == 0
    # Trades: the rows export writes, but for the receive times (and so the dates).
    live, exported = (
        pq.read_table(partition(root, "trades", "binance", "ETHUSDT")).drop_columns(["ts", "date"])
        for root in (tmp_path, eth_export)
    )
    assert live.equals(exported)
    # Books: the local exchange serves the snapshot of the moment the feed asks, so the live
    # book starts later in the tape than the export's; from there on it is the same book.
    book = pq.read_table(partition(tmp_path, "book", "binance", "ETHUSDT"))
    first = book.column("seq")[0].as_py()
    lines = [line for line in replay_lines(tape_path(ETH_TAPE), 25) if line["seq"] >= first]
    assert len(lines) > 1000
    check_rebuilt_books(book, lines, 25)
    by_seq = {line["seq"]: line for line in lines}
    for row in pq.read_table(partition(tmp_path, "book_snapshot_25", "binance", "ETHUSDT"))[
        :200
    ].to_pylist():
        line = by_seq[row["seq"]]
        assert [str(row["bid_price_0"]), str(row["bid_size_0"])] == line["bids"][0]
        assert [str(row["ask_price_24"]), str(row["ask_size_24"])] == line["asks"][24]
    with pytest.raises(ConfigError, match="finished"):
        sink.on_trade(
            next(
                ev
                for _, ev in TapeReplayer(Tape.open(tape_path(ETH_TAPE))).events()
                if isinstance(ev, Trade)
            )
        )


# -- a live feed, killed --------------------------------------------------------------------

RECORDER = textwrap.dedent(
    """
    import asyncio, sys
    from lobfeed import Feed
    from lobfeed.sinks import feed_callbacks
    from lobfeed.sinks.parquet import ParquetSink

    async def main(ws_url, rest_url, out):
        sink = ParquetSink(out, venue="binance", roll_seconds=0.5, flush_seconds=0.1)
        await sink.start()
        feed = Feed(
            "binance", ["ETHUSDT"], channels=("book", "trades"), ws_url=ws_url,
            rest_url=rest_url, **feed_callbacks([sink]),
        )
        print("recording", flush=True)
        await feed.run()

    asyncio.run(main(*sys.argv[1:4]))
    """
)


async def _read_urls(stdout: asyncio.StreamReader) -> tuple[str, str]:
    ws_url = rest_url = None
    while ws_url is None or rest_url is None:
        line = (await asyncio.wait_for(stdout.readline(), TIMEOUT)).decode()
        assert line, "lobfeed serve exited before printing its URLs"
        if "websocket:" in line:
            ws_url = line.split()[-1]
        if "rest:" in line:
            rest_url = line.split()[-1]
    return ws_url, rest_url


def _complete_and_temporary(root: Path) -> tuple[list[Path], list[Path]]:
    paths = [p for p in root.rglob("*") if p.is_file()]
    return (
        [p for p in paths if p.suffix == ".parquet" and not p.name.startswith(".")],
        [p for p in paths if p.name.startswith(".")],
    )


async def test_sigkilled_recorder_leaves_every_closed_file_readable(
    tape_path: Callable[[str], Path], tmp_path: Path
) -> None:
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lobfeed",
        "serve",
        str(tape_path(ETH_TAPE)),
        "--port",
        "0",
        "--speed",
        "5",
        stdout=asyncio.subprocess.PIPE,
    )
    out = tmp_path / "data"
    recorder: asyncio.subprocess.Process | None = None
    try:
        assert server.stdout is not None
        ws_url, rest_url = await _read_urls(server.stdout)
        recorder = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            RECORDER,
            ws_url,
            rest_url,
            str(out),
            stdout=asyncio.subprocess.PIPE,
        )
        # Freeze the recorder once several files are closed while others are being written,
        # check that it is so while it cannot move, then kill it.
        deadline = time.monotonic() + TIMEOUT
        while True:
            assert time.monotonic() < deadline, "the recorder never had files closed and open"
            assert recorder.returncode is None, "the recorder exited"
            closed, temporary = _complete_and_temporary(out)
            if len(closed) >= 4 and temporary:
                os.kill(recorder.pid, signal.SIGSTOP)
                closed, temporary = _complete_and_temporary(out)
                if len(closed) >= 4 and temporary:
                    break
                os.kill(recorder.pid, signal.SIGCONT)
            await asyncio.sleep(0.05)
        os.kill(recorder.pid, signal.SIGKILL)
        assert await asyncio.wait_for(recorder.wait(), TIMEOUT) == -signal.SIGKILL
    finally:
        for proc in (recorder, server):
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()

    closed, temporary = _complete_and_temporary(out)
    assert len(closed) >= 4 and temporary
    rows = 0
    for path in closed:
        rows += pq.read_table(path).num_rows  # every closed file is whole
    assert rows > 0
    for path in temporary:
        assert path.name.endswith(".parquet.tmp")
        with pytest.raises(pa.ArrowInvalid):
            pq.read_table(path)  # no footer: it was being written
    for channel in ("book", "book_snapshot_25", "trades"):
        where = out / f"channel={channel}"
        if not where.exists():
            continue
        # Discovery as pandas does it: venue and symbol are dictionary columns in the files.
        hive = ds.HivePartitioning.discover(infer_dictionary=True)
        dataset = ds.dataset(where, format="parquet", partitioning=hive)
        assert not [f for f in dataset.files if Path(f).name.startswith(".")]
        assert dataset.to_table().num_rows > 0
        assert len(pd.read_parquet(where)) > 0
        assert pl.scan_parquet(where / "**" / "*.parquet").collect().height > 0
