//! The sans-I/O sync state machine shared by all venues.
//!
//! One `SymbolSync` per symbol holds its book and where it stands: waiting for a snapshot (with
//! the deltas that arrived meanwhile buffered here, not in the I/O layer), or live with the id of
//! the last applied update. Venues differ only in how ids chain, which a `SequenceRule` answers.
//! Nothing here opens a socket, sleeps or reads a clock: time comes in with each frame.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::book::{Book, BookError, Side};
use crate::decimal::Decimal;
use crate::event::{Event, LossReason, SymbolId};

/// Deltas kept per symbol while a snapshot is awaited; older ones are dropped past this (the
/// bridge check then fails and a fresh snapshot is asked for, so nothing is applied wrongly).
pub const MAX_BUFFERED_DELTAS: usize = 50_000;

/// Estimated bytes of buffered deltas kept per symbol while a snapshot is awaited. A busy
/// symbol whose snapshot is slow would otherwise hold tens of megabytes.
pub const DEFAULT_MAX_BUFFER_BYTES: usize = 4 * 1024 * 1024;

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

/// A delta as a venue decoded it: which symbol, its ids, its level changes and its times.
#[derive(Debug, Clone, Copy)]
pub struct Delta<'a> {
    pub symbol: SymbolId,
    pub ids: DeltaIds,
    pub levels: &'a [LevelChange],
    pub exchange_ts_ns: u64,
    pub ts_ns: u64,
}

/// A full book as a venue sent it (REST or in-band), with the update id it stands at if any.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    pub symbol: SymbolId,
    pub id: Option<u64>,
    pub levels: &'a [LevelChange],
    pub exchange_ts_ns: u64,
    pub ts_ns: u64,
}

#[derive(Debug, Clone)]
struct BufferedDelta {
    ids: DeltaIds,
    exchange_ts_ns: u64,
    levels: Vec<LevelChange>,
}

impl BufferedDelta {
    /// What the delta holds in memory, near enough to bound the buffer by.
    fn cost(&self) -> usize {
        std::mem::size_of::<BufferedDelta>()
            + self.levels.capacity() * std::mem::size_of::<LevelChange>()
    }
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
    /// Books dropped because best bid >= best ask after an update.
    pub crossed: u64,
    /// Books dropped because an update was strictly older than the one before it.
    pub ids_backwards: u64,
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
    buffer: VecDeque<BufferedDelta>,
    /// Sum of `BufferedDelta::cost` over `buffer`.
    buffer_bytes: usize,
    max_buffer_bytes: usize,
    /// Whether best bid >= best ask after an update costs the book its sync (see
    /// `set_check_crossed`).
    check_crossed: bool,
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
            buffer: VecDeque::new(),
            buffer_bytes: 0,
            max_buffer_bytes: DEFAULT_MAX_BUFFER_BYTES,
            check_crossed: true,
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

    /// Estimated bytes held by the deltas buffered before a snapshot.
    pub fn buffered_bytes(&self) -> usize {
        self.buffer_bytes
    }

    pub fn set_max_buffer_bytes(&mut self, bytes: usize) {
        self.max_buffer_bytes = bytes;
    }

    /// A venue whose real streams legitimately show a crossed book for an update turns the
    /// crossed-book resync off; everywhere else a crossed book means a missed update.
    pub fn set_check_crossed(&mut self, on: bool) {
        self.check_crossed = on;
    }

    /// Buffers a delta, dropping the oldest ones (O(1) each) to stay within the byte and count
    /// bounds. The newest delta is always kept: it is the one a snapshot may bridge to.
    fn buffer_push(&mut self, delta: BufferedDelta) {
        let cost = delta.cost();
        while !self.buffer.is_empty()
            && (self.buffer_bytes + cost > self.max_buffer_bytes
                || self.buffer.len() >= MAX_BUFFERED_DELTAS)
        {
            if let Some(old) = self.buffer.pop_front() {
                self.buffer_bytes -= old.cost();
                self.counters.buffer_dropped += 1;
            }
        }
        self.buffer_bytes += cost;
        self.buffer.push_back(delta);
    }

    fn buffer_delta(&mut self, ids: DeltaIds, exchange_ts_ns: u64, levels: &[LevelChange]) {
        self.buffer_push(BufferedDelta {
            ids,
            exchange_ts_ns,
            levels: levels.to_vec(),
        });
    }

    fn buffer_clear(&mut self) {
        self.buffer.clear();
        self.buffer_bytes = 0;
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

    /// Drops the book and waits for a new snapshot: `SyncLost` says why, then the resync
    /// request follows.
    pub fn lose_sync(&mut self, symbol: SymbolId, reason: LossReason, out: &mut Vec<Event>) {
        self.drop_book();
        out.push(Event::SyncLost { symbol, reason });
        self.request_resync(symbol, out);
    }

    /// The book can no longer be trusted; no event yet (the caller's `lose_sync` says why).
    fn drop_book(&mut self) {
        self.book.clear();
        self.state = SyncState::AwaitingSnapshot;
        self.anchor = None;
        self.last_seq = None;
        self.lost_sync = true;
        self.requested = false;
    }

    /// Continuity broke between `expected` and `received`: counted, reported, book dropped.
    pub fn on_gap(&mut self, symbol: SymbolId, expected: u64, received: u64, out: &mut Vec<Event>) {
        self.counters.gaps += 1;
        out.push(Event::GapDetected {
            symbol,
            expected,
            received,
        });
        self.lose_sync(symbol, LossReason::Gap { expected, received }, out);
    }

    /// After an update: a crossed book means an update was missed or misapplied.
    fn check_crossed(&mut self, symbol: SymbolId, out: &mut Vec<Event>) -> bool {
        if !self.check_crossed || !self.book.is_crossed() {
            return false;
        }
        let (Some(bid), Some(ask)) = (self.book.best_bid(), self.book.best_ask()) else {
            return false;
        };
        self.counters.crossed += 1;
        let reason = LossReason::Crossed {
            bid: bid.price,
            ask: ask.price,
        };
        self.lose_sync(symbol, reason, out);
        true
    }

    /// Forgets the buffered deltas and the id of the last applied update, so the next
    /// `apply_snapshot` is taken whatever its id. For venues whose in-band snapshot always replaces
    /// the book, even with a lower id (Bybit restarts its ids at 1). Book and state are kept.
    pub fn forget_stream(&mut self) {
        self.counters.stale_dropped += self.buffer.len() as u64;
        self.buffer_clear();
        self.last_seq = None;
    }

    /// A frame for this symbol could not be used: we may have missed an update. A book error
    /// (the frame decoded but the book refused it) is `Rejected`; anything else `BadFrame`.
    pub fn on_bad_frame(
        &mut self,
        symbol: SymbolId,
        error: &crate::error::FrameError,
        out: &mut Vec<Event>,
    ) {
        self.counters.errors += 1;
        self.buffer_clear();
        let reason = match error {
            crate::error::FrameError::Book(_) => LossReason::Rejected,
            _ => LossReason::BadFrame,
        };
        self.lose_sync(symbol, reason, out);
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
        self.buffer_clear();
        self.lose_sync(symbol, LossReason::Checksum { expected, computed }, out);
        false
    }

    /// A delta from the stream. Returns whether it changed the book.
    pub fn apply_delta(
        &mut self,
        rule: &dyn SequenceRule,
        delta: Delta<'_>,
        out: &mut Vec<Event>,
    ) -> Result<bool, BookError> {
        let Delta {
            symbol,
            ids,
            levels,
            exchange_ts_ns,
            ts_ns,
        } = delta;
        if self.state == SyncState::AwaitingSnapshot {
            validate(levels)?;
            if let Some(back) = self.buffer.back() {
                // The venue's ids went backwards while a snapshot is awaited: what is buffered
                // belongs to a stream that does not go on, and no snapshot of the new one
                // could ever bridge it (each would be judged older than the buffer).
                if ids.last < back.ids.first {
                    self.counters.ids_backwards += 1;
                    self.counters.stale_dropped += self.buffer.len() as u64;
                    self.buffer_clear();
                }
            }
            self.buffer_delta(ids, exchange_ts_ns, levels);
            self.request_resync(symbol, out);
            return Ok(false);
        }
        let verdict = match self.anchor {
            Some(Anchor::Snapshot(id)) => rule.bridges(id, &ids),
            Some(Anchor::Delta(last)) => rule.follows(&last, &ids),
            None => Continuity::Apply,
        };
        if verdict != Continuity::Apply {
            validate(levels)?;
        }
        match verdict {
            Continuity::Stale => {
                if let Some(Anchor::Delta(last)) = self.anchor {
                    // A repeat of (or overlap with) the last delta is harmless, but one wholly
                    // older than it means the venue's ids went backwards: dropping it quietly,
                    // and every later one with it, would freeze the book for good.
                    if ids.last < last.first {
                        self.counters.ids_backwards += 1;
                        let reason = LossReason::IdsBackwards {
                            last: last.last,
                            received: ids.last,
                        };
                        self.lose_sync(symbol, reason, out);
                        // Likely the first of the venue's renumbered stream: kept for the
                        // next snapshot to bridge to, as after a gap.
                        self.buffer_delta(ids, exchange_ts_ns, levels);
                        return Ok(false);
                    }
                }
                self.counters.stale_dropped += 1;
                Ok(false)
            }
            Continuity::Gap { expected, received } => {
                self.on_gap(symbol, expected, received, out);
                // This delta starts the stream the next snapshot will be bridged to.
                self.buffer_delta(ids, exchange_ts_ns, levels);
                Ok(false)
            }
            Continuity::Apply => {
                // Validated while applied: `Book::apply` refuses what `validate` would, and a
                // refused level costs the book its sync, so what was applied before it is
                // dropped with it (the caller's `on_bad_frame`).
                self.apply(levels)?;
                if self.check_crossed(symbol, out) {
                    return Ok(false);
                }
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
        self.apply(levels)?;
        if self.check_crossed(symbol, out) {
            return Ok(false);
        }
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
    pub fn apply_snapshot(
        &mut self,
        rule: &dyn SequenceRule,
        snapshot: Snapshot<'_>,
        out: &mut Vec<Event>,
    ) -> Result<(), BookError> {
        let Snapshot {
            symbol,
            id: snapshot_id,
            levels,
            exchange_ts_ns,
            ts_ns,
        } = snapshot;
        validate(levels)?;
        if let (Some(id), Some(last)) = (snapshot_id, self.last_seq) {
            if self.state == SyncState::Live && id < last {
                // The book is already past this snapshot: taking it would move it backwards.
                self.counters.stale_dropped += 1;
                return Ok(());
            }
        }
        if let (Some(id), Some(first)) = (snapshot_id, self.buffer.front()) {
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
        self.buffer_bytes = 0;
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
                    self.on_gap(symbol, expected, received, out);
                    self.buffer_push(delta);
                    for rest in iter {
                        self.buffer_push(rest);
                    }
                    return Ok(());
                }
            }
        }
        if let Some(depth) = self.truncate_to {
            self.book.truncate(depth);
        }
        if self.check_crossed(symbol, out) {
            return Ok(());
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

    fn apply(&mut self, levels: &[LevelChange]) -> Result<(), BookError> {
        if let Err(e) = self.apply_raw(levels) {
            // Part of the delta may be in: the book can no longer be trusted. The caller
            // hands the error to `on_bad_frame`, which counts it and says why (`Rejected`).
            self.drop_book();
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
#[derive(Debug, Clone)]
pub struct Symbols {
    names: Vec<String>,
    index: HashMap<String, SymbolId>,
    syncs: Vec<SymbolSync>,
    /// The subscribed symbols, ASCII-lowercased (`None`: every symbol is taken). Users write
    /// `ethusdt` where Binance frames say `ETHUSDT`, so the match ignores ASCII case.
    allowed: Option<HashSet<String>>,
    /// Reused to lowercase a name that is not interned yet, without allocating each time.
    scratch: String,
    /// The id `intern` returned last: frames mostly follow each other on one symbol, and a
    /// byte compare with its name is far cheaper than hashing the name (SipHash, ~370
    /// instructions a frame). Names are never removed, so a stored id stays valid.
    last: Option<SymbolId>,
    unsubscribed: u64,
    max_buffer_bytes: usize,
}

impl Default for Symbols {
    fn default() -> Self {
        Symbols {
            names: Vec::new(),
            index: HashMap::new(),
            syncs: Vec::new(),
            allowed: None,
            scratch: String::new(),
            last: None,
            unsubscribed: 0,
            max_buffer_bytes: DEFAULT_MAX_BUFFER_BYTES,
        }
    }
}

impl Symbols {
    pub fn new() -> Self {
        Self::default()
    }

    /// Only `allowed` symbols (any ASCII case) will ever be interned, if given; each new sync
    /// state buffers at most `max_buffer_bytes` before its snapshot.
    pub fn configured(allowed: Option<&[String]>, max_buffer_bytes: usize) -> Self {
        Symbols {
            allowed: allowed.map(|names| names.iter().map(|n| n.to_ascii_lowercase()).collect()),
            max_buffer_bytes,
            ..Self::default()
        }
    }

    pub fn id(&self, name: &str) -> Option<SymbolId> {
        self.index.get(name).copied()
    }

    /// Whether frames for `name` are kept (it was subscribed, or no list was given).
    pub fn is_subscribed(&mut self, name: &str) -> bool {
        let Some(allowed) = &self.allowed else {
            return true;
        };
        if self.index.contains_key(name) {
            return true;
        }
        self.scratch.clear();
        self.scratch.push_str(name);
        self.scratch.make_ascii_lowercase();
        allowed.contains(&self.scratch)
    }

    /// The symbol's id, adding it (with a fresh sync state from `make`) the first time; `None`
    /// for a symbol that was not subscribed (counted in `unsubscribed`, nothing is created).
    pub fn intern(&mut self, name: &str, make: impl FnOnce() -> SymbolSync) -> Option<SymbolId> {
        if let Some(last) = self.last {
            if self.names[last as usize] == name {
                return Some(last);
            }
        }
        if let Some(&id) = self.index.get(name) {
            self.last = Some(id);
            return Some(id);
        }
        if !self.is_subscribed(name) {
            self.unsubscribed += 1;
            return None;
        }
        let id = self.names.len() as SymbolId;
        self.names.push(name.to_owned());
        self.index.insert(name.to_owned(), id);
        let mut sync = make();
        sync.set_max_buffer_bytes(self.max_buffer_bytes);
        self.syncs.push(sync);
        self.last = Some(id);
        Some(id)
    }

    /// Frames (and snapshots) dropped because their symbol was not subscribed.
    pub fn unsubscribed(&self) -> u64 {
        self.unsubscribed
    }

    /// Counts a dropped frame for a symbol that `is_subscribed` refused, where the venue
    /// checked before interning.
    pub fn count_unsubscribed(&mut self) {
        self.unsubscribed += 1;
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
            sync.on_bad_frame(id, &error, out);
        }
        crate::error::ReceiveError::new(Some(self.name(id).to_owned()), error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FrameError;

    // Binance spot's chaining: ids run on from the last one.
    use crate::venue::binance::SpotRule as Contiguous;

    fn dec(text: &str) -> Decimal {
        Decimal::parse(text).unwrap()
    }

    fn lvl(side: Side, price: &str, qty: &str) -> LevelChange {
        (side, dec(price), dec(qty))
    }

    fn ids(first: u64, last: u64) -> DeltaIds {
        DeltaIds {
            first,
            last,
            prev: None,
        }
    }

    /// A live book at id 100: bids 99/98, asks 101/102.
    fn live() -> SymbolSync {
        let mut s = SymbolSync::new(ResyncBy::Snapshot, None);
        let book = [
            lvl(Side::Bid, "99", "1"),
            lvl(Side::Bid, "98", "1"),
            lvl(Side::Ask, "101", "1"),
            lvl(Side::Ask, "102", "1"),
        ];
        let mut out = Vec::new();
        s.apply_snapshot(
            &Contiguous,
            Snapshot {
                symbol: 0,
                id: Some(100),
                levels: &book,
                exchange_ts_ns: 0,
                ts_ns: 0,
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(s.state(), SyncState::Live);
        s
    }

    fn lost(out: &[Event]) -> Vec<LossReason> {
        out.iter()
            .filter_map(|e| match e {
                Event::SyncLost { reason, .. } => Some(*reason),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn crossing_delta_loses_sync_before_the_resync_request() {
        let mut s = live();
        let mut out = Vec::new();
        let applied = s
            .apply_delta(
                &Contiguous,
                Delta {
                    symbol: 0,
                    ids: ids(101, 101),
                    levels: &[lvl(Side::Bid, "101.50", "2")],
                    exchange_ts_ns: 0,
                    ts_ns: 0,
                },
                &mut out,
            )
            .unwrap();
        assert!(!applied);
        let reason = LossReason::Crossed {
            bid: dec("101.50"),
            ask: dec("101"),
        };
        assert_eq!(
            out,
            vec![
                Event::SyncLost { symbol: 0, reason },
                Event::NeedSnapshot { symbol: 0 }
            ]
        );
        assert_eq!(reason.to_string(), "bid 101.50 >= ask 101");
        assert_eq!(s.state(), SyncState::AwaitingSnapshot);
        assert!(s.book.is_empty());
        assert_eq!((s.counters.crossed, s.counters.updates), (1, 1));
    }

    #[test]
    fn touching_book_is_crossed_but_a_one_sided_book_is_not() {
        let mut s = live();
        let mut out = Vec::new();
        s.on_unsequenced_delta(0, &[lvl(Side::Ask, "99", "1")], 0, 0, &mut out)
            .unwrap();
        assert_eq!(lost(&out).len(), 1, "bid == ask is crossed");
        let mut s = live();
        out.clear();
        let wipe_asks = [lvl(Side::Ask, "101", "0"), lvl(Side::Ask, "102", "0")];
        assert!(s
            .on_unsequenced_delta(0, &wipe_asks, 0, 0, &mut out)
            .unwrap());
        assert!(lost(&out).is_empty());
        // An empty ask side, then a bid far above any old ask: still nothing to cross.
        out.clear();
        assert!(s
            .on_unsequenced_delta(0, &[lvl(Side::Bid, "500", "1")], 0, 0, &mut out)
            .unwrap());
        assert!(lost(&out).is_empty());
    }

    #[test]
    fn crossed_check_can_be_turned_off_per_venue() {
        let mut s = live();
        s.set_check_crossed(false);
        let mut out = Vec::new();
        assert!(s
            .on_unsequenced_delta(0, &[lvl(Side::Bid, "105", "1")], 0, 0, &mut out)
            .unwrap());
        assert!(s.book.is_crossed());
        assert_eq!(s.counters.crossed, 0);
    }

    #[test]
    fn snapshot_with_bridged_deltas_that_cross_loses_sync() {
        let mut s = SymbolSync::new(ResyncBy::Snapshot, None);
        let mut out = Vec::new();
        s.apply_delta(
            &Contiguous,
            Delta {
                symbol: 0,
                ids: ids(100, 101),
                levels: &[lvl(Side::Ask, "98", "3")],
                exchange_ts_ns: 0,
                ts_ns: 0,
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(out, vec![Event::NeedSnapshot { symbol: 0 }]);
        out.clear();
        let book = [lvl(Side::Bid, "99", "1"), lvl(Side::Ask, "101", "1")];
        s.apply_snapshot(
            &Contiguous,
            Snapshot {
                symbol: 0,
                id: Some(100),
                levels: &book,
                exchange_ts_ns: 0,
                ts_ns: 0,
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(
            lost(&out),
            vec![LossReason::Crossed {
                bid: dec("99"),
                ask: dec("98")
            }]
        );
        assert!(!out
            .iter()
            .any(|e| matches!(e, Event::BookUpdated { .. } | Event::Resynced { .. })));
        assert_eq!(out.last(), Some(&Event::NeedSnapshot { symbol: 0 }));
        assert_eq!(s.state(), SyncState::AwaitingSnapshot);
        assert_eq!(s.counters.crossed, 1);
        // A sound snapshot afterwards brings the book back.
        out.clear();
        s.apply_snapshot(
            &Contiguous,
            Snapshot {
                symbol: 0,
                id: Some(200),
                levels: &book,
                exchange_ts_ns: 0,
                ts_ns: 0,
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(s.state(), SyncState::Live);
        assert!(matches!(out[0], Event::Resynced { .. }));
    }

    #[test]
    fn older_delta_than_the_last_loses_sync_but_a_duplicate_is_stale() {
        let mut s = live();
        let mut out = Vec::new();
        let level = [lvl(Side::Bid, "97", "1")];
        assert!(s
            .apply_delta(
                &Contiguous,
                Delta {
                    symbol: 0,
                    ids: ids(101, 110),
                    levels: &level,
                    exchange_ts_ns: 0,
                    ts_ns: 0
                },
                &mut out
            )
            .unwrap());
        // The same delta again, and one overlapping its ids: harmless repeats.
        for repeat in [ids(101, 110), ids(105, 110), ids(95, 101)] {
            out.clear();
            assert!(!s
                .apply_delta(
                    &Contiguous,
                    Delta {
                        symbol: 0,
                        ids: repeat,
                        levels: &level,
                        exchange_ts_ns: 0,
                        ts_ns: 0
                    },
                    &mut out
                )
                .unwrap());
            assert!(out.is_empty(), "{repeat:?}: {out:?}");
        }
        assert_eq!(s.counters.stale_dropped, 3);
        assert_eq!(s.state(), SyncState::Live);
        // Wholly before the previous delta: the ids went backwards.
        out.clear();
        assert!(!s
            .apply_delta(
                &Contiguous,
                Delta {
                    symbol: 0,
                    ids: ids(90, 100),
                    levels: &level,
                    exchange_ts_ns: 0,
                    ts_ns: 0
                },
                &mut out
            )
            .unwrap());
        let reason = LossReason::IdsBackwards {
            last: 110,
            received: 100,
        };
        assert_eq!(
            out,
            vec![
                Event::SyncLost { symbol: 0, reason },
                Event::NeedSnapshot { symbol: 0 }
            ]
        );
        assert_eq!(reason.to_string(), "update id 100 after 110");
        assert_eq!(s.counters.ids_backwards, 1);
        assert_eq!(s.counters.stale_dropped, 3);
        assert_eq!(s.state(), SyncState::AwaitingSnapshot);
    }

    #[test]
    fn deltas_older_than_the_snapshot_stay_stale() {
        // Anchored on the snapshot, not on a delta: old deltas are the normal bridging case.
        let mut s = live();
        let mut out = Vec::new();
        assert!(!s
            .apply_delta(
                &Contiguous,
                Delta {
                    symbol: 0,
                    ids: ids(50, 60),
                    levels: &[],
                    exchange_ts_ns: 0,
                    ts_ns: 0
                },
                &mut out
            )
            .unwrap());
        assert!(out.is_empty());
        assert_eq!((s.counters.stale_dropped, s.counters.ids_backwards), (1, 0));
        // Buffered deltas from before the snapshot are dropped as stale when it bridges.
        let mut s = SymbolSync::new(ResyncBy::Snapshot, None);
        for first in [90, 95, 100] {
            s.apply_delta(
                &Contiguous,
                Delta {
                    symbol: 0,
                    ids: ids(first, first + 4),
                    levels: &[],
                    exchange_ts_ns: 0,
                    ts_ns: 0,
                },
                &mut out,
            )
            .unwrap();
        }
        out.clear();
        s.apply_snapshot(
            &Contiguous,
            Snapshot {
                symbol: 0,
                id: Some(100),
                levels: &[],
                exchange_ts_ns: 0,
                ts_ns: 0,
            },
            &mut out,
        )
        .unwrap();
        assert!(lost(&out).is_empty());
        assert_eq!(s.state(), SyncState::Live);
        assert_eq!(s.counters.stale_dropped, 2);
        assert_eq!(s.last_seq, Some(104));
    }

    #[test]
    fn buffer_is_bounded_in_bytes_dropping_the_oldest() {
        let mut s = SymbolSync::new(ResyncBy::Snapshot, None);
        let levels: Vec<LevelChange> = (0..10)
            .map(|i| lvl(Side::Bid, &format!("{}", i + 1), "1"))
            .collect();
        let one = std::mem::size_of::<BufferedDelta>() + 10 * std::mem::size_of::<LevelChange>();
        s.set_max_buffer_bytes(5 * one);
        let mut out = Vec::new();
        for id in 1..=1000u64 {
            s.apply_delta(
                &Contiguous,
                Delta {
                    symbol: 0,
                    ids: ids(id, id),
                    levels: &levels,
                    exchange_ts_ns: 0,
                    ts_ns: 0,
                },
                &mut out,
            )
            .unwrap();
            assert!(s.buffered_bytes() <= 5 * one);
        }
        assert_eq!(s.buffered(), 5);
        assert_eq!(s.buffered_bytes(), 5 * one);
        assert_eq!(s.counters.buffer_dropped, 995);
        assert_eq!(out, vec![Event::NeedSnapshot { symbol: 0 }]);
        // The newest five were kept: a snapshot at 995 bridges to them.
        out.clear();
        s.apply_snapshot(
            &Contiguous,
            Snapshot {
                symbol: 0,
                id: Some(995),
                levels: &[],
                exchange_ts_ns: 0,
                ts_ns: 0,
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(s.state(), SyncState::Live);
        assert_eq!(s.last_seq, Some(1000));
        assert_eq!(s.buffered_bytes(), 0);
    }

    #[test]
    fn dropping_from_a_full_buffer_is_constant_time() {
        // 200,000 deltas through a buffer holding ~50,000: with `Vec::remove(0)` this is
        // billions of moves (tens of seconds); with the deque it is instant.
        let mut s = SymbolSync::new(ResyncBy::Snapshot, None);
        s.set_max_buffer_bytes(usize::MAX);
        let level = [lvl(Side::Bid, "1", "1")];
        let mut out = Vec::new();
        let start = std::time::Instant::now();
        for id in 1..=200_000u64 {
            s.apply_delta(
                &Contiguous,
                Delta {
                    symbol: 0,
                    ids: ids(id, id),
                    levels: &level,
                    exchange_ts_ns: 0,
                    ts_ns: 0,
                },
                &mut out,
            )
            .unwrap();
        }
        assert_eq!(s.buffered(), MAX_BUFFERED_DELTAS);
        assert_eq!(s.counters.buffer_dropped, 150_000);
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn a_single_delta_over_the_bound_is_still_kept() {
        let mut s = SymbolSync::new(ResyncBy::Snapshot, None);
        s.set_max_buffer_bytes(1);
        let mut out = Vec::new();
        let level = [lvl(Side::Bid, "1", "1")];
        for id in 1..=3u64 {
            s.apply_delta(
                &Contiguous,
                Delta {
                    symbol: 0,
                    ids: ids(id, id),
                    levels: &level,
                    exchange_ts_ns: 0,
                    ts_ns: 0,
                },
                &mut out,
            )
            .unwrap();
        }
        assert_eq!(
            s.buffered(),
            1,
            "the newest delta is the one a snapshot bridges to"
        );
        assert_eq!(s.counters.buffer_dropped, 2);
    }

    #[test]
    fn gap_checksum_bad_frame_and_rejected_each_say_why() {
        let mut s = live();
        let mut out = Vec::new();
        s.apply_delta(
            &Contiguous,
            Delta {
                symbol: 0,
                ids: ids(105, 106),
                levels: &[],
                exchange_ts_ns: 0,
                ts_ns: 0,
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out,
            vec![
                Event::GapDetected {
                    symbol: 0,
                    expected: 101,
                    received: 105
                },
                Event::SyncLost {
                    symbol: 0,
                    reason: LossReason::Gap {
                        expected: 101,
                        received: 105
                    }
                },
                Event::NeedSnapshot { symbol: 0 }
            ]
        );
        let mut s = live();
        out.clear();
        assert!(!s.on_checksum(0, 7, 9, &mut out));
        assert_eq!(
            lost(&out),
            vec![LossReason::Checksum {
                expected: 7,
                computed: 9
            }]
        );
        assert!(matches!(out[0], Event::ChecksumMismatch { .. }));
        assert_eq!(out.last(), Some(&Event::NeedSnapshot { symbol: 0 }));
        let mut s = live();
        out.clear();
        s.on_bad_frame(0, &FrameError::Json("eof".into()), &mut out);
        assert_eq!(lost(&out), vec![LossReason::BadFrame]);
        let mut s = live();
        out.clear();
        let err = s
            .apply_delta(
                &Contiguous,
                Delta {
                    symbol: 0,
                    ids: ids(101, 101),
                    levels: &[lvl(Side::Bid, "1", "-1")],
                    exchange_ts_ns: 0,
                    ts_ns: 0,
                },
                &mut out,
            )
            .unwrap_err();
        s.on_bad_frame(0, &FrameError::Book(err), &mut out);
        assert_eq!(lost(&out), vec![LossReason::Rejected]);
        assert_eq!(s.counters.errors, 1);
        let names: Vec<&str> = [
            LossReason::Gap {
                expected: 1,
                received: 2,
            },
            LossReason::Checksum {
                expected: 1,
                computed: 2,
            },
            LossReason::BadFrame,
            LossReason::Rejected,
            LossReason::Crossed {
                bid: dec("1"),
                ask: dec("1"),
            },
            LossReason::IdsBackwards {
                last: 2,
                received: 1,
            },
        ]
        .iter()
        .map(LossReason::name)
        .collect();
        assert_eq!(
            names,
            [
                "gap",
                "checksum",
                "bad-frame",
                "rejected",
                "crossed",
                "ids-backwards"
            ]
        );
    }

    #[test]
    fn out_of_range_price_rejected_once_not_twice() {
        let mut s = live();
        let mut out = Vec::new();
        // Parses, passes validation, but cannot be keyed at the book's scale.
        let huge = lvl(Side::Bid, "0.000000000000000001", "1");
        let err = s
            .apply_delta(
                &Contiguous,
                Delta {
                    symbol: 0,
                    ids: ids(101, 101),
                    levels: &[huge],
                    exchange_ts_ns: 0,
                    ts_ns: 0,
                },
                &mut out,
            )
            .unwrap_err();
        assert!(out.is_empty(), "the caller reports it: {out:?}");
        assert_eq!(s.state(), SyncState::AwaitingSnapshot);
        s.on_bad_frame(0, &FrameError::Book(err), &mut out);
        assert_eq!(lost(&out), vec![LossReason::Rejected]);
        assert_eq!(out.len(), 2);
        assert_eq!(s.counters.errors, 1);
    }

    fn session_names(symbols: &Symbols) -> Vec<&str> {
        symbols.names().iter().map(String::as_str).collect()
    }

    #[test]
    fn allowlist_matches_any_ascii_case_and_keeps_the_venue_spelling() {
        let wanted = vec!["ethusdt".to_owned(), "BTC-USD".to_owned()];
        let mut symbols = Symbols::configured(Some(&wanted), 1234);
        let make = || SymbolSync::new(ResyncBy::Snapshot, None);
        assert_eq!(symbols.intern("ETHUSDT", make), Some(0));
        assert_eq!(symbols.intern("btc-usd", make), Some(1));
        assert_eq!(symbols.intern("ETHUSDT", make), Some(0));
        assert_eq!(symbols.intern("BNBUSDT", make), None);
        assert_eq!(symbols.intern("ETHUSD", make), None);
        assert_eq!(session_names(&symbols), ["ETHUSDT", "btc-usd"]);
        assert_eq!(symbols.unsubscribed(), 2);
        assert_eq!(symbols.id("BNBUSDT"), None);
        assert_eq!(symbols.sync(0).unwrap().max_buffer_bytes, 1234);
        // No list: everything is taken, nothing counted.
        let mut all = Symbols::new();
        assert_eq!(all.intern("ANY", make), Some(0));
        assert_eq!(all.unsubscribed(), 0);
    }
}
