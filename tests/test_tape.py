"""lobfeed-tape/1 reader and writer."""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

import lobfeed
from conftest import MORE_TAPES
from lobfeed.exceptions import ConfigError, LobfeedError, TapeFormatError
from lobfeed.tape import (
    DEFAULT_LOAD_BYTES,
    DEFAULT_MAX_LINE_BYTES,
    FORMAT,
    Recording,
    Tape,
    TapeHeader,
    TapeRecord,
    TapeWriter,
)

# name -> (venue, recv records, http records), as the tape README's table gives them
# (http only where the table lists it).
README_TABLE: dict[str, tuple[str, int, int | None]] = {
    "binance-spot-4sym-2021.jsonl.gz": ("binance", 265, 4),
    "binance-usdm-4sym-2021.jsonl.gz": ("binance-usdm", 1535, 4),
    "binance-coinm-10sym-2021.jsonl.gz": ("binance-coinm", 4371, 10),
    "binance-ethusdt-20240808.jsonl.gz": ("binance", 33617, 1),
    "binance-usdm-ethusdt-20240808.jsonl.gz": ("binance-usdm", 74654, 1),
    "binance-coinm-ethusd_perp-20240808.jsonl.gz": ("binance-coinm", 40453, 1),
    "bybit-2026.jsonl.gz": ("bybit", 3227, None),
    "okx-books-3inst-2022.jsonl.gz": ("okx", 410, None),
    "kraken-v1-book1000-10sym-2021.jsonl.gz": ("kraken", 4430, None),
    "coinbase-2026.jsonl.gz": ("coinbase", 1030, None),
    "gemini-v2-l2-10sym-2021.jsonl.gz": ("gemini", 678, None),
    "bitfinex-book-p0-7sym-2021.jsonl.gz": ("bitfinex", 1693, None),
}

HEADER = b'{"type":"header","format":"lobfeed-tape/1","venue":"binance"}\n'
RECV = b'{"type":"recv","ts_ns":5,"conn":"c1","data":"{}"}\n'


def write_session(writer: TapeWriter) -> list[TapeRecord]:
    frame = '{"stream":"btcusdt@trade","data":{"e":"trade","p":"1.50","q":"2"}}'
    return [
        writer.open("c1", "wss://stream.binance.com:9443/stream?streams=btcusdt@trade", 100),
        writer.send("c1", '{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}', 101),
        writer.recv("c1", '{"result":null,"id":1}', 102),
        writer.recv("c1", frame, 1_723_161_254_024_619_568),
        # escapes, non-ASCII and odd spacing must survive byte for byte
        writer.recv("c1", '{ "a" : "tab\\t quote\\" é 日本 \\u00e9" }', 1_723_161_254_024_619_569),
        writer.http("https://api.binance.com/api/v3/depth?symbol=BTCUSDT", '{"bids":[]}', 103),
        writer.close("c1", 104),
    ]


@pytest.mark.parametrize("name", ["t.jsonl.gz", "t.jsonl"])
def test_round_trip(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with TapeWriter(
        path, "binance", source="unit test", license="MIT", note="n", captured="2024-08-08"
    ) as writer:
        written = write_session(writer)
    assert writer.closed
    raw = path.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == name.endswith(".gz")

    tape = Tape.open(path)
    assert tape.header == TapeHeader(
        venue="binance",
        format=FORMAT,
        captured="2024-08-08",
        source="unit test",
        license="MIT",
        note="n",
        extra={},
    )
    assert tape.records == written
    assert [r.line for r in tape.records] == list(range(2, 2 + len(written)))
    assert [r.type for r in tape.iter_records("recv", "http")] == ["recv"] * 3 + ["http"]
    assert list(tape.iter_records()) == written
    http = tape.records[5]
    assert (http.conn, http.url, http.data) == (
        None,
        "https://api.binance.com/api/v3/depth?symbol=BTCUSDT",
        '{"bids":[]}',
    )


def test_writer_key_order_and_compact_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    with TapeWriter(path, "binance", note="hello") as writer:
        write_session(writer)
    lines = path.read_bytes().splitlines()
    header = b'{"type":"header","format":"lobfeed-tape/1","venue":"binance","note":"hello"}'
    assert lines[0] == header
    keys = [list(orjson.loads(line)) for line in lines[1:]]
    assert keys == [
        ["type", "ts_ns", "conn", "url"],
        ["type", "ts_ns", "conn", "data"],
        ["type", "ts_ns", "conn", "data"],
        ["type", "ts_ns", "conn", "data"],
        ["type", "ts_ns", "conn", "data"],
        ["type", "ts_ns", "url", "data"],
        ["type", "ts_ns", "conn"],
    ]


def test_writer_extra_header_fields_and_default_time(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl.gz"
    with TapeWriter(path, "okx", extra={"tool": "recorder 1.0"}) as writer:
        record = writer.recv("c1", "x")
    tape = Tape.open(path)
    assert tape.header.extra == {"tool": "recorder 1.0"}
    assert tape.header.note is None
    assert tape.records == [record]
    assert record.ts_ns > 1_600_000_000 * 10**9
    with pytest.raises(ValueError):
        writer.recv("c1", "after finish")
    with pytest.raises(ValueError):
        TapeWriter(tmp_path / "bad.jsonl", "okx", extra={"venue": "x"})


def test_gzip_detected_by_magic_not_name(tmp_path: Path) -> None:
    plain_named_gz = tmp_path / "plain.jsonl.gz"
    plain_named_gz.write_bytes(HEADER + RECV)
    gz_named_plain = tmp_path / "gz.jsonl"
    gz_named_plain.write_bytes(gzip.compress(HEADER + RECV))
    for path in (plain_named_gz, gz_named_plain):
        tape = Tape.open(path)
        assert tape.venue == "binance"
        assert tape.records == [TapeRecord(2, "recv", 5, "c1", None, "{}")]


@pytest.mark.parametrize(
    ("content", "line", "words"),
    [
        (b"", 1, "empty"),
        (b"\n" + RECV, 1, "header"),
        (b"not json\n", 1, "JSON"),
        (b"[1,2]\n", 1, "object"),
        (RECV, 1, "header"),
        (b'{"type":"header","format":"lobfeed-tape/2","venue":"binance"}\n', 1, "format"),
        (b'{"type":"header","venue":"binance"}\n', 1, "format"),
        (b'{"type":"header","format":"lobfeed-tape/1"}\n', 1, "venue"),
        (b'{"type":"header","format":"lobfeed-tape/1","venue":"x","note":3}\n', 1, "note"),
        (HEADER + RECV + b'{"type":"recv","ts_ns":6,"conn":"c1","data":"{}"\n', 3, "JSON"),
        (HEADER + RECV + RECV + b'{"type":"recv","conn":"c1","data":"x"}\n', 4, "ts_ns"),
        (HEADER + b'{"type":"recv","ts_ns":"5","conn":"c1","data":"x"}\n', 2, "ts_ns"),
        (HEADER + b'{"type":"recv","ts_ns":true,"conn":"c1","data":"x"}\n', 2, "ts_ns"),
        (HEADER + b'{"type":"recv","ts_ns":5,"data":"x"}\n', 2, "conn"),
        (HEADER + b'{"type":"recv","ts_ns":5,"conn":"c1","data":{"a":1}}\n', 2, "data"),
        (HEADER + b'{"type":"http","ts_ns":5,"data":"x"}\n', 2, "url"),
        (HEADER + b'{"type":"open","ts_ns":5,"conn":"c1"}\n', 2, "url"),
        (HEADER + b'{"type":"ping","ts_ns":5,"conn":"c1"}\n', 2, "type"),
        (HEADER + RECV + HEADER, 3, "header"),
        (HEADER + b"42\n", 2, "object"),
    ],
)
def test_format_errors_name_file_and_line(
    tmp_path: Path, content: bytes, line: int, words: str
) -> None:
    for path, data in ((tmp_path / "t.jsonl", content), (tmp_path / "t.jsonl.gz", content)):
        path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
        with pytest.raises(TapeFormatError) as info:
            # open() checks line 1; a record is checked when the iteration reaches it.
            list(Tape.open(path).iter_records())
        message = str(info.value)
        assert str(path) in message
        assert f"line {line}:" in message
        assert words in message


def test_format_error_types_and_damaged_gzip(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl.gz"
    path.write_bytes(gzip.compress(HEADER + RECV)[:-12])  # truncated member
    # The header is whole: only reading the records meets the cut, which strict reading refuses.
    tape = Tape.open(path, strict=True)
    with pytest.raises(TapeFormatError) as info:
        _ = tape.records
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, LobfeedError)
    assert str(path) in str(info.value)
    assert "damaged gzip data after line 1" in str(info.value)
    # By default the reader keeps what is whole (the header) and says what it dropped.
    tape = Tape.open(path)
    assert tape.damage is None
    assert tape.records == []
    assert tape.damage is not None
    assert tape.damage.last_line == 1
    assert "cut short" in tape.damage.reason
    assert 0 < tape.dropped_bytes < len(RECV)


def test_blank_lines_are_skipped_but_counted(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(HEADER + b"\n" + RECV + b"\n")
    assert [r.line for r in Tape.open(path).records] == [3]


def test_unknown_header_keys_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"type":"header","format":"lobfeed-tape/1","venue":"okx","rig":"a"}\n')
    header = Tape.open(path).header
    assert header.extra == {"rig": "a"}
    assert (header.captured, header.source, header.license, header.note) == (None,) * 4


@pytest.mark.parametrize("name", sorted(README_TABLE))
def test_real_tapes(tape_path: Callable[[str], Path], name: str) -> None:
    venue, n_recv, n_http = README_TABLE[name]
    tape = Tape.open(tape_path(name))
    assert tape.header.format == FORMAT
    assert tape.venue == venue
    assert tape.header.license and tape.header.source
    counts = Counter(record.type for record in tape.records)
    assert counts["recv"] == n_recv
    if n_http is not None:
        assert counts["http"] == n_http
    assert counts["open"] >= 1
    assert set(counts) <= {"open", "send", "recv", "http", "close"}
    stamps = [record.ts_ns for record in tape.records]
    assert stamps == sorted(stamps), "records are in receive order"
    assert tape.records[0].line == 2
    for record in tape.iter_records("recv", "send"):
        assert record.conn is not None and record.data is not None


def test_real_tape_copy_round_trips(tape_path: Callable[[str], Path], tmp_path: Path) -> None:
    original = Tape.open(tape_path("binance-spot-4sym-2021.jsonl.gz"))
    copy = tmp_path / "copy.jsonl.gz"
    h = original.header
    with TapeWriter(
        copy, h.venue, source=h.source, license=h.license, note=h.note, captured=h.captured
    ) as writer:
        for record in original.records:
            if record.type == "open":
                assert record.conn is not None and record.url is not None
                writer.open(record.conn, record.url, record.ts_ns)
            elif record.type == "recv":
                assert record.conn is not None and record.data is not None
                writer.recv(record.conn, record.data, record.ts_ns)
            elif record.type == "http":
                assert record.url is not None and record.data is not None
                writer.http(record.url, record.data, record.ts_ns)
    again = Tape.open(copy)
    assert again.header == original.header
    assert again.records == original.records


# -- bounded reading ----------------------------------------------------------------------------

# name -> (records, (line, type, ts_ns) of the first and of the last record, sha256 of the
# records' reprs in order), computed with the reader that loaded whole files into memory, before
# reading was streamed.
READ_WHOLE: dict[str, tuple[int, tuple[int, str, int], tuple[int, str, int], str]] = {
    "binance-coinm-10sym-2021.jsonl.gz": (
        4382,
        (2, "open", 1626916402990619000),
        (4383, "recv", 1626916434018962900),
        "65cb819a5857e9643ba2bbdc958d7d47cf8b08fa8a7edc4385550bb33046392b",
    ),
    "binance-coinm-ethusd_perp-20240808.jsonl.gz": (
        40455,
        (2, "open", 1723161256172210765),
        (40456, "recv", 1723161599988365384),
        "6b36fe0a38ffe19babcfd1cfe1c8d46c8750400519e7826229cf004810e54bfc",
    ),
    "binance-ethusdt-20240808.jsonl.gz": (
        33619,
        (2, "open", 1723161254024619567),
        (33620, "recv", 1723161599900862584),
        "ecb5eb91ab63f3130e9c852140602e1edcf4f5df59801ba55e901273ddd0d176",
    ),
    "binance-spot-4sym-2021.jsonl.gz": (
        270,
        (2, "open", 1633998511159679000),
        (271, "recv", 1633998542077861800),
        "632a5e071852759d04d9d5c9053407680d55d9b0dc98548280ad969e84993ee8",
    ),
    "binance-usdm-4sym-2021.jsonl.gz": (
        1540,
        (2, "open", 1626992740179554000),
        (1541, "recv", 1626992771201806000),
        "9260b4afbb73488df41909dfe94514bdc7800cef453f858fadd5b234592f6439",
    ),
    "binance-usdm-ethusdt-20240808.jsonl.gz": (
        74656,
        (2, "open", 1723161255088156766),
        (74657, "recv", 1723161599881488984),
        "7417427b33fe6ba9146a2e0833ff531e078cee686f55076b556a228c2756a675",
    ),
    "bitfinex-book-p0-7sym-2021.jsonl.gz": (
        1716,
        (2, "open", 1618677543367689000),
        (1717, "recv", 1618677574520494000),
        "6c5f0ffe07714ce95eba4fdf6749c367a0799ba992ffc0e582899bdb6e42ca44",
    ),
    "bybit-2026.jsonl.gz": (
        3255,
        (2, "http", 1786310817601629000),
        (3256, "recv", 1786310862023875000),
        "fd008d0a2d80cb99d7cae4fd7bf2d3f4b140510e5a2316b4306a9a457966728c",
    ),
    "coinbase-2026.jsonl.gz": (
        1037,
        (2, "http", 1786309548026294000),
        (1038, "recv", 1786309572876037800),
        "a2e93644842b83ebfc111c6624d8c6698ca816f2dca2e173e1e96be6d97f3cd0",
    ),
    "gemini-v2-l2-10sym-2021.jsonl.gz": (
        680,
        (2, "open", 1624493666449392800),
        (681, "recv", 1624493697365676000),
        "da5f7123f95f0c728ebfff24915390109c8d6c6517a3e2ec59554c6002158887",
    ),
    "kraken-v1-book1000-10sym-2021.jsonl.gz": (
        4436,
        (2, "open", 1618678132368463000),
        (4437, "recv", 1618678163372861900),
        "6d3159804381232e110e1121622fb676c0810d0de645bf14c75669650a5967e2",
    ),
    "okx-books-3inst-2022.jsonl.gz": (
        414,
        (2, "open", 1652459224530060500),
        (415, "recv", 1652459236341644500),
        "8c9ed6927d43eccc49d0ed3721b2b95e51ae039d39c3274fec22c9708527f15a",
    ),
}

RECORD_START = b'{"type":"recv","ts_ns":1,"conn":"c1","data":"'
MIB = 1 << 20
RSS_BOUND_MB = 200

# Run in a fresh interpreter so that the peak RSS it reports is the reading's alone.
RSS_PROBE = """
import json, resource, sys
from lobfeed.tape import Tape, TapeFormatError

def peak_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

before = peak_kb()
tape = Tape.open(sys.argv[1])
opened = peak_kb()
try:
    for _ in tape.iter_records():
        pass
    error = None
except TapeFormatError as exc:
    error = str(exc)
print(json.dumps({"open_mb": (opened - before) / 1024, "read_mb": (peak_kb() - before) / 1024,
                  "error": error}))
"""


def measure_reading(path: Path) -> dict[str, Any]:
    """Open ``path`` and iterate over its records in a child process: RSS growth and error."""
    package_root = Path(lobfeed.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(package_root)}
    done = subprocess.run(
        [sys.executable, "-c", RSS_PROBE, str(path)],
        env=env,
        capture_output=True,
        check=True,
        timeout=120,
    )
    result: dict[str, Any] = orjson.loads(done.stdout)
    return result


def write_line_bomb(path: Path, gib: int) -> None:
    """A gzip tape whose line 2 decompresses to ``gib`` GiB, from about ``gib`` MB of file.

    Deflate cannot shrink data much more than 1000:1, so one compressed block of 16 MiB is
    written again and again: gzip members concatenated decompress as one stream, and nothing
    large is ever built in memory.
    """
    block = gzip.compress(b"a" * (16 * MIB), compresslevel=9, mtime=0)
    with path.open("wb") as out:
        out.write(gzip.compress(HEADER + RECORD_START, mtime=0))
        for _ in range(gib * 64):
            out.write(block)


def write_plain_long_line(path: Path, mib: int) -> None:
    """A plain tape whose line 2 is a valid recv record ``mib`` MiB long, written piece by piece."""
    piece = b"a" * MIB
    with path.open("wb") as out:
        out.write(HEADER + RECORD_START)
        for _ in range(mib):
            out.write(piece)
        out.write(b'"}\n')


def test_gzip_bomb_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "bomb.jsonl.gz"
    write_line_bomb(path, 4)
    assert path.stat().st_size < 5 * MIB
    result = measure_reading(path)
    assert result["error"] is not None, "the bomb was read to its end"
    assert result["error"].startswith(f"{path}, line 2: the line is longer than")
    assert f"max_line_bytes={DEFAULT_MAX_LINE_BYTES:,}" in result["error"]
    assert result["open_mb"] < 10, result
    assert result["read_mb"] < RSS_BOUND_MB, result


def test_200_mb_line_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    write_plain_long_line(path, 200)
    result = measure_reading(path)
    assert result["error"] is not None
    assert result["error"].startswith(f"{path}, line 2: the line is longer than")
    assert result["read_mb"] < RSS_BOUND_MB, result


def test_many_lines_bomb_stops_at_max_bytes(tmp_path: Path) -> None:
    path = tmp_path / "lines.jsonl.gz"
    block = gzip.compress(RECV * (MIB // len(RECV)), compresslevel=9, mtime=0)
    with path.open("wb") as out:
        out.write(gzip.compress(HEADER, mtime=0))
        for _ in range(1024):  # 1 GiB of valid records
            out.write(block)
    limit = 4 * MIB
    tape = Tape.open(path, max_bytes=limit)
    read = 0
    with pytest.raises(TapeFormatError) as info:
        for _ in tape.iter_records():
            read += 1
    # The limit falls inside the line after the last one read.
    expected_line = (limit - len(HEADER)) // len(RECV) + 2
    assert read == expected_line - 2
    message = str(info.value)
    assert message.startswith(f"{path}, line {expected_line}: the tape is larger than")
    assert f"max_bytes={limit:,}" in message
    with pytest.raises(TapeFormatError, match="iter_records"):
        _ = tape.records


def test_records_refuses_past_the_load_limit_by_default(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl.gz"
    # A 1 GiB line that the line limit lets through: loading must stop at the load limit,
    # partway into the line, rather than read the line whole first.
    write_line_bomb(path, 1)
    tape = Tape.open(path, max_line_bytes=1 << 40)
    assert tape.max_bytes is None
    with pytest.raises(TapeFormatError) as info:
        _ = tape.records
    message = str(info.value)
    assert message.startswith(f"{path}, line 2: the tape is larger than")
    assert f"max_bytes={DEFAULT_LOAD_BYTES:,}" in message
    assert "iter_records" in message


@pytest.mark.parametrize("length", [100, 5 * MIB // 2])
@pytest.mark.parametrize("newline", [b"\n", b""])
def test_line_limit_is_exact(tmp_path: Path, length: int, newline: bytes) -> None:
    line = RECORD_START + b"b" * (length - len(RECORD_START) - 2) + b'"}'
    assert len(line) == length
    for name, data in (
        ("t.jsonl", HEADER + RECV + line + newline),
        ("t.jsonl.gz", gzip.compress(HEADER + RECV + line + newline, mtime=0)),
    ):
        path = tmp_path / name
        path.write_bytes(data)
        records = list(Tape.open(path, max_line_bytes=length).iter_records())
        assert [r.line for r in records] == [2, 3]
        assert records[1].data == "b" * (length - len(RECORD_START) - 2)
        with pytest.raises(TapeFormatError) as info:
            list(Tape.open(path, max_line_bytes=length - 1).iter_records())
        assert str(info.value).startswith(f"{path}, line 3: the line is longer than")
        assert f"max_line_bytes={length - 1:,}" in str(info.value)


def test_long_header_line_is_refused_by_open(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"type":"header","format":"lobfeed-tape/1","venue":"' + b"x" * 5000 + b'"}')
    with pytest.raises(TapeFormatError, match=r", line 1: the line is longer than"):
        Tape.open(path, max_line_bytes=4096)
    assert Tape.open(path).venue == "x" * 5000


def test_limits_must_be_positive(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(HEADER + RECV)
    with pytest.raises(ValueError):
        Tape.open(path, max_line_bytes=0)
    with pytest.raises(ValueError):
        Tape.open(path, max_bytes=0)


def test_from_bytes_streams_with_the_same_limits() -> None:
    raw = gzip.compress(HEADER + RECV + RECV)
    tape = Tape.from_bytes(raw, "mem.jsonl.gz")
    assert [r.line for r in tape.iter_records()] == [2, 3]
    assert len(tape) == 2
    with pytest.raises(TapeFormatError, match=r"mem.jsonl.gz, line 3: the tape is larger"):
        list(Tape.from_bytes(raw, "mem.jsonl.gz", max_bytes=len(HEADER + RECV)).iter_records())


def test_iterations_are_independent_and_do_not_load(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl.gz"
    with TapeWriter(path, "binance") as writer:
        written = [writer.recv("c1", str(i), i) for i in range(5)]
    tape = Tape.open(path)
    first, second = tape.iter_records(), tape.iter_records()
    pairs = list(zip(first, second, strict=True))
    assert [a for a, _ in pairs] == [b for _, b in pairs] == written
    assert len(tape) == 5
    assert "records=" not in repr(tape)  # nothing was kept
    assert tape.records == written
    assert repr(tape).endswith("records=5)")


def test_every_real_tape_is_in_the_streaming_table(tapes_dir: Path) -> None:
    assert sorted(p.name for p in tapes_dir.glob("*.jsonl.gz")) == sorted(READ_WHOLE)


@pytest.mark.parametrize("name", sorted(READ_WHOLE))
def test_streaming_reads_what_reading_whole_read(
    tape_path: Callable[[str], Path], name: str
) -> None:
    n, first, last, digest = READ_WHOLE[name]
    tape = Tape.open(tape_path(name))
    count = 0
    sha = hashlib.sha256()
    head: TapeRecord | None = None
    record: TapeRecord | None = None
    for record in tape.iter_records():
        head = head or record
        count += 1
        sha.update(repr(record).encode())
    assert head is not None and record is not None
    assert count == n
    assert (head.line, head.type, head.ts_ns) == first
    assert (record.line, record.type, record.ts_ns) == last
    assert sha.hexdigest() == digest


@pytest.mark.parametrize("name", MORE_TAPES)
def test_streaming_reads_every_line_of_the_more_tapes(
    tape_path: Callable[[str], Path], name: str
) -> None:
    """The captures of ``tapes-more`` (binary frames among them) read record for record as
    their JSON lines say, each binary frame's bytes decoded from its base64."""
    path = tape_path(name)
    with gzip.open(path, "rb") as f:
        lines = [orjson.loads(line) for line in f if line.strip()]
    records = list(Tape.open(path).iter_records())
    assert len(records) == len(lines) - 1  # the header is not a record
    for record, obj in zip(records, lines[1:], strict=True):
        assert (record.type, record.ts_ns, record.conn) == (
            obj["type"],
            obj["ts_ns"],
            obj.get("conn"),
        )
        assert (record.data, record.encoding) == (obj.get("data"), obj.get("encoding"))
        if record.encoding == "base64":
            assert record.payload == base64.b64decode(obj["data"])


def test_cut_gzip_yields_what_it_could_read(
    tape_path: Callable[[str], Path], tmp_path: Path
) -> None:
    source = tape_path("binance-usdm-4sym-2021.jsonl.gz")
    whole = list(Tape.open(source).iter_records())
    raw = source.read_bytes()
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(raw[: len(raw) // 2])
    read: list[TapeRecord] = []
    with pytest.raises(TapeFormatError) as info:
        read.extend(Tape.open(path, strict=True).iter_records())
    assert 0 < len(read) < len(whole)
    assert read == whole[: len(read)]
    assert str(info.value).startswith(f"{path}: damaged gzip data after line {read[-1].line} ")
    # Forgiving (the default): the same records, then the end, and the cut is reported.
    tape = Tape.open(path)
    assert list(tape.iter_records()) == read
    assert tape.damage is not None and tape.damage.last_line == read[-1].line
    # Cut inside the header: open() reports it.
    path.write_bytes(raw[:40])
    with pytest.raises(TapeFormatError, match="damaged gzip data in line 1"):
        Tape.open(path)


# -- crash-safe writing and reading cut tapes -----------------------------------------------------


def flushed_tape(path: Path, flushes: int = 3, per_flush: int = 20) -> list[list[TapeRecord]]:
    """A tape written in ``flushes`` members, left unfinished (as a killed writer leaves it);
    the records of each flush."""
    writer = TapeWriter(path, "binance", flush_interval=None, fsync=False)
    batches = []
    for batch in range(flushes):
        batches.append(
            [
                writer.recv("c1", f'{{"batch":{batch},"i":{i},"pad":"{"x" * 40}"}}', i + 1)
                for i in range(per_flush)
            ]
        )
        writer.flush()
    # What a SIGKILL leaves: the members written so far, no end mark (the writer is dropped).
    raw = path.read_bytes()
    writer.finish()
    path.write_bytes(raw)
    return batches


def test_each_flush_is_a_whole_gzip_member_and_finish_adds_the_end_mark(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl.gz"
    with TapeWriter(path, "binance", flush_interval=None) as writer:
        written = [writer.recv("c1", "a", 1)]
        writer.flush()
        written.append(writer.recv("c1", "b", 2))
    raw = path.read_bytes()
    # header, flush 1, finish's flush, end mark: every gzip reader reads them as one stream.
    assert raw.count(b"\x1f\x8b\x08") == 4
    assert gzip.decompress(raw).count(b"\n") == 3
    tape = Tape.open(path, strict=True)
    assert tape.records == written
    assert tape.damage is None and tape.dropped_bytes == 0


def test_a_tape_without_its_end_mark_reads_whole_and_says_it_was_not_closed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "t.jsonl.gz"
    batches = flushed_tape(path)
    tape = Tape.open(path)
    assert tape.records == [r for batch in batches for r in batch]
    assert tape.damage is not None
    assert "no end mark" in tape.damage.reason
    assert tape.damage.last_line == 61
    assert tape.dropped_bytes == 0
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert str(tape.damage) in caplog.text
    with pytest.raises(TapeFormatError, match=r"after line 61 .*no end mark"):
        list(Tape.open(path, strict=True).iter_records())


def test_a_member_cut_anywhere_loses_nothing_before_it(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl.gz"
    batches = flushed_tape(path)
    raw = path.read_bytes()
    last_member = raw.rindex(b"\x1f\x8b\x08")
    before = [r for batch in batches[:-1] for r in batch]
    for end in range(last_member + 1, len(raw)):
        path.write_bytes(raw[:end])
        tape = Tape.open(path)
        records = list(tape.iter_records())
        # Everything flushed before the cut member is there; of the cut member, whole lines.
        assert records[: len(before)] == before, end
        assert records == [r for batch in batches for r in batch][: len(records)]
        assert tape.damage is not None and tape.damage.last_line == 1 + len(records)
        assert "cut short" in tape.damage.reason or "no end mark" in tape.damage.reason


def test_a_plain_tape_cut_inside_a_line_drops_only_that_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    with TapeWriter(path, "binance", flush_interval=None) as writer:
        written = [writer.recv("c1", str(i), i) for i in range(5)]
    raw = path.read_bytes()
    path.write_bytes(raw[:-10])
    tape = Tape.open(path)
    assert tape.records == written[:4]
    assert tape.damage is not None
    assert tape.damage.last_line == 5
    assert tape.damage.partial_line_bytes == len(raw.splitlines()[-1]) + 1 - 10
    with pytest.raises(TapeFormatError, match="line 6: not valid JSON"):
        _ = Tape.open(path, strict=True).records


def test_damage_in_the_middle_stops_there_and_counts_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl.gz"
    batches = flushed_tape(path, flushes=4)
    raw = bytearray(path.read_bytes())
    starts = [i for i in range(len(raw)) if raw[i : i + 3] == b"\x1f\x8b\x08"]
    third = starts[3]  # header, then the flushes: this is flush 3
    raw[third + 30] ^= 0xFF
    path.write_bytes(bytes(raw))
    tape = Tape.open(path)
    records = list(tape.iter_records())
    assert records[:40] == batches[0] + batches[1]
    assert len(records) < 80
    assert tape.damage is not None
    assert "damaged data in gzip member 4" in tape.damage.reason
    assert 0 < tape.damage.unreadable_bytes <= len(raw) - third


def test_zero_bytes_after_the_last_member_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl.gz"
    batches = flushed_tape(path, flushes=2)
    path.write_bytes(path.read_bytes() + b"\x00" * 4096)
    tape = Tape.open(path)
    assert tape.records == batches[0] + batches[1]
    assert tape.damage is not None and "zero bytes" in tape.damage.reason
    assert tape.damage.unreadable_bytes == 4096


def test_a_single_member_tape_flushed_as_it_went_is_read_up_to_its_cut(tmp_path: Path) -> None:
    """What the writer before crash-safe tapes left when killed: one gzip member, sync-flushed
    now and then, never closed. Every line it flushed is read."""
    path = tmp_path / "old.jsonl.gz"
    with path.open("wb") as out:
        stream = gzip.GzipFile(fileobj=out, mode="wb", mtime=0)
        stream.write(HEADER)
        for i in range(476):
            stream.write(b'{"type":"recv","ts_ns":%d,"conn":"c1","data":"{}"}\n' % i)
            if i % 50 == 49 or i == 475:
                stream.flush()
        out.flush()
        size = out.tell()
        stream.write(b'{"type":"recv","ts_ns":9,"conn":"c1","da')  # never flushed
    path.write_bytes(path.read_bytes()[:size])
    with pytest.raises(TapeFormatError, match="damaged gzip data after line 477"):
        list(Tape.open(path, strict=True).iter_records())
    tape = Tape.open(path)
    assert [r.ts_ns for r in tape.iter_records()] == list(range(476))
    assert tape.damage is not None and tape.damage.last_line == 477


def test_binary_frames_round_trip_byte_for_byte(tmp_path: Path) -> None:
    frames = [bytes(range(256)), gzip.compress(b'{"ping":1}'), b"\xff\xfe", b""]
    path = tmp_path / "t.jsonl.gz"
    with TapeWriter(path, "htx-swap") as writer:
        written = [writer.recv("c1", frame, i + 1) for i, frame in enumerate(frames)]
        writer.recv_frame("c1", b"\xc3\x28 not utf-8", 10)
        writer.recv_frame("c1", '{"text":"é"}'.encode(), 11)
        sent = writer.send("c1", b"\x01\x02", 12)
    records = Tape.open(path, strict=True).records
    assert records[:4] == written
    assert [r.payload for r in records] == [
        *frames,
        b"\xc3\x28 not utf-8",
        '{"text":"é"}'.encode(),
        b"\x01\x02",
    ]
    assert [r.encoding for r in records] == ["base64"] * 5 + [None, "base64"]
    assert records[-1] == sent
    lines = gzip.decompress(path.read_bytes()).splitlines()
    assert orjson.loads(lines[1]) == {
        "type": "recv",
        "ts_ns": 1,
        "conn": "c1",
        "data": base64.b64encode(frames[0]).decode(),
        "encoding": "base64",
    }
    assert list(orjson.loads(lines[1])) == ["type", "ts_ns", "conn", "data", "encoding"]
    assert records[5].data == '{"text":"é"}'


def test_binary_frames_of_a_real_tape_round_trip(tapes_dir: Path, tmp_path: Path) -> None:
    source = Tape.open(tapes_dir.parent / "tapes-more" / "htx-swap-depth150-10sym-2022.jsonl.gz")
    copy = tmp_path / "copy.jsonl.gz"
    binary = 0
    with TapeWriter(copy, source.venue, flush_bytes=1 << 16) as writer:
        for record in source.iter_records():
            if record.type == "recv":
                assert record.conn is not None
                binary += record.encoding == "base64"
                payload = record.payload if record.encoding else record.data or ""
                writer.recv(record.conn, payload, record.ts_ns)
            elif record.type == "open":
                assert record.conn is not None and record.url is not None
                writer.open(record.conn, record.url, record.ts_ns)
    assert binary > 1000
    originals = [(r.type, r.ts_ns, r.data, r.encoding) for r in source.iter_records("recv", "open")]
    copies = [(r.type, r.ts_ns, r.data, r.encoding) for r in Tape.open(copy).iter_records()]
    assert copies == originals
    first = next(r for r in Tape.open(copy).iter_records("recv") if r.encoding)
    assert gzip.decompress(first.payload).startswith(b"{")


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (b'{"type":"recv","ts_ns":1,"conn":"c1","data":"AA==","encoding":"hex"}', "encoding"),
        (b'{"type":"recv","ts_ns":1,"conn":"c1","data":"A?==","encoding":"base64"}', "base64"),
    ],
)
def test_bad_encodings_are_refused(tmp_path: Path, line: bytes, words: str) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(HEADER + line + b"\n")
    with pytest.raises(TapeFormatError, match=f"line 2: .*{words}"):
        list(Tape.open(path).iter_records())


def test_rotation_writes_whole_tapes_that_read_as_one(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl.gz"
    writer = TapeWriter(path, "binance", flush_interval=None, rotate_bytes=1, note="n")
    written = []
    for batch in range(4):
        written.append([writer.recv("c1", f"{batch}-{i}", batch * 10 + i) for i in range(3)])
        writer.flush()
    writer.finish()
    assert len(writer.paths) == 4
    assert writer.paths == sorted(tmp_path.glob("rec.*.jsonl.gz"))
    assert [p.name.split(".")[1] for p in writer.paths] == ["00001", "00002", "00003", "00004"]
    for number, (segment, records) in enumerate(zip(writer.paths, written, strict=True), 1):
        tape = Tape.open(segment, strict=True)
        assert tape.records == records  # the line numbers given when writing are the file's
        assert tape.header.note == "n"
        assert tape.header.extra["segment"] == number
        if number > 1:
            assert tape.header.extra["continues"] == writer.paths[number - 2].name
    sequence = Tape.open_sequence(writer.paths, strict=True)
    assert list(sequence.iter_records()) == [r for batch in written for r in batch]
    assert sequence.dropped_bytes == 0


def test_rotation_by_time_and_the_flushing_thread(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl.gz"
    writer = TapeWriter(path, "binance", flush_interval=0.05, rotate_seconds=0.2)
    written: list[TapeRecord] = []
    try:
        # Nobody calls flush(): the writer's thread flushes, and rotates as the files age.
        record = writer.recv("c1", "first", 1)
        deadline = time.monotonic() + 60
        while record not in Tape.open(writer.path).records:
            assert time.monotonic() < deadline, "the writer thread did not flush"
            time.sleep(0.01)
        written.append(record)
        while len(writer.paths) < 3:
            assert time.monotonic() < deadline, "the writer thread did not rotate"
            written.append(writer.recv("c1", str(len(written)), len(written) + 1))
            time.sleep(0.01)  # a record every 10 ms, as a feed would send them
    finally:
        writer.finish()
    for segment in writer.paths:
        assert Tape.open(segment, strict=True).records
    assert list(Tape.open_sequence(writer.paths, strict=True).iter_records()) == written


def test_writer_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="rotate_bytes must be a positive integer, got 0"):
        TapeWriter(tmp_path / "t.jsonl", "x", rotate_bytes=0)
    with pytest.raises(ConfigError, match="flush_interval"):
        TapeWriter(tmp_path / "t.jsonl", "x", flush_interval=0)
    assert not (tmp_path / "t.jsonl").exists()


def test_a_failed_write_in_the_thread_reaches_the_caller(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    writer = TapeWriter(path, "binance", flush_interval=0.01)
    assert writer._file is not None
    os.close(writer._file.fileno())  # the disk goes away under the writer
    writer.recv("c1", "x", 1)
    deadline = time.monotonic() + 60
    with pytest.raises(OSError, match="writing the tape failed"):
        while True:
            assert time.monotonic() < deadline
            writer.recv("c1", "x", 1)
            time.sleep(0.01)
    with pytest.raises(OSError):
        writer.finish()
    assert writer.closed


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ("missing/t.jsonl.gz", "the directory .*missing' does not exist"),
        ("file/t.jsonl.gz", "is not a directory"),
        ("dir", "is a directory"),
    ],
)
def test_recording_paths_are_checked_before_anything_runs(
    tmp_path: Path, bad: str, words: str
) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "dir").mkdir()
    with pytest.raises(ConfigError, match=words):
        Recording.of(str(tmp_path / bad))
    Recording.of(tmp_path / "fine.jsonl.gz")
