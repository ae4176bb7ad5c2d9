use super::*;
use crate::event::LossReason;
use crate::sync::SyncState;

fn l2(start: u64, end: u64, asks: &str, bids: &str) -> String {
    format!(
        r#"{{"data":{{"sequenceStart":{start},"symbol":"BTC-USDT","changes":{{"asks":[{asks}],"bids":[{bids}]}},"sequenceEnd":{end}}},"subject":"trade.l2update","topic":"/market/level2:BTC-USDT","type":"message"}}"#
    )
}

const SNAPSHOT: &[u8] = br#"{"code":"200000","data":{"time":1,"sequence":"102","bids":[["100","1"],["99","2"]],"asks":[["101","1"],["102","3"]]}}"#;

fn session() -> KucoinSession {
    KucoinSession::new(SessionOptions::default())
}

fn top(s: &KucoinSession) -> (String, String) {
    let book = &s.symbols().sync(0).unwrap().book;
    let bid = book.best_bid().unwrap();
    let ask = book.best_ask().unwrap();
    (bid.price.to_string(), ask.price.to_string())
}

#[test]
fn the_rule_bridges_on_the_snapshot_sequence_and_chains_by_one() {
    let r = KucoinRule;
    let d = |first, last| DeltaIds {
        first,
        last,
        prev: None,
    };
    assert_eq!(r.bridges(10, &d(5, 10)), Continuity::Stale);
    assert_eq!(r.bridges(10, &d(8, 12)), Continuity::Apply);
    assert_eq!(r.bridges(10, &d(11, 11)), Continuity::Apply);
    assert_eq!(
        r.bridges(10, &d(12, 13)),
        Continuity::Gap {
            expected: 11,
            received: 12
        }
    );
    assert_eq!(r.follows(&d(8, 12), &d(13, 15)), Continuity::Apply);
    assert_eq!(r.follows(&d(8, 12), &d(10, 12)), Continuity::Stale);
    assert_eq!(
        r.follows(&d(8, 12), &d(14, 15)),
        Continuity::Gap {
            expected: 13,
            received: 14
        }
    );
}

#[test]
fn updates_before_the_snapshot_are_buffered_then_bridged() {
    let mut s = session();
    let mut out = Vec::new();
    // Arrives before the snapshot, and straddles it (sequence 101..103).
    s.receive(
        l2(101, 103, r#"["101","0","101"],["100.5","4","103"]"#, "").as_bytes(),
        1,
        &mut out,
    )
    .unwrap();
    assert_eq!(out, vec![Event::NeedSnapshot { symbol: 0 }]);
    out.clear();
    s.receive_snapshot("BTC-USDT", SNAPSHOT, 2, &mut out)
        .unwrap();
    assert!(matches!(
        out[..],
        [Event::BookUpdated { seq: Some(103), .. }]
    ));
    assert_eq!(top(&s), ("100".into(), "100.5".into()));
    out.clear();
    s.receive(
        l2(104, 104, "", r#"["100.2","1","104"]"#).as_bytes(),
        3,
        &mut out,
    )
    .unwrap();
    assert_eq!(top(&s), ("100.2".into(), "100.5".into()));
    assert_eq!(s.symbols().sync(0).unwrap().last_seq, Some(104));
}

#[test]
fn price_zero_changes_only_advance_the_sequence() {
    let mut s = session();
    let mut out = Vec::new();
    s.receive_snapshot("BTC-USDT", SNAPSHOT, 1, &mut out)
        .unwrap();
    out.clear();
    s.receive(
        l2(103, 104, r#"["0","0","103"]"#, r#"["0","0","104"]"#).as_bytes(),
        2,
        &mut out,
    )
    .unwrap();
    let sync = s.symbols().sync(0).unwrap();
    assert_eq!(sync.last_seq, Some(104));
    assert_eq!((sync.book.len(Side::Bid), sync.book.len(Side::Ask)), (2, 2));
    // The next message chains on from the sequence-only one.
    s.receive(
        l2(105, 105, r#"["101","0","105"]"#, "").as_bytes(),
        3,
        &mut out,
    )
    .unwrap();
    assert_eq!(top(&s), ("100".into(), "102".into()));
    assert_eq!(s.symbols().sync(0).unwrap().counters.gaps, 0);
}

#[test]
fn a_gap_drops_the_book_and_asks_for_a_snapshot() {
    let mut s = session();
    let mut out = Vec::new();
    s.receive_snapshot("BTC-USDT", SNAPSHOT, 1, &mut out)
        .unwrap();
    out.clear();
    s.receive(
        l2(105, 106, "", r#"["100.1","1","106"]"#).as_bytes(),
        2,
        &mut out,
    )
    .unwrap();
    assert_eq!(
        out,
        vec![
            Event::GapDetected {
                symbol: 0,
                expected: 103,
                received: 105
            },
            Event::SyncLost {
                symbol: 0,
                reason: LossReason::Gap {
                    expected: 103,
                    received: 105
                }
            },
            Event::NeedSnapshot { symbol: 0 },
        ]
    );
    assert_eq!(
        s.symbols().sync(0).unwrap().state(),
        SyncState::AwaitingSnapshot
    );
}

#[test]
fn tickers_are_quotes_at_their_sequence() {
    let mut s = session();
    let mut out = Vec::new();
    let frame = br#"{"data":{"sequence":"1612844051653","bestAsk":"0.00028717","size":"0.01","bestBidSize":"3.7","price":"0.00028676","time":1619378326323,"bestAskSize":"14.04","bestBid":"0.00028678"},"subject":"trade.ticker","topic":"/market/ticker:SNX-BTC","type":"message"}"#;
    s.receive(frame, 7, &mut out).unwrap();
    let [Event::Quote(q)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(q.seq, Some(1612844051653));
    assert_eq!(q.bid_price.to_string(), "0.00028678");
    assert_eq!(q.ask_size.to_string(), "14.04");
    assert_eq!(q.exchange_ts_ns, 1619378326323 * 1_000_000);
    assert_eq!(s.symbols().name(q.symbol), "SNX-BTC");
}

#[test]
fn matches_are_trades_and_candles_carry_their_interval() {
    let mut s = session();
    let mut out = Vec::new();
    let trade = br#"{"data":{"symbol":"DAPPT-BTC","sequence":"1","side":"sell","size":"81.8814","price":"0.0000001117","takerOrderId":"a","time":"1619378327739050725","type":"match","makerOrderId":"b","tradeId":"6085c0"},"subject":"trade.l3match","topic":"/market/match:DAPPT-BTC","type":"message"}"#;
    s.receive(trade, 1, &mut out).unwrap();
    let [Event::Trade(t)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(
        (t.side, t.trade_id.as_str(), t.exchange_ts_ns),
        (Some(TradeSide::Sell), "6085c0", 1619378327739050725)
    );
    out.clear();
    let candle = br#"{"data":{"symbol":"DAPPT-BTC","candles":["1619378280","0.0000001117","0.0000001123","0.0000001126","0.0000001116","3437.9375","0.00038"],"time":1619378328806720268},"subject":"trade.candles.update","topic":"/market/candles:DAPPT-BTC_1min","type":"message"}"#;
    s.receive(candle, 2, &mut out).unwrap();
    let [Event::Candle(c)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(c.interval, "1m");
    assert_eq!(c.open_ts_ns, 1_619_378_280_000_000_000);
    assert_eq!(c.close_ts_ns - c.open_ts_ns, 60_000_000_000);
    assert_eq!(
        (c.open.to_string(), c.close.to_string(), c.high.to_string()),
        (
            "0.0000001117".into(),
            "0.0000001123".into(),
            "0.0000001126".into()
        )
    );
}

#[test]
fn errors_are_typed_and_handshake_frames_ignored() {
    let mut s = session();
    let mut out = Vec::new();
    for frame in [
        r#"{"id":"abc","type":"welcome"}"#,
        r#"{"id":"1","type":"ack"}"#,
        r#"{"id":"2","type":"pong"}"#,
    ] {
        s.receive(frame.as_bytes(), 1, &mut out).unwrap();
    }
    assert_eq!(s.stats().ignored, 3);
    let err = s
        .receive(
            br#"{"id":"1","type":"error","code":404,"data":"topic /market/level2:NOPE-USDT is not found"}"#,
            2,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(
        err.error,
        FrameError::VenueError("code 404: topic /market/level2:NOPE-USDT is not found".into())
    );
    let err = s
        .receive_snapshot(
            "NOPE-USDT",
            br#"{"code":"400100","msg":"symbol not exists"}"#,
            3,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(err.symbol.as_deref(), Some("NOPE-USDT"));
    assert_eq!(
        err.error,
        FrameError::VenueError("code 400100: symbol not exists".into())
    );
    assert!(out.is_empty());
}

#[test]
fn a_bad_book_frame_resyncs_its_symbol_and_bad_numbers_are_typed() {
    let mut s = session();
    let mut out = Vec::new();
    s.receive_snapshot("BTC-USDT", SNAPSHOT, 1, &mut out)
        .unwrap();
    out.clear();
    let err = s
        .receive(
            l2(103, 103, r#"["1x","1","103"]"#, "").as_bytes(),
            2,
            &mut out,
        )
        .unwrap_err();
    assert!(matches!(
        err.error,
        FrameError::BadNumber { field: "price", .. }
    ));
    assert_eq!(err.symbol.as_deref(), Some("BTC-USDT"));
    assert!(out.contains(&Event::NeedSnapshot { symbol: 0 }));
    out.clear();
    let err = s
        .receive(l2(104, 103, "", "").as_bytes(), 3, &mut out)
        .unwrap_err();
    assert!(matches!(err.error, FrameError::Invalid(_)));
}

#[test]
fn unsubscribed_symbols_are_dropped() {
    let mut s = KucoinSession::new(SessionOptions {
        symbols: Some(vec!["ETH-USDT".into()]),
        ..SessionOptions::default()
    });
    let mut out = Vec::new();
    s.receive(l2(1, 1, "", r#"["1","1","1"]"#).as_bytes(), 1, &mut out)
        .unwrap();
    assert!(out.is_empty());
    assert_eq!(s.stats().unsubscribed, 1);
}
