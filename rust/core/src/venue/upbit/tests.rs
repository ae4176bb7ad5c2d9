use super::*;
use crate::event::LossReason;
use crate::sync::SyncState;

fn book(code: &str, tas: &str, tbs: &str, units: &[(&str, &str, &str, &str)]) -> Vec<u8> {
    let obu: Vec<String> = units
        .iter()
        .map(|(ap, asz, bp, bs)| format!(r#"{{"ap":{ap},"as":{asz},"bp":{bp},"bs":{bs}}}"#))
        .collect();
    format!(
        r#"{{"ty":"orderbook","cd":"{code}","tms":1618678262640,"tas":{tas},"tbs":{tbs},"obu":[{}],"st":"REALTIME"}}"#,
        obu.join(",")
    )
    .into_bytes()
}

fn session() -> UpbitSession {
    UpbitSession::new(SessionOptions::default())
}

#[test]
fn a_book_whose_totals_agree_in_value_is_checked_and_kept() {
    let mut s = session();
    let mut out = Vec::new();
    // 0.5 + 1.00 = 1.5 (written 1.50): equal in value, not in digits.
    let frame = book(
        "BTC-XTZ",
        "1.50",
        "3",
        &[
            ("9.9E-7", "0.5", "9.8E-7", "2"),
            ("1.0E-6", "1.00", "9.7E-7", "1"),
        ],
    );
    s.receive(&frame, 1, &mut out).unwrap();
    let sync = s.symbols().sync(0).unwrap();
    assert_eq!(sync.counters.checksums_checked, 1);
    assert_eq!(sync.counters.checksum_mismatches, 0);
    assert_eq!(
        sync.book.best_ask().unwrap().price.to_string(),
        "0.00000099"
    );
    assert!(matches!(out[..], [Event::BookUpdated { seq: None, .. }]));
}

#[test]
fn a_total_that_disagrees_drops_the_book_and_asks_again() {
    let mut s = session();
    let mut out = Vec::new();
    let frame = book("KRW-LAMB", "2", "1", &[("127.0", "1", "126.0", "1")]);
    s.receive(&frame, 1, &mut out).unwrap();
    assert!(out
        .iter()
        .any(|e| matches!(e, Event::ChecksumMismatch { .. })));
    assert!(out.iter().any(|e| matches!(
        e,
        Event::SyncLost {
            reason: LossReason::Checksum { .. },
            ..
        }
    )));
    assert!(out.contains(&Event::NeedResubscribe { symbol: 0 }));
    assert!(!out.iter().any(|e| matches!(e, Event::BookUpdated { .. })));
    assert_eq!(
        s.symbols().sync(0).unwrap().state(),
        SyncState::AwaitingSnapshot
    );
}

#[test]
fn each_book_replaces_the_last() {
    let mut s = session();
    let mut out = Vec::new();
    s.receive(
        &book("KRW-BTC", "1", "1", &[("11", "1", "10", "1")]),
        1,
        &mut out,
    )
    .unwrap();
    s.receive(
        &book("KRW-BTC", "2", "3", &[("12", "2", "9", "3")]),
        2,
        &mut out,
    )
    .unwrap();
    let sync = s.symbols().sync(0).unwrap();
    assert_eq!(sync.book.len(Side::Ask), 1);
    assert_eq!(sync.book.best_bid().unwrap().price.to_string(), "9");
}

#[test]
fn trades_carry_the_takers_side_and_exact_numbers() {
    let mut s = session();
    let mut out = Vec::new();
    let frame = br#"{"ty":"trade","cd":"KRW-LAMB","tms":1618678262712,"ttms":1618678262000,"tp":127.0,"tv":46.48838371,"ab":"ASK","sid":1618678262000003,"st":"REALTIME"}"#;
    s.receive(frame, 5, &mut out).unwrap();
    let Event::Trade(t) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(t.price.to_string(), "127.0");
    assert_eq!(t.size.to_string(), "46.48838371");
    assert_eq!(t.side, Some(TradeSide::Sell));
    assert_eq!(t.trade_id, "1618678262000003");
    assert_eq!(t.exchange_ts_ns, 1_618_678_262_000_000_000);
}

#[test]
fn an_error_answer_is_a_venue_error() {
    let mut s = session();
    let err = s
        .receive(
            br#"{"error":{"name":"INVALID_AUTH","message":"bad ticket"}}"#,
            1,
            &mut Vec::new(),
        )
        .unwrap_err();
    assert_eq!(
        err.error,
        FrameError::VenueError("code INVALID_AUTH: bad ticket".into())
    );
}

#[test]
fn a_book_missing_its_totals_resyncs_that_symbol() {
    let mut s = session();
    let mut out = Vec::new();
    let frame =
        br#"{"ty":"orderbook","cd":"KRW-BTC","tms":1,"obu":[{"ap":2,"as":1,"bp":1,"bs":1}]}"#;
    let err = s.receive(frame, 1, &mut out).unwrap_err();
    assert_eq!(err.error, FrameError::MissingField("tas"));
    assert_eq!(err.symbol.as_deref(), Some("KRW-BTC"));
    assert!(out.contains(&Event::NeedResubscribe { symbol: 0 }));
}

#[test]
fn unsubscribed_codes_are_dropped_and_status_ignored() {
    let mut s = UpbitSession::new(SessionOptions {
        symbols: Some(vec!["KRW-BTC".into()]),
        ..SessionOptions::default()
    });
    let mut out = Vec::new();
    s.receive(
        &book("KRW-ETH", "1", "1", &[("11", "1", "10", "1")]),
        1,
        &mut out,
    )
    .unwrap();
    s.receive(br#"{"status":"UP"}"#, 1, &mut out).unwrap();
    assert!(out.is_empty());
    assert_eq!(s.stats().unsubscribed, 1);
    assert_eq!(s.stats().ignored, 1);
}
