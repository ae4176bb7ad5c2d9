//! Kraken books proven against the exchange's own CRC32 checksums on the real tape (websocket
//! v1, three connections: trades, tickers, books of depth 1000).

mod common;

use std::collections::BTreeMap;

use common::{mutations, read_tape, Record};
use lobfeed_core::{new_session, Decimal, Event, Quote, Session, SessionOptions};

const TAPE: &str = "kraken-v1-book1000-10sym-2021.jsonl.gz";

#[derive(Debug, Default)]
struct Proof {
    conns: usize,
    frames: u64,
    ignored: u64,
    snapshots: u64,
    book_updates: u64,
    checksums_checked: u64,
    checksum_mismatches: u64,
    crossed: u64,
    over_depth: u64,
    gaps: u64,
    resyncs: u64,
    errors: u64,
    trades: u64,
    book_symbols: usize,
    /// `ticker` frames as `Quote` events, the first of them, and those whose bid was not
    /// below the ask.
    quotes: u64,
    first_quote: Option<(String, Quote)>,
    crossed_quotes: u64,
}

fn replay(tape: &[Record]) -> Proof {
    let venue = tape[0].venue.clone().expect("header names the venue");
    assert_eq!(venue, "kraken");
    // One session per websocket connection: channel ids are per connection.
    let mut sessions: BTreeMap<String, Box<dyn Session>> = BTreeMap::new();
    let mut proof = Proof::default();
    let mut out = Vec::new();
    for r in tape[1..].iter().filter(|r| r.kind == "recv") {
        let conn = r.conn.clone().expect("recv records name their connection");
        let session = sessions
            .entry(conn)
            .or_insert_with(|| new_session(&venue, SessionOptions::default()).unwrap());
        out.clear();
        let data = r.data.as_deref().unwrap_or("");
        if let Err(e) = session.receive(data.as_bytes(), r.ts_ns, &mut out) {
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
                    if book.len(lobfeed_core::Side::Bid) > 1000
                        || book.len(lobfeed_core::Side::Ask) > 1000
                    {
                        proof.over_depth += 1;
                    }
                }
                Event::GapDetected { .. } => proof.gaps += 1,
                Event::Quote(q) => {
                    // Kraken has no ids, and v1 tickers no time.
                    assert_eq!((q.seq, q.exchange_ts_ns), (None, 0));
                    proof.quotes += 1;
                    if q.bid_price >= q.ask_price {
                        proof.crossed_quotes += 1;
                    }
                    if proof.first_quote.is_none() {
                        let name = session.symbols().name(q.symbol).to_owned();
                        proof.first_quote = Some((name, *q));
                    }
                }
                Event::Trade(t) => {
                    assert!(t.price.mantissa() > 0 && t.size.mantissa() > 0);
                    assert!(t.side.is_some());
                    // Kraken v1 times are seconds with six decimals.
                    assert!(t.exchange_ts_ns > 1_618_000_000_000_000_000);
                    assert_eq!(t.exchange_ts_ns % 1_000, 0);
                    proof.trades += 1;
                }
                _ => {}
            }
        }
    }
    proof.conns = sessions.len();
    for session in sessions.values() {
        let stats = session.stats();
        proof.frames += stats.frames;
        proof.ignored += stats.ignored;
        for id in 0..session.symbols().len() {
            let c = session.symbols().sync(id as u32).unwrap().counters;
            proof.snapshots += c.snapshots;
            proof.checksums_checked += c.checksums_checked;
            proof.checksum_mismatches += c.checksum_mismatches;
            proof.resyncs += c.resyncs;
            if c.snapshots > 0 {
                proof.book_symbols += 1;
            }
        }
    }
    proof
}

#[test]
fn kraken_v1_book1000_10sym_2021() {
    let tape = read_tape(TAPE);
    let proof = replay(&tape);
    eprintln!("{TAPE}: {proof:?}");
    assert_eq!(proof.conns, 3);
    assert_eq!(
        proof.checksums_checked, 4_269,
        "every Kraken checksum checked"
    );
    assert_eq!(proof.checksum_mismatches, 0);
    assert_eq!(proof.snapshots, 10);
    assert_eq!(proof.book_symbols, 10);
    assert_eq!(proof.book_updates, 10 + 4_269);
    assert_eq!(proof.crossed, 0, "crossed books");
    assert_eq!(proof.over_depth, 0);
    assert_eq!(proof.gaps, 0, "gaps");
    assert_eq!(proof.resyncs, 0);
    assert_eq!(proof.errors, 0, "frame errors");
    assert_eq!(proof.trades, 10);
    // Every one of the 18 ticker frames is a quote, none crossed.
    assert_eq!((proof.quotes, proof.crossed_quotes), (18, 0));
    let (pair, quote) = proof.first_quote.expect("a quote");
    let dec = |text: &str| Decimal::parse(text).unwrap();
    // [1668,{"a":["13.253900",35,"35.72892241"],"b":["13.232900",185,"185.18432037"],..},
    //  "ticker","WAVES/EUR"]: the lot volume (third) is the size, digits kept.
    assert_eq!(pair, "WAVES/EUR");
    assert_eq!(
        (
            quote.bid_price,
            quote.bid_size,
            quote.ask_price,
            quote.ask_size
        ),
        (
            dec("13.232900"),
            dec("185.18432037"),
            dec("13.253900"),
            dec("35.72892241")
        )
    );
    assert_eq!(quote.bid_size.to_string(), "185.18432037");
    assert_eq!(quote.ts_ns, 1_618_678_132_949_649_800);
    // 92 heartbeats, 3 systemStatus; the 30 subscriptionStatus are used.
    assert_eq!(proof.ignored, 92 + 3);
}

/// Truncated and bit-flipped real frames never panic: every one is `Ok` or a typed error, and
/// the session keeps working afterwards.
#[test]
fn kraken_mutated_frames_never_panic() {
    let tape = read_tape(TAPE);
    let mut sessions: BTreeMap<String, Box<dyn Session>> = BTreeMap::new();
    let mut out = Vec::new();
    let (mut tried, mut failed) = (0u64, 0u64);
    for (i, r) in tape.iter().filter(|r| r.kind == "recv").enumerate() {
        let session = sessions
            .entry(r.conn.clone().unwrap())
            .or_insert_with(|| new_session("kraken", SessionOptions::default()).unwrap());
        let frame = r.data.as_deref().unwrap().as_bytes();
        out.clear();
        let _ = session.receive(frame, r.ts_ns, &mut out);
        // Every frame of the small connections, one in twenty of the book stream.
        if r.conn.as_deref() == Some("c3") && i % 20 != 0 {
            continue;
        }
        for bad in mutations(frame, i as u64) {
            out.clear();
            tried += 1;
            if session.receive(&bad, r.ts_ns, &mut out).is_err() {
                failed += 1;
            }
        }
    }
    eprintln!("kraken mutations: {tried} tried, {failed} rejected");
    assert!(tried >= 300, "only {tried} mutations");
    assert!(failed > 0);
}
