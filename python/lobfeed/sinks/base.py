"""The interface every sink implements, and how sinks are wired to a ``Feed``.

Each ``on_*`` method is called on the feed's event loop, in order, for every object the
matching ``Feed`` callback would get. It must return quickly: a sink copies what it needs
(a book view is only valid during the call) and hands it to its own bounded queue or writer.
A sink that falls behind drops and counts; it never slows the feed.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any


class Sink:
    """Does nothing by default: a sink overrides what it takes."""

    #: A short name for logs and stats (``parquet``, ``zmq``, ``nats``, ``tape``).
    name = "sink"

    async def start(self) -> None:
        """Opens files or sockets; called once before the first object."""

    def on_book(self, update: Any) -> None:
        """A ``BookUpdate``: read ``update.book`` now, it changes after the call."""

    def on_trade(self, trade: Any) -> None:
        """A ``Trade``."""

    def on_candle(self, candle: Any) -> None:
        """A ``Candle`` (closed ones only, unless the feed was asked for all)."""

    def on_quote(self, quote: Any) -> None:
        """A ``Quote``."""

    def on_event(self, event: Any) -> None:
        """A sync event (``SyncLost``, ``GapDetected``, ``Resynced``, ...)."""

    def on_status(self, status: Any) -> None:
        """A status event (``StatusChanged``, ``Connected``, ``Disconnected``)."""

    async def close(self) -> None:
        """Flushes and closes; called once when the feed stops, even after an error."""

    def stats(self) -> dict[str, int]:
        """Counters of what was written, sent and dropped."""
        return {}


_KINDS = ("book", "trade", "candle", "quote", "event", "status")


def feed_callbacks(
    sinks: Iterable[Sink], **user: Callable[[Any], Any] | None
) -> dict[str, Callable[[Any], Any] | None]:
    """The ``on_*`` keyword arguments of a ``Feed`` that call every sink, then the user's
    callback of that kind (``on_book=...`` etc. in ``user``), for the kinds anyone takes."""
    sinks = list(sinks)
    unknown = set(user) - {f"on_{kind}" for kind in _KINDS}
    if unknown:
        from lobfeed.exceptions import ConfigError

        raise ConfigError(
            f"unknown callback {sorted(unknown)[0]!r}; known: on_{', on_'.join(_KINDS)}"
        )
    out: dict[str, Callable[[Any], Any] | None] = {}
    for kind in _KINDS:
        key = f"on_{kind}"
        takers = [getattr(s, key) for s in sinks if _overrides(s, key)]
        own = user.get(key)
        if own is not None:
            takers.append(own)
        if not takers:
            out[key] = None
        elif len(takers) == 1:
            out[key] = takers[0]
        else:
            out[key] = _fan(tuple(takers))
    return out


def _overrides(sink: Sink, key: str) -> bool:
    return getattr(type(sink), key) is not getattr(Sink, key)


def _fan(takers: tuple[Callable[[Any], Any], ...]) -> Callable[[Any], Any]:
    *sync, last = takers
    if inspect.iscoroutinefunction(last):
        # The user's async callback goes last: the sinks take the object first, as it was.

        async def call_all_then_await(obj: Any) -> None:
            for take in sync:
                take(obj)
            await last(obj)

        return call_all_then_await

    def call_all(obj: Any) -> None:
        for take in takers:
            take(obj)

    return call_all
