//! HTX coin- and USDT-margined swaps replayed from a real capture of binary gzip frames: every
//! frame inflates and decodes, every `depth.step0` push replaces the book (the book after it
//! is the push, level for level), no book is ever crossed, the trades are those the frames
//! hold, and every `{"ping":T}` is answered with the `{"pong":T}` the recording client sent.

#[path = "common/binary_tapes.rs"]
mod binary_tapes;

use std::collections::HashMap;

use binary_tapes::{gunzip, read_more_tape, Record};
use lobfeed_core::{new_session, Decimal, Event, Session, SessionOptions, Side};
use serde_json::value::RawValue;
use serde_json::Value;

const TAPE: &str = "htx-swap-depth150-10sym-2022.jsonl.gz";

#[derive(Debug, Default, PartialEq, Eq)]
struct Proof {
    frames: u64,
    binary_frames: u64,
    errors: u64,
    ignored: u64,
    book_updates: u64,
    /// Book updates whose book equals the push that caused it, level for level.
    replaced_exactly: u64,
    snapshots: u64,
    stale: u64,
    crossed: u64,
    gaps: u64,
    trades: u64,
    replies: u64,
    /// Replies equal to the pong the recording client sent next on that connection.
    replies_matching_tape: u64,
}

/// (price, size) of one side, best first.
type Levels = Vec<(Decimal, Decimal)>;

/// The levels of a push, read independently of the session: numbers kept as their text.
fn push_levels(frame: &[u8]) -> (Levels, Levels) {
    #[derive(serde::Deserialize)]
    struct Tick<'a> {
        #[serde(borrow)]
        bids: Vec<(&'a RawValue, &'a RawValue)>,
        #[serde(borrow)]
        asks: Vec<(&'a RawValue, &'a RawValue)>,
    }
    #[derive(serde::Deserialize)]
    struct Push<'a> {
        #[serde(borrow)]
        tick: Tick<'a>,
    }
    let push: Push = serde_json::from_slice(frame).unwrap();
    let exact = |side: &[(&RawValue, &RawValue)]| {
        side.iter()
            .map(|(p, q)| {
                (
                    Decimal::parse(p.get()).unwrap(),
                    Decimal::parse(q.get()).unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    (exact(&push.tick.bids), exact(&push.tick.asks))
}

/// Replays the tape with sessions that keep `depth` levels a side (`None`: all); a book update
/// counts as `replaced_exactly` when the book holds the push's first `depth` levels exactly.
fn replay(tape: &[Record], depth: Option<usize>) -> Proof {
    let options = SessionOptions {
        depth,
        ..SessionOptions::default()
    };
    let mut sessions: HashMap<&str, Box<dyn Session>> = HashMap::new();
    let mut proof = Proof::default();
    let mut out = Vec::new();
    // The replies not yet matched to the tape's next `send` on their connection.
    let mut pending: HashMap<&str, Vec<String>> = HashMap::new();
    for r in tape {
        match r.kind.as_str() {
            "send" => {
                let text = String::from_utf8(r.payload.clone()).unwrap();
                if text.starts_with("{\"pong\"") {
                    let waiting = pending.entry(&r.conn).or_default();
                    if !waiting.is_empty() && waiting.remove(0) == text {
                        proof.replies_matching_tape += 1;
                    }
                }
                continue;
            }
            "recv" => {}
            _ => continue,
        }
        if r.binary {
            proof.binary_frames += 1;
        }
        let session = sessions
            .entry(&r.conn)
            .or_insert_with(|| new_session("htx-swap", options.clone()).unwrap());
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
                    let (bids, asks) = push_levels(&gunzip(&r.payload));
                    let keep = depth.unwrap_or(usize::MAX);
                    let top = |side: &Levels| side[..side.len().min(keep)].to_vec();
                    let held = |side| {
                        book.levels(side)
                            .map(|l| (l.price, l.qty))
                            .collect::<Vec<_>>()
                    };
                    if held(Side::Bid) == top(&bids) && held(Side::Ask) == top(&asks) {
                        proof.replaced_exactly += 1;
                    }
                }
                Event::Trade(t) => {
                    assert!(!t.price.is_negative() && !t.price.is_zero(), "{t:?}");
                    assert!(t.side.is_some(), "{t:?}");
                    proof.trades += 1;
                }
                Event::GapDetected { .. } => proof.gaps += 1,
                Event::Reply { text } => {
                    proof.replies += 1;
                    pending.entry(&r.conn).or_default().push(text.clone());
                }
                _ => {}
            }
        }
    }
    for session in sessions.values() {
        let stats = session.stats();
        proof.frames += stats.frames;
        proof.ignored += stats.ignored;
        let symbols = session.symbols();
        for id in 0..symbols.len() as u32 {
            let counters = symbols.sync(id).unwrap().counters;
            proof.snapshots += counters.snapshots;
            proof.stale += counters.stale_dropped;
            proof.crossed += counters.crossed;
        }
    }
    proof
}

/// What the frames hold, counted from their JSON without the session.
struct Counted {
    pushes: u64,
    trades: u64,
    pings: u64,
    acks: u64,
}

fn count(tape: &[Record]) -> Counted {
    let mut counted = Counted {
        pushes: 0,
        trades: 0,
        pings: 0,
        acks: 0,
    };
    for r in tape.iter().filter(|r| r.kind == "recv") {
        let frame: Value = serde_json::from_slice(&gunzip(&r.payload)).unwrap();
        let ch = frame["ch"].as_str().unwrap_or("");
        if ch.contains(".depth.") {
            counted.pushes += 1;
        } else if ch.ends_with(".trade.detail") {
            counted.trades += frame["tick"]["data"].as_array().unwrap().len() as u64;
        } else if frame.get("ping").is_some() {
            counted.pings += 1;
        } else if frame.get("subbed").is_some() {
            counted.acks += 1;
        }
    }
    counted
}

#[test]
fn every_push_replaces_the_book_never_crossed_and_every_ping_is_answered() {
    let tape = read_more_tape(TAPE);
    let counted = count(&tape);
    assert_eq!(
        (counted.pushes, counted.trades, counted.pings, counted.acks),
        (2862, 25, 12, 20)
    );
    let proof = replay(&tape, None);
    assert_eq!(proof, whole_tape_proof());
}

/// What a replay of the whole tape proves, whatever depth the sessions keep.
fn whole_tape_proof() -> Proof {
    Proof {
        frames: 2913,
        binary_frames: 2913,
        errors: 0,
        // The 20 subscription answers.
        ignored: 20,
        book_updates: 2862,
        replaced_exactly: 2862,
        snapshots: 2862,
        stale: 0,
        crossed: 0,
        gaps: 0,
        trades: 25,
        replies: 12,
        replies_matching_tape: 12,
    }
}

#[test]
fn a_session_of_depth_20_keeps_each_pushes_top_20_levels() {
    let tape = read_more_tape(TAPE);
    // The tape's pushes are deeper than 20 (up to 150), so the cut is exercised.
    let deepest = tape
        .iter()
        .filter(|r| r.kind == "recv")
        .map(|r| gunzip(&r.payload))
        .filter(|f| f.windows(6).any(|w| w == b".depth"))
        .filter_map(|f| serde_json::from_slice::<Value>(&f).ok())
        .filter_map(|f| f["tick"]["bids"].as_array().map(Vec::len))
        .max();
    assert!(deepest.is_some_and(|n| n > 20), "{deepest:?}");
    assert_eq!(replay(&tape, Some(20)), whole_tape_proof());
}

#[test]
fn damaged_frames_are_typed_errors_never_panics() {
    let tape = read_more_tape(TAPE);
    let frames: Vec<Vec<u8>> = tape
        .iter()
        .filter(|r| r.kind == "recv")
        .map(|r| gunzip(&r.payload))
        .collect();
    let mut session = new_session("htx-swap", SessionOptions::default()).unwrap();
    let mut out = Vec::new();
    let (mut ok, mut refused) = (0, 0);
    for (i, frame) in frames.iter().enumerate().step_by(7) {
        for broken in binary_tapes_broken(frame, i as u64) {
            // Compressed again, so the session reads the damage as the venue would send it.
            let sent = gzip(&broken);
            out.clear();
            match session.receive(&sent, 0, &mut out) {
                Ok(()) => ok += 1,
                Err(_) => refused += 1,
            }
            for id in 0..session.symbols().len() as u32 {
                let sync = session.symbols().sync(id).unwrap();
                if sync.state() == lobfeed_core::SyncState::Live {
                    assert!(!sync.book.is_crossed());
                }
            }
        }
    }
    assert!(refused > 0 && ok > 0, "{ok} accepted, {refused} refused");
}

/// Cuts and byte changes of a frame, deterministic for a seed.
fn binary_tapes_broken(frame: &[u8], seed: u64) -> Vec<Vec<u8>> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as usize % bound.max(1)
    };
    let mut out = vec![frame[..frame.len() / 2].to_vec()];
    for _ in 0..6 {
        let mut changed = frame.to_vec();
        let at = next(changed.len());
        changed[at] = b"{}[]\",:.-e0x"[next(12)];
        out.push(changed);
    }
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn a_frame_that_inflates_past_the_limit_is_refused() {
    let options = SessionOptions {
        max_frame_bytes: 4096,
        ..SessionOptions::default()
    };
    let mut session = new_session("htx-swap", options).unwrap();
    // Small compressed, large inflated: refused by its inflated size, not read.
    let big = format!("{{\"ch\":\"x\",\"pad\":\"{}\"}}", "a".repeat(100_000));
    let sent = gzip(big.as_bytes());
    assert!(sent.len() < 4096);
    let err = session.receive(&sent, 0, &mut Vec::new()).unwrap_err();
    assert!(
        matches!(
            err.error,
            lobfeed_core::FrameError::Oversized { max: 4096, .. }
        ),
        "{err:?}"
    );
}
