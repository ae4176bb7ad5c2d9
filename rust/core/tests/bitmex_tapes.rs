//! BitMEX books proven on the real tape: every `quote` row is one of the book's top-of-book
//! states, in order; no update or delete names an id the book does not hold; never crossed.

mod common;

use std::collections::HashMap;

use common::read_tape;
use lobfeed_core::{new_session, Decimal, Event, SessionOptions};

/// Tapes of the new venues live beside `tapes/`.
const TAPE: &str = "../tapes-more/bitmex-l2-10sym-2021.jsonl.gz";

type Top = (Option<(Decimal, Decimal)>, Option<(Decimal, Decimal)>);

#[derive(Debug, Default)]
struct Proof {
    book_updates: u64,
    crossed: u64,
    resyncs: u64,
    errors: u64,
    trades: u64,
    history_trades: u64,
    symbols: usize,
    quotes_found: u64,
    quotes_missing: u64,
}

#[test]
fn bitmex_l2_10sym_2021() {
    let tape = read_tape(TAPE);
    assert_eq!(tape[0].venue.as_deref(), Some("bitmex"));
    let mut session = new_session("bitmex", SessionOptions::default()).unwrap();
    let mut proof = Proof::default();
    let mut tops: HashMap<String, Vec<Top>> = HashMap::new();
    let mut quotes: Vec<(String, Top)> = Vec::new();
    // Rows counted from the frames themselves, not from the session.
    let (mut quote_rows, mut trade_rows) = (0usize, 0usize);
    let mut out = Vec::new();
    for r in tape.iter().filter(|r| r.kind == "recv") {
        let data = r.data.as_deref().unwrap();
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(data) {
            let rows = v["data"].as_array().map_or(0, Vec::len);
            match (v["table"].as_str(), v["action"].as_str()) {
                (Some("quote"), Some("insert")) => quote_rows += rows,
                (Some("trade"), _) => trade_rows += rows,
                _ => {}
            }
        }
        out.clear();
        if let Err(e) = session.receive(data.as_bytes(), r.ts_ns, &mut out) {
            eprintln!("frame error: {e}");
            proof.errors += 1;
        }
        for ev in &out {
            match ev {
                Event::BookUpdated { symbol, .. } => {
                    proof.book_updates += 1;
                    let book = &session.symbols().sync(*symbol).unwrap().book;
                    proof.crossed += u64::from(book.is_crossed());
                    let top = (
                        book.best_bid().map(|l| (l.price, l.qty)),
                        book.best_ask().map(|l| (l.price, l.qty)),
                    );
                    let name = session.symbols().name(*symbol).to_owned();
                    tops.entry(name).or_default().push(top);
                }
                Event::Quote(q) => {
                    let side = |p: Decimal, s: Decimal| (!s.is_zero()).then_some((p, s));
                    let top = (side(q.bid_price, q.bid_size), side(q.ask_price, q.ask_size));
                    quotes.push((session.symbols().name(q.symbol).to_owned(), top));
                }
                Event::Trade(t) if t.is_snapshot => proof.history_trades += 1,
                Event::Trade(_) => proof.trades += 1,
                _ => {}
            }
        }
    }
    // Each quote is found among the tops after the one the previous quote matched.
    let mut found_at: HashMap<&str, usize> = HashMap::new();
    for (name, quote) in &quotes {
        let history = tops.get(name).map_or(&[][..], Vec::as_slice);
        let from = found_at.get(name.as_str()).copied().unwrap_or(0);
        match (from..history.len()).find(|&i| history[i] == *quote) {
            Some(i) => {
                proof.quotes_found += 1;
                found_at.insert(name, i);
            }
            None => {
                eprintln!("{name}: quote {quote:?} not found after state {from}");
                proof.quotes_missing += 1;
            }
        }
    }
    proof.symbols = session.symbols().len();
    for id in 0..session.symbols().len() {
        proof.resyncs += session.symbols().sync(id as u32).unwrap().counters.resyncs;
    }
    eprintln!("{TAPE}: {proof:?}");
    assert_eq!(quote_rows, 426);
    assert_eq!((proof.quotes_found, proof.quotes_missing), (426, 0));
    assert_eq!((proof.errors, proof.resyncs, proof.crossed), (0, 0, 0));
    assert_eq!(proof.book_updates, BOOK_UPDATES);
    assert_eq!(proof.symbols, 10);
    assert_eq!(trade_rows, 27);
    assert_eq!((proof.history_trades, proof.trades), (10, 17));
}

const BOOK_UPDATES: u64 = 1979;

/// Truncated and bit-flipped real frames never panic.
#[test]
fn bitmex_mutated_frames_never_panic() {
    let tape = read_tape(TAPE);
    let mut session = new_session("bitmex", SessionOptions::default()).unwrap();
    let mut out = Vec::new();
    let (mut tried, mut failed) = (0u64, 0u64);
    for (i, r) in tape.iter().filter(|r| r.kind == "recv").enumerate() {
        let frame = r.data.as_deref().unwrap().as_bytes();
        out.clear();
        let _ = session.receive(frame, r.ts_ns, &mut out);
        if i % 3 != 0 {
            continue;
        }
        for bad in common::mutations(frame, i as u64) {
            out.clear();
            tried += 1;
            failed += u64::from(session.receive(&bad, r.ts_ns, &mut out).is_err());
        }
    }
    eprintln!("bitmex mutations: {tried} tried, {failed} rejected");
    assert!(tried >= 300 && failed > 0);
}
