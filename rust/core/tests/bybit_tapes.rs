//! Bybit v5 books proven on the real tape (linear connection c2, spot connection c3): ids
//! contiguous, `orderbook.200` at exactly 200 levels a side after every update, never crossed,
//! every trade's taker side agreeing with the book it traded against, and the top-of-book
//! topic that spot quotes come from equal to the book.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};

use common::{broken_copies, find_number, read_tape, with_number, Record};
use lobfeed_core::{new_session, Decimal, Event, Session, SessionOptions, Side, TradeSide};

const TAPE: &str = "bybit-2026.jsonl.gz";
const DEPTH: usize = 200;

#[derive(Debug, Default, PartialEq, Eq)]
struct Proof {
    frames: u64,
    book_updates: u64,
    snapshots: u64,
    /// BookUpdated events after which the book was exactly `DEPTH` x `DEPTH`.
    at_depth: u64,
    /// BookUpdated events after which a book that had been full was not `DEPTH` x `DEPTH`.
    depth_breaks: u64,
    crossed: u64,
    gaps: u64,
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
    /// `tickers` top of book as `Quote` events (linear only: spot tickers carry none), and
    /// those whose bid was not below the ask.
    quotes: u64,
    crossed_quotes: u64,
}

fn recv_by_conn(tape: &[Record]) -> BTreeMap<String, Vec<&Record>> {
    let mut conns: BTreeMap<String, Vec<&Record>> = BTreeMap::new();
    for r in tape.iter().filter(|r| r.kind == "recv") {
        let conn = r.conn.clone().expect("recv records name their connection");
        conns.entry(conn).or_default().push(r);
    }
    conns
}

fn replay(records: &[&Record]) -> (Proof, Box<dyn Session>) {
    let mut session = new_session("bybit", SessionOptions::default()).unwrap();
    let mut proof = Proof::default();
    let mut full: HashSet<u32> = HashSet::new();
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
                Event::BookUpdated { symbol, .. } => {
                    proof.book_updates += 1;
                    let book = &session.symbols().sync(*symbol).unwrap().book;
                    if book.is_crossed() {
                        proof.crossed += 1;
                    }
                    let (bids, asks) = (book.len(Side::Bid), book.len(Side::Ask));
                    if bids == DEPTH && asks == DEPTH {
                        proof.at_depth += 1;
                        full.insert(*symbol);
                    } else if full.contains(symbol) {
                        eprintln!("depth {bids}x{asks} after an update of symbol {symbol}");
                        proof.depth_breaks += 1;
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
                Event::Quote(q) => {
                    proof.quotes += 1;
                    if q.bid_price >= q.ask_price {
                        proof.crossed_quotes += 1;
                    }
                }
                Event::GapDetected { .. } => proof.gaps += 1,
                Event::Resynced { .. } => proof.resyncs += 1,
                _ => {}
            }
        }
    }
    for id in 0..session.symbols().len() as u32 {
        proof.snapshots += session.symbols().sync(id).unwrap().counters.snapshots;
    }
    proof.ignored = session.stats().ignored;
    assert_eq!(session.stats().errors, proof.errors);
    (proof, session)
}

#[test]
fn bybit_2026_books_trades_candles() {
    let tape = read_tape(TAPE);
    assert_eq!(tape[0].venue.as_deref(), Some("bybit"));
    let conns = recv_by_conn(&tape);
    assert_eq!(conns.keys().collect::<Vec<_>>(), ["c2", "c3"]);

    let (linear, session) = replay(&conns["c2"]);
    eprintln!("{TAPE} c2 (linear): {linear:?}");
    let mut names: Vec<_> = session.symbols().names().to_vec();
    names.sort();
    assert_eq!(names, ["BTCUSDT", "DOGEUSDT", "ETHUSDT", "SOLUSDT"]);
    assert_eq!(
        linear,
        Proof {
            frames: 2546,
            book_updates: 1598,
            snapshots: 4,
            at_depth: 1598,
            depth_breaks: 0,
            crossed: 0,
            gaps: 0,
            resyncs: 0,
            errors: 0,
            ignored: 137,
            trades: 327,
            buys: 112,
            sells: 215,
            taker_agrees: 327,
            taker_disagrees: 0,
            candles: 75,
            closed_candles: 4,
            quotes: 638,
            crossed_quotes: 0,
        }
    );

    let (spot, session) = replay(&conns["c3"]);
    eprintln!("{TAPE} c3 (spot): {spot:?}");
    let mut names: Vec<_> = session.symbols().names().to_vec();
    names.sort();
    assert_eq!(names, ["BTCUSDT", "ETHUSDT"]);
    assert_eq!(
        spot,
        Proof {
            frames: 681,
            book_updates: 550,
            snapshots: 2,
            at_depth: 550,
            depth_breaks: 0,
            crossed: 0,
            gaps: 0,
            resyncs: 0,
            errors: 0,
            ignored: 88,
            trades: 20,
            buys: 8,
            sells: 12,
            taker_agrees: 20,
            taker_disagrees: 0,
            candles: 25,
            closed_candles: 2,
            quotes: 0,
            crossed_quotes: 0,
        }
    );
    // Every book reached and kept the subscribed depth.
    for (conn, count) in [("c2", 4), ("c3", 2)] {
        let (_, session) = replay(&conns[conn]);
        for id in 0..count {
            let book = &session.symbols().sync(id).unwrap().book;
            assert_eq!(
                (book.len(Side::Bid), book.len(Side::Ask)),
                (DEPTH, DEPTH),
                "{conn} {}",
                session.symbols().name(id)
            );
        }
    }
}

/// Cut short, byte-flipped, shortened and stretched copies of real frames of both
/// connections: every one is `Ok` or a typed error, never a panic. Before each copy, the book
/// the frame belongs to is made live again (its last real snapshot, renumbered to chain), so the
/// copies meet live books rather than ones already dropped by the previous copy.
#[test]
fn bybit_mutated_frames_never_panic() {
    let tape = read_tape(TAPE);
    let conns = recv_by_conn(&tape);
    let (mut fed, mut rejected, mut applied) = (0, 0, 0);
    for (conn, records) in &conns {
        let mut session = new_session("bybit", SessionOptions::default()).unwrap();
        let mut snapshots: HashMap<String, String> = HashMap::new();
        let mut out = Vec::new();
        let every = records.len() / 15;
        for (i, r) in records.iter().enumerate() {
            let frame = r.data.as_deref().unwrap();
            let book = book_symbol(frame);
            let restore = |session: &mut Box<dyn Session>, out: &mut Vec<Event>| {
                let (Some(symbol), Some((u, _))) = (&book, find_number(frame, "u")) else {
                    return;
                };
                if let Some(snapshot) = snapshots.get(symbol) {
                    let snapshot = with_number(snapshot, "u", u.saturating_sub(1)).unwrap();
                    session.receive(snapshot.as_bytes(), 1, out).unwrap();
                }
            };
            if i > 0 && i % every == 0 {
                for m in broken_copies(frame.as_bytes(), 12, i as u64) {
                    out.clear();
                    restore(&mut session, &mut out);
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
                    for ev in &out {
                        if let Event::BookUpdated { symbol, .. } = ev {
                            let book = &session.symbols().sync(*symbol).unwrap().book;
                            assert!(
                                book.bids()
                                    .chain(book.asks())
                                    .all(|l| l.qty > Decimal::ZERO),
                                "{conn} frame {i}: {}",
                                String::from_utf8_lossy(&m)
                            );
                        }
                    }
                }
                out.clear();
                restore(&mut session, &mut out);
            }
            out.clear();
            session
                .receive(frame.as_bytes(), r.ts_ns, &mut out)
                .unwrap();
            if frame.contains("\"type\":\"snapshot\"") {
                if let Some(symbol) = book {
                    snapshots.insert(symbol, frame.to_owned());
                }
            }
        }
    }
    eprintln!(
        "{TAPE}: {fed} mutated frames fed, {rejected} rejected with typed errors, \
         {applied} accepted as book updates"
    );
    assert!(fed >= 300);
    assert!(rejected > 0 && applied > 0);
}

/// The symbol of an `orderbook.*` frame.
fn book_symbol(frame: &str) -> Option<String> {
    let at = frame.find("\"topic\":\"orderbook.")?;
    let topic = &frame[at + 9..];
    let topic = &topic[..topic.find('"')?];
    Some(topic.rsplit('.').next()?.to_owned())
}

/// Spot tickers carry no best bid or ask, so spot quotes come from `orderbook.1`, Bybit's own
/// top of book. The tape recorded `orderbook.200`: each time a spot book's top changed, the
/// `orderbook.1` message Bybit sends for it (a snapshot of that top, numbered with the book's
/// `u`) is made from the recorded book and fed to two sessions. The one replaying the recorded
/// `orderbook.200` takes it right after the frame it came from: one quote per message, equal to
/// the book's top, and the book untouched (same updates, 200 levels a side). One given the top
/// of book alone keeps it as the book and quotes it with `seq` = `u`.
#[test]
fn bybit_spot_quotes_from_the_top_of_book_topic() {
    let tape = read_tape(TAPE);
    let conns = recv_by_conn(&tape);
    let mut recorded = new_session("bybit", SessionOptions::default()).unwrap();
    let mut alone = new_session("bybit", SessionOptions::default()).unwrap();
    let mut last_top: HashMap<String, Top> = HashMap::new();
    let (mut messages, mut book_updates) = (0, 0);
    let mut out = Vec::new();
    let mut quotes = Vec::new();
    for r in &conns["c3"] {
        out.clear();
        let data = r.data.as_deref().unwrap();
        recorded
            .receive(data.as_bytes(), r.ts_ns, &mut out)
            .unwrap();
        let mut made = Vec::new();
        for ev in &out {
            let Event::BookUpdated { symbol, seq, .. } = ev else {
                continue;
            };
            book_updates += 1;
            let name = recorded.symbols().name(*symbol).to_owned();
            let book = &recorded.symbols().sync(*symbol).unwrap().book;
            assert_eq!((book.len(Side::Bid), book.len(Side::Ask)), (DEPTH, DEPTH));
            let (bid, ask) = (book.best_bid().unwrap(), book.best_ask().unwrap());
            let top = (bid.price, bid.qty, ask.price, ask.qty);
            if last_top.insert(name.clone(), top) == Some(top) {
                continue;
            }
            let ts = find_number(data, "ts").unwrap().0;
            let u = seq.unwrap();
            let frame = format!(
                r#"{{"topic":"orderbook.1.{name}","type":"snapshot","ts":{ts},"data":{{"s":"{name}","b":[["{}","{}"]],"a":[["{}","{}"]],"u":{u},"seq":{u}}},"cts":{ts}}}"#,
                top.0, top.1, top.2, top.3
            );
            made.push((name, u, top, frame));
        }
        for (name, u, top, frame) in made {
            messages += 1;
            out.clear();
            recorded
                .receive(frame.as_bytes(), r.ts_ns, &mut out)
                .unwrap();
            assert_eq!(quotes_of(&out, &*recorded), [(name.clone(), None, top)]);
            assert_eq!(out.len(), 1, "the book is left alone: {out:?}");
            quotes.push((name.clone(), top));
            out.clear();
            alone.receive(frame.as_bytes(), r.ts_ns, &mut out).unwrap();
            assert_eq!(quotes_of(&out, &*alone), [(name, Some(u), top)]);
            assert!(matches!(out[0], Event::BookUpdated { seq: Some(s), .. } if s == u));
        }
    }
    eprintln!("{TAPE} c3: {messages} top-of-book messages made from the recorded books");
    assert_eq!((messages, quotes.len()), (259, 259));
    assert_eq!(
        book_updates, 550,
        "the recorded books, as without the top of book"
    );
    assert_eq!((recorded.stats().errors, alone.stats().errors), (0, 0));
    for id in 0..alone.symbols().len() as u32 {
        let book = &alone.symbols().sync(id).unwrap().book;
        assert_eq!((book.len(Side::Bid), book.len(Side::Ask)), (1, 1));
    }
}

type Top = (Decimal, Decimal, Decimal, Decimal);

fn quotes_of(out: &[Event], session: &dyn Session) -> Vec<(String, Option<u64>, Top)> {
    out.iter()
        .filter_map(|ev| match ev {
            Event::Quote(q) => Some((
                session.symbols().name(q.symbol).to_owned(),
                q.seq,
                (q.bid_price, q.bid_size, q.ask_price, q.ask_size),
            )),
            _ => None,
        })
        .collect()
}
