//! Frames written from the shapes the protocol notes give for Kraken Futures ws v1 (`book`,
//! `book_snapshot`, `trade`, `trade_snapshot`, events); no capture of the venue is shared.

use super::*;
use crate::decimal::Decimal;
use crate::event::LossReason;
use crate::sync::SyncState;

fn session() -> KrakenFuturesSession {
    KrakenFuturesSession::new(SessionOptions::default())
}

fn feed(s: &mut KrakenFuturesSession, frame: &str) -> Vec<Event> {
    let mut out = Vec::new();
    s.receive(frame.as_bytes(), 3, &mut out)
        .unwrap_or_else(|e| panic!("{frame}: {e}"));
    out
}

fn snapshot(product: &str, seq: u64) -> String {
    format!(
        r#"{{"feed":"book_snapshot","product_id":"{product}","timestamp":1612269825817,"seq":{seq},"tickSize":null,"bids":[{{"price":34892.5,"qty":6385}},{{"price":34892.0,"qty":10924}}],"asks":[{{"price":34911.5,"qty":20598}},{{"price":34912.0,"qty":2.5e3}}]}}"#
    )
}

fn level(product: &str, seq: u64, side: &str, price: &str, qty: &str) -> String {
    format!(
        r#"{{"feed":"book","product_id":"{product}","side":"{side}","seq":{seq},"price":{price},"qty":{qty},"timestamp":1612269953629}}"#
    )
}

fn sides(s: &KrakenFuturesSession, id: u32) -> (Vec<String>, Vec<String>) {
    let sync = s.symbols().sync(id).unwrap();
    let fmt = |l: crate::book::Level| format!("{}:{}", l.price, l.qty);
    (
        sync.book.bids().map(fmt).collect(),
        sync.book.asks().map(fmt).collect(),
    )
}

#[test]
fn rule_wants_seq_plus_one() {
    let d = DeltaIds::single;
    assert_eq!(KrakenFuturesRule.bridges(10, &d(11)), Continuity::Apply);
    assert_eq!(KrakenFuturesRule.bridges(10, &d(9)), Continuity::Stale);
    assert_eq!(
        KrakenFuturesRule.follows(&d(11), &d(13)),
        Continuity::Gap {
            expected: 12,
            received: 13
        }
    );
}

#[test]
fn snapshot_then_levels_with_exact_numbers() {
    let mut s = session();
    let out = feed(&mut s, &snapshot("PI_XBTUSD", 100));
    assert!(matches!(
        out.as_slice(),
        [Event::BookUpdated {
            seq: Some(100),
            exchange_ts_ns: 1_612_269_825_817_000_000,
            ..
        }]
    ));
    feed(&mut s, &level("PI_XBTUSD", 101, "sell", "34911.5", "0"));
    let out = feed(&mut s, &level("PI_XBTUSD", 102, "buy", "34893.0", "1.5e1"));
    assert!(matches!(
        out.as_slice(),
        [Event::BookUpdated { seq: Some(102), .. }]
    ));
    assert_eq!(
        sides(&s, 0),
        (
            vec![
                "34893.0:15".into(),
                "34892.5:6385".into(),
                "34892.0:10924".into()
            ],
            vec!["34912.0:2500".into()]
        )
    );
}

#[test]
fn a_gap_resubscribes_that_product_only() {
    let mut s = session();
    feed(&mut s, &snapshot("PI_XBTUSD", 100));
    feed(&mut s, &snapshot("PI_ETHUSD", 7));
    let out = feed(&mut s, &level("PI_XBTUSD", 102, "buy", "1", "1"));
    assert_eq!(
        out,
        vec![
            Event::GapDetected {
                symbol: 0,
                expected: 101,
                received: 102
            },
            Event::SyncLost {
                symbol: 0,
                reason: LossReason::Gap {
                    expected: 101,
                    received: 102
                }
            },
            Event::NeedResubscribe { symbol: 0 },
        ]
    );
    assert_eq!(s.symbols().sync(1).unwrap().state(), SyncState::Live);
    assert!(!feed(&mut s, &level("PI_ETHUSD", 8, "sell", "2000", "1")).is_empty());
    // The snapshot the resubscription brings makes the book whole again.
    let out = feed(&mut s, &snapshot("PI_XBTUSD", 300));
    assert!(out.contains(&Event::Resynced {
        symbol: 0,
        seq: Some(300)
    }));
    assert_eq!(s.symbols().sync(0).unwrap().state(), SyncState::Live);
}

#[test]
fn bad_side_and_number_are_typed_and_cost_the_book() {
    let mut s = session();
    feed(&mut s, &snapshot("PI_XBTUSD", 1));
    let mut out = Vec::new();
    let err = s
        .receive(
            level("PI_XBTUSD", 2, "up", "1", "1").as_bytes(),
            1,
            &mut out,
        )
        .unwrap_err();
    assert!(matches!(err.error, FrameError::Invalid(_)));
    assert_eq!(err.symbol.as_deref(), Some("PI_XBTUSD"));
    assert!(out.contains(&Event::NeedResubscribe { symbol: 0 }));
    let mut s = session();
    feed(&mut s, &snapshot("PI_XBTUSD", 1));
    let err = s
        .receive(
            level("PI_XBTUSD", 2, "buy", r#""x""#, "1").as_bytes(),
            1,
            &mut out,
        )
        .unwrap_err();
    assert!(
        matches!(err.error, FrameError::BadNumber { field: "price", .. }),
        "{err}"
    );
}

#[test]
fn trades_and_their_snapshot() {
    let mut s = session();
    let out = feed(
        &mut s,
        r#"{"feed":"trade_snapshot","product_id":"PI_XBTUSD","trades":[{"feed":"trade","product_id":"PI_XBTUSD","uid":"caa9c653-420b-4c24-a9f1-462a054d86f1","side":"sell","type":"fill","seq":655508,"time":1612269657781,"qty":440,"price":34893}]}"#,
    );
    let out2 = feed(
        &mut s,
        r#"{"feed":"trade","product_id":"PI_XBTUSD","uid":"05af78ac-a774-478c-a50c-8b9c234e071e","side":"buy","type":"fill","seq":653355,"time":1612266317519,"qty":15000,"price":34969.5}"#,
    );
    let ([Event::Trade(old)], [Event::Trade(new)]) = (out.as_slice(), out2.as_slice()) else {
        panic!("{out:?} {out2:?}")
    };
    assert!(old.is_snapshot && !new.is_snapshot);
    assert_eq!(
        (new.price, new.size, new.side, new.exchange_ts_ns),
        (
            Decimal::parse("34969.5").unwrap(),
            Decimal::parse("15000").unwrap(),
            Some(TradeSide::Buy),
            1_612_266_317_519_000_000
        )
    );
    assert_eq!(new.trade_id, "05af78ac-a774-478c-a50c-8b9c234e071e");
}

#[test]
fn events_errors_and_unsubscribed_products() {
    let mut s = KrakenFuturesSession::new(SessionOptions {
        symbols: Some(vec!["PI_ETHUSD".into()]),
        ..SessionOptions::default()
    });
    feed(&mut s, r#"{"event":"info","version":1}"#);
    feed(
        &mut s,
        r#"{"event":"subscribed","feed":"book","product_ids":["PI_XBTUSD"]}"#,
    );
    assert_eq!(s.stats().ignored, 2);
    assert!(feed(&mut s, &snapshot("PI_XBTUSD", 1)).is_empty());
    assert_eq!(s.stats().unsubscribed, 1);
    let mut out = Vec::new();
    let err = s
        .receive(
            br#"{"event":"error","message":"Invalid product id"}"#,
            1,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(
        err.error,
        FrameError::VenueError("Invalid product id".into())
    );
}
