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

A binary websocket frame is kept byte for byte: its record carries ``"encoding":"base64"`` and
``data`` is the base64 of the frame; :attr:`TapeRecord.payload` gives the bytes either way.

Reading is bounded: :meth:`Tape.open` reads the header only and records are streamed, so a tape
from elsewhere (a gzip bomb, a line of gigabytes) is refused with :class:`TapeFormatError` once a
line passes ``max_line_bytes`` or the tape ``max_bytes``, before it is held in memory.

Reading forgives a cut: a tape whose writer was killed (a gzip member cut short, a last line
without its end) is read up to its last whole line, and :attr:`Tape.damage` says what was
dropped (also logged once as a warning); ``strict=True`` raises instead.

Writing survives a crash: :class:`TapeWriter` writes each flush as one complete gzip member, at
least every ``flush_interval`` seconds from a thread of its own, so a killed writer loses only
what it had not flushed yet, never what it wrote before (see ``docs/recording.md``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Final

import orjson

from lobfeed.exceptions import ConfigError, TapeFormatError
from lobfeed.gzmembers import GZIP_MAGIC, START_COMMENT, MemberReader, end_mark, member

log = logging.getLogger("lobfeed.tape")

__all__ = [
    "DEFAULT_LOAD_BYTES",
    "DEFAULT_MAX_LINE_BYTES",
    "FORMAT",
    "RECORD_TYPES",
    "Recording",
    "Tape",
    "TapeDamage",
    "TapeFormatError",
    "TapeHeader",
    "TapeRecord",
    "TapeSequence",
    "TapeWriter",
]

FORMAT: Final = "lobfeed-tape/1"
RECORD_TYPES: Final = frozenset({"open", "send", "recv", "http", "close"})

BASE64: Final = "base64"
_HEADER_FIELDS: Final = ("type", "format", "venue", "captured", "source", "license", "note")
# Fields each record type must carry, beyond "type" and "ts_ns".
_REQUIRED: Final[Mapping[str, tuple[str, ...]]] = {
    "open": ("conn", "url"),
    "send": ("conn", "data"),
    "recv": ("conn", "data"),
    "http": ("url", "data"),
    "close": ("conn",),
}
DEFAULT_FLUSH_INTERVAL: Final = 1.0
"""Seconds between a writer's flushes, at most: what a killed writer can lose."""
DEFAULT_FLUSH_BYTES: Final = 1 << 20
"""Buffered bytes that make a writer flush before its interval is up."""
# Buffered bytes past which a record waits for the flush itself, when the disk cannot keep up.
_MAX_BUFFER_BYTES: Final = 64 << 20
# Decompressed bytes a reader asks of a gzip file at a time.
_READ_BUFFER: Final = 1 << 17

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
    """Frame text or response body, exactly as stored (base64 text for a binary frame)."""
    encoding: str | None = None
    """``"base64"`` for a binary frame, whose ``data`` is the base64 of its bytes; else None."""

    @property
    def payload(self) -> bytes:
        """The frame's or body's bytes: ``data`` decoded from base64 for a binary frame, else
        ``data`` in UTF-8 (empty when the record has no data)."""
        if self.data is None:
            return b""
        if self.encoding == BASE64:
            return base64.b64decode(self.data)
        return self.data.encode()

    def __repr__(self) -> str:
        # ``encoding`` shows only when set, so text records read as they always did.
        tail = "" if self.encoding is None else f", encoding={self.encoding!r}"
        return (
            f"TapeRecord(line={self.line!r}, type={self.type!r}, ts_ns={self.ts_ns!r}, "
            f"conn={self.conn!r}, url={self.url!r}, data={self.data!r}{tail})"
        )


@dataclass(frozen=True, slots=True)
class TapeDamage:
    """What a reader dropped from a cut tape: everything after line ``last_line``."""

    path: Path
    last_line: int
    """The last line read whole (1 when only the header was)."""
    reason: str
    partial_line_bytes: int = 0
    """Bytes, decompressed, of a last line cut short, which were dropped."""
    unreadable_bytes: int = 0
    """Bytes of the file past the point where it could not be read further."""

    @property
    def dropped_bytes(self) -> int:
        return self.partial_line_bytes + self.unreadable_bytes

    def __str__(self) -> str:
        parts = []
        if self.partial_line_bytes:
            parts.append(f"a partial last line of {self.partial_line_bytes:,} bytes")
        if self.unreadable_bytes:
            parts.append(f"{self.unreadable_bytes:,} unreadable bytes at the end of the file")
        dropped = " and ".join(parts) if parts else "nothing partial"
        return (
            f"{self.path}: the tape is cut ({self.reason}); lines 1 to {self.last_line} are "
            f"whole and were read; dropped {self.dropped_bytes:,} bytes: {dropped}"
        )


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
    encoding = obj.get("encoding")
    if encoding is not None:
        if encoding != BASE64:
            raise _fail(path, line, f"unknown encoding {encoding!r} (allowed: {BASE64!r})")
        try:
            base64.b64decode(strings["data"] or "", validate=True)
        except binascii.Error as exc:
            raise _fail(path, line, f"data is not valid base64: {exc}") from exc
    return TapeRecord(
        line, rtype, ts_ns, strings["conn"], strings["url"], strings["data"], encoding
    )


class Tape:
    """A tape: its header, read when it is opened, and its records, read from the file on demand.

    :meth:`open` reads and checks only line 1.  :meth:`iter_records` decompresses and parses the
    file again on each pass, holding one line at a time, so a tape of any length can be read in
    bounded memory.  :attr:`records` keeps every record in a list; it is for small tapes and
    refuses one larger than ``max_bytes`` (by default :data:`DEFAULT_LOAD_BYTES`) decompressed.
    Since records are read when they are used, the file must stay in place while the tape is.

    A cut tape (its writer killed) is read up to its last whole line; once a pass has reached
    the cut, :attr:`damage` says what was dropped and a warning is logged (once per tape).
    With ``strict=True`` the cut raises :class:`TapeFormatError` instead.
    """

    __slots__ = (
        "_raw",
        "_records",
        "damage",
        "header",
        "max_bytes",
        "max_line_bytes",
        "path",
        "strict",
    )

    def __init__(
        self,
        path: Path,
        header: TapeHeader,
        records: list[TapeRecord] | None = None,
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_bytes: int | None = None,
        raw: bytes | None = None,
        strict: bool = False,
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
        self.strict = strict
        """Raise on a cut instead of reading up to it."""
        self.damage: TapeDamage | None = None
        """What a cut dropped, once a pass over the records has reached it (None: no cut)."""
        self._records = records
        self._raw = raw

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_bytes: int | None = None,
        strict: bool = False,
    ) -> Tape:
        """Open a tape, gzip-compressed or plain (told apart by magic bytes), and check its header.

        Only line 1 is read here; the records are read, and checked, as they are iterated.
        Raises :class:`TapeFormatError` naming the file and the line at fault, here for the
        header and later for a record: a line longer than ``max_line_bytes`` or a tape larger
        than ``max_bytes``, both counted decompressed, is refused before it is held in memory.
        A cut inside the header always raises; a later cut raises only when ``strict``.
        """
        p = Path(path)
        header = _read_header(p, None, max_line_bytes, max_bytes)
        return cls(p, header, max_line_bytes=max_line_bytes, max_bytes=max_bytes, strict=strict)

    @classmethod
    def from_bytes(
        cls,
        raw: bytes,
        path: str | os.PathLike[str] = "<memory>",
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_bytes: int | None = None,
        strict: bool = False,
    ) -> Tape:
        """A tape held in memory, read like a file; ``path`` is only used in error messages."""
        p = Path(path)
        header = _read_header(p, raw, max_line_bytes, max_bytes)
        return cls(
            p, header, max_line_bytes=max_line_bytes, max_bytes=max_bytes, raw=raw, strict=strict
        )

    @staticmethod
    def open_sequence(
        paths: Iterable[str | os.PathLike[str]],
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_bytes: int | None = None,
        strict: bool = False,
    ) -> TapeSequence:
        """The tapes at ``paths`` read one after the other as one tape (a rotated recording's
        files, in order); they must all name the same venue."""
        tapes = [
            Tape.open(p, max_line_bytes=max_line_bytes, max_bytes=max_bytes, strict=strict)
            for p in paths
        ]
        return TapeSequence(tapes)

    @property
    def venue(self) -> str:
        return self.header.venue

    @property
    def dropped_bytes(self) -> int:
        """Bytes a cut dropped (see :attr:`damage`); 0 for a whole tape or before a full pass."""
        return 0 if self.damage is None else self.damage.dropped_bytes

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
        lines = _lines(
            path,
            self._raw,
            self.max_line_bytes,
            max_bytes,
            loading=loading,
            strict=self.strict,
            on_damage=self._damaged,
        )
        for number, text in lines:
            if number == 1 or _blank(text):
                # Line 1 is the header, checked by open(); blank lines are the newline after
                # the last record or strays, skipped as they always were.
                continue
            yield _parse_record(_loads(text, number, path), number, path)

    def _damaged(self, damage: TapeDamage) -> None:
        if self.damage is None:
            log.warning("%s", damage)
        self.damage = damage


class TapeSequence(Tape):
    """Several tapes of one venue read as one, in order: the files of a rotated recording.

    The header is the first tape's; each record keeps its line number in its own file.
    :attr:`damage` is the last cut found in any of them, :attr:`damages` all of them.
    """

    __slots__ = ("tapes",)

    def __init__(self, tapes: list[Tape]) -> None:
        if not tapes:
            raise ValueError("a tape sequence needs at least one tape")
        first = tapes[0]
        for tape in tapes[1:]:
            if tape.venue != first.venue:
                raise TapeFormatError(
                    f"{tape.path}: a {tape.venue} tape cannot follow {first.path}, "
                    f"a {first.venue} tape, in one sequence"
                )
        super().__init__(
            first.path,
            first.header,
            max_line_bytes=first.max_line_bytes,
            max_bytes=first.max_bytes,
            strict=first.strict,
        )
        self.tapes = tapes

    @property
    def damages(self) -> list[TapeDamage]:
        return [tape.damage for tape in self.tapes if tape.damage is not None]

    @property
    def dropped_bytes(self) -> int:
        return sum(damage.dropped_bytes for damage in self.damages)

    def __repr__(self) -> str:
        return f"TapeSequence({[str(t.path) for t in self.tapes]!r}, venue={self.venue!r})"

    def _stream(self, max_bytes: int | None, *, loading: bool = False) -> Iterator[TapeRecord]:
        for tape in self.tapes:
            yield from tape._stream(max_bytes, loading=loading)
            if tape.damage is not None:
                self.damage = tape.damage


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
    strict: bool = True,
    on_damage: Callable[[TapeDamage], None] | None = None,
) -> Generator[tuple[int, bytes | bytearray], None, None]:
    """Numbered lines, each with its newline, of ``raw`` or else of the file at ``path``.

    A cut ends the lines early: the last whole line is the last one given, and ``on_damage``
    hears what was dropped (with ``strict``, :class:`TapeFormatError` is raised instead).
    """
    with ExitStack() as stack:
        stream: IO[bytes]
        if raw is not None:
            stream = io.BytesIO(raw)
            magic = raw[:2]
        else:
            buffered = stack.enter_context(open(path, "rb"))
            stream = buffered
            magic = buffered.peek(2)[:2]
        members: MemberReader | None = None
        if magic == GZIP_MAGIC:
            members = MemberReader(stream)
            stream = stack.enter_context(io.BufferedReader(members, _READ_BUFFER))
        readline: Callable[[int], bytes] = stream.readline

        def cut(whole: int, partial: int, reason: str, unreadable: int = 0) -> None:
            damage = TapeDamage(path, whole, reason, partial, unreadable)
            if whole == 0:
                raise _fail(path, None, f"damaged gzip data in line 1: {reason}")
            if strict:
                what = "damaged gzip data" if members is not None else "the tape is cut"
                raise _fail(
                    path,
                    None,
                    f"{what} after line {whole} (lines 1 to {whole} were read whole): {reason}",
                )
            if on_damage is not None:
                on_damage(damage)

        number = 0
        total = 0
        while True:
            # What is left of max_bytes also bounds the line, so that a long line cannot
            # overshoot the tape's limit by up to max_line_bytes.
            room = max_line_bytes if max_bytes is None else min(max_line_bytes, max_bytes - total)
            line = _read_line(readline, room)
            if line is not None and not line:
                damage = members.damage if members is not None else None
                if damage is not None:
                    cut(number, 0, damage.reason, damage.unreadable_bytes)
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
            if not line.endswith(b"\n") and not _blank(line):
                # The last line of what could be read. After damage it is cut short; in a
                # whole file it may simply lack its newline, which is fine if it parses.
                damage = members.damage if members is not None else None
                if damage is not None:
                    cut(number - 1, len(line), damage.reason, damage.unreadable_bytes)
                    return
                if not strict and number > 1 and not _parses(line):
                    cut(number - 1, len(line), "the last line has no end")
                    return
            total += len(line)
            # The newline stays: JSON allows it, and cutting it off would copy the line.
            yield number, line


def _parses(text: bytes | bytearray) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


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
    """Write a tape record by record, so that a crash loses only its last moments.

    The file is gzip-compressed when its name ends with ``.gz``.  Every record method takes the
    receive time in Unix nanoseconds (``ts_ns``; the current time when omitted) and returns the
    :class:`TapeRecord` that reading the file back will produce.  Note that :meth:`close` writes
    a ``close`` record for a connection; :meth:`finish` (or leaving the ``with`` block) flushes
    and closes the file.

    Records wait in memory until a flush writes them out as one complete gzip member (plain
    lines for an uncompressed tape).  A thread of the writer's own flushes every
    ``flush_interval`` seconds, and sooner once ``flush_bytes`` are waiting, so compressing and
    writing never hold up the caller; with ``fsync`` each flush also reaches the disk before the
    next.  A killed process therefore loses at most the records of its last ``flush_interval``,
    and since every member written is whole, a reader reads everything before them.
    :meth:`finish` ends a gzip tape with an end mark, by which a reader tells a tape that was
    closed from one that was cut.

    With ``rotate_bytes`` or ``rotate_seconds`` the recording goes to numbered files, each a
    whole tape with its own header: ``NAME.00001.20240808T120000Z.jsonl.gz`` (the number, then
    the UTC time the file was started) for ``path="NAME.jsonl.gz"``.  A file is closed by the
    flush that takes it to ``rotate_bytes`` (as written, compressed) or past ``rotate_seconds``
    of age, and the next one is started by the next records; :attr:`paths` lists the files.
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
        flush_interval: float | None = DEFAULT_FLUSH_INTERVAL,
        flush_bytes: int = DEFAULT_FLUSH_BYTES,
        fsync: bool = True,
        rotate_bytes: int | None = None,
        rotate_seconds: float | None = None,
        compresslevel: int = 6,
    ) -> None:
        if not venue:
            raise ConfigError("a tape needs a venue")
        _check_writing_options(flush_interval, flush_bytes, rotate_bytes, rotate_seconds)
        if not 0 <= compresslevel <= 9:
            raise ConfigError(f"compresslevel must be 0 to 9, got {compresslevel!r}")
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
                raise ConfigError(f"header field {extra_key!r} cannot be set through extra")
            header[extra_key] = extra_value
        self._header = header
        self.base_path = Path(path)
        """The path given; with rotation, the files are named after it."""
        self.path = self.base_path
        """The file being written (with rotation, the newest)."""
        self.paths: list[Path] = []
        """Every file written so far, in order."""
        self.compressed = self.base_path.name.endswith(".gz")
        self.flush_interval = flush_interval
        self.flush_bytes = flush_bytes
        self.fsync = fsync
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self._level = compresslevel
        # _lock guards what record methods touch (buffer, line count); _io_lock the files, so
        # that flushes from the thread and from the caller write whole chunks in order.
        self._lock = threading.Lock()
        self._io_lock = threading.Lock()
        self._buffer = bytearray()
        self._line = 0
        self._segment = 0
        self._file: io.FileIO | None = None
        self._written = 0
        self._started = 0.0
        self._closed = False
        self._error: BaseException | None = None
        self._wake = threading.Event()
        self._stopping = False
        with self._io_lock:
            self._open_file()
        self._thread: threading.Thread | None = None
        if flush_interval is not None:
            self._thread = threading.Thread(
                target=_flush_periodically,
                args=(weakref.ref(self), self._wake, flush_interval),
                name=f"tape-writer {self.base_path.name}",
                daemon=True,
            )
            self._thread.start()

    # -- records ------------------------------------------------------------------------------

    def open(self, conn: str, url: str, ts_ns: int | None = None) -> TapeRecord:
        """Record that websocket connection ``conn`` was opened to ``url``."""
        return self._record("open", ts_ns, conn, url, None)

    def send(self, conn: str, data: str | bytes, ts_ns: int | None = None) -> TapeRecord:
        """Record a frame the client sent on ``conn``: text, or bytes for a binary frame."""
        return self._record("send", ts_ns, conn, None, data)

    def recv(self, conn: str, data: str | bytes, ts_ns: int | None = None) -> TapeRecord:
        """Record a frame the exchange sent on ``conn``, exactly as received: text, or bytes
        for a binary frame (kept as base64)."""
        return self._record("recv", ts_ns, conn, None, data)

    def recv_frame(self, conn: str, raw: bytes, ts_ns: int, *, binary: bool = False) -> None:
        """Record a received frame given as bytes (the feed's hot path): a binary frame when
        ``binary`` (the connection said so) or when the bytes are not UTF-8, else a text one."""
        text: str | None = None
        if not binary:
            with contextlib.suppress(UnicodeDecodeError):
                text = raw.decode()
        obj: dict[str, object] = {"type": "recv", "ts_ns": ts_ns, "conn": conn}
        if text is None:
            obj["data"] = base64.b64encode(raw).decode("ascii")
            obj["encoding"] = BASE64
        else:
            obj["data"] = text
        self._append(obj)

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
        """Write the buffered records to the file now, as one complete gzip member."""
        self._raise_error()
        if not self._closed:
            self._flush()

    def finish(self) -> None:
        """Flush everything, end the file with its end mark and close it.  Calling it again
        does nothing.  Raises the error of a failed flush of the thread, if there was one."""
        if self._closed:
            return
        with self._lock:
            self._closed = True
        try:
            self._stopping = True
            self._wake.set()
            if self._thread is not None:
                self._thread.join()
            if self._error is None:
                self._flush(final=True)
        finally:
            with self._io_lock:
                self._close_file(mark=self._error is None)
        self._raise_error()

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
        self,
        rtype: str,
        ts_ns: int | None,
        conn: str | None,
        url: str | None,
        data: str | bytes | None,
    ) -> TapeRecord:
        if ts_ns is None:
            ts_ns = time.time_ns()
        elif not isinstance(ts_ns, int) or isinstance(ts_ns, bool) or ts_ns < 0:
            raise ValueError(f"ts_ns must be a non-negative integer, got {ts_ns!r}")
        encoding: str | None = None
        if isinstance(data, (bytes, bytearray)):
            data = base64.b64encode(data).decode("ascii")
            encoding = BASE64
        obj: dict[str, object] = {"type": rtype, "ts_ns": ts_ns}
        for key, value in (("conn", conn), ("url", url), ("data", data)):
            if value is not None:
                if not isinstance(value, str):
                    raise TypeError(f"{key} must be a str, got {type(value).__name__}")
                obj[key] = value
        if encoding is not None:
            obj["encoding"] = encoding
        line = self._append(obj)
        return TapeRecord(line, rtype, ts_ns, conn, url, data, encoding)

    def _append(self, obj: dict[str, object]) -> int:
        if self._error is not None:
            self._raise_error()
        text = orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)
        with self._lock:
            if self._closed:
                raise ValueError(f"{self.path}: the tape writer is already finished")
            self._buffer += text
            self._line += 1
            line = self._line
            waiting = len(self._buffer)
        if waiting >= self.flush_bytes:
            if self._thread is None or waiting >= max(_MAX_BUFFER_BYTES, self.flush_bytes):
                # No thread to do it, or the disk is behind: the caller waits for the write.
                self._flush()
            else:
                self._wake.set()
        return line

    def _raise_error(self) -> None:
        if self._error is not None:
            raise OSError(f"{self.path}: writing the tape failed: {self._error}") from self._error

    def _flush(self, *, final: bool = False) -> None:
        with self._io_lock:
            with self._lock:
                chunk, self._buffer = self._buffer, bytearray()
            if chunk:
                if self._file is None:
                    self._open_file()  # the first records after a rotation
                self._write(self._encode(chunk))
            if final or self._file is None or not self._rotation_due():
                return
            # The file is full: it ends here. What came in meanwhile still goes in it, and the
            # next file (opened when records come) numbers its lines from here on.
            with self._lock:
                rest, self._buffer = self._buffer, bytearray()
                self._line = 1
            if rest:
                self._write(self._encode(rest))
            self._close_file(mark=True)

    def _encode(self, chunk: bytearray) -> bytes | bytearray:
        return member(chunk, level=self._level) if self.compressed else chunk

    def _rotation_due(self) -> bool:
        if self.rotate_bytes is not None and self._written >= self.rotate_bytes:
            return True
        age = time.monotonic() - self._started
        return self.rotate_seconds is not None and age >= self.rotate_seconds

    def _segment_path(self) -> Path:
        if self.rotate_bytes is None and self.rotate_seconds is None:
            return self.base_path
        name = self.base_path.name
        suffix = next((s for s in _TAPE_SUFFIXES if name.endswith(s) and name != s), "")
        stem = name[: len(name) - len(suffix)]
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        return self.base_path.with_name(f"{stem}.{self._segment:05d}.{stamp}{suffix}")

    def _open_file(self) -> None:
        self._segment += 1
        path = self._segment_path()
        header = dict(self._header)
        if path != self.base_path:
            header["segment"] = self._segment
            if self.paths:
                header["continues"] = self.paths[-1].name
        self._file = io.FileIO(path, "wb")
        self.path = path
        self.paths.append(path)
        self._written = 0
        self._started = time.monotonic()
        text = orjson.dumps(header, option=orjson.OPT_APPEND_NEWLINE)
        self._write(
            member(text, level=self._level, comment=START_COMMENT) if self.compressed else text
        )
        if self.fsync:
            _fsync_directory(path.parent)
        with self._lock:
            if self._segment == 1:
                self._line = 1

    def _write(self, data: bytes | bytearray) -> None:
        file = self._file
        assert file is not None
        view = memoryview(data)
        while view:
            written = file.write(view)
            view = view[written or 0 :]
        self._written += len(data)
        if self.fsync:
            os.fsync(file.fileno())

    def _close_file(self, *, mark: bool) -> None:
        file, self._file = self._file, None
        if file is None:
            return
        try:
            if mark and self.compressed:
                self._file = file
                self._write(end_mark())
        finally:
            self._file = None
            file.close()


_TAPE_SUFFIXES: Final = (".jsonl.gz", ".json.gz", ".jsonl", ".json", ".gz")


def _flush_periodically(
    ref: weakref.ReferenceType[TapeWriter], wake: threading.Event, interval: float
) -> None:
    """A writer's flushing thread. It holds the writer only while flushing, so a writer that
    was dropped without :meth:`TapeWriter.finish` can still be collected."""
    while True:
        wake.wait(interval)
        wake.clear()
        writer = ref()
        if writer is None or writer._stopping:
            return
        try:
            writer._flush()
        except BaseException as exc:
            # Kept for the caller, who sees it at its next record, flush or finish.
            writer._error = exc
            log.error("%s: writing the tape failed: %s", writer.path, exc)
            return
        del writer


def _fsync_directory(directory: Path) -> None:
    """Makes a new file's directory entry durable, so that the file survives a power loss."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory; the data itself was synced
    finally:
        os.close(fd)


def _check_writing_options(
    flush_interval: float | None,
    flush_bytes: int,
    rotate_bytes: int | None,
    rotate_seconds: float | None,
) -> None:
    if flush_interval is not None and not flush_interval > 0:
        raise ConfigError(
            f"flush_interval must be positive seconds or None, got {flush_interval!r}"
        )
    if not isinstance(flush_bytes, int) or flush_bytes <= 0:
        raise ConfigError(f"flush_bytes must be a positive integer, got {flush_bytes!r}")
    if rotate_bytes is not None and (not isinstance(rotate_bytes, int) or rotate_bytes <= 0):
        raise ConfigError(f"rotate_bytes must be a positive integer, got {rotate_bytes!r}")
    if rotate_seconds is not None and not rotate_seconds > 0:
        raise ConfigError(f"rotate_seconds must be positive, got {rotate_seconds!r}")


@dataclass(frozen=True, slots=True)
class Recording:
    """Where and how a ``Feed`` records its tape (``Feed(record=Recording(...))``).

    A plain path given as ``record=`` means ``Recording(path)``: one file, flushed every
    second, each flush synced to disk.  See :class:`TapeWriter` for the fields.
    """

    path: str | os.PathLike[str]
    rotate_bytes: int | None = None
    rotate_seconds: float | None = None
    flush_interval: float = DEFAULT_FLUSH_INTERVAL
    fsync: bool = True

    def __post_init__(self) -> None:
        _check_writing_options(
            self.flush_interval, DEFAULT_FLUSH_BYTES, self.rotate_bytes, self.rotate_seconds
        )

    @classmethod
    def of(cls, record: str | os.PathLike[str] | Recording) -> Recording:
        """``record`` as a :class:`Recording`, its path checked (:meth:`check`)."""
        recording = record if isinstance(record, Recording) else cls(record)
        recording.check()
        return recording

    def check(self, where: str | None = None) -> None:
        """Raises :class:`ConfigError` unless the tape can be created where it is asked for:
        the directory exists, is one, and may be written; the path is not a directory.
        ``where`` names the setting in the message (default ``record='PATH'``)."""
        path = Path(self.path)
        directory = path.parent
        where = f"record={str(self.path)!r}" if where is None else f"{where} {str(path)!r}"
        if not str(path.name) or path.is_dir():
            raise ConfigError(f"{where}: is a directory; give a file name (e.g. NAME.jsonl.gz)")
        if not directory.exists():
            raise ConfigError(f"{where}: the directory {str(directory)!r} does not exist")
        if not directory.is_dir():
            raise ConfigError(f"{where}: {str(directory)!r} is not a directory")
        if not os.access(directory, os.W_OK | os.X_OK):
            raise ConfigError(f"{where}: no permission to create files in {str(directory)!r}")
        if path.exists() and not os.access(path, os.W_OK):
            raise ConfigError(f"{where}: the file exists and may not be written")

    def writer(self, venue: str, *, note: str | None = None) -> TapeWriter:
        """Opens the tape; a file that cannot be created raises :class:`ConfigError`."""
        try:
            return TapeWriter(
                self.path,
                venue,
                note=note,
                flush_interval=self.flush_interval,
                fsync=self.fsync,
                rotate_bytes=self.rotate_bytes,
                rotate_seconds=self.rotate_seconds,
            )
        except OSError as exc:
            raise ConfigError(f"record={str(self.path)!r}: cannot create the tape: {exc}") from exc
