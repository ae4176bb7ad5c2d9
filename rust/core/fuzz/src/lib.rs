//! The one property every fuzz target checks, for its venue: frames in, never a panic, every
//! failure a typed `ReceiveError`, and after every call the books hold their invariants (a live
//! book never crossed, no zero-size level, sides ordered; see `tests/common/invariants.rs`).
//!
//! An input is records separated by `\n`. A record starting with byte 0x01 is a REST snapshot,
//! `\x01SYMBOL\x01BODY`, handed to `receive_snapshot`; any other record is one websocket frame
//! handed to `receive`. `make_corpus.py` writes real tapes in this form.

use lobfeed_core::{new_session, Event, SessionOptions};

#[path = "../../tests/common/invariants.rs"]
mod invariants;

pub use invariants::check_books;

/// Marks a record as a REST snapshot (`\x01SYMBOL\x01BODY`).
pub const SNAPSHOT: u8 = 0x01;

/// One record of an input.
pub enum Record<'a> {
    Frame(&'a [u8]),
    Snapshot { symbol: &'a str, body: &'a [u8] },
}

/// Splits an input into its records (see the module docs).
pub fn records(data: &[u8]) -> impl Iterator<Item = Record<'_>> {
    data.split(|&b| b == b'\n').map(|record| match record {
        [SNAPSHOT, rest @ ..] => {
            let (symbol, body) = match rest.iter().position(|&b| b == SNAPSHOT) {
                Some(at) => (&rest[..at], &rest[at + 1..]),
                None => (rest, &[][..]),
            };
            Record::Snapshot {
                // A symbol that is not UTF-8 is still fuzzed, as its lossless prefix.
                symbol: match std::str::from_utf8(symbol) {
                    Ok(s) => s,
                    Err(e) => std::str::from_utf8(&symbol[..e.valid_up_to()]).unwrap_or(""),
                },
                body,
            }
        }
        frame => Record::Frame(frame),
    })
}

/// Feeds `data` to a fresh session of `venue`, panicking on any broken property.
pub fn run(venue: &str, data: &[u8]) {
    let mut session = new_session(venue, SessionOptions::default()).expect("a known venue");
    let mut out: Vec<Event> = Vec::new();
    let mut ts_ns: u64 = 1_700_000_000_000_000_000;
    for record in records(data) {
        ts_ns += 1_000_000;
        out.clear();
        let result = match record {
            Record::Frame(frame) => session.receive(frame, ts_ns, &mut out),
            Record::Snapshot { symbol, body } => {
                session.receive_snapshot(symbol, body, ts_ns, &mut out)
            }
        };
        if let Err(error) = &result {
            // Typed by construction; formatting it must not panic either.
            let _ = format!("{error} {error:?}");
        }
        let _ = format!("{out:?}");
        if let Err(broken) = check_books(session.as_ref()) {
            panic!("{venue}: {broken} (after {result:?})");
        }
    }
}
