//! Frames written from BitMEX's realtime API documentation of `orderBookL2`, `quote`, `trade`,
//! its error answers and heartbeat.

use super::*;
use crate::event::LossReason;
use crate::sync::SyncState;

fn session() -> BitmexSession {
    BitmexSession::new(SessionOptions::default())
}

fn feed(s: &mut BitmexSession, frame: &str) -> Vec<Event> {
    let mut out = Vec::new();
    s.receive(frame.as_bytes(), 9, &mut out)
        .unwrap_or_else(|e| panic!("{frame}: {e}"));
    out
}

fn dec(text: &str) -> Decimal {
    Decimal::parse(text).unwrap()
}

const PARTIAL: &str = r#"{"table":"orderBookL2","action":"partial","keys":["symbol","id","side"],"filter":{"symbol":"XBTUSD"},"data":[{"symbol":"XBTUSD","id":8796323950,"side":"Sell","size":700,"price":32300.5},{"symbol":"XBTUSD","id":8796324000,"side":"Sell","size":1500,"price":32300},{"symbol":"XBTUSD","id":8796324050,"side":"Buy","size":2000,"price":32299.5},{"symbol":"XBTUSD","id":8796324100,"side":"Buy","size":10,"price":32299}]}"#;

fn sides(s: &BitmexSession) -> (Vec<String>, Vec<String>) {
    let sync = s.symbols().sync(0).unwrap();
    let fmt = |l: crate::book::Level| format!("{}:{}", l.price, l.qty);
    (
        sync.book.bids().map(fmt).collect(),
        sync.book.asks().map(fmt).collect(),
    )
}

#[test]
fn partial_then_insert_update_delete_by_id() {
    let mut s = session();
    let out = feed(&mut s, PARTIAL);
    assert!(matches!(
        out.as_slice(),
        [Event::BookUpdated { seq: None, .. }]
    ));
    feed(
        &mut s,
        r#"{"table":"orderBookL2","action":"insert","data":[{"symbol":"XBTUSD","id":8796323960,"side":"Sell","size":5,"price":32300.4}]}"#,
    );
    // Update rows carry no price: the id says which level.
    feed(
        &mut s,
        r#"{"table":"orderBookL2","action":"update","data":[{"symbol":"XBTUSD","id":8796324050,"side":"Buy","size":2500}]}"#,
    );
    let out = feed(
        &mut s,
        r#"{"table":"orderBookL2","action":"delete","data":[{"symbol":"XBTUSD","id":8796324000,"side":"Sell"}]}"#,
    );
    assert!(matches!(out.as_slice(), [Event::BookUpdated { .. }]));
    assert_eq!(
        sides(&s),
        (
            vec!["32299.5:2500".into(), "32299:10".into()],
            vec!["32300.4:5".into(), "32300.5:700".into()]
        )
    );
}

#[test]
fn an_unknown_id_resyncs_that_symbol_only() {
    let mut s = session();
    feed(&mut s, PARTIAL);
    feed(&mut s, &PARTIAL.replace("XBTUSD", "ETHUSD"));
    let mut out = Vec::new();
    let err = s
        .receive(
            br#"{"table":"orderBookL2","action":"update","data":[{"symbol":"XBTUSD","id":1,"side":"Buy","size":3}]}"#,
            1,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(err.symbol.as_deref(), Some("XBTUSD"));
    assert!(matches!(err.error, FrameError::Invalid(ref m) if m.contains("level id 1")));
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
        s.symbols().sync(0).unwrap().state(),
        SyncState::AwaitingSnapshot
    );
    assert_eq!(s.symbols().sync(1).unwrap().state(), SyncState::Live);
    // Until the new partial, rows for the symbol are dropped, not taken as desyncs again.
    let out = feed(
        &mut s,
        r#"{"table":"orderBookL2","action":"delete","data":[{"symbol":"XBTUSD","id":1,"side":"Buy"}]}"#,
    );
    assert!(out.is_empty());
    let out = feed(&mut s, PARTIAL);
    assert!(out.contains(&Event::Resynced {
        symbol: 0,
        seq: None
    }));
}

#[test]
fn quotes_but_not_the_partial_one() {
    let mut s = session();
    let out = feed(
        &mut s,
        r#"{"table":"quote","action":"partial","data":[{"timestamp":"2021-07-22T22:35:53.978Z","symbol":"XBTUSD","bidSize":15,"bidPrice":32299.5,"askPrice":32300,"askSize":1703}]}"#,
    );
    assert!(out.is_empty());
    let out = feed(
        &mut s,
        r#"{"table":"quote","action":"insert","data":[{"timestamp":"2021-07-22T22:36:10.014Z","symbol":"XBTUSD","bidSize":750,"bidPrice":0.00001814,"askPrice":null,"askSize":null}]}"#,
    );
    assert_eq!(
        out,
        vec![Event::Quote(Quote {
            symbol: 0,
            seq: None,
            bid_price: dec("0.00001814"),
            bid_size: dec("750"),
            ask_price: Decimal::ZERO,
            ask_size: Decimal::ZERO,
            exchange_ts_ns: 1_626_993_370_014_000_000,
            ts_ns: 9,
        })]
    );
}

#[test]
fn trades_of_the_partial_are_history() {
    let mut s = session();
    let row = r#"{"timestamp":"2021-07-22T22:24:15.328Z","symbol":"XBTUSD","side":"Sell","size":15,"price":32300.5,"tickDirection":"MinusTick","trdMatchID":"8f8fe9db-eb13-26a5-dea2-a398d89e04a8","grossValue":27285}"#;
    let out = feed(
        &mut s,
        &format!(r#"{{"table":"trade","action":"partial","data":[{row}]}}"#),
    );
    let out2 = feed(
        &mut s,
        &format!(r#"{{"table":"trade","action":"insert","data":[{row}]}}"#),
    );
    let [Event::Trade(history)] = out.as_slice() else {
        panic!("{out:?}")
    };
    let [Event::Trade(live)] = out2.as_slice() else {
        panic!("{out2:?}")
    };
    assert!(history.is_snapshot && !live.is_snapshot);
    assert_eq!(
        (live.price, live.size, live.side, live.trade_id.as_str()),
        (
            dec("32300.5"),
            dec("15"),
            Some(TradeSide::Sell),
            "8f8fe9db-eb13-26a5-dea2-a398d89e04a8"
        )
    );
}

#[test]
fn heartbeat_error_and_answers() {
    let mut s = session();
    assert!(feed(&mut s, "pong").is_empty());
    assert_eq!(
        feed(&mut s, "ping"),
        vec![Event::Reply {
            text: "pong".into()
        }]
    );
    feed(
        &mut s,
        r#"{"info":"Welcome to the BitMEX Realtime API.","version":"2021-07-14T01:26:29.000Z"}"#,
    );
    feed(
        &mut s,
        r#"{"success":true,"subscribe":"orderBookL2:XBTUSD","request":{"op":"subscribe","args":["orderBookL2:XBTUSD"]}}"#,
    );
    assert_eq!(s.stats().ignored, 3);
    let mut out = Vec::new();
    let err = s
        .receive(
            br#"{"status":400,"error":"Unknown table: orderBookL3","meta":{},"request":{"op":"subscribe","args":["orderBookL3:XBTUSD"]}}"#,
            1,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(
        err.error,
        FrameError::VenueError("code 400: Unknown table: orderBookL3".into())
    );
}

#[test]
fn bad_numbers_and_sides_are_typed_and_cost_the_book() {
    let mut s = session();
    feed(&mut s, PARTIAL);
    let mut out = Vec::new();
    let err = s
        .receive(
            br#"{"table":"orderBookL2","action":"insert","data":[{"symbol":"XBTUSD","id":5,"side":"Sell","size":"x","price":1}]}"#,
            1,
            &mut out,
        )
        .unwrap_err();
    assert!(
        matches!(err.error, FrameError::BadNumber { field: "size", .. }),
        "{err}"
    );
    assert!(out.contains(&Event::NeedResubscribe { symbol: 0 }));
    let mut s = session();
    feed(&mut s, PARTIAL);
    out.clear();
    let err = s
        .receive(
            br#"{"table":"orderBookL2","action":"insert","data":[{"symbol":"XBTUSD","id":5,"side":"Up","size":1,"price":1}]}"#,
            1,
            &mut out,
        )
        .unwrap_err();
    assert!(matches!(err.error, FrameError::Invalid(_)));
}

#[test]
fn unsubscribed_symbol_is_dropped() {
    let mut s = BitmexSession::new(SessionOptions {
        symbols: Some(vec!["ETHUSD".into()]),
        ..SessionOptions::default()
    });
    assert!(feed(&mut s, PARTIAL).is_empty());
    assert_eq!(s.stats().unsubscribed, 1);
}
