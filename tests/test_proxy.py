"""``ConnectOptions.proxy``: a Feed through real HTTP and SOCKS proxies on loopback.

Every proxy here is a :mod:`lobfeed.testing.proxy` server; the exchange is the local
``ExchangeServer`` replaying a real Binance tape. A proxy records each tunnel's first request
line, so a test can tell the websocket upgrade from the REST snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lobfeed import BookUpdate, ConfigError, ConnectError, Feed, ProxyRejectedError
from lobfeed.aio import Backoff, ConnectOptions
from lobfeed.aio import proxy as proxies
from lobfeed.testing import ExchangeServer, HttpProxy, SocksProxy
from lobfeed.testing.proxy import ProxyStats

ETH_TAPE = "binance-ethusdt-20240808.jsonl.gz"
FAST = Backoff(initial=0.01, maximum=0.05)
TIMEOUT = 30
SECRET = "s3cr3t-Pa55word"
BOOKS = 50

PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "WS_PROXY",
    "WSS_PROXY",
    "NO_PROXY",
    "SOCKS_PROXY",
    "REQUEST_METHOD",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No proxy variable from the machine running the tests leaks in."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    yield


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Ran:
    books: int
    target: str
    """The exchange's ``host:port``."""


async def run_feed(server: ExchangeServer, **kwargs: Any) -> Ran:
    """Runs a Feed until it has delivered ``BOOKS`` books; says how many it delivered."""
    books = 0

    def on_book(update: BookUpdate) -> None:
        nonlocal books
        books += 1
        if books >= BOOKS:
            feed.stop()

    options: dict[str, Any] = {
        "ws_url": server.ws_url,
        "rest_url": server.rest_url,
        "reconnect": False,
        "backoff": FAST,
        "on_book": on_book,
    }
    options.update(kwargs)
    feed = Feed("binance", ["ETHUSDT"], **options)
    await asyncio.wait_for(feed.run(), TIMEOUT)
    assert feed.stats.snapshots == 1
    return Ran(books, server.rest_url.split("://", 1)[1].split("/", 1)[0])


def assert_both_went_through(stats: ProxyStats, ran: Ran) -> None:
    """The proxy relayed the websocket and the REST snapshot, both to the exchange."""
    assert ran.books >= BOOKS
    assert all(r.target == ran.target for r in stats.relayed), stats.relayed
    websockets = [r for r in stats.relayed if r.websocket]
    snapshots = [r for r in stats.relayed if "depth" in r.request and not r.websocket]
    assert len(websockets) == 1, stats.requests()
    assert len(snapshots) == 1, stats.requests()
    assert websockets[0].down > 10_000  # the stream came back through the proxy
    assert snapshots[0].down > 1_000  # and so did the snapshot body
    assert stats.connections == len(stats.relayed) == 2
    assert stats.refused == 0


@pytest.fixture
def eth_server(tape_path: Callable[[str], Path]) -> Callable[[], ExchangeServer]:
    return lambda: ExchangeServer(tape_path(ETH_TAPE), speed=float("inf"))


# -- through each kind of proxy --------------------------------------------------------------


@pytest.mark.parametrize("transport", ["websockets", "picows"])
async def test_http_proxy_with_credentials_carries_the_stream_and_the_snapshot(
    eth_server: Callable[[], ExchangeServer], transport: str
) -> None:
    async with eth_server() as server, HttpProxy(username="feed", password=SECRET) as proxy:
        ran = await run_feed(server, proxy=proxy.url, transport=transport)
    assert_both_went_through(proxy.stats, ran)
    kinds = {r.kind for r in proxy.stats.relayed}
    # websocket by CONNECT; the plain-http snapshot forwarded (what aiohttp does for http://).
    assert kinds == {"CONNECT", "forward"}


@pytest.mark.parametrize("transport", ["websockets", "picows"])
@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
async def test_socks5_proxy_with_credentials_carries_the_stream_and_the_snapshot(
    eth_server: Callable[[], ExchangeServer], transport: str, scheme: str
) -> None:
    async with eth_server() as server, SocksProxy(username="feed", password=SECRET) as proxy:
        url = proxy.url_with("feed", SECRET, scheme=scheme)
        ran = await run_feed(server, proxy=url, transport=transport)
    assert_both_went_through(proxy.stats, ran)
    assert {r.kind for r in proxy.stats.relayed} == {"socks5"}


async def test_socks4_proxy_without_credentials(
    eth_server: Callable[[], ExchangeServer],
) -> None:
    async with eth_server() as server, SocksProxy() as proxy:
        ran = await run_feed(server, proxy=proxy.url_with(None, None, scheme="socks4"))
    assert_both_went_through(proxy.stats, ran)
    assert {r.kind for r in proxy.stats.relayed} == {"socks4"}


async def test_options_carry_the_proxy(eth_server: Callable[[], ExchangeServer]) -> None:
    async with eth_server() as server, HttpProxy() as proxy:
        options = ConnectOptions(proxy=proxy.url, backoff=FAST)
        ran = await run_feed(server, options=options)
    assert_both_went_through(proxy.stats, ran)


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["websockets", "picows"])
@pytest.mark.parametrize("kind", ["http", "socks5"])
async def test_wrong_credentials_end_the_feed_without_showing_the_password(
    eth_server: Callable[[], ExchangeServer],
    caplog: pytest.LogCaptureFixture,
    transport: str,
    kind: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    make = HttpProxy if kind == "http" else SocksProxy
    async with eth_server() as server, make(username="feed", password="right") as proxy:
        url = proxy.url_with("feed", SECRET)
        # Even retrying allowed, a refusal that cannot change ends run() at once.
        with pytest.raises(ProxyRejectedError) as caught:
            await run_feed(server, proxy=url, transport=transport, reconnect=True)
    error = caught.value
    assert isinstance(error, ConnectError)
    assert proxy.stats.refused == 1 and proxy.stats.relayed == []
    assert server.stats.connections == 0
    if kind == "http":
        assert error.status == 407
        assert "407" in str(error)
    else:
        assert error.status is None
        assert "authentication" in str(error).lower()
    assert error.proxy == f"{kind}://feed:***@127.0.0.1:{proxy.port}"
    assert error.proxy in str(error)
    for text in (str(error), repr(error), caplog.text):
        assert SECRET not in text
    assert "feed:***@" in caplog.text  # the failure was logged, masked


@pytest.mark.parametrize("transport", ["websockets", "picows"])
@pytest.mark.parametrize("scheme", ["http", "socks5"])
async def test_a_proxy_that_refuses_connections_is_a_transient_connect_error(
    eth_server: Callable[[], ExchangeServer],
    caplog: pytest.LogCaptureFixture,
    transport: str,
    scheme: str,
) -> None:
    url = f"{scheme}://feed:{SECRET}@127.0.0.1:{closed_port()}"
    async with eth_server() as server:
        with pytest.raises(ConnectError) as caught:
            await run_feed(server, proxy=url, transport=transport)
        assert not isinstance(caught.value, ProxyRejectedError)
        assert "through proxy" in str(caught.value)

        # Retried when retrying is allowed: max_attempts is what ends it.
        with pytest.raises(ConnectError) as again:
            await run_feed(
                server,
                proxy=url,
                transport=transport,
                reconnect=True,
                backoff=FAST,
                options=ConnectOptions(max_attempts=3),
            )
    assert "3 connection attempts" in str(again.value)
    assert caplog.text.count("through proxy") >= 2
    for text in (str(caught.value), caplog.text):
        assert SECRET not in text


async def test_an_http_proxy_that_cannot_reach_the_venue_answers_502_transient(
    eth_server: Callable[[], ExchangeServer],
) -> None:
    async with HttpProxy() as proxy, eth_server() as server:
        gone = f"ws://127.0.0.1:{closed_port()}/ws"
        with pytest.raises(ConnectError) as caught:
            await run_feed(server, proxy=proxy.url, ws_url=gone)
    assert not isinstance(caught.value, ProxyRejectedError)
    assert caught.value.status == 502
    assert proxy.stats.refused == 1


# -- the environment --------------------------------------------------------------------------


async def test_env_honours_http_proxy(
    eth_server: Callable[[], ExchangeServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with eth_server() as server, HttpProxy(username="feed", password=SECRET) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        ran = await run_feed(server, proxy="env")
    assert_both_went_through(proxy.stats, ran)


async def test_env_honours_all_proxy_for_socks(
    eth_server: Callable[[], ExchangeServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with eth_server() as server, SocksProxy() as proxy:
        monkeypatch.setenv("ALL_PROXY", proxy.url)
        ran = await run_feed(server, proxy="env")
    assert_both_went_through(proxy.stats, ran)


async def test_env_honours_no_proxy(
    eth_server: Callable[[], ExchangeServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with eth_server() as server, HttpProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        ran = await run_feed(server, proxy="env")
    assert ran.books >= BOOKS
    assert proxy.stats.connections == 0


@pytest.mark.parametrize("transport", ["websockets", "picows"])
async def test_no_proxy_ignores_the_environment(
    eth_server: Callable[[], ExchangeServer], monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    async with eth_server() as server, HttpProxy() as http, SocksProxy() as socks:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "WS_PROXY", "http_proxy", "https_proxy"):
            monkeypatch.setenv(name, http.url)
        monkeypatch.setenv("ALL_PROXY", socks.url)
        monkeypatch.setenv("all_proxy", socks.url)
        ran = await run_feed(server, transport=transport)
    assert ran.books >= BOOKS
    assert http.stats.connections == 0
    assert socks.stats.connections == 0


def test_env_lookup_follows_the_url_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://plain:3128")
    monkeypatch.setenv("HTTPS_PROXY", "secure:3129")  # no scheme: http://
    assert str(proxies.from_env("ws://venue/ws")) == "http://plain:3128"
    assert str(proxies.from_env("http://venue/api")) == "http://plain:3128"
    assert str(proxies.from_env("wss://venue/ws")) == "http://secure:3129"
    monkeypatch.delenv("HTTPS_PROXY")
    assert proxies.from_env("wss://venue/ws") is None
    monkeypatch.setenv("ALL_PROXY", "socks5h://socks:1080")
    assert str(proxies.from_env("wss://venue/ws")) == "socks5h://socks:1080"
    monkeypatch.setenv("NO_PROXY", ".venue")
    assert proxies.from_env("wss://api.venue/ws") is None
    assert proxies.resolve(None, "wss://anything/ws") is None


def test_a_malformed_environment_proxy_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"ftp://feed:{SECRET}@host:21")
    with pytest.raises(ConfigError, match="HTTP_PROXY") as caught:
        proxies.resolve("env", "ws://venue/ws")
    assert SECRET not in str(caught.value)


# -- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        f"ftp://feed:{SECRET}@127.0.0.1:21",  # unknown scheme
        f"https://feed:{SECRET}@127.0.0.1:443",  # not supported
        f"feed:{SECRET}@127.0.0.1:3128",  # no scheme
        f"http://feed:{SECRET}@127.0.0.1",  # no port
        f"http://feed:{SECRET}@127.0.0.1:99999",  # port out of range
        f"http://feed:{SECRET}@127.0.0.1:port",
        f"http://feed:{SECRET}@:3128",  # no host
        f"http://feed:{SECRET}@127.0.0.1:3128/path",
        f"socks4://feed:{SECRET}@127.0.0.1:1080",  # SOCKS4 has no passwords
        f"http://feed:{SECRET} @127.0.0.1:3128",
        "http://feed@127.0.0.1:3128",  # a user without a password
        "none",
        "",
    ],
)
def test_a_malformed_proxy_is_refused_with_the_password_masked(value: str) -> None:
    with pytest.raises(ConfigError, match="proxy must be") as caught:
        ConnectOptions(proxy=value)
    assert SECRET not in str(caught.value)
    with pytest.raises(ConfigError):
        Feed("binance", ["ETHUSDT"], proxy=value)


def test_picows_refuses_what_it_cannot_do() -> None:
    with pytest.raises(ConfigError, match="picows"):
        ConnectOptions(proxy="socks4a://127.0.0.1:1080", transport="picows")
    with pytest.raises(ConfigError, match="picows"):
        Feed("binance", ["ETHUSDT"], proxy="socks4a://127.0.0.1:1080", transport="picows")
    ConnectOptions(proxy="socks5h://127.0.0.1:1080", transport="picows")


def test_feed_keyword_overrides_the_options() -> None:
    options = ConnectOptions(proxy="http://127.0.0.1:3128")
    assert Feed("binance", ["ETHUSDT"], options=options).options.proxy == options.proxy
    feed = Feed("binance", ["ETHUSDT"], options=options, proxy="env")
    assert feed.options.proxy == "env"
    assert Feed("binance", ["ETHUSDT"]).options.proxy is None


def test_the_password_never_shows() -> None:
    value = f"socks5://feed:{SECRET}@127.0.0.1:1080"
    options = ConnectOptions(proxy=value)
    assert options.proxy == value  # kept as given, for the libraries
    assert SECRET not in repr(options)
    assert "proxy='socks5://feed:***@127.0.0.1:1080'" in repr(options)
    parsed = proxies.parse(value)
    assert SECRET not in f"{parsed} {parsed!r}"
    assert proxies.mask(f"failed: {value} and http://a:b@c:1") == (
        "failed: socks5://feed:***@127.0.0.1:1080 and http://a:***@c:1"
    )
    assert proxies.scrub(f"auth {SECRET} failed", parsed) == "auth *** failed"
    encoded = proxies.parse("http://us%40er:p%3Ass@host:1")
    assert (encoded.username, encoded.password) == ("us@er", "p:ss")
    assert encoded.url() == "http://us%40er:p%3Ass@host:1"
