//! Reading lobfeed-tape/1 files from ../shared/data/tapes for the integration tests.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use flate2::read::GzDecoder;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Record {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub ts_ns: u64,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub data: Option<String>,
    #[serde(default)]
    pub venue: Option<String>,
    /// The websocket connection a record belongs to (`c1`, `c2`, ...); tapes may hold several.
    #[serde(default)]
    pub conn: Option<String>,
    /// `"base64"` for a binary frame (its `data` is the base64 of the bytes).
    #[serde(default)]
    pub encoding: Option<String>,
}

/// The tapes folder; a missing folder fails the test loudly (CI must have ../shared).
pub fn tapes_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/tapes");
    assert!(
        dir.is_dir(),
        "tapes not found at {}: clone ../shared beside the repository",
        dir.display()
    );
    dir
}

/// The captures of the venues of issue 12 (`tapes-more`), kept apart from `tapes`.
pub fn more_tapes_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/tapes-more");
    assert!(
        dir.is_dir(),
        "tapes not found at {}: clone ../shared beside the repository",
        dir.display()
    );
    dir
}

/// All records of a tape (of `tapes`, else of `tapes-more`), header first.
pub fn read_tape(name: &str) -> Vec<Record> {
    let mut path = tapes_dir().join(name);
    if !path.is_file() {
        path = more_tapes_dir().join(name);
    }
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    BufReader::new(GzDecoder::new(file))
        .lines()
        .map(|line| serde_json::from_str(&line.expect("readable line")).expect("tape line"))
        .collect()
}

/// The `symbol=` parameter of a REST snapshot URL.
pub fn query_symbol(url: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("symbol=").map(str::to_owned))
}

/// A query parameter of a URL (`instId` for OKX snapshots, for example).
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

/// Truncations and byte flips of a frame, deterministic (no RNG), for robustness tests.
pub fn mutations(frame: &[u8], seed: u64) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let len = frame.len();
    if len == 0 {
        return out;
    }
    // A small xorshift so each frame gets different positions without a dependency.
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for cut in [len / 2, len.saturating_sub(1), (next() as usize) % len] {
        out.push(frame[..cut].to_vec());
    }
    for _ in 0..4 {
        let mut flipped = frame.to_vec();
        let at = (next() as usize) % len;
        flipped[at] ^= 1 << (next() % 8);
        out.push(flipped);
    }
    // Structural characters swapped for others that keep JSON plausible.
    for (from, to) in [(b'"', b'\''), (b']', b'}'), (b'.', b'-'), (b'1', b'e')] {
        if let Some(at) = frame.iter().position(|&c| c == from) {
            let mut changed = frame.to_vec();
            changed[at] = to;
            out.push(changed);
        }
    }
    out
}

/// A record with the websocket connection it came on (`conn`): a tape can hold several, and
/// channel ids and sequence counters are per connection, so replay needs one session per `conn`.
#[derive(Debug, Deserialize)]
pub struct ConnRecord {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub ts_ns: u64,
    #[serde(default)]
    pub conn: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub data: Option<String>,
}

/// All records of a tape with their connection names, header first.
pub fn read_tape_with_conns(name: &str) -> Vec<ConnRecord> {
    let path = tapes_dir().join(name);
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    BufReader::new(GzDecoder::new(file))
        .lines()
        .map(|line| serde_json::from_str(&line.expect("readable line")).expect("tape line"))
        .collect()
}

/// Deterministic damaged copies of real frames: truncations at every kind of position and
/// random byte flips (xorshift, fixed seed), `count` in all.
pub fn mutated_frames(frames: &[&[u8]], count: usize) -> Vec<Vec<u8>> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let nonempty: Vec<&[u8]> = frames.iter().copied().filter(|f| !f.is_empty()).collect();
    assert!(!nonempty.is_empty(), "no frames to mutate");
    (0..count)
        .map(|i| {
            let frame = nonempty[next() as usize % nonempty.len()];
            let mut bytes = frame.to_vec();
            match i % 4 {
                0 => bytes.truncate(next() as usize % bytes.len()),
                1 => {
                    let at = next() as usize % bytes.len();
                    bytes[at] ^= 1 << (next() % 8);
                }
                2 => {
                    const JSONISH: &[u8] = b"[]{}\",:-.0123456789eE \\x";
                    for _ in 0..1 + next() % 8 {
                        let at = next() as usize % bytes.len();
                        bytes[at] = JSONISH[next() as usize % JSONISH.len()];
                    }
                }
                _ => {
                    let at = next() as usize % bytes.len();
                    bytes.truncate(at);
                    bytes.extend_from_slice(&frame[at..].iter().rev().copied().collect::<Vec<_>>());
                }
            }
            bytes
        })
        .collect()
}

/// Broken copies of a real frame for robustness tests, deterministic for a seed: cut short at
/// various lengths, one byte replaced (by JSON punctuation, a digit, a letter or a high byte),
/// one byte removed, or a slice doubled.
pub fn broken_copies(frame: &[u8], count: usize, seed: u64) -> Vec<Vec<u8>> {
    const BYTES: &[u8] = b"{}[]\",:.-+0123456789eE\\ tfnx\x00\xff\xc3";
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move |bound: usize| -> usize {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % bound.max(1)
    };
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let mut m = frame.to_vec();
        let at = next(frame.len());
        match i % 4 {
            0 => m.truncate(at),
            1 => {
                if let Some(b) = m.get_mut(at) {
                    *b = BYTES[next(BYTES.len())];
                }
            }
            2 => {
                if at < m.len() {
                    m.remove(at);
                }
            }
            _ => {
                let end = (at + 1 + next(16)).min(m.len());
                let slice = m[at..end].to_vec();
                m.splice(at..at, slice);
            }
        }
        out.push(m);
    }
    out
}

/// The first `"key":<unsigned integer>` of a JSON text, and where its digits are.
pub fn find_number(text: &str, key: &str) -> Option<(u64, std::ops::Range<usize>)> {
    let pattern = format!("\"{key}\":");
    let start = text.find(&pattern)? + pattern.len();
    let len = text[start..].bytes().take_while(u8::is_ascii_digit).count();
    let value = text[start..start + len].parse().ok()?;
    Some((value, start..start + len))
}

/// The JSON text with its first `"key":<unsigned integer>` set to `value` (to renumber a real
/// frame so that it follows on in a robustness test).
pub fn with_number(text: &str, key: &str, value: u64) -> Option<String> {
    let (_, at) = find_number(text, key)?;
    Some(format!("{}{value}{}", &text[..at.start], &text[at.end..]))
}

/// Replays a tape's frames with one session per connection (ids and sequences are per
/// connection) and each REST snapshot on every session so far; `seen` gets each session's
/// events after every call. The sessions, by connection, are returned.
pub fn replay_by_connection(
    name: &str,
    options: &lobfeed_core::SessionOptions,
    mut seen: impl FnMut(&[lobfeed_core::Event]),
) -> std::collections::BTreeMap<String, Box<dyn lobfeed_core::Session>> {
    let tape = read_tape(name);
    let venue = tape[0].venue.clone().expect("header names the venue");
    let mut sessions = std::collections::BTreeMap::<String, Box<dyn lobfeed_core::Session>>::new();
    let mut out = Vec::new();
    for r in &tape[1..] {
        let data = r.data.as_deref().unwrap_or("").as_bytes();
        let targets: Vec<String> = match r.kind.as_str() {
            "recv" => vec![r.conn.clone().unwrap_or_default()],
            "http" => sessions.keys().cloned().collect(),
            _ => continue,
        };
        for conn in targets {
            let session = sessions
                .entry(conn)
                .or_insert_with(|| lobfeed_core::new_session(&venue, options.clone()).unwrap());
            out.clear();
            let _ = if r.kind == "http" {
                let url = r.url.as_deref().unwrap_or("");
                let Some(symbol) = query_symbol(url).or_else(|| query_param(url, "instId")) else {
                    continue;
                };
                session.receive_snapshot(&symbol, data, r.ts_ns, &mut out)
            } else {
                session.receive(data, r.ts_ns, &mut out)
            };
            seen(&out);
        }
    }
    sessions
}
