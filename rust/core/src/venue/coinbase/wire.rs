//! Coinbase Advanced Trade frames as read: the envelope (`channel`, `timestamp`,
//! `sequence_num`, an error answer's `type`/`message`/`reason`) and its `events`, each with its
//! book levels, trades, candles or tickers.
//!
//! The envelope, `events` and book `updates` are read by hand-written seeds so that levels go
//! straight into the session's reusable buffer as the frame is read (a `level2` snapshot holds
//! tens of thousands of them); trades, candles and tickers are derived.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::book::Side;
use crate::error::FrameError;
use crate::sync::LevelChange;
use crate::venue::check_frame_size;
use crate::venue::json::{LooseText, NumberFault};
use crate::venue::scan::Scanner;
use crate::venue::time::parse_iso8601_ns;

/// Reads `frame` into `fields`, its book levels into `levels`.
pub(super) fn decode<'de>(
    frame: &'de [u8],
    fields: &mut Fields<'de>,
    levels: &mut Vec<LevelChange>,
    max_bytes: usize,
) -> Result<(), FrameError> {
    check_frame_size(frame, max_bytes)?;
    let kept = levels.len();
    if scan_book(frame, fields, levels).is_some() {
        return Ok(());
    }
    *fields = Fields::default();
    levels.truncate(kept);
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

/// A `level2` frame (`channel`, `client_id`, `timestamp`, `sequence_num`, `events` of `type`,
/// `product_id` and `updates`), read by the scanner in one pass with numbers straight to fixed
/// point: a snapshot holds tens of thousands of levels, each of which serde made four checked
/// `&str` of. `None` at the first thing outside that shape, a bad number or time or a
/// malformed frame included: the serde path then reads the frame and says what is wrong.
fn scan_book<'de>(
    frame: &'de [u8],
    fields: &mut Fields<'de>,
    levels: &mut Vec<LevelChange>,
) -> Option<()> {
    let mut scan = Scanner::new(frame);
    scan.begin_object().ok()?;
    let mut first = true;
    while let Some(key) = scan.next_key(&mut first).ok()? {
        match key {
            b"channel" => fields.channel = Some(scan.str_value().ok()?),
            b"client_id" => scan.skip_value().ok()?,
            b"timestamp" => fields.timestamp = Some(scan.str_value().ok()?),
            b"sequence_num" => fields.sequence_num = Some(scan.u64().ok()?),
            b"events" => {
                scan.begin_array().ok()?;
                let mut first_event = true;
                while scan.next_element(&mut first_event).ok()? {
                    scan_book_event(&mut scan, fields, levels)?;
                }
            }
            _ => return None,
        }
    }
    scan.finish().ok()?;
    (fields.channel == Some("l2_data")).then_some(())
}

fn scan_book_event<'de>(
    scan: &mut Scanner<'de>,
    fields: &mut Fields<'de>,
    levels: &mut Vec<LevelChange>,
) -> Option<()> {
    scan.begin_object().ok()?;
    let mut event = EventSpan {
        levels: (levels.len(), levels.len()),
        ..EventSpan::default()
    };
    let mut first = true;
    while let Some(key) = scan.next_key(&mut first).ok()? {
        match key {
            b"type" => event.kind = Some(scan.str_value().ok()?),
            b"product_id" => {
                let product = scan.str_value().ok()?;
                event.product = Some(product);
                fields.last_product = Some(product);
            }
            b"updates" => {
                fields.saw_updates = true;
                scan_updates(scan, levels, &mut event.event_ts_ns)?;
            }
            _ => return None,
        }
    }
    event.levels.1 = levels.len();
    fields.events.push(event);
    Some(())
}

/// `updates`: `{side, event_time, price_level, new_quantity}` objects; `latest_ns` the latest
/// `event_time`. A snapshot's levels share a handful of times: each is parsed once.
fn scan_updates(
    scan: &mut Scanner,
    levels: &mut Vec<LevelChange>,
    latest_ns: &mut u64,
) -> Option<()> {
    scan.begin_array().ok()?;
    let mut first = true;
    let mut last_time: (&[u8], u64) = (&[], 0);
    while scan.next_element(&mut first).ok()? {
        scan.begin_object().ok()?;
        let (mut side, mut price, mut qty) = (None, None, None);
        let mut first_key = true;
        while let Some(key) = scan.next_key(&mut first_key).ok()? {
            match key {
                b"side" => {
                    side = Some(match scan.string().ok()? {
                        b"bid" => Side::Bid,
                        b"offer" | b"ask" => Side::Ask,
                        _ => return None,
                    })
                }
                b"price_level" => price = Some(scan.quoted_decimal().ok()?.ok()?),
                b"new_quantity" => qty = Some(scan.quoted_decimal().ok()?.ok()?),
                b"event_time" => {
                    let text = scan.string().ok()?;
                    if text != last_time.0 {
                        let ns = parse_iso8601_ns(std::str::from_utf8(text).ok()?)?;
                        last_time = (text, ns);
                    }
                    *latest_ns = (*latest_ns).max(last_time.1);
                }
                _ => scan.skip_value().ok()?,
            }
        }
        levels.push((side?, price?, qty?));
    }
    Some(())
}

/// One element of `events`, with where its parts landed: levels in the session's buffer,
/// trades, candles and tickers in the frame's lists.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct EventSpan<'a> {
    pub kind: Option<&'a str>,
    pub product: Option<&'a str>,
    pub levels: (usize, usize),
    /// Latest `event_time` of the event's levels, Unix ns (0: none).
    pub event_ts_ns: u64,
    pub candles: (usize, usize),
    pub trades: (usize, usize),
    pub tickers: (usize, usize),
}

/// The events of a frame. Book frames carry one event, kept inline so that decoding one
/// allocates nothing; more spill into a list.
#[derive(Debug, Default)]
pub(super) struct Events<'a> {
    first: Option<EventSpan<'a>>,
    more: Vec<EventSpan<'a>>,
}

impl<'a> Events<'a> {
    pub fn push(&mut self, event: EventSpan<'a>) {
        if self.first.is_none() {
            self.first = Some(event);
        } else {
            self.more.push(event);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &EventSpan<'a>> {
        self.first.iter().chain(self.more.iter())
    }
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct TradeItem<'a> {
    #[serde(borrow)]
    pub trade_id: Option<&'a str>,
    #[serde(borrow)]
    pub product_id: Option<&'a str>,
    #[serde(borrow)]
    pub price: Option<&'a str>,
    #[serde(borrow)]
    pub size: Option<&'a str>,
    #[serde(borrow)]
    pub side: Option<&'a str>,
    #[serde(borrow)]
    pub time: Option<&'a str>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct CandleItem<'a> {
    #[serde(borrow)]
    pub start: Option<&'a str>,
    #[serde(borrow)]
    pub open: Option<&'a str>,
    #[serde(borrow)]
    pub high: Option<&'a str>,
    #[serde(borrow)]
    pub low: Option<&'a str>,
    #[serde(borrow)]
    pub close: Option<&'a str>,
    #[serde(borrow)]
    pub volume: Option<&'a str>,
    #[serde(borrow)]
    pub product_id: Option<&'a str>,
}

/// One ticker of a `ticker` (or `ticker_batch`) event: the product's best bid and ask.
#[derive(Debug, Default, Deserialize)]
pub(super) struct TickerItem<'a> {
    #[serde(borrow)]
    pub product_id: Option<&'a str>,
    #[serde(borrow)]
    pub best_bid: Option<&'a str>,
    #[serde(borrow)]
    pub best_bid_quantity: Option<&'a str>,
    #[serde(borrow)]
    pub best_ask: Option<&'a str>,
    #[serde(borrow)]
    pub best_ask_quantity: Option<&'a str>,
}

/// Everything we read from a Coinbase frame, filled in one pass.
#[derive(Debug, Default)]
pub(super) struct Fields<'a> {
    pub channel: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub sequence_num: Option<u64>,
    pub msg_type: Option<&'a str>,
    /// `message` and `reason` of an error answer.
    pub message: Option<Cow<'a, str>>,
    pub reason: Option<Cow<'a, str>>,
    pub events: Events<'a>,
    pub trades: Vec<TradeItem<'a>>,
    pub candles: Vec<CandleItem<'a>>,
    pub tickers: Vec<TickerItem<'a>>,
    /// The last `product_id` read, even in an event that broke off.
    pub last_product: Option<&'a str>,
    /// An `updates` list was seen: this is a book frame whatever its channel said.
    pub saw_updates: bool,
    pub number: NumberFault,
    pub invalid: Option<FrameError>,
}

impl Fields<'_> {
    pub fn is_book(&self) -> bool {
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
        let trades_start = f.trades.len();
        let tickers_start = f.tickers.len();
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
                "tickers" => {
                    let tickers: Vec<TickerItem<'de>> = map.next_value()?;
                    f.tickers.extend(tickers);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        event.levels = (levels_start, self.levels.len());
        event.candles = (candles_start, f.candles.len());
        event.trades = (trades_start, f.trades.len());
        event.tickers = (tickers_start, f.tickers.len());
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

/// The error of a time field that is not an ISO-8601 UTC time.
pub(super) fn bad_time(field: &str) -> FrameError {
    FrameError::Invalid(format!("`{field}` is not an ISO-8601 UTC time"))
}
