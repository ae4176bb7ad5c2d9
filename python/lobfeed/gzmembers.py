"""Gzip files made of many members, written so that a crash can only cut the last one.

A tape writer compresses each flush into its own complete gzip member (RFC 1952 allows any
number of members in a row, and every gzip reader decompresses them as one stream). Whatever a
killed writer leaves behind is then a run of whole members, at worst followed by one member cut
short. :class:`MemberReader` reads such a file member by member and, instead of failing on the
cut, stops there and says what it could not read, so the data before the cut stays usable.

Two members carry a comment in their gzip header, which other gzip readers skip: the first
member of a file written this way says that the file will end with an end mark, and the end
mark is an empty member written when the file is closed properly. A file whose first member
promises an end mark and which has none was not closed: its writer was killed, or is still
writing.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Final

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

GZIP_MAGIC: Final = b"\x1f\x8b"
START_COMMENT: Final = b"lobfeed-tape: one member per flush, end mark on close"
END_COMMENT: Final = b"lobfeed-tape: end"

_DEFLATE: Final = 8
_FTEXT, _FHCRC, _FEXTRA, _FNAME, _FCOMMENT = 1, 2, 4, 8, 16
# Compressed bytes read from the file at a time.
_CHUNK: Final = 1 << 16
# Compressed bytes fed at a time when finding how far damaged data can be read, and the most
# output kept from before the damage (what one failed step could have produced, with room).
_SALVAGE_STEP: Final = 256
_SALVAGE_MAX: Final = 16 << 20


def member(data: bytes | bytearray, *, level: int = 6, comment: bytes | None = None) -> bytes:
    """``data`` as one complete gzip member (mtime 0, so equal data gives equal bytes)."""
    flags = _FCOMMENT if comment is not None else 0
    head = bytearray(GZIP_MAGIC)
    head += struct.pack("<BBIBB", _DEFLATE, flags, 0, 0, 255)
    if comment is not None:
        if b"\x00" in comment:
            raise ValueError("a gzip comment cannot hold a NUL byte")
        head += comment + b"\x00"
    deflate = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = deflate.compress(data) + deflate.flush()
    trailer = struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    return bytes(head) + body + trailer


def end_mark() -> bytes:
    """The empty member that closes a file whose first member carries :data:`START_COMMENT`."""
    return member(b"", comment=END_COMMENT)


def header_comment(head: bytes) -> bytes | None:
    """The comment of the gzip member header at the start of ``head``; None if it has none
    or ``head`` is too short to tell."""
    if len(head) < 10 or head[:2] != GZIP_MAGIC:
        return None
    flags = head[3]
    if not flags & _FCOMMENT:
        return None
    pos = 10
    if flags & _FEXTRA:
        if len(head) < pos + 2:
            return None
        pos += 2 + int.from_bytes(head[pos : pos + 2], "little")
    if flags & _FNAME:
        end = head.find(b"\x00", pos)
        if end < 0:
            return None
        pos = end + 1
    end = head.find(b"\x00", pos)
    return None if end < 0 else head[pos:end]


@dataclass(frozen=True, slots=True)
class StreamDamage:
    """Why a :class:`MemberReader` stopped before the end of its file."""

    reason: str
    unreadable_bytes: int
    """Bytes of the file from where reading stopped to its end (0 for a member cut short:
    all of it was read, only its end is missing)."""


class MemberReader(io.RawIOBase):
    """The decompressed bytes of a multi-member gzip file, up to its first damage.

    Reading stops, as at a normal end, at a member cut short, at bytes that do not decompress,
    or at bytes after a member that do not start another one; :attr:`damage` then says which.
    Output is produced in bounded steps (at most the size asked for), so a member that
    decompresses to gigabytes is never held whole.
    """

    def __init__(self, source: IO[bytes]) -> None:
        super().__init__()
        self._source = source
        self._input = b""
        self._decompressor: zlib._Decompress | None = None
        self._output = b""
        self._eof = False
        self._members = 0
        self.expects_end_mark = False
        """The first member promised an end mark."""
        self.ended_with_mark = False
        """The last whole member read is the end mark."""
        self.damage: StreamDamage | None = None

    @property
    def members(self) -> int:
        """Whole members read so far."""
        return self._members

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        want = len(view)
        while not self._output:
            if self._eof or want == 0:
                return 0
            self._advance(want)
        n = min(want, len(self._output))
        view[:n] = self._output[:n]
        self._output = self._output[n:]
        return n

    # -- internals ----------------------------------------------------------------------------

    def _fill(self) -> bool:
        """Reads more compressed bytes; False at the end of the file."""
        more = self._source.read(_CHUNK)
        if not more:
            return False
        self._input = self._input + more if self._input else more
        return True

    def _stop(self, reason: str | None = None, unreadable: int = 0) -> None:
        self._eof = True
        if reason is not None:
            self.damage = StreamDamage(reason, unreadable)

    def _unread_rest(self) -> int:
        """Bytes from the current position to the end of the file."""
        rest = len(self._input)
        while True:
            more = self._source.read(_CHUNK)
            if not more:
                return rest
            rest += len(more)

    def _advance(self, want: int) -> None:
        if self._decompressor is None:
            self._start_member()
            if self._eof:
                return
        decompressor = self._decompressor
        assert decompressor is not None
        if not self._input and not self._fill():
            # All input was taken in, but output held back by the size limit may remain.
            self._decompress(decompressor, b"", want)
            if not self._output and self._decompressor is not None:
                self._stop(f"gzip member {self._members + 1} is cut short")
            return
        self._decompress(decompressor, self._input, want)

    def _decompress(self, decompressor: zlib._Decompress, data: bytes, want: int) -> None:
        before = decompressor.copy()
        try:
            out = decompressor.decompress(data, want)
        except zlib.error as exc:
            self._salvage(before, data, str(exc))
            return
        if decompressor.eof:
            # Everything past the member's end is in unused_data (unconsumed_tail may repeat it).
            self._input = decompressor.unused_data
            self._decompressor = None
            self._members += 1
        else:
            self._input = decompressor.unconsumed_tail
        self._output = out

    def _start_member(self) -> None:
        while len(self._input) < 512 and self._fill():
            pass
        if not self._input:
            if self.expects_end_mark and not self.ended_with_mark:
                self._stop("no end mark: the writer did not close the file (killed, or writing)")
            else:
                self._stop()
            return
        if len(self._input) < 2 and GZIP_MAGIC.startswith(self._input):
            self._stop(f"gzip member {self._members + 1} is cut short")
            return
        if self._input[:2] != GZIP_MAGIC:
            rest = self._unread_rest()
            what = "zero bytes" if not self._input.strip(b"\x00") else "bytes that are not gzip"
            self._stop(f"{what} after gzip member {self._members}", rest)
            return
        comment = header_comment(self._input)
        if self._members == 0 and comment == START_COMMENT:
            self.expects_end_mark = True
        self.ended_with_mark = comment == END_COMMENT
        self._decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def _salvage(self, decompressor: zlib._Decompress, data: bytes, error: str) -> None:
        """Damaged deflate data: keeps what decompresses before the damage, then stops."""
        kept: list[bytes] = []
        offset = size = 0
        while offset < len(data) and size < _SALVAGE_MAX:
            piece = data[offset : offset + _SALVAGE_STEP]
            try:
                out = decompressor.decompress(piece, _SALVAGE_MAX - size)
            except zlib.error:
                break
            kept.append(out)
            size += len(out)
            offset += len(piece) - len(decompressor.unconsumed_tail)
        self._input = data[offset:]
        unreadable = self._unread_rest()
        self._output = b"".join(kept)
        self._stop(f"damaged data in gzip member {self._members + 1} ({error})", unreadable)
