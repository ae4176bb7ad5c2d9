//! Deribit books proven on the real tape: the `change_id` chain never breaks, and every ticker's
//! best bid/ask is the book's at the ticker's `timestamp` (the book after the last book message
//! whose own `timestamp` is not later; the ticker often arrives just before that message).

mod common;

use std::collections::HashMap;

use common::read_tape;
use lobfeed_core::{new_session, Decimal, Event, SessionOptions};

/// Tapes of the new venues live beside `tapes/`.
const TAPE: &str = "../tapes-more/deribit-options-10inst-2021.jsonl.gz";

type Top = (Option<(Decimal, Decimal)>, Option<(Decimal, Decimal)>);

#[derive(Debug, Default)]
struct Proof {
    book_updates: u64,
    crossed: u64,
    gaps: u64,
    resyncs: u64,
    errors: u64,
    trades: u64,
    symbols: usize,
    ignored: u64,
    tickers_checked: u64,
    tickers_agreed: u64,
}

#[test]
fn deribit_options_10inst_2021() {
    let tape = read_tape(TAPE);
    assert_eq!(tape[0].venue.as_deref(), Some("deribit"));
    let mut session = new_session("deribit", SessionOptions::default()).unwrap();
    let mut proof = Proof::default();
    // Per instrument: each book state with its exchange time, in stream order.
    let mut books: HashMap<String, Vec<(u64, Top)>> = HashMap::new();
    let mut tickers: Vec<(String, u64, Top)> = Vec::new();
    let (mut ticker_frames, mut trade_frames) = (0u64, 0u64);
    let mut out = Vec::new();
    for r in tape.iter().filter(|r| r.kind == "recv") {
        let data = r.data.as_deref().unwrap();
        // Counted from the frames themselves, not from the session.
        ticker_frames += u64::from(data.contains(r#""channel":"ticker."#));
        trade_frames += u64::from(data.contains(r#""channel":"trades."#));
        out.clear();
        if let Err(e) = session.receive(data.as_bytes(), r.ts_ns, &mut out) {
            eprintln!("frame error: {e}");
            proof.errors += 1;
        }
        for ev in &out {
            match ev {
                Event::BookUpdated {
                    symbol,
                    exchange_ts_ns,
                    ..
                } => {
                    proof.book_updates += 1;
                    let book = &session.symbols().sync(*symbol).unwrap().book;
                    proof.crossed += u64::from(book.is_crossed());
                    let top = (
                        book.best_bid().map(|l| (l.price, l.qty)),
                        book.best_ask().map(|l| (l.price, l.qty)),
                    );
                    let name = session.symbols().name(*symbol).to_owned();
                    books.entry(name).or_default().push((*exchange_ts_ns, top));
                }
                Event::GapDetected { .. } => proof.gaps += 1,
                Event::Quote(q) => {
                    assert_eq!(q.seq, None);
                    // Deribit sends an empty side as 0 x 0.
                    let side = |p: Decimal, s: Decimal| (!s.is_zero()).then_some((p, s));
                    let top = (side(q.bid_price, q.bid_size), side(q.ask_price, q.ask_size));
                    let name = session.symbols().name(q.symbol).to_owned();
                    tickers.push((name, q.exchange_ts_ns, top));
                }
                Event::Trade(_) => proof.trades += 1,
                _ => {}
            }
        }
    }
    for (name, at, top) in &tickers {
        let state = books
            .get(name)
            .and_then(|states| states.iter().rev().find(|(ts, _)| ts <= at));
        if let Some((_, book_top)) = state {
            proof.tickers_checked += 1;
            if book_top == top {
                proof.tickers_agreed += 1;
            } else {
                eprintln!("{name} at {at}: book {book_top:?} ticker {top:?}");
            }
        }
    }
    proof.symbols = session.symbols().len();
    proof.ignored = session.stats().ignored;
    for id in 0..session.symbols().len() {
        proof.resyncs += session.symbols().sync(id as u32).unwrap().counters.resyncs;
    }
    eprintln!("{TAPE}: {proof:?}");
    assert_eq!(ticker_frames, 89);
    assert_eq!((proof.tickers_checked, proof.tickers_agreed), (89, 89));
    // 10 snapshots and 36 changes, every change chained to the one before.
    assert_eq!(proof.book_updates, 46);
    assert_eq!((proof.gaps, proof.resyncs, proof.errors), (0, 0, 0));
    assert_eq!(proof.crossed, 0);
    assert_eq!(proof.symbols, 10);
    // Trades were subscribed but none traded during the capture.
    assert_eq!((trade_frames, proof.trades), (0, 0));
    // The subscribe answer.
    assert_eq!(proof.ignored, 1);
}

/// Truncated and bit-flipped real frames never panic.
#[test]
fn deribit_mutated_frames_never_panic() {
    let tape = read_tape(TAPE);
    let mut session = new_session("deribit", SessionOptions::default()).unwrap();
    let mut out = Vec::new();
    let (mut tried, mut failed) = (0u64, 0u64);
    for (i, r) in tape.iter().filter(|r| r.kind == "recv").enumerate() {
        let frame = r.data.as_deref().unwrap().as_bytes();
        out.clear();
        let _ = session.receive(frame, r.ts_ns, &mut out);
        for bad in common::mutations(frame, i as u64) {
            out.clear();
            tried += 1;
            failed += u64::from(session.receive(&bad, r.ts_ns, &mut out).is_err());
        }
    }
    eprintln!("deribit mutations: {tried} tried, {failed} rejected");
    assert!(tried >= 300 && failed > 0);
}
