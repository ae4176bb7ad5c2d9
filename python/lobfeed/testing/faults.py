"""Faults the local exchange injects: what a :class:`FaultPlan` holds, its spec, and frame mutators.

A plan is reproducible: decisions are either fixed (frame indices, counts, durations) or drawn
from a :class:`random.Random` seeded by ``seed`` and the connection's index, in frame order, so
the same plan and tape give the same faults on every run (timed faults still depend on the wall
clock, as real ones do).

Frame indices (``N`` below) count, per connection and from 0, the recorded frames that
connection would be sent (its subscription's frames); "after N frames" means once frames 0 to
N-1 went through the fault pipeline, whether or not a fault dropped some of them.

Spec grammar (``lobfeed serve --faults SPEC``, :meth:`FaultPlan.parse`), items joined by
``,``; the empty spec is the empty plan::

    seed=INT                     seed of the random faults (default 0)
    close=CODE@WHEN              close with CODE (1000, 1001, 1011: close frame; 1006: TCP abort)
                                 WHEN: N (after N frames; 0 = right after the handshake, before
                                 any frame and before the client's subscribe is read), Ts (T
                                 seconds after the handshake) or pP (probability P per frame);
                                 several close items may differ in WHEN, not in CODE
    conns=K|all                  connections hit by close/stall/tcpstall/notice: the first K
                                 (default 1)
    lifetime=Ls                  every connection is closed with 1001 after L seconds
    stall=Ts[@N]                 no data for T s after N frames (default 0); pings answered
    tcpstall=Ts[@N]              neither read nor write the socket for T s after N frames
    refuse=Ts[@start|@close]     TCP connects refused for T s from server start (default) or
                                 from the end of the first websocket connection
    reset=Ts[@start|@close]      the same, but connections are accepted then reset (RST)
    status=S[@K]                 answer websocket upgrades with HTTP status S (first K, or all)
    rest=KIND[:ARG][@K|@A-B|@A-] snapshot requests faulted: @K the first K, @A-B the A-th to the
                                 B-th, @A- from the A-th on (counting from 1); default: all
                                 KIND: 429, 418 (both with Retry-After), 404, 500, 503,
                                 slow:Ts (answer after T s), html, truncated (JSON cut short),
                                 venue-error (200 with the venue's error JSON),
                                 oversized:BYTES (a 200 body of that size, streamed)
    restsym=SYMBOL               rest faults only for snapshot requests of SYMBOL
    retry=S                      the Retry-After of 429/418 answers (default 1)
    drop|dup|reorder|corrupt|checksum|crossed=IDX[/IDX..]|pP
                                 frame faults by index (IDX: N or A-B, inclusive) or at random
                                 with probability P per frame (one item of each form per
                                 kind may be given); see the FaultPlan fields
    fconns=K|all                 connections hit by frame faults: the first K (default all)
    rewind=K@N                   after N frames, re-send the last K frames (ids go backwards)
    hold=SYMBOL:Ts[@N]           from frame N, hold back SYMBOL's frames for T s, then send them
    foreign=M                    after each renamable frame, a copy for one of M unknown symbols
    noresub                      ignore (do not answer) subscribe messages after the first
    notice=N                     after N frames, send the venue's "you will be disconnected for
                                 maintenance" notice once, on the connections conns= selects
                                 (the profile's notice_frame(); a venue without one refuses
                                 the plan with FaultSpecError when the server is made)
    notice_close_after=Ts        close that connection with 1001 T s after its notice
    rest429=N cut=N malformed=N oversized=BYTES
                                 the original plan: first N snapshots 429; first connection
                                 aborted after N frames; garbage frame after N frames (first
                                 connection); a BYTES-long frame first thing (first connection)

For example ``close=1006@200,conns=all,seed=7,rest=html@1-3,stall=5s@100``.
"""

from __future__ import annotations

import random
import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from typing import Final

import orjson

from lobfeed.exceptions import FaultSpecError

__all__ = [
    "CLOSE_CODES",
    "FRAME_FAULTS",
    "MALFORMED_FRAME",
    "REST_FAULTS",
    "ConnectionFaults",
    "FaultPlan",
    "corrupt_checksum",
    "cross_book",
    "frame_symbol",
    "garbage_frame",
    "oversized_frame",
    "rename_symbol",
    "truncate_frame",
]

MALFORMED_FRAME: Final = '{"stream":"x","data":{'
"""The garbage text frame sent by :attr:`FaultPlan.malformed_after`."""

CLOSE_CODES: Final = (1000, 1001, 1011, 1006)
REST_FAULTS: Final = (
    "429",
    "418",
    "404",
    "500",
    "503",
    "slow",
    "html",
    "truncated",
    "venue-error",
    "oversized",
)
FRAME_FAULTS: Final = ("drop", "dup", "reorder", "corrupt", "checksum", "crossed")

_KEYS: Final = (
    "seed close conns lifetime stall tcpstall refuse reset status rest restsym retry "
    + " ".join(FRAME_FAULTS)
    + " fconns rewind hold foreign noresub notice notice_close_after"
    + " rest429 cut malformed oversized"
)


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Failures to inject, for tests of a client's error handling (see the module docstring).

    Connections are numbered from 0 in the order the server accepted them.
    """

    seed: int = 0
    """Seed of every random decision (with the connection index)."""

    # -- connection closes ------------------------------------------------------------------
    close_code: int | None = None
    """Code of the planned close: 1000, 1001, 1011 (close frame) or 1006 (TCP abort)."""
    close_after_frames: int | None = None
    """Close after this many frames; 0: right after the handshake, before reading anything."""
    close_after_s: float | None = None
    """Close this many seconds after the handshake."""
    close_prob: float = 0.0
    """Close after each frame with this probability."""
    conns: int | None = 1
    """The close, stall and TCP stall hit connections ``0..conns-1``; ``None``: every one."""
    lifetime_s: float | None = None
    """Every connection is closed with 1001 this long after its handshake (Binance: 24 h)."""

    # -- stalls ----------------------------------------------------------------------------
    stall_s: float | None = None
    """Send no data for this long (pings still answered)..."""
    stall_after: int = 0
    """...after this many frames."""
    tcp_stall_s: float | None = None
    """Neither read nor write the socket for this long (pings unanswered)..."""
    tcp_stall_after: int = 0
    """...after this many frames."""

    # -- connection refusals and handshake statuses ----------------------------------------
    refuse_s: float | None = None
    """Refuse TCP connections for this long (websocket and REST alike)."""
    refuse_reset: bool = False
    """Accept and reset (RST) instead of not listening."""
    refuse_after_close: bool = False
    """The refusal starts when the first websocket connection ends, not at server start."""
    handshake_status: int | None = None
    """Answer websocket upgrades with this HTTP status instead of 101..."""
    handshake_first: int | None = None
    """...for the first this many upgrade attempts (``None``: every attempt)."""

    # -- REST snapshots ---------------------------------------------------------------------
    rest_fault: str | None = None
    """One of :data:`REST_FAULTS`, for the snapshot requests numbered ``rest_from..rest_to``."""
    rest_from: int = 1
    """First faulty snapshot request, counting from 1 (only ``rest_symbol``'s if set)."""
    rest_to: int | None = None
    """Last faulty snapshot request (``None``: no last one)."""
    rest_symbol: str | None = None
    """Only snapshot requests naming this symbol (case-insensitive) are faulty and counted."""
    rest_delay_s: float = 0.0
    """``slow``: the answer comes after this long."""
    rest_body_bytes: int = 0
    """``oversized``: the size of the 200 body."""
    retry_after: int = 1
    """``Retry-After`` of 429 and 418 answers."""

    # -- frame faults (per connection) ------------------------------------------------------
    drop_frames: frozenset[int] = frozenset()
    """Frame indices left out (the client sees a gap)."""
    drop_prob: float = 0.0
    dup_frames: frozenset[int] = frozenset()
    """Frame indices sent twice in a row."""
    dup_prob: float = 0.0
    reorder_frames: frozenset[int] = frozenset()
    """Frame indices swapped with the frame after them."""
    reorder_prob: float = 0.0
    corrupt_frames: frozenset[int] = frozenset()
    """Frame indices replaced by truncated JSON or garbage (chosen by the seeded random)."""
    corrupt_prob: float = 0.0
    checksum_frames: frozenset[int] = frozenset()
    """From each index, the next frame carrying a checksum (OKX ``checksum``, Kraken ``c``)
    gets a wrong one."""
    checksum_prob: float = 0.0
    crossed_frames: frozenset[int] = frozenset()
    """From each index, the next Binance depth update gains a bid at 10x its highest price,
    ids untouched: the book crosses."""
    crossed_prob: float = 0.0
    frame_conns: int | None = None
    """Frame faults, rewind, hold and foreign hit connections ``0..frame_conns-1``
    (``None``: every one)."""
    rewind_after: int | None = None
    """After this many frames, the last :attr:`rewind_by` frames are sent again."""
    rewind_by: int = 0
    hold_symbol: str | None = None
    """From frame :attr:`hold_after`, this symbol's frames are held back for :attr:`hold_s`
    while other symbols flow; then they are sent, in order."""
    hold_s: float = 0.0
    hold_after: int = 0
    foreign_symbols: int = 0
    """After each frame that can be renamed (Binance), one copy renamed to a symbol nobody
    subscribed to, cycling through ``FAKE1USDT..FAKE{M}USDT``."""
    ignore_resubscribe: bool = False
    """Subscribe and unsubscribe messages after the first subscription get no answer and no
    effect."""

    # -- venue notices --------------------------------------------------------------------
    notice_after: int | None = None
    """After this many frames, the venue's maintenance notice (the profile's
    ``notice_frame()``) is sent once on each connection :attr:`conns` selects."""
    notice_close_after_s: float | None = None
    """That connection is closed with 1001 this long after its notice (as the venue would)."""

    # -- the original plan ------------------------------------------------------------------
    rest_429_first_n: int = 0
    """The first N snapshot requests are answered 429 with ``Retry-After: 1``."""
    drop_after_frames: int | None = None
    """Abort the TCP connection (no close frame) of the first connection after N frames."""
    malformed_after: int | None = None
    """Send :data:`MALFORMED_FRAME` once, on the first connection, after N frames."""
    oversized_frame_bytes: int | None = None
    """Send once, first thing on the first connection, a text frame of this many bytes."""

    def __post_init__(self) -> None:
        closing = (
            self.close_after_frames is not None
            or self.close_after_s is not None
            or self.close_prob > 0
        )
        if closing and self.close_code not in CLOSE_CODES:
            raise FaultSpecError(
                f"close code {self.close_code!r} is not one of {', '.join(map(str, CLOSE_CODES))}"
            )
        if self.rest_fault is not None and self.rest_fault not in REST_FAULTS:
            raise FaultSpecError(
                f"rest fault {self.rest_fault!r} is not one of {', '.join(REST_FAULTS)}"
            )
        if self.notice_close_after_s is not None and self.notice_after is None:
            raise FaultSpecError("notice_close_after needs notice=N")
        for f in fields(self):
            if f.name.endswith("_prob"):
                value = getattr(self, f.name)
                if not 0.0 <= value <= 1.0:
                    raise FaultSpecError(f"{f.name} must be within [0, 1], got {value!r}")

    # -- questions the server asks ----------------------------------------------------------

    def closes(self, conn: int) -> bool:
        return self.conns is None or conn < self.conns

    def frame_faults(self, conn: int) -> bool:
        return self.frame_conns is None or conn < self.frame_conns

    def rest_fault_for(self, number: int) -> str | None:
        """The fault of the ``number``-th (from 1) counted snapshot request, if any."""
        if self.rest_fault is None or number < self.rest_from:
            return None
        if self.rest_to is not None and number > self.rest_to:
            return None
        return self.rest_fault

    # -- spec -------------------------------------------------------------------------------

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        """The plan a spec describes (grammar: the module docstring); raises FaultSpecError."""
        kwargs: dict[str, object] = {}
        for raw in spec.split(","):
            item = raw.strip()
            if not item:
                continue
            key, sep, value = item.partition("=")
            key = key.strip().lower()
            value = value.strip()
            part: dict[str, object] = {}
            if "close_code" in kwargs:
                part["close_code"] = kwargs["close_code"]
            try:
                _parse_item(part, key, value, bool(sep))
                again = [k for k in part if k in kwargs and k != "close_code"]
                if again:
                    raise FaultSpecError(f"repeats what an earlier item set ({', '.join(again)})")
            except ValueError as exc:
                raise FaultSpecError(f"bad fault spec item {item!r}: {exc}") from None
            kwargs.update(part)
        try:
            return cls(**kwargs)  # type: ignore[arg-type]
        except FaultSpecError as exc:
            raise FaultSpecError(f"bad fault spec {spec!r}: {exc}") from None

    def spec(self) -> str:
        """The spec :meth:`parse` turns back into this plan."""
        items: list[str] = []
        if self.seed:
            items.append(f"seed={self.seed}")
        for when in (
            None if self.close_after_frames is None else str(self.close_after_frames),
            None if self.close_after_s is None else _secs(self.close_after_s),
            _prob(self.close_prob) if self.close_prob else None,
        ):
            if when is not None:
                items.append(f"close={self.close_code}@{when}")
        if self.conns != 1:
            items.append(f"conns={_count(self.conns)}")
        if self.lifetime_s is not None:
            items.append(f"lifetime={_secs(self.lifetime_s)}")
        if self.stall_s is not None:
            items.append(f"stall={_secs(self.stall_s)}@{self.stall_after}")
        if self.tcp_stall_s is not None:
            items.append(f"tcpstall={_secs(self.tcp_stall_s)}@{self.tcp_stall_after}")
        if self.refuse_s is not None:
            key = "reset" if self.refuse_reset else "refuse"
            origin = "close" if self.refuse_after_close else "start"
            items.append(f"{key}={_secs(self.refuse_s)}@{origin}")
        if self.handshake_status is not None:
            first = "" if self.handshake_first is None else f"@{self.handshake_first}"
            items.append(f"status={self.handshake_status}{first}")
        if self.rest_fault is not None:
            kind = self.rest_fault
            if kind == "slow":
                kind += f":{_secs(self.rest_delay_s)}"
            elif kind == "oversized":
                kind += f":{self.rest_body_bytes}"
            if self.rest_to is None:
                span = "" if self.rest_from == 1 else f"@{self.rest_from}-"
            elif self.rest_from == 1:
                span = f"@{self.rest_to}"
            else:
                span = f"@{self.rest_from}-{self.rest_to}"
            items.append(f"rest={kind}{span}")
        if self.rest_symbol is not None:
            items.append(f"restsym={self.rest_symbol}")
        if self.retry_after != 1:
            items.append(f"retry={self.retry_after}")
        for kind in FRAME_FAULTS:
            indices: frozenset[int] = getattr(self, f"{kind}_frames")
            prob: float = getattr(self, f"{kind}_prob")
            if indices:
                items.append(f"{kind}={_indices(indices)}")
            if prob:
                items.append(f"{kind}={_prob(prob)}")
        if self.frame_conns is not None:
            items.append(f"fconns={self.frame_conns}")
        if self.rewind_after is not None:
            items.append(f"rewind={self.rewind_by}@{self.rewind_after}")
        if self.hold_symbol is not None:
            items.append(f"hold={self.hold_symbol}:{_secs(self.hold_s)}@{self.hold_after}")
        if self.foreign_symbols:
            items.append(f"foreign={self.foreign_symbols}")
        if self.ignore_resubscribe:
            items.append("noresub")
        if self.notice_after is not None:
            items.append(f"notice={self.notice_after}")
        if self.notice_close_after_s is not None:
            items.append(f"notice_close_after={_secs(self.notice_close_after_s)}")
        if self.rest_429_first_n:
            items.append(f"rest429={self.rest_429_first_n}")
        if self.drop_after_frames is not None:
            items.append(f"cut={self.drop_after_frames}")
        if self.malformed_after is not None:
            items.append(f"malformed={self.malformed_after}")
        if self.oversized_frame_bytes is not None:
            items.append(f"oversized={self.oversized_frame_bytes}")
        return ",".join(items)

    def __str__(self) -> str:
        return self.spec()


# -- spec pieces -------------------------------------------------------------------------------


def _secs(value: float) -> str:
    return f"{int(value)}s" if float(value).is_integer() else f"{value!r}s"


def _prob(value: float) -> str:
    return f"p{value!r}"


def _count(value: int | None) -> str:
    return "all" if value is None else str(value)


def _indices(values: Iterable[int]) -> str:
    ordered = sorted(values)
    runs: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        runs.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return "/".join(runs)


def _int(text: str, what: str, minimum: int = 0) -> int:
    if not re.fullmatch(r"\d+", text):
        raise FaultSpecError(f"{what} must be an integer >= {minimum}, got {text!r}")
    value = int(text)
    if value < minimum:
        raise FaultSpecError(f"{what} must be an integer >= {minimum}, got {text!r}")
    return value


def _seconds(text: str, what: str) -> float:
    body = text[:-1] if text.endswith("s") else text
    try:
        value = float(body)
    except ValueError:
        value = -1.0
    if not (value >= 0 and value != float("inf")):
        raise FaultSpecError(f"{what} must be seconds like 2s or 0.5s, got {text!r}")
    return value


def _probability(text: str, what: str) -> float:
    try:
        value = float(text[1:])
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise FaultSpecError(f"{what} must be a probability like p0.01, got {text!r}")
    return value


def _conns(text: str, what: str) -> int | None:
    return None if text.lower() == "all" else _int(text, what, 1)


def _parse_indices(text: str, what: str) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split("/"):
        low, dash, high = part.partition("-")
        a = _int(low, what)
        b = _int(high, what) if dash else a
        if b < a:
            raise FaultSpecError(f"{what}: range {part!r} runs backwards")
        if b - a > 10_000_000:
            raise FaultSpecError(f"{what}: range {part!r} is too long")
        out.update(range(a, b + 1))
    return frozenset(out)


def _parse_item(kw: dict[str, object], key: str, value: str, has_value: bool) -> None:
    if key == "noresub":
        if has_value:
            raise FaultSpecError("noresub takes no value")
        kw["ignore_resubscribe"] = True
        return
    if key not in _KEYS.split():
        raise FaultSpecError(f"unknown key {key!r}; allowed: {_KEYS.replace(' ', ', ')}")
    if not has_value or not value:
        raise FaultSpecError(f"{key} needs a value ({key}=...)")
    head, at, tail = value.partition("@")
    if key == "seed":
        kw["seed"] = _int(value, "seed")
    elif key == "close":
        if not at:
            raise FaultSpecError("close needs CODE@WHEN, e.g. close=1006@200 or close=1001@5s")
        code = _int(head, "close code")
        if code not in CLOSE_CODES:
            raise FaultSpecError(f"close code must be one of {', '.join(map(str, CLOSE_CODES))}")
        if kw.get("close_code", code) != code:
            raise FaultSpecError("all close items must have the same code")
        kw["close_code"] = code
        if tail.startswith("p"):
            kw["close_prob"] = _probability(tail, "close probability")
        elif tail.endswith("s"):
            kw["close_after_s"] = _seconds(tail, "close time")
        else:
            kw["close_after_frames"] = _int(tail, "close frame count (N, Ts or pP)")
    elif key == "conns":
        kw["conns"] = _conns(value, "conns (K or all)")
    elif key == "fconns":
        kw["frame_conns"] = _conns(value, "fconns (K or all)")
    elif key == "lifetime":
        kw["lifetime_s"] = _seconds(value, "lifetime")
    elif key in ("stall", "tcpstall"):
        prefix = "stall" if key == "stall" else "tcp_stall"
        kw[f"{prefix}_s"] = _seconds(head, f"{key} duration")
        kw[f"{prefix}_after"] = _int(tail, f"{key} frame count") if at else 0
    elif key in ("refuse", "reset"):
        kw["refuse_s"] = _seconds(head, f"{key} duration")
        kw["refuse_reset"] = key == "reset"
        if at and tail not in ("start", "close"):
            raise FaultSpecError(f"{key} starts @start or @close, not @{tail}")
        kw["refuse_after_close"] = tail == "close"
    elif key == "status":
        status = _int(head, "status", 100)
        if not 200 <= status <= 599 or status == 101:
            raise FaultSpecError("status must be an HTTP status 200..599")
        kw["handshake_status"] = status
        kw["handshake_first"] = _int(tail, "status attempt count", 1) if at else None
    elif key == "rest":
        kind, colon, arg = head.partition(":")
        if kind not in REST_FAULTS:
            raise FaultSpecError(f"rest fault must be one of {', '.join(REST_FAULTS)}")
        if kind == "slow":
            kw["rest_delay_s"] = _seconds(arg, "slow delay (rest=slow:2s)")
        elif kind == "oversized":
            kw["rest_body_bytes"] = _int(arg, "oversized size (rest=oversized:BYTES)", 1)
        elif colon:
            raise FaultSpecError(f"rest={kind} takes no :argument")
        kw["rest_fault"] = kind
        if at:
            low, dash, high = tail.partition("-")
            if dash:
                kw["rest_from"] = _int(low, "first request", 1)
                kw["rest_to"] = _int(high, "last request", 1) if high else None
            else:
                kw["rest_to"] = _int(low, "request count", 1)
    elif key == "restsym":
        kw["rest_symbol"] = value
    elif key == "retry":
        kw["retry_after"] = _int(value, "retry")
    elif key in FRAME_FAULTS:
        if value.startswith("p"):
            kw[f"{key}_prob"] = _probability(value, f"{key} probability")
        else:
            kw[f"{key}_frames"] = _parse_indices(value, f"{key} indices (N, A-B, joined by /)")
    elif key == "rewind":
        if not at:
            raise FaultSpecError("rewind needs K@N: re-send the last K frames after N frames")
        kw["rewind_by"] = _int(head, "rewind length", 1)
        kw["rewind_after"] = _int(tail, "rewind point", 1)
    elif key == "hold":
        symbol, colon, duration = head.partition(":")
        if not symbol or not colon:
            raise FaultSpecError("hold needs SYMBOL:Ts[@N], e.g. hold=BTCUSDT:2s@100")
        kw["hold_symbol"] = symbol
        kw["hold_s"] = _seconds(duration, "hold duration")
        kw["hold_after"] = _int(tail, "hold start") if at else 0
    elif key in _COUNT_KEYS:
        field_name, what = _COUNT_KEYS[key]
        kw[field_name] = _int(value, what)
    elif key == "notice_close_after":
        kw["notice_close_after_s"] = _seconds(value, "notice_close_after delay")


# Items that take one whole number: the FaultPlan field each sets, and what the number is.
_COUNT_KEYS: Final = {
    "foreign": ("foreign_symbols", "foreign symbol count"),
    "notice": ("notice_after", "notice frame count"),
    "rest429": ("rest_429_first_n", "rest429"),
    "cut": ("drop_after_frames", "cut"),
    "malformed": ("malformed_after", "malformed"),
    "oversized": ("oversized_frame_bytes", "oversized"),
}


# -- frame mutators ----------------------------------------------------------------------------

_OKX_CHECKSUM = re.compile(r'"checksum":(-?\d+)')
_KRAKEN_CHECKSUM = re.compile(r'"c":"(\d+)"')
_BINANCE_STREAM = re.compile(r'^\{"stream":"([^"@]+)@')


def oversized_frame(size: int) -> str:
    """A valid JSON text frame of exactly ``size`` bytes (just filler when ``size`` is tiny)."""
    head, tail = '{"stream":"lobfeed.oversized","data":{"pad":"', '"}}'
    if size < len(head) + len(tail):
        return "x" * size
    return head + "x" * (size - len(head) - len(tail)) + tail


def truncate_frame(text: str) -> str:
    """The first half of a frame: an unbalanced JSON document."""
    return text[: len(text) // 2] or "{"


def garbage_frame(rng: random.Random, size: int = 64) -> str:
    """Control characters and high bytes: not JSON, whatever the venue."""
    return "\x00" + "".join(
        chr(rng.choice((rng.randrange(1, 32), rng.randrange(128, 256)))) for _ in range(size - 1)
    )


def corrupt_checksum(text: str) -> str | None:
    """The frame with its OKX ``checksum`` or Kraken ``c`` CRC off by one bit; None if absent."""
    match = _OKX_CHECKSUM.search(text)
    if match is None:
        match = _KRAKEN_CHECKSUM.search(text)
        if match is None:
            return None
        bad = f'"c":"{int(match.group(1)) ^ 1}"'
    else:
        bad = f'"checksum":{int(match.group(1)) ^ 1}'
    return text[: match.start()] + bad + text[match.end() :]


def _binance_event(obj: object) -> dict[str, object] | None:
    if isinstance(obj, dict):
        data = obj.get("data")
        event = data if isinstance(data, dict) and "stream" in obj else obj
        if isinstance(event, dict):
            return event
    return None


def cross_book(text: str) -> str | None:
    """A Binance depth update with a bid at 10x its highest price added; None if not one."""
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    event = _binance_event(obj)
    if event is None or event.get("e") != "depthUpdate":
        return None
    bids, asks = event.get("b"), event.get("a")
    if not isinstance(bids, list) or not isinstance(asks, list):
        return None
    try:
        top = max(Decimal(level[0]) for level in [*bids, *asks])
    except (ValueError, InvalidOperation, IndexError, TypeError):
        return None
    event["b"] = [[str(top * 10), "1"], *bids]
    return orjson.dumps(obj).decode()


def frame_symbol(text: str) -> str | None:
    """The upper-case symbol of a Binance event (its ``s``), or None."""
    match = _BINANCE_STREAM.match(text)
    if match is not None:
        return match.group(1).upper()
    if text.startswith("{"):
        found = re.search(r'"s":"([^"]+)"', text)
        if found is not None:
            return found.group(1).upper()
    return None


def rename_symbol(text: str, symbol: str) -> str | None:
    """A Binance event for ``symbol`` instead of its own (``stream`` and ``s``); None if not one."""
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    event = _binance_event(obj)
    if event is None or not isinstance(event.get("s"), str):
        return None
    event["s"] = symbol.upper()
    if isinstance(obj, dict) and isinstance(obj.get("stream"), str) and event is not obj:
        _, at, rest = obj["stream"].partition("@")
        obj["stream"] = symbol.lower() + at + rest
    return orjson.dumps(obj).decode()


# -- one connection's frame pipeline -----------------------------------------------------------


Frame = str | bytes
"""A frame to send: text, or the bytes of a binary frame (HTX, Upbit)."""


class ConnectionFaults:
    """The frame faults of one connection: recorded frames in, frames to send out.

    ``count`` is called with a fault kind each time one is injected.
    """

    def __init__(
        self,
        plan: FaultPlan,
        conn: int,
        count: Callable[[str], None],
        clock: Callable[[], float],
    ) -> None:
        self.plan = plan
        self.active = plan.frame_faults(conn)
        self.rng = random.Random(plan.seed * 1_000_003 + conn)
        self.count = count
        self.clock = clock
        self.position = 0
        self.dropped = False
        """Whether the last recorded frame was dropped."""
        self._reordered: Frame | None = None
        self._pending_checksum = 0
        self._pending_crossed = 0
        self._history: deque[Frame] = deque(maxlen=max(plan.rewind_by, 1))
        self._held: list[Frame] = []
        self._hold_until: float | None = None
        self._hold_symbol = plan.hold_symbol.upper() if plan.hold_symbol else None
        self._foreign = 0

    def _hit(self, kind: str, index: int) -> bool:
        plan = self.plan
        hit = index in getattr(plan, f"{kind}_frames")
        prob: float = getattr(plan, f"{kind}_prob")
        if prob and self.rng.random() < prob:
            hit = True
        return hit

    def frame(self, text: Frame) -> list[Frame]:
        """The frames to send for the connection's next recorded frame. A binary frame
        (bytes) takes the faults that do not read it (drop, dup, reorder, cut short); those
        that rewrite JSON text (checksum, crossed, foreign, hold by symbol) pass it by."""
        index = self.position
        self.position += 1
        self.dropped = False
        if not self.active:
            return [text]
        out = self._release(False)
        plan = self.plan
        if plan.rewind_after is not None:
            self._history.append(text)
        if self._hit("drop", index):
            self.count("drop")
            self.dropped = True
            return out + self._after(index)
        if isinstance(text, bytes):
            return out + self._binary_batch(text, index) + self._after(index)
        sent = text
        if self._hit("corrupt", index):
            self.count("corrupt")
            sent = truncate_frame(text) if self.rng.random() < 0.5 else garbage_frame(self.rng)
        if self._hit("checksum", index):
            self._pending_checksum += 1
        if self._pending_checksum:
            bad = corrupt_checksum(sent)
            if bad is not None:
                self._pending_checksum -= 1
                self.count("checksum")
                sent = bad
        if self._hit("crossed", index):
            self._pending_crossed += 1
        if self._pending_crossed:
            crossed = cross_book(sent)
            if crossed is not None:
                self._pending_crossed -= 1
                self.count("crossed")
                sent = crossed
        batch: list[Frame] = [sent]
        if self._hit("dup", index):
            self.count("dup")
            batch.append(sent)
        if self._hold_symbol is not None and index >= plan.hold_after:
            if self._hold_until is None:
                self._hold_until = self.clock() + plan.hold_s
                self.count("hold")
            if self.clock() < self._hold_until and frame_symbol(text) == self._hold_symbol:
                self._held.extend(batch)
                batch = []
        if self._reordered is not None:
            batch.append(self._reordered)
            self._reordered = None
        elif batch and self._hit("reorder", index):
            self.count("reorder")
            self._reordered = batch.pop(0)
        if plan.foreign_symbols:
            self._foreign = self._foreign % plan.foreign_symbols + 1
            copy = rename_symbol(text, f"FAKE{self._foreign}USDT")
            if copy is not None:
                self.count("foreign")
                batch.append(copy)
        return out + batch + self._after(index)

    def _binary_batch(self, sent: bytes, index: int) -> list[Frame]:
        if self._hit("corrupt", index):
            self.count("corrupt")
            sent = sent[: len(sent) // 2]
        batch: list[Frame] = [sent]
        if self._hit("dup", index):
            self.count("dup")
            batch.append(sent)
        if self._reordered is not None:
            batch.append(self._reordered)
            self._reordered = None
        elif self._hit("reorder", index):
            self.count("reorder")
            self._reordered = batch.pop(0)
        return batch

    def _after(self, index: int) -> list[Frame]:
        plan = self.plan
        if plan.rewind_after is not None and index + 1 == plan.rewind_after:
            self.count("rewind")
            return list(self._history)[-plan.rewind_by :]
        return []

    def _release(self, everything: bool) -> list[Frame]:
        if not self._held:
            return []
        if not everything and self._hold_until is not None and self.clock() < self._hold_until:
            return []
        held, self._held = self._held, []
        return held

    def release(self) -> list[Frame]:
        """Held frames whose hold has ended."""
        return self._release(False)

    def flush(self) -> list[Frame]:
        """What is still held back, at the end of the tape."""
        out = self._release(True)
        if self._reordered is not None:
            out.append(self._reordered)
            self._reordered = None
        return out

    def due_s(self) -> float | None:
        """Seconds until held frames are due (None: nothing is held)."""
        if not self._held or self._hold_until is None:
            return None
        return max(0.0, self._hold_until - self.clock())
