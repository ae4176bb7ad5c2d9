//! Upbit `SIMPLE` orderbooks replayed from a real capture of binary frames of JSON: every
//! message replaces the book, the venue's `tas`/`tbs` totals equal the book's summed sides on
//! every message (counted through the checksum counters), no book is crossed, and the trades
//! are those the frames hold.

#[path = "common/binary_tapes.rs"]
mod binary_tapes;

use std::collections::HashMap;

use binary_tapes::read_more_tape;
use lobfeed_core::{new_session, Decimal, Event, Session, SessionOptions, Side};
use serde_json::value::RawValue;

const TAPE: &str = "upbit-orderbook-10sym-2021.jsonl.gz";

#[derive(Debug, Default, PartialEq, Eq)]
struct Proof {
    frames: u64,
    binary_frames: u64,
    errors: u64,
    book_updates: u64,
    crossed: u64,
    totals_checked: u64,
    totals_mismatched: u64,
    /// Books whose summed sides equal the message's `tas`/`tbs`, summed here, not by the session.
    totals_agreeing_here: u64,
    trades: u64,
    buys: u64,
    symbols: u64,
}

#[derive(serde::Deserialize)]
struct Totals<'a> {
    #[serde(borrow)]
    tas: &'a RawValue,
    #[serde(borrow)]
    tbs: &'a RawValue,
}

fn exact(raw: &RawValue) -> Decimal {
    Decimal::parse(raw.get()).unwrap()
}

/// Sum of a side as an integer count of 10^-18 (every size here has at most 18 decimals).
fn atto(d: Decimal) -> i128 {
    d.mantissa() as i128 * 10i128.pow(18 - d.scale() as u32)
}

#[test]
fn every_book_sums_to_the_venues_totals_and_is_never_crossed() {
    let tape = read_more_tape(TAPE);
    let mut sessions: HashMap<&str, Box<dyn Session>> = HashMap::new();
    let mut proof = Proof::default();
    let mut out = Vec::new();
    let (mut books_in_frames, mut trades_in_frames) = (0, 0);
    for r in tape.iter().filter(|r| r.kind == "recv") {
        if r.binary {
            proof.binary_frames += 1;
        }
        let text = std::str::from_utf8(&r.payload).unwrap();
        if text.contains("\"ty\":\"orderbook\"") {
            books_in_frames += 1;
        } else if text.contains("\"ty\":\"trade\"") {
            trades_in_frames += 1;
        }
        let session = sessions
            .entry(&r.conn)
            .or_insert_with(|| new_session("upbit", SessionOptions::default()).unwrap());
        out.clear();
        if let Err(e) = session.receive(&r.payload, r.ts_ns, &mut out) {
            eprintln!("frame error: {e}");
            proof.errors += 1;
        }
        for ev in &out {
            match ev {
                Event::BookUpdated { symbol, .. } => {
                    proof.book_updates += 1;
                    let book = &session.symbols().sync(*symbol).unwrap().book;
                    if book.is_crossed() {
                        proof.crossed += 1;
                    }
                    let totals: Totals = serde_json::from_slice(&r.payload).unwrap();
                    let sum = |side| book.levels(side).map(|l| atto(l.qty)).sum::<i128>();
                    if sum(Side::Ask) == atto(exact(totals.tas))
                        && sum(Side::Bid) == atto(exact(totals.tbs))
                    {
                        proof.totals_agreeing_here += 1;
                    }
                }
                Event::Trade(t) => {
                    proof.trades += 1;
                    if t.side == Some(lobfeed_core::TradeSide::Buy) {
                        proof.buys += 1;
                    }
                    assert!(!t.price.is_zero() && !t.size.is_zero(), "{t:?}");
                }
                _ => {}
            }
        }
    }
    for session in sessions.values() {
        proof.frames += session.stats().frames;
        let symbols = session.symbols();
        proof.symbols += symbols.len() as u64;
        for id in 0..symbols.len() as u32 {
            let counters = symbols.sync(id).unwrap().counters;
            proof.totals_checked += counters.checksums_checked;
            proof.totals_mismatched += counters.checksum_mismatches;
            proof.crossed += counters.crossed;
        }
    }
    assert_eq!((books_in_frames, trades_in_frames), (145, 304));
    let buys = proof.buys;
    assert_eq!(
        proof,
        Proof {
            frames: 449,
            binary_frames: 449,
            errors: 0,
            book_updates: 145,
            crossed: 0,
            totals_checked: 145,
            totals_mismatched: 0,
            totals_agreeing_here: 145,
            trades: 304,
            buys,
            // Ten subscribed; five of them traded or quoted while recorded.
            symbols: 5,
        }
    );
    assert!(
        buys > 0 && buys < 304,
        "both taker sides occur: {buys} buys"
    );
}

#[test]
fn a_total_that_disagrees_drops_the_book() {
    let tape = read_more_tape(TAPE);
    let book = tape
        .iter()
        .find(|r| r.kind == "recv" && r.payload.starts_with(b"{\"ty\":\"orderbook\""))
        .unwrap();
    let text = std::str::from_utf8(&book.payload).unwrap();
    let at = text.find("\"tas\":").unwrap() + 6;
    // One more digit in front of the total: the book no longer sums to it.
    let damaged = format!("{}9{}", &text[..at], &text[at..]);
    let mut session = new_session("upbit", SessionOptions::default()).unwrap();
    let mut out = Vec::new();
    session.receive(damaged.as_bytes(), 0, &mut out).unwrap();
    assert!(
        out.iter()
            .any(|e| matches!(e, Event::ChecksumMismatch { .. })),
        "{out:?}"
    );
    assert!(out
        .iter()
        .any(|e| matches!(e, Event::NeedResubscribe { .. })));
    assert!(!out.iter().any(|e| matches!(e, Event::BookUpdated { .. })));
    out.clear();
    session.receive(text.as_bytes(), 1, &mut out).unwrap();
    assert!(out.iter().any(|e| matches!(e, Event::Resynced { .. })));
}
