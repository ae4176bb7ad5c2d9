"""lobfeed-tape/1 reader and writer."""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from lobfeed.exceptions import LobfeedError, TapeFormatError
from lobfeed.tape import FORMAT, Tape, TapeHeader, TapeRecord, TapeWriter

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
    tape = Tape.open(path)  # the header is whole: only reading the records meets the cut
    with pytest.raises(TapeFormatError) as info:
        _ = tape.records
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, LobfeedError)
    assert str(path) in str(info.value)
    assert "damaged gzip data after line 1" in str(info.value)


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
