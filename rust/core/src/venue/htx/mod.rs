//! HTX (formerly Huobi) market data: spot (`wss://api.huobi.pro/ws`) and coin- and
//! USDT-margined swaps (`wss://api.hbdm.com/swap-ws`, `.../linear-swap-ws`), one session type
//! for all three (venue `htx-swap`; the `htx` spot spec decodes with it).
//!
//! Every frame the server sends is binary, gzip-compressed JSON; the session inflates it
//! (refusing one that inflates past `SessionOptions::max_frame_bytes`). A frame that is already
//! plain JSON is read as is.
//!
//! - `market.<sym>.depth.step<N>`: every push is the whole book (150 levels for `step0`), so
//!   each one replaces the book. The push's `version` (spot and swaps) is its `seq`; a push
//!   older than the book is dropped as stale. A crossed push costs the symbol its sync, and the
//!   next push (or the resubscribe it asks for) brings it back.
//! - `market.<sym>.trade.detail`: `tick.data` trades (`price`, `amount`, `direction` of the
//!   taker, `id`; spot also `tradeId`, preferred as the id because `id` there is a 27-digit
//!   number). HTX sends the last trade when a channel is subscribed; it is a real trade and is
//!   delivered like the others.
//! - `{"ping":T}`: the server closes a connection that does not answer `{"pong":T}` within
//!   seconds; the answer is an `Event::Reply` for the I/O layer to send.
//! - `{"status":"error","err-code","err-msg"}`: `FrameError::VenueError`, no book changes.
//!
//! Prices and sizes are JSON numbers, each parsed from its digits (never through `f64`).
//! A push is the whole book, best levels first: with `SessionOptions::depth` set, only that
//! many levels a side are read into the book (views show no more), the rest only checked.

mod wire;

#[cfg(test)]
mod tests;

use crate::error::{FrameError, ReceiveError};
use crate::event::{Event, SymbolId, Trade, TradeSide};
use crate::sync::{LevelChange, ResyncBy, Snapshot, Unsequenced};
use crate::venue::json::venue_error;
use crate::venue::session_core::SessionCore;
use crate::venue::{check_frame_size, decimal_field, ms_to_ns, Session, SessionOptions};

use wire::Channel;

pub struct HtxSession {
    core: SessionCore,
    levels: Vec<LevelChange>,
    /// Reused for each inflated frame.
    inflated: Vec<u8>,
    inflater: wire::Inflater,
}

impl HtxSession {
    pub fn new(options: SessionOptions) -> Self {
        HtxSession {
            core: SessionCore::new(options),
            levels: Vec::with_capacity(320),
            inflated: Vec::with_capacity(16 * 1024),
            inflater: wire::Inflater::default(),
        }
    }

    fn intern(&mut self, name: &str) -> Option<SymbolId> {
        self.core.intern(name, ResyncBy::Resubscribe, None)
    }

    fn receive_inner(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let max = self.core.options.max_frame_bytes;
        check_frame_size(frame, max)?;
        // Taken out for the frame's life so that what it borrows stays apart from the books.
        let mut inflated = std::mem::take(&mut self.inflated);
        let result = self
            .inflater
            .inflate(frame, &mut inflated, max)
            .map_err(ReceiveError::from)
            .and_then(|text| self.on_text(text, ts_ns, out));
        self.inflated = inflated;
        result
    }

    fn on_text(
        &mut self,
        text: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let keep = self.core.options.depth.unwrap_or(usize::MAX);
        self.levels.clear();
        if let Some(push) = wire::scan_depth(text, keep, &mut self.levels) {
            let Some(id) = self.intern(push.symbol) else {
                return Ok(());
            };
            return self
                .apply_depth(id, push.tick, push.frame_ts, ts_ns, out)
                .map_err(|e| self.core.symbols.bad_frame(id, e, out));
        }
        let f = wire::read_frame(text)?;
        if let Some(ping) = f.ping {
            out.push(Event::Reply {
                text: format!("{{\"pong\":{}}}", ping.get()),
            });
            return Ok(());
        }
        if f.status.as_deref() == Some("error") {
            let code = f.err_code.map(|c| c.get().trim_matches('"'));
            return Err(venue_error(None, code, f.err_msg.as_deref()));
        }
        let Some(ch) = f.ch.as_deref() else {
            // Subscription answers and anything else without a channel.
            self.core.stats.ignored += 1;
            return Ok(());
        };
        match wire::channel(ch) {
            Channel::Depth(symbol) => {
                let Some(id) = self.intern(symbol) else {
                    return Ok(());
                };
                let Some(tick) = f.tick else {
                    let e = FrameError::MissingField("tick");
                    return Err(self.core.symbols.bad_frame(id, e, out));
                };
                if let Err(e) = self.on_depth(id, tick, f.ts, ts_ns, out) {
                    return Err(self.core.symbols.bad_frame(id, e, out));
                }
                Ok(())
            }
            Channel::Trades(symbol) => {
                let Some(id) = self.intern(symbol) else {
                    return Ok(());
                };
                let tick = f.tick.ok_or(FrameError::MissingField("tick"));
                tick.and_then(|tick| self.on_trades(id, tick, ts_ns, out))
                    .map_err(|e| ReceiveError::new(Some(symbol.to_owned()), e))
            }
            Channel::Other => {
                self.core.stats.ignored += 1;
                Ok(())
            }
        }
    }

    fn on_depth(
        &mut self,
        id: SymbolId,
        tick: &serde_json::value::RawValue,
        frame_ts: Option<u64>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), FrameError> {
        self.levels.clear();
        let keep = self.core.options.depth.unwrap_or(usize::MAX);
        let depth = wire::read_depth(tick, keep, &mut self.levels)?;
        self.apply_depth(id, depth, frame_ts, ts_ns, out)
    }

    /// A push replaces the book with the levels read into `self.levels`.
    fn apply_depth(
        &mut self,
        id: SymbolId,
        depth: wire::DepthTick,
        frame_ts: Option<u64>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), FrameError> {
        let exchange_ms = depth.ts.or(frame_ts).unwrap_or(0);
        let sync = self
            .core
            .symbols
            .sync_mut(id)
            .expect("interned by the caller");
        let snapshot = Snapshot {
            symbol: id,
            id: depth.version.or(depth.mrid),
            levels: &self.levels,
            exchange_ts_ns: ms_to_ns(exchange_ms),
            ts_ns,
        };
        sync.apply_snapshot(&Unsequenced, snapshot, out)?;
        Ok(())
    }

    fn on_trades(
        &mut self,
        id: SymbolId,
        tick: &serde_json::value::RawValue,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), FrameError> {
        let tick = wire::read_trades(tick)?;
        let first = out.len();
        for item in &tick.data {
            let trade = match trade(id, item, ts_ns) {
                Ok(trade) => trade,
                Err(e) => {
                    // All of the frame's trades or none.
                    out.truncate(first);
                    return Err(e);
                }
            };
            out.push(Event::Trade(trade));
        }
        Ok(())
    }
}

fn trade(id: SymbolId, item: &wire::TradeItem<'_>, ts_ns: u64) -> Result<Trade, FrameError> {
    let side = match item.direction.as_deref() {
        Some("buy") => Some(TradeSide::Buy),
        Some("sell") => Some(TradeSide::Sell),
        None => None,
        Some(other) => {
            return Err(FrameError::Invalid(format!(
                "trade direction {other:?} is neither buy nor sell"
            )))
        }
    };
    let trade_id = item
        .trade_id
        .or(item.id)
        .map(|raw| raw.get().trim_matches('"').to_owned())
        .ok_or(FrameError::MissingField("id"))?;
    Ok(Trade {
        symbol: id,
        price: decimal_field("price", Some(item.price.get()))?,
        size: decimal_field("amount", Some(item.amount.get()))?,
        side,
        trade_id,
        exchange_ts_ns: ms_to_ns(item.ts.unwrap_or(0)),
        ts_ns,
        is_snapshot: false,
    })
}

impl Session for HtxSession {
    fn venue(&self) -> &'static str {
        "htx-swap"
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
