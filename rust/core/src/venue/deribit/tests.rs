//! Frames written from Deribit's API v2 documentation of `book.{instrument}.raw`,
//! `ticker.{instrument}.raw`, `trades.{instrument}.raw`, JSON-RPC errors and the heartbeat.

use super::*;
use crate::decimal::Decimal;
use crate::event::LossReason;
use crate::sync::SyncState;

const INST: &str = "BTC-PERPETUAL";

fn session() -> DeribitSession {
    DeribitSession::new(SessionOptions::default())
}

fn feed(s: &mut DeribitSession, frame: &str) -> Vec<Event> {
    let mut out = Vec::new();
    s.receive(frame.as_bytes(), 7, &mut out)
        .unwrap_or_else(|e| panic!("{frame}: {e}"));
    out
}

fn book(kind: &str, prev: Option<u64>, change: u64, bids: &str, asks: &str) -> String {
    let prev = prev.map_or(String::new(), |p| format!(r#""prev_change_id":{p},"#));
    format!(
        r#"{{"jsonrpc":"2.0","method":"subscription","params":{{"channel":"book.{INST}.raw","data":{{"type":"{kind}","timestamp":1626993724318,{prev}"instrument_name":"{INST}","change_id":{change},"bids":[{bids}],"asks":[{asks}]}}}}}}"#
    )
}

fn snapshot(s: &mut DeribitSession) -> Vec<Event> {
    feed(
        s,
        &book(
            "snapshot",
            None,
            100,
            r#"["new",31990.5,1200.0],["new",31990.0,10]"#,
            r#"["new",31991.0,5e2],["new",31992.5,40.0]"#,
        ),
    )
}

fn dec(text: &str) -> Decimal {
    Decimal::parse(text).unwrap()
}

fn sides(s: &DeribitSession) -> (Vec<String>, Vec<String>) {
    let sync = s.symbols().sync(0).unwrap();
    let fmt = |l: crate::book::Level| format!("{}:{}", l.price, l.qty);
    (
        sync.book.bids().map(fmt).collect(),
        sync.book.asks().map(fmt).collect(),
    )
}

#[test]
fn rule_chains_by_prev_change_id() {
    let d = |prev, id| DeltaIds {
        first: id,
        last: id,
        prev: Some(prev),
    };
    assert_eq!(DeribitRule.bridges(100, &d(100, 105)), Continuity::Apply);
    assert_eq!(DeribitRule.bridges(100, &d(90, 95)), Continuity::Stale);
    assert_eq!(
        DeribitRule.bridges(100, &d(102, 107)),
        Continuity::Gap {
            expected: 100,
            received: 102
        }
    );
    assert_eq!(
        DeribitRule.follows(&d(1, 105), &d(105, 230)),
        Continuity::Apply
    );
}

#[test]
fn snapshot_then_changes_keep_the_numbers_as_written() {
    let mut s = session();
    let out = snapshot(&mut s);
    assert!(matches!(
        out.as_slice(),
        [Event::BookUpdated {
            seq: Some(100),
            exchange_ts_ns: 1_626_993_724_318_000_000,
            ts_ns: 7,
            ..
        }]
    ));
    // `5e2` is read from its text: 500, exactly.
    assert_eq!(
        sides(&s),
        (
            vec!["31990.5:1200.0".into(), "31990.0:10".into()],
            vec!["31991.0:500".into(), "31992.5:40.0".into()]
        )
    );
    let out = feed(
        &mut s,
        &book(
            "change",
            Some(100),
            104,
            r#"["change",31990.5,0.1],["delete",31990.0,0.0]"#,
            r#"["new",31990.75,3.0]"#,
        ),
    );
    assert!(matches!(
        out.as_slice(),
        [Event::BookUpdated { seq: Some(104), .. }]
    ));
    assert_eq!(
        sides(&s),
        (
            vec!["31990.5:0.1".into()],
            vec![
                "31990.75:3.0".into(),
                "31991.0:500".into(),
                "31992.5:40.0".into()
            ]
        )
    );
}

#[test]
fn a_broken_chain_resubscribes_that_instrument_only() {
    let mut s = session();
    snapshot(&mut s);
    let other = book(
        "snapshot",
        None,
        1,
        r#"["new",1.0,1.0]"#,
        r#"["new",2.0,1.0]"#,
    )
    .replace(INST, "ETH-PERPETUAL");
    feed(&mut s, &other);
    let out = feed(
        &mut s,
        &book("change", Some(101), 108, "", r#"["new",31995.0,1.0]"#),
    );
    assert_eq!(
        out,
        vec![
            Event::GapDetected {
                symbol: 0,
                expected: 100,
                received: 101
            },
            Event::SyncLost {
                symbol: 0,
                reason: LossReason::Gap {
                    expected: 100,
                    received: 101
                }
            },
            Event::NeedResubscribe { symbol: 0 },
        ]
    );
    assert_eq!(
        s.symbols().sync(0).unwrap().state(),
        SyncState::AwaitingSnapshot
    );
    assert_eq!(s.symbols().sync(1).unwrap().state(), SyncState::Live);
    // The fresh snapshot the resubscription brings makes it whole again.
    let out = feed(
        &mut s,
        &book("snapshot", None, 200, r#"["new",5.0,1.0]"#, ""),
    );
    assert!(out.contains(&Event::Resynced {
        symbol: 0,
        seq: Some(200)
    }));
    assert_eq!(s.symbols().sync(0).unwrap().counters.gaps, 1);
}

#[test]
fn a_change_without_prev_change_id_or_a_bad_action_costs_the_book() {
    let mut s = session();
    snapshot(&mut s);
    let mut out = Vec::new();
    let frame = book("change", None, 104, "", "");
    let err = s.receive(frame.as_bytes(), 1, &mut out).unwrap_err();
    assert_eq!(err.error, FrameError::MissingField("prev_change_id"));
    assert_eq!(err.symbol.as_deref(), Some(INST));
    assert!(out.contains(&Event::NeedResubscribe { symbol: 0 }));

    let mut s = session();
    snapshot(&mut s);
    out.clear();
    let frame = book("change", Some(100), 104, r#"["move",1.0,1.0]"#, "");
    let err = s.receive(frame.as_bytes(), 1, &mut out).unwrap_err();
    assert!(matches!(err.error, FrameError::Invalid(_)), "{err}");
    assert!(out.contains(&Event::NeedResubscribe { symbol: 0 }));
}

#[test]
fn a_number_that_is_not_one_is_typed() {
    let mut s = session();
    snapshot(&mut s);
    let mut out = Vec::new();
    let frame = book("change", Some(100), 104, r#"["new","abc",1.0]"#, "");
    let err = s.receive(frame.as_bytes(), 1, &mut out).unwrap_err();
    assert!(
        matches!(err.error, FrameError::BadNumber { field: "price", .. }),
        "{err}"
    );
}

#[test]
fn ticker_is_a_quote_with_empty_sides_as_zero() {
    let mut s = session();
    let frame = r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.BTC-PERPETUAL.raw","data":{"timestamp":1626993723632,"stats":{"volume":null},"instrument_name":"BTC-PERPETUAL","best_bid_price":0.0,"best_bid_amount":0.0,"best_ask_price":0.0025,"best_ask_amount":873.0,"greeks":{"delta":0.03127}}}}"#;
    let out = feed(&mut s, frame);
    assert_eq!(
        out,
        vec![Event::Quote(Quote {
            symbol: 0,
            seq: None,
            bid_price: dec("0.0"),
            bid_size: dec("0.0"),
            ask_price: dec("0.0025"),
            ask_size: dec("873.0"),
            exchange_ts_ns: 1_626_993_723_632_000_000,
            ts_ns: 7,
        })]
    );
}

#[test]
fn trades_keep_direction_and_id() {
    let mut s = session();
    let frame = r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.BTC-PERPETUAL.raw","data":[{"trade_seq":30289432,"trade_id":"48079254","timestamp":1590484156350,"tick_direction":0,"price":8950.0,"mark_price":8948.9,"iv":null,"instrument_name":"BTC-PERPETUAL","index_price":8955.88,"direction":"sell","amount":10.0}]}}"#;
    let out = feed(&mut s, frame);
    let [Event::Trade(t)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(
        (
            t.price,
            t.size,
            t.side,
            t.trade_id.as_str(),
            t.exchange_ts_ns
        ),
        (
            dec("8950.0"),
            dec("10.0"),
            Some(TradeSide::Sell),
            "48079254",
            1_590_484_156_350_000_000
        )
    );
}

#[test]
fn rpc_error_is_a_venue_error_and_answers_are_ignored() {
    let mut s = session();
    let mut out = Vec::new();
    let err = s
        .receive(
            br#"{"jsonrpc":"2.0","id":8,"error":{"message":"Invalid params","code":-32602}}"#,
            1,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(
        err.error,
        FrameError::VenueError("code -32602: Invalid params".into())
    );
    feed(
        &mut s,
        r#"{"jsonrpc":"2.0","id":0,"result":["book.BTC-PERPETUAL.raw"],"usIn":1,"usOut":2,"usDiff":1,"testnet":false}"#,
    );
    feed(
        &mut s,
        r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}"#,
    );
    assert_eq!(s.stats().ignored, 2);
}

#[test]
fn unsubscribed_instrument_is_dropped() {
    let mut s = DeribitSession::new(SessionOptions {
        symbols: Some(vec!["ETH-PERPETUAL".into()]),
        ..SessionOptions::default()
    });
    let out = snapshot(&mut s);
    assert!(out.is_empty());
    assert_eq!(s.stats().unsubscribed, 1);
    assert!(s.symbols().is_empty());
}

#[test]
fn garbage_is_a_typed_error() {
    let mut s = session();
    let mut out = Vec::new();
    let err = s.receive(b"{not json", 1, &mut out).unwrap_err();
    assert!(matches!(err.error, FrameError::Json(_)));
}

#[test]
fn test_request_is_answered_with_public_test() {
    let mut s = session();
    let out = feed(
        &mut s,
        r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}"#,
    );
    assert_eq!(
        out,
        vec![Event::Reply {
            text: r#"{"jsonrpc":"2.0","method":"public/test","params":{}}"#.into()
        }]
    );
}
