"""``lobfeed record`` and ``lobfeed run``: feeds in one process, their data to tapes and sinks.

``lobfeed record VENUE SYMBOL... --tape FILE`` records one venue's frames to a tape (several
venues with ``--feed VENUE:SYM1,SYM2`` repeated, one tape each); ``lobfeed run config.toml``
starts the feeds, sinks and shard a configuration file describes (:mod:`lobfeed.config`). Both
stop cleanly on SIGINT or SIGTERM (every tape flushed and closed with its end mark) or after
``--duration`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lobfeed.argtypes import positive_int, positive_seconds
from lobfeed.config import (
    TAPE,
    FeedConfig,
    RunConfig,
    SinkConfig,
    check_tape_options,
    load,
    parse_size,
    resolve_sink,
    sink_arguments,
)
from lobfeed.exceptions import ConfigError, LobfeedError
from lobfeed.venues import CHANNELS, SPECS

if TYPE_CHECKING:
    from lobfeed.aio.feed import Feed
    from lobfeed.sinks.base import Sink
    from lobfeed.tape import Recording

__all__ = ["Runner", "add_parser"]

# The source of a run described by `lobfeed record`'s arguments rather than by a file.
RECORD = "lobfeed record"


@dataclass
class Running:
    """One feed of a run, with the sinks it feeds."""

    name: str
    feed: Feed
    sinks: list[Sink] = field(default_factory=list)


class Runner:
    """The feeds and sinks of a :class:`~lobfeed.config.RunConfig`, built (and so checked)
    when it is made, run together by :meth:`run`."""

    def __init__(self, config: RunConfig) -> None:
        # Imported here: `lobfeed --help` and the other commands need none of it.
        from lobfeed.aio.feed import Feed
        from lobfeed.sinks.base import feed_callbacks

        self.config = config
        self.feeds: list[Running] = []
        # One instance per [[sinks]] entry, shared by the feeds it serves: events name their
        # venue, and a ZeroMQ port or a Parquet directory is opened once.
        made: dict[int, Sink] = {}
        for feed_config in config.feeds:
            recording: Recording | None = None
            sinks: list[Sink] = []
            for sink_config in config.sinks_of(feed_config):
                if sink_config.type == TAPE:
                    recording = _recording(config, sink_config, feed_config)
                    continue
                if id(sink_config) not in made:
                    served = [f for f in config.feeds if sink_config in config.sinks_of(f)]
                    venue = feed_config.venue if len(served) == 1 else None
                    made[id(sink_config)] = _sink(sink_config, venue)
                sinks.append(made[id(sink_config)])
            kwargs: dict[str, Any] = {**feed_config.feed_kwargs(), **feed_callbacks(sinks)}
            try:
                feed = Feed(feed_config.venue, feed_config.symbols, record=recording, **kwargs)
            except (LobfeedError, ValueError) as exc:
                raise ConfigError(f"{feed_config.where}: {exc}") from None
            self.feeds.append(Running(feed_config.name, feed, sinks))
        self.failures: list[str] = []

    def stop(self) -> None:
        for running in self.feeds:
            running.feed.stop()

    async def run(self, duration: float | None = None) -> int:
        """Runs every feed until SIGINT/SIGTERM, ``duration`` seconds, or one fails (which
        stops the rest); closes every sink; returns the exit code (1 if anything failed)."""
        loop = asyncio.get_running_loop()
        handled: list[signal.Signals] = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            # Loops without signal support (Windows, a loop off the main thread) raise these;
            # the run then stops only by duration, failure or KeyboardInterrupt.
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, self.stop)
                handled.append(signum)
        sinks = list({id(s): s for running in self.feeds for s in running.sinks}.values())
        started: list[Sink] = []
        try:
            for sink in sinks:
                try:
                    await sink.start()
                except Exception as exc:
                    self.failures.append(
                        f"sink {getattr(sink, 'name', sink)!r} did not start: {exc}"
                    )
                    return 1
                started.append(sink)
            await self._run_feeds(loop, duration)
        finally:
            for signum in handled:
                loop.remove_signal_handler(signum)
            for sink in reversed(started):
                try:
                    await sink.close()
                except Exception as exc:
                    self.failures.append(f"sink {getattr(sink, 'name', sink)!r}: {exc}")
        return 1 if self.failures else 0

    async def _run_feeds(self, loop: asyncio.AbstractEventLoop, duration: float | None) -> None:
        tasks = {asyncio.ensure_future(r.feed.run()): r for r in self.feeds}
        timer = loop.call_later(duration, self.stop) if duration is not None else None
        try:
            pending = set(tasks)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    error = task.exception()
                    if error is not None:
                        self.failures.append(f"{tasks[task].name}: {error}")
                        self.stop()
        finally:
            if timer is not None:
                timer.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def summary(self) -> list[str]:
        lines = []
        for running in self.feeds:
            stats = running.feed.stats
            text = (
                f"{running.name}: {stats.frames} frames, {stats.gaps} gaps, "
                f"{stats.reconnects} reconnects"
            )
            paths = running.feed.tape_paths
            if paths:
                files = str(paths[0]) if len(paths) == 1 else f"{len(paths)} files from {paths[0]}"
                text += f"; tape: {files}"
            lines.append(text)
        return lines


def _recording(config: RunConfig, sink: SinkConfig, feed: FeedConfig) -> Recording:
    from lobfeed.tape import DEFAULT_FLUSH_INTERVAL, Recording

    options = sink.options
    recording = Recording(
        config.tape_path(sink, feed),
        rotate_bytes=options.get("rotate_bytes"),
        rotate_seconds=options.get("rotate_seconds"),
        flush_interval=options.get("flush_interval", DEFAULT_FLUSH_INTERVAL),
        fsync=options.get("fsync", True),
    )
    where = f"{sink.where}.path" if sink.where.startswith("sinks[") else sink.where
    recording.check(where)
    return recording


def _sink(sink: SinkConfig, venue: str | None) -> Sink:
    """The sink of a ``[[sinks]]`` entry; ``venue`` is its one feed's, ``None`` when it serves
    several (each event then names its own)."""
    factory = resolve_sink(sink.type, sink.where)
    arguments = sink_arguments(factory, sink.options, venue, sink.where)
    try:
        made: Sink = factory(**arguments)
    except (LobfeedError, ValueError, TypeError) as exc:
        raise ConfigError(f"{sink.where}: {exc}") from None
    return made


# -- command line -----------------------------------------------------------------------------


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``record`` and ``run`` to the ``lobfeed`` command line."""
    p = sub.add_parser(
        "record",
        help="record venues' frames to crash-safe tapes",
        description="Record every frame sent and received, REST snapshots and connection "
        "opens to lobfeed-tape/1 files, flushed at least every second: a crash loses at most "
        "the last second. Stops cleanly on Ctrl-C or SIGTERM.",
    )
    p.add_argument("venue", nargs="?", help=f"the venue ({', '.join(SPECS)})")
    p.add_argument("symbols", nargs="*", help="symbols, spelled the venue's way (BTCUSDT)")
    p.add_argument(
        "--feed",
        action="append",
        default=[],
        metavar="VENUE:SYM1,SYM2",
        help="a venue and its symbols; repeat it to record several venues in one process "
        "(instead of VENUE SYMBOL...)",
    )
    p.add_argument(
        "--tape",
        metavar="FILE",
        help="the tape to write (.jsonl.gz, or .jsonl uncompressed); with several feeds it "
        "must contain {venue}, which each feed fills in",
    )
    p.add_argument(
        "--parquet",
        metavar="DIR",
        help="also (or instead) write Parquet datasets under DIR: candles, trades, books "
        "(docs/parquet.md)",
    )
    p.add_argument(
        "--channels",
        nargs="+",
        metavar="CHANNEL",
        help=f"channels to record, space or comma separated ({', '.join(sorted(CHANNELS))}; "
        "default: book trades)",
    )
    p.add_argument("--depth", type=positive_int, metavar="N", help="book levels to subscribe")
    p.add_argument("--ws-url", metavar="URL", help="websocket server instead of the venue's")
    p.add_argument("--rest-url", metavar="URL", help="REST server instead of the venue's")
    p.add_argument(
        "--duration",
        type=positive_seconds,
        metavar="S",
        help="stop after S seconds (default: run on)",
    )
    p.add_argument(
        "--rotate-bytes",
        type=_size,
        metavar="N",
        help="start a new numbered file once one reaches N bytes (e.g. 100M)",
    )
    p.add_argument(
        "--rotate-seconds",
        type=positive_seconds,
        metavar="S",
        help="start a new numbered file every S seconds",
    )
    p.add_argument(
        "--flush-interval",
        type=positive_seconds,
        default=1.0,
        metavar="S",
        help="flush (and sync) the tape at least every S seconds: what a crash can lose "
        "(default 1)",
    )
    p.add_argument(
        "--no-fsync",
        action="store_true",
        help="do not sync each flush to disk (a killed process still loses nothing flushed; "
        "a power loss may)",
    )
    p.add_argument(
        "--no-reconnect",
        action="store_true",
        help="end when the server closes the connection instead of reconnecting",
    )
    p.set_defaults(run=_record_command)

    p = sub.add_parser(
        "run",
        help="run the feeds and sinks of a TOML configuration file",
        description="Start the feeds, sinks (tape, parquet, zmq, nats) and shard described in "
        "one TOML file (see docs/recording.md). Stops cleanly on Ctrl-C or SIGTERM.",
    )
    p.add_argument("config", help="the configuration file (TOML)")
    p.add_argument(
        "--shard",
        metavar="I/N",
        help="run shard I of N (overrides the file's shard): each feed's symbols, sorted, "
        "the k-th going to shard k %% N",
    )
    p.add_argument(
        "--duration",
        type=positive_seconds,
        metavar="S",
        help="stop after S seconds (default: run on)",
    )
    p.add_argument(
        "--check", action="store_true", help="only check the file and say what would run"
    )
    p.set_defaults(run=_run_command)


def _size(text: str) -> int:
    try:
        return parse_size(int(text) if text.isdigit() else text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _record_config(args: argparse.Namespace) -> RunConfig:
    """The run that ``lobfeed record``'s arguments describe; ``ConfigError`` for a mistake."""
    wanted: list[tuple[str, str, tuple[str, ...]]] = []
    if args.feed:
        if args.venue is not None:
            raise ConfigError("give either VENUE SYMBOL... or --feed, not both")
        for text in args.feed:
            venue, _, listed = text.partition(":")
            symbols = tuple(s.strip() for s in listed.split(",") if s.strip())
            if not venue or not symbols:
                raise ConfigError(f"--feed {text!r}: must be VENUE:SYMBOL[,SYMBOL...]")
            wanted.append((f"--feed {text}", venue.strip(), symbols))
    elif args.venue is None or not args.symbols:
        raise ConfigError("name a VENUE and at least one SYMBOL, or --feed VENUE:SYM1,SYM2")
    else:
        wanted.append((args.venue, args.venue, tuple(args.symbols)))

    channels: tuple[str, ...] | None = None
    if args.channels:
        channels = tuple(c.strip() for text in args.channels for c in text.split(",") if c.strip())
        for channel in channels:
            if channel not in CHANNELS:
                known = ", ".join(sorted(CHANNELS))
                raise ConfigError(f"--channels: unknown channel {channel!r}; known: {known}")
    if len(wanted) > 1 and (args.ws_url or args.rest_url):
        raise ConfigError("--ws-url and --rest-url point one feed elsewhere: give one venue")

    feeds: list[FeedConfig] = []
    for where, venue, symbols in wanted:
        if venue not in SPECS:
            raise ConfigError(f"{where}: unknown venue {venue!r}; known: {', '.join(SPECS)}")
        if any(f.venue == venue for f in feeds):
            raise ConfigError(f"{where}: {venue} is given twice; list all its symbols once")
        feeds.append(
            FeedConfig(
                venue=venue,
                symbols=symbols,
                name=venue,
                channels=channels,
                depth=args.depth,
                ws_url=args.ws_url,
                rest_url=args.rest_url,
                reconnect=not args.no_reconnect,
                where=where,
            )
        )

    if args.tape is None and args.parquet is None:
        raise ConfigError("say where to record: --tape FILE, --parquet DIR, or both")
    sinks: list[SinkConfig] = []
    if args.tape is not None:
        options: dict[str, Any] = {
            "path": args.tape,
            "flush_interval": args.flush_interval,
            "fsync": not args.no_fsync,
        }
        if args.rotate_bytes is not None:
            options["rotate_bytes"] = args.rotate_bytes
        if args.rotate_seconds is not None:
            options["rotate_seconds"] = args.rotate_seconds
        check_tape_options(options, "--tape")
        if len(feeds) > 1 and "{venue}" not in args.tape and "{feed}" not in args.tape:
            raise ConfigError(
                f"--tape {args.tape!r}: several venues are recorded, one tape each: put "
                "{venue} in the file name (e.g. rec-{venue}.jsonl.gz)"
            )
        sinks.append(SinkConfig(TAPE, options, None, "--tape"))
    if args.parquet is not None:
        # One dataset for every feed: its partitions are per venue and symbol.
        sinks.append(SinkConfig("parquet", {"directory": args.parquet}, None, "--parquet"))
    return RunConfig(tuple(feeds), tuple(sinks), None, RECORD)


def _record_command(args: argparse.Namespace) -> int:
    return _start("lobfeed record", lambda: _record_config(args), args.duration)


def _run_command(args: argparse.Namespace) -> int:
    def configure() -> RunConfig:
        return load(args.config, shard=args.shard)

    if args.check:
        return _start("lobfeed run", configure, None, check_only=True)
    return _start("lobfeed run", configure, args.duration)


def _start(
    prog: str,
    configure: Callable[[], RunConfig],
    duration: float | None,
    *,
    check_only: bool = False,
) -> int:
    # A ConfigError is `lobfeed`'s to print (one line, exit 2, see cli.main).
    config = configure()
    try:
        runner = Runner(config)
    except ConfigError as exc:
        if config.source == RECORD:
            raise
        # What only building the feeds and sinks finds is named in the file, as the rest is.
        raise ConfigError(f"{config.source}: {exc}") from None
    if check_only:
        for running, feed_config in zip(runner.feeds, config.feeds, strict=True):
            sinks = ", ".join(s.type for s in config.sinks_of(feed_config))
            print(f"{running.name}: {feed_config.venue} {','.join(feed_config.symbols)} -> {sinks}")
        return 0
    for running, feed_config in zip(runner.feeds, config.feeds, strict=True):
        sinks = ", ".join(s.type for s in config.sinks_of(feed_config))
        symbols = ",".join(feed_config.symbols)
        print(f"{prog}: {running.name} {symbols} -> {sinks}", flush=True)
    code = asyncio.run(runner.run(duration))
    for line in runner.summary():
        print(f"{prog}: {line}", flush=True)
    for failure in runner.failures:
        print(f"{prog}: {failure}", file=sys.stderr)
    return code
