"""Bybit v5 public streams for the local exchange server.

``/v5/public/{spot,linear,inverse,option}``: each tape connection belongs to the category of
the URL it was opened on (a tape without ``open`` records serves every category). Clients send
``{"op":"subscribe","args":[topic, ...]}``; each request is acknowledged the way Bybit does for
that category, ``{"op":"ping"}`` gets its pong, and the recorded frames of each subscribed topic
are streamed. The recorded acknowledgements are not replayed: the server makes its own.
REST answers come from the tape's ``http`` records (the instrument lists).
"""

from __future__ import annotations

import itertools
import time
from urllib.parse import urlsplit

import orjson

from lobfeed.tape import Tape, TapeRecord
from lobfeed.testing.profiles._common import FrameInfo, KeyedProfile, KeyedSubscription, record_json
from lobfeed.testing.server import RestRequest, RestResponse, register_profile

CATEGORIES = ("spot", "linear", "inverse", "option")
PATH_PREFIX = "/v5/public/"


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
            self.subscribe(sub, keys)
        else:
            self.unsubscribe(sub, keys)
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

    def example_urls(self, ws_url: str, rest_url: str) -> list[tuple[str, str]]:
        urls = [
            (f"{category} stream", f"{ws_url}{PATH_PREFIX}{category}")
            for category in sorted(set(self.categories.values()))
        ]
        urls += [("rest", f"{rest_url}{path}") for path in sorted(self.recorded_rest.paths())]
        return urls
