"""Faults of the local exchange, as a plain client sees them, and its live mode."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus

from lobfeed._native import ChecksumMismatch, GapDetected, Session, SyncLost
from lobfeed.exceptions import FaultSpecError, LobfeedError
from lobfeed.tape import Tape
from lobfeed.testing import ExchangeServer, FaultPlan
from lobfeed.testing.faults import corrupt_checksum

SPOT = "binance-spot-4sym-2021.jsonl.gz"
ETH = "binance-ethusdt-20240808.jsonl.gz"
COINM = "binance-coinm-ethusd_perp-20240808.jsonl.gz"
OKX = "okx-books-3inst-2022.jsonl.gz"
KRAKEN = "kraken-v1-book1000-10sym-2021.jsonl.gz"
INF = float("inf")
TIMEOUT = 10.0
SPOT_STREAMS = ("nknusdt@depth@100ms", "lrcbtc@bookTicker", "nknusdt@aggTrade")
NKN_DEPTH = "nknusdt@depth@100ms"


@pytest.fixture(scope="module")
def spot(tape_path: Callable[[str], Path]) -> Tape:
    return Tape.open(tape_path(SPOT))


def recorded(tape: Tape, *streams: str) -> list[str]:
    wanted = set(streams)
    return [
        r.data
        for r in tape.iter_records("recv")
        if r.data is not None and orjson.loads(r.data)["stream"] in wanted
    ]


def stream_url(srv: ExchangeServer, *streams: str) -> str:
    return f"{srv.ws_url}/stream?streams={'/'.join(streams or SPOT_STREAMS)}"


async def read_all(ws: ClientConnection) -> list[str]:
    """Every text message until the connection ends, however it ends."""
    frames: list[str] = []

    async def run() -> None:
        try:
            async for message in ws:
                assert isinstance(message, str)
                frames.append(message)
        except ConnectionClosed:
            pass

    await asyncio.wait_for(run(), TIMEOUT)
    return frames


async def session_of(url: str) -> tuple[list[str], int | None]:
    async with connect(url, max_size=None) as ws:
        frames = await read_all(ws)
    return frames, ws.close_code


async def wait_for(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def until(attempt: Callable[[], Awaitable[ClientConnection]]) -> ClientConnection:
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            return await attempt()
        except (OSError, InvalidMessage):
            assert time.monotonic() < deadline, "the server never accepted again"
            await asyncio.sleep(0.05)


def ids(frames: list[str]) -> list[int]:
    """Final update ids (``u``) of the depth events among ``frames``."""
    out = []
    for frame in frames:
        data = orjson.loads(frame)["data"]
        if data.get("e") == "depthUpdate":
            out.append(data["u"])
    return out


async def get(url: str) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        headers = {k.lower(): v for k, v in response.headers.items()}
        return response.status, headers, await response.read()


def snapshot_path(tape: Tape, symbol: str = "") -> tuple[str, str]:
    """(REST path with query, recorded body) of the tape's first depth snapshot (of symbol)."""
    record = next(r for r in tape.iter_records("http") if f"symbol={symbol}" in (r.url or ""))
    assert record.url is not None and record.data is not None
    url = urlsplit(record.url)  # the server answers on the venue's own paths
    return f"{url.path}?{url.query}", record.data


# -- the spec ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "close=1006@200,conns=all,seed=7,rest=html@1-3,stall=5s@100",
        "close=1001@0.5s,close=1001@p0.01,lifetime=86400s,tcpstall=2s@10",
        "reset=3s@close,status=429@2,rest=oversized:300000000,restsym=BTCUSDT,retry=7",
        "refuse=1.5s,rest=slow:0.25s@2-,drop=1/3-5/9,drop=p0.1,dup=2,reorder=p0.5",
        "corrupt=7,checksum=p0.2,crossed=0/4,fconns=2,rewind=5@20,hold=ETHUSDT:2s@3",
        "foreign=17,noresub,rest429=2,cut=3000,malformed=5,oversized=1048576",
    ],
)
def test_spec_round_trips(spec: str) -> None:
    plan = FaultPlan.parse(spec)
    assert FaultPlan.parse(plan.spec()) == plan
    assert str(plan) == plan.spec()
    assert FaultPlan.parse(spec.replace(",", " , ")) == plan


def test_spec_fields() -> None:
    plan = FaultPlan.parse("close=1006@200,conns=all,seed=7,rest=html@1-3,stall=5s@100")
    assert (plan.close_code, plan.close_after_frames, plan.conns, plan.seed) == (1006, 200, None, 7)
    assert (plan.rest_fault, plan.rest_from, plan.rest_to) == ("html", 1, 3)
    assert (plan.stall_s, plan.stall_after) == (5.0, 100)
    assert FaultPlan.parse("drop=3-5/9").drop_frames == frozenset({3, 4, 5, 9})
    assert FaultPlan.parse("status=503").handshake_first is None
    assert FaultPlan() == FaultPlan.parse("") and FaultPlan().spec() == ""


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("close=1002@3", "1000, 1001, 1011, 1006"),
        ("close=1006", "CODE@WHEN"),
        ("close=1006@3,close=1000@4", "same code"),
        ("bogus=1", "allowed: seed, close"),
        ("drop=x", "drop indices"),
        ("drop=p1.5", "probability"),
        ("rest=teapot", "429, 418, 404, 500, 503, slow"),
        ("rest=slow", "slow delay"),
        ("stall=soon@3", "seconds"),
        ("refuse=2s@later", "@start or @close"),
        ("status=abc", "status"),
        ("seed=1,seed=2", "repeats"),
        ("noresub=1", "no value"),
        ("hold=2s", "SYMBOL:Ts"),
    ],
)
def test_spec_errors_name_the_part_and_what_is_allowed(spec: str, message: str) -> None:
    with pytest.raises(FaultSpecError, match=re.escape(message)) as info:
        FaultPlan.parse(spec)
    assert isinstance(info.value, LobfeedError) and isinstance(info.value, ValueError)
    bad = spec.split(",")[-1]
    assert repr(bad) in str(info.value)


# -- connection closes ------------------------------------------------------------------------


@pytest.mark.parametrize("code", [1000, 1001, 1011, 1006])
async def test_close_codes_after_n_frames(spot: Tape, code: int) -> None:
    expected = recorded(spot, *SPOT_STREAMS)
    async with ExchangeServer(spot, speed=INF, faults=FaultPlan.parse(f"close={code}@5")) as srv:
        frames, got_code = await session_of(stream_url(srv))
        assert frames == expected[:5]
        assert got_code == code
        again, again_code = await session_of(stream_url(srv))  # conns=1: only the first
        assert again == expected and again_code == 1000
        assert srv.stats.faults == {"close": 1} and srv.stats.faults_injected == 1


async def test_close_right_after_the_handshake_on_every_connection(spot: Tape) -> None:
    async with ExchangeServer(
        spot, speed=INF, faults=FaultPlan.parse("close=1011@0,conns=all")
    ) as srv:
        for _ in range(2):
            async with connect(f"{srv.ws_url}/ws") as ws:
                # The subscribe is never read: the close is already on its way.
                with contextlib.suppress(ConnectionClosed):
                    await ws.send('{"method":"SUBSCRIBE","params":["nknusdt@depth@100ms"],"id":1}')
                assert await read_all(ws) == []
            assert ws.close_code == 1011
        assert srv.stats.faults["close"] == 2


async def test_close_after_seconds_on_the_first_k_connections(spot: Tape) -> None:
    plan = FaultPlan.parse("close=1006@0.3s,conns=2")
    async with ExchangeServer(spot, speed=1, faults=plan) as srv:
        for _ in range(2):
            _, code = await session_of(stream_url(srv))
            assert code == 1006
        async with connect(stream_url(srv)) as ws:
            await asyncio.sleep(0.6)  # past the 0.3 s: this third connection stays open
            await asyncio.wait_for(ws.ping(), TIMEOUT)
        assert srv.stats.faults["close"] == 2


async def test_lifetime_closes_every_connection_with_1001(spot: Tape) -> None:
    async with ExchangeServer(spot, speed=1, faults=FaultPlan.parse("lifetime=0.3s")) as srv:
        results = await asyncio.gather(*(session_of(stream_url(srv)) for _ in range(3)))
        assert [code for _, code in results] == [1001, 1001, 1001]
        assert srv.stats.faults["lifetime"] == 3


# -- refusals and handshake statuses ----------------------------------------------------------


async def test_refused_from_server_start(spot: Tape) -> None:
    async with ExchangeServer(spot, speed=INF, faults=FaultPlan.parse("refuse=2s")) as srv:
        with pytest.raises(ConnectionRefusedError):
            await connect(stream_url(srv))
        with pytest.raises(aiohttp.ClientConnectorError):
            await get(srv.rest_url + snapshot_path(spot)[0])
        ws = await until(lambda: connect(stream_url(srv)))
        async with ws:
            assert await read_all(ws) == recorded(spot, *SPOT_STREAMS)
        assert srv.stats.faults["refuse"] == 1


async def test_reset_after_the_first_connection_closed(spot: Tape) -> None:
    async with ExchangeServer(spot, speed=INF, faults=FaultPlan.parse("reset=2s@close")) as srv:
        assert (await session_of(stream_url(srv)))[1] == 1000
        await wait_for(lambda: srv.stats.faults.get("refuse") == 1)
        with pytest.raises((OSError, InvalidMessage)):
            await connect(stream_url(srv))
        assert srv.stats.faults["reset"] >= 1
        ws = await until(lambda: connect(stream_url(srv)))
        async with ws:
            assert len(await read_all(ws)) > 100


@pytest.mark.parametrize("status", [401, 403, 404, 414, 429, 503])
async def test_handshake_status_for_the_first_k_attempts(spot: Tape, status: int) -> None:
    plan = FaultPlan.parse(f"status={status}@2")
    async with ExchangeServer(spot, speed=INF, faults=plan) as srv:
        for _ in range(2):
            with pytest.raises(InvalidStatus) as info:
                await connect(stream_url(srv))
            assert info.value.response.status_code == status
        async with connect(stream_url(srv)) as ws:
            assert len(await read_all(ws)) > 100
        assert srv.stats.faults["status"] == 2


# -- REST snapshot faults ---------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 418, 404, 500, 503])
async def test_rest_statuses(spot: Tape, status: int) -> None:
    path, body = snapshot_path(spot)
    async with ExchangeServer(spot, faults=FaultPlan.parse(f"rest={status}@2,retry=3")) as srv:
        for _ in range(2):
            got, headers, _ = await get(srv.rest_url + path)
            assert got == status
            if status in (429, 418):
                assert headers["retry-after"] == "3"
        got, _, answer = await get(srv.rest_url + path)
        assert (got, answer) == (200, body.encode())
        assert srv.stats.faults == {f"rest-{status}": 2}


async def test_rest_unusable_200_bodies(spot: Tape) -> None:
    path, body = snapshot_path(spot)
    plan = FaultPlan.parse("rest=html@2")
    async with ExchangeServer(spot, faults=plan) as srv:
        status, headers, answer = await get(srv.rest_url + path)
        assert status == 200 and headers["content-type"] == "text/html"
        assert answer.startswith(b"<!DOCTYPE html>")
    async with ExchangeServer(spot, faults=FaultPlan.parse("rest=truncated@1")) as srv:
        status, _, answer = await get(srv.rest_url + path)
        assert status == 200 and body.encode().startswith(answer) and answer != body.encode()
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(answer)
    async with ExchangeServer(spot, faults=FaultPlan.parse("rest=venue-error@1")) as srv:
        status, _, answer = await get(srv.rest_url + path)
        assert status == 200 and orjson.loads(answer) == {"code": -1121, "msg": "Invalid symbol."}


async def test_rest_oversized_body_is_streamed(spot: Tape) -> None:
    path, body = snapshot_path(spot)
    size = 20_000_000
    async with ExchangeServer(spot, faults=FaultPlan.parse(f"rest=oversized:{size}@1")) as srv:
        async with aiohttp.ClientSession() as http, http.get(srv.rest_url + path) as response:
            assert response.status == 200
            assert response.headers["Content-Length"] == str(size)
            received = 0
            async for chunk in response.content.iter_chunked(1 << 20):
                received += len(chunk)
        assert received == size
        assert (await get(srv.rest_url + path))[2] == body.encode()


async def test_rest_slow_and_one_symbol_only(spot: Tape) -> None:
    path, body = snapshot_path(spot)
    symbol = path.split("symbol=", 1)[1].split("&", 1)[0]
    other = path.replace(symbol, "LRCBTC")
    plan = FaultPlan.parse(f"rest=slow:0.4s@1,restsym={symbol}")
    async with ExchangeServer(spot, faults=plan) as srv:
        assert (await get(srv.rest_url + other))[0] == 200
        assert srv.stats.faults == {}  # another symbol: neither delayed nor counted
        began = time.monotonic()
        assert (await get(srv.rest_url + path))[2] == body.encode()
        assert time.monotonic() - began >= 0.4
        assert srv.stats.faults == {"rest-slow": 1}


# -- frame faults -----------------------------------------------------------------------------


async def test_drop_dup_reorder_by_index(spot: Tape) -> None:
    e = recorded(spot, NKN_DEPTH)
    plan = FaultPlan.parse("drop=1,dup=3,reorder=6")
    async with ExchangeServer(spot, speed=INF, faults=plan) as srv:
        frames, _ = await session_of(stream_url(srv, NKN_DEPTH))
        assert frames == [e[0], e[2], e[3], e[3], e[4], e[5], e[7], e[6], *e[8:]]
        got, want = ids(frames), ids(e)
        assert got[:8] == [want[0], want[2], want[3], want[3], want[4], want[5], want[7], want[6]]
        assert srv.stats.faults == {"drop": 1, "dup": 1, "reorder": 1}
        assert srv.stats.frames_sent == len(e) - 1
        # Frame faults hit every connection (fconns=all by default).
        assert (await session_of(stream_url(srv, NKN_DEPTH)))[0] == frames


async def test_corrupt_frames(spot: Tape) -> None:
    e = recorded(spot, NKN_DEPTH)
    async with ExchangeServer(spot, speed=INF, faults=FaultPlan.parse("corrupt=0-3")) as srv:
        frames, _ = await session_of(stream_url(srv, NKN_DEPTH))
    assert frames[4:] == e[4:]
    for frame in frames[:4]:
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(frame)


async def test_crossed_level_keeps_the_ids(spot: Tape) -> None:
    e = recorded(spot, NKN_DEPTH)
    async with ExchangeServer(spot, speed=INF, faults=FaultPlan.parse("crossed=2")) as srv:
        frames, _ = await session_of(stream_url(srv, NKN_DEPTH))
    assert frames[:2] == e[:2] and frames[3:] == e[3:]
    bad, good = orjson.loads(frames[2])["data"], orjson.loads(e[2])["data"]
    assert (bad["U"], bad["u"]) == (good["U"], good["u"])
    top = max(float(p) for p, _ in good["b"] + good["a"])
    assert float(bad["b"][0][0]) == pytest.approx(top * 10)
    # Fed to a book, it puts the best bid above the best ask though no id is out of line:
    # the session drops that book as crossed.
    session = Session("binance")
    session.receive_snapshot("NKNUSDT", snapshot_path(spot, "NKNUSDT")[1], 0)
    for frame in frames[:2]:
        session.receive(frame, 1)
    lost = [e for e in session.receive(frames[2], 1) if isinstance(e, SyncLost)]
    assert [e.reason for e in lost] == ["crossed"]
    assert session.counters("NKNUSDT")["crossed"] == 1


async def test_ids_rewind_then_continue(spot: Tape) -> None:
    e = recorded(spot, NKN_DEPTH)
    async with ExchangeServer(spot, speed=INF, faults=FaultPlan.parse("rewind=5@20")) as srv:
        frames, _ = await session_of(stream_url(srv, NKN_DEPTH))
    assert frames == [*e[:20], *e[15:20], *e[20:]]
    got = ids(frames)
    assert got[20] < got[19]  # the ids go backwards...
    assert all(b > a for a, b in itertools.pairwise(got[20:]))  # ...then run on


async def test_foreign_symbols(spot: Tape) -> None:
    e = recorded(spot, NKN_DEPTH)
    async with ExchangeServer(spot, speed=INF, faults=FaultPlan.parse("foreign=2")) as srv:
        frames, _ = await session_of(stream_url(srv, NKN_DEPTH))
    real = [f for f in frames if "FAKE" not in f]
    fake = [orjson.loads(f) for f in frames if "FAKE" in f]
    assert real == e and len(fake) == len(e)
    assert [f["data"]["s"] for f in fake[:3]] == ["FAKE1USDT", "FAKE2USDT", "FAKE1USDT"]
    assert fake[0]["stream"] == "fake1usdt@depth@100ms"
    assert fake[0]["data"]["u"] == orjson.loads(e[0])["data"]["u"]


async def test_one_symbol_held_back_while_others_flow(spot: Tape) -> None:
    e = recorded(spot, NKN_DEPTH, "lrcbtc@depth@100ms")
    plan = FaultPlan.parse("hold=NKNUSDT:30s@0")
    async with ExchangeServer(spot, speed=INF, faults=plan) as srv:
        frames, _ = await session_of(stream_url(srv, NKN_DEPTH, "lrcbtc@depth@100ms"))
    # The hold outlasts the tape: NKNUSDT's frames come at its end, in their order.
    nkn = [f for f in e if "nknusdt" in f]
    assert frames == [f for f in e if "nknusdt" not in f] + nkn
    assert nkn and frames[0] != nkn[0]


async def test_checksum_corruption_fails_the_okx_book(tape_path: Callable[[str], Path]) -> None:
    plan = FaultPlan.parse("checksum=10")
    async with ExchangeServer(tape_path(OKX), speed=INF, faults=plan) as srv:
        async with connect(f"{srv.ws_url}/ws/v5/public", max_size=None) as ws:
            await ws.send('{"op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT"}]}')
            frames = await read_all(ws)
        assert srv.stats.faults == {"checksum": 1}
    session = Session("okx")
    mismatches = [
        event
        for frame in frames
        if frame.startswith('{"arg"')
        for event in session.receive(frame, 1)
        if isinstance(event, ChecksumMismatch)
    ]
    assert len(mismatches) == 1


def test_checksum_corruption_of_kraken_frames(tape_path: Callable[[str], Path]) -> None:
    tape = Tape.open(tape_path(KRAKEN))
    frame = next(
        r.data
        for r in tape.iter_records("recv")
        if r.data and '"c":"' in r.data and "book" in r.data
    )
    bad = corrupt_checksum(frame)
    assert bad is not None
    good_c = re.search(r'"c":"(\d+)"', frame)
    bad_c = re.search(r'"c":"(\d+)"', bad)
    assert good_c and bad_c and int(good_c[1]) ^ 1 == int(bad_c[1])
    assert corrupt_checksum('{"no":"checksum"}') is None


async def test_seeded_random_faults_repeat_exactly(spot: Tape) -> None:
    spec = "seed=11,drop=p0.1,dup=p0.1,reorder=p0.1,corrupt=p0.05,close=1000@p0.01,conns=all"

    async def run(plan: FaultPlan) -> list[tuple[list[str], int | None]]:
        async with ExchangeServer(spot, speed=INF, faults=plan) as srv:
            return [await session_of(stream_url(srv)) for _ in range(3)]

    first, second = await run(FaultPlan.parse(spec)), await run(FaultPlan.parse(spec))
    assert first == second
    assert first[0] != first[1]  # each connection draws its own faults
    assert first != await run(FaultPlan.parse(spec.replace("seed=11", "seed=12")))
    assert first[0][0] != recorded(spot, *SPOT_STREAMS)


async def test_unanswered_resubscribe(spot: Tape) -> None:
    async with ExchangeServer(spot, speed=1, faults=FaultPlan.parse("noresub")) as srv:
        async with connect(f"{srv.ws_url}/ws") as ws:
            await ws.send('{"method":"SUBSCRIBE","params":["nknusdt@depth@100ms"],"id":1}')
            await ws.send('{"method":"SUBSCRIBE","params":["lrcbtc@depth@100ms"],"id":2}')
            await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":3}')
            replies: list[object] = []
            while len(replies) < 2:
                message = orjson.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
                if "id" in message:
                    replies.append(message)
        assert replies == [
            {"result": None, "id": 1},
            {"result": ["nknusdt@depth@100ms"], "id": 3},
        ]
        assert srv.stats.faults == {"noresub": 1}


# -- stalls -----------------------------------------------------------------------------------


async def test_data_stall_answers_pings(spot: Tape) -> None:
    e = recorded(spot, NKN_DEPTH)
    async with (
        ExchangeServer(spot, speed=2, faults=FaultPlan.parse("stall=2s@3")) as srv,
        connect(stream_url(srv, NKN_DEPTH)) as ws,
    ):
        assert [await ws.recv() for _ in range(3)] == e[:3]
        began = time.monotonic()
        pong = asyncio.ensure_future(await ws.ping())
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == e[3]
        data_again = time.monotonic()
        assert data_again - began > 1.5
        # The pong came during the stall: before the data did.
        assert pong.done() and pong.result() < data_again - began
        assert srv.stats.faults == {"stall": 1}


async def test_tcp_stall_leaves_pings_unanswered(spot: Tape) -> None:
    e = recorded(spot, NKN_DEPTH)
    async with (
        ExchangeServer(spot, speed=2, faults=FaultPlan.parse("tcpstall=2s@3")) as srv,
        connect(stream_url(srv, NKN_DEPTH)) as ws,
    ):
        assert [await ws.recv() for _ in range(3)] == e[:3]
        pong = await ws.ping()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(pong), 1.0)
        await asyncio.wait_for(pong, TIMEOUT)  # answered once the socket is read again
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == e[3]
        assert srv.stats.faults == {"tcpstall": 1}


# -- live mode --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "stream", "symbol", "fields"),
    [
        (ETH, "ethusdt@depth@100ms", "ETHUSDT", {"lastUpdateId", "bids", "asks"}),
        (COINM, "ethusd_perp@depth@0ms", "ETHUSD_PERP", {"lastUpdateId", "E", "T", "bids", "asks"}),
    ],
)
async def test_live_join_mid_stream_with_a_bridging_snapshot(
    tape_path: Callable[[str], Path], name: str, stream: str, symbol: str, fields: set[str]
) -> None:
    tape = Tape.open(tape_path(name))
    path, recorded_body = snapshot_path(tape)
    recorded_id = orjson.loads(recorded_body)["lastUpdateId"]
    depth = [
        orjson.loads(r.data)["data"]
        for r in tape.iter_records("recv")
        if r.data and "@depth" in r.data[:40]
    ]
    async with ExchangeServer(tape, speed=20, live=True) as srv:
        t0 = srv.live_position_ns()
        assert t0 is not None
        await wait_for(lambda: (srv.live_position_ns() or 0) > t0 + 30_000_000_000)
        async with connect(f"{srv.ws_url}/stream?streams={stream}") as ws:
            frames = [await asyncio.wait_for(ws.recv(), TIMEOUT) for _ in range(30)]
            status, _, body = await get(srv.rest_url + path)
            frames += [await asyncio.wait_for(ws.recv(), TIMEOUT) for _ in range(60)]
    assert status == 200
    snapshot = orjson.loads(body)
    assert set(snapshot) == fields  # as the venue's: futures snapshots carry E and T
    first = orjson.loads(frames[0])["data"]
    # Joined where the stream stood (30 s of tape in), not at the tape's start.
    assert first["E"] >= depth[0]["E"] + 25_000 and first["U"] > depth[0]["u"]
    assert snapshot["lastUpdateId"] > recorded_id
    session = Session(tape.venue)
    events = [e for f in frames[:30] for e in session.receive(f, 1)]
    events += session.receive_snapshot(symbol, body, 2)
    events += [e for f in frames[30:] for e in session.receive(f, 3)]
    assert session.state(symbol) == "live"
    assert not [e for e in events if isinstance(e, GapDetected)]
    counters = session.counters(symbol)
    assert counters["gaps"] == 0 and counters["resyncs"] == 0 and counters["updates"] > 30
    assert session.book(symbol).seq == orjson.loads(frames[-1])["data"]["u"]


def test_live_needs_a_finite_speed(spot: Tape) -> None:
    with pytest.raises(ValueError, match="finite speed"):
        ExchangeServer(spot, speed=INF, live=True)


# -- the command line -------------------------------------------------------------------------


async def test_lobfeed_serve_faults_once(spot: Tape) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lobfeed",
        "serve",
        str(spot.path),
        "--speed",
        "max",
        "--faults",
        "close=1011@3,rest=503@1",
        "--seed",
        "5",
        "--once",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        ws_url = rest_url = None
        lines = []
        while ws_url is None or rest_url is None:
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            assert line, "lobfeed serve exited before printing its URLs"
            lines.append(line)
            if m := re.search(r"websocket: (\S+)", line):
                ws_url = m.group(1)
            if m := re.search(r"rest: +(\S+)", line):
                rest_url = m.group(1)
        path, _ = snapshot_path(spot)
        assert (await get(rest_url + path))[0] == 503
        async with connect(f"{ws_url}/stream?streams={NKN_DEPTH}") as ws:
            frames = await read_all(ws)
        assert frames == recorded(spot, NKN_DEPTH)[:3] and ws.close_code == 1011
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        rest = (await proc.stdout.read()).decode()
        assert "seed=5,close=1011@3,rest=503@1" in "".join(lines) + rest
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_live_clock_wraps_when_looping(spot: Tape) -> None:
    async with ExchangeServer(spot, speed=60, loop=True, live=True) as srv:
        seen = [srv.live_position_ns() or 0]

        def wrapped() -> bool:
            seen.append(srv.live_position_ns() or 0)
            return seen[-1] < seen[-2]

        await wait_for(wrapped)
        async with connect(stream_url(srv, NKN_DEPTH)) as ws:
            frames = [await asyncio.wait_for(ws.recv(), TIMEOUT) for _ in range(5)]
        assert all(f in recorded(spot, NKN_DEPTH) for f in frames)
