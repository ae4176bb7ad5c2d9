"""Session options chosen from Python (the resync procedure) and the venue's channel ids.

OKX frames are written from OKX's v5 documentation of the ``books`` channel and of
``GET /api/v5/market/books``; Bitfinex events from its websocket v2 documentation.
"""

from __future__ import annotations

import orjson
import pytest

import lobfeed
from lobfeed import (
    BookUpdate,
    GapDetected,
    NeedResubscribe,
    NeedSnapshot,
    Resynced,
    Session,
    SyncLost,
    UnsupportedOptionError,
)
from lobfeed.venues import Subscription, spec_for

Levels = list[tuple[str, str]]


def okx_levels(levels: Levels) -> list[list[str]]:
    # [price, size, deprecated, order count]
    return [[price, size, "0", "1"] for price, size in levels]


def okx_update(
    prev_seq: int, seq: int, bids: Levels | None = None, asks: Levels | None = None
) -> bytes:
    return orjson.dumps(
        {
            "arg": {"channel": "books", "instId": "BTC-USDT"},
            "action": "update",
            "data": [
                {
                    "asks": okx_levels(asks or []),
                    "bids": okx_levels(bids or []),
                    "ts": "1652459225100",
                    "checksum": 0,
                    "prevSeqId": prev_seq,
                    "seqId": seq,
                }
            ],
        }
    )


def okx_rest_book(seq: int, bids: Levels, asks: Levels) -> bytes:
    return orjson.dumps(
        {
            "code": "0",
            "msg": "",
            "data": [
                {
                    "asks": okx_levels(asks),
                    "bids": okx_levels(bids),
                    "ts": "1652459225000",
                    "seqId": seq,
                }
            ],
        }
    )


# -- resync ------------------------------------------------------------------------------------


def test_okx_resync_by_rest_snapshot() -> None:
    s = Session("okx", resync="snapshot")
    assert s.resync == "snapshot"
    # Updates before any book: buffered in Rust, one snapshot request.
    events = s.receive(okx_update(90, 95, bids=[("30000.1", "5")]), 1)
    assert [type(e) for e in events] == [NeedSnapshot]
    assert events[0].symbol == "BTC-USDT"
    assert s.receive(okx_update(95, 101, bids=[("30000.2", "1")]), 2) == ()
    assert s.receive(okx_update(101, 110, asks=[("30000.5", "0")]), 3) == ()
    assert s.state("BTC-USDT") == "awaiting_snapshot"

    # The REST book at 100: update 95 is older, 101 bridges it, 110 follows.
    body = okx_rest_book(
        100,
        bids=[("30000.1", "2"), ("30000.0", "4")],
        asks=[("30000.5", "7"), ("30000.6", "1")],
    )
    events = s.receive_snapshot("BTC-USDT", body, 4)
    assert [type(e) for e in events] == [BookUpdate]
    update = events[0]
    assert isinstance(update, BookUpdate)
    assert update.seq == 110
    assert update.book.bids(5) == [("30000.2", "1"), ("30000.1", "2"), ("30000.0", "4")]
    assert update.book.asks(5) == [("30000.6", "1")]
    assert s.state("BTC-USDT") == "live"

    # A broken seqId chain: the book is dropped and a new snapshot is asked for.
    events = s.receive(okx_update(111, 120, bids=[("30000.3", "1")]), 5)
    assert [type(e) for e in events] == [GapDetected, SyncLost, NeedSnapshot]
    gap = events[0]
    assert isinstance(gap, GapDetected)
    assert (gap.symbol, gap.expected, gap.received) == ("BTC-USDT", 110, 111)
    assert s.state("BTC-USDT") == "awaiting_snapshot"
    assert s.counters("BTC-USDT")["gaps"] == 1

    # The next REST book (bridging the update buffered at the gap) resyncs it.
    body = okx_rest_book(115, bids=[("30000.1", "3")], asks=[("30000.6", "2")])
    events = s.receive_snapshot("BTC-USDT", body, 6)
    assert [type(e) for e in events] == [Resynced, BookUpdate]
    assert s.book("BTC-USDT").bids(5) == [("30000.3", "1"), ("30000.1", "3")]


def test_okx_default_resync_is_the_in_band_snapshot() -> None:
    for s in (Session("okx"), Session("okx", resync="resubscribe")):
        assert s.resync == "resubscribe"
        events = s.receive(okx_update(90, 95, bids=[("1", "1")]), 1)
        assert [type(e) for e in events] == [NeedResubscribe]


def test_resync_choices_are_checked() -> None:
    with pytest.raises(ValueError, match="resync"):
        Session("okx", resync="rest")
    with pytest.raises(UnsupportedOptionError, match="kraken cannot resync by snapshot"):
        Session("kraken", resync="snapshot")
    with pytest.raises(UnsupportedOptionError, match="binance cannot resync by resubscribe"):
        Session("binance", resync="resubscribe")
    # An unsupported option is a ValueError too, and a LobfeedError.
    with pytest.raises(ValueError):
        Session("bitfinex", resync="snapshot")
    assert issubclass(UnsupportedOptionError, lobfeed.LobfeedError)
    assert Session("binance").resync == "snapshot"
    assert Session("binance", resync="snapshot").resync == "snapshot"
    assert Session("bybit").resync == "resubscribe"
    # Feed refuses it at once, before connecting.
    with pytest.raises(UnsupportedOptionError):
        lobfeed.Feed("kraken", ["XBT/USD"], resync="snapshot")
    assert lobfeed.Feed("okx", ["BTC-USDT"], resync="snapshot").resync == "snapshot"


# -- channel ids -------------------------------------------------------------------------------

BITFINEX_EVENTS = [
    '{"event":"info","version":2,"serverId":"5b73a436","platform":{"status":1}}',
    '{"event":"conf","status":"OK","flags":196608}',
    '{"event":"subscribed","channel":"book","chanId":17,"symbol":"tBTCUSD","prec":"P0",'
    '"freq":"F0","len":"25","pair":"BTCUSD"}',
    '{"event":"subscribed","channel":"trades","chanId":18,"symbol":"tBTCUSD","pair":"BTCUSD"}',
]


def test_bitfinex_channel_of_a_book() -> None:
    s = Session("bitfinex")
    assert s.channel("tBTCUSD") is None
    for frame in BITFINEX_EVENTS:
        assert s.receive(frame, 1) == ()
    assert s.channel("tBTCUSD") == 17  # the book's chanId, not the trades'
    assert s.channel("tETHUSD") is None
    s.receive('{"event":"unsubscribed","status":"OK","chanId":17}', 2)
    assert s.channel("tBTCUSD") is None
    s.receive(BITFINEX_EVENTS[2].replace('"chanId":17', '"chanId":31'), 3)
    assert s.channel("tBTCUSD") == 31


def test_kraken_v1_channel_and_venues_without_channel_ids() -> None:
    s = Session("kraken")
    s.receive(
        '{"channelID":42,"channelName":"book-10","event":"subscriptionStatus","pair":"XBT/USD",'
        '"status":"subscribed","subscription":{"depth":10,"name":"book"}}',
        1,
    )
    assert s.channel("XBT/USD") == 42
    okx = Session("okx")
    okx.receive(okx_update(90, 95, bids=[("1", "1")]), 1)
    assert okx.symbols() == ["BTC-USDT"] and okx.channel("BTC-USDT") is None


def test_bitfinex_resubscribes_one_book_by_its_channel() -> None:
    spec = spec_for("bitfinex")
    sub = Subscription(("tBTCUSD", "tETHUSD"), frozenset({"book", "trades"}), depth=100)
    s = Session(spec.session_venue)
    for frame in BITFINEX_EVENTS:
        s.receive(frame, 1)
    messages = spec.resubscribe_messages("tBTCUSD", sub, channel=s.channel("tBTCUSD"))
    assert [orjson.loads(m) for m in messages] == [
        {"event": "unsubscribe", "chanId": 17},
        {"event": "subscribe", "channel": "book", "symbol": "tBTCUSD", "prec": "P0", "len": "100"},
    ]
    # A book with no channel held (its subscription never succeeded): subscribe only.
    assert spec.resubscribe_messages("tETHUSD", sub, channel=s.channel("tETHUSD")) == [
        '{"event":"subscribe","channel":"book","symbol":"tETHUSD","prec":"P0","len":"100"}'
    ]
    # Venues that resubscribe by name take the channel keyword and do not need it.
    okx_sub = Subscription(("BTC-USDT",), frozenset({"book"}))
    okx = spec_for("okx")
    assert okx.resubscribe_messages("BTC-USDT", okx_sub, channel=5) == okx.resubscribe_messages(
        "BTC-USDT", okx_sub
    )
