"""The Feed's hot path: ``Session.receive_routed`` delivers what ``Dispatcher.dispatch`` would.

Both are fed the same real tape; the callbacks must see the same events in the same order.
Errors raised by callbacks, frames that fail and the lag sample are checked on the same path.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lobfeed._native import BookUpdate, NeedSnapshot, Session, Trade
from lobfeed.aio.dispatch import Dispatcher
from lobfeed.aio.options import ConnectOptions, auto_transport
from lobfeed.exceptions import ConfigError, FrameError
from lobfeed.replay import snapshot_symbol
from lobfeed.tape import Tape

TAPE = "binance-coinm-10sym-2021.jsonl.gz"


def _records(path: Path) -> list[tuple[str, str, bytes, int]]:
    out = []
    for record in Tape.open(path).iter_records("recv", "http"):
        assert record.data is not None
        out.append((record.type, record.url or "", record.data.encode(), record.ts_ns))
    return out


def _describe(ev: Any) -> tuple[Any, ...]:
    return (type(ev).__name__, ev.symbol, getattr(ev, "seq", None), getattr(ev, "ts_ns", None))


def _feed(path: Path, routed: bool) -> dict[str, list[tuple[Any, ...]]]:
    """Every event of the tape as the callbacks saw it, through dispatch or receive_routed."""
    seen: dict[str, list[tuple[Any, ...]]] = {"book": [], "trade": [], "control": []}

    def on_book(update: BookUpdate) -> None:
        update.book.best_bid()  # a view handed out by the routed path reads the current book
        seen["book"].append(_describe(update))

    session = Session("binance-coinm")
    d = Dispatcher(
        "binance-coinm",
        on_book=on_book,
        on_trade=lambda ev: seen["trade"].append(_describe(ev)),
        control=lambda ev: seen["control"].append(_describe(ev)),
    )
    receive = d.route(session, lambda e: pytest.fail(f"no frame of the tape fails: {e}"))
    for kind, url, data, ts_ns in _records(path):
        if kind == "http":
            symbol = snapshot_symbol(url)
            assert symbol is not None
            d.dispatch(session.receive_snapshot(symbol, data, ts_ns))
        elif routed:
            receive(data, ts_ns)
        else:
            d.dispatch(session.receive(data, ts_ns))
    return seen


def test_routed_delivery_equals_dispatch(tape_path: Callable[[str], Path]) -> None:
    path = tape_path(TAPE)
    routed = _feed(path, routed=True)
    dispatched = _feed(path, routed=False)
    assert routed == dispatched
    assert len(routed["book"]) > 1000 and routed["trade"]
    assert any(name == "NeedSnapshot" for name, *_ in routed["control"])


def test_callback_errors_are_reported_and_delivery_goes_on(
    tape_path: Callable[[str], Path],
) -> None:
    errors: list[tuple[Any, Any, BaseException]] = []
    books: list[str] = []
    session = Session("binance-coinm")

    def failing(update: BookUpdate) -> None:
        books.append(update.symbol)
        raise ValueError("user bug")

    session.set_routes(
        {BookUpdate: failing, Trade: None},
        None,
        lambda handler, ev, exc: errors.append((handler, ev, exc)),
        lambda e: pytest.fail(str(e)),
    )
    for kind, url, data, ts_ns in _records(tape_path(TAPE)):
        if kind == "http":
            symbol = snapshot_symbol(url)
            assert symbol is not None
            session.receive_snapshot(symbol, data, ts_ns)
        else:
            session.receive_routed(data, ts_ns)
    assert books and len(errors) == len(books)
    handler, ev, exc = errors[-1]
    assert handler is failing and isinstance(ev, BookUpdate) and isinstance(exc, ValueError)
    assert type(session.take_last_event()) in (BookUpdate, Trade, NeedSnapshot)
    assert session.take_last_event() is None


def test_a_base_exception_is_not_swallowed() -> None:
    session = Session("binance")

    def stop(ev: Any) -> None:
        raise KeyboardInterrupt

    session.set_routes({}, stop, lambda *a: pytest.fail("not an Exception"), print)
    frame = b'{"stream":"ethusdt@depth","data":{"e":"depthUpdate","E":1,"s":"ETHUSDT","U":1,"u":2,"b":[],"a":[]}}'  # noqa: E501
    with pytest.raises(KeyboardInterrupt):
        session.receive_routed(frame, 1)  # the NeedSnapshot goes to the fallback


def test_a_failed_frame_goes_to_on_rejected_with_its_events() -> None:
    rejected: list[FrameError] = []
    session = Session("binance")
    session.set_routes({}, None, print, rejected.append)
    session.receive_routed(b"{not json", 1)
    assert len(rejected) == 1 and isinstance(rejected[0], FrameError)
    assert session.stats()["errors"] == 1


def test_receive_routed_needs_routes() -> None:
    with pytest.raises(ConfigError, match="set_routes"):
        Session("binance").receive_routed(b"{}", 1)


def test_the_default_transport_is_picows_where_it_can_be_used() -> None:
    # picows is a dependency of lobfeed: the default install uses it.
    assert ConnectOptions().transport == "picows"
    assert auto_transport(None) == "picows"
    assert auto_transport("socks5://127.0.0.1:1080") == "picows"
    # Not usable by picows, or not known before connecting: the fallback.
    assert ConnectOptions(proxy="socks4a://127.0.0.1:1080").transport == "websockets"
    assert ConnectOptions(proxy="env").transport == "websockets"
    assert ConnectOptions(transport="websockets").transport == "websockets"
    with pytest.raises(ConfigError, match="transport"):
        ConnectOptions(transport="carrier-pigeon")
