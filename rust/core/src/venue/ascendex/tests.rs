use super::*;
use crate::event::LossReason;
use crate::sync::SyncState;

fn depth(seqnum: u64, bids: &str) -> String {
    format!(
        r#"{{"m":"depth","symbol":"BTC/USDT","data":{{"ts":1,"seqnum":{seqnum},"asks":[],"bids":[{bids}]}}}}"#
    )
}

fn snapshot(seqnum: u64) -> String {
    format!(
        r#"{{"m":"depth-snapshot","symbol":"BTC/USDT","data":{{"ts":2,"seqnum":{seqnum},"asks":[["101","1"]],"bids":[["100","1"],["99","2"]]}}}}"#
    )
}

fn session() -> AscendexSession {
    AscendexSession::new(SessionOptions::default())
}

#[test]
fn the_rule_chains_by_one() {
    let r = AscendexRule;
    let d = DeltaIds::single;
    assert_eq!(r.bridges(10, &d(10)), Continuity::Stale);
    assert_eq!(r.bridges(10, &d(11)), Continuity::Apply);
    assert_eq!(
        r.bridges(10, &d(12)),
        Continuity::Gap {
            expected: 11,
            received: 12
        }
    );
    assert_eq!(r.follows(&d(11), &d(12)), Continuity::Apply);
    assert_eq!(r.follows(&d(11), &d(9)), Continuity::Stale);
}

#[test]
fn updates_before_the_first_snapshot_wait_for_it_without_asking_again() {
    let mut s = session();
    let mut out = Vec::new();
    s.receive(depth(5, r#"["100","3"]"#).as_bytes(), 1, &mut out)
        .unwrap();
    s.receive(depth(6, r#"["100.5","1"]"#).as_bytes(), 2, &mut out)
        .unwrap();
    // The subscribe messages asked for the snapshot: no second request.
    assert!(out.is_empty(), "{out:?}");
    s.receive(snapshot(5).as_bytes(), 3, &mut out).unwrap();
    assert!(matches!(out[..], [Event::BookUpdated { seq: Some(6), .. }]));
    let book = &s.symbols().sync(0).unwrap().book;
    assert_eq!(book.best_bid().unwrap().price.to_string(), "100.5");
    out.clear();
    s.receive(depth(7, r#"["100.5","0"]"#).as_bytes(), 4, &mut out)
        .unwrap();
    let book = &s.symbols().sync(0).unwrap().book;
    assert_eq!(book.best_bid().unwrap().price.to_string(), "100");
}

#[test]
fn a_gap_asks_for_a_new_snapshot() {
    let mut s = session();
    let mut out = Vec::new();
    s.receive(snapshot(5).as_bytes(), 1, &mut out).unwrap();
    out.clear();
    s.receive(depth(7, r#"["100","3"]"#).as_bytes(), 2, &mut out)
        .unwrap();
    assert_eq!(
        out,
        vec![
            Event::GapDetected {
                symbol: 0,
                expected: 6,
                received: 7
            },
            Event::SyncLost {
                symbol: 0,
                reason: LossReason::Gap {
                    expected: 6,
                    received: 7
                }
            },
            Event::NeedResubscribe { symbol: 0 },
        ]
    );
    assert_eq!(
        s.symbols().sync(0).unwrap().state(),
        SyncState::AwaitingSnapshot
    );
    // The new snapshot bridges the update kept since the gap.
    out.clear();
    s.receive(snapshot(6).as_bytes(), 3, &mut out).unwrap();
    assert!(out.contains(&Event::Resynced {
        symbol: 0,
        seq: Some(7)
    }));
}

#[test]
fn pings_are_answered_with_a_pong() {
    let mut s = session();
    let mut out = Vec::new();
    s.receive(br#"{"m":"ping","hp":3}"#, 1, &mut out).unwrap();
    assert_eq!(
        out,
        vec![Event::Reply {
            text: r#"{"op":"pong"}"#.into()
        }]
    );
}

#[test]
fn trades_take_the_taker_side_and_the_seqnum_as_id() {
    let mut s = session();
    let mut out = Vec::new();
    let frame = br#"{"m":"trades","symbol":"CHZ/USDT","data":[{"p":"0.624801","q":"10","ts":1618677616732,"bm":true,"seqnum":27772246859},{"p":"0.6248","q":"416","ts":1618677616733,"bm":false,"seqnum":27772246861}]}"#;
    s.receive(frame, 1, &mut out).unwrap();
    let [Event::Trade(a), Event::Trade(b)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(
        (a.side, a.trade_id.as_str(), a.exchange_ts_ns),
        (
            Some(TradeSide::Sell),
            "27772246859",
            1618677616732 * 1_000_000
        )
    );
    assert_eq!(
        (b.side, b.size.to_string()),
        (Some(TradeSide::Buy), "416".into())
    );
}

#[test]
fn refusals_are_typed_and_acks_ignored() {
    let mut s = session();
    let mut out = Vec::new();
    for frame in [
        r#"{"m":"connected","type":"unauth"}"#,
        r#"{"m":"sub","ch":"depth:DIVI/USDT","code":0}"#,
        r#"{"m":"pong","hp":3}"#,
    ] {
        s.receive(frame.as_bytes(), 1, &mut out).unwrap();
    }
    assert_eq!(s.stats().ignored, 3);
    let err = s
        .receive(
            br#"{"m":"error","id":"1","code":100005,"reason":"INVALID_WS_REQUEST_DATA","info":"Invalid request action: trade-snapshot"}"#,
            2,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(
        err.error,
        FrameError::VenueError("code 100005: Invalid request action: trade-snapshot".into())
    );
    let err = s
        .receive(
            br#"{"m":"sub","ch":"depth:NOPE/USDT","code":100002,"reason":"DATA_NOT_AVAILABLE"}"#,
            3,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(err.symbol.as_deref(), Some("NOPE/USDT"));
    assert!(out.is_empty());
}

#[test]
fn a_bad_book_frame_resyncs_its_symbol_and_others_are_dropped() {
    let mut s = AscendexSession::new(SessionOptions {
        symbols: Some(vec!["BTC/USDT".into()]),
        ..SessionOptions::default()
    });
    let mut out = Vec::new();
    s.receive(snapshot(5).as_bytes(), 1, &mut out).unwrap();
    out.clear();
    let err = s
        .receive(depth(6, r#"["1e","3"]"#).as_bytes(), 2, &mut out)
        .unwrap_err();
    assert!(matches!(
        err.error,
        FrameError::BadNumber { field: "price", .. }
    ));
    assert!(out.contains(&Event::NeedResubscribe { symbol: 0 }));
    out.clear();
    s.receive(
        br#"{"m":"depth","symbol":"ETH/USDT","data":{"seqnum":1,"asks":[],"bids":[]}}"#,
        3,
        &mut out,
    )
    .unwrap();
    assert!(out.is_empty());
    assert_eq!(s.stats().unsubscribed, 1);
}
