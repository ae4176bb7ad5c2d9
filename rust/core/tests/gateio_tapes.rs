//! Gate spot and USDT futures books proven on real captures: every `U`/`u` chain unbroken from
//! the REST snapshot's `id`, futures sizes whole contracts, and each futures `book_ticker`
//! equal to the book at the same `u`, digit for digit.

mod common;

use std::collections::HashMap;

use common::{query_param, Record};
use lobfeed_core::{new_session, Event, SessionOptions, SyncCounters};
use serde_json::Value;

const SPOT: &str = "gateio-spot-10sym-2021.jsonl.gz";
const FUTURES: &str = "gateio-futures-10sym-2023.jsonl.gz";

/// A tape of `../shared/data/tapes-more` (the issue-12 venues), through the `tapes/` reader.
fn read_more_tape(name: &str) -> Vec<Record> {
    common::read_tape(&format!("../tapes-more/{name}"))
}

type Top = (String, String, String, String);

#[derive(Debug, Default, PartialEq, Eq)]
struct Proof {
    updates: u64,
    gaps: u64,
    crossed: u64,
    errors: u64,
    trades: u64,
    candles: u64,
    quotes: u64,
    quotes_checked: u64,
    quotes_agreed: u64,
    /// Of the checks, those at an update's `u` and those at a REST snapshot's `id`.
    quote_checks_at_updates: u64,
    quote_checks_at_snapshots: u64,
    /// Summed over symbols: snapshots taken, updates dropped as already in a snapshot.
    snapshots: u64,
    stale: u64,
    /// Symbols whose book is live at the end.
    live: usize,
    /// Levels in the books at any update whose size is not a whole number.
    fractional_sizes: u64,
}

fn replay(records: &[&Record], venue: &str) -> Proof {
    let mut session = new_session(venue, SessionOptions::default()).unwrap();
    let mut proof = Proof::default();
    // The book's top at each id, and whether a REST snapshot put it there.
    let mut tops: HashMap<(String, u64), (Top, bool)> = HashMap::new();
    let mut quotes: HashMap<(String, u64), Top> = HashMap::new();
    let mut out = Vec::new();
    for r in records {
        out.clear();
        let data = r.data.as_deref().unwrap_or("");
        let result = match r.kind.as_str() {
            "recv" => session.receive(data.as_bytes(), r.ts_ns, &mut out),
            "http" => {
                let url = r.url.as_deref().unwrap();
                let symbol = query_param(url, "currency_pair").or(query_param(url, "contract"));
                match symbol {
                    Some(symbol) => {
                        session.receive_snapshot(&symbol, data.as_bytes(), r.ts_ns, &mut out)
                    }
                    None => Ok(()), // the instrument list
                }
            }
            _ => Ok(()),
        };
        let snapshot = r.kind == "http";
        if let Err(e) = result {
            eprintln!("{e}");
            proof.errors += 1;
        }
        for ev in &out {
            match ev {
                Event::BookUpdated { symbol, seq, .. } => {
                    proof.updates += 1;
                    let sync = session.symbols().sync(*symbol).unwrap();
                    let book = &sync.book;
                    if book.is_crossed() {
                        proof.crossed += 1;
                    }
                    proof.fractional_sizes += book
                        .bids()
                        .chain(book.asks())
                        .filter(|l| l.qty.scale() > 0)
                        .count() as u64;
                    if let (Some(seq), Some(b), Some(a)) = (seq, book.best_bid(), book.best_ask()) {
                        let name = session.symbols().name(*symbol).to_owned();
                        let top = (
                            b.price.to_string(),
                            b.qty.to_string(),
                            a.price.to_string(),
                            a.qty.to_string(),
                        );
                        tops.insert((name, *seq), (top, snapshot));
                    }
                }
                Event::Quote(q) => {
                    proof.quotes += 1;
                    let name = session.symbols().name(q.symbol).to_owned();
                    let quote = (
                        q.bid_price.to_string(),
                        q.bid_size.to_string(),
                        q.ask_price.to_string(),
                        q.ask_size.to_string(),
                    );
                    quotes.insert((name, q.seq.expect("book_ticker has u")), quote);
                }
                Event::GapDetected { .. } => proof.gaps += 1,
                Event::Trade(_) => proof.trades += 1,
                Event::Candle(_) => proof.candles += 1,
                _ => {}
            }
        }
    }
    for (key, quote) in &quotes {
        if let Some((top, at_snapshot)) = tops.get(key) {
            proof.quotes_checked += 1;
            if *at_snapshot {
                proof.quote_checks_at_snapshots += 1;
            } else {
                proof.quote_checks_at_updates += 1;
            }
            if top == quote {
                proof.quotes_agreed += 1;
            } else {
                eprintln!("{key:?}: book {top:?} vs book_ticker {quote:?}");
            }
        }
    }
    let symbols = session.symbols();
    for id in 0..symbols.len() {
        let sync = symbols.sync(id as u32).unwrap();
        let SyncCounters {
            snapshots,
            stale_dropped,
            ..
        } = sync.counters;
        proof.snapshots += snapshots;
        proof.stale += stale_dropped;
        if sync.state() == lobfeed_core::SyncState::Live {
            proof.live += 1;
        }
    }
    proof
}

/// Frames of `channel` with event `update`, and their `result` rows (a list on futures).
fn rows_of(tape: &[Record], channel: &str) -> Vec<Value> {
    tape.iter()
        .filter(|r| r.kind == "recv")
        .filter_map(|r| serde_json::from_str::<Value>(r.data.as_deref()?).ok())
        .filter(|f| f["channel"] == channel && f["event"] == "update")
        .flat_map(|f| match &f["result"] {
            Value::Array(rows) => rows.clone(),
            row => vec![row.clone()],
        })
        .collect()
}

/// The `U`/`u` chain read from the frames alone, without the session.
#[derive(Debug, PartialEq, Eq)]
struct Chain {
    /// Per symbol, the update bridging its snapshot's `id` (`U <= id + 1 <= u`).
    bridged: u64,
    /// Updates starting right after the previous one (`U == previous u + 1`).
    chained: u64,
    /// Neither: a gap.
    broken: u64,
    /// Of those bridged or chained, how many arrived before their snapshot (applied with it).
    before_snapshot: u64,
}

fn chain_from_frames(tape: &[Record], channel: &str) -> Chain {
    let mut snapshot: HashMap<String, u64> = HashMap::new();
    let mut pending: HashMap<String, Vec<(u64, u64)>> = HashMap::new();
    let mut last: HashMap<String, u64> = HashMap::new();
    let mut chain = Chain {
        bridged: 0,
        chained: 0,
        broken: 0,
        before_snapshot: 0,
    };
    let mut link = |symbol: &str, first: u64, end: u64, id: u64, buffered: bool| {
        match last.get(symbol) {
            Some(&prev) if first == prev + 1 => chain.chained += 1,
            Some(_) => chain.broken += 1,
            None if end <= id => return,
            None if first <= id + 1 => chain.bridged += 1,
            None => chain.broken += 1,
        }
        chain.before_snapshot += u64::from(buffered);
        last.insert(symbol.to_owned(), end);
    };
    for r in tape {
        let data = r.data.as_deref().unwrap_or("");
        if r.kind == "http" {
            let url = r.url.as_deref().unwrap();
            let Some(symbol) = query_param(url, "currency_pair").or(query_param(url, "contract"))
            else {
                continue;
            };
            let id = serde_json::from_str::<Value>(data).unwrap()["id"]
                .as_u64()
                .unwrap();
            snapshot.insert(symbol.clone(), id);
            for (first, end) in pending.remove(&symbol).unwrap_or_default() {
                link(&symbol, first, end, id, true);
            }
        } else if r.kind == "recv" {
            let frame: Value = serde_json::from_str(data).unwrap();
            if frame["channel"] != channel || frame["event"] != "update" {
                continue;
            }
            let result = &frame["result"];
            let symbol = result["s"].as_str().unwrap().to_owned();
            let (first, end) = (result["U"].as_u64().unwrap(), result["u"].as_u64().unwrap());
            match snapshot.get(&symbol) {
                Some(&id) => link(&symbol, first, end, id, false),
                None => pending.entry(symbol).or_default().push((first, end)),
            }
        }
    }
    chain
}

/// Each REST snapshot delivered `by` frames later than recorded, so updates must be buffered.
fn snapshots_later(tape: &[Record], by: usize) -> Vec<&Record> {
    let mut moved: Vec<&Record> = Vec::with_capacity(tape.len());
    let mut pending: Vec<(usize, &Record)> = Vec::new();
    for r in &tape[1..] {
        if r.kind == "http" {
            pending.push((moved.len() + by, r));
            continue;
        }
        moved.push(r);
        while let Some(at) = pending.iter().position(|(due, _)| *due <= moved.len()) {
            moved.push(pending.remove(at).1);
        }
    }
    moved.extend(pending.into_iter().map(|(_, r)| r));
    moved
}

#[test]
fn spot_chains_bridge_every_snapshot() {
    let tape = read_more_tape(SPOT);
    assert_eq!(tape[0].venue.as_deref(), Some("gateio"));
    let records: Vec<&Record> = tape[1..].iter().collect();
    let proof = replay(&records, "gateio");
    eprintln!("{SPOT}: {proof:?}");
    // From the frames alone: 8 bridges and 151 links, no break (2 symbols never update after
    // their snapshot; 13 updates are older than theirs).
    let chain = chain_from_frames(&tape, "spot.order_book_update");
    assert_eq!(
        chain,
        Chain {
            bridged: 8,
            chained: 151,
            broken: 0,
            before_snapshot: 1
        }
    );
    assert_eq!(proof.snapshots, 10);
    assert_eq!(proof.live, 10);
    assert_eq!(proof.stale, 13);
    // One book event per snapshot taken and per link after it (those before it go in with it).
    assert_eq!(
        proof.updates,
        10 + chain.bridged + chain.chained - chain.before_snapshot
    );
    assert_eq!(proof.updates, 168);
    assert_eq!((proof.gaps, proof.crossed, proof.errors), (0, 0, 0));
    assert_eq!(proof.trades, rows_of(&tape, "spot.trades").len() as u64);
    assert_eq!(proof.trades, 9);
    assert_eq!(
        proof.candles,
        rows_of(&tape, "spot.candlesticks").len() as u64
    );
    assert_eq!(proof.candles, 14);
    // Spot tickers carry no sizes: not quotes.
    assert_eq!(proof.quotes, 0);
}

#[test]
fn futures_chains_bridge_and_book_tickers_agree() {
    let tape = read_more_tape(FUTURES);
    assert_eq!(tape[0].venue.as_deref(), Some("gateio-futures"));
    let records: Vec<&Record> = tape[1..].iter().collect();
    let proof = replay(&records, "gateio-futures");
    eprintln!("{FUTURES}: {proof:?}");
    let chain = chain_from_frames(&tape, "futures.order_book_update");
    assert_eq!(
        chain,
        Chain {
            bridged: 9,
            chained: 307,
            broken: 0,
            before_snapshot: 0
        }
    );
    assert_eq!(proof.snapshots, 10);
    assert_eq!(proof.live, 10);
    assert_eq!(proof.stale, 36);
    assert_eq!(
        proof.updates,
        10 + chain.bridged + chain.chained - chain.before_snapshot
    );
    assert_eq!(proof.updates, 326);
    assert_eq!((proof.gaps, proof.crossed, proof.errors), (0, 0, 0));
    assert_eq!(
        proof.quotes,
        rows_of(&tape, "futures.book_ticker").len() as u64
    );
    assert_eq!(proof.quotes, 75);
    // 16 book tickers name the `u` of an update applied after the snapshot, and 2 (WOO_USDT,
    // DIA_USDT) the snapshot's own `id`: all 18 equal the book's top there.
    assert_eq!((proof.quotes_checked, proof.quotes_agreed), (18, 18));
    assert_eq!(
        (
            proof.quote_checks_at_updates,
            proof.quote_checks_at_snapshots
        ),
        (16, 2)
    );
    assert_eq!(
        proof.candles,
        rows_of(&tape, "futures.candlesticks").len() as u64
    );
    assert_eq!(proof.candles, 1);
    assert_eq!(proof.trades, 0);
    // Sizes are whole contracts: in every frame (JSON integers) and so in every book.
    let levels = rows_of(&tape, "futures.order_book_update")
        .iter()
        .flat_map(|row| {
            let side = |k: &str| row[k].as_array().cloned().unwrap_or_default();
            [side("b"), side("a")].concat()
        })
        .collect::<Vec<_>>();
    assert!(!levels.is_empty());
    assert!(levels.iter().all(|level| level["s"].is_u64()));
    assert_eq!(proof.fractional_sizes, 0);
}

/// The order seen in live recordings of other venues: the snapshot after the updates that
/// bridge it. Delivered 40 frames late, every book must still bridge with nothing lost.
#[test]
fn snapshots_after_bridging_updates() {
    for (name, venue) in [(SPOT, "gateio"), (FUTURES, "gateio-futures")] {
        let tape = read_more_tape(name);
        let on_time = replay(&tape[1..].iter().collect::<Vec<_>>(), venue);
        let late = replay(&snapshots_later(&tape, 40), venue);
        eprintln!("{name} late: {late:?}");
        assert_eq!((late.gaps, late.crossed, late.errors), (0, 0, 0), "{name}");
        assert_eq!(late.live, 10, "{name}");
        assert_eq!(late.snapshots, 10, "{name}");
        // Updates buffered before a late snapshot are applied with it: fewer book events.
        assert!(late.updates <= on_time.updates, "{name}");
        assert_eq!(
            late.quotes_agreed, late.quotes_checked,
            "{name}: book tickers disagree"
        );
    }
}

/// `query_param` is what the tape tests read REST symbols with; keep it honest for Gate's URLs.
#[test]
fn snapshot_urls_name_their_symbol() {
    for (name, param) in [(SPOT, "currency_pair"), (FUTURES, "contract")] {
        let tape = read_more_tape(name);
        let symbols: Vec<String> = tape
            .iter()
            .filter(|r| r.kind == "http")
            .filter_map(|r| query_param(r.url.as_deref()?, param))
            .collect();
        assert_eq!(symbols.len(), 10, "{name}");
    }
}
