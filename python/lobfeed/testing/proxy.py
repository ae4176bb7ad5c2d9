"""Small real proxies for tests, soaks and benchmarks: an HTTP proxy and a SOCKS proxy on
loopback, each counting the connections it accepted and the bytes it relayed.

:class:`HttpProxy` tunnels ``CONNECT host:port`` (websockets, HTTPS) and forwards absolute-form
requests (``GET http://host:port/path``, what HTTP clients send a proxy for plain ``http://``
URLs; one request per connection, sent on with ``Connection: close``). :class:`SocksProxy`
speaks SOCKS5 (RFC 1928; user and password per RFC 1929 when configured) and SOCKS4/4a on the
same port. Given a ``username``/``password``, both refuse clients that do not present them:
HTTP 407, SOCKS5 authentication failure, SOCKS4 rejected (it has no passwords).

::

    async with HttpProxy(username="u", password="p") as proxy:
        feed = Feed(..., proxy=proxy.url)
        ...
    proxy.stats.relayed  # one Relayed per tunnel: target, first request line, bytes each way
"""

from __future__ import annotations

import abc
import asyncio
import base64
import contextlib
import ipaddress
import logging
import socket
import struct
import urllib.parse
from dataclasses import dataclass, field
from typing import ClassVar, Self

log = logging.getLogger("lobfeed.testing.proxy")

_CHUNK = 64 * 1024


@dataclass
class Relayed:
    """One relayed connection."""

    kind: str
    """``"CONNECT"``, ``"forward"`` (an absolute-form HTTP request), ``"socks5"``, ``"socks4"``."""
    target: str
    """``host:port`` the proxy connected to."""
    request: str = ""
    """The first line the client sent to the target (``GET /ws HTTP/1.1``, say)."""
    up: int = 0
    """Bytes from the client to the target."""
    down: int = 0
    """Bytes from the target to the client."""
    websocket: bool = False
    """Whether that first request asked for a websocket upgrade."""


@dataclass
class ProxyStats:
    """What a proxy did since it started."""

    connections: int = 0
    """Client connections accepted."""
    refused: int = 0
    """Clients turned away: bad or missing credentials, a target that could not be reached."""
    relayed: list[Relayed] = field(default_factory=list)

    @property
    def bytes_up(self) -> int:
        return sum(r.up for r in self.relayed)

    @property
    def bytes_down(self) -> int:
        return sum(r.down for r in self.relayed)

    def requests(self) -> list[str]:
        return [r.request for r in self.relayed]


class _Proxy(abc.ABC):
    scheme: ClassVar[str]

    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        self.username = username
        self.password = password
        self.host = host
        self._port = port
        self._started = False
        self.stats = ProxyStats()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The port it listens on (kept after ``close``, for messages that name it)."""
        if not self._started:
            raise RuntimeError("the proxy is not started")
        return self._port

    @property
    def url(self) -> str:
        """The proxy's URL with its own credentials, if it has any."""
        return self.url_with(self.username, self.password)

    def url_with(
        self, username: str | None, password: str | None, scheme: str | None = None
    ) -> str:
        """The proxy's URL with other credentials (wrong ones, say) or another scheme."""
        info = ""
        if username is not None:
            info = urllib.parse.quote(username, safe="")
            info += ":" + urllib.parse.quote(password or "", safe="") + "@"
        return f"{scheme or self.scheme}://{info}{self.host}:{self.port}"

    async def start(self) -> Self:
        self._server = await asyncio.start_server(self._accept, self.host, self._port)
        self._port = int(self._server.sockets[0].getsockname()[1])
        self._started = True
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.stats.connections += 1
        try:
            await self._handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
            log.debug("%s proxy: client connection ended: %r", self.scheme, e)
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @abc.abstractmethod
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serves one client connection."""

    async def _relay(
        self,
        record: Relayed,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        target: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        first: bytes = b"",
    ) -> None:
        """Copies both ways until the target is done; ``first`` goes to the target first."""
        self.stats.relayed.append(record)
        client_reader, client_writer = client
        target_reader, target_writer = target

        def note(data: bytes) -> None:
            if not record.request:
                head = data.split(b"\r\n\r\n", 1)[0]
                record.request = head.split(b"\r\n", 1)[0].decode("latin-1")
                record.websocket = b"upgrade: websocket" in head.lower()

        async def up() -> None:
            if first:
                note(first)
                record.up += len(first)
                target_writer.write(first)
            while data := await client_reader.read(_CHUNK):
                note(data)
                record.up += len(data)
                target_writer.write(data)
                await target_writer.drain()
            if target_writer.can_write_eof():
                target_writer.write_eof()

        async def down() -> None:
            while data := await target_reader.read(_CHUNK):
                record.down += len(data)
                client_writer.write(data)
                await client_writer.drain()

        sending = asyncio.ensure_future(up())
        try:
            with contextlib.suppress(ConnectionError):
                await down()
        finally:
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
            target_writer.close()
            with contextlib.suppress(Exception):
                await target_writer.wait_closed()


class HttpProxy(_Proxy):
    """An HTTP proxy: ``CONNECT`` tunnels and absolute-form forwarding, Basic auth (407)."""

    scheme = "http"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers.append((name.strip(), value.strip()))
        if not self._authorized(headers):
            self.stats.refused += 1
            writer.write(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="lobfeed test proxy"\r\n'
                b"Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
            return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            upstream = await self._open(host.strip("[]"), int(port), writer)
            if upstream is None:
                return
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await self._relay(Relayed("CONNECT", f"{host}:{port}"), (reader, writer), upstream)
            return
        url = urllib.parse.urlsplit(target)
        if url.scheme != "http" or url.hostname is None:
            self.stats.refused += 1
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return
        port_number = url.port or 80
        upstream = await self._open(url.hostname, port_number, writer)
        if upstream is None:
            return
        path = url.path or "/"
        if url.query:
            path += "?" + url.query
        dropped = {"proxy-authorization", "proxy-connection", "connection", "keep-alive"}
        kept = [f"{k}: {v}" for k, v in headers if k.lower() not in dropped]
        request = "\r\n".join([f"{method} {path} HTTP/1.1", *kept, "Connection: close", "", ""])
        await self._relay(
            Relayed("forward", f"{url.hostname}:{port_number}"),
            (reader, writer),
            upstream,
            first=request.encode("latin-1"),
        )

    def _authorized(self, headers: list[tuple[str, str]]) -> bool:
        if self.username is None:
            return True
        pair = f"{self.username}:{self.password}".encode()
        expected = "Basic " + base64.b64encode(pair).decode("ascii")
        return any(k.lower() == "proxy-authorization" and v == expected for k, v in headers)

    async def _open(
        self, host: str, port: int, writer: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            return await asyncio.open_connection(host, port)
        except OSError:
            self.stats.refused += 1
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return None


class SocksProxy(_Proxy):
    """A SOCKS5 proxy (user/password auth when configured) that also speaks SOCKS4 and 4a;
    ``url`` says ``socks5://``, :meth:`url_with` gives the others."""

    scheme = "socks5"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        version = (await reader.readexactly(1))[0]
        if version == 5:
            await self._socks5(reader, writer)
        elif version == 4:
            await self._socks4(reader, writer)

    async def _socks5(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        count = (await reader.readexactly(1))[0]
        methods = await reader.readexactly(count)
        wanted = 0x00 if self.username is None else 0x02
        if wanted not in methods:
            self.stats.refused += 1
            writer.write(b"\x05\xff")
            await writer.drain()
            return
        writer.write(bytes((5, wanted)))
        await writer.drain()
        if wanted == 0x02:
            _version, size = await reader.readexactly(2)
            username = (await reader.readexactly(size)).decode("utf-8", "replace")
            size = (await reader.readexactly(1))[0]
            password = (await reader.readexactly(size)).decode("utf-8", "replace")
            if (username, password) != (self.username, self.password):
                self.stats.refused += 1
                writer.write(b"\x01\x01")
                await writer.drain()
                return
            writer.write(b"\x01\x00")
            await writer.drain()
        _version, command, _reserved, kind = await reader.readexactly(4)
        if kind == 1:
            host = str(ipaddress.IPv4Address(await reader.readexactly(4)))
        elif kind == 3:
            size = (await reader.readexactly(1))[0]
            host = (await reader.readexactly(size)).decode("idna")
        elif kind == 4:
            host = str(ipaddress.IPv6Address(await reader.readexactly(16)))
        else:
            await self._socks5_reply(writer, 8)
            return
        (port,) = struct.unpack("!H", await reader.readexactly(2))
        if command != 1:
            await self._socks5_reply(writer, 7)
            return
        try:
            upstream = await asyncio.open_connection(host, port)
        except OSError:
            self.stats.refused += 1
            await self._socks5_reply(writer, 5)
            return
        await self._socks5_reply(writer, 0, upstream[1])
        await self._relay(Relayed("socks5", f"{host}:{port}"), (reader, writer), upstream)

    async def _socks5_reply(
        self, writer: asyncio.StreamWriter, code: int, bound: asyncio.StreamWriter | None = None
    ) -> None:
        address, port = b"\x00\x00\x00\x00", 0
        if bound is not None:
            name = bound.get_extra_info("sockname")
            with contextlib.suppress(Exception):
                address, port = socket.inet_aton(name[0]), int(name[1])
        writer.write(bytes((5, code, 0, 1)) + address + struct.pack("!H", port))
        await writer.drain()

    async def _socks4(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        command, port, raw = struct.unpack("!BH4s", await reader.readexactly(7))
        await reader.readuntil(b"\x00")  # the user id
        host = socket.inet_ntoa(raw)
        if raw[:3] == b"\x00\x00\x00" and raw[3] != 0:  # SOCKS4a: the name follows
            host = (await reader.readuntil(b"\x00"))[:-1].decode("idna")
        upstream = None
        if command == 1 and self.username is None:
            with contextlib.suppress(OSError):
                upstream = await asyncio.open_connection(host, port)
        if upstream is None:
            self.stats.refused += 1
            writer.write(b"\x00\x5b" + b"\x00" * 6)
            await writer.drain()
            return
        writer.write(b"\x00\x5a" + struct.pack("!H", port) + raw)
        await writer.drain()
        await self._relay(Relayed("socks4", f"{host}:{port}"), (reader, writer), upstream)
