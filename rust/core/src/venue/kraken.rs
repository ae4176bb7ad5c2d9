//! Kraken spot websocket, v1 (`wss://ws.kraken.com`) and v2 (`wss://ws.kraken.com/v2`), told
//! apart by shape: v1 data frames are arrays `[channelID, payload.., channelName, pair]`, v1
//! events are objects with `event`, v2 frames are objects with `channel` or `method`.
//!
//! Books: a snapshot (`as`/`bs` in v1, `type: "snapshot"` in v2) then updates with absolute
//! volumes (zero deletes). Kraken sends no sequence numbers; after every update the book is
//! truncated to the subscribed depth (Kraken sends no deletes for levels that fall out of it) and
//! then checked against the CRC32 the venue sends (`c` in v1 updates, `checksum` in v2 snapshots
//! and updates; see `checksum::kraken_checksum`). A mismatch clears the book and asks for
//! `NeedResubscribe`: the fresh snapshot comes in-band. Levels flagged `r` (republish: a level
//! re-sent because it came back inside the subscribed depth) are applied like any level.
//!
//! The depth comes from the subscription: v1 `subscriptionStatus` (which also maps channelID to
//! pair, given back by `Session::book_channel`), else the channel name `book-N`; v2 `subscribe`
//! results; else `SessionOptions::depth`, else Kraken's default of 10.
//!
//! v2 prices and quantities are JSON numbers: they are read as raw tokens, so the book keeps the
//! digits Kraken wrote (trailing zeros included), which its checksum depends on.
//!
//! Refused requests are `FrameError::VenueError` with the venue's message, naming the pair when
//! the answer does: v1 `{"event":"error","errorMessage"}` and `subscriptionStatus` with
//! `"status":"error"` (and its `pair`), v2 `{"method","success":false,"error","symbol"}`. They
//! change no book. Heartbeats, `systemStatus`, pongs and acks are counted as ignored.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::book::Side;
use crate::checksum::kraken_checksum;
use crate::decimal::Decimal;
use crate::error::{FrameError, ReceiveError};
use crate::event::{Event, SymbolId, Trade, TradeSide};
use crate::sync::{LevelChange, ResyncBy, SymbolSync, Symbols, Unsequenced};
use crate::venue::json::{venue_error, LooseText, NumberFault};
use crate::venue::{check_frame_size, Session, SessionOptions, SessionStats};

/// Kraken's book depth when a subscription names none.
pub const DEFAULT_DEPTH: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChannelKind {
    Book { depth: usize },
    Trade,
    Other,
}

/// What a v1 `subscriptionStatus` told about a channelID.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Channel {
    kind: ChannelKind,
    pair: String,
}

pub struct KrakenSession {
    symbols: Symbols,
    /// v1 channelID -> channel, from `subscriptionStatus`.
    channels: HashMap<u64, Channel>,
    /// v2 symbol -> subscribed book depth, from `subscribe` results.
    v2_depths: HashMap<String, usize>,
    levels: Vec<LevelChange>,
    trades: Vec<TradeRow>,
    items: Vec<V2Item>,
    /// Strings of trades and v2 items (symbols, trade ids), kept by range.
    text: String,
    stats: SessionStats,
    options: SessionOptions,
}

impl KrakenSession {
    pub fn new(options: SessionOptions) -> Self {
        KrakenSession {
            symbols: options.symbols_table(),
            channels: HashMap::new(),
            v2_depths: HashMap::new(),
            levels: Vec::with_capacity(512),
            trades: Vec::with_capacity(16),
            items: Vec::with_capacity(4),
            text: String::with_capacity(256),
            stats: SessionStats::default(),
            options,
        }
    }

    fn default_depth(&self) -> usize {
        self.options.depth.unwrap_or(DEFAULT_DEPTH)
    }

    /// `None` for a pair that was not subscribed: the caller drops the frame.
    fn intern(&mut self, name: &str, depth: Option<usize>) -> Option<SymbolId> {
        let id = self
            .symbols
            .intern(name, || SymbolSync::new(ResyncBy::Resubscribe, depth))?;
        if let (Some(depth), Some(sync)) = (depth, self.symbols.sync_mut(id)) {
            sync.set_truncate_to(Some(depth));
        }
        Some(id)
    }

    fn receive_inner(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        self.levels.clear();
        self.trades.clear();
        self.items.clear();
        self.text.clear();
        check_frame_size(frame, self.options.max_frame_bytes)?;
        let mut parsed = Parsed::default();
        let mut fault = NumberFault::default();
        let mut de = serde_json::Deserializer::from_slice(frame);
        let seed = FrameSeed {
            parsed: &mut parsed,
            bufs: Bufs {
                levels: &mut self.levels,
                trades: &mut self.trades,
                items: &mut self.items,
                text: &mut self.text,
                fault: &mut fault,
            },
        };
        if let Err(e) = seed.deserialize(&mut de).and_then(|()| de.end()) {
            let error = match fault.fault {
                Some((field, error)) => FrameError::BadNumber { field, error },
                None => FrameError::Json(e.to_string()),
            };
            return Err(self.undecodable(&parsed, error, out));
        }
        match parsed.shape {
            Shape::V1Data => self.on_v1_data(&parsed.v1, ts_ns, out),
            Shape::Object => self.on_object(&parsed.obj, ts_ns, out),
            Shape::Unknown => Err(FrameError::Invalid("empty frame".into()).into()),
        }
    }

    /// A frame that failed to decode: if it is a book frame of a pair we hold, that pair lost an
    /// update and resyncs; nothing else is touched.
    fn undecodable(
        &mut self,
        parsed: &Parsed<'_>,
        error: FrameError,
        out: &mut Vec<Event>,
    ) -> ReceiveError {
        let pair = match parsed.shape {
            Shape::V1Data => {
                let v1 = &parsed.v1;
                let channel = v1.channel_id.and_then(|c| self.channels.get(&c));
                let is_book = match (v1.name, channel) {
                    (Some(name), _) => name.starts_with("book"),
                    (None, Some(c)) => matches!(c.kind, ChannelKind::Book { .. }),
                    (None, None) => v1.snapshot || v1.update,
                };
                let pair = v1
                    .pair
                    .map(str::to_owned)
                    .or_else(|| channel.map(|c| c.pair.clone()));
                if is_book {
                    if let Some(id) = pair.as_deref().and_then(|p| self.symbols.id(p)) {
                        return self.symbols.bad_frame(id, error, out);
                    }
                }
                pair
            }
            Shape::Object if parsed.obj.channel == Some("book") => {
                // The item that failed may not have kept its symbol: every item read so far is
                // of this frame; a v2 book frame names one symbol in practice.
                let symbol = self
                    .items
                    .iter()
                    .find_map(|it| it.symbol.clone())
                    .map(|r| self.text[r].to_owned());
                if let Some(id) = symbol.as_deref().and_then(|s| self.symbols.id(s)) {
                    return self.symbols.bad_frame(id, error, out);
                }
                symbol
            }
            _ => None,
        };
        ReceiveError::new(pair, error)
    }

    fn on_v1_data(
        &mut self,
        v1: &V1<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let channel = v1.channel_id.and_then(|c| self.channels.get(&c));
        let kind = match (v1.name, channel) {
            (Some(name), _) if name.starts_with("book") => ChannelKind::Book {
                depth: match channel {
                    Some(Channel {
                        kind: ChannelKind::Book { depth },
                        ..
                    }) => *depth,
                    _ => depth_from_name(name).unwrap_or(self.default_depth()),
                },
            },
            (Some("trade"), _) => ChannelKind::Trade,
            (Some(_), _) => ChannelKind::Other,
            (None, Some(c)) => c.kind,
            (None, None) => {
                return Err(FrameError::Invalid(format!(
                    "channel {:?} was never announced and the frame does not name it",
                    v1.channel_id
                ))
                .into())
            }
        };
        // The frame names its pair (borrowed, no copy); only a frame without one falls back to
        // the pair the subscription announced.
        let pair: Cow<'_, str> = match (v1.pair, channel) {
            (Some(pair), _) => Cow::Borrowed(pair),
            (None, Some(c)) => Cow::Owned(c.pair.clone()),
            (None, None) => return Err(FrameError::MissingField("pair").into()),
        };
        match kind {
            ChannelKind::Book { depth } => self.on_v1_book(v1, &pair, depth, ts_ns, out),
            ChannelKind::Trade => self.on_v1_trades(v1, &pair, ts_ns, out),
            ChannelKind::Other => {
                self.stats.ignored += 1;
                Ok(())
            }
        }
    }

    fn on_v1_book(
        &mut self,
        v1: &V1<'_>,
        pair: &str,
        depth: usize,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let Some(id) = self.intern(pair, Some(depth)) else {
            return Ok(());
        };
        let shape_error = if v1.not_book || v1.lists > 0 || v1.dicts == 0 {
            Some("book frame payload is not a book")
        } else if v1.snapshot && v1.update {
            Some("book frame mixes snapshot and update keys")
        } else if !v1.snapshot && !v1.update {
            Some("book frame has no levels")
        } else {
            None
        };
        if let Some(msg) = shape_error {
            return Err(self
                .symbols
                .bad_frame(id, FrameError::Invalid(msg.into()), out));
        }
        let checksum = match v1.checksum.map(parse_crc) {
            Some(Ok(c)) => Some(c),
            Some(Err(e)) => return Err(self.symbols.bad_frame(id, e, out)),
            None => None,
        };
        self.apply_book(
            id,
            v1.snapshot,
            checksum,
            v1.max_level_ts,
            ts_ns,
            0..self.levels.len(),
            out,
        )
    }

    /// Applies a snapshot or an update of one symbol, then checks Kraken's checksum if given.
    #[allow(clippy::too_many_arguments)]
    fn apply_book(
        &mut self,
        id: SymbolId,
        snapshot: bool,
        checksum: Option<u32>,
        exchange_ts_ns: u64,
        ts_ns: u64,
        levels: Range<usize>,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let levels = &self.levels[levels];
        let sync = self.symbols.sync_mut(id).expect("interned by the caller");
        let mark = out.len();
        let result = if snapshot {
            sync.on_snapshot(id, &Unsequenced, None, levels, exchange_ts_ns, ts_ns, out)
                .map(|()| published(&out[mark..], id))
        } else {
            sync.on_unsequenced_delta(id, levels, exchange_ts_ns, ts_ns, out)
        };
        let applied = match result {
            Ok(applied) => applied,
            Err(e) => return Err(self.symbols.bad_frame(id, e.into(), out)),
        };
        if let (true, Some(expected)) = (applied, checksum) {
            let computed = kraken_checksum(sync.book.asks(), sync.book.bids());
            if !sync.on_checksum(id, expected, computed, out) {
                retract_publication(out, mark, id);
            }
        }
        Ok(())
    }

    fn on_v1_trades(
        &mut self,
        v1: &V1<'_>,
        pair: &str,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        if v1.not_trade || v1.dicts > 0 || v1.lists != 1 {
            return Err(ReceiveError::new(
                Some(pair.to_owned()),
                FrameError::Invalid("trade frame payload is not a list of trades".into()),
            ));
        }
        let Some(symbol) = self.intern(pair, None) else {
            return Ok(());
        };
        for row in &self.trades {
            out.push(Event::Trade(Trade {
                symbol,
                price: row.price,
                size: row.size,
                side: row.side,
                trade_id: row
                    .trade_id
                    .clone()
                    .map(|r| self.text[r].to_owned())
                    .unwrap_or_default(),
                exchange_ts_ns: row.ts_ns,
                ts_ns,
                is_snapshot: false,
            }));
        }
        Ok(())
    }

    fn on_object(
        &mut self,
        obj: &Obj<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        if let Some(event) = obj.event {
            if event == "error" || (event == "subscriptionStatus" && obj.status == Some("error")) {
                // A refused request: reported, and no book changes.
                return Err(venue_error(obj.pair, None, obj.error.as_deref()));
            }
            if event == "subscriptionStatus" && self.on_subscription_status(obj) {
                return Ok(());
            }
            // heartbeat, systemStatus, pong, and statuses we do not use.
            self.stats.ignored += 1;
            return Ok(());
        }
        if let Some(method) = obj.method {
            if obj.success == Some(false) {
                let message = match obj.error.as_deref() {
                    Some(error) => format!("{method}: {error}"),
                    None => format!("{method} failed"),
                };
                let symbol = obj.symbol.or(obj.result_symbol);
                return Err(venue_error(symbol, None, Some(&message)));
            }
            if method == "subscribe"
                && obj.success == Some(true)
                && obj.result_channel == Some("book")
            {
                if let Some(symbol) = obj.result_symbol {
                    let depth = obj
                        .result_depth
                        .map(|d| d as usize)
                        .unwrap_or(DEFAULT_DEPTH);
                    self.v2_depths.insert(symbol.to_owned(), depth);
                    self.intern(symbol, Some(depth));
                    return Ok(());
                }
            }
            // pong, unsubscribe.
            self.stats.ignored += 1;
            return Ok(());
        }
        match obj.channel {
            Some("book") => self.on_v2_book(obj, ts_ns, out),
            Some("trade") => self.on_v2_trades(ts_ns, out),
            _ => {
                // heartbeat, status, ticker, ohlc, instrument, anything unknown.
                self.stats.ignored += 1;
                Ok(())
            }
        }
    }

    /// Maps a v1 channelID to its pair and depth; returns whether the status was used.
    fn on_subscription_status(&mut self, obj: &Obj<'_>) -> bool {
        let Some(channel_id) = obj.channel_id else {
            return false;
        };
        match obj.status {
            Some("subscribed") => {
                let Some(pair) = obj.pair else {
                    return false;
                };
                let name = obj.sub_name.or(obj.channel_name).unwrap_or("");
                let kind = if name.starts_with("book") {
                    let depth = obj
                        .sub_depth
                        .map(|d| d as usize)
                        .or_else(|| obj.channel_name.and_then(depth_from_name))
                        .unwrap_or(DEFAULT_DEPTH);
                    self.intern(pair, Some(depth));
                    ChannelKind::Book { depth }
                } else if name == "trade" {
                    ChannelKind::Trade
                } else {
                    ChannelKind::Other
                };
                self.channels.insert(
                    channel_id,
                    Channel {
                        kind,
                        pair: pair.to_owned(),
                    },
                );
                true
            }
            Some("unsubscribed") => self.channels.remove(&channel_id).is_some(),
            _ => false,
        }
    }

    fn on_v2_book(
        &mut self,
        obj: &Obj<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let snapshot = match obj.kind {
            Some("snapshot") => Some(true),
            Some("update") => Some(false),
            _ => None,
        };
        for i in 0..self.items.len() {
            let item = self.items[i].clone();
            let symbol_range = item
                .symbol
                .clone()
                .ok_or(FrameError::MissingField("data.symbol"))?;
            let depth = self
                .v2_depths
                .get(&self.text[symbol_range.clone()])
                .copied()
                .unwrap_or(self.default_depth());
            let Some(id) = self.symbols.intern(&self.text[symbol_range], || {
                SymbolSync::new(ResyncBy::Resubscribe, None)
            }) else {
                continue;
            };
            if let Some(sync) = self.symbols.sync_mut(id) {
                sync.set_truncate_to(Some(depth));
            }
            let Some(snapshot) = snapshot else {
                let e = FrameError::Invalid(format!("unknown book type {:?}", obj.kind));
                return Err(self.symbols.bad_frame(id, e, out));
            };
            if item.not_book {
                let e = FrameError::Invalid("book levels are not {price, qty} objects".into());
                return Err(self.symbols.bad_frame(id, e, out));
            }
            let checksum = match item.checksum.map(u32::try_from) {
                Some(Ok(c)) => Some(c),
                Some(Err(_)) => {
                    let e = FrameError::Invalid("checksum is not a 32-bit value".into());
                    return Err(self.symbols.bad_frame(id, e, out));
                }
                None => None,
            };
            self.apply_book(
                id,
                snapshot,
                checksum,
                item.ts_ns.unwrap_or(0),
                ts_ns,
                item.levels.clone(),
                out,
            )?;
        }
        Ok(())
    }

    fn on_v2_trades(&mut self, ts_ns: u64, out: &mut Vec<Event>) -> Result<(), ReceiveError> {
        for i in 0..self.items.len() {
            let item = self.items[i].clone();
            let symbol_range = item.symbol.ok_or(FrameError::MissingField("data.symbol"))?;
            let price = item.price.ok_or(FrameError::MissingField("data.price"))?;
            let size = item.qty.ok_or(FrameError::MissingField("data.qty"))?;
            let trade_id = item
                .trade_id
                .map(|r| self.text[r].to_owned())
                .unwrap_or_default();
            let Some(symbol) = self.symbols.intern(&self.text[symbol_range], || {
                SymbolSync::new(ResyncBy::Resubscribe, None)
            }) else {
                continue;
            };
            out.push(Event::Trade(Trade {
                symbol,
                price,
                size,
                side: item.side,
                trade_id,
                exchange_ts_ns: item.ts_ns.unwrap_or(0),
                ts_ns,
                is_snapshot: false,
            }));
        }
        Ok(())
    }
}

impl Session for KrakenSession {
    fn venue(&self) -> &'static str {
        "kraken"
    }

    fn receive_frame(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        self.receive_inner(frame, ts_ns, out)
    }

    /// The v1 `channelID` of the pair's book (v2 has no channel ids). Should a pair hold two
    /// book channels, the newest (Kraken numbers channels upwards) is given.
    fn book_channel(&self, symbol: &str) -> Option<u64> {
        self.channels
            .iter()
            .filter(|(_, c)| matches!(c.kind, ChannelKind::Book { .. }) && c.pair == symbol)
            .map(|(id, _)| *id)
            .max()
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

/// Whether `events` announce a new book for `id`.
fn published(events: &[Event], id: SymbolId) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::BookUpdated { symbol, .. } if *symbol == id))
}

/// A book that failed the venue's checksum was never in sync: take back its announcement.
fn retract_publication(out: &mut Vec<Event>, from: usize, id: SymbolId) {
    let mut i = from;
    while i < out.len() {
        let ours = matches!(
            &out[i],
            Event::BookUpdated { symbol, .. } | Event::Resynced { symbol, .. } if *symbol == id
        );
        if ours {
            out.remove(i);
        } else {
            i += 1;
        }
    }
}

/// `book-1000` -> 1000.
fn depth_from_name(name: &str) -> Option<usize> {
    name.strip_prefix("book-")?.parse().ok()
}

fn parse_crc(text: &str) -> Result<u32, FrameError> {
    text.parse()
        .map_err(|_| FrameError::Invalid(format!("checksum {text:?} is not a 32-bit value")))
}

/// Seconds since the epoch with a fraction (`"1618678142.557535"`) to nanoseconds; digits past
/// the ninth decimal are dropped. No allocation.
pub fn seconds_to_ns(text: &str) -> Option<u64> {
    let (secs, frac) = match text.split_once('.') {
        Some((s, f)) => (s, f),
        None => (text, ""),
    };
    if secs.is_empty() || !secs.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = secs.parse().ok()?;
    let mut nanos: u64 = 0;
    for i in 0..9 {
        let digit = frac.as_bytes().get(i).map_or(0, |c| (c - b'0') as u64);
        nanos = nanos * 10 + digit;
    }
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// ISO-8601 UTC (`"2023-10-06T17:35:55.440295Z"`, fraction optional) to Unix nanoseconds.
/// No allocation; years before 1970 are refused.
pub fn iso8601_to_ns(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || (b[10] != b'T' && b[10] != b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' || *b.last()? != b'Z' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u64> {
        let mut v = 0u64;
        for &c in &b[from..to] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + (c - b'0') as u64;
        }
        Some(v)
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut nanos = 0u64;
    let rest = &b[19..b.len() - 1];
    if !rest.is_empty() {
        if rest[0] != b'.' || rest.len() == 1 {
            return None;
        }
        let digits = &rest[1..];
        for i in 0..9 {
            let d = match digits.get(i) {
                Some(c) if c.is_ascii_digit() => (c - b'0') as u64,
                Some(_) => return None,
                None => 0,
            };
            nanos = nanos * 10 + d;
        }
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
    }
    let days = days_from_civil(year as i64, month as i64, day as i64);
    if days < 0 {
        return None;
    }
    let secs = days as u64 * 86_400 + hour * 3_600 + minute * 60 + second;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// ---------------------------------------------------------------------------------------------
// One-pass decoding.

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Shape {
    #[default]
    Unknown,
    V1Data,
    Object,
}

#[derive(Debug, Default)]
struct Parsed<'a> {
    shape: Shape,
    v1: V1<'a>,
    obj: Obj<'a>,
}

/// A v1 data array, read without knowing its channel (its name comes last): payloads are
/// classified by shape and checked against the channel once it is known.
#[derive(Debug, Default)]
struct V1<'a> {
    channel_id: Option<u64>,
    name: Option<&'a str>,
    pair: Option<&'a str>,
    dicts: u32,
    lists: u32,
    snapshot: bool,
    update: bool,
    checksum: Option<&'a str>,
    /// A dict payload held something a book frame never has (a ticker, for instance).
    not_book: bool,
    /// A list payload held something that is not a trade row (spread, ohlc).
    not_trade: bool,
    max_level_ts: u64,
    republished: u32,
}

/// A v1 event or a v2 message: the fields we use, in one pass.
#[derive(Debug, Default)]
struct Obj<'a> {
    event: Option<&'a str>,
    channel_id: Option<u64>,
    channel_name: Option<&'a str>,
    pair: Option<&'a str>,
    status: Option<&'a str>,
    sub_name: Option<&'a str>,
    sub_depth: Option<u64>,
    channel: Option<&'a str>,
    kind: Option<&'a str>,
    method: Option<&'a str>,
    success: Option<bool>,
    result_channel: Option<&'a str>,
    result_symbol: Option<&'a str>,
    result_depth: Option<u64>,
    /// v2 answers name their symbol at the top level.
    symbol: Option<&'a str>,
    /// v1 `errorMessage`, v2 `error`.
    error: Option<Cow<'a, str>>,
}

/// A v1 trade row, or a v2 trade item's essentials.
#[derive(Debug, Clone)]
struct TradeRow {
    price: Decimal,
    size: Decimal,
    side: Option<TradeSide>,
    ts_ns: u64,
    trade_id: Option<Range<usize>>,
}

/// One element of a v2 `data[]`.
#[derive(Debug, Default, Clone)]
struct V2Item {
    levels: Range<usize>,
    not_book: bool,
    symbol: Option<Range<usize>>,
    checksum: Option<u64>,
    ts_ns: Option<u64>,
    price: Option<Decimal>,
    qty: Option<Decimal>,
    side: Option<TradeSide>,
    trade_id: Option<Range<usize>>,
}

struct Bufs<'f> {
    levels: &'f mut Vec<LevelChange>,
    trades: &'f mut Vec<TradeRow>,
    items: &'f mut Vec<V2Item>,
    text: &'f mut String,
    fault: &'f mut NumberFault,
}

impl Bufs<'_> {
    fn reborrow(&mut self) -> Bufs<'_> {
        Bufs {
            levels: &mut *self.levels,
            trades: &mut *self.trades,
            items: &mut *self.items,
            text: &mut *self.text,
            fault: &mut *self.fault,
        }
    }

    fn push_text(&mut self, text: &str) -> Range<usize> {
        let start = self.text.len();
        self.text.push_str(text);
        start..self.text.len()
    }
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// The scalar visits of a tolerant visitor: each sets the flag `$flag` (an expression over
/// `$s`, the visitor) and accepts.
macro_rules! scalars_flag {
    ($s:ident => $flag:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
            let $s = self;
            $flag = true;
            Ok(())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
            let $s = self;
            $flag = true;
            Ok(())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
            let $s = self;
            $flag = true;
            Ok(())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
            let $s = self;
            $flag = true;
            Ok(())
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
            let $s = self;
            $flag = true;
            Ok(())
        }
        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            let $s = self;
            $flag = true;
            Ok(())
        }
    };
}

/// The scalar visits of a visitor that accepts and ignores any scalar.
macro_rules! scalars_ignore {
    () => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            Ok(())
        }
    };
}

struct FrameSeed<'f, 'a> {
    parsed: &'f mut Parsed<'a>,
    bufs: Bufs<'f>,
}

impl<'de> DeserializeSeed<'de> for FrameSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FrameSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Kraken message (array or object)")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.parsed.shape = Shape::V1Data;
        let v1 = &mut self.parsed.v1;
        let channel_id: u64 = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &"[channelID, payload.., name, pair]"))?;
        v1.channel_id = Some(channel_id);
        while seq
            .next_element_seed(V1ElementSeed {
                v1: &mut *v1,
                bufs: self.bufs.reborrow(),
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.parsed.shape = Shape::Object;
        let o = &mut self.parsed.obj;
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "event" => o.event = map.next_value_seed(LooseStr)?,
                "channelID" => o.channel_id = map.next_value_seed(LooseU64)?,
                "channelName" => o.channel_name = map.next_value_seed(LooseStr)?,
                "pair" => o.pair = map.next_value_seed(LooseStr)?,
                "status" => o.status = map.next_value_seed(LooseStr)?,
                "subscription" | "result" => map.next_value_seed(SubSeed {
                    obj: &mut *o,
                    result: key == "result",
                })?,
                "channel" => o.channel = map.next_value_seed(LooseStr)?,
                "type" => o.kind = map.next_value_seed(LooseStr)?,
                "method" => o.method = map.next_value_seed(LooseStr)?,
                "success" => o.success = map.next_value()?,
                "symbol" => o.symbol = map.next_value_seed(LooseStr)?,
                "errorMessage" | "error" => o.error = map.next_value_seed(LooseText)?,
                "data" => map.next_value_seed(V2DataSeed {
                    bufs: self.bufs.reborrow(),
                })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// v1 `subscription` ({name, depth}) or v2 `result` ({channel, symbol, depth}).
struct SubSeed<'f, 'a> {
    obj: &'f mut Obj<'a>,
    result: bool,
}

impl<'de> DeserializeSeed<'de> for SubSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SubSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a subscription object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let o = self.obj;
        while let Some(key) = map.next_key::<&'de str>()? {
            match (self.result, key) {
                (false, "name") => o.sub_name = map.next_value_seed(LooseStr)?,
                (false, "depth") => o.sub_depth = map.next_value_seed(LooseU64)?,
                (true, "channel") => o.result_channel = map.next_value_seed(LooseStr)?,
                (true, "symbol") => o.result_symbol = map.next_value_seed(LooseStr)?,
                (true, "depth") => o.result_depth = map.next_value_seed(LooseU64)?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        drain_seq(seq)
    }

    scalars_ignore!();
}

/// One element after the channelID of a v1 array: a payload dict, a payload list, or one of
/// the trailing strings (channel name, then pair).
struct V1ElementSeed<'f, 'a> {
    v1: &'f mut V1<'a>,
    bufs: Bufs<'f>,
}

impl<'de> DeserializeSeed<'de> for V1ElementSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for V1ElementSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a payload object, a payload list, a channel name or a pair")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<(), E> {
        if self.v1.name.is_none() {
            self.v1.name = Some(v);
        } else if self.v1.pair.is_none() {
            self.v1.pair = Some(v);
        } else {
            return Err(E::custom("more than two trailing strings"));
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let v1 = self.v1;
        v1.dicts += 1;
        while let Some(key) = map.next_key::<&'de str>()? {
            let side = match key {
                "as" | "a" => Some(Side::Ask),
                "bs" | "b" => Some(Side::Bid),
                _ => None,
            };
            if let Some(side) = side {
                if key.len() == 2 {
                    v1.snapshot = true;
                } else {
                    v1.update = true;
                }
                map.next_value_seed(V1SideSeed {
                    side,
                    v1: &mut *v1,
                    bufs: self.bufs.reborrow(),
                })?;
            } else if key == "c" {
                match map.next_value_seed(LooseStr)? {
                    Some(c) => v1.checksum = Some(c),
                    None => v1.not_book = true,
                }
            } else {
                v1.not_book = true;
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let v1 = self.v1;
        v1.lists += 1;
        while seq
            .next_element_seed(V1TradeSeed {
                v1: &mut *v1,
                bufs: self.bufs.reborrow(),
            })?
            .is_some()
        {}
        Ok(())
    }
}

/// The levels of one side of a v1 book payload; anything but a list of level lists marks the
/// payload as not a book.
struct V1SideSeed<'f, 'v, 'a> {
    side: Side,
    v1: &'v mut V1<'a>,
    bufs: Bufs<'f>,
}

impl<'de> DeserializeSeed<'de> for V1SideSeed<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for V1SideSeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of [price, volume, timestamp] levels")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(V1LevelSeed {
                side: self.side,
                v1: &mut *self.v1,
                bufs: self.bufs.reborrow(),
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        self.v1.not_book = true;
        drain_map(map)
    }

    scalars_flag!(s => s.v1.not_book);
}

/// `[price, volume, timestamp]` or `[price, volume, timestamp, "r"]`.
struct V1LevelSeed<'f, 'v, 'a> {
    side: Side,
    v1: &'v mut V1<'a>,
    bufs: Bufs<'f>,
}

impl<'de> DeserializeSeed<'de> for V1LevelSeed<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for V1LevelSeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a [price, volume, timestamp] level")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let price: &str = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let volume: &str = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        let time: &str = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(2, &self))?;
        if let Some(flag) = seq.next_element_seed(LooseStr)? {
            if flag == Some("r") {
                self.v1.republished += 1;
            }
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        let price = self.bufs.fault.parse("price", price)?;
        let volume = self.bufs.fault.parse("volume", volume)?;
        let ts = seconds_to_ns(time)
            .ok_or_else(|| de::Error::custom(format_args!("bad level timestamp {time:?}")))?;
        self.v1.max_level_ts = self.v1.max_level_ts.max(ts);
        self.bufs.levels.push((self.side, price, volume));
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        self.v1.not_book = true;
        drain_map(map)
    }

    scalars_flag!(s => s.v1.not_book);
}

/// `[price, volume, time, side, orderType, misc, tradeId?]` of a v1 trade payload; anything
/// but a list marks the payload as not trades (spread and ohlc payloads are flat lists).
struct V1TradeSeed<'f, 'v, 'a> {
    v1: &'v mut V1<'a>,
    bufs: Bufs<'f>,
}

impl<'de> DeserializeSeed<'de> for V1TradeSeed<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for V1TradeSeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a trade row")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let price: &str = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let volume: &str = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        let time: &str = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(2, &self))?;
        let side: &str = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(3, &self))?;
        // orderType, misc.
        for _ in 0..2 {
            seq.next_element::<IgnoredAny>()?;
        }
        let trade_id = seq
            .next_element_seed(IdSeed {
                bufs: self.bufs.reborrow(),
            })?
            .flatten();
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        let price = self.bufs.fault.parse("price", price)?;
        let size = self.bufs.fault.parse("volume", volume)?;
        let ts_ns = seconds_to_ns(time)
            .ok_or_else(|| de::Error::custom(format_args!("bad trade time {time:?}")))?;
        let side = match side {
            "b" => TradeSide::Buy,
            "s" => TradeSide::Sell,
            other => return Err(de::Error::unknown_variant(other, &["b", "s"])),
        };
        self.bufs.trades.push(TradeRow {
            price,
            size,
            side: Some(side),
            ts_ns,
            trade_id,
        });
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        self.v1.not_trade = true;
        drain_map(map)
    }

    scalars_flag!(s => s.v1.not_trade);
}

/// A trade id written as a number or a string, copied into the text buffer.
struct IdSeed<'f> {
    bufs: Bufs<'f>,
}

impl<'de> DeserializeSeed<'de> for IdSeed<'_> {
    type Value = Option<Range<usize>>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for IdSeed<'_> {
    type Value = Option<Range<usize>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a trade id")
    }

    fn visit_u64<E: de::Error>(mut self, v: u64) -> Result<Self::Value, E> {
        let mut buf = [0u8; 20];
        let mut pos = buf.len();
        let mut rest = v;
        loop {
            pos -= 1;
            buf[pos] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        let text = std::str::from_utf8(&buf[pos..]).unwrap_or("");
        Ok(Some(self.bufs.push_text(text)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        let v = u64::try_from(v).map_err(|_| E::custom("negative trade id"))?;
        self.visit_u64(v)
    }

    fn visit_str<E: de::Error>(mut self, v: &str) -> Result<Self::Value, E> {
        Ok((!v.is_empty()).then(|| self.bufs.push_text(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

struct V2DataSeed<'f> {
    bufs: Bufs<'f>,
}

impl<'de> DeserializeSeed<'de> for V2DataSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for V2DataSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a v2 `data` list")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        loop {
            let start = self.bufs.levels.len();
            let mut item = V2Item {
                levels: start..start,
                ..V2Item::default()
            };
            let more = seq.next_element_seed(V2ItemSeed {
                item: &mut item,
                bufs: self.bufs.reborrow(),
            })?;
            if more.is_none() {
                return Ok(());
            }
            item.levels.end = self.bufs.levels.len();
            self.bufs.items.push(item);
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        drain_map(map)
    }

    scalars_ignore!();
}

struct V2ItemSeed<'f, 'i> {
    item: &'i mut V2Item,
    bufs: Bufs<'f>,
}

impl<'de> DeserializeSeed<'de> for V2ItemSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for V2ItemSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a v2 data object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let item = &mut *self.item;
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "symbol" => {
                    let symbol: &str = map.next_value()?;
                    item.symbol = Some(self.bufs.push_text(symbol));
                }
                "bids" | "asks" => map.next_value_seed(V2SideSeed {
                    side: if key == "asks" { Side::Ask } else { Side::Bid },
                    not_book: &mut item.not_book,
                    bufs: self.bufs.reborrow(),
                })?,
                "checksum" => item.checksum = map.next_value_seed(LooseU64)?,
                "timestamp" => {
                    let text: &str = map.next_value()?;
                    let ts = iso8601_to_ns(text)
                        .ok_or_else(|| de::Error::custom(format_args!("bad timestamp {text:?}")))?;
                    item.ts_ns = Some(ts);
                }
                "price" => {
                    let raw: &RawValue = map.next_value()?;
                    item.price = Some(self.bufs.fault.parse("price", raw_number(raw))?);
                }
                "qty" => {
                    let raw: &RawValue = map.next_value()?;
                    item.qty = Some(self.bufs.fault.parse("qty", raw_number(raw))?);
                }
                "side" => {
                    item.side = match map.next_value::<&str>()? {
                        "buy" => Some(TradeSide::Buy),
                        "sell" => Some(TradeSide::Sell),
                        other => {
                            return Err(de::Error::unknown_variant(other, &["buy", "sell"]));
                        }
                    }
                }
                "trade_id" => {
                    item.trade_id = map.next_value_seed(IdSeed {
                        bufs: self.bufs.reborrow(),
                    })?
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        drain_seq(seq)
    }

    scalars_ignore!();
}

/// The token text of a JSON number; a quoted number (as Kraken's guide prints them) loses its
/// quotes.
fn raw_number(raw: &RawValue) -> &str {
    let text = raw.get();
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text)
}

/// `[{"price": N, "qty": N}, ...]` of one side of a v2 book item.
struct V2SideSeed<'f, 'n> {
    side: Side,
    not_book: &'n mut bool,
    bufs: Bufs<'f>,
}

impl<'de> DeserializeSeed<'de> for V2SideSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for V2SideSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of {price, qty} levels")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(level) = seq.next_element_seed(V2LevelSeed {
            fault: &mut *self.bufs.fault,
        })? {
            match level {
                Some((price, qty)) => self.bufs.levels.push((self.side, price, qty)),
                None => *self.not_book = true,
            }
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        *self.not_book = true;
        drain_map(map)
    }

    scalars_flag!(s => *s.not_book);
}

/// `{"price": N, "qty": N}`: `None` when the object is not a price level (level3 orders).
struct V2LevelSeed<'f> {
    fault: &'f mut NumberFault,
}

impl<'de> DeserializeSeed<'de> for V2LevelSeed<'_> {
    type Value = Option<(Decimal, Decimal)>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for V2LevelSeed<'_> {
    type Value = Option<(Decimal, Decimal)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a {price, qty} level")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut price = None;
        let mut qty = None;
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "price" => {
                    let raw: &RawValue = map.next_value()?;
                    price = Some(self.fault.parse("price", raw_number(raw))?);
                }
                "qty" => {
                    let raw: &RawValue = map.next_value()?;
                    qty = Some(self.fault.parse("qty", raw_number(raw))?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(price.zip(qty))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq)?;
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// A string when it is one (borrowed from the frame), nothing otherwise.
struct LooseStr;

impl<'de> DeserializeSeed<'de> for LooseStr {
    type Value = Option<&'de str>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LooseStr {
    type Value = Option<&'de str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq)?;
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map)?;
        Ok(None)
    }
}

/// A non-negative integer when it is one, nothing otherwise.
struct LooseU64;

impl<'de> DeserializeSeed<'de> for LooseU64 {
    type Value = Option<u64>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LooseU64 {
    type Value = Option<u64>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(u64::try_from(v).ok())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.parse().ok())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq)?;
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map)?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    //! Frames written from Kraken's websocket v1 and v2 documentation (book, trade,
    //! subscriptionStatus, subscribe results) and its book checksum guides.

    use super::*;
    use crate::book::Level;
    use crate::event::LossReason;
    use crate::sync::SyncState;

    fn session() -> KrakenSession {
        KrakenSession::new(SessionOptions::default())
    }

    fn feed(s: &mut KrakenSession, frame: &str) -> Vec<Event> {
        let mut out = Vec::new();
        s.receive(frame.as_bytes(), 7, &mut out)
            .unwrap_or_else(|e| panic!("{frame}: {e}"));
        out
    }

    fn level(price: &str, qty: &str) -> Level {
        Level {
            price: Decimal::parse(price).unwrap(),
            qty: Decimal::parse(qty).unwrap(),
        }
    }

    fn side_text(s: &KrakenSession, id: SymbolId, side: Side) -> Vec<String> {
        let book = &s.symbols().sync(id).unwrap().book;
        book.levels(side)
            .map(|l| format!("{}:{}", l.price, l.qty))
            .collect()
    }

    /// The checksum Kraken would send for a book holding exactly these levels.
    fn crc(asks: &[(&str, &str)], bids: &[(&str, &str)]) -> u32 {
        kraken_checksum(
            asks.iter().map(|(p, q)| level(p, q)),
            bids.iter().map(|(p, q)| level(p, q)),
        )
    }

    fn v1_levels(levels: &[(&str, &str)]) -> String {
        levels
            .iter()
            .map(|(p, q)| format!(r#"["{p}","{q}","1618678133.383209"]"#))
            .collect::<Vec<_>>()
            .join(",")
    }

    const DOC_ASKS: [(&str, &str); 10] = [
        ("45285.2", "0.00100000"),
        ("45286.4", "1.54571953"),
        ("45286.6", "1.54571109"),
        ("45289.6", "1.54560911"),
        ("45290.2", "0.15890660"),
        ("45291.8", "1.54553491"),
        ("45294.7", "0.04454749"),
        ("45296.1", "0.35380000"),
        ("45297.5", "0.09945542"),
        ("45299.5", "0.18772827"),
    ];
    const DOC_BIDS: [(&str, &str); 10] = [
        ("45283.5", "0.10000000"),
        ("45283.4", "1.54582015"),
        ("45282.1", "0.10000000"),
        ("45281.0", "0.10000000"),
        ("45280.3", "1.54592586"),
        ("45279.0", "0.07990000"),
        ("45277.6", "0.03310103"),
        ("45277.5", "0.30000000"),
        ("45277.3", "1.54602737"),
        ("45276.6", "0.15445238"),
    ];

    /// v2 levels as JSON numbers, the way the v2 feed writes them (full precision).
    fn v2_levels(levels: &[(&str, &str)]) -> String {
        levels
            .iter()
            .map(|(p, q)| format!(r#"{{"price":{p},"qty":{q}}}"#))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn v2_book(kind: &str, bids: &[(&str, &str)], asks: &[(&str, &str)], checksum: u32) -> String {
        format!(
            r#"{{"channel":"book","type":"{kind}","data":[{{"symbol":"BTC/USD","bids":[{}],"asks":[{}],"checksum":{checksum},"timestamp":"2023-10-06T17:35:55.440295Z"}}]}}"#,
            v2_levels(bids),
            v2_levels(asks)
        )
    }

    const V2_SUBSCRIBED: &str = r#"{"method":"subscribe","result":{"channel":"book","depth":10,"snapshot":true,"symbol":"BTC/USD"},"success":true,"time_in":"2023-10-06T17:35:55.000000Z","time_out":"2023-10-06T17:35:55.000100Z"}"#;

    #[test]
    fn v2_documented_checksum_example() {
        // The example book of Kraken's v2 checksum guide, whose checksum is 3310070434.
        let mut s = session();
        assert!(feed(&mut s, V2_SUBSCRIBED).is_empty());
        let out = feed(
            &mut s,
            &v2_book("snapshot", &DOC_BIDS, &DOC_ASKS, 3_310_070_434),
        );
        assert_eq!(
            out,
            vec![Event::BookUpdated {
                symbol: 0,
                seq: None,
                exchange_ts_ns: 1_696_613_755_440_295_000,
                ts_ns: 7
            }]
        );
        let sync = s.symbols().sync(0).unwrap();
        assert_eq!(sync.counters.checksums_checked, 1);
        assert_eq!(sync.counters.checksum_mismatches, 0);
        // The raw number tokens kept their digits: "45281.0" and "0.10000000".
        assert!(side_text(&s, 0, Side::Bid).contains(&"45281.0:0.10000000".to_owned()));
        // The guide prints its example with quoted numbers: read the same.
        let quoted = |levels: &[(&str, &str)]| {
            levels
                .iter()
                .map(|(p, q)| format!(r#"{{"price":"{p}","qty":"{q}"}}"#))
                .collect::<Vec<_>>()
                .join(",")
        };
        let frame = format!(
            r#"{{"channel":"book","type":"snapshot","data":[{{"symbol":"BTC/USD","bids":[{}],"asks":[{}],"checksum":3310070434,"timestamp":"2023-10-06T17:35:55.440295Z"}}]}}"#,
            quoted(&DOC_BIDS),
            quoted(&DOC_ASKS)
        );
        feed(&mut s, &frame);
        let sync = s.symbols().sync(0).unwrap();
        assert_eq!(sync.counters.checksums_checked, 2);
        assert_eq!(sync.counters.checksum_mismatches, 0);
    }

    #[test]
    fn v2_snapshot_and_update_frames() {
        let mut s = session();
        feed(&mut s, V2_SUBSCRIBED);
        feed(
            &mut s,
            &v2_book("snapshot", &DOC_BIDS, &DOC_ASKS, 3_310_070_434),
        );
        // The best bid goes (qty 0), a better ask arrives: 11 asks, truncated to the subscribed
        // depth of 10 before the checksum.
        let mut asks = vec![("45285.0", "0.50000000")];
        asks.extend_from_slice(&DOC_ASKS[..9]);
        let bids = &DOC_BIDS[1..];
        let update = v2_book(
            "update",
            &[("45283.5", "0.00000000")],
            &[("45285.0", "0.50000000")],
            crc(&asks, bids),
        );
        let out = feed(&mut s, &update);
        assert!(matches!(out[..], [Event::BookUpdated { .. }]), "{out:?}");
        let sync = s.symbols().sync(0).unwrap();
        assert_eq!(sync.counters.checksums_checked, 2);
        assert_eq!(sync.counters.checksum_mismatches, 0);
        assert_eq!(sync.book.len(Side::Ask), 10);
        assert_eq!(sync.book.len(Side::Bid), 9);
        assert_eq!(side_text(&s, 0, Side::Ask)[0], "45285.0:0.50000000");
        // A wrong checksum on an update: mismatch, book dropped, resubscribe.
        let update = v2_book("update", &[("45283.4", "2.0")], &[], 12345);
        let out = feed(&mut s, &update);
        assert!(matches!(
            out[0],
            Event::ChecksumMismatch {
                symbol: 0,
                expected: 12345,
                ..
            }
        ));
        assert!(matches!(
            out[1],
            Event::SyncLost {
                symbol: 0,
                reason: LossReason::Checksum { .. }
            }
        ));
        assert_eq!(out[2], Event::NeedResubscribe { symbol: 0 });
        assert_eq!(out.len(), 3);
        assert_eq!(
            s.symbols().sync(0).unwrap().state(),
            SyncState::AwaitingSnapshot
        );
        // A wrong checksum on a snapshot is caught too (v2 checks snapshots).
        let out = feed(&mut s, &v2_book("snapshot", &DOC_BIDS, &DOC_ASKS, 1));
        assert!(matches!(out[0], Event::ChecksumMismatch { .. }));
        assert!(!out
            .iter()
            .any(|e| matches!(e, Event::BookUpdated { .. } | Event::Resynced { .. })));
        // And the good one resyncs.
        let out = feed(
            &mut s,
            &v2_book("snapshot", &DOC_BIDS, &DOC_ASKS, 3_310_070_434),
        );
        assert_eq!(
            out[0],
            Event::Resynced {
                symbol: 0,
                seq: None
            }
        );
    }

    /// `subscriptionStatus` for a depth-10 book of XBT/USD on channel 42, then its snapshot:
    /// asks 101..110, bids 99..90.
    type Levels = Vec<(String, String)>;

    fn v1_depth10() -> (KrakenSession, Levels, Levels) {
        let mut s = session();
        let status = r#"{"channelID":42,"channelName":"book-10","event":"subscriptionStatus","pair":"XBT/USD","status":"subscribed","subscription":{"depth":10,"name":"book"}}"#;
        assert!(feed(&mut s, status).is_empty());
        let asks: Vec<(String, String)> = (101..=110)
            .map(|p| (format!("{p}.0"), "1.00000000".to_owned()))
            .collect();
        let bids: Vec<(String, String)> = (90..=99)
            .rev()
            .map(|p| (format!("{p}.0"), "2.00000000".to_owned()))
            .collect();
        let snapshot = format!(
            r#"[42,{{"as":[{}],"bs":[{}]}},"book-10","XBT/USD"]"#,
            v1_levels(&refs(&asks)),
            v1_levels(&refs(&bids))
        );
        let out = feed(&mut s, &snapshot);
        assert!(matches!(out[..], [Event::BookUpdated { .. }]));
        (s, asks, bids)
    }

    fn refs(v: &[(String, String)]) -> Vec<(&str, &str)> {
        v.iter().map(|(p, q)| (p.as_str(), q.as_str())).collect()
    }

    #[test]
    fn v1_truncates_to_subscribed_depth() {
        let (mut s, asks, bids) = v1_depth10();
        // A better bid: 11 bids, the worst (90.0) must go; Kraken sends no delete for it.
        let mut expect_bids = vec![("99.5".to_owned(), "1.00000000".to_owned())];
        expect_bids.extend_from_slice(&bids[..9]);
        let c = crc(&refs(&asks), &refs(&expect_bids));
        let update = format!(
            r#"[42,{{"b":[["99.5","1.00000000","1618678133.383209"]],"c":"{c}"}},"book-10","XBT/USD"]"#
        );
        feed(&mut s, &update);
        assert_eq!(s.symbols().sync(0).unwrap().book.len(Side::Bid), 10);
        assert_eq!(
            side_text(&s, 0, Side::Bid).last().unwrap(),
            "91.0:2.00000000"
        );
        // Deleting 99.5 leaves 9 bids: had 90.0 been kept, it would now be in the top ten and
        // the venue's checksum would not match.
        let c = crc(&refs(&asks), &refs(&bids[..9]));
        let update = format!(
            r#"[42,{{"b":[["99.5","0.00000000","1618678134.000001"]],"c":"{c}"}},"book-10","XBT/USD"]"#
        );
        let out = feed(&mut s, &update);
        assert!(matches!(
            out[..],
            [Event::BookUpdated {
                exchange_ts_ns: 1_618_678_134_000_001_000,
                ts_ns: 7,
                ..
            }]
        ));
        let counters = s.symbols().sync(0).unwrap().counters;
        assert_eq!(
            (counters.checksums_checked, counters.checksum_mismatches),
            (2, 0)
        );
    }

    #[test]
    fn v1_republished_level_refills_the_depth() {
        let (mut s, asks, bids) = v1_depth10();
        // The best ask is taken out; Kraken republishes the level that comes back inside the
        // depth-10 window with the "r" flag, in an update with both sides in separate dicts.
        let mut expect_asks = asks[1..].to_vec();
        expect_asks.push(("111.0".to_owned(), "3.00000000".to_owned()));
        let mut expect_bids = bids.clone();
        expect_bids[0].1 = "2.50000000".to_owned();
        let c = crc(&refs(&expect_asks), &refs(&expect_bids));
        let update = format!(
            r#"[42,{{"a":[["101.0","0.00000000","1618678135.000000"],["111.0","3.00000000","1618678120.000000","r"]]}},{{"b":[["99.0","2.50000000","1618678135.000002"]],"c":"{c}"}},"book-10","XBT/USD"]"#
        );
        let out = feed(&mut s, &update);
        assert!(matches!(out[..], [Event::BookUpdated { .. }]), "{out:?}");
        assert_eq!(
            side_text(&s, 0, Side::Ask).last().unwrap(),
            "111.0:3.00000000"
        );
        assert_eq!(s.symbols().sync(0).unwrap().counters.checksum_mismatches, 0);
        // A republish of a level we already hold just restates it.
        let c = crc(&refs(&expect_asks), &refs(&expect_bids));
        let update = format!(
            r#"[42,{{"a":[["111.0","3.00000000","1618678120.000000","r"]],"c":"{c}"}},"book-10","XBT/USD"]"#
        );
        feed(&mut s, &update);
        assert_eq!(s.symbols().sync(0).unwrap().counters.checksum_mismatches, 0);
        assert_eq!(s.symbols().sync(0).unwrap().book.len(Side::Ask), 10);
    }

    #[test]
    fn v1_checksum_mismatch_resubscribes_only_that_pair() {
        let (mut s, _, _) = v1_depth10();
        let other = r#"[43,{"as":[["5.0","1.0","1618678133.1"]],"bs":[["4.0","1.0","1618678133.1"]]},"book-10","ETH/USD"]"#;
        feed(&mut s, other);
        let update = r#"[42,{"a":[["101.0","7.00000000","1618678135.000000"]],"c":"1"}, "book-10","XBT/USD"]"#;
        let out = feed(&mut s, update);
        assert!(matches!(
            out[0],
            Event::ChecksumMismatch {
                symbol: 0,
                expected: 1,
                ..
            }
        ));
        assert!(matches!(
            out[1],
            Event::SyncLost {
                symbol: 0,
                reason: LossReason::Checksum { .. }
            }
        ));
        assert_eq!(out[2..], [Event::NeedResubscribe { symbol: 0 }]);
        assert!(s.symbols().sync(0).unwrap().book.is_empty());
        assert!(!s.symbols().sync(1).unwrap().book.is_empty());
        // Updates while waiting for the new snapshot are dropped, not applied.
        let update = r#"[42,{"a":[["101.0","7.00000000","1618678135.000000"]],"c":"1"},"book-10","XBT/USD"]"#;
        assert!(feed(&mut s, update).is_empty());
    }

    #[test]
    fn v1_bad_frame_is_typed_and_local() {
        let (mut s, _, _) = v1_depth10();
        let mut out = Vec::new();
        let bad = r#"[42,{"a":[["10x","1.0","1618678135.0"]],"c":"1"},"book-10","XBT/USD"]"#;
        let err = s.receive(bad.as_bytes(), 1, &mut out).unwrap_err();
        assert_eq!(err.symbol.as_deref(), Some("XBT/USD"));
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
        let bad =
            r#"[42,{"a":[["101.0","1.0","1618678135.0"]],"c":"not a number"},"book-10","XBT/USD"]"#;
        out.clear();
        assert!(s.receive(bad.as_bytes(), 1, &mut out).is_err());
        for junk in [
            "",
            "[",
            "[]",
            "[\"x\"]",
            "{",
            "42",
            "[1,2,3]",
            "[99,{\"a\":[]},\"book-10\"]",
        ] {
            out.clear();
            assert!(s.receive(junk.as_bytes(), 1, &mut out).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn v1_trades_and_ignored_frames() {
        let mut s = session();
        for frame in [
            r#"{"event":"heartbeat"}"#,
            r#"{"connectionID":8628615390848610000,"event":"systemStatus","status":"online","version":"1.0.0"}"#,
            r#"{"event":"pong","reqid":42}"#,
            r#"[345,{"a":["5525.40000",1,"1.000"],"b":["5525.10000",1,"1.000"],"c":["5525.10000","0.00398963"],"v":["2634.11501494","3591.17907851"],"p":["5631.44067","5653.78939"],"t":[11493,16267],"l":["5505.00000","5505.00000"],"h":["5783.00000","5783.00000"],"o":["5760.70000","5763.40000"]},"ticker","XBT/USD"]"#,
            r#"[42,["5698.40000","5700.00000","1542057299.545897","1.01234567","0.98765432"],"spread","XBT/USD"]"#,
            r#"{"channel":"heartbeat"}"#,
            r#"{"channel":"status","type":"update","data":[{"api_version":"v2","connection_id":123,"system":"online","version":"2.0.0"}]}"#,
        ] {
            assert!(feed(&mut s, frame).is_empty(), "{frame}");
        }
        assert_eq!(s.stats().ignored, 7);
        let out = feed(
            &mut s,
            r#"[0,[["5541.20000","0.15850568","1534614057.321597","s","l",""],["6060.00000","0.02455000","1534614057.324998","b","m",""]],"trade","XBT/USD"]"#,
        );
        assert_eq!(out.len(), 2);
        let Event::Trade(t) = &out[0] else { panic!() };
        assert_eq!(
            (t.price.to_string(), t.size.to_string()),
            ("5541.20000".into(), "0.15850568".into())
        );
        assert_eq!(t.side, Some(TradeSide::Sell));
        assert_eq!(t.exchange_ts_ns, 1_534_614_057_321_597_000);
        assert_eq!(t.trade_id, "");
        let Event::Trade(t) = &out[1] else { panic!() };
        assert_eq!(t.side, Some(TradeSide::Buy));
        // Newer v1 trade rows end with a trade id.
        let out = feed(
            &mut s,
            r#"[0,[["5541.2","0.1","1534614057.3","b","l","",123456]],"trade","XBT/USD"]"#,
        );
        let Event::Trade(t) = &out[0] else { panic!() };
        assert_eq!(t.trade_id, "123456");
    }

    #[test]
    fn refused_requests_are_typed_venue_errors_and_change_no_book() {
        let (mut s, asks, bids) = v1_depth10();
        let view = |s: &KrakenSession| {
            (
                side_text(s, 0, Side::Ask),
                side_text(s, 0, Side::Bid),
                s.symbols().sync(0).unwrap().state(),
            )
        };
        let before = view(&s);
        assert_eq!(before.0.len(), asks.len());
        assert_eq!(before.1.len(), bids.len());
        let cases: [(&str, Option<&str>, &str); 4] = [
            (
                r#"{"errorMessage":"Subscription depth not supported","event":"subscriptionStatus","pair":"XBT/USD","status":"error","subscription":{"depth":42,"name":"book"}}"#,
                Some("XBT/USD"),
                "Subscription depth not supported",
            ),
            (
                r#"{"errorMessage":"Currency pair not supported","event":"subscriptionStatus","pair":"XBT/EUR","status":"error","subscription":{"name":"book"}}"#,
                Some("XBT/EUR"),
                "Currency pair not supported",
            ),
            (
                r#"{"errorMessage":"Malformed request","event":"error","reqid":7}"#,
                None,
                "Malformed request",
            ),
            (
                r#"{"error":"Currency pair not supported","method":"subscribe","req_id":3,"success":false,"symbol":"BTC/ABC","time_in":"2023-10-06T17:35:55.000000Z","time_out":"2023-10-06T17:35:55.000100Z"}"#,
                Some("BTC/ABC"),
                "subscribe: Currency pair not supported",
            ),
        ];
        for (frame, symbol, message) in cases {
            let mut out = Vec::new();
            let err = s.receive(frame.as_bytes(), 1, &mut out).unwrap_err();
            assert_eq!(err.symbol.as_deref(), symbol, "{frame}");
            assert_eq!(err.error, FrameError::VenueError(message.into()), "{frame}");
            assert!(out.is_empty(), "{frame}");
        }
        assert_eq!(view(&s), before);
        assert_eq!(s.symbols().len(), 1, "a refused pair is not added");
        assert_eq!(s.symbols().sync(0).unwrap().counters.errors, 0);
        assert_eq!((s.stats().errors, s.stats().ignored), (4, 0));
        // The channel mapping survived: channel 42 still feeds the book.
        assert_eq!(s.book_channel("XBT/USD"), Some(42));
        assert_eq!(s.book_channel("XBT/EUR"), None);
        feed(
            &mut s,
            r#"{"channelID":42,"channelName":"book-10","event":"subscriptionStatus","pair":"XBT/USD","status":"unsubscribed","subscription":{"depth":10,"name":"book"}}"#,
        );
        assert_eq!(s.book_channel("XBT/USD"), None);
    }

    #[test]
    fn v2_trades() {
        let mut s = session();
        let out = feed(
            &mut s,
            r#"{"channel":"trade","type":"update","data":[{"symbol":"MATIC/USD","side":"sell","price":0.5117,"qty":40.0,"ord_type":"market","trade_id":4665906,"timestamp":"2023-09-25T07:49:37.708706Z"}]}"#,
        );
        let Event::Trade(t) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(s.symbols().name(t.symbol), "MATIC/USD");
        assert_eq!(
            (t.price.to_string(), t.size.to_string()),
            ("0.5117".into(), "40.0".into())
        );
        assert_eq!(t.side, Some(TradeSide::Sell));
        assert_eq!(t.trade_id, "4665906");
        assert_eq!(
            t.exchange_ts_ns,
            iso8601_to_ns("2023-09-25T07:49:37.708706Z").unwrap()
        );
    }

    #[test]
    fn time_parsers() {
        assert_eq!(
            seconds_to_ns("1618678142.557535"),
            Some(1_618_678_142_557_535_000)
        );
        assert_eq!(seconds_to_ns("1618678142"), Some(1_618_678_142_000_000_000));
        assert_eq!(seconds_to_ns("1.1234567891"), Some(1_123_456_789));
        for bad in ["", ".5", "1.2.3", "-1", "1e9", "99999999999999999999"] {
            assert_eq!(seconds_to_ns(bad), None, "{bad}");
        }
        assert_eq!(
            iso8601_to_ns("2023-10-06T17:35:55.440295Z"),
            Some(1_696_613_755_440_295_000)
        );
        assert_eq!(
            iso8601_to_ns("2000-02-29T00:00:00Z"),
            Some(951_782_400_000_000_000)
        );
        assert_eq!(iso8601_to_ns("1970-01-01T00:00:00.000000001Z"), Some(1));
        for bad in [
            "",
            "2023-10-06",
            "2023-13-06T00:00:00Z",
            "2023-10-06T17:35:55.Z",
            "2023-10-06T17:35:55+01:00",
            "1969-12-31T23:59:59Z",
            "2023-10-06T17:35:55.44a295Z",
        ] {
            assert_eq!(iso8601_to_ns(bad), None, "{bad}");
        }
    }
}
