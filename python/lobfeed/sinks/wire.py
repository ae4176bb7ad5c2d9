"""The fan-out message format, shared by the ZeroMQ and NATS sinks (and any later transport).

One message is one msgpack map (see ``docs/fanout.md`` for the full table). Every message has:

``v``               format version (``VERSION``); a reader refuses a version it does not know
``type``            ``book``, ``delta``, ``trade``, ``candle``, ``quote``, ``event`` or ``status``
``venue``           the feed's venue name
``symbol``          the venue's spelling; ``None`` for connection-wide status
``seq``             the venue's sequence number where it has one, else ``None``
``exchange_ts_ns``  the venue's timestamp (Unix ns), ``None`` where the venue sends none
``ts_ns``           when the frame reached the feed (Unix ns)
``pub``             the publishing process's random id
``n``               1, 2, 3... per stream (channel, venue, symbol) and publisher: a gap is a
                    message lost between publisher and reader, counted by the reader

A stream is named ``<channel>.<venue>.<symbol>`` with each part escaped by :func:`token` so
that no name can contain the separator: ZeroMQ topics end with a ``.`` (a prefix subscription to
``book.binance.BTCUSD.`` can never match ``BTCUSDT``), NATS subjects are
``lobfeed.<channel>.<venue>.<symbol>``.

:class:`WireSink` turns the feed's objects into these messages; a transport subclasses it and
implements ``_name`` (the stream's topic or subject) and ``_send``.
"""

from __future__ import annotations

import abc
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgpack

from lobfeed.exceptions import ConfigError, WireFormatError
from lobfeed.sinks.base import Sink

VERSION = 1

BOOK = "book"
DELTA = "delta"
TRADE = "trade"
CANDLE = "candle"
QUOTE = "quote"
EVENT = "event"
STATUS = "status"
MESSAGE_TYPES = (BOOK, DELTA, TRADE, CANDLE, QUOTE, EVENT, STATUS)
#: A transport's own message on a stream (ZeroMQ: its count so far); readers keep it.
BEAT = "beat"
#: The Feed's channel names (``--channels``) accepted where a message type is meant.
ALIASES = {
    "trades": TRADE,
    "candles": CANDLE,
    "quotes": QUOTE,
    "deltas": DELTA,
    "events": EVENT,
}
#: The symbol part of a stream that concerns a whole connection (``Connected``).
NO_SYMBOL = "-"
DEFAULT_DEPTH = 25

Levels = list[tuple[str, str]]


# -- names ------------------------------------------------------------------------------

# Characters that would split or widen a topic or subject: the separator, NATS wildcards,
# whitespace, and the escape character itself.
_UNSAFE = frozenset(".*>% \t\r\n")


def token(part: str) -> str:
    """``part`` made safe as one topic or subject token: unsafe characters, non-ASCII and the
    placeholder ``-`` spelled alone become ``%XX`` (UTF-8), everything else stays readable."""
    if part == NO_SYMBOL:
        return "%2D"
    if part and all(c not in _UNSAFE and " " < c < "\x7f" for c in part):
        return part
    out = []
    for c in part:
        if c in _UNSAFE or not " " < c < "\x7f":
            out.append("".join(f"%{b:02X}" for b in c.encode()))
        else:
            out.append(c)
    return "".join(out) or "%"


def untoken(text: str) -> str:
    """The inverse of :func:`token`."""
    if "%" not in text:
        return text
    from urllib.parse import unquote

    return unquote(text, errors="strict")


def zmq_topic(channel: str, venue: str, symbol: str | None) -> bytes:
    """``book.binance.BTCUSDT.``: every part ends with the separator, so prefixes are exact."""
    return f"{channel}.{token(venue)}.{_symbol_token(symbol)}.".encode()


def nats_subject(prefix: str, channel: str, venue: str, symbol: str | None) -> str:
    """``lobfeed.book.binance.BTCUSDT``."""
    return f"{prefix}.{channel}.{token(venue)}.{_symbol_token(symbol)}"


def _symbol_token(symbol: str | None) -> str:
    return NO_SYMBOL if symbol is None else token(symbol)


@dataclass(frozen=True, slots=True)
class Filter:
    """What a reader asks for: a message type, optionally one venue, optionally one symbol.
    Written ``CHANNEL[.VENUE[.SYMBOL]]`` (``book``, ``trade.binance``, ``book.okx.BTC-USDT``);
    ``*`` as the channel means every type."""

    channel: str | None
    venue: str | None = None
    symbol: str | None = None

    @classmethod
    def parse(cls, text: str) -> Filter:
        parts = text.split(".", 2)
        channel = parts[0]
        if channel == "*":
            if len(parts) > 1:
                raise ConfigError(
                    f"topic {text!r}: '*' stands for every channel and takes no venue or "
                    "symbol; name a channel to narrow it"
                )
            return cls(None)
        channel = ALIASES.get(channel, channel)
        if channel not in MESSAGE_TYPES:
            raise ConfigError(
                f"topic {text!r}: unknown channel {parts[0]!r}; known: {', '.join(MESSAGE_TYPES)}"
                " (as CHANNEL[.VENUE[.SYMBOL]], or '*' for all)"
            )
        venue = parts[1] if len(parts) > 1 else None
        symbol = parts[2] if len(parts) > 2 else None
        if venue == "" or symbol == "":
            raise ConfigError(
                f"topic {text!r}: an empty venue or symbol; write CHANNEL.VENUE.SYMBOL"
            )
        return cls(channel, venue, symbol)

    def zmq_prefix(self) -> bytes:
        """The ZeroMQ subscription: a prefix that ends at a separator."""
        if self.channel is None:
            return b""
        out = f"{self.channel}."
        if self.venue is not None:
            out += f"{token(self.venue)}."
            if self.symbol is not None:
                out += f"{token(self.symbol)}."
        return out.encode()

    def nats_subject(self, prefix: str) -> str:
        """The NATS subject filter, wildcards where the filter is open."""
        if self.channel is None:
            return f"{prefix}.>"
        if self.venue is None:
            return f"{prefix}.{self.channel}.>"
        if self.symbol is None:
            return f"{prefix}.{self.channel}.{token(self.venue)}.>"
        return nats_subject(prefix, self.channel, self.venue, self.symbol)


# -- encoding ---------------------------------------------------------------------------

_pack: Callable[[Any], bytes] = msgpack.Packer(use_bin_type=True).pack


def encode(message: dict[str, Any]) -> bytes:
    return _pack(message)


def decode(payload: bytes) -> dict[str, Any]:
    """One message; ``WireFormatError`` if it is not a message of a version this code reads."""
    try:
        message = msgpack.unpackb(payload, raw=False, use_list=True, strict_map_key=True)
    except (ValueError, msgpack.UnpackException) as exc:
        raise WireFormatError(f"not a lobfeed fan-out message: {exc}") from None
    if not isinstance(message, dict) or "v" not in message or "type" not in message:
        raise WireFormatError(
            f"not a lobfeed fan-out message (a map with 'v' and 'type' expected): {message!r:.80}"
        )
    if message["v"] != VERSION:
        raise WireFormatError(
            f"fan-out message format version {message['v']!r}; this lobfeed reads version "
            f"{VERSION} only (upgrade the reader)"
        )
    return message


def as_line(message: dict[str, Any]) -> dict[str, Any]:
    """The JSON line a reader prints: a book exactly as ``lobfeed replay`` writes it
    (``venue, symbol, seq, ts_ns, bids, asks``); anything else with its ``type`` first and
    without the transport's own fields (``v``, ``pub``, ``n``)."""
    if message["type"] == BOOK:
        return {
            "venue": message["venue"],
            "symbol": message["symbol"],
            "seq": message["seq"],
            "ts_ns": message["ts_ns"],
            "bids": message["bids"],
            "asks": message["asks"],
        }
    line = {"type": message["type"]}
    line.update((k, v) for k, v in message.items() if k not in ("v", "type", "pub", "n"))
    return line


def _levels_changed(old: Levels, new: Levels) -> list[tuple[str, str]]:
    """What turns the top-N side ``old`` into ``new``: changed or new levels with their size,
    levels that left the top N with size ``"0"``."""
    before = dict(old)
    after = dict(new)
    out = [(p, s) for p, s in new if before.get(p) != s]
    out.extend((p, "0") for p in before if p not in after)
    return out


def apply_delta(book: tuple[dict[str, str], dict[str, str]], message: dict[str, Any]) -> None:
    """Applies a ``delta`` message to ``(bids, asks)`` price-to-size maps (``reset``: from
    empty)."""
    bids, asks = book
    if message["reset"]:
        bids.clear()
        asks.clear()
    for side, changes in ((bids, message["bids"]), (asks, message["asks"])):
        for price, size in changes:
            if size == "0":
                side.pop(price, None)
            else:
                side[price] = size


def book_from_levels(
    message: dict[str, Any], book: tuple[dict[str, str], dict[str, str]]
) -> dict[str, Any]:
    """A ``book`` message made from a delta stream's assembled levels (best first)."""
    bids, asks = book
    out = {k: v for k, v in message.items() if k not in ("bids", "asks", "reset")}
    out["type"] = BOOK
    out["bids"] = [[p, bids[p]] for p in sorted(bids, key=Decimal, reverse=True)]
    out["asks"] = [[p, asks[p]] for p in sorted(asks, key=Decimal)]
    return out


# -- the sink half ----------------------------------------------------------------------


@dataclass(slots=True)
class Stream:
    """One (channel, venue, symbol) of a publisher: its transport name and its counter."""

    channel: str
    venue: str
    symbol: str | None
    name: Any
    n: int = 0
    #: Books: the last top-N levels sent (deltas are made from them).
    levels: tuple[Levels, Levels] | None = None
    #: Books: the last message sent, for late joiners (None once the book was lost).
    last: bytes | None = None
    #: Deltas: whether ``levels`` is the venue's book now (not since a ``SyncLost``).
    live: bool = False
    #: Deltas: ``seq, exchange_ts_ns, ts_ns`` of the update that made ``levels``.
    stamp: tuple[int | None, int | None, int] = (None, None, 0)


class WireSink(Sink, abc.ABC):
    """A sink that turns each object into a wire message and hands it to ``_send``.

    ``venue`` names the feed's venue for objects that do not carry it (``BookUpdate``);
    ``depth`` is the levels per side of each book message; ``deltas`` adds a ``delta`` stream
    per book (the changes of its top ``depth`` levels since the previous message).
    """

    def __init__(
        self, *, venue: str | None = None, depth: int = DEFAULT_DEPTH, deltas: bool = False
    ) -> None:
        if depth < 1:
            raise ConfigError(f"depth {depth}: a book message needs at least 1 level per side")
        self.venue = venue
        self.depth = depth
        self.deltas = deltas
        #: This publisher's id in every message: readers tell a restarted publisher by it.
        self.pub_id = int.from_bytes(os.urandom(4), "big")
        self._streams: dict[tuple[str, str, str | None], Stream] = {}
        self.published = 0

    @abc.abstractmethod
    def _name(self, channel: str, venue: str, symbol: str | None) -> Any:
        """The transport's name of a stream (a ZeroMQ topic, a NATS subject)."""

    @abc.abstractmethod
    def _send(self, stream: Stream, payload: bytes, msg_id: str | None) -> None:
        """Sends one encoded message of ``stream``, never blocking the feed."""

    def stream(self, channel: str, venue: str, symbol: str | None) -> Stream:
        key = (channel, venue, symbol)
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = Stream(
                channel, venue, symbol, self._name(channel, venue, symbol)
            )
        return stream

    def _venue_of(self, obj: Any) -> str:
        venue = getattr(obj, "venue", None) or self.venue
        if venue is None:
            raise ConfigError(
                f"{type(self).__name__}: a {type(obj).__name__} carries no venue; give the "
                "sink venue=..."
            )
        return str(venue)

    def _publish(self, stream: Stream, message: dict[str, Any], msg_id: str | None) -> bytes:
        stream.n += 1
        message["n"] = stream.n
        payload = _pack(message)
        self.published += 1
        self._send(stream, payload, msg_id)
        return payload

    def _head(
        self,
        kind: str,
        venue: str,
        symbol: str | None,
        seq: int | None,
        exchange_ts_ns: int | None,
        ts_ns: int,
    ) -> dict[str, Any]:
        return {
            "v": VERSION,
            "type": kind,
            "venue": venue,
            "symbol": symbol,
            "seq": seq,
            "exchange_ts_ns": exchange_ts_ns,
            "ts_ns": ts_ns,
            "pub": self.pub_id,
        }

    # -- the Sink interface ---------------------------------------------------------

    def on_book(self, update: Any) -> None:
        venue = self.venue or self._venue_of(update)
        symbol = update.symbol
        book = update.book
        bids = book.bids(self.depth)
        asks = book.asks(self.depth)
        seq = update.seq
        exchange_ts = update.exchange_ts_ns or None
        msg_id = None if seq is None else f"{venue}:{symbol}:{seq}:{update.exchange_ts_ns}"
        stream = self.stream(BOOK, venue, symbol)
        message = self._head(BOOK, venue, symbol, seq, exchange_ts, update.ts_ns)
        message["bids"] = bids
        message["asks"] = asks
        stream.last = self._publish(stream, message, msg_id and f"book:{msg_id}")
        if self.deltas:
            dstream = self.stream(DELTA, venue, symbol)
            delta = self._head(DELTA, venue, symbol, seq, exchange_ts, update.ts_ns)
            if dstream.levels is None:
                delta["reset"] = True
                delta["bids"] = bids
                delta["asks"] = asks
            else:
                delta["reset"] = False
                delta["bids"] = _levels_changed(dstream.levels[0], bids)
                delta["asks"] = _levels_changed(dstream.levels[1], asks)
            self._publish(dstream, delta, msg_id and f"delta:{msg_id}")
            dstream.levels = (bids, asks)
            dstream.live = True
            dstream.stamp = (seq, exchange_ts, update.ts_ns)

    def delta_snapshot(self, stream: Stream) -> bytes | None:
        """A ``reset`` delta of a delta stream's current levels, numbered like its last
        message, for a late joiner (``None`` while the stream has no book)."""
        if stream.levels is None or not stream.live:
            return None
        message = self._head(DELTA, stream.venue, stream.symbol, *stream.stamp)
        message.update(reset=True, bids=stream.levels[0], asks=stream.levels[1], n=stream.n)
        return _pack(message)

    def on_trade(self, trade: Any) -> None:
        venue = self._venue_of(trade)
        symbol = trade.symbol
        message = self._head(TRADE, venue, symbol, None, trade.exchange_ts_ns or None, trade.ts_ns)
        message.update(trade_id=trade.trade_id, side=trade.side, price=trade.price, size=trade.size)
        self._publish(
            self.stream(TRADE, venue, symbol),
            message,
            f"trade:{venue}:{symbol}:{trade.trade_id}",
        )

    def on_candle(self, candle: Any) -> None:
        venue = self._venue_of(candle)
        symbol = candle.symbol
        message = self._head(
            CANDLE, venue, symbol, None, candle.exchange_ts_ns or None, candle.ts_ns
        )
        message.update(
            interval=candle.interval,
            open_ts_ns=candle.open_ts_ns,
            close_ts_ns=candle.close_ts_ns,
            open=candle.open,
            high=candle.high,
            low=candle.low,
            close=candle.close,
            volume=candle.volume,
            trades=candle.trades,
            closed=candle.closed,
        )
        msg_id = (
            f"candle:{venue}:{symbol}:{candle.interval}:{candle.open_ts_ns}:{candle.closed}:"
            f"{candle.exchange_ts_ns}"
        )
        self._publish(self.stream(CANDLE, venue, symbol), message, msg_id)

    def on_quote(self, quote: Any) -> None:
        venue = self._venue_of(quote)
        symbol = quote.symbol
        seq = quote.seq
        message = self._head(QUOTE, venue, symbol, seq, quote.exchange_ts_ns or None, quote.ts_ns)
        message.update(
            bid_price=quote.bid_price,
            bid_size=quote.bid_size,
            ask_price=quote.ask_price,
            ask_size=quote.ask_size,
        )
        msg_id = None if seq is None else f"quote:{venue}:{symbol}:{seq}:{quote.exchange_ts_ns}"
        self._publish(self.stream(QUOTE, venue, symbol), message, msg_id)

    def on_event(self, event: Any) -> None:
        from lobfeed._native import (
            ChecksumMismatch,
            GapDetected,
            NeedResubscribe,
            NeedSnapshot,
            Resynced,
            SyncLost,
        )

        venue = self._venue_of(event)
        symbol = event.symbol
        fields: dict[str, Any]
        if isinstance(event, GapDetected):
            name, fields = "gap", {"expected": event.expected, "received": event.received}
        elif isinstance(event, Resynced):
            name, fields = "resynced", {}
        elif isinstance(event, ChecksumMismatch):
            name, fields = (
                "checksum_mismatch",
                {
                    "expected": event.expected,
                    "computed": event.computed,
                },
            )
        elif isinstance(event, SyncLost):
            name, fields = "sync_lost", {"reason": event.reason, "detail": event.detail}
            # The last book is no longer the venue's: a late joiner must wait for the next.
            lost = self._streams.get((BOOK, venue, symbol))
            if lost is not None:
                lost.last = None
            lost = self._streams.get((DELTA, venue, symbol))
            if lost is not None:
                lost.live = False
        elif isinstance(event, NeedSnapshot):
            name, fields = "need_snapshot", {}
        elif isinstance(event, NeedResubscribe):
            name, fields = "need_resubscribe", {}
        else:
            name, fields = type(event).__name__, {}
        seq = getattr(event, "seq", None)
        message = self._head(EVENT, venue, symbol, seq, None, time.time_ns())
        message["event"] = name
        message.update(fields)
        self._publish(self.stream(EVENT, venue, symbol), message, None)

    def on_status(self, status: Any) -> None:
        from lobfeed.events import Connected, Disconnected, StatusChanged

        venue = self._venue_of(status)
        symbol: str | None = None
        fields: dict[str, Any]
        if isinstance(status, StatusChanged):
            symbol = status.symbol
            fields = {"event": "status", "old": status.old, "new": status.new}
            fields["reason"] = status.reason
        elif isinstance(status, Connected):
            fields = {"event": "connected", "connection": status.connection, "url": status.url}
        elif isinstance(status, Disconnected):
            fields = {"event": "disconnected", "connection": status.connection}
            fields.update(code=status.code, reason=status.reason)
        else:
            fields = {"event": type(status).__name__}
        ts_ns = getattr(status, "ts_ns", None) or time.time_ns()
        message = self._head(STATUS, venue, symbol, None, None, ts_ns)
        message.update(fields)
        self._publish(self.stream(STATUS, venue, symbol), message, None)
