"""The soak (``lobfeed soak``) for 60 s with a fixed seed: every check of its report passes.

It runs in its own process, so that its RSS is the soak's alone; ``make soak`` runs it longer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import lobfeed

SECONDS = 60
SEED = 7


def test_a_minute_of_faults_on_four_venues_passes_every_check(
    tapes_dir: Path, tmp_path: Path
) -> None:
    report_path = tmp_path / "soak.json"
    env = dict(os.environ)
    package_root = str(Path(lobfeed.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (package_root, env.get("PYTHONPATH"))))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lobfeed",
            "soak",
            "--seconds",
            str(SECONDS),
            "--seed",
            str(SEED),
            "--tapes",
            str(tapes_dir),
            "--report",
            str(report_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=SECONDS + 120,
    )
    summary = done.stdout + done.stderr
    report = json.loads(report_path.read_text())
    checks = report["checks"]
    for name in ("books", "recovery", "rss", "latency"):
        assert checks[name]["passed"], f"{name} failed:\n{summary}"
    assert done.returncode == 0, summary
    assert checks["books"]["checked"] > 10_000 and checks["books"]["wrong"] == 0
    venues = report["venues"]
    assert set(venues) == {"binance-coinm", "binance-usdm", "okx", "kraken"}
    # Each kind of fault the soak promises was injected, and each venue reconnected.
    for venue in ("binance-coinm", "binance-usdm"):
        kinds = set(venues[venue]["faults"])
        assert {"drop", "dup", "reorder", "close"} <= kinds, venues[venue]["faults"]
        assert any(kind.startswith("rest-") for kind in kinds)
    for venue in ("okx", "kraken"):
        assert {"close", "checksum"} <= set(venues[venue]["faults"])
        assert venues[venue]["checksum_mismatches"] > 0
    assert all(v["reconnects"] > 0 for v in venues.values())
