"""The asyncio layer: websocket connections, REST snapshots, reconnects, dispatch, health."""

from lobfeed.aio.backoff import Backoff
from lobfeed.aio.dispatch import Dispatcher, DispatchStats
from lobfeed.aio.feed import Feed, FeedStats
from lobfeed.aio.health import SymbolHealth
from lobfeed.aio.options import ConnectOptions

__all__ = [
    "Backoff",
    "ConnectOptions",
    "DispatchStats",
    "Dispatcher",
    "Feed",
    "FeedStats",
    "SymbolHealth",
]
