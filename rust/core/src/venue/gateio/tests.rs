//! Frames written from Gate's API v4 documentation of `spot.order_book_update`,
//! `futures.order_book_update`, `futures.book_ticker`, the trade and candle channels, and the
//! REST `order_book?with_id=true`.

use super::*;
use crate::event::LossReason;
use crate::sync::SyncState;

fn spot() -> GateSession {
    GateSession::new(Market::Spot, SessionOptions::default())
}

fn futures() -> GateSession {
    GateSession::new(Market::Futures, SessionOptions::default())
}

fn feed(s: &mut GateSession, frame: &str) -> Vec<Event> {
    let mut out = Vec::new();
    s.receive(frame.as_bytes(), 1, &mut out)
        .unwrap_or_else(|e| panic!("{frame}: {e}"));
    out
}

fn snapshot(s: &mut GateSession, symbol: &str, body: &str) -> Vec<Event> {
    let mut out = Vec::new();
    s.receive_snapshot(symbol, body.as_bytes(), 1, &mut out)
        .unwrap_or_else(|e| panic!("{body}: {e}"));
    out
}

fn spot_update(first: u64, last: u64, bids: &str, asks: &str) -> String {
    format!(
        r#"{{"time":1619093532,"channel":"spot.order_book_update","event":"update","result":{{"t":1619093532978,"e":"depthUpdate","E":1619093532,"s":"BTC_USDT","U":{first},"u":{last},"b":[{bids}],"a":[{asks}]}}}}"#
    )
}

fn futures_update(first: u64, last: u64, bids: &str, asks: &str) -> String {
    format!(
        r#"{{"time":1684930165,"time_ms":1684930165254,"channel":"futures.order_book_update","event":"update","result":{{"U":{first},"a":[{asks}],"b":[{bids}],"s":"BTC_USDT","t":1684930165217,"u":{last}}}}}"#
    )
}

const SPOT_BOOK: &str =
    r#"{"id":100,"asks":[["101.5","2"],["102","1.25"]],"bids":[["100","3"],["99.5","0.5"]]}"#;
const FUTURES_BOOK: &str = r#"{"current":1684930166.384,"update":1684930166.35,"asks":[{"s":803,"p":"0.2974"}],"bids":[{"s":12,"p":"0.2973"}],"id":500}"#;

fn top(s: &GateSession) -> (String, String) {
    let book = &s.symbols().sync(0).unwrap().book;
    let fmt = |l: crate::book::Level| format!("{}:{}", l.price, l.qty);
    (
        book.best_bid().map(fmt).unwrap_or_default(),
        book.best_ask().map(fmt).unwrap_or_default(),
    )
}

#[test]
fn the_rule_bridges_like_binance_spot_and_chains_by_one() {
    let ids = |first, last| DeltaIds {
        first,
        last,
        prev: None,
    };
    assert_eq!(GateRule.bridges(100, &ids(90, 100)), Continuity::Stale);
    assert_eq!(GateRule.bridges(100, &ids(95, 101)), Continuity::Apply);
    assert_eq!(GateRule.bridges(100, &ids(101, 101)), Continuity::Apply);
    assert_eq!(
        GateRule.bridges(100, &ids(102, 103)),
        Continuity::Gap {
            expected: 101,
            received: 102
        }
    );
    assert_eq!(
        GateRule.follows(&ids(95, 101), &ids(102, 104)),
        Continuity::Apply
    );
    assert_eq!(
        GateRule.follows(&ids(95, 101), &ids(99, 101)),
        Continuity::Stale
    );
    assert_eq!(
        GateRule.follows(&ids(95, 101), &ids(103, 104)),
        Continuity::Gap {
            expected: 102,
            received: 103
        }
    );
}

#[test]
fn updates_wait_for_the_snapshot_then_bridge_and_chain() {
    let mut s = spot();
    let out = feed(&mut s, &spot_update(99, 101, r#"["100","4"]"#, ""));
    assert!(matches!(out[..], [Event::NeedSnapshot { symbol: 0 }]));
    let out = snapshot(&mut s, "btc_usdt", SPOT_BOOK);
    assert!(matches!(
        out[..],
        [Event::BookUpdated { seq: Some(101), .. }]
    ));
    assert_eq!(top(&s), ("100:4".into(), "101.5:2".into()));
    // Size 0 deletes.
    let out = feed(&mut s, &spot_update(102, 102, "", r#"["101.5","0"]"#));
    assert!(matches!(
        out[..],
        [Event::BookUpdated { seq: Some(102), .. }]
    ));
    assert_eq!(top(&s), ("100:4".into(), "102:1.25".into()));
    assert_eq!(s.symbols().name(0), "BTC_USDT");
}

#[test]
fn a_gap_drops_the_book_and_asks_for_a_snapshot() {
    let mut s = spot();
    snapshot(&mut s, "BTC_USDT", SPOT_BOOK);
    feed(&mut s, &spot_update(101, 101, r#"["100","4"]"#, ""));
    let out = feed(&mut s, &spot_update(103, 104, r#"["100","5"]"#, ""));
    assert!(out.contains(&Event::GapDetected {
        symbol: 0,
        expected: 102,
        received: 103
    }));
    assert!(out.contains(&Event::SyncLost {
        symbol: 0,
        reason: LossReason::Gap {
            expected: 102,
            received: 103
        }
    }));
    assert!(out.contains(&Event::NeedSnapshot { symbol: 0 }));
    assert_eq!(
        s.symbols().sync(0).unwrap().state(),
        SyncState::AwaitingSnapshot
    );
}

#[test]
fn futures_sizes_are_json_integers_read_exactly() {
    let mut s = futures();
    snapshot(&mut s, "BTC_USDT", FUTURES_BOOK);
    assert_eq!(top(&s), ("0.2973:12".into(), "0.2974:803".into()));
    let out = feed(
        &mut s,
        &futures_update(
            501,
            502,
            r#"{"p":"0.2972","s":40}"#,
            r#"{"p":"0.2974","s":0}"#,
        ),
    );
    assert!(matches!(
        out[..],
        [Event::BookUpdated { seq: Some(502), .. }]
    ));
    assert_eq!(top(&s), ("0.2973:12".into(), String::new()));
    let ticker = r#"{"time":1684930165,"time_ms":1684930165631,"channel":"futures.book_ticker","event":"update","result":{"t":1684930165621,"u":502,"s":"BTC_USDT","b":"0.2973","B":12,"a":"0.2975","A":677}}"#;
    let out = feed(&mut s, ticker);
    let [Event::Quote(q)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(q.seq, Some(502));
    assert_eq!(
        (q.bid_size.to_string(), q.ask_price.to_string()),
        ("12".into(), "0.2975".into())
    );
    assert_eq!(q.exchange_ts_ns, 1_684_930_165_621_000_000);
}

#[test]
fn trades_and_candles_of_both_markets() {
    let mut s = spot();
    let trade = r#"{"time":1619093543,"channel":"spot.trades","event":"update","result":{"id":816995772,"create_time":1619093543,"create_time_ms":"1619093543708.2642","side":"sell","currency_pair":"DIS_USDT","amount":"0.2010000000","price":"121.5800000000"}}"#;
    let [Event::Trade(t)] = &feed(&mut s, trade)[..] else {
        panic!()
    };
    assert_eq!(t.side, Some(TradeSide::Sell));
    assert_eq!(
        (t.price.to_string(), t.size.to_string(), t.trade_id.as_str()),
        ("121.5800000000".into(), "0.2010000000".into(), "816995772")
    );
    assert_eq!(t.exchange_ts_ns, 1_619_093_543_708_264_200);
    let candle = r#"{"time":1619093534,"channel":"spot.candlesticks","event":"update","result":{"t":"1619093520","v":"0","c":"120.92","h":"120.92","l":"120.92","o":"120.92","n":"1m_DIS_USDT"}}"#;
    let [Event::Candle(c)] = &feed(&mut s, candle)[..] else {
        panic!()
    };
    assert_eq!(c.interval, "1m");
    assert_eq!(c.close_ts_ns - c.open_ts_ns, 60_000_000_000);
    assert_eq!(s.symbols().name(c.symbol), "DIS_USDT");

    let mut f = futures();
    let trades = r#"{"time":1684930165,"time_ms":1684930165254,"channel":"futures.trades","event":"update","result":[{"size":-108,"id":27753479,"create_time":1684930165,"create_time_ms":1684930165254,"price":"0.2983","contract":"RDNT_USDT"},{"size":3,"id":27753480,"create_time":1684930165,"create_time_ms":1684930165255,"price":"0.2984","contract":"RDNT_USDT"}]}"#;
    let out = feed(&mut f, trades);
    let sides: Vec<_> = out
        .iter()
        .map(|e| match e {
            Event::Trade(t) => (t.side, t.size.to_string()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        sides,
        [
            (Some(TradeSide::Sell), "108".to_owned()),
            (Some(TradeSide::Buy), "3".to_owned())
        ]
    );
    let candles = r#"{"time":1684930165,"time_ms":1684930165934,"channel":"futures.candlesticks","event":"update","result":[{"t":1684930140,"v":0,"c":"0.1701","h":"0.1701","l":"0.1701","o":"0.1701","n":"1m_FRONT_USDT"}]}"#;
    assert!(matches!(feed(&mut f, candles)[..], [Event::Candle(_)]));
}

#[test]
fn errors_acks_and_other_channels() {
    let mut s = spot();
    let mut out = Vec::new();
    let refused = r#"{"time":1,"channel":"spot.order_book_update","event":"subscribe","error":{"code":2,"message":"unknown currency pair NOPE_USDT"},"result":null}"#;
    let err = s.receive(refused.as_bytes(), 1, &mut out).unwrap_err();
    assert_eq!(
        err.error,
        FrameError::VenueError("code 2: unknown currency pair NOPE_USDT".into())
    );
    let ack =
        r#"{"time":1,"channel":"spot.trades","event":"subscribe","result":{"status":"success"}}"#;
    assert!(feed(&mut s, ack).is_empty());
    let ticker = r#"{"time":1,"channel":"spot.tickers","event":"update","result":{"currency_pair":"NEO_BTC","last":"0.0018716","lowest_ask":"0.0018734","highest_bid":"0.0018697"}}"#;
    assert!(feed(&mut s, ticker).is_empty());
    assert_eq!(s.stats().ignored, 2);
    let rest_error = br#"{"label":"INVALID_CURRENCY","message":"Invalid currency NOPE_USDT"}"#;
    let err = s
        .receive_snapshot("NOPE_USDT", rest_error, 1, &mut out)
        .unwrap_err();
    assert_eq!(
        err.error,
        FrameError::VenueError("code INVALID_CURRENCY: Invalid currency NOPE_USDT".into())
    );
}

#[test]
fn a_bad_number_resyncs_only_its_symbol() {
    let mut s = spot();
    snapshot(&mut s, "BTC_USDT", SPOT_BOOK);
    let mut out = Vec::new();
    let bad = spot_update(101, 101, r#"["100","x"]"#, "");
    let err = s.receive(bad.as_bytes(), 1, &mut out).unwrap_err();
    assert!(matches!(
        err.error,
        FrameError::BadNumber { field: "size", .. }
    ));
    assert!(out.contains(&Event::NeedSnapshot { symbol: 0 }));
    // Garbage never panics.
    for frame in [
        "",
        "{",
        "[]",
        r#"{"channel":"spot.order_book_update","event":"update","result":{"s":"BTC_USDT","U":"x"}}"#,
    ] {
        let _ = s.receive(frame.as_bytes(), 1, &mut out);
    }
}

#[test]
fn unsubscribed_symbols_are_dropped() {
    let options = SessionOptions {
        symbols: Some(vec!["eth_usdt".into()]),
        ..SessionOptions::default()
    };
    let mut s = GateSession::new(Market::Spot, options);
    assert!(feed(&mut s, &spot_update(1, 2, r#"["1","1"]"#, "")).is_empty());
    assert_eq!(s.stats().unsubscribed, 1);
    assert!(s.symbols().is_empty());
}
