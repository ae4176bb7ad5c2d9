//! KuCoin books proven on the real tape: the `sequenceStart`/`sequenceEnd` chain never breaks,
//! every REST snapshot (all arriving after the symbol's first update) bridges the buffered
//! updates, and wherever a ticker's `sequence` is one the book stood at, the book's best bid
//! and ask equal the ticker's, digit for digit.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};

use common::{query_symbol, read_tape};
use lobfeed_core::{new_session, Decimal, Event, SessionOptions};

const TAPE: &str = "kucoin-l2-10sym-2021.jsonl.gz";

type Top = Option<(Decimal, Decimal)>;

#[derive(Debug, Default)]
struct Proof {
    book_updates: u64,
    crossed: u64,
    gaps: u64,
    resyncs: u64,
    errors: u64,
    trades: u64,
    candles: u64,
    quotes: u64,
    /// Snapshots that came after their symbol's first update, and those that left it live.
    late_snapshots: u64,
    bridged: u64,
    /// Tickers whose sequence the book stood at, and those agreeing with it.
    quotes_checked: u64,
    quotes_agreed: u64,
}

/// What the tape itself holds, counted from the frames (not from the session).
#[derive(Debug, Default, PartialEq)]
struct Counted {
    trades: u64,
    candles: u64,
    tickers: u64,
    /// Changes with price "0": they advance the sequence only.
    sequence_only: u64,
}

fn count_frames(frames: &[&str]) -> Counted {
    let mut counted = Counted::default();
    for frame in frames {
        let value: serde_json::Value = serde_json::from_str(frame).unwrap();
        match value["subject"].as_str() {
            Some("trade.l3match") => counted.trades += 1,
            Some("trade.ticker") => counted.tickers += 1,
            Some(s) if s.starts_with("trade.candles.") => counted.candles += 1,
            Some("trade.l2update") => {
                for side in ["asks", "bids"] {
                    for change in value["data"]["changes"][side].as_array().unwrap() {
                        if change[0] == "0" {
                            counted.sequence_only += 1;
                        }
                    }
                }
            }
            _ => {}
        }
    }
    counted
}

#[test]
fn kucoin_l2_10sym_2021() {
    let tape = read_tape(TAPE);
    assert_eq!(tape[0].venue.as_deref(), Some("kucoin"));
    let mut session = new_session("kucoin", SessionOptions::default()).unwrap();
    let mut proof = Proof::default();
    let mut out = Vec::new();
    let mut tops: HashMap<(u32, u64), (Top, Top)> = HashMap::new();
    let mut quotes: BTreeMap<(u32, u64), (Top, Top)> = BTreeMap::new();
    let mut updated: HashSet<String> = HashSet::new();
    let mut frames = Vec::new();
    for r in &tape[1..] {
        let data = r.data.as_deref().unwrap_or("");
        out.clear();
        let result = match r.kind.as_str() {
            "recv" => {
                frames.push(data);
                let value: serde_json::Value = serde_json::from_str(data).unwrap();
                if value["subject"] == "trade.l2update" {
                    updated.insert(value["data"]["symbol"].as_str().unwrap().to_owned());
                }
                session.receive(data.as_bytes(), r.ts_ns, &mut out)
            }
            "http" => {
                let url = r.url.as_deref().unwrap_or("");
                let Some(symbol) = query_symbol(url) else {
                    continue; // the instrument list
                };
                let late = updated.contains(&symbol);
                let result = session.receive_snapshot(&symbol, data.as_bytes(), r.ts_ns, &mut out);
                if late {
                    proof.late_snapshots += 1;
                    if out.iter().any(|e| matches!(e, Event::BookUpdated { .. })) {
                        proof.bridged += 1;
                    }
                }
                result
            }
            _ => continue,
        };
        if let Err(e) = result {
            eprintln!("frame error: {e}");
            proof.errors += 1;
        }
        for ev in &out {
            match ev {
                Event::BookUpdated { symbol, seq, .. } => {
                    proof.book_updates += 1;
                    let book = &session.symbols().sync(*symbol).unwrap().book;
                    if book.is_crossed() {
                        proof.crossed += 1;
                    }
                    let level = |l: Option<lobfeed_core::Level>| l.map(|l| (l.price, l.qty));
                    let seq = seq.expect("every KuCoin book update has a sequence");
                    tops.insert(
                        (*symbol, seq),
                        (level(book.best_bid()), level(book.best_ask())),
                    );
                }
                Event::GapDetected { .. } => proof.gaps += 1,
                Event::Trade(t) => {
                    assert!(t.side.is_some() && !t.trade_id.is_empty());
                    assert!(t.exchange_ts_ns > 1_600_000_000_000_000_000);
                    proof.trades += 1;
                }
                Event::Candle(c) => {
                    assert_eq!(c.interval, "1m");
                    proof.candles += 1;
                }
                Event::Quote(q) => {
                    proof.quotes += 1;
                    let seq = q.seq.expect("KuCoin tickers carry their sequence");
                    quotes.insert(
                        (q.symbol, seq),
                        (
                            Some((q.bid_price, q.bid_size)),
                            Some((q.ask_price, q.ask_size)),
                        ),
                    );
                }
                _ => {}
            }
        }
    }
    for (key, quote) in &quotes {
        if let Some(top) = tops.get(key) {
            proof.quotes_checked += 1;
            if top == quote {
                proof.quotes_agreed += 1;
            } else {
                eprintln!("disagree at {key:?}: book {top:?} ticker {quote:?}");
            }
        }
    }
    for id in 0..session.symbols().len() as u32 {
        proof.resyncs += session.symbols().sync(id).unwrap().counters.resyncs;
    }
    eprintln!("{TAPE}: {proof:?}");
    let counted = count_frames(&frames);
    eprintln!("counted from the frames: {counted:?}");
    assert_eq!((proof.late_snapshots, proof.bridged), (9, 9));
    assert_eq!((proof.quotes_checked, proof.quotes_agreed), (819, 819));
    assert_eq!(proof.gaps, 0, "the sequence chain is unbroken");
    assert_eq!(proof.resyncs, 0);
    assert_eq!(proof.crossed, 0);
    assert_eq!(proof.errors, 0);
    assert_eq!(proof.trades, counted.trades);
    assert_eq!(proof.candles, counted.candles);
    assert_eq!(proof.quotes, counted.tickers);
    assert_eq!(
        (counted.trades, counted.candles, counted.tickers),
        (18, 6, 830)
    );
    assert!(counted.sequence_only > 0);
    assert_eq!(proof.book_updates, 3814);
    // LTX-USDT was subscribed but stayed silent: nine books.
    assert_eq!(session.symbols().len(), 9);
}
