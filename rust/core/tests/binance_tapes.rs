//! Binance books proven against the exchange's own bookTicker on every real tape.

mod common;

use std::collections::HashMap;

use common::{query_symbol, read_tape};
use lobfeed_core::{new_session, Event, SessionOptions, TradeSide};

#[derive(Debug, Default)]
struct Proof {
    updates: u64,
    quotes_checked: u64,
    quotes_agreed: u64,
    crossed: u64,
    gaps: u64,
    errors: u64,
}

type Top = (String, String, String, String);

fn replay(tape: &[common::Record], move_snapshots_by: usize) -> Proof {
    let venue = tape[0].venue.clone().expect("header names the venue");
    let mut session = new_session(&venue, SessionOptions::default()).unwrap();
    let mut proof = Proof::default();
    let mut book_tops: HashMap<(String, u64), Top> = HashMap::new();
    let mut quotes: HashMap<(String, u64), Top> = HashMap::new();
    let mut out = Vec::new();

    // Optionally deliver each REST snapshot later than recorded, to exercise buffering.
    let mut records: Vec<&common::Record> = tape[1..].iter().collect();
    if move_snapshots_by > 0 {
        let mut moved = Vec::with_capacity(records.len());
        let mut pending: Vec<(usize, &common::Record)> = Vec::new();
        for r in records {
            if r.kind == "http" {
                pending.push((moved.len() + move_snapshots_by, r));
                continue;
            }
            moved.push(r);
            while let Some(pos) = pending.iter().position(|(at, _)| *at <= moved.len()) {
                moved.push(pending.remove(pos).1);
            }
        }
        moved.extend(pending.into_iter().map(|(_, r)| r));
        records = moved;
    }

    for r in records {
        out.clear();
        let data = r.data.as_deref().unwrap_or("");
        let result = match r.kind.as_str() {
            "recv" => session.receive(data.as_bytes(), r.ts_ns, &mut out),
            "http" => {
                let symbol = query_symbol(r.url.as_deref().unwrap()).unwrap();
                session.receive_snapshot(&symbol, data.as_bytes(), r.ts_ns, &mut out)
            }
            _ => Ok(()),
        };
        if result.is_err() {
            proof.errors += 1;
        }
        for ev in &out {
            match ev {
                Event::BookUpdated { symbol, seq, .. } => {
                    proof.updates += 1;
                    let sync = session.symbols().sync(*symbol).unwrap();
                    if sync.book.is_crossed() {
                        proof.crossed += 1;
                    }
                    if let (Some(seq), Some(b), Some(a)) =
                        (seq, sync.book.best_bid(), sync.book.best_ask())
                    {
                        let name = session.symbols().name(*symbol).to_owned();
                        book_tops.insert(
                            (name, *seq),
                            (
                                b.price.to_string(),
                                b.qty.to_string(),
                                a.price.to_string(),
                                a.qty.to_string(),
                            ),
                        );
                    }
                }
                Event::Quote(q) => {
                    let name = session.symbols().name(q.symbol).to_owned();
                    quotes.insert(
                        (name, q.seq.unwrap()),
                        (
                            q.bid_price.to_string(),
                            q.bid_size.to_string(),
                            q.ask_price.to_string(),
                            q.ask_size.to_string(),
                        ),
                    );
                }
                Event::GapDetected { .. } => proof.gaps += 1,
                _ => {}
            }
        }
    }
    for (key, quote) in &quotes {
        if let Some(top) = book_tops.get(key) {
            proof.quotes_checked += 1;
            if top == quote {
                proof.quotes_agreed += 1;
            } else {
                eprintln!("{key:?}: book {top:?} vs ticker {quote:?}");
            }
        }
    }
    proof
}

fn assert_proven(name: &str, move_snapshots_by: usize) {
    let tape = read_tape(name);
    let proof = replay(&tape, move_snapshots_by);
    eprintln!("{name} (snapshot moved by {move_snapshots_by}): {proof:?}");
    assert!(proof.updates > 0, "{name}: no book updates");
    assert!(
        proof.quotes_checked > 0,
        "{name}: no bookTicker to check against"
    );
    assert_eq!(proof.quotes_agreed, proof.quotes_checked, "{name}");
    assert_eq!(proof.crossed, 0, "{name}: crossed books");
    assert_eq!(proof.gaps, 0, "{name}: gaps");
    assert_eq!(proof.errors, 0, "{name}: frame errors");
}

#[test]
fn binance_spot_2021() {
    assert_proven("binance-spot-4sym-2021.jsonl.gz", 0);
}

#[test]
fn binance_usdm_2021() {
    assert_proven("binance-usdm-4sym-2021.jsonl.gz", 0);
}

#[test]
fn binance_coinm_2021() {
    assert_proven("binance-coinm-10sym-2021.jsonl.gz", 0);
}

#[test]
fn binance_spot_ethusdt_2024() {
    assert_proven("binance-ethusdt-20240808.jsonl.gz", 0);
}

#[test]
fn binance_usdm_ethusdt_2024() {
    assert_proven("binance-usdm-ethusdt-20240808.jsonl.gz", 0);
}

#[test]
fn binance_coinm_ethusd_perp_2024() {
    assert_proven("binance-coinm-ethusd_perp-20240808.jsonl.gz", 0);
}

/// Real recordings show the bridging event arriving before the snapshot: deliver each snapshot
/// 25 frames late, so the machine must buffer and bridge.
#[test]
fn snapshot_after_bridging_events() {
    for name in [
        "binance-spot-4sym-2021.jsonl.gz",
        "binance-usdm-4sym-2021.jsonl.gz",
        "binance-ethusdt-20240808.jsonl.gz",
        "binance-coinm-ethusd_perp-20240808.jsonl.gz",
    ] {
        assert_proven(name, 25);
    }
}

/// The 2021 tapes were recorded with `aggTrade` streams: every aggTrade frame is one trade
/// whose id is the aggregate id `a`, whose price and size are `p` and `q` to the digit, and
/// whose side follows `m`. The frames are found and read here without the session.
#[test]
fn agg_trades_2021() {
    for (name, frames) in [
        ("binance-spot-4sym-2021.jsonl.gz", 2),
        ("binance-usdm-4sym-2021.jsonl.gz", 91),
        ("binance-coinm-10sym-2021.jsonl.gz", 51),
    ] {
        let tape = read_tape(name);
        let expected: Vec<(String, String, String, String, Option<TradeSide>)> = tape
            .iter()
            .filter(|r| r.kind == "recv")
            .filter_map(|r| {
                let frame: serde_json::Value = serde_json::from_str(r.data.as_deref()?).ok()?;
                let event = frame.get("data").unwrap_or(&frame);
                (event["e"] == "aggTrade").then(|| {
                    let side = match event["m"].as_bool() {
                        Some(true) => Some(TradeSide::Sell),
                        Some(false) => Some(TradeSide::Buy),
                        None => None,
                    };
                    (
                        event["s"].as_str().unwrap().to_owned(),
                        event["a"].as_u64().unwrap().to_string(),
                        event["p"].as_str().unwrap().to_owned(),
                        event["q"].as_str().unwrap().to_owned(),
                        side,
                    )
                })
            })
            .collect();
        assert_eq!(
            expected.len(),
            frames,
            "{name}: aggTrade frames on the tape"
        );
        let lines = tape
            .iter()
            .filter(|r| r.kind == "recv")
            .filter(|r| r.data.as_deref().unwrap().contains(r#""e":"aggTrade""#))
            .count();
        assert_eq!(lines, frames, "{name}: aggTrade lines on the tape");

        let venue = tape[0].venue.clone().unwrap();
        let mut session = new_session(&venue, SessionOptions::default()).unwrap();
        let mut got = Vec::new();
        let mut out = Vec::new();
        for r in tape.iter().filter(|r| r.kind == "recv") {
            out.clear();
            session
                .receive(r.data.as_deref().unwrap().as_bytes(), r.ts_ns, &mut out)
                .unwrap();
            for ev in &out {
                if let Event::Trade(t) = ev {
                    assert!(!t.is_snapshot, "{name}: a live trade");
                    got.push((
                        session.symbols().name(t.symbol).to_owned(),
                        t.trade_id.clone(),
                        t.price.to_string(),
                        t.size.to_string(),
                        t.side,
                    ));
                }
            }
        }
        assert_eq!(got, expected, "{name}");
    }
}
