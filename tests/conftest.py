"""Shared fixtures: where the real exchange tapes live."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

TAPES_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tapes"
MORE_TAPES_DIR = TAPES_DIR.parent / "tapes-more"

#: The real captures, named here rather than globbed at import time: a missing tape then fails
#: its tests instead of quietly shrinking a parametrized list (``test_registry`` checks the
#: directory holds exactly these).
REAL_TAPES = (
    "binance-coinm-10sym-2021.jsonl.gz",
    "binance-coinm-ethusd_perp-20240808.jsonl.gz",
    "binance-ethusdt-20240808.jsonl.gz",
    "binance-spot-4sym-2021.jsonl.gz",
    "binance-usdm-4sym-2021.jsonl.gz",
    "binance-usdm-ethusdt-20240808.jsonl.gz",
    "bitfinex-book-p0-7sym-2021.jsonl.gz",
    "bybit-2026.jsonl.gz",
    "coinbase-2026.jsonl.gz",
    "gemini-v2-l2-10sym-2021.jsonl.gz",
    "kraken-v1-book1000-10sym-2021.jsonl.gz",
    "okx-books-3inst-2022.jsonl.gz",
)

MORE_TAPES_DIR = TAPES_DIR.parent / "tapes-more"

#: The captures of the venues added after the first seven, kept in ``tapes-more/`` (the
#: ``tape_path`` fixture finds a name of either tuple in its own folder).
MORE_TAPES = (
    "ascendex-depth-10sym-2021.jsonl.gz",
    "bitget-books-checksum-10sym-2022.jsonl.gz",
    "bitmex-l2-10sym-2021.jsonl.gz",
    "deribit-options-10inst-2021.jsonl.gz",
    "gateio-futures-10sym-2023.jsonl.gz",
    "gateio-spot-10sym-2021.jsonl.gz",
    "htx-swap-depth150-10sym-2022.jsonl.gz",
    "kucoin-l2-10sym-2021.jsonl.gz",
    "upbit-orderbook-10sym-2021.jsonl.gz",
)

#: Every real capture of both folders.
ALL_TAPES = REAL_TAPES + MORE_TAPES


@pytest.fixture(scope="session")
def tapes_dir() -> Path:
    """The directory of real tapes (lobfeed-tape/1); fails, never skips, when it is missing."""
    if not TAPES_DIR.is_dir():
        pytest.fail(
            f"tape directory {TAPES_DIR} is missing: the tests need the shared tapes "
            "(shared/data/tapes beside the repository checkout)",
            pytrace=False,
        )
    return TAPES_DIR


@pytest.fixture(scope="session")
def tape_path(tapes_dir: Path) -> Callable[[str], Path]:
    """``tape_path("binance-spot-4sym-2021.jsonl.gz")`` -> that tape's path, in ``tapes/`` or,
    for a name of ``MORE_TAPES``, in ``tapes-more/`` (fails, never skips, if absent)."""

    def resolve(name: str) -> Path:
        folder = MORE_TAPES_DIR if name in MORE_TAPES else tapes_dir
        path = folder / name
        if not path.is_file():
            pytest.fail(f"tape {name} is missing from {folder}", pytrace=False)
        return path

    return resolve


@pytest.fixture(scope="session")
def more_tape_path(tape_path: Callable[[str], Path]) -> Callable[[str], Path]:
    """``more_tape_path(name)`` -> a tape of ``tapes-more`` (fails, never skips, if absent)."""

    def resolve(name: str) -> Path:
        if name not in MORE_TAPES:
            pytest.fail(f"{name} is not one of MORE_TAPES", pytrace=False)
        return tape_path(name)

    return resolve
