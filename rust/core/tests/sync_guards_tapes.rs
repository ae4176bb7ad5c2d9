//! The crossed-book and ids-backwards resyncs never fire on a real capture: every tape of every
//! venue replays with no `SyncLost` for those reasons and zero `crossed`/`ids_backwards`.

mod common;

use common::{replay_by_connection, tapes_dir};
use lobfeed_core::{Event, LossReason, SessionOptions};

#[derive(Debug, Default)]
struct Guards {
    updates: u64,
    crossed: u64,
    ids_backwards: u64,
    lost: Vec<LossReason>,
}

fn replay(name: &str) -> Guards {
    let mut guards = Guards::default();
    let sessions = replay_by_connection(name, &SessionOptions::default(), |events| {
        for ev in events {
            match ev {
                Event::BookUpdated { .. } => guards.updates += 1,
                Event::SyncLost { reason, .. } => guards.lost.push(*reason),
                _ => {}
            }
        }
    });
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
