"""One websocket connection as the Feed sees it: a ``Link``, with a websockets and a picows adapter.

The Feed's connection loop is written once against :class:`Link`; what differs between client
libraries (how frames arrive, how a close or a refused handshake is reported) stays here. Every
failure to connect becomes a typed error: :class:`~lobfeed.exceptions.HandshakeRejectedError`
for a status that will not change by retrying (401, 403, 404, 414, ...), and
:class:`~lobfeed.exceptions.ConnectError` for the transient rest (refused, DNS, timeouts, 429,
5xx), which the Feed retries with backoff.

Both adapters go through ``ConnectOptions.proxy`` when one is set (:mod:`lobfeed.aio.proxy`):
a proxy's lasting refusal (407, SOCKS authentication) is a
:class:`~lobfeed.exceptions.ProxyRejectedError`, a proxy that is down a ``ConnectError``; no
message names the proxy's password.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from lobfeed.aio import proxy as proxies
from lobfeed.aio.options import ConnectOptions
from lobfeed.aio.proxy import ProxyURL
from lobfeed.exceptions import ConfigError, ConnectError, HandshakeRejectedError

log = logging.getLogger("lobfeed.link")

#: Handshake statuses that retrying cannot fix: bad credentials, no such path, a URL too long.
PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 405, 410, 414, 451})

#: Called with each frame and the time it was read (``time.time_ns()``).
OnFrame = Callable[[bytes, int], None]

#: The close code of a connection that ended without a close frame (RFC 6455, 7.1.5).
ABNORMAL_CLOSURE = 1006

_YIELD_NS = 5_000_000


@dataclass(frozen=True, slots=True)
class CloseInfo:
    """How a connection ended."""

    code: int
    reason: str = ""
    #: Ended by us (``close``/``abort``), not by the server or the network.
    by_us: bool = False

    @property
    def clean(self) -> bool:
        return self.code in (1000, 1001)


class Link(Protocol):
    """What the Feed needs of a connection."""

    url: str
    binary: bool
    """Whether the frame being handed to the handler came as a binary frame (HTX, Upbit),
    known while the handler runs when ``keep_kinds`` was set before ``run``; else False."""
    keep_kinds: bool
    """Tell text from binary frames (what a recording needs); off, frames come as bytes
    without that distinction, which costs nothing."""

    async def send(self, text: str) -> None:
        """Sends a text frame; a closed connection raises ``ConnectionError``."""

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Closes with a close frame (the server's answer is not waited for long)."""

    def abort(self) -> None:
        """Drops the TCP connection at once (a stalled peer would never answer a close)."""

    async def run(self, on_frame: OnFrame) -> CloseInfo:
        """Hands every frame to ``on_frame`` until the connection ends; says how it ended."""

    def set_handler(self, on_frame: OnFrame) -> None:
        """From the next frame on, frames go to ``on_frame`` (a rotation changes how a
        connection's frames are delivered while it runs)."""


def _drop(raw: bytes, ts_ns: int) -> None:
    return None


def short_url(url: str, limit: int = 160) -> str:
    """A URL fit for a message: a 25 kB subscription URL is cut, with its length said."""
    if len(url) <= limit:
        return url
    return f"{url[:limit]}... ({len(url)} characters)"


def _connect_error(url: str, error: BaseException, proxy: ProxyURL | None = None) -> ConnectError:
    if proxy is not None and proxies.refusal(error) is not None:
        return proxies.proxy_error(url, proxy, error)
    status = getattr(getattr(error, "response", None), "status_code", None)
    if status is not None:
        message = f"websocket handshake to {short_url(url)} refused with HTTP {status}"
        via = None if proxy is None else proxy.masked()
        if status in PERMANENT_STATUSES:
            return HandshakeRejectedError(message, url=url, status=status, proxy=via)
        return ConnectError(message, url=url, status=status, proxy=via)
    if proxy is not None:
        return proxies.proxy_error(url, proxy, error)
    return ConnectError(f"cannot connect to {short_url(url)}: {error!r}", url=url)


async def connect(url: str, options: ConnectOptions) -> Link:
    """Opens a connection with the transport ``options`` names, through ``options.proxy`` if
    it names one; typed errors on failure."""
    proxy = proxies.resolve(options.proxy, url)
    if proxy is not None:
        log.debug("connecting to %s through proxy %s", short_url(url), proxy.masked())
    if options.transport == "picows":
        return await PicowsLink.open(url, options, proxy)
    return await WebsocketsLink.open(url, options, proxy)


class WebsocketsLink:
    """The ``websockets`` client (the default): frames are read in a loop."""

    def __init__(self, url: str, ws: ClientConnection) -> None:
        self.url = url
        self._ws = ws
        self._by_us = False
        self._handler: OnFrame = _drop
        self.binary = False
        self.keep_kinds = False

    @classmethod
    async def open(
        cls, url: str, options: ConnectOptions, proxy: ProxyURL | None = None
    ) -> WebsocketsLink:
        try:
            ws = await ws_connect(
                url,
                max_size=options.max_frame_bytes,
                open_timeout=options.open_timeout,
                # A server still streaming at us may not read our close frame for a while;
                # waiting long for its answer gains nothing.
                close_timeout=options.close_timeout,
                ping_interval=options.ping_interval,
                ping_timeout=options.ping_timeout,
                compression=None,
                # Explicit: websockets would read the environment's proxy variables itself.
                proxy=None if proxy is None else proxy.url(),
            )
        except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.InvalidURI) as e:
            raise _connect_error(url, e, proxy) from e
        return cls(url, ws)

    async def send(self, text: str) -> None:
        try:
            await self._ws.send(text)
        except websockets.ConnectionClosed as e:
            raise ConnectionError(f"connection closed while sending: {e}") from e

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self._closing()
        await self._ws.close(code, reason)

    def abort(self) -> None:
        self._closing()
        self._ws.transport.abort()

    def _closing(self) -> None:
        # What is still buffered is read only to reach the close frame: a backlog behind
        # slow callbacks must not hold up the close.
        self._by_us = True
        self._handler = _drop

    def set_handler(self, on_frame: OnFrame) -> None:
        self._handler = on_frame

    async def run(self, on_frame: OnFrame) -> CloseInfo:
        self._handler = on_frame
        recv = self._ws.recv
        clock = time.time_ns
        yielded = clock()
        # Without kinds, text frames are not decoded to str at all (the hot path); with them,
        # websockets gives str for text and bytes for binary, and text goes back to bytes.
        decode = None if self.keep_kinds else False
        try:
            while True:
                raw = await recv(decode=decode)
                ts_ns = clock()
                if isinstance(raw, str):
                    self.binary = False
                    raw = raw.encode()
                else:
                    self.binary = self.keep_kinds
                self._handler(raw, ts_ns)
                # recv() returns frames already buffered without giving the loop a turn, so a
                # backlog behind slow callbacks would starve timers (stop(), watchdogs, health)
                # for as long as it lasts: give the loop a turn every few milliseconds.
                if ts_ns - yielded > _YIELD_NS:
                    yielded = ts_ns
                    await asyncio.sleep(0)
        except websockets.ConnectionClosed as e:
            received = e.rcvd
            if received is not None:
                return CloseInfo(received.code, received.reason, self._by_us)
            # No close frame from the server; what we sent, if anything, says why (a keepalive
            # ping left unanswered is 1011 "keepalive ping timeout").
            sent = e.sent
            why = "no close frame" if sent is None else f"no close frame; {sent.code} {sent.reason}"
            return CloseInfo(ABNORMAL_CLOSURE, why.strip(), self._by_us)


class PicowsLink:
    """The picows client (``transport="picows"``): about half the per-frame cost of websockets
    on loopback; frames arrive by callback and wait in a list until ``run`` starts."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.transport: Any = None
        # Frames before ``run`` wait in ``_early``; then each goes straight to the handler.
        self._early: list[tuple[bytes, int, bool]] = []
        self._on_frame: OnFrame = self._keep_early
        self.binary = False
        self.keep_kinds = False
        self._closed: asyncio.Future[CloseInfo] = asyncio.get_running_loop().create_future()
        self._by_us = False

    @classmethod
    async def open(
        cls, url: str, options: ConnectOptions, proxy: ProxyURL | None = None
    ) -> PicowsLink:
        from picows import WSError, ws_connect
        from python_socks import ProxyError

        via: str | None = None
        if proxy is not None:
            if proxy.scheme not in proxies.PICOWS_SCHEMES:
                raise ConfigError(
                    f"transport='picows' cannot use the proxy {proxy.masked()!r} (from the "
                    f"environment): it supports {', '.join(proxies.PICOWS_SCHEMES)} proxies"
                )
            # python-socks lets a SOCKS5 proxy resolve names (what socks5h:// asks for).
            via = proxy.url("socks5" if proxy.scheme == "socks5h" else None)

        link = cls(url)
        try:
            link.transport, _ = await ws_connect(
                link._listener_factory(),
                url,
                websocket_handshake_timeout=options.open_timeout,
                max_frame_size=options.max_frame_bytes,
                enable_auto_pong=True,
                enable_auto_ping=options.ping_interval is not None,
                auto_ping_idle_timeout=options.ping_interval or 20.0,
                auto_ping_reply_timeout=options.ping_timeout or 20.0,
                proxy=via,
            )
        except WSError as e:
            raise _picows_error(url, e) from e
        except (OSError, TimeoutError, ProxyError) as e:
            raise _connect_error(url, e, proxy) from e
        return link

    def _listener_factory(self) -> Callable[[], Any]:
        from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport

        link = self
        parts: list[bytes] = []
        clock = time.time_ns
        data_kinds = (WSMsgType.TEXT, WSMsgType.BINARY)
        binary_kind = WSMsgType.BINARY
        # The kind of a fragmented message is its first frame's.
        fragmented_binary = False

        class Listener(WSListener):
            code = ABNORMAL_CLOSURE
            reason = ""

            def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
                nonlocal fragmented_binary
                kind = frame.msg_type
                if kind in data_kinds and frame.fin:
                    # The hot path: the frame straight to the feed's handler (the session).
                    link.binary = kind == binary_kind
                    link._on_frame(frame.get_payload_as_bytes(), clock())
                elif kind in data_kinds:
                    fragmented_binary = kind == binary_kind
                    parts.append(frame.get_payload_as_bytes())
                elif kind == WSMsgType.CONTINUATION:
                    parts.append(frame.get_payload_as_bytes())
                    if frame.fin:
                        whole = b"".join(parts)
                        parts.clear()
                        link.binary = fragmented_binary
                        link._on_frame(whole, clock())
                elif kind == WSMsgType.CLOSE:
                    code = frame.get_close_code()
                    self.code = int(code.value)
                    self.reason = frame.get_close_message().decode("utf-8", "replace")
                    transport.send_close(code if code != WSCloseCode.NO_INFO else WSCloseCode.OK)
                    transport.disconnect()

            def on_ws_disconnected(self, transport: WSTransport) -> None:
                reason = self.reason
                if self.code == ABNORMAL_CLOSURE and not reason:
                    reason = _unanswered_close(transport)
                if not link._closed.done():
                    link._closed.set_result(CloseInfo(self.code, reason, link._by_us))

        return Listener

    def _keep_early(self, raw: bytes, ts_ns: int) -> None:
        self._early.append((raw, ts_ns, self.binary))

    async def send(self, text: str) -> None:
        from picows import WSMsgType

        if self._closed.done():
            raise ConnectionError("connection closed while sending")
        self.transport.send(WSMsgType.TEXT, text.encode())

    async def close(self, code: int = 1000, reason: str = "") -> None:
        from picows import WSCloseCode

        self._closing()
        if self._closed.done():
            return
        self.transport.send_close(WSCloseCode(code), reason.encode())
        self.transport.disconnect()
        await self.transport.wait_disconnected()

    def abort(self) -> None:
        self._closing()
        self.transport.disconnect(graceful=False)

    def _closing(self) -> None:
        # Closing: nothing more is delivered.
        self._by_us = True
        self._on_frame = _drop

    def set_handler(self, on_frame: OnFrame) -> None:
        self._on_frame = on_frame

    async def run(self, on_frame: OnFrame) -> CloseInfo:
        early, self._early = self._early, []
        for raw, ts_ns, binary in early:
            self.binary = binary
            on_frame(raw, ts_ns)
        self._on_frame = on_frame
        return await self._closed


def _unanswered_close(transport: Any) -> str:
    """Why a picows connection ended without the server's close frame, in the words the
    websockets link uses: what we sent, if anything; a ping left unanswered (picows closes with
    1001 and its own sentence) is "keepalive ping timeout", as websockets says it."""
    handshake = getattr(transport, "close_handshake", None)
    sent = getattr(handshake, "sent", None)
    if sent is None:
        return "no close frame"
    if "ping" in sent.reason:
        return "no close frame; keepalive ping timeout"
    return f"no close frame; {int(sent.code)} {sent.reason}".strip()


def _picows_error(url: str, error: Exception) -> ConnectError:
    # picows reports a refused upgrade as a WSError carrying the raw response.
    response = getattr(error, "response", None)
    status = getattr(response, "status", None)
    if isinstance(status, int):
        message = f"websocket handshake to {short_url(url)} refused with HTTP {status}"
        if status in PERMANENT_STATUSES:
            return HandshakeRejectedError(message, url=url, status=status)
        return ConnectError(message, url=url, status=status)
    return ConnectError(f"cannot connect to {short_url(url)}: {error!r}", url=url)
