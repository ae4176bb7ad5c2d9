//! The crossed-book and ids-backwards resyncs never fire on a real capture: every tape of every
//! venue replays with no `SyncLost` for those reasons and zero `crossed`/`ids_backwards`.

mod common;

use std::collections::HashMap;

use common::{query_param, query_symbol, read_tape, tapes_dir};
use lobfeed_core::{new_session, Event, LossReason, Session, SessionOptions};

#[derive(Debug, Default)]
struct Guards {
    updates: u64,
    crossed: u64,
    ids_backwards: u64,
    lost: Vec<LossReason>,
}

fn replay(name: &str) -> Guards {
    let tape = read_tape(name);
    let venue = tape[0].venue.clone().expect("header names the venue");
    // One session per connection: ids and sequences are per connection.
    let mut sessions: HashMap<String, Box<dyn Session>> = HashMap::new();
    let mut guards = Guards::default();
    let mut out = Vec::new();
    for r in &tape[1..] {
        let data = r.data.as_deref().unwrap_or("").as_bytes();
        let targets: Vec<String> = match r.kind.as_str() {
            "recv" => vec![r.conn.clone().unwrap_or_default()],
            "http" => sessions.keys().cloned().collect(),
            _ => continue,
        };
        for conn in targets {
            let session = sessions
                .entry(conn)
                .or_insert_with(|| new_session(&venue, SessionOptions::default()).unwrap());
            out.clear();
            let _ = if r.kind == "http" {
                let url = r.url.as_deref().unwrap_or("");
                let Some(symbol) = query_symbol(url).or_else(|| query_param(url, "instId")) else {
                    continue;
                };
                session.receive_snapshot(&symbol, data, r.ts_ns, &mut out)
            } else {
                session.receive(data, r.ts_ns, &mut out)
            };
            for ev in &out {
                match ev {
                    Event::BookUpdated { .. } => guards.updates += 1,
                    Event::SyncLost { reason, .. } => guards.lost.push(*reason),
                    _ => {}
                }
            }
        }
    }
    for session in sessions.values() {
        let symbols = session.symbols();
        for id in 0..symbols.len() as u32 {
            let c = symbols.sync(id).unwrap().counters;
            guards.crossed += c.crossed;
            guards.ids_backwards += c.ids_backwards;
        }
    }
    guards
}

#[test]
fn no_real_tape_trips_the_crossed_or_backwards_checks() {
    let mut names: Vec<String> = std::fs::read_dir(tapes_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".jsonl.gz"))
        .collect();
    names.sort();
    assert!(names.len() >= 12, "{names:?}");
    for name in &names {
        let g = replay(name);
        assert!(g.updates > 0, "{name}: no book was ever updated");
        assert_eq!(g.crossed, 0, "{name}: crossed");
        assert_eq!(g.ids_backwards, 0, "{name}: ids backwards");
        assert!(
            !g.lost.iter().any(|r| matches!(
                r,
                LossReason::Crossed { .. } | LossReason::IdsBackwards { .. }
            )),
            "{name}: {:?}",
            g.lost
        );
    }
}
