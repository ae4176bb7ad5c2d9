//! Coinbase Advanced Trade market data (`wss://advanced-trade-ws.coinbase.com`): `level2` books
//! (frames on channel `l2_data`), `market_trades`, `candles` and `ticker` quotes.
//!
//! Sequencing is per connection, so it is checked here, in the session (one per connection),
//! not per symbol: every frame carries `sequence_num`, one counter across all channels, and each
//! frame must be the previous one + 1. A gap makes every book of the connection suspect: each
//! symbol with a live book gets `GapDetected`, is cleared and asks for `NeedResubscribe`, and
//! the next `snapshot` event of that product rebuilds it (`Resynced`). A frame that cannot be
//! read at all shows up as a gap on the next frame. Per symbol, nothing chains (the
//! `Unsequenced` rule); `BookUpdated::seq` is the frame's `sequence_num`.
//!
//! Books: events `{"type":"snapshot"|"update","product_id",updates:[{side: bid|offer,
//! price_level, new_quantity, event_time}]}`; `new_quantity` is absolute and `"0"` removes the
//! level. An `update` for a product without a live book (before its first snapshot, or after a
//! gap) is dropped and counted in `stale_dropped`. The exchange time of a book update is the
//! latest `event_time` of its levels. A book frame that cannot be used resyncs the products it
//! names, or every live book when it names none. `level2` is the whole book, so books are kept
//! whole whatever `SessionOptions::depth` says.
//!
//! Trades: `side` on `market_trades` is the side of the resting (maker) order, as on Coinbase's
//! other feeds, and the recorded tape agrees: trades marked `SELL` print at the best ask, those
//! marked `BUY` at the best bid. It is flipped here so `Trade::side` is the taker's side.
//! A `snapshot` event replays recent trades: they are history, `is_snapshot: true`.
//!
//! Candles: five-minute buckets (interval `5m`). Coinbase resends the bucket in progress each
//! time it changes; those candles are emitted with `closed = false`. When a candle with a later
//! `start` arrives for the same product, the previous bucket is over: its last values are
//! emitted once more with `closed = true`, stamped with the frame that revealed it. A
//! `snapshot` event (sent on subscribe, 100 buckets a product) is history: every candle in it
//! has `is_snapshot: true`, those older than the product's newest in that event are emitted
//! closed at once, the newest is the bucket in progress. History is never a closed live candle,
//! except that a bucket followed live and found final in a later snapshot closes as live.
//!
//! Tickers: each ticker of a `ticker` (or `ticker_batch`) event gives its best bid and ask
//! (`best_bid`, `best_bid_quantity`, `best_ask`, `best_ask_quantity`) as a `Quote`, `seq` being
//! the frame's `sequence_num` (the counter `BookUpdated::seq` carries, so quotes and book
//! updates order exactly); a ticker without all four gives none.
//!
//! `heartbeats`, `status`, `subscriptions` and any other channel are understood and counted as
//! ignored. An error answer (`{"type":"error","message":..}`, with a `reason` on some) is
//! `FrameError::VenueError` with its message; it names no product, carries no `sequence_num`
//! and changes no book.

mod wire;

#[cfg(test)]
mod tests;

use crate::error::{FrameError, ReceiveError};
use crate::event::{Candle, Event, Quote, SymbolId, Trade, TradeSide};
use crate::sync::{Delta, DeltaIds, LevelChange, ResyncBy, Snapshot, SyncState, Unsequenced};
use crate::venue::json::{optional_decimal, venue_error};
use crate::venue::session_core::SessionCore;
use crate::venue::time::parse_iso8601_ns;
use crate::venue::{decimal_field, Session, SessionOptions};

use wire::{bad_time, decode, CandleItem, EventSpan, Fields, TickerItem, TradeItem};

/// Width of a Coinbase Advanced Trade candle bucket.
pub const CANDLE_SECONDS: u64 = 300;
const NS_PER_SEC: u64 = 1_000_000_000;

pub struct CoinbaseSession {
    core: SessionCore,
    /// Reused for every frame's levels: decoding allocates nothing.
    levels: Vec<LevelChange>,
    last_seq: Option<u64>,
    connection_gaps: u64,
    /// Per symbol id: the bucket in progress, as last emitted.
    open_candles: Vec<Option<Candle>>,
}

impl CoinbaseSession {
    pub fn new(options: SessionOptions) -> Self {
        CoinbaseSession {
            core: SessionCore::new(options),
            levels: Vec::with_capacity(512),
            last_seq: None,
            connection_gaps: 0,
            open_candles: Vec::new(),
        }
    }

    /// Breaks of the connection's `sequence_num` seen so far.
    pub fn connection_gaps(&self) -> u64 {
        self.connection_gaps
    }

    /// The last `sequence_num` read.
    pub fn last_sequence(&self) -> Option<u64> {
        self.last_seq
    }

    /// `None` for a product that was not subscribed: the caller drops what it decoded.
    fn intern(&mut self, symbol: &str) -> Option<SymbolId> {
        self.core.intern(symbol, ResyncBy::Resubscribe, None)
    }

    /// The connection-wide counter: on a break, every live book is dropped and resubscribed.
    fn check_sequence(&mut self, seq: u64, out: &mut Vec<Event>) {
        if let Some(last) = self.last_seq {
            let expected = last.wrapping_add(1);
            if seq != expected {
                self.connection_gaps += 1;
                let symbols = &mut self.core.symbols;
                for id in 0..symbols.len() as SymbolId {
                    if let Some(sync) = symbols.sync_mut(id) {
                        if sync.state() == SyncState::Live {
                            sync.on_gap(id, expected, seq, out);
                        }
                    }
                }
            }
        }
        self.last_seq = Some(seq);
    }

    /// A book frame we cannot use costs the products it names their sync; if it names none we
    /// cannot tell whose update was lost, so every live book resyncs.
    fn bad_book_frame<'p>(
        &mut self,
        products: impl Iterator<Item = &'p str>,
        error: FrameError,
        out: &mut Vec<Event>,
    ) -> ReceiveError {
        let symbols = &mut self.core.symbols;
        let mut named: Option<&str> = None;
        let mut any = false;
        let mut spoiled = vec![false; symbols.len()];
        for name in products {
            any = true;
            named.get_or_insert(name);
            if let Some(id) = symbols.id(name) {
                spoiled[id as usize] = true;
            }
        }
        for (id, spoil) in spoiled.iter().enumerate() {
            let id = id as SymbolId;
            let Some(sync) = symbols.sync_mut(id) else {
                continue;
            };
            if *spoil || (!any && sync.state() == SyncState::Live) {
                sync.on_bad_frame(id, &error, out);
            }
        }
        ReceiveError::new(named.map(str::to_owned), error)
    }

    fn on_fields(
        &mut self,
        f: &Fields<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        if f.msg_type == Some("error") {
            // The venue's answer to a bad request: reported; it carries no sequence number and
            // names no product, so nothing of the stream changes.
            let message = match (f.message.as_deref(), f.reason.as_deref()) {
                (Some(message), Some(reason)) if !reason.is_empty() => {
                    format!("{message}: {reason}")
                }
                (message, reason) => message.or(reason).unwrap_or("").to_owned(),
            };
            return Err(venue_error(None, None, Some(&message)));
        }
        if f.channel.is_none() && f.sequence_num.is_none() && !f.is_book() {
            // A message kind we do not know: nothing of the stream changed.
            self.core.stats.ignored += 1;
            return Ok(());
        }
        let Some(seq) = f.sequence_num else {
            if f.is_book() {
                let products = f.events.iter().filter_map(|e| e.product);
                return Err(self.bad_book_frame(
                    products,
                    FrameError::MissingField("sequence_num"),
                    out,
                ));
            }
            return Err(FrameError::MissingField("sequence_num").into());
        };
        self.check_sequence(seq, out);
        match f.channel {
            Some("l2_data") => self.on_book(f, seq, ts_ns, out),
            Some("market_trades") => self.on_trades(f, ts_ns, out),
            Some("candles") => self.on_candles(f, ts_ns, out),
            Some("ticker" | "ticker_batch") => self.on_tickers(f, seq, ts_ns, out),
            _ => {
                self.core.stats.ignored += 1;
                Ok(())
            }
        }
    }

    fn on_book(
        &mut self,
        f: &Fields<'_>,
        seq: u64,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let frame_ts = match f.timestamp.map(parse_iso8601_ns) {
            Some(Some(ns)) => ns,
            Some(None) => {
                let products = f.events.iter().filter_map(|e| e.product);
                return Err(self.bad_book_frame(products, bad_time("timestamp"), out));
            }
            None => 0,
        };
        // Events are independent: one bad event does not stop the others.
        let mut first_error = None;
        for event in f.events.iter() {
            if let Err(e) = self.on_book_event(event, seq, frame_ts, ts_ns, out) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn on_book_event(
        &mut self,
        event: &EventSpan<'_>,
        seq: u64,
        frame_ts: u64,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let Some(product) = event.product else {
            return Err(self.bad_book_frame(
                std::iter::empty(),
                FrameError::MissingField("product_id"),
                out,
            ));
        };
        let Some(symbol) = self.intern(product) else {
            return Ok(());
        };
        let levels = self
            .levels
            .get(event.levels.0..event.levels.1)
            .unwrap_or(&[]);
        let exchange_ts_ns = if event.event_ts_ns > 0 {
            event.event_ts_ns
        } else {
            frame_ts
        };
        let Some(sync) = self.core.symbols.sync_mut(symbol) else {
            return Ok(());
        };
        let result = match event.kind {
            Some("snapshot") => {
                let snapshot = Snapshot {
                    symbol,
                    id: Some(seq),
                    levels,
                    exchange_ts_ns,
                    ts_ns,
                };
                sync.apply_snapshot(&Unsequenced, snapshot, out)
                    .map_err(FrameError::from)
            }
            Some("update") if sync.state() == SyncState::Live => {
                let delta = Delta {
                    symbol,
                    ids: DeltaIds::single(seq),
                    levels,
                    exchange_ts_ns,
                    ts_ns,
                };
                sync.apply_delta(&Unsequenced, delta, out)
                    .map(drop)
                    .map_err(FrameError::from)
            }
            // No book yet (or lost): dropped and counted, the coming snapshot replaces it.
            Some("update") => sync
                .on_unsequenced_delta(symbol, levels, exchange_ts_ns, ts_ns, out)
                .map(drop)
                .map_err(FrameError::from),
            Some(other) => Err(FrameError::Invalid(format!(
                "unknown l2_data event type {other:?}"
            ))),
            None => Err(FrameError::MissingField("type")),
        };
        result.map_err(|e| self.bad_book_frame(std::iter::once(product), e, out))
    }

    fn on_trades(
        &mut self,
        f: &Fields<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let start = out.len();
        for event in f.events.iter() {
            let history = event.kind == Some("snapshot");
            let items = f.trades.get(event.trades.0..event.trades.1).unwrap_or(&[]);
            for item in items {
                match self.trade(item, history, ts_ns) {
                    Ok(Some(trade)) => out.push(Event::Trade(trade)),
                    Ok(None) => {}
                    Err(e) => {
                        // All or nothing: a frame's trades are not half delivered.
                        out.truncate(start);
                        return Err(ReceiveError::new(item.product_id.map(str::to_owned), e));
                    }
                }
            }
        }
        Ok(())
    }

    fn trade(
        &mut self,
        item: &TradeItem<'_>,
        history: bool,
        ts_ns: u64,
    ) -> Result<Option<Trade>, FrameError> {
        let product = item
            .product_id
            .filter(|p| !p.is_empty())
            .ok_or(FrameError::MissingField("product_id"))?;
        let price = decimal_field("price", item.price)?;
        let size = decimal_field("size", item.size)?;
        let trade_id = item.trade_id.ok_or(FrameError::MissingField("trade_id"))?;
        let time = item.time.ok_or(FrameError::MissingField("time"))?;
        let exchange_ts_ns = parse_iso8601_ns(time).ok_or_else(|| bad_time("time"))?;
        // The venue names the maker's side; the taker took the other one.
        let side = match item.side {
            Some("BUY") => Some(TradeSide::Sell),
            Some("SELL") => Some(TradeSide::Buy),
            _ => None,
        };
        let Some(symbol) = self.intern(product) else {
            return Ok(None);
        };
        Ok(Some(Trade {
            symbol,
            price,
            size,
            side,
            trade_id: trade_id.to_owned(),
            exchange_ts_ns,
            ts_ns,
            is_snapshot: history,
        }))
    }

    /// Each ticker with a whole top of book becomes a `Quote` numbered with the frame. All or
    /// nothing: a bad number spoils the frame's quotes, not half of them.
    fn on_tickers(
        &mut self,
        f: &Fields<'_>,
        seq: u64,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let exchange_ts_ns = match f.timestamp.map(parse_iso8601_ns) {
            Some(Some(ns)) => ns,
            Some(None) => return Err(bad_time("timestamp").into()),
            None => 0,
        };
        let start = out.len();
        for item in &f.tickers {
            let product = item.product_id.filter(|p| !p.is_empty());
            let quote = match product {
                Some(product) => self.quote(product, item),
                None => Err(FrameError::MissingField("product_id")),
            };
            match quote {
                Ok(Some(quote)) => out.push(Event::Quote(Quote {
                    seq: Some(seq),
                    exchange_ts_ns,
                    ts_ns,
                    ..quote
                })),
                Ok(None) => self.core.stats.ignored += 1,
                Err(e) => {
                    out.truncate(start);
                    return Err(ReceiveError::new(product.map(str::to_owned), e));
                }
            }
        }
        Ok(())
    }

    /// The top of book of one ticker (numbering and times left to the caller); `None` for a
    /// ticker without all four fields, or of a product not subscribed.
    fn quote(&mut self, product: &str, item: &TickerItem<'_>) -> Result<Option<Quote>, FrameError> {
        let top = (
            optional_decimal("best_bid", item.best_bid)?,
            optional_decimal("best_bid_quantity", item.best_bid_quantity)?,
            optional_decimal("best_ask", item.best_ask)?,
            optional_decimal("best_ask_quantity", item.best_ask_quantity)?,
        );
        let (Some(bid_price), Some(bid_size), Some(ask_price), Some(ask_size)) = top else {
            return Ok(None);
        };
        let Some(symbol) = self.intern(product) else {
            return Ok(None);
        };
        Ok(Some(Quote {
            symbol,
            seq: None,
            bid_price,
            bid_size,
            ask_price,
            ask_size,
            exchange_ts_ns: 0,
            ts_ns: 0,
        }))
    }

    fn on_candles(
        &mut self,
        f: &Fields<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let frame_ts = match f.timestamp.map(parse_iso8601_ns) {
            Some(Some(ns)) => ns,
            Some(None) => return Err(bad_time("timestamp").into()),
            None => 0,
        };
        // Read everything first, so a bad candle changes no state.
        let mut parsed: Vec<(&str, Candle, bool)> = Vec::new();
        for event in f.events.iter() {
            let snapshot = event.kind == Some("snapshot");
            let items = f
                .candles
                .get(event.candles.0..event.candles.1)
                .unwrap_or(&[]);
            let first = parsed.len();
            for item in items {
                let mut c = candle(item, frame_ts, ts_ns)
                    .map_err(|e| ReceiveError::new(item.product_id.map(str::to_owned), e))?;
                c.is_snapshot = snapshot;
                parsed.push((item.product_id.unwrap_or(""), c, false));
            }
            if snapshot {
                // History: a snapshot candle older than the product's newest in that event.
                for i in first..parsed.len() {
                    let (product, open_ts) = (parsed[i].0, parsed[i].1.open_ts_ns);
                    let history = parsed[first..]
                        .iter()
                        .any(|(other, c, _)| *other == product && c.open_ts_ns > open_ts);
                    parsed[i].2 = history;
                }
            }
        }
        for (product, mut c, history) in parsed {
            if let Some(symbol) = self.intern(product) {
                c.symbol = symbol;
                self.on_candle(c, history, out);
            }
        }
        Ok(())
    }

    /// One candle read; `history` says it is a finished bucket of a snapshot (whose candles are
    /// all marked `is_snapshot` already).
    fn on_candle(&mut self, c: Candle, history: bool, out: &mut Vec<Event>) {
        let index = c.symbol as usize;
        if self.open_candles.len() <= index {
            self.open_candles.resize(index + 1, None);
        }
        let slot = &mut self.open_candles[index];
        if let Some(open) = slot.as_ref() {
            if open.open_ts_ns < c.open_ts_ns {
                // A later bucket began: the one in progress is over, with its last values. It
                // was followed as it went, so its end is live news, whatever frame told it.
                if let Some(done) = slot.take() {
                    out.push(Event::Candle(Candle {
                        closed: true,
                        exchange_ts_ns: c.exchange_ts_ns,
                        ts_ns: c.ts_ns,
                        is_snapshot: false,
                        ..done
                    }));
                }
            } else if open.open_ts_ns > c.open_ts_ns {
                // Older than the bucket in progress: history if a snapshot said it, a late
                // update of a finished bucket otherwise.
                out.push(Event::Candle(Candle { closed: true, ..c }));
                return;
            } else if history {
                // The bucket in progress, final in a snapshot: its live end.
                *slot = None;
                out.push(Event::Candle(Candle {
                    closed: true,
                    is_snapshot: false,
                    ..c
                }));
                return;
            }
        }
        if history {
            out.push(Event::Candle(Candle { closed: true, ..c }));
        } else {
            *slot = Some(c.clone());
            out.push(Event::Candle(c));
        }
    }
}

fn candle(item: &CandleItem<'_>, frame_ts: u64, ts_ns: u64) -> Result<Candle, FrameError> {
    item.product_id
        .filter(|p| !p.is_empty())
        .ok_or(FrameError::MissingField("product_id"))?;
    let start = item
        .start
        .ok_or(FrameError::MissingField("start"))?
        .parse::<u64>()
        .map_err(|_| FrameError::Invalid("candle `start` is not unix seconds".into()))?;
    Ok(Candle {
        symbol: 0,
        interval: "5m".to_owned(),
        open_ts_ns: start.saturating_mul(NS_PER_SEC),
        close_ts_ns: start
            .saturating_add(CANDLE_SECONDS)
            .saturating_mul(NS_PER_SEC),
        open: decimal_field("open", item.open)?,
        high: decimal_field("high", item.high)?,
        low: decimal_field("low", item.low)?,
        close: decimal_field("close", item.close)?,
        volume: decimal_field("volume", item.volume)?,
        trades: None,
        closed: false,
        exchange_ts_ns: frame_ts,
        ts_ns,
        is_snapshot: false,
    })
}

impl Session for CoinbaseSession {
    fn venue(&self) -> &'static str {
        "coinbase"
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
                if let Some(seq) = fields.sequence_num {
                    self.check_sequence(seq, out);
                }
                if fields.is_book() {
                    let products = fields
                        .events
                        .iter()
                        .filter_map(|e| e.product)
                        .chain(fields.last_product);
                    return Err(self.bad_book_frame(products, error, out));
                }
                Err(ReceiveError::new(None, error))
            }
        }
    }

    fn core(&self) -> &SessionCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut SessionCore {
        &mut self.core
    }
}
