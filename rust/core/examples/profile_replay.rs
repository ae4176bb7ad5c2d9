//! Replays a tape's frames through its venue's sessions (one per websocket connection), for
//! profilers (callgrind, perf) and quick timings of any venue's tape:
//! `cargo run --release -p lobfeed-core --example profile_replay -- TAPE [REPEATS] [depth]`;
//! `KEEP_DEPTH=20` in the environment gives the sessions `SessionOptions::depth` 20.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::time::Instant;

use flate2::read::GzDecoder;
use lobfeed_core::{new_session, SessionOptions};

// The tests' reader of binary records (`"encoding":"base64"`), shared rather than copied.
#[path = "../tests/common/binary_tapes.rs"]
mod binary_tapes;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: profile_replay TAPE [REPEATS]");
    let repeats: usize = args.next().map_or(1, |r| r.parse().expect("a number"));
    // `depth`: keep only depth frames (and the snapshot), to profile the book path alone.
    let depth_only = args.next().as_deref() == Some("depth");
    let file = std::fs::File::open(&path).expect("tape");
    let mut venue = String::new();
    // (REST snapshot's symbol, connection, bytes)
    let mut records: Vec<(Option<String>, String, Vec<u8>)> = Vec::new();
    for line in BufReader::new(GzDecoder::new(file)).lines() {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        match v["type"].as_str() {
            Some("header") => venue = v["venue"].as_str().unwrap().to_owned(),
            Some("recv") => {
                let data = v["data"].as_str().unwrap();
                // A binary frame (HTX's gzip, Upbit's JSON) goes to the session as the venue
                // sent it, so that inflating is measured too.
                let bytes = match v["encoding"].as_str() {
                    None => data.as_bytes().to_vec(),
                    Some("base64") => binary_tapes::base64_decode(data),
                    Some(other) => panic!("unknown encoding {other:?}"),
                };
                if !depth_only || data.contains("depthUpdate") {
                    let conn = v["conn"].as_str().unwrap_or_default().to_owned();
                    records.push((None, conn, bytes));
                }
            }
            Some("http") => {
                let url = v["url"].as_str().unwrap();
                if let Some(symbol) = binary_tapes::snapshot_symbol(url) {
                    records.push((
                        Some(symbol),
                        String::new(),
                        v["data"].as_str().unwrap().as_bytes().to_vec(),
                    ));
                }
            }
            _ => {}
        }
    }
    let options = SessionOptions {
        depth: std::env::var("KEEP_DEPTH")
            .ok()
            .map(|d| d.parse().expect("KEEP_DEPTH is a number")),
        ..SessionOptions::default()
    };
    let bytes: usize = records.iter().map(|r| r.2.len()).sum();
    let start = Instant::now();
    let mut updates = 0usize;
    for _ in 0..repeats {
        updates += replay_all(&venue, &records, &options);
    }
    let elapsed = start.elapsed();
    let frames = records.len() * repeats;
    eprintln!(
        "{frames} frames, {updates} events, {:.0} ns/frame, {:.0} MB/s",
        elapsed.as_nanos() as f64 / frames as f64,
        (bytes * repeats) as f64 / elapsed.as_secs_f64() / 1e6
    );
}

/// The measured part (callgrind: `--toggle-collect=profile_replay::replay_all`). A REST
/// snapshot goes to the session of the connection that last carried a frame.
#[inline(never)]
fn replay_all(
    venue: &str,
    records: &[(Option<String>, String, Vec<u8>)],
    options: &SessionOptions,
) -> usize {
    let mut updates = 0;
    let mut sessions = HashMap::new();
    let mut out = Vec::with_capacity(16);
    let mut last_conn = "";
    for (snapshot, conn, data) in records {
        if snapshot.is_none() {
            last_conn = conn;
        }
        let session = sessions
            .entry(last_conn)
            .or_insert_with(|| new_session(venue, options.clone()).unwrap());
        out.clear();
        let _ = match snapshot {
            Some(symbol) => session.receive_snapshot(symbol, data, 0, &mut out),
            None => session.receive(data, 0, &mut out),
        };
        updates += out.len();
    }
    updates
}
