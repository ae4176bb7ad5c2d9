"""Exceptions raised by lobfeed.

Every error lobfeed raises on purpose derives from :class:`LobfeedError`::

    LobfeedError
    ├── FrameError (ValueError)        a received frame could not be used
    │   ├── DecodeError                malformed JSON, a missing field, a bad number
    │   ├── OversizedFrameError        over the session's max_frame_bytes
    │   ├── BookRejectedError          values no book may hold (negative size or price)
    │   └── VenueErrorMessage          the venue answered with an error message
    ├── SnapshotError                  a REST snapshot could not be had
    │   ├── RateLimitedError           HTTP 429/418; ``retry_after`` seconds
    │   └── SymbolRejectedError        the venue says the symbol does not exist (REST 400/404)
    ├── ConnectError                   a connection could not be opened (``url``, ``status``,
    │   │                              ``proxy``); also a proxy that is down or answers 5xx
    │   └── HandshakeRejectedError     a refusal retrying cannot fix (HTTP 401, 403, 404, 414)
    │       └── ProxyRejectedError     the proxy refused for good (HTTP 407 or 403, SOCKS
    │                                  authentication failed or not allowed by its rules)
    ├── SubscriptionRejectedError      the venue refused to stream a symbol (it does not exist)
    ├── ConnectionLostError            a websocket closed and reconnecting is not allowed
    ├── BookUnavailableError (KeyError) no book for that symbol (yet); ``state`` says why
    ├── ConfigError (ValueError)       a Feed or ConnectOptions argument out of range
    ├── StaleBookError                 a BookView read after its book moved on
    ├── UnknownVenueError (ValueError) a venue name this build does not know
    ├── UnsupportedOptionError (ValueError) a session option the venue cannot honour
    ├── TapeFormatError (ValueError)   a file that is not lobfeed-tape/1
    ├── WireFormatError (ValueError)   a fan-out message (ZeroMQ, NATS) this version cannot read
    └── FaultSpecError (ValueError)    a test server fault spec that does not parse

A ``FrameError`` concerns one frame: ``symbol`` names the symbol when the frame got far enough
to tell, and ``events`` holds what the frame caused before it failed (typically a
``NeedSnapshot`` for that symbol, whose book was dropped). Other symbols are never affected.
"""

from __future__ import annotations

from typing import Any


class LobfeedError(Exception):
    """Base class of every error lobfeed raises on purpose."""


class FrameError(LobfeedError, ValueError):
    """A received frame could not be used."""

    symbol: str | None = None
    events: tuple[Any, ...] = ()


class DecodeError(FrameError):
    """Malformed JSON, a missing field or a number that does not parse."""


class OversizedFrameError(FrameError):
    """A frame over the session's ``max_frame_bytes``."""


class BookRejectedError(FrameError):
    """A frame with values no book may hold; the symbol is resynced."""


class VenueErrorMessage(FrameError):
    """The venue sent an error message instead of data."""


class SnapshotError(LobfeedError):
    """A REST snapshot could not be fetched or used."""

    def __init__(self, message: str, *, symbol: str | None = None, status: int | None = None):
        super().__init__(message)
        self.symbol = symbol
        self.status = status


class RateLimitedError(SnapshotError):
    """The venue answered 429 or 418; wait ``retry_after`` seconds before asking again."""

    def __init__(
        self,
        message: str,
        *,
        symbol: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message, symbol=symbol, status=status)
        self.retry_after = retry_after


class SymbolRejectedError(SnapshotError):
    """The venue answered a snapshot request with a status that says the symbol does not exist
    or the request is wrong (400, 404): asking again cannot help, so the feed ends."""


class ConnectError(LobfeedError):
    """A websocket connection could not be opened. Transient causes (refused, DNS, timeouts,
    HTTP 429 or 5xx) are retried by the Feed; ``run()`` raises this only when told not to
    reconnect or when ``max_attempts`` ran out."""

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        status: int | None = None,
        proxy: str | None = None,
    ):
        super().__init__(message)
        self.url = url
        self.status = status
        #: The proxy the connection went through, its password masked (None: no proxy).
        self.proxy = proxy


class HandshakeRejectedError(ConnectError):
    """The server refused the websocket upgrade with a status retrying cannot fix (401, 403,
    404, 414, ...): ``run()`` ends with it."""


class ProxyRejectedError(HandshakeRejectedError):
    """The proxy (``ConnectOptions.proxy``) refused the connection with an answer retrying
    cannot change: HTTP 407 (missing or wrong credentials), 403 or 400 to ``CONNECT``, a SOCKS
    authentication failure, or a SOCKS "not allowed by rule set". ``run()`` ends with it;
    ``status`` is the proxy's HTTP status (None for SOCKS) and ``proxy`` its masked URL. A
    proxy that cannot be reached, times out or answers 5xx is a plain ``ConnectError``
    (retried)."""


class SubscriptionRejectedError(LobfeedError):
    """The venue answered a subscription with an error naming a symbol that never streamed on
    that connection (an unknown or delisted symbol): the feed ends with it."""

    def __init__(self, message: str, *, symbol: str | None = None):
        super().__init__(message)
        self.symbol = symbol


class BookUnavailableError(LobfeedError, KeyError):
    """``Feed.book`` was asked for a symbol that has no book (yet); ``state`` is its health."""

    def __init__(self, message: str, *, symbol: str, state: str | None = None):
        super().__init__(message)
        self.symbol = symbol
        self.state = state

    def __str__(self) -> str:
        # KeyError's str() quotes its argument; a sentence reads better.
        return str(self.args[0])


class ConfigError(LobfeedError, ValueError):
    """A Feed or ConnectOptions argument out of range; the message names the value."""


class ConnectionLostError(LobfeedError):
    """The websocket closed and the feed was told not to reconnect."""


class StaleBookError(LobfeedError):
    """A BookView was read after its book changed; take a fresh view (or ``snapshot()``)."""


class UnknownVenueError(LobfeedError, ValueError):
    """A venue name this build does not know."""


class UnsupportedOptionError(LobfeedError, ValueError):
    """A session option the venue cannot honour, such as ``resync="snapshot"`` for a venue
    whose books only come in-band."""


class TapeFormatError(LobfeedError, ValueError):
    """A tape file does not follow the lobfeed-tape/1 format."""


class WireFormatError(LobfeedError, ValueError):
    """A fan-out message (``lobfeed.sinks.wire``) that is not one, or of a format version this
    lobfeed does not read; the message names the version found and the one expected."""


class FaultSpecError(LobfeedError, ValueError):
    """A fault spec (``lobfeed serve --faults``) or FaultPlan that does not make sense; the
    message names the bad part and what is allowed."""
