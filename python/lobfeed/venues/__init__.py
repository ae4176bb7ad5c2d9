"""Per-venue endpoints and messages, looked up by venue name."""

from __future__ import annotations

from lobfeed.exceptions import UnknownVenueError
from lobfeed.venues import binance
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
    spec.name: spec for spec in (binance.SPOT, binance.USDM, binance.COINM)
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
