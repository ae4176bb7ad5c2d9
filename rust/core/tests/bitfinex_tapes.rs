//! Bitfinex P0 books replayed from a real capture (conf flag 65536): the connection's sequence
//! numbers are contiguous, books never cross, trades decode, and the final books are level for
//! level as large as an independent replay says.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::{mutated_frames, read_tape_with_conns, ConnRecord};
use lobfeed_core::{new_session, Event, Session, SessionOptions, Side, TradeSide};

const TAPE: &str = "bitfinex-book-p0-7sym-2021.jsonl.gz";

#[derive(Debug, Default)]
struct Proof {
    frames: u64,
    updates: u64,
    snapshots: u64,
    trades: u64,
    buys: u64,
    sells: u64,
    crossed: u64,
    gaps: u64,
    resyncs: u64,
    errors: u64,
    ignored: u64,
    /// Highest connection sequence number seen on a book update, and whether they only grew.
    last_book_seq: u64,
    seq_ordered: bool,
    levels: BTreeMap<String, (usize, usize)>,
}

fn replay(tape: &[ConnRecord]) -> Proof {
    let mut sessions: HashMap<String, Box<dyn Session>> = HashMap::new();
    let mut proof = Proof {
        seq_ordered: true,
        ..Proof::default()
    };
    let mut out = Vec::new();
    for r in &tape[1..] {
        if r.kind != "recv" {
            continue;
        }
        let conn = r.conn.clone().unwrap_or_default();
        let session = sessions
            .entry(conn)
            .or_insert_with(|| new_session("bitfinex", SessionOptions::default()).unwrap());
        out.clear();
        let data = r.data.as_deref().unwrap_or("");
        if let Err(e) = session.receive(data.as_bytes(), r.ts_ns, &mut out) {
            eprintln!("frame error: {e:?}");
            proof.errors += 1;
        }
        for ev in &out {
            match ev {
                Event::BookUpdated { symbol, seq, .. } => {
                    proof.updates += 1;
                    if session.symbols().sync(*symbol).unwrap().book.is_crossed() {
                        proof.crossed += 1;
                    }
                    let seq = seq.expect("sequenced connection");
                    if seq <= proof.last_book_seq {
                        proof.seq_ordered = false;
                    }
                    proof.last_book_seq = seq;
                }
                Event::Trade(t) => {
                    assert!(!t.price.is_zero() && !t.price.is_negative(), "{t:?}");
                    assert!(!t.size.is_zero() && !t.size.is_negative(), "{t:?}");
                    assert!(t.exchange_ts_ns > 1_600_000_000_000_000_000, "{t:?}");
                    proof.trades += 1;
                    match t.side {
                        Some(TradeSide::Buy) => proof.buys += 1,
                        Some(TradeSide::Sell) => proof.sells += 1,
                        None => {}
                    }
                }
                Event::GapDetected { .. } => proof.gaps += 1,
                Event::Resynced { .. } => proof.resyncs += 1,
                _ => {}
            }
        }
    }
    for session in sessions.values() {
        let stats = session.stats();
        proof.frames += stats.frames;
        proof.ignored += stats.ignored;
        let symbols = session.symbols();
        for (id, name) in symbols.names().iter().enumerate() {
            let sync = symbols.sync(id as u32).unwrap();
            proof.snapshots += sync.counters.snapshots;
            proof.levels.insert(
                name.clone(),
                (sync.book.len(Side::Bid), sync.book.len(Side::Ask)),
            );
        }
    }
    proof
}

#[test]
fn bitfinex_book_p0_7sym_2021() {
    let tape = read_tape_with_conns(TAPE);
    let proof = replay(&tape);
    eprintln!(
        "{TAPE}: frames={} updates={} snapshots={} trades={} (buy {} sell {}) crossed={} gaps={} errors={} ignored={} last_book_seq={}",
        proof.frames,
        proof.updates,
        proof.snapshots,
        proof.trades,
        proof.buys,
        proof.sells,
        proof.crossed,
        proof.gaps,
        proof.errors,
        proof.ignored,
        proof.last_book_seq
    );
    assert_eq!(proof.frames, 1693);
    // 7 book snapshots + 1593 single-level updates.
    assert_eq!(proof.snapshots, 7);
    assert_eq!(proof.updates, 1600);
    // The 7 trade-channel snapshots of 30 trades each (the capture has no "te").
    assert_eq!(proof.trades, 210);
    assert_eq!(proof.buys + proof.sells, 210);
    // 23 events (info, conf, 21 subscribed) + 42 heartbeats + 21 ticker frames.
    assert_eq!(proof.ignored, 86);
    // Sequence 1..=1670 without a hole across all 1670 data frames.
    assert_eq!(proof.gaps, 0, "sequence gaps");
    assert!(proof.seq_ordered);
    assert_eq!(proof.resyncs, 0);
    assert_eq!(proof.crossed, 0, "crossed books");
    assert_eq!(proof.errors, 0, "frame errors");
    let expected: BTreeMap<String, (usize, usize)> = [
        ("tTESTBTC:TESTUSD", (100, 100)),
        ("tDOGUSD", (100, 100)),
        ("tODEUSD", (100, 100)),
        ("tIOTETH", (99, 100)),
        ("tMNABTC", (51, 88)),
        ("tBFTUSD", (96, 100)),
        ("tSNGUSD", (100, 100)),
    ]
    .into_iter()
    .map(|(s, n)| (s.to_owned(), n))
    .collect();
    assert_eq!(proof.levels, expected);
}

/// Dropping one data frame from the real stream is caught by the sequence numbers.
#[test]
fn bitfinex_dropped_frame_is_a_gap() {
    let tape = read_tape_with_conns(TAPE);
    let mut session = new_session("bitfinex", SessionOptions::default()).unwrap();
    let mut out = Vec::new();
    let mut data_frames = 0;
    let mut gaps = Vec::new();
    for r in tape[1..].iter().filter(|r| r.kind == "recv") {
        let data = r.data.as_deref().unwrap();
        if data.starts_with('[') {
            data_frames += 1;
            if data_frames == 900 {
                continue;
            }
        }
        out.clear();
        session.receive(data.as_bytes(), r.ts_ns, &mut out).unwrap();
        for ev in &out {
            if let Event::GapDetected {
                expected, received, ..
            } = ev
            {
                gaps.push((*expected, *received));
            }
        }
    }
    // One GapDetected per book symbol, all for the same hole.
    assert_eq!(gaps.len(), 7);
    assert!(gaps.iter().all(|g| *g == gaps[0]));
    assert_eq!(gaps[0].1, gaps[0].0 + 1);
}

/// Damaged real frames, interleaved with the real stream: every call returns Ok or Err.
#[test]
fn bitfinex_damaged_frames_never_panic() {
    let tape = read_tape_with_conns(TAPE);
    let frames: Vec<&[u8]> = tape[1..]
        .iter()
        .filter(|r| r.kind == "recv")
        .filter_map(|r| r.data.as_deref().map(str::as_bytes))
        .collect();
    let events: Vec<&[u8]> = frames.iter().copied().filter(|f| f[0] == b'{').collect();
    let small: Vec<&[u8]> = frames.iter().copied().filter(|f| f.len() < 400).collect();
    let mut damaged = mutated_frames(&small, 300);
    damaged.extend(mutated_frames(&events, 50));
    let snapshots: Vec<&[u8]> = frames.iter().copied().filter(|f| f.len() > 1000).collect();
    damaged.extend(mutated_frames(&snapshots, 50));

    let mut session = new_session("bitfinex", SessionOptions::default()).unwrap();
    let mut out = Vec::new();
    // Subscriptions first, so damaged data frames reach the book and trade decoders.
    for f in &events {
        session.receive(f, 0, &mut out).unwrap();
    }
    let (mut ok, mut err) = (0, 0);
    for (i, bad) in damaged.iter().enumerate() {
        out.clear();
        let _ = session.receive(frames[i % frames.len()], i as u64, &mut out);
        match session.receive(bad, i as u64, &mut out) {
            Ok(()) => ok += 1,
            Err(_) => err += 1,
        }
    }
    eprintln!(
        "bitfinex: {} damaged frames: {ok} ok, {err} errors",
        damaged.len()
    );
    assert_eq!(ok + err, 400);
    assert!(err > 0);
}
