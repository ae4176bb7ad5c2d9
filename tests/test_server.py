"""The local exchange server: replay of real tapes over loopback, REST snapshots, faults."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from lobfeed.exceptions import UnknownVenueError
from lobfeed.tape import Tape, TapeRecord, TapeWriter
from lobfeed.testing import (
    MALFORMED_FRAME,
    ExchangeServer,
    FaultPlan,
    Subscription,
    VenueProfile,
    register_profile,
    run_server,
)

SPOT = "binance-spot-4sym-2021.jsonl.gz"
USDM = "binance-usdm-4sym-2021.jsonl.gz"
INF = float("inf")
# A few streams of the spot tape, as recorded (depth names carry @100ms there).
SPOT_STREAMS = ("nknusdt@depth@100ms", "lrcbtc@bookTicker", "nknusdt@aggTrade")


@pytest.fixture(scope="module")
def spot(tape_path: Callable[[str], Path]) -> Tape:
    return Tape.open(tape_path(SPOT))


@pytest.fixture(scope="module")
def usdm(tape_path: Callable[[str], Path]) -> Tape:
    return Tape.open(tape_path(USDM))


def recorded(tape: Tape, *streams: str) -> list[str]:
    """The tape's combined-stream frames of ``streams`` (recorded names), in order."""
    wanted = set(streams)
    return [
        r.data
        for r in tape.iter_records("recv")
        if r.data is not None and orjson.loads(r.data)["stream"] in wanted
    ]


def data_part(frame: str) -> str:
    """The text of the ``data`` value of a recorded combined-stream frame."""
    marker = ',"data":'
    return frame[frame.index(marker) + len(marker) : -1]


async def drain(ws: ClientConnection) -> list[str]:
    """Every text message until the server closes the connection normally."""
    messages: list[str] = []
    async for message in ws:
        assert isinstance(message, str)
        messages.append(message)
    return messages


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return orjson.loads(self.body)


async def get(url: str) -> Reply:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        headers = {k.lower(): v for k, v in response.headers.items()}
        return Reply(response.status, headers, await response.read())


# -- streaming -------------------------------------------------------------------------------


async def test_combined_stream_frames_are_the_tape_frames(spot: Tape) -> None:
    expected = recorded(spot, *SPOT_STREAMS)
    assert len(expected) > 100
    async with ExchangeServer(spot, speed=INF) as srv:
        assert srv.ws_url == f"ws://127.0.0.1:{srv.port}"
        assert srv.rest_url == f"http://127.0.0.1:{srv.port}"
        async with connect(f"{srv.ws_url}/stream?streams={'/'.join(SPOT_STREAMS)}") as ws:
            got = await drain(ws)
            assert ws.close_code == 1000
        assert got == expected  # same frames, same order, byte for byte
        await asyncio.wait_for(srv.wait_done(), 5)
        assert srv.stats.frames_sent == len(expected)
        assert srv.stats.connections == 1


async def test_each_connection_gets_its_own_replay(spot: Tape) -> None:
    async def client(url: str) -> list[str]:
        async with connect(url) as ws:
            return await drain(ws)

    async with ExchangeServer(spot, speed=INF) as srv:
        a, b = await asyncio.gather(
            client(f"{srv.ws_url}/stream?streams=nknusdt@depth@100ms"),
            client(f"{srv.ws_url}/stream?streams=nknusdt@depth@100ms/lrcbtc@depth@100ms"),
        )
    assert a == recorded(spot, "nknusdt@depth@100ms")
    assert b == recorded(spot, "nknusdt@depth@100ms", "lrcbtc@depth@100ms")


async def test_stream_names_match_loosely(spot: Tape) -> None:
    # Case does not matter, and depth / depth@0ms / depth@100ms are one stream; frames are
    # still sent as recorded.
    expected = recorded(spot, "nknusdt@depth@100ms", "lrcbtc@depth@100ms", "lrcbtc@bookTicker")
    async with ExchangeServer(spot, speed=INF) as srv:
        url = f"{srv.ws_url}/stream?streams=NKNUSDT@depth/lrcbtc@depth@0ms/lrcbtc@bookticker"
        async with connect(url) as ws:
            assert await drain(ws) == expected


async def test_raw_ws_with_subscribe_sends_unwrapped_data(spot: Tape) -> None:
    expected = recorded(spot, "nknusdt@depth@100ms", "lrcbtc@bookTicker")
    async with ExchangeServer(spot, speed=INF) as srv, connect(f"{srv.ws_url}/ws") as ws:
        await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":1}')
        assert await ws.recv() == '{"result":[],"id":1}'
        pong = await ws.ping()
        await asyncio.wait_for(pong, 5)
        await ws.send(
            '{"method":"SUBSCRIBE","params":["nknusdt@depth@100ms","lrcbtc@bookTicker"],"id":7}'
        )
        assert await ws.recv() == '{"result":null,"id":7}'
        got = await drain(ws)
    assert got == [data_part(frame) for frame in expected]
    assert [orjson.loads(m) for m in got] == [orjson.loads(f)["data"] for f in expected]


async def test_raw_ws_path_and_bad_requests(spot: Tape) -> None:
    expected = recorded(spot, "lrcbtc@bookTicker")
    async with ExchangeServer(spot, speed=INF) as srv:
        async with connect(f"{srv.ws_url}/ws/lrcbtc@bookTicker") as ws:
            assert await drain(ws) == [data_part(frame) for frame in expected]
        async with connect(f"{srv.ws_url}/ws", close_timeout=1) as ws:
            await ws.send("{not json")
            assert orjson.loads(await ws.recv()) == {
                "error": {"code": 3, "msg": "Invalid JSON"},
                "id": None,
            }
            await ws.send('{"method":"SUBSCRIBE","params":"x","id":2}')
            reply = orjson.loads(await ws.recv())
            assert isinstance(reply, dict)
            assert reply["id"] == 2 and reply["error"]["code"] == 2
        with pytest.raises(InvalidStatus) as info:
            async with connect(f"{srv.ws_url}/nowhere"):
                pass
        assert info.value.response.status_code == 404


async def test_futures_tape(usdm: Tape) -> None:
    expected = recorded(usdm, "sushiusdt@depth@100ms", "sushiusdt@bookTicker")
    async with ExchangeServer(usdm, speed=INF) as srv:
        url = f"{srv.ws_url}/stream?streams=sushiusdt@depth@100ms/sushiusdt@bookTicker"
        async with connect(url) as ws:
            assert await drain(ws) == expected
        snapshot = next(r for r in usdm.iter_records("http") if "SUSHIUSDT" in (r.url or ""))
        reply = await get(f"{srv.rest_url}/fapi/v1/depth?symbol=SUSHIUSDT&limit=1000")
        assert reply.status == 200
        assert reply.body == (snapshot.data or "").encode()
        assert (await get(f"{srv.rest_url}/api/v3/depth?symbol=SUSHIUSDT")).status == 404


async def test_replay_is_paced_by_recorded_time(tape_path: Callable[[str], Path]) -> None:
    tape = Tape.open(tape_path("binance-ethusdt-20240808.jsonl.gz"))
    stream = "ethusdt@depth@100ms"
    stamps = [
        r.ts_ns
        for r in tape.iter_records("recv")
        if (r.data or "").startswith('{"stream":"' + stream + '"')
    ]
    recorded_s = (stamps[-1] - stamps[0]) / 1e9
    assert recorded_s > 300
    speed = 1000.0
    async with (
        ExchangeServer(tape, speed=speed) as srv,
        connect(f"{srv.ws_url}/stream?streams={stream}") as ws,
    ):
        first = await ws.recv()
        started = time.monotonic()
        rest = await drain(ws)
        elapsed = time.monotonic() - started
    assert 1 + len(rest) == len(stamps)
    assert orjson.loads(first)["stream"] == stream
    # Only a lower bound: a loaded machine may be slower, never faster than the tape.
    assert elapsed >= 0.8 * recorded_s / speed


async def test_loop_replays_the_tape_again(spot: Tape) -> None:
    expected = recorded(spot, "lrcbtc@depth@100ms")
    n = len(expected)
    async with ExchangeServer(spot, speed=INF, loop=True) as srv:
        url = f"{srv.ws_url}/stream?streams=lrcbtc@depth@100ms"
        async with connect(url, close_timeout=0.5) as ws:
            got = [await ws.recv() for _ in range(2 * n + 1)]
    assert got[:n] == expected
    assert got[n : 2 * n] == expected
    assert got[2 * n] == expected[0]


# -- REST ------------------------------------------------------------------------------------


async def test_rest_depth_returns_recorded_bodies(spot: Tape) -> None:
    snapshots = list(spot.iter_records("http"))
    assert len(snapshots) == 4
    async with ExchangeServer(spot) as srv:
        for record in snapshots:
            assert record.url is not None and record.data is not None
            query = record.url.split("?", 1)[1]
            reply = await get(f"{srv.rest_url}/api/v3/depth?{query}")
            assert reply.status == 200
            assert reply.headers["content-type"] == "application/json"
            assert reply.body == record.data.encode()
        assert srv.stats.snapshot_requests == 4
        assert srv.stats.rejected_requests == 0
        assert srv.stats.connections == 0


async def test_rest_errors(spot: Tape) -> None:
    async with ExchangeServer(spot) as srv:
        reply = await get(f"{srv.rest_url}/api/v3/depth?symbol=BTCUSDT&limit=1000")
        assert reply.status == 400
        assert reply.headers["content-type"] == "application/json"
        assert reply.json() == {"code": -1121, "msg": "Invalid symbol."}
        missing = await get(f"{srv.rest_url}/api/v3/depth")
        assert missing.status == 400
        assert isinstance(body := missing.json(), dict) and body["code"] == -1102
        lower = await get(f"{srv.rest_url}/api/v3/depth?symbol=nknusdt")
        assert lower.status == 400
        assert isinstance(body := lower.json(), dict) and body["code"] == -1100
        assert (await get(f"{srv.rest_url}/api/v3/nothing")).status == 404
        assert (await get(f"{srv.rest_url}/api/v3/ping")).json() == {}
        assert srv.stats.rejected_requests == 4


async def test_rest_snapshot_follows_the_clients_replay_position(tmp_path: Path) -> None:
    second = 1_000_000_000

    def frame(u: int) -> str:
        data = f'{{"e":"depthUpdate","s":"ABCUSDT","U":{u},"u":{u},"b":[],"a":[]}}'
        return '{"stream":"abcusdt@depth@100ms","data":' + data + "}"

    path = tmp_path / "two-snapshots.jsonl.gz"
    rest = "https://api.binance.com/api/v3/depth?symbol=ABCUSDT&limit=1000"
    with TapeWriter(path, "binance", note="synthetic, for this test") as writer:
        writer.open("c1", "wss://stream.binance.com:9443/stream?streams=abcusdt@depth", 0)
        writer.recv("c1", frame(1), 1 * second)
        writer.http(rest, '{"lastUpdateId":1}', 2 * second)
        writer.recv("c1", frame(2), 3 * second)
        writer.http(rest, '{"lastUpdateId":2}', 10 * second)
        writer.recv("c1", frame(3), 20 * second)
        writer.recv("c1", frame(4), 5000 * second)  # keeps the stream open meanwhile

    url = "/api/v3/depth?symbol=ABCUSDT"
    async with ExchangeServer(path, speed=100.0) as srv:
        assert (await get(srv.rest_url + url)).json() == {"lastUpdateId": 1}  # nobody streams
        async with connect(f"{srv.ws_url}/stream?streams=abcusdt@depth") as ws:
            assert await ws.recv() == frame(1)
            assert await ws.recv() == frame(2)
            assert (await get(srv.rest_url + url)).json() == {"lastUpdateId": 1}
            assert await ws.recv() == frame(3)
            assert (await get(srv.rest_url + url)).json() == {"lastUpdateId": 2}
        await asyncio.wait_for(srv.wait_done(), 5)
        assert (await get(srv.rest_url + url)).json() == {"lastUpdateId": 1}


# -- faults ----------------------------------------------------------------------------------


async def test_fault_rest_429(spot: Tape) -> None:
    record = next(spot.iter_records("http"))
    assert record.url is not None and record.data is not None
    url = "/api/v3/depth?" + record.url.split("?", 1)[1]
    async with ExchangeServer(spot, faults=FaultPlan(rest_429_first_n=2)) as srv:
        for _ in range(2):
            reply = await get(srv.rest_url + url)
            assert reply.status == 429
            assert reply.headers["retry-after"] == "1"
            assert isinstance(body := reply.json(), dict) and body["code"] == -1003
        reply = await get(srv.rest_url + url)
        assert reply.status == 200
        assert reply.body == record.data.encode()
        assert srv.stats.snapshot_requests == 3
        assert srv.stats.rejected_requests == 2


async def test_fault_drop_after_frames(spot: Tape) -> None:
    expected = recorded(spot, *SPOT_STREAMS)
    url_path = f"/stream?streams={'/'.join(SPOT_STREAMS)}"
    async with ExchangeServer(spot, speed=INF, faults=FaultPlan(drop_after_frames=5)) as srv:
        got: list[str] = []
        async with connect(srv.ws_url + url_path) as ws:
            with pytest.raises(ConnectionClosedError) as info:
                while True:
                    message = await ws.recv()
                    assert isinstance(message, str)
                    got.append(message)
        assert info.value.rcvd is None  # no close frame: the TCP connection was cut
        assert got == expected[:5]
        async with connect(srv.ws_url + url_path) as ws:  # later connections are not dropped
            assert await drain(ws) == expected
            assert ws.close_code == 1000


async def test_fault_drop_frames_leaves_gaps(spot: Tape) -> None:
    expected = recorded(spot, *SPOT_STREAMS)
    gaps = frozenset({0, 3, 50})
    async with (
        ExchangeServer(spot, speed=INF, faults=FaultPlan(drop_frames=gaps)) as srv,
        connect(f"{srv.ws_url}/stream?streams={'/'.join(SPOT_STREAMS)}") as ws,
    ):
        got = await drain(ws)
    assert got == [frame for i, frame in enumerate(expected) if i not in gaps]


async def test_fault_malformed_frame(spot: Tape) -> None:
    expected = recorded(spot, *SPOT_STREAMS)
    async with ExchangeServer(spot, speed=INF, faults=FaultPlan(malformed_after=2)) as srv:
        async with connect(f"{srv.ws_url}/stream?streams={'/'.join(SPOT_STREAMS)}") as ws:
            got = await drain(ws)
        async with connect(f"{srv.ws_url}/stream?streams={'/'.join(SPOT_STREAMS)}") as ws:
            again = await drain(ws)  # only once, on the first connection
    assert got == [*expected[:2], MALFORMED_FRAME, *expected[2:]]
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(got[2])
    assert again == expected


async def test_fault_oversized_frame(spot: Tape) -> None:
    expected = recorded(spot, "lrcbtc@depth@100ms")
    size = 1_500_000  # more than a default client's 1 MiB limit
    url_path = "/stream?streams=lrcbtc@depth@100ms"
    faults = FaultPlan(oversized_frame_bytes=size)
    async with (
        ExchangeServer(spot, speed=INF, faults=faults) as srv,
        connect(srv.ws_url + url_path, max_size=None) as ws,
    ):
        got = await drain(ws)
    assert len(got[0].encode()) == size
    assert got[1:] == expected

    async with (
        ExchangeServer(spot, speed=INF, faults=faults) as srv,
        connect(srv.ws_url + url_path) as ws,
    ):
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
    assert info.value.sent is not None and info.value.sent.code == 1009  # message too big


# -- profiles and entry points ---------------------------------------------------------------


@register_profile
class EverythingProfile(VenueProfile[Subscription]):
    """A minimal profile: ``/all`` streams every frame; ``/ask`` waits for any message."""

    venues = ("lobfeed-test-everything",)

    def subscribe_path(self, path: str) -> Subscription | None:
        if path not in ("/all", "/ask"):
            return None
        sub = Subscription()
        sub.ready = path == "/all"
        return sub

    def on_message(self, sub: Subscription, text: str) -> list[str]:
        sub.ready = True
        return [f"ok {text}"]

    def frame_for(self, sub: Subscription, index: int, record: TapeRecord) -> str | None:
        return record.data


async def test_custom_profile_and_unknown_venue(tmp_path: Path) -> None:
    path = tmp_path / "toy.jsonl"
    with TapeWriter(path, "lobfeed-test-everything") as writer:
        writer.open("a", "wss://example.invalid/", 1)
        writer.open("b", "wss://example.invalid/", 2)
        writer.send("a", "hello", 3)
        for i in range(600):
            writer.recv("a" if i % 2 else "b", f"frame {i}", 10 + i)
    frames = [f"frame {i}" for i in range(600)]
    async with ExchangeServer(path, speed=INF) as srv:
        async with connect(f"{srv.ws_url}/all") as ws:
            assert await drain(ws) == frames
        async with connect(f"{srv.ws_url}/ask") as ws:
            await ws.send("go")
            assert await ws.recv() == "ok go"
            assert await drain(ws) == frames
        assert (await get(f"{srv.rest_url}/anything")).status == 404

    other = tmp_path / "other.jsonl"
    with TapeWriter(other, "no-such-venue"):
        pass
    with pytest.raises(UnknownVenueError, match="no-such-venue"):
        ExchangeServer(other)
    with pytest.raises(ValueError):
        ExchangeServer(path, speed=0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_run_server_stops_when_clients_are_done(
    spot: Tape, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    thread = threading.Thread(
        target=run_server,
        args=(str(spot.path), "127.0.0.1", port, INF, False),
        kwargs={"once": True},
        daemon=True,
    )
    thread.start()
    url = f"ws://127.0.0.1:{port}/stream?streams=lrcbtc@depth@100ms"
    for _ in range(100):
        try:
            ws = await connect(url)
            break
        except OSError:
            await asyncio.sleep(0.05)
    else:
        pytest.fail("run_server did not start listening")
    async with ws:
        assert await drain(ws) == recorded(spot, "lrcbtc@depth@100ms")
    await asyncio.to_thread(thread.join, 10)
    assert not thread.is_alive()
    out = capsys.readouterr().out
    assert f"ws://127.0.0.1:{port}" in out
    assert f"http://127.0.0.1:{port}" in out
    assert f"ws://127.0.0.1:{port}/stream?streams=nknusdt@depth@100ms/" in out
