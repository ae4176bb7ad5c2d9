"""BookView reads: exact spread and mid, numpy arrays built in Rust, a session's depth kept to in
every view, and arguments refused as ConfigError naming the bad value."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import numpy as np
import orjson
import pytest
from rich.table import Table

from lobfeed import BookUpdate, BookView, ConfigError, Session
from lobfeed.printer import BookPrinter
from lobfeed.replay import TapeReplayer
from lobfeed.tape import Tape

SYMBOL = "BTCUSDT"


def book(bids: list[list[str]], asks: list[list[str]], **options: object) -> BookView:
    """A Binance session synced from one depth frame and one REST snapshot; its book's view."""
    session = Session("binance", **options)  # type: ignore[arg-type]
    delta = {"e": "depthUpdate", "E": 1, "s": SYMBOL, "U": 101, "u": 101, "b": [], "a": []}
    session.receive(orjson.dumps({"stream": "btcusdt@depth", "data": delta}), 1)
    body = orjson.dumps({"lastUpdateId": 100, "bids": bids, "asks": asks})
    (update,) = session.receive_snapshot(SYMBOL, body, 2)
    assert isinstance(update, BookUpdate)
    return update.book


def views_of(path: Path) -> Iterator[BookView]:
    """The book view of every update of a replayed tape."""
    for _record, ev in TapeReplayer(Tape.open(path)).events():
        if isinstance(ev, BookUpdate):
            yield ev.book


def test_a_cent_spread_is_exactly_a_cent() -> None:
    view = book([["100.01", "1"]], [["100.02", "2"]])
    assert view.spread_decimal() == Decimal("0.01")
    assert str(view.spread_decimal()) == "0.01"
    # What the float method cannot do: 100.02 - 100.01 in binary floats is not 0.01.
    assert view.spread() != 0.01
    assert view.spread() == pytest.approx(0.01)


def test_mid_is_exact_with_one_more_digit_when_the_sum_is_odd() -> None:
    assert book([["0.01", "1"]], [["0.02", "1"]]).mid_decimal() == Decimal("0.015")
    assert str(book([["100.00", "1"]], [["100.02", "1"]]).mid_decimal()) == "100.01"
    # Prices written with different digits: the finer scale wins.
    assert book([["1", "1"]], [["2.5", "1"]]).mid_decimal() == Decimal("1.75")
    # At the finest scale a core decimal holds, the half needs a 19th digit: still exact.
    finest = book([["0.000000000000000001", "1"]], [["0.000000000000000002", "1"]])
    assert finest.mid_decimal() == Decimal("0.0000000000000000015")
    assert finest.spread_decimal() == Decimal("0.000000000000000001")


def test_empty_side_has_no_spread_or_mid() -> None:
    view = book([["1.0", "1"]], [])
    assert view.spread_decimal() is None and view.mid_decimal() is None
    assert view.spread() is None and view.mid() is None


def test_exact_reads_agree_with_decimal_arithmetic_on_a_real_tape(
    tape_path: Callable[[str], Path],
) -> None:
    checked = 0
    for view in views_of(tape_path("binance-spot-4sym-2021.jsonl.gz")):
        bid, ask = view.best_bid_exact(), view.best_ask_exact()
        if bid is None or ask is None:
            continue
        assert view.spread_decimal() == Decimal(ask[0]) - Decimal(bid[0])
        assert view.mid_decimal() == (Decimal(ask[0]) + Decimal(bid[0])) / 2
        checked += 1
    assert checked > 100


def test_to_numpy_matches_the_levels(tape_path: Callable[[str], Path]) -> None:
    views = 0
    for view in views_of(tape_path("binance-spot-4sym-2021.jsonl.gz")):
        for n in (0, 1, 10, 5000):
            bids, asks = view.to_numpy(n)
            for array, levels in ((bids, view.bids(n)), (asks, view.asks(n))):
                assert array.dtype == np.float64
                assert array.shape == (len(levels), 2)
                expected = np.array([[float(p), float(q)] for p, q in levels], dtype=np.float64)
                assert np.array_equal(array, expected.reshape(len(levels), 2))
        views += 1
    assert views > 100
    bids, asks = view.to_numpy()
    assert bids.shape == (10, 2) and asks.shape == (10, 2)
    # The arrays are the caller's own: writable, and still there after the book moves on.
    bids[0, 0] = 0.0
    assert bids[0, 0] == 0.0


def test_depth_caps_every_view_of_a_full_book(tape_path: Callable[[str], Path]) -> None:
    """Binance streams the whole book: the session keeps it whole but shows `depth` levels."""
    path = tape_path("binance-ethusdt-20240808.jsonl.gz")
    full = TapeReplayer(Tape.open(path))
    capped = TapeReplayer(Tape.open(path), depth=5)
    full_events = (ev for _r, ev in full.events() if isinstance(ev, BookUpdate))
    compared = 0
    for _record, ev in capped.events():
        if not isinstance(ev, BookUpdate):
            continue
        whole = next(full_events).book
        view = ev.book
        assert whole.depth()[0] > 5 and whole.depth()[1] > 5
        assert view.depth() == (5, 5)
        assert view.bids(100) == whole.bids(5) and view.asks(100) == whole.asks(5)
        assert view.bids() == whole.bids(5)
        assert view.bids_float(50) == whole.bids_float(5)
        assert view.asks_float(50) == whole.asks_float(5)
        bids, asks = view.to_numpy(20)
        assert bids.shape == (5, 2) and asks.shape == (5, 2)
        assert view.snapshot(20)["bids"] == whole.bids(5)
        assert view.bids(3) == whole.bids(3)
        compared += 1
        if compared == 200:
            break
    assert compared == 200
    session = next(iter(capped.sessions.values()))
    assert session.depth == 5
    # The printer reads the same views: it shows 5 levels a side, asked for 10.
    printer = BookPrinter("binance", ev.symbol, depth=10, session=lambda: session)
    rendered = printer.render()
    table = rendered.renderables[0]
    assert isinstance(table, Table)
    bid_prices = [cell for cell in table.columns[2]._cells if cell]
    assert len(bid_prices) == 5


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"depth": -1}, "depth must be None or a whole number >= 1, not -1"),
        ({"depth": 0}, "depth must be None or a whole number >= 1, not 0"),
        ({"depth": "5"}, "depth must be None or a whole number >= 1, not '5'"),
        ({"depth": True}, "depth must be None or a whole number >= 1, not True"),
        ({"resync": "rest"}, "resync must be None, 'snapshot' or 'resubscribe', not 'rest'"),
        ({"resync": 1}, "resync must be None, 'snapshot' or 'resubscribe', not 1"),
        ({"max_buffer_bytes": -1}, "max_buffer_bytes must be a whole number >= 0, not -1"),
        ({"max_frame_bytes": 0}, "max_frame_bytes must be a whole number >= 1, not 0"),
        ({"max_frame_bytes": 1.5}, "max_frame_bytes must be a whole number >= 1, not 1.5"),
        ({"symbols": "BTCUSDT"}, "symbols must be a list of str, not 'BTCUSDT'"),
        ({"symbols": ["BTCUSDT", 7]}, "symbols must be a list of str; 7 is not a str"),
        ({"name": 3}, "name must be a str, not 3"),
        ({"name": ""}, "name must not be empty"),
    ],
)
def test_bad_session_arguments_are_config_errors(options: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError) as info:
        Session("binance", **options)  # type: ignore[arg-type]
    assert str(info.value) == words
    assert not getattr(info.value, "__notes__", None)


def test_bad_read_arguments_are_config_errors() -> None:
    view = book([["1.0", "1"]], [["2.0", "1"]])
    for read in (
        view.bids,
        view.asks,
        view.bids_float,
        view.asks_float,
        view.to_numpy,
        view.snapshot,
    ):
        with pytest.raises(ConfigError, match=r"^n must be a whole number >= 0, not -1$"):
            read(-1)
    with pytest.raises(ConfigError, match=r"^n must be a whole number >= 0, not '3'$"):
        view.bids("3")  # type: ignore[arg-type]
    session = Session("binance")
    with pytest.raises(ConfigError, match=r"^ts_ns must be a whole number of nanoseconds >= 0"):
        session.receive(b"{}", -1)
    with pytest.raises(ConfigError, match="ts_ns"):
        session.receive_snapshot(SYMBOL, b"{}", -5)
    with pytest.raises(ConfigError, match="ts_ns"):
        session.receive_batch([b"{}"], -5)


def test_defaults_are_the_documented_ones() -> None:
    session = Session("binance")
    assert session.depth is None and session.name == "binance"
    view = book([[f"{100 - i}", "1"] for i in range(20)], [[f"{200 + i}", "1"] for i in range(20)])
    assert len(view.bids()) == 10 and view.to_numpy()[0].shape == (10, 2)
