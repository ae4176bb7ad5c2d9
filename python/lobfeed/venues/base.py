"""What the asyncio layer needs to know of a venue: data and pure functions, no I/O.

Decoding and sequence rules live in Rust (``lobfeed._native.Session``); this side only knows
where to connect, what to send, and where a REST snapshot lives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import ClassVar, Literal, TypeVar
from urllib.parse import parse_qs, urlsplit

from lobfeed.exceptions import ConfigError

T = TypeVar("T")

BOOK = "book"
TRADES = "trades"
CANDLES = "candles"
QUOTES = "quotes"
CHANNELS = frozenset({BOOK, TRADES, CANDLES, QUOTES})


@dataclass(frozen=True, slots=True)
class Subscription:
    """What a feed asks a venue for."""

    symbols: tuple[str, ...]
    channels: frozenset[str] = field(default_factory=lambda: frozenset({BOOK, TRADES}))
    depth: int | None = None
    candle_interval: str = "1m"
    #: Venue-specific choices, as ``(name, value)`` pairs (``Feed(venue_options=...)``); each
    #: spec lists what it takes in ``VenueSpec.options`` and ``check`` refuses the rest.
    options: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        unknown = self.channels - CHANNELS
        if unknown:
            raise ConfigError(f"unknown channels {sorted(unknown)}; known: {sorted(CHANNELS)}")
        if not self.channels:
            raise ConfigError(f"no channels asked for; choose from {sorted(CHANNELS)}")
        if not self.symbols:
            raise ConfigError("a subscription needs at least one symbol")
        seen: dict[str, str] = {}
        for symbol in self.symbols:
            if not isinstance(symbol, str) or not symbol or symbol != symbol.strip():
                raise ConfigError(f"symbol {symbol!r} is not a venue symbol (a non-empty string)")
            if symbol.lower() in seen:
                raise ConfigError(f"symbol {symbol!r} is given twice (as {seen[symbol.lower()]!r})")
            seen[symbol.lower()] = symbol
        depth = self.depth
        if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int)):
            raise ConfigError(f"depth must be a whole number of levels, got {depth!r}")
        if depth is not None and depth < 1:
            raise ConfigError(f"depth must be at least 1 level a side, got {depth}")

    def option(self, name: str, default: str) -> str:
        """The value of venue option ``name``, or ``default`` when it was not given."""
        return dict(self.options).get(name, default)


@dataclass(frozen=True, slots=True)
class WeightLimit:
    """A venue's REST limit: ``limit`` weight per ``window`` seconds, and what a snapshot costs."""

    limit: int
    window: float
    snapshot_weight: int
    source: str
    """Where the venue documents it."""

    def __post_init__(self) -> None:
        if not 0 < self.snapshot_weight <= self.limit or self.window <= 0:
            raise ConfigError(f"unusable weight limit {self}")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where one connection goes, as a venue's token answer says (``VenueSpec.token_url``)."""

    url: str
    """The websocket URL, token included."""
    heartbeat_interval: float | None = None
    """Seconds between pings the venue asked for on this connection (``None``: the spec's)."""


class VenueSpec:
    """Endpoints and messages of one venue. Subclasses override what differs."""

    name: str = ""
    ws_url: str = ""
    rest_url: str | None = None
    #: Seconds between application-level pings, for venues that want them.
    heartbeat_interval: float | None = None
    #: The channels this venue can be asked for (``Feed`` refuses the others).
    channels: frozenset[str] = CHANNELS
    #: Seconds without an update after which a live symbol is reported ``stale`` (a quiet
    #: market or a stream that stopped: either way the book may no longer be the market).
    stale_after: float = 30.0
    #: What one connection may carry, from the venue's documentation (each spec names its
    #: source). ``None``: no limit known. ``split`` uses them to spread symbols over
    #: connections.
    max_streams_per_connection: int | None = None
    #: The longest subscription URL sent (venues that subscribe by URL).
    max_url_bytes: int | None = None
    #: Seconds a venue keeps one connection open before closing it itself (``None``: none
    #: known). The Feed replaces connections before that, without a gap.
    connection_lifetime: float | None = None
    #: The venue's REST request-weight limit and what one snapshot costs: every snapshot of a
    #: feed goes through one budget built from it. ``None``: no REST snapshots, or no limit.
    rest_weight: WeightLimit | None = None
    #: The venue name the Rust ``Session`` knows, when the spec's own name is an alias
    #: (``bybit-spot`` is decoded by the ``bybit`` session). Empty: ``name``.
    native_venue: str = ""
    #: Channels on which the venue sends history when subscribed (Bitfinex and Gemini trades,
    #: Coinbase candles); those events are marked ``is_snapshot`` and skipped unless
    #: ``Feed(history=True)``.
    history_channels: frozenset[str] = frozenset()
    #: The deepest ``depth`` the venue can serve (``None``: it streams whole books, so any);
    #: ``book_depths`` the depths it streams, named when a ``depth`` is refused.
    max_depth: int | None = None
    book_depths: tuple[int, ...] = ()
    #: The candle intervals the venue streams (``candle_interval`` is refused otherwise);
    #: ``Feed(candle_interval=None)`` asks for ``1m``, or the first of them without one.
    candle_intervals: tuple[str, ...] = ()
    #: How ``lobfeed verify`` ties the venue's ``Quote`` events to its books: ``"seq"``, the
    #: book at the quote's ``seq`` (Binance ``bookTicker``); ``"time"``, the book after the
    #: last update whose exchange time is not later than the quote's (Deribit tickers carry no
    #: id); ``"order"``, each quote is one of the book's top-of-book states, in order.
    quote_tie: Literal["seq", "time", "order"] = "seq"
    #: What ``lobfeed verify`` calls the truth the session counts as checksums (most venues
    #: send a CRC of the top levels; Upbit sends the sums of each side).
    checksum_truth: str = "checksums matched"
    #: Venue-specific options this venue takes (``Feed(venue_options={name: value})``): each
    #: name with the values allowed, the first being the default.
    options: ClassVar[Mapping[str, tuple[str, ...]]] = {}

    @property
    def session_venue(self) -> str:
        """The name to create a ``lobfeed._native.Session`` with (and to write in tape headers)."""
        return self.native_venue or self.name

    def check(self, sub: Subscription) -> None:
        """Raises ``ConfigError`` if the venue cannot serve ``sub``."""
        unsupported = sub.channels - self.channels
        if unsupported:
            offered = sorted(self.channels)
            raise ConfigError(
                f"{self.name} does not offer {sorted(unsupported)}; it offers {offered}"
            )
        depth, deepest = sub.depth, self.max_depth
        if depth is not None and deepest is not None and depth > deepest:
            served = f" (it streams {', '.join(map(str, self.book_depths))} levels)"
            raise ConfigError(
                f"{self.name} cannot serve depth {depth}: 1 to {deepest} levels a side"
                + (served if self.book_depths else "")
            )
        intervals = self.candle_intervals
        if CANDLES in sub.channels and intervals and sub.candle_interval not in intervals:
            raise ConfigError(
                f"{self.name} has no {sub.candle_interval!r} candles; its intervals: "
                f"{', '.join(intervals)}"
            )
        for name, value in sub.options:
            allowed = self.options.get(name)
            if allowed is None:
                known = ", ".join(sorted(self.options)) or "none"
                raise ConfigError(f"{self.name} has no option {name!r}; its options: {known}")
            if value not in allowed:
                raise ConfigError(
                    f"{self.name} option {name}={value!r} is not one of {', '.join(allowed)}"
                )

    def normalize_symbol(self, symbol: str) -> str:
        """``symbol`` as the venue spells it in its frames (``ethusdt`` -> ``ETHUSDT``), so
        events, health and books all use one spelling whatever case the user wrote."""
        return symbol.upper()

    def streams(self, sub: Subscription) -> list[str]:
        """The venue's stream (topic) names for ``sub``: one per symbol and channel."""
        return [f"{symbol}:{channel}" for symbol in sub.symbols for channel in sorted(sub.channels)]

    def fits(self, sub: Subscription) -> bool:
        """Whether one connection may carry ``sub`` under the venue's limits."""
        streams = self.max_streams_per_connection
        if streams is not None and len(self.streams(sub)) > streams:
            return False
        url = self.max_url_bytes
        return url is None or len(self.connect_url(self.ws_url, sub).encode()) <= url

    def split(self, sub: Subscription) -> list[Subscription]:
        """``sub`` cut into as few subscriptions as the venue's limits allow, symbols in order.

        A single symbol that does not fit alone is refused (``ConfigError``): no connection
        could carry it.
        """
        groups: list[Subscription] = []
        current: list[str] = []
        for symbol in sub.symbols:
            if self.fits(replace(sub, symbols=(*current, symbol))):
                current.append(symbol)
                continue
            if not current:
                raise ConfigError(
                    f"{self.name}: {symbol} with channels {sorted(sub.channels)} alone is over "
                    "what one connection may carry"
                )
            groups.append(replace(sub, symbols=tuple(current)))
            current = [symbol]
        if current:
            groups.append(replace(sub, symbols=tuple(current)))
        return groups

    def connect_url(self, ws_url: str, sub: Subscription) -> str:
        """The URL to open (venues that subscribe by URL put the streams in it)."""
        return ws_url

    def subscribe_messages(self, sub: Subscription) -> list[str]:
        """Text frames to send once connected."""
        return []

    def resubscribe_messages(
        self, symbol: str, sub: Subscription, *, channel: int | None = None
    ) -> list[str]:
        """Frames that make the venue send a fresh in-band book for one symbol.

        ``channel`` is the venue's channel id of the symbol's book as the session knows it
        (``Session.channel``), for venues that unsubscribe by channel id; ``None`` when there
        is none. No frames: the venue cannot resubscribe one book, and ``Feed`` reconnects.
        """
        return []

    def snapshot_url(self, rest_url: str, symbol: str, sub: Subscription) -> str | None:
        """Where the REST depth snapshot of a symbol lives, for venues that need one."""
        return None

    def instruments_url(self, rest_url: str, sub: Subscription) -> str | None:
        """Where the venue lists every instrument it trades, for venues whose list settles
        whether a symbol exists (``Feed.run`` refuses the others before subscribing)."""
        return None

    def listed_symbols(self, body: bytes) -> frozenset[str] | None:
        """The symbols an ``instruments_url`` answer lists, or ``None`` when it cannot say for
        sure (an unexpected body, one page of a longer list)."""
        return None

    def snapshot_symbol(self, url: str) -> str | None:
        """The symbol of a REST snapshot URL this spec would ask for (``snapshot_url`` read
        backwards), or ``None``: tapes record snapshots by URL, whatever host served them."""
        template = self.snapshot_url("", _MARKER, Subscription((_MARKER,)))
        if template is None:
            return None
        want, got = urlsplit(template), urlsplit(url)
        if want.path.rstrip("/") != got.path.rstrip("/"):
            return None
        query = parse_qs(got.query)
        for name, values in parse_qs(want.query).items():
            if values == [_MARKER]:
                return query[name][0] if name in query else None
        return None

    def serves_url(self, url: str) -> bool:
        """Whether a websocket URL (a tape's ``open`` record) is one this spec connects to:
        tells ``bybit-spot`` connections from ``bybit`` (linear) ones in one tape."""
        mine = urlsplit(self.connect_url(self.ws_url, Subscription((_MARKER,))))
        theirs = urlsplit(url)
        return mine.path.rstrip("/") == theirs.path.rstrip("/")

    def token_url(self, rest_url: str) -> str | None:
        """Where to POST for a connection token before each connection, for venues that hand
        one out per connection (KuCoin's ``bullet-public``); ``None``: connect to
        ``connect_url`` as it is."""
        return None

    def endpoint(self, body: bytes, sub: Subscription) -> Endpoint:
        """The connection a token answer (``token_url``'s body) points to; ``ConnectError``
        when the body is not a usable answer. Only called when ``token_url`` gives a URL, so
        a spec that sets one must read its answer here."""
        raise ConfigError(
            f"{self.name}: token_url is set but endpoint() does not read the token answer"
        )

    def heartbeat_message(self) -> str | None:
        """The application-level ping, if the venue wants one every ``heartbeat_interval``."""
        return None


# A symbol no venue lists, the same in any case and URL-safe: it marks where a spec's URL
# templates put the symbol.
_MARKER = "7319046285"


def pick_depth(depth: int | None, offered: tuple[int, ...], default: int) -> int:
    """The venue depth to subscribe for a wanted ``depth``: the smallest offered one that is at
    least as deep (the deepest when none is), ``default`` when no depth is wanted."""
    if depth is None:
        return default
    if depth <= 0:
        raise ConfigError(f"depth must be at least 1 level a side, got {depth}")
    for level in sorted(offered):
        if level >= depth:
            return level
    return max(offered)


def chunks(items: list[T], size: int) -> list[list[T]]:
    """``items`` in consecutive lists of at most ``size``."""
    return [items[i : i + size] for i in range(0, len(items), size)]
