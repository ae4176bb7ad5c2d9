//! Coinbase Advanced Trade proven on the real tape: `sequence_num` contiguous over the whole
//! connection, books never crossed, every trade's (normalized) taker side agreeing with the
//! book it traded against, candles decoded.

mod common;

use std::collections::BTreeMap;

use common::{broken_copies, read_tape, with_number, Record};
use lobfeed_core::venue::coinbase::CoinbaseSession;
use lobfeed_core::{Event, Session, SessionOptions, TradeSide};

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
    candles: u64,
    closed_candles: u64,
}

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
                    if session.symbols().sync(*symbol).unwrap().book.is_crossed() {
                        proof.crossed += 1;
                    }
                }
                Event::Trade(t) => {
                    proof.trades += 1;
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
            ignored: 190,
            trades: 279,
            buys: 154,
            sells: 125,
            taker_agrees: 71,
            taker_disagrees: 0,
            candles: 204,
            closed_candles: 198,
        }
    );
    // sequence_num ran 0..=1029 without a break.
    assert_eq!(session.last_sequence(), Some(1029));
    let mut names: Vec<_> = session.symbols().names().to_vec();
    names.sort();
    assert_eq!(names, ["BTC-USD", "ETH-USD"]);
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
