"""Each symbol's health: its state, since when and why, and its counters across connections.

The tracker is told of connections and sync events as they happen, and reads the rest (update
counts, book state) from the Rust session a few times a second instead of on the hot path. Every
state change goes out as a ``StatusChanged`` and is mirrored into the session, so a
``BookView`` of a symbol whose connection is down says so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from lobfeed._native import Session
from lobfeed.events import (
    CONNECTING,
    FAILED,
    LIVE,
    RESYNCING,
    SILENT,
    STALE,
    SYNCING,
    StatusChanged,
)

log = logging.getLogger("lobfeed.health")

# Session counters summed across connections into SymbolHealth.
_SESSION_COUNTERS = ("updates", "gaps", "resyncs", "checksum_mismatches", "errors")


@dataclass(frozen=True, slots=True)
class SymbolHealth:
    """One symbol as ``Feed.health()`` shows it. Counters cover the feed's whole life."""

    symbol: str
    state: str
    """One of ``connecting``, ``syncing``, ``live``, ``silent``, ``stale``, ``resyncing``,
    ``failed``."""
    since_ns: int
    """When the symbol entered ``state`` (``time.time_ns()``)."""
    reason: str
    """Why it entered ``state``."""
    last_update_ns: int | None
    """When the last update of this symbol was seen (receive clock), if any."""
    lag_ns: int | None
    """How far behind the exchange the last delivered update was (see ``Dispatcher.lag``)."""
    connection: str | None
    """The connection carrying the symbol (``c1``, ``c2``, ...)."""
    frames: int = 0
    """Book frames of this symbol (applied, stale, dropped or undecodable)."""
    updates: int = 0
    """Book updates applied."""
    gaps: int = 0
    resyncs: int = 0
    checksum_failures: int = 0
    reconnects: int = 0
    """Connections lost while the symbol was on them."""
    dropped: int = 0
    """Deltas thrown away unapplied: stale, or past the pre-snapshot buffer's bound."""
    decode_errors: int = 0


def spellings(session: Session) -> dict[str, str]:
    """The session's symbols by their lower-case name: users may write ``ethusdt`` where the
    venue's frames say ``ETHUSDT``."""
    return {name.lower(): name for name in session.symbols()}


@dataclass(slots=True)
class _Entry:
    state: str = CONNECTING
    since_ns: int = field(default_factory=time.time_ns)
    reason: str = "starting"
    last_update_ns: int | None = None
    connection: str | None = None
    #: The session of the connection carrying the symbol (None while it is down).
    session: Session | None = None
    #: The symbol as that session spells it (``ETHUSDT`` for a user's ``ethusdt``).
    native: str | None = None
    reconnects: int = 0
    #: Counters of sessions that are gone, and the current session's at the last poll.
    base: dict[str, int] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)


class HealthTracker:
    """The health of a feed's symbols; the Feed calls it, users read ``snapshot()``.

    Each symbol lives on one connection; the tracker is told which when it connects, so a
    feed split over several connections keeps one table.
    """

    def __init__(
        self,
        venue: str,
        symbols: Iterable[str],
        *,
        stale_after: float,
        emit: Callable[[StatusChanged], None],
        lag: Callable[[str], int | None] = lambda _symbol: None,
        has_book: bool = True,
    ) -> None:
        self.venue = venue
        self.stale_after_ns = int(stale_after * 1e9)
        self._emit = emit
        self._lag = lag
        # Without a book channel a symbol is live once its first frame arrived.
        self.has_book = has_book
        self._entries: dict[str, _Entry] = {symbol: _Entry() for symbol in symbols}
        self._by_lower = {symbol.lower(): symbol for symbol in self._entries}

    # -- transitions --------------------------------------------------------------------

    def change(self, symbol: str, new: str, reason: str) -> None:
        entry = self._entries.get(symbol)
        if entry is None or entry.state == new:
            return
        if entry.state == FAILED:
            return  # final until the feed is run again
        old = entry.state
        entry.state = new
        entry.since_ns = time.time_ns()
        entry.reason = reason
        if entry.session is not None:
            entry.session.set_status(entry.native or symbol, None if new == LIVE else new)
        level = logging.INFO if new in (LIVE, SYNCING, CONNECTING) else logging.WARNING
        log.log(
            level,
            "%s %s: %s -> %s (%s)",
            self.venue,
            symbol,
            old,
            new,
            reason,
            extra={"venue": self.venue, "symbol": symbol, "old": old, "new": new},
        )
        self._emit(StatusChanged(self.venue, symbol, old, new, reason, entry.since_ns))

    def note(self, symbol: str, reason: str) -> None:
        """A new reason for the state a symbol is in (``waiting for snapshot budget``)."""
        entry = self._entries.get(self.user_name(symbol))
        if entry is not None:
            entry.reason = reason

    def connecting(self, symbols: Iterable[str], reason: str) -> None:
        for symbol in symbols:
            self.change(symbol, CONNECTING, reason)

    def connected(self, session: Session, connection: str, symbols: Iterable[str]) -> None:
        for symbol in symbols:
            entry = self._entries[symbol]
            entry.session, entry.native, entry.connection = session, None, connection
            entry.seen = {}
            self.change(symbol, SYNCING, f"subscribed on {connection}")

    def moved(self, session: Session, connection: str, symbols: Iterable[str]) -> None:
        """A rotation moved these symbols to a new connection, books live all along: their
        counters so far are kept, their state does not change."""
        symbols = list(symbols)
        self.poll()
        for symbol in symbols:
            entry = self._entries[symbol]
            for key, value in entry.seen.items():
                entry.base[key] = entry.base.get(key, 0) + value
            entry.seen = {}
            entry.session, entry.native, entry.connection = session, None, connection

    def disconnected(self, symbols: Iterable[str], reason: str, *, final: bool = False) -> None:
        """A connection ended (or could not be opened): its counters are folded in, its books
        read ``disconnected``, and its symbols wait for the next connection. ``final``: the
        feed is ending, so states stay as they were at the end."""
        symbols = list(symbols)
        self.poll()
        for symbol in symbols:
            entry = self._entries[symbol]
            session, entry.session = entry.session, None
            if session is None:
                continue
            session.mark_disconnected()
            for key, value in entry.seen.items():
                entry.base[key] = entry.base.get(key, 0) + value
            entry.seen = {}
            entry.reconnects += 1
        if not final:
            for symbol in symbols:
                self.change(symbol, CONNECTING, reason)

    def resyncing(self, symbol: str, reason: str) -> None:
        self.change(self.user_name(symbol), RESYNCING, reason)

    def failed(self, symbol: str, reason: str) -> None:
        self.change(self.user_name(symbol), FAILED, reason)

    # -- polling ------------------------------------------------------------------------

    def poll(self) -> None:
        """Reads each symbol's counters and book state from its session: live, stale."""
        now = time.time_ns()
        known_by_session: dict[int, dict[str, str]] = {}
        for symbol, entry in self._entries.items():
            session = entry.session
            if session is None:
                continue
            known = known_by_session.get(id(session))
            if known is None:
                known = known_by_session[id(session)] = spellings(session)
            if entry.native is None:
                entry.native = known.get(symbol.lower())
            name = entry.native
            if name is None:
                if entry.state == LIVE and self._is_stale(entry, now):
                    self.change(symbol, STALE, self._stale_reason(entry, now))
                elif entry.state == SYNCING and self.has_book and self._is_stale(entry, now):
                    # A book channel answers a subscription within seconds; nothing at all
                    # for this long is a symbol the venue does not stream. (Trades alone may
                    # be quiet that long on a listed symbol, so only books say this.)
                    self.change(symbol, SILENT, self._silent_reason(entry, now))
                continue
            if entry.state == SILENT:
                self.change(symbol, SYNCING, "first frame arrived")
            counters = session.counters(name)
            frames = (
                counters["updates"]
                + counters["stale_dropped"]
                + counters["buffer_dropped"]
                + counters["errors"]
            )
            if frames != entry.seen.get("frames", 0):
                entry.last_update_ns = now
            entry.seen = {key: counters[key] for key in _SESSION_COUNTERS}
            entry.seen["frames"] = frames
            entry.seen["dropped"] = counters["stale_dropped"] + counters["buffer_dropped"]
            if not self.has_book:
                # Trades and candles may be quiet for minutes on a healthy stream: without a
                # book such a symbol is live once it streams and is never called stale.
                if entry.state == SYNCING:
                    self.change(symbol, LIVE, "streaming")
                continue
            in_sync = session.state(name) == "live"
            if entry.state in (SYNCING, RESYNCING, STALE) and in_sync:
                if entry.state != STALE or not self._is_stale(entry, now):
                    self.change(symbol, LIVE, "book in sync")
            elif entry.state == LIVE and self._is_stale(entry, now):
                self.change(symbol, STALE, self._stale_reason(entry, now))

    def _is_stale(self, entry: _Entry, now: int) -> bool:
        # Measured from the last update, not from the last change of state: a stale symbol
        # stays stale until an update comes.
        last = entry.last_update_ns if entry.last_update_ns is not None else entry.since_ns
        return now - last >= self.stale_after_ns

    def _silent_reason(self, entry: _Entry, now: int) -> str:
        return (
            f"nothing received for {(now - entry.since_ns) / 1e9:.1f}s since subscribing on "
            f"{entry.connection}: is the symbol listed on {self.venue}?"
        )

    def _stale_reason(self, entry: _Entry, now: int) -> str:
        last = entry.last_update_ns if entry.last_update_ns is not None else entry.since_ns
        return (
            f"no update for {(now - last) / 1e9:.1f}s (stale_after {self.stale_after_ns / 1e9:g}s)"
        )

    # -- reading ------------------------------------------------------------------------

    def all_in(self, state: str, symbols: Iterable[str] | None = None) -> bool:
        names = self._entries if symbols is None else symbols
        return all(self._entries[symbol].state == state for symbol in names)

    def state(self, symbol: str) -> str | None:
        """The state of a symbol as the user spelled it."""
        entry = self._entries.get(symbol)
        return entry.state if entry is not None else None

    def state_of(self, native: str) -> str | None:
        """The state of a symbol as the session spells it."""
        return self.state(self.user_name(native))

    def snapshot(self) -> dict[str, SymbolHealth]:
        self.poll()
        out: dict[str, SymbolHealth] = {}
        for symbol, entry in self._entries.items():
            total = {
                k: entry.base.get(k, 0) + entry.seen.get(k, 0)
                for k in (*_SESSION_COUNTERS, "frames", "dropped")
            }
            out[symbol] = SymbolHealth(
                symbol=symbol,
                state=entry.state,
                since_ns=entry.since_ns,
                reason=entry.reason,
                last_update_ns=entry.last_update_ns,
                lag_ns=self._lag(entry.native or symbol),
                connection=entry.connection,
                frames=total["frames"],
                updates=total["updates"],
                gaps=total["gaps"],
                resyncs=total["resyncs"],
                checksum_failures=total["checksum_mismatches"],
                reconnects=entry.reconnects,
                dropped=total["dropped"],
                decode_errors=total["errors"],
            )
        return out

    # -- names --------------------------------------------------------------------------

    def user_name(self, native: str) -> str:
        """A subscribed symbol as the user spelled it, from the session's spelling."""
        if native in self._entries:
            return native
        return self._by_lower.get(native.lower(), native)
