//! What a session announced for a book, and taking it back: venues that prove a book with a
//! checksum (Kraken, OKX) apply an update, announce it, then check; a book that fails the check
//! was never in sync, so its announcement must not reach the user.

use crate::event::{Event, SymbolId};
use crate::sync::SymbolSync;

/// Whether `events` announce a new book for `id`.
pub fn published(events: &[Event], id: SymbolId) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::BookUpdated { symbol, .. } if *symbol == id))
}

/// Takes back the `BookUpdated` and `Resynced` of `id` pushed to `out` from index `from` on;
/// every other event (other symbols', the mismatch and its resync request) stays, in order.
pub fn retract_publication(out: &mut Vec<Event>, from: usize, id: SymbolId) {
    let mut index = 0;
    out.retain(|e| {
        let announced = matches!(
            e,
            Event::BookUpdated { symbol, .. } | Event::Resynced { symbol, .. } if *symbol == id
        );
        let keep = index < from || !announced;
        index += 1;
        keep
    });
}

/// Checks the venue's checksum of a book just applied and announced from index `from` of
/// `out`: a mismatch clears the book, asks for a resync and takes the announcement back.
/// Returns whether the checksums agreed.
pub fn confirm_checksum(
    sync: &mut SymbolSync,
    id: SymbolId,
    expected: u32,
    computed: u32,
    out: &mut Vec<Event>,
    from: usize,
) -> bool {
    let agreed = sync.on_checksum(id, expected, computed, out);
    if !agreed {
        retract_publication(out, from, id);
    }
    agreed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::LossReason;
    use crate::sync::ResyncBy;

    fn updated(symbol: SymbolId) -> Event {
        Event::BookUpdated {
            symbol,
            seq: None,
            exchange_ts_ns: 0,
            ts_ns: 0,
        }
    }

    #[test]
    fn retracts_only_the_symbols_announcements_after_the_mark() {
        let mut out = vec![
            updated(0),
            updated(1),
            Event::Resynced {
                symbol: 0,
                seq: None,
            },
            updated(0),
            Event::NeedResubscribe { symbol: 0 },
        ];
        assert!(published(&out[1..], 0));
        assert!(!published(&out[1..2], 0));
        retract_publication(&mut out, 1, 0);
        assert_eq!(
            out,
            vec![updated(0), updated(1), Event::NeedResubscribe { symbol: 0 }]
        );
    }

    #[test]
    fn a_mismatch_takes_the_announcement_back() {
        let mut sync = SymbolSync::new(ResyncBy::Resubscribe, None);
        let mut out = vec![updated(3)];
        assert!(confirm_checksum(&mut sync, 3, 7, 7, &mut out, 0));
        assert_eq!(out, vec![updated(3)]);
        assert!(!confirm_checksum(&mut sync, 3, 7, 8, &mut out, 0));
        assert_eq!(
            out,
            vec![
                Event::ChecksumMismatch {
                    symbol: 3,
                    expected: 7,
                    computed: 8
                },
                Event::SyncLost {
                    symbol: 3,
                    reason: LossReason::Checksum {
                        expected: 7,
                        computed: 8
                    }
                },
                Event::NeedResubscribe { symbol: 3 },
            ]
        );
        assert_eq!(
            (
                sync.counters.checksums_checked,
                sync.counters.checksum_mismatches
            ),
            (2, 1)
        );
    }
}
