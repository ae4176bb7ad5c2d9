"""Bybit v5 public streams for the local exchange server.

``/v5/public/{spot,linear,inverse,option}``: each tape connection belongs to the category of
the URL it was opened on (a tape without ``open`` records serves every category). Clients send
``{"op":"subscribe","args":[topic, ...]}``; each request is acknowledged the way Bybit does for
that category, ``{"op":"ping"}`` gets its pong, and the recorded frames of each subscribed topic
are streamed. The recorded acknowledgements are not replayed: the server makes its own.
REST answers come from the tape's ``http`` records (the instrument lists).

Books come in-band: each ``orderbook`` subscription starts with a ``snapshot`` frame, then
``delta`` frames.  The server sends a client a book's deltas only once it has sent it that
book's snapshot (after (re)subscribing too), so every book a client gets is complete; a client
joining after the recorded snapshot gets no book until the next one (the next lap with ``loop``).

Symbol clones (``ExchangeServer(..., clones=N)``): every recorded symbol is also served under N
aliases ``C1<SYMBOL>``, ``C2<SYMBOL>``, ... (topics ``orderbook.200.C1BTCUSDT``...).  An alias's
frames are the original's with the topic and the ``s`` / ``symbol`` fields renamed (``u``,
``seq``, prices and times unchanged), sent right after the original's at the same recorded time.
A frame is renamed once per alias, the first time a client is sent it.

Limits, as Bybit documents them (see :meth:`BybitProfile.default_limits`): at most 10 args per
subscribe request on spot connections, and at most 21,000 characters of args per connection.
A request over either is answered ``{"success":false,...}`` and changes nothing.
"""

from __future__ import annotations

import itertools
import re
import time
from typing import Final
from urllib.parse import urlsplit

import orjson

from lobfeed.tape import Tape, TapeRecord
from lobfeed.testing.profiles._common import (
    FrameInfo,
    Key,
    KeyedProfile,
    KeyedSubscription,
    record_json,
)
from lobfeed.testing.server import RestRequest, RestResponse, VenueLimits, register_profile

CATEGORIES = ("spot", "linear", "inverse", "option")
PATH_PREFIX = "/v5/public/"

# Args per subscribe request: "Regarding the public channel, you can input up to 10 args for each
# subscription request sent to one connection" for spot; linear, inverse and option take any
# number (bybit-exchange.github.io/docs/v5/ws/connect, "How to subscribe to topics").
_SPOT_ARGS_PER_REQUEST: Final = 10
# Args length per connection: "For one public connection, you cannot have length of "args" array
# over 21,000 characters." (same page and section).  Counted as the client counts it
# (lobfeed.venues.bybit.MAX_TOPIC_CHARS_PER_CONNECTION): the topics' characters, summed.
_ARGS_CHARS_PER_CONNECTION: Final = 21_000

_CLONE_PREFIX: Final = "C"
_BOOK_TYPE = re.compile(r'"type"\s*:\s*"(snapshot|delta)"')


_INSTRUMENTS = "/v5/market/instruments-info"


def clone_symbol(symbol: str, n: int) -> str:
    """The ``n``-th alias (1-based) of a Bybit symbol: ``C<n><SYMBOL>``."""
    return f"{_CLONE_PREFIX}{n}{symbol}"


def clone_topic(topic: str, alias: str) -> str:
    """``topic`` (``orderbook.200.BTCUSDT``) for ``alias`` instead of its symbol."""
    prefix, _, _ = topic.rpartition(".")
    return f"{prefix}.{alias}"


def _rename_json(value: object, symbol: str, alias: str) -> object:
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for k, v in value.items():
            if k in ("s", "symbol") and v == symbol:
                out[k] = alias
            elif k == "topic" and isinstance(v, str) and v.endswith("." + symbol):
                out[k] = clone_topic(v, alias)
            else:
                out[k] = _rename_json(v, symbol, alias)
        return out
    if isinstance(value, list):
        return [_rename_json(v, symbol, alias) for v in value]
    return value


def rename_frame(text: str, symbol: str, alias: str) -> str:
    """A recorded Bybit frame of ``symbol`` with its topic and ``s`` / ``symbol`` made ``alias``."""
    topic = re.search(r'"topic":"([^"\\]*)\.' + re.escape(symbol) + '"', text)
    if topic is not None:  # compact JSON, as Bybit sends it: plain replacement
        end = topic.end(1)
        text = text[:end] + "." + alias + text[end + 1 + len(symbol) :]
        for field in ('"s":"', '"symbol":"'):
            text = text.replace(f'{field}{symbol}"', f'{field}{alias}"')
        return text
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    return orjson.dumps(_rename_json(obj, symbol, alias)).decode()


def _category(url: str) -> str | None:
    path = urlsplit(url).path.rstrip("/")
    if not path.startswith(PATH_PREFIX):
        return None
    category = path[len(PATH_PREFIX) :]
    return category if category in CATEGORIES else None


class BybitSubscription(KeyedSubscription):
    def __init__(self, path: str, category: str) -> None:
        super().__init__(path)
        self.category = category
        self.books: set[Key] = set()
        """The ``orderbook`` keys whose snapshot this client was sent (their deltas follow)."""


@register_profile
class BybitProfile(KeyedProfile[BybitSubscription]):
    venues = ("bybit", "bybit-linear", "bybit-spot", "bybit-inverse")

    def __init__(self, tape: Tape) -> None:
        self.categories: dict[str, str] = {}
        for record in tape.iter_records("open"):
            category = _category(record.url or "")
            if record.conn is not None and category is not None:
                self.categories[record.conn] = category
        self.conn_ids: dict[str, str] = {}
        super().__init__(tape)
        self._ids = itertools.count(1)
        # Per frame: "snapshot" / "delta" for orderbook frames, else None.
        self._book_types: list[str | None] = [self._book_type(i) for i in range(len(self.frames))]
        # Clones: per frame, (recorded symbol, alias) to rename it to (None: sent as recorded),
        # and the renamed texts made so far.
        self._renames: list[tuple[str, str] | None] = [None] * len(self.frames)
        self._renamed: dict[int, str] = {}
        self.aliases: dict[str, str] = {}
        """Served alias -> the recorded symbol it copies."""

    def _book_type(self, index: int) -> str | None:
        info = self.infos[index]
        if info is None or not any(str(key[-1]).startswith("orderbook.") for key in info.keys):
            return None
        match = _BOOK_TYPE.search(self.frames[index].data or "")
        return match.group(1) if match is not None else None

    # -- clones and limits ----------------------------------------------------------------------

    def set_clones(self, clones: int) -> None:
        if not clones:
            return
        if self.aliases:
            raise RuntimeError("clones are set once")
        frames: list[TapeRecord] = []
        infos: list[FrameInfo | None] = []
        types: list[str | None] = []
        renames: list[tuple[str, str] | None] = []
        for record, info, kind in zip(self.frames, self.infos, self._book_types, strict=True):
            frames.append(record)
            infos.append(info)
            types.append(kind)
            renames.append(None)
            if info is None or len(info.keys) != 1:
                continue
            ((category, topic),) = info.keys
            _, dot, symbol = str(topic).rpartition(".")
            if not dot or not symbol:
                continue
            for n in range(1, clones + 1):
                alias = clone_symbol(symbol, n)
                self.aliases[alias] = symbol
                key = (category, clone_topic(topic, alias))
                frames.append(record)
                infos.append(FrameInfo(info.conn, frozenset({key}), info.counted))
                types.append(kind)
                renames.append((symbol, alias))
        self.frames, self.infos, self._book_types, self._renames = frames, infos, types, renames
        self._renamed.clear()
        self.owner.clear()
        for frame_info in infos:
            if frame_info is not None:
                for frame_key in frame_info.keys:
                    self.owner.setdefault(frame_key, frame_info.conn)

    def default_limits(self) -> VenueLimits:
        return VenueLimits(
            args_per_request=_SPOT_ARGS_PER_REQUEST,
            args_chars_per_connection=_ARGS_CHARS_PER_CONNECTION,
        )

    def stream_count(self, sub: BybitSubscription) -> int:
        return len(sub.keys)

    def _over_limit(self, sub: BybitSubscription, args: list[str]) -> str | None:
        """Why a subscribe request with ``args`` is refused (None: it is not)."""
        per_request = self.limits.args_per_request
        if sub.category == "spot" and per_request and len(args) > per_request:
            sub.limit_hits.append("subscribe-args")
            return f"args size >{per_request}"
        per_connection = self.limits.args_chars_per_connection
        if per_connection:
            topics = {str(key[-1]) for key in sub.keys} | set(args)
            length = sum(len(topic) for topic in topics)
            if length > per_connection:
                sub.limit_hits.append("args-length")
                return f"args length {length} over {per_connection} characters per connection"
        return None

    def frame_for(
        self, sub: BybitSubscription, index: int, record: TapeRecord
    ) -> str | bytes | None:
        text = super().frame_for(sub, index, record)
        if text is None:
            return None
        kind = self._book_types[index]
        if kind is not None:
            info = self.infos[index]
            assert info is not None
            key = next(iter(info.keys))
            if kind == "snapshot":
                sub.books.add(key)
            elif key not in sub.books:
                return None  # no snapshot sent yet: the deltas would make no book
        rename = self._renames[index]
        if rename is None or isinstance(text, bytes):
            return text
        renamed = self._renamed.get(index)
        if renamed is None:
            renamed = self._renamed[index] = rename_frame(text, *rename)
        return renamed

    def classify(self, record: TapeRecord) -> FrameInfo | None:
        conn = record.conn or ""
        msg = record_json(record)
        if not isinstance(msg, dict):
            return None
        topic = msg.get("topic")
        if isinstance(topic, str):
            return FrameInfo(conn, frozenset({(self.categories.get(conn), topic)}))
        conn_id = msg.get("conn_id")
        if "op" in msg and isinstance(conn_id, str):
            self.conn_ids.setdefault(self.categories.get(conn, ""), conn_id)
        return None  # acks and pongs: made by the server

    def subscribe_path(self, path: str) -> BybitSubscription | None:
        category = _category(path)
        if category is None:
            return None
        return BybitSubscription(path, category)

    def _key_category(self, sub: BybitSubscription) -> str | None:
        # A tape without open records: its frames are keyed without a category.
        return sub.category if self.categories else None

    def on_message(self, sub: BybitSubscription, text: str) -> list[str]:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [self._answer(sub, "", None, False, f"error:invalid json,{text[:64]}")]
        if not isinstance(msg, dict):
            return [self._answer(sub, "", None, False, "error:request must be an object")]
        op = msg.get("op")
        req_id = msg.get("req_id")
        args = msg.get("args", [])
        if op == "ping":
            return [self._pong(sub, req_id)]
        if op not in ("subscribe", "unsubscribe"):
            return [self._answer(sub, str(op), req_id, False, f"error:handler not found,op:{op}")]
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            return [self._answer(sub, op, req_id, False, "error:args must be topic names")]
        category = self._key_category(sub)
        keys = [(category, topic) for topic in args]
        if op == "subscribe":
            refused = self._over_limit(sub, args)
            if refused is not None:
                return [self._answer(sub, op, req_id, False, f"error:{refused}")]
            self.subscribe(sub, keys)
        else:
            self.unsubscribe(sub, keys)
            sub.books.difference_update(keys)
        return [self._answer(sub, op, req_id, True, op if sub.category == "spot" else "")]

    def _conn_id(self, sub: BybitSubscription) -> str:
        recorded = self.conn_ids.get(sub.category)
        return recorded if recorded is not None else f"lobfeed-{sub.category}-{next(self._ids)}"

    def _answer(
        self, sub: BybitSubscription, op: str, req_id: object, success: bool, ret_msg: str
    ) -> str:
        # Spot answers without a req_id unless one was sent; the derivatives always echo it.
        answer: dict[str, object] = {"success": success, "ret_msg": ret_msg}
        answer["conn_id"] = self._conn_id(sub)
        if req_id is not None or sub.category != "spot":
            answer["req_id"] = req_id if req_id is not None else ""
        answer["op"] = op
        return orjson.dumps(answer).decode()

    def _pong(self, sub: BybitSubscription, req_id: object) -> str:
        if sub.category == "spot":
            return self._answer(sub, "ping", req_id, True, "pong")
        pong: dict[str, object] = {}
        if req_id is not None:
            pong["req_id"] = req_id
        pong.update(op="pong", args=[str(time.time_ns() // 1_000_000)])
        pong["conn_id"] = self._conn_id(sub)
        return orjson.dumps(pong).decode()

    def not_found(self, request: RestRequest) -> RestResponse:
        return RestResponse.json(404, {"retCode": 10001, "retMsg": f"path {request.path}"})

    def rest(self, request: RestRequest) -> RestResponse:
        answer = super().rest(request)
        if not self.aliases or answer.status != 200 or not request.path.endswith(_INSTRUMENTS):
            return answer
        # Clones are instruments of this exchange: list them beside their originals.
        listing = orjson.loads(answer.body)
        items = listing["result"]["list"]
        by_symbol = {item["symbol"]: item for item in items}
        for alias, symbol in self.aliases.items():
            if symbol in by_symbol:
                items.append({**by_symbol[symbol], "symbol": alias})
        return RestResponse.json(200, listing)

    def example_urls(self, ws_url: str, rest_url: str) -> list[tuple[str, str]]:
        urls = [
            (f"{category} stream", f"{ws_url}{PATH_PREFIX}{category}")
            for category in sorted(set(self.categories.values()))
        ]
        urls += [("rest", f"{rest_url}{path}") for path in sorted(self.recorded_rest.paths())]
        return urls
