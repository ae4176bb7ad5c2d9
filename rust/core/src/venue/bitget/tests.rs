//! Frames written from Bitget's websocket documentation of `books`, `trade` and `candle1m`,
//! their checksums computed here the way the venue describes it.

use super::*;
use crate::checksum::crc32;
use crate::event::LossReason;
use crate::sync::SyncState;

fn session() -> BitgetSession {
    BitgetSession::new(SessionOptions::default())
}

fn feed(s: &mut BitgetSession, frame: &str) -> Vec<Event> {
    let mut out = Vec::new();
    s.receive(frame.as_bytes(), 1, &mut out)
        .unwrap_or_else(|e| panic!("{frame}: {e}"));
    out
}

/// The venue's checksum of a book given best first: `bid:size:ask:size:...`, signed.
fn checksum(bids: &[(&str, &str)], asks: &[(&str, &str)]) -> i32 {
    let mut parts = Vec::new();
    for i in 0..bids.len().max(asks.len()).min(25) {
        for side in [bids, asks] {
            if let Some((p, q)) = side.get(i) {
                parts.push(format!("{p}:{q}"));
            }
        }
    }
    crc32(parts.join(":").as_bytes()) as i32
}

fn books(
    inst: &str,
    action: &str,
    bids: &[(&str, &str)],
    asks: &[(&str, &str)],
    sum: i32,
) -> String {
    let side = |levels: &[(&str, &str)]| {
        levels
            .iter()
            .map(|(p, q)| format!(r#"["{p}","{q}"]"#))
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        r#"{{"action":"{action}","arg":{{"instType":"sp","channel":"books","instId":"{inst}"}},"data":[{{"asks":[{}],"bids":[{}],"checksum":{sum},"ts":"1649290077000"}}]}}"#,
        side(asks),
        side(bids)
    )
}

const BIDS: &[(&str, &str)] = &[("113.36", "1.50"), ("113.35", "2")];
const ASKS: &[(&str, &str)] = &[("113.42", "6.40"), ("113.43", "2.01")];

#[test]
fn a_snapshot_then_updates_each_proven_by_its_checksum() {
    let mut s = session();
    let out = feed(
        &mut s,
        &books("DASHUSDT", "snapshot", BIDS, ASKS, checksum(BIDS, ASKS)),
    );
    assert!(matches!(out[..], [Event::BookUpdated { seq: None, .. }]));
    // Delete the best ask, change a bid: the checksum is of the book after the update.
    let after_bids = [("113.36", "1.75"), ("113.35", "2")];
    let after_asks = [("113.43", "2.01")];
    let update = books(
        "DASHUSDT",
        "update",
        &[("113.36", "1.75")],
        &[("113.42", "0")],
        checksum(&after_bids, &after_asks),
    );
    assert!(matches!(
        feed(&mut s, &update)[..],
        [Event::BookUpdated { .. }]
    ));
    let c = s.symbols().sync(0).unwrap().counters;
    assert_eq!((c.checksums_checked, c.checksum_mismatches), (2, 0));
    let best = s.symbols().sync(0).unwrap().book.best_ask().unwrap();
    assert_eq!(best.price.to_string(), "113.43");
}

#[test]
fn a_mismatch_resubscribes_only_that_symbol() {
    let mut s = session();
    feed(
        &mut s,
        &books("DASHUSDT", "snapshot", BIDS, ASKS, checksum(BIDS, ASKS)),
    );
    feed(
        &mut s,
        &books("UNIUSDT", "snapshot", BIDS, ASKS, checksum(BIDS, ASKS)),
    );
    let out = feed(
        &mut s,
        &books("DASHUSDT", "update", &[("113.30", "1")], &[], 12345),
    );
    assert!(!out.iter().any(|e| matches!(e, Event::BookUpdated { .. })));
    assert!(out.contains(&Event::NeedResubscribe { symbol: 0 }));
    assert!(out.iter().any(|e| matches!(
        e,
        Event::SyncLost {
            symbol: 0,
            reason: LossReason::Checksum {
                expected: 12345,
                ..
            }
        }
    )));
    assert_eq!(
        s.symbols().sync(0).unwrap().state(),
        SyncState::AwaitingSnapshot
    );
    assert_eq!(s.symbols().sync(1).unwrap().state(), SyncState::Live);
    // Updates wait for the new snapshot, which brings the book back.
    assert!(feed(&mut s, &books("DASHUSDT", "update", BIDS, ASKS, 0)).is_empty());
    let out = feed(
        &mut s,
        &books("DASHUSDT", "snapshot", BIDS, ASKS, checksum(BIDS, ASKS)),
    );
    assert!(out.contains(&Event::Resynced {
        symbol: 0,
        seq: None
    }));
}

#[test]
fn trades_and_candles_history_then_live() {
    let mut s = session();
    let history = r#"{"action":"snapshot","arg":{"instType":"mc","channel":"trade","instId":"DASHUSDT"},"data":[["1649290076980","113.37","0.49","sell"],["1649290074399","113.4","0.94","buy"]]}"#;
    let out = feed(&mut s, history);
    assert_eq!(out.len(), 2);
    assert!(out
        .iter()
        .all(|e| matches!(e, Event::Trade(t) if t.is_snapshot)));
    let live = r#"{"action":"update","arg":{"instType":"mc","channel":"trade","instId":"UNIUSDT"},"data":[["1649290078916","9.977","1","sell"]]}"#;
    let [Event::Trade(t)] = &feed(&mut s, live)[..] else {
        panic!()
    };
    assert_eq!(
        (t.price.to_string(), t.side, t.is_snapshot, t.exchange_ts_ns),
        (
            "9.977".into(),
            Some(TradeSide::Sell),
            false,
            1_649_290_078_916_000_000
        )
    );
    let candle = r#"{"action":"update","arg":{"instType":"sp","channel":"candle1H","instId":"HOTUSDT"},"data":[["1649289600000","0.00562","0.005623","0.005613","0.005613","8587.44"]]}"#;
    let [Event::Candle(c)] = &feed(&mut s, candle)[..] else {
        panic!()
    };
    assert_eq!(c.interval, "1h");
    assert_eq!(c.close_ts_ns - c.open_ts_ns, 3_600_000_000_000);
    assert_eq!(c.volume.to_string(), "8587.44");
}

#[test]
fn acks_pongs_tickers_and_errors() {
    let mut s = session();
    assert!(feed(&mut s, "pong").is_empty());
    let ack =
        r#"{"event":"subscribe","arg":{"instType":"sp","channel":"books","instId":"CULTUSDT"}}"#;
    assert!(feed(&mut s, ack).is_empty());
    let ticker = r#"{"action":"snapshot","arg":{"instType":"sp","channel":"ticker","instId":"CULTUSDT"},"data":[{"instId":"CULTUSDT","bestBid":"0.000036","bestAsk":"0.000036"}]}"#;
    assert!(feed(&mut s, ticker).is_empty());
    assert_eq!(s.stats().ignored, 3);
    let mut out = Vec::new();
    let error = r#"{"event":"error","code":30001,"msg":"instType:sp,channel:books,instId:NOPE doesn't exist"}"#;
    let err = s.receive(error.as_bytes(), 1, &mut out).unwrap_err();
    assert_eq!(
        err.error,
        FrameError::VenueError(
            "code 30001: instType:sp,channel:books,instId:NOPE doesn't exist".into()
        )
    );
}

#[test]
fn a_bad_book_frame_resyncs_its_symbol_and_never_panics() {
    let mut s = session();
    feed(
        &mut s,
        &books("DASHUSDT", "snapshot", BIDS, ASKS, checksum(BIDS, ASKS)),
    );
    let mut out = Vec::new();
    let bad = books("DASHUSDT", "update", &[("113.3x", "1")], &[], 0);
    let err = s.receive(bad.as_bytes(), 1, &mut out).unwrap_err();
    assert!(matches!(
        err.error,
        FrameError::BadNumber { field: "price", .. }
    ));
    assert!(out.contains(&Event::NeedResubscribe { symbol: 0 }));
    for frame in [
        "",
        "{",
        "[]",
        r#"{"action":"jump","arg":{"channel":"books","instId":"X"},"data":[]}"#,
    ] {
        let _ = s.receive(frame.as_bytes(), 1, &mut out);
    }
}

#[test]
fn unsubscribed_instruments_are_dropped() {
    let options = SessionOptions {
        symbols: Some(vec!["btcusdt".into()]),
        ..SessionOptions::default()
    };
    let mut s = BitgetSession::new(options);
    assert!(feed(&mut s, &books("DASHUSDT", "snapshot", BIDS, ASKS, 0)).is_empty());
    assert_eq!(s.stats().unsubscribed, 1);
}
