use super::*;
use crate::book::{Level, Side};
use crate::event::LossReason;
use crate::sync::SyncState;

const T0: u64 = 1_700_000_000_000_000_000;

fn feed(session: &mut BybitSession, frame: &str) -> Vec<Event> {
    let mut out = Vec::new();
    session
        .receive(frame.as_bytes(), T0, &mut out)
        .unwrap_or_else(|e| panic!("{frame}: {e}"));
    out
}

/// A book message as the v5 docs describe it: top-level `topic`/`type`/`ts`, `data` with
/// `s`, `b`, `a`, `u`, `seq`.
fn book_msg(kind: &str, u: u64, bids: &str, asks: &str) -> String {
    format!(
        r#"{{"topic":"orderbook.50.XYZUSDT","type":"{kind}","ts":1700000000123,"data":{{"s":"XYZUSDT","b":[{bids}],"a":[{asks}],"u":{u},"seq":9000{u}}},"cts":1700000000120}}"#
    )
}

fn side(session: &BybitSession, side: Side) -> Vec<(String, String)> {
    let sync = session.symbols().sync(0).unwrap();
    sync.book
        .levels(side)
        .map(|Level { price, qty }| (price.to_string(), qty.to_string()))
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(p, q)| (p.to_string(), q.to_string()))
        .collect()
}

#[test]
fn rule_needs_exactly_the_next_id() {
    let last = DeltaIds::single(10);
    assert_eq!(
        BybitRule.follows(&last, &DeltaIds::single(11)),
        Continuity::Apply
    );
    assert_eq!(
        BybitRule.follows(&last, &DeltaIds::single(10)),
        Continuity::Stale
    );
    assert_eq!(
        BybitRule.follows(&last, &DeltaIds::single(13)),
        Continuity::Gap {
            expected: 11,
            received: 13
        }
    );
    assert_eq!(
        BybitRule.bridges(u64::MAX, &DeltaIds::single(u64::MAX)),
        Continuity::Stale
    );
}

#[test]
fn snapshot_then_deltas_with_deletes_of_unknown_levels() {
    let mut s = BybitSession::new(SessionOptions::default());
    let out = feed(
        &mut s,
        &book_msg(
            "snapshot",
            100,
            r#"["10.0","1"],["9.5","2"]"#,
            r#"["10.5","3"]"#,
        ),
    );
    assert!(matches!(
        out.as_slice(),
        [Event::BookUpdated {
            seq: Some(100),
            exchange_ts_ns: 1_700_000_000_123_000_000,
            ..
        }]
    ));
    // Deleting a level the book never had is normal.
    let out = feed(
        &mut s,
        &book_msg(
            "delta",
            101,
            r#"["9.0","0"],["9.5","0"]"#,
            r#"["11.0","0"]"#,
        ),
    );
    assert!(matches!(
        out.as_slice(),
        [Event::BookUpdated { seq: Some(101), .. }]
    ));
    assert_eq!(side(&s, Side::Bid), pairs(&[("10.0", "1")]));
    assert_eq!(side(&s, Side::Ask), pairs(&[("10.5", "3")]));
    assert_eq!(s.stats().errors, 0);
}

#[test]
fn snapshot_replaces_a_populated_book_fully() {
    let mut s = BybitSession::new(SessionOptions::default());
    feed(
        &mut s,
        &book_msg(
            "snapshot",
            5,
            r#"["100","1"],["99","1"],["98","1"]"#,
            r#"["101","1"],["102","1"]"#,
        ),
    );
    feed(
        &mut s,
        &book_msg("delta", 6, r#"["97","4"]"#, r#"["103","5"]"#),
    );
    // A new snapshot (lower id, as after a resubscription elsewhere) replaces everything.
    let out = feed(
        &mut s,
        &book_msg("snapshot", 3, r#"["50","7"]"#, r#"["60","8"]"#),
    );
    assert!(matches!(
        out.as_slice(),
        [Event::BookUpdated { seq: Some(3), .. }]
    ));
    assert_eq!(side(&s, Side::Bid), pairs(&[("50", "7")]));
    assert_eq!(side(&s, Side::Ask), pairs(&[("60", "8")]));
    // And deltas chain from the new snapshot's id.
    let out = feed(&mut s, &book_msg("delta", 4, r#"["51","1"]"#, ""));
    assert!(matches!(
        out.as_slice(),
        [Event::BookUpdated { seq: Some(4), .. }]
    ));
}

#[test]
fn delta_with_u_1_is_a_restart_and_resets_the_book() {
    let mut s = BybitSession::new(SessionOptions::default());
    feed(
        &mut s,
        &book_msg(
            "snapshot",
            500,
            r#"["100","1"],["99","2"]"#,
            r#"["101","1"]"#,
        ),
    );
    feed(&mut s, &book_msg("delta", 501, r#"["98","3"]"#, ""));
    let out = feed(
        &mut s,
        &book_msg("delta", 1, r#"["200","1"]"#, r#"["201","2"]"#),
    );
    assert!(
        matches!(out.as_slice(), [Event::BookUpdated { seq: Some(1), .. }]),
        "{out:?}"
    );
    assert_eq!(side(&s, Side::Bid), pairs(&[("200", "1")]));
    assert_eq!(side(&s, Side::Ask), pairs(&[("201", "2")]));
    let out = feed(&mut s, &book_msg("delta", 2, "", r#"["202","1"]"#));
    assert!(matches!(
        out.as_slice(),
        [Event::BookUpdated { seq: Some(2), .. }]
    ));
    let sync = s.symbols().sync(0).unwrap();
    assert_eq!(sync.counters.gaps, 0);
    assert_eq!(sync.counters.snapshots, 2);
}

#[test]
fn u_jump_is_a_gap_then_a_new_snapshot_resyncs() {
    let mut s = BybitSession::new(SessionOptions::default());
    feed(
        &mut s,
        &book_msg("snapshot", 10, r#"["100","1"]"#, r#"["101","1"]"#),
    );
    feed(&mut s, &book_msg("delta", 11, r#"["99","1"]"#, ""));
    let out = feed(&mut s, &book_msg("delta", 14, r#"["98","1"]"#, ""));
    assert_eq!(
        out,
        vec![
            Event::GapDetected {
                symbol: 0,
                expected: 12,
                received: 14
            },
            Event::SyncLost {
                symbol: 0,
                reason: LossReason::Gap {
                    expected: 12,
                    received: 14,
                },
            },
            Event::NeedResubscribe { symbol: 0 },
        ]
    );
    let sync = s.symbols().sync(0).unwrap();
    assert_eq!(sync.state(), SyncState::AwaitingSnapshot);
    assert!(sync.book.is_empty());
    // Deltas until the resubscription lands change nothing and ask nothing new.
    let out = feed(&mut s, &book_msg("delta", 15, r#"["97","1"]"#, ""));
    assert!(out.is_empty(), "{out:?}");
    // The resubscription's snapshot rebuilds the book.
    let out = feed(
        &mut s,
        &book_msg("snapshot", 20, r#"["90","2"]"#, r#"["91","3"]"#),
    );
    assert_eq!(
        out,
        vec![
            Event::Resynced {
                symbol: 0,
                seq: Some(20)
            },
            Event::BookUpdated {
                symbol: 0,
                seq: Some(20),
                exchange_ts_ns: 1_700_000_000_123_000_000,
                ts_ns: T0
            },
        ]
    );
    assert_eq!(side(&s, Side::Bid), pairs(&[("90", "2")]));
    let sync = s.symbols().sync(0).unwrap();
    assert_eq!(sync.counters.gaps, 1);
    assert_eq!(sync.counters.resyncs, 1);
    assert_eq!(sync.state(), SyncState::Live);
}

#[test]
fn restart_while_resyncing_is_still_taken() {
    let mut s = BybitSession::new(SessionOptions::default());
    feed(&mut s, &book_msg("snapshot", 10, r#"["100","1"]"#, ""));
    feed(&mut s, &book_msg("delta", 12, "", r#"["101","1"]"#));
    // Ids restart while the symbol awaits its snapshot: the restart book is taken anyway.
    let out = feed(
        &mut s,
        &book_msg("delta", 1, r#"["80","1"]"#, r#"["81","1"]"#),
    );
    assert!(matches!(
        out.as_slice(),
        [
            Event::Resynced { seq: Some(1), .. },
            Event::BookUpdated { .. }
        ]
    ));
    assert_eq!(side(&s, Side::Ask), pairs(&[("81", "1")]));
}

#[test]
fn bad_book_frame_resyncs_only_its_symbol() {
    let mut s = BybitSession::new(SessionOptions::default());
    feed(&mut s, &book_msg("snapshot", 10, r#"["100","1"]"#, ""));
    feed(
        &mut s,
        r#"{"topic":"orderbook.50.ABCUSDT","type":"snapshot","ts":1,"data":{"s":"ABCUSDT","b":[["1","1"]],"a":[],"u":7}}"#,
    );
    let mut out = Vec::new();
    let err = s
        .receive(
            book_msg("delta", 11, r#"["99","x"]"#, "").as_bytes(),
            T0,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(err.symbol.as_deref(), Some("XYZUSDT"));
    assert!(matches!(err.error, FrameError::BadNumber { .. }));
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
    assert_eq!(
        s.symbols().sync(1).unwrap().state(),
        SyncState::Live,
        "the other symbol keeps its book"
    );
    // A frame cut short still names its symbol and costs it its sync.
    feed(&mut s, &book_msg("snapshot", 30, r#"["100","1"]"#, ""));
    let frame = book_msg("delta", 31, r#"["99","1"]"#, "");
    let mut out = Vec::new();
    let err = s
        .receive(&frame.as_bytes()[..frame.len() - 20], T0, &mut out)
        .unwrap_err();
    assert!(matches!(err.error, FrameError::Json(_)));
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
}

#[test]
fn trades_keep_taker_side_and_exact_digits() {
    let mut s = BybitSession::new(SessionOptions::default());
    let out = feed(
        &mut s,
        r#"{"topic":"publicTrade.XYZUSDT","type":"snapshot","ts":1700000000200,"data":[{"T":1700000000199,"s":"XYZUSDT","S":"Sell","v":"0.0100","p":"25000.50","L":"MinusTick","i":"abc-1","BT":false},{"T":1700000000200,"s":"XYZUSDT","S":"Buy","v":"2","p":"25000.6","i":"abc-2","BT":true}]}"#,
    );
    let trades: Vec<_> = out
        .iter()
        .map(|e| match e {
            Event::Trade(t) => (
                t.price.to_string(),
                t.size.to_string(),
                t.side,
                t.trade_id.clone(),
                t.exchange_ts_ns,
            ),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        trades,
        vec![
            (
                "25000.50".into(),
                "0.0100".into(),
                Some(TradeSide::Sell),
                "abc-1".into(),
                1_700_000_000_199_000_000
            ),
            (
                "25000.6".into(),
                "2".into(),
                Some(TradeSide::Buy),
                "abc-2".into(),
                1_700_000_000_200_000_000
            ),
        ]
    );
    // One bad trade spoils the frame, not half of it.
    let mut out = Vec::new();
    assert!(s
        .receive(
            br#"{"topic":"publicTrade.XYZUSDT","ts":1,"data":[{"T":1,"s":"XYZUSDT","S":"Buy","v":"1","p":"1","i":"a"},{"T":1,"s":"XYZUSDT","S":"Buy","v":"1","p":"nope","i":"b"}]}"#,
            T0,
            &mut out
        )
        .is_err());
    assert!(out.is_empty());
}

#[test]
fn klines_carry_the_confirm_flag() {
    let mut s = BybitSession::new(SessionOptions::default());
    let out = feed(
        &mut s,
        r#"{"topic":"kline.60.XYZUSDT","type":"snapshot","ts":1700003600001,"data":[{"start":1700000000000,"end":1700003599999,"interval":"60","open":"1.10","close":"1.20","high":"1.25","low":"1.05","volume":"300.5","turnover":"350","confirm":true,"timestamp":1700003600000}]}"#,
    );
    match out.as_slice() {
        [Event::Candle(c)] => {
            assert!(c.closed);
            assert_eq!(c.interval, "1h");
            assert_eq!(c.open_ts_ns, 1_700_000_000_000_000_000);
            assert_eq!(c.close_ts_ns, 1_700_003_600_000_000_000);
            assert_eq!(c.exchange_ts_ns, 1_700_003_600_000_000_000);
            assert_eq!(
                (
                    c.open.to_string(),
                    c.close.to_string(),
                    c.volume.to_string()
                ),
                ("1.10".into(), "1.20".into(), "300.5".into())
            );
            assert_eq!(s.symbols().name(c.symbol), "XYZUSDT");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(interval_name("1"), "1m");
    assert_eq!(interval_name("240"), "4h");
    assert_eq!(interval_name("D"), "1d");
    assert_eq!(interval_name("M"), "1M");
}

#[test]
fn acks_pongs_spot_tickers_and_unknown_frames_are_ignored() {
    let mut s = BybitSession::new(SessionOptions::default());
    for frame in [
        r#"{"success":true,"ret_msg":"","conn_id":"c-1","req_id":"","op":"subscribe"}"#,
        r#"{"req_id":"p1","op":"pong","args":["1700000000000"],"conn_id":"c-1"}"#,
        r#"{"topic":"tickers.XYZUSDT","ts":1700000000100,"type":"snapshot","cs":1,"data":{"symbol":"XYZUSDT","lastPrice":"25000.5","highPrice24h":"25100","lowPrice24h":"24900","volume24h":"12.5"}}"#,
        r#"{"topic":"allLiquidation.XYZUSDT","type":"snapshot","ts":1,"data":[{"T":1,"s":"XYZUSDT","S":"Sell","v":"1","p":"1"}]}"#,
        r#"{"hello":"world"}"#,
    ] {
        assert!(feed(&mut s, frame).is_empty());
    }
    assert_eq!(s.stats().ignored, 5);
    assert_eq!(s.stats().errors, 0);
    assert!(s.symbols().is_empty());
}

#[test]
fn linear_tickers_become_quotes_from_snapshot_and_deltas() {
    let mut s = BybitSession::new(SessionOptions::default());
    let ticker = |kind: &str, ts: u64, fields: &str| {
        format!(
            r#"{{"topic":"tickers.XYZUSDT","type":"{kind}","data":{{"symbol":"XYZUSDT","lastPrice":"25000.40"{fields}}},"cs":9001,"ts":{ts}}}"#
        )
    };
    let quote = |out: &[Event]| match out {
        [Event::Quote(q)] => (
            q.symbol,
            q.seq,
            q.bid_price.to_string(),
            q.bid_size.to_string(),
            q.ask_price.to_string(),
            q.ask_size.to_string(),
            q.exchange_ts_ns,
        ),
        other => panic!("{other:?}"),
    };
    let out = feed(
        &mut s,
        &ticker(
            "snapshot",
            1700000000100,
            r#","bid1Price":"25000.40","bid1Size":"1.500","ask1Price":"25000.50","ask1Size":"0.020","markPrice":"25000.45""#,
        ),
    );
    assert_eq!(
        quote(&out),
        (
            0,
            None,
            "25000.40".into(),
            "1.500".into(),
            "25000.50".into(),
            "0.020".into(),
            1_700_000_000_100_000_000
        )
    );
    // A delta carries what changed; the rest is the last known.
    let out = feed(
        &mut s,
        &ticker("delta", 1700000000200, r#","ask1Size":"0.700""#),
    );
    let q = quote(&out);
    assert_eq!((q.2.as_str(), q.5.as_str()), ("25000.40", "0.700"));
    // A delta that leaves the top alone gives no quote.
    assert!(feed(&mut s, &ticker("delta", 1700000000300, "")).is_empty());
    assert_eq!(s.stats().ignored, 1);
    // A new snapshot starts over: until all four are known again, nothing is quoted.
    assert!(feed(
        &mut s,
        &ticker(
            "snapshot",
            1700000000400,
            r#","bid1Price":"24999.9","bid1Size":"2""#
        )
    )
    .is_empty());
    // An empty field is "not given", not zero.
    let out = feed(
        &mut s,
        &ticker(
            "delta",
            1700000000500,
            r#","ask1Price":"25000","ask1Size":"3","bid1Size":"""#,
        ),
    );
    let q = quote(&out);
    assert_eq!(
        (q.2.as_str(), q.3.as_str(), q.4.as_str(), q.5.as_str()),
        ("24999.9", "2", "25000", "3")
    );
    // Quotes are information only: no book is made or checked.
    let sync = s.symbols().sync(0).unwrap();
    assert!(sync.book.is_empty());
    assert_eq!(sync.counters.updates, 0);
    // A number that does not parse is a typed error naming the symbol.
    let mut out = Vec::new();
    let err = s
        .receive(
            ticker("delta", 1, r#","bid1Price":"2x""#).as_bytes(),
            T0,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(err.symbol.as_deref(), Some("XYZUSDT"));
    assert!(matches!(
        err.error,
        FrameError::BadNumber {
            field: "bid1Price",
            ..
        }
    ));
    assert!(out.is_empty());
}

#[test]
fn refused_operation_is_a_typed_venue_error_and_changes_no_book() {
    let mut s = BybitSession::new(SessionOptions::default());
    feed(
        &mut s,
        &book_msg("snapshot", 10, r#"["100","1"]"#, r#"["101","2"]"#),
    );
    let before = (side(&s, Side::Bid), side(&s, Side::Ask));
    let mut out = Vec::new();
    let err = s
        .receive(
            br#"{"success":false,"ret_msg":"error:topic not exists \"orderbook.50.NOPE\"","conn_id":"c-9","req_id":"r1","op":"subscribe"}"#,
            T0,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(err.symbol, None);
    assert_eq!(
        err.error,
        FrameError::VenueError(r#"subscribe: error:topic not exists "orderbook.50.NOPE""#.into())
    );
    assert!(out.is_empty());
    assert_eq!((side(&s, Side::Bid), side(&s, Side::Ask)), before);
    assert_eq!(s.symbols().len(), 1);
    assert_eq!(s.symbols().sync(0).unwrap().state(), SyncState::Live);
    assert_eq!(s.symbols().sync(0).unwrap().counters.errors, 0);
    assert_eq!((s.stats().errors, s.stats().ignored), (1, 0));
    // And the stream goes on.
    let out = feed(&mut s, &book_msg("delta", 11, r#"["99","1"]"#, ""));
    assert!(matches!(
        out[..],
        [Event::BookUpdated { seq: Some(11), .. }]
    ));
}

/// An `orderbook.1` message as Bybit sends it: snapshots only, one level a side.
fn top_msg(u: u64, bid: &str, ask: &str) -> String {
    format!(
        r#"{{"topic":"orderbook.1.XYZUSDT","type":"snapshot","ts":1700000000200,"data":{{"s":"XYZUSDT","b":[{bid}],"a":[{ask}],"u":{u},"seq":8000{u}}},"cts":1700000000190}}"#
    )
}

fn quote_view(out: &[Event]) -> Vec<(Option<u64>, String, String)> {
    out.iter()
        .filter_map(|e| match e {
            Event::Quote(q) => Some((
                q.seq,
                format!("{}@{}", q.bid_size, q.bid_price),
                format!("{}@{}", q.ask_size, q.ask_price),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn top_of_book_topic_gives_quotes_and_leaves_the_book_alone() {
    let mut s = BybitSession::new(SessionOptions::default());
    feed(
        &mut s,
        &book_msg(
            "snapshot",
            10,
            r#"["100","1"],["99","2"]"#,
            r#"["101","1"]"#,
        ),
    );
    let out = feed(&mut s, &top_msg(500, r#"["100","1"]"#, r#"["101","1"]"#));
    assert_eq!(
        quote_view(&out),
        vec![(None, "1@100".into(), "1@101".into())]
    );
    assert_eq!(out.len(), 1, "no book event: {out:?}");
    match &out[0] {
        Event::Quote(q) => assert_eq!(q.exchange_ts_ns, 1_700_000_000_200_000_000),
        other => panic!("{other:?}"),
    }
    // Resent unchanged after 3 s (same `u`): no new quote.
    assert!(feed(&mut s, &top_msg(500, r#"["100","1"]"#, r#"["101","1"]"#)).is_empty());
    let out = feed(&mut s, &top_msg(501, r#"["100","3"]"#, r#"["100.5","2"]"#));
    assert_eq!(
        quote_view(&out),
        vec![(None, "3@100".into(), "2@100.5".into())]
    );
    // The book (orderbook.50) was never touched and its deltas still chain.
    assert_eq!(side(&s, Side::Ask), pairs(&[("101", "1")]));
    let out = feed(&mut s, &book_msg("delta", 11, r#"["98","1"]"#, ""));
    assert!(matches!(
        out[..],
        [Event::BookUpdated { seq: Some(11), .. }]
    ));
    // A top of book frame that cannot be read is an error of its own: the book keeps its sync.
    let mut out = Vec::new();
    let err = s
        .receive(
            top_msg(502, r#"["100","x"]"#, r#"["101","1"]"#).as_bytes(),
            T0,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(err.symbol.as_deref(), Some("XYZUSDT"));
    assert!(out.is_empty(), "{out:?}");
    let sync = s.symbols().sync(0).unwrap();
    assert_eq!(sync.state(), SyncState::Live);
    assert_eq!(sync.counters.errors, 0);
    let mut out = Vec::new();
    let frame = top_msg(503, r#"["100","1"]"#, r#"["101","1"]"#);
    assert!(s
        .receive(&frame.as_bytes()[..frame.len() - 30], T0, &mut out)
        .is_err());
    assert!(out.is_empty(), "{out:?}");
    // A one-sided top gives no quote.
    assert!(feed(&mut s, &top_msg(504, r#"["100","1"]"#, "")).is_empty());
}

#[test]
fn top_of_book_topic_is_the_book_until_a_deeper_one_comes() {
    let mut s = BybitSession::new(SessionOptions::default());
    let out = feed(&mut s, &top_msg(500, r#"["100","1"]"#, r#"["101","1"]"#));
    assert!(
        matches!(
            out.as_slice(),
            [
                Event::BookUpdated { seq: Some(500), .. },
                Event::Quote(Quote { seq: Some(500), .. })
            ]
        ),
        "{out:?}"
    );
    // Each new top replaces the book whole, and is quoted with the book's own `u`.
    let out = feed(&mut s, &top_msg(501, r#"["99.5","4"]"#, r#"["100.5","2"]"#));
    assert_eq!(
        quote_view(&out),
        vec![(Some(501), "4@99.5".into(), "2@100.5".into())]
    );
    assert_eq!(side(&s, Side::Bid), pairs(&[("99.5", "4")]));
    assert_eq!(side(&s, Side::Ask), pairs(&[("100.5", "2")]));
    // A resend refreshes the book but is no new quote.
    let out = feed(&mut s, &top_msg(501, r#"["99.5","4"]"#, r#"["100.5","2"]"#));
    assert!(
        matches!(out.as_slice(), [Event::BookUpdated { .. }]),
        "{out:?}"
    );
}

#[test]
fn symbols_match_in_the_users_case_and_the_venues() {
    let options = SessionOptions {
        symbols: Some(vec!["xyzusdt".to_owned()]),
        ..SessionOptions::default()
    };
    let mut s = BybitSession::new(options);
    let out = feed(&mut s, &book_msg("snapshot", 10, r#"["100","1"]"#, ""));
    assert!(matches!(out.as_slice(), [Event::BookUpdated { .. }]));
    feed(
        &mut s,
        r#"{"topic":"orderbook.50.ABCUSDT","type":"snapshot","ts":1,"data":{"s":"ABCUSDT","b":[["1","1"]],"a":[],"u":7}}"#,
    );
    assert_eq!(s.symbols().names(), ["XYZUSDT"]);
    assert_eq!(s.stats().unsubscribed, 1);
}
