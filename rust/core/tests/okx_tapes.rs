//! OKX books proven against the exchange's own CRC32 checksums on the real tape.

mod common;

use std::collections::HashMap;

use common::{mutations, query_param, read_tape, Record};
use lobfeed_core::{new_session, Decimal, Event, Quote, Session, SessionOptions};

const TAPE: &str = "okx-books-3inst-2022.jsonl.gz";

#[derive(Debug, Default)]
struct Proof {
    frames: u64,
    ignored: u64,
    book_updates: u64,
    checksums_checked: u64,
    checksum_mismatches: u64,
    crossed: u64,
    gaps: u64,
    resyncs: u64,
    errors: u64,
    trades: u64,
    /// `tickers` as `Quote` events, and those whose bid was not below the ask.
    quotes: u64,
    crossed_quotes: u64,
    first_quote: Option<(String, Quote)>,
    symbols: usize,
}

fn check_events(session: &dyn Session, out: &[Event], proof: &mut Proof) {
    for ev in out {
        match ev {
            Event::BookUpdated { symbol, .. } => {
                proof.book_updates += 1;
                let sync = session.symbols().sync(*symbol).unwrap();
                if sync.book.is_crossed() {
                    proof.crossed += 1;
                }
            }
            Event::GapDetected { .. } => proof.gaps += 1,
            Event::Quote(q) => {
                assert_eq!(q.seq, None);
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
                assert!(!t.trade_id.is_empty());
                assert!(t.side.is_some());
                assert!(t.exchange_ts_ns > 1_600_000_000_000_000_000);
                proof.trades += 1;
            }
            _ => {}
        }
    }
}

fn replay(tape: &[Record]) -> Proof {
    let venue = tape[0].venue.clone().expect("header names the venue");
    assert_eq!(venue, "okx");
    // One session per websocket connection: ids and sequences are per connection.
    let mut sessions: HashMap<String, Box<dyn Session>> = HashMap::new();
    let mut proof = Proof::default();
    let mut out = Vec::new();
    for r in &tape[1..] {
        let data = r.data.as_deref().unwrap_or("");
        let targets: Vec<String> = match r.kind.as_str() {
            "recv" => vec![r.conn.clone().unwrap_or_default()],
            // A REST snapshot serves that instrument's book on every connection.
            "http" => sessions.keys().cloned().collect(),
            _ => continue,
        };
        for conn in targets {
            let session = sessions
                .entry(conn)
                .or_insert_with(|| new_session(&venue, SessionOptions::default()).unwrap());
            out.clear();
            let result = if r.kind == "recv" {
                session.receive(data.as_bytes(), r.ts_ns, &mut out)
            } else {
                let url = r.url.as_deref().unwrap_or("");
                let inst = query_param(url, "instId").expect("snapshot URL names instId");
                session.receive_snapshot(&inst, data.as_bytes(), r.ts_ns, &mut out)
            };
            if let Err(e) = result {
                eprintln!("frame error: {e}");
                proof.errors += 1;
            }
            check_events(session.as_ref(), &out, &mut proof);
        }
    }
    for session in sessions.values() {
        let stats = session.stats();
        proof.frames += stats.frames;
        proof.ignored += stats.ignored;
        proof.symbols += session.symbols().len();
        for id in 0..session.symbols().len() {
            let c = session.symbols().sync(id as u32).unwrap().counters;
            proof.checksums_checked += c.checksums_checked;
            proof.checksum_mismatches += c.checksum_mismatches;
            proof.resyncs += c.resyncs;
        }
    }
    proof
}

#[test]
fn okx_books_3inst_2022() {
    let tape = read_tape(TAPE);
    let proof = replay(&tape);
    eprintln!("{TAPE}: {proof:?}");
    assert_eq!(proof.checksums_checked, 290, "every OKX checksum checked");
    assert_eq!(proof.checksum_mismatches, 0);
    assert_eq!(proof.book_updates, 290);
    assert_eq!(proof.crossed, 0, "crossed books");
    assert_eq!(proof.gaps, 0, "gaps");
    assert_eq!(proof.resyncs, 0);
    assert_eq!(proof.errors, 0, "frame errors");
    assert_eq!(proof.trades, 74);
    assert_eq!(proof.symbols, 3);
    // Every one of the 28 tickers (one item each) is a quote, none crossed.
    assert_eq!((proof.quotes, proof.crossed_quotes), (28, 0));
    let (inst, quote) = proof.first_quote.expect("a quote");
    let dec = |text: &str| Decimal::parse(text).unwrap();
    assert_eq!(inst, "BTC-USD-220527");
    assert_eq!(
        (
            quote.bid_price,
            quote.bid_size,
            quote.ask_price,
            quote.ask_size
        ),
        (dec("30210.4"), dec("4"), dec("30220.1"), dec("3"))
    );
    assert_eq!(quote.exchange_ts_ns, 1_652_459_223_003_000_000);
    assert_eq!(quote.ts_ns, 1_652_459_225_506_608_500);
    // 18 subscribe acks.
    assert_eq!(proof.ignored, 18);
}

/// Truncated and bit-flipped real frames never panic: every one is `Ok` or a typed error, and
/// the session keeps working afterwards.
#[test]
fn okx_mutated_frames_never_panic() {
    let tape = read_tape(TAPE);
    let frames: Vec<&Record> = tape.iter().filter(|r| r.kind == "recv").collect();
    let mut session = new_session("okx", SessionOptions::default()).unwrap();
    let mut out = Vec::new();
    let (mut tried, mut failed) = (0u64, 0u64);
    for (i, r) in frames.iter().enumerate() {
        let frame = r.data.as_deref().unwrap().as_bytes();
        // Real frame first, so books exist when their mutations arrive.
        out.clear();
        let _ = session.receive(frame, r.ts_ns, &mut out);
        if i % 3 != 0 {
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
    eprintln!("okx mutations: {tried} tried, {failed} rejected");
    assert!(tried >= 300, "only {tried} mutations");
    assert!(failed > 0);
    // REST bodies too.
    for bad in mutations(br#"{"code":"0","msg":"","data":[{"asks":[["1.5","2","0","1"]],"bids":[["1.4","3","0","1"]],"ts":"1","seqId":5}]}"#, 7) {
        let _ = session.receive_snapshot("BTC-USDT", &bad, 0, &mut out);
    }
}
