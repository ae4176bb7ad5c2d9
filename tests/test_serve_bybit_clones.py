"""Bybit symbol clones and args limits, and the venue maintenance notice fault, spoken to directly
with a plain websockets client."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from lobfeed._native import Session
from lobfeed.exceptions import FaultSpecError
from lobfeed.tape import Tape
from lobfeed.testing import ExchangeServer
from lobfeed.testing.faults import FaultPlan
from lobfeed.testing.profiles.bybit import rename_frame

INF = float("inf")
BYBIT = "bybit-2026.jsonl.gz"
OKX = "okx-books-3inst-2022.jsonl.gz"
SPOT = ("BTCUSDT", "ETHUSDT")  # the tape's spot symbols
CLONES = 99  # 2 symbols + 2 x 99 aliases = 200 symbols


@pytest.fixture(scope="module")
def tapes(tape_path: Callable[[str], Path]) -> Callable[[str], Tape]:
    cache: dict[str, Tape] = {}

    def load(name: str) -> Tape:
        if name not in cache:
            cache[name] = Tape.open(tape_path(name))
        return cache[name]

    return load


async def drain(ws: ClientConnection, timeout: float = 60) -> list[str]:
    frames: list[str] = []
    async with asyncio.timeout(timeout):
        async for frame in ws:
            assert isinstance(frame, str)
            frames.append(frame)
    return frames


async def subscribe(ws: ClientConnection, args: list[str]) -> dict[str, object]:
    await ws.send(orjson.dumps({"op": "subscribe", "args": args}).decode())
    answer = orjson.loads(await ws.recv())
    assert isinstance(answer, dict)
    return answer


def book(frames: list[str], symbol: str) -> Session:
    session = Session("bybit")
    for ts, frame in enumerate(frames, 1):
        session.receive(frame, ts)
    assert session.state(symbol) == "live", symbol
    return session


async def test_two_hundred_cloned_books_equal_the_originals(
    tapes: Callable[[str], Tape],
) -> None:
    aliases = {f"C{n}{s}": s for s in SPOT for n in range(1, CLONES + 1)}
    symbols = [*SPOT, *aliases]
    assert len(symbols) == 200
    topics = [f"orderbook.200.{symbol}" for symbol in symbols]
    srv = ExchangeServer(tapes(BYBIT), speed=INF, clones=CLONES)
    async with srv, connect(f"{srv.ws_url}/v5/public/spot", max_size=None) as ws:
        # Spot takes 10 args a request: 20 requests, sent at once, then their acks.
        for start in range(0, len(topics), 10):
            args = topics[start : start + 10]
            await ws.send(orjson.dumps({"op": "subscribe", "args": args}).decode())
        frames = await drain(ws)
    acks = [orjson.loads(f) for f in frames if '"op"' in f[:120] and '"topic"' not in f]
    assert len(acks) == 20 and all(a["success"] for a in acks)
    by_topic: dict[str, list[str]] = defaultdict(list)
    for frame in frames:
        msg = orjson.loads(frame)
        if "topic" in msg:
            by_topic[msg["topic"]].append(frame)
    assert set(by_topic) == set(topics)  # every alias streams, nothing else does
    originals = {s: book(by_topic[f"orderbook.200.{s}"], s) for s in SPOT}
    for symbol, original in aliases.items():
        mine = by_topic[f"orderbook.200.{symbol}"]
        theirs = by_topic[f"orderbook.200.{original}"]
        assert len(mine) == len(theirs)
        assert orjson.loads(mine[0])["type"] == "snapshot"
        # The same frames but for the names: ids (u, seq), prices, times unchanged.
        assert [
            f.replace(f".{symbol}", f".{original}").replace(f'"{symbol}"', f'"{original}"')
            for f in mine
        ] == theirs
        view, want = book(mine, symbol).book(symbol), originals[original].book(original)
        assert view.seq == want.seq
        assert view.bids(200) == want.bids(200) and view.asks(200) == want.asks(200)


def test_rename_frame_renames_topic_and_symbol_fields_only() -> None:
    trade = (
        '{"topic":"publicTrade.BTCUSDT","ts":1,"type":"snapshot","data":[{"T":1,"s":"BTCUSDT",'
        '"S":"Buy","v":"1","p":"2","i":"x","seq":7}]}'
    )
    renamed = orjson.loads(rename_frame(trade, "BTCUSDT", "C3BTCUSDT"))
    assert renamed["topic"] == "publicTrade.C3BTCUSDT"
    assert renamed["data"][0] == {**orjson.loads(trade)["data"][0], "s": "C3BTCUSDT"}
    ticker = '{"topic": "tickers.BTCUSDT", "data": {"symbol": "BTCUSDT", "cs": 5}}'  # not compact
    assert orjson.loads(rename_frame(ticker, "BTCUSDT", "C1BTCUSDT")) == {
        "topic": "tickers.C1BTCUSDT",
        "data": {"symbol": "C1BTCUSDT", "cs": 5},
    }


async def test_alias_streams_other_topics_renamed(tapes: Callable[[str], Tape]) -> None:
    srv = ExchangeServer(tapes(BYBIT), speed=INF, clones=2)
    async with srv, connect(f"{srv.ws_url}/v5/public/linear") as ws:
        answer = await subscribe(ws, ["tickers.C2SOLUSDT", "tickers.SOLUSDT"])
        assert answer["success"] is True
        frames = [orjson.loads(f) for f in await drain(ws)]
    alias = [f for f in frames if f["topic"] == "tickers.C2SOLUSDT"]
    original = [f for f in frames if f["topic"] == "tickers.SOLUSDT"]
    assert len(alias) == len(original) == 193
    for mine, theirs in zip(alias, original, strict=True):
        assert mine["data"]["symbol"] == "C2SOLUSDT"
        assert {
            **mine,
            "topic": theirs["topic"],
            "data": {**mine["data"], "symbol": "SOLUSDT"},
        } == (theirs)


async def test_spot_takes_at_most_ten_args_a_request(tapes: Callable[[str], Tape]) -> None:
    eleven = [f"publicTrade.C{n}BTCUSDT" for n in range(1, 12)]
    async with ExchangeServer(tapes(BYBIT), speed=INF, clones=11) as srv:
        async with connect(f"{srv.ws_url}/v5/public/spot") as ws:
            refused = await subscribe(ws, eleven)
            assert refused["success"] is False and refused["op"] == "subscribe"
            assert refused["ret_msg"] == "error:args size >10"
            assert (await subscribe(ws, eleven[:10]))["success"] is True
            assert (await subscribe(ws, eleven[10:]))["success"] is True
            frames = [orjson.loads(f) for f in await drain(ws)]
        # Linear takes any number of args in one request.
        async with connect(f"{srv.ws_url}/v5/public/linear") as ws:
            many = [f"publicTrade.C{n}BTCUSDT" for n in range(1, 12)]
            assert (await subscribe(ws, many))["success"] is True
    assert {f["topic"] for f in frames} == set(eleven)  # the refusal changed nothing
    assert srv.stats.refused == {"subscribe-args": 1}


async def test_args_at_most_21000_characters_a_connection(tapes: Callable[[str], Tape]) -> None:
    # 1,000 topics of 20 characters: 20,000; 50 more: 21,000 exactly; one more: over.
    topics = [f"tickers.X{n:07d}USDT" for n in range(1, 1052)]
    assert all(len(t) == 20 for t in topics)
    srv = ExchangeServer(tapes(BYBIT), speed=INF)
    async with srv, connect(f"{srv.ws_url}/v5/public/linear") as ws:
        assert (await subscribe(ws, topics[:1000]))["success"] is True
        assert (await subscribe(ws, topics[:1000]))["success"] is True  # nothing new
        refused = await subscribe(ws, topics[1000:])
        assert refused["success"] is False
        assert "21000" in str(refused["ret_msg"])
        assert (await subscribe(ws, topics[1000:1050]))["success"] is True
        assert (await subscribe(ws, topics[1050:]))["success"] is False
        # Unsubscribing frees room.
        await ws.send(orjson.dumps({"op": "unsubscribe", "args": topics[:1]}).decode())
        assert orjson.loads(await ws.recv())["success"] is True
        assert (await subscribe(ws, topics[1050:]))["success"] is True
    assert srv.stats.refused == {"args-length": 2}
    # Without limits anything goes.
    srv = ExchangeServer(tapes(BYBIT), speed=INF, enforce_limits=False)
    async with srv, connect(f"{srv.ws_url}/v5/public/spot") as ws:
        assert (await subscribe(ws, topics))["success"] is True
    assert srv.stats.refused == {}


# -- the venue notice fault ---------------------------------------------------------------------


def test_notice_spec_round_trips() -> None:
    plan = FaultPlan.parse("notice=5,notice_close_after=0.5s,conns=all")
    assert (plan.notice_after, plan.notice_close_after_s, plan.conns) == (5, 0.5, None)
    assert FaultPlan.parse(plan.spec()) == plan
    with pytest.raises(FaultSpecError):
        FaultPlan.parse("notice_close_after=1s")
    with pytest.raises(FaultSpecError):
        FaultPlan.parse("notice=x")


def test_notice_refused_for_a_venue_without_one(tapes: Callable[[str], Tape]) -> None:
    with pytest.raises(FaultSpecError, match="notice"):
        ExchangeServer(tapes(BYBIT), faults=FaultPlan.parse("notice=3"))


async def test_okx_notice_after_n_frames_then_close(tapes: Callable[[str], Tape]) -> None:
    plan = FaultPlan.parse("notice=5,notice_close_after=0.3s")
    request = '{"op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT"}]}'
    async with ExchangeServer(tapes(OKX), speed=5, faults=plan) as srv:
        async with connect(f"{srv.ws_url}/ws/v5/public", max_size=None) as ws:
            await ws.send(request)
            frames: list[str] = []
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(10):
                    while True:
                        frame = await ws.recv()
                        assert isinstance(frame, str)
                        frames.append(frame)
            assert ws.close_code == 1001
        # The second connection (conns= defaults to the first) gets no notice.
        async with connect(f"{srv.ws_url}/ws/v5/public", max_size=None) as ws:
            await ws.send(request)
            later = await drain(ws)
            assert ws.close_code == 1000
    notices = [i for i, f in enumerate(frames) if '"notice"' in f]
    assert notices == [6]  # the ack, 5 frames, then the notice
    notice = orjson.loads(frames[6])
    assert notice["event"] == "notice" and notice["code"] == "64008"
    assert notice["msg"] == (
        "The connection will soon be closed for a service upgrade. Please reconnect."
    )
    assert isinstance(notice["connId"], str) and notice["connId"]
    assert all(orjson.loads(f)["arg"]["instId"] == "BTC-USDT" for f in frames[7:])
    assert len(frames) - 2 < len(later) - 1  # closed before the tape's end
    assert not any('"notice"' in f for f in later)
    assert srv.stats.faults == {"notice": 1, "notice-close": 1}
