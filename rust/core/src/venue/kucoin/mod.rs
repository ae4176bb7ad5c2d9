//! KuCoin spot (public websocket, `/market/*` topics): level2 books bridged to the REST
//! snapshot, tickers as quotes at the book's sequence, matches as trades, and candles.
//!
//! Sequence rule (per symbol): a `trade.l2update` carries `sequenceStart` and `sequenceEnd`;
//! the REST book (`GET /api/v3/market/orderbook/level2`, or v1 `level2_100`) stands at
//! `sequence` S. Messages ending at or before S are stale; the first applied one has
//! `sequenceStart <= S + 1 <= sequenceEnd`; after it each `sequenceStart` must be the previous
//! `sequenceEnd + 1`, else the symbol resyncs by a new snapshot. A bridging message is applied
//! whole, the changes at or before S included: sizes are absolute, and every later change of a
//! level up to S would be in the same message, so the level ends as the snapshot has it.
//!
//! Each change is `[price, size, sequence]`; size `"0"` deletes the level; price `"0"` is a
//! change that only advances the sequence (an order that touched no visible level): it is
//! skipped, but its message still chains.
//!
//! `trade.ticker` (topic `/market/ticker:S`) becomes a `Quote` whose `seq` is the ticker's
//! `sequence`: where the book stands at the same sequence, both best levels must agree.
//! `trade.l3match` becomes a `Trade` (`side` is the taker's); `trade.candles.*` a `Candle`
//! with the interval spelled like Binance's (`1min` -> `1m`). `welcome`, `ack` and `pong` are
//! counted as ignored; an `error` answer is `FrameError::VenueError` ("code C: reason").

mod wire;

#[cfg(test)]
mod tests;

use serde_json::value::RawValue;

use crate::decimal::Decimal;
use crate::error::{FrameError, ReceiveError};
use crate::event::{Candle, Event, Quote, SymbolId, Trade, TradeSide};
use crate::sync::{Continuity, Delta, DeltaIds, LevelChange, ResyncBy, SequenceRule, Snapshot};
use crate::venue::json::venue_error;
use crate::venue::session_core::SessionCore;
use crate::venue::{check_frame_size, decimal_field, ms_to_ns, Session, SessionOptions};
use crate::Side;

use wire::Frame;

/// What KuCoin answers a REST request with when it succeeded.
const REST_OK: &str = "200000";

/// `sequenceStart`/`sequenceEnd` chaining: `first`/`last` of `DeltaIds`.
pub struct KucoinRule;

impl SequenceRule for KucoinRule {
    fn bridges(&self, snapshot_id: u64, d: &DeltaIds) -> Continuity {
        if d.last <= snapshot_id {
            Continuity::Stale
        } else if d.first <= snapshot_id.saturating_add(1) {
            Continuity::Apply
        } else {
            Continuity::Gap {
                expected: snapshot_id.saturating_add(1),
                received: d.first,
            }
        }
    }

    fn follows(&self, last: &DeltaIds, d: &DeltaIds) -> Continuity {
        let expected = last.last.saturating_add(1);
        if d.first == expected {
            Continuity::Apply
        } else if d.last <= last.last {
            Continuity::Stale
        } else {
            Continuity::Gap {
                expected,
                received: d.first,
            }
        }
    }
}

pub struct KucoinSession {
    core: SessionCore,
    /// Reused for every message's levels.
    levels: Vec<LevelChange>,
}

impl KucoinSession {
    pub fn new(options: SessionOptions) -> Self {
        KucoinSession {
            core: SessionCore::new(options),
            levels: Vec::with_capacity(64),
        }
    }

    /// `None` for a symbol that was not subscribed: the caller drops the frame.
    fn intern(&mut self, name: &str) -> Option<SymbolId> {
        self.core.intern(name, ResyncBy::Snapshot, None)
    }

    fn on_message(
        &mut self,
        frame: &Frame<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let data = frame.data.ok_or(FrameError::MissingField("data"))?;
        match frame.subject {
            Some("trade.l2update") => self.on_l2update(frame, data, ts_ns, out),
            Some("trade.ticker") => self.on_ticker(frame, data, ts_ns, out),
            Some("trade.l3match") => self.on_match(frame, data, ts_ns, out),
            Some("trade.candles.add") | Some("trade.candles.update") => {
                self.on_candle(frame, data, ts_ns, out)
            }
            _ => {
                self.core.stats.ignored += 1;
                Ok(())
            }
        }
    }

    fn on_l2update(
        &mut self,
        frame: &Frame<'_>,
        data: &RawValue,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let named = frame.topic_symbol();
        let update = match serde_json::from_str::<wire::L2Update<'_>>(data.get()) {
            Ok(update) => update,
            Err(e) => return Err(self.bad_book_frame(named, e.into(), out)),
        };
        let Some(name) = update.symbol.or(named) else {
            return Err(FrameError::MissingField("symbol").into());
        };
        let Some(symbol) = self.intern(name) else {
            return Ok(());
        };
        if let Err(e) = self.read_changes(&update) {
            return Err(self.core.symbols.bad_frame(symbol, e, out));
        }
        let ids = (update.sequence_start, update.sequence_end);
        self.apply_l2update(symbol, ids, update.time, ts_ns, out)
    }

    /// A book update the scanner read whole (its changes in `self.levels`).
    fn on_scanned_l2update(
        &mut self,
        update: wire::ScannedL2Update<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let named = update.topic.and_then(wire::topic_symbol);
        let Some(name) = update.symbol.or(named) else {
            return Err(FrameError::MissingField("symbol").into());
        };
        let Some(symbol) = self.intern(name) else {
            return Ok(());
        };
        let ids = (update.sequence_start, update.sequence_end);
        if let Err(e) = check_sequences(ids) {
            return Err(self.core.symbols.bad_frame(symbol, e, out));
        }
        self.apply_l2update(symbol, ids, update.time, ts_ns, out)
    }

    /// The update in `self.levels`, from `sequenceStart` to `sequenceEnd`.
    fn apply_l2update(
        &mut self,
        symbol: SymbolId,
        (first, last): (u64, u64),
        time: Option<u64>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let delta = Delta {
            symbol,
            ids: DeltaIds {
                first,
                last,
                prev: None,
            },
            levels: &self.levels,
            exchange_ts_ns: ms_to_ns(time.unwrap_or(0)),
            ts_ns,
        };
        let symbols = &mut self.core.symbols;
        let sync = symbols.sync_mut(symbol).expect("interned above");
        match sync.apply_delta(&KucoinRule, delta, out) {
            Ok(_) => Ok(()),
            Err(e) => Err(symbols.bad_frame(symbol, e.into(), out)),
        }
    }

    /// The update's changes into `self.levels`, the sequence-only ones (price 0) left out.
    fn read_changes(&mut self, update: &wire::L2Update<'_>) -> Result<(), FrameError> {
        check_sequences((update.sequence_start, update.sequence_end))?;
        self.levels.clear();
        for (side, changes) in [
            (Side::Ask, &update.changes.asks),
            (Side::Bid, &update.changes.bids),
        ] {
            for &(price, size, _sequence) in changes {
                let price = decimal_field("price", Some(price))?;
                if price.is_zero() {
                    continue;
                }
                let size = decimal_field("size", Some(size))?;
                self.levels.push((side, price, size));
            }
        }
        Ok(())
    }

    /// A book frame that could not be read: its symbol, when known and subscribed, resyncs.
    fn bad_book_frame(
        &mut self,
        name: Option<&str>,
        error: FrameError,
        out: &mut Vec<Event>,
    ) -> ReceiveError {
        let symbols = &mut self.core.symbols;
        match name.and_then(|n| symbols.id(n)) {
            Some(id) => symbols.bad_frame(id, error, out),
            None => ReceiveError::new(name.map(str::to_owned), error),
        }
    }

    fn on_ticker(
        &mut self,
        frame: &Frame<'_>,
        data: &RawValue,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let name = frame.topic_symbol();
        let named = |error| ReceiveError::new(name.map(str::to_owned), error);
        let ticker: wire::Ticker<'_> =
            serde_json::from_str(data.get()).map_err(|e| named(e.into()))?;
        let bid_price = decimal_field("bestBid", Some(ticker.best_bid)).map_err(named)?;
        let bid_size = decimal_field("bestBidSize", Some(ticker.best_bid_size)).map_err(named)?;
        let ask_price = decimal_field("bestAsk", Some(ticker.best_ask)).map_err(named)?;
        let ask_size = decimal_field("bestAskSize", Some(ticker.best_ask_size)).map_err(named)?;
        let name = name.ok_or(FrameError::MissingField("topic"))?;
        let Some(symbol) = self.intern(name) else {
            return Ok(());
        };
        out.push(Event::Quote(Quote {
            symbol,
            seq: ticker.sequence,
            bid_price,
            bid_size,
            ask_price,
            ask_size,
            exchange_ts_ns: ms_to_ns(ticker.time.unwrap_or(0)),
            ts_ns,
        }));
        Ok(())
    }

    fn on_match(
        &mut self,
        frame: &Frame<'_>,
        data: &RawValue,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let topic = frame.topic_symbol();
        let named = |error| ReceiveError::new(topic.map(str::to_owned), error);
        let trade: wire::Match<'_> =
            serde_json::from_str(data.get()).map_err(|e| named(e.into()))?;
        let side = match trade.side {
            None => None,
            Some("buy") => Some(TradeSide::Buy),
            Some("sell") => Some(TradeSide::Sell),
            Some(other) => {
                let e = FrameError::Invalid(format!("trade side {other:?} is not buy or sell"));
                return Err(named(e));
            }
        };
        let price = decimal_field("price", Some(trade.price)).map_err(named)?;
        let size = decimal_field("size", Some(trade.size)).map_err(named)?;
        let name = trade
            .symbol
            .or(topic)
            .ok_or(FrameError::MissingField("symbol"))?;
        let Some(symbol) = self.intern(name) else {
            return Ok(());
        };
        out.push(Event::Trade(Trade {
            symbol,
            price,
            size,
            side,
            trade_id: trade.trade_id.to_owned(),
            exchange_ts_ns: trade.time.unwrap_or(0),
            ts_ns,
            is_snapshot: false,
        }));
        Ok(())
    }

    fn on_candle(
        &mut self,
        frame: &Frame<'_>,
        data: &RawValue,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let topic = frame.topic_symbol();
        let named = |error| ReceiveError::new(topic.map(str::to_owned), error);
        let item: wire::Candles<'_> =
            serde_json::from_str(data.get()).map_err(|e| named(e.into()))?;
        let candle = candle(&item, frame.topic_interval(), ts_ns).map_err(named)?;
        let name = item
            .symbol
            .or(topic)
            .ok_or(FrameError::MissingField("symbol"))?;
        let Some(symbol) = self.intern(name) else {
            return Ok(());
        };
        out.push(Event::Candle(Candle { symbol, ..candle }));
        Ok(())
    }
}

/// A candle of `item` (its symbol left for the caller to set).
fn candle(
    item: &wire::Candles<'_>,
    interval: Option<&str>,
    ts_ns: u64,
) -> Result<Candle, FrameError> {
    let interval = interval.ok_or(FrameError::MissingField("topic"))?;
    let (name, seconds) = interval_of(interval)
        .ok_or_else(|| FrameError::Invalid(format!("unknown candle interval {interval:?}")))?;
    let [start, open, close, high, low, volume, ..] = item.candles[..] else {
        return Err(FrameError::Invalid(format!(
            "a candle has 7 fields, got {}",
            item.candles.len()
        )));
    };
    let start: u64 = start
        .parse()
        .map_err(|_| FrameError::Invalid(format!("candle start {start:?} is not whole seconds")))?;
    let open_ts_ns = start.saturating_mul(1_000_000_000);
    let number = |field, text| decimal_field(field, Some(text));
    Ok(Candle {
        symbol: 0,
        interval: name.to_owned(),
        open_ts_ns,
        close_ts_ns: open_ts_ns.saturating_add(seconds * 1_000_000_000),
        open: number("open", open)?,
        high: number("high", high)?,
        low: number("low", low)?,
        close: number("close", close)?,
        volume: number("volume", volume)?,
        trades: None,
        closed: false,
        exchange_ts_ns: item.time.unwrap_or(0),
        ts_ns,
        is_snapshot: false,
    })
}

/// An update's sequence range: its start may not be after its end.
fn check_sequences((start, end): (u64, u64)) -> Result<(), FrameError> {
    if start > end {
        return Err(FrameError::Invalid(format!(
            "sequenceStart {start} is after sequenceEnd {end}"
        )));
    }
    Ok(())
}

/// KuCoin's candle type (`1min`, `1hour`, `1day`, ...) as Binance spells it, and its length
/// in seconds.
pub fn interval_of(kucoin: &str) -> Option<(&'static str, u64)> {
    Some(match kucoin {
        "1min" => ("1m", 60),
        "3min" => ("3m", 180),
        "5min" => ("5m", 300),
        "15min" => ("15m", 900),
        "30min" => ("30m", 1_800),
        "1hour" => ("1h", 3_600),
        "2hour" => ("2h", 7_200),
        "4hour" => ("4h", 14_400),
        "6hour" => ("6h", 21_600),
        "8hour" => ("8h", 28_800),
        "12hour" => ("12h", 43_200),
        "1day" => ("1d", 86_400),
        "1week" => ("1w", 604_800),
        _ => return None,
    })
}

/// The reason of an `error` answer: its `data` when that is text.
fn error_reason(frame: &Frame<'_>) -> Option<String> {
    let data = frame.data?;
    serde_json::from_str::<String>(data.get()).ok()
}

impl Session for KucoinSession {
    fn venue(&self) -> &'static str {
        "kucoin"
    }

    fn receive_frame(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        check_frame_size(frame, self.core.options.max_frame_bytes)?;
        self.levels.clear();
        if let Some(update) = wire::scan_l2update(frame, &mut self.levels) {
            return self.on_scanned_l2update(update, ts_ns, out);
        }
        let parsed: Frame<'_> = serde_json::from_slice(frame).map_err(FrameError::from)?;
        match parsed.kind {
            Some("message") => self.on_message(&parsed, ts_ns, out),
            Some("error") => {
                let reason = error_reason(&parsed);
                let reason = reason.as_deref().or(parsed.msg.as_deref());
                Err(venue_error(None, parsed.code.as_deref(), reason))
            }
            _ => {
                self.core.stats.ignored += 1;
                Ok(())
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
        let named = |error| ReceiveError::new(Some(symbol.to_owned()), error);
        check_frame_size(body, self.core.options.max_frame_bytes).map_err(named)?;
        let parsed: Frame<'_> = serde_json::from_slice(body).map_err(|e| named(e.into()))?;
        if let Some(code) = parsed.code.as_deref().filter(|c| *c != REST_OK) {
            return Err(venue_error(Some(symbol), Some(code), parsed.msg.as_deref()));
        }
        let data = parsed
            .data
            .ok_or(FrameError::MissingField("data"))
            .map_err(named)?;
        let book: wire::RestBook<'_> =
            serde_json::from_str(data.get()).map_err(|e| named(e.into()))?;
        self.levels.clear();
        for (side, levels) in [(Side::Bid, &book.bids), (Side::Ask, &book.asks)] {
            for &(price, size) in levels {
                let price: Decimal = decimal_field("price", Some(price)).map_err(named)?;
                let size = decimal_field("size", Some(size)).map_err(named)?;
                self.levels.push((side, price, size));
            }
        }
        let Some(id) = self.intern(&symbol.to_ascii_uppercase()) else {
            return Ok(());
        };
        let snapshot = Snapshot {
            symbol: id,
            id: Some(book.sequence),
            levels: &self.levels,
            exchange_ts_ns: ms_to_ns(book.time.unwrap_or(0)),
            ts_ns,
        };
        let sync = self.core.symbols.sync_mut(id).expect("interned above");
        sync.apply_snapshot(&KucoinRule, snapshot, out)
            .map_err(|e| named(e.into()))
    }

    fn resync_modes(&self) -> &'static [ResyncBy] {
        // The websocket sends no book: only the REST snapshot rebuilds one.
        &[ResyncBy::Snapshot]
    }

    fn core(&self) -> &SessionCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut SessionCore {
        &mut self.core
    }
}
