//! The sans-I/O sync state machine shared by all venues.
//!
//! One `SymbolSync` per symbol holds its book and where it stands: waiting for a snapshot (with
//! the deltas that arrived meanwhile buffered here, not in the I/O layer), or live with the id of
//! the last applied update. Venues differ only in how ids chain, which a `SequenceRule` answers.
//! Nothing here opens a socket, sleeps or reads a clock: time comes in with each frame.

use std::collections::HashMap;

use crate::book::{Book, BookError, Side};
use crate::decimal::Decimal;
use crate::event::{Event, SymbolId};

/// Deltas kept per symbol while a snapshot is awaited; older ones are dropped past this (the
/// bridge check then fails and a fresh snapshot is asked for, so nothing is applied wrongly).
pub const MAX_BUFFERED_DELTAS: usize = 50_000;

/// The ids a delta carries: first and last update id, and the venue's "previous id" if it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeltaIds {
    pub first: u64,
    pub last: u64,
    pub prev: Option<u64>,
}

impl DeltaIds {
    pub fn single(id: u64) -> Self {
        DeltaIds {
            first: id,
            last: id,
            prev: None,
        }
    }
}

/// How a delta relates to what the book already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continuity {
    Apply,
    /// Already contained in the book: skip it.
    Stale,
    Gap {
        expected: u64,
        received: u64,
    },
}

/// A venue's id chaining: how the first delta bridges a snapshot and how each delta follows.
pub trait SequenceRule {
    fn bridges(&self, snapshot_id: u64, delta: &DeltaIds) -> Continuity;
    fn follows(&self, last: &DeltaIds, delta: &DeltaIds) -> Continuity;
}

/// For venues with no ids (or whose continuity is checked elsewhere, e.g. per connection).
pub struct Unsequenced;

impl SequenceRule for Unsequenced {
    fn bridges(&self, _: u64, _: &DeltaIds) -> Continuity {
        Continuity::Apply
    }
    fn follows(&self, _: &DeltaIds, _: &DeltaIds) -> Continuity {
        Continuity::Apply
    }
}

/// How a symbol gets a fresh book when it loses sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncBy {
    /// REST snapshot fetched by the I/O layer (Binance, OKX's current procedure).
    Snapshot,
    /// Unsubscribe/subscribe: the venue sends a new snapshot in-band (Bybit, Kraken, Bitfinex, ...).
    Resubscribe,
}

/// One level change as decoded from a frame.
pub type LevelChange = (Side, Decimal, Decimal);

#[derive(Debug, Clone)]
struct BufferedDelta {
    ids: DeltaIds,
    exchange_ts_ns: u64,
    levels: Vec<LevelChange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anchor {
    Snapshot(u64),
    Delta(DeltaIds),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    /// No snapshot yet; deltas are buffered.
    AwaitingSnapshot,
    /// The book is in sync.
    Live,
}

/// Counters a user (and `lobfeed verify`) reads to know what happened to a symbol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncCounters {
    pub updates: u64,
    pub snapshots: u64,
    pub gaps: u64,
    pub resyncs: u64,
    pub stale_dropped: u64,
    pub stale_snapshots: u64,
    pub buffer_dropped: u64,
    pub checksums_checked: u64,
    pub checksum_mismatches: u64,
    pub errors: u64,
}

#[derive(Debug, Clone)]
pub struct SymbolSync {
    pub book: Book,
    pub counters: SyncCounters,
    pub last_seq: Option<u64>,
    resync_by: ResyncBy,
    truncate_to: Option<usize>,
    state: SyncState,
    anchor: Option<Anchor>,
    buffer: Vec<BufferedDelta>,
    requested: bool,
    lost_sync: bool,
}

impl SymbolSync {
    pub fn new(resync_by: ResyncBy, truncate_to: Option<usize>) -> Self {
        SymbolSync {
            book: Book::new(),
            counters: SyncCounters::default(),
            last_seq: None,
            resync_by,
            truncate_to,
            state: SyncState::AwaitingSnapshot,
            anchor: None,
            buffer: Vec::new(),
            requested: false,
            lost_sync: false,
        }
    }

    pub fn state(&self) -> SyncState {
        self.state
    }

    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    pub fn set_truncate_to(&mut self, depth: Option<usize>) {
        self.truncate_to = depth;
    }

    fn request_resync(&mut self, symbol: SymbolId, out: &mut Vec<Event>) {
        if !self.requested {
            self.requested = true;
            out.push(match self.resync_by {
                ResyncBy::Snapshot => Event::NeedSnapshot { symbol },
                ResyncBy::Resubscribe => Event::NeedResubscribe { symbol },
            });
        }
    }

    /// Drops the book and waits for a new snapshot; the caller says why through `out`.
    pub fn lose_sync(&mut self, symbol: SymbolId, out: &mut Vec<Event>) {
        self.book.clear();
        self.state = SyncState::AwaitingSnapshot;
        self.anchor = None;
        self.last_seq = None;
        self.lost_sync = true;
        self.requested = false;
        self.request_resync(symbol, out);
    }

    /// Forgets the buffered deltas and the id of the last applied update, so the next
    /// `on_snapshot` is taken whatever its id. For venues whose in-band snapshot always replaces
    /// the book, even with a lower id (Bybit restarts its ids at 1). Book and state are kept.
    pub fn forget_stream(&mut self) {
        self.counters.stale_dropped += self.buffer.len() as u64;
        self.buffer.clear();
        self.last_seq = None;
    }

    /// A frame for this symbol could not be decoded: we may have missed an update.
    pub fn on_bad_frame(&mut self, symbol: SymbolId, out: &mut Vec<Event>) {
        self.counters.errors += 1;
        self.buffer.clear();
        self.lose_sync(symbol, out);
    }

    /// Records a checksum comparison; a mismatch clears the book and asks for a resync.
    pub fn on_checksum(
        &mut self,
        symbol: SymbolId,
        expected: u32,
        computed: u32,
        out: &mut Vec<Event>,
    ) -> bool {
        self.counters.checksums_checked += 1;
        if expected == computed {
            return true;
        }
        self.counters.checksum_mismatches += 1;
        out.push(Event::ChecksumMismatch {
            symbol,
            expected,
            computed,
        });
        self.buffer.clear();
        self.lose_sync(symbol, out);
        false
    }

    /// A delta from the stream. Returns whether it changed the book.
    #[allow(clippy::too_many_arguments)]
    pub fn on_delta(
        &mut self,
        symbol: SymbolId,
        rule: &dyn SequenceRule,
        ids: DeltaIds,
        levels: &[LevelChange],
        exchange_ts_ns: u64,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<bool, BookError> {
        validate(levels)?;
        if self.state == SyncState::AwaitingSnapshot {
            if self.buffer.len() >= MAX_BUFFERED_DELTAS {
                self.buffer.remove(0);
                self.counters.buffer_dropped += 1;
            }
            self.buffer.push(BufferedDelta {
                ids,
                exchange_ts_ns,
                levels: levels.to_vec(),
            });
            self.request_resync(symbol, out);
            return Ok(false);
        }
        let verdict = match self.anchor {
            Some(Anchor::Snapshot(id)) => rule.bridges(id, &ids),
            Some(Anchor::Delta(last)) => rule.follows(&last, &ids),
            None => Continuity::Apply,
        };
        match verdict {
            Continuity::Stale => {
                self.counters.stale_dropped += 1;
                Ok(false)
            }
            Continuity::Gap { expected, received } => {
                self.counters.gaps += 1;
                out.push(Event::GapDetected {
                    symbol,
                    expected,
                    received,
                });
                self.lose_sync(symbol, out);
                // This delta starts the stream the next snapshot will be bridged to.
                self.buffer.push(BufferedDelta {
                    ids,
                    exchange_ts_ns,
                    levels: levels.to_vec(),
                });
                Ok(false)
            }
            Continuity::Apply => {
                self.apply(symbol, levels, out)?;
                self.anchor = Some(Anchor::Delta(ids));
                self.last_seq = Some(ids.last);
                self.counters.updates += 1;
                out.push(Event::BookUpdated {
                    symbol,
                    seq: Some(ids.last),
                    exchange_ts_ns,
                    ts_ns,
                });
                Ok(true)
            }
        }
    }

    /// A delta from a venue without update ids: applied if the book is live.
    pub fn on_unsequenced_delta(
        &mut self,
        symbol: SymbolId,
        levels: &[LevelChange],
        exchange_ts_ns: u64,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<bool, BookError> {
        validate(levels)?;
        if self.state == SyncState::AwaitingSnapshot {
            self.counters.stale_dropped += 1;
            return Ok(false);
        }
        self.apply(symbol, levels, out)?;
        self.counters.updates += 1;
        out.push(Event::BookUpdated {
            symbol,
            seq: None,
            exchange_ts_ns,
            ts_ns,
        });
        Ok(true)
    }

    /// A full book (REST or in-band). Buffered deltas are bridged to it and applied.
    #[allow(clippy::too_many_arguments)]
    pub fn on_snapshot(
        &mut self,
        symbol: SymbolId,
        rule: &dyn SequenceRule,
        snapshot_id: Option<u64>,
        levels: &[LevelChange],
        exchange_ts_ns: u64,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), BookError> {
        validate(levels)?;
        if let (Some(id), Some(last)) = (snapshot_id, self.last_seq) {
            if self.state == SyncState::Live && id < last {
                // The book is already past this snapshot: taking it would move it backwards.
                self.counters.stale_dropped += 1;
                return Ok(());
            }
        }
        if let (Some(id), Some(first)) = (snapshot_id, self.buffer.first()) {
            if matches!(rule.bridges(id, &first.ids), Continuity::Gap { .. }) {
                // Older than everything buffered: the updates in between are lost. Ask again.
                self.counters.stale_snapshots += 1;
                self.requested = false;
                self.request_resync(symbol, out);
                return Ok(());
            }
        }
        self.book.clear();
        self.apply_raw(levels).inspect_err(|_| {
            self.book.clear();
        })?;
        self.counters.snapshots += 1;
        self.state = SyncState::Live;
        self.requested = false;
        self.anchor = snapshot_id.map(Anchor::Snapshot);
        self.last_seq = snapshot_id;
        let mut exchange_ts_ns = exchange_ts_ns;
        let buffered = std::mem::take(&mut self.buffer);
        let mut iter = buffered.into_iter();
        for delta in iter.by_ref() {
            let verdict = match self.anchor {
                Some(Anchor::Snapshot(id)) => rule.bridges(id, &delta.ids),
                Some(Anchor::Delta(last)) => rule.follows(&last, &delta.ids),
                None => Continuity::Apply,
            };
            match verdict {
                Continuity::Stale => self.counters.stale_dropped += 1,
                Continuity::Apply => {
                    self.apply_raw(&delta.levels).inspect_err(|_| {
                        self.book.clear();
                    })?;
                    self.anchor = Some(Anchor::Delta(delta.ids));
                    self.last_seq = Some(delta.ids.last);
                    exchange_ts_ns = delta.exchange_ts_ns;
                }
                Continuity::Gap { expected, received } => {
                    self.counters.gaps += 1;
                    out.push(Event::GapDetected {
                        symbol,
                        expected,
                        received,
                    });
                    self.lose_sync(symbol, out);
                    self.buffer.push(delta);
                    self.buffer.extend(iter);
                    return Ok(());
                }
            }
        }
        if let Some(depth) = self.truncate_to {
            self.book.truncate(depth);
        }
        if self.lost_sync {
            self.lost_sync = false;
            self.counters.resyncs += 1;
            out.push(Event::Resynced {
                symbol,
                seq: self.last_seq,
            });
        }
        self.counters.updates += 1;
        out.push(Event::BookUpdated {
            symbol,
            seq: self.last_seq,
            exchange_ts_ns,
            ts_ns,
        });
        Ok(())
    }

    fn apply(
        &mut self,
        symbol: SymbolId,
        levels: &[LevelChange],
        out: &mut Vec<Event>,
    ) -> Result<(), BookError> {
        if let Err(e) = self.apply_raw(levels) {
            // Part of the delta may be in: the book can no longer be trusted.
            self.counters.errors += 1;
            self.lose_sync(symbol, out);
            return Err(e);
        }
        if let Some(depth) = self.truncate_to {
            self.book.truncate(depth);
        }
        Ok(())
    }

    fn apply_raw(&mut self, levels: &[LevelChange]) -> Result<(), BookError> {
        for &(side, price, qty) in levels {
            self.book.apply(side, price, qty)?;
        }
        Ok(())
    }
}

/// Rejects what no book may hold before anything is applied, so a bad frame changes nothing.
fn validate(levels: &[LevelChange]) -> Result<(), BookError> {
    for &(_, price, qty) in levels {
        if qty.is_negative() {
            return Err(BookError::NegativeQuantity(qty));
        }
        if price.is_negative() {
            return Err(BookError::NegativePrice(price));
        }
    }
    Ok(())
}

/// Symbols of a session, spelled as the venue spells them, each with its sync state.
#[derive(Debug, Default, Clone)]
pub struct Symbols {
    names: Vec<String>,
    index: HashMap<String, SymbolId>,
    syncs: Vec<SymbolSync>,
}

impl Symbols {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn id(&self, name: &str) -> Option<SymbolId> {
        self.index.get(name).copied()
    }

    /// The symbol's id, adding it (with a fresh sync state from `make`) the first time.
    pub fn intern(&mut self, name: &str, make: impl FnOnce() -> SymbolSync) -> SymbolId {
        if let Some(id) = self.index.get(name) {
            return *id;
        }
        let id = self.names.len() as SymbolId;
        self.names.push(name.to_owned());
        self.index.insert(name.to_owned(), id);
        self.syncs.push(make());
        id
    }

    pub fn name(&self, id: SymbolId) -> &str {
        self.names
            .get(id as usize)
            .map(String::as_str)
            .unwrap_or("")
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn sync(&self, id: SymbolId) -> Option<&SymbolSync> {
        self.syncs.get(id as usize)
    }

    pub fn sync_mut(&mut self, id: SymbolId) -> Option<&mut SymbolSync> {
        self.syncs.get_mut(id as usize)
    }

    /// A frame for a known symbol that could not be used: the symbol may have missed an
    /// update, so it resyncs (events into `out`) and the error names it.
    pub fn bad_frame(
        &mut self,
        id: SymbolId,
        error: crate::error::FrameError,
        out: &mut Vec<Event>,
    ) -> crate::error::ReceiveError {
        if let Some(sync) = self.sync_mut(id) {
            sync.on_bad_frame(id, out);
        }
        crate::error::ReceiveError::new(Some(self.name(id).to_owned()), error)
    }
}
