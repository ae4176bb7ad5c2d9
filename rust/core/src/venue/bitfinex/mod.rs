//! Bitfinex websocket v2 (`wss://api-pub.bitfinex.com/ws/2`): P-precision books, trades,
//! sequence numbers and book checksums.
//!
//! - Events are objects: `info`, `conf` (the flags the server accepted), `subscribed` (maps a
//!   `chanId` to a channel and symbol), `unsubscribed`, `pong`. They are counted as ignored once
//!   used. The book's `chanId` of a symbol is `Session::book_channel` (Bitfinex unsubscribes
//!   by `chanId` only). An `error` event (`{"event":"error","msg","code"}`, a refused subscribe or
//!   unsubscribe) is `FrameError::VenueError` ("code C: msg"), naming the symbol the event
//!   echoes (`symbol`, `pair`, or the `chanId` of a channel held); it changes no book.
//! - Data frames are arrays `[chanId, payload, ..., seq]`. With conf flag 65536 the last element
//!   of every data frame, heartbeats included, is one sequence counter for the whole connection:
//!   each must be the previous + 1 (the first seen sets the base). A gap resyncs every book of
//!   the connection (`GapDetected`, then `NeedResubscribe` per book symbol).
//! - Book (`P0`..`P4`): the snapshot is a list of `[price, count, amount]`, an update one level;
//!   `amount > 0` is a bid, `< 0` an ask; `count == 0` deletes (side from the sign of amount).
//!   Numbers are JSON numbers: they are read from the token text, so the venue's digits are kept
//!   exactly (strings, as the `DEC_S` flag sends them, are read too).
//! - Checksum (conf flag 131072) `[chanId, "cs", crc, seq]`: CRC32, sent signed, of the top 25
//!   bids and asks interleaved `bidPrice:bidAmount:askPrice:askAmount:...` (a side that has run
//!   out is skipped), asks' amounts negative. Bitfinex builds the text with JavaScript's number
//!   to string conversion (its reference client joins the numbers it parsed), so the book's exact
//!   digits are written the way JavaScript writes them: no trailing zeros, and exponent form below
//!   1e-6 (`1e-7`, `2.5e-8`). A mismatch resyncs the symbol.
//! - Trades: the subscription's snapshot `[chanId, [[id, mts, amount, price], ...]]` is emitted
//!   oldest first, skipping ids not above the last trade emitted for the symbol (a resubscribe
//!   repeats them); then each `"te"` (trade executed) is emitted, and `"tu"` (the same trade
//!   once written to the database) is ignored, so a trade is emitted once and as early as
//!   possible. `amount > 0`: the taker bought.
//! - Not handled, counted as ignored: ticker and candle channels, raw books (`R0`), funding
//!   (`f...`) books and trades, channel 0 (authenticated).
//! - With conf flag 32768 (timestamps) the element before the sequence number is taken as the
//!   frame's millisecond timestamp, following Bitfinex's own client which reads the sequence
//!   number as the last element.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::book::{Book, Side};
use crate::checksum::crc32;
use crate::decimal::Decimal;
use crate::error::{FrameError, ReceiveError};
use crate::event::{Event, SymbolId, Trade, TradeSide};
use crate::sync::{LevelChange, ResyncBy, SymbolSync, Symbols, SyncState, Unsequenced};
use crate::venue::json::{venue_error, LooseText};
use crate::venue::{check_frame_size, ms_to_ns, Session, SessionOptions, SessionStats};

/// Conf flag: every data frame ends with the connection's sequence number.
pub const FLAG_SEQ_ALL: u64 = 65_536;
/// Conf flag: book checksum frames.
pub const FLAG_CHECKSUM: u64 = 131_072;
/// Conf flag: a millisecond timestamp on every data frame.
pub const FLAG_TIMESTAMP: u64 = 32_768;

/// Levels per side a checksum covers.
pub const CHECKSUM_DEPTH: usize = 25;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Book,
    Trades,
    /// Ticker, candles, raw or funding books: understood, not kept.
    Other,
    /// A book or trades channel of a symbol not in `SessionOptions::symbols`: skipped unread
    /// and counted, never given a symbol.
    Unsubscribed,
}

#[derive(Debug, Clone, Copy)]
struct Channel {
    id: u64,
    kind: Kind,
    symbol: SymbolId,
}

/// A trade as decoded, before it gets its symbol and receive time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RawTrade {
    id: u64,
    mts: u64,
    price: Decimal,
    size: Decimal,
    side: Option<TradeSide>,
}

pub struct BitfinexSession {
    symbols: Symbols,
    /// Subscribed channels; a connection holds at most a few dozen, so a list beats a map.
    channels: Vec<Channel>,
    /// Last trade id emitted, per symbol.
    last_trade_id: Vec<Option<u64>>,
    /// Flags the server acknowledged with `conf`; `None` until then.
    flags: Option<u64>,
    last_seq: Option<u64>,
    /// A frame failed to decode: it may have used up one sequence number.
    allow_skip: bool,
    levels: Vec<LevelChange>,
    trades: Vec<RawTrade>,
    checksum_text: String,
    stats: SessionStats,
    options: SessionOptions,
}

impl BitfinexSession {
    pub fn new(options: SessionOptions) -> Self {
        BitfinexSession {
            symbols: options.symbols_table(),
            channels: Vec::new(),
            last_trade_id: Vec::new(),
            flags: None,
            last_seq: None,
            allow_skip: false,
            levels: Vec::with_capacity(256),
            trades: Vec::with_capacity(64),
            checksum_text: String::with_capacity(2048),
            stats: SessionStats::default(),
            options,
        }
    }

    /// The connection's last sequence number.
    pub fn last_seq(&self) -> Option<u64> {
        self.last_seq
    }

    fn intern(&mut self, name: &str) -> Option<SymbolId> {
        let id = self
            .symbols
            .intern(name, || SymbolSync::new(ResyncBy::Resubscribe, None))?;
        if self.last_trade_id.len() <= id as usize {
            self.last_trade_id.resize(id as usize + 1, None);
        }
        Some(id)
    }

    fn channel(&self, id: u64) -> Option<Channel> {
        self.channels.iter().find(|c| c.id == id).copied()
    }

    fn receive_inner(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        if let Err(e) = check_frame_size(frame, self.options.max_frame_bytes) {
            // The frame is lost but was sequenced: the next sequence number may skip one.
            self.allow_skip = true;
            return Err(e.into());
        }
        self.levels.clear();
        self.trades.clear();
        let mut msg = Message::default();
        let mut fault: Option<FrameError> = None;
        let mut de = serde_json::Deserializer::from_slice(frame);
        let seed = MessageSeed {
            channels: &self.channels,
            msg: &mut msg,
            levels: &mut self.levels,
            trades: &mut self.trades,
            fault: &mut fault,
        };
        if let Err(e) = seed.deserialize(&mut de).and_then(|()| de.end()) {
            let error = fault.unwrap_or_else(|| FrameError::Json(e.to_string()));
            self.allow_skip = true;
            if let Some(ch) = msg.chan.and_then(|c| self.channel(c)) {
                if ch.kind == Kind::Book {
                    return Err(self.symbols.bad_frame(ch.symbol, error, out));
                }
                return Err(ReceiveError::new(
                    Some(self.symbols.name(ch.symbol).to_owned()),
                    error,
                ));
            }
            return Err(error.into());
        }
        match msg.chan {
            None => self.on_event(&msg.event),
            Some(chan) => self.on_data(chan, &msg, ts_ns, out),
        }
    }

    fn on_event(&mut self, e: &EventFields<'_>) -> Result<(), ReceiveError> {
        if e.event == Some("error") {
            return Err(self.venue_error(e));
        }
        match e.event {
            Some("subscribed") => self.on_subscribed(e)?,
            Some("unsubscribed") => {
                if let Some(chan) = e.chan_id {
                    self.channels.retain(|c| c.id != chan);
                }
            }
            Some("conf") if e.status.is_none_or(|s| s == "OK") => {
                self.flags = e.flags.or(self.flags);
            }
            // info (version, maintenance codes), pong: understood, nothing to keep.
            _ => {}
        }
        self.stats.ignored += 1;
        Ok(())
    }

    /// An `error` event: a refused subscribe or unsubscribe. It names its symbol when it echoes
    /// the request (`symbol`, or `pair` without the `t`) or a channel we hold (`chanId`).
    fn venue_error(&self, e: &EventFields<'_>) -> ReceiveError {
        let prefixed;
        let symbol = match (e.symbol, e.pair) {
            (Some(symbol), _) => Some(symbol),
            (None, Some(pair)) => {
                prefixed = format!("t{pair}");
                Some(prefixed.as_str())
            }
            (None, None) => e
                .chan_id
                .and_then(|id| self.channel(id))
                .filter(|c| !matches!(c.kind, Kind::Other | Kind::Unsubscribed))
                .map(|c| self.symbols.name(c.symbol)),
        };
        venue_error(symbol, e.code.as_deref(), e.msg.as_deref())
    }

    fn on_subscribed(&mut self, e: &EventFields<'_>) -> Result<(), ReceiveError> {
        let chan = e.chan_id.ok_or(FrameError::MissingField("chanId"))?;
        let name = match (e.symbol, e.pair, e.key) {
            (Some(symbol), _, _) => symbol,
            (None, Some(pair), _) => pair,
            (None, None, Some(key)) => key,
            _ => return Err(FrameError::MissingField("symbol").into()),
        };
        let funding = name.starts_with('f');
        let kind = match e.channel {
            Some("book") if !funding && e.prec.is_none_or(|p| p.starts_with('P')) => Kind::Book,
            Some("trades") if !funding => Kind::Trades,
            _ => Kind::Other,
        };
        // Old-style subscriptions name the pair without the `t` prefix.
        let mut spelled = String::new();
        let name = if e.symbol.is_none() && e.pair.is_some() {
            spelled.push('t');
            spelled.push_str(name);
            spelled.as_str()
        } else {
            name
        };
        let (kind, symbol) = if kind == Kind::Other {
            (kind, SymbolId::MAX)
        } else {
            match self.intern(name) {
                Some(id) => (kind, id),
                None => (Kind::Unsubscribed, SymbolId::MAX),
            }
        };
        // One channel per id, and one book channel per symbol (a resubscribe replaces the old).
        self.channels.retain(|c| {
            c.id != chan && !(kind == Kind::Book && c.kind == kind && c.symbol == symbol)
        });
        self.channels.push(Channel {
            id: chan,
            kind,
            symbol,
        });
        Ok(())
    }

    fn on_data(
        &mut self,
        chan: u64,
        msg: &Message<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        // The trailing numbers: the sequence number last, a timestamp before it if asked for.
        let flags = self.flags;
        let seq_on = flags.is_none_or(|f| f & FLAG_SEQ_ALL != 0);
        let ts_on = flags.is_some_and(|f| f & FLAG_TIMESTAMP != 0);
        let (seq, mts) = match (seq_on, ts_on) {
            // Channel 0 (authenticated) puts the public sequence number second to last.
            (true, _) if chan == 0 && msg.tag != Some("hb") => (msg.trailing[0], None),
            (true, true) => (msg.trailing[1], msg.trailing[0]),
            (true, false) => (msg.trailing[1], None),
            (false, true) => (None, msg.trailing[1]),
            (false, false) => (None, None),
        };
        if let Some(seq) = seq {
            self.check_sequence(seq, out);
        }
        let exchange_ts = mts.map_or(0, ms_to_ns);
        let Some(ch) = self.channel(chan) else {
            // Heartbeats can arrive before their `subscribed` event; other channels we skip.
            self.stats.ignored += 1;
            return Ok(());
        };
        match (ch.kind, msg.tag, msg.payload) {
            (Kind::Unsubscribed, tag, _) if tag != Some("hb") => {
                self.symbols.count_unsubscribed();
                Ok(())
            }
            (Kind::Book, None, Payload::BookSnapshot) => {
                self.on_book(ch.symbol, true, seq, exchange_ts, ts_ns, out)
            }
            (Kind::Book, None, Payload::BookUpdate) => {
                self.on_book(ch.symbol, false, seq, exchange_ts, ts_ns, out)
            }
            (Kind::Book, Some("cs"), _) => self.on_checksum(ch.symbol, msg.crc, out),
            (Kind::Trades, None, Payload::Trades) => {
                let last = self.last_trade_id[ch.symbol as usize];
                self.trades.sort_unstable_by_key(|t| t.id);
                let mut newest = last;
                for t in &self.trades {
                    if last.is_some_and(|l| t.id <= l) {
                        continue;
                    }
                    push_trade(t, ch.symbol, ts_ns, out);
                    newest = Some(newest.map_or(t.id, |n| n.max(t.id)));
                }
                self.last_trade_id[ch.symbol as usize] = newest;
                Ok(())
            }
            (Kind::Trades, Some("te"), Payload::Trades) => {
                for t in &self.trades {
                    push_trade(t, ch.symbol, ts_ns, out);
                    let last = &mut self.last_trade_id[ch.symbol as usize];
                    *last = Some(last.map_or(t.id, |l| l.max(t.id)));
                }
                Ok(())
            }
            // "hb", "tu", ticker data, anything else a channel sends: understood, not kept.
            _ => {
                self.stats.ignored += 1;
                Ok(())
            }
        }
    }

    /// One counter per connection: each data frame's number is the previous + 1.
    fn check_sequence(&mut self, seq: u64, out: &mut Vec<Event>) {
        let allow_skip = std::mem::replace(&mut self.allow_skip, false);
        let Some(last) = self.last_seq.replace(seq) else {
            return;
        };
        let expected = last.saturating_add(1);
        if seq == expected || (allow_skip && seq == expected.saturating_add(1)) {
            return;
        }
        // Any frame may have been lost, a book update included: every book starts again.
        for i in 0..self.channels.len() {
            let ch = self.channels[i];
            if ch.kind != Kind::Book {
                continue;
            }
            if let Some(sync) = self.symbols.sync_mut(ch.symbol) {
                sync.on_gap(ch.symbol, expected, seq, out);
            }
        }
    }

    fn on_book(
        &mut self,
        symbol: SymbolId,
        snapshot: bool,
        seq: Option<u64>,
        exchange_ts: u64,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let first_event = out.len();
        let sync = self
            .symbols
            .sync_mut(symbol)
            .expect("channel symbols exist");
        let result = if snapshot {
            sync.on_snapshot(
                symbol,
                &Unsequenced,
                None,
                &self.levels,
                exchange_ts,
                ts_ns,
                out,
            )
            .map(|()| true)
        } else {
            sync.on_unsequenced_delta(symbol, &self.levels, exchange_ts, ts_ns, out)
        };
        match result {
            Ok(applied) => {
                if let (true, Some(seq)) = (applied, seq) {
                    sync.last_seq = Some(seq);
                    for ev in &mut out[first_event..] {
                        match ev {
                            Event::BookUpdated { seq: s, .. } | Event::Resynced { seq: s, .. } => {
                                *s = Some(seq)
                            }
                            _ => {}
                        }
                    }
                }
                Ok(())
            }
            Err(e) => Err(self.symbols.bad_frame(symbol, e.into(), out)),
        }
    }

    fn on_checksum(
        &mut self,
        symbol: SymbolId,
        crc: Option<i64>,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let name = || Some(self.symbols.name(symbol).to_owned());
        let crc = crc.ok_or_else(|| ReceiveError::new(name(), FrameError::MissingField("cs")))?;
        // Sent signed; the same 32 bits either way.
        let expected = i32::try_from(crc)
            .map(|v| v as u32)
            .or_else(|_| u32::try_from(crc))
            .map_err(|_| {
                ReceiveError::new(
                    name(),
                    FrameError::Invalid(format!("checksum {crc} is not 32 bits")),
                )
            })?;
        let sync = self
            .symbols
            .sync_mut(symbol)
            .expect("channel symbols exist");
        if sync.state() != SyncState::Live {
            // Nothing to check until the new book arrives.
            self.stats.ignored += 1;
            return Ok(());
        }
        let computed = book_checksum(&sync.book, &mut self.checksum_text);
        sync.on_checksum(symbol, expected, computed, out);
        Ok(())
    }
}

fn push_trade(t: &RawTrade, symbol: SymbolId, ts_ns: u64, out: &mut Vec<Event>) {
    out.push(Event::Trade(Trade {
        symbol,
        price: t.price,
        size: t.size,
        side: t.side,
        trade_id: t.id.to_string(),
        exchange_ts_ns: ms_to_ns(t.mts),
        ts_ns,
        is_snapshot: false,
    }));
}

/// The CRC32 Bitfinex sends for a book: top 25 levels, `bid:amount:ask:-amount:...`.
/// `text` is a reusable buffer; it holds the checksummed text afterwards.
pub fn book_checksum(book: &Book, text: &mut String) -> u32 {
    text.clear();
    let mut bids = book.bids().take(CHECKSUM_DEPTH);
    let mut asks = book.asks().take(CHECKSUM_DEPTH);
    loop {
        let (bid, ask) = (bids.next(), asks.next());
        if bid.is_none() && ask.is_none() {
            break;
        }
        for (level, negate) in [(bid, false), (ask, true)] {
            if let Some(level) = level {
                if !text.is_empty() {
                    text.push(':');
                }
                write_js_number(level.price, false, text);
                text.push(':');
                write_js_number(level.qty, negate, text);
            }
        }
    }
    crc32(text.as_bytes())
}

/// Writes a decimal the way JavaScript's `String(number)` does for the same value: shortest
/// digits (trailing zeros dropped), exponent form when the value is below 1e-6.
pub fn write_js_number(value: Decimal, negate: bool, out: &mut String) {
    let mut mantissa = value.mantissa().unsigned_abs();
    let mut scale = value.scale() as i32;
    if mantissa == 0 {
        out.push('0');
        return;
    }
    while scale > 0 && mantissa.is_multiple_of(10) {
        mantissa /= 10;
        scale -= 1;
    }
    if value.is_negative() != negate {
        out.push('-');
    }
    let mut buf = [0u8; 20];
    let mut pos = buf.len();
    while mantissa > 0 {
        pos -= 1;
        buf[pos] = b'0' + (mantissa % 10) as u8;
        mantissa /= 10;
    }
    let digits = &buf[pos..];
    let k = digits.len() as i32;
    // value = 0.d1d2..dk * 10^n
    let n = k - scale;
    let push = |out: &mut String, bytes: &[u8]| {
        for &b in bytes {
            out.push(b as char);
        }
    };
    if n >= k {
        // Integer (scale is 0 here, as trailing zeros of the fraction were dropped).
        push(out, digits);
        for _ in 0..(n - k) {
            out.push('0');
        }
    } else if n > 0 {
        push(out, &digits[..n as usize]);
        out.push('.');
        push(out, &digits[n as usize..]);
    } else if n > -6 {
        out.push_str("0.");
        for _ in 0..(-n) {
            out.push('0');
        }
        push(out, digits);
    } else {
        push(out, &digits[..1]);
        if k > 1 {
            out.push('.');
            push(out, &digits[1..]);
        }
        out.push_str("e-");
        let exp = 1 - n;
        let mut ebuf = [0u8; 4];
        let mut epos = ebuf.len();
        let mut e = exp as u32;
        while e > 0 {
            epos -= 1;
            ebuf[epos] = b'0' + (e % 10) as u8;
            e /= 10;
        }
        push(out, &ebuf[epos..]);
    }
}

impl Session for BitfinexSession {
    fn venue(&self) -> &'static str {
        "bitfinex"
    }

    fn receive_frame(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        self.receive_inner(frame, ts_ns, out)
    }

    /// The `chanId` of the symbol's book channel, which Bitfinex's unsubscribe names.
    fn book_channel(&self, symbol: &str) -> Option<u64> {
        let id = self.symbols.id(symbol)?;
        self.channels
            .iter()
            .find(|c| c.kind == Kind::Book && c.symbol == id)
            .map(|c| c.id)
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

// ---------------------------------------------------------------------------------------------
// Decoding: one pass over the frame; levels and trades go straight into reusable buffers.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Payload {
    #[default]
    None,
    BookSnapshot,
    BookUpdate,
    Trades,
}

#[derive(Debug, Default)]
struct EventFields<'a> {
    event: Option<&'a str>,
    channel: Option<&'a str>,
    chan_id: Option<u64>,
    symbol: Option<&'a str>,
    pair: Option<&'a str>,
    key: Option<&'a str>,
    prec: Option<&'a str>,
    status: Option<&'a str>,
    flags: Option<u64>,
    /// `msg` and `code` of an `error` event.
    msg: Option<Cow<'a, str>>,
    code: Option<Cow<'a, str>>,
}

#[derive(Debug, Default)]
struct Message<'a> {
    /// Data frames: the channel id (set as soon as it is read, for error reporting).
    chan: Option<u64>,
    /// A string in second position: "hb", "te", "tu", "cs".
    tag: Option<&'a str>,
    payload: Payload,
    crc: Option<i64>,
    /// The last two elements after the payload, where they are unsigned integers
    /// (`trailing[1]` is the last element).
    trailing: [Option<u64>; 2],
    event: EventFields<'a>,
}

type Fault = Option<FrameError>;

struct MessageSeed<'f, 'a> {
    channels: &'f [Channel],
    msg: &'f mut Message<'a>,
    levels: &'f mut Vec<LevelChange>,
    trades: &'f mut Vec<RawTrade>,
    fault: &'f mut Fault,
}

impl<'de> DeserializeSeed<'de> for MessageSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MessageSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Bitfinex event object or data array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let e = &mut self.msg.event;
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "event" => e.event = Some(map.next_value()?),
                "channel" => e.channel = Some(map.next_value()?),
                "chanId" => e.chan_id = Some(map.next_value()?),
                "symbol" => e.symbol = Some(map.next_value()?),
                "pair" => e.pair = Some(map.next_value()?),
                "key" => e.key = Some(map.next_value()?),
                "prec" => e.prec = Some(map.next_value()?),
                "status" => e.status = Some(map.next_value()?),
                "flags" => e.flags = Some(map.next_value()?),
                "msg" => e.msg = map.next_value_seed(LooseText)?,
                "code" => e.code = map.next_value_seed(LooseText)?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if e.event.is_none() {
            return Err(de::Error::missing_field("event"));
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let msg = self.msg;
        let chan: u64 = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &"[chanId, payload, ...]"))?;
        msg.chan = Some(chan);
        let kind = self
            .channels
            .iter()
            .find(|c| c.id == chan)
            .map_or(Kind::Other, |c| c.kind);
        seq.next_element_seed(SecondSeed {
            kind,
            msg: &mut *msg,
            levels: &mut *self.levels,
            trades: &mut *self.trades,
            fault: &mut *self.fault,
        })?
        .ok_or_else(|| de::Error::invalid_length(1, &"[chanId, payload, ...]"))?;
        match (kind, msg.tag) {
            (Kind::Trades, Some("te")) => {
                let t = seq
                    .next_element_seed(TradeSeed {
                        fault: &mut *self.fault,
                    })?
                    .ok_or_else(|| de::Error::invalid_length(2, &"[chanId, \"te\", trade]"))?;
                self.trades.push(t);
                msg.payload = Payload::Trades;
            }
            (_, Some("cs")) => {
                msg.crc = Some(
                    seq.next_element()?
                        .ok_or_else(|| de::Error::invalid_length(2, &"[chanId, \"cs\", crc]"))?,
                );
            }
            _ => {}
        }
        while let Some(value) = seq.next_element_seed(TrailingSeed)? {
            msg.trailing = [msg.trailing[1], value];
        }
        Ok(())
    }
}

/// The second element of a data frame: a tag string or the payload.
struct SecondSeed<'f, 'a> {
    kind: Kind,
    msg: &'f mut Message<'a>,
    levels: &'f mut Vec<LevelChange>,
    trades: &'f mut Vec<RawTrade>,
    fault: &'f mut Fault,
}

impl<'de> DeserializeSeed<'de> for SecondSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SecondSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a message tag or a payload list")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<(), E> {
        self.msg.tag = Some(v);
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        // An escaped tag is none we know.
        self.msg.tag = Some("?");
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        match self.kind {
            Kind::Book => {
                let first: Option<&'de RawValue> = seq.next_element()?;
                let Some(first) = first else {
                    self.msg.payload = Payload::BookSnapshot;
                    return Ok(());
                };
                if first.get().starts_with('[') {
                    // A list of levels: the first was captured whole, the rest stream.
                    self.msg.payload = Payload::BookSnapshot;
                    let mut inner = serde_json::Deserializer::from_str(first.get());
                    let level = LevelSeed {
                        fault: &mut *self.fault,
                    }
                    .deserialize(&mut inner)
                    .map_err(de::Error::custom)?;
                    self.levels.push(level);
                    while let Some(level) = seq.next_element_seed(LevelSeed {
                        fault: &mut *self.fault,
                    })? {
                        self.levels.push(level);
                    }
                } else {
                    self.msg.payload = Payload::BookUpdate;
                    let level = level_from_seq(first, &mut seq, self.fault)?;
                    self.levels.push(level);
                }
                Ok(())
            }
            Kind::Trades => {
                self.msg.payload = Payload::Trades;
                while let Some(t) = seq.next_element_seed(TradeSeed {
                    fault: &mut *self.fault,
                })? {
                    self.trades.push(t);
                }
                Ok(())
            }
            Kind::Other | Kind::Unsubscribed => {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(())
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// An element after the payload: `Some` for an unsigned integer, `None` for anything else.
struct TrailingSeed;

impl<'de> DeserializeSeed<'de> for TrailingSeed {
    type Value = Option<u64>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<u64>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TrailingSeed {
    type Value = Option<u64>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<u64>, E> {
        Ok(Some(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<u64>, E> {
        Ok(u64::try_from(v).ok())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Option<u64>, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Option<u64>, E> {
        Ok(None)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Option<u64>, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<u64>, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<u64>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<u64>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

/// The text of a number token, or of a string holding one (`DEC_S` flag).
fn number_text(raw: &RawValue) -> &str {
    let text = raw.get();
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text)
}

fn parse_raw<E: de::Error>(
    fault: &mut Fault,
    field: &'static str,
    raw: &RawValue,
) -> Result<Decimal, E> {
    Decimal::parse(number_text(raw)).map_err(|error| {
        fault.get_or_insert(FrameError::BadNumber { field, error });
        E::custom(format_args!("bad number in `{field}`"))
    })
}

fn invalid<E: de::Error>(fault: &mut Fault, message: String) -> E {
    let e = E::custom(&message);
    fault.get_or_insert(FrameError::Invalid(message));
    e
}

/// `[price, count, amount]` to a level change: the sign of amount gives the side, count 0 deletes.
fn to_change<E: de::Error>(
    fault: &mut Fault,
    price: &RawValue,
    count: &RawValue,
    amount: &RawValue,
) -> Result<LevelChange, E> {
    let price = parse_raw(fault, "price", price)?;
    let count = parse_raw(fault, "count", count)?;
    let amount = parse_raw(fault, "amount", amount)?;
    if count.is_negative() {
        return Err(invalid(fault, format!("negative count {count}")));
    }
    let side = if amount.is_negative() {
        Side::Ask
    } else if !amount.is_zero() {
        Side::Bid
    } else {
        return Err(invalid(
            fault,
            format!("level {price} has no side (amount 0)"),
        ));
    };
    let qty = if count.is_zero() {
        Decimal::ZERO
    } else {
        match amount.abs() {
            Ok(q) => q,
            Err(error) => {
                fault.get_or_insert(FrameError::BadNumber {
                    field: "amount",
                    error,
                });
                return Err(E::custom("bad number in `amount`"));
            }
        }
    };
    Ok((side, price, qty))
}

fn level_from_seq<'de, A: SeqAccess<'de>>(
    price: &'de RawValue,
    seq: &mut A,
    fault: &mut Fault,
) -> Result<LevelChange, A::Error> {
    let count: &'de RawValue = seq
        .next_element()?
        .ok_or_else(|| de::Error::invalid_length(1, &"[price, count, amount]"))?;
    let amount: &'de RawValue = seq
        .next_element()?
        .ok_or_else(|| de::Error::invalid_length(2, &"[price, count, amount]"))?;
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    to_change(fault, price, count, amount)
}

/// One `[price, count, amount]` level.
struct LevelSeed<'f> {
    fault: &'f mut Fault,
}

impl<'de> DeserializeSeed<'de> for LevelSeed<'_> {
    type Value = LevelChange;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<LevelChange, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for LevelSeed<'_> {
    type Value = LevelChange;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a [price, count, amount] level")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LevelChange, A::Error> {
        let price: &'de RawValue = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        level_from_seq(price, &mut seq, self.fault)
    }
}

/// One `[id, mts, amount, price]` trade.
struct TradeSeed<'f> {
    fault: &'f mut Fault,
}

impl<'de> DeserializeSeed<'de> for TradeSeed<'_> {
    type Value = RawTrade;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<RawTrade, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for TradeSeed<'_> {
    type Value = RawTrade;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an [id, mts, amount, price] trade")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawTrade, A::Error> {
        let id: u64 = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let mts: u64 = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        let amount: &'de RawValue = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(2, &self))?;
        let price: &'de RawValue = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(3, &self))?;
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        let amount = parse_raw(self.fault, "amount", amount)?;
        let price = parse_raw(self.fault, "price", price)?;
        let side = if amount.is_negative() {
            Some(TradeSide::Sell)
        } else if amount.is_zero() {
            None
        } else {
            Some(TradeSide::Buy)
        };
        let size = amount.abs().map_err(|error| {
            self.fault.get_or_insert(FrameError::BadNumber {
                field: "amount",
                error,
            });
            de::Error::custom("bad number in `amount`")
        })?;
        Ok(RawTrade {
            id,
            mts,
            price,
            size,
            side,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::LossReason;
    use crate::venue::new_session;

    fn feed(s: &mut dyn Session, frame: &str) -> Vec<Event> {
        let mut out = Vec::new();
        s.receive(frame.as_bytes(), 5, &mut out)
            .unwrap_or_else(|e| panic!("{frame}: {e}"));
        out
    }

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).unwrap()
    }

    fn js(s: &str) -> String {
        let mut out = String::new();
        write_js_number(d(s), false, &mut out);
        out
    }

    /// A session subscribed (per Bitfinex's v2 docs) to the tBTCUSD book on channel 17 and its
    /// trades on channel 18, with sequence numbers and checksums.
    fn subscribed() -> Box<dyn Session> {
        let mut s = new_session("bitfinex", SessionOptions::default()).unwrap();
        for frame in [
            r#"{"event":"info","version":2,"serverId":"0d1f2e3c","platform":{"status":1}}"#,
            r#"{"event":"conf","status":"OK","flags":196608}"#,
            r#"{"event":"subscribed","channel":"book","chanId":17,"symbol":"tBTCUSD","prec":"P0","freq":"F0","len":"25","pair":"BTCUSD"}"#,
            r#"{"event":"subscribed","channel":"trades","chanId":18,"symbol":"tBTCUSD","pair":"BTCUSD"}"#,
        ] {
            assert!(feed(s.as_mut(), frame).is_empty());
        }
        s
    }

    const SNAPSHOT: &str = "[17,[[7254.7,3,3.3],[7254.6,1,0.5],[7254,2,1e-7],[7255,1,-0.25],[7255.5,4,-2.00000001],[7260,1,-10]],1]";

    #[test]
    fn writes_numbers_as_javascript_does() {
        assert_eq!(js("7254.70"), "7254.7");
        assert_eq!(js("7254.0"), "7254");
        assert_eq!(js("100"), "100");
        assert_eq!(js("0.000001"), "0.000001");
        assert_eq!(js("0.0000010"), "0.000001");
        assert_eq!(js("0.00000099"), "9.9e-7");
        assert_eq!(js("1e-7"), "1e-7");
        assert_eq!(js("0.000000025"), "2.5e-8");
        assert_eq!(js("0.00002516"), "0.00002516");
        assert_eq!(js("-2.00000001"), "-2.00000001");
        assert_eq!(js("0"), "0");
        let mut out = String::new();
        write_js_number(d("0.25"), true, &mut out);
        assert_eq!(out, "-0.25");
    }

    #[test]
    fn subscription_maps_channels_and_snapshot_builds_book() {
        let mut s = subscribed();
        let out = feed(s.as_mut(), SNAPSHOT);
        assert_eq!(
            out,
            vec![Event::BookUpdated {
                symbol: 0,
                seq: Some(1),
                exchange_ts_ns: 0,
                ts_ns: 5
            }]
        );
        assert_eq!(s.symbols().name(0), "tBTCUSD");
        let book = &s.symbols().sync(0).unwrap().book;
        assert_eq!(book.len(Side::Bid), 3);
        assert_eq!(book.len(Side::Ask), 3);
        assert_eq!(book.best_bid().unwrap().price.to_string(), "7254.7");
        assert_eq!(book.best_ask().unwrap().qty.to_string(), "0.25");
        // The smallest bid kept the token's exact value.
        assert_eq!(book.bids().last().unwrap().qty.to_string(), "0.0000001");

        // The trades channel: snapshot newest first, emitted oldest first; then "te" only.
        let out = feed(
            s.as_mut(),
            "[18,[[402,1574694478000,-0.005,7253],[401,1574694475000,0.01,7254.7]],2]",
        );
        let trades: Vec<_> = out
            .iter()
            .map(|e| match e {
                Event::Trade(t) => (t.trade_id.clone(), t.side, t.size.to_string()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            trades,
            vec![
                ("401".into(), Some(TradeSide::Buy), "0.01".into()),
                ("402".into(), Some(TradeSide::Sell), "0.005".into())
            ]
        );
        let out = feed(s.as_mut(), r#"[18,"te",[403,1574694479000,0.5,7255],3]"#);
        assert!(matches!(&out[..], [Event::Trade(t)]
            if t.trade_id == "403" && t.exchange_ts_ns == 1_574_694_479_000_000_000
                && t.price.to_string() == "7255"));
        assert!(feed(s.as_mut(), r#"[18,"tu",[403,1574694479000,0.5,7255],4]"#).is_empty());
        // A channel the session never saw subscribed: counted, not an error.
        let ignored = s.stats().ignored;
        assert!(feed(s.as_mut(), "[99,[1,2,3],5]").is_empty());
        assert_eq!(s.stats().ignored, ignored + 1);
        // Unsubscribing unmaps the channel: its frames no longer touch the book.
        feed(
            s.as_mut(),
            r#"{"event":"unsubscribed","status":"OK","chanId":17}"#,
        );
        assert!(feed(s.as_mut(), "[17,[7254.7,0,1],6]").is_empty());
        assert_eq!(s.symbols().sync(0).unwrap().book.len(Side::Bid), 3);
        assert_eq!(s.stats().errors, 0);
    }

    #[test]
    fn count_zero_deletes_by_sign_of_amount() {
        let mut s = subscribed();
        feed(s.as_mut(), SNAPSHOT);
        // Delete the best bid (amount 1) and the best ask (amount -1).
        feed(s.as_mut(), "[17,[7254.7,0,1],2]");
        feed(s.as_mut(), "[17,[7255,0,-1],3]");
        let book = &s.symbols().sync(0).unwrap().book;
        assert_eq!(book.best_bid().unwrap().price.to_string(), "7254.6");
        assert_eq!(book.best_ask().unwrap().price.to_string(), "7255.5");
        assert_eq!(book.len(Side::Bid), 2);
        assert_eq!(book.len(Side::Ask), 2);
        // count > 0 sets the level; an ask's amount is negative.
        feed(s.as_mut(), "[17,[7255.2,1,-0.75],4]");
        let book = &s.symbols().sync(0).unwrap().book;
        let best = book.best_ask().unwrap();
        assert_eq!(
            (best.price.to_string(), best.qty.to_string()),
            ("7255.2".into(), "0.75".into())
        );
        // Deleting an unknown level is harmless.
        feed(s.as_mut(), "[17,[1,0,1],5]");
        assert!(!s.symbols().sync(0).unwrap().book.is_crossed());
    }

    #[test]
    fn heartbeat_advances_the_sequence() {
        let mut s = subscribed();
        feed(s.as_mut(), SNAPSHOT);
        let ignored = s.stats().ignored;
        assert!(feed(s.as_mut(), r#"[17,"hb",2]"#).is_empty());
        assert!(feed(s.as_mut(), r#"[18,"hb",3]"#).is_empty());
        assert_eq!(s.stats().ignored, ignored + 2);
        // 4 follows 3: no gap.
        let out = feed(s.as_mut(), "[17,[7254.6,2,0.7],4]");
        assert!(matches!(
            &out[..],
            [Event::BookUpdated { seq: Some(4), .. }]
        ));
        // Without the heartbeats counted, 4 after 1 would have been a gap.
        assert_eq!(s.symbols().sync(0).unwrap().counters.gaps, 0);
    }

    #[test]
    fn sequence_gap_resyncs_every_book_of_the_connection() {
        let mut s = subscribed();
        feed(
            s.as_mut(),
            r#"{"event":"subscribed","channel":"book","chanId":19,"symbol":"tETHUSD","prec":"P0","freq":"F0","len":"25","pair":"ETHUSD"}"#,
        );
        feed(s.as_mut(), SNAPSHOT);
        feed(s.as_mut(), "[19,[[150.1,1,2],[150.2,1,-3]],2]");
        // Sequence 3 is lost; 4 arrives on the trades channel.
        let out = feed(s.as_mut(), r#"[18,"hb",4]"#);
        assert_eq!(
            out,
            vec![
                Event::GapDetected {
                    symbol: 0,
                    expected: 3,
                    received: 4
                },
                Event::SyncLost {
                    symbol: 0,
                    reason: LossReason::Gap {
                        expected: 3,
                        received: 4,
                    },
                },
                Event::NeedResubscribe { symbol: 0 },
                Event::GapDetected {
                    symbol: 1,
                    expected: 3,
                    received: 4
                },
                Event::SyncLost {
                    symbol: 1,
                    reason: LossReason::Gap {
                        expected: 3,
                        received: 4,
                    },
                },
                Event::NeedResubscribe { symbol: 1 },
            ]
        );
        for id in 0..2 {
            let sync = s.symbols().sync(id).unwrap();
            assert_eq!(sync.state(), SyncState::AwaitingSnapshot);
            assert!(sync.book.is_empty());
        }
        // Updates before the new snapshots are dropped; the counter goes on from 4.
        assert!(feed(s.as_mut(), "[17,[7254.6,2,0.7],5]").is_empty());
        // Resubscribing: a new channel id, and its snapshot is the new book.
        feed(
            s.as_mut(),
            r#"{"event":"unsubscribed","status":"OK","chanId":17}"#,
        );
        feed(
            s.as_mut(),
            r#"{"event":"subscribed","channel":"book","chanId":27,"symbol":"tBTCUSD","prec":"P0","freq":"F0","len":"25","pair":"BTCUSD"}"#,
        );
        let out = feed(
            s.as_mut(),
            &SNAPSHOT.replace("[17,", "[27,").replace("],1]", "],6]"),
        );
        assert_eq!(
            out,
            vec![
                Event::Resynced {
                    symbol: 0,
                    seq: Some(6)
                },
                Event::BookUpdated {
                    symbol: 0,
                    seq: Some(6),
                    exchange_ts_ns: 0,
                    ts_ns: 5
                }
            ]
        );
        assert_eq!(s.symbols().sync(0).unwrap().state(), SyncState::Live);
        assert_eq!(
            s.symbols().sync(1).unwrap().state(),
            SyncState::AwaitingSnapshot
        );
    }

    /// The checksum text built by hand from the book of `SNAPSHOT`, the way Bitfinex's
    /// documentation describes it, hashed with crc32fast directly.
    fn expected_crc() -> i32 {
        let text = "7254.7:3.3:7255:-0.25:7254.6:0.5:7255.5:-2.00000001:7254:1e-7:7260:-10";
        crc32fast::hash(text.as_bytes()) as i32
    }

    #[test]
    fn checksum_frames_match_and_mismatch() {
        let mut s = subscribed();
        feed(s.as_mut(), SNAPSHOT);
        let good = expected_crc();
        let out = feed(s.as_mut(), &format!(r#"[17,"cs",{good},2]"#));
        assert!(out.is_empty(), "{out:?}");
        let sync = s.symbols().sync(0).unwrap();
        assert_eq!(sync.counters.checksums_checked, 1);
        assert_eq!(sync.counters.checksum_mismatches, 0);

        // After an update the old value no longer matches: the book is dropped and resubscribed.
        feed(s.as_mut(), "[17,[7254.6,2,0.7],3]");
        let out = feed(s.as_mut(), &format!(r#"[17,"cs",{good},4]"#));
        let text = "7254.7:3.3:7255:-0.25:7254.6:0.7:7255.5:-2.00000001:7254:1e-7:7260:-10";
        assert_eq!(
            out,
            vec![
                Event::ChecksumMismatch {
                    symbol: 0,
                    expected: good as u32,
                    computed: crc32fast::hash(text.as_bytes()),
                },
                Event::SyncLost {
                    symbol: 0,
                    reason: LossReason::Checksum {
                        expected: good as u32,
                        computed: crc32fast::hash(text.as_bytes()),
                    },
                },
                Event::NeedResubscribe { symbol: 0 }
            ]
        );
        let sync = s.symbols().sync(0).unwrap();
        assert_eq!(sync.counters.checksum_mismatches, 1);
        assert_eq!(sync.state(), SyncState::AwaitingSnapshot);
        // A checksum while no book is held is skipped.
        assert!(feed(s.as_mut(), r#"[17,"cs",12345,5]"#).is_empty());
    }

    #[test]
    fn checksum_covers_25_levels_and_uneven_sides() {
        let mut book = Book::new();
        for i in 0..30 {
            book.apply(Side::Bid, Decimal::new(1000 - i, 0).unwrap(), d("1.50"))
                .unwrap();
        }
        for i in 0..3 {
            book.apply(Side::Ask, Decimal::new(2000 + i, 0).unwrap(), d("2"))
                .unwrap();
        }
        let mut parts = Vec::new();
        for i in 0..25 {
            parts.push(format!("{}:1.5", 1000 - i));
            if i < 3 {
                parts.push(format!("{}:-2", 2000 + i));
            }
        }
        let mut text = String::new();
        let crc = book_checksum(&book, &mut text);
        assert_eq!(text, parts.join(":"));
        assert_eq!(crc, crc32fast::hash(parts.join(":").as_bytes()));
    }

    #[test]
    fn bad_level_is_typed_and_resyncs_only_its_symbol() {
        let mut s = subscribed();
        feed(
            s.as_mut(),
            r#"{"event":"subscribed","channel":"book","chanId":19,"symbol":"tETHUSD","prec":"P0","freq":"F0","len":"25","pair":"ETHUSD"}"#,
        );
        feed(s.as_mut(), SNAPSHOT);
        feed(s.as_mut(), "[19,[[150.1,1,2],[150.2,1,-3]],2]");
        let mut out = Vec::new();
        let err = s.receive(b"[17,[7254.6,1,0],3]", 5, &mut out).unwrap_err();
        assert!(matches!(err.error, FrameError::Invalid(_)), "{err:?}");
        assert_eq!(err.symbol.as_deref(), Some("tBTCUSD"));
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
        let err = s
            .receive(br#"[17,[7254.6,1,"1.2.3"],4]"#, 5, &mut out)
            .unwrap_err();
        assert!(
            matches!(
                err.error,
                FrameError::BadNumber {
                    field: "amount",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(s.symbols().sync(1).unwrap().state(), SyncState::Live);
        // Events from the venue are understood, not errors.
        feed(
            s.as_mut(),
            r#"{"event":"pong","ts":1511545528111,"cid":1234}"#,
        );
        assert_eq!(s.stats().errors, 2);
    }

    #[test]
    fn raw_and_funding_books_are_not_taken_for_p_books() {
        let mut s = subscribed();
        feed(
            s.as_mut(),
            r#"{"event":"subscribed","channel":"book","chanId":30,"symbol":"tBTCUSD","prec":"R0","len":"25"}"#,
        );
        feed(
            s.as_mut(),
            r#"{"event":"subscribed","channel":"book","chanId":31,"symbol":"fUSD","prec":"P0","len":"25"}"#,
        );
        feed(s.as_mut(), SNAPSHOT);
        assert!(feed(s.as_mut(), "[30,[[3475123,7254.7,0.5]],2]").is_empty());
        assert!(feed(s.as_mut(), "[31,[[0.0002,30,1,100]],3]").is_empty());
        assert_eq!(s.symbols().sync(0).unwrap().book.len(Side::Bid), 3);
        assert_eq!(s.symbols().len(), 1);
    }

    #[test]
    fn error_event_is_a_typed_venue_error_and_changes_no_book() {
        let mut s = subscribed();
        feed(s.as_mut(), SNAPSHOT);
        let book_text = |s: &dyn Session| {
            let mut text = String::new();
            book_checksum(&s.symbols().sync(0).unwrap().book, &mut text);
            text
        };
        let before = book_text(s.as_ref());
        let cases: [(&str, Option<&str>, &str); 4] = [
            (
                r#"{"event":"error","msg":"subscribe: invalid","code":10300,"channel":"book","symbol":"tNOPE"}"#,
                Some("tNOPE"),
                "code 10300: subscribe: invalid",
            ),
            (
                r#"{"event":"error","msg":"subscribe: dup","code":10301,"channel":"book","chanId":17}"#,
                Some("tBTCUSD"),
                "code 10301: subscribe: dup",
            ),
            (
                r#"{"event":"error","msg":"subscribe: invalid","code":10300,"channel":"trades","pair":"NOPEUSD"}"#,
                Some("tNOPEUSD"),
                "code 10300: subscribe: invalid",
            ),
            (
                r#"{"event":"error","msg":"unsubscribe: invalid","code":10400,"chanId":99}"#,
                None,
                "code 10400: unsubscribe: invalid",
            ),
        ];
        for (frame, symbol, message) in cases {
            let mut out = Vec::new();
            let err = s.receive(frame.as_bytes(), 5, &mut out).unwrap_err();
            assert_eq!(err.symbol.as_deref(), symbol, "{frame}");
            assert_eq!(err.error, FrameError::VenueError(message.into()), "{frame}");
            assert!(out.is_empty(), "{frame}");
        }
        assert_eq!(book_text(s.as_ref()), before);
        assert_eq!(s.symbols().len(), 1, "a refused symbol is not added");
        let sync = s.symbols().sync(0).unwrap();
        assert_eq!(sync.state(), SyncState::Live);
        assert_eq!(sync.counters.errors, 0);
        assert_eq!(s.stats().errors, 4);
        // Errors carry no sequence number: the next frame follows without a gap.
        let out = feed(s.as_mut(), "[17,[7254.6,1,0.75],2]");
        assert!(
            matches!(out[..], [Event::BookUpdated { seq: Some(2), .. }]),
            "{out:?}"
        );
    }

    #[test]
    fn book_channel_follows_subscribe_and_unsubscribe() {
        let mut s = subscribed();
        assert_eq!(
            s.book_channel("tBTCUSD"),
            Some(17),
            "the book's, not the trades'"
        );
        assert_eq!(s.book_channel("tETHUSD"), None);
        feed(
            s.as_mut(),
            r#"{"event":"unsubscribed","status":"OK","chanId":17}"#,
        );
        assert_eq!(s.book_channel("tBTCUSD"), None);
        // Resubscribed: a new channel id.
        feed(
            s.as_mut(),
            r#"{"event":"subscribed","channel":"book","chanId":23,"symbol":"tBTCUSD","prec":"P0","freq":"F0","len":"25","pair":"BTCUSD"}"#,
        );
        assert_eq!(s.book_channel("tBTCUSD"), Some(23));
        // A raw book is not the P book the session keeps.
        feed(
            s.as_mut(),
            r#"{"event":"subscribed","channel":"book","chanId":24,"symbol":"tBTCUSD","prec":"R0","len":"25"}"#,
        );
        assert_eq!(s.book_channel("tBTCUSD"), Some(23));
    }
}
