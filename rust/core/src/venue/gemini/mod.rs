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
//! Recent trades sent with a (re)subscription — v2's `trades` list — are emitted as `Trade`
//! events, oldest first, skipping any whose id is not above the last trade already emitted for
//! that symbol (a resubscribe repeats them). They keep their own exchange timestamps.
//! Both protocols resync by resubscribing (`NeedResubscribe`).
//!
//! A refused request, `{"result":"error","reason":..,"message":..}` (`reason` is a code word
//! such as `InvalidJson`), is `FrameError::VenueError` ("reason: message"); in v1 it concerns
//! the connection's symbol. It changes no book.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::book::Side;
use crate::decimal::Decimal;
use crate::error::{FrameError, ReceiveError};
use crate::event::{Event, SymbolId, Trade, TradeSide};
use crate::sync::{LevelChange, ResyncBy, SymbolSync, Symbols, Unsequenced};
use crate::venue::json::{venue_error, LooseText};
use crate::venue::{check_frame_size, ms_to_ns, Session, SessionOptions, SessionStats};

/// `new_session` venue names of the form `gemini-v1:SYMBOL` open a v1 session for `SYMBOL`.
pub const V1_PREFIX: &str = "gemini-v1:";

/// A trade as decoded, before it gets its symbol and receive time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RawTrade {
    id: u64,
    ts_ms: u64,
    price: Decimal,
    size: Decimal,
    side: Option<TradeSide>,
}

/// The first typed problem met while decoding; serde's own errors are strings.
type Fault = Option<FrameError>;

fn parse_number<E: de::Error>(
    fault: &mut Fault,
    field: &'static str,
    text: &str,
) -> Result<Decimal, E> {
    Decimal::parse(text).map_err(|error| {
        fault.get_or_insert(FrameError::BadNumber { field, error });
        E::custom(format_args!("bad number in `{field}`"))
    })
}

fn invalid<E: de::Error>(fault: &mut Fault, message: String) -> E {
    let e = E::custom(&message);
    fault.get_or_insert(FrameError::Invalid(message));
    e
}

fn decode_error(e: serde_json::Error, fault: Fault) -> FrameError {
    fault.unwrap_or_else(|| FrameError::Json(e.to_string()))
}

/// Sorts recent trades oldest first and emits those newer than `last_id`; returns the new last id.
fn emit_recent_trades(
    trades: &mut [RawTrade],
    symbol: SymbolId,
    last_id: Option<u64>,
    ts_ns: u64,
    out: &mut Vec<Event>,
) -> Option<u64> {
    trades.sort_unstable_by_key(|t| t.id);
    let mut last = last_id;
    for t in trades.iter() {
        if last.is_some_and(|l| t.id <= l) {
            continue;
        }
        push_trade(t, symbol, ts_ns, out);
        last = Some(t.id);
    }
    last
}

fn push_trade(t: &RawTrade, symbol: SymbolId, ts_ns: u64, out: &mut Vec<Event>) {
    out.push(Event::Trade(Trade {
        symbol,
        price: t.price,
        size: t.size,
        side: t.side,
        trade_id: t.id.to_string(),
        exchange_ts_ns: ms_to_ns(t.ts_ms),
        ts_ns,
        is_snapshot: false,
    }));
}

// ---------------------------------------------------------------------------------------------
// v2
// ---------------------------------------------------------------------------------------------

/// Per-symbol state beside the book: has its first book been seen, last trade id emitted.
#[derive(Debug, Clone, Copy, Default)]
struct SymbolExtra {
    book_seen: bool,
    last_trade_id: Option<u64>,
}

pub struct GeminiSession {
    symbols: Symbols,
    extra: Vec<SymbolExtra>,
    levels: Vec<LevelChange>,
    trades: Vec<RawTrade>,
    stats: SessionStats,
    options: SessionOptions,
}

impl GeminiSession {
    pub fn new(options: SessionOptions) -> Self {
        GeminiSession {
            symbols: options.symbols_table(),
            extra: Vec::new(),
            levels: Vec::with_capacity(256),
            trades: Vec::with_capacity(64),
            stats: SessionStats::default(),
            options,
        }
    }

    /// `None` for a symbol that was not subscribed: the caller drops the frame.
    fn intern(&mut self, name: &str) -> Option<SymbolId> {
        let id = self
            .symbols
            .intern(name, || SymbolSync::new(ResyncBy::Resubscribe, None))?;
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
        check_frame_size(frame, self.options.max_frame_bytes)?;
        self.levels.clear();
        self.trades.clear();
        let mut fields = V2Fields::default();
        let mut fault: Fault = None;
        let mut de = serde_json::Deserializer::from_slice(frame);
        let seed = V2Seed {
            fields: &mut fields,
            levels: &mut self.levels,
            trades: &mut self.trades,
            fault: &mut fault,
        };
        if let Err(e) = seed.deserialize(&mut de).and_then(|()| de.end()) {
            let error = decode_error(e, fault);
            if fields.kind == Some("l2_updates") {
                if let Some(id) = fields.symbol.and_then(|name| self.intern(name)) {
                    // Even a first frame: the book it carried is lost, so the next plain delta
                    // must not be taken for the book.
                    self.extra[id as usize].book_seen = true;
                    return Err(self.symbols.bad_frame(id, error, out));
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
                self.stats.ignored += 1;
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
        let extra = self.extra[id as usize];
        let is_book = !extra.book_seen || f.has_trades;
        let sync = self.symbols.sync_mut(id).expect("interned above");
        let result = if is_book {
            self.extra[id as usize].book_seen = true;
            sync.on_snapshot(id, &Unsequenced, None, &self.levels, 0, ts_ns, out)
                .map(|()| true)
        } else {
            sync.on_unsequenced_delta(id, &self.levels, 0, ts_ns, out)
        };
        if let Err(e) = result {
            return Err(self.symbols.bad_frame(id, e.into(), out));
        }
        if is_book && !self.trades.is_empty() {
            let last = self.extra[id as usize].last_trade_id;
            self.extra[id as usize].last_trade_id =
                emit_recent_trades(&mut self.trades, id, last, ts_ns, out);
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
        let owned = || Some(name.to_owned());
        let trade = (|| -> Result<RawTrade, FrameError> {
            Ok(RawTrade {
                id: f.event_id.ok_or(FrameError::MissingField("event_id"))?,
                ts_ms: f.timestamp.unwrap_or(0),
                price: field_number("price", f.price)?,
                size: field_number("quantity", f.quantity)?,
                side: taker_side(f.side)?,
            })
        })()
        .map_err(|e| ReceiveError::new(owned(), e))?;
        let Some(id) = self.intern(name) else {
            return Ok(());
        };
        push_trade(&trade, id, ts_ns, out);
        let extra = &mut self.extra[id as usize];
        extra.last_trade_id = Some(extra.last_trade_id.map_or(trade.id, |l| l.max(trade.id)));
        Ok(())
    }
}

fn field_number(field: &'static str, text: Option<&str>) -> Result<Decimal, FrameError> {
    let text = text.ok_or(FrameError::MissingField(field))?;
    Decimal::parse(text).map_err(|error| FrameError::BadNumber { field, error })
}

/// v2 `side` of a trade: the taker's.
fn taker_side(side: Option<&str>) -> Result<Option<TradeSide>, FrameError> {
    match side {
        Some("buy") => Ok(Some(TradeSide::Buy)),
        Some("sell") => Ok(Some(TradeSide::Sell)),
        None => Ok(None),
        Some(other) => Err(FrameError::Invalid(format!("unknown trade side {other:?}"))),
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

/// `{"result":"error","reason":..,"message":..}`: Gemini's answer to a request it refuses.
#[derive(Debug, Default)]
struct ErrorFields<'a> {
    result: Option<Cow<'a, str>>,
    reason: Option<Cow<'a, str>>,
    message: Option<Cow<'a, str>>,
}

impl ErrorFields<'_> {
    /// Reads one top-level key if it belongs to an error answer; returns whether it did.
    fn read<'de, A: MapAccess<'de>>(
        this: &mut ErrorFields<'de>,
        key: &str,
        map: &mut A,
    ) -> Result<bool, A::Error> {
        let slot = match key {
            "result" => &mut this.result,
            "reason" => &mut this.reason,
            "message" => &mut this.message,
            _ => return Ok(false),
        };
        *slot = map.next_value_seed(LooseText)?;
        Ok(true)
    }

    fn is_error(&self) -> bool {
        self.result.as_deref() == Some("error")
    }

    /// `reason: message` (Gemini's reason is a code word such as `InvalidJson`).
    fn to_receive_error(&self, symbol: Option<&str>) -> ReceiveError {
        let message = match (self.reason.as_deref(), self.message.as_deref()) {
            (Some(reason), Some(message)) => format!("{reason}: {message}"),
            (reason, message) => message.or(reason).unwrap_or("").to_owned(),
        };
        venue_error(symbol, None, Some(&message))
    }
}

/// Every top-level field a v2 frame we read can carry; filled in one pass.
#[derive(Debug, Default)]
struct V2Fields<'a> {
    error: ErrorFields<'a>,
    kind: Option<&'a str>,
    symbol: Option<&'a str>,
    has_changes: bool,
    /// Only a symbol's initial book frame carries `trades`.
    has_trades: bool,
    event_id: Option<u64>,
    timestamp: Option<u64>,
    price: Option<&'a str>,
    quantity: Option<&'a str>,
    side: Option<&'a str>,
}

struct V2Seed<'f, 'a> {
    fields: &'f mut V2Fields<'a>,
    levels: &'f mut Vec<LevelChange>,
    trades: &'f mut Vec<RawTrade>,
    fault: &'f mut Fault,
}

impl<'de> DeserializeSeed<'de> for V2Seed<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for V2Seed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Gemini v2 message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let f = self.fields;
        while let Some(key) = map.next_key::<&'de str>()? {
            if ErrorFields::read(&mut f.error, key, &mut map)? {
                continue;
            }
            match key {
                "type" => f.kind = Some(map.next_value()?),
                "symbol" => f.symbol = Some(map.next_value()?),
                "changes" => {
                    f.has_changes = true;
                    map.next_value_seed(ChangesSeed {
                        out: &mut *self.levels,
                        fault: &mut *self.fault,
                    })?
                }
                "trades" => {
                    f.has_trades = true;
                    map.next_value_seed(V2TradesSeed {
                        out: &mut *self.trades,
                        fault: &mut *self.fault,
                    })?
                }
                "event_id" => f.event_id = Some(map.next_value()?),
                "timestamp" => f.timestamp = Some(map.next_value()?),
                "price" => f.price = Some(map.next_value()?),
                "quantity" => f.quantity = Some(map.next_value()?),
                "side" => f.side = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// `changes: [["buy"|"sell", price, quantity], ...]` appended to the level buffer.
struct ChangesSeed<'f> {
    out: &'f mut Vec<LevelChange>,
    fault: &'f mut Fault,
}

impl<'de> DeserializeSeed<'de> for ChangesSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ChangesSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of [side, price, quantity] changes")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(change) = seq.next_element_seed(ChangeSeed {
            fault: &mut *self.fault,
        })? {
            self.out.push(change);
        }
        Ok(())
    }
}

struct ChangeSeed<'f> {
    fault: &'f mut Fault,
}

impl<'de> DeserializeSeed<'de> for ChangeSeed<'_> {
    type Value = LevelChange;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<LevelChange, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ChangeSeed<'_> {
    type Value = LevelChange;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a [side, price, quantity] change")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LevelChange, A::Error> {
        let side: &str = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let price: &str = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        let qty: &str = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(2, &self))?;
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        let side = match side {
            "buy" => Side::Bid,
            "sell" => Side::Ask,
            other => return Err(invalid(self.fault, format!("unknown book side {other:?}"))),
        };
        let price = parse_number(self.fault, "price", price)?;
        let qty = parse_number(self.fault, "quantity", qty)?;
        Ok((side, price, qty))
    }
}

/// The `trades` list of an initial v2 book frame.
struct V2TradesSeed<'f> {
    out: &'f mut Vec<RawTrade>,
    fault: &'f mut Fault,
}

impl<'de> DeserializeSeed<'de> for V2TradesSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for V2TradesSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of trade objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(t) = seq.next_element_seed(V2TradeSeed {
            fault: &mut *self.fault,
        })? {
            self.out.push(t);
        }
        Ok(())
    }
}

struct V2TradeSeed<'f> {
    fault: &'f mut Fault,
}

impl<'de> DeserializeSeed<'de> for V2TradeSeed<'_> {
    type Value = RawTrade;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<RawTrade, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for V2TradeSeed<'_> {
    type Value = RawTrade;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a trade object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawTrade, A::Error> {
        let mut id = None;
        let mut ts = None;
        let mut price: Option<&'de str> = None;
        let mut qty: Option<&'de str> = None;
        let mut side: Option<&'de str> = None;
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "event_id" => id = Some(map.next_value::<u64>()?),
                "timestamp" => ts = Some(map.next_value::<u64>()?),
                "price" => price = Some(map.next_value()?),
                "quantity" => qty = Some(map.next_value()?),
                "side" => side = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let id = id.ok_or_else(|| de::Error::missing_field("event_id"))?;
        let price = parse_number(
            self.fault,
            "price",
            price.ok_or_else(|| de::Error::missing_field("price"))?,
        )?;
        let size = parse_number(
            self.fault,
            "quantity",
            qty.ok_or_else(|| de::Error::missing_field("quantity"))?,
        )?;
        let side = match taker_side(side) {
            Ok(side) => side,
            Err(e) => {
                let msg = e.to_string();
                self.fault.get_or_insert(e);
                return Err(de::Error::custom(msg));
            }
        };
        Ok(RawTrade {
            id,
            ts_ms: ts.unwrap_or(0),
            price,
            size,
            side,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// v1
// ---------------------------------------------------------------------------------------------

/// A v1 session: one connection, one symbol, `socket_sequence` checked on every frame.
pub struct GeminiV1Session {
    symbols: Symbols,
    symbol: SymbolId,
    /// The `socket_sequence` the next frame must carry.
    expected_seq: u64,
    /// A frame failed to decode: it may have used up one sequence number.
    allow_skip: bool,
    last_trade_id: Option<u64>,
    levels: Vec<LevelChange>,
    trades: Vec<RawTrade>,
    stats: SessionStats,
    options: SessionOptions,
}

impl GeminiV1Session {
    pub fn new(symbol: &str, options: SessionOptions) -> Self {
        // The connection is this one symbol's: a subscription list has nothing to filter.
        let mut symbols = Symbols::configured(None, options.max_buffer_bytes);
        let id = symbols
            .intern(symbol, || SymbolSync::new(ResyncBy::Resubscribe, None))
            .expect("no subscription list, so every symbol is taken");
        GeminiV1Session {
            symbols,
            symbol: id,
            expected_seq: 0,
            allow_skip: false,
            last_trade_id: None,
            levels: Vec::with_capacity(256),
            trades: Vec::with_capacity(8),
            stats: SessionStats::default(),
            options,
        }
    }

    fn owned_name(&self) -> Option<String> {
        Some(self.symbols.name(self.symbol).to_owned())
    }

    fn receive_inner(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let id = self.symbol;
        check_frame_size(frame, self.options.max_frame_bytes)
            .map_err(|e| ReceiveError::new(self.owned_name(), e))?;
        self.levels.clear();
        self.trades.clear();
        let mut fields = V1Fields::default();
        let mut fault: Fault = None;
        let mut de = serde_json::Deserializer::from_slice(frame);
        let seed = V1Seed {
            fields: &mut fields,
            levels: &mut self.levels,
            trades: &mut self.trades,
            fault: &mut fault,
        };
        if let Err(e) = seed.deserialize(&mut de).and_then(|()| de.end()) {
            let error = decode_error(e, fault);
            self.allow_skip = true;
            if fields.kind != Some("heartbeat") {
                // Every other frame of the connection may have changed this symbol's book.
                if let Some(sync) = self.symbols.sync_mut(id) {
                    sync.on_bad_frame(id, &error, out);
                }
            }
            return Err(ReceiveError::new(self.owned_name(), error));
        }

        if let Some(seq) = fields.socket_sequence {
            self.check_sequence(seq, out);
        }
        if fields.error.is_error() {
            // The connection is this symbol's: the error concerns it, but changes no book.
            let name = self.symbols.name(id);
            return Err(fields.error.to_receive_error(Some(name)));
        }
        match fields.kind {
            Some("update") => self.on_update(&fields, ts_ns, out),
            // heartbeat, unknown kinds: understood, not kept.
            _ => {
                self.stats.ignored += 1;
                Ok(())
            }
        }
    }

    /// `socket_sequence` is 0 on a new connection and +1 per frame; anything else lost frames.
    fn check_sequence(&mut self, seq: u64, out: &mut Vec<Event>) {
        let expected = self.expected_seq;
        let skipped_ok = self.allow_skip && seq == expected.saturating_add(1);
        self.allow_skip = false;
        self.expected_seq = seq.saturating_add(1);
        if seq == 0 || seq == expected || skipped_ok {
            return;
        }
        let id = self.symbol;
        if let Some(sync) = self.symbols.sync_mut(id) {
            sync.on_gap(id, expected, seq, out);
        }
    }

    fn on_update(
        &mut self,
        f: &V1Fields<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let id = self.symbol;
        let exchange_ts_ms = f
            .timestampms
            .or(f.timestamp.map(|s| s.saturating_mul(1000)))
            .unwrap_or(0);
        let exchange_ts = ms_to_ns(exchange_ts_ms);
        let sync = self.symbols.sync_mut(id).expect("created with the session");
        let first_event = out.len();
        let result = if f.initial {
            sync.on_snapshot(
                id,
                &Unsequenced,
                None,
                &self.levels,
                exchange_ts,
                ts_ns,
                out,
            )
        } else if !self.levels.is_empty() {
            sync.on_unsequenced_delta(id, &self.levels, exchange_ts, ts_ns, out)
                .map(|_| ())
        } else {
            Ok(())
        };
        if let Err(e) = result {
            let error = FrameError::from(e);
            sync.on_bad_frame(id, &error, out);
            return Err(ReceiveError::new(self.owned_name(), error));
        }
        if let Some(seq) = f.socket_sequence {
            stamp_seq(&mut out[first_event..], seq);
            if let Some(sync) = self.symbols.sync_mut(id) {
                if f.initial || !self.levels.is_empty() {
                    sync.last_seq = Some(seq);
                }
            }
        }
        for t in self.trades.iter_mut() {
            t.ts_ms = exchange_ts_ms;
        }
        if f.initial {
            self.last_trade_id =
                emit_recent_trades(&mut self.trades, id, self.last_trade_id, ts_ns, out);
        } else {
            for t in &self.trades {
                push_trade(t, id, ts_ns, out);
                self.last_trade_id = Some(self.last_trade_id.map_or(t.id, |l| l.max(t.id)));
            }
        }
        Ok(())
    }
}

/// Gives `BookUpdated`/`Resynced` events the connection's sequence number.
fn stamp_seq(events: &mut [Event], seq: u64) {
    for ev in events {
        match ev {
            Event::BookUpdated { seq: s, .. } | Event::Resynced { seq: s, .. } if s.is_none() => {
                *s = Some(seq)
            }
            _ => {}
        }
    }
}

impl Session for GeminiV1Session {
    fn venue(&self) -> &'static str {
        "gemini-v1"
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

#[derive(Debug, Default)]
struct V1Fields<'a> {
    error: ErrorFields<'a>,
    kind: Option<&'a str>,
    socket_sequence: Option<u64>,
    timestamp: Option<u64>,
    timestampms: Option<u64>,
    /// A change event with reason `initial`: this update is the book.
    initial: bool,
}

struct V1Seed<'f, 'a> {
    fields: &'f mut V1Fields<'a>,
    levels: &'f mut Vec<LevelChange>,
    trades: &'f mut Vec<RawTrade>,
    fault: &'f mut Fault,
}

impl<'de> DeserializeSeed<'de> for V1Seed<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for V1Seed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Gemini v1 message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let f = self.fields;
        while let Some(key) = map.next_key::<&'de str>()? {
            if ErrorFields::read(&mut f.error, key, &mut map)? {
                continue;
            }
            match key {
                "type" => f.kind = Some(map.next_value()?),
                "socket_sequence" => f.socket_sequence = Some(map.next_value()?),
                "timestamp" => f.timestamp = map.next_value()?,
                "timestampms" => f.timestampms = map.next_value()?,
                "events" => map.next_value_seed(V1EventsSeed {
                    initial: &mut f.initial,
                    levels: &mut *self.levels,
                    trades: &mut *self.trades,
                    fault: &mut *self.fault,
                })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct V1EventsSeed<'f> {
    initial: &'f mut bool,
    levels: &'f mut Vec<LevelChange>,
    trades: &'f mut Vec<RawTrade>,
    fault: &'f mut Fault,
}

impl<'de> DeserializeSeed<'de> for V1EventsSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for V1EventsSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of change/trade events")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(V1EventSeed {
                initial: &mut *self.initial,
                levels: &mut *self.levels,
                trades: &mut *self.trades,
                fault: &mut *self.fault,
            })?
            .is_some()
        {}
        Ok(())
    }
}

struct V1EventSeed<'f> {
    initial: &'f mut bool,
    levels: &'f mut Vec<LevelChange>,
    trades: &'f mut Vec<RawTrade>,
    fault: &'f mut Fault,
}

impl<'de> DeserializeSeed<'de> for V1EventSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for V1EventSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a change or trade event")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut kind: Option<&'de str> = None;
        let mut side: Option<&'de str> = None;
        let mut price: Option<&'de str> = None;
        let mut remaining: Option<&'de str> = None;
        let mut reason: Option<&'de str> = None;
        let mut tid: Option<u64> = None;
        let mut amount: Option<&'de str> = None;
        let mut maker_side: Option<&'de str> = None;
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "type" => kind = Some(map.next_value()?),
                "side" => side = Some(map.next_value()?),
                "price" => price = Some(map.next_value()?),
                "remaining" => remaining = Some(map.next_value()?),
                "reason" => reason = Some(map.next_value()?),
                "tid" => tid = Some(map.next_value()?),
                "amount" => amount = Some(map.next_value()?),
                "makerSide" => maker_side = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        match kind {
            Some("change") => {
                let side = match side {
                    Some("bid") => Side::Bid,
                    Some("ask") => Side::Ask,
                    other => {
                        return Err(invalid(
                            self.fault,
                            format!("unknown change side {other:?}"),
                        ))
                    }
                };
                let price = parse_number(
                    self.fault,
                    "price",
                    price.ok_or_else(|| de::Error::missing_field("price"))?,
                )?;
                let qty = parse_number(
                    self.fault,
                    "remaining",
                    remaining.ok_or_else(|| de::Error::missing_field("remaining"))?,
                )?;
                if reason == Some("initial") {
                    *self.initial = true;
                }
                self.levels.push((side, price, qty));
            }
            Some("trade") => {
                let id = tid.ok_or_else(|| de::Error::missing_field("tid"))?;
                let price = parse_number(
                    self.fault,
                    "price",
                    price.ok_or_else(|| de::Error::missing_field("price"))?,
                )?;
                let size = parse_number(
                    self.fault,
                    "amount",
                    amount.ok_or_else(|| de::Error::missing_field("amount"))?,
                )?;
                // The maker's side is given: the taker is on the other one.
                let side = match maker_side {
                    Some("bid") => Some(TradeSide::Sell),
                    Some("ask") => Some(TradeSide::Buy),
                    _ => None,
                };
                self.trades.push(RawTrade {
                    id,
                    ts_ms: 0,
                    price,
                    size,
                    side,
                });
            }
            // auction and block-trade events do not touch the book.
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::LossReason;
    use crate::sync::SyncState;
    use crate::venue::new_session;

    fn feed(s: &mut dyn Session, frame: &str) -> Vec<Event> {
        let mut out = Vec::new();
        s.receive(frame.as_bytes(), 7, &mut out)
            .unwrap_or_else(|e| panic!("{frame}: {e}"));
        out
    }

    fn top(s: &dyn Session, symbol: SymbolId) -> (String, String) {
        let book = &s.symbols().sync(symbol).unwrap().book;
        let b = book.best_bid().unwrap();
        let a = book.best_ask().unwrap();
        (
            format!("{}@{}", b.qty, b.price),
            format!("{}@{}", a.qty, a.price),
        )
    }

    // Messages below are written from Gemini's v1 market data documentation.
    const V1_INITIAL: &str = r#"{"type":"update","eventId":5375461993,"socket_sequence":0,
        "events":[
          {"type":"change","reason":"initial","price":"3641.61","delta":"0.83372051","remaining":"0.83372051","side":"bid"},
          {"type":"change","reason":"initial","price":"3641.60","delta":"4.1","remaining":"4.1","side":"bid"},
          {"type":"change","reason":"initial","price":"3641.70","delta":"1.5","remaining":"1.5","side":"ask"},
          {"type":"change","reason":"initial","price":"3642.00","delta":"2","remaining":"2","side":"ask"}
        ]}"#;

    #[test]
    fn v1_initial_changes_and_trade() {
        let mut s = new_session("gemini-v1:BTCUSD", SessionOptions::default()).unwrap();
        assert_eq!(s.venue(), "gemini-v1");
        let out = feed(s.as_mut(), V1_INITIAL);
        assert_eq!(
            out,
            vec![Event::BookUpdated {
                symbol: 0,
                seq: Some(0),
                exchange_ts_ns: 0,
                ts_ns: 7
            }]
        );
        assert_eq!(s.symbols().name(0), "BTCUSD");
        assert_eq!(
            top(s.as_ref(), 0),
            ("0.83372051@3641.61".into(), "1.5@3641.70".into())
        );

        // A taker buy lifts part of the best ask: trade then change with reason "trade".
        let out = feed(
            s.as_mut(),
            r#"{"type":"update","eventId":5375503736,"timestamp":1547760288,"timestampms":1547760288001,
                "socket_sequence":1,"events":[
                  {"type":"trade","tid":5375503736,"price":"3641.70","amount":"0.5","makerSide":"ask"},
                  {"type":"change","side":"ask","price":"3641.70","remaining":"1.0","delta":"-0.5","reason":"trade"}
                ]}"#,
        );
        assert_eq!(out.len(), 2);
        assert!(matches!(
            out[0],
            Event::BookUpdated {
                seq: Some(1),
                exchange_ts_ns: 1_547_760_288_001_000_000,
                ..
            }
        ));
        let Event::Trade(t) = &out[1] else {
            panic!("{out:?}")
        };
        assert_eq!(t.side, Some(TradeSide::Buy));
        assert_eq!(t.price.to_string(), "3641.70");
        assert_eq!(t.size.to_string(), "0.5");
        assert_eq!(t.trade_id, "5375503736");
        assert_eq!(t.exchange_ts_ns, 1_547_760_288_001_000_000);
        assert_eq!(t.ts_ns, 7);
        assert_eq!(
            top(s.as_ref(), 0),
            ("0.83372051@3641.61".into(), "1.0@3641.70".into())
        );

        // A cancel removes the best bid; a maker bid hit means a taker sell.
        feed(
            s.as_mut(),
            r#"{"type":"update","eventId":5375503740,"socket_sequence":2,"events":[
                {"type":"change","side":"bid","price":"3641.61","remaining":"0","delta":"-0.83372051","reason":"cancel"}]}"#,
        );
        assert_eq!(
            top(s.as_ref(), 0),
            ("4.1@3641.60".into(), "1.0@3641.70".into())
        );
        let out = feed(
            s.as_mut(),
            r#"{"type":"update","eventId":5375503750,"timestampms":1547760289000,"socket_sequence":3,"events":[
                {"type":"trade","tid":5375503750,"price":"3641.60","amount":"0.1","makerSide":"bid"}]}"#,
        );
        assert!(matches!(&out[..], [Event::Trade(t)] if t.side == Some(TradeSide::Sell)));
        // Heartbeats carry the sequence too and are counted as ignored.
        let out = feed(s.as_mut(), r#"{"type":"heartbeat","socket_sequence":4}"#);
        assert!(out.is_empty());
        assert_eq!(s.stats().ignored, 1);
        assert_eq!(s.symbols().sync(0).unwrap().counters.gaps, 0);
    }

    #[test]
    fn v1_sequence_gap_resyncs() {
        let mut s = new_session("gemini-v1:ETHUSD", SessionOptions::default()).unwrap();
        feed(s.as_mut(), V1_INITIAL);
        feed(s.as_mut(), r#"{"type":"heartbeat","socket_sequence":1}"#);
        // Frame 2 was lost.
        let out = feed(
            s.as_mut(),
            r#"{"type":"update","eventId":9,"socket_sequence":3,"events":[
                {"type":"change","side":"bid","price":"3641.50","remaining":"1","delta":"1","reason":"place"}]}"#,
        );
        assert_eq!(
            out,
            vec![
                Event::GapDetected {
                    symbol: 0,
                    expected: 2,
                    received: 3
                },
                Event::SyncLost {
                    symbol: 0,
                    reason: LossReason::Gap {
                        expected: 2,
                        received: 3,
                    },
                },
                Event::NeedResubscribe { symbol: 0 }
            ]
        );
        let sync = s.symbols().sync(0).unwrap();
        assert_eq!(sync.state(), SyncState::AwaitingSnapshot);
        assert!(sync.book.is_empty());
        assert_eq!(sync.counters.gaps, 1);
        // Deltas are dropped until the reconnect delivers a new initial book at sequence 0.
        let out = feed(
            s.as_mut(),
            r#"{"type":"update","eventId":10,"socket_sequence":4,"events":[
                {"type":"change","side":"ask","price":"3650","remaining":"1","delta":"1","reason":"place"}]}"#,
        );
        assert!(out.is_empty());
        let out = feed(s.as_mut(), V1_INITIAL);
        assert!(out.contains(&Event::Resynced {
            symbol: 0,
            seq: Some(0)
        }));
        assert!(matches!(out.last(), Some(Event::BookUpdated { .. })));
        assert_eq!(
            top(s.as_ref(), 0),
            ("0.83372051@3641.61".into(), "1.5@3641.70".into())
        );
        let sync = s.symbols().sync(0).unwrap();
        assert_eq!(sync.state(), SyncState::Live);
        assert_eq!(sync.counters.resyncs, 1);
    }

    #[test]
    fn v1_venue_name_needs_a_symbol() {
        assert!(new_session("gemini-v1:", SessionOptions::default()).is_err());
        assert!(new_session("gemini-v1:BTCUSD", SessionOptions::default()).is_ok());
    }

    #[test]
    fn v1_bad_side_is_typed_error_and_resyncs() {
        let mut s = new_session("gemini-v1:BTCUSD", SessionOptions::default()).unwrap();
        feed(s.as_mut(), V1_INITIAL);
        let mut out = Vec::new();
        let err = s
            .receive(
                br#"{"type":"update","socket_sequence":1,"events":[{"type":"change","side":"middle","price":"1","remaining":"1","reason":"place"}]}"#,
                1,
                &mut out,
            )
            .unwrap_err();
        assert!(matches!(err.error, FrameError::Invalid(_)), "{err:?}");
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
        // The broken frame used sequence 1; 2 follows without a gap.
        let out = feed(s.as_mut(), r#"{"type":"heartbeat","socket_sequence":2}"#);
        assert!(out.is_empty());
    }

    // Messages below are written from Gemini's v2 market data documentation.
    const V2_BOOK: &str = r#"{"type":"l2_updates","symbol":"BTCUSD",
        "changes":[["buy","9122.04","0.00121425"],["buy","9122.00","2"],["sell","9122.07","0.98942292"],["sell","9123.00","1"]],
        "trades":[
          {"type":"trade","symbol":"BTCUSD","event_id":169841458,"timestamp":1560976400428,"price":"9122.04","quantity":"0.0073173","side":"sell"},
          {"type":"trade","symbol":"BTCUSD","event_id":169841450,"timestamp":1560976400100,"price":"9122.07","quantity":"0.5","side":"buy"}
        ],
        "auction_events":[]}"#;

    #[test]
    fn v2_first_frame_is_the_book_later_frames_are_deltas() {
        let mut s = new_session("gemini", SessionOptions::default()).unwrap();
        let out = feed(s.as_mut(), V2_BOOK);
        // The book, then the recent trades oldest first.
        assert!(matches!(out[0], Event::BookUpdated { symbol: 0, .. }));
        let ids: Vec<_> = out[1..]
            .iter()
            .map(|e| match e {
                Event::Trade(t) => t.trade_id.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ids, ["169841450", "169841458"]);
        assert_eq!(
            top(s.as_ref(), 0),
            ("0.00121425@9122.04".into(), "0.98942292@9122.07".into())
        );

        // A later frame as large as a book (both sides, many levels) is still a delta: the
        // levels it does not name stay.
        let big: Vec<String> = (0..40)
            .map(|i| format!(r#"["buy","{}.00","1"]"#, 9000 + i))
            .chain((0..40).map(|i| format!(r#"["sell","{}.00","1"]"#, 9200 + i)))
            .collect();
        let frame = format!(
            r#"{{"type":"l2_updates","symbol":"BTCUSD","changes":[{}]}}"#,
            big.join(",")
        );
        let out = feed(s.as_mut(), &frame);
        assert_eq!(
            out,
            vec![Event::BookUpdated {
                symbol: 0,
                seq: None,
                exchange_ts_ns: 0,
                ts_ns: 7
            }]
        );
        let sync = s.symbols().sync(0).unwrap();
        assert_eq!(sync.counters.snapshots, 1);
        assert_eq!(sync.book.len(Side::Bid), 42);
        assert_eq!(sync.book.len(Side::Ask), 42);
        assert_eq!(
            top(s.as_ref(), 0),
            ("0.00121425@9122.04".into(), "0.98942292@9122.07".into())
        );
        // "0" removes.
        feed(
            s.as_mut(),
            r#"{"type":"l2_updates","symbol":"BTCUSD","changes":[["sell","9122.07","0"]]}"#,
        );
        assert_eq!(
            top(s.as_ref(), 0),
            ("0.00121425@9122.04".into(), "1@9123.00".into())
        );
    }

    #[test]
    fn v2_trade_and_heartbeat() {
        let mut s = new_session("gemini", SessionOptions::default()).unwrap();
        let out = feed(
            s.as_mut(),
            r#"{"type":"heartbeat","timestamp":1560976400500}"#,
        );
        assert!(out.is_empty());
        assert_eq!(s.stats().ignored, 1);
        let out = feed(
            s.as_mut(),
            r#"{"type":"trade","symbol":"ETHUSD","event_id":3575573053,"timestamp":151231241,"price":"9004.21000000","quantity":"0.09110000","side":"buy"}"#,
        );
        let [Event::Trade(t)] = &out[..] else {
            panic!("{out:?}")
        };
        assert_eq!(t.side, Some(TradeSide::Buy));
        assert_eq!(t.price.to_string(), "9004.21000000");
        assert_eq!(t.size.to_string(), "0.09110000");
        assert_eq!(t.exchange_ts_ns, 151_231_241_000_000);
        assert_eq!(s.symbols().name(t.symbol), "ETHUSD");
        assert_eq!(s.stats().errors, 0);
    }

    #[test]
    fn v2_resubscribe_takes_new_book_and_skips_repeated_trades() {
        let mut s = new_session("gemini", SessionOptions::default()).unwrap();
        feed(s.as_mut(), V2_BOOK);
        // A broken delta costs the symbol its book.
        let mut out = Vec::new();
        let err = s
            .receive(
                br#"{"type":"l2_updates","symbol":"BTCUSD","changes":[["buy","9122.0x","1"]]}"#,
                1,
                &mut out,
            )
            .unwrap_err();
        assert!(matches!(
            err.error,
            FrameError::BadNumber { field: "price", .. }
        ));
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
        // Deltas before the new book are dropped.
        let out = feed(
            s.as_mut(),
            r#"{"type":"l2_updates","symbol":"BTCUSD","changes":[["buy","9000","1"]]}"#,
        );
        assert!(out.is_empty());
        // The resubscription's first frame (with `trades`) is the new book; trades already
        // emitted are not repeated.
        let out = feed(s.as_mut(), V2_BOOK);
        assert!(matches!(out[0], Event::Resynced { symbol: 0, .. }));
        assert!(matches!(out[1], Event::BookUpdated { symbol: 0, .. }));
        assert_eq!(out.len(), 2, "{out:?}");
        let sync = s.symbols().sync(0).unwrap();
        assert_eq!(sync.state(), SyncState::Live);
        assert_eq!(sync.book.len(Side::Bid), 2);
    }

    #[test]
    fn v2_bad_side_is_typed() {
        let mut s = new_session("gemini", SessionOptions::default()).unwrap();
        feed(s.as_mut(), V2_BOOK);
        let mut out = Vec::new();
        let err = s
            .receive(
                br#"{"type":"l2_updates","symbol":"BTCUSD","changes":[["hold","1","1"]]}"#,
                1,
                &mut out,
            )
            .unwrap_err();
        assert!(matches!(err.error, FrameError::Invalid(_)));
        assert_eq!(err.symbol.as_deref(), Some("BTCUSD"));
        assert_eq!(s.stats().errors, 1);
    }

    #[test]
    fn v2_error_answer_is_a_typed_venue_error_and_changes_no_book() {
        let mut s = new_session("gemini", SessionOptions::default()).unwrap();
        feed(s.as_mut(), V2_BOOK);
        let before = top(s.as_ref(), 0);
        let mut out = Vec::new();
        let err = s
            .receive(
                br#"{"result":"error","reason":"InvalidJson","message":"Failed to parse the request"}"#,
                1,
                &mut out,
            )
            .unwrap_err();
        assert_eq!(err.symbol, None);
        assert_eq!(
            err.error,
            FrameError::VenueError("InvalidJson: Failed to parse the request".into())
        );
        assert!(out.is_empty());
        assert_eq!(top(s.as_ref(), 0), before);
        assert_eq!(s.symbols().sync(0).unwrap().state(), SyncState::Live);
        assert_eq!(s.symbols().len(), 1);
        assert_eq!((s.stats().errors, s.stats().ignored), (1, 0));
    }

    #[test]
    fn v1_error_answer_concerns_the_connections_symbol_and_changes_no_book() {
        let mut s = new_session("gemini-v1:BTCUSD", SessionOptions::default()).unwrap();
        feed(s.as_mut(), V1_INITIAL);
        let before = top(s.as_ref(), 0);
        let mut out = Vec::new();
        let err = s
            .receive(
                br#"{"result":"error","reason":"RateLimit","message":"Too many requests"}"#,
                1,
                &mut out,
            )
            .unwrap_err();
        assert_eq!(err.symbol.as_deref(), Some("BTCUSD"));
        assert_eq!(
            err.error,
            FrameError::VenueError("RateLimit: Too many requests".into())
        );
        assert!(out.is_empty());
        assert_eq!(top(s.as_ref(), 0), before);
        assert_eq!(s.symbols().sync(0).unwrap().state(), SyncState::Live);
        assert_eq!(s.symbols().sync(0).unwrap().counters.errors, 0);
        // The connection's numbering is untouched: the next frame (1) is no gap.
        let out = feed(s.as_mut(), r#"{"type":"heartbeat","socket_sequence":1}"#);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(s.symbols().sync(0).unwrap().counters.gaps, 0);
    }
}
