"""Where a feed's data goes besides the user's callbacks: tapes, Parquet, ZeroMQ, NATS.

A sink receives the same objects the callbacks do, synchronously and in order, and must never
block the feed: it copies what it needs and queues it. See :class:`lobfeed.sinks.base.Sink`.
"""

from lobfeed.sinks.base import Sink, feed_callbacks

__all__ = ["Sink", "feed_callbacks"]
