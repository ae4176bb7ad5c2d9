//! Coinbase Advanced Trade proven on the real tape: `sequence_num` contiguous over the whole
//! connection, books never crossed, every trade's (normalized) taker side agreeing with the
//! book it traded against, candles decoded with their history marked, every ticker a quote.

mod common;

use std::collections::{BTreeMap, HashSet};

use common::{broken_copies, read_tape, with_number, Record};
use lobfeed_core::venue::coinbase::CoinbaseSession;
use lobfeed_core::{Decimal, Event, Session, SessionOptions, TradeSide};
use serde_json::Value;

const TAPE: &str = "coinbase-2026.jsonl.gz";

#[derive(Debug, Default, PartialEq, Eq)]
struct Proof {
    frames: u64,
    book_updates: u64,
    snapshots: u64,
    stale_dropped: u64,
    crossed: u64,
    gaps: u64,
    connection_gaps: u64,
    resyncs: u64,
    errors: u64,
    ignored: u64,
    trades: u64,
    buys: u64,
    sells: u64,
    /// Trades printed at or through the touch whose taker side agrees / disagrees with it.
    taker_agrees: u64,
    taker_disagrees: u64,
    /// Trades of `market_trades` snapshot events (history), marked `is_snapshot`.
    snapshot_trades: u64,
    candles: u64,
    closed_candles: u64,
    /// Candles of `candles` snapshot events, marked `is_snapshot`.
    snapshot_candles: u64,
    /// Closed candles not marked `is_snapshot`: buckets seen to end while streaming.
    live_closed_candles: u64,
    /// `ticker` best bids and asks as `Quote` events; those numbered with their own frame's
    /// `sequence_num`; those whose bid was not below the ask.
    quotes: u64,
    quotes_numbered: u64,
    crossed_quotes: u64,
    /// Quotes equal, price and size both sides, to the book as it stood when they arrived
    /// (`ticker` and `level2` are separate streams: a ticker may run ahead of or behind it),
    /// and quotes equal to the top the book had at some moment of the replay.
    quotes_at_book: u64,
    quotes_seen_in_book: u64,
}

type Top = (Decimal, Decimal, Decimal, Decimal);

fn recv_by_conn(tape: &[Record]) -> BTreeMap<String, Vec<&Record>> {
    let mut conns: BTreeMap<String, Vec<&Record>> = BTreeMap::new();
    for r in tape.iter().filter(|r| r.kind == "recv") {
        let conn = r.conn.clone().expect("recv records name their connection");
        conns.entry(conn).or_default().push(r);
    }
    conns
}

fn replay(records: &[&Record]) -> (Proof, CoinbaseSession) {
    let mut session = CoinbaseSession::new(SessionOptions::default());
    let mut proof = Proof::default();
    // Every top of book each product's book had, and the top each quote said.
    let mut book_tops: HashSet<(u32, Top)> = HashSet::new();
    let mut quote_tops: Vec<(u32, Top)> = Vec::new();
    let mut out = Vec::new();
    for r in records {
        out.clear();
        let data = r.data.as_deref().unwrap_or("");
        proof.frames += 1;
        if let Err(e) = session.receive(data.as_bytes(), r.ts_ns, &mut out) {
            eprintln!("frame error: {e:?}");
            proof.errors += 1;
        }
        for ev in &out {
            match ev {
                Event::BookUpdated { symbol, seq, .. } => {
                    proof.book_updates += 1;
                    assert_eq!(*seq, session.last_sequence(), "seq is the frame's number");
                    let book = &session.symbols().sync(*symbol).unwrap().book;
                    if book.is_crossed() {
                        proof.crossed += 1;
                    }
                    if let (Some(bid), Some(ask)) = (book.best_bid(), book.best_ask()) {
                        book_tops.insert((*symbol, (bid.price, bid.qty, ask.price, ask.qty)));
                    }
                }
                Event::Trade(t) => {
                    proof.trades += 1;
                    if t.is_snapshot {
                        proof.snapshot_trades += 1;
                    }
                    match t.side {
                        Some(TradeSide::Buy) => proof.buys += 1,
                        Some(TradeSide::Sell) => proof.sells += 1,
                        None => {}
                    }
                    let book = &session.symbols().sync(t.symbol).unwrap().book;
                    if let (Some(bid), Some(ask)) = (book.best_bid(), book.best_ask()) {
                        let touch = if t.price >= ask.price {
                            Some(TradeSide::Buy)
                        } else if t.price <= bid.price {
                            Some(TradeSide::Sell)
                        } else {
                            None
                        };
                        match touch {
                            Some(side) if Some(side) == t.side => proof.taker_agrees += 1,
                            Some(_) => proof.taker_disagrees += 1,
                            None => {}
                        }
                    }
                }
                Event::Candle(c) => {
                    proof.candles += 1;
                    if c.closed {
                        proof.closed_candles += 1;
                    }
                    if c.is_snapshot {
                        proof.snapshot_candles += 1;
                    } else if c.closed {
                        proof.live_closed_candles += 1;
                    }
                }
                Event::Quote(q) => {
                    proof.quotes += 1;
                    if q.seq == session.last_sequence() {
                        proof.quotes_numbered += 1;
                    }
                    if q.bid_price >= q.ask_price {
                        proof.crossed_quotes += 1;
                    }
                    let top = (q.bid_price, q.bid_size, q.ask_price, q.ask_size);
                    let book = &session.symbols().sync(q.symbol).unwrap().book;
                    if let (Some(bid), Some(ask)) = (book.best_bid(), book.best_ask()) {
                        if (bid.price, bid.qty, ask.price, ask.qty) == top {
                            proof.quotes_at_book += 1;
                        }
                    }
                    quote_tops.push((q.symbol, top));
                }
                Event::GapDetected { .. } => proof.gaps += 1,
                Event::Resynced { .. } => proof.resyncs += 1,
                _ => {}
            }
        }
    }
    for id in 0..session.symbols().len() as u32 {
        let counters = session.symbols().sync(id).unwrap().counters;
        proof.snapshots += counters.snapshots;
        proof.stale_dropped += counters.stale_dropped;
    }
    proof.quotes_seen_in_book = quote_tops.iter().filter(|q| book_tops.contains(q)).count() as u64;
    proof.ignored = session.stats().ignored;
    proof.connection_gaps = session.connection_gaps();
    assert_eq!(session.stats().errors, proof.errors);
    (proof, session)
}

#[test]
fn coinbase_2026_books_trades_candles() {
    let tape = read_tape(TAPE);
    assert_eq!(tape[0].venue.as_deref(), Some("coinbase"));
    let conns = recv_by_conn(&tape);
    assert_eq!(conns.keys().collect::<Vec<_>>(), ["c2"]);
    let (proof, session) = replay(&conns["c2"]);
    eprintln!("{TAPE} c2: {proof:?}");
    assert_eq!(
        proof,
        Proof {
            frames: 1030,
            book_updates: 775,
            snapshots: 2,
            stale_dropped: 0,
            crossed: 0,
            gaps: 0,
            connection_gaps: 0,
            resyncs: 0,
            errors: 0,
            ignored: 30,
            trades: 279,
            buys: 154,
            sells: 125,
            taker_agrees: 71,
            taker_disagrees: 0,
            snapshot_trades: 200,
            candles: 204,
            closed_candles: 198,
            snapshot_candles: 200,
            live_closed_candles: 0,
            quotes: 160,
            quotes_numbered: 160,
            crossed_quotes: 0,
            quotes_at_book: 114,
            quotes_seen_in_book: 153,
        }
    );
    // The same counts, read off the tape's frames without the session.
    let counted = count_items(&conns["c2"]);
    assert_eq!(
        (proof.quotes, proof.snapshot_trades, proof.snapshot_candles),
        (
            counted.tickers,
            counted.snapshot_trades,
            counted.snapshot_candles
        )
    );
    // History sent on subscribe: 99 finished buckets and the one in progress, per product.
    assert_eq!(proof.closed_candles, 2 * 99);
    // sequence_num ran 0..=1029 without a break.
    assert_eq!(session.last_sequence(), Some(1029));
    let mut names: Vec<_> = session.symbols().names().to_vec();
    names.sort();
    assert_eq!(names, ["BTC-USD", "ETH-USD"]);
}

/// What the tape's frames hold, counted from their JSON alone.
#[derive(Debug, Default)]
struct Counted {
    /// Tickers with a best bid, an ask and both quantities.
    tickers: u64,
    snapshot_trades: u64,
    snapshot_candles: u64,
}

fn count_items(records: &[&Record]) -> Counted {
    let mut counted = Counted::default();
    for r in records {
        let frame: Value = serde_json::from_str(r.data.as_deref().unwrap()).unwrap();
        let events = frame["events"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        for event in events {
            let snapshot = event["type"] == "snapshot";
            let items = |key: &str| event[key].as_array().map_or(0, Vec::len) as u64;
            match frame["channel"].as_str() {
                Some("ticker") => {
                    let whole = |t: &&Value| {
                        [
                            "best_bid",
                            "best_bid_quantity",
                            "best_ask",
                            "best_ask_quantity",
                        ]
                        .iter()
                        .all(|k| t[k].as_str().is_some_and(|v| !v.is_empty()))
                    };
                    let tickers = event["tickers"].as_array().unwrap();
                    counted.tickers += tickers.iter().filter(whole).count() as u64;
                }
                Some("market_trades") if snapshot => counted.snapshot_trades += items("trades"),
                Some("candles") if snapshot => counted.snapshot_candles += items("candles"),
                _ => {}
            }
        }
    }
    counted
}

/// Cut short, byte-flipped, shortened and stretched copies of real frames: every one is `Ok`
/// or a typed error, never a panic. Each copy is renumbered to follow on (a stale number would
/// only trip the connection check), and before each one both books are made live again from
/// the real snapshots cut to their best 300 levels a side (the full ones are megabytes).
#[test]
fn coinbase_mutated_frames_never_panic() {
    let tape = read_tape(TAPE);
    let conns = recv_by_conn(&tape);
    let records = &conns["c2"];
    let big: Vec<usize> = (0..records.len())
        .filter(|&i| records[i].data.as_deref().unwrap().len() > 1_000_000)
        .collect();
    assert_eq!(big.len(), 2, "the two l2_data snapshots");
    let small: Vec<String> = big
        .iter()
        .map(|&i| best_levels(records[i].data.as_deref().unwrap(), 300))
        .collect();
    let start = big[1] + 1;
    let mut session = CoinbaseSession::new(SessionOptions::default());
    let (mut fed, mut rejected, mut applied) = (0, 0, 0);
    let mut out = Vec::new();
    let samples = 30;
    for k in 0..samples {
        let at = start + k * (records.len() - start) / samples;
        let frame = records[at].data.as_deref().unwrap();
        for i in 0..12 {
            // Live books first, then the copy numbered to follow on.
            for snapshot in &small {
                let next = session.last_sequence().map_or(0, |s| s + 1);
                out.clear();
                session
                    .receive(
                        with_number(snapshot, "sequence_num", next)
                            .unwrap()
                            .as_bytes(),
                        1,
                        &mut out,
                    )
                    .unwrap();
            }
            let next = session.last_sequence().map_or(0, |s| s + 1);
            let renumbered = with_number(frame, "sequence_num", next).unwrap();
            let m = broken_copies(renumbered.as_bytes(), 12, (k * 12 + i) as u64).swap_remove(i);
            out.clear();
            match session.receive(&m, 1, &mut out) {
                Ok(()) => {
                    if out.iter().any(|e| matches!(e, Event::BookUpdated { .. })) {
                        applied += 1;
                    }
                }
                Err(_) => rejected += 1,
            }
            fed += 1;
        }
    }
    eprintln!(
        "{TAPE}: {fed} mutated frames fed, {rejected} rejected with typed errors, \
         {applied} accepted as book updates"
    );
    assert!(fed >= 300);
    assert!(rejected > 0 && applied > 0);
}

/// A real `l2_data` snapshot frame keeping only its best `depth` levels a side.
fn best_levels(frame: &str, depth: usize) -> String {
    let mut value: serde_json::Value = serde_json::from_str(frame).unwrap();
    let updates = value["events"][0]["updates"].as_array_mut().unwrap();
    let price = |u: &serde_json::Value| u["price_level"].as_str().unwrap().parse::<f64>().unwrap();
    let (mut bids, mut offers): (Vec<_>, Vec<_>) =
        updates.drain(..).partition(|u| u["side"] == "bid");
    bids.sort_by(|a, b| price(b).total_cmp(&price(a)));
    offers.sort_by(|a, b| price(a).total_cmp(&price(b)));
    bids.truncate(depth);
    offers.truncate(depth);
    updates.extend(bids);
    updates.extend(offers);
    value.to_string()
}
