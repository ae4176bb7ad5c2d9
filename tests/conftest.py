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

#: The captures of the venues of issue 12, in ``tapes-more/`` beside ``tapes/``.
MORE_TAPES = (
    "deribit-options-10inst-2021.jsonl.gz",
    "bitmex-l2-10sym-2021.jsonl.gz",
)


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
    """``tape_path("binance-spot-4sym-2021.jsonl.gz")`` -> that tape's path (fails if absent)."""

    def resolve(name: str) -> Path:
        path = tapes_dir / name
        if not path.is_file():
            pytest.fail(f"tape {name} is missing from {tapes_dir}", pytrace=False)
        return path

    return resolve


@pytest.fixture(scope="session")
def more_tape_path() -> Callable[[str], Path]:
    """``more_tape_path(name)`` -> the path of a ``tapes-more/`` capture (fails if absent)."""

    def resolve(name: str) -> Path:
        path = MORE_TAPES_DIR / name
        if not path.is_file():
            pytest.fail(f"tape {name} is missing from {MORE_TAPES_DIR}", pytrace=False)
        return path

    return resolve
