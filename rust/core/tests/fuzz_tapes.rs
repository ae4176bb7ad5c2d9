//! Real recorded frames, damaged, into every venue: a run of consecutive frames of one
//! connection of a real tape (REST snapshots where the tape fetched them), mutated — bytes
//! flipped, frames cut short, duplicated, dropped or reordered, numbers replaced by huge,
//! negative, NaN-like or exponent strings, keys removed, values nested deep or made very long —
//! and fed to a fresh session of the tape's venue. `receive` returns Ok or a typed error and
//! never panics, and after every frame the books hold their invariants
//! (`common/invariants.rs`: a live book is never crossed, no zero-size level, ordered sides).
//! The cargo-fuzz targets in `fuzz/` check the same property without bounds.

#[path = "common/binary_tapes.rs"]
mod binary_tapes;
mod common;
#[path = "common/gemini_v1.rs"]
mod gemini_v1;
#[path = "common/invariants.rs"]
mod invariants;

use std::collections::HashMap;
use std::sync::OnceLock;

use lobfeed_core::{new_session, Event, SessionOptions, VENUES};
use proptest::prelude::*;
use proptest::sample::Index;

/// Cases per venue: the whole file stays within a few seconds in release mode.
const CASES: u32 = 512;
/// Longest run of frames a case takes from a tape.
const MAX_WINDOW: usize = 40;
/// The Gemini v1 session (one symbol a connection; v1 frames never name it).
const GEMINI_V1: &str = "gemini-v1:BTCUSD";

#[derive(Debug, Clone)]
enum Record {
    Frame(Vec<u8>),
    Snapshot { symbol: String, body: Vec<u8> },
}

impl Record {
    fn bytes_mut(&mut self) -> &mut Vec<u8> {
        match self {
            Record::Frame(bytes) => bytes,
            Record::Snapshot { body, .. } => body,
        }
    }
}

/// Every connection of every tape, per venue: records in the order they were received.
fn streams() -> &'static HashMap<String, Vec<Vec<Record>>> {
    static STREAMS: OnceLock<HashMap<String, Vec<Vec<Record>>>> = OnceLock::new();
    STREAMS.get_or_init(|| {
        let mut by_venue: HashMap<String, Vec<Vec<Record>>> = HashMap::new();
        // Both folders: `read_tape` finds a name of `tapes-more` there.
        let mut names: Vec<String> = std::fs::read_dir(common::tapes_dir())
            .expect("readable tapes folder")
            .chain(std::fs::read_dir(common::more_tapes_dir()).expect("readable tapes-more folder"))
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".jsonl.gz"))
            .collect();
        names.sort();
        for name in names {
            let tape = common::read_tape(&name);
            let venue = tape[0].venue.clone().expect("header names the venue");
            let mut conns: Vec<(String, Vec<Record>)> = Vec::new();
            for r in &tape[1..] {
                let data = frame_bytes(r);
                match r.kind.as_str() {
                    "recv" => {
                        let conn = r.conn.clone().unwrap_or_default();
                        let at = match conns.iter().position(|(c, _)| *c == conn) {
                            Some(at) => at,
                            None => {
                                conns.push((conn, Vec::new()));
                                conns.len() - 1
                            }
                        };
                        conns[at].1.push(Record::Frame(data));
                    }
                    "http" => {
                        // Depth snapshots only (other REST bodies are instrument lists).
                        let url = r.url.as_deref().unwrap_or("");
                        let symbol = common::query_symbol(url)
                            .or_else(|| common::query_param(url, "instId"))
                            .or_else(|| common::query_param(url, "currency_pair"))
                            .or_else(|| common::query_param(url, "contract"));
                        let book = url.contains("depth")
                            || url.contains("orderbook")
                            || url.contains("order_book");
                        if let (true, Some(symbol)) = (book, symbol) {
                            if conns.is_empty() {
                                conns.push((String::new(), Vec::new()));
                            }
                            for (_, records) in &mut conns {
                                records.push(Record::Snapshot {
                                    symbol: symbol.clone(),
                                    body: data.clone(),
                                });
                            }
                        }
                    }
                    _ => {}
                }
            }
            by_venue
                .entry(venue)
                .or_default()
                .extend(conns.into_iter().map(|(_, r)| r).filter(|r| !r.is_empty()));
        }
        let v1 = gemini_v1_streams(&by_venue["gemini"]);
        by_venue.insert(GEMINI_V1.to_owned(), v1);
        // Kraken Futures has no capture: a stream written from the documented frame shapes.
        by_venue.insert("kraken-futures".to_owned(), vec![kraken_futures_stream()]);
        by_venue
    })
}

/// Two products' `book_snapshot`s, then `book` levels with `seq` + 1 (some deletes) and
/// trades, in the shapes of the protocol notes: the corpus the mutations damage.
fn kraken_futures_stream() -> Vec<Record> {
    let mut frames = Vec::new();
    for (product, mid) in [("PI_XBTUSD", 34_900u64), ("PI_ETHUSD", 2_000)] {
        let side = |from: u64, step: i64| {
            (0..20)
                .map(|i| {
                    let price = from as i64 + step * i;
                    format!(r#"{{"price":{price}.5,"qty":{}}}"#, 100 + i)
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        frames.push(format!(
            r#"{{"feed":"book_snapshot","product_id":"{product}","timestamp":1612269825817,"seq":1000,"bids":[{}],"asks":[{}]}}"#,
            side(mid - 1, -1),
            side(mid + 1, 1)
        ));
    }
    for i in 1..=300u64 {
        let (product, mid) = if i % 2 == 0 {
            ("PI_XBTUSD", 34_900)
        } else {
            ("PI_ETHUSD", 2_000)
        };
        let seq = 1000 + i.div_ceil(2);
        let (side, price) = if i % 3 == 0 {
            ("sell", mid + 1 + i % 20)
        } else {
            ("buy", mid - 1 - i % 20)
        };
        let qty = if i % 5 == 0 { 0 } else { i };
        frames.push(format!(
            r#"{{"feed":"book","product_id":"{product}","side":"{side}","seq":{seq},"price":{price}.5,"qty":{qty},"timestamp":1612269953629}}"#
        ));
        if i % 25 == 0 {
            frames.push(format!(
                r#"{{"feed":"trade","product_id":"{product}","uid":"t{i}","side":"buy","type":"fill","seq":{i},"time":1612266317519,"qty":{i},"price":{mid}.5}}"#
            ));
        }
    }
    frames
        .into_iter()
        .map(|f| Record::Frame(f.into_bytes()))
        .collect()
}

/// Gemini v1 has no recording: each symbol of each v2 connection, rewritten as a v1 connection.
fn gemini_v1_streams(v2: &[Vec<Record>]) -> Vec<Vec<Record>> {
    let mut streams = Vec::new();
    for records in v2 {
        let frames: Vec<&str> = records
            .iter()
            .filter_map(|r| match r {
                Record::Frame(bytes) => std::str::from_utf8(bytes).ok(),
                Record::Snapshot { .. } => None,
            })
            .collect();
        let mut symbols: Vec<String> = Vec::new();
        for frame in &frames {
            let value: serde_json::Value = serde_json::from_str(frame).unwrap_or_default();
            if let Some(symbol) = value["symbol"].as_str() {
                if !symbols.iter().any(|s| s == symbol) {
                    symbols.push(symbol.to_owned());
                }
            }
        }
        for symbol in symbols {
            let v1 = gemini_v1::from_v2(&frames, &symbol);
            streams.push(
                v1.into_iter()
                    .map(|f| Record::Frame(f.into_bytes()))
                    .collect(),
            );
        }
    }
    streams
}

#[test]
fn every_venue_has_a_tape() {
    for venue in VENUES {
        let streams = streams().get(*venue);
        assert!(
            streams.is_some_and(|s| !s.is_empty()),
            "no tape of {venue} in {}",
            common::tapes_dir().display()
        );
    }
}

#[test]
fn every_venue_is_fuzzed() {
    for venue in VENUES.iter().chain(&[GEMINI_V1]) {
        assert!(FUZZED.contains(venue), "{venue} has no line in venue_fuzz!");
    }
}

/// The harness feeds what the mutations damage: undamaged, the start of every venue's tape
/// makes live books, so the invariants are checked on real books, not only on empty ones.
#[test]
fn undamaged_runs_reach_live_books() {
    for venue in VENUES.iter().chain(&[GEMINI_V1]) {
        let records = &streams()[*venue][0];
        let mut session = new_session(venue, SessionOptions::default()).unwrap();
        let mut out = Vec::new();
        for (i, record) in records.iter().take(400).enumerate() {
            let _ = match record {
                Record::Frame(frame) => session.receive(frame, i as u64, &mut out),
                Record::Snapshot { symbol, body } => {
                    session.receive_snapshot(symbol, body, i as u64, &mut out)
                }
            };
            invariants::check_books(session.as_ref()).unwrap();
        }
        let symbols = session.symbols();
        let live = (0..symbols.len() as lobfeed_core::SymbolId)
            .filter(|&id| symbols.sync(id).unwrap().state() == lobfeed_core::SyncState::Live)
            .count();
        assert!(live > 0, "{venue}: no live book after 400 real records");
    }
}

/// Values a number is replaced by: out of range, negative, NaN-like, exponents, not numbers.
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "-1",
    "-0.00000001",
    "0.0000000000000000000001",
    "1e400",
    "1E5",
    "1e-30",
    "-1e18",
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "99999999999999999999999999999",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "-9223372036854775808",
    "922337203685.4775807",
    "0x10",
    "1.2.3",
    "+5",
    ".5",
    "5.",
    "",
    "00001",
    "1_000",
];

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit {
        frame: Index,
        at: Index,
        bit: u8,
    },
    Truncate {
        frame: Index,
        at: Index,
    },
    SetByte {
        frame: Index,
        at: Index,
        byte: u8,
    },
    Duplicate {
        frame: Index,
        to: Index,
    },
    Drop {
        frame: Index,
    },
    Move {
        frame: Index,
        to: Index,
    },
    Number {
        frame: Index,
        which: Index,
        with: Index,
        quoted: bool,
    },
    RemoveKey {
        frame: Index,
        which: Index,
    },
    Nest {
        frame: Index,
        which: Index,
        depth: usize,
    },
    LongString {
        frame: Index,
        which: Index,
        len: usize,
        fill: u8,
    },
    Retype {
        frame: Index,
        which: Index,
        with: Index,
    },
    Splice {
        frame: Index,
        from: Index,
        at: Index,
        len: usize,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let i = any::<Index>;
    prop_oneof![
        1 => (i(), i(), 0u8..8).prop_map(|(frame, at, bit)| Mutation::FlipBit { frame, at, bit }),
        1 => (i(), i()).prop_map(|(frame, at)| Mutation::Truncate { frame, at }),
        1 => (i(), i(), prop::sample::select(b"{}[]\",:.-+0123456789eE\\ tfnx\x00\xff".to_vec()))
            .prop_map(|(frame, at, byte)| Mutation::SetByte { frame, at, byte }),
        1 => (i(), i()).prop_map(|(frame, to)| Mutation::Duplicate { frame, to }),
        1 => i().prop_map(|frame| Mutation::Drop { frame }),
        1 => (i(), i()).prop_map(|(frame, to)| Mutation::Move { frame, to }),
        3 => (i(), i(), i(), any::<bool>()).prop_map(|(frame, which, with, quoted)| {
            Mutation::Number { frame, which, with, quoted }
        }),
        2 => (i(), i()).prop_map(|(frame, which)| Mutation::RemoveKey { frame, which }),
        1 => (i(), i(), prop_oneof![1usize..64, 100usize..4_000])
            .prop_map(|(frame, which, depth)| Mutation::Nest { frame, which, depth }),
        1 => (i(), i(), prop_oneof![100usize..2_000, 100_000usize..300_000], prop::sample::select(b"a1.\\\"x".to_vec()))
            .prop_map(|(frame, which, len, fill)| Mutation::LongString { frame, which, len, fill }),
        1 => (i(), i(), i()).prop_map(|(frame, which, with)| Mutation::Retype { frame, which, with }),
        1 => (i(), i(), i(), 1usize..200)
            .prop_map(|(frame, from, at, len)| Mutation::Splice { frame, from, at, len }),
    ]
}

/// A JSON token found by `tokens`: where it is and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Key,
    Str,
    Number,
    Literal,
}

/// Keys, strings, numbers and literals of a (possibly broken) JSON text, by byte range.
fn tokens(text: &[u8]) -> Vec<(Kind, usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'"' => {
                let start = i;
                i += 1;
                while i < text.len() && text[i] != b'"' {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
                let end = (i + 1).min(text.len());
                let mut j = end;
                while j < text.len() && text[j].is_ascii_whitespace() {
                    j += 1;
                }
                let kind = if text.get(j) == Some(&b':') {
                    Kind::Key
                } else {
                    Kind::Str
                };
                out.push((kind, start, end));
                i = end;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < text.len()
                    && matches!(text[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                out.push((Kind::Number, start, i));
            }
            b't' | b'f' | b'n' => {
                let start = i;
                while i < text.len() && text[i].is_ascii_alphabetic() {
                    i += 1;
                }
                out.push((Kind::Literal, start, i));
            }
            _ => i += 1,
        }
    }
    out
}

/// Where the JSON value starting at `start` ends (brackets balanced, strings skipped).
fn value_end(text: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i < text.len() {
        match text[i] {
            b'"' => {
                i += 1;
                while i < text.len() && text[i] != b'"' {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                if depth == 0 {
                    return i.min(text.len());
                }
                continue;
            }
            b'[' | b'{' => depth += 1,
            b']' | b'}' => {
                if depth <= 1 {
                    return (i + 1).min(text.len());
                }
                depth -= 1;
            }
            b',' if depth == 0 => return i,
            _ => {}
        }
        i += 1;
    }
    text.len()
}

/// The `which`-th token of one of `kinds`, if the text has any.
fn pick(text: &[u8], kinds: &[Kind], which: &Index) -> Option<(Kind, usize, usize)> {
    let found: Vec<_> = tokens(text)
        .into_iter()
        .filter(|(k, _, _)| kinds.contains(k))
        .collect();
    (!found.is_empty()).then(|| found[which.index(found.len())])
}

/// Strings that hold a number (`"65000.5"`) count as numbers: venues quote their prices.
fn numeric_string(text: &[u8], start: usize, end: usize) -> bool {
    end >= start + 3
        && text[start + 1..end - 1]
            .iter()
            .all(|c| matches!(c, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
}

fn mutate(records: &mut Vec<Record>, m: &Mutation) {
    if records.is_empty() {
        return;
    }
    let n = records.len();
    match m {
        Mutation::Duplicate { frame, to } => {
            let copy = records[frame.index(n)].clone();
            records.insert(to.index(n + 1), copy);
            return;
        }
        Mutation::Drop { frame } => {
            records.remove(frame.index(n));
            return;
        }
        Mutation::Move { frame, to } => {
            let r = records.remove(frame.index(n));
            records.insert(to.index(n), r);
            return;
        }
        Mutation::Splice {
            frame,
            from,
            at,
            len,
        } => {
            let source = match &records[from.index(n)] {
                Record::Frame(b) | Record::Snapshot { body: b, .. } => b.clone(),
            };
            if source.is_empty() {
                return;
            }
            let s = from.index(source.len());
            let chunk = source[s..(s + len).min(source.len())].to_vec();
            let bytes = records[frame.index(n)].bytes_mut();
            let at = at.index(bytes.len() + 1);
            bytes.splice(at..at, chunk);
            return;
        }
        _ => {}
    }
    let frame = match m {
        Mutation::FlipBit { frame, .. }
        | Mutation::Truncate { frame, .. }
        | Mutation::SetByte { frame, .. }
        | Mutation::Number { frame, .. }
        | Mutation::RemoveKey { frame, .. }
        | Mutation::Nest { frame, .. }
        | Mutation::LongString { frame, .. }
        | Mutation::Retype { frame, .. } => frame.index(n),
        _ => unreachable!("frame-level mutations returned above"),
    };
    let bytes = records[frame].bytes_mut();
    if bytes.is_empty() {
        return;
    }
    let len = bytes.len();
    match m {
        Mutation::FlipBit { at, bit, .. } => bytes[at.index(len)] ^= 1 << bit,
        Mutation::Truncate { at, .. } => bytes.truncate(at.index(len)),
        Mutation::SetByte { at, byte, .. } => bytes[at.index(len)] = *byte,
        Mutation::Number {
            which,
            with,
            quoted,
            ..
        } => {
            let numbers: Vec<_> = tokens(bytes)
                .into_iter()
                .filter(|&(k, s, e)| {
                    k == Kind::Number || (k == Kind::Str && numeric_string(bytes, s, e))
                })
                .collect();
            if numbers.is_empty() {
                return;
            }
            let (_, s, e) = numbers[which.index(numbers.len())];
            let value = NUMBERS[with.index(NUMBERS.len())];
            let text = if *quoted {
                format!("\"{value}\"")
            } else {
                value.to_owned()
            };
            bytes.splice(s..e, text.into_bytes());
        }
        Mutation::RemoveKey { which, .. } => {
            let Some((_, s, e)) = pick(bytes, &[Kind::Key], which) else {
                return;
            };
            let colon = bytes[e..]
                .iter()
                .position(|&c| c == b':')
                .map_or(e, |p| e + p + 1);
            let mut value_start = colon;
            while value_start < bytes.len() && bytes[value_start].is_ascii_whitespace() {
                value_start += 1;
            }
            let mut end = value_end(bytes, value_start);
            // Take one comma with it, after or else before, so the object stays well formed.
            let mut start = s;
            if bytes.get(end) == Some(&b',') {
                end += 1;
            } else if start > 0 && bytes[start - 1] == b',' {
                start -= 1;
            }
            bytes.drain(start..end);
        }
        Mutation::Nest { which, depth, .. } => {
            let kinds = [Kind::Str, Kind::Number, Kind::Literal];
            let (s, e) = match pick(bytes, &kinds, which) {
                Some((_, s, e)) => (s, e),
                None => (0, len),
            };
            let (open, close) = if depth % 2 == 0 {
                (b'[', b']')
            } else {
                (b'{', b'}')
            };
            let mut nested = Vec::with_capacity(e - s + 2 * depth);
            if open == b'[' {
                nested.extend(std::iter::repeat_n(b'[', *depth));
                nested.extend_from_slice(&bytes[s..e]);
                nested.extend(std::iter::repeat_n(b']', *depth));
            } else {
                for _ in 0..*depth {
                    nested.extend_from_slice(b"{\"k\":");
                }
                nested.extend_from_slice(&bytes[s..e]);
                nested.extend(std::iter::repeat_n(close, *depth));
            }
            bytes.splice(s..e, nested);
        }
        Mutation::LongString {
            which,
            len: long,
            fill,
            ..
        } => {
            let (s, e) = match pick(bytes, &[Kind::Str, Kind::Key], which) {
                Some((_, s, e)) => (s, e),
                None => (0, 0),
            };
            let mut text = Vec::with_capacity(long + 2);
            text.push(b'"');
            // `\` and `"` alone would end or escape the string: keep them in valid pairs.
            match fill {
                b'\\' | b'"' => {
                    for _ in 0..long / 2 {
                        text.extend_from_slice(&[b'\\', *fill]);
                    }
                }
                _ => text.extend(std::iter::repeat_n(*fill, *long)),
            }
            text.push(b'"');
            bytes.splice(s..e, text);
        }
        Mutation::Retype { which, with, .. } => {
            const VALUES: &[&str] = &[
                "null",
                "true",
                "{}",
                "[]",
                "[[]]",
                "\"\"",
                "0",
                "-1",
                "{\"a\":[1]}",
                "[\"x\",1]",
            ];
            let Some((_, s, _)) = pick(bytes, &[Kind::Str, Kind::Number, Kind::Literal], which)
            else {
                return;
            };
            let e = value_end(bytes, s);
            let value = VALUES[with.index(VALUES.len())];
            bytes.splice(s..e, value.bytes());
        }
        _ => {}
    }
}

/// A run of a venue's real records, damaged by `mutations`, fed to a fresh session.
fn run(
    venue: &str,
    stream: &Index,
    start: &Index,
    window: usize,
    lead: bool,
    mutations: &[Mutation],
) -> Result<(), TestCaseError> {
    let all = &streams()[venue];
    let records = &all[stream.index(all.len())];
    // A quarter of the cases start at the tape's beginning, where the snapshots bridge.
    let start = if start.index(4) == 0 {
        0
    } else {
        start.index(records.len())
    };
    let end = (start + window).min(records.len());
    let mut input: Vec<Record> = Vec::new();
    if lead && start > 0 {
        // The latest snapshot of each symbol before the window, first.
        let mut latest: Vec<&Record> = Vec::new();
        for r in &records[..start] {
            if let Record::Snapshot { symbol, .. } = r {
                latest.retain(|l| !matches!(l, Record::Snapshot { symbol: s, .. } if s == symbol));
                latest.push(r);
            }
        }
        input.extend(latest.into_iter().cloned());
    }
    input.extend(records[start..end].iter().cloned());
    for m in mutations {
        mutate(&mut input, m);
    }
    let mut session = new_session(venue, SessionOptions::default()).unwrap();
    let mut out: Vec<Event> = Vec::new();
    for (i, record) in input.iter().enumerate() {
        out.clear();
        let ts_ns = 1_700_000_000_000_000_000 + i as u64;
        let result = match record {
            Record::Frame(frame) => session.receive(frame, ts_ns, &mut out),
            Record::Snapshot { symbol, body } => {
                session.receive_snapshot(symbol, body, ts_ns, &mut out)
            }
        };
        if let Err(e) = &result {
            // A typed error that prints.
            let _ = format!("{e} {e:?}");
        }
        if let Err(broken) = invariants::check_books(session.as_ref()) {
            return Err(TestCaseError::fail(format!(
                "{venue}: record {i}: {broken} (after {result:?})"
            )));
        }
    }
    Ok(())
}

macro_rules! venue_fuzz {
    ($($name:ident => $venue:expr),* $(,)?) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]
            $(
                #[test]
                fn $name(
                    stream in any::<Index>(),
                    start in any::<Index>(),
                    window in 1..=MAX_WINDOW,
                    lead in any::<bool>(),
                    mutations in prop::collection::vec(mutation(), 0..8),
                ) {
                    run($venue, &stream, &start, window, lead, &mutations)?;
                }
            )*
        }

        /// The venues given a mutation test above: a venue added to `VENUES` without one fails
        /// `every_venue_is_fuzzed`.
        const FUZZED: &[&str] = &[$($venue),*];
    };
}

venue_fuzz! {
    binance => "binance",
    binance_usdm => "binance-usdm",
    binance_coinm => "binance-coinm",
    okx => "okx",
    kraken => "kraken",
    gemini => "gemini",
    gemini_v1 => GEMINI_V1,
    bitfinex => "bitfinex",
    bybit => "bybit",
    coinbase => "coinbase",
    gateio => "gateio",
    gateio_futures => "gateio-futures",
    bitget => "bitget",
    deribit => "deribit",
    bitmex => "bitmex",
    kraken_futures => "kraken-futures",
    kucoin => "kucoin",
    ascendex => "ascendex",
    htx_swap => "htx-swap",
    upbit => "upbit",
}

/// A record's bytes: a binary frame's are decoded from base64, and a gzip frame (HTX) is
/// inflated, so that the mutations damage the JSON the session reads (which also takes plain
/// JSON) and not only the compressed stream, which its CRC would refuse whole.
fn frame_bytes(r: &common::Record) -> Vec<u8> {
    let data = r.data.as_deref().unwrap_or_default();
    if r.encoding.is_none() {
        return data.as_bytes().to_vec();
    }
    let raw = binary_tapes::base64_decode(data);
    if raw.starts_with(&[0x1f, 0x8b]) {
        binary_tapes::gunzip(&raw)
    } else {
        raw
    }
}
