"""The ``lobfeed`` command: serve, replay, verify, book, demo, bench."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import orjson

from lobfeed.argtypes import port, positive_int, seconds, speed

if TYPE_CHECKING:
    from lobfeed.testing.faults import FaultPlan

DEMO_TAPE = "binance-ethusdt-20240808.jsonl.gz"
DEMO_SYMBOL = "ETHUSDT"


def _fault_plan(text: str) -> FaultPlan:
    from lobfeed.testing.faults import FaultPlan

    try:
        return FaultPlan.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (and exit 2), not a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lobfeed", description="Low-latency crypto market-data feed handler.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the feed does")
    parser.add_argument("--version", action="version", version=f"lobfeed {_version()}")
    sub: argparse._SubParsersAction[argparse.ArgumentParser] = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser
    )

    p = sub.add_parser("serve", help="replay a tape as a local exchange on loopback")
    p.add_argument("tape", help="the tape (lobfeed-tape/1, .jsonl or .jsonl.gz) to serve")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=port, default=0, help="port to listen on; 0 picks a free one")
    p.add_argument("--speed", type=speed, default=1.0, help="time scale, or 'max'")
    p.add_argument("--loop", action="store_true", help="start again at the end of the tape")
    p.add_argument(
        "--faults",
        type=_fault_plan,
        metavar="SPEC",
        help="faults to inject, e.g. 'close=1006@200,conns=all,rest=429@2' "
        "(grammar: lobfeed.testing.faults)",
    )
    p.add_argument(
        "--seed", type=int, help="seed of the random faults (overrides the spec's seed=)"
    )
    p.add_argument(
        "--once",
        action="store_true",
        help="exit when every client has finished (default: serve on)",
    )
    p.add_argument(
        "--live",
        action="store_true",
        help="one clock for all clients: a client joins where the stream stands (needs a "
        "finite --speed)",
    )

    p.add_argument(
        "--clones",
        type=int,
        default=0,
        metavar="N",
        help="also serve every symbol under N aliases (Binance, Bybit: C1<SYMBOL>, "
        "C2<SYMBOL>, ...), each a full copy of its streams and snapshots",
    )
    p.add_argument(
        "--no-limits",
        action="store_true",
        help="do not enforce the venue's limits (streams per connection, messages per second, "
        "REST request weight, request line length)",
    )

    p = sub.add_parser("replay", help="run a tape through the sync code; one JSON line per update")
    p.add_argument("tape", help="the tape to replay (lobfeed-tape/1, .jsonl or .jsonl.gz)")
    p.add_argument("--depth", type=positive_int, default=25, help="levels a side in each line")
    p.add_argument("--out", help="output file (default: standard output)")

    p = sub.add_parser("verify", help="prove tapes' books against the exchange's own truths")
    p.add_argument("tapes", nargs="+", help="the tapes to check; each is reported on its own")
    p.add_argument("--json", action="store_true", help="one JSON object per tape")
    p.add_argument("--allow-gaps", action="store_true", help="report gaps without failing")

    p = sub.add_parser("book", help="live book printer")
    p.add_argument("venue", help="a venue name (lobfeed.venues.SPECS: binance, okx, ...)")
    p.add_argument("symbol", help="the symbol, in any case (ethusdt is ETHUSDT on Binance)")
    p.add_argument(
        "--depth", type=positive_int, default=10, help="levels a side, subscribed and shown"
    )
    p.add_argument("--ws-url", help="websocket server to use instead of the venue's")
    p.add_argument("--rest-url", help="REST server for snapshots instead of the venue's")
    p.add_argument("--duration", type=seconds, help="stop after this many seconds")
    p.add_argument("--replay", metavar="TAPE", help="show a tape in-process instead of a live feed")
    p.add_argument("--speed", type=speed, default=1.0, help="with --replay: time scale, or 'max'")
    p.add_argument(
        "--hold", type=seconds, default=0.0, help="keep the last screen this many seconds"
    )

    p = sub.add_parser("demo", help="the book printer on a real tape through the local exchange")
    p.add_argument(
        "--speed", type=speed, default=10.0, help="how many times faster than captured, or 'max'"
    )
    p.add_argument("--tape", help="another Binance tape to use")
    p.add_argument("--depth", type=positive_int, default=10, help="levels a side shown")

    p = sub.add_parser("soak", help="four venues with random faults for long; check books, RSS")
    p.add_argument("--seconds", type=seconds, default=600.0, help="seconds of injected faults")
    p.add_argument("--seed", type=int, default=1, help="seed of the random faults")
    p.add_argument("--report", metavar="FILE", help="also write the report as JSON to FILE")
    p.add_argument("--tapes", default="../shared/data/tapes", help="directory of the real tapes")
    p.add_argument(
        "--settle", type=float, default=30.0, help="max seconds to be live once faults stop"
    )

    from lobfeed.bench import add_parser as add_bench_parser
    from lobfeed.export import add_parser as add_export_parser
    from lobfeed.fanout import add_parser as add_fanout_parser
    from lobfeed.record import add_parser as add_record_parser

    add_bench_parser(sub)
    add_record_parser(sub)
    add_export_parser(sub)
    add_fanout_parser(sub)
    return parser


def _version() -> str:
    from lobfeed import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; a mistake of the user's is one line on stderr and exit 2, a check
    that failed (verify) or a feed that could not go on exits 1."""
    args = _parser().parse_args(argv)
    from lobfeed.exceptions import ConfigError, LobfeedError, UnknownVenueError

    try:
        return _run(args, argv)
    except (ConfigError, UnknownVenueError) as exc:
        print(f"lobfeed {args.command}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader (head, less) went away: not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except FileNotFoundError as exc:
        print(f"lobfeed {args.command}: no such file: {exc.filename}", file=sys.stderr)
        return 2
    except LobfeedError as exc:
        print(f"lobfeed {args.command}: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    command: str = args.command
    # Commands that live in their own module register a handler with ``set_defaults(run=...)``.
    run = getattr(args, "run", None)
    if run is not None:
        code: int = run(args)
        return code
    if command == "serve":
        from lobfeed.testing.faults import FaultPlan
        from lobfeed.testing.server import run_server

        faults: FaultPlan = args.faults or FaultPlan()
        if args.seed is not None:
            faults = dataclasses.replace(faults, seed=args.seed)
        if args.clones < 0:
            print("lobfeed serve: --clones must be 0 or more", file=sys.stderr)
            return 2
        if args.live and args.speed == float("inf"):
            print("lobfeed serve: --live needs a finite --speed", file=sys.stderr)
            return 2
        from lobfeed.exceptions import FaultSpecError

        try:
            run_server(
                args.tape,
                args.host,
                args.port,
                args.speed,
                args.loop,
                faults=faults,
                live=args.live,
                once=args.once,
                clones=args.clones,
                enforce_limits=not args.no_limits,
            )
        except FaultSpecError as exc:  # a fault the venue cannot serve (notice=N)
            print(f"lobfeed serve: {exc}", file=sys.stderr)
            return 2
        return 0
    if command == "replay":
        return _replay(args.tape, args.depth, args.out)
    if command == "verify":
        return _verify(args.tapes, args.json, args.allow_gaps)
    if command == "book":
        if args.replay:
            return asyncio.run(
                _book_replay(
                    args.replay, args.venue, args.symbol, args.depth, args.speed, args.hold
                )
            )
        return asyncio.run(
            _book(args.venue, args.symbol, args.depth, args.ws_url, args.rest_url, args.duration)
        )
    if command == "demo":
        return asyncio.run(_demo(args.tape, args.speed, args.depth))
    if command == "soak":
        from lobfeed.testing.soak import main as soak_main

        return soak_main(
            args.seconds, args.seed, args.report, args.tapes, args.settle, args.verbose
        )
    if command == "bench":
        from lobfeed.bench import main as bench_main

        return bench_main(args, argv)
    return 2


def _replay(path: str, depth: int, out_path: str | None) -> int:
    from lobfeed.replay import replay
    from lobfeed.tape import Tape

    tape = Tape.open(path)
    if out_path is None:
        try:
            replay(tape, sys.stdout.buffer, depth=depth)
            sys.stdout.buffer.flush()
        except BrokenPipeError:
            # The reader (head, less) went away: not an error of ours.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    else:
        with open(out_path, "wb") as out:
            replay(tape, out, depth=depth)
    return 0


def _verify(paths: Sequence[str], as_json: bool, allow_gaps: bool) -> int:
    from lobfeed.exceptions import LobfeedError
    from lobfeed.replay import format_proof, verify
    from lobfeed.tape import Tape

    failed = False
    for path in paths:
        # Every tape is checked and reported, whatever happened to the ones before it.
        try:
            proof = verify(Tape.open(path))
        except (LobfeedError, OSError) as exc:
            failed = True
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            if as_json:
                sys.stdout.buffer.write(orjson.dumps({"tape": path, "error": detail}) + b"\n")
            else:
                print(f"{path}: FAILED: cannot be read: {detail}")
            continue
        failed |= bool(proof.failures(allow_gaps=allow_gaps))
        if as_json:
            sys.stdout.buffer.write(orjson.dumps(proof.as_dict()) + b"\n")
        else:
            print(format_proof(proof, allow_gaps=allow_gaps))
    sys.stdout.flush()
    return 1 if failed else 0


async def _book(
    venue: str,
    symbol: str,
    depth: int,
    ws_url: str | None,
    rest_url: str | None,
    duration: float | None,
    *,
    reconnect: bool = True,
) -> int:
    from lobfeed.aio.feed import Feed
    from lobfeed.printer import BookPrinter, show

    printer = BookPrinter(venue, symbol, depth)
    feed = Feed(
        venue,
        [symbol],
        channels=("book",),
        depth=depth,
        on_book=printer.on_book,
        ws_url=ws_url,
        rest_url=rest_url,
        reconnect=reconnect,
    )
    # The venue's spelling (ETHUSDT for ethusdt): what the frames and the session say.
    symbol = printer.symbol = feed.subscription.symbols[0]
    printer.session_of = lambda: feed.session_for(symbol)
    printer.health_of = lambda: feed.health().get(symbol)
    run = asyncio.ensure_future(feed.run())
    if duration is not None:
        asyncio.get_running_loop().call_later(duration, feed.stop)
    try:
        await show(printer, run)
    except (KeyboardInterrupt, asyncio.CancelledError):
        feed.stop()
    await asyncio.gather(run, return_exceptions=True)
    exc = run.exception() if run.done() and not run.cancelled() else None
    if exc is not None:
        print(f"feed stopped: {exc}", file=sys.stderr)
        return 1
    print(
        f"{printer.updates} book updates, {feed.stats.frames} frames, "
        f"{feed.stats.gaps} gaps, {feed.stats.frame_errors} rejected frames, "
        f"{feed.stats.reconnects} reconnects"
    )
    return 0


async def _book_replay(
    tape_path: str, venue: str, symbol: str, depth: int, speed: float, hold: float
) -> int:
    from lobfeed.printer import BookPrinter, replay_into, show
    from lobfeed.tape import Tape

    tape = Tape.open(tape_path)
    if tape.header.venue != venue:
        print(f"{tape_path} is a {tape.header.venue} tape, not {venue}", file=sys.stderr)
        return 2
    printer = BookPrinter(venue, symbol, depth)
    run = asyncio.ensure_future(replay_into(printer, tape, speed))
    await show(printer, run)
    await run
    if hold > 0:
        await asyncio.sleep(hold)
    print(f"{printer.updates} book updates replayed from {tape_path}")
    return 0


def demo_tape() -> Path:
    """The real Binance capture that ships with the package for the demo."""
    return Path(str(resources.files("lobfeed").joinpath("data", DEMO_TAPE)))


async def _demo(tape_path: str | None, speed: float, depth: int) -> int:
    from lobfeed.tape import Tape
    from lobfeed.testing.server import ExchangeServer

    tape = Tape.open(tape_path or demo_tape())
    symbol = DEMO_SYMBOL if tape_path is None else _first_depth_symbol(tape)
    async with ExchangeServer(tape, speed=speed) as server:
        print(
            f"local exchange on {server.ws_url} replaying {Path(tape.path).name} at "
            + ("full speed" if speed == float("inf") else f"{speed:g}x")
            + " "
            f"({tape.header.venue}, captured {tape.header.captured})"
        )
        return await _book(
            tape.header.venue,
            symbol,
            depth,
            server.ws_url,
            server.rest_url,
            None,
            reconnect=False,
        )


def _first_depth_symbol(tape: object) -> str:
    from lobfeed.replay import snapshot_symbol
    from lobfeed.tape import Tape

    assert isinstance(tape, Tape)
    for record in tape.iter_records("http"):
        if record.url:
            symbol = snapshot_symbol(record.url)
            if symbol:
                return symbol
    raise SystemExit(f"{tape.path}: no depth snapshot in the tape")
