"""Events the Feed makes itself (the Rust session makes the book, trade and sync events).

They go to ``on_status``: every change of a symbol's health state, and every connection that
opens or ends, so that a strategy can see a fault instead of reading a quiet book as a calm
market.
"""

from __future__ import annotations

from dataclasses import dataclass

#: A symbol's health states, in the order a healthy start goes through them (``silent``,
#: ``stale``, ``resyncing`` and ``failed`` are the faults).
CONNECTING = "connecting"
SYNCING = "syncing"
LIVE = "live"
#: Subscribed, but nothing at all came for the symbol: the venue may not list it.
SILENT = "silent"
STALE = "stale"
RESYNCING = "resyncing"
FAILED = "failed"
STATES = (CONNECTING, SYNCING, LIVE, SILENT, STALE, RESYNCING, FAILED)


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """A symbol moved from ``old`` to ``new`` (one of ``STATES``); ``reason`` says why."""

    venue: str
    symbol: str
    old: str
    new: str
    reason: str
    ts_ns: int


@dataclass(frozen=True, slots=True)
class Connected:
    """A websocket connection opened (``connection`` names it, as health and tapes do)."""

    venue: str
    connection: str
    url: str
    ts_ns: int


@dataclass(frozen=True, slots=True)
class Disconnected:
    """A connection ended: ``code`` is its websocket close code (1006: no close frame),
    ``reason`` the server's words or what we saw (a timeout, a refused handshake)."""

    venue: str
    connection: str
    code: int | None
    reason: str
    ts_ns: int
