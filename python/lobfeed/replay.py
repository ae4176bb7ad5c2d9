"""Tapes through the sync code in-process, no network: ``lobfeed replay`` and ``lobfeed verify``.

Each websocket connection of a tape gets its own ``Session`` (ids and channel numbers are per
connection); REST snapshot records go to the session that carries their symbol. What comes out
is the same event stream a live ``Feed`` would see, tagged with the tape line that caused it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, Any

import orjson

from lobfeed._native import (
    BookUpdate,
    ChecksumMismatch,
    GapDetected,
    Quote,
    Resynced,
    Session,
    SyncLost,
)
from lobfeed.exceptions import FrameError
from lobfeed.tape import Tape, TapeRecord
from lobfeed.venues import SPECS

DEFAULT_DEPTH = 25


def snapshot_symbol(url: str) -> str | None:
    """The symbol a recorded REST snapshot is for, if the record is a depth snapshot of any
    venue (each spec reads its own ``snapshot_url`` backwards)."""
    for spec in SPECS.values():
        symbol = spec.snapshot_symbol(url)
        if symbol is not None:
            return symbol
    return None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A frame the session refused, with the error it raised."""

    venue: str
    symbol: str | None
    error: FrameError


class TapeReplayer:
    """Feeds a tape's records to per-connection sessions and yields ``(record, event)``."""

    def __init__(self, tape: Tape, *, depth: int | None = None) -> None:
        self.tape = tape
        self.venue = tape.header.venue
        # A tape may name a venue alias (``bybit-spot``): sessions take the decoder's name.
        spec = SPECS.get(self.venue)
        self.session_venue = spec.session_venue if spec is not None else self.venue
        self.depth = depth
        self.sessions: dict[str, Session] = {}
        # One tape may hold several markets decoded by one session type (Bybit linear and
        # spot): each connection's market is the spec whose URL it opened.
        self._markets = [s for s in SPECS.values() if s.session_venue == self.session_venue]
        self.markets: dict[str, str] = {}

    def session_for(self, conn: str) -> Session:
        session = self.sessions.get(conn)
        if session is None:
            session = self.sessions[conn] = Session(
                self.session_venue, name=self.venue_of(conn), depth=self.depth
            )
        return session

    def venue_of(self, conn: str) -> str:
        """The market a connection of the tape carried (``bybit-spot``, ``bybit``, ...)."""
        return self.markets.get(conn, self.venue)

    def _market(self, url: str) -> str:
        serving = [spec.name for spec in self._markets if spec.serves_url(url)]
        if self.venue in serving or not serving:
            return self.venue
        return serving[0]

    def _snapshot_conn(self, symbol: str) -> str:
        for conn, session in self.sessions.items():
            if symbol in session.symbols():
                return conn
        return next(iter(self.sessions), "c1")

    def events(self) -> Iterator[tuple[TapeRecord, Any]]:
        for record in self.tape.iter_records():
            if record.type == "recv" and record.data is not None and record.conn is not None:
                session = self.session_for(record.conn)
                yield from self._feed(record, session, record.payload)
            elif record.type == "open" and record.conn is not None and record.url:
                self.markets[record.conn] = self._market(record.url)
            elif record.type == "http" and record.url and record.data is not None:
                symbol = snapshot_symbol(record.url)
                if symbol is None:
                    continue
                conn = self._snapshot_conn(symbol)
                session = self.session_for(conn)
                yield from self._feed(record, session, record.payload, symbol)

    @staticmethod
    def _feed(
        record: TapeRecord, session: Session, data: bytes, snapshot_for: str | None = None
    ) -> Iterator[tuple[TapeRecord, Any]]:
        try:
            if snapshot_for is None:
                events = session.receive(data, record.ts_ns)
            else:
                events = session.receive_snapshot(snapshot_for, data, record.ts_ns)
        except FrameError as e:
            yield record, Rejected(session.name, e.symbol, e)
            events = e.events
        for ev in events:
            yield record, ev


def replay(tape: Tape, out: IO[bytes], *, depth: int = DEFAULT_DEPTH) -> int:
    """Writes one JSON line per applied book update (and per sync event); returns the count."""
    written = 0
    write = out.write
    dumps = orjson.dumps
    for record, ev in TapeReplayer(tape).events():
        # Every event names its market (the Session's name: bybit-spot, bybit, ...).
        venue = ev.venue
        line: dict[str, Any]
        if isinstance(ev, BookUpdate):
            book = ev.book
            line = {
                "line": record.line,
                "venue": venue,
                "symbol": ev.symbol,
                "seq": ev.seq,
                "ts_ns": ev.ts_ns,
                "bids": book.bids(depth),
                "asks": book.asks(depth),
            }
        elif isinstance(ev, GapDetected):
            line = _event_line(record, venue, ev.symbol, "gap")
            line.update(expected=ev.expected, received=ev.received)
        elif isinstance(ev, Resynced):
            line = _event_line(record, venue, ev.symbol, "resynced")
            line["seq"] = ev.seq
        elif isinstance(ev, ChecksumMismatch):
            line = _event_line(record, venue, ev.symbol, "checksum_mismatch")
            line.update(expected=ev.expected, computed=ev.computed)
        elif isinstance(ev, SyncLost):
            line = _event_line(record, venue, ev.symbol, "sync_lost")
            line.update(reason=ev.reason, detail=ev.detail)
        elif isinstance(ev, Rejected):
            line = _event_line(record, venue, ev.symbol, "error")
            line["error"] = str(ev.error)
        else:
            continue
        write(dumps(line))
        write(b"\n")
        written += 1
    return written


def _event_line(record: TapeRecord, venue: str, symbol: str | None, kind: str) -> dict[str, Any]:
    return {"line": record.line, "venue": venue, "symbol": symbol, "event": kind}


@dataclass
class Proof:
    """What replaying a tape proved, and what contradicted the exchange."""

    tape: str
    venue: str
    book_updates: int = 0
    symbols: int = 0
    crossed: int = 0
    """Crossed books: delivered ones, and those the session dropped for being crossed."""
    ids_backwards: int = 0
    quotes_checked: int = 0
    quotes_agreed: int = 0
    checksums_checked: int = 0
    checksum_mismatches: int = 0
    gaps: int = 0
    resyncs: int = 0
    frame_errors: int = 0
    trades: int = 0
    candles: int = 0
    max_depth: tuple[int, int] = (0, 0)
    min_depth: tuple[int, int] = (0, 0)
    """Fewest bid and ask levels over all applied book updates (each side on its own)."""
    disagreements: list[str] = field(default_factory=list)
    cut: str | None = None
    """What the tape's cut dropped, for a tape whose writer was killed (None: a whole tape)."""

    def failures(self, *, allow_gaps: bool = False) -> list[str]:
        problems: list[str] = []
        if self.book_updates == 0:
            problems.append("no book update was applied")
        if self.crossed:
            problems.append(f"{self.crossed} crossed books")
        if self.quotes_agreed != self.quotes_checked:
            problems.append(
                f"{self.quotes_checked - self.quotes_agreed} of {self.quotes_checked} "
                "best bid/ask disagree with the venue's ticker"
            )
        if self.ids_backwards:
            problems.append(f"{self.ids_backwards} updates whose ids went backwards")
        if self.checksum_mismatches:
            problems.append(f"{self.checksum_mismatches} checksum mismatches")
        if self.frame_errors:
            problems.append(f"{self.frame_errors} frames rejected")
        if self.gaps and not allow_gaps:
            problems.append(f"{self.gaps} sequence gaps")
        return problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "tape": self.tape,
            "venue": self.venue,
            "book_updates": self.book_updates,
            "symbols": self.symbols,
            "crossed": self.crossed,
            "ids_backwards": self.ids_backwards,
            "quotes_checked": self.quotes_checked,
            "quotes_agreed": self.quotes_agreed,
            "checksums_checked": self.checksums_checked,
            "checksum_mismatches": self.checksum_mismatches,
            "gaps": self.gaps,
            "resyncs": self.resyncs,
            "frame_errors": self.frame_errors,
            "trades": self.trades,
            "candles": self.candles,
            "max_depth": list(self.max_depth),
            "min_depth": list(self.min_depth),
            "disagreements": self.disagreements[:20],
            "cut": self.cut,
        }


Top = tuple[tuple[str, str] | None, tuple[str, str] | None]


def verify(tape: Tape) -> Proof:
    """Replays a tape and checks every book against the exchange's own truths in it."""
    from lobfeed._native import Candle, Trade

    proof = Proof(tape=str(tape.path), venue=tape.header.venue)
    replayer = TapeReplayer(tape)
    tops: dict[tuple[str, str, int], Top] = {}
    quotes: dict[tuple[str, str, int], Top] = {}
    # For venues whose quotes carry no id: every book state and quote, in stream order.
    states: dict[tuple[str, str], list[tuple[int, Top]]] = {}
    unkeyed: list[tuple[str, str, int, Top]] = []
    max_bids = max_asks = 0
    min_bids: int | None = None
    min_asks: int | None = None
    for _record, ev in replayer.events():
        if isinstance(ev, BookUpdate):
            proof.book_updates += 1
            book = ev.book
            if book.crossed:
                proof.crossed += 1
                proof.disagreements.append(f"{ev.symbol} crossed at seq {ev.seq}")
            bids, asks = book.depth()
            max_bids, max_asks = max(max_bids, bids), max(max_asks, asks)
            min_bids = bids if min_bids is None else min(min_bids, bids)
            min_asks = asks if min_asks is None else min(min_asks, asks)
            book_top = (book.best_bid_exact(), book.best_ask_exact())
            if _quote_tie(ev.venue) != "seq":
                state = (ev.exchange_ts_ns, book_top)
                states.setdefault((ev.venue, ev.symbol), []).append(state)
            elif ev.seq is not None:
                tops[(ev.venue, ev.symbol, ev.seq)] = book_top
        elif isinstance(ev, Quote):
            quoted = ((ev.bid_price, ev.bid_size), (ev.ask_price, ev.ask_size))
            if _quote_tie(ev.venue) != "seq":
                unkeyed.append((ev.venue, ev.symbol, ev.exchange_ts_ns, quoted))
            elif ev.seq is not None:
                quotes[(ev.venue, ev.symbol, ev.seq)] = quoted
        elif isinstance(ev, Trade):
            proof.trades += 1
        elif isinstance(ev, Candle):
            proof.candles += 1
        elif isinstance(ev, SyncLost):
            proof.disagreements.append(f"{ev.symbol} book dropped ({ev.reason}): {ev.detail}")
        elif isinstance(ev, Rejected):
            proof.frame_errors += 1
            proof.disagreements.append(f"rejected frame ({ev.symbol}): {ev.error}")
    for key, quote in quotes.items():
        top = tops.get(key)
        if top is None:
            continue
        proof.quotes_checked += 1
        if top == quote:
            proof.quotes_agreed += 1
        else:
            proof.disagreements.append(
                f"{key[0]} {key[1]} at {key[2]}: book {top} vs ticker {quote}"
            )
    _check_unkeyed_quotes(proof, states, unkeyed)
    # A market is a (venue, symbol): Bybit linear and spot BTCUSDT are two books.
    symbols: set[tuple[str, str]] = set()
    for conn, session in replayer.sessions.items():
        for symbol in session.symbols():
            symbols.add((replayer.venue_of(conn), symbol))
            counters = session.counters(symbol)
            proof.checksums_checked += counters["checksums_checked"]
            proof.checksum_mismatches += counters["checksum_mismatches"]
            proof.gaps += counters["gaps"]
            proof.resyncs += counters["resyncs"]
            proof.crossed += counters["crossed"]
            proof.ids_backwards += counters["ids_backwards"]
    proof.symbols = len(symbols)
    proof.cut = None if tape.damage is None else str(tape.damage)
    proof.max_depth = (max_bids, max_asks)
    proof.min_depth = (min_bids or 0, min_asks or 0)
    return proof


def _quote_tie(venue: str) -> str:
    spec = SPECS.get(venue)
    return "seq" if spec is None else spec.quote_tie


def _quote_label(venue: str) -> str:
    tie = _quote_tie(venue)
    if tie == "seq" and not venue.startswith("binance"):
        return "ticker at the same id"
    return QUOTE_LABELS[tie]


def _checksum_label(venue: str) -> str:
    spec = SPECS.get(venue)
    return "checksums matched" if spec is None else spec.checksum_truth


def _quoted_top(quoted: Top) -> Top:
    """A quote's sides as the book shows them: a side quoted with size 0 is an empty side."""
    bid, ask = quoted
    return (
        bid if bid is not None and Decimal(bid[1]) != 0 else None,
        ask if ask is not None and Decimal(ask[1]) != 0 else None,
    )


def _check_unkeyed_quotes(
    proof: Proof,
    states: dict[tuple[str, str], list[tuple[int, Top]]],
    unkeyed: list[tuple[str, str, int, Top]],
) -> None:
    """Quotes without an id, against the book states of their market (see
    ``VenueSpec.quote_tie``): "time" takes the state after the last update not later than the
    quote; "order" looks for the quote among the states after the one the previous quote of
    the market matched."""
    found_at: dict[tuple[str, str], int] = {}
    for venue, symbol, at_ns, quoted in unkeyed:
        market = (venue, symbol)
        history = states.get(market, [])
        top = _quoted_top(quoted)
        if _quote_tie(venue) == "time":
            earlier = [state for ts, state in history if ts <= at_ns]
            if not earlier:
                continue
            proof.quotes_checked += 1
            if earlier[-1] == top:
                proof.quotes_agreed += 1
            else:
                proof.disagreements.append(
                    f"{venue} {symbol} at {at_ns} ns: book {earlier[-1]} vs ticker {top}"
                )
            continue
        proof.quotes_checked += 1
        start = found_at.get(market, 0)
        match = next((i for i in range(start, len(history)) if history[i][1] == top), None)
        if match is None:
            proof.disagreements.append(
                f"{venue} {symbol}: quote {top} is not a later top of the book"
            )
        else:
            proof.quotes_agreed += 1
            found_at[market] = match


QUOTE_LABELS = {
    "seq": "bookTicker agreement",
    "time": "ticker at its time",
    "order": "quotes found in order",
}


def format_proof(proof: Proof, *, allow_gaps: bool = False) -> str:
    lines = [f"{proof.tape} ({proof.venue}, {proof.symbols} symbols)"]
    lines.append(f"  book updates applied    {proof.book_updates}")
    if proof.quotes_checked or proof.venue.startswith("binance"):
        lines.append(
            f"  {_quote_label(proof.venue):<24}"
            f"{proof.quotes_agreed}/{proof.quotes_checked}"
            + _percent(proof.quotes_agreed, proof.quotes_checked)
        )
    if proof.checksums_checked or proof.checksum_mismatches:
        matched = proof.checksums_checked - proof.checksum_mismatches
        lines.append(
            f"  {_checksum_label(proof.venue):<24}{matched}/{proof.checksums_checked}"
            + _percent(matched, proof.checksums_checked)
        )
    lines.append(f"  crossed books           {proof.crossed}")
    lines.append(f"  sequence gaps           {proof.gaps}")
    lines.append(f"  resyncs                 {proof.resyncs}")
    lines.append(f"  frames rejected         {proof.frame_errors}")
    lines.append(f"  trades, candles         {proof.trades}, {proof.candles}")
    lines.append(f"  deepest book (bid/ask)  {proof.max_depth[0]}/{proof.max_depth[1]}")
    lines.append(f"  shallowest (bid/ask)    {proof.min_depth[0]}/{proof.min_depth[1]}")
    if proof.cut is not None:
        lines.append(f"  cut tape                {proof.cut}")
    for text in proof.disagreements[:10]:
        lines.append(f"  ! {text}")
    problems = proof.failures(allow_gaps=allow_gaps)
    lines.append("  FAILED: " + "; ".join(problems) if problems else "  OK: no truth contradicted")
    return "\n".join(lines)


def _percent(part: int, whole: int) -> str:
    return f" ({100 * part / whole:.1f}%)" if whole else ""
