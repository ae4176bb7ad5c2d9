#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpus from the real tapes: corpus/<target>/<name>.

Each seed is a run of consecutive records of one websocket connection of a tape, in the input
form of `src/lib.rs`: records separated by `\\n`; a REST snapshot (`http` record of a depth
URL) is `\\x01SYMBOL\\x01BODY`; anything else is one received frame. Windows start at the
tape's beginning (where the snapshots bridge the stream) and at points spread over the tape
(with the latest snapshot of each symbol put in front). `gemini_v1` has no recording: its
seeds are the Gemini v2 tape's books and trades rewritten as v1 frames for BTCUSD.

Usage: python3 make_corpus.py [--tapes DIR] [--out DIR] [--per-tape N] [--window N]
The corpus is generated, not committed (see .gitignore).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

HERE = Path(__file__).resolve().parent
DEFAULT_TAPES = HERE.parents[3] / "shared" / "data" / "tapes"

# Tape header venue -> fuzz target.
TARGETS = {
    "binance": "binance",
    "binance-usdm": "binance_usdm",
    "binance-coinm": "binance_coinm",
    "okx": "okx",
    "kraken": "kraken",
    "gemini": "gemini",
    "bitfinex": "bitfinex",
    "bybit": "bybit",
    "coinbase": "coinbase",
}

# Frames bigger than this are left out: libFuzzer's max_len follows the largest seed, and a
# multi-megabyte input slows every execution (Coinbase sends one 5 MB snapshot frame).
MAX_RECORD = 128 * 1024
MAX_SEED = 256 * 1024


def read_tape(path: Path) -> tuple[dict, list[dict]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = [json.loads(line) for line in f]
    return lines[0], lines[1:]


def snapshot_symbol(url: str) -> str | None:
    """The symbol of a REST depth snapshot URL (None for other REST bodies)."""
    parts = urlsplit(url)
    if "depth" not in parts.path and "books" not in parts.path:
        return None
    query = parse_qs(parts.query)
    for key in ("symbol", "instId", "product_id"):
        if key in query:
            return query[key][0]
    return None


def one_line(data: str) -> bytes:
    # JSON allows a newline only as whitespace (or escaped inside strings): a space is the same.
    return data.replace("\r", " ").replace("\n", " ").encode()


def streams(records: list[dict]) -> dict[str, list[tuple[str | None, bytes]]]:
    """Per connection: (snapshot symbol or None, bytes) in tape order; snapshots go to every
    connection open at the time."""
    out: dict[str, list[tuple[str | None, bytes]]] = {}
    for r in records:
        kind = r["type"]
        if r.get("encoding") == "base64":
            continue  # no venue here sends binary frames
        if kind == "recv":
            out.setdefault(r.get("conn") or "", []).append((None, one_line(r.get("data") or "")))
        elif kind == "http":
            symbol = snapshot_symbol(r.get("url") or "")
            if symbol is None:
                continue
            for conn in out or {"": []}:
                out.setdefault(conn, []).append((symbol, one_line(r.get("data") or "")))
    return out


def encode(record: tuple[str | None, bytes]) -> bytes:
    symbol, data = record
    if symbol is None:
        return data
    return b"\x01" + symbol.encode() + b"\x01" + data


def seed(records: list[tuple[str | None, bytes]]) -> bytes:
    kept: list[bytes] = []
    size = 0
    for r in records:
        line = encode(r)
        if len(line) > MAX_RECORD:
            continue
        if size + len(line) + 1 > MAX_SEED and kept:
            break
        kept.append(line)
        size += len(line) + 1
    return b"\n".join(kept)


def windows(stream: list[tuple[str | None, bytes]], per_tape: int, window: int) -> list[bytes]:
    seeds = []
    n = len(stream)
    # The beginning, in growing lengths: the snapshot/bridge path with little else.
    for length in (1, 2, 4, 8, window):
        seeds.append(seed(stream[:length]))
    # Windows spread over the tape, led by the latest snapshot of each symbol before them.
    starts = sorted({(i * n) // max(per_tape, 1) for i in range(per_tape)})
    for start in starts:
        latest: dict[str, tuple[str | None, bytes]] = {}
        for r in stream[:start]:
            if r[0] is not None:
                latest[r[0]] = r
        seeds.append(seed(list(latest.values()) + stream[start : start + window]))
    # Every snapshot alone, and every distinct frame kind once alone.
    seen = set()
    for r in stream:
        # A frame's kind: its first bytes without digits (channel ids and prices vary).
        key = bytes(c for c in r[1][:64] if not chr(c).isdigit())[:32]
        if r[0] is not None:
            key = b"snapshot " + r[0].encode()
        if key not in seen and len(seen) < 40:
            seen.add(key)
            seeds.append(seed([r]))
    return [s for s in seeds if s]


def gemini_v1(stream: list[tuple[str | None, bytes]]) -> list[bytes]:
    """Gemini v2 frames rewritten as v1 frames of one connection (v1 is one symbol a socket)."""
    frames = []
    seq = 0
    event_id = 1_000
    books: dict[str, list[bytes]] = {}
    for _, data in stream:
        try:
            msg = json.loads(data)
        except ValueError:
            continue
        if not isinstance(msg, dict):
            continue
        sym = msg.get("symbol")
        if msg.get("type") == "l2_updates":
            first = sym not in books
            events = [
                {
                    "type": "change",
                    "side": "bid" if side == "buy" else "ask",
                    "price": price,
                    "remaining": qty,
                    "delta": qty,
                    "reason": "initial" if first else "place",
                }
                for side, price, qty in msg.get("changes", [])
            ]
            books.setdefault(sym, [])
        elif msg.get("type") == "trade":
            events = [
                {
                    "type": "trade",
                    "tid": msg.get("event_id", event_id),
                    "price": msg.get("price"),
                    "amount": msg.get("quantity"),
                    "makerSide": "ask" if msg.get("side") == "buy" else "bid",
                }
            ]
        else:
            continue
        event_id += 1
        frame = {
            "type": "update",
            "eventId": event_id,
            "timestampms": msg.get("timestamp", 1_624_493_666_000),
            "socket_sequence": seq,
            "events": events,
        }
        seq += 1
        if sym in books:
            books[sym].append(json.dumps(frame, separators=(",", ":")).encode())
    seeds = []
    for sym, sym_frames in books.items():
        # Renumber per symbol: each symbol is its own v1 connection.
        renumbered = []
        for i, f in enumerate(sym_frames):
            msg = json.loads(f)
            msg["socket_sequence"] = i
            renumbered.append((None, json.dumps(msg, separators=(",", ":")).encode()))
        for start in range(0, len(renumbered), 16):
            seeds.append(seed(renumbered[:1] + renumbered[max(start, 1) : start + 16]))
        heartbeat = json.dumps({"type": "heartbeat", "socket_sequence": len(renumbered)})
        seeds.append(seed(renumbered + [(None, heartbeat.encode())]))
    return [s for s in seeds if s]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tapes", type=Path, default=DEFAULT_TAPES)
    parser.add_argument("--out", type=Path, default=HERE / "corpus")
    parser.add_argument("--per-tape", type=int, default=60, help="windows per connection")
    parser.add_argument("--window", type=int, default=24, help="records per window")
    args = parser.parse_args()
    if not args.tapes.is_dir():
        print(f"tapes not found at {args.tapes}", file=sys.stderr)
        return 1
    written: dict[str, int] = {}
    for path in sorted(args.tapes.glob("*.jsonl.gz")):
        header, records = read_tape(path)
        venue = header.get("venue")
        target = TARGETS.get(venue)
        if target is None:
            print(f"skipping {path.name}: venue {venue!r} has no target", file=sys.stderr)
            continue
        per_conn = streams(records)
        seeds = []
        for stream in per_conn.values():
            seeds += windows(stream, args.per_tape, args.window)
        groups = [(target, seeds)]
        if venue == "gemini":
            groups.append(("gemini_v1", [s for st in per_conn.values() for s in gemini_v1(st)]))
        for name, group in groups:
            folder = args.out / name
            folder.mkdir(parents=True, exist_ok=True)
            for s in group:
                digest = hashlib.sha1(s).hexdigest()
                (folder / digest).write_bytes(s)
            written[name] = written.get(name, 0) + len(group)
    for name, count in sorted(written.items()):
        print(f"{name}: {count} seeds -> {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
