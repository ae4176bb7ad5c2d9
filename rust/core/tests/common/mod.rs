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

/// All records of a tape, header first.
pub fn read_tape(name: &str) -> Vec<Record> {
    let path = tapes_dir().join(name);
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
