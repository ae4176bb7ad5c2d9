"""Per-venue endpoints and messages, looked up by venue name.

Venue names ``Feed`` takes: ``binance``, ``binance-usdm``, ``binance-coinm``; ``bybit`` (linear,
the same as ``bybit-linear``), ``bybit-spot``, ``bybit-inverse``; ``okx``; ``kraken`` (ws v1)
and ``kraken-v2``; ``coinbase``; ``gemini`` (v2); ``bitfinex``. A spec's ``session_venue`` is the
name of the Rust session that decodes it (``bybit`` for every Bybit category).
"""

from __future__ import annotations

import importlib
import pkgutil

from lobfeed.exceptions import UnknownVenueError
from lobfeed.venues.base import (
    BOOK,
    CANDLES,
    CHANNELS,
    QUOTES,
    TRADES,
    Subscription,
    VenueSpec,
)


def _discover() -> dict[str, VenueSpec]:
    """Every spec of every module of this package, by name: a venue's module is all it takes
    to be known (no list to keep in step)."""
    specs: dict[str, VenueSpec] = {}
    for module_info in pkgutil.iter_modules(__path__):
        if module_info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for value in vars(module).values():
            found = value if isinstance(value, tuple) else (value,)
            for spec in found:
                if isinstance(spec, VenueSpec):
                    specs.setdefault(spec.name, spec)
    return specs


SPECS: dict[str, VenueSpec] = _discover()


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
