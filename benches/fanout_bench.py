"""Messages per second and publish-to-subscriber latency of the fan-out, ZeroMQ and NATS.

    PYTHONPATH=python python benches/fanout_bench.py [TAPE] [--rate 1000] [--seconds 5]
                                                     [--transports zmq,nats] [--json]

The publisher (this process) runs a real tape's book updates through the sink, top 25 levels
per message, exactly as a feed would hand them over; the subscriber is another process (its
own interpreter, so the two never share a GIL) reading with ``lobfeed.sinks.zmq.Subscriber``
or ``lobfeed.sinks.nats.Subscriber`` (a durable-less pull consumer). Both read the same clock
(``time.perf_counter_ns``, CLOCK_MONOTONIC on Linux); the subscriber reports when each message
``n`` arrived, the publisher when it handed message ``n`` to the sink.

- **throughput**: every book update of the tape as fast as the publisher goes; ``msgs_per_s``
  is the count over the time from the first hand-over to the last arrival (the reader must
  keep up for it to count), ``sink_us`` the publisher's own cost per message (encode and
  send; for NATS, queue: the sending task's share shows in ``msgs_per_s``).
- **latency**: ``--rate`` messages per second for ``--seconds``, each due at ``i / rate``;
  latency is arrival minus hand-over, p50/p99/max over every message.

NATS runs against a ``nats-server`` started here (JetStream, file store in a temporary
directory): its latency includes the write to the stream and the pull by the consumer.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from lobfeed._native import BookUpdate
from lobfeed.replay import TapeReplayer
from lobfeed.sinks.base import Sink
from lobfeed.tape import Tape

DEFAULT_TAPE = (
    Path(__file__).resolve().parents[2]
    / "shared/data/tapes/binance-coinm-ethusd_perp-20240808.jsonl.gz"
)
TIMEOUT = 300


# -- the subscriber process ------------------------------------------------------------


async def _subscribe(url: str, count: int) -> None:
    """Reads ``count`` book messages and prints when each arrived, by its ``n``."""
    reader: Any
    if url.startswith("zmq://"):
        from lobfeed.sinks.zmq import Subscriber as ZmqSubscriber

        reader = ZmqSubscriber(url, ["book"])
        await reader.start()
        await reader.joined()
    else:
        from lobfeed.sinks.nats import Subscriber as NatsSubscriber

        reader = NatsSubscriber(url, ["book"], deliver="new", batch=512)
        await reader.start()
    print("ready", flush=True)
    arrived = [0] * (count + 1)
    clock = time.perf_counter_ns
    for _ in range(count):
        message = await reader.recv()
        arrived[message["n"]] = clock()
    await reader.close()
    sys.stdout.buffer.write(orjson.dumps({"arrived": arrived[1:], **reader.stats()}) + b"\n")


# -- the publisher ----------------------------------------------------------------------


def _updates(tape: Path) -> int:
    return sum(isinstance(ev, BookUpdate) for _, ev in TapeReplayer(Tape.open(tape)).events())


async def _publish(
    sink: Sink, tape: Path, limit: int, rate: float | None
) -> tuple[list[int], int, int]:
    """Hands the tape's first ``limit`` book updates to the sink (paced when ``rate``);
    returns the hand-over times, the ns spent in the sink, and the wall time taken."""
    sent: list[int] = []
    in_sink = 0
    clock = time.perf_counter_ns
    started = clock()
    for _record, event in TapeReplayer(Tape.open(tape)).events():
        if not isinstance(event, BookUpdate):
            continue
        if rate is not None:
            due = started + int(len(sent) * 1e9 / rate)
            ahead = due - clock()
            if ahead > 0:
                await asyncio.sleep(ahead / 1e9)
        before = clock()
        sink.on_book(event)
        after = clock()
        in_sink += after - before
        sent.append(after)
        if len(sent) == limit:
            break
        if rate is None and len(sent) % 64 == 0:
            await asyncio.sleep(0)  # let the sink's own tasks and sockets run
    return sent, in_sink, clock() - started


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _run(
    transport: str,
    make_sink: Callable[[], Sink],
    url_of: Callable[[Sink], str],
    tape: Path,
    count: int,
    rate: float | None,
) -> dict[str, Any]:
    sink = make_sink()
    await sink.start()
    reader = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--subscribe",
        url_of(sink),
        "--count",
        str(count),
        stdout=asyncio.subprocess.PIPE,
    )
    assert reader.stdout is not None
    ready = await asyncio.wait_for(reader.stdout.readline(), TIMEOUT)
    assert ready.strip() == b"ready", ready
    sent, in_sink, wall = await _publish(sink, tape, count, rate)
    out, _ = await asyncio.wait_for(reader.communicate(), TIMEOUT)
    await sink.close()
    result = orjson.loads(out)
    arrived: list[int] = result.pop("arrived")
    latencies = [(a - s) / 1000 for a, s in zip(arrived, sent, strict=True)]
    return {
        "transport": transport,
        "messages": count,
        "msgs_per_s": round(count / ((arrived[-1] - sent[0]) / 1e9)),
        "publish_msgs_per_s": round(count / (wall / 1e9)),
        "sink_us": round(in_sink / count / 1000, 2),
        "p50_us": round(_percentile(latencies, 0.50), 1),
        "p99_us": round(_percentile(latencies, 0.99), 1),
        "max_us": round(max(latencies), 1),
        "reader": result,
        "sink": sink.stats(),
    }


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    from lobfeed.sinks.nats import NatsSink
    from lobfeed.sinks.zmq import ZmqSink
    from lobfeed.testing.nats_server import NatsServer

    tape = Path(args.tape)
    venue = Tape.open(tape).header.venue
    total = _updates(tape)
    latency_count = min(total, int(args.rate * args.seconds))
    results: list[dict[str, Any]] = []
    for transport in args.transports.split(","):
        for mode, count, rate in (
            ("throughput", total, None),
            ("latency", latency_count, args.rate),
        ):
            # A new NATS server each run: the same tape again would be deduplicated away.
            with NatsServer() as server:
                make_sink: Callable[[], Sink]
                if transport == "zmq":
                    make_sink = lambda: ZmqSink("zmq://127.0.0.1:0", venue=venue)  # noqa: E731
                else:
                    make_sink = lambda: NatsSink(server.url, venue=venue)  # noqa: E731
                result = await _run(
                    transport, make_sink, lambda sink: getattr(sink, "url", ""), tape, count, rate
                )
            result["mode"] = mode
            result["rate"] = rate
            results.append(result)
            if not args.json:
                _show(result)
    return results


def _show(r: dict[str, Any]) -> None:
    rate = "max" if r["rate"] is None else f"{r['rate']:g}/s"
    print(
        f"{r['transport']:<5} {r['mode']:<10} rate {rate:<7} {r['messages']:>6} msgs  "
        f"{r['msgs_per_s']:>7} msgs/s end to end  (publisher {r['publish_msgs_per_s']}/s, "
        f"sink {r['sink_us']} us/msg)  latency p50 {r['p50_us']} us  p99 {r['p99_us']} us  "
        f"max {r['max_us']} us  missed {r['reader'].get('missed', 0)}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tape", nargs="?", default=str(DEFAULT_TAPE), help="a lobfeed tape")
    parser.add_argument("--rate", type=float, default=1000.0, help="messages/s for latency")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the latency run")
    parser.add_argument("--transports", default="zmq,nats", help="comma-separated: zmq,nats")
    parser.add_argument("--json", action="store_true", help="one JSON object for all results")
    parser.add_argument("--subscribe", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.subscribe:
        asyncio.run(_subscribe(args.subscribe, args.count))
        return
    if not args.json:
        print(
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}, load {os.getloadavg()[0]:.2f}; git "
            + subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
            ).stdout.strip()
        )
    results = asyncio.run(main_async(args))
    if args.json:
        print(orjson.dumps(results).decode())


if __name__ == "__main__":
    main()
