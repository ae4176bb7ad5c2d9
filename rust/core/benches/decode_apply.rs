//! Decode + validate + apply on the real tapes, in the Rust core alone (no Python).
//!
//! `cargo bench -p lobfeed-core --bench decode_apply` (or `make bench`). For each tape:
//! - `<tape>/depth`: every depth frame after the REST snapshot, into a synced session
//!   (throughput in bytes of frame JSON);
//! - `<tape>/all`: every received frame of the tape, snapshot included (throughput in frames).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use flate2::read::GzDecoder;
use lobfeed_core::{new_session, Session, SessionOptions};

struct Tape {
    name: String,
    venue: String,
    /// (is REST snapshot, symbol for snapshots, bytes)
    records: Vec<(bool, String, Vec<u8>)>,
}

fn load(name: &str) -> Tape {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/tapes")
        .join(name);
    let file = std::fs::File::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (clone ../shared beside the repo)", path.display()));
    let mut venue = String::new();
    let mut records = Vec::new();
    for line in BufReader::new(GzDecoder::new(file)).lines() {
        let value: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        match value["type"].as_str() {
            Some("header") => venue = value["venue"].as_str().unwrap().to_owned(),
            Some("recv") => records.push((
                false,
                String::new(),
                value["data"].as_str().unwrap().as_bytes().to_vec(),
            )),
            Some("http") => {
                let url = value["url"].as_str().unwrap();
                if let Some(symbol) = url.split("symbol=").nth(1) {
                    let symbol = symbol.split('&').next().unwrap().to_owned();
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

fn bench_tapes(c: &mut Criterion) {
    for name in [
        "binance-ethusdt-20240808.jsonl.gz",
        "binance-usdm-ethusdt-20240808.jsonl.gz",
        "binance-coinm-ethusd_perp-20240808.jsonl.gz",
    ] {
        let tape = load(name);
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

        let mut group = c.benchmark_group(&tape.name);
        group.measurement_time(Duration::from_secs(4));
        group.sample_size(20);
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
        group.throughput(Throughput::Elements(tape.records.len() as u64));
        group.bench_function("all", |b| {
            b.iter(|| {
                let mut session = new_session(&tape.venue, SessionOptions::default()).unwrap();
                let mut out = Vec::with_capacity(16);
                for (is_snapshot, symbol, data) in &tape.records {
                    out.clear();
                    let _ = if *is_snapshot {
                        session.receive_snapshot(symbol, data, 0, &mut out)
                    } else {
                        session.receive(data, 0, &mut out)
                    };
                }
                session
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench_tapes);
criterion_main!(benches);
