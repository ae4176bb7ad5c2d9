"""The book frames of a tape, as every benchmarked implementation gets them.

Binance tapes (below) sync on REST snapshots. Every other venue sends its snapshot in-band:
:meth:`DepthTape.open` runs a lobfeed session over the tape's busiest connection to learn
which frames are book frames, and cuts the frames after the last symbol's first book into the
timed part (see :meth:`DepthTape._in_band`): the sync frames are every frame up to there
(subscription acks, channel ids and snapshots), the timed ones every later frame of that
connection, book frames or not (Bitfinex numbers every message, trades and heartbeats too).

A :class:`DepthTape` holds a tape's ``depthUpdate`` frames (combined-stream text, as the venue
sent them, in tape order) and its REST depth snapshots. Every implementation gets a symbol's
snapshot when it first sees a frame of that symbol, the way a live client fetches one, and
drops the frames the snapshot already covers.

The frames fall in two parts. The *sync* frames of a symbol go up to the one that bridges its
snapshot: they are not timed, because a snapshot of 1,000 levels per side is the same one-off
parse everywhere. The *timed* frames are all the later ones, each of which updates a synced
book. Books of different symbols are independent, so on a tape with several symbols all sync
frames are fed first, then all timed frames, each part in tape order.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson

from lobfeed.tape import Tape

__all__ = ["BINANCE_VENUES", "DepthTape", "Top", "bridges", "top_equal"]

BINANCE_VENUES = ("binance", "binance-usdm", "binance-coinm")

Top = tuple[tuple[str, str] | None, tuple[str, str] | None]
"""Best bid and best ask of a book, as exact ``(price, size)`` strings (``None``: empty side)."""


def bridges(venue: str, last_update_id: int, first: int, final: int) -> bool:
    """Whether a depth event ``[first, final]`` is the first one to apply on a snapshot.

    Spot: ``U <= lastUpdateId + 1 <= u``; futures: ``U <= lastUpdateId <= u``.
    """
    if venue == "binance":
        return first <= last_update_id + 1 <= final
    return first <= last_update_id <= final


def top_equal(a: Top, b: Top) -> bool:
    """Two tops agree on every price and size as numbers (``"1.50"`` equals ``"1.5"``)."""
    for x, y in zip(a, b, strict=True):
        if x is None or y is None:
            if x is not y:
                return False
        elif Decimal(x[0]) != Decimal(y[0]) or Decimal(x[1]) != Decimal(y[1]):
            return False
    return True


@dataclass(frozen=True, slots=True)
class DepthTape:
    path: Path
    venue: str
    frames: list[bytes]
    """``depthUpdate`` frames in tape order, combined-stream text (``{"stream":..,"data":..}``)."""
    symbols: list[str]
    """The symbol of each frame (upper case)."""
    first_ids: list[int]
    """``U`` of each frame."""
    final_ids: list[int]
    """``u`` of each frame: lobfeed's ``BookUpdate.seq``, cryptofeed's ``sequence_number``."""
    snapshots: dict[str, bytes]
    """Symbol -> the first REST depth snapshot body recorded for it."""
    bridge_index: dict[str, int]
    """Symbol -> index of the frame that bridges its snapshot (the last of its sync frames)."""
    book_updates: int = -1
    """Book updates lobfeed makes from the timed frames (-1: one per frame, Binance)."""
    cut: int = -1
    """In-band venues: the index of the last sync frame (-1: Binance, see ``bridge_index``)."""
    url: str = ""
    """In-band venues: the websocket address the frames came from (Bybit's names the market)."""
    binary: bool = False
    """The frames came as binary websocket messages (HTX's gzip, Upbit's JSON), not text."""

    @property
    def updates(self) -> int:
        """Book updates every implementation must report for the timed frames."""
        return len(self.timed_frames) if self.book_updates < 0 else self.book_updates

    @property
    def name(self) -> str:
        return self.path.name.removesuffix(".gz").removesuffix(".jsonl")

    @property
    def symbol_list(self) -> list[str]:
        """The symbols with a snapshot, in the order their first frame arrives."""
        if self.cut >= 0:
            return list(self.bridge_index)
        return list(dict.fromkeys(s for s in self.symbols if s in self.snapshots))

    def is_sync(self, index: int) -> bool:
        if self.cut >= 0:
            return index <= self.cut
        return index <= self.bridge_index[self.symbols[index]]

    @property
    def sync_frames(self) -> list[bytes]:
        return [f for i, f in enumerate(self.frames) if self.is_sync(i)]

    @property
    def timed_frames(self) -> list[bytes]:
        return [f for i, f in enumerate(self.frames) if not self.is_sync(i)]

    def last_update_id(self, symbol: str) -> int:
        value = orjson.loads(self.snapshots[symbol])["lastUpdateId"]
        assert isinstance(value, int)
        return value

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> DepthTape:
        tape = Tape.open(path)
        venue = tape.header.venue
        if venue not in BINANCE_VENUES:
            return cls._in_band(Path(path), tape)
        frames: list[bytes] = []
        symbols: list[str] = []
        first_ids: list[int] = []
        final_ids: list[int] = []
        snapshots: dict[str, bytes] = {}
        for record in tape.iter_records():
            if record.data is None:
                continue
            if record.type == "http" and record.url:
                url = urlsplit(record.url)
                symbol = (parse_qs(url.query).get("symbol") or [""])[0].upper()
                if url.path.endswith("/depth") and symbol:
                    snapshots.setdefault(symbol, record.data.encode())
            elif record.type == "recv" and '"depthUpdate"' in record.data:
                obj = orjson.loads(record.data)
                if not isinstance(obj, dict):
                    continue
                if "stream" in obj and "data" in obj:
                    text = record.data
                    event = obj["data"]
                else:  # a raw-stream tape: wrap it the way a combined stream sends it
                    event = obj
                    stream = f"{str(obj['s']).lower()}@depth"
                    text = '{"stream":"' + stream + '","data":' + record.data + "}"
                if not isinstance(event, dict) or event.get("e") != "depthUpdate":
                    continue
                frames.append(text.encode())
                symbols.append(str(event["s"]).upper())
                first_ids.append(int(event["U"]))
                final_ids.append(int(event["u"]))
        if not snapshots:
            raise ValueError(f"{tape.path}: no REST depth snapshot")
        # A symbol without a recorded snapshot could never be synced: leave its frames out.
        keep = [i for i, s in enumerate(symbols) if s in snapshots]
        if not keep:
            raise ValueError(f"{tape.path}: no depthUpdate frames of a symbol with a snapshot")
        frames = [frames[i] for i in keep]
        symbols = [symbols[i] for i in keep]
        first_ids = [first_ids[i] for i in keep]
        final_ids = [final_ids[i] for i in keep]
        bridge_index: dict[str, int] = {}
        for symbol, body in snapshots.items():
            last = orjson.loads(body)["lastUpdateId"]
            bridge = next(
                (
                    i
                    for i, s in enumerate(symbols)
                    if s == symbol and bridges(venue, last, first_ids[i], final_ids[i])
                ),
                None,
            )
            if bridge is None:
                raise ValueError(f"{tape.path}: no frame bridges the {symbol} snapshot")
            bridge_index[symbol] = bridge
        return cls(
            Path(path),
            venue,
            frames,
            symbols,
            first_ids,
            final_ids,
            snapshots,
            bridge_index,
        )

    @property
    def session_venue(self) -> str:
        """The name a ``Session`` for this tape's venue is made with (a market alias such as
        ``bybit-spot`` is decoded by its venue's session)."""
        from lobfeed.venues import SPECS

        spec = SPECS.get(self.venue)
        return spec.session_venue if spec is not None else self.venue

    @classmethod
    def _in_band(cls, path: Path, tape: Tape) -> DepthTape:
        """A venue whose books start from a snapshot of its own: the frames of its busiest book
        connection, binary ones as their bytes. A venue that bridges REST snapshots (Gate.io,
        KuCoin) gets the tape's ``http`` records, in tape order, as a live Feed answers its
        ``NeedSnapshot``; the benchmarked implementations get them when they ask."""
        from lobfeed._native import BookUpdate, Session, supported_venues
        from lobfeed.exceptions import FrameError
        from lobfeed.replay import snapshot_symbol
        from lobfeed.venues import SPECS

        venue = tape.header.venue
        spec = SPECS.get(venue)
        session_venue = spec.session_venue if spec is not None else venue
        if session_venue not in supported_venues():
            raise ValueError(f"{tape.path}: venue {venue!r} is not one lobfeed reads")
        sessions: dict[str, Session] = {}
        frames: dict[str, list[bytes]] = {}
        # Per frame: the symbols of the book updates it made (a snapshot answered after it
        # counts for the frame that was last on that connection).
        books: dict[str, list[list[str]]] = {}
        urls: dict[str, str] = {}
        snapshots: dict[str, bytes] = {}
        binary: set[str] = set()

        def receive(conn: str, data: bytes, ts_ns: int, snapshot_for: str | None) -> None:
            session = sessions.get(conn)
            if session is None:
                session = sessions[conn] = Session(session_venue, name=venue)
            try:
                if snapshot_for is None:
                    events = session.receive(data, ts_ns)
                else:
                    events = session.receive_snapshot(snapshot_for, data, ts_ns)
            except FrameError as e:
                events = e.events
            updated = [e.symbol for e in events if isinstance(e, BookUpdate)]
            per_frame = books.setdefault(conn, [])
            if snapshot_for is None:
                frames.setdefault(conn, []).append(data)
                per_frame.append(updated)
            elif per_frame:
                per_frame[-1].extend(updated)

        for record in tape.iter_records("recv", "open", "http"):
            if record.type == "open":
                urls[record.conn or ""] = record.url or ""
            elif record.data is None:
                continue
            elif record.type == "http":
                symbol = snapshot_symbol(record.url or "")
                if symbol is None:
                    continue
                snapshots.setdefault(symbol, record.payload)
                owner = next((c for c, s in sessions.items() if symbol in s.symbols()), None)
                if owner is not None:
                    receive(owner, record.payload, record.ts_ns, symbol)
            elif record.conn is not None:
                if record.encoding is not None:
                    binary.add(record.conn)
                receive(record.conn, record.payload, record.ts_ns, None)
        counts = Counter({conn: sum(len(u) for u in b) for conn, b in books.items()})
        if not counts or counts.most_common(1)[0][1] == 0:
            raise ValueError(f"{tape.path}: no frame updates a book")
        conn = counts.most_common(1)[0][0]
        per_frame = books[conn]
        first: dict[str, int] = {}
        for index, updated in enumerate(per_frame):
            for symbol in updated:
                first.setdefault(symbol, index)
        cut = max(first.values())
        timed_updates = sum(len(u) for u in per_frame[cut + 1 :])
        if timed_updates == 0:
            raise ValueError(f"{tape.path}: no book frame after every symbol's first book")
        return cls(
            path,
            venue,
            frames[conn],
            # A frame that is no book update belongs to no symbol: it follows the last frame.
            [u[0] if u else "" for u in per_frame],
            [],
            [],
            {s: body for s, body in snapshots.items() if s in first},
            dict.fromkeys(first, cut),
            timed_updates,
            cut,
            urls.get(conn, ""),
            conn in binary,
        )
