"""Refusals every venue spec makes the same way: a ``depth`` or ``candle_interval`` the venue
cannot serve is a ``ConfigError`` at construction, naming the value and what is allowed."""

from __future__ import annotations

from collections.abc import Collection

from lobfeed.exceptions import ConfigError
from lobfeed.venues.base import CANDLES, Subscription


def check_depth(venue: str, depth: object, maximum: int | None) -> None:
    """Refuses a ``depth`` that is not a whole number from 1 to ``maximum`` (``None``: the venue
    streams its whole book, so any positive depth is served)."""
    if depth is None:
        return
    # bool is an int to Python, but depth=True is a mistake, not one level.
    if not isinstance(depth, int) or isinstance(depth, bool):
        raise ConfigError(f"{venue}: depth must be a whole number of levels, got {depth!r}")
    if depth < 1 or (maximum is not None and depth > maximum):
        allowed = f"1 to {maximum}" if maximum is not None else "1 or more"
        raise ConfigError(f"{venue}: depth {depth} is out of range; allowed: {allowed}")


def check_candle_interval(venue: str, sub: Subscription, intervals: Collection[str]) -> None:
    """Refuses a ``candle_interval`` the venue has no candles for, when candles are asked for."""
    if CANDLES in sub.channels and sub.candle_interval not in intervals:
        raise ConfigError(
            f"{venue} has no {sub.candle_interval!r} candles; its intervals: {', '.join(intervals)}"
        )
