//! BitMEX realtime websocket: `orderBookL2` books, `trade`, `quote`, and the text heartbeat.
//!
//! `orderBookL2` is keyed by row `id` (one id per price level of a side): `partial` is the whole
//! book of a symbol, `insert` rows carry `price` and `size`, `update` rows only `id`, `side` and
//! the new `size`, `delete` rows only `id` and `side`. So the session keeps `id -> (side, price)`
//! per symbol to apply them. There is no sequence number: an update or delete for an id the book
//! does not hold means something was missed, and that symbol's book is dropped and resubscribed
//! (`NeedResubscribe`: a new subscription brings a new `partial`).
//!
//! `quote` rows (`bidPrice`, `bidSize`, `askPrice`, `askSize`) become `Quote` events with no
//! `seq`: what ties them to the book is their order (each is one of the book's top-of-book
//! states, in order), which `lobfeed verify` checks. The `partial` quote row is left out: it is
//! the last quote before the subscription, older than the book the `partial` book gives. An
//! empty side (`null`) is 0 / 0.
//!
//! `trade` rows are trades; those of the `partial` are the last ones before the subscription,
//! marked `is_snapshot`.
//!
//! Heartbeat: the client sends the text `ping` when idle and BitMEX answers `pong`; a `ping`
//! from the venue is answered with `pong` (a `Reply`).

mod wire;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::book::Side;
use crate::decimal::Decimal;
use crate::error::{FrameError, ReceiveError};
use crate::event::{Event, Quote, SymbolId, Trade, TradeSide};
use crate::sync::{LevelChange, ResyncBy, Snapshot, Unsequenced};
use crate::venue::session_core::SessionCore;
use crate::venue::time::parse_iso8601_ns;
use crate::venue::{check_frame_size, Session, SessionOptions};

use wire::{BookRow, Frame, Row};

/// A symbol's level ids, with each level's side and price.
type LevelIds = HashMap<u64, (Side, Decimal), BuildHasherDefault<LevelIdHasher>>;

/// Every book row is looked up by its level id, and SipHash cost a tenth of the book path:
/// the ids are the venue's own integers, so one multiply spreads them well enough (the
/// rotation brings its well-mixed high half down to the bits that pick the bucket).
#[derive(Default)]
struct LevelIdHasher(u64);

impl Hasher for LevelIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(self.0 ^ u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(32);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BookAction {
    Partial,
    Insert,
    Update,
    Delete,
}

pub struct BitmexSession {
    core: SessionCore,
    /// Per symbol (indexed by `SymbolId`): each level id of its book, with its side and price.
    ids: Vec<LevelIds>,
    levels: Vec<LevelChange>,
}

impl BitmexSession {
    pub fn new(options: SessionOptions) -> Self {
        BitmexSession {
            core: SessionCore::new(options),
            ids: Vec::new(),
            levels: Vec::with_capacity(64),
        }
    }

    fn intern(&mut self, name: &str) -> Option<SymbolId> {
        let id = self.core.intern(name, ResyncBy::Resubscribe, None)?;
        if self.ids.len() <= id as usize {
            self.ids.resize_with(id as usize + 1, LevelIds::default);
        }
        Some(id)
    }

    fn receive_inner(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        check_frame_size(frame, self.core.options.max_frame_bytes)?;
        match frame.trim_ascii() {
            b"pong" => {
                self.core.stats.ignored += 1;
                return Ok(());
            }
            b"ping" => {
                out.push(Event::Reply {
                    text: "pong".to_owned(),
                });
                return Ok(());
            }
            _ => {}
        }
        let mut rows = Vec::new();
        if let Some(action) = wire::scan_book(frame, &mut rows) {
            return self.on_book_frame(Some(action), &rows, ts_ns, out);
        }
        let f: Frame<'_> = serde_json::from_slice(frame).map_err(FrameError::from)?;
        if let Some(error) = &f.error {
            let status = f.status.map(|s| s.get());
            return Err(crate::venue::json::venue_error(
                None,
                status,
                Some(error.as_ref()),
            ));
        }
        let (Some(table), Some(rows)) = (f.table, &f.data) else {
            // The greeting, subscription answers.
            self.core.stats.ignored += 1;
            return Ok(());
        };
        match table {
            "orderBookL2" | "orderBookL2_25" => self.on_book_frame(f.action, rows, ts_ns, out),
            "quote" if f.action == Some("partial") => {
                self.core.stats.ignored += 1;
                Ok(())
            }
            "quote" => self.on_quotes(rows, ts_ns, out),
            "trade" => self.on_trades(rows, f.action == Some("partial"), ts_ns, out),
            _ => {
                self.core.stats.ignored += 1;
                Ok(())
            }
        }
    }

    fn on_book_frame<R: BookRow>(
        &mut self,
        action: Option<&str>,
        rows: &[R],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let action = match action {
            Some("partial") => BookAction::Partial,
            Some("insert") => BookAction::Insert,
            Some("update") => BookAction::Update,
            Some("delete") => BookAction::Delete,
            Some(other) => {
                let e = FrameError::Invalid(format!("unknown book action {other:?}"));
                return Err(self.fail_rows(rows, e, out));
            }
            None => return Err(self.fail_rows(rows, FrameError::MissingField("action"), out)),
        };
        self.on_book(action, rows, ts_ns, out)
    }

    /// A book frame that cannot be used: every known symbol it names resyncs.
    fn fail_rows<R: BookRow>(
        &mut self,
        rows: &[R],
        error: FrameError,
        out: &mut Vec<Event>,
    ) -> ReceiveError {
        let mut named: Option<SymbolId> = None;
        for name in rows.iter().filter_map(|r| r.symbol()) {
            if let Some(id) = self.core.symbols.id(name) {
                if named != Some(id) {
                    if let Some(sync) = self.core.symbols.sync_mut(id) {
                        sync.on_bad_frame(id, &error, out);
                    }
                    named = Some(id);
                }
            }
        }
        let symbol = named.map(|id| self.core.symbols.name(id).to_owned());
        ReceiveError::new(symbol, error)
    }

    /// Rows are applied symbol by symbol, each run of rows of one symbol as one change.
    fn on_book<R: BookRow>(
        &mut self,
        action: BookAction,
        rows: &[R],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let mut start = 0;
        while start < rows.len() {
            let name = rows[start]
                .symbol()
                .ok_or(FrameError::MissingField("symbol"))?;
            let end = rows[start..]
                .iter()
                .position(|r| r.symbol() != Some(name))
                .map_or(rows.len(), |n| start + n);
            if let Some(id) = self.intern(name) {
                if let Err(e) = self.apply_rows(id, action, &rows[start..end], ts_ns, out) {
                    return Err(self.core.symbols.bad_frame(id, e, out));
                }
            }
            start = end;
        }
        Ok(())
    }

    fn apply_rows<R: BookRow>(
        &mut self,
        id: SymbolId,
        action: BookAction,
        rows: &[R],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), FrameError> {
        self.levels.clear();
        let ids = &mut self.ids[id as usize];
        let sync = self
            .core
            .symbols
            .sync_mut(id)
            .expect("interned by the caller");
        let live = sync.state() == crate::sync::SyncState::Live;
        if action == BookAction::Partial {
            ids.clear();
        } else if !live {
            // Before the partial (or after a resync was asked for): nothing to apply it to.
            sync.counters.stale_dropped += 1;
            return Ok(());
        }
        let mut exchange_ts_ns = 0;
        for row in rows {
            let level_id = row.id().ok_or(FrameError::MissingField("id"))?;
            if let Some(at) = row.timestamp().and_then(parse_iso8601_ns) {
                exchange_ts_ns = at;
            }
            let change = match action {
                BookAction::Partial | BookAction::Insert => {
                    let side = wire::side(row.side())?;
                    let price = row.price()?;
                    let size = row.size()?;
                    ids.insert(level_id, (side, price));
                    (side, price, size)
                }
                BookAction::Update => {
                    let &(side, price) = ids.get(&level_id).ok_or_else(|| unknown(level_id))?;
                    (side, price, row.size()?)
                }
                BookAction::Delete => {
                    let (side, price) = ids.remove(&level_id).ok_or_else(|| unknown(level_id))?;
                    (side, price, Decimal::ZERO)
                }
            };
            self.levels.push(change);
        }
        if action == BookAction::Partial {
            let snapshot = Snapshot {
                symbol: id,
                id: None,
                levels: &self.levels,
                exchange_ts_ns,
                ts_ns,
            };
            sync.apply_snapshot(&Unsequenced, snapshot, out)?;
        } else {
            sync.on_unsequenced_delta(id, &self.levels, exchange_ts_ns, ts_ns, out)?;
        }
        Ok(())
    }

    fn on_quotes(
        &mut self,
        rows: &[Row<'_>],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        for row in rows {
            let error = |e| ReceiveError::new(row.symbol.map(str::to_owned), e);
            let name = row
                .symbol
                .ok_or_else(|| error(FrameError::MissingField("symbol")))?;
            let bid_price = wire::quote_number("bidPrice", row.bid_price).map_err(error)?;
            let bid_size = wire::quote_number("bidSize", row.bid_size).map_err(error)?;
            let ask_price = wire::quote_number("askPrice", row.ask_price).map_err(error)?;
            let ask_size = wire::quote_number("askSize", row.ask_size).map_err(error)?;
            let Some(symbol) = self.intern(name) else {
                continue;
            };
            out.push(Event::Quote(Quote {
                symbol,
                seq: None,
                bid_price,
                bid_size,
                ask_price,
                ask_size,
                exchange_ts_ns: row.timestamp.and_then(parse_iso8601_ns).unwrap_or(0),
                ts_ns,
            }));
        }
        Ok(())
    }

    fn on_trades(
        &mut self,
        rows: &[Row<'_>],
        history: bool,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        for row in rows {
            let error = |e| ReceiveError::new(row.symbol.map(str::to_owned), e);
            let name = row
                .symbol
                .ok_or_else(|| error(FrameError::MissingField("symbol")))?;
            let side = match row.side {
                Some("Buy") => Some(TradeSide::Buy),
                Some("Sell") => Some(TradeSide::Sell),
                Some("") | None => None,
                Some(other) => {
                    let e = FrameError::Invalid(format!("trade side {other:?} is not Buy or Sell"));
                    return Err(error(e));
                }
            };
            let price = wire::number("price", row.price).map_err(error)?;
            let size = wire::number("size", row.size).map_err(error)?;
            let Some(symbol) = self.intern(name) else {
                continue;
            };
            out.push(Event::Trade(Trade {
                symbol,
                price,
                size,
                side,
                trade_id: row.trade_id.as_deref().unwrap_or("").to_owned(),
                exchange_ts_ns: row.timestamp.and_then(parse_iso8601_ns).unwrap_or(0),
                ts_ns,
                is_snapshot: history,
            }));
        }
        Ok(())
    }
}

fn unknown(level_id: u64) -> FrameError {
    FrameError::Invalid(format!("level id {level_id} is not in the book"))
}

impl Session for BitmexSession {
    fn venue(&self) -> &'static str {
        "bitmex"
    }

    fn receive_frame(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        self.receive_inner(frame, ts_ns, out)
    }

    fn core(&self) -> &SessionCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut SessionCore {
        &mut self.core
    }
}
