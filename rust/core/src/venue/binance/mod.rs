//! Binance spot, USDⓈ-M and COIN-M: depth diffs bridged to REST snapshots, bookTicker quotes,
//! trades, aggTrades and klines, from combined-stream (`{"stream":..,"data":..}`) or raw frames.
//!
//! Sequence rules (per symbol): spot chains `U == previous u + 1` and bridges a snapshot with
//! `U <= lastUpdateId + 1 <= u`; futures chain `pu == previous u` and bridge with
//! `U <= lastUpdateId <= u`.
//!
//! Trades come from `trade` events (trade id `t`) or `aggTrade` events (fields `a`, `p`, `q`,
//! `f`, `l`, `T`, `m`; the trade id is the aggregate id `a`); in both, `m` (the buyer was the
//! maker) makes the taker a seller, and the exchange time is the trade time `T`.
//!
//! The depth stream is the whole book's changes, so books are kept whole whatever
//! `SessionOptions::depth` says (cutting them would lose levels that come back into range).
//! A REST snapshot may name its symbol in any case: Binance symbols are upper case in every
//! event, so it is read as the events spell it.
//!
//! A refused request, `{"code","msg","id"}` or `{"error":{"code","msg"},"id"}`, is
//! `FrameError::VenueError` ("code C: msg"); it names no symbol and changes no book.

mod wire;

#[cfg(test)]
mod tests;

use crate::error::{FrameError, ReceiveError};
use crate::event::{Candle, Event, Quote, SymbolId, Trade, TradeSide};
use crate::sync::{Continuity, Delta, DeltaIds, LevelChange, ResyncBy, SequenceRule, Snapshot};
use crate::venue::session_core::SessionCore;
use crate::venue::{decimal_field, ms_to_ns, Session, SessionOptions};

use wire::{decode, Fields};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Market {
    Spot,
    UsdM,
    CoinM,
}

impl Market {
    pub fn venue_name(self) -> &'static str {
        match self {
            Market::Spot => "binance",
            Market::UsdM => "binance-usdm",
            Market::CoinM => "binance-coinm",
        }
    }
}

pub struct SpotRule;

impl SequenceRule for SpotRule {
    fn bridges(&self, snapshot_id: u64, d: &DeltaIds) -> Continuity {
        if d.last <= snapshot_id {
            Continuity::Stale
        } else if d.first <= snapshot_id + 1 {
            Continuity::Apply
        } else {
            Continuity::Gap {
                expected: snapshot_id + 1,
                received: d.first,
            }
        }
    }
    fn follows(&self, last: &DeltaIds, d: &DeltaIds) -> Continuity {
        // Quantities are absolute, so an overlapping event is as safe as the next one.
        self.bridges(last.last, d)
    }
}

pub struct FuturesRule;

impl SequenceRule for FuturesRule {
    fn bridges(&self, snapshot_id: u64, d: &DeltaIds) -> Continuity {
        if d.last < snapshot_id {
            Continuity::Stale
        } else if d.first <= snapshot_id {
            Continuity::Apply
        } else {
            Continuity::Gap {
                expected: snapshot_id,
                received: d.first,
            }
        }
    }
    fn follows(&self, last: &DeltaIds, d: &DeltaIds) -> Continuity {
        if d.prev == Some(last.last) {
            Continuity::Apply
        } else if d.last <= last.last {
            Continuity::Stale
        } else {
            Continuity::Gap {
                expected: last.last,
                received: d.prev.unwrap_or(d.first),
            }
        }
    }
}

pub struct BinanceSession {
    core: SessionCore,
    market: Market,
    /// Reused for every frame's levels: decoding allocates nothing.
    levels: Vec<LevelChange>,
}

impl BinanceSession {
    pub fn new(market: Market, options: SessionOptions) -> Self {
        BinanceSession {
            core: SessionCore::new(options),
            market,
            levels: Vec::with_capacity(256),
        }
    }

    fn rule(&self) -> &'static dyn SequenceRule {
        match self.market {
            Market::Spot => &SpotRule,
            Market::UsdM | Market::CoinM => &FuturesRule,
        }
    }

    /// `None` for a symbol that was not subscribed: the caller drops the frame.
    fn intern(&mut self, symbol: &str) -> Option<SymbolId> {
        self.core.intern(symbol, ResyncBy::Snapshot, None)
    }

    fn on_fields(
        &mut self,
        f: &Fields<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        match f.event() {
            Some("depthUpdate") => self.on_depth(f, ts_ns, out),
            Some("bookTicker") => self.on_quote(f, ts_ns, out),
            Some("trade") => self.on_trade(f, TradeId::Trade, ts_ns, out),
            Some("aggTrade") => self.on_trade(f, TradeId::Aggregate, ts_ns, out),
            Some("kline") => self.on_kline(f, ts_ns, out),
            _ => {
                if let Some(error) = f.venue_error(None) {
                    return Err(error);
                }
                self.core.stats.ignored += 1;
                Ok(())
            }
        }
    }

    fn on_depth(
        &mut self,
        f: &Fields<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let name = f.s.ok_or(FrameError::MissingField("s"))?;
        let Some(symbol) = self.intern(name) else {
            return Ok(());
        };
        let ids = match self.depth_ids(f) {
            Ok(ids) => ids,
            Err(e) => return Err(self.core.symbols.bad_frame(symbol, e, out)),
        };
        let rule = self.rule();
        let delta = Delta {
            symbol,
            ids,
            levels: &self.levels,
            exchange_ts_ns: ms_to_ns(f.event_time.unwrap_or(0)),
            ts_ns,
        };
        let symbols = &mut self.core.symbols;
        let sync = symbols.sync_mut(symbol).expect("interned above");
        match sync.apply_delta(rule, delta, out) {
            Ok(_) => Ok(()),
            Err(e) => Err(symbols.bad_frame(symbol, e.into(), out)),
        }
    }

    fn depth_ids(&self, f: &Fields<'_>) -> Result<DeltaIds, FrameError> {
        let first = f.first_id.ok_or(FrameError::MissingField("U"))?;
        let last = f.last_id.ok_or(FrameError::MissingField("u"))?;
        let prev = match self.market {
            Market::Spot => None,
            Market::UsdM | Market::CoinM => Some(f.prev_id.ok_or(FrameError::MissingField("pu"))?),
        };
        if first > last {
            return Err(FrameError::Invalid(format!(
                "first update id {first} is after last {last}"
            )));
        }
        Ok(DeltaIds { first, last, prev })
    }

    fn on_quote(
        &mut self,
        f: &Fields<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let name = f.s.ok_or(FrameError::MissingField("s"))?;
        let bid_price = decimal_field("b", f.b_str)?;
        let bid_size = decimal_field("B", f.bid_size)?;
        let ask_price = decimal_field("a", f.a_str)?;
        let ask_size = decimal_field("A", f.ask_size)?;
        let Some(symbol) = self.intern(name) else {
            return Ok(());
        };
        out.push(Event::Quote(Quote {
            symbol,
            seq: f.last_id,
            bid_price,
            bid_size,
            ask_price,
            ask_size,
            exchange_ts_ns: ms_to_ns(f.event_time.or(f.tx_time).unwrap_or(0)),
            ts_ns,
        }));
        Ok(())
    }

    fn on_trade(
        &mut self,
        f: &Fields<'_>,
        id: TradeId,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let name = f.s.ok_or(FrameError::MissingField("s"))?;
        let price = decimal_field("p", f.p)?;
        let size = decimal_field("q", f.q)?;
        // `m`: the buyer was the maker, so the taker sold.
        let side = f.m.map(|maker| {
            if maker {
                TradeSide::Sell
            } else {
                TradeSide::Buy
            }
        });
        let trade_id = match id {
            TradeId::Trade => f.t.ok_or(FrameError::MissingField("t"))?,
            TradeId::Aggregate => f.a_num.ok_or(FrameError::MissingField("a"))?,
        };
        let Some(symbol) = self.intern(name) else {
            return Ok(());
        };
        out.push(Event::Trade(Trade {
            symbol,
            price,
            size,
            side,
            trade_id: trade_id.to_string(),
            exchange_ts_ns: ms_to_ns(f.tx_time.or(f.event_time).unwrap_or(0)),
            ts_ns,
            is_snapshot: false,
        }));
        Ok(())
    }

    fn on_kline(
        &mut self,
        f: &Fields<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let name = f.s.ok_or(FrameError::MissingField("s"))?;
        let k = f.k.as_ref().ok_or(FrameError::MissingField("k"))?;
        let candle = Candle {
            symbol: 0,
            interval: k.interval.to_owned(),
            open_ts_ns: ms_to_ns(k.open_time),
            // Binance's close time is the last millisecond of the interval.
            close_ts_ns: ms_to_ns(k.close_time.saturating_add(1)),
            open: decimal_field("o", Some(k.open))?,
            high: decimal_field("h", Some(k.high))?,
            low: decimal_field("l", Some(k.low))?,
            close: decimal_field("c", Some(k.close))?,
            volume: decimal_field("v", Some(k.volume))?,
            trades: k.trades,
            closed: k.closed,
            exchange_ts_ns: ms_to_ns(f.event_time.unwrap_or(0)),
            ts_ns,
            is_snapshot: false,
        };
        let Some(symbol) = self.intern(name) else {
            return Ok(());
        };
        out.push(Event::Candle(Candle { symbol, ..candle }));
        Ok(())
    }
}

/// Which field of a trade event is its id: `t` of a `trade`, `a` of an `aggTrade`.
#[derive(Debug, Clone, Copy)]
enum TradeId {
    Trade,
    Aggregate,
}

impl Session for BinanceSession {
    fn venue(&self) -> &'static str {
        self.market.venue_name()
    }

    fn receive_frame(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        self.levels.clear();
        let mut fields = Fields::default();
        match decode(
            frame,
            &mut fields,
            &mut self.levels,
            self.core.options.max_frame_bytes,
        ) {
            Ok(()) => self.on_fields(&fields, ts_ns, out),
            Err(error) => {
                // A depth frame that names its symbol but cannot be read costs that symbol its sync.
                let symbols = &mut self.core.symbols;
                if fields.e == Some("depthUpdate") {
                    if let Some(id) = fields.s.and_then(|s| symbols.id(s)) {
                        return Err(symbols.bad_frame(id, error, out));
                    }
                }
                Err(ReceiveError::new(fields.s.map(str::to_owned), error))
            }
        }
    }

    fn receive_snapshot(
        &mut self,
        symbol: &str,
        body: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let owned_symbol = || Some(symbol.to_owned());
        self.levels.clear();
        let mut fields = Fields::default();
        decode(
            body,
            &mut fields,
            &mut self.levels,
            self.core.options.max_frame_bytes,
        )
        .map_err(|e| ReceiveError::new(owned_symbol(), e))?;
        if let Some(error) = fields.venue_error(Some(symbol)) {
            return Err(error);
        }
        let last_update_id = fields.last_update_id.ok_or_else(|| {
            ReceiveError::new(owned_symbol(), FrameError::MissingField("lastUpdateId"))
        })?;
        let Some(id) = self.intern(&symbol.to_ascii_uppercase()) else {
            return Ok(());
        };
        let rule = self.rule();
        let snapshot = Snapshot {
            symbol: id,
            id: Some(last_update_id),
            levels: &self.levels,
            exchange_ts_ns: ms_to_ns(fields.event_time.unwrap_or(0)),
            ts_ns,
        };
        let sync = self.core.symbols.sync_mut(id).expect("interned above");
        sync.apply_snapshot(rule, snapshot, out)
            .map_err(|e| ReceiveError::new(owned_symbol(), e.into()))
    }

    fn resync_modes(&self) -> &'static [ResyncBy] {
        // Depth streams carry no book: only the REST snapshot rebuilds one.
        &[ResyncBy::Snapshot]
    }

    fn core(&self) -> &SessionCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut SessionCore {
        &mut self.core
    }
}
