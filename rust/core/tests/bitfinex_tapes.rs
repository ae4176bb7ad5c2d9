//! Bitfinex P0 books replayed from a real capture (conf flag 65536): the connection's sequence
//! numbers are contiguous, books never cross, trades and tickers decode, history trades are
//! marked as such, and the final books are level for level as large as an independent replay
//! says.

mod common;

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use common::{mutated_frames, read_tape_with_conns, ConnRecord};
use lobfeed_core::{new_session, Decimal, Event, Session, SessionOptions, Side, TradeSide};
use serde_json::value::RawValue;
use serde_json::Value;

const TAPE: &str = "bitfinex-book-p0-7sym-2021.jsonl.gz";

#[derive(Debug, Default)]
struct Proof {
    frames: u64,
    updates: u64,
    snapshots: u64,
    trades: u64,
    history_trades: u64,
    live_trades: u64,
    buys: u64,
    sells: u64,
    /// (symbol, sequence number, [bid, bid size, ask, ask size]) of each quote.
    quotes: Vec<(String, u64, [Decimal; 4])>,
    /// Quotes that came while their symbol's book was live, and of those the ones whose best
    /// bid and ask prices were the book's at that moment.
    quotes_with_book: u64,
    quotes_at_book_top: u64,
    crossed: u64,
    gaps: u64,
    resyncs: u64,
    errors: u64,
    ignored: u64,
    /// Highest connection sequence number seen on a book update, and whether they only grew.
    last_book_seq: u64,
    seq_ordered: bool,
    levels: BTreeMap<String, (usize, usize)>,
}

/// What the tape's data frames hold, counted from the JSON without the session: the trades of
/// the trades channels' snapshots and `te` frames, and each ticker frame's first four numbers.
#[derive(Debug, Default)]
struct FromFrames {
    history_trades: u64,
    live_trades: u64,
    /// (symbol, sequence number, [bid, bid size, ask, ask size]) of each ticker frame.
    tickers: Vec<(String, u64, [Decimal; 4])>,
}

fn count_frames(tape: &[ConnRecord]) -> FromFrames {
    let mut counts = FromFrames::default();
    let mut channels: HashMap<(String, u64), (String, String)> = HashMap::new();
    for r in tape[1..].iter().filter(|r| r.kind == "recv") {
        let conn = r.conn.clone().unwrap_or_default();
        let data = r.data.as_deref().unwrap();
        let value: Value = serde_json::from_str(data).unwrap();
        if value["event"] == "subscribed" {
            let key = (conn, value["chanId"].as_u64().unwrap());
            let symbol = value["symbol"].as_str().unwrap().to_owned();
            channels.insert(key, (value["channel"].as_str().unwrap().to_owned(), symbol));
            continue;
        }
        let Some(chan) = value.get(0).and_then(Value::as_u64) else {
            continue;
        };
        let Some((channel, symbol)) = channels.get(&(conn, chan)) else {
            continue;
        };
        match (channel.as_str(), &value[1]) {
            ("trades", Value::Array(trades)) => counts.history_trades += trades.len() as u64,
            ("trades", Value::String(tag)) if tag == "te" => counts.live_trades += 1,
            ("ticker", Value::Array(_)) => {
                // The numbers' own text, so the digits compare exactly.
                let elements: Vec<&RawValue> = serde_json::from_str(data).unwrap();
                let fields: Vec<&RawValue> = serde_json::from_str(elements[1].get()).unwrap();
                let number = |i: usize| Decimal::parse(fields[i].get()).unwrap();
                let seq = value.as_array().unwrap().last().unwrap().as_u64().unwrap();
                counts.tickers.push((
                    symbol.clone(),
                    seq,
                    [number(0), number(1), number(2), number(3)],
                ));
            }
            _ => {}
        }
    }
    counts
}

fn same(a: Decimal, b: Decimal) -> bool {
    a.cmp(&b) == Ordering::Equal
}

fn replay(tape: &[ConnRecord]) -> Proof {
    let mut sessions: HashMap<String, Box<dyn Session>> = HashMap::new();
    let mut proof = Proof {
        seq_ordered: true,
        ..Proof::default()
    };
    let mut out = Vec::new();
    for r in &tape[1..] {
        if r.kind != "recv" {
            continue;
        }
        let conn = r.conn.clone().unwrap_or_default();
        let session = sessions
            .entry(conn)
            .or_insert_with(|| new_session("bitfinex", SessionOptions::default()).unwrap());
        out.clear();
        let data = r.data.as_deref().unwrap_or("");
        if let Err(e) = session.receive(data.as_bytes(), r.ts_ns, &mut out) {
            eprintln!("frame error: {e:?}");
            proof.errors += 1;
        }
        // A trades snapshot is `[chanId, [[...], ...], seq]`; a live trade `[chanId, "te", ...]`.
        let history_frame = data.starts_with('[') && data.contains(",[[");
        for ev in &out {
            match ev {
                Event::BookUpdated { symbol, seq, .. } => {
                    proof.updates += 1;
                    if session.symbols().sync(*symbol).unwrap().book.is_crossed() {
                        proof.crossed += 1;
                    }
                    let seq = seq.expect("sequenced connection");
                    if seq <= proof.last_book_seq {
                        proof.seq_ordered = false;
                    }
                    proof.last_book_seq = seq;
                }
                Event::Trade(t) => {
                    assert!(!t.price.is_zero() && !t.price.is_negative(), "{t:?}");
                    assert!(!t.size.is_zero() && !t.size.is_negative(), "{t:?}");
                    assert!(t.exchange_ts_ns > 1_600_000_000_000_000_000, "{t:?}");
                    assert_eq!(t.is_snapshot, history_frame, "{t:?} from {data}");
                    proof.trades += 1;
                    if t.is_snapshot {
                        proof.history_trades += 1;
                    } else {
                        proof.live_trades += 1;
                    }
                    match t.side {
                        Some(TradeSide::Buy) => proof.buys += 1,
                        Some(TradeSide::Sell) => proof.sells += 1,
                        None => {}
                    }
                }
                Event::Quote(q) => {
                    assert_eq!(q.ts_ns, r.ts_ns);
                    let book = &session.symbols().sync(q.symbol).unwrap().book;
                    if let (Some(bid), Some(ask)) = (book.best_bid(), book.best_ask()) {
                        proof.quotes_with_book += 1;
                        if same(bid.price, q.bid_price) && same(ask.price, q.ask_price) {
                            proof.quotes_at_book_top += 1;
                        }
                    }
                    assert!(q.bid_price < q.ask_price && q.exchange_ts_ns == 0, "{q:?}");
                    proof.quotes.push((
                        session.symbols().name(q.symbol).to_owned(),
                        q.seq.expect("sequenced connection"),
                        [q.bid_price, q.bid_size, q.ask_price, q.ask_size],
                    ));
                }
                Event::GapDetected { .. } => proof.gaps += 1,
                Event::Resynced { .. } => proof.resyncs += 1,
                _ => {}
            }
        }
    }
    for session in sessions.values() {
        let stats = session.stats();
        proof.frames += stats.frames;
        proof.ignored += stats.ignored;
        let symbols = session.symbols();
        for (id, name) in symbols.names().iter().enumerate() {
            let sync = symbols.sync(id as u32).unwrap();
            proof.snapshots += sync.counters.snapshots;
            proof.levels.insert(
                name.clone(),
                (sync.book.len(Side::Bid), sync.book.len(Side::Ask)),
            );
        }
    }
    proof
}

#[test]
fn bitfinex_book_p0_7sym_2021() {
    let tape = read_tape_with_conns(TAPE);
    let proof = replay(&tape);
    eprintln!(
        "{TAPE}: frames={} updates={} snapshots={} trades={} (history {} live {}; buy {} sell {}) quotes={} (with book {}, at its top {}) crossed={} gaps={} errors={} ignored={} last_book_seq={}",
        proof.frames,
        proof.updates,
        proof.snapshots,
        proof.trades,
        proof.history_trades,
        proof.live_trades,
        proof.buys,
        proof.sells,
        proof.quotes.len(),
        proof.quotes_with_book,
        proof.quotes_at_book_top,
        proof.crossed,
        proof.gaps,
        proof.errors,
        proof.ignored,
        proof.last_book_seq
    );
    assert_eq!(proof.frames, 1693);
    // 7 book snapshots + 1593 single-level updates.
    assert_eq!(proof.snapshots, 7);
    assert_eq!(proof.updates, 1600);
    // The 7 trade-channel snapshots of 30 trades each are history; the capture has no "te".
    let from_frames = count_frames(&tape);
    assert_eq!(
        (from_frames.history_trades, from_frames.live_trades),
        (210, 0)
    );
    assert_eq!(proof.trades, 210);
    assert_eq!(
        (proof.history_trades, proof.live_trades),
        (from_frames.history_trades, from_frames.live_trades)
    );
    assert_eq!(proof.buys + proof.sells, 210);
    // Every ticker frame is a quote, in order, with the frame's numbers and sequence number.
    assert_eq!(from_frames.tickers.len(), 21);
    assert_eq!(proof.quotes, from_frames.tickers);
    // The ticker runs on its own schedule: 7 tickers come before any book, and of the 14 that
    // find a live book, 7 show its best prices while the other 7 lag behind it.
    assert_eq!((proof.quotes_with_book, proof.quotes_at_book_top), (14, 7));
    // 23 events (info, conf, 21 subscribed) + 42 heartbeats.
    assert_eq!(proof.ignored, 65);
    // Sequence 1..=1670 without a hole across all 1670 data frames.
    assert_eq!(proof.gaps, 0, "sequence gaps");
    assert!(proof.seq_ordered);
    assert_eq!(proof.resyncs, 0);
    assert_eq!(proof.crossed, 0, "crossed books");
    assert_eq!(proof.errors, 0, "frame errors");
    let expected: BTreeMap<String, (usize, usize)> = [
        ("tTESTBTC:TESTUSD", (100, 100)),
        ("tDOGUSD", (100, 100)),
        ("tODEUSD", (100, 100)),
        ("tIOTETH", (99, 100)),
        ("tMNABTC", (51, 88)),
        ("tBFTUSD", (96, 100)),
        ("tSNGUSD", (100, 100)),
    ]
    .into_iter()
    .map(|(s, n)| (s.to_owned(), n))
    .collect();
    assert_eq!(proof.levels, expected);
}

/// Dropping one data frame from the real stream is caught by the sequence numbers.
#[test]
fn bitfinex_dropped_frame_is_a_gap() {
    let tape = read_tape_with_conns(TAPE);
    let mut session = new_session("bitfinex", SessionOptions::default()).unwrap();
    let mut out = Vec::new();
    let mut data_frames = 0;
    let mut gaps = Vec::new();
    for r in tape[1..].iter().filter(|r| r.kind == "recv") {
        let data = r.data.as_deref().unwrap();
        if data.starts_with('[') {
            data_frames += 1;
            if data_frames == 900 {
                continue;
            }
        }
        out.clear();
        session.receive(data.as_bytes(), r.ts_ns, &mut out).unwrap();
        for ev in &out {
            if let Event::GapDetected {
                expected, received, ..
            } = ev
            {
                gaps.push((*expected, *received));
            }
        }
    }
    // One GapDetected per book symbol, all for the same hole.
    assert_eq!(gaps.len(), 7);
    assert!(gaps.iter().all(|g| *g == gaps[0]));
    assert_eq!(gaps[0].1, gaps[0].0 + 1);
}

/// Damaged real frames, interleaved with the real stream: every call returns Ok or Err.
#[test]
fn bitfinex_damaged_frames_never_panic() {
    let tape = read_tape_with_conns(TAPE);
    let frames: Vec<&[u8]> = tape[1..]
        .iter()
        .filter(|r| r.kind == "recv")
        .filter_map(|r| r.data.as_deref().map(str::as_bytes))
        .collect();
    let events: Vec<&[u8]> = frames.iter().copied().filter(|f| f[0] == b'{').collect();
    let small: Vec<&[u8]> = frames.iter().copied().filter(|f| f.len() < 400).collect();
    let mut damaged = mutated_frames(&small, 300);
    damaged.extend(mutated_frames(&events, 50));
    let snapshots: Vec<&[u8]> = frames.iter().copied().filter(|f| f.len() > 1000).collect();
    damaged.extend(mutated_frames(&snapshots, 50));

    let mut session = new_session("bitfinex", SessionOptions::default()).unwrap();
    let mut out = Vec::new();
    // Subscriptions first, so damaged data frames reach the book and trade decoders.
    for f in &events {
        session.receive(f, 0, &mut out).unwrap();
    }
    let (mut ok, mut err) = (0, 0);
    for (i, bad) in damaged.iter().enumerate() {
        out.clear();
        let _ = session.receive(frames[i % frames.len()], i as u64, &mut out);
        match session.receive(bad, i as u64, &mut out) {
            Ok(()) => ok += 1,
            Err(_) => err += 1,
        }
    }
    eprintln!(
        "bitfinex: {} damaged frames: {ok} ok, {err} errors",
        damaged.len()
    );
    assert_eq!(ok + err, 400);
    assert!(err > 0);
}
