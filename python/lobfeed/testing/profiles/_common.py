"""What the message-subscribed venue profiles share: recorded frames keyed by subscription.

Each profile classifies every recorded ``recv`` frame once, when the server starts: which
connection of the tape it came from, which subscription keys it belongs to (a key is whatever
identifies one subscription on that venue, say ``("books", "BTC-USDT")``), and whether it
carries the connection's sequence number. A client is then sent, in file order, the frames of
the keys it subscribed to. When several connections of the tape carry the same key, the first
one does (its frames make one coherent stream); a client streams from the connections that own
its keys, and also gets their connection-level frames (heartbeats and the like, which have no
key).

Venues that number every frame of a connection with one counter (Coinbase, Bitfinex) would
see a gap wherever a recorded channel the client did not ask for is left out: their profiles
renumber what they send so the client's connection counts without holes, as the venue's would.
A client that asks for everything the recording client asked for gets the recorded numbers.
"""

from __future__ import annotations

import abc
import gzip
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import orjson

from lobfeed.tape import Tape, TapeRecord
from lobfeed.testing.server import (
    LiveStream,
    RestRequest,
    RestResponse,
    Subscription,
    VenueProfile,
)

#: The first two bytes of every gzip member (RFC 1952).
GZIP_MAGIC = b"\x1f\x8b"

Key = tuple[Any, ...]
"""What identifies one subscription on a venue, such as ``("books", "BTC-USDT")``."""


@dataclass(frozen=True, slots=True)
class FrameInfo:
    """How one recorded frame is served."""

    conn: str
    keys: frozenset[Key] = frozenset()
    """The subscriptions the frame belongs to; empty: a connection-level frame."""
    counted: bool = False
    """The frame carries the connection's sequence number (renumbered when frames are left out)."""


class KeyedSubscription(Subscription):
    """The keys a client subscribed to, and where its replay stands."""

    def __init__(self, path: str = "") -> None:
        super().__init__()
        self.path = path
        self.keys: set[Key] = set()
        self.conns: frozenset[str] = frozenset()
        """The tape connections this client streams from (kept by the profile)."""
        self.skipped = 0
        """Sequence-counted frames of those connections left out so far."""


SubT = TypeVar("SubT", bound=KeyedSubscription)


class KeyedProfile(VenueProfile[SubT], abc.ABC):
    """A profile whose frames are picked by subscription key (see the module docstring)."""

    settle_s = 0.1

    def __init__(self, tape: Tape) -> None:
        super().__init__(tape)
        self.infos: list[FrameInfo | None] = [self.classify(record) for record in self.frames]
        self.owner: dict[Key, str] = {}
        for info in self.infos:
            if info is not None:
                for key in info.keys:
                    self.owner.setdefault(key, info.conn)
        self.recorded_rest = RecordedRest(tape)

    @abc.abstractmethod
    def classify(self, record: TapeRecord) -> FrameInfo | None:
        """How recorded frame ``record`` is served; ``None``: never (acks the profile makes)."""

    def renumber(self, text: str, skipped: int) -> str:
        """``text`` with its connection sequence number lowered by ``skipped``."""
        return text

    # -- subscription state ------------------------------------------------------------------

    def subscribe(self, sub: SubT, keys: Iterable[Key]) -> None:
        sub.keys.update(keys)
        self._settle(sub)

    def unsubscribe(self, sub: SubT, keys: Iterable[Key]) -> None:
        sub.keys.difference_update(keys)
        self._settle(sub)

    def _settle(self, sub: SubT) -> None:
        sub.conns = frozenset(self.owner[key] for key in sub.keys if key in self.owner)
        sub.ready = sub.ready or bool(sub.keys)

    def recorded(self, key: Key) -> bool:
        """Whether the tape holds frames of ``key``."""
        return key in self.owner

    # -- replay ------------------------------------------------------------------------------

    def frame_for(self, sub: SubT, index: int, record: TapeRecord) -> str | bytes | None:
        info = self.infos[index]
        if info is None or info.conn not in sub.conns:
            return None
        if info.keys and not any(
            key in sub.keys and self.owner[key] == info.conn for key in info.keys
        ):
            if info.counted:
                sub.skipped += 1
            return None
        if record.encoding is not None:
            # A binary frame goes back binary, byte for byte.
            return record.payload
        text = record.data or ""
        if info.counted and sub.skipped:
            return self.renumber(text, sub.skipped)
        return text

    # -- REST --------------------------------------------------------------------------------

    def rest(self, request: RestRequest) -> RestResponse:
        answer = self.recorded_rest.answer(request)
        if answer is not None:
            return answer
        return self.not_found(request)

    def not_found(self, request: RestRequest) -> RestResponse:
        return RestResponse.json(404, {"error": "not found", "path": request.path})


class RecordedRest:
    """Answers GET requests with the tape's ``http`` records.

    A record answers a request for the same path whose query does not contradict the recorded
    one; the record agreeing on the most parameters wins, and among those the latest one
    recorded at or before the replay position of the clients (the first one before any).
    """

    def __init__(self, tape: Tape) -> None:
        self.records: list[tuple[str, dict[str, list[str]], int, str]] = []
        for record in tape.iter_records("http"):
            url = urlsplit(record.url or "")
            self.records.append((url.path, parse_qs(url.query), record.ts_ns, record.data or ""))

    def paths(self) -> set[str]:
        return {path for path, _, _, _ in self.records}

    def answer(self, request: RestRequest) -> RestResponse | None:
        position = _position(request.streams)
        best: tuple[int, int] | None = None
        body: str | None = None
        for path, query, ts_ns, text in self.records:
            if path != request.path:
                continue
            if any(
                name in request.query and request.query[name][:1] != values[:1]
                for name, values in query.items()
            ):
                continue
            agreed = sum(1 for name in query if name in request.query)
            in_time = position is not None and ts_ns <= position
            rank = (agreed, ts_ns if in_time else -1)
            if best is None or rank > best:  # on a tie the first recorded stays
                best, body = rank, text
        if body is None:
            return None
        return RestResponse(200, body.encode())


def _position(streams: Iterable[LiveStream]) -> int | None:
    positions = [s.position_ns for s in streams if s.position_ns is not None]
    return max(positions) if positions else None


def record_json(record: TapeRecord) -> Any:
    """The JSON value of a recorded frame, or None when it is not JSON (a text `pong`, say).
    A binary frame is read from its bytes: inflated first when it is gzip (HTX), as is when
    it is plain JSON (Upbit)."""
    try:
        if record.encoding is None:
            return orjson.loads(record.data or "")
        payload = record.payload
        if payload[:2] == GZIP_MAGIC:
            payload = gzip.decompress(payload)
        return orjson.loads(payload)
    except (orjson.JSONDecodeError, OSError, EOFError):
        return None
