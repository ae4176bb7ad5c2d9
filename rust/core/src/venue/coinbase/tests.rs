use super::*;
use crate::event::LossReason;

const T0: u64 = 1_800_000_000_000_000_000;

fn feed(s: &mut CoinbaseSession, frame: &str) -> Vec<Event> {
    let mut out = Vec::new();
    s.receive(frame.as_bytes(), T0, &mut out)
        .unwrap_or_else(|e| panic!("{frame}: {e}"));
    out
}

/// An `l2_data` frame as the Advanced Trade docs describe it.
fn l2(seq: u64, kind: &str, product: &str, updates: &[(&str, &str, &str)]) -> String {
    let updates: Vec<String> = updates
        .iter()
        .map(|(side, price, qty)| {
            format!(
                r#"{{"side":"{side}","event_time":"2026-01-02T03:04:05.123456Z","price_level":"{price}","new_quantity":"{qty}"}}"#
            )
        })
        .collect();
    format!(
        r#"{{"channel":"l2_data","client_id":"","timestamp":"2026-01-02T03:04:05.2Z","sequence_num":{seq},"events":[{{"type":"{kind}","product_id":"{product}","updates":[{}]}}]}}"#,
        updates.join(",")
    )
}

fn heartbeat(seq: u64) -> String {
    format!(
        r#"{{"channel":"heartbeats","client_id":"","timestamp":"2026-01-02T03:04:06Z","sequence_num":{seq},"events":[{{"current_time":"2026-01-02 03:04:06.1 +0000 UTC m=+1.0","heartbeat_counter":7}}]}}"#
    )
}

fn book(s: &CoinbaseSession, id: SymbolId) -> (Vec<String>, Vec<String>) {
    let b = &s.symbols().sync(id).unwrap().book;
    (
        b.bids().map(|l| format!("{}@{}", l.qty, l.price)).collect(),
        b.asks().map(|l| format!("{}@{}", l.qty, l.price)).collect(),
    )
}

#[test]
fn snapshot_then_updates_keep_exact_digits_and_sequence() {
    let mut s = CoinbaseSession::new(SessionOptions::default());
    let out = feed(
        &mut s,
        &l2(
            4,
            "snapshot",
            "BTC-USD",
            &[("bid", "100.10", "1.5"), ("offer", "100.20", "0.25000000")],
        ),
    );
    assert_eq!(
        out,
        vec![Event::BookUpdated {
            symbol: 0,
            seq: Some(4),
            exchange_ts_ns: 1_767_323_045_123_456_000,
            ts_ns: T0
        }]
    );
    feed(&mut s, &heartbeat(5));
    let out = feed(
        &mut s,
        &l2(
            6,
            "update",
            "BTC-USD",
            &[
                ("bid", "100.10", "0"),
                ("bid", "100.05", "2"),
                ("offer", "101", "0"),
            ],
        ),
    );
    assert!(matches!(
        out.as_slice(),
        [Event::BookUpdated { seq: Some(6), .. }]
    ));
    assert_eq!(
        book(&s, 0),
        (vec!["2@100.05".into()], vec!["0.25000000@100.20".into()])
    );
    assert_eq!(s.stats().ignored, 1);
    assert_eq!(s.connection_gaps(), 0);
}

#[test]
fn update_before_snapshot_is_dropped_and_counted() {
    let mut s = CoinbaseSession::new(SessionOptions::default());
    let out = feed(&mut s, &l2(0, "update", "ETH-USD", &[("bid", "10", "1")]));
    assert!(out.is_empty(), "{out:?}");
    let sync = s.symbols().sync(0).unwrap();
    assert_eq!(sync.counters.stale_dropped, 1);
    assert_eq!(sync.counters.updates, 0);
    assert!(sync.book.is_empty());
    feed(
        &mut s,
        &l2(
            1,
            "snapshot",
            "ETH-USD",
            &[("bid", "9", "1"), ("offer", "11", "1")],
        ),
    );
    // The dropped update was not replayed over the snapshot.
    assert_eq!(book(&s, 0), (vec!["1@9".into()], vec!["1@11".into()]));
}

#[test]
fn sequence_gap_resyncs_every_book_of_the_connection() {
    let mut s = CoinbaseSession::new(SessionOptions::default());
    feed(
        &mut s,
        &l2(10, "snapshot", "BTC-USD", &[("bid", "100", "1")]),
    );
    feed(
        &mut s,
        &l2(11, "snapshot", "ETH-USD", &[("bid", "10", "1")]),
    );
    // A product seen only through trades has no book to lose.
    feed(
        &mut s,
        r#"{"channel":"market_trades","timestamp":"2026-01-02T03:04:05Z","sequence_num":12,"events":[{"type":"update","trades":[{"trade_id":"7","product_id":"SOL-USD","price":"1","size":"1","side":"BUY","time":"2026-01-02T03:04:05Z"}]}]}"#,
    );
    // 13 and 14 are lost; the heartbeat numbered 15 reveals it.
    let out = feed(&mut s, &heartbeat(15));
    assert_eq!(
        out,
        vec![
            Event::GapDetected {
                symbol: 0,
                expected: 13,
                received: 15
            },
            Event::SyncLost {
                symbol: 0,
                reason: LossReason::Gap {
                    expected: 13,
                    received: 15,
                },
            },
            Event::NeedResubscribe { symbol: 0 },
            Event::GapDetected {
                symbol: 1,
                expected: 13,
                received: 15
            },
            Event::SyncLost {
                symbol: 1,
                reason: LossReason::Gap {
                    expected: 13,
                    received: 15,
                },
            },
            Event::NeedResubscribe { symbol: 1 },
        ]
    );
    assert_eq!(s.connection_gaps(), 1);
    for id in [0, 1] {
        let sync = s.symbols().sync(id).unwrap();
        assert_eq!(sync.state(), SyncState::AwaitingSnapshot);
        assert!(sync.book.is_empty());
        assert_eq!(sync.counters.gaps, 1);
    }
    // Updates until the new snapshots are dropped, no second gap, no second request.
    let out = feed(&mut s, &l2(16, "update", "BTC-USD", &[("bid", "99", "1")]));
    assert!(out.is_empty(), "{out:?}");
    let out = feed(
        &mut s,
        &l2(17, "snapshot", "BTC-USD", &[("bid", "98", "2")]),
    );
    assert_eq!(
        out,
        vec![
            Event::Resynced {
                symbol: 0,
                seq: Some(17)
            },
            Event::BookUpdated {
                symbol: 0,
                seq: Some(17),
                exchange_ts_ns: 1_767_323_045_123_456_000,
                ts_ns: T0
            },
        ]
    );
    let out = feed(
        &mut s,
        &l2(18, "snapshot", "ETH-USD", &[("offer", "12", "3")]),
    );
    assert!(matches!(
        out.as_slice(),
        [
            Event::Resynced {
                symbol: 1,
                seq: Some(18)
            },
            Event::BookUpdated { .. }
        ]
    ));
    assert_eq!(book(&s, 0), (vec!["2@98".into()], vec![]));
    assert_eq!(s.connection_gaps(), 1);
}

#[test]
fn unreadable_book_frame_resyncs_what_it_names() {
    let mut s = CoinbaseSession::new(SessionOptions::default());
    feed(
        &mut s,
        &l2(1, "snapshot", "BTC-USD", &[("bid", "100", "1")]),
    );
    feed(&mut s, &l2(2, "snapshot", "ETH-USD", &[("bid", "10", "1")]));
    let mut out = Vec::new();
    let err = s
        .receive(
            l2(3, "update", "ETH-USD", &[("bid", "10", "1e")]).as_bytes(),
            T0,
            &mut out,
        )
        .unwrap_err();
    assert!(matches!(err.error, FrameError::BadNumber { .. }));
    assert_eq!(err.symbol.as_deref(), Some("ETH-USD"));
    assert_eq!(
        out,
        vec![
            Event::SyncLost {
                symbol: 1,
                reason: LossReason::BadFrame
            },
            Event::NeedResubscribe { symbol: 1 }
        ]
    );
    assert_eq!(s.symbols().sync(0).unwrap().state(), SyncState::Live);
    // The number was read, so the next frame is no gap.
    assert!(feed(&mut s, &heartbeat(4)).is_empty());
    // A book frame without a product: nobody knows whose update it was.
    let mut out = Vec::new();
    let frame = r#"{"channel":"l2_data","timestamp":"2026-01-02T03:04:05Z","sequence_num":5,"events":[{"type":"update","updates":[]}]}"#;
    assert!(s.receive(frame.as_bytes(), T0, &mut out).is_err());
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
fn trades_are_normalized_to_the_taker_side() {
    let mut s = CoinbaseSession::new(SessionOptions::default());
    let out = feed(
        &mut s,
        r#"{"channel":"market_trades","client_id":"","timestamp":"2026-01-02T03:04:05.9Z","sequence_num":0,"events":[{"type":"update","trades":[{"trade_id":"1001","product_id":"BTC-USD","price":"65000.01","size":"0.00100000","side":"SELL","time":"2026-01-02T03:04:05.123456789Z"},{"trade_id":"1002","product_id":"BTC-USD","price":"64999.99","size":"2","side":"BUY","time":"2026-01-02T03:04:05.5Z"}]}]}"#,
    );
    let got: Vec<_> = out
        .iter()
        .map(|e| match e {
            Event::Trade(t) => (
                t.trade_id.as_str(),
                t.price.to_string(),
                t.size.to_string(),
                t.side,
                t.exchange_ts_ns,
            ),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "1001",
                "65000.01".into(),
                "0.00100000".into(),
                Some(TradeSide::Buy),
                1_767_323_045_123_456_789
            ),
            (
                "1002",
                "64999.99".into(),
                "2".into(),
                Some(TradeSide::Sell),
                1_767_323_045_500_000_000
            ),
        ]
    );
}

fn candles_frame(seq: u64, kind: &str, candles: &[(&str, &str, &str)]) -> String {
    let items: Vec<String> = candles
        .iter()
        .map(|(product, start, close)| {
            format!(
                r#"{{"start":"{start}","high":"2","low":"1","open":"1.5","close":"{close}","volume":"10","product_id":"{product}"}}"#
            )
        })
        .collect();
    format!(
        r#"{{"channel":"candles","client_id":"","timestamp":"2026-01-02T03:04:05Z","sequence_num":{seq},"events":[{{"type":"{kind}","candles":[{}]}}]}}"#,
        items.join(",")
    )
}

fn candle_view(out: &[Event]) -> Vec<(SymbolId, u64, String, bool)> {
    out.iter()
        .map(|e| match e {
            Event::Candle(c) => (
                c.symbol,
                c.open_ts_ns / NS_PER_SEC,
                c.close.to_string(),
                c.closed,
            ),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn candles_close_when_a_later_bucket_begins() {
    let mut s = CoinbaseSession::new(SessionOptions::default());
    let out = feed(
        &mut s,
        &candles_frame(
            0,
            "snapshot",
            &[
                ("ETH-USD", "1000", "1.1"),
                ("ETH-USD", "1300", "1.2"),
                ("ETH-USD", "1600", "1.3"),
            ],
        ),
    );
    assert_eq!(
        candle_view(&out),
        vec![
            (0, 1000, "1.1".into(), true),
            (0, 1300, "1.2".into(), true),
            (0, 1600, "1.3".into(), false),
        ]
    );
    match &out[2] {
        Event::Candle(c) => {
            assert_eq!(c.interval, "5m");
            assert_eq!(c.close_ts_ns, 1900 * NS_PER_SEC);
            assert_eq!(c.exchange_ts_ns, 1_767_323_045_000_000_000);
        }
        other => panic!("{other:?}"),
    }
    let out = feed(
        &mut s,
        &candles_frame(1, "update", &[("ETH-USD", "1600", "1.4")]),
    );
    assert_eq!(candle_view(&out), vec![(0, 1600, "1.4".into(), false)]);
    let out = feed(
        &mut s,
        &candles_frame(2, "update", &[("ETH-USD", "1900", "1.5")]),
    );
    assert_eq!(
        candle_view(&out),
        vec![
            (0, 1600, "1.4".into(), true),
            (0, 1900, "1.5".into(), false)
        ]
    );
    // Another product's buckets are its own.
    let out = feed(
        &mut s,
        &candles_frame(3, "update", &[("BTC-USD", "1900", "9")]),
    );
    assert_eq!(candle_view(&out), vec![(1, 1900, "9".into(), false)]);
    // A bad candle changes nothing.
    let mut out = Vec::new();
    assert!(s
        .receive(
            candles_frame(4, "update", &[("ETH-USD", "2200", "x")]).as_bytes(),
            T0,
            &mut out
        )
        .is_err());
    assert!(out.is_empty());
    let out = feed(
        &mut s,
        &candles_frame(5, "update", &[("ETH-USD", "1900", "1.6")]),
    );
    assert_eq!(candle_view(&out), vec![(0, 1900, "1.6".into(), false)]);
}

#[test]
fn acks_heartbeats_tickers_without_a_top_and_unknown_frames_are_ignored() {
    let mut s = CoinbaseSession::new(SessionOptions::default());
    for frame in [
        heartbeat(0),
        r#"{"channel":"subscriptions","client_id":"","timestamp":"2026-01-02T03:04:05Z","sequence_num":1,"events":[{"subscriptions":{"level2":["BTC-USD"]}}]}"#.to_owned(),
        r#"{"channel":"ticker","client_id":"","timestamp":"2026-01-02T03:04:05Z","sequence_num":2,"events":[{"type":"update","tickers":[{"type":"ticker","product_id":"BTC-USD","price":"1"}]}]}"#.to_owned(),
        r#"{"channel":"status","timestamp":"2026-01-02T03:04:05Z","sequence_num":3,"events":[]}"#.to_owned(),
        r#"{"hello":"world"}"#.to_owned(),
    ] {
        assert!(feed(&mut s, &frame).is_empty());
    }
    assert_eq!(s.stats().ignored, 5);
    assert_eq!(s.stats().errors, 0);
    assert_eq!(s.connection_gaps(), 0);
    // A data frame without its number is malformed, not unknown.
    let mut out = Vec::new();
    let frame = r#"{"channel":"market_trades","timestamp":"2026-01-02T03:04:05Z","events":[]}"#;
    let err = s.receive(frame.as_bytes(), T0, &mut out).unwrap_err();
    assert_eq!(err.error, FrameError::MissingField("sequence_num"));
    assert!(s.symbols().is_empty());
}

#[test]
fn error_answer_is_a_typed_venue_error_and_changes_no_book() {
    let mut s = CoinbaseSession::new(SessionOptions::default());
    feed(
        &mut s,
        &l2(
            0,
            "snapshot",
            "BTC-USD",
            &[("bid", "100.5", "1"), ("offer", "101", "2")],
        ),
    );
    let before = book(&s, 0);
    let mut out = Vec::new();
    for (frame, message) in [
        (
            r#"{"type":"error","message":"failure to subscribe"}"#,
            "failure to subscribe",
        ),
        (
            r#"{"type":"error","message":"Failed to subscribe","reason":"BTC-USDX is not a valid product"}"#,
            "Failed to subscribe: BTC-USDX is not a valid product",
        ),
    ] {
        let err = s.receive(frame.as_bytes(), T0, &mut out).unwrap_err();
        assert_eq!(err.symbol, None);
        assert_eq!(err.error, FrameError::VenueError(message.into()));
    }
    assert!(out.is_empty());
    assert_eq!(book(&s, 0), before);
    assert_eq!(s.symbols().sync(0).unwrap().state(), SyncState::Live);
    assert_eq!(
        s.last_sequence(),
        Some(0),
        "an error answer is not numbered"
    );
    assert_eq!((s.stats().errors, s.stats().ignored), (2, 0));
    // The connection's numbering goes on from the last data frame: no gap.
    let out = feed(
        &mut s,
        &l2(1, "update", "BTC-USD", &[("bid", "100.5", "3")]),
    );
    assert!(
        matches!(out[..], [Event::BookUpdated { seq: Some(1), .. }]),
        "{out:?}"
    );
    assert_eq!(s.connection_gaps(), 0);
}

fn ticker(seq: u64, kind: &str, tickers: &[(&str, &str, &str, &str, &str)]) -> String {
    let items: Vec<String> = tickers
        .iter()
        .map(|(product, bid, bid_qty, ask, ask_qty)| {
            format!(
                r#"{{"type":"ticker","product_id":"{product}","price":"1","volume_24_h":"2","best_bid":"{bid}","best_ask":"{ask}","best_bid_quantity":"{bid_qty}","best_ask_quantity":"{ask_qty}"}}"#
            )
        })
        .collect();
    format!(
        r#"{{"channel":"ticker","client_id":"","timestamp":"2026-01-02T03:04:05.5Z","sequence_num":{seq},"events":[{{"type":"{kind}","tickers":[{}]}}]}}"#,
        items.join(",")
    )
}

#[test]
fn tickers_become_quotes_numbered_with_their_frame() {
    let mut s = CoinbaseSession::new(SessionOptions::default());
    let out = feed(
        &mut s,
        &ticker(
            0,
            "snapshot",
            &[
                (
                    "BTC-USD",
                    "65083.66",
                    "0.20371215",
                    "65083.67",
                    "0.24290402",
                ),
                ("ETH-USD", "1919.42", "1.512673", "1919.49", "0.07814824"),
            ],
        ),
    );
    let quotes: Vec<_> = out
        .iter()
        .map(|e| match e {
            Event::Quote(q) => (
                s.symbols().name(q.symbol).to_owned(),
                q.seq,
                format!("{}@{}", q.bid_size, q.bid_price),
                format!("{}@{}", q.ask_size, q.ask_price),
                q.exchange_ts_ns,
            ),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        quotes,
        vec![
            (
                "BTC-USD".to_owned(),
                Some(0),
                "0.20371215@65083.66".to_owned(),
                "0.24290402@65083.67".to_owned(),
                1_767_323_045_500_000_000
            ),
            (
                "ETH-USD".to_owned(),
                Some(0),
                "1.512673@1919.42".to_owned(),
                "0.07814824@1919.49".to_owned(),
                1_767_323_045_500_000_000
            ),
        ]
    );
    // A ticker missing part of its top gives no quote; the others in the frame still do.
    let out = feed(
        &mut s,
        &ticker(
            1,
            "update",
            &[
                ("BTC-USD", "", "0.1", "65083.67", "0.2"),
                ("ETH-USD", "1919.41", "2", "1919.49", "0.07814824"),
            ],
        ),
    );
    assert!(matches!(
        out.as_slice(),
        [Event::Quote(Quote {
            symbol: 1,
            seq: Some(1),
            ..
        })]
    ));
    assert_eq!(s.stats().ignored, 1);
    // A number that does not parse spoils the frame's quotes and names the product.
    let mut out = Vec::new();
    let err = s
        .receive(
            ticker(
                2,
                "update",
                &[
                    ("ETH-USD", "1919.41", "2", "1919.49", "1"),
                    ("BTC-USD", "65083.6x", "1", "65083.67", "1"),
                ],
            )
            .as_bytes(),
            T0,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(err.symbol.as_deref(), Some("BTC-USD"));
    assert!(matches!(
        err.error,
        FrameError::BadNumber {
            field: "best_bid",
            ..
        }
    ));
    assert!(out.is_empty());
    // Quotes are information only: no book is made or checked.
    assert!(s.symbols().sync(0).unwrap().book.is_empty());
    assert_eq!(s.connection_gaps(), 0);
}

fn candle_marks(out: &[Event]) -> Vec<(u64, bool, bool)> {
    out.iter()
        .map(|e| match e {
            Event::Candle(c) => (c.open_ts_ns / NS_PER_SEC, c.closed, c.is_snapshot),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn snapshot_candles_and_trades_are_history_and_never_closed_live_candles() {
    let mut s = CoinbaseSession::new(SessionOptions::default());
    // On subscribe: two finished buckets and the one in progress, all history.
    let out = feed(
        &mut s,
        &candles_frame(
            0,
            "snapshot",
            &[
                ("ETH-USD", "1000", "1.1"),
                ("ETH-USD", "1300", "1.2"),
                ("ETH-USD", "1600", "1.3"),
            ],
        ),
    );
    assert_eq!(
        candle_marks(&out),
        vec![(1000, true, true), (1300, true, true), (1600, false, true)]
    );
    // Live updates of the bucket in progress, then its end when the next begins: live.
    let out = feed(
        &mut s,
        &candles_frame(1, "update", &[("ETH-USD", "1600", "1.4")]),
    );
    assert_eq!(candle_marks(&out), vec![(1600, false, false)]);
    let out = feed(
        &mut s,
        &candles_frame(2, "update", &[("ETH-USD", "1900", "1.5")]),
    );
    assert_eq!(
        candle_marks(&out),
        vec![(1600, true, false), (1900, false, false)]
    );
    // A resubscription's snapshot: the bucket followed live is final in it (its end is
    // live news); older buckets and the new one in progress are history again.
    let out = feed(
        &mut s,
        &candles_frame(
            3,
            "snapshot",
            &[
                ("ETH-USD", "1600", "1.4"),
                ("ETH-USD", "1900", "1.55"),
                ("ETH-USD", "2200", "1.6"),
            ],
        ),
    );
    assert_eq!(
        candle_marks(&out),
        vec![(1600, true, true), (1900, true, false), (2200, false, true)]
    );
    // The trades a market_trades snapshot replays are history too.
    let out = feed(
        &mut s,
        r#"{"channel":"market_trades","client_id":"","timestamp":"2026-01-02T03:04:05Z","sequence_num":4,"events":[{"type":"snapshot","trades":[{"trade_id":"1","product_id":"ETH-USD","price":"1","size":"1","side":"BUY","time":"2026-01-02T03:04:05Z"}]},{"type":"update","trades":[{"trade_id":"2","product_id":"ETH-USD","price":"1","size":"1","side":"SELL","time":"2026-01-02T03:04:05Z"}]}]}"#,
    );
    let marks: Vec<_> = out
        .iter()
        .map(|e| match e {
            Event::Trade(t) => (t.trade_id.as_str(), t.is_snapshot),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(marks, vec![("1", true), ("2", false)]);
}

#[test]
fn products_match_in_the_users_case_and_the_venues() {
    let options = SessionOptions {
        symbols: Some(vec!["eth-usd".to_owned()]),
        ..SessionOptions::default()
    };
    let mut s = CoinbaseSession::new(options);
    feed(&mut s, &l2(0, "snapshot", "ETH-USD", &[("bid", "10", "1")]));
    feed(&mut s, &l2(1, "snapshot", "BTC-USD", &[("bid", "10", "1")]));
    assert_eq!(s.symbols().names(), ["ETH-USD"]);
    assert_eq!(s.stats().unsubscribed, 1);
    assert_eq!(s.symbols().sync(0).unwrap().state(), SyncState::Live);
}
