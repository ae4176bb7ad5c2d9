//! Bitget books proven on a real capture (ws v1: spot on one connection, USDT perpetuals on the
//! other): every `books` message's CRC32 of the top 25 levels matches the book, and a mismatch
//! costs only its own symbol a resubscribe.

mod common;

use common::Record;
use lobfeed_core::{new_session, Event, Session, SessionOptions, SyncState};
use serde_json::Value;

const TAPE: &str = "bitget-books-checksum-10sym-2022.jsonl.gz";

fn read_tape() -> Vec<Record> {
    common::read_tape(&format!("../tapes-more/{TAPE}"))
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Proof {
    updates: u64,
    checksums_checked: u64,
    checksum_mismatches: u64,
    crossed: u64,
    errors: u64,
    trades: u64,
    history_trades: u64,
    candles: u64,
    history_candles: u64,
    resubscribes: Vec<String>,
    live: usize,
    symbols: usize,
}

/// Each connection's frames through its own session, as a client keeps one per connection.
fn replay(tape: &[Record], damage: impl Fn(&str, &str) -> Option<String>) -> Proof {
    let mut proof = Proof::default();
    let mut conns: Vec<&str> = tape.iter().filter_map(|r| r.conn.as_deref()).collect();
    conns.dedup();
    conns.sort();
    conns.dedup();
    for conn in conns {
        let mut session = new_session("bitget", SessionOptions::default()).unwrap();
        let mut out = Vec::new();
        for r in tape
            .iter()
            .filter(|r| r.kind == "recv" && r.conn.as_deref() == Some(conn))
        {
            out.clear();
            let data = r.data.as_deref().unwrap_or("");
            let data = damage(conn, data).unwrap_or_else(|| data.to_owned());
            if let Err(e) = session.receive(data.as_bytes(), r.ts_ns, &mut out) {
                eprintln!("{conn}: {e}");
                proof.errors += 1;
            }
            for ev in &out {
                match ev {
                    Event::BookUpdated { symbol, .. } => {
                        proof.updates += 1;
                        if session.symbols().sync(*symbol).unwrap().book.is_crossed() {
                            proof.crossed += 1;
                        }
                    }
                    Event::NeedResubscribe { symbol } => proof
                        .resubscribes
                        .push(session.symbols().name(*symbol).to_owned()),
                    Event::Trade(t) => {
                        proof.trades += 1;
                        proof.history_trades += u64::from(t.is_snapshot);
                    }
                    Event::Candle(c) => {
                        proof.candles += 1;
                        proof.history_candles += u64::from(c.is_snapshot);
                    }
                    _ => {}
                }
            }
        }
        add_counters(&mut proof, session.as_ref());
    }
    proof
}

fn add_counters(proof: &mut Proof, session: &dyn Session) {
    let symbols = session.symbols();
    proof.symbols += symbols.len();
    for id in 0..symbols.len() as u32 {
        let sync = symbols.sync(id).unwrap();
        proof.checksums_checked += sync.counters.checksums_checked;
        proof.checksum_mismatches += sync.counters.checksum_mismatches;
        if sync.state() == SyncState::Live {
            proof.live += 1;
        }
    }
}

/// Rows of `channel` frames with `action`, read from the frames themselves.
fn rows(tape: &[Record], channel: &str, action: &str) -> (u64, u64) {
    let (mut frames, mut rows) = (0, 0);
    for r in tape.iter().filter(|r| r.kind == "recv") {
        let Ok(frame) = serde_json::from_str::<Value>(r.data.as_deref().unwrap_or("")) else {
            continue;
        };
        if frame["arg"]["channel"] == channel && frame["action"] == action {
            frames += 1;
            rows += frame["data"].as_array().map_or(0, |d| d.len() as u64);
        }
    }
    (frames, rows)
}

#[test]
fn every_checksum_matches() {
    let tape = read_tape();
    assert_eq!(tape[0].venue.as_deref(), Some("bitget"));
    let proof = replay(&tape, |_, _| None);
    eprintln!("{TAPE}: {proof:?}");
    let (snapshots, _) = rows(&tape, "books", "snapshot");
    let (updates, _) = rows(&tape, "books", "update");
    assert_eq!((snapshots, updates), (10, 627));
    assert_eq!(
        (proof.checksums_checked, proof.checksum_mismatches),
        (637, 0)
    );
    assert_eq!(proof.updates, 637);
    assert_eq!((proof.symbols, proof.live), (10, 10));
    assert_eq!((proof.crossed, proof.errors), (0, 0));
    assert!(proof.resubscribes.is_empty());
    // Trades and candles: what the frames hold, the subscribe-time snapshot marked as history.
    let (_, history_trades) = rows(&tape, "trade", "snapshot");
    let (_, live_trades) = rows(&tape, "trade", "update");
    assert_eq!(
        (proof.history_trades, proof.trades),
        (history_trades, history_trades + live_trades)
    );
    assert_eq!(live_trades, 55);
    let (_, history_candles) = rows(&tape, "candle1m", "snapshot");
    let (_, live_candles) = rows(&tape, "candle1m", "update");
    assert_eq!(
        (proof.history_candles, proof.candles),
        (history_candles, history_candles + live_candles)
    );
    assert_eq!(live_candles, 60);
}

/// One update of one perpetual with its checksum changed: that symbol alone drops its book and
/// asks to be resubscribed; every other book goes on matching its checksums.
#[test]
fn a_mismatch_resubscribes_only_that_symbol() {
    let tape = read_tape();
    let target = r#""channel":"books","instId":"UNIUSDT"},"data":[{"#;
    let seen = std::cell::Cell::new(0);
    let proof = replay(&tape, |conn, data| {
        if conn != "c2" || !data.contains(target) || !data.starts_with(r#"{"action":"update""#) {
            return None;
        }
        seen.set(seen.get() + 1);
        if seen.get() != 5 {
            return None;
        }
        let mut frame: Value = serde_json::from_str(data).unwrap();
        let sum = frame["data"][0]["checksum"].as_i64().unwrap();
        frame["data"][0]["checksum"] = Value::from(sum ^ 1);
        Some(frame.to_string())
    });
    eprintln!("{proof:?}");
    assert_eq!(proof.resubscribes, ["UNIUSDT"]);
    assert_eq!(proof.checksum_mismatches, 1);
    // UNIUSDT's later updates wait for a snapshot that this tape never sends again.
    assert_eq!(proof.live, 9);
    // Every message was checked but UNIUSDT's updates after the damaged one (dropped unread).
    let uni_updates = tape
        .iter()
        .filter(|r| r.conn.as_deref() == Some("c2"))
        .filter_map(|r| r.data.as_deref())
        .filter(|d| d.contains(target) && d.starts_with(r#"{"action":"update""#))
        .count() as u64;
    assert_eq!(proof.checksums_checked, 637 - (uni_updates - 5));
    assert_eq!(proof.checksums_checked, 547);
    assert_eq!((proof.crossed, proof.errors), (0, 0));
}
