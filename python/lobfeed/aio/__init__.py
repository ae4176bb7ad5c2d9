"""The asyncio layer: websocket connections, REST snapshots, reconnects, dispatch."""

from lobfeed.aio.backoff import Backoff
from lobfeed.aio.feed import Feed, FeedStats

__all__ = ["Backoff", "Feed", "FeedStats"]
