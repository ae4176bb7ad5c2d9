//! Bitfinex's frames as they arrive: event objects, decoded by derive (rare, not hot), and data
//! arrays `[chanId, payload, ..., seq]`, decoded in one pass whose levels, trades and ticker go
//! straight into the session's reusable buffers.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::book::Side;
use crate::decimal::Decimal;
use crate::error::FrameError;
use crate::event::TradeSide;
use crate::sync::LevelChange;
use crate::venue::json::{FrameFault, LooseText};
use crate::venue::scan::Scanner;
use crate::venue::trades::RawTrade;

/// What a channel carries, as its `subscribed` event said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A P-precision trading book.
    Book,
    Trades,
    /// A trading pair's ticker (funding tickers have another layout and are `Other`).
    Ticker,
    /// Candles, raw or funding books and trades: understood, not kept.
    Other,
    /// A book, trades or ticker channel of a symbol not in `SessionOptions::symbols`: skipped
    /// unread and counted, never given a symbol.
    Unsubscribed,
}

/// An event object: `info`, `conf`, `subscribed`, `unsubscribed`, `pong`, `error`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EventFields<'a> {
    #[serde(borrow)]
    pub event: Option<&'a str>,
    #[serde(borrow)]
    pub channel: Option<&'a str>,
    #[serde(rename = "chanId")]
    pub chan_id: Option<u64>,
    #[serde(borrow)]
    pub symbol: Option<&'a str>,
    /// Old-style subscriptions name the pair without the `t` prefix.
    #[serde(borrow)]
    pub pair: Option<&'a str>,
    /// Candle channels name a key instead (`trade:1m:tBTCUSD`).
    #[serde(borrow)]
    pub key: Option<&'a str>,
    #[serde(borrow)]
    pub prec: Option<&'a str>,
    #[serde(borrow)]
    pub status: Option<&'a str>,
    pub flags: Option<u64>,
    /// `msg` and `code` of an `error` event (Bitfinex sends the code as a number).
    #[serde(borrow, deserialize_with = "loose_text")]
    pub msg: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "loose_text")]
    pub code: Option<Cow<'a, str>>,
}

fn loose_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    LooseText.deserialize(d)
}

/// What a data array carried besides what went into the buffers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    #[default]
    None,
    BookSnapshot,
    BookUpdate,
    Trades,
    Ticker,
}

#[derive(Debug, Default)]
pub struct DataFrame<'a> {
    /// The channel id (set as soon as it is read, so a failure later can name the channel).
    pub chan: Option<u64>,
    /// A string in second position: "hb", "te", "tu", "cs".
    pub tag: Option<&'a str>,
    pub payload: Payload,
    pub crc: Option<i64>,
    /// The last two elements after the payload, where they are unsigned integers
    /// (`trailing[1]` is the last element).
    pub trailing: [Option<u64>; 2],
}

/// The best bid and ask of a trading ticker `[BID, BID_SIZE, ASK, ASK_SIZE, ...]`; Bitfinex's
/// sizes are the sums of the 25 best levels of each side, not the best level's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawQuote {
    pub bid: Decimal,
    pub bid_size: Decimal,
    pub ask: Decimal,
    pub ask_size: Decimal,
}

/// Where a data array's contents go.
pub struct Buffers<'f> {
    pub levels: &'f mut Vec<LevelChange>,
    pub trades: &'f mut Vec<RawTrade>,
    pub quote: &'f mut Option<RawQuote>,
}

/// A frame that could not be decoded, with the channel it named if it got that far.
pub struct Undecoded {
    pub chan: Option<u64>,
    pub error: FrameError,
}

pub enum Frame<'a> {
    Event(EventFields<'a>),
    Data(DataFrame<'a>),
}

/// One frame, decoded; `kind_of` says what each channel id carries.
pub fn decode<'a>(
    frame: &'a [u8],
    kind_of: impl Fn(u64) -> Kind,
    buffers: Buffers<'_>,
) -> Result<Frame<'a>, Undecoded> {
    let starts_object = frame
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{');
    if starts_object {
        let fields: EventFields<'a> = serde_json::from_slice(frame).map_err(|e| Undecoded {
            chan: None,
            error: e.into(),
        })?;
        if fields.event.is_none() {
            return Err(Undecoded {
                chan: None,
                error: FrameError::MissingField("event"),
            });
        }
        return Ok(Frame::Event(fields));
    }
    let kept = buffers.levels.len();
    if let Some(data) = scan_book_frame(frame, &kind_of, buffers.levels) {
        return Ok(Frame::Data(data));
    }
    buffers.levels.truncate(kept);
    let mut data = DataFrame::default();
    let mut fault = FrameFault::default();
    let mut de = serde_json::Deserializer::from_slice(frame);
    let seed = DataSeed {
        kind_of,
        data: &mut data,
        buffers,
        fault: &mut fault,
    };
    match seed.deserialize(&mut de).and_then(|()| de.end()) {
        Ok(()) => Ok(Frame::Data(data)),
        Err(e) => Err(Undecoded {
            chan: data.chan,
            error: fault.into_error(e),
        }),
    }
}

/// A book channel's data array (`[chanId, [price, count, amount], seq]` updates, most of the
/// stream, and snapshots of such levels) or a heartbeat `[chanId, "hb", seq]`, read by the
/// scanner in one pass with numbers straight to fixed point (serde walked each number twice,
/// as a `RawValue` and then its text). `None` at the first thing outside those shapes, a bad
/// number or a malformed frame included: the serde path then reads the frame and says what
/// is wrong with it.
fn scan_book_frame<'a>(
    frame: &'a [u8],
    kind_of: &impl Fn(u64) -> Kind,
    levels: &mut Vec<LevelChange>,
) -> Option<DataFrame<'a>> {
    let mut scan = Scanner::new(frame);
    scan.begin_array().ok()?;
    let mut first = true;
    scan.next_element(&mut first).ok()?.then_some(())?;
    let chan = scan.u64().ok()?;
    let mut data = DataFrame {
        chan: Some(chan),
        ..DataFrame::default()
    };
    scan.next_element(&mut first).ok()?.then_some(())?;
    match scan.peek()? {
        b'"' => {
            let tag = scan.str_value().ok()?;
            (tag == "hb").then_some(())?;
            data.tag = Some(tag);
        }
        b'[' if kind_of(chan) == Kind::Book => {
            data.payload = scan_book_payload(&mut scan, levels)?;
        }
        _ => return None,
    }
    while scan.next_element(&mut first).ok()? {
        data.trailing = [data.trailing[1], Some(scan.u64().ok()?)];
    }
    scan.finish().ok()?;
    Some(data)
}

/// A book payload: one level (an update) or a list of them (a snapshot).
fn scan_book_payload(scan: &mut Scanner, levels: &mut Vec<LevelChange>) -> Option<Payload> {
    scan.begin_array().ok()?;
    let mut first = true;
    if !scan.next_element(&mut first).ok()? {
        return Some(Payload::BookSnapshot);
    }
    if scan.peek()? != b'[' {
        levels.push(scan_level_body(scan, &mut first)?);
        return Some(Payload::BookUpdate);
    }
    loop {
        scan.begin_array().ok()?;
        let mut in_level = true;
        scan.next_element(&mut in_level).ok()?.then_some(())?;
        levels.push(scan_level_body(scan, &mut in_level)?);
        if !scan.next_element(&mut first).ok()? {
            return Some(Payload::BookSnapshot);
        }
    }
}

/// The `price, count, amount[, ...]]` of a level whose first element is next.
fn scan_level_body(scan: &mut Scanner, first: &mut bool) -> Option<LevelChange> {
    let price = scan.number_decimal().ok()?.ok()?;
    scan.next_element(first).ok()?.then_some(())?;
    let count = scan.number_decimal().ok()?.ok()?;
    scan.next_element(first).ok()?.then_some(())?;
    let amount = scan.number_decimal().ok()?.ok()?;
    scan.skip_rest_of_array(first).ok()?;
    level_change(price, count, amount).ok()
}

// Data arrays are read by hand: book levels and trades stream into the session's buffers, a
// snapshot's first level tells snapshot from update, and numbers are taken from their text.

struct DataSeed<'f, 'a, K> {
    kind_of: K,
    data: &'f mut DataFrame<'a>,
    buffers: Buffers<'f>,
    fault: &'f mut FrameFault,
}

impl<'de, K: Fn(u64) -> Kind> DeserializeSeed<'de> for DataSeed<'_, 'de, K> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, K: Fn(u64) -> Kind> Visitor<'de> for DataSeed<'_, 'de, K> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Bitfinex event object or data array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let data = self.data;
        let buffers = self.buffers;
        let chan: u64 = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &"[chanId, payload, ...]"))?;
        data.chan = Some(chan);
        let kind = (self.kind_of)(chan);
        seq.next_element_seed(SecondSeed {
            kind,
            data: &mut *data,
            levels: &mut *buffers.levels,
            trades: &mut *buffers.trades,
            quote: &mut *buffers.quote,
            fault: &mut *self.fault,
        })?
        .ok_or_else(|| de::Error::invalid_length(1, &"[chanId, payload, ...]"))?;
        match (kind, data.tag) {
            (Kind::Trades, Some("te")) => {
                let t = seq
                    .next_element_seed(TradeSeed {
                        fault: &mut *self.fault,
                    })?
                    .ok_or_else(|| de::Error::invalid_length(2, &"[chanId, \"te\", trade]"))?;
                buffers.trades.push(t);
                data.payload = Payload::Trades;
            }
            (_, Some("cs")) => {
                data.crc = Some(
                    seq.next_element()?
                        .ok_or_else(|| de::Error::invalid_length(2, &"[chanId, \"cs\", crc]"))?,
                );
            }
            _ => {}
        }
        while let Some(value) = seq.next_element_seed(TrailingSeed)? {
            data.trailing = [data.trailing[1], value];
        }
        Ok(())
    }
}

/// The second element of a data frame: a tag string or the payload.
struct SecondSeed<'f, 'a> {
    kind: Kind,
    data: &'f mut DataFrame<'a>,
    levels: &'f mut Vec<LevelChange>,
    trades: &'f mut Vec<RawTrade>,
    quote: &'f mut Option<RawQuote>,
    fault: &'f mut FrameFault,
}

impl<'de> DeserializeSeed<'de> for SecondSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SecondSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a message tag or a payload list")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<(), E> {
        self.data.tag = Some(v);
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        // An escaped tag is none we know.
        self.data.tag = Some("?");
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        match self.kind {
            Kind::Book => {
                let first: Option<&'de RawValue> = seq.next_element()?;
                let Some(first) = first else {
                    self.data.payload = Payload::BookSnapshot;
                    return Ok(());
                };
                if first.get().starts_with('[') {
                    // A list of levels: the first was captured whole, the rest stream.
                    self.data.payload = Payload::BookSnapshot;
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
                    self.data.payload = Payload::BookUpdate;
                    let level = level_from_seq(first, &mut seq, self.fault)?;
                    self.levels.push(level);
                }
                Ok(())
            }
            Kind::Trades => {
                self.data.payload = Payload::Trades;
                while let Some(t) = seq.next_element_seed(TradeSeed {
                    fault: &mut *self.fault,
                })? {
                    self.trades.push(t);
                }
                Ok(())
            }
            Kind::Ticker => {
                self.data.payload = Payload::Ticker;
                *self.quote = Some(ticker_from_seq(&mut seq, self.fault)?);
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
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<u64>, D::Error> {
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

/// The number a token holds, read from its text so the venue's digits are kept exactly (a
/// string holding one, as the `DEC_S` flag sends them, is read too).
fn number<E: de::Error>(
    fault: &mut FrameFault,
    field: &'static str,
    raw: &RawValue,
) -> Result<Decimal, E> {
    let text = raw.get();
    let text = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    fault.number(field, text)
}

fn abs<E: de::Error>(
    fault: &mut FrameFault,
    field: &'static str,
    value: Decimal,
) -> Result<Decimal, E> {
    value.abs().map_err(|error| fault.bad_number(field, error))
}

/// `[price, count, amount]` to a level change, from the raw numbers (the serde path).
fn to_change<E: de::Error>(
    fault: &mut FrameFault,
    price: &RawValue,
    count: &RawValue,
    amount: &RawValue,
) -> Result<LevelChange, E> {
    let price = number(fault, "price", price)?;
    let count = number(fault, "count", count)?;
    let amount = number(fault, "amount", amount)?;
    level_change(price, count, amount).map_err(|e| fault.note(e))
}

/// `[price, count, amount]` to a level change: the sign of amount gives the side, count 0
/// deletes.
fn level_change(
    price: Decimal,
    count: Decimal,
    amount: Decimal,
) -> Result<LevelChange, FrameError> {
    if count.is_negative() {
        return Err(FrameError::Invalid(format!("negative count {count}")));
    }
    let side = if amount.is_negative() {
        Side::Ask
    } else if !amount.is_zero() {
        Side::Bid
    } else {
        return Err(FrameError::Invalid(format!(
            "level {price} has no side (amount 0)"
        )));
    };
    let qty = if count.is_zero() {
        Decimal::ZERO
    } else {
        amount.abs().map_err(|error| FrameError::BadNumber {
            field: "amount",
            error,
        })?
    };
    Ok((side, price, qty))
}

fn level_from_seq<'de, A: SeqAccess<'de>>(
    price: &'de RawValue,
    seq: &mut A,
    fault: &mut FrameFault,
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

/// `[BID, BID_SIZE, ASK, ASK_SIZE, DAILY_CHANGE, ...]`: the first four are kept.
fn ticker_from_seq<'de, A: SeqAccess<'de>>(
    seq: &mut A,
    fault: &mut FrameFault,
) -> Result<RawQuote, A::Error> {
    const SHAPE: &str = "[BID, BID_SIZE, ASK, ASK_SIZE, ...]";
    let mut next = |at: usize, field: &'static str, fault: &mut FrameFault| {
        let raw: &'de RawValue = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(at, &SHAPE))?;
        number(fault, field, raw)
    };
    let bid = next(0, "bid", fault)?;
    let bid_size = next(1, "bid_size", fault)?;
    let ask = next(2, "ask", fault)?;
    let ask_size = next(3, "ask_size", fault)?;
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(RawQuote {
        bid,
        bid_size,
        ask,
        ask_size,
    })
}

/// One `[price, count, amount]` level.
struct LevelSeed<'f> {
    fault: &'f mut FrameFault,
}

impl<'de> DeserializeSeed<'de> for LevelSeed<'_> {
    type Value = LevelChange;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<LevelChange, D::Error> {
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

/// One `[id, mts, amount, price]` trade; `amount > 0`: the taker bought.
struct TradeSeed<'f> {
    fault: &'f mut FrameFault,
}

impl<'de> DeserializeSeed<'de> for TradeSeed<'_> {
    type Value = RawTrade;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawTrade, D::Error> {
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
        let amount = number(self.fault, "amount", amount)?;
        let price = number(self.fault, "price", price)?;
        let side = if amount.is_negative() {
            Some(TradeSide::Sell)
        } else if amount.is_zero() {
            None
        } else {
            Some(TradeSide::Buy)
        };
        let size = abs(self.fault, "amount", amount)?;
        Ok(RawTrade {
            id,
            ts_ms: mts,
            price,
            size,
            side,
        })
    }
}
