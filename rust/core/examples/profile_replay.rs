//! Replays a tape's frames through a session, for profilers (callgrind, perf):
//! `cargo run --release -p lobfeed-core --example profile_replay -- TAPE [REPEATS] [depth]`.

use std::io::{BufRead, BufReader};
use std::time::Instant;

use flate2::read::GzDecoder;
use lobfeed_core::{new_session, SessionOptions};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: profile_replay TAPE [REPEATS]");
    let repeats: usize = args.next().map_or(1, |r| r.parse().expect("a number"));
    // `depth`: keep only depth frames (and the snapshot), to profile the book path alone.
    let depth_only = args.next().as_deref() == Some("depth");
    let file = std::fs::File::open(&path).expect("tape");
    let mut venue = String::new();
    let mut records: Vec<(Option<String>, Vec<u8>)> = Vec::new();
    for line in BufReader::new(GzDecoder::new(file)).lines() {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        match v["type"].as_str() {
            Some("header") => venue = v["venue"].as_str().unwrap().to_owned(),
            Some("recv") => {
                let data = v["data"].as_str().unwrap();
                if !depth_only || data.contains("depthUpdate") {
                    records.push((None, data.as_bytes().to_vec()));
                }
            }
            Some("http") => {
                let url = v["url"].as_str().unwrap();
                if let Some(s) = url.split("symbol=").nth(1) {
                    let symbol = s.split('&').next().unwrap().to_owned();
                    records.push((
                        Some(symbol),
                        v["data"].as_str().unwrap().as_bytes().to_vec(),
                    ));
                }
            }
            _ => {}
        }
    }
    let bytes: usize = records.iter().map(|r| r.1.len()).sum();
    let start = Instant::now();
    let mut updates = 0usize;
    for _ in 0..repeats {
        updates += replay_all(&venue, &records);
    }
    let elapsed = start.elapsed();
    let frames = records.len() * repeats;
    eprintln!(
        "{frames} frames, {updates} events, {:.0} ns/frame, {:.0} MB/s",
        elapsed.as_nanos() as f64 / frames as f64,
        (bytes * repeats) as f64 / elapsed.as_secs_f64() / 1e6
    );
}

/// The measured part (callgrind: `--toggle-collect=profile_replay::replay_all`).
#[inline(never)]
fn replay_all(venue: &str, records: &[(Option<String>, Vec<u8>)]) -> usize {
    let mut updates = 0;
    let mut session = new_session(venue, SessionOptions::default()).unwrap();
    let mut out = Vec::with_capacity(16);
    for (snapshot, data) in records {
        out.clear();
        let _ = match snapshot {
            Some(symbol) => session.receive_snapshot(symbol, data, 0, &mut out),
            None => session.receive(data, 0, &mut out),
        };
        updates += out.len();
    }
    updates
}
