//! AscendEX books proven on the real tape: every symbol's snapshot, asked for on the socket,
//! bridges the updates buffered before it, and the `seqnum` +1 chain never breaks after.

mod common;

use common::read_tape;
use lobfeed_core::{new_session, Event, SessionOptions};

const TAPE: &str = "ascendex-depth-10sym-2021.jsonl.gz";

#[derive(Debug, Default, PartialEq)]
struct Counted {
    depth: u64,
    snapshots: u64,
    trades: u64,
    pings: u64,
}

#[test]
fn ascendex_depth_10sym_2021() {
    let tape = read_tape(TAPE);
    assert_eq!(tape[0].venue.as_deref(), Some("ascendex"));
    let mut session = new_session("ascendex", SessionOptions::default()).unwrap();
    let mut out = Vec::new();
    let mut counted = Counted::default();
    let (mut book_updates, mut crossed, mut trades, mut replies, mut errors) = (0, 0, 0, 0, 0);
    let mut resync_requests = 0;
    for r in tape.iter().filter(|r| r.kind == "recv") {
        let data = r.data.as_deref().unwrap();
        let value: serde_json::Value = serde_json::from_str(data).unwrap();
        match value["m"].as_str() {
            Some("depth") => counted.depth += 1,
            Some("depth-snapshot") => counted.snapshots += 1,
            Some("trades") => counted.trades += value["data"].as_array().unwrap().len() as u64,
            Some("ping") => counted.pings += 1,
            _ => {}
        }
        out.clear();
        if let Err(e) = session.receive(data.as_bytes(), r.ts_ns, &mut out) {
            eprintln!("frame error: {e}");
            errors += 1;
        }
        for ev in &out {
            match ev {
                Event::BookUpdated { symbol, .. } => {
                    book_updates += 1;
                    if session.symbols().sync(*symbol).unwrap().book.is_crossed() {
                        crossed += 1;
                    }
                }
                Event::Trade(t) => {
                    assert!(t.side.is_some() && t.exchange_ts_ns > 1_600_000_000_000_000_000);
                    trades += 1;
                }
                Event::Reply { text } => {
                    assert_eq!(text, r#"{"op":"pong"}"#);
                    replies += 1;
                }
                Event::NeedResubscribe { .. } | Event::NeedSnapshot { .. } => resync_requests += 1,
                _ => {}
            }
        }
    }
    let symbols = session.symbols();
    let (mut gaps, mut snapshots, mut stale) = (0, 0, 0);
    for id in 0..symbols.len() as u32 {
        let c = symbols.sync(id).unwrap().counters;
        gaps += c.gaps;
        snapshots += c.snapshots;
        stale += c.stale_dropped;
    }
    eprintln!("{TAPE}: {counted:?}, {book_updates} book updates, {stale} stale");
    assert_eq!(
        counted,
        Counted {
            depth: 277,
            snapshots: 10,
            trades: 4,
            pings: 2
        }
    );
    assert_eq!(symbols.len(), 10);
    assert_eq!(snapshots, 10, "every requested snapshot taken");
    assert_eq!(gaps, 0, "the seqnum chain is unbroken");
    assert_eq!(resync_requests, 0, "no snapshot asked for again");
    assert_eq!((crossed, errors), (0, 0));
    assert_eq!((trades, replies), (4, 2));
    // Each update and snapshot either changed the book on its own or was already in it: the
    // snapshots all stand at or after every update buffered before them.
    assert_eq!(book_updates + stale, 277 + 10);
}
