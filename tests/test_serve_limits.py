"""The local exchange at scale and under Binance's limits: symbol clones, streams per connection,
request-line length, incoming message rate, REST request weight (429, then 418).

Plain clients (websockets, aiohttp) against a real :class:`ExchangeServer`; every limit is shrunk
by its keyword where waiting out the real one would be slow.
"""

from __future__ import annotations

import asyncio
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from lobfeed._native import GapDetected, Session, SyncLost
from lobfeed.tape import Tape
from lobfeed.testing import ExchangeServer
from lobfeed.testing.profiles.binance import clone_symbol

COINM = "binance-coinm-10sym-2021.jsonl.gz"
SPOT = "binance-spot-4sym-2021.jsonl.gz"
INF = float("inf")
CLONES = 29


@pytest.fixture(scope="module")
def coinm(tape_path: Callable[[str], Path]) -> Tape:
    return Tape.open(tape_path(COINM))


def recorded_streams(tape: Tape) -> dict[str, list[str]]:
    """Recorded combined-stream frames by stream name, in order."""
    out: dict[str, list[str]] = defaultdict(list)
    for record in tape.iter_records("recv"):
        assert record.data is not None
        out[orjson.loads(record.data)["stream"]].append(record.data)
    return out


def renamed(value: Any, symbol: str, alias: str) -> Any:
    """``value`` (a parsed frame) as an alias's should be: every ``"s"`` of ``symbol`` renamed."""
    if isinstance(value, dict):
        return {
            k: alias if k == "s" and v == symbol else renamed(v, symbol, alias)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [renamed(v, symbol, alias) for v in value]
    return value


async def drain(ws: ClientConnection, into: dict[str, list[str]]) -> None:
    """Every frame until the server closes at the end of the tape, by stream."""
    async for message in ws:
        assert isinstance(message, str)
        stream = orjson.loads(message)["stream"]
        into[stream].append(message)


def chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# -- clones ------------------------------------------------------------------------------------


async def test_clones_serve_300_symbols_each_a_renamed_copy(coinm: Tape) -> None:
    recorded = recorded_streams(coinm)
    symbols = sorted({name.split("@", 1)[0] for name in recorded})
    assert len(symbols) == 10
    async with ExchangeServer(coinm, speed=INF, clones=CLONES) as srv:
        served = {symbol.upper() for symbol in symbols} | set(srv.profile.aliases)  # type: ignore[attr-defined]
        assert len(served) == 300
        # Every recorded stream of every symbol: 1,020 streams, six connections (200 at most).
        names = [
            (clone_symbol(s, n).lower() if n else s) + "@" + name.split("@", 1)[1]
            for n in range(CLONES + 1)
            for s in symbols
            for name in recorded
            if name.split("@", 1)[0] == s
        ]
        assert len(names) == len(recorded) * (CLONES + 1) == 1020
        got: dict[str, list[str]] = defaultdict(list)
        conns = [connect(f"{srv.ws_url}/stream?streams={'/'.join(c)}") for c in chunks(names, 200)]
        sockets = [await c for c in conns]
        try:
            await asyncio.wait_for(asyncio.gather(*(drain(ws, got) for ws in sockets)), 120)
        finally:
            for ws in sockets:
                await ws.close()
        assert srv.stats.refused == {}
    assert set(got) == set(names)
    total = 0
    for name, frames in recorded.items():
        symbol, rest = name.split("@", 1)
        assert got[name] == frames  # the originals, byte for byte
        upper = symbol.upper()
        expected = [orjson.loads(f) for f in frames]
        for n in range(1, CLONES + 1):
            alias = clone_symbol(upper, n)
            alias_stream = f"{alias.lower()}@{rest}"
            frames_of_alias = [orjson.loads(f) for f in got[alias_stream]]
            want = [
                {"stream": alias_stream, "data": renamed(e["data"], upper, alias)} for e in expected
            ]
            assert frames_of_alias == want, alias_stream
            total += len(frames_of_alias)
    assert total == CLONES * sum(len(f) for f in recorded.values())


async def test_a_client_of_a_few_aliases_gets_only_their_streams(coinm: Tape) -> None:
    async with ExchangeServer(coinm, speed=INF, clones=CLONES) as srv:
        wanted = ["c3ethusd_210924@depth@100ms", "c29xrpusd_perp@bookTicker"]
        got: dict[str, list[str]] = defaultdict(list)
        async with connect(f"{srv.ws_url}/stream?streams={'/'.join(wanted)}") as ws:
            await asyncio.wait_for(drain(ws, got), 30)
    recorded = recorded_streams(coinm)
    assert set(got) == set(wanted)
    assert len(got[wanted[0]]) == len(recorded["ethusd_210924@depth@100ms"])
    assert len(got[wanted[1]]) == len(recorded["xrpusd_perp@bookTicker"])
    # SUBSCRIBE on a raw connection works the same way.
    async with (
        ExchangeServer(coinm, speed=INF, clones=2) as srv,
        connect(f"{srv.ws_url}/ws") as ws,
    ):
        sub = {"method": "SUBSCRIBE", "params": ["c2linkusd_perp@depth@100ms"], "id": 1}
        await ws.send(orjson.dumps(sub).decode())
        assert orjson.loads(await ws.recv()) == {"result": None, "id": 1}
        raw = [orjson.loads(m) async for m in ws]
    assert raw and all(m["s"] == "C2LINKUSD_PERP" and m["e"] == "depthUpdate" for m in raw)
    assert len(raw) == len(recorded["linkusd_perp@depth@100ms"])


def _feed_session(symbol: str, snapshot: bytes, frames: list[str]) -> Session:
    session = Session("binance-coinm")
    events = list(session.receive_snapshot(symbol, snapshot, 1))
    for i, frame in enumerate(frames):
        events += session.receive(frame, 2 + i)
    bad = [e for e in events if isinstance(e, GapDetected | SyncLost)]
    assert not bad, bad
    return session


async def test_an_alias_snapshot_is_the_originals_and_bridges_its_stream(coinm: Tape) -> None:
    async with ExchangeServer(coinm, speed=INF, clones=CLONES) as srv:
        async with aiohttp.ClientSession() as http:
            url = f"{srv.rest_url}/dapi/v1/depth?limit=1000&symbol="
            async with http.get(url + "ETHUSD_210924") as resp:
                original = await resp.read()
            async with http.get(url + "C17ETHUSD_210924") as resp:
                assert resp.status == 200
                alias = await resp.read()
        assert alias == original
        got: dict[str, list[str]] = defaultdict(list)
        async with connect(f"{srv.ws_url}/stream?streams=c17ethusd_210924@depth@100ms") as ws:
            await asyncio.wait_for(drain(ws, got), 30)
    frames = got["c17ethusd_210924@depth@100ms"]
    session = _feed_session("C17ETHUSD_210924", alias, frames)
    assert session.state("C17ETHUSD_210924") == "live"
    view = session.book("C17ETHUSD_210924")
    assert view.seq == orjson.loads(frames[-1])["data"]["u"]


async def test_live_mode_builds_an_alias_snapshot_that_bridges(coinm: Tape) -> None:
    async with ExchangeServer(coinm, speed=8.0, clones=CLONES, live=True) as srv:
        await asyncio.sleep(1.0)  # 8 s into the tape: the book is built, not the recorded one
        stream = "c9bchusd_perp@depth@100ms"
        async with connect(f"{srv.ws_url}/stream?streams={stream}") as ws:
            first = await asyncio.wait_for(ws.recv(), 10)
            async with aiohttp.ClientSession() as http:
                url = f"{srv.rest_url}/dapi/v1/depth?symbol=C9BCHUSD_PERP&limit=1000"
                async with http.get(url) as resp:
                    assert resp.status == 200
                    snapshot = await resp.read()
            got: dict[str, list[str]] = defaultdict(list)
            await asyncio.wait_for(drain(ws, got), 30)
    assert isinstance(first, str)
    frames = [first, *got[stream]]
    body = orjson.loads(snapshot)
    assert body["lastUpdateId"] >= orjson.loads(first)["data"]["pu"]
    session = _feed_session("C9BCHUSD_PERP", snapshot, frames)
    assert session.state("C9BCHUSD_PERP") == "live"


async def test_clones_need_a_profile_that_serves_them(tape_path: Callable[[str], Path]) -> None:
    with pytest.raises(ValueError, match="clones"):
        ExchangeServer(tape_path("okx-books-3inst-2022.jsonl.gz"), clones=2)


# -- streams per connection --------------------------------------------------------------------


def _streams(count: int) -> list[str]:
    """``count`` stream names: one recorded stream, then names the tape does not hold."""
    fake = [f"x{n}usd_perp@depth@100ms" for n in range(1, count)]
    return ["ethusd_210924@depth@100ms", *fake][:count]


async def test_futures_connection_refused_at_201_streams_accepted_at_200(coinm: Tape) -> None:
    async with ExchangeServer(coinm, speed=INF) as srv:
        with pytest.raises(InvalidStatus) as info:
            async with connect(f"{srv.ws_url}/stream?streams={'/'.join(_streams(201))}"):
                pass
        assert info.value.response.status_code == 400
        assert b"at most 200" in info.value.response.body
        assert srv.stats.refused == {"streams": 1}
        # max_queue=None: the client reads on while closing, so the close is not held up by a
        # server sending faster than the test reads.
        url = f"{srv.ws_url}/stream?streams={'/'.join(_streams(200))}"
        async with connect(url, max_queue=None) as ws:
            message = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
            assert message["stream"] == "ethusd_210924@depth@100ms"
        assert srv.stats.refused == {"streams": 1}


async def test_subscribe_over_the_limit_is_refused_and_the_connection_stays(
    tape_path: Callable[[str], Path],
) -> None:
    # Spot: 1,024 streams per connection.
    async with ExchangeServer(tape_path(SPOT), speed=INF, loop=True) as srv:
        assert srv.limits.streams_per_connection == 1024
        async with connect(f"{srv.ws_url}/ws") as ws:
            names = [f"s{i}usdt@trade" for i in range(1024)]
            await ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": names, "id": 1}))
            assert orjson.loads(await ws.recv()) == {"result": None, "id": 1}
            await ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": ["one@trade"], "id": 2}))
            answer = orjson.loads(await ws.recv())
            assert answer["id"] == 2 and answer["error"]["code"] == 2
            assert "too many streams" in answer["error"]["msg"]
            await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3}))
            listed = orjson.loads(await ws.recv())
            assert listed["id"] == 3 and len(listed["result"]) == 1024
        assert srv.stats.refused == {"subscribe-streams": 1}


async def test_stream_limit_can_be_shrunk_or_lifted(coinm: Tape) -> None:
    async with ExchangeServer(coinm, speed=INF, max_streams=3) as srv:
        with pytest.raises(InvalidStatus) as info:
            async with connect(f"{srv.ws_url}/stream?streams={'/'.join(_streams(4))}"):
                pass
        assert info.value.response.status_code == 400
    async with ExchangeServer(coinm, speed=INF, enforce_limits=False) as srv:
        url = f"{srv.ws_url}/stream?streams={'/'.join(_streams(250))}"
        async with connect(url, max_queue=None) as ws:
            await asyncio.wait_for(ws.recv(), 10)
        assert srv.stats.refused == {}


# -- request line ------------------------------------------------------------------------------


async def test_a_long_url_is_answered_414(coinm: Tape) -> None:
    async with ExchangeServer(coinm, speed=INF, max_request_line=1024) as srv:
        # 25 kB: over websockets' own 8 KiB request-line limit, answered 414 by it.
        long_path = "/stream?streams=" + "/".join(["ethusd_perp@depth@100ms"] * 1000)
        with pytest.raises(InvalidStatus) as info:
            async with connect(srv.ws_url + long_path):
                pass
        assert info.value.response.status_code == 414
        # Over the server's (shrunk) limit, under websockets': answered 414 by the server.
        path = "/stream?streams=" + "/".join(["ethusd_perp@depth@100ms"] * 50)
        assert 1024 < len(path) < 8192
        with pytest.raises(InvalidStatus) as info:
            async with connect(srv.ws_url + path):
                pass
        assert info.value.response.status_code == 414
        async with aiohttp.ClientSession() as http:
            url = f"{srv.rest_url}/dapi/v1/depth?symbol=ETHUSD_PERP&pad={'x' * 1100}"
            async with http.get(url) as resp:
                assert resp.status == 414
        assert srv.stats.refused == {"url-length": 2}


# -- incoming message rate ---------------------------------------------------------------------


async def test_more_than_10_messages_a_second_close_a_futures_connection(coinm: Tape) -> None:
    async with ExchangeServer(coinm, speed=INF) as srv:
        assert srv.limits.messages_per_s == 10
        async with connect(f"{srv.ws_url}/ws") as ws:
            for i in range(10):
                await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}).decode())
            for i in range(10):
                assert orjson.loads(await ws.recv()) == {"result": [], "id": i}
            await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 10}).decode())
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            assert ws.close_code == 1008
            assert ws.close_reason == "Too many requests"
        assert srv.stats.refused == {"message-rate": 1}


async def test_messages_spread_over_seconds_are_fine(coinm: Tape) -> None:
    async with ExchangeServer(coinm, speed=INF, max_messages_per_s=2) as srv:
        async with connect(f"{srv.ws_url}/ws") as ws:
            for i in range(4):
                if i == 2:
                    await asyncio.sleep(1.05)
                await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}).decode())
                assert orjson.loads(await ws.recv())["id"] == i
            await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 4}).decode())
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
        assert srv.stats.refused == {"message-rate": 1}


# -- REST request weight -----------------------------------------------------------------------


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, str], Any]:
    async with http.get(url) as resp:
        return resp.status, dict(resp.headers), orjson.loads(await resp.read())


async def test_weight_limit_429_then_418(coinm: Tape) -> None:
    async with ExchangeServer(coinm, speed=INF, rest_weight_limit=50) as srv:
        assert srv.limits.rest_window_s == 60.0
        url = f"{srv.rest_url}/dapi/v1/depth?symbol=BTCUSD_211231&limit=1000"  # weight 20
        async with aiohttp.ClientSession() as http:
            for used in (20, 40):
                status, headers, _ = await _get(http, url)
                assert status == 200 and headers["X-MBX-USED-WEIGHT-1M"] == str(used)
            for _ in range(3):
                status, headers, body = await _get(http, url)
                assert status == 429
                assert headers["X-MBX-USED-WEIGHT-1M"] == "40"
                assert 55 <= int(headers["Retry-After"]) <= 60  # to the end of the minute
                assert body["code"] == -1003
            # Still under the limit: a light request goes through.
            status, headers, _ = await _get(http, url.replace("1000", "5"))  # weight 2
            assert status == 200 and headers["X-MBX-USED-WEIGHT-1M"] == "42"
            # Going on after three 429s: banned.
            status, headers, body = await _get(http, url)
            assert status == 418 and int(headers["Retry-After"]) == 120
            assert "banned" in body["msg"]
            status, headers, _ = await _get(http, url.replace("1000", "5"))
            assert status == 418 and 115 <= int(headers["Retry-After"]) <= 120
        assert srv.stats.weight_429s == 3
        assert srv.stats.weight_418s == 2
        assert srv.stats.max_weight_used == 42
        assert srv.stats.faults == {}


async def test_the_weight_window_resets_and_the_ban_ends(coinm: Tape) -> None:
    async with ExchangeServer(
        coinm, speed=INF, rest_weight_limit=20, rest_window_s=0.6, rest_ban_after=1, rest_ban_s=1.0
    ) as srv:
        url = f"{srv.rest_url}/dapi/v1/depth?symbol=BTCUSD_211231&limit=1000"
        async with aiohttp.ClientSession() as http:
            assert (await _get(http, url))[0] == 200
            status, headers, _ = await _get(http, url)
            assert status == 429 and headers["Retry-After"] == "1"
            await asyncio.sleep(0.65)  # the next window
            status, headers, _ = await _get(http, url)
            assert status == 200 and headers["X-MBX-USED-WEIGHT-1M"] == "20"
            assert (await _get(http, url))[0] == 429
            assert (await _get(http, url))[0] == 418  # the second 429 of a window bans
            await asyncio.sleep(0.65)
            assert (await _get(http, url))[0] == 418  # a new window, still banned
            await asyncio.sleep(0.5)
            status, headers, _ = await _get(http, url)
            assert status == 200 and headers["X-MBX-USED-WEIGHT-1M"] == "20"


@pytest.mark.parametrize(
    ("tape", "prefix", "weights"),
    [
        (SPOT, "/api/v3", {None: 5, 5: 5, 100: 5, 101: 25, 500: 25, 1000: 50, 5000: 250}),
        (COINM, "/dapi/v1", {None: 10, 5: 2, 50: 2, 100: 5, 500: 10, 1000: 20}),
        ("binance-usdm-4sym-2021.jsonl.gz", "/fapi/v1", {None: 10, 20: 2, 1000: 20}),
    ],
)
async def test_depth_weights_follow_the_limit(
    tape_path: Callable[[str], Path], tape: str, prefix: str, weights: dict[int | None, int]
) -> None:
    async with ExchangeServer(tape_path(tape), speed=INF) as srv:
        async with aiohttp.ClientSession() as http:
            status, headers, _ = await _get(http, f"{srv.rest_url}{prefix}/ping")
            assert status == 200 and headers["X-MBX-USED-WEIGHT-1M"] == "1"
            used = 1
            for limit, weight in weights.items():
                query = "" if limit is None else f"&limit={limit}"
                status, headers, _ = await _get(
                    http, f"{srv.rest_url}{prefix}/depth?symbol=X{query}"
                )
                used += weight
                assert headers["X-MBX-USED-WEIGHT-1M"] == str(used), limit
        assert srv.stats.max_weight_used == used


async def test_other_venues_have_no_limits(tape_path: Callable[[str], Path]) -> None:
    async with ExchangeServer(tape_path("okx-books-3inst-2022.jsonl.gz"), speed=INF) as srv:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{srv.rest_url}/api/v5/market/books") as resp,
        ):
            assert "X-MBX-USED-WEIGHT-1M" not in resp.headers
        assert srv.limits.rest_weight_limit is None
        assert srv.limits.streams_per_connection is None


async def test_lobfeed_serve_clones_and_no_limits(tape_path: Callable[[str], Path]) -> None:
    async def serve(*flags: str) -> tuple[asyncio.subprocess.Process, list[str]]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "lobfeed",
            "serve",
            str(tape_path(COINM)),
            "--speed",
            "max",
            "--once",
            *flags,
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        lines: list[str] = []
        while not any("Ctrl-C" in line for line in lines):
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            assert line, "lobfeed serve exited before printing its URLs"
            lines.append(line)
        return proc, lines

    proc, lines = await serve("--clones", "3")
    try:
        assert any("clones:" in line for line in lines)
        assert any("streams_per_connection=200" in line for line in lines)
        ws_url = next(line.split()[-1] for line in lines if "websocket:" in line)
        async with connect(f"{ws_url}/stream?streams=c3trxusd_perp@depth@100ms") as ws:
            frames = [orjson.loads(m) async for m in ws]
        assert frames and {f["data"]["s"] for f in frames} == {"C3TRXUSD_PERP"}
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    proc, lines = await serve("--no-limits")
    try:
        assert not any("limits:" in line for line in lines)
    finally:
        proc.kill()
        await proc.wait()
