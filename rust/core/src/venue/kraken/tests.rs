//! Frames written from Kraken's websocket v1 and v2 documentation (book, trade,
//! subscriptionStatus, subscribe results) and its book checksum guides.

use super::*;
use crate::book::{Level, Side};
use crate::decimal::Decimal;
use crate::event::LossReason;
use crate::sync::SyncState;

fn session() -> KrakenSession {
    KrakenSession::new(SessionOptions::default())
}

fn feed(s: &mut KrakenSession, frame: &str) -> Vec<Event> {
    let mut out = Vec::new();
    s.receive(frame.as_bytes(), 7, &mut out)
        .unwrap_or_else(|e| panic!("{frame}: {e}"));
    out
}

fn level(price: &str, qty: &str) -> Level {
    Level {
        price: Decimal::parse(price).unwrap(),
        qty: Decimal::parse(qty).unwrap(),
    }
}

fn side_text(s: &KrakenSession, id: SymbolId, side: Side) -> Vec<String> {
    let book = &s.symbols().sync(id).unwrap().book;
    book.levels(side)
        .map(|l| format!("{}:{}", l.price, l.qty))
        .collect()
}

/// The checksum Kraken would send for a book holding exactly these levels.
fn crc(asks: &[(&str, &str)], bids: &[(&str, &str)]) -> u32 {
    kraken_checksum(
        asks.iter().map(|(p, q)| level(p, q)),
        bids.iter().map(|(p, q)| level(p, q)),
    )
}

fn v1_levels(levels: &[(&str, &str)]) -> String {
    levels
        .iter()
        .map(|(p, q)| format!(r#"["{p}","{q}","1618678133.383209"]"#))
        .collect::<Vec<_>>()
        .join(",")
}

const DOC_ASKS: [(&str, &str); 10] = [
    ("45285.2", "0.00100000"),
    ("45286.4", "1.54571953"),
    ("45286.6", "1.54571109"),
    ("45289.6", "1.54560911"),
    ("45290.2", "0.15890660"),
    ("45291.8", "1.54553491"),
    ("45294.7", "0.04454749"),
    ("45296.1", "0.35380000"),
    ("45297.5", "0.09945542"),
    ("45299.5", "0.18772827"),
];
const DOC_BIDS: [(&str, &str); 10] = [
    ("45283.5", "0.10000000"),
    ("45283.4", "1.54582015"),
    ("45282.1", "0.10000000"),
    ("45281.0", "0.10000000"),
    ("45280.3", "1.54592586"),
    ("45279.0", "0.07990000"),
    ("45277.6", "0.03310103"),
    ("45277.5", "0.30000000"),
    ("45277.3", "1.54602737"),
    ("45276.6", "0.15445238"),
];

/// v2 levels as JSON numbers, the way the v2 feed writes them (full precision).
fn v2_levels(levels: &[(&str, &str)]) -> String {
    levels
        .iter()
        .map(|(p, q)| format!(r#"{{"price":{p},"qty":{q}}}"#))
        .collect::<Vec<_>>()
        .join(",")
}

fn v2_book(kind: &str, bids: &[(&str, &str)], asks: &[(&str, &str)], checksum: u32) -> String {
    format!(
        r#"{{"channel":"book","type":"{kind}","data":[{{"symbol":"BTC/USD","bids":[{}],"asks":[{}],"checksum":{checksum},"timestamp":"2023-10-06T17:35:55.440295Z"}}]}}"#,
        v2_levels(bids),
        v2_levels(asks)
    )
}

const V2_SUBSCRIBED: &str = r#"{"method":"subscribe","result":{"channel":"book","depth":10,"snapshot":true,"symbol":"BTC/USD"},"success":true,"time_in":"2023-10-06T17:35:55.000000Z","time_out":"2023-10-06T17:35:55.000100Z"}"#;

#[test]
fn v2_documented_checksum_example() {
    // The example book of Kraken's v2 checksum guide, whose checksum is 3310070434.
    let mut s = session();
    assert!(feed(&mut s, V2_SUBSCRIBED).is_empty());
    let out = feed(
        &mut s,
        &v2_book("snapshot", &DOC_BIDS, &DOC_ASKS, 3_310_070_434),
    );
    assert_eq!(
        out,
        vec![Event::BookUpdated {
            symbol: 0,
            seq: None,
            exchange_ts_ns: 1_696_613_755_440_295_000,
            ts_ns: 7
        }]
    );
    let sync = s.symbols().sync(0).unwrap();
    assert_eq!(sync.counters.checksums_checked, 1);
    assert_eq!(sync.counters.checksum_mismatches, 0);
    // The raw number tokens kept their digits: "45281.0" and "0.10000000".
    assert!(side_text(&s, 0, Side::Bid).contains(&"45281.0:0.10000000".to_owned()));
    // The guide prints its example with quoted numbers: read the same.
    let quoted = |levels: &[(&str, &str)]| {
        levels
            .iter()
            .map(|(p, q)| format!(r#"{{"price":"{p}","qty":"{q}"}}"#))
            .collect::<Vec<_>>()
            .join(",")
    };
    let frame = format!(
        r#"{{"channel":"book","type":"snapshot","data":[{{"symbol":"BTC/USD","bids":[{}],"asks":[{}],"checksum":3310070434,"timestamp":"2023-10-06T17:35:55.440295Z"}}]}}"#,
        quoted(&DOC_BIDS),
        quoted(&DOC_ASKS)
    );
    feed(&mut s, &frame);
    let sync = s.symbols().sync(0).unwrap();
    assert_eq!(sync.counters.checksums_checked, 2);
    assert_eq!(sync.counters.checksum_mismatches, 0);
}

#[test]
fn v2_snapshot_and_update_frames() {
    let mut s = session();
    feed(&mut s, V2_SUBSCRIBED);
    feed(
        &mut s,
        &v2_book("snapshot", &DOC_BIDS, &DOC_ASKS, 3_310_070_434),
    );
    // The best bid goes (qty 0), a better ask arrives: 11 asks, truncated to the subscribed
    // depth of 10 before the checksum.
    let mut asks = vec![("45285.0", "0.50000000")];
    asks.extend_from_slice(&DOC_ASKS[..9]);
    let bids = &DOC_BIDS[1..];
    let update = v2_book(
        "update",
        &[("45283.5", "0.00000000")],
        &[("45285.0", "0.50000000")],
        crc(&asks, bids),
    );
    let out = feed(&mut s, &update);
    assert!(matches!(out[..], [Event::BookUpdated { .. }]), "{out:?}");
    let sync = s.symbols().sync(0).unwrap();
    assert_eq!(sync.counters.checksums_checked, 2);
    assert_eq!(sync.counters.checksum_mismatches, 0);
    assert_eq!(sync.book.len(Side::Ask), 10);
    assert_eq!(sync.book.len(Side::Bid), 9);
    assert_eq!(side_text(&s, 0, Side::Ask)[0], "45285.0:0.50000000");
    // A wrong checksum on an update: mismatch, book dropped, resubscribe.
    let update = v2_book("update", &[("45283.4", "2.0")], &[], 12345);
    let out = feed(&mut s, &update);
    assert!(matches!(
        out[0],
        Event::ChecksumMismatch {
            symbol: 0,
            expected: 12345,
            ..
        }
    ));
    assert!(matches!(
        out[1],
        Event::SyncLost {
            symbol: 0,
            reason: LossReason::Checksum { .. }
        }
    ));
    assert_eq!(out[2], Event::NeedResubscribe { symbol: 0 });
    assert_eq!(out.len(), 3);
    assert_eq!(
        s.symbols().sync(0).unwrap().state(),
        SyncState::AwaitingSnapshot
    );
    // A wrong checksum on a snapshot is caught too (v2 checks snapshots).
    let out = feed(&mut s, &v2_book("snapshot", &DOC_BIDS, &DOC_ASKS, 1));
    assert!(matches!(out[0], Event::ChecksumMismatch { .. }));
    assert!(!out
        .iter()
        .any(|e| matches!(e, Event::BookUpdated { .. } | Event::Resynced { .. })));
    // And the good one resyncs.
    let out = feed(
        &mut s,
        &v2_book("snapshot", &DOC_BIDS, &DOC_ASKS, 3_310_070_434),
    );
    assert_eq!(
        out[0],
        Event::Resynced {
            symbol: 0,
            seq: None
        }
    );
}

/// `subscriptionStatus` for a depth-10 book of XBT/USD on channel 42, then its snapshot:
/// asks 101..110, bids 99..90.
type Levels = Vec<(String, String)>;

fn v1_depth10() -> (KrakenSession, Levels, Levels) {
    let mut s = session();
    let status = r#"{"channelID":42,"channelName":"book-10","event":"subscriptionStatus","pair":"XBT/USD","status":"subscribed","subscription":{"depth":10,"name":"book"}}"#;
    assert!(feed(&mut s, status).is_empty());
    let asks: Vec<(String, String)> = (101..=110)
        .map(|p| (format!("{p}.0"), "1.00000000".to_owned()))
        .collect();
    let bids: Vec<(String, String)> = (90..=99)
        .rev()
        .map(|p| (format!("{p}.0"), "2.00000000".to_owned()))
        .collect();
    let snapshot = format!(
        r#"[42,{{"as":[{}],"bs":[{}]}},"book-10","XBT/USD"]"#,
        v1_levels(&refs(&asks)),
        v1_levels(&refs(&bids))
    );
    let out = feed(&mut s, &snapshot);
    assert!(matches!(out[..], [Event::BookUpdated { .. }]));
    (s, asks, bids)
}

fn refs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(p, q)| (p.as_str(), q.as_str())).collect()
}

#[test]
fn v1_truncates_to_subscribed_depth() {
    let (mut s, asks, bids) = v1_depth10();
    // A better bid: 11 bids, the worst (90.0) must go; Kraken sends no delete for it.
    let mut expect_bids = vec![("99.5".to_owned(), "1.00000000".to_owned())];
    expect_bids.extend_from_slice(&bids[..9]);
    let c = crc(&refs(&asks), &refs(&expect_bids));
    let update = format!(
        r#"[42,{{"b":[["99.5","1.00000000","1618678133.383209"]],"c":"{c}"}},"book-10","XBT/USD"]"#
    );
    feed(&mut s, &update);
    assert_eq!(s.symbols().sync(0).unwrap().book.len(Side::Bid), 10);
    assert_eq!(
        side_text(&s, 0, Side::Bid).last().unwrap(),
        "91.0:2.00000000"
    );
    // Deleting 99.5 leaves 9 bids: had 90.0 been kept, it would now be in the top ten and
    // the venue's checksum would not match.
    let c = crc(&refs(&asks), &refs(&bids[..9]));
    let update = format!(
        r#"[42,{{"b":[["99.5","0.00000000","1618678134.000001"]],"c":"{c}"}},"book-10","XBT/USD"]"#
    );
    let out = feed(&mut s, &update);
    assert!(matches!(
        out[..],
        [Event::BookUpdated {
            exchange_ts_ns: 1_618_678_134_000_001_000,
            ts_ns: 7,
            ..
        }]
    ));
    let counters = s.symbols().sync(0).unwrap().counters;
    assert_eq!(
        (counters.checksums_checked, counters.checksum_mismatches),
        (2, 0)
    );
}

#[test]
fn v1_republished_level_refills_the_depth() {
    let (mut s, asks, bids) = v1_depth10();
    // The best ask is taken out; Kraken republishes the level that comes back inside the
    // depth-10 window with the "r" flag, in an update with both sides in separate dicts.
    let mut expect_asks = asks[1..].to_vec();
    expect_asks.push(("111.0".to_owned(), "3.00000000".to_owned()));
    let mut expect_bids = bids.clone();
    expect_bids[0].1 = "2.50000000".to_owned();
    let c = crc(&refs(&expect_asks), &refs(&expect_bids));
    let update = format!(
        r#"[42,{{"a":[["101.0","0.00000000","1618678135.000000"],["111.0","3.00000000","1618678120.000000","r"]]}},{{"b":[["99.0","2.50000000","1618678135.000002"]],"c":"{c}"}},"book-10","XBT/USD"]"#
    );
    let out = feed(&mut s, &update);
    assert!(matches!(out[..], [Event::BookUpdated { .. }]), "{out:?}");
    assert_eq!(
        side_text(&s, 0, Side::Ask).last().unwrap(),
        "111.0:3.00000000"
    );
    assert_eq!(s.symbols().sync(0).unwrap().counters.checksum_mismatches, 0);
    // A republish of a level we already hold just restates it.
    let c = crc(&refs(&expect_asks), &refs(&expect_bids));
    let update = format!(
        r#"[42,{{"a":[["111.0","3.00000000","1618678120.000000","r"]],"c":"{c}"}},"book-10","XBT/USD"]"#
    );
    feed(&mut s, &update);
    assert_eq!(s.symbols().sync(0).unwrap().counters.checksum_mismatches, 0);
    assert_eq!(s.symbols().sync(0).unwrap().book.len(Side::Ask), 10);
}

#[test]
fn v1_checksum_mismatch_resubscribes_only_that_pair() {
    let (mut s, _, _) = v1_depth10();
    let other = r#"[43,{"as":[["5.0","1.0","1618678133.1"]],"bs":[["4.0","1.0","1618678133.1"]]},"book-10","ETH/USD"]"#;
    feed(&mut s, other);
    let update =
        r#"[42,{"a":[["101.0","7.00000000","1618678135.000000"]],"c":"1"}, "book-10","XBT/USD"]"#;
    let out = feed(&mut s, update);
    assert!(matches!(
        out[0],
        Event::ChecksumMismatch {
            symbol: 0,
            expected: 1,
            ..
        }
    ));
    assert!(matches!(
        out[1],
        Event::SyncLost {
            symbol: 0,
            reason: LossReason::Checksum { .. }
        }
    ));
    assert_eq!(out[2..], [Event::NeedResubscribe { symbol: 0 }]);
    assert!(s.symbols().sync(0).unwrap().book.is_empty());
    assert!(!s.symbols().sync(1).unwrap().book.is_empty());
    // Updates while waiting for the new snapshot are dropped, not applied.
    let update =
        r#"[42,{"a":[["101.0","7.00000000","1618678135.000000"]],"c":"1"},"book-10","XBT/USD"]"#;
    assert!(feed(&mut s, update).is_empty());
}

#[test]
fn v1_bad_frame_is_typed_and_local() {
    let (mut s, _, _) = v1_depth10();
    let mut out = Vec::new();
    let bad = r#"[42,{"a":[["10x","1.0","1618678135.0"]],"c":"1"},"book-10","XBT/USD"]"#;
    let err = s.receive(bad.as_bytes(), 1, &mut out).unwrap_err();
    assert_eq!(err.symbol.as_deref(), Some("XBT/USD"));
    assert!(matches!(
        err.error,
        FrameError::BadNumber { field: "price", .. }
    ));
    assert_eq!(
        out,
        vec![
            Event::SyncLost {
                symbol: 0,
                reason: LossReason::BadFrame
            },
            Event::NeedResubscribe { symbol: 0 }
        ]
    );
    let bad =
        r#"[42,{"a":[["101.0","1.0","1618678135.0"]],"c":"not a number"},"book-10","XBT/USD"]"#;
    out.clear();
    assert!(s.receive(bad.as_bytes(), 1, &mut out).is_err());
    for junk in [
        "",
        "[",
        "[]",
        "[\"x\"]",
        "{",
        "42",
        "[1,2,3]",
        "[99,{\"a\":[]},\"book-10\"]",
    ] {
        out.clear();
        assert!(s.receive(junk.as_bytes(), 1, &mut out).is_err(), "{junk:?}");
    }
}

#[test]
fn v1_trades_and_ignored_frames() {
    let mut s = session();
    for frame in [
        r#"{"event":"heartbeat"}"#,
        r#"{"connectionID":8628615390848610000,"event":"systemStatus","status":"online","version":"1.0.0"}"#,
        r#"{"event":"pong","reqid":42}"#,
        r#"[42,["5698.40000","5700.00000","1542057299.545897","1.01234567","0.98765432"],"spread","XBT/USD"]"#,
        r#"{"channel":"heartbeat"}"#,
        r#"{"channel":"status","type":"update","data":[{"api_version":"v2","connection_id":123,"system":"online","version":"2.0.0"}]}"#,
    ] {
        assert!(feed(&mut s, frame).is_empty(), "{frame}");
    }
    assert_eq!(s.stats().ignored, 6);
    let out = feed(
        &mut s,
        r#"[0,[["5541.20000","0.15850568","1534614057.321597","s","l",""],["6060.00000","0.02455000","1534614057.324998","b","m",""]],"trade","XBT/USD"]"#,
    );
    assert_eq!(out.len(), 2);
    let Event::Trade(t) = &out[0] else { panic!() };
    assert_eq!(
        (t.price.to_string(), t.size.to_string()),
        ("5541.20000".into(), "0.15850568".into())
    );
    assert_eq!(t.side, Some(TradeSide::Sell));
    assert_eq!(t.exchange_ts_ns, 1_534_614_057_321_597_000);
    assert_eq!(t.trade_id, "");
    let Event::Trade(t) = &out[1] else { panic!() };
    assert_eq!(t.side, Some(TradeSide::Buy));
    // Newer v1 trade rows end with a trade id.
    let out = feed(
        &mut s,
        r#"[0,[["5541.2","0.1","1534614057.3","b","l","",123456]],"trade","XBT/USD"]"#,
    );
    let Event::Trade(t) = &out[0] else { panic!() };
    assert_eq!(t.trade_id, "123456");
}

#[test]
fn refused_requests_are_typed_venue_errors_and_change_no_book() {
    let (mut s, asks, bids) = v1_depth10();
    let view = |s: &KrakenSession| {
        (
            side_text(s, 0, Side::Ask),
            side_text(s, 0, Side::Bid),
            s.symbols().sync(0).unwrap().state(),
        )
    };
    let before = view(&s);
    assert_eq!(before.0.len(), asks.len());
    assert_eq!(before.1.len(), bids.len());
    let cases: [(&str, Option<&str>, &str); 4] = [
        (
            r#"{"errorMessage":"Subscription depth not supported","event":"subscriptionStatus","pair":"XBT/USD","status":"error","subscription":{"depth":42,"name":"book"}}"#,
            Some("XBT/USD"),
            "Subscription depth not supported",
        ),
        (
            r#"{"errorMessage":"Currency pair not supported","event":"subscriptionStatus","pair":"XBT/EUR","status":"error","subscription":{"name":"book"}}"#,
            Some("XBT/EUR"),
            "Currency pair not supported",
        ),
        (
            r#"{"errorMessage":"Malformed request","event":"error","reqid":7}"#,
            None,
            "Malformed request",
        ),
        (
            r#"{"error":"Currency pair not supported","method":"subscribe","req_id":3,"success":false,"symbol":"BTC/ABC","time_in":"2023-10-06T17:35:55.000000Z","time_out":"2023-10-06T17:35:55.000100Z"}"#,
            Some("BTC/ABC"),
            "subscribe: Currency pair not supported",
        ),
    ];
    for (frame, symbol, message) in cases {
        let mut out = Vec::new();
        let err = s.receive(frame.as_bytes(), 1, &mut out).unwrap_err();
        assert_eq!(err.symbol.as_deref(), symbol, "{frame}");
        assert_eq!(err.error, FrameError::VenueError(message.into()), "{frame}");
        assert!(out.is_empty(), "{frame}");
    }
    assert_eq!(view(&s), before);
    assert_eq!(s.symbols().len(), 1, "a refused pair is not added");
    assert_eq!(s.symbols().sync(0).unwrap().counters.errors, 0);
    assert_eq!((s.stats().errors, s.stats().ignored), (4, 0));
    // The channel mapping survived: channel 42 still feeds the book.
    assert_eq!(s.book_channel("XBT/USD"), Some(42));
    assert_eq!(s.book_channel("XBT/EUR"), None);
    feed(
        &mut s,
        r#"{"channelID":42,"channelName":"book-10","event":"subscriptionStatus","pair":"XBT/USD","status":"unsubscribed","subscription":{"depth":10,"name":"book"}}"#,
    );
    assert_eq!(s.book_channel("XBT/USD"), None);
}

#[test]
fn v2_trades() {
    let mut s = session();
    let out = feed(
        &mut s,
        r#"{"channel":"trade","type":"update","data":[{"symbol":"MATIC/USD","side":"sell","price":0.5117,"qty":40.0,"ord_type":"market","trade_id":4665906,"timestamp":"2023-09-25T07:49:37.708706Z"}]}"#,
    );
    let Event::Trade(t) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(s.symbols().name(t.symbol), "MATIC/USD");
    assert_eq!(
        (t.price.to_string(), t.size.to_string()),
        ("0.5117".into(), "40.0".into())
    );
    assert_eq!(t.side, Some(TradeSide::Sell));
    assert_eq!(t.trade_id, "4665906");
    assert_eq!(
        t.exchange_ts_ns,
        parse_iso8601_ns("2023-09-25T07:49:37.708706Z").unwrap()
    );
    assert!(!t.is_snapshot);
    // The trades sent on subscribe are history.
    let out = feed(
        &mut s,
        r#"{"channel":"trade","type":"snapshot","data":[{"symbol":"MATIC/USD","side":"buy","price":0.5147,"qty":6423.46326,"ord_type":"limit","trade_id":4665846,"timestamp":"2023-09-25T07:48:36.925533Z"}]}"#,
    );
    let [Event::Trade(t)] = &out[..] else {
        panic!("{out:?}")
    };
    assert!(t.is_snapshot);
    assert_eq!(t.side, Some(TradeSide::Buy));
}

#[test]
fn v1_ticker_is_a_quote_of_best_bid_and_ask() {
    let mut s = session();
    let status = r#"{"channelID":345,"channelName":"ticker","event":"subscriptionStatus","pair":"XBT/USD","status":"subscribed","subscription":{"name":"ticker"}}"#;
    assert!(feed(&mut s, status).is_empty());
    // The documented example: `a`/`b` are [price, wholeLotVolume, lotVolume].
    let ticker = r#"[345,{"a":["5525.40000",1,"1.250"],"b":["5525.10000",3,"3.00000000"],"c":["5525.10000","0.00398963"],"v":["2634.11501494","3591.17907851"],"p":["5631.44067","5653.78939"],"t":[11493,16267],"l":["5505.00000","5505.00000"],"h":["5783.00000","5783.00000"],"o":["5760.70000","5763.40000"]},"ticker","XBT/USD"]"#;
    let out = feed(&mut s, ticker);
    let [Event::Quote(q)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(s.symbols().name(q.symbol), "XBT/USD");
    assert_eq!(
        (
            q.bid_price.to_string(),
            q.bid_size.to_string(),
            q.ask_price.to_string(),
            q.ask_size.to_string()
        ),
        (
            "5525.10000".to_owned(),
            "3.00000000".to_owned(),
            "5525.40000".to_owned(),
            "1.250".to_owned()
        )
    );
    assert_eq!((q.seq, q.exchange_ts_ns, q.ts_ns), (None, 0, 7));
    // Quotes make no book and are not counted as ignored.
    assert!(s.symbols().sync(q.symbol).unwrap().book.is_empty());
    assert_eq!(s.stats().ignored, 0);
    // A ticker without its best ask is an error naming the pair.
    let mut out = Vec::new();
    let err = s
        .receive(
            br#"[345,{"b":["5525.10000",3,"3.0"]},"ticker","XBT/USD"]"#,
            7,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(err.symbol.as_deref(), Some("XBT/USD"));
    assert!(out.is_empty());
}

#[test]
fn v2_ticker_is_a_quote_with_the_venues_time() {
    let mut s = session();
    let frame = r#"{"channel":"ticker","type":"snapshot","data":[{"symbol":"ETH/USD","bid":2615.91,"bid_qty":12.50000000,"ask":2615.92,"ask_qty":0.31000000,"last":2615.92,"volume":4021.4,"vwap":2600.1,"low":2580.0,"high":2630.0,"change":10.5,"change_pct":0.4,"timestamp":"2024-05-01T10:00:00.123456Z"}]}"#;
    let out = feed(&mut s, frame);
    let [Event::Quote(q)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(s.symbols().name(q.symbol), "ETH/USD");
    assert_eq!(
        (q.bid_size.to_string(), q.ask_price.to_string()),
        ("12.50000000".to_owned(), "2615.92".to_owned())
    );
    assert_eq!(
        q.exchange_ts_ns,
        parse_iso8601_ns("2024-05-01T10:00:00.123456Z").unwrap()
    );
    // An item with an empty side gives no quote.
    let frame = r#"{"channel":"ticker","type":"update","data":[{"symbol":"ETH/USD","bid":null,"bid_qty":null,"ask":2615.92,"ask_qty":0.3}]}"#;
    assert!(feed(&mut s, frame).is_empty());
    assert_eq!(s.stats().ignored, 1);
}

#[test]
fn depth_is_the_venue_depth_serving_the_wanted_one() {
    assert_eq!(venue_depth(None), 10);
    assert_eq!(venue_depth(Some(1)), 10);
    assert_eq!(venue_depth(Some(10)), 10);
    assert_eq!(venue_depth(Some(20)), 25);
    assert_eq!(venue_depth(Some(101)), 500);
    assert_eq!(venue_depth(Some(1000)), 1000);
    assert_eq!(venue_depth(Some(5000)), 1000);
    // A v2 book whose subscription answer was not seen keeps the venue depth that serves the
    // wanted 20 (Kraken sends 25 and deletes nothing past them): 30 levels a side become 25.
    let mut s = KrakenSession::new(SessionOptions {
        depth: Some(20),
        ..SessionOptions::default()
    });
    let asks: Vec<(String, String)> = (0..30)
        .map(|i| (format!("{}.0", 200 + i), "1.0".to_owned()))
        .collect();
    let bids: Vec<(String, String)> = (0..30)
        .map(|i| (format!("{}.0", 100 - i), "1.0".to_owned()))
        .collect();
    let (asks, bids) = (refs(&asks), refs(&bids));
    let kept = crc(&asks[..25], &bids[..25]);
    feed(&mut s, &v2_book("snapshot", &bids, &asks, kept));
    let sync = s.symbols().sync(0).unwrap();
    assert_eq!(
        (sync.book.len(Side::Bid), sync.book.len(Side::Ask)),
        (25, 25)
    );
    assert_eq!(sync.counters.checksum_mismatches, 0);
    // The subscription answer, when seen, wins: depth 10.
    let mut s = KrakenSession::new(SessionOptions {
        depth: Some(20),
        ..SessionOptions::default()
    });
    feed(&mut s, V2_SUBSCRIBED);
    feed(
        &mut s,
        &v2_book("snapshot", &bids, &asks, crc(&asks[..10], &bids[..10])),
    );
    assert_eq!(s.symbols().sync(0).unwrap().book.len(Side::Bid), 10);
}

#[test]
fn symbols_are_taken_in_the_users_case_or_the_venues() {
    let mut s = KrakenSession::new(SessionOptions {
        symbols: Some(vec!["xbt/usd".to_owned(), "BTC/usd".to_owned()]),
        ..SessionOptions::default()
    });
    let status = r#"{"channelID":42,"channelName":"book-10","event":"subscriptionStatus","pair":"XBT/USD","status":"subscribed","subscription":{"depth":10,"name":"book"}}"#;
    feed(&mut s, status);
    let other = r#"{"channelID":43,"channelName":"book-10","event":"subscriptionStatus","pair":"ETH/USD","status":"subscribed","subscription":{"depth":10,"name":"book"}}"#;
    feed(&mut s, other);
    let snapshot = r#"[42,{"as":[["5.0","1.0","1618678133.1"]],"bs":[["4.0","1.0","1618678133.1"]]},"book-10","XBT/USD"]"#;
    assert_eq!(feed(&mut s, snapshot).len(), 1);
    let snapshot = r#"[43,{"as":[["5.0","1.0","1618678133.1"]],"bs":[["4.0","1.0","1618678133.1"]]},"book-10","ETH/USD"]"#;
    assert!(feed(&mut s, snapshot).is_empty());
    feed(&mut s, V2_SUBSCRIBED);
    assert_eq!(s.symbols().names(), ["XBT/USD", "BTC/USD"]);
    assert!(s.stats().unsubscribed > 0);
    // The channel of a pair is found whichever case names it.
    assert_eq!(s.book_channel("xbt/usd"), Some(42));
    assert_eq!(s.book_channel("XBT/USD"), Some(42));
}

#[test]
fn an_unreadable_book_frame_resyncs_the_pair_it_was_for() {
    // v1: the channel id, read before the frame broke off, names the book.
    let (mut s, _, _) = v1_depth10();
    let mut out = Vec::new();
    let cut = r#"[42,{"a":[["101.0","7.00000000","1618678135.0"#;
    let err = s.receive(cut.as_bytes(), 1, &mut out).unwrap_err();
    assert_eq!(err.symbol.as_deref(), Some("XBT/USD"));
    assert!(matches!(err.error, FrameError::Json(_)));
    assert_eq!(out[1..], [Event::NeedResubscribe { symbol: 0 }]);
    // v2: the item's symbol, read before the fault, names it.
    let mut s = session();
    feed(&mut s, V2_SUBSCRIBED);
    feed(
        &mut s,
        &v2_book("snapshot", &DOC_BIDS, &DOC_ASKS, 3_310_070_434),
    );
    out.clear();
    let bad = r#"{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":45283.5,"qty":1e}]}]}"#;
    let err = s.receive(bad.as_bytes(), 1, &mut out).unwrap_err();
    assert_eq!(err.symbol.as_deref(), Some("BTC/USD"));
    assert_eq!(out[1..], [Event::NeedResubscribe { symbol: 0 }]);
    // A frame announced as a book but naming another channel is refused.
    let (mut s, _, _) = v1_depth10();
    out.clear();
    let odd = r#"[42,{"a":[["101.0","7.0","1618678135.0"]]},"trade","XBT/USD"]"#;
    assert!(s.receive(odd.as_bytes(), 1, &mut out).is_err());
}

#[test]
fn v2_data_before_channel_reads_the_same() {
    let mut s = session();
    feed(&mut s, V2_SUBSCRIBED);
    let frame = v2_book("snapshot", &DOC_BIDS, &DOC_ASKS, 3_310_070_434);
    let data = &frame[frame.find(r#""data":"#).unwrap()..frame.len() - 1];
    let reordered = format!(r#"{{{data},"type":"snapshot","channel":"book"}}"#);
    let out = feed(&mut s, &reordered);
    assert!(
        matches!(out[..], [Event::BookUpdated { symbol: 0, .. }]),
        "{out:?}"
    );
    let sync = s.symbols().sync(0).unwrap();
    assert_eq!(
        (
            sync.counters.checksums_checked,
            sync.counters.checksum_mismatches
        ),
        (1, 0)
    );
    assert_eq!(sync.book.len(Side::Ask), 10);
}

/// Levels skipped past the kept depth leave the book exactly as applying them and truncating
/// would: random updates (inserts and deletes, inside and past the depth, on full and partly
/// filled sides) checked against the plain apply-then-truncate.
#[test]
fn levels_past_the_depth_are_skipped_without_changing_the_book() {
    const DEPTH: usize = 5;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let (mut skipping, mut plain) = (Book::new(), Book::new());
    let mut skipped = 0;
    for _ in 0..2_000 {
        let mut levels: Vec<LevelChange> = (0..1 + next(4))
            .map(|_| {
                let side = if next(2) == 0 { Side::Bid } else { Side::Ask };
                // Bids 80-99, asks 101-120: far levels are often past a full side's depth.
                let offset = 1 + next(20) as i64;
                let price = match side {
                    Side::Bid => 100 - offset,
                    Side::Ask => 100 + offset,
                };
                let qty = if next(4) == 0 { 0 } else { 1 + next(9) as i64 };
                let decimal = |v| Decimal::new(v, 0).unwrap();
                (side, decimal(price), decimal(qty))
            })
            .collect();
        for &(side, price, qty) in &levels {
            plain.apply(side, price, qty).unwrap();
        }
        plain.truncate(DEPTH);
        let all = 0..levels.len();
        let end = skip_past_depth(&skipping, DEPTH, &mut levels, all);
        skipped += levels.len() - end;
        for &(side, price, qty) in &levels[..end] {
            skipping.apply(side, price, qty).unwrap();
        }
        skipping.truncate(DEPTH);
        for side in [Side::Bid, Side::Ask] {
            let a: Vec<Level> = skipping.side(side).collect();
            let b: Vec<Level> = plain.side(side).collect();
            assert_eq!(a, b);
        }
    }
    // The case the skip is for did come up.
    assert!(skipped > 100, "{skipped}");
}

#[test]
fn a_delete_inside_the_depth_keeps_the_levels_behind_it() {
    let mut book = Book::new();
    for p in ["1", "2", "3"] {
        book.apply(
            Side::Ask,
            Decimal::parse(p).unwrap(),
            Decimal::parse("1").unwrap(),
        )
        .unwrap();
    }
    let d = |t: &str| Decimal::parse(t).unwrap();
    // Full at depth 3: a level at 5 alone cannot enter...
    let mut levels = vec![(Side::Ask, d("5"), d("1"))];
    assert_eq!(skip_past_depth(&book, 3, &mut levels, 0..1), 0);
    // ...but with the best deleted in the same update it becomes the third level.
    let mut levels = vec![(Side::Ask, d("5"), d("1")), (Side::Ask, d("1"), d("0"))];
    assert_eq!(skip_past_depth(&book, 3, &mut levels, 0..2), 2);
    // A negative quantity is kept, for the book to refuse.
    let mut levels = vec![(Side::Ask, d("5"), d("-1"))];
    assert_eq!(skip_past_depth(&book, 3, &mut levels, 0..1), 1);
}
