"""Instructions per frame of each stage of lobfeed's hot path, for callgrind.

    PYTHONPATH=python valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        python benches/hotpath_bench.py MODE [TAPE] [--rounds 5]

MODE is ``prepare`` (the untimed set-up only: a synced session and a Feed, ``rounds`` times),
``core`` (``Session.receive_batch``), ``receive`` (``Session.receive`` per frame, events
dropped), ``dispatch`` (the Feed's frame path before issue 11: ``Session.receive``, then
``Dispatcher.dispatch`` of the tuple, then the callback) or ``feed`` (``Feed.frame_handler``:
``Session.receive_routed`` calling the callback from Rust; what ``lobfeed bench throughput``
times as ``lobfeed``). The callback reads the best bid in both. Each mode also does what
``prepare`` does, so ``(Ir(mode) - Ir(prepare)) / (rounds * frames)`` is the instructions one
frame costs in that stage; instruction counts do not move with the machine's load, so two
commits compare exactly.
``benches/README.md`` (Python hot path) has the numbers and the command that makes them all.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lobfeed.bench.depth import DepthTape
from lobfeed.bench.throughput import LobfeedCoreRunner, LobfeedReceiveRunner, LobfeedRunner
from lobfeed.exceptions import FrameError

DEFAULT_TAPE = (
    Path(__file__).resolve().parents[2] / "shared/data/tapes/binance-coinm-10sym-2021.jsonl.gz"
)


class DispatchRunner(LobfeedRunner):
    """The Feed's frame path as it was before ``receive_routed`` (Feed._on_frame)."""

    name = "dispatch"

    def run(self) -> int:
        assert self.session is not None and self.feed is not None
        receive = self.session.receive
        dispatch = self.feed.dispatcher.dispatch
        clock = time.time_ns
        start = time.perf_counter_ns()
        for frame in self.frames:
            try:
                events = receive(frame, clock())
            except FrameError as e:
                events = e.events
            if events:
                dispatch(events)
        return time.perf_counter_ns() - start


RUNNERS = {
    "prepare": LobfeedRunner,
    "core": LobfeedCoreRunner,
    "receive": LobfeedReceiveRunner,
    "dispatch": DispatchRunner,
    "feed": LobfeedRunner,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=sorted(RUNNERS))
    parser.add_argument("tape", nargs="?", default=str(DEFAULT_TAPE))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    tape = DepthTape.open(args.tape)
    runner = RUNNERS[args.mode](tape)
    for _ in range(args.rounds):
        runner.prepare()
        if args.mode != "prepare":
            runner.run()
    print(f"{args.mode}: {len(tape.timed_frames)} frames x {args.rounds} rounds")


if __name__ == "__main__":
    main()
