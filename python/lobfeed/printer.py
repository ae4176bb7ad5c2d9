"""The live book printer: a depth ladder with size bars, spread, update rate and latency."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from statistics import quantiles
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from lobfeed._native import BookUpdate, Session
from lobfeed.aio.health import SymbolHealth
from lobfeed.exceptions import StaleBookError
from lobfeed.replay import TapeReplayer
from lobfeed.tape import Tape

BAR_WIDTH = 12
# Exchange-to-us lags beyond this come from a replayed tape's old timestamps, not the network.
PLAUSIBLE_LAG_NS = 60 * 1_000_000_000


class BookPrinter:
    """Collects what the ladder shows; ``on_book`` is the feed callback, ``render`` draws."""

    def __init__(
        self,
        venue: str,
        symbol: str,
        depth: int = 10,
        session: Callable[[], Session | None] = lambda: None,
    ) -> None:
        self.venue = venue
        self.symbol = symbol
        self.depth = depth
        self.session_of = session
        #: The symbol's health as a live Feed keeps it (None in a replay).
        self.health_of: Callable[[], SymbolHealth | None] = lambda: None
        #: "Now" for rates; a replay sets it to the tape's clock.
        self.clock: Callable[[], int] = time.time_ns
        #: Frame-to-callback latency is only meaningful for frames received live.
        self.live = True
        self.updates = 0
        self.seq: int | None = None
        self.latencies_ns: deque[int] = deque(maxlen=4096)
        self.arrivals: deque[int] = deque(maxlen=100_000)
        self.exchange_lag_ns: int | None = None

    def on_book(self, update: BookUpdate) -> None:
        if update.symbol != self.symbol:
            return
        self.updates += 1
        self.seq = update.seq
        if self.live:
            self.latencies_ns.append(time.time_ns() - update.ts_ns)
        self.arrivals.append(update.ts_ns)
        if update.exchange_ts_ns:
            self.exchange_lag_ns = update.ts_ns - update.exchange_ts_ns

    def updates_per_second(self) -> float:
        if not self.arrivals:
            return 0.0
        horizon = self.clock() - 1_000_000_000
        while self.arrivals and self.arrivals[0] < horizon:
            self.arrivals.popleft()
        return float(len(self.arrivals))

    def latency_us(self) -> tuple[float, float] | None:
        if len(self.latencies_ns) < 2:
            return None
        cuts = quantiles(self.latencies_ns, n=100, method="inclusive")
        return cuts[49] / 1000, cuts[98] / 1000

    def render(self) -> Group:
        title = f"{self.venue} {self.symbol}"
        session = self.session_of()
        if session is None or self.symbol not in session.symbols():
            return Group(Text(f"{title}: waiting for the first frame…", style="yellow"))
        try:
            book = session.book(self.symbol)
            bids = book.bids(self.depth)
            asks = book.asks(self.depth)
            spread, mid = book.spread(), book.mid()
        except StaleBookError:
            return Group(Text(f"{title}: book is being updated…"))
        health = self.health_of()
        state = session.state(self.symbol) if health is None else health.state
        counters = session.counters(self.symbol)
        largest = max((float(q) for _, q in bids + asks), default=0.0) or 1.0

        table = Table(title=f"{title}   seq {self.seq}", expand=False, show_lines=False)
        table.add_column("bid size", justify="right", style="green")
        table.add_column("", justify="right", style="green", min_width=BAR_WIDTH)
        table.add_column("bid", justify="right", style="bold green")
        table.add_column("ask", justify="left", style="bold red")
        table.add_column("", justify="left", style="red", min_width=BAR_WIDTH)
        table.add_column("ask size", justify="left", style="red")
        for i in range(self.depth):
            bid = bids[i] if i < len(bids) else ("", "")
            ask = asks[i] if i < len(asks) else ("", "")
            table.add_row(
                bid[1], _bar(bid[1], largest), bid[0], ask[0], _bar(ask[1], largest), ask[1]
            )

        latency = self.latency_us()
        lag = self.exchange_lag_ns
        lines = [
            f"spread {_fmt(spread)}   mid {_fmt(mid)}   state {state}",
            f"updates {self.updates}   {self.updates_per_second():.0f}/s   "
            + (
                f"frame→callback p50 {latency[0]:.1f}µs p99 {latency[1]:.1f}µs"
                if latency
                else "frame→callback " + ("-" if self.live else "n/a (replay)")
            ),
            "exchange→receive "
            + (
                f"{lag / 1e6:.1f}ms"
                if lag is not None and abs(lag) < PLAUSIBLE_LAG_NS
                else "n/a (replayed timestamps)"
            ),
            "gaps {gaps}  resyncs {resyncs}  snapshots {snapshots}  "
            "checksums {checksums_checked}/{checksum_mismatches} bad  errors {errors}".format(
                **counters
            ),
        ]
        if health is not None:
            lines[0] += f" ({health.reason})" if health.state != "live" else ""
            behind = "-" if health.lag_ns is None else f"{health.lag_ns / 1e6:.1f}ms"
            lines.append(
                f"connection {health.connection}  reconnects {health.reconnects}  "
                f"resyncs {health.resyncs}  dropped {health.dropped}  "
                f"decode errors {health.decode_errors}  lag {behind}"
            )
        return Group(table, Text("\n".join(lines)))


def _bar(size: str, largest: float) -> Text:
    if not size:
        return Text("")
    cells = max(1, round(BAR_WIDTH * float(size) / largest))
    return Text("█" * min(cells, BAR_WIDTH))


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.8g}"


async def show(printer: BookPrinter, done: asyncio.Future[Any], *, fps: float = 10.0) -> None:
    """Redraws the printer until ``done`` completes, then draws the last state once more."""
    console = Console()
    if not console.is_terminal:
        # Piped output (CI, make demo | tee) gets a width that fits the whole ladder.
        console = Console(width=110)
    with Live(printer.render(), console=console, auto_refresh=False, transient=False) as live:
        while not done.done():
            await asyncio.wait({done}, timeout=1 / fps)
            live.update(printer.render(), refresh=True)
    console.print()


async def replay_into(printer: BookPrinter, tape: Tape, speed: float) -> None:
    """Feeds a tape to the printer in-process, paced by its recorded times divided by ``speed``."""
    replayer = TapeReplayer(tape)
    printer.session_of = lambda: _session_with(replayer, printer.symbol)
    printer.live = False
    tape_now = [0]
    printer.clock = lambda: tape_now[0]
    loop = asyncio.get_running_loop()
    started = loop.time()
    first_ts: int | None = None
    last_line = -1
    for record, event in replayer.events():
        if record.line != last_line:
            last_line = record.line
            tape_now[0] = record.ts_ns
            if first_ts is None:
                first_ts = record.ts_ns
            due = started + (record.ts_ns - first_ts) / 1e9 / speed
            delay = due - loop.time()
            # Yield now and then even at full speed, so the screen gets redrawn.
            await asyncio.sleep(delay if delay > 0 else 0)
        if isinstance(event, BookUpdate):
            printer.on_book(event)


def _session_with(replayer: TapeReplayer, symbol: str) -> Session | None:
    for session in replayer.sessions.values():
        if symbol in session.symbols():
            return session
    return None
