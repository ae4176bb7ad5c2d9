//! Gemini v2 books replayed from a real capture: never crossed, every frame understood, trades
//! decoded (the recent ones sent on subscribe marked as history), and the final books level for
//! level as large as an independent replay says.

mod common;
#[path = "common/gemini_v1.rs"]
mod gemini_v1;

use std::collections::{BTreeMap, HashMap};

use common::{mutated_frames, read_tape_with_conns, ConnRecord};
use lobfeed_core::{new_session, Event, Session, SessionOptions, Side};
use serde_json::Value;

const TAPE: &str = "gemini-v2-l2-10sym-2021.jsonl.gz";

#[derive(Debug, Default)]
struct Proof {
    frames: u64,
    updates: u64,
    snapshots: u64,
    trades: u64,
    history_trades: u64,
    live_trades: u64,
    trades_with_side: u64,
    crossed: u64,
    gaps: u64,
    resyncs: u64,
    errors: u64,
    ignored: u64,
    /// Final (bids, asks) per symbol.
    levels: BTreeMap<String, (usize, usize)>,
}

fn replay(tape: &[ConnRecord]) -> Proof {
    let mut sessions: HashMap<String, Box<dyn Session>> = HashMap::new();
    let mut proof = Proof::default();
    let mut out = Vec::new();
    for r in &tape[1..] {
        if r.kind != "recv" {
            continue;
        }
        let conn = r.conn.clone().unwrap_or_default();
        let session = sessions
            .entry(conn)
            .or_insert_with(|| new_session("gemini", SessionOptions::default()).unwrap());
        out.clear();
        let data = r.data.as_deref().unwrap_or("");
        if let Err(e) = session.receive(data.as_bytes(), r.ts_ns, &mut out) {
            eprintln!("frame error: {e:?}");
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
                Event::Trade(t) => {
                    assert!(!t.price.is_zero() && !t.price.is_negative(), "{t:?}");
                    assert!(!t.size.is_zero() && !t.size.is_negative(), "{t:?}");
                    assert!(t.exchange_ts_ns > 1_600_000_000_000_000_000, "{t:?}");
                    assert_eq!(t.ts_ns, r.ts_ns);
                    // History comes in the `trades` list of an `l2_updates` frame; a `trade`
                    // frame is live and never marked.
                    let history_frame = data.contains(r#""type":"l2_updates""#);
                    assert_eq!(t.is_snapshot, history_frame, "{t:?} from {data}");
                    proof.trades += 1;
                    if t.is_snapshot {
                        proof.history_trades += 1;
                    } else {
                        proof.live_trades += 1;
                    }
                    if t.side.is_some() {
                        proof.trades_with_side += 1;
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

/// (history, live) trades as the tape's frames hold them, counted from the JSON without the
/// session: the entries of `trades` lists of `l2_updates` frames, and the `trade` frames.
fn count_trades(tape: &[ConnRecord]) -> (u64, u64) {
    let (mut history, mut live) = (0, 0);
    for r in tape[1..].iter().filter(|r| r.kind == "recv") {
        let frame: Value = serde_json::from_str(r.data.as_deref().unwrap()).unwrap();
        match frame["type"].as_str() {
            Some("l2_updates") => {
                history += frame["trades"].as_array().map_or(0, |t| t.len() as u64);
            }
            Some("trade") => live += 1,
            _ => {}
        }
    }
    (history, live)
}

#[test]
fn gemini_v2_l2_10sym_2021() {
    let tape = read_tape_with_conns(TAPE);
    let proof = replay(&tape);
    eprintln!(
        "{TAPE}: frames={} updates={} snapshots={} trades={} (history {} live {}) crossed={} gaps={} errors={} ignored={}",
        proof.frames,
        proof.updates,
        proof.snapshots,
        proof.trades,
        proof.history_trades,
        proof.live_trades,
        proof.crossed,
        proof.gaps,
        proof.errors,
        proof.ignored
    );
    assert_eq!(proof.frames, 678);
    // 10 first frames (the books) + 645 deltas.
    assert_eq!(proof.snapshots, 10);
    assert_eq!(proof.updates, 655);
    // 16 `trade` frames + 10 x 50 recent trades carried by the first frames.
    assert_eq!(proof.trades, 516);
    let from_frames = count_trades(&tape);
    assert_eq!(from_frames, (500, 16));
    assert_eq!((proof.history_trades, proof.live_trades), from_frames);
    assert_eq!(proof.trades_with_side, 516);
    // The 7 heartbeats.
    assert_eq!(proof.ignored, 7);
    assert_eq!(proof.crossed, 0, "crossed books");
    assert_eq!(proof.gaps, 0);
    assert_eq!(proof.resyncs, 0);
    assert_eq!(proof.errors, 0, "frame errors");
    // Level counts from an independent replay of the tape (Python, exact decimals).
    let expected: BTreeMap<String, (usize, usize)> = [
        ("ALCXUSD", (135, 28)),
        ("ANKRUSD", (142, 81)),
        ("GRTUSD", (211, 466)),
        ("LTCETH", (30, 160)),
        ("ETHEUR", (32, 243)),
        ("BATBTC", (16, 66)),
        ("ZECLTC", (24, 38)),
        ("FILUSD", (179, 474)),
        ("LINKETH", (26, 34)),
        ("BTCGBP", (99, 148)),
    ]
    .into_iter()
    .map(|(s, n)| (s.to_owned(), n))
    .collect();
    assert_eq!(proof.levels, expected);
}

/// Every level of a book as text, best first: (bids, asks).
fn book_text(session: &dyn Session, symbol: u32) -> (Vec<String>, Vec<String>) {
    let book = &session.symbols().sync(symbol).unwrap().book;
    let side = |levels: &mut dyn Iterator<Item = lobfeed_core::Level>| {
        levels.map(|l| format!("{}@{}", l.qty, l.price)).collect()
    };
    (side(&mut book.bids()), side(&mut book.asks()))
}

/// The tape's books and trades, rewritten as v1 connections (one a symbol), give each symbol
/// the book the v2 session ends with, level for level, and its live trades unmarked.
#[test]
fn gemini_v1_from_the_v2_tape_gives_the_same_books() {
    let tape = read_tape_with_conns(TAPE);
    let frames: Vec<&str> = tape[1..]
        .iter()
        .filter(|r| r.kind == "recv")
        .filter_map(|r| r.data.as_deref())
        .collect();
    let mut v2 = new_session("gemini", SessionOptions::default()).unwrap();
    let mut out = Vec::new();
    for frame in &frames {
        v2.receive(frame.as_bytes(), 0, &mut out).unwrap();
    }
    let names = v2.symbols().names().to_vec();
    assert_eq!(names.len(), 10);
    let mut total_trades = 0;
    for (id, name) in names.iter().enumerate() {
        let v1_frames = gemini_v1::from_v2(&frames, name);
        let mut v1 = new_session(&format!("gemini-v1:{name}"), SessionOptions::default()).unwrap();
        let mut trades = 0;
        for (i, frame) in v1_frames.iter().enumerate() {
            out.clear();
            v1.receive(frame.as_bytes(), i as u64, &mut out)
                .unwrap_or_else(|e| panic!("{name} frame {i}: {e}"));
            for ev in &out {
                match ev {
                    Event::Trade(t) => {
                        assert!(!t.is_snapshot, "{t:?}");
                        assert!(t.exchange_ts_ns > 1_600_000_000_000_000_000, "{t:?}");
                        trades += 1;
                    }
                    Event::BookUpdated { seq, .. } => {
                        assert_eq!(*seq, Some(i as u64));
                        assert!(!v1.symbols().sync(0).unwrap().book.is_crossed());
                    }
                    other => panic!("{name}: {other:?}"),
                }
            }
        }
        assert_eq!(
            book_text(v1.as_ref(), 0),
            book_text(v2.as_ref(), id as u32),
            "{name}"
        );
        let counters = v1.symbols().sync(0).unwrap().counters;
        assert_eq!(
            (counters.snapshots, counters.gaps, counters.errors),
            (1, 0, 0)
        );
        total_trades += trades;
    }
    // The 16 `trade` frames of the tape.
    assert_eq!(total_trades, 16);
}

/// Damaged real frames, interleaved with the real stream: every call returns Ok or Err.
#[test]
fn gemini_damaged_frames_never_panic() {
    let tape = read_tape_with_conns(TAPE);
    let frames: Vec<&[u8]> = tape[1..]
        .iter()
        .filter(|r| r.kind == "recv")
        .filter_map(|r| r.data.as_deref().map(str::as_bytes))
        .collect();
    // Small frames make mutations land on structure rather than deep inside long books.
    let small: Vec<&[u8]> = frames.iter().copied().filter(|f| f.len() < 600).collect();
    let mut damaged = mutated_frames(&small, 300);
    damaged.extend(mutated_frames(&frames[..10], 100));
    for venue in ["gemini", "gemini-v1:BTCUSD"] {
        let mut session = new_session(venue, SessionOptions::default()).unwrap();
        let mut out = Vec::new();
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
            "{venue}: {} damaged frames: {ok} ok, {err} errors",
            damaged.len()
        );
        assert_eq!(ok + err, 400);
        assert!(err > 0);
    }
}
