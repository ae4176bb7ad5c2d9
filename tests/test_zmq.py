"""ZeroMQ fan-out over real loopback sockets: a real tape's books reach subscribers equal to
``lobfeed replay``'s lines, late joiners are made whole, a stalled reader never holds the
feed back, topics match exactly, and the CLI does the same against ``lobfeed serve``."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import orjson
import pytest
import zmq

from fanout_support import (
    TIMEOUT,
    as_line,
    lobfeed_command,
    publish_books,
    read_until,
    replay_book_lines,
)
from lobfeed._native import BookUpdate, Session
from lobfeed.events import StatusChanged
from lobfeed.exceptions import ConfigError, WireFormatError
from lobfeed.replay import TapeReplayer
from lobfeed.sinks import wire
from lobfeed.sinks.zmq import Subscriber, ZmqSink
from lobfeed.tape import Tape
from lobfeed.testing import ExchangeServer

TEN_SYMBOLS = "binance-coinm-10sym-2021.jsonl.gz"
LONG_TAPE = "binance-coinm-ethusd_perp-20240808.jsonl.gz"


async def _read(sub: Subscriber, count: int) -> list[bytes]:
    return [as_line(await sub.recv()) for _ in range(count)]


async def test_every_book_update_of_a_tape_arrives_in_order_as_replay_writes_it(
    tape_path: Callable[[str], Path],
) -> None:
    path = tape_path(TEN_SYMBOLS)
    want = replay_book_lines(path)
    assert len(want) == 1798
    sink = ZmqSink("zmq://127.0.0.1:0", venue="binance-coinm", deltas=True)
    await sink.start()
    books = Subscriber(sink.url, ["book"])
    deltas = Subscriber(sink.url, ["delta.binance-coinm"])
    try:
        for sub in (books, deltas):
            await sub.start()
            await asyncio.wait_for(sub.joined(), TIMEOUT)
        published = await publish_books(sink, path)
        got_books = await asyncio.wait_for(_read(books, len(want)), TIMEOUT)
        # The delta stream, assembled by the reader, gives the very same books.
        got_from_deltas = await asyncio.wait_for(_read(deltas, len(want)), TIMEOUT)
    finally:
        await books.close()
        await deltas.close()
        await sink.close()
    assert published == len(want)
    assert got_books == want
    assert got_from_deltas == want
    assert books.stats()["missed"] == deltas.stats()["missed"] == 0
    assert sink.stats()["sent"] == 2 * len(want)
    assert sink.stats()["dropped"] == 0


async def test_a_late_joiner_gets_the_current_books_then_every_update(
    tape_path: Callable[[str], Path],
) -> None:
    path = tape_path(TEN_SYMBOLS)
    want = replay_book_lines(path)
    half = len(want) // 2
    current: dict[str, bytes] = {}
    for line in want[:half]:
        current[orjson.loads(line)["symbol"]] = line
    sink = ZmqSink("zmq://127.0.0.1:0", venue="binance-coinm", deltas=True)
    await sink.start()
    late_books = Subscriber(sink.url, ["book.binance-coinm"])
    late_deltas = Subscriber(sink.url, ["delta"])

    async def join() -> None:
        for sub in (late_books, late_deltas):
            await sub.start()
            await asyncio.wait_for(sub.joined(), TIMEOUT)

    try:
        await publish_books(sink, path, pause_after=half, at_pause=join)
        got = await asyncio.wait_for(_read(late_books, len(current) + len(want) - half), TIMEOUT)
        got_deltas = await asyncio.wait_for(
            _read(late_deltas, len(current) + len(want) - half), TIMEOUT
        )
    finally:
        await late_books.close()
        await late_deltas.close()
        await sink.close()
    for lines in (got, got_deltas):
        first = lines[: len(current)]
        # One book per symbol from the snapshot, each the book as it stood at the join...
        assert sorted(first) == sorted(current.values())
        # ...then every update after the join, none lost, none twice.
        assert lines[len(current) :] == want[half:]
    assert late_books.stats()["snapshot_messages"] == len(current)
    assert late_books.stats()["missed"] == 0


async def test_a_reader_is_made_whole_again_when_the_publisher_restarts(
    tape_path: Callable[[str], Path],
) -> None:
    path = tape_path(TEN_SYMBOLS)
    want = replay_book_lines(path)
    half = len(want) // 2
    first = ZmqSink("zmq://127.0.0.1:0", venue="binance-coinm")
    await first.start()
    reader = Subscriber(first.url, ["book"])
    try:
        await reader.start()
        await asyncio.wait_for(reader.joined(), TIMEOUT)
        updates = (e for _, e in TapeReplayer(Tape.open(path)).events())
        books = (e for e in updates if isinstance(e, BookUpdate))
        for sent, update in enumerate(books, 1):
            first.on_book(update)
            if sent == half:
                break
            if sent % 32 == 0:
                await asyncio.sleep(0)
        before = await asyncio.wait_for(_read(reader, half), TIMEOUT)
        await first.close()
        # The same address, a new process: the reader's subscriptions (its hello among them)
        # reach it by themselves.
        second = ZmqSink(first.url, venue="binance-coinm")
        await second.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        reading = asyncio.ensure_future(reader.recv())
        while second.joins == 0:
            assert loop.time() < deadline, "the reader never came back"
            await asyncio.wait({reading}, timeout=0.05)
        # The same tape goes on where the first publisher stopped.
        for sent, update in enumerate(books, half + 1):
            second.on_book(update)
            if sent % 32 == 0:
                await asyncio.sleep(0)
        after = [as_line(await asyncio.wait_for(reading, TIMEOUT))]
        while after[-1] != want[-1]:
            after.append(as_line(await asyncio.wait_for(reader.recv(), TIMEOUT)))
        await second.close()
    finally:
        await reader.close()
    assert before == want[:half]
    snapshot_count = reader.stats()["snapshot_messages"]
    rest = after[snapshot_count:]
    assert rest == want[len(want) - len(rest) :]
    # The books the new publisher had sent before the reader came back arrive as its
    # snapshot: each the latest of its symbol at that point.
    skipped = want[half : len(want) - len(rest)]
    latest = {orjson.loads(line)["symbol"]: line for line in skipped}
    assert sorted(after[:snapshot_count]) == sorted(latest.values())
    assert reader.stats()["resyncs"] == 1


async def test_a_stalled_subscriber_does_not_slow_the_feed_and_its_losses_are_counted(
    tape_path: Callable[[str], Path],
) -> None:
    path = tape_path(LONG_TAPE)
    sink = ZmqSink("zmq://127.0.0.1:0", venue="binance-coinm", hwm=1000)
    await sink.start()
    # Never read while the tape runs; a queue of 10 messages on its side.
    stalled = Subscriber(sink.url, ["book"], hwm=10)
    healthy = Subscriber(sink.url, ["book"])
    received: list[dict[str, Any]] = []
    try:
        for sub in (stalled, healthy):
            await sub.start()
            await asyncio.wait_for(sub.joined(), TIMEOUT)
        total = 22886

        async def read_healthy() -> None:
            while len(received) < total:
                received.append(await healthy.recv())

        reader = asyncio.ensure_future(read_healthy())
        published = await publish_books(sink, path)
        # The feed went through the whole tape although one reader took nothing.
        assert published == total
        assert sink.stats()["sent"] == total
        assert sink.stats()["dropped"] == 0
        await asyncio.wait_for(reader, TIMEOUT)

        # Now the stalled reader drains what it was given. Beats (sent here rather than by
        # the timer, until one fits into its queue) tell it how many came after its last.
        stalled_books: list[dict[str, Any]] = []

        def accounted() -> int:
            return len(stalled_books) + stalled.stats()["missed"]

        async def drain() -> None:
            while accounted() < total:
                stalled_books.append(await stalled.recv())

        draining = asyncio.ensure_future(drain())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        # A beat can account for the last losses while the drain waits for a message that
        # will never come: done once everything is accounted for, whoever accounted for it.
        while accounted() < total and not draining.done():
            assert loop.time() < deadline, f"only {accounted()} of {total} accounted for"
            sink.heartbeat()
            await asyncio.wait({draining}, timeout=0.05)
        draining.cancel()
        await asyncio.gather(draining, return_exceptions=True)
        assert accounted() == total
    finally:
        await stalled.close()
        await healthy.close()
        await sink.close()
    # The healthy reader got every update in order.
    assert [m["seq"] for m in received] == sorted(m["seq"] for m in received)
    assert len(received) == total and healthy.stats()["missed"] == 0
    # The stalled one lost most, and counted exactly what it lost up to its last message.
    assert len(stalled_books) < total / 2
    assert stalled.stats()["missed"] == total - len(stalled_books)
    assert [m["n"] for m in stalled_books] == sorted(m["n"] for m in stalled_books)


def _publish_crafted_books(sink: ZmqSink, symbols: list[str]) -> None:
    """Real Binance book updates (depth snapshot, then a diff) for names of our choosing, each
    handed to ``sink`` as it is made (a book view is only valid until the next update)."""
    session = Session("binance")
    for symbol in symbols:
        for update_id, ts in ((101, 1), (102, 3)):
            frame = orjson.dumps(
                {
                    "stream": f"{symbol.lower()}@depth@100ms",
                    "data": {
                        "e": "depthUpdate",
                        "E": 1_700_000_000_000,
                        "s": symbol,
                        "U": update_id,
                        "u": update_id,
                        "b": [[f"10.{update_id}", "1.5"]],
                        "a": [],
                    },
                }
            )
            events = session.receive(frame, ts)
            if update_id == 101:
                body = b'{"lastUpdateId":100,"bids":[["9.0","1.0"]],"asks":[["11.0","2.0"]]}'
                events += session.receive_snapshot(symbol, body, 2)
            for event in events:
                if isinstance(event, BookUpdate):
                    sink.on_book(event)


async def test_topics_match_exactly_never_by_prefix() -> None:
    sink = ZmqSink("zmq://127.0.0.1:0", venue="binance")
    await sink.start()
    btcusd = Subscriber(sink.url, ["book.binance.BTCUSD", "status.binance.BTCUSD"])
    everything = Subscriber(sink.url, ["*"])
    # A venue name that starts another's: binance must not receive binance-usdm.
    other_venue = Subscriber(sink.url, ["status.binance-usdm"])
    try:
        for sub in (btcusd, everything, other_venue):
            await sub.start()
            await asyncio.wait_for(sub.joined(), TIMEOUT)
        _publish_crafted_books(sink, ["BTCUSDT", "BTCUSD"])
        for symbol in ("BTCUSDT", "BTCUSD"):
            sink.on_status(StatusChanged("binance", symbol, "syncing", "live", "synced", 5))
        sink.on_status(StatusChanged("binance-usdm", "BTCUSD", "syncing", "live", "synced", 6))
        got = [await asyncio.wait_for(btcusd.recv(), TIMEOUT) for _ in range(3)]
        everything_got = [await asyncio.wait_for(everything.recv(), TIMEOUT) for _ in range(7)]
        usdm = await asyncio.wait_for(other_venue.recv(), TIMEOUT)
    finally:
        for sub in (btcusd, everything, other_venue):
            await sub.close()
        await sink.close()
    assert [(m["type"], m["venue"], m["symbol"]) for m in got] == [
        ("book", "binance", "BTCUSD"),
        ("book", "binance", "BTCUSD"),
        ("status", "binance", "BTCUSD"),
    ]
    assert [(m["type"], m["symbol"]) for m in everything_got] == [
        ("book", "BTCUSDT"),
        ("book", "BTCUSDT"),
        ("book", "BTCUSD"),
        ("book", "BTCUSD"),
        ("status", "BTCUSDT"),
        ("status", "BTCUSD"),
        ("status", "BTCUSD"),
    ]
    assert (usdm["venue"], usdm["symbol"]) == ("binance-usdm", "BTCUSD")
    assert got[0]["bids"] == [["10.101", "1.5"], ["9.0", "1.0"]]


def test_topic_names_escape_what_would_split_them() -> None:
    assert wire.zmq_topic("book", "kraken", "XBT/USD") == b"book.kraken.XBT/USD."
    assert wire.zmq_topic("book", "x", "A.B") == b"book.x.A%2EB."
    assert wire.nats_subject("lobfeed", "trade", "x", "a b*>") == "lobfeed.trade.x.a%20b%2A%3E"
    assert wire.zmq_topic("status", "binance", None) == b"status.binance.-."
    assert wire.token("-") == "%2D"
    for name in ("A.B", "a b*>", "%41", "-", "tTESTBTC:TESTUSD", "Ä"):
        assert wire.untoken(wire.token(name)) == name
    assert wire.Filter.parse("book.binance.BTCUSD").zmq_prefix() == b"book.binance.BTCUSD."
    assert wire.Filter.parse("trades.okx").zmq_prefix() == b"trade.okx."
    assert wire.Filter.parse("*").zmq_prefix() == b""
    with pytest.raises(ConfigError, match="unknown channel 'books'"):
        wire.Filter.parse("books.binance")
    with pytest.raises(ConfigError, match="empty venue"):
        wire.Filter.parse("book..BTCUSD")


class _NextVersionSink(ZmqSink):
    """A publisher that writes format ``version`` (one this reader does not know, at first)."""

    version = wire.VERSION + 1

    def _head(self, *args: Any) -> dict[str, Any]:
        message = super()._head(*args)
        message["v"] = self.version
        return message


async def test_every_message_carries_the_format_version_and_others_are_refused(
    tape_path: Callable[[str], Path],
) -> None:
    # The raw bytes on the socket, read with a plain SUB socket (no beats in the way).
    sink = ZmqSink("zmq://127.0.0.1:0", venue="binance", heartbeat=3600)
    await sink.start()
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    raw = ctx.socket(zmq.SUB)
    raw.setsockopt(zmq.SUBSCRIBE, b"")
    raw.setsockopt(zmq.SUBSCRIBE, b"hello.raw.")
    raw.connect(sink.url.replace("zmq://", "tcp://"))
    loop = asyncio.get_running_loop()
    try:
        topic, payload = await loop.run_in_executor(None, raw.recv_multipart)
        assert topic == b"hello.raw."  # the publisher has our subscriptions
        await publish_books(sink, tape_path("binance-spot-4sym-2021.jsonl.gz"))
        frames = [await loop.run_in_executor(None, raw.recv_multipart) for _ in range(176)]
    finally:
        raw.close(linger=0)
        ctx.term()
        await sink.close()
    keys = {"v", "type", "venue", "symbol", "seq", "exchange_ts_ns", "ts_ns", "pub", "n"}
    for topic, payload in frames:
        message = msgpack.unpackb(payload)
        assert message["v"] == wire.VERSION == 1
        assert keys <= message.keys()
        assert topic == f"book.binance.{message['symbol']}.".encode()
        # (None for a book made by a REST snapshot: the venue stamps no time on it.)
        assert message["exchange_ts_ns"] is None or message["exchange_ts_ns"] > 16 * 10**17
        assert message["ts_ns"] > 16 * 10**17
    assert sum(msgpack.unpackb(p)["exchange_ts_ns"] is None for _, p in frames) == 4

    with pytest.raises(WireFormatError, match="version 2; this lobfeed reads version 1"):
        wire.decode(msgpack.packb({"v": 2, "type": "book"}))
    with pytest.raises(WireFormatError, match="not a lobfeed fan-out message"):
        wire.decode(b"\xc1")

    # A reader counts messages of an unknown version as unreadable and goes on.
    future = _NextVersionSink("zmq://127.0.0.1:0", venue="binance")
    await future.start()
    reader = Subscriber(future.url, ["status"])
    try:
        await reader.start()
        await asyncio.wait_for(reader.joined(), TIMEOUT)
        future.on_status(StatusChanged("binance", "BTCUSDT", "syncing", "live", "x", 1))
        future.version = wire.VERSION
        future.on_status(StatusChanged("binance", "BTCUSDT", "live", "stale", "y", 2))
        message = await asyncio.wait_for(reader.recv(), TIMEOUT)
    finally:
        await reader.close()
        await future.close()
    assert message["new"] == "stale"
    assert reader.stats()["unreadable"] == 1


def test_bad_addresses_are_refused_with_what_is_allowed() -> None:
    with pytest.raises(ConfigError, match=r"write zmq://HOST:PORT"):
        ZmqSink("tcp://127.0.0.1:5555")
    with pytest.raises(ConfigError, match=r"needs the publisher's port"):
        Subscriber("zmq://127.0.0.1:0")
    with pytest.raises(ConfigError, match=r"hwm 0"):
        ZmqSink("zmq://127.0.0.1:0", hwm=0)


async def test_publish_a_live_feed_and_sub_joining_late_prints_replay_lines(
    tape_path: Callable[[str], Path],
) -> None:
    """``lobfeed publish`` on a Feed against the local exchange, ``lobfeed sub --json``
    started while it runs: its lines are a stretch of ``lobfeed replay``'s, beginning with
    the book as it stood (the receive times are the feed's own)."""
    path = tape_path("binance-ethusdt-20240808.jsonl.gz")
    want = [orjson.loads(line) for line in replay_book_lines(path)]
    for line in want:
        del line["ts_ns"]
    count = 300
    async with ExchangeServer(Tape.open(path), speed=10) as server:
        publisher = await asyncio.create_subprocess_exec(
            *lobfeed_command(
                "publish",
                "binance",
                "ETHUSDT",
                "--to",
                "zmq://127.0.0.1:0",
                "--ws-url",
                server.ws_url,
                "--rest-url",
                server.rest_url,
                "--no-reconnect",
            ),
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            assert publisher.stderr is not None
            line = await read_until(publisher.stderr, "publishing")
            found = re.search(r"on (zmq://\S+)", line)
            assert found is not None
            sub = await asyncio.create_subprocess_exec(
                *lobfeed_command(
                    "sub",
                    found.group(1),
                    "--topic",
                    "book.binance.ETHUSDT",
                    "--json",
                    "--count",
                    str(count),
                ),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(sub.communicate(), TIMEOUT)
            assert sub.returncode == 0, err.decode()
        finally:
            if publisher.returncode is None:
                publisher.terminate()
            await asyncio.wait_for(publisher.wait(), TIMEOUT)
    lines = [orjson.loads(raw) for raw in out.splitlines()]
    assert len(lines) == count
    assert set(lines[0]) == {"venue", "symbol", "seq", "ts_ns", "bids", "asks"}
    for line in lines:
        del line["ts_ns"]
    start = next(i for i, line in enumerate(want) if line["seq"] == lines[0]["seq"])
    assert lines == want[start : start + count]
    assert b"missed 0" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["publish", "binance", "X", "--to", "tcp://h:1"], "write zmq://HOST:PORT or nats://"),
        (["publish", "nosuch", "X", "--to", "zmq://127.0.0.1:0"], "unknown venue 'nosuch'"),
        (["publish", "binance", "X", "--to", "zmq://127.0.0.1:0", "--shard", "2/2"], "I must"),
        (["publish", "binance", "X", "--to", "zmq://127.0.0.1:0", "--channels", "x"], "known"),
        (["sub", "zmq://127.0.0.1:5", "--topic", "books"], "unknown channel 'books'"),
        (["sub", "zmq://127.0.0.1:5", "--durable", "d"], "--durable is for nats://"),
    ],
)
async def test_usage_errors_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *lobfeed_command(*args), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 2
    assert message in err.decode()
    assert len(err.decode().strip().splitlines()) == 1
    assert b"Traceback" not in err
