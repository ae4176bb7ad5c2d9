"""Binary websocket frames end to end: the local exchange sends a tape's base64 records back
as binary frames, the Feed hands them to the session as bytes and records them binary, and
what it recorded replays to the same books. HTX's gzip frames and its pings, Upbit's JSON in
binary frames; both client transports."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from websockets.asyncio.client import connect

from lobfeed import BookUpdate, Feed
from lobfeed.aio import Backoff
from lobfeed.replay import TapeReplayer, verify
from lobfeed.tape import Tape, TapeWriter
from lobfeed.testing import ExchangeServer, FaultPlan

TIMEOUT = 60
FAST = Backoff(initial=0.01, maximum=0.05)
HTX = "htx-swap-depth150-10sym-2022.jsonl.gz"
UPBIT = "upbit-orderbook-10sym-2021.jsonl.gz"
UPBIT_CODES = ("KRW-LAMB", "KRW-WAVES", "BTC-XTZ", "BTC-ITAM", "BTC-PAX")


async def test_serve_sends_binary_records_as_binary_frames(
    more_tape_path: Callable[[str], Path],
) -> None:
    tape = Tape.open(more_tape_path(UPBIT))
    recorded = {r.payload for r in tape.iter_records("recv")}
    request = [{"ticket": "t"}, {"format": "SIMPLE"}, {"type": "orderbook", "codes": ["KRW-LAMB"]}]
    async with ExchangeServer(tape, speed=float("inf")) as server:
        ws = await connect(f"{server.ws_url}/websocket/v1")
        await ws.send(orjson.dumps(request).decode())
        frame = await asyncio.wait_for(ws.recv(), TIMEOUT)
        await ws.close()
    assert isinstance(frame, bytes)  # a binary frame, not text
    assert frame in recorded
    assert orjson.loads(frame)["cd"] == "KRW-LAMB"


async def test_htx_answers_are_gzip_binary_frames(more_tape_path: Callable[[str], Path]) -> None:
    tape = Tape.open(more_tape_path(HTX))
    async with ExchangeServer(tape, speed=float("inf")) as server:
        ws = await connect(f"{server.ws_url}/swap-ws")
        await ws.send('{"sub":"market.ATOM-USD.depth.step0","id":"7"}')
        ack = await asyncio.wait_for(ws.recv(), TIMEOUT)
        push = await asyncio.wait_for(ws.recv(), TIMEOUT)
        await ws.close()
    assert isinstance(ack, bytes) and isinstance(push, bytes)
    answer = orjson.loads(gzip.decompress(ack))
    assert (answer["id"], answer["subbed"], answer["status"]) == (
        "7",
        "market.ATOM-USD.depth.step0",
        "ok",
    )
    assert orjson.loads(gzip.decompress(push))["ch"] == "market.ATOM-USD.depth.step0"


@pytest.mark.parametrize("transport", ["websockets", "picows"])
async def test_feed_records_binary_frames_binary_and_they_replay(
    transport: str, more_tape_path: Callable[[str], Path], tmp_path: Path
) -> None:
    tape = Tape.open(more_tape_path(UPBIT))
    sent = [r.payload for r in tape.iter_records("recv")]
    books: list[BookUpdate] = []
    recording = tmp_path / "upbit.jsonl.gz"
    async with ExchangeServer(tape, speed=float("inf")) as server:
        feed = Feed(
            "upbit",
            UPBIT_CODES,
            on_book=books.append,
            ws_url=server.ws_url,
            rest_url=server.rest_url,
            reconnect=False,
            backoff=FAST,
            transport=transport,
            record=str(recording),
        )
        await asyncio.wait_for(feed.run(), TIMEOUT)
    frames = list(Tape.open(recording).iter_records("recv"))
    assert frames and all(r.encoding == "base64" for r in frames)
    # Byte for byte what the server sent, in its order.
    assert [r.payload for r in frames] == sent
    assert len(books) == 145
    proof = verify(Tape.open(recording))
    assert (proof.book_updates, proof.checksums_checked, proof.failures()) == (145, 145, [])


async def test_htx_pings_are_answered_by_the_feed(more_tape_path: Callable[[str], Path]) -> None:
    tape = Tape.open(more_tape_path(HTX))
    async with ExchangeServer(tape, speed=float("inf")) as server:
        feed = Feed(
            "htx-swap",
            ("GRT-USDT", "SNX-USDT"),
            ws_url=server.ws_url,
            rest_url=server.rest_url,
            reconnect=False,
            backoff=FAST,
        )
        await asyncio.wait_for(feed.run(), TIMEOUT)
        pongs = server.profile.pongs  # type: ignore[attr-defined]
    # c2 (linear swaps) recorded 6 pings: each reached the Feed, which answered it.
    assert feed.stats.replies == 6
    # A connection may close before the last answers are read: every one read was an answer.
    assert 1 <= pongs <= 6


async def test_binary_frames_take_the_faults_that_do_not_read_them(
    more_tape_path: Callable[[str], Path],
) -> None:
    tape = Tape.open(more_tape_path(UPBIT))
    books: list[BookUpdate] = []
    plan = FaultPlan.parse("drop=p0.2,dup=p0.2,seed=3")
    async with ExchangeServer(tape, speed=float("inf"), faults=plan) as server:
        feed = Feed(
            "upbit",
            UPBIT_CODES,
            channels=("book",),
            on_book=books.append,
            ws_url=server.ws_url,
            rest_url=server.rest_url,
            reconnect=False,
            backoff=FAST,
        )
        await asyncio.wait_for(feed.run(), TIMEOUT)
        counts = dict(server.stats.faults)
    assert counts.get("drop", 0) > 0 and counts.get("dup", 0) > 0
    # Every book is whole in each message: dropped ones are missed, duplicates repeat.
    assert len(books) > 0 and feed.stats.frame_errors == 0


def test_a_utf8_frame_said_binary_is_recorded_binary(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl.gz"
    with TapeWriter(path, "upbit") as writer:
        writer.recv_frame("c1", b'{"ty":"trade"}', 1, binary=True)
        writer.recv_frame("c1", b'{"ty":"trade"}', 2)
    first, second = Tape.open(path).iter_records("recv")
    assert (first.encoding, first.payload) == ("base64", b'{"ty":"trade"}')
    assert (second.encoding, second.data) == (None, '{"ty":"trade"}')
    # Replayed, both are the same frame to the session (refused alike: it names no market).
    events = [ev for _record, ev in TapeReplayer(Tape.open(path)).events()]
    assert [str(ev.error) for ev in events] == ["missing field `cd`"] * 2
