//! Decode + validate + apply on the real tapes of every venue, in the Rust core alone (no
//! Python).
//!
//! `cargo bench -p lobfeed-core --bench decode_apply` (or `make bench`; a filter such as
//! `-- kraken` runs one venue). For each tape:
//! - `<tape>/depth` (Binance tapes): every depth frame after the REST snapshot, into a synced
//!   session (throughput in bytes of frame JSON);
//! - `<tape>/all`: every received frame of the tape, snapshots included, one session per
//!   websocket connection as a live feed has (throughput in bytes).
//!
//! Both folders of the shared data are read: `tapes` and the issue 12 venues' `tapes-more`,
//! whose binary frames (HTX's gzip, Upbit's JSON) reach the session as the venue sent them.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use flate2::read::GzDecoder;
use lobfeed_core::{new_session, Session, SessionOptions};

// The tests' reader of binary records (`"encoding":"base64"`), shared rather than copied.
#[path = "../tests/common/binary_tapes.rs"]
mod binary_tapes;

/// The folders of the shared data holding tapes.
const FOLDERS: [&str; 2] = ["tapes", "tapes-more"];

struct Tape {
    name: String,
    venue: String,
    /// (is REST snapshot, symbol for snapshots, bytes)
    records: Vec<(bool, String, Vec<u8>)>,
    /// The websocket connection of each record (REST snapshots: the empty name).
    conns: Vec<String>,
}

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

fn load(folder: &str, name: &str) -> Tape {
    let path = data_dir().join(folder).join(name);
    let file = std::fs::File::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (clone ../shared beside the repo)", path.display()));
    let mut venue = String::new();
    let mut records = Vec::new();
    let mut conns = Vec::new();
    for line in BufReader::new(GzDecoder::new(file)).lines() {
        let value: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        match value["type"].as_str() {
            Some("header") => venue = value["venue"].as_str().unwrap().to_owned(),
            Some("recv") => {
                let data = value["data"].as_str().unwrap();
                let bytes = match value["encoding"].as_str() {
                    None => data.as_bytes().to_vec(),
                    Some("base64") => binary_tapes::base64_decode(data),
                    Some(other) => panic!("{name}: unknown encoding {other:?}"),
                };
                conns.push(value["conn"].as_str().unwrap_or_default().to_owned());
                records.push((false, String::new(), bytes));
            }
            Some("http") => {
                let url = value["url"].as_str().unwrap();
                if let Some(symbol) = binary_tapes::snapshot_symbol(url) {
                    conns.push(String::new());
                    records.push((
                        true,
                        symbol,
                        value["data"].as_str().unwrap().as_bytes().to_vec(),
                    ));
                }
            }
            _ => {}
        }
    }
    Tape {
        name: name.trim_end_matches(".jsonl.gz").to_owned(),
        venue,
        records,
        conns,
    }
}

fn is_depth(frame: &[u8]) -> bool {
    frame.windows(13).any(|w| w == b"\"depthUpdate\"")
}

/// A session synced up to the snapshot, and the depth frames that follow it.
fn synced(tape: &Tape) -> (Box<dyn Session>, Vec<&[u8]>) {
    let mut session = new_session(&tape.venue, SessionOptions::default()).unwrap();
    let mut out = Vec::new();
    let snapshot_at = tape.records.iter().position(|r| r.0).expect("a snapshot");
    for (is_snapshot, symbol, data) in &tape.records[..=snapshot_at] {
        if *is_snapshot {
            session.receive_snapshot(symbol, data, 0, &mut out).unwrap();
        } else {
            let _ = session.receive(data, 0, &mut out);
        }
    }
    let rest = tape.records[snapshot_at + 1..]
        .iter()
        .filter(|r| !r.0 && is_depth(&r.2))
        .map(|r| r.2.as_slice())
        .collect();
    (session, rest)
}

/// Every tape of the shared data as (folder, name), Binance's 2024 tapes first.
fn tape_names() -> Vec<(&'static str, String)> {
    let mut names = Vec::new();
    for folder in FOLDERS {
        let dir = data_dir().join(folder);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e} (clone ../shared beside the repo)", dir.display()));
        names.extend(
            entries
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".jsonl.gz"))
                .map(|name| (folder, name)),
        );
    }
    names.sort_by_key(|(_, name)| (!name.contains("20240808"), name.clone()));
    names
}

/// Every record of the tape through one session per connection (REST snapshots go to the
/// session of the connection that last carried a frame, as the I/O layer routes them).
fn replay_all(tape: &Tape) -> usize {
    let mut sessions: HashMap<&str, Box<dyn Session>> = HashMap::new();
    let mut out = Vec::with_capacity(16);
    let mut events = 0;
    let mut last_conn = "";
    for ((is_snapshot, symbol, data), conn) in tape.records.iter().zip(&tape.conns) {
        if !*is_snapshot {
            last_conn = conn;
        }
        let session = sessions
            .entry(last_conn)
            .or_insert_with(|| new_session(&tape.venue, SessionOptions::default()).unwrap());
        out.clear();
        let _ = if *is_snapshot {
            session.receive_snapshot(symbol, data, 0, &mut out)
        } else {
            session.receive(data, 0, &mut out)
        };
        events += out.len();
    }
    events
}

fn bench_tapes(c: &mut Criterion) {
    for (folder, name) in tape_names() {
        let tape = load(folder, &name);
        // A tape whose frames make no events would time nothing of worth: say so loudly.
        let events = replay_all(&tape);
        assert!(events > 0, "{}: the replay made no events", tape.name);
        let all_bytes: usize = tape.records.iter().map(|r| r.2.len()).sum();
        let mut group = c.benchmark_group(&tape.name);
        group.measurement_time(Duration::from_secs(4));
        group.sample_size(20);
        if tape.records.iter().any(|r| r.0) && tape.venue.starts_with("binance") {
            let (_, depth_frames) = synced(&tape);
            let depth_bytes: usize = depth_frames.iter().map(|f| f.len()).sum();
            let mut sizes: Vec<usize> = depth_frames.iter().map(|f| f.len()).collect();
            sizes.sort_unstable();
            eprintln!(
                "{}: {} depth frames, median {} bytes, mean {} bytes",
                tape.name,
                depth_frames.len(),
                sizes[sizes.len() / 2],
                depth_bytes / depth_frames.len()
            );
            group.throughput(Throughput::Bytes(depth_bytes as u64));
            group.bench_function("depth", |b| {
                b.iter_batched(
                    || synced(&tape),
                    |(mut session, frames)| {
                        let mut out = Vec::with_capacity(16);
                        for frame in frames {
                            out.clear();
                            session.receive(frame, 0, &mut out).unwrap();
                        }
                        session
                    },
                    BatchSize::LargeInput,
                )
            });
        }
        group.throughput(Throughput::Bytes(all_bytes as u64));
        group.bench_function("all", |b| b.iter(|| replay_all(&tape)));
        group.finish();
    }
}

criterion_group!(benches, bench_tapes);
criterion_main!(benches);
