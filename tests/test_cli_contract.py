"""The command line's promises: help for every argument, one line and exit 2 for a mistake,
exit 1 for a failed check, every tape of ``verify`` reported, ``--version``."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from lobfeed import __version__
from lobfeed.cli import _parser


def lobfeed(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lobfeed", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[name] = sub
                for inner, deeper in _subparsers(sub).items():
                    found[f"{name} {inner}"] = deeper
    return found


def test_every_argument_of_every_command_has_help() -> None:
    commands = _subparsers(_parser())
    assert {"serve", "replay", "verify", "book", "demo", "soak", "bench"} <= set(commands)
    missing = [
        f"{name} {action.dest}"
        for name, sub in commands.items()
        for action in sub._actions
        if not isinstance(action, argparse._SubParsersAction) and action.help in (None, "")
    ]
    assert missing == []


def test_version() -> None:
    done = lobfeed("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"lobfeed {__version__}"


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (("replay", "--depth", "-1", "x.jsonl"), "--depth"),
        (("replay", "--depth", "five", "x.jsonl"), "five"),
        (("serve", "x.jsonl", "--port", "70000"), "70000"),
        (("demo", "--speed", "0"), "speed"),
        (("book", "nasdaq", "BTCUSDT", "--duration", "1"), "nasdaq"),
        (("book", "binance", "BTCUSDT", "--depth", "0"), "--depth"),
        (("replay", "/no/such/tape.jsonl.gz"), "/no/such/tape.jsonl.gz"),
        (("nonsense",), "nonsense"),
    ],
)
def test_a_mistake_is_one_line_and_exit_2(args: tuple[str, ...], names: str) -> None:
    done = lobfeed(*args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert names in lines[0]
    assert "Traceback" not in done.stderr


def test_verify_reports_every_tape_and_fails_on_any(
    tape_path: Callable[[str], Path], tmp_path: Path
) -> None:
    good = tape_path("okx-books-3inst-2022.jsonl.gz")
    damaged = tmp_path / "not-a-tape.jsonl"
    damaged.write_text('{"type": "header", "format": "something-else/9"}\n')
    missing = tmp_path / "missing.jsonl.gz"
    done = lobfeed("verify", str(missing), str(damaged), str(good))
    assert done.returncode == 1
    out = done.stdout
    assert f"{missing}: FAILED" in out
    assert f"{damaged}: FAILED" in out
    # The tapes after the bad ones were still proven.
    assert "290/290" in out and "OK: no truth contradicted" in out
    alone = lobfeed("verify", str(good))
    assert alone.returncode == 0, alone.stdout + alone.stderr


def test_book_takes_a_symbol_in_any_case_and_its_depth(tape_path: Callable[[str], Path]) -> None:
    """`lobfeed book binance ethusdt` used to wait forever for a book named `ethusdt`."""
    from test_record import lobfeed_env, serve

    with serve(tape_path("binance-ethusdt-20240808.jsonl.gz"), "--speed", "20") as served:
        args = ["book", "binance", "ethusdt", "--depth", "5", "--duration", "4"]
        args += ["--ws-url", served.ws_url, "--rest-url", served.rest_url]
        done = subprocess.run(
            [sys.executable, "-m", "lobfeed", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=lobfeed_env(),
            check=False,
        )
    assert done.returncode == 0, done.stderr
    summary = done.stdout.strip().splitlines()[-1]
    updates = int(summary.split()[0])
    assert updates > 0 and "0 gaps" in summary, summary
