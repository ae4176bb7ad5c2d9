"""NATS JetStream fan-out against a real ``nats-server`` (started here on a free loopback port,
JetStream on, a temporary store): a real tape's books reach durable consumers that stop and
start again in the middle, late readers get the current books, duplicates are stored once, a
stalled reader or server never holds the feed back, and ``--shard`` splits symbols over
publisher processes that readers see as one subject space."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import nats
import orjson
import pytest

from fanout_support import TIMEOUT, as_line, lobfeed_command, publish_books, replay_book_lines
from lobfeed.exceptions import ConfigError, ConnectError
from lobfeed.fanout import shard_symbols
from lobfeed.sinks.nats import DEFAULT_STREAM, NatsSink, Subscriber
from lobfeed.testing.nats_server import NatsServer

TEN_SYMBOLS = "binance-coinm-10sym-2021.jsonl.gz"
VENUE = "binance-coinm"


@pytest.fixture
def nats_server() -> Iterator[NatsServer]:
    """A nats-server of our own; the test fails (never skips) when it cannot start."""
    server = NatsServer()
    try:
        server.start()
    except (OSError, RuntimeError) as exc:
        pytest.fail(f"cannot start nats-server: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.__exit__(None, None, None)


async def _read(sub: Subscriber, count: int) -> list[bytes]:
    return [as_line(await sub.recv(timeout=TIMEOUT)) for _ in range(count)]


async def _consumer_state(url: str, name: str) -> tuple[int, int]:
    """What the server holds for a consumer: messages not yet delivered, and delivered but
    not acknowledged."""
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().consumer_info(DEFAULT_STREAM, name)
    finally:
        await nc.close()
    return info.num_pending, info.num_ack_pending


async def test_a_durable_consumer_restarted_in_the_middle_gets_every_update_once(
    tape_path: Callable[[str], Path], nats_server: NatsServer
) -> None:
    path = tape_path(TEN_SYMBOLS)
    want = replay_book_lines(path)
    half = len(want) // 2
    first_run = half // 2
    url = nats_server.url
    sink = NatsSink(url, venue=VENUE)
    await sink.start()
    got: list[bytes] = []

    async def read_some_then_stop() -> None:
        # A reader that starts, takes part of what is there, and stops.
        async with Subscriber(url, ["book"], durable="strategy", deliver="all") as sub:
            got.extend(await _read(sub, first_run))

    try:
        await publish_books(sink, path, pause_after=half, at_pause=read_some_then_stop)
    finally:
        await sink.close()
    assert sink.stats()["acked"] == len(want), str(sink.stats())
    # Started again under the same name: it goes on where it stopped.
    async with Subscriber(url, ["book"], durable="strategy", deliver="all") as sub:
        got.extend(await _read(sub, len(want) - first_run))
    assert got == want
    # Nothing left over, nothing handed out twice or left unacknowledged.
    assert await _consumer_state(url, "strategy") == (0, 0)


async def test_a_late_reader_gets_the_current_books_then_every_update(
    tape_path: Callable[[str], Path], nats_server: NatsServer
) -> None:
    path = tape_path(TEN_SYMBOLS)
    want = replay_book_lines(path)
    half = len(want) // 2
    current: dict[str, bytes] = {}
    for line in want[:half]:
        current[orjson.loads(line)["symbol"]] = line
    sink = NatsSink(nats_server.url, venue=VENUE)
    await sink.start()
    late = Subscriber(nats_server.url, ["book.binance-coinm"], deliver="last")
    snapshot: list[bytes] = []

    async def join() -> None:
        # What was published so far must be stored before the reader starts.
        await sink.flush()
        await late.start()
        snapshot.extend(await _read(late, len(current)))

    try:
        await publish_books(sink, path, pause_after=half, at_pause=join)
        rest = await _read(late, len(want) - half)
    finally:
        await late.close()
        await sink.close()
    assert sorted(snapshot) == sorted(current.values())
    assert rest == want[half:]


async def test_the_same_updates_from_two_publishers_are_stored_once(
    tape_path: Callable[[str], Path], nats_server: NatsServer
) -> None:
    """Deduplication on (venue, symbol, seq): a second publisher of the same venue stream (a
    standby, or a restart) adds nothing. The tape has two different Binance updates that end
    at the same id; both are kept."""
    path = tape_path(TEN_SYMBOLS)
    want = replay_book_lines(path)
    for _ in range(2):
        sink = NatsSink(nats_server.url, venue=VENUE)
        await sink.start()
        await publish_books(sink, path)
        await sink.close()
    assert sink.stats()["duplicates"] == len(want)
    assert sink.stats()["acked"] == 0
    nc = await nats.connect(nats_server.url)
    try:
        info = await nc.jetstream().stream_info(DEFAULT_STREAM)
    finally:
        await nc.close()
    assert info.state.messages == len(want)
    async with Subscriber(nats_server.url, ["book"], deliver="all") as sub:
        assert await _read(sub, len(want)) == want


async def test_a_stalled_reader_or_server_never_holds_the_feed_back(
    tape_path: Callable[[str], Path], nats_server: NatsServer
) -> None:
    path = tape_path(TEN_SYMBOLS)
    total = len(replay_book_lines(path))
    url = nats_server.url
    # A durable reader that never reads: the server keeps its place and counts what waits.
    async with Subscriber(url, ["*"], durable="asleep", deliver="all"):
        pass
    sink = NatsSink(url, venue=VENUE)
    await sink.start()
    assert await publish_books(sink, path) == total
    await sink.close()
    assert sink.stats()["dropped"] == 0
    assert await _consumer_state(url, "asleep") == (total, 0)

    # A server that stops answering: the feed still goes through the whole tape; the sink's
    # queue of 100 drops the oldest and counts them.
    sink = NatsSink(url, venue=VENUE, queue=100, dedup_window=1.0, max_age=60.0)
    await sink.start()
    assert sink._nc is not None
    await sink._nc.flush()
    assert nats_server.proc is not None
    os.kill(nats_server.proc.pid, signal.SIGSTOP)
    try:
        published = 0
        for _ in range(3):
            published += await publish_books(sink, path)
        assert published == 3 * total
    finally:
        os.kill(nats_server.proc.pid, signal.SIGCONT)
    await sink.close()
    stats = sink.stats()
    assert stats["dropped"] > 0
    assert stats["acked"] + stats["duplicates"] + stats["dropped"] == 3 * total


async def test_shards_split_the_symbols_and_readers_see_one_subject_space(
    tape_path: Callable[[str], Path], nats_server: NatsServer
) -> None:
    path = tape_path(TEN_SYMBOLS)
    want = replay_book_lines(path)
    symbols = sorted({orjson.loads(line)["symbol"] for line in want})
    assert len(symbols) == 10
    publishers = [
        await asyncio.create_subprocess_exec(
            *lobfeed_command(
                "publish",
                VENUE,
                *symbols,
                "--replay",
                str(path),
                "--channels",
                "book",
                "--to",
                nats_server.url,
                "--shard",
                f"{i}/2",
            ),
            stderr=asyncio.subprocess.PIPE,
        )
        for i in range(2)
    ]
    for proc in publishers:
        _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
        assert proc.returncode == 0, err.decode()
    async with Subscriber(nats_server.url, ["book"], deliver="all") as sub:
        messages = [await sub.recv(timeout=TIMEOUT) for _ in range(len(want))]
    by_symbol: dict[str, list[bytes]] = {}
    publisher_of: dict[str, set[int]] = {}
    for message in messages:
        by_symbol.setdefault(message["symbol"], []).append(as_line(message))
        publisher_of.setdefault(message["symbol"], set()).add(message["pub"])
    for symbol in symbols:
        assert by_symbol[symbol] == [
            line for line in want if orjson.loads(line)["symbol"] == symbol
        ]
    # Symbol k of the sorted list came from shard k % 2, one process each.
    shard_pubs = [{next(iter(publisher_of[s])) for s in symbols[i::2]} for i in range(2)]
    assert all(len(publisher_of[s]) == 1 for s in symbols)
    assert len(shard_pubs[0]) == len(shard_pubs[1]) == 1
    assert shard_pubs[0] != shard_pubs[1]
    assert shard_symbols(symbols, "1/2") == symbols[1::2]
    assert shard_symbols(["b", "a", "c", "a"], "0/2") == ["a", "c"]
    with pytest.raises(ConfigError, match="write I/N"):
        shard_symbols(symbols, "1-2")


async def test_lobfeed_sub_with_a_durable_name_goes_on_where_it_stopped(
    tape_path: Callable[[str], Path], nats_server: NatsServer
) -> None:
    path = tape_path("binance-spot-4sym-2021.jsonl.gz")
    want = replay_book_lines(path)
    sink = NatsSink(nats_server.url, venue="binance")
    await sink.start()
    await publish_books(sink, path)
    await sink.close()
    out = b""
    for count in (100, len(want) - 100):
        proc = await asyncio.create_subprocess_exec(
            *lobfeed_command(
                "sub",
                nats_server.url,
                "--topic",
                "book.binance",
                "--json",
                "--durable",
                "cli",
                "--from",
                "all",
                "--count",
                str(count),
            ),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        chunk, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
        assert proc.returncode == 0, err.decode()
        out += chunk
    assert out.splitlines() == want
    assert await _consumer_state(nats_server.url, "cli") == (0, 0)


async def test_unreachable_server_and_bad_names_are_errors_that_say_so(
    nats_server: NatsServer,
) -> None:
    url = nats_server.url
    nats_server.stop()
    with pytest.raises(ConnectError, match="cannot reach NATS"):
        await NatsSink(url, venue="binance", connect_timeout=1.0).start()
    with pytest.raises(ConfigError, match="write nats://HOST:PORT"):
        NatsSink("zmq://127.0.0.1:1")
    with pytest.raises(ConfigError, match=r"durable consumer name 'a\.b'"):
        Subscriber("nats://127.0.0.1:1", durable="a.b")
    with pytest.raises(ConfigError, match="policy 'drop-all'"):
        NatsSink("nats://127.0.0.1:1", policy="drop-all")
    with pytest.raises(ConfigError, match="deliver 'first'"):
        Subscriber("nats://127.0.0.1:1", deliver="first")
