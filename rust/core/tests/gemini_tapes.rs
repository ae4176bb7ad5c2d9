//! Gemini v2 books replayed from a real capture: never crossed, every frame understood, trades
//! decoded, and the final books level for level as large as an independent replay says.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::{mutated_frames, read_tape_with_conns, ConnRecord};
use lobfeed_core::{new_session, Event, Session, SessionOptions, Side};

const TAPE: &str = "gemini-v2-l2-10sym-2021.jsonl.gz";

#[derive(Debug, Default)]
struct Proof {
    frames: u64,
    updates: u64,
    snapshots: u64,
    trades: u64,
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
                    proof.trades += 1;
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

#[test]
fn gemini_v2_l2_10sym_2021() {
    let tape = read_tape_with_conns(TAPE);
    let proof = replay(&tape);
    eprintln!(
        "{TAPE}: frames={} updates={} snapshots={} trades={} crossed={} gaps={} errors={} ignored={}",
        proof.frames,
        proof.updates,
        proof.snapshots,
        proof.trades,
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
