//! Frames written from OKX's v5 documentation of the `books` and `trades` channels and of
//! `GET /api/v5/market/books`.

use super::*;
use crate::book::Side;
use crate::checksum::crc32;
use crate::event::LossReason;
use crate::sync::SyncState;

fn session() -> OkxSession {
    OkxSession::new(SessionOptions::default())
}

fn feed(s: &mut OkxSession, frame: &str) -> Vec<Event> {
    let mut out = Vec::new();
    s.receive(frame.as_bytes(), 1, &mut out)
        .unwrap_or_else(|e| panic!("{frame}: {e}"));
    out
}

/// A `books` frame: levels as (price, size) pairs.
fn book(
    action: &str,
    bids: &[(&str, &str)],
    asks: &[(&str, &str)],
    checksum: i64,
    ids: Option<(i64, i64)>,
) -> String {
    let side = |levels: &[(&str, &str)]| {
        levels
            .iter()
            .map(|(p, q)| format!(r#"["{p}","{q}","0","1"]"#))
            .collect::<Vec<_>>()
            .join(",")
    };
    let seq = match ids {
        Some((prev, seq)) => format!(r#","prevSeqId":{prev},"seqId":{seq}"#),
        None => String::new(),
    };
    format!(
        r#"{{"arg":{{"channel":"books","instId":"BTC-USDT"}},"action":"{action}","data":[{{"asks":[{}],"bids":[{}],"ts":"1652459225000","checksum":{checksum}{seq}}}]}}"#,
        side(asks),
        side(bids)
    )
}

fn tops(s: &OkxSession) -> (Vec<String>, Vec<String>) {
    let sync = s.symbols().sync(0).unwrap();
    let fmt = |l: crate::book::Level| format!("{}:{}", l.price, l.qty);
    (
        sync.book.bids().map(fmt).collect(),
        sync.book.asks().map(fmt).collect(),
    )
}

fn counters(s: &OkxSession) -> crate::sync::SyncCounters {
    s.symbols().sync(0).unwrap().counters
}

#[test]
fn seq_chain_with_keep_alive_and_gap() {
    let mut s = session();
    let out = feed(
        &mut s,
        &book(
            "snapshot",
            &[("10.0", "1")],
            &[("10.5", "2")],
            0,
            Some((-1, 100)),
        ),
    );
    assert!(matches!(
        out[..],
        [Event::BookUpdated { seq: Some(100), .. }]
    ));
    // Steps are not +1: the chain is prevSeqId == previous seqId.
    let out = feed(
        &mut s,
        &book("update", &[("10.1", "3")], &[], 0, Some((100, 107))),
    );
    assert!(matches!(
        out[..],
        [Event::BookUpdated { seq: Some(107), .. }]
    ));
    // Keep-alive: seqId == prevSeqId == last: no change, no gap, no event.
    let out = feed(&mut s, &book("update", &[], &[], 0, Some((107, 107))));
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(s.symbols().sync(0).unwrap().last_seq, Some(107));
    let out = feed(
        &mut s,
        &book("update", &[], &[("10.5", "0")], 0, Some((107, 120))),
    );
    assert!(matches!(
        out[..],
        [Event::BookUpdated { seq: Some(120), .. }]
    ));
    assert_eq!(tops(&s), (vec!["10.1:3".into(), "10.0:1".into()], vec![]));
    // An update whose prevSeqId is not the last seqId: a gap, the book is dropped.
    let out = feed(
        &mut s,
        &book("update", &[("10.2", "1")], &[], 0, Some((130, 140))),
    );
    assert_eq!(
        out,
        vec![
            Event::GapDetected {
                symbol: 0,
                expected: 120,
                received: 130
            },
            Event::SyncLost {
                symbol: 0,
                reason: LossReason::Gap {
                    expected: 120,
                    received: 130,
                },
            },
            Event::NeedResubscribe { symbol: 0 },
        ]
    );
    assert!(s.symbols().sync(0).unwrap().book.is_empty());
    assert_eq!(counters(&s).gaps, 1);
    // The in-band snapshot of the resubscription brings it back.
    let out = feed(
        &mut s,
        &book(
            "snapshot",
            &[("9.9", "1")],
            &[("10.4", "1")],
            0,
            Some((-1, 150)),
        ),
    );
    assert!(out.contains(&Event::Resynced {
        symbol: 0,
        seq: Some(150)
    }));
    assert!(matches!(
        out.last(),
        Some(Event::BookUpdated { seq: Some(150), .. })
    ));
    assert_eq!(tops(&s), (vec!["9.9:1".into()], vec!["10.4:1".into()]));
}

#[test]
fn seq_reset_chains_by_identity() {
    // After maintenance OKX may restart seqId lower; prevSeqId still names the last one.
    let mut s = session();
    feed(
        &mut s,
        &book("snapshot", &[("1", "1")], &[("2", "1")], 0, Some((-1, 500))),
    );
    let out = feed(
        &mut s,
        &book("update", &[("1.5", "1")], &[], 0, Some((500, 3))),
    );
    assert!(matches!(out[..], [Event::BookUpdated { seq: Some(3), .. }]));
    let out = feed(
        &mut s,
        &book("update", &[("1.6", "1")], &[], 0, Some((3, 9))),
    );
    assert!(matches!(out[..], [Event::BookUpdated { seq: Some(9), .. }]));
    assert_eq!(counters(&s).gaps, 0);
}

fn rest(seq: u64, bids: &[(&str, &str)], asks: &[(&str, &str)]) -> String {
    let side = |levels: &[(&str, &str)]| {
        levels
            .iter()
            .map(|(p, q)| format!(r#"["{p}","{q}","0","1"]"#))
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        r#"{{"code":"0","msg":"","data":[{{"asks":[{}],"bids":[{}],"ts":"1652459225000","seqId":{seq}}}]}}"#,
        side(asks),
        side(bids)
    )
}

#[test]
fn rest_snapshot_bridges_buffered_updates() {
    let mut s = OkxSession::with_resync(SessionOptions::default(), ResyncBy::Snapshot);
    // Updates arrive before any snapshot: buffered, one snapshot request.
    let out = feed(
        &mut s,
        &book("update", &[("10.0", "5")], &[], 0, Some((90, 95))),
    );
    assert_eq!(out, vec![Event::NeedSnapshot { symbol: 0 }]);
    assert!(feed(
        &mut s,
        &book("update", &[("10.1", "1")], &[], 0, Some((95, 101)))
    )
    .is_empty());
    assert!(feed(
        &mut s,
        &book("update", &[], &[("10.3", "0")], 0, Some((101, 110)))
    )
    .is_empty());
    assert_eq!(s.symbols().sync(0).unwrap().buffered(), 3);

    // A snapshot older than the first buffered update cannot be bridged: ask again.
    let mut out = Vec::new();
    s.receive_snapshot(
        "BTC-USDT",
        rest(80, &[("9.0", "1")], &[("11", "1")]).as_bytes(),
        2,
        &mut out,
    )
    .unwrap();
    assert_eq!(out, vec![Event::NeedSnapshot { symbol: 0 }]);
    assert_eq!(counters(&s).stale_snapshots, 1);

    // Snapshot at 100: update 95 is dropped (seqId <= 100), 101 bridges
    // (prevSeqId 95 <= 100 < 101), 110 follows.
    out.clear();
    let body = rest(
        100,
        &[("10.0", "2"), ("9.9", "4")],
        &[("10.3", "7"), ("10.4", "1")],
    );
    s.receive_snapshot("BTC-USDT", body.as_bytes(), 3, &mut out)
        .unwrap();
    assert!(matches!(
        out[..],
        [Event::BookUpdated { seq: Some(110), .. }]
    ));
    assert_eq!(
        tops(&s),
        (
            vec!["10.1:1".into(), "10.0:2".into(), "9.9:4".into()],
            vec!["10.4:1".into()]
        )
    );
    assert_eq!(counters(&s).stale_dropped, 1);
    assert_eq!(s.symbols().sync(0).unwrap().state(), SyncState::Live);
    // And the live stream goes on from 110.
    let mut out = feed(
        &mut s,
        &book("update", &[("10.2", "1")], &[], 0, Some((110, 111))),
    );
    assert!(matches!(
        out[..],
        [Event::BookUpdated { seq: Some(111), .. }]
    ));
    // A REST error body is a typed venue error.
    let err = s
        .receive_snapshot(
            "BTC-USDT",
            br#"{"code":"51001","msg":"Instrument ID does not exist","data":[]}"#,
            4,
            &mut out,
        )
        .unwrap_err();
    assert!(matches!(err.error, FrameError::VenueError(_)));
}

fn okx_text_crc(text: &str) -> i64 {
    crc32(text.as_bytes()) as i32 as i64
}

#[test]
fn checksum_zero_is_not_checked() {
    let mut s = session();
    feed(
        &mut s,
        &book("snapshot", &[("1.0", "1")], &[("2.0", "1")], 0, None),
    );
    let out = feed(&mut s, &book("update", &[("1.1", "1")], &[], 0, None));
    assert!(matches!(out[..], [Event::BookUpdated { .. }]));
    assert_eq!(counters(&s).checksums_checked, 0);
    assert_eq!(counters(&s).checksum_mismatches, 0);
}

#[test]
fn wrong_checksum_clears_and_resyncs() {
    let mut s = session();
    let good = okx_text_crc("1.0:1:2.0:1");
    let out = feed(
        &mut s,
        &book("snapshot", &[("1.0", "1")], &[("2.0", "1")], good, None),
    );
    assert!(matches!(out[..], [Event::BookUpdated { .. }]));
    assert_eq!(counters(&s).checksums_checked, 1);
    // The venue's checksum says the book is not what we hold after this update.
    let wrong = okx_text_crc("1.1:1:1.0:1:2.0:1") ^ 1;
    let out = feed(&mut s, &book("update", &[("1.1", "1")], &[], wrong, None));
    let computed = okx_text_crc("1.1:1:2.0:1:1.0:1") as i32 as u32;
    assert_eq!(
        out,
        vec![
            Event::ChecksumMismatch {
                symbol: 0,
                expected: wrong as i32 as u32,
                computed
            },
            Event::SyncLost {
                symbol: 0,
                reason: LossReason::Checksum {
                    expected: wrong as i32 as u32,
                    computed,
                },
            },
            Event::NeedResubscribe { symbol: 0 },
        ],
        "no BookUpdated for a book that failed its checksum"
    );
    assert!(s.symbols().sync(0).unwrap().book.is_empty());
    assert_eq!(
        s.symbols().sync(0).unwrap().state(),
        SyncState::AwaitingSnapshot
    );
    assert_eq!(counters(&s).checksum_mismatches, 1);
}

#[test]
fn checksum_interleaves_unequal_sides() {
    // Three bids, one ask: bid0:ask0 then the bids alone.
    let mut s = session();
    let crc = okx_text_crc("8476.98:415:8476.99:1:8475.55:0.3:8475.1:22");
    let frame = book(
        "snapshot",
        &[("8476.98", "415"), ("8475.55", "0.3"), ("8475.1", "22")],
        &[("8476.99", "1")],
        crc,
        None,
    );
    let out = feed(&mut s, &frame);
    assert!(matches!(out[..], [Event::BookUpdated { .. }]), "{out:?}");
    assert_eq!(counters(&s).checksums_checked, 1);
    assert_eq!(counters(&s).checksum_mismatches, 0);
    // Asks longer than bids: ask-only entries at the tail.
    let crc = okx_text_crc("8476.98:415:8476.99:1:8477:2:8478.5:3");
    let frame = book(
        "snapshot",
        &[("8476.98", "415")],
        &[("8476.99", "1"), ("8477", "2"), ("8478.5", "3")],
        crc,
        None,
    );
    feed(&mut s, &frame);
    assert_eq!(counters(&s).checksum_mismatches, 0);
}

#[test]
fn trades_acks_pong_and_tickers() {
    let mut s = session();
    assert!(feed(&mut s, "pong").is_empty());
    assert!(feed(
        &mut s,
        r#"{"event":"subscribe","arg":{"channel":"trades","instId":"BTC-USDT"}}"#
    )
    .is_empty());
    assert!(feed(
        &mut s,
        r#"{"event":"notice","code":"64008","msg":"The connection will soon be closed for a service upgrade.","connId":"a4d3ae55"}"#
    )
    .is_empty());
    assert!(feed(&mut s, r#"{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","last":"9999.99"}]}"#).is_empty());
    // The service-upgrade notice is counted apart: the Feed replaces the connection.
    assert_eq!(s.stats().ignored, 3);
    assert_eq!(s.stats().closing_notices, 1);
    let out = feed(
        &mut s,
        r#"{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"130639474","px":"42219.90","sz":"0.12060306","side":"sell","ts":"1630048897897"},{"instId":"BTC-USDT","tradeId":"130639475","px":"42220.00","sz":"1","side":"buy","ts":"1630048897898"}]}"#,
    );
    assert_eq!(out.len(), 2);
    let Event::Trade(t) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(t.price.to_string(), "42219.90");
    assert_eq!(t.size.to_string(), "0.12060306");
    assert_eq!(t.side, Some(TradeSide::Sell));
    assert_eq!(t.trade_id, "130639474");
    assert_eq!(t.exchange_ts_ns, 1_630_048_897_897_000_000);
    assert_eq!(t.ts_ns, 1);
    let Event::Trade(t) = &out[1] else {
        panic!("{out:?}")
    };
    assert_eq!(t.side, Some(TradeSide::Buy));
}

#[test]
fn bad_book_frame_resyncs_only_its_symbol() {
    let mut s = session();
    feed(
        &mut s,
        &book("snapshot", &[("1", "1")], &[("2", "1")], 0, Some((-1, 1))),
    );
    let other = book("snapshot", &[("1", "1")], &[("2", "1")], 0, Some((-1, 1)))
        .replace("BTC-USDT", "ETH-USDT");
    feed(&mut s, &other);
    let mut out = Vec::new();
    let bad = book("update", &[("1x", "1")], &[], 0, Some((1, 2)));
    let err = s.receive(bad.as_bytes(), 1, &mut out).unwrap_err();
    assert_eq!(err.symbol.as_deref(), Some("BTC-USDT"));
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
    assert!(s.symbols().sync(0).unwrap().book.is_empty());
    assert!(!s.symbols().sync(1).unwrap().book.is_empty());
    assert_eq!(s.stats().errors, 1);
}

#[test]
fn error_answer_is_a_typed_venue_error_and_changes_no_book() {
    let mut s = session();
    feed(
        &mut s,
        &book("snapshot", &[("1", "1")], &[("2", "1")], 0, Some((-1, 7))),
    );
    let mut out = Vec::new();
    // The message quotes the refused request, escaped quotes and all.
    let err = s
        .receive(
            br#"{"event":"error","code":"60012","msg":"Invalid request: {\"op\": \"subscribe\"}","connId":"a4d3ae55"}"#,
            1,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(err.symbol, None);
    assert_eq!(
        err.error,
        FrameError::VenueError(r#"code 60012: Invalid request: {"op": "subscribe"}"#.into())
    );
    // An error that echoes its `arg` names the instrument, without touching its book.
    let err = s
        .receive(
            br#"{"event":"error","code":60018,"msg":"Wrong URL or channel:books,instId:BTC-USDT doesn't exist.","arg":{"channel":"books","instId":"BTC-USDT"}}"#,
            1,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(err.symbol.as_deref(), Some("BTC-USDT"));
    assert!(
        matches!(&err.error, FrameError::VenueError(m) if m.starts_with("code 60018: Wrong URL"))
    );
    assert!(out.is_empty());
    assert_eq!(tops(&s), (vec!["1:1".into()], vec!["2:1".into()]));
    assert_eq!(s.symbols().sync(0).unwrap().state(), SyncState::Live);
    assert_eq!(s.symbols().sync(0).unwrap().last_seq, Some(7));
    assert_eq!(counters(&s).errors, 0);
    assert_eq!(s.symbols().len(), 1);
    assert_eq!((s.stats().errors, s.stats().ignored), (2, 0));
}

#[test]
fn tickers_become_quotes_without_seq() {
    let mut s = session();
    let out = feed(
        &mut s,
        r#"{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"instType":"SPOT","instId":"BTC-USDT","last":"9999.99","lastSz":"0.1","askPx":"9999.99","askSz":"11","bidPx":"8888.88","bidSz":"5.10","open24h":"9000","high24h":"10000","low24h":"8888.88","volCcy24h":"2222","vol24h":"2222","sodUtc0":"2222","sodUtc8":"2222","ts":"1597026383085"}]}"#,
    );
    let [Event::Quote(q)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(q.seq, None);
    assert_eq!(
        (
            q.bid_price.to_string(),
            q.bid_size.to_string(),
            q.ask_price.to_string(),
            q.ask_size.to_string()
        ),
        (
            "8888.88".into(),
            "5.10".into(),
            "9999.99".into(),
            "11".into()
        )
    );
    assert_eq!(q.exchange_ts_ns, 1_597_026_383_085_000_000);
    assert_eq!(s.symbols().name(q.symbol), "BTC-USDT");
    // An empty side gives no quote.
    assert!(feed(
        &mut s,
        r#"{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","askPx":"","askSz":"0","bidPx":"8888.88","bidSz":"5","ts":"1597026383086"}]}"#
    )
    .is_empty());
    assert_eq!(s.stats().ignored, 1);
    // Quotes do not make or check a book.
    let sync = s.symbols().sync(0).unwrap();
    assert!(sync.book.is_empty());
    assert_eq!(sync.state(), SyncState::AwaitingSnapshot);
    let mut out = Vec::new();
    let err = s
        .receive(
            br#"{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","askPx":"1","askSz":"1","bidPx":"x","bidSz":"1","ts":"1"}]}"#,
            1,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(err.symbol.as_deref(), Some("BTC-USDT"));
    assert!(matches!(
        err.error,
        FrameError::BadNumber { field: "bidPx", .. }
    ));
    assert!(out.is_empty());
}

#[test]
fn books5_replaces_the_book_each_message() {
    let mut s = session();
    let frame = |bid: &str, ask: &str| {
        format!(
            r#"{{"arg":{{"channel":"books5","instId":"BTC-USDT"}},"data":[{{"asks":[["{ask}","1","0","1"]],"bids":[["{bid}","1","0","1"]],"instId":"BTC-USDT","ts":"1","seqId":5}}]}}"#
        )
    };
    feed(&mut s, &frame("10", "11"));
    let out = feed(&mut s, &frame("12", "13"));
    assert!(matches!(out[..], [Event::BookUpdated { .. }]));
    assert_eq!(tops(&s), (vec!["12:1".into()], vec!["13:1".into()]));
}

#[test]
fn symbols_are_taken_in_the_users_case_or_the_venues() {
    let mut s = OkxSession::new(SessionOptions {
        symbols: Some(vec!["btc-usdt".to_owned()]),
        ..SessionOptions::default()
    });
    let snapshot = book("snapshot", &[("10.0", "1")], &[("10.5", "2")], 0, None);
    assert_eq!(feed(&mut s, &snapshot).len(), 1);
    let other = snapshot.replace("BTC-USDT", "ETH-USDT");
    assert!(feed(&mut s, &other).is_empty());
    assert_eq!(s.symbols().names(), ["BTC-USDT"]);
    assert_eq!(s.stats().unsubscribed, 1);
}

fn refs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(p, q)| (p.as_str(), q.as_str())).collect()
}

#[test]
fn depth_does_not_truncate_the_kept_book() {
    // `books` is incremental: the levels past the wanted depth are kept (a delete inside the
    // view brings them in, and the checksum covers 25); the view shows `depth`.
    let mut s = OkxSession::new(SessionOptions {
        depth: Some(3),
        ..SessionOptions::default()
    });
    let bids: Vec<(String, String)> = (0..10)
        .map(|i| (format!("{}", 100 - i), "1".to_owned()))
        .collect();
    let asks: Vec<(String, String)> = (0..10)
        .map(|i| (format!("{}", 101 + i), "1".to_owned()))
        .collect();
    feed(
        &mut s,
        &book("snapshot", &refs(&bids), &refs(&asks), 0, Some((-1, 1))),
    );
    let sync = s.symbols().sync(0).unwrap();
    assert_eq!(
        (sync.book.len(Side::Bid), sync.book.len(Side::Ask)),
        (10, 10)
    );
}

#[test]
fn data_before_arg_reads_the_same() {
    let mut s = session();
    let frame = book(
        "snapshot",
        &[("10.0", "1")],
        &[("10.5", "2")],
        0,
        Some((-1, 100)),
    );
    let data = &frame[frame.find(r#""data":"#).unwrap()..frame.len() - 1];
    let reordered = format!(
        r#"{{{data},"action":"snapshot","arg":{{"channel":"books","instId":"BTC-USDT"}}}}"#
    );
    let out = feed(&mut s, &reordered);
    assert!(
        matches!(out[..], [Event::BookUpdated { seq: Some(100), .. }]),
        "{out:?}"
    );
    assert_eq!(tops(&s), (vec!["10.0:1".into()], vec!["10.5:2".into()]));
}

#[test]
fn a_cut_book_frame_resyncs_its_instrument() {
    let mut s = session();
    feed(
        &mut s,
        &book(
            "snapshot",
            &[("10.0", "1")],
            &[("10.5", "2")],
            0,
            Some((-1, 100)),
        ),
    );
    let frame = book("update", &[("10.1", "3")], &[], 0, Some((100, 107)));
    let mut out = Vec::new();
    let err = s
        .receive(&frame.as_bytes()[..frame.len() - 20], 1, &mut out)
        .unwrap_err();
    assert_eq!(err.symbol.as_deref(), Some("BTC-USDT"));
    assert!(matches!(err.error, FrameError::Json(_)));
    assert_eq!(out[1..], [Event::NeedResubscribe { symbol: 0 }]);
}
