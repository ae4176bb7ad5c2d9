//! Tapes of `../shared/data/tapes-more/`, whose frames may be binary (`"encoding":"base64"`):
//! each record's bytes as the venue sent them.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use flate2::read::GzDecoder;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct RawRecord {
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
    #[serde(default)]
    pub encoding: Option<String>,
}

/// A record with its payload decoded: the frame's bytes, binary or text alike.
#[derive(Debug)]
pub struct Record {
    pub kind: String,
    pub ts_ns: u64,
    pub conn: String,
    pub url: Option<String>,
    pub binary: bool,
    pub payload: Vec<u8>,
}

/// The tapes-more folder; missing, the test fails (CI must have ../shared).
pub fn more_tapes_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/tapes-more");
    assert!(
        dir.is_dir(),
        "tapes not found at {}: clone ../shared beside the repository",
        dir.display()
    );
    dir
}

/// The venue its header names.
pub fn tape_venue(name: &str) -> String {
    let path = more_tapes_dir().join(name);
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut header = String::new();
    BufReader::new(GzDecoder::new(file))
        .read_line(&mut header)
        .expect("readable header");
    let header: serde_json::Value = serde_json::from_str(&header).expect("header line");
    header["venue"]
        .as_str()
        .expect("header names the venue")
        .to_owned()
}

/// Every record after the header, payloads decoded.
pub fn read_more_tape(name: &str) -> Vec<Record> {
    let path = more_tapes_dir().join(name);
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    BufReader::new(GzDecoder::new(file))
        .lines()
        .skip(1)
        .map(|line| {
            let raw: RawRecord =
                serde_json::from_str(&line.expect("readable line")).expect("tape line");
            let binary = match raw.encoding.as_deref() {
                None => false,
                Some("base64") => true,
                Some(other) => panic!("unknown encoding {other:?} in {name}"),
            };
            let data = raw.data.unwrap_or_default();
            let payload = if binary {
                base64_decode(&data)
            } else {
                data.into_bytes()
            };
            Record {
                kind: raw.kind,
                ts_ns: raw.ts_ns,
                conn: raw.conn.unwrap_or_default(),
                url: raw.url,
                binary,
                payload,
            }
        })
        .collect()
}

/// RFC 4648 base64 with padding, as the tape format writes it; panics on anything else (a
/// tape that does not decode is a broken fixture).
pub fn base64_decode(text: &str) -> Vec<u8> {
    fn value(c: u8) -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a') as u32 + 26,
            b'0'..=b'9' => (c - b'0') as u32 + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c:?}"),
        }
    }
    let bytes = text.as_bytes();
    assert!(
        bytes.len().is_multiple_of(4),
        "base64 length {} is not padded",
        bytes.len()
    );
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = n << 6 | value(c);
        }
        n <<= 6 * pad as u32;
        let three = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&three[..3 - pad]);
    }
    out
}

/// Inflates a gzip frame (HTX's) for tests that read what the session reads.
pub fn gunzip(frame: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    GzDecoder::new(frame)
        .read_to_end(&mut out)
        .expect("a gzip frame");
    out
}

/// The symbol a REST depth snapshot's URL names: `symbol=` (Binance, KuCoin), Gate.io's
/// `currency_pair=` (spot) or `contract=` (futures). `None` for other REST records
/// (instrument lists).
pub fn snapshot_symbol(url: &str) -> Option<String> {
    const PARAMS: [&str; 3] = ["symbol=", "currency_pair=", "contract="];
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        PARAMS
            .iter()
            .find_map(|param| pair.strip_prefix(param))
            .map(str::to_owned)
    })
}
