"""`lobfeed run config.toml`: the file's checks name the key at fault, shards split symbol lists,
and a config of two feeds with a tape sink and a sink of one's own records both, for real."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from lobfeed.cli import main
from lobfeed.config import SINK_TYPES, Shard, load, parse
from lobfeed.exceptions import ConfigError
from lobfeed.record import Runner
from lobfeed.tape import Tape
from test_record import TIMEOUT, assert_same_books, frames_of, lobfeed_env, serve, streams_in

FEED = """
[[feeds]]
venue = "binance"
symbols = ["BTCUSDT", "ETHUSDT"]
"""
TAPE_SINK = """
[[sinks]]
type = "tape"
path = "{feed}.jsonl.gz"
"""

BOOK_SINK = '''
"""A sink of a user's own: book updates to a JSON Lines file."""
import orjson
from lobfeed.sinks.base import Sink


class BookFile(Sink):
    name = "bookfile"

    def __init__(self, *, venue, path):
        self.venue = venue
        self.path = path.format(venue=venue)
        self.file = None

    async def start(self):
        self.file = open(self.path, "wb")

    def on_book(self, update):
        line = {"venue": self.venue, "symbol": update.symbol, "seq": update.seq,
                "bids": update.book.bids(5), "asks": update.book.asks(5)}
        self.file.write(orjson.dumps(line) + b"\\n")

    async def close(self):
        self.file.close()
'''


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


BAD_CONFIGS = [
    (
        FEED + '[[feeds]]\nvenue = "okx"\nsymbols = ["BTC-USDT"]\ndepth = -5\n' + TAPE_SINK,
        "feeds[1].depth: must be a positive integer, got -5",
    ),
    (FEED + "dpeth = 5\n" + TAPE_SINK, "feeds[0].dpeth: unknown key; known: name, venue,"),
    (FEED.replace('"binance"', '"binanse"') + TAPE_SINK, "feeds[0].venue: unknown venue 'binanse'"),
    (
        FEED.replace('["BTCUSDT", "ETHUSDT"]', "[]") + TAPE_SINK,
        "feeds[0].symbols: must be a non-empty",
    ),
    (
        FEED.replace('"ETHUSDT"', "42") + TAPE_SINK,
        "feeds[0].symbols[1]: must be a non-empty string, got an integer (42)",
    ),
    (
        FEED + 'channels = ["book", "book2"]\n' + TAPE_SINK,
        "feeds[0].channels[1]: unknown channel 'book2'",
    ),
    (
        FEED + 'ws_url = "http://x"\n' + TAPE_SINK,
        "feeds[0].ws_url: must start with ws:// or wss://",
    ),
    (FEED + "reconnect = 1\n" + TAPE_SINK, "feeds[0].reconnect: must be true or false"),
    (FEED + FEED + TAPE_SINK, "feeds[1].name: 'binance' already names feeds[0]"),
    (FEED, "sinks: missing"),
    (TAPE_SINK, "feeds: missing"),
    (FEED + "[[sinks]]\npath = 'x'\n", "sinks[0].type: missing"),
    (
        FEED + '[[sinks]]\ntype = "kafka"\n',
        "sinks[0].type: unknown sink type 'kafka'; known: tape, parquet, zmq, nats",
    ),
    (
        FEED + '[[sinks]]\ntype = "nosuch.module:Sink"\n',
        "sinks[0].type: 'nosuch.module:Sink' sinks are not available in this installation "
        "(no module nosuch.module)",
    ),
    (FEED + '[[sinks]]\ntype = "tape"\n', "sinks[0].path: missing"),
    (
        FEED + TAPE_SINK + "rotate_bytes = 'lots'\n",
        "sinks[0].rotate_bytes: must be a number of bytes",
    ),
    (
        FEED + TAPE_SINK + "rotate_seconds = 0\n",
        "sinks[0].rotate_seconds: must be a positive number of seconds, got 0",
    ),
    (FEED + TAPE_SINK + "colour = 'red'\n", "sinks[0].colour: unknown key"),
    (
        FEED + TAPE_SINK.replace("{feed}", "{date}"),
        "sinks[0].path: '{date}.jsonl.gz' has a placeholder",
    ),
    (
        FEED + TAPE_SINK + 'feeds = ["binanse"]\n',
        "sinks[0].feeds[0]: no feed is named 'binanse'; feeds: binance",
    ),
    (
        FEED + FEED.replace('"binance"', '"okx"') + TAPE_SINK.replace("{feed}", "all"),
        "sinks[0].path: the tape sink serves 2 feeds, so its path needs {feed}",
    ),
    (
        FEED + TAPE_SINK + TAPE_SINK.replace("{feed}", "again-{feed}"),
        "sinks[1]: feed 'binance' is already recorded by sinks[0]",
    ),
    ('shard = "2/2"\n' + FEED + TAPE_SINK, "shard: must be \"i/n\" with 0 <= i < n, got '2/2'"),
    (
        'shard = "0/2"\n' + FEED + TAPE_SINK,
        'sinks[0].path: with shard = "0/2", the path needs {shard}',
    ),
    (
        'shard = "2/3"\n'
        + FEED.replace(', "ETHUSDT"', "")
        + TAPE_SINK.replace("{feed}", "{feed}-{shard}"),
        "shard: shard 2/3 has no symbols",
    ),
    (
        FEED + TAPE_SINK.replace("{feed}", "nowhere/{feed}"),
        "sinks[0].path 'nowhere/binance.jsonl.gz': the directory 'nowhere' does not exist",
    ),
    (
        FEED
        + 'channels = ["candles"]\n'.replace("candles", "candles")
        + TAPE_SINK
        + "\n[nonsense]\n",
        "nonsense: unknown key; known: feeds, sinks, shard",
    ),
    ("feeds = [", "not valid TOML"),
]


@pytest.mark.parametrize(("text", "words"), BAD_CONFIGS, ids=[w[:40] for _, w in BAD_CONFIGS])
def test_bad_configs_name_the_key_exit_2_in_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    words: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    path = write_config(tmp_path, text)
    assert main(["run", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"lobfeed run: {path}: ")
    assert words in err
    assert not list(tmp_path.glob("*.jsonl.gz"))  # nothing was started


def test_a_bad_config_through_the_command_line(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        FEED + '[[feeds]]\nvenue = "okx"\nsymbols = ["BTC-USDT"]\ndepth = -5\n' + TAPE_SINK,
    )
    done = subprocess.run(
        [sys.executable, "-m", "lobfeed", "run", str(path)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=lobfeed_env(),
        check=False,
    )
    assert done.returncode == 2
    assert (
        done.stderr == f"lobfeed run: {path}: feeds[1].depth: must be a positive integer, got -5\n"
    )


def test_a_missing_file_is_one_line_too(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "/nonexistent/config.toml"]) == 2
    assert capsys.readouterr().err == "lobfeed run: /nonexistent/config.toml: no such file\n"


def test_feed_options_the_venue_refuses_are_named_by_feed(tmp_path: Path) -> None:
    path = write_config(tmp_path, FEED + 'venue_options = { bogus = "x" }\n' + TAPE_SINK)
    with pytest.raises(ConfigError, match=r"^feeds\[0\]: binance has no option 'bogus'"):
        Runner(load(path))


def test_sink_types_resolve_through_the_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(SINK_TYPES, "kafka", "lobfeed.sinks.kafka:KafkaSink")
    with pytest.raises(ConfigError) as info:
        parse({"feeds": [{"venue": "binance", "symbols": ["X"]}], "sinks": [{"type": "kafka"}]})
    assert str(info.value) == (
        "sinks[0].type: 'kafka' sinks are not available in this installation "
        "(no module lobfeed.sinks.kafka)"
    )
    (tmp_path / "needs_pkg.py").write_text("import not_installed_pkg_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(SINK_TYPES, "needy", "needs_pkg:Sink")
    with pytest.raises(ConfigError, match="'needy' sinks need the package 'not_installed_pkg_xyz'"):
        parse({"feeds": [{"venue": "binance", "symbols": ["X"]}], "sinks": [{"type": "needy"}]})
    (tmp_path / "booksink.py").write_text(BOOK_SINK)
    config = parse(
        {
            "feeds": [{"venue": "binance", "symbols": ["X"]}],
            "sinks": [{"type": "booksink:BookFile", "path": "b.jsonl", "colour": "red"}],
        }
    )
    from lobfeed.record import Runner

    with pytest.raises(
        ConfigError, match=r"^sinks\[0\]\.colour: BookFile takes no such option; it takes: path$"
    ):
        Runner(config)


def test_shards_split_each_feed_by_sorted_position() -> None:
    symbols = ["E", "A", "D", "C", "B"]
    parts = [Shard(i, 3).select(symbols) for i in range(3)]
    assert parts == [("A", "D"), ("B", "E"), ("C",)]  # sorted: A B C D E, k-th to k % 3
    assert sorted(s for part in parts for s in part) == sorted(symbols)
    assert Shard.parse(" 1 / 4 ") == Shard(1, 4)
    for bad in ("1", "4/4", "-1/2", "a/b", "1/0", 3):
        with pytest.raises(ValueError, match="must be"):
            Shard.parse(bad)

    table = {
        "shard": "1/2",
        "feeds": [
            {"venue": "binance", "symbols": ["ETHUSDT", "BTCUSDT", "BNBUSDT"]},
            {"venue": "okx", "symbols": ["BTC-USDT"]},  # all on shard 0
        ],
        "sinks": [{"type": "tape", "path": "{feed}-{shard}.jsonl.gz"}],
    }
    config = parse(table)
    # Sorted: BNBUSDT BTCUSDT ETHUSDT; shard 1 of 2 takes the second.
    assert [(f.venue, f.symbols) for f in config.feeds] == [("binance", ("BTCUSDT",))]
    assert config.tape_path(config.sinks[0], config.feeds[0]) == "binance-1of2.jsonl.gz"
    config = parse(table, shard="0/2")  # the command line's --shard wins
    assert [(f.venue, f.symbols) for f in config.feeds] == [
        ("binance", ("BNBUSDT", "ETHUSDT")),
        ("okx", ("BTC-USDT",)),
    ]


def test_check_says_what_would_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(
        tmp_path,
        'shard = "1/2"\n'
        + FEED.replace('"ETHUSDT"', '"ETHUSDT", "BNBUSDT"')
        + TAPE_SINK.replace("{feed}", str(tmp_path / "{feed}-{shard}")),
    )
    assert main(["run", str(path), "--check"]) == 0
    assert capsys.readouterr().out == "binance: binance BTCUSDT -> tape\n"
    assert main(["run", str(path), "--check", "--shard", "0/2"]) == 0
    assert capsys.readouterr().out == "binance: binance BNBUSDT,ETHUSDT -> tape\n"
    assert not list(tmp_path.glob("*.jsonl.gz"))


def test_run_records_two_feeds_to_tapes_and_feeds_a_sink_of_ones_own(
    tape_path: Callable[[str], Path], tmp_path: Path
) -> None:
    (tmp_path / "booksink.py").write_text(BOOK_SINK)
    usdm, coinm = (
        tape_path("binance-usdm-4sym-2021.jsonl.gz"),
        tape_path("binance-coinm-10sym-2021.jsonl.gz"),
    )
    usdm_symbols, coinm_symbols = {"SUSHIUSDT", "KEEPUSDT"}, {"BCHUSD_PERP", "ETHUSD_210924"}
    with (
        serve(usdm, "--speed", "10", "--once") as usdm_server,
        serve(coinm, "--speed", "10", "--once") as coinm_server,
    ):
        config = write_config(
            tmp_path,
            f"""
[[feeds]]
name = "usdm"
venue = "binance-usdm"
symbols = {sorted(usdm_symbols)!r}
channels = ["book"]
ws_url = "{usdm_server.ws_url}"
rest_url = "{usdm_server.rest_url}"
reconnect = false

[[feeds]]
name = "coinm"
venue = "binance-coinm"
symbols = {sorted(coinm_symbols)!r}
channels = ["book", "candles"]
ws_url = "{coinm_server.ws_url}"
rest_url = "{coinm_server.rest_url}"
reconnect = false

[[sinks]]
type = "tape"
path = "{tmp_path}/{{feed}}.jsonl.gz"

[[sinks]]
type = "booksink:BookFile"
feeds = ["usdm"]
path = "{tmp_path}/books-{{venue}}.jsonl"
""".replace("'", '"'),
        )
        env = lobfeed_env()
        env["PYTHONPATH"] += f":{tmp_path}"
        done = subprocess.run(
            [sys.executable, "-m", "lobfeed", "run", str(config)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=env,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert "lobfeed run: usdm: " in done.stdout and "lobfeed run: coinm: " in done.stdout
    for name, source, symbols in (
        ("usdm", usdm, usdm_symbols),
        ("coinm", coinm, coinm_symbols),
    ):
        recorded = Tape.open(tmp_path / f"{name}.jsonl.gz", strict=True)
        frames = frames_of(recorded)
        assert frames == frames_of(Tape.open(source), streams_in(frames))
        assert_same_books(Tape.open(source), recorded, symbols)
    assert any(s.endswith("@kline_1m") for s in streams_in(frames))  # coinm's candles too
    # The sink of one's own got the usdm feed's books, the ones its tape replays to.
    lines = [orjson.loads(line) for line in (tmp_path / "books-binance-usdm.jsonl").open("rb")]
    assert {line["venue"] for line in lines} == {"binance-usdm"}
    assert {line["symbol"] for line in lines} == usdm_symbols
    assert len(lines) > 20
    assert not (tmp_path / "books-binance-coinm.jsonl").exists()


def test_load_reads_sizes_and_keeps_the_tape_options(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        FEED
        + TAPE_SINK
        + 'rotate_bytes = "100M"\nrotate_seconds = 3600\nflush_interval = 0.5\nfsync = false\n',
    )
    sink = load(path).sinks[0]
    assert dict(sink.options) == {
        "path": "{feed}.jsonl.gz",
        "rotate_bytes": 100 << 20,
        "rotate_seconds": 3600.0,
        "flush_interval": 0.5,
        "fsync": False,
    }
