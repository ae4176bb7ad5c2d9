"""The venue specs' messages and the local exchange's venue profiles, spoken to directly."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from lobfeed import BookUpdate, Feed
from lobfeed._native import Session
from lobfeed.replay import verify
from lobfeed.tape import Tape, TapeWriter
from lobfeed.testing import ExchangeServer
from lobfeed.venues import SPECS, Subscription, spec_for

INF = float("inf")


async def drain(ws: ClientConnection, timeout: float = 10) -> list[str]:
    frames: list[str] = []
    async with asyncio.timeout(timeout):
        async for frame in ws:
            assert isinstance(frame, str)
            frames.append(frame)
    return frames


def sub(
    *symbols: str, channels: tuple[str, ...] = ("book",), depth: int | None = None
) -> Subscription:
    return Subscription(symbols, frozenset(channels), depth)


# -- specs ------------------------------------------------------------------------------------


def test_every_spec_creates_a_rust_session() -> None:
    for name, spec in SPECS.items():
        assert spec.name == name
        Session(spec.session_venue)
    assert {SPECS[n].session_venue for n in ("bybit", "bybit-spot", "bybit-inverse")} == {"bybit"}
    assert SPECS["kraken-v2"].session_venue == "kraken"


def test_bybit_categories_depths_and_chunks() -> None:
    assert (
        spec_for("bybit")
        .connect_url("wss://stream.bybit.com", sub("X"))
        .endswith("/v5/public/linear")
    )
    assert spec_for("bybit-spot").connect_url("ws://h:1", sub("X")) == "ws://h:1/v5/public/spot"
    assert (
        spec_for("bybit-inverse").connect_url("ws://h:1", sub("X")) == "ws://h:1/v5/public/inverse"
    )
    symbols = [f"S{i}" for i in range(4)]
    messages = spec_for("bybit-spot").subscribe_messages(
        sub(*symbols, channels=("book", "trades", "candles"), depth=500)
    )
    args = [orjson.loads(m)["args"] for m in messages]
    assert [len(a) for a in args] == [10, 2]
    assert args[0][:3] == ["orderbook.1000.S0", "publicTrade.S0", "kline.1.S0"]
    linear = spec_for("bybit").subscribe_messages(sub("X", depth=500))
    assert orjson.loads(linear[0])["args"] == ["orderbook.1000.X"]
    assert spec_for("bybit").resubscribe_messages("X", sub("X")) == [
        '{"op":"unsubscribe","args":["orderbook.200.X"]}',
        '{"op":"subscribe","args":["orderbook.200.X"]}',
    ]
    assert spec_for("bybit").heartbeat_message() == '{"op":"ping"}'
    assert spec_for("bybit").heartbeat_interval == 20
    with pytest.raises(ValueError, match="7m"):
        spec_for("bybit").subscribe_messages(
            Subscription(("X",), frozenset({"candles"}), candle_interval="7m")
        )


def test_okx_kraken_coinbase_gemini_bitfinex_messages() -> None:
    okx = spec_for("okx")
    assert okx.subscribe_messages(sub("BTC-USDT", depth=5)) == [
        '{"op":"subscribe","args":[{"channel":"books5","instId":"BTC-USDT"}]}'
    ]
    assert okx.heartbeat_message() == "ping" and okx.heartbeat_interval == 25
    assert okx.snapshot_url("https://www.okx.com", "BTC-USDT", sub("BTC-USDT")) == (
        "https://www.okx.com/api/v5/market/books?instId=BTC-USDT&sz=400"
    )
    kraken = spec_for("kraken")
    assert kraken.subscribe_messages(sub("XBT/USD", depth=20)) == [
        '{"event":"subscribe","pair":["XBT/USD"],"subscription":{"name":"book","depth":25}}'
    ]
    assert kraken.heartbeat_message() == '{"event":"ping"}'
    assert spec_for("kraken-v2").resubscribe_messages("BTC/USD", sub("BTC/USD"))[0] == (
        '{"method":"unsubscribe","params":{"channel":"book","symbol":["BTC/USD"],"depth":10}}'
    )
    coinbase = spec_for("coinbase").subscribe_messages(sub("BTC-USD", channels=("book",)))
    assert [orjson.loads(m)["channel"] for m in coinbase] == ["heartbeats", "level2"]
    gemini = spec_for("gemini").subscribe_messages(sub("BTCUSD", "ETHUSD", channels=("trades",)))
    assert gemini == [
        '{"type":"subscribe","subscriptions":[{"name":"l2","symbols":["BTCUSD","ETHUSD"]}]}'
    ]
    bitfinex = spec_for("bitfinex").subscribe_messages(sub("tBTCUSD", depth=100))
    assert bitfinex == [
        '{"event":"conf","flags":196608}',
        '{"event":"subscribe","channel":"book","symbol":"tBTCUSD","prec":"P0","len":"100"}',
    ]
    assert spec_for("bitfinex").resubscribe_messages("tBTCUSD", sub("tBTCUSD"), channel=7) == [
        '{"event":"unsubscribe","chanId":7}',
        '{"event":"subscribe","channel":"book","symbol":"tBTCUSD","prec":"P0","len":"25"}',
    ]


# -- profiles ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tapes(tapes_dir: Path) -> Callable[[str], Tape]:
    cache: dict[str, Tape] = {}

    def load(name: str) -> Tape:
        if name not in cache:
            cache[name] = Tape.open(tapes_dir / name)
        return cache[name]

    return load


async def test_bybit_paths_acks_and_pong(tapes: Callable[[str], Tape]) -> None:
    async with ExchangeServer(tapes("bybit-2026.jsonl.gz"), speed=INF) as srv:
        with pytest.raises(InvalidStatus):
            await connect(f"{srv.ws_url}/v5/public/nowhere")
        async with connect(f"{srv.ws_url}/v5/public/spot") as ws:
            await ws.send('{"op":"ping","req_id":"p1"}')
            pong = orjson.loads(await ws.recv())
            assert (pong["op"], pong["ret_msg"], pong["req_id"]) == ("ping", "pong", "p1")
            await ws.send('{"op":"subscribe","args":["publicTrade.ETHUSDT"]}')
            ack = orjson.loads(await ws.recv())
            assert ack == {
                "success": True,
                "ret_msg": "subscribe",
                "conn_id": "d9avt8shteepr00gfc1g-4zd1x",
                "op": "subscribe",
            }
            frames = await drain(ws)
        assert len(frames) == 7
        assert all(orjson.loads(f)["topic"] == "publicTrade.ETHUSDT" for f in frames)
        async with connect(f"{srv.ws_url}/v5/public/linear") as ws:
            await ws.send('{"op":"ping"}')
            assert orjson.loads(await ws.recv())["op"] == "pong"
            await ws.send('{"op":"subscribe","args":["kline.1.DOGEUSDT"]}')
            assert orjson.loads(await ws.recv())["ret_msg"] == ""
            assert len(await drain(ws)) == 12


async def test_okx_answers_each_argument_and_ping(tapes: Callable[[str], Tape]) -> None:
    async with ExchangeServer(tapes("okx-books-3inst-2022.jsonl.gz"), speed=INF) as srv:
        async with connect(f"{srv.ws_url}/ws/v5/public") as ws:
            await ws.send("ping")
            assert await ws.recv() == "pong"
            await ws.send('{"op":"subscribe","args":[{"channel":"trades","instId":"BTC-USDT"}]}')
            ack = await ws.recv()
            assert ack == '{"event":"subscribe","arg":{"channel":"trades","instId":"BTC-USDT"}}'
            frames = [orjson.loads(f) for f in await drain(ws)]
        assert frames and all(f["arg"]["instId"] == "BTC-USDT" for f in frames)
        async with connect(f"{srv.ws_url}/ws/v5/public") as ws:
            await ws.send('{"op":"nope"}')
            assert orjson.loads(await ws.recv())["event"] == "error"
        answer = await asyncio.to_thread(_get, f"{srv.rest_url}/api/v5/market/books?instId=X")
        assert answer[0] == 400


async def test_kraken_greets_and_answers_with_recorded_status(tapes: Callable[[str], Tape]) -> None:
    async with ExchangeServer(tapes("kraken-v1-book1000-10sym-2021.jsonl.gz"), speed=INF) as srv:
        async with connect(srv.ws_url) as ws:
            assert orjson.loads(await ws.recv())["event"] == "systemStatus"
            await ws.send('{"event":"ping","reqid":7}')
            assert orjson.loads(await ws.recv()) == {"event": "pong", "reqid": 7}
            await ws.send(
                '{"event":"subscribe","pair":["XBT/CHF","DOGE/USD"],'
                '"subscription":{"name":"book","depth":10}}'
            )
            status = orjson.loads(await ws.recv())
            # The tape's depth, which is what is served.
            assert status["channelName"] == "book-1000" and status["status"] == "subscribed"
            error = orjson.loads(await ws.recv())
            assert (error["pair"], error["status"]) == ("DOGE/USD", "error")
            frames = [orjson.loads(f) for f in await drain(ws)]
        books = [f for f in frames if isinstance(f, list)]
        assert books and all(f[-1] == "XBT/CHF" and f[-2] == "book-1000" for f in books)


async def test_coinbase_renumbers_the_sequence_of_what_it_leaves_out(
    tapes: Callable[[str], Tape],
) -> None:
    async with ExchangeServer(tapes("coinbase-2026.jsonl.gz"), speed=INF) as srv:
        async with connect(srv.ws_url, max_size=None) as ws:  # snapshots weigh 2.5 MB
            await ws.send('{"type":"subscribe","product_ids":["ETH-USD"],"channel":"level2"}')
            frames = [orjson.loads(f) for f in await drain(ws)]
        assert [f["sequence_num"] for f in frames] == list(range(len(frames)))
        assert {f["channel"] for f in frames} == {"l2_data", "subscriptions"}
        assert all(
            e["product_id"] == "ETH-USD"
            for f in frames[1:]
            for e in f.get("events", [])
            if "product_id" in e
        )
        async with connect(srv.ws_url) as ws:
            await ws.send('{"type":"subscribe","channel":"level2"}')
            assert orjson.loads(await ws.recv())["type"] == "error"


async def test_bitfinex_conf_subscribed_and_errors(tapes: Callable[[str], Tape]) -> None:
    async with ExchangeServer(tapes("bitfinex-book-p0-7sym-2021.jsonl.gz"), speed=INF) as srv:
        async with connect(f"{srv.ws_url}/ws/2") as ws:
            assert orjson.loads(await ws.recv())["event"] == "info"
            await ws.send('{"event":"conf","flags":196608}')
            assert orjson.loads(await ws.recv()) == {
                "event": "conf",
                "status": "OK",
                "flags": 196608,
            }
            await ws.send('{"event":"subscribe","channel":"book","symbol":"tNOPE"}')
            assert orjson.loads(await ws.recv())["code"] == 10300
            await ws.send('{"event":"subscribe","channel":"trades","symbol":"tSNGUSD"}')
            frames = [orjson.loads(f) for f in await drain(ws)]
        assert frames[0]["event"] == "subscribed" and frames[0]["symbol"] == "tSNGUSD"
        data = frames[1:]
        assert data and all(f[0] == frames[0]["chanId"] for f in data)
        # One counter for the connection, renumbered from the recorded first frame's number.
        first = data[0][-1]
        assert [f[-1] for f in data] == list(range(first, first + len(data)))


async def test_gemini_streams_l2_and_trades_of_a_symbol(tapes: Callable[[str], Tape]) -> None:
    async with ExchangeServer(tapes("gemini-v2-l2-10sym-2021.jsonl.gz"), speed=INF) as srv:
        with pytest.raises(InvalidStatus):
            await connect(f"{srv.ws_url}/v1/marketdata/BTCUSD")
        async with connect(f"{srv.ws_url}/v2/marketdata") as ws:
            await ws.send("{")
            assert orjson.loads(await ws.recv())["result"] == "error"
            await ws.send(
                '{"type":"subscribe","subscriptions":[{"name":"l2","symbols":["ANKRUSD"]}]}'
            )
            frames = [orjson.loads(f) for f in await drain(ws)]
        kinds = {f["type"] for f in frames}
        assert kinds <= {"l2_updates", "trade", "heartbeat"} and "l2_updates" in kinds
        assert all(f["symbol"] == "ANKRUSD" for f in frames if f["type"] != "heartbeat")


def _get(url: str) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


async def test_recorded_rest_answers(tapes: Callable[[str], Tape]) -> None:
    async with ExchangeServer(tapes("bybit-2026.jsonl.gz"), speed=INF) as srv:
        url = f"{srv.rest_url}/v5/market/instruments-info?category=spot"
        status, body = await asyncio.to_thread(_get, url)
        assert status == 200 and orjson.loads(body)["result"]["category"] == "spot"
        url = f"{srv.rest_url}/v5/market/instruments-info?category=linear"
        status, body = await asyncio.to_thread(_get, url)
        assert status == 200 and orjson.loads(body)["result"]["category"] == "linear"
        status, _ = await asyncio.to_thread(_get, f"{srv.rest_url}/v5/market/orderbook")
        assert status == 404


async def test_a_tape_named_by_a_venue_alias(tapes: Callable[[str], Tape], tmp_path: Path) -> None:
    """A tape whose header says ``bybit-spot`` replays, verifies and is served like ``bybit``."""
    path = tmp_path / "spot.jsonl"
    with TapeWriter(path, "bybit-spot") as out:
        for r in tapes("bybit-2026.jsonl.gz").records:
            if r.conn != "c3":
                continue
            if r.type == "open" and r.url is not None:
                out.open(r.conn, r.url, r.ts_ns)
            elif r.type in ("send", "recv") and r.data is not None:
                (out.send if r.type == "send" else out.recv)(r.conn, r.data, r.ts_ns)
    tape = Tape.open(path)
    proof = verify(tape)
    assert proof.failures() == [] and proof.book_updates == 550
    books: list[str] = []
    async with ExchangeServer(tape, speed=INF) as srv:
        feed = Feed(
            "bybit-spot",
            ["ETHUSDT"],
            channels=("book",),
            on_book=lambda u: books.append(u.symbol),
            ws_url=srv.ws_url,
            reconnect=False,
        )
        await asyncio.wait_for(feed.run(), 30)
    assert books == ["ETHUSDT"] * 250


def test_deribit_bitmex_and_kraken_futures_messages() -> None:
    deribit = spec_for("deribit")
    heartbeat, subscribe = map(orjson.loads, deribit.subscribe_messages(sub("BTC-PERPETUAL")))
    assert (heartbeat["method"], heartbeat["params"]) == ("public/set_heartbeat", {"interval": 30})
    assert (subscribe["jsonrpc"], subscribe["method"]) == ("2.0", "public/subscribe")
    assert subscribe["params"] == {"channels": ["book.BTC-PERPETUAL.raw"]}
    assert heartbeat["id"] != subscribe["id"]
    again = [orjson.loads(m) for m in deribit.resubscribe_messages("ETH-PERPETUAL", sub("X"))]
    assert [(m["method"], m["params"]) for m in again] == [
        ("public/unsubscribe", {"channels": ["book.ETH-PERPETUAL.raw"]}),
        ("public/subscribe", {"channels": ["book.ETH-PERPETUAL.raw"]}),
    ]
    assert deribit.connect_url(deribit.ws_url, sub("X")) == "wss://www.deribit.com/ws/api/v2"
    bitmex = spec_for("bitmex")
    channels = ("book", "trades", "quotes")
    assert bitmex.subscribe_messages(sub("XBTUSD", channels=channels)) == [
        '{"op":"subscribe","args":["orderBookL2:XBTUSD","quote:XBTUSD","trade:XBTUSD"]}'
    ]
    assert bitmex.resubscribe_messages("XBTUSD", sub("XBTUSD")) == [
        '{"op":"unsubscribe","args":["orderBookL2:XBTUSD"]}',
        '{"op":"subscribe","args":["orderBookL2:XBTUSD"]}',
    ]
    assert bitmex.heartbeat_message() == "ping" and bitmex.heartbeat_interval == 5
    # Kraken Futures: the subscribe shape of the protocol notes, word for word.
    futures = spec_for("kraken-futures")
    assert futures.subscribe_messages(sub("PI_XBTUSD", channels=("book", "trades"))) == [
        '{"event":"subscribe","feed":"book","product_ids":["PI_XBTUSD"]}',
        '{"event":"subscribe","feed":"trade","product_ids":["PI_XBTUSD"]}',
    ]
    assert futures.resubscribe_messages("PI_ETHUSD", sub("PI_ETHUSD")) == [
        '{"event":"unsubscribe","feed":"book","product_ids":["PI_ETHUSD"]}',
        '{"event":"subscribe","feed":"book","product_ids":["PI_ETHUSD"]}',
    ]
    assert futures.normalize_symbol("pi_xbtusd") == "PI_XBTUSD"
    with pytest.raises(ValueError, match="quotes"):
        Feed("kraken-futures", ["PI_XBTUSD"], channels=("quotes",))


def test_kraken_futures_session_reads_the_documented_shapes() -> None:
    """No capture exists: the binding's session on frames in the documented shapes, a gap
    asking for that product's resubscription."""
    session = Session("kraken-futures")
    snapshot = (
        b'{"feed":"book_snapshot","product_id":"PI_XBTUSD","timestamp":1612269825817,"seq":5,'
        b'"bids":[{"price":34892.5,"qty":6385}],"asks":[{"price":34911.5,"qty":2.5e3}]}'
    )
    [update] = session.receive(snapshot, 1)
    assert isinstance(update, BookUpdate)
    assert update.book.best_ask_exact() == ("34911.5", "2500")
    level = b'{"feed":"book","product_id":"PI_XBTUSD","side":"buy","seq":%d,"price":34893,"qty":1}'
    [update] = session.receive(level % 6, 2)
    assert isinstance(update, BookUpdate)
    assert (update.seq, update.book.best_bid_exact()) == (6, ("34893", "1"))
    names = [type(e).__name__ for e in session.receive(level % 8, 3)]
    assert names == ["GapDetected", "SyncLost", "NeedResubscribe"]
