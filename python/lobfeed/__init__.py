"""lobfeed: low-latency crypto market-data feed handler with exact L2 books in Rust.

Quick use::

    import asyncio, lobfeed

    def on_book(update: lobfeed.BookUpdate) -> None:
        print(update.symbol, update.seq, update.book.best_bid(), update.book.best_ask())

    feed = lobfeed.Feed("binance", ["BTCUSDT"], on_book=on_book)
    asyncio.run(feed.run())
"""

from __future__ import annotations

import os

from lobfeed.events import Connected, Disconnected, StatusChanged
from lobfeed.exceptions import (
    BookRejectedError,
    BookUnavailableError,
    ConfigError,
    ConnectError,
    ConnectionLostError,
    DecodeError,
    FaultSpecError,
    FrameError,
    HandshakeRejectedError,
    LobfeedError,
    OversizedFrameError,
    ProxyRejectedError,
    RateLimitedError,
    SnapshotError,
    StaleBookError,
    SubscriptionRejectedError,
    SymbolRejectedError,
    TapeFormatError,
    UnknownVenueError,
    UnsupportedOptionError,
    VenueErrorMessage,
    WireFormatError,
)

__version__ = "0.1.0"

__all__ = [
    "BookRejectedError",
    "BookUnavailableError",
    "ConfigError",
    "ConnectError",
    "Connected",
    "ConnectionLostError",
    "DecodeError",
    "Disconnected",
    "FaultSpecError",
    "FrameError",
    "HandshakeRejectedError",
    "LobfeedError",
    "OversizedFrameError",
    "ProxyRejectedError",
    "RateLimitedError",
    "SnapshotError",
    "StaleBookError",
    "StatusChanged",
    "SubscriptionRejectedError",
    "SymbolRejectedError",
    "TapeFormatError",
    "UnknownVenueError",
    "UnsupportedOptionError",
    "VenueErrorMessage",
    "WireFormatError",
    "__version__",
]

# LOBFEED_NO_NATIVE=1 lets the pure-Python parts (tape, local server) load without the extension.
if not os.environ.get("LOBFEED_NO_NATIVE"):
    from lobfeed._native import (
        BookUpdate,
        BookView,
        Candle,
        ChecksumMismatch,
        GapDetected,
        NeedResubscribe,
        NeedSnapshot,
        Quote,
        Resynced,
        Session,
        SyncLost,
        Trade,
        supported_venues,
    )
    from lobfeed.aio.feed import Feed
    from lobfeed.aio.health import SymbolHealth
    from lobfeed.aio.options import ConnectOptions

    __all__ += [
        "BookUpdate",
        "BookView",
        "Candle",
        "ChecksumMismatch",
        "ConnectOptions",
        "Feed",
        "GapDetected",
        "NeedResubscribe",
        "NeedSnapshot",
        "Quote",
        "Resynced",
        "Session",
        "SymbolHealth",
        "SyncLost",
        "Trade",
        "supported_venues",
    ]
