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

Reading is bounded: :meth:`Tape.open` reads the header only and records are streamed, so a tape
from elsewhere (a gzip bomb, a line of gigabytes) is refused with :class:`TapeFormatError` once a
line passes ``max_line_bytes`` or the tape ``max_bytes``, before it is held in memory.
"""

from __future__ import annotations

import gzip
import io
import os
import time
import zlib
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Final

import orjson

from lobfeed.exceptions import TapeFormatError

__all__ = [
    "DEFAULT_LOAD_BYTES",
    "DEFAULT_MAX_LINE_BYTES",
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

DEFAULT_MAX_LINE_BYTES: Final = 64 << 20
"""Longest line a reader accepts by default, decompressed: the real tapes' longest is under 6 MB."""
DEFAULT_LOAD_BYTES: Final = 128 << 20
"""Largest tape :attr:`Tape.records` loads by default, decompressed: the real tapes' largest is
31 MB, and a list of records takes several times the tape's size in memory."""
# Lines are read in pieces of this size, so a limit is checked every piece, not after a line.
_PIECE: Final = 1 << 20


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
    """A tape: its header, read when it is opened, and its records, read from the file on demand.

    :meth:`open` reads and checks only line 1.  :meth:`iter_records` decompresses and parses the
    file again on each pass, holding one line at a time, so a tape of any length can be read in
    bounded memory.  :attr:`records` keeps every record in a list; it is for small tapes and
    refuses one larger than ``max_bytes`` (by default :data:`DEFAULT_LOAD_BYTES`) decompressed.
    Since records are read when they are used, the file must stay in place while the tape is.
    """

    __slots__ = ("_raw", "_records", "header", "max_bytes", "max_line_bytes", "path")

    def __init__(
        self,
        path: Path,
        header: TapeHeader,
        records: list[TapeRecord] | None = None,
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_bytes: int | None = None,
        raw: bytes | None = None,
    ) -> None:
        """A tape over ``records`` when they are given, else over ``raw`` or the file at ``path``.

        Most code calls :meth:`open` rather than this.
        """
        if max_line_bytes <= 0:
            raise ValueError(f"max_line_bytes must be positive, got {max_line_bytes}")
        if max_bytes is not None and max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive or None, got {max_bytes}")
        self.path = path
        self.header = header
        self.max_line_bytes = max_line_bytes
        """No line, decompressed, may be longer than this many bytes (newline not counted)."""
        self.max_bytes = max_bytes
        """No tape may be larger than this many bytes decompressed (None: no limit to streaming)."""
        self._records = records
        self._raw = raw

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_bytes: int | None = None,
    ) -> Tape:
        """Open a tape, gzip-compressed or plain (told apart by magic bytes), and check its header.

        Only line 1 is read here; the records are read, and checked, as they are iterated.
        Raises :class:`TapeFormatError` naming the file and the line at fault, here for the
        header and later for a record: a line longer than ``max_line_bytes`` or a tape larger
        than ``max_bytes``, both counted decompressed, is refused before it is held in memory.
        """
        p = Path(path)
        header = _read_header(p, None, max_line_bytes, max_bytes)
        return cls(p, header, max_line_bytes=max_line_bytes, max_bytes=max_bytes)

    @classmethod
    def from_bytes(
        cls,
        raw: bytes,
        path: str | os.PathLike[str] = "<memory>",
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_bytes: int | None = None,
    ) -> Tape:
        """A tape held in memory, read like a file; ``path`` is only used in error messages."""
        p = Path(path)
        header = _read_header(p, raw, max_line_bytes, max_bytes)
        return cls(p, header, max_line_bytes=max_line_bytes, max_bytes=max_bytes, raw=raw)

    @property
    def venue(self) -> str:
        return self.header.venue

    @property
    def records(self) -> list[TapeRecord]:
        """All the records, in file order, read into memory on first use and kept.

        Raises :class:`TapeFormatError` for a tape larger than ``max_bytes`` decompressed, or
        :data:`DEFAULT_LOAD_BYTES` when ``max_bytes`` is None: prefer :meth:`iter_records`.
        """
        if self._records is None:
            limit = DEFAULT_LOAD_BYTES if self.max_bytes is None else self.max_bytes
            self._records = list(self._stream(limit, loading=True))
        return self._records

    def iter_records(self, *types: str) -> Iterator[TapeRecord]:
        """Iterate over the records in file order, only those of ``types`` if any are given.

        Each call reads the file afresh, one line at a time (or walks :attr:`records` once they
        are loaded).  Errors in a record are raised when the iteration reaches it.
        """
        source = self._records if self._records is not None else self._stream(self.max_bytes)
        if not types:
            yield from source
            return
        wanted = frozenset(types)
        for record in source:
            if record.type in wanted:
                yield record

    def __len__(self) -> int:
        """The number of records; without :attr:`records` loaded, this reads the whole file."""
        if self._records is not None:
            return len(self._records)
        return sum(1 for _ in self._stream(self.max_bytes))

    def __repr__(self) -> str:
        loaded = "" if self._records is None else f", records={len(self._records)}"
        return f"Tape({str(self.path)!r}, venue={self.header.venue!r}{loaded})"

    # -- internals ----------------------------------------------------------------------------

    def _stream(self, max_bytes: int | None, *, loading: bool = False) -> Iterator[TapeRecord]:
        path = self.path
        lines = _lines(path, self._raw, self.max_line_bytes, max_bytes, loading=loading)
        for number, text in lines:
            if number == 1 or _blank(text):
                # Line 1 is the header, checked by open(); blank lines are the newline after
                # the last record or strays, skipped as they always were.
                continue
            yield _parse_record(_loads(text, number, path), number, path)


def _read_header(
    path: Path, raw: bytes | None, max_line_bytes: int, max_bytes: int | None
) -> TapeHeader:
    lines = _lines(path, raw, max_line_bytes, max_bytes)
    try:
        number, text = next(lines, (1, b""))
    finally:
        lines.close()
    if _blank(text):
        raise _fail(path, number, "the tape is empty or has no header on line 1")
    return _parse_header(_loads(text, number, path), path)


def _blank(text: bytes | bytearray) -> bool:
    # isspace() stops at the first other byte, where strip() would copy a long line.
    return not text or text.isspace()


def _lines(
    path: Path,
    raw: bytes | None,
    max_line_bytes: int,
    max_bytes: int | None,
    *,
    loading: bool = False,
) -> Generator[tuple[int, bytes | bytearray], None, None]:
    """Numbered lines, each with its newline, of ``raw`` or else of the file at ``path``."""
    with ExitStack() as stack:
        stream: IO[bytes]
        if raw is not None:
            stream = io.BytesIO(raw)
            magic = raw[:2]
        else:
            buffered = stack.enter_context(open(path, "rb"))
            stream = buffered
            magic = buffered.peek(2)[:2]
        compressed = magic == _GZIP_MAGIC
        readline: Callable[[int], bytes] = stream.readline
        if compressed:
            readline = stack.enter_context(gzip.GzipFile(fileobj=stream, mode="rb")).readline
        number = 0
        total = 0
        while True:
            # What is left of max_bytes also bounds the line, so that a long line cannot
            # overshoot the tape's limit by up to max_line_bytes.
            room = max_line_bytes if max_bytes is None else min(max_line_bytes, max_bytes - total)
            try:
                line = _read_line(readline, room)
            except (OSError, EOFError, zlib.error) as exc:
                if not compressed:
                    raise
                where = f"after line {number} (lines 1 to {number} were read whole)"
                if number == 0:
                    where = "in line 1"
                raise _fail(path, None, f"damaged gzip data {where}: {exc}") from exc
            if line is not None and not line:
                return
            number += 1
            if line is None and room == max_line_bytes:
                raise _fail(
                    path,
                    number,
                    f"the line is longer than max_line_bytes={max_line_bytes:,} bytes "
                    "decompressed, and was refused without reading the rest of it (pass a "
                    "larger max_line_bytes if the tape is genuine)",
                )
            if line is None or (max_bytes is not None and total + len(line) > max_bytes):
                if loading:
                    hint = (
                        "Tape.records holds every record in memory: iterate with "
                        "Tape.iter_records() instead, or pass a larger max_bytes"
                    )
                else:
                    hint = "pass a larger max_bytes if the tape is genuine"
                raise _fail(
                    path,
                    number,
                    f"the tape is larger than max_bytes={max_bytes:,} bytes decompressed; {hint}",
                )
            total += len(line)
            # The newline stays: JSON allows it, and cutting it off would copy the line.
            yield number, line


def _read_line(readline: Callable[[int], bytes], limit: int) -> bytes | bytearray | None:
    """The next line with its newline, b"" at the end, or None once it is over ``limit`` bytes.

    Reading in pieces of at most :data:`_PIECE` bytes means a refused line costs at most
    ``limit`` plus one piece of memory, never the whole line.
    """
    piece = readline(_PIECE)
    if len(piece) < _PIECE or piece.endswith(b"\n"):
        # The common case: a whole line (or the end of the file) in one piece, copied nowhere.
        return None if len(piece) - piece.endswith(b"\n") > limit else piece
    line = bytearray(piece)
    while True:
        if len(line) > limit:
            return None
        piece = readline(_PIECE)
        line += piece
        if len(piece) < _PIECE or piece.endswith(b"\n"):
            return None if len(line) - line.endswith(b"\n") > limit else line


def _loads(text: bytes | bytearray, line: int, path: Path) -> object:
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
