"""``ConnectOptions``: every setting of how a Feed connects, resyncs and gives up, in one place."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from lobfeed.aio import proxy as proxies
from lobfeed.aio.backoff import Backoff
from lobfeed.exceptions import ConfigError
from lobfeed.venues.base import WeightLimit

TRANSPORTS = ("auto", "websockets", "picows")


def _picows_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("picows") is not None


def auto_transport(proxy: str | None) -> str:
    """What ``transport="auto"`` (the default) picks: picows, the faster client on every
    measure (``benches/README.md``, Python hot path), when it is installed (a plain
    ``pip install lobfeed`` installs it) and can use the proxy; websockets otherwise, and for
    ``proxy="env"``, whose scheme is only known per URL when connecting."""
    if not _picows_installed() or proxy == proxies.ENV:
        return "websockets"
    if proxy is not None and proxies.parse(proxy).scheme not in proxies.PICOWS_SCHEMES:
        return "websockets"
    return "picows"


@dataclass(frozen=True, slots=True)
class ConnectOptions:
    """How a ``Feed`` connects and recovers. Every time is in seconds.

    The defaults suit a real venue; tests shorten them. ``Feed(options=ConnectOptions(...))``
    takes one; the Feed keyword arguments of the same names override single fields.
    """

    transport: str = "auto"
    """``"auto"``: picows where it can be used, else websockets (see :func:`auto_transport`;
    the options then show the one picked); ``"websockets"``; or ``"picows"``."""
    open_timeout: float = 10.0
    """TCP connect plus websocket handshake."""
    close_timeout: float = 1.0
    """How long a close waits for the server's answer before dropping the connection."""
    ping_interval: float | None = 10.0
    """Websocket pings to the server; with ``ping_timeout`` they catch a TCP stall (a peer
    that stopped answering at all). ``None`` sends none."""
    ping_timeout: float | None = 10.0
    """A ping unanswered this long drops the connection (close code 1011)."""
    idle_timeout: float = 30.0
    """No frame at all for this long drops the connection (a data stall: pings answered,
    nothing sent)."""
    max_frame_bytes: int = 8 * 1024 * 1024
    """Larger websocket frames are refused (the connection is closed with 1009)."""
    max_body_bytes: int = 16 * 1024 * 1024
    """REST snapshot bodies are read in chunks and refused past this size."""
    max_buffer_bytes: int = 4 * 1024 * 1024
    """Deltas of one symbol kept while its snapshot is awaited; the oldest go first (counted
    in health's ``dropped``), and a snapshot older than what is kept is asked for again."""
    snapshot_timeout: float = 10.0
    """One REST snapshot request, connect to last byte."""
    resync_timeout: float = 10.0
    """A symbol resynced in-band (resubscribed) that has no fresh book after this long is
    resubscribed again; after ``resubscribe_attempts`` of those, the connection is replaced."""
    resubscribe_attempts: int = 2
    stale_after: float | None = None
    """A live symbol with no update for this long becomes ``stale``; ``None``: the venue's
    default (``VenueSpec.stale_after``)."""
    healthy_after: float = 10.0
    """A connection counts as healthy (and the reconnect backoff starts again from its first
    delay) once every book has been live for this long, not after one frame."""
    rotate_after: float | None = None
    """Replace each connection make-before-break after this long; ``None``: ten minutes
    before the venue's connection lifetime (``VenueSpec.connection_lifetime``; Binance
    closes connections after 24 h), never for venues that set none."""
    rest_weight: WeightLimit | None = None
    """The venue's REST weight limit, when it is not the venue's default (``None``): an
    account with a higher tier, say."""
    rest_budget_share: float = 0.8
    """The share of the venue's REST request weight (``VenueSpec.rest_weight``) this feed's
    snapshots may use; the rest is left to whatever else runs from the same IP."""
    max_attempts: int | None = None
    """Give up (``run()`` raises ``ConnectError``) after this many connection attempts in a
    row that never became healthy; ``None`` retries for ever, each attempt logged and sent to
    ``on_status``."""
    backoff: Backoff = field(default_factory=Backoff)
    """Delays between reconnects and between snapshot retries (capped, jittered)."""
    proxy: str | None = None
    """The proxy websockets and REST snapshots go through. ``None``: none, and the
    environment's ``*_PROXY`` variables are ignored; ``"http://[user:pass@]host:port"``;
    ``"socks5://..."``, ``"socks5h://..."`` (the proxy resolves names), ``"socks4://..."``,
    ``"socks4a://..."``; ``"env"``: ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``/``NO_PROXY``
    per URL (:mod:`lobfeed.aio.proxy` says how). The password is never shown (``repr`` and
    every message mask it). A proxy refusing for good (407) ends ``run()`` with
    ``ProxyRejectedError``; one that is down is retried like any refused connection."""

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ConfigError(f"transport is one of {TRANSPORTS}, not {self.transport!r}")
        if self.transport == "auto":
            proxies.check(self.proxy, "websockets")
            # Frozen: the pick is made once, here, so every reader sees a real transport.
            object.__setattr__(self, "transport", auto_transport(self.proxy))
        proxies.check(self.proxy, self.transport)
        for name in (
            "open_timeout",
            "close_timeout",
            "idle_timeout",
            "snapshot_timeout",
            "resync_timeout",
            "healthy_after",
        ):
            _positive(name, getattr(self, name))
        for name in ("ping_interval", "ping_timeout", "stale_after", "rotate_after"):
            value = getattr(self, name)
            if value is not None:
                _positive(name, value)
        for name in ("max_frame_bytes", "max_body_bytes", "max_buffer_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name} must be a positive whole number of bytes, not {value!r}")
        if not 0 < self.rest_budget_share <= 1:
            raise ConfigError(
                f"rest_budget_share is a fraction in (0, 1], not {self.rest_budget_share!r}"
            )
        if not isinstance(self.resubscribe_attempts, int) or self.resubscribe_attempts < 1:
            raise ConfigError(
                f"resubscribe_attempts must be at least 1, not {self.resubscribe_attempts!r}"
            )
        if self.max_attempts is not None and (
            not isinstance(self.max_attempts, int) or self.max_attempts < 1
        ):
            raise ConfigError(f"max_attempts must be None or at least 1, not {self.max_attempts!r}")

    def __repr__(self) -> str:
        shown = (
            f"{f.name}={proxies.mask_value(repr(getattr(self, f.name)))}"
            if f.name == "proxy"
            else f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
        )
        return f"ConnectOptions({', '.join(shown)})"


def _positive(name: str, value: object) -> None:
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(f"{name} must be a positive number of seconds, not {value!r}")
