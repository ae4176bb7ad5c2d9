"""Per-venue endpoints and messages, looked up by venue name.

Venue names ``Feed`` takes: ``binance``, ``binance-usdm``, ``binance-coinm``; ``bybit`` (linear,
the same as ``bybit-linear``), ``bybit-spot``, ``bybit-inverse``; ``okx``; ``kraken`` (ws v1)
and ``kraken-v2``; ``coinbase``; ``gemini`` (v2); ``bitfinex``. A spec's ``session_venue`` is the
name of the Rust session that decodes it (``bybit`` for every Bybit category).
"""

from __future__ import annotations

from lobfeed.exceptions import UnknownVenueError
from lobfeed.venues import binance, bitfinex, bybit, coinbase, gemini, kraken, okx
from lobfeed.venues.base import (
    BOOK,
    CANDLES,
    CHANNELS,
    QUOTES,
    TRADES,
    Subscription,
    VenueSpec,
)

SPECS: dict[str, VenueSpec] = {
    spec.name: spec
    for spec in (
        binance.SPOT,
        binance.USDM,
        binance.COINM,
        *bybit.SPECS,
        okx.SPEC,
        *kraken.SPECS,
        coinbase.SPEC,
        gemini.SPEC,
        bitfinex.SPEC,
    )
}


def spec_for(venue: str) -> VenueSpec:
    try:
        return SPECS[venue]
    except KeyError:
        raise UnknownVenueError(f"unknown venue {venue!r}; known: {', '.join(SPECS)}") from None


__all__ = [
    "BOOK",
    "CANDLES",
    "CHANNELS",
    "QUOTES",
    "SPECS",
    "TRADES",
    "Subscription",
    "VenueSpec",
    "spec_for",
]
