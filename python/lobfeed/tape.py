"""Reading and writing tapes in the ``lobfeed-tape/1`` format.

A tape is JSON Lines, usually gzip-compressed.  Line 1 is a header naming the venue; each later
line is one record of what a recording client saw, in the order it saw it::

    {"type":"header","format":"lobfeed-tape/1","venue":"binance",...}
    {"type":"open","ts_ns":...,"conn":"c1","url":"wss://..."}
    {"type":"send","ts_ns":...,"conn":"c1","data":"<frame the client sent>"}
    {"type":"recv","ts_ns":...,"conn":"c1","data":"<frame the exchange sent>"}
    {"type":"http","ts_ns":...,"url":"https://...","data":"<response body>"}
    {"type":"close","ts_ns":...,"conn":"c1"}

Frame texts and response bodies are kept exactly as stored: nothing here re-encodes them.
"""

from __future__ import annotations

import gzip
import os
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Final

import orjson

from lobfeed.exceptions import TapeFormatError

__all__ = [
    "FORMAT",
    "RECORD_TYPES",
    "Tape",
    "TapeFormatError",
    "TapeHeader",
    "TapeRecord",
    "TapeWriter",
]

FORMAT: Final = "lobfeed-tape/1"
RECORD_TYPES: Final = frozenset({"open", "send", "recv", "http", "close"})

_GZIP_MAGIC: Final = b"\x1f\x8b"
_HEADER_FIELDS: Final = ("type", "format", "venue", "captured", "source", "license", "note")
# Fields each record type must carry, beyond "type" and "ts_ns".
_REQUIRED: Final[Mapping[str, tuple[str, ...]]] = {
    "open": ("conn", "url"),
    "send": ("conn", "data"),
    "recv": ("conn", "data"),
    "http": ("url", "data"),
    "close": ("conn",),
}
_FLUSH_BYTES: Final = 1 << 16


@dataclass(frozen=True, slots=True)
class TapeHeader:
    """Line 1 of a tape."""

    venue: str
    format: str = FORMAT
    captured: str | None = None
    source: str | None = None
    license: str | None = None
    note: str | None = None
    extra: dict[str, object] = field(default_factory=dict)
    """Header keys this version does not know, kept as read."""


@dataclass(frozen=True, slots=True)
class TapeRecord:
    """One record (line 2 onwards) of a tape."""

    line: int
    """1-based line number in the file; the header is line 1."""
    type: str
    """One of ``open``, ``send``, ``recv``, ``http``, ``close``."""
    ts_ns: int
    """Receive time at the recording client, Unix nanoseconds."""
    conn: str | None = None
    url: str | None = None
    data: str | None = None
    """Frame text or response body, exactly as stored."""


def _fail(path: object, line: int | None, message: str) -> TapeFormatError:
    where = f"{path}" if line is None else f"{path}, line {line}"
    return TapeFormatError(f"{where}: {message}")


def _parse_header(obj: object, path: object) -> TapeHeader:
    if not isinstance(obj, dict):
        raise _fail(path, 1, "the first line must be a JSON object (the tape header)")
    if obj.get("type") != "header":
        raise _fail(
            path,
            1,
            f'the first line must be a header ("type":"header"), got type {obj.get("type")!r}',
        )
    fmt = obj.get("format")
    if fmt != FORMAT:
        raise _fail(path, 1, f"unsupported tape format {fmt!r} (expected {FORMAT!r})")
    venue = obj.get("venue")
    if not isinstance(venue, str) or not venue:
        raise _fail(path, 1, "the header has no venue")
    optional: dict[str, str | None] = {}
    for key in ("captured", "source", "license", "note"):
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            raise _fail(path, 1, f"header field {key!r} must be a string")
        optional[key] = value
    extra = {k: v for k, v in obj.items() if k not in _HEADER_FIELDS}
    return TapeHeader(
        venue=venue,
        format=fmt,
        captured=optional["captured"],
        source=optional["source"],
        license=optional["license"],
        note=optional["note"],
        extra=extra,
    )


def _parse_record(obj: object, line: int, path: object) -> TapeRecord:
    if not isinstance(obj, dict):
        raise _fail(path, line, "a record must be a JSON object")
    rtype = obj.get("type")
    if rtype == "header":
        raise _fail(path, line, "a header is only allowed on line 1")
    if not isinstance(rtype, str) or rtype not in RECORD_TYPES:
        raise _fail(path, line, f"unknown record type {rtype!r}")
    ts_ns = obj.get("ts_ns")
    if not isinstance(ts_ns, int) or isinstance(ts_ns, bool) or ts_ns < 0:
        raise _fail(path, line, f"{rtype} record needs a non-negative integer ts_ns")
    strings: dict[str, str | None] = {}
    for key in ("conn", "url", "data"):
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            raise _fail(path, line, f"field {key!r} of a {rtype} record must be a string")
        strings[key] = value
    for key in _REQUIRED[rtype]:
        if strings[key] is None:
            raise _fail(path, line, f"{rtype} record has no {key!r}")
    return TapeRecord(line, rtype, ts_ns, strings["conn"], strings["url"], strings["data"])


class Tape:
    """A tape read into memory: its header and all its records, in file order."""

    __slots__ = ("header", "path", "records")

    def __init__(self, path: Path, header: TapeHeader, records: list[TapeRecord]) -> None:
        self.path = path
        self.header = header
        self.records = records

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Tape:
        """Read and validate a tape, gzip-compressed or plain (told apart by magic bytes).

        Raises :class:`TapeFormatError` naming the file and the line at fault.
        """
        p = Path(path)
        return cls.from_bytes(p.read_bytes(), p)

    @classmethod
    def from_bytes(cls, raw: bytes, path: str | os.PathLike[str] = "<memory>") -> Tape:
        """Parse a tape held in memory; ``path`` is only used in error messages."""
        p = Path(path)
        if raw[:2] == _GZIP_MAGIC:
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError, zlib.error) as exc:
                raise _fail(p, None, f"damaged gzip data: {exc}") from exc
        lines = raw.split(b"\n")
        if not lines[0].strip():
            raise _fail(p, 1, "the tape is empty or has no header on line 1")
        header = _parse_header(_loads(lines[0], 1, p), p)
        records: list[TapeRecord] = []
        append = records.append
        for index in range(1, len(lines)):
            text = lines[index]
            if not text.strip():
                continue  # the newline after the last record, or a stray blank line
            append(_parse_record(_loads(text, index + 1, p), index + 1, p))
        return cls(p, header, records)

    @property
    def venue(self) -> str:
        return self.header.venue

    def iter_records(self, *types: str) -> Iterator[TapeRecord]:
        """Iterate over the records in file order, only those of ``types`` if any are given."""
        if not types:
            yield from self.records
            return
        wanted = frozenset(types)
        for record in self.records:
            if record.type in wanted:
                yield record

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        return f"Tape({str(self.path)!r}, venue={self.header.venue!r}, records={len(self)})"


def _loads(text: bytes, line: int, path: Path) -> object:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise _fail(path, line, f"not valid JSON: {exc}") from exc


class TapeWriter:
    """Write a tape record by record; use it as a context manager.

    The file is gzip-compressed when its name ends with ``.gz``.  Every record method takes the
    receive time in Unix nanoseconds (``ts_ns``; the current time when omitted) and returns the
    :class:`TapeRecord` that reading the file back will produce.  Note that :meth:`close` writes
    a ``close`` record for a connection; :meth:`finish` (or leaving the ``with`` block) flushes
    and closes the file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        venue: str,
        *,
        source: str | None = None,
        license: str | None = None,
        note: str | None = None,
        captured: str | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        if not venue:
            raise ValueError("a tape needs a venue")
        header: dict[str, object] = {"type": "header", "format": FORMAT, "venue": venue}
        for key, value in (
            ("captured", captured),
            ("source", source),
            ("license", license),
            ("note", note),
        ):
            if value is not None:
                header[key] = value
        for extra_key, extra_value in (extra or {}).items():
            if extra_key in _HEADER_FIELDS:
                raise ValueError(f"header field {extra_key!r} cannot be set through extra")
            header[extra_key] = extra_value
        self.path = Path(path)
        self._file: IO[bytes] = open(self.path, "wb")  # noqa: SIM115 - closed by finish()
        self._gzip: gzip.GzipFile | None = None
        if self.path.name.endswith(".gz"):
            self._gzip = gzip.GzipFile(filename="", mode="wb", fileobj=self._file, mtime=0)
        self._buffer = bytearray()
        self._line = 0
        self._closed = False
        self._append(header)

    # -- records ------------------------------------------------------------------------------

    def open(self, conn: str, url: str, ts_ns: int | None = None) -> TapeRecord:
        """Record that websocket connection ``conn`` was opened to ``url``."""
        return self._record("open", ts_ns, conn, url, None)

    def send(self, conn: str, data: str, ts_ns: int | None = None) -> TapeRecord:
        """Record a text frame the client sent on ``conn``."""
        return self._record("send", ts_ns, conn, None, data)

    def recv(self, conn: str, data: str, ts_ns: int | None = None) -> TapeRecord:
        """Record a text frame the exchange sent on ``conn``, exactly as received."""
        return self._record("recv", ts_ns, conn, None, data)

    def http(self, url: str, data: str, ts_ns: int | None = None) -> TapeRecord:
        """Record the body of a REST response fetched from ``url``."""
        return self._record("http", ts_ns, None, url, data)

    def close(self, conn: str, ts_ns: int | None = None) -> TapeRecord:
        """Record that websocket connection ``conn`` was closed (the file stays open)."""
        return self._record("close", ts_ns, conn, None, None)

    # -- file ---------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def flush(self) -> None:
        """Push buffered records to the file (a gzip member stays open until :meth:`finish`)."""
        if self._closed:
            return
        if self._buffer:
            self._write_buffer()
        if self._gzip is not None:
            self._gzip.flush()
        self._file.flush()

    def finish(self) -> None:
        """Flush everything and close the file.  Calling it again does nothing."""
        if self._closed:
            return
        try:
            self.flush()
            if self._gzip is not None:
                self._gzip.close()
        finally:
            self._closed = True
            self._file.close()

    def __enter__(self) -> TapeWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish()

    def __repr__(self) -> str:
        return f"TapeWriter({str(self.path)!r}, lines={self._line})"

    # -- internals ----------------------------------------------------------------------------

    def _record(
        self, rtype: str, ts_ns: int | None, conn: str | None, url: str | None, data: str | None
    ) -> TapeRecord:
        if ts_ns is None:
            ts_ns = time.time_ns()
        elif not isinstance(ts_ns, int) or isinstance(ts_ns, bool) or ts_ns < 0:
            raise ValueError(f"ts_ns must be a non-negative integer, got {ts_ns!r}")
        obj: dict[str, object] = {"type": rtype, "ts_ns": ts_ns}
        for key, value in (("conn", conn), ("url", url), ("data", data)):
            if value is not None:
                if not isinstance(value, str):
                    raise TypeError(f"{key} must be a str, got {type(value).__name__}")
                obj[key] = value
        self._append(obj)
        return TapeRecord(self._line, rtype, ts_ns, conn, url, data)

    def _append(self, obj: dict[str, object]) -> None:
        if self._closed:
            raise ValueError(f"{self.path}: the tape writer is already finished")
        self._buffer += orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)
        self._line += 1
        if len(self._buffer) >= _FLUSH_BYTES:
            self._write_buffer()

    def _write_buffer(self) -> None:
        if self._gzip is not None:
            self._gzip.write(self._buffer)
        else:
            self._file.write(self._buffer)
        self._buffer.clear()
