"""Every venue is whole: a Rust session, a Python spec, a local-exchange profile, a tape test
and a README row; and every spec whose session can ask for a REST snapshot says where it is.

This is the check that ``docs/adding-a-venue.md`` leads to: a venue missing any part fails
here by name.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from lobfeed._native import Session, supported_venues
from lobfeed.exceptions import LobfeedError
from lobfeed.testing.server import profile_class_for
from lobfeed.venues import SPECS, Subscription

ROOT = Path(__file__).resolve().parents[1]
RUST_VENUES = supported_venues()
# Specs the local exchange cannot serve, and why: a profile replays a capture of the venue's
# own frames, and there is none of these.
NO_CAPTURE = {
    "kraken-v2": "no Kraken ws v2 capture is shared; its decoder is unit-tested",
    "kraken-futures": "no Kraken Futures capture is shared; its decoder is unit-tested",
}


def family(venue: str) -> str:
    """``binance-usdm`` -> ``binance``: the module and file names of a venue."""
    return venue.split("-", 1)[0]


def readme_venue_rows() -> list[str]:
    text = (ROOT / "README.md").read_text()
    start = text.index("| venue (`Feed` names)")
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def test_the_lists_are_not_empty() -> None:
    assert len(RUST_VENUES) >= 9
    assert len(SPECS) >= len(RUST_VENUES)


@pytest.mark.parametrize("venue", RUST_VENUES)
def test_every_rust_venue_has_a_spec_and_a_tape_test(venue: str) -> None:
    specs = [spec for spec in SPECS.values() if spec.session_venue == venue]
    assert specs, f"no Python spec in lobfeed/venues decodes with the {venue} session"
    tape_test = ROOT / "rust" / "core" / "tests" / f"{family(venue)}_tapes.rs"
    assert tape_test.is_file(), f"{venue}: no tape test {tape_test.relative_to(ROOT)}"


@pytest.mark.parametrize("venue", sorted({family(v) for v in RUST_VENUES}))
def test_every_rust_venue_has_the_layout_of_the_guide(venue: str) -> None:
    """docs/adding-a-venue.md: the frames, the session and its tests apart, in one folder."""
    folder = ROOT / "rust" / "core" / "src" / "venue" / venue
    for part in ("mod.rs", "wire.rs", "tests.rs"):
        assert (folder / part).is_file(), f"{venue}: no {part} in {folder.relative_to(ROOT)}"
    registry = (ROOT / "rust" / "core" / "src" / "venue" / "mod.rs").read_text()
    assert f"pub mod {venue};" in registry
    guide = (ROOT / "docs" / "adding-a-venue.md").read_text()
    for place in ("wire.rs", "mod.rs", "registry!", "_tapes.rs", "python/lobfeed/venues/"):
        assert place in guide


@pytest.mark.parametrize("name", list(SPECS))
def test_every_spec_has_a_session_a_profile_and_a_readme_row(name: str) -> None:
    spec = SPECS[name]
    assert spec.session_venue in RUST_VENUES, f"{name}: no Rust session {spec.session_venue}"
    if name in NO_CAPTURE:
        with pytest.raises(LobfeedError):
            profile_class_for(name)
    else:
        assert profile_class_for(name) is not None
    rows = [row for row in readme_venue_rows() if re.search(rf"`{re.escape(name)}`", row)]
    assert len(rows) == 1, f"{name}: {len(rows)} rows of the README venue table name it"


@pytest.mark.parametrize("name", list(SPECS))
def test_a_session_that_asks_for_snapshots_has_a_snapshot_url(name: str) -> None:
    spec = SPECS[name]
    try:
        Session(spec.session_venue, resync="snapshot")
    except LobfeedError:
        return  # books come in-band only: nothing to fetch
    symbol = "BTCUSDT"
    url = spec.snapshot_url("https://rest.example", symbol, Subscription((symbol,)))
    assert url is not None, f"{name} can resync by snapshot but has no snapshot URL"
    # Tapes record snapshots by URL: replay must find the symbol in it again.
    assert spec.snapshot_symbol(url) == symbol


def test_every_tape_is_of_a_known_venue(tapes_dir: Path, tape_path: Callable[[str], Path]) -> None:
    from conftest import ALL_TAPES, MORE_TAPES, MORE_TAPES_DIR, REAL_TAPES
    from lobfeed.tape import Tape

    assert sorted(p.name for p in tapes_dir.iterdir()) == sorted(REAL_TAPES)
    assert sorted(p.name for p in MORE_TAPES_DIR.iterdir()) == sorted(MORE_TAPES)
    for path in map(tape_path, ALL_TAPES):
        venue = Tape.open(path).header.venue
        assert venue in SPECS, f"{path.name} is a tape of {venue}, which no spec serves"
