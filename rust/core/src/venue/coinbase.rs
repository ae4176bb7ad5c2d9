//! Coinbase Advanced Trade market data (`wss://advanced-trade-ws.coinbase.com`): `level2` books
//! (frames on channel `l2_data`), `market_trades` and `candles`.
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
//! names, or every live book when it names none.
//!
//! Trades: `side` on `market_trades` is the side of the resting (maker) order, as on Coinbase's
//! other feeds, and the recorded tape agrees: trades marked `SELL` print at the best ask, those
//! marked `BUY` at the best bid. It is flipped here so `Trade::side` is the taker's side.
//! A `snapshot` event replays recent trades; they are emitted like live ones.
//!
//! Candles: five-minute buckets (interval `5m`). Coinbase resends the bucket in progress each
//! time it changes; those candles are emitted with `closed = false`. When a candle with a later
//! `start` arrives for the same product, the previous bucket is over: its last values are
//! emitted once more with `closed = true`, stamped with the frame that revealed it. In a
//! `snapshot` event every candle older than the product's newest candle in that event is
//! history and is emitted with `closed = true` at once; the newest is the bucket in progress.
//!
//! `heartbeats`, `ticker`, `ticker_batch`, `status`, `subscriptions` and any other channel are
//! understood and counted as ignored. An error answer (`{"type":"error","message":..}`, with a
//! `reason` on some) is `FrameError::VenueError` with its message; it names no product, carries
//! no `sequence_num` and changes no book.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::book::Side;
use crate::error::{FrameError, ReceiveError};
use crate::event::{Candle, Event, SymbolId, Trade, TradeSide};
use crate::sync::{DeltaIds, LevelChange, ResyncBy, SymbolSync, Symbols, SyncState, Unsequenced};
use crate::venue::json::{venue_error, LooseText, NumberFault};
use crate::venue::time::parse_iso8601_ns;
use crate::venue::{check_frame_size, decimal_field, Session, SessionOptions, SessionStats};

/// Width of a Coinbase Advanced Trade candle bucket.
pub const CANDLE_SECONDS: u64 = 300;
const NS_PER_SEC: u64 = 1_000_000_000;

pub struct CoinbaseSession {
    symbols: Symbols,
    levels: Vec<LevelChange>,
    stats: SessionStats,
    options: SessionOptions,
    last_seq: Option<u64>,
    connection_gaps: u64,
    /// Per symbol id: the bucket in progress, as last emitted.
    open_candles: Vec<Option<Candle>>,
}

impl CoinbaseSession {
    pub fn new(options: SessionOptions) -> Self {
        CoinbaseSession {
            symbols: options.symbols_table(),
            levels: Vec::with_capacity(512),
            stats: SessionStats::default(),
            options,
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
        self.symbols
            .intern(symbol, || SymbolSync::new(ResyncBy::Resubscribe, None))
    }

    /// The connection-wide counter: on a break, every live book is dropped and resubscribed.
    fn check_sequence(&mut self, seq: u64, out: &mut Vec<Event>) {
        if let Some(last) = self.last_seq {
            let expected = last.wrapping_add(1);
            if seq != expected {
                self.connection_gaps += 1;
                for id in 0..self.symbols.len() as SymbolId {
                    if let Some(sync) = self.symbols.sync_mut(id) {
                        if sync.state() == SyncState::Live {
                            sync.on_gap(id, expected, seq, out);
                        }
                    }
                }
            }
        }
        self.last_seq = Some(seq);
    }

    fn receive_inner(
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
            self.options.max_frame_bytes,
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

    /// A book frame we cannot use costs the products it names their sync; if it names none we
    /// cannot tell whose update was lost, so every live book resyncs.
    fn bad_book_frame<'p>(
        &mut self,
        products: impl Iterator<Item = &'p str>,
        error: FrameError,
        out: &mut Vec<Event>,
    ) -> ReceiveError {
        let mut named: Option<&str> = None;
        let mut any = false;
        let mut spoiled = vec![false; self.symbols.len()];
        for name in products {
            any = true;
            named.get_or_insert(name);
            if let Some(id) = self.symbols.id(name) {
                spoiled[id as usize] = true;
            }
        }
        for (id, spoil) in spoiled.iter().enumerate() {
            let id = id as SymbolId;
            let Some(sync) = self.symbols.sync_mut(id) else {
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
            self.stats.ignored += 1;
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
            _ => {
                self.stats.ignored += 1;
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
        let Some(id) = self.intern(product) else {
            return Ok(());
        };
        let levels = self
            .levels
            .get(event.levels.0..event.levels.1)
            .unwrap_or(&[]);
        let exchange_ts = if event.event_ts_ns > 0 {
            event.event_ts_ns
        } else {
            frame_ts
        };
        let Some(sync) = self.symbols.sync_mut(id) else {
            return Ok(());
        };
        let result = match event.kind {
            Some("snapshot") => sync
                .on_snapshot(id, &Unsequenced, Some(seq), levels, exchange_ts, ts_ns, out)
                .map_err(FrameError::from),
            Some("update") if sync.state() == SyncState::Live => sync
                .on_delta(
                    id,
                    &Unsequenced,
                    DeltaIds::single(seq),
                    levels,
                    exchange_ts,
                    ts_ns,
                    out,
                )
                .map(drop)
                .map_err(FrameError::from),
            // No book yet (or lost): dropped and counted, the coming snapshot replaces it.
            Some("update") => sync
                .on_unsequenced_delta(id, levels, exchange_ts, ts_ns, out)
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
        for item in &f.trades {
            match self.trade(item, ts_ns) {
                Ok(Some(trade)) => out.push(Event::Trade(trade)),
                Ok(None) => {}
                Err(e) => {
                    // All or nothing: a frame's trades are not half delivered.
                    out.truncate(start);
                    return Err(ReceiveError::new(item.product_id.map(str::to_owned), e));
                }
            }
        }
        Ok(())
    }

    fn trade(&mut self, item: &TradeItem<'_>, ts_ns: u64) -> Result<Option<Trade>, FrameError> {
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
            is_snapshot: false,
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
            let items = f
                .candles
                .get(event.candles.0..event.candles.1)
                .unwrap_or(&[]);
            let first = parsed.len();
            for item in items {
                let c = candle(item, frame_ts, ts_ns)
                    .map_err(|e| ReceiveError::new(item.product_id.map(str::to_owned), e))?;
                parsed.push((item.product_id.unwrap_or(""), c, false));
            }
            if event.kind == Some("snapshot") {
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

    fn on_candle(&mut self, c: Candle, history: bool, out: &mut Vec<Event>) {
        let index = c.symbol as usize;
        if self.open_candles.len() <= index {
            self.open_candles.resize(index + 1, None);
        }
        let slot = &mut self.open_candles[index];
        if let Some(open) = slot.as_ref() {
            if open.open_ts_ns < c.open_ts_ns {
                // A later bucket began: the one in progress is over, with its last values.
                if let Some(done) = slot.take() {
                    out.push(Event::Candle(Candle {
                        closed: true,
                        exchange_ts_ns: c.exchange_ts_ns,
                        ts_ns: c.ts_ns,
                        ..done
                    }));
                }
            } else if open.open_ts_ns > c.open_ts_ns {
                // Older than the bucket in progress: history.
                out.push(Event::Candle(Candle { closed: true, ..c }));
                return;
            } else if history {
                // The bucket we had open is now final in a snapshot.
                *slot = None;
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

fn bad_time(field: &str) -> FrameError {
    FrameError::Invalid(format!("`{field}` is not an ISO-8601 UTC time"))
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
        self.receive_inner(frame, ts_ns, out)
    }

    fn symbols(&self) -> &Symbols {
        &self.symbols
    }

    fn stats(&self) -> SessionStats {
        SessionStats {
            unsubscribed: self.symbols.unsubscribed(),
            ..self.stats
        }
    }

    fn stats_mut(&mut self) -> &mut SessionStats {
        &mut self.stats
    }
}

fn decode<'de>(
    frame: &'de [u8],
    fields: &mut Fields<'de>,
    levels: &mut Vec<LevelChange>,
    max_bytes: usize,
) -> Result<(), FrameError> {
    check_frame_size(frame, max_bytes)?;
    let mut de = serde_json::Deserializer::from_slice(frame);
    let seed = FrameSeed {
        fields: &mut *fields,
        levels,
    };
    match seed.deserialize(&mut de).and_then(|()| de.end()) {
        Ok(()) => Ok(()),
        Err(e) => Err(match (fields.number.fault, fields.invalid.take()) {
            (Some((field, error)), _) => FrameError::BadNumber { field, error },
            (None, Some(invalid)) => invalid,
            (None, None) => FrameError::Json(e.to_string()),
        }),
    }
}

/// One element of `events`, with where its parts landed: levels in the session's buffer,
/// trades and candles in the frame's lists.
#[derive(Debug, Default, Clone, Copy)]
struct EventSpan<'a> {
    kind: Option<&'a str>,
    product: Option<&'a str>,
    levels: (usize, usize),
    /// Latest `event_time` of the event's levels, Unix ns (0: none).
    event_ts_ns: u64,
    candles: (usize, usize),
}

/// The events of a frame. Book frames carry one event, kept inline so that decoding one
/// allocates nothing; more spill into a list.
#[derive(Debug, Default)]
struct Events<'a> {
    first: Option<EventSpan<'a>>,
    more: Vec<EventSpan<'a>>,
}

impl<'a> Events<'a> {
    fn push(&mut self, event: EventSpan<'a>) {
        if self.first.is_none() {
            self.first = Some(event);
        } else {
            self.more.push(event);
        }
    }

    fn iter(&self) -> impl Iterator<Item = &EventSpan<'a>> {
        self.first.iter().chain(self.more.iter())
    }
}

#[derive(Debug, Default, Deserialize)]
struct TradeItem<'a> {
    #[serde(borrow)]
    trade_id: Option<&'a str>,
    #[serde(borrow)]
    product_id: Option<&'a str>,
    #[serde(borrow)]
    price: Option<&'a str>,
    #[serde(borrow)]
    size: Option<&'a str>,
    #[serde(borrow)]
    side: Option<&'a str>,
    #[serde(borrow)]
    time: Option<&'a str>,
}

#[derive(Debug, Default, Deserialize)]
struct CandleItem<'a> {
    #[serde(borrow)]
    start: Option<&'a str>,
    #[serde(borrow)]
    open: Option<&'a str>,
    #[serde(borrow)]
    high: Option<&'a str>,
    #[serde(borrow)]
    low: Option<&'a str>,
    #[serde(borrow)]
    close: Option<&'a str>,
    #[serde(borrow)]
    volume: Option<&'a str>,
    #[serde(borrow)]
    product_id: Option<&'a str>,
}

/// Everything we read from a Coinbase frame, filled in one pass.
#[derive(Debug, Default)]
struct Fields<'a> {
    channel: Option<&'a str>,
    timestamp: Option<&'a str>,
    sequence_num: Option<u64>,
    msg_type: Option<&'a str>,
    /// `message` and `reason` of an error answer.
    message: Option<Cow<'a, str>>,
    reason: Option<Cow<'a, str>>,
    events: Events<'a>,
    trades: Vec<TradeItem<'a>>,
    candles: Vec<CandleItem<'a>>,
    /// The last `product_id` read, even in an event that broke off.
    last_product: Option<&'a str>,
    /// An `updates` list was seen: this is a book frame whatever its channel said.
    saw_updates: bool,
    number: NumberFault,
    invalid: Option<FrameError>,
}

impl Fields<'_> {
    fn is_book(&self) -> bool {
        self.channel == Some("l2_data") || self.saw_updates
    }
}

struct FrameSeed<'f, 'a> {
    fields: &'f mut Fields<'a>,
    levels: &'f mut Vec<LevelChange>,
}

impl<'de> DeserializeSeed<'de> for FrameSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FrameSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Coinbase message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let f = self.fields;
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "channel" => f.channel = Some(map.next_value()?),
                "timestamp" => f.timestamp = Some(map.next_value()?),
                "sequence_num" => f.sequence_num = Some(map.next_value()?),
                "type" => f.msg_type = Some(map.next_value()?),
                "message" => f.message = map.next_value_seed(LooseText)?,
                "reason" => f.reason = map.next_value_seed(LooseText)?,
                "events" => map.next_value_seed(EventsSeed {
                    fields: &mut *f,
                    levels: &mut *self.levels,
                })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct EventsSeed<'f, 'a> {
    fields: &'f mut Fields<'a>,
    levels: &'f mut Vec<LevelChange>,
}

impl<'de> DeserializeSeed<'de> for EventsSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EventsSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(EventSeed {
                fields: &mut *self.fields,
                levels: &mut *self.levels,
            })?
            .is_some()
        {}
        Ok(())
    }
}

struct EventSeed<'f, 'a> {
    fields: &'f mut Fields<'a>,
    levels: &'f mut Vec<LevelChange>,
}

impl<'de> DeserializeSeed<'de> for EventSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EventSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let f = self.fields;
        let levels_start = self.levels.len();
        let candles_start = f.candles.len();
        let mut event = EventSpan::default();
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "type" => event.kind = Some(map.next_value()?),
                "product_id" => {
                    let product = map.next_value()?;
                    event.product = Some(product);
                    f.last_product = Some(product);
                }
                "updates" => {
                    f.saw_updates = true;
                    map.next_value_seed(UpdatesSeed {
                        levels: &mut *self.levels,
                        number: &mut f.number,
                        invalid: &mut f.invalid,
                        latest_ns: &mut event.event_ts_ns,
                    })?
                }
                "trades" => {
                    let trades: Vec<TradeItem<'de>> = map.next_value()?;
                    f.trades.extend(trades);
                }
                "candles" => {
                    let candles: Vec<CandleItem<'de>> = map.next_value()?;
                    f.candles.extend(candles);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        event.levels = (levels_start, self.levels.len());
        event.candles = (candles_start, f.candles.len());
        f.events.push(event);
        Ok(())
    }
}

/// `updates`: level changes appended to the session's buffer as they are read.
struct UpdatesSeed<'f> {
    levels: &'f mut Vec<LevelChange>,
    number: &'f mut NumberFault,
    invalid: &'f mut Option<FrameError>,
    latest_ns: &'f mut u64,
}

impl<'de> DeserializeSeed<'de> for UpdatesSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for UpdatesSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of level updates")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(UpdateSeed {
                levels: &mut *self.levels,
                number: &mut *self.number,
                invalid: &mut *self.invalid,
                latest_ns: &mut *self.latest_ns,
            })?
            .is_some()
        {}
        Ok(())
    }
}

struct UpdateSeed<'f> {
    levels: &'f mut Vec<LevelChange>,
    number: &'f mut NumberFault,
    invalid: &'f mut Option<FrameError>,
    latest_ns: &'f mut u64,
}

impl<'de> DeserializeSeed<'de> for UpdateSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for UpdateSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a level update object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut side: Option<&'de str> = None;
        let mut price: Option<&'de str> = None;
        let mut qty: Option<&'de str> = None;
        let mut time: Option<&'de str> = None;
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "side" => side = Some(map.next_value()?),
                "price_level" => price = Some(map.next_value()?),
                "new_quantity" => qty = Some(map.next_value()?),
                "event_time" => time = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let mut fail = |error: FrameError| {
            let message = error.to_string();
            self.invalid.get_or_insert(error);
            de::Error::custom(message)
        };
        let side = match side {
            Some("bid") => Side::Bid,
            Some("offer" | "ask") => Side::Ask,
            Some(other) => {
                return Err(fail(FrameError::Invalid(format!(
                    "unknown book side {other:?}"
                ))))
            }
            None => return Err(fail(FrameError::MissingField("side"))),
        };
        let Some(price) = price else {
            return Err(fail(FrameError::MissingField("price_level")));
        };
        let Some(qty) = qty else {
            return Err(fail(FrameError::MissingField("new_quantity")));
        };
        if let Some(time) = time {
            match parse_iso8601_ns(time) {
                Some(ns) => *self.latest_ns = (*self.latest_ns).max(ns),
                None => return Err(fail(bad_time("event_time"))),
            }
        }
        let price = self.number.parse("price_level", price)?;
        let qty = self.number.parse("new_quantity", qty)?;
        self.levels.push((side, price, qty));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::LossReason;

    const T0: u64 = 1_800_000_000_000_000_000;

    fn feed(s: &mut CoinbaseSession, frame: &str) -> Vec<Event> {
        let mut out = Vec::new();
        s.receive(frame.as_bytes(), T0, &mut out)
            .unwrap_or_else(|e| panic!("{frame}: {e}"));
        out
    }

    /// An `l2_data` frame as the Advanced Trade docs describe it.
    fn l2(seq: u64, kind: &str, product: &str, updates: &[(&str, &str, &str)]) -> String {
        let updates: Vec<String> = updates
            .iter()
            .map(|(side, price, qty)| {
                format!(
                    r#"{{"side":"{side}","event_time":"2026-01-02T03:04:05.123456Z","price_level":"{price}","new_quantity":"{qty}"}}"#
                )
            })
            .collect();
        format!(
            r#"{{"channel":"l2_data","client_id":"","timestamp":"2026-01-02T03:04:05.2Z","sequence_num":{seq},"events":[{{"type":"{kind}","product_id":"{product}","updates":[{}]}}]}}"#,
            updates.join(",")
        )
    }

    fn heartbeat(seq: u64) -> String {
        format!(
            r#"{{"channel":"heartbeats","client_id":"","timestamp":"2026-01-02T03:04:06Z","sequence_num":{seq},"events":[{{"current_time":"2026-01-02 03:04:06.1 +0000 UTC m=+1.0","heartbeat_counter":7}}]}}"#
        )
    }

    fn book(s: &CoinbaseSession, id: SymbolId) -> (Vec<String>, Vec<String>) {
        let b = &s.symbols().sync(id).unwrap().book;
        (
            b.bids().map(|l| format!("{}@{}", l.qty, l.price)).collect(),
            b.asks().map(|l| format!("{}@{}", l.qty, l.price)).collect(),
        )
    }

    #[test]
    fn snapshot_then_updates_keep_exact_digits_and_sequence() {
        let mut s = CoinbaseSession::new(SessionOptions::default());
        let out = feed(
            &mut s,
            &l2(
                4,
                "snapshot",
                "BTC-USD",
                &[("bid", "100.10", "1.5"), ("offer", "100.20", "0.25000000")],
            ),
        );
        assert_eq!(
            out,
            vec![Event::BookUpdated {
                symbol: 0,
                seq: Some(4),
                exchange_ts_ns: 1_767_323_045_123_456_000,
                ts_ns: T0
            }]
        );
        feed(&mut s, &heartbeat(5));
        let out = feed(
            &mut s,
            &l2(
                6,
                "update",
                "BTC-USD",
                &[
                    ("bid", "100.10", "0"),
                    ("bid", "100.05", "2"),
                    ("offer", "101", "0"),
                ],
            ),
        );
        assert!(matches!(
            out.as_slice(),
            [Event::BookUpdated { seq: Some(6), .. }]
        ));
        assert_eq!(
            book(&s, 0),
            (vec!["2@100.05".into()], vec!["0.25000000@100.20".into()])
        );
        assert_eq!(s.stats().ignored, 1);
        assert_eq!(s.connection_gaps(), 0);
    }

    #[test]
    fn update_before_snapshot_is_dropped_and_counted() {
        let mut s = CoinbaseSession::new(SessionOptions::default());
        let out = feed(&mut s, &l2(0, "update", "ETH-USD", &[("bid", "10", "1")]));
        assert!(out.is_empty(), "{out:?}");
        let sync = s.symbols().sync(0).unwrap();
        assert_eq!(sync.counters.stale_dropped, 1);
        assert_eq!(sync.counters.updates, 0);
        assert!(sync.book.is_empty());
        feed(
            &mut s,
            &l2(
                1,
                "snapshot",
                "ETH-USD",
                &[("bid", "9", "1"), ("offer", "11", "1")],
            ),
        );
        // The dropped update was not replayed over the snapshot.
        assert_eq!(book(&s, 0), (vec!["1@9".into()], vec!["1@11".into()]));
    }

    #[test]
    fn sequence_gap_resyncs_every_book_of_the_connection() {
        let mut s = CoinbaseSession::new(SessionOptions::default());
        feed(
            &mut s,
            &l2(10, "snapshot", "BTC-USD", &[("bid", "100", "1")]),
        );
        feed(
            &mut s,
            &l2(11, "snapshot", "ETH-USD", &[("bid", "10", "1")]),
        );
        // A product seen only through trades has no book to lose.
        feed(
            &mut s,
            r#"{"channel":"market_trades","timestamp":"2026-01-02T03:04:05Z","sequence_num":12,"events":[{"type":"update","trades":[{"trade_id":"7","product_id":"SOL-USD","price":"1","size":"1","side":"BUY","time":"2026-01-02T03:04:05Z"}]}]}"#,
        );
        // 13 and 14 are lost; the heartbeat numbered 15 reveals it.
        let out = feed(&mut s, &heartbeat(15));
        assert_eq!(
            out,
            vec![
                Event::GapDetected {
                    symbol: 0,
                    expected: 13,
                    received: 15
                },
                Event::SyncLost {
                    symbol: 0,
                    reason: LossReason::Gap {
                        expected: 13,
                        received: 15,
                    },
                },
                Event::NeedResubscribe { symbol: 0 },
                Event::GapDetected {
                    symbol: 1,
                    expected: 13,
                    received: 15
                },
                Event::SyncLost {
                    symbol: 1,
                    reason: LossReason::Gap {
                        expected: 13,
                        received: 15,
                    },
                },
                Event::NeedResubscribe { symbol: 1 },
            ]
        );
        assert_eq!(s.connection_gaps(), 1);
        for id in [0, 1] {
            let sync = s.symbols().sync(id).unwrap();
            assert_eq!(sync.state(), SyncState::AwaitingSnapshot);
            assert!(sync.book.is_empty());
            assert_eq!(sync.counters.gaps, 1);
        }
        // Updates until the new snapshots are dropped, no second gap, no second request.
        let out = feed(&mut s, &l2(16, "update", "BTC-USD", &[("bid", "99", "1")]));
        assert!(out.is_empty(), "{out:?}");
        let out = feed(
            &mut s,
            &l2(17, "snapshot", "BTC-USD", &[("bid", "98", "2")]),
        );
        assert_eq!(
            out,
            vec![
                Event::Resynced {
                    symbol: 0,
                    seq: Some(17)
                },
                Event::BookUpdated {
                    symbol: 0,
                    seq: Some(17),
                    exchange_ts_ns: 1_767_323_045_123_456_000,
                    ts_ns: T0
                },
            ]
        );
        let out = feed(
            &mut s,
            &l2(18, "snapshot", "ETH-USD", &[("offer", "12", "3")]),
        );
        assert!(matches!(
            out.as_slice(),
            [
                Event::Resynced {
                    symbol: 1,
                    seq: Some(18)
                },
                Event::BookUpdated { .. }
            ]
        ));
        assert_eq!(book(&s, 0), (vec!["2@98".into()], vec![]));
        assert_eq!(s.connection_gaps(), 1);
    }

    #[test]
    fn unreadable_book_frame_resyncs_what_it_names() {
        let mut s = CoinbaseSession::new(SessionOptions::default());
        feed(
            &mut s,
            &l2(1, "snapshot", "BTC-USD", &[("bid", "100", "1")]),
        );
        feed(&mut s, &l2(2, "snapshot", "ETH-USD", &[("bid", "10", "1")]));
        let mut out = Vec::new();
        let err = s
            .receive(
                l2(3, "update", "ETH-USD", &[("bid", "10", "1e")]).as_bytes(),
                T0,
                &mut out,
            )
            .unwrap_err();
        assert!(matches!(err.error, FrameError::BadNumber { .. }));
        assert_eq!(err.symbol.as_deref(), Some("ETH-USD"));
        assert_eq!(
            out,
            vec![
                Event::SyncLost {
                    symbol: 1,
                    reason: LossReason::BadFrame
                },
                Event::NeedResubscribe { symbol: 1 }
            ]
        );
        assert_eq!(s.symbols().sync(0).unwrap().state(), SyncState::Live);
        // The number was read, so the next frame is no gap.
        assert!(feed(&mut s, &heartbeat(4)).is_empty());
        // A book frame without a product: nobody knows whose update it was.
        let mut out = Vec::new();
        let frame = r#"{"channel":"l2_data","timestamp":"2026-01-02T03:04:05Z","sequence_num":5,"events":[{"type":"update","updates":[]}]}"#;
        assert!(s.receive(frame.as_bytes(), T0, &mut out).is_err());
        assert_eq!(
            out,
            vec![
                Event::SyncLost {
                    symbol: 0,
                    reason: LossReason::BadFrame
                },
                Event::NeedResubscribe { symbol: 0 }
            ]
        );
    }

    #[test]
    fn trades_are_normalized_to_the_taker_side() {
        let mut s = CoinbaseSession::new(SessionOptions::default());
        let out = feed(
            &mut s,
            r#"{"channel":"market_trades","client_id":"","timestamp":"2026-01-02T03:04:05.9Z","sequence_num":0,"events":[{"type":"update","trades":[{"trade_id":"1001","product_id":"BTC-USD","price":"65000.01","size":"0.00100000","side":"SELL","time":"2026-01-02T03:04:05.123456789Z"},{"trade_id":"1002","product_id":"BTC-USD","price":"64999.99","size":"2","side":"BUY","time":"2026-01-02T03:04:05.5Z"}]}]}"#,
        );
        let got: Vec<_> = out
            .iter()
            .map(|e| match e {
                Event::Trade(t) => (
                    t.trade_id.as_str(),
                    t.price.to_string(),
                    t.size.to_string(),
                    t.side,
                    t.exchange_ts_ns,
                ),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "1001",
                    "65000.01".into(),
                    "0.00100000".into(),
                    Some(TradeSide::Buy),
                    1_767_323_045_123_456_789
                ),
                (
                    "1002",
                    "64999.99".into(),
                    "2".into(),
                    Some(TradeSide::Sell),
                    1_767_323_045_500_000_000
                ),
            ]
        );
    }

    fn candles_frame(seq: u64, kind: &str, candles: &[(&str, &str, &str)]) -> String {
        let items: Vec<String> = candles
            .iter()
            .map(|(product, start, close)| {
                format!(
                    r#"{{"start":"{start}","high":"2","low":"1","open":"1.5","close":"{close}","volume":"10","product_id":"{product}"}}"#
                )
            })
            .collect();
        format!(
            r#"{{"channel":"candles","client_id":"","timestamp":"2026-01-02T03:04:05Z","sequence_num":{seq},"events":[{{"type":"{kind}","candles":[{}]}}]}}"#,
            items.join(",")
        )
    }

    fn candle_view(out: &[Event]) -> Vec<(SymbolId, u64, String, bool)> {
        out.iter()
            .map(|e| match e {
                Event::Candle(c) => (
                    c.symbol,
                    c.open_ts_ns / NS_PER_SEC,
                    c.close.to_string(),
                    c.closed,
                ),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn candles_close_when_a_later_bucket_begins() {
        let mut s = CoinbaseSession::new(SessionOptions::default());
        let out = feed(
            &mut s,
            &candles_frame(
                0,
                "snapshot",
                &[
                    ("ETH-USD", "1000", "1.1"),
                    ("ETH-USD", "1300", "1.2"),
                    ("ETH-USD", "1600", "1.3"),
                ],
            ),
        );
        assert_eq!(
            candle_view(&out),
            vec![
                (0, 1000, "1.1".into(), true),
                (0, 1300, "1.2".into(), true),
                (0, 1600, "1.3".into(), false),
            ]
        );
        match &out[2] {
            Event::Candle(c) => {
                assert_eq!(c.interval, "5m");
                assert_eq!(c.close_ts_ns, 1900 * NS_PER_SEC);
                assert_eq!(c.exchange_ts_ns, 1_767_323_045_000_000_000);
            }
            other => panic!("{other:?}"),
        }
        let out = feed(
            &mut s,
            &candles_frame(1, "update", &[("ETH-USD", "1600", "1.4")]),
        );
        assert_eq!(candle_view(&out), vec![(0, 1600, "1.4".into(), false)]);
        let out = feed(
            &mut s,
            &candles_frame(2, "update", &[("ETH-USD", "1900", "1.5")]),
        );
        assert_eq!(
            candle_view(&out),
            vec![
                (0, 1600, "1.4".into(), true),
                (0, 1900, "1.5".into(), false)
            ]
        );
        // Another product's buckets are its own.
        let out = feed(
            &mut s,
            &candles_frame(3, "update", &[("BTC-USD", "1900", "9")]),
        );
        assert_eq!(candle_view(&out), vec![(1, 1900, "9".into(), false)]);
        // A bad candle changes nothing.
        let mut out = Vec::new();
        assert!(s
            .receive(
                candles_frame(4, "update", &[("ETH-USD", "2200", "x")]).as_bytes(),
                T0,
                &mut out
            )
            .is_err());
        assert!(out.is_empty());
        let out = feed(
            &mut s,
            &candles_frame(5, "update", &[("ETH-USD", "1900", "1.6")]),
        );
        assert_eq!(candle_view(&out), vec![(0, 1900, "1.6".into(), false)]);
    }

    #[test]
    fn acks_heartbeats_tickers_and_unknown_frames_are_ignored() {
        let mut s = CoinbaseSession::new(SessionOptions::default());
        for frame in [
            heartbeat(0),
            r#"{"channel":"subscriptions","client_id":"","timestamp":"2026-01-02T03:04:05Z","sequence_num":1,"events":[{"subscriptions":{"level2":["BTC-USD"]}}]}"#.to_owned(),
            r#"{"channel":"ticker","client_id":"","timestamp":"2026-01-02T03:04:05Z","sequence_num":2,"events":[{"type":"update","tickers":[{"type":"ticker","product_id":"BTC-USD","price":"1"}]}]}"#.to_owned(),
            r#"{"channel":"status","timestamp":"2026-01-02T03:04:05Z","sequence_num":3,"events":[]}"#.to_owned(),
            r#"{"hello":"world"}"#.to_owned(),
        ] {
            assert!(feed(&mut s, &frame).is_empty());
        }
        assert_eq!(s.stats().ignored, 5);
        assert_eq!(s.stats().errors, 0);
        assert_eq!(s.connection_gaps(), 0);
        // A data frame without its number is malformed, not unknown.
        let mut out = Vec::new();
        let frame = r#"{"channel":"market_trades","timestamp":"2026-01-02T03:04:05Z","events":[]}"#;
        let err = s.receive(frame.as_bytes(), T0, &mut out).unwrap_err();
        assert_eq!(err.error, FrameError::MissingField("sequence_num"));
        assert!(s.symbols().is_empty());
    }

    #[test]
    fn error_answer_is_a_typed_venue_error_and_changes_no_book() {
        let mut s = CoinbaseSession::new(SessionOptions::default());
        feed(
            &mut s,
            &l2(
                0,
                "snapshot",
                "BTC-USD",
                &[("bid", "100.5", "1"), ("offer", "101", "2")],
            ),
        );
        let before = book(&s, 0);
        let mut out = Vec::new();
        for (frame, message) in [
            (
                r#"{"type":"error","message":"failure to subscribe"}"#,
                "failure to subscribe",
            ),
            (
                r#"{"type":"error","message":"Failed to subscribe","reason":"BTC-USDX is not a valid product"}"#,
                "Failed to subscribe: BTC-USDX is not a valid product",
            ),
        ] {
            let err = s.receive(frame.as_bytes(), T0, &mut out).unwrap_err();
            assert_eq!(err.symbol, None);
            assert_eq!(err.error, FrameError::VenueError(message.into()));
        }
        assert!(out.is_empty());
        assert_eq!(book(&s, 0), before);
        assert_eq!(s.symbols().sync(0).unwrap().state(), SyncState::Live);
        assert_eq!(
            s.last_sequence(),
            Some(0),
            "an error answer is not numbered"
        );
        assert_eq!((s.stats().errors, s.stats().ignored), (2, 0));
        // The connection's numbering goes on from the last data frame: no gap.
        let out = feed(
            &mut s,
            &l2(1, "update", "BTC-USD", &[("bid", "100.5", "3")]),
        );
        assert!(
            matches!(out[..], [Event::BookUpdated { seq: Some(1), .. }]),
            "{out:?}"
        );
        assert_eq!(s.connection_gaps(), 0);
    }
}
