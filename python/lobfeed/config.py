"""The ``lobfeed run`` configuration file: feeds, the sinks their data goes to, and a shard.

One TOML file describes a whole recorder or publisher process::

    shard = "0/2"                      # optional: this process takes every other symbol

    [[feeds]]
    venue = "binance"
    symbols = ["BTCUSDT", "ETHUSDT"]
    channels = ["book", "trades"]      # optional (book and trades)
    depth = 20                         # optional

    [[sinks]]
    type = "tape"
    path = "tapes/{feed}-{shard}.jsonl.gz"
    rotate_seconds = 3600

Everything is checked before anything runs, and every error names the key at fault the way
the file spells it (``feeds[1].depth: must be a positive integer, got -5``; indexes count
from 0). :func:`load` reads a file, :func:`parse` a table already read.

Sink types other than ``tape`` live in their own modules, found through :data:`SINK_TYPES`
only when a configuration names them: a type whose module is missing is refused with a
:class:`~lobfeed.exceptions.ConfigError` saying so, and a new sink plugs in with one line here.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from lobfeed.exceptions import ConfigError
from lobfeed.venues import CHANNELS, SPECS

__all__ = [
    "SINK_TYPES",
    "TAPE",
    "FeedConfig",
    "RunConfig",
    "Shard",
    "SinkConfig",
    "check_tape_options",
    "load",
    "parse",
    "parse_size",
    "resolve_sink",
    "sink_arguments",
]

TAPE: Final = "tape"
"""The built-in sink type: the feed's raw frames to a lobfeed-tape/1 file."""

SINK_TYPES: dict[str, str] = {
    "parquet": "lobfeed.sinks.parquet:ParquetSink",
    "zmq": "lobfeed.sinks.zmq:ZmqSink",
    "nats": "lobfeed.sinks.nats:NatsSink",
}
"""Sink type name -> ``"module:factory"``; a type may also be a ``"module:factory"`` itself.
A factory is called once per feed it serves, as
``factory(venue=<the feed's venue>, **the sink's other keys)`` (``venue`` only if it takes one),
and returns a :class:`lobfeed.sinks.base.Sink`."""

FEED_KEYS: Final = (
    "name",
    "venue",
    "symbols",
    "channels",
    "depth",
    "candle_interval",
    "ws_url",
    "rest_url",
    "venue_options",
    "reconnect",
)
TAPE_KEYS: Final = (
    "type",
    "feeds",
    "path",
    "rotate_bytes",
    "rotate_seconds",
    "flush_interval",
    "fsync",
)
TOP_KEYS: Final = ("feeds", "sinks", "shard")
# What a tape path may name, so that feeds and shards do not write over each other's files.
PLACEHOLDERS: Final = ("feed", "venue", "shard")

_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS: Final = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(value: object) -> int:
    """A byte count: an integer, or a string such as ``"100M"`` or ``"2GiB"`` (powers of 1024).
    Raises ``ValueError`` naming what it got."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise ValueError(f"must be a positive number of bytes, got {value}")
        return value
    match = _SIZE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"must be a number of bytes such as 100000000 or '100M', got {value!r}")
    size = int(match.group(1)) * _UNITS[(match.group(2) or "")[:1].lower()]
    if size <= 0:
        raise ValueError(f"must be a positive number of bytes, got {value!r}")
    return size


@dataclass(frozen=True, slots=True)
class Shard:
    """This process's part of every feed's symbols: ``index`` of ``count`` (``"i/n"``).

    A feed's symbols are sorted, and the k-th goes to shard ``k % count``: the n processes of
    one configuration take disjoint parts that together are the whole list, and a symbol stays
    in its shard as long as the list is the same.
    """

    index: int
    count: int

    @classmethod
    def parse(cls, text: object) -> Shard:
        """``"i/n"`` with ``0 <= i < n``; ``ValueError`` otherwise."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f'must be "i/n" (this shard, of how many), got {text!r}')
        index, count = int(match.group(1)), int(match.group(2))
        if count < 1 or index >= count:
            raise ValueError(f'must be "i/n" with 0 <= i < n, got {text!r}')
        return cls(index, count)

    def select(self, symbols: Iterable[str]) -> tuple[str, ...]:
        """This shard's symbols, in sorted order."""
        return tuple(sorted(symbols)[self.index :: self.count])

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def label(self) -> str:
        """The shard as it appears in a file name (``{shard}``): ``0of2``."""
        return f"{self.index}of{self.count}"


@dataclass(frozen=True, slots=True)
class FeedConfig:
    """One ``[[feeds]]`` entry: the arguments of one ``Feed``."""

    venue: str
    symbols: tuple[str, ...]
    name: str = ""
    """What sinks and file names call the feed (``{feed}``); the venue unless given."""
    channels: tuple[str, ...] | None = None
    depth: int | None = None
    candle_interval: str | None = None
    ws_url: str | None = None
    rest_url: str | None = None
    venue_options: Mapping[str, str] = field(default_factory=dict)
    reconnect: bool = True
    where: str = "feeds[0]"
    """How errors name this entry."""

    def feed_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``Feed`` besides venue, symbols, callbacks and ``record``."""
        kwargs: dict[str, Any] = {
            "ws_url": self.ws_url,
            "rest_url": self.rest_url,
            "depth": self.depth,
            "reconnect": self.reconnect,
        }
        if self.channels is not None:
            kwargs["channels"] = self.channels
        if self.candle_interval is not None:
            kwargs["candle_interval"] = self.candle_interval
        if self.venue_options:
            kwargs["venue_options"] = dict(self.venue_options)
        return kwargs


@dataclass(frozen=True, slots=True)
class SinkConfig:
    """One ``[[sinks]]`` entry."""

    type: str
    options: Mapping[str, Any]
    """Its keys other than ``type`` and ``feeds``."""
    feeds: tuple[str, ...] | None = None
    """Names of the feeds it serves (None: every feed)."""
    where: str = "sinks[0]"


@dataclass(frozen=True, slots=True)
class RunConfig:
    feeds: tuple[FeedConfig, ...]
    sinks: tuple[SinkConfig, ...]
    shard: Shard | None = None
    source: str = "<config>"
    """The file it was read from, for messages."""

    def sinks_of(self, feed: FeedConfig) -> list[SinkConfig]:
        return [s for s in self.sinks if s.feeds is None or feed.name in s.feeds]

    def tape_path(self, sink: SinkConfig, feed: FeedConfig) -> str:
        """A tape sink's path for ``feed``, its placeholders filled in."""
        template = str(sink.options["path"])
        shard = self.shard.label if self.shard is not None else "0of1"
        return template.format(feed=feed.name, venue=feed.venue, shard=shard)


def load(path: str | os.PathLike[str], *, shard: str | None = None) -> RunConfig:
    """Reads and checks a configuration file; ``shard`` (``"i/n"``) overrides the file's.

    Raises :class:`ConfigError` naming the file and the key at fault.
    """
    source = str(path)
    try:
        with open(path, "rb") as file:
            table = tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read it: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        return parse(table, source=source, shard=shard)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def parse(
    table: Mapping[str, Any], *, source: str = "<config>", shard: str | None = None
) -> RunConfig:
    """A configuration from its TOML table; :class:`ConfigError` names the key at fault."""
    _no_unknown_keys(table, TOP_KEYS, "")
    chosen: Shard | None = None
    shard_text = shard if shard is not None else table.get("shard")
    if shard_text is not None:
        where = "--shard" if shard is not None else "shard"
        try:
            chosen = Shard.parse(shard_text)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    raw_feeds = table.get("feeds")
    if raw_feeds is None:
        raise ConfigError("feeds: missing; add at least one [[feeds]] table")
    feeds = [_feed(entry, f"feeds[{i}]") for i, entry in enumerate(_tables(raw_feeds, "feeds"))]
    seen: dict[str, str] = {}
    for feed in feeds:
        if feed.name in seen:
            raise ConfigError(
                f"{feed.where}.name: {feed.name!r} already names {seen[feed.name]}; "
                "give each feed of one venue its own name"
            )
        seen[feed.name] = feed.where

    raw_sinks = table.get("sinks")
    if raw_sinks is None:
        raise ConfigError('sinks: missing; add at least one [[sinks]] table (e.g. type = "tape")')
    sinks = [
        _sink(entry, f"sinks[{i}]", seen) for i, entry in enumerate(_tables(raw_sinks, "sinks"))
    ]
    config = RunConfig(tuple(feeds), tuple(sinks), chosen, source)
    _check_tapes(config)
    if chosen is not None:
        config = _sharded(config, chosen)
    return config


def resolve_sink(type_name: str, where: str) -> Callable[..., Any]:
    """The factory of a sink type, imported now; :class:`ConfigError` if it cannot be had."""
    target = SINK_TYPES.get(type_name)
    if target is None and ":" in type_name:
        target = type_name  # a sink of one's own, named by where it lives
    if target is None:
        known = ", ".join([TAPE, *SINK_TYPES])
        raise ConfigError(
            f"{where}.type: unknown sink type {type_name!r}; known: {known}, or "
            "'package.module:Factory' for a sink of your own"
        )
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or "?"
        if module_name == missing or module_name.startswith(missing + "."):
            raise ConfigError(
                f"{where}.type: {type_name!r} sinks are not available in this installation "
                f"(no module {module_name})"
            ) from None
        raise ConfigError(
            f"{where}.type: {type_name!r} sinks need the package {missing!r}, which is not "
            f"installed ({module_name} imports it)"
        ) from None
    except ImportError as exc:
        raise ConfigError(f"{where}.type: {type_name!r} sinks cannot be loaded: {exc}") from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ConfigError(
            f"{where}.type: {module_name} has no {attribute} to make {type_name!r} sinks"
        )
    return factory  # type: ignore[no-any-return]


def sink_arguments(
    factory: Callable[..., Any], options: Mapping[str, Any], venue: str | None, where: str
) -> dict[str, Any]:
    """The keyword arguments to call ``factory`` with; a key it does not take is refused."""
    name = getattr(factory, "__name__", repr(factory))
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {"venue": venue, **options}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    named = [
        p.name
        for p in parameters.values()
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    if not takes_any:
        for key in options:
            if key not in named or key == "venue":
                allowed = ", ".join(n for n in named if n != "venue") or "none"
                raise ConfigError(
                    f"{where}.{key}: {name} takes no such option; it takes: {allowed}"
                )
    arguments = dict(options)
    if takes_any or "venue" in named:
        arguments["venue"] = venue
    return arguments


# -- checks ---------------------------------------------------------------------------------


def _tables(value: object, where: str) -> list[Mapping[str, Any]]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: must be a non-empty array of tables ([[{where}]])")
    for i, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}[{i}]: must be a table, got {_kind(entry)}")
    return value


def _no_unknown_keys(table: Mapping[str, Any], known: Sequence[str], where: str) -> None:
    for key in table:
        if key not in known:
            prefix = f"{where}." if where else ""
            raise ConfigError(f"{prefix}{key}: unknown key; known: {', '.join(known)}")


def _kind(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    for kind, name in names.items():
        if type(value) is kind:
            return f"{name} ({value!r})"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _string(
    entry: Mapping[str, Any], key: str, where: str, *, required: bool = False
) -> str | None:
    value = entry.get(key)
    if value is None:
        if required:
            raise ConfigError(f"{where}.{key}: missing")
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}.{key}: must be a non-empty string, got {_kind(value)}")
    return value


def _strings(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: must be a non-empty array of strings, got {_kind(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(f"{where}[{i}]: must be a non-empty string, got {_kind(item)}")
    return tuple(value)


def _positive_int(value: object, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        shown = value if isinstance(value, int) and not isinstance(value, bool) else _kind(value)
        raise ConfigError(f"{where}: must be a positive integer, got {shown}")
    return value


def _positive_number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        shown = (
            value
            if isinstance(value, int | float) and not isinstance(value, bool)
            else _kind(value)
        )
        raise ConfigError(f"{where}: must be a positive number of seconds, got {shown}")
    return float(value)


def _url(entry: Mapping[str, Any], key: str, where: str, schemes: tuple[str, ...]) -> str | None:
    value = _string(entry, key, where)
    if value is not None and not value.startswith(schemes):
        raise ConfigError(f"{where}.{key}: must start with {' or '.join(schemes)}, got {value!r}")
    return value


def _feed(entry: Mapping[str, Any], where: str) -> FeedConfig:
    _no_unknown_keys(entry, FEED_KEYS, where)
    venue = _string(entry, "venue", where, required=True)
    assert venue is not None
    if venue not in SPECS:
        raise ConfigError(f"{where}.venue: unknown venue {venue!r}; known: {', '.join(SPECS)}")
    if "symbols" not in entry:
        raise ConfigError(f"{where}.symbols: missing")
    symbols = _strings(entry["symbols"], f"{where}.symbols")
    for i, symbol in enumerate(symbols):
        if symbols.index(symbol) != i:
            raise ConfigError(f"{where}.symbols[{i}]: {symbol!r} is listed twice")
    channels: tuple[str, ...] | None = None
    if "channels" in entry:
        channels = _strings(entry["channels"], f"{where}.channels")
        offered = SPECS[venue].channels
        for i, channel in enumerate(channels):
            if channel not in CHANNELS:
                known = ", ".join(sorted(CHANNELS))
                raise ConfigError(
                    f"{where}.channels[{i}]: unknown channel {channel!r}; known: {known}"
                )
            if channel not in offered:
                raise ConfigError(
                    f"{where}.channels[{i}]: {venue} does not offer {channel!r}; "
                    f"it offers {', '.join(sorted(offered))}"
                )
    depth = None
    if "depth" in entry:
        depth = _positive_int(entry["depth"], f"{where}.depth")
    options = entry.get("venue_options", {})
    if not isinstance(options, dict):
        raise ConfigError(f"{where}.venue_options: must be a table, got {_kind(options)}")
    for key, value in options.items():
        if not isinstance(value, str):
            raise ConfigError(f"{where}.venue_options.{key}: must be a string, got {_kind(value)}")
    reconnect = entry.get("reconnect", True)
    if not isinstance(reconnect, bool):
        raise ConfigError(f"{where}.reconnect: must be true or false, got {_kind(reconnect)}")
    return FeedConfig(
        venue=venue,
        symbols=symbols,
        name=_string(entry, "name", where) or venue,
        channels=channels,
        depth=depth,
        candle_interval=_string(entry, "candle_interval", where),
        ws_url=_url(entry, "ws_url", where, ("ws://", "wss://")),
        rest_url=_url(entry, "rest_url", where, ("http://", "https://")),
        venue_options=dict(options),
        reconnect=reconnect,
        where=where,
    )


def _sink(entry: Mapping[str, Any], where: str, feeds: Mapping[str, str]) -> SinkConfig:
    type_name = _string(entry, "type", where, required=True)
    assert type_name is not None
    served: tuple[str, ...] | None = None
    if "feeds" in entry:
        served = _strings(entry["feeds"], f"{where}.feeds")
        for i, name in enumerate(served):
            if name not in feeds:
                raise ConfigError(
                    f"{where}.feeds[{i}]: no feed is named {name!r}; feeds: {', '.join(feeds)}"
                )
    options = {k: v for k, v in entry.items() if k not in ("type", "feeds")}
    if type_name == TAPE:
        _no_unknown_keys(entry, TAPE_KEYS, where)
        check_tape_options(options, where)
    else:
        resolve_sink(type_name, where)
    return SinkConfig(type_name, options, served, where)


def check_tape_options(options: dict[str, Any], where: str) -> None:
    """Checks a tape sink's keys, turning sizes such as ``"100M"`` into numbers in place."""
    path = _string(options, "path", where, required=True)
    assert path is not None
    try:
        path.format(**{name: "x" for name in PLACEHOLDERS})
    except (KeyError, IndexError, ValueError) as exc:
        allowed = ", ".join("{" + name + "}" for name in PLACEHOLDERS)
        raise ConfigError(
            f"{where}.path: {path!r} has a placeholder that is not one of {allowed} ({exc})"
        ) from None
    if "rotate_bytes" in options:
        try:
            options["rotate_bytes"] = parse_size(options["rotate_bytes"])
        except ValueError as exc:
            raise ConfigError(f"{where}.rotate_bytes: {exc}") from None
    for key in ("rotate_seconds", "flush_interval"):
        if key in options:
            options[key] = _positive_number(options[key], f"{where}.{key}")
    if "fsync" in options and not isinstance(options["fsync"], bool):
        raise ConfigError(f"{where}.fsync: must be true or false, got {_kind(options['fsync'])}")


def _check_tapes(config: RunConfig) -> None:
    """A feed records to one tape, and no two feeds or shards to the same file."""
    recorded: dict[str, str] = {}
    for sink in config.sinks:
        if sink.type != TAPE:
            continue
        path = str(sink.options["path"])
        served = [f for f in config.feeds if sink.feeds is None or f.name in sink.feeds]
        if len(served) > 1 and "{feed}" not in path and "{venue}" not in path:
            raise ConfigError(
                f"{sink.where}.path: the tape sink serves {len(served)} feeds, so its path "
                "needs {feed} (or {venue}) to give each its own file"
            )
        if config.shard is not None and config.shard.count > 1 and "{shard}" not in path:
            raise ConfigError(
                f'{sink.where}.path: with shard = "{config.shard}", the path needs {{shard}} '
                "so that the shards' tapes are different files"
            )
        for feed in served:
            if feed.name in recorded:
                raise ConfigError(
                    f"{sink.where}: feed {feed.name!r} is already recorded by "
                    f"{recorded[feed.name]}; a feed records to one tape"
                )
            recorded[feed.name] = sink.where
    paths: dict[str, str] = {}
    for sink in config.sinks:
        if sink.type != TAPE:
            continue
        for feed in config.feeds:
            if sink.feeds is not None and feed.name not in sink.feeds:
                continue
            path = os.path.normpath(config.tape_path(sink, feed))
            if path in paths and paths[path] != feed.name:
                raise ConfigError(
                    f"{sink.where}.path: feeds {paths[path]!r} and {feed.name!r} would both "
                    f"record to {path}"
                )
            paths[path] = feed.name


def _sharded(config: RunConfig, shard: Shard) -> RunConfig:
    feeds = []
    for feed in config.feeds:
        symbols = shard.select(feed.symbols)
        if symbols:
            feeds.append(replace(feed, symbols=symbols))
    if not feeds:
        most = max(len(f.symbols) for f in config.feeds)
        raise ConfigError(
            f"shard: shard {shard} has no symbols (no feed lists more than {most}, so shards "
            f"{most} and up are empty)"
        )
    return RunConfig(tuple(feeds), config.sinks, shard, config.source)
