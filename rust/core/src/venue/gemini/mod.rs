//! Gemini market data, two protocols:
//!
//! - **v2** (venue `gemini`, `wss://api.gemini.com/v2/marketdata`, subscription `l2`): one
//!   connection carries many symbols. `l2_updates` frames hold `changes: [[side, price, qty]]`
//!   with absolute quantities (`"0"` removes). The first `l2_updates` of a symbol is its full book;
//!   it also carries `trades` (recent trades) and `auction_events`, which later deltas never do, so
//!   after a lost sync a frame carrying `trades` is taken as the new book (the answer to the
//!   resubscribe) and plain deltas are dropped until it comes. There are no sequence numbers.
//!   Trades come as `trade` frames whose `side` is the taker's.
//! - **v1** (venue `gemini-v1:SYMBOL`, `wss://api.gemini.com/v1/marketdata/SYMBOL`): one
//!   connection per symbol, so the frames never name it and the session is created for one
//!   symbol: `new_session("gemini-v1:BTCUSD", ..)`. Every frame (updates and heartbeats) carries
//!   `socket_sequence`, 0 on a new connection and +1 per frame; any other step is a gap and the
//!   book is rebuilt from the next `initial` update (reconnect). Change events carry `remaining`
//!   (absolute quantity); trade events carry `makerSide`, so the taker side is the opposite one.
//!
//! Both protocols stream the whole book, with no depth to choose: it is kept whole whatever
//! `SessionOptions::depth` says (cutting a diff stream would lose levels that come back into
//! view), and views show the depth asked for.
//!
//! Recent trades sent with a (re)subscription — v2's `trades` list, and trades in a v1 `initial`
//! update — are history: `Trade` events marked `is_snapshot`, oldest first, skipping any whose id
//! is not above the last trade already emitted for that symbol (a resubscribe repeats them). They
//! keep their own exchange timestamps. Both protocols resync by resubscribing
//! (`NeedResubscribe`).
//!
//! A refused request, `{"result":"error","reason":..,"message":..}` (`reason` is a code word
//! such as `InvalidJson`), is `FrameError::VenueError` ("reason: message"); in v1 it concerns
//! the connection's symbol. It changes no book.

mod v1;
mod wire;

#[cfg(test)]
mod tests;

pub use v1::GeminiV1Session;

use crate::error::{FrameError, ReceiveError};
use crate::event::{Event, SymbolId};
use crate::sync::{LevelChange, ResyncBy, Snapshot, Unsequenced};
use crate::venue::session_core::SessionCore;
use crate::venue::trades::{RawTrade, TradeCursor};
use crate::venue::{check_frame_size, decimal_field, Session, SessionOptions};
use wire::{taker_side, Buffers, V2Fields};

/// `new_session` venue names of the form `gemini-v1:SYMBOL` open a v1 session for `SYMBOL`.
pub const V1_PREFIX: &str = "gemini-v1:";

/// Per-symbol state beside the book: has its first book been seen, which trades were emitted.
#[derive(Debug, Clone, Copy, Default)]
struct SymbolExtra {
    book_seen: bool,
    trades: TradeCursor,
}

pub struct GeminiSession {
    core: SessionCore,
    extra: Vec<SymbolExtra>,
    levels: Vec<LevelChange>,
    trades: Vec<RawTrade>,
}

impl GeminiSession {
    pub fn new(options: SessionOptions) -> Self {
        GeminiSession {
            core: SessionCore::new(options),
            extra: Vec::new(),
            levels: Vec::with_capacity(256),
            trades: Vec::with_capacity(64),
        }
    }

    /// `None` for a symbol that was not subscribed: the caller drops the frame.
    fn intern(&mut self, name: &str) -> Option<SymbolId> {
        let id = self.core.intern(name, ResyncBy::Resubscribe, None)?;
        if self.extra.len() <= id as usize {
            self.extra.resize(id as usize + 1, SymbolExtra::default());
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
        self.levels.clear();
        self.trades.clear();
        let mut fields = V2Fields::default();
        let buffers = Buffers {
            levels: &mut self.levels,
            trades: &mut self.trades,
        };
        if let Err(error) = wire::decode_v2(frame, &mut fields, buffers) {
            if fields.kind == Some("l2_updates") {
                if let Some(id) = fields.symbol.and_then(|name| self.intern(name)) {
                    // Even a first frame: the book it carried is lost, so the next plain delta
                    // must not be taken for the book.
                    self.extra[id as usize].book_seen = true;
                    return Err(self.core.symbols.bad_frame(id, error, out));
                }
            }
            return Err(ReceiveError::new(fields.symbol.map(str::to_owned), error));
        }
        if fields.error.is_error() {
            // A refused request: reported, no book changes.
            return Err(fields.error.to_receive_error(fields.symbol));
        }
        match fields.kind {
            Some("l2_updates") => self.on_l2(&fields, ts_ns, out),
            Some("trade") => self.on_trade(&fields, ts_ns, out),
            // heartbeat, subscription acks, auctions, candles: understood, not kept.
            _ => {
                self.core.stats.ignored += 1;
                Ok(())
            }
        }
    }

    fn on_l2(
        &mut self,
        f: &V2Fields<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let name = f.symbol.ok_or(FrameError::MissingField("symbol"))?;
        if !f.has_changes {
            return Err(ReceiveError::new(
                Some(name.to_owned()),
                FrameError::MissingField("changes"),
            ));
        }
        let Some(id) = self.intern(name) else {
            return Ok(());
        };
        let extra = &mut self.extra[id as usize];
        let is_book = !extra.book_seen || f.has_trades;
        let sync = self.core.symbols.sync_mut(id).expect("interned above");
        let result = if is_book {
            extra.book_seen = true;
            let book = Snapshot {
                symbol: id,
                id: None,
                levels: &self.levels,
                exchange_ts_ns: 0,
                ts_ns,
            };
            sync.apply_snapshot(&Unsequenced, book, out).map(|()| true)
        } else {
            sync.on_unsequenced_delta(id, &self.levels, 0, ts_ns, out)
        };
        if let Err(e) = result {
            return Err(self.core.symbols.bad_frame(id, e.into(), out));
        }
        if is_book {
            extra.trades.history(&mut self.trades, id, ts_ns, out);
        }
        Ok(())
    }

    fn on_trade(
        &mut self,
        f: &V2Fields<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let name = f.symbol.ok_or(FrameError::MissingField("symbol"))?;
        let trade = (|| -> Result<RawTrade, FrameError> {
            Ok(RawTrade {
                id: f.event_id.ok_or(FrameError::MissingField("event_id"))?,
                ts_ms: f.timestamp.unwrap_or(0),
                price: decimal_field("price", f.price)?,
                size: decimal_field("quantity", f.quantity)?,
                side: taker_side(f.side)?,
            })
        })()
        .map_err(|e| ReceiveError::new(Some(name.to_owned()), e))?;
        let Some(id) = self.intern(name) else {
            return Ok(());
        };
        self.extra[id as usize].trades.live(&trade, id, ts_ns, out);
        Ok(())
    }
}

impl Session for GeminiSession {
    fn venue(&self) -> &'static str {
        "gemini"
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
