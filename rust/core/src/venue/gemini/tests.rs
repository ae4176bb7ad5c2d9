use super::*;
use crate::book::Side;
use crate::event::{LossReason, TradeSide};
use crate::sync::SyncState;
use crate::venue::new_session;

fn feed(s: &mut dyn Session, frame: &str) -> Vec<Event> {
    let mut out = Vec::new();
    s.receive(frame.as_bytes(), 7, &mut out)
        .unwrap_or_else(|e| panic!("{frame}: {e}"));
    out
}

fn top(s: &dyn Session, symbol: SymbolId) -> (String, String) {
    let book = &s.symbols().sync(symbol).unwrap().book;
    let b = book.best_bid().unwrap();
    let a = book.best_ask().unwrap();
    (
        format!("{}@{}", b.qty, b.price),
        format!("{}@{}", a.qty, a.price),
    )
}

// Messages below are written from Gemini's v1 market data documentation.
const V1_INITIAL: &str = r#"{"type":"update","eventId":5375461993,"socket_sequence":0,
    "events":[
      {"type":"change","reason":"initial","price":"3641.61","delta":"0.83372051","remaining":"0.83372051","side":"bid"},
      {"type":"change","reason":"initial","price":"3641.60","delta":"4.1","remaining":"4.1","side":"bid"},
      {"type":"change","reason":"initial","price":"3641.70","delta":"1.5","remaining":"1.5","side":"ask"},
      {"type":"change","reason":"initial","price":"3642.00","delta":"2","remaining":"2","side":"ask"}
    ]}"#;

#[test]
fn v1_initial_changes_and_trade() {
    let mut s = new_session("gemini-v1:BTCUSD", SessionOptions::default()).unwrap();
    assert_eq!(s.venue(), "gemini-v1");
    let out = feed(s.as_mut(), V1_INITIAL);
    assert_eq!(
        out,
        vec![Event::BookUpdated {
            symbol: 0,
            seq: Some(0),
            exchange_ts_ns: 0,
            ts_ns: 7
        }]
    );
    assert_eq!(s.symbols().name(0), "BTCUSD");
    assert_eq!(
        top(s.as_ref(), 0),
        ("0.83372051@3641.61".into(), "1.5@3641.70".into())
    );

    // A taker buy lifts part of the best ask: trade then change with reason "trade".
    let out = feed(
        s.as_mut(),
        r#"{"type":"update","eventId":5375503736,"timestamp":1547760288,"timestampms":1547760288001,
            "socket_sequence":1,"events":[
              {"type":"trade","tid":5375503736,"price":"3641.70","amount":"0.5","makerSide":"ask"},
              {"type":"change","side":"ask","price":"3641.70","remaining":"1.0","delta":"-0.5","reason":"trade"}
            ]}"#,
    );
    assert_eq!(out.len(), 2);
    assert!(matches!(
        out[0],
        Event::BookUpdated {
            seq: Some(1),
            exchange_ts_ns: 1_547_760_288_001_000_000,
            ..
        }
    ));
    let Event::Trade(t) = &out[1] else {
        panic!("{out:?}")
    };
    assert_eq!(t.side, Some(TradeSide::Buy));
    assert_eq!(t.price.to_string(), "3641.70");
    assert_eq!(t.size.to_string(), "0.5");
    assert_eq!(t.trade_id, "5375503736");
    assert_eq!(t.exchange_ts_ns, 1_547_760_288_001_000_000);
    assert_eq!(t.ts_ns, 7);
    assert!(!t.is_snapshot);
    assert_eq!(
        top(s.as_ref(), 0),
        ("0.83372051@3641.61".into(), "1.0@3641.70".into())
    );

    // A cancel removes the best bid; a maker bid hit means a taker sell.
    feed(
        s.as_mut(),
        r#"{"type":"update","eventId":5375503740,"socket_sequence":2,"events":[
            {"type":"change","side":"bid","price":"3641.61","remaining":"0","delta":"-0.83372051","reason":"cancel"}]}"#,
    );
    assert_eq!(
        top(s.as_ref(), 0),
        ("4.1@3641.60".into(), "1.0@3641.70".into())
    );
    let out = feed(
        s.as_mut(),
        r#"{"type":"update","eventId":5375503750,"timestampms":1547760289000,"socket_sequence":3,"events":[
            {"type":"trade","tid":5375503750,"price":"3641.60","amount":"0.1","makerSide":"bid"}]}"#,
    );
    assert!(matches!(&out[..], [Event::Trade(t)] if t.side == Some(TradeSide::Sell)));
    // Heartbeats carry the sequence too and are counted as ignored.
    let out = feed(s.as_mut(), r#"{"type":"heartbeat","socket_sequence":4}"#);
    assert!(out.is_empty());
    assert_eq!(s.stats().ignored, 1);
    assert_eq!(s.symbols().sync(0).unwrap().counters.gaps, 0);
}

#[test]
fn v1_sequence_gap_resyncs() {
    let mut s = new_session("gemini-v1:ETHUSD", SessionOptions::default()).unwrap();
    feed(s.as_mut(), V1_INITIAL);
    feed(s.as_mut(), r#"{"type":"heartbeat","socket_sequence":1}"#);
    // Frame 2 was lost.
    let out = feed(
        s.as_mut(),
        r#"{"type":"update","eventId":9,"socket_sequence":3,"events":[
            {"type":"change","side":"bid","price":"3641.50","remaining":"1","delta":"1","reason":"place"}]}"#,
    );
    assert_eq!(
        out,
        vec![
            Event::GapDetected {
                symbol: 0,
                expected: 2,
                received: 3
            },
            Event::SyncLost {
                symbol: 0,
                reason: LossReason::Gap {
                    expected: 2,
                    received: 3,
                },
            },
            Event::NeedResubscribe { symbol: 0 }
        ]
    );
    let sync = s.symbols().sync(0).unwrap();
    assert_eq!(sync.state(), SyncState::AwaitingSnapshot);
    assert!(sync.book.is_empty());
    assert_eq!(sync.counters.gaps, 1);
    // Deltas are dropped until the reconnect delivers a new initial book at sequence 0.
    let out = feed(
        s.as_mut(),
        r#"{"type":"update","eventId":10,"socket_sequence":4,"events":[
            {"type":"change","side":"ask","price":"3650","remaining":"1","delta":"1","reason":"place"}]}"#,
    );
    assert!(out.is_empty());
    let out = feed(s.as_mut(), V1_INITIAL);
    assert!(out.contains(&Event::Resynced {
        symbol: 0,
        seq: Some(0)
    }));
    assert!(matches!(out.last(), Some(Event::BookUpdated { .. })));
    assert_eq!(
        top(s.as_ref(), 0),
        ("0.83372051@3641.61".into(), "1.5@3641.70".into())
    );
    let sync = s.symbols().sync(0).unwrap();
    assert_eq!(sync.state(), SyncState::Live);
    assert_eq!(sync.counters.resyncs, 1);
}

#[test]
fn v1_venue_name_needs_a_symbol() {
    assert!(new_session("gemini-v1:", SessionOptions::default()).is_err());
    assert!(new_session("gemini-v1:BTCUSD", SessionOptions::default()).is_ok());
}

#[test]
fn v1_bad_side_is_typed_error_and_resyncs() {
    let mut s = new_session("gemini-v1:BTCUSD", SessionOptions::default()).unwrap();
    feed(s.as_mut(), V1_INITIAL);
    let mut out = Vec::new();
    let err = s
        .receive(
            br#"{"type":"update","socket_sequence":1,"events":[{"type":"change","side":"middle","price":"1","remaining":"1","reason":"place"}]}"#,
            1,
            &mut out,
        )
        .unwrap_err();
    assert!(matches!(err.error, FrameError::Invalid(_)), "{err:?}");
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
    // The broken frame used sequence 1; 2 follows without a gap.
    let out = feed(s.as_mut(), r#"{"type":"heartbeat","socket_sequence":2}"#);
    assert!(out.is_empty());
}

// Messages below are written from Gemini's v2 market data documentation.
const V2_BOOK: &str = r#"{"type":"l2_updates","symbol":"BTCUSD",
    "changes":[["buy","9122.04","0.00121425"],["buy","9122.00","2"],["sell","9122.07","0.98942292"],["sell","9123.00","1"]],
    "trades":[
      {"type":"trade","symbol":"BTCUSD","event_id":169841458,"timestamp":1560976400428,"price":"9122.04","quantity":"0.0073173","side":"sell"},
      {"type":"trade","symbol":"BTCUSD","event_id":169841450,"timestamp":1560976400100,"price":"9122.07","quantity":"0.5","side":"buy"}
    ],
    "auction_events":[]}"#;

#[test]
fn v2_first_frame_is_the_book_later_frames_are_deltas() {
    let mut s = new_session("gemini", SessionOptions::default()).unwrap();
    let out = feed(s.as_mut(), V2_BOOK);
    // The book, then the recent trades oldest first.
    assert!(matches!(out[0], Event::BookUpdated { symbol: 0, .. }));
    // The recent trades are history sent on subscribe: marked.
    let ids: Vec<_> = out[1..]
        .iter()
        .map(|e| match e {
            Event::Trade(t) => (t.trade_id.clone(), t.is_snapshot),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        ids,
        [("169841450".into(), true), ("169841458".into(), true)]
    );
    assert_eq!(
        top(s.as_ref(), 0),
        ("0.00121425@9122.04".into(), "0.98942292@9122.07".into())
    );

    // A later frame as large as a book (both sides, many levels) is still a delta: the
    // levels it does not name stay.
    let big: Vec<String> = (0..40)
        .map(|i| format!(r#"["buy","{}.00","1"]"#, 9000 + i))
        .chain((0..40).map(|i| format!(r#"["sell","{}.00","1"]"#, 9200 + i)))
        .collect();
    let frame = format!(
        r#"{{"type":"l2_updates","symbol":"BTCUSD","changes":[{}]}}"#,
        big.join(",")
    );
    let out = feed(s.as_mut(), &frame);
    assert_eq!(
        out,
        vec![Event::BookUpdated {
            symbol: 0,
            seq: None,
            exchange_ts_ns: 0,
            ts_ns: 7
        }]
    );
    let sync = s.symbols().sync(0).unwrap();
    assert_eq!(sync.counters.snapshots, 1);
    assert_eq!(sync.book.len(Side::Bid), 42);
    assert_eq!(sync.book.len(Side::Ask), 42);
    assert_eq!(
        top(s.as_ref(), 0),
        ("0.00121425@9122.04".into(), "0.98942292@9122.07".into())
    );
    // "0" removes.
    feed(
        s.as_mut(),
        r#"{"type":"l2_updates","symbol":"BTCUSD","changes":[["sell","9122.07","0"]]}"#,
    );
    assert_eq!(
        top(s.as_ref(), 0),
        ("0.00121425@9122.04".into(), "1@9123.00".into())
    );
}

#[test]
fn v2_trade_and_heartbeat() {
    let mut s = new_session("gemini", SessionOptions::default()).unwrap();
    let out = feed(
        s.as_mut(),
        r#"{"type":"heartbeat","timestamp":1560976400500}"#,
    );
    assert!(out.is_empty());
    assert_eq!(s.stats().ignored, 1);
    let out = feed(
        s.as_mut(),
        r#"{"type":"trade","symbol":"ETHUSD","event_id":3575573053,"timestamp":151231241,"price":"9004.21000000","quantity":"0.09110000","side":"buy"}"#,
    );
    let [Event::Trade(t)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(t.side, Some(TradeSide::Buy));
    assert_eq!(t.price.to_string(), "9004.21000000");
    assert_eq!(t.size.to_string(), "0.09110000");
    assert_eq!(t.exchange_ts_ns, 151_231_241_000_000);
    assert_eq!(s.symbols().name(t.symbol), "ETHUSD");
    assert!(!t.is_snapshot);
    assert_eq!(s.stats().errors, 0);
}

#[test]
fn v2_resubscribe_takes_new_book_and_skips_repeated_trades() {
    let mut s = new_session("gemini", SessionOptions::default()).unwrap();
    feed(s.as_mut(), V2_BOOK);
    // A broken delta costs the symbol its book.
    let mut out = Vec::new();
    let err = s
        .receive(
            br#"{"type":"l2_updates","symbol":"BTCUSD","changes":[["buy","9122.0x","1"]]}"#,
            1,
            &mut out,
        )
        .unwrap_err();
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
    // Deltas before the new book are dropped.
    let out = feed(
        s.as_mut(),
        r#"{"type":"l2_updates","symbol":"BTCUSD","changes":[["buy","9000","1"]]}"#,
    );
    assert!(out.is_empty());
    // The resubscription's first frame (with `trades`) is the new book; trades already
    // emitted are not repeated.
    let out = feed(s.as_mut(), V2_BOOK);
    assert!(matches!(out[0], Event::Resynced { symbol: 0, .. }));
    assert!(matches!(out[1], Event::BookUpdated { symbol: 0, .. }));
    assert_eq!(out.len(), 2, "{out:?}");
    let sync = s.symbols().sync(0).unwrap();
    assert_eq!(sync.state(), SyncState::Live);
    assert_eq!(sync.book.len(Side::Bid), 2);
}

#[test]
fn v2_bad_side_is_typed() {
    let mut s = new_session("gemini", SessionOptions::default()).unwrap();
    feed(s.as_mut(), V2_BOOK);
    let mut out = Vec::new();
    let err = s
        .receive(
            br#"{"type":"l2_updates","symbol":"BTCUSD","changes":[["hold","1","1"]]}"#,
            1,
            &mut out,
        )
        .unwrap_err();
    assert!(matches!(err.error, FrameError::Invalid(_)));
    assert_eq!(err.symbol.as_deref(), Some("BTCUSD"));
    assert_eq!(s.stats().errors, 1);
}

#[test]
fn v2_error_answer_is_a_typed_venue_error_and_changes_no_book() {
    let mut s = new_session("gemini", SessionOptions::default()).unwrap();
    feed(s.as_mut(), V2_BOOK);
    let before = top(s.as_ref(), 0);
    let mut out = Vec::new();
    let err = s
        .receive(
            br#"{"result":"error","reason":"InvalidJson","message":"Failed to parse the request"}"#,
            1,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(err.symbol, None);
    assert_eq!(
        err.error,
        FrameError::VenueError("InvalidJson: Failed to parse the request".into())
    );
    assert!(out.is_empty());
    assert_eq!(top(s.as_ref(), 0), before);
    assert_eq!(s.symbols().sync(0).unwrap().state(), SyncState::Live);
    assert_eq!(s.symbols().len(), 1);
    assert_eq!((s.stats().errors, s.stats().ignored), (1, 0));
}

#[test]
fn v1_error_answer_concerns_the_connections_symbol_and_changes_no_book() {
    let mut s = new_session("gemini-v1:BTCUSD", SessionOptions::default()).unwrap();
    feed(s.as_mut(), V1_INITIAL);
    let before = top(s.as_ref(), 0);
    let mut out = Vec::new();
    let err = s
        .receive(
            br#"{"result":"error","reason":"RateLimit","message":"Too many requests"}"#,
            1,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(err.symbol.as_deref(), Some("BTCUSD"));
    assert_eq!(
        err.error,
        FrameError::VenueError("RateLimit: Too many requests".into())
    );
    assert!(out.is_empty());
    assert_eq!(top(s.as_ref(), 0), before);
    assert_eq!(s.symbols().sync(0).unwrap().state(), SyncState::Live);
    assert_eq!(s.symbols().sync(0).unwrap().counters.errors, 0);
    // The connection's numbering is untouched: the next frame (1) is no gap.
    let out = feed(s.as_mut(), r#"{"type":"heartbeat","socket_sequence":1}"#);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(s.symbols().sync(0).unwrap().counters.gaps, 0);
}

/// Trades in a v1 `initial` update came before the connection: history, marked; a trade in a
/// later update is live.
#[test]
fn v1_trades_of_the_initial_update_are_history() {
    let mut s = new_session("gemini-v1:BTCUSD", SessionOptions::default()).unwrap();
    let initial = V1_INITIAL.replace(
        r#""events":["#,
        r#""timestampms":1547760288001,"events":[
          {"type":"trade","tid":5375461990,"price":"3641.70","amount":"0.1","makerSide":"ask"},"#,
    );
    let out = feed(s.as_mut(), &initial);
    assert!(
        matches!(&out[..], [Event::BookUpdated { .. }, Event::Trade(t)]
            if t.is_snapshot && t.trade_id == "5375461990"
                && t.exchange_ts_ns == 1_547_760_288_001_000_000),
        "{out:?}"
    );
    let out = feed(
        s.as_mut(),
        r#"{"type":"update","eventId":5375461999,"socket_sequence":1,"events":[
            {"type":"trade","tid":5375461999,"price":"3641.70","amount":"0.2","makerSide":"ask"}]}"#,
    );
    assert!(
        matches!(&out[..], [Event::Trade(t)] if !t.is_snapshot && t.trade_id == "5375461999"),
        "{out:?}"
    );
}

/// Subscriptions may spell a symbol in any ASCII case; frames in Gemini's spelling are taken.
#[test]
fn v2_symbols_match_in_any_case() {
    for given in ["BTCUSD", "btcusd", "BtcUsd"] {
        let options = SessionOptions {
            symbols: Some(vec![given.into()]),
            ..SessionOptions::default()
        };
        let mut s = new_session("gemini", options).unwrap();
        let out = feed(s.as_mut(), V2_BOOK);
        assert!(
            matches!(out[0], Event::BookUpdated { symbol: 0, .. }),
            "{given}"
        );
        let out = feed(s.as_mut(), &V2_BOOK.replace("BTCUSD", "ETHUSD"));
        assert!(out.is_empty(), "{given}: {out:?}");
        assert_eq!(s.symbols().names(), ["BTCUSD"], "{given}");
        assert_eq!(s.stats().unsubscribed, 1);
    }
}

/// Gemini streams whole books: a depth asked for does not cut them, so a level that comes back
/// into the top after those above it go is still there.
#[test]
fn depth_does_not_cut_the_streamed_book() {
    let options = || SessionOptions {
        depth: Some(1),
        ..SessionOptions::default()
    };
    let mut v2 = new_session("gemini", options()).unwrap();
    feed(v2.as_mut(), V2_BOOK);
    let book = &v2.symbols().sync(0).unwrap().book;
    assert_eq!((book.len(Side::Bid), book.len(Side::Ask)), (2, 2));
    feed(
        v2.as_mut(),
        r#"{"type":"l2_updates","symbol":"BTCUSD","changes":[["buy","9122.04","0"]]}"#,
    );
    assert_eq!(top(v2.as_ref(), 0).0, "2@9122.00");

    let mut v1 = new_session("gemini-v1:BTCUSD", options()).unwrap();
    feed(v1.as_mut(), V1_INITIAL);
    let book = &v1.symbols().sync(0).unwrap().book;
    assert_eq!((book.len(Side::Bid), book.len(Side::Ask)), (2, 2));
    feed(
        v1.as_mut(),
        r#"{"type":"update","eventId":2,"socket_sequence":1,"events":[
            {"type":"change","side":"bid","price":"3641.61","remaining":"0","delta":"-0.83372051","reason":"cancel"}]}"#,
    );
    assert_eq!(top(v1.as_ref(), 0).0, "4.1@3641.60");
}
