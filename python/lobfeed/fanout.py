"""``lobfeed publish`` and ``lobfeed sub``: a feed's books, trades and events fanned out over
ZeroMQ or NATS JetStream, and a reader that prints them (see ``docs/fanout.md``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Iterable, Sequence
from typing import IO, Any

import orjson

from lobfeed.argtypes import positive_int, positive_seconds, speed
from lobfeed.exceptions import LobfeedError
from lobfeed.sinks import wire
from lobfeed.sinks.base import Sink, feed_callbacks

FEED_CHANNELS = ("book", "trades", "candles", "quotes")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "publish",
        help="run a feed (or replay a tape) and publish it over ZeroMQ or NATS JetStream",
        description="Publishes books (top --depth levels per update), trades, candles, quotes "
        "and the sync/status events of one venue's symbols. zmq://HOST:PORT binds PORT "
        "(updates) and PORT+1 (snapshots for late joiners); nats://HOST:PORT publishes to "
        "JetStream subjects lobfeed.<channel>.<venue>.<symbol>.",
    )
    p.add_argument("venue", help="the venue, as lobfeed.venues.SPECS names it (binance, okx...)")
    p.add_argument("symbols", nargs="+", metavar="SYMBOL", help="symbols as the venue spells them")
    p.add_argument(
        "--to",
        required=True,
        metavar="URL",
        help="zmq://HOST:PORT (PORT 0: pick free ports and print them) or nats://HOST:PORT",
    )
    p.add_argument(
        "--depth",
        type=positive_int,
        default=wire.DEFAULT_DEPTH,
        help="levels per side in each book",
    )
    p.add_argument(
        "--channels",
        default="book,trades",
        help=f"comma-separated feed channels among {','.join(FEED_CHANNELS)} (sync and "
        "status events are always published)",
    )
    p.add_argument(
        "--deltas",
        action="store_true",
        help="also publish each book's changes (delta.<venue>.<symbol>: the levels of the top "
        "--depth that changed, size 0 for removed)",
    )
    p.add_argument("--ws-url", help="websocket URL of another server (a local exchange)")
    p.add_argument("--rest-url", help="REST URL of another server (a local exchange)")
    p.add_argument(
        "--shard",
        metavar="I/N",
        help="publish only shard I of N: symbol k of the sorted list goes to shard k %% N",
    )
    p.add_argument(
        "--replay",
        metavar="TAPE",
        help="publish a tape's events, in-process, instead of a live feed",
    )
    p.add_argument(
        "--speed",
        type=speed,
        default=float("inf"),
        help="with --replay: time scale of the tape, or 'max' (the default)",
    )
    p.add_argument("--duration", type=positive_seconds, help="stop after this many seconds")
    p.add_argument(
        "--no-reconnect",
        action="store_true",
        help="end when the venue closes the connection (a local exchange's tape ran out)",
    )
    p.add_argument(
        "--hwm",
        type=positive_int,
        help="zmq: messages queued per subscriber before that subscriber loses messages "
        "(default 100000); nats: the send queue's size (default 100000)",
    )
    p.add_argument(
        "--policy",
        choices=("drop-oldest", "drop-newest"),
        default="drop-oldest",
        help="nats: which message a full send queue drops",
    )
    p.add_argument("--stream", default="LOBFEED", help="nats: the JetStream stream's name")
    p.add_argument(
        "--max-age", type=float, default=24 * 3600.0, help="nats: seconds a message is kept"
    )
    p.add_argument(
        "--max-bytes", type=int, default=1 << 30, help="nats: bytes the stream keeps at most"
    )
    p.add_argument(
        "--dedup-window",
        type=float,
        default=120.0,
        help="nats: seconds within which a message id is stored once",
    )
    p.set_defaults(run=run_publish)

    p = sub.add_parser(
        "sub",
        help="read what lobfeed publish sends and print it",
        description="Prints one line per message. With --json a book is exactly a `lobfeed "
        'replay` line ({"venue","symbol","seq","ts_ns","bids","asks"}); trades, candles and '
        'events are JSON lines with a "type".',
    )
    p.add_argument("url", help="zmq://HOST:PORT or nats://HOST:PORT of the publisher")
    p.add_argument(
        "--topic",
        action="append",
        metavar="T",
        help="CHANNEL[.VENUE[.SYMBOL]] to read (book, delta, trade, candle, quote, event, "
        "status; '*' all); repeat for more; default all",
    )
    p.add_argument("--json", action="store_true", help="JSON lines (books as lobfeed replay)")
    p.add_argument("--count", type=positive_int, help="exit after printing this many messages")
    p.add_argument("--duration", type=positive_seconds, help="exit after this many seconds")
    p.add_argument(
        "--no-snapshot",
        action="store_true",
        help="zmq: do not ask for the current books; start with the next update",
    )
    p.add_argument(
        "--durable",
        metavar="NAME",
        help="nats: a durable consumer; run again with the same name to go on where it stopped",
    )
    p.add_argument(
        "--from",
        dest="deliver",
        choices=("all", "last", "new"),
        default="last",
        help="nats: where a new consumer starts: all the stream holds, the last message of "
        "each subject (the current books; default), or new messages only",
    )
    p.add_argument("--stream", default="LOBFEED", help="nats: the JetStream stream's name")
    p.set_defaults(run=run_sub)


def shard_symbols(symbols: Iterable[str], spec: str) -> list[str]:
    """The symbols of shard ``I/N``: symbol ``k`` of the sorted, de-duplicated list goes to
    shard ``k % N``. Raises ``ConfigError`` for a spec that is not ``I/N`` with 0 <= I < N."""
    from lobfeed.exceptions import ConfigError

    index_text, _, count_text = spec.partition("/")
    try:
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise ConfigError(f"shard {spec!r}: write I/N, e.g. 0/2 (shards 0 to N-1)") from None
    if count < 1 or not 0 <= index < count:
        raise ConfigError(f"shard {spec!r}: I must be 0 to N-1 and N at least 1")
    ordered = sorted(set(symbols))
    return [s for k, s in enumerate(ordered) if k % count == index]


def make_sink(args: argparse.Namespace, venue: str) -> Sink:
    """The sink ``--to`` names, with the options that apply to it."""
    from lobfeed.exceptions import ConfigError

    url: str = args.to
    if url.startswith("zmq://"):
        from lobfeed.sinks.zmq import DEFAULT_HWM, ZmqSink

        return ZmqSink(
            url,
            venue=venue,
            depth=args.depth,
            deltas=args.deltas,
            hwm=args.hwm if args.hwm is not None else DEFAULT_HWM,
        )
    if url.startswith(("nats://", "tls://")):
        from lobfeed.sinks.nats import DEFAULT_QUEUE, NatsSink

        return NatsSink(
            url,
            venue=venue,
            depth=args.depth,
            deltas=args.deltas,
            stream=args.stream,
            max_age=args.max_age,
            max_bytes=args.max_bytes,
            dedup_window=args.dedup_window,
            queue=args.hwm if args.hwm is not None else DEFAULT_QUEUE,
            policy=args.policy,
        )
    raise ConfigError(f"--to {url!r}: write zmq://HOST:PORT or nats://HOST:PORT")


def run_publish(args: argparse.Namespace) -> int:
    from lobfeed.exceptions import ConfigError
    from lobfeed.venues import SPECS

    channels = tuple(c for c in args.channels.split(",") if c)
    unknown = sorted(set(channels) - set(FEED_CHANNELS))
    if unknown or not channels:
        raise ConfigError(
            f"--channels {args.channels!r}: known channels are {','.join(FEED_CHANNELS)}"
        )
    if args.venue not in SPECS:
        raise ConfigError(f"unknown venue {args.venue!r}; known: {', '.join(sorted(SPECS))}")
    symbols = list(args.symbols)
    if args.shard is not None:
        symbols = shard_symbols(symbols, args.shard)
        if not symbols:
            raise ConfigError(
                f"shard {args.shard} has no symbol: {len(set(args.symbols))} symbols "
                "spread over more shards"
            )
    sink = make_sink(args, args.venue)
    tape = None
    if args.replay is not None:
        from lobfeed.tape import Tape

        try:
            tape = Tape.open(args.replay)
        except (OSError, LobfeedError) as exc:
            raise ConfigError(f"--replay {args.replay}: {exc}") from None
        if tape.header.venue != args.venue:
            raise ConfigError(f"{args.replay} is a {tape.header.venue} tape, not {args.venue}")
    # Mistakes (ConfigError, exit 2) and failures (LobfeedError, exit 1) are printed as one
    # line by cli.main.
    return asyncio.run(_publish(args, sink, symbols, channels, tape))


async def _publish(
    args: argparse.Namespace,
    sink: Sink,
    symbols: list[str],
    channels: tuple[str, ...],
    tape: Any,
) -> int:
    await sink.start()
    url = getattr(sink, "url", args.to)
    print(f"publishing {args.venue} {','.join(symbols)} on {url}", file=sys.stderr, flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.duration is not None:
        loop.call_later(args.duration, stop.set)
    code = 0
    try:
        if tape is not None:
            source = asyncio.ensure_future(
                replay_to_sinks(tape, [sink], symbols=symbols, channels=channels, speed=args.speed)
            )
            await _until(source, stop)
        else:
            from lobfeed.aio.feed import Feed

            callbacks: dict[str, Any] = feed_callbacks([sink])
            feed = Feed(
                args.venue,
                symbols,
                channels=channels,
                ws_url=args.ws_url,
                rest_url=args.rest_url,
                reconnect=not args.no_reconnect,
                **callbacks,
            )
            run = asyncio.ensure_future(feed.run())
            await _until(run, stop, on_stop=feed.stop)
            exc = run.exception() if not run.cancelled() else None
            if exc is not None:
                print(f"lobfeed publish: feed stopped: {exc}", file=sys.stderr)
                code = 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await sink.close()
    print(
        "lobfeed publish: " + ", ".join(f"{k} {v}" for k, v in sink.stats().items()),
        file=sys.stderr,
    )
    return code


async def _until(work: asyncio.Future[Any], stop: asyncio.Event, on_stop: Any = None) -> None:
    """Waits for ``work`` or ``stop``; on ``stop``, ends the work and waits for it."""
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if not work.done():
        if on_stop is not None:
            on_stop()
        else:
            work.cancel()
    await asyncio.gather(work, return_exceptions=True)


async def replay_to_sinks(
    tape: Any,
    sinks: Sequence[Sink],
    *,
    symbols: Iterable[str] | None = None,
    channels: Iterable[str] = FEED_CHANNELS,
    speed: float = float("inf"),
) -> int:
    """Runs a tape through the sync code and hands its events to ``sinks`` as a live feed
    would (closed candles only, the symbols and channels asked for), paced by the tape's
    times divided by ``speed``; returns the number of book updates."""
    from lobfeed._native import BookUpdate, Candle, NeedResubscribe, NeedSnapshot, Quote, Trade
    from lobfeed.replay import Rejected, TapeReplayer

    # What a live feed keeps for itself or hands to other callbacks (when asked for).
    not_events = (Rejected, NeedSnapshot, NeedResubscribe, Trade, Quote, BookUpdate)
    wanted = None if symbols is None else set(symbols)
    channels = set(channels)
    calls = feed_callbacks(sinks)
    take: dict[type, Any] = {}
    if "book" in channels:
        take[BookUpdate] = calls["on_book"]
    if "trades" in channels:
        take[Trade] = calls["on_trade"]
    if "quotes" in channels:
        take[Quote] = calls["on_quote"]
    on_candle = calls["on_candle"] if "candles" in channels else None
    on_event = calls["on_event"]
    loop = asyncio.get_running_loop()
    started = loop.time()
    first_ts: int | None = None
    last_line = -1
    books = 0
    for record, event in TapeReplayer(tape).events():
        if record.line != last_line:
            last_line = record.line
            if first_ts is None:
                first_ts = record.ts_ns
            if speed != float("inf"):
                delay = started + (record.ts_ns - first_ts) / 1e9 / speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            elif last_line % 64 == 0:
                await asyncio.sleep(0)  # let the sinks' sockets breathe
        symbol = getattr(event, "symbol", None)
        if wanted is not None and symbol not in wanted:
            continue
        kind = type(event)
        callback = take.get(kind)
        if callback is not None:
            callback(event)
            books += kind is BookUpdate
        elif kind is Candle:
            if on_candle is not None and event.closed:
                on_candle(event)
        elif on_event is not None and kind not in not_events:
            on_event(event)
    return books


def run_sub(args: argparse.Namespace) -> int:

    reader = _make_reader(args)
    return asyncio.run(_sub(args, reader))


def _make_reader(args: argparse.Namespace) -> Any:
    from lobfeed.exceptions import ConfigError

    topics = args.topic or ["*"]
    if args.url.startswith("zmq://"):
        from lobfeed.sinks.zmq import Subscriber as ZmqSubscriber

        if args.durable is not None:
            raise ConfigError("--durable is for nats:// only (ZeroMQ keeps no consumer)")
        return ZmqSubscriber(args.url, topics, snapshot=not args.no_snapshot)
    if args.url.startswith(("nats://", "tls://")):
        from lobfeed.sinks.nats import Subscriber as NatsSubscriber

        return NatsSubscriber(
            args.url, topics, durable=args.durable, deliver=args.deliver, stream=args.stream
        )
    raise ConfigError(f"{args.url!r}: write zmq://HOST:PORT or nats://HOST:PORT")


async def _sub(args: argparse.Namespace, reader: Any) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.duration is not None:
        loop.call_later(args.duration, stop.set)
    out = sys.stdout.buffer
    await reader.start()
    printed = 0
    try:
        stopper = asyncio.ensure_future(stop.wait())
        while args.count is None or printed < args.count:
            nxt = asyncio.ensure_future(reader.recv())
            await asyncio.wait({nxt, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not nxt.done():
                nxt.cancel()
                await asyncio.gather(nxt, return_exceptions=True)
                break
            message = nxt.result()
            _print(out, message, args.json)
            printed += 1
        stopper.cancel()
    except BrokenPipeError:
        pass
    finally:
        await reader.close()
        with contextlib.suppress(BrokenPipeError):
            out.flush()
    stats = reader.stats()
    print(
        f"lobfeed sub: {printed} printed, " + ", ".join(f"{k} {v}" for k, v in stats.items()),
        file=sys.stderr,
    )
    return 0


def _print(out: IO[bytes], message: dict[str, Any], as_json: bool) -> None:
    if as_json:
        out.write(orjson.dumps(wire.as_line(message)) + b"\n")
    else:
        out.write(format_line(message).encode() + b"\n")
    out.flush()


def format_line(message: dict[str, Any]) -> str:
    """One readable line for a person at a terminal."""
    kind = message["type"]
    head = f"{kind:<6} {message['venue']} {message['symbol'] or '-'}"
    if kind == wire.BOOK:
        bid = message["bids"][0] if message["bids"] else ("-", "-")
        ask = message["asks"][0] if message["asks"] else ("-", "-")
        return f"{head} seq={message['seq']} {bid[1]} @ {bid[0]} | {ask[0]} x {ask[1]}"
    if kind == wire.TRADE:
        return f"{head} {message['side'] or '?'} {message['size']} @ {message['price']}"
    if kind == wire.CANDLE:
        return (
            f"{head} {message['interval']} o={message['open']} h={message['high']} "
            f"l={message['low']} c={message['close']} v={message['volume']}"
        )
    rest = {k: v for k, v in wire.as_line(message).items() if k not in ("type", "venue", "symbol")}
    return f"{head} " + " ".join(f"{k}={v}" for k, v in rest.items())
