"""``lobfeed bench``: lobfeed measured side by side with its peers, in one run.

- ``lobfeed bench throughput TAPE...`` (:mod:`lobfeed.bench.throughput`): a tape's book frames
  in-process through lobfeed (the Feed's hot path, ``Session.receive`` alone, and the Rust core
  through ``Session.receive_batch``), cryptofeed and a naive Python book;
- ``lobfeed bench latency`` (:mod:`lobfeed.bench.latency`): send-to-callback latency over
  loopback websockets at set rates, for lobfeed, cryptofeed and the transport alone.

``--report DIR`` writes markdown tables, the machine and the command, and PNG plots
(:mod:`lobfeed.bench.report`). cryptofeed, matplotlib, hdrhistogram, uvloop and picows are the
``bench`` extra (``make bench-deps``); nothing else in lobfeed needs them.

This module only defines the command line: the benchmark modules are imported when run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["add_parser", "main"]

DEFAULT_RATES = "1000,10000,100000"
DEFAULT_BURST_SIZE = 100


def _comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _rates(text: str) -> list[float]:
    try:
        rates = [float(part) for part in _comma_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"rates must be numbers, got {text!r}") from None
    if not rates or any(not r > 0 for r in rates):
        raise argparse.ArgumentTypeError("rates must be positive frames per second")
    return rates


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``bench`` and its two sub-commands to the ``lobfeed`` command line."""
    bench = sub.add_parser(
        "bench", help="throughput and latency, side by side with cryptofeed and a naive book"
    )
    commands = bench.add_subparsers(dest="bench_command", required=True)

    p = commands.add_parser(
        "throughput", help="a tape's book frames in-process through each implementation"
    )
    p.add_argument("tapes", nargs="+", help="tapes of any venue lobfeed reads")
    p.add_argument("--repeats", type=int, default=7, help="timed rounds; the median is reported")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    p.add_argument(
        "--impl",
        type=_comma_list,
        help="implementations to run (default: all of lobfeed,lobfeed_receive,lobfeed_core,"
        "cryptofeed,cryptofeed_noread,naive; cryptofeed only on the venues it reads)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per tape, one per line (JSON Lines)",
    )
    p.add_argument("--report", type=Path, metavar="DIR", help="write throughput.md and a plot")
    p.add_argument(
        "--profile", action="store_true", help="also profile lobfeed's loop (cProfile, stderr)"
    )

    p = commands.add_parser("latency", help="send-to-callback latency over loopback websockets")
    p.add_argument(
        "--tape",
        help="Binance tape whose depth frames are sent (default: the demo tape shipped with "
        "lobfeed; the COIN-M 2024 tape in shared/data has the most frames)",
    )
    p.add_argument(
        "--rates", type=_rates, default=_rates(DEFAULT_RATES), help="frames per second, comma list"
    )
    p.add_argument(
        "--duration",
        type=_positive,
        default=5.0,
        help="seconds per rate and client (capped by the frames the tape has)",
    )
    p.add_argument(
        "--burst",
        action="store_true",
        help="send in back-to-back bursts (same average rate) instead of evenly spaced",
    )
    p.add_argument(
        "--burst-size",
        type=int,
        default=DEFAULT_BURST_SIZE,
        help="with --burst: frames due back to back in each burst",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="runs per client and rate; each percentile reported is the median over them",
    )
    p.add_argument("--warmup-frames", type=int, default=500, help="untimed frames per client first")
    p.add_argument(
        "--loop",
        type=_comma_list,
        default=["asyncio"],
        help="client event loops, comma list: asyncio, uvloop (a second loop adds name@loop)",
    )
    p.add_argument(
        "--clients",
        type=_comma_list,
        help="default: lobfeed,cryptofeed,transport, and lobfeed_websockets,transport_picows "
        "when picows is installed (lobfeed_picows: picows named explicitly)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object on standard output")
    p.add_argument("--report", type=Path, metavar="DIR", help="write latency.md and a CDF plot")


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(args: argparse.Namespace, argv: Sequence[str] | None = None) -> int:
    """Run the ``bench`` sub-command parsed into ``args``."""
    command: str = args.bench_command
    if command == "throughput":
        return _throughput(args, argv)
    if command == "latency":
        return _latency(args, argv)
    return 2


def _throughput(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    import orjson

    from lobfeed.bench import report
    from lobfeed.bench.depth import DepthTape
    from lobfeed.bench.throughput import IMPLEMENTATIONS, bench_tape, profile_lobfeed

    names: list[str] = args.impl or list(IMPLEMENTATIONS)
    unknown = [n for n in names if n not in IMPLEMENTATIONS]
    if unknown:
        print(f"unknown implementation(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    if "cryptofeed" in names:
        from lobfeed.bench.peers import cryptofeed_version

        if cryptofeed_version() is None:
            print("cryptofeed is not installed: `make bench-deps`", file=sys.stderr)
            return 2
    results = []
    profiles: dict[str, str] = {}
    for path in args.tapes:
        tape = DepthTape.open(path)
        result = bench_tape(
            tape,
            implementations=names,
            repeats=args.repeats,
            warmup=args.warmup,
            progress=_progress,
        )
        results.append(result)
        if args.json:
            sys.stdout.buffer.write(orjson.dumps(result.as_dict()) + b"\n")
            sys.stdout.buffer.flush()
        else:
            print(report.throughput_table(result))
            print()
        if args.profile:
            profiles[tape.name] = profile_lobfeed(tape)
            print(profiles[tape.name], file=sys.stderr)
        for text in result.disagreements:
            print(f"{tape.name}: books disagree: {text}", file=sys.stderr)
    if args.report is not None:
        path = report.write_throughput(args.report, results, argv, profiles)
        _progress(f"report written: {path}")
    return 1 if any(r.disagreements for r in results) else 0


def _latency(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    import orjson

    from lobfeed.bench import report
    from lobfeed.bench.latency import default_clients, results_json, run_latency
    from lobfeed.bench.peers import cryptofeed_version

    if "cryptofeed" in (args.clients or default_clients()) and cryptofeed_version() is None:
        print("cryptofeed is not installed: `make bench-deps`", file=sys.stderr)
        return 2
    tape = args.tape
    if tape is None:
        from lobfeed.cli import demo_tape

        tape = str(demo_tape())
    burst = max(1, args.burst_size) if args.burst else 1
    info, runs = run_latency(
        tape,
        rates=args.rates,
        clients=args.clients,
        loops=args.loop,
        duration=args.duration,
        burst=burst,
        repeats=args.repeats,
        warmup_frames=args.warmup_frames,
        progress=_progress,
    )
    summary = results_json(info, runs, args.loop, burst)
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(summary) + b"\n")
    else:
        print(report.latency_tables(summary))
    if args.report is not None:
        path = report.write_latency(args.report, summary, runs, args.loop, argv)
        _progress(f"report written: {path}")
    return 0
