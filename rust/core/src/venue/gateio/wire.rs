//! Gate API v4 frames as borrowed types.
//!
//! Every websocket frame is `{"time","time_ms","channel","event","result","error"}`; `result`
//! is kept raw until `channel` says what it holds. Numbers arrive as strings (spot) or as JSON
//! numbers (futures sizes, some times): both are read as `&RawValue` and parsed from their text
//! by `number_text`, so a futures size of `803` or a price of `"0.2983"` is never an `f64`.
//! Book updates, most of the stream, are read by the scanner in one pass (`scan_book_update`);
//! everything else, and a book update outside the common shape, by the derived types below.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::book::Side;
use crate::decimal::Decimal;
use crate::sync::LevelChange;
use crate::venue::json::general_level;
use crate::venue::json::NumberFault;
use crate::venue::scan::Scanner;

/// The envelope of every websocket frame.
#[derive(Deserialize)]
pub(super) struct Envelope<'a> {
    #[serde(borrow, default)]
    pub channel: Option<&'a str>,
    #[serde(borrow, default)]
    pub event: Option<&'a str>,
    #[serde(borrow, default)]
    pub result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub error: Option<ErrorBody<'a>>,
}

/// `{"code": 2, "message": "..."}` of a refused request (websocket), or
/// `{"label": "INVALID_CURRENCY", "message": "..."}` of a refused REST call.
#[derive(Deserialize, Default)]
pub(super) struct ErrorBody<'a> {
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(borrow, default)]
    pub label: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub message: Option<Cow<'a, str>>,
}

/// `*.order_book_update`: ids `U`..`u` and the changed levels.
#[derive(Deserialize)]
pub(super) struct BookUpdate<'a> {
    #[serde(rename = "s", borrow)]
    pub symbol: Option<&'a str>,
    #[serde(rename = "U")]
    pub first: Option<u64>,
    #[serde(rename = "u")]
    pub last: Option<u64>,
    #[serde(rename = "t")]
    pub time_ms: Option<u64>,
    #[serde(rename = "b", borrow, default)]
    pub bids: Vec<Level<'a>>,
    #[serde(rename = "a", borrow, default)]
    pub asks: Vec<Level<'a>>,
}

/// The REST book (`with_id=true`): `id` is the last update it contains; `current` the
/// server's time in seconds (futures only).
#[derive(Deserialize)]
pub(super) struct RestBook<'a> {
    pub id: Option<u64>,
    #[serde(borrow, default)]
    pub current: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub bids: Vec<Level<'a>>,
    #[serde(borrow, default)]
    pub asks: Vec<Level<'a>>,
    #[serde(borrow, default)]
    pub label: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub message: Option<Cow<'a, str>>,
}

/// `*.book_ticker`: the best bid/ask at order book update `u`.
#[derive(Deserialize)]
pub(super) struct BookTicker<'a> {
    #[serde(rename = "s", borrow)]
    pub symbol: Option<&'a str>,
    #[serde(rename = "u")]
    pub id: Option<u64>,
    #[serde(rename = "t")]
    pub time_ms: Option<u64>,
    #[serde(rename = "b", borrow)]
    pub bid: Option<&'a RawValue>,
    #[serde(rename = "B", borrow)]
    pub bid_size: Option<&'a RawValue>,
    #[serde(rename = "a", borrow)]
    pub ask: Option<&'a RawValue>,
    #[serde(rename = "A", borrow)]
    pub ask_size: Option<&'a RawValue>,
}

/// One trade: spot names the pair and the taker's `side`; futures name the `contract` and sign
/// the `size` (negative: the taker sold).
#[derive(Deserialize)]
pub(super) struct TradeRow<'a> {
    #[serde(borrow)]
    pub id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub currency_pair: Option<&'a str>,
    #[serde(borrow, default)]
    pub contract: Option<&'a str>,
    #[serde(borrow, default)]
    pub side: Option<&'a str>,
    #[serde(borrow, default)]
    pub amount: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub size: Option<&'a RawValue>,
    #[serde(borrow)]
    pub price: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub create_time_ms: Option<&'a RawValue>,
    #[serde(default)]
    pub create_time: Option<u64>,
}

/// One candle: `n` is `<interval>_<symbol>`, `t` its open time in seconds; `w` (newer spot
/// frames) says the window closed.
#[derive(Deserialize)]
pub(super) struct CandleRow<'a> {
    #[serde(rename = "n", borrow)]
    pub name: Option<&'a str>,
    #[serde(rename = "t", borrow)]
    pub open_s: Option<&'a RawValue>,
    #[serde(rename = "o", borrow)]
    pub open: Option<&'a RawValue>,
    #[serde(rename = "h", borrow)]
    pub high: Option<&'a RawValue>,
    #[serde(rename = "l", borrow)]
    pub low: Option<&'a RawValue>,
    #[serde(rename = "c", borrow)]
    pub close: Option<&'a RawValue>,
    #[serde(rename = "v", borrow)]
    pub volume: Option<&'a RawValue>,
    #[serde(rename = "w", default)]
    pub closed: Option<bool>,
}

/// A `result` that is one row (spot) or a list of rows (futures).
pub(super) fn rows<'a, T: Deserialize<'a>>(raw: &'a RawValue) -> Result<Vec<T>, serde_json::Error> {
    if raw.get().starts_with('[') {
        serde_json::from_str(raw.get())
    } else {
        serde_json::from_str(raw.get()).map(|row| vec![row])
    }
}

/// The text of a number sent as a JSON number or as a string (quotes removed).
pub(super) fn number_text(raw: &RawValue) -> &str {
    let text = raw.get();
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text)
}

/// A level: `["price", "size"]` (spot) or `{"p": "price", "s": size}` (futures).
pub(super) struct Level<'a> {
    pub price: &'a RawValue,
    pub size: &'a RawValue,
}

impl<'de: 'a, 'a> Deserialize<'de> for Level<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LevelVisitor(std::marker::PhantomData))
    }
}

struct LevelVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for LevelVisitor<'a> {
    type Value = Level<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(r#"a level ["price", "size"] or {"p": price, "s": size}"#)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let price: &RawValue = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let size: &RawValue = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Level { price, size })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut price, mut size) = (None, None);
        while let Some(key) = map.next_key::<&str>()? {
            match key {
                "p" => price = Some(map.next_value::<&RawValue>()?),
                "s" => size = Some(map.next_value::<&RawValue>()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        match (price, size) {
            (Some(price), Some(size)) => Ok(Level { price, size }),
            (None, _) => Err(de::Error::missing_field("p")),
            (_, None) => Err(de::Error::missing_field("s")),
        }
    }
}

/// A book update as the scanner read it (its levels in the caller's buffer).
pub(super) struct ScannedUpdate<'a> {
    pub symbol: &'a str,
    pub first: u64,
    pub last: u64,
    pub time_ms: Option<u64>,
}

/// `{"time",("time_ms",)"channel":"<market>.order_book_update","event":"update","result":{..}}`
/// read in one pass, levels straight to fixed point into `levels`: serde read the envelope to
/// find `result`, then `result` again, then each number from its text. `None` at anything else
/// (other channels, answers, other key orders, a bad number): the derived path reads the frame.
pub(super) fn scan_book_update<'a>(
    frame: &'a [u8],
    channel: &str,
    levels: &mut Vec<LevelChange>,
) -> Option<ScannedUpdate<'a>> {
    let mut scan = Scanner::new(frame);
    scan.begin_object().ok()?;
    let mut first = true;
    let (mut named, mut update, mut result) = (false, false, None);
    while let Some(key) = scan.next_key(&mut first).ok()? {
        match key {
            b"time" | b"time_ms" => scan.skip_value().ok()?,
            b"channel" if !named => {
                named = true;
                (scan.string().ok()? == channel.as_bytes()).then_some(())?;
            }
            b"event" if !update => {
                update = true;
                matches!(scan.string().ok()?, b"update" | b"all").then_some(())?;
            }
            b"result" if named && update && result.is_none() => {
                result = Some(scan_update_result(&mut scan, levels)?)
            }
            _ => return None,
        }
    }
    scan.finish().ok()?;
    result
}

fn scan_update_result<'a>(
    scan: &mut Scanner<'a>,
    levels: &mut Vec<LevelChange>,
) -> Option<ScannedUpdate<'a>> {
    scan.begin_object().ok()?;
    let mut first = true;
    let (mut symbol, mut first_id, mut last_id, mut time_ms) = (None, None, None, None);
    let (mut bids, mut asks) = (false, false);
    while let Some(key) = scan.next_key(&mut first).ok()? {
        match key {
            b"s" if symbol.is_none() => symbol = Some(scan.str_value().ok()?),
            b"U" if first_id.is_none() => first_id = Some(scan.u64().ok()?),
            b"u" if last_id.is_none() => last_id = Some(scan.u64().ok()?),
            b"t" if time_ms.is_none() => time_ms = Some(scan.u64().ok()?),
            b"b" if !bids => {
                bids = true;
                scan_gate_side(scan, Side::Bid, levels)?;
            }
            b"a" if !asks => {
                asks = true;
                scan_gate_side(scan, Side::Ask, levels)?;
            }
            b"s" | b"U" | b"u" | b"t" | b"b" | b"a" => return None,
            _ => scan.skip_value().ok()?,
        }
    }
    Some(ScannedUpdate {
        symbol: symbol?,
        first: first_id?,
        last: last_id?,
        time_ms,
    })
}

/// Spot levels `["price","size"]`, futures levels `{"p":"price","s":size}` (a JSON number).
fn scan_gate_side(scan: &mut Scanner, side: Side, levels: &mut Vec<LevelChange>) -> Option<()> {
    scan.begin_array().ok()?;
    let mut first = true;
    while scan.next_element(&mut first).ok()? {
        let level = if scan.peek()? == b'{' {
            scan_object_level(scan)?
        } else {
            match scan.short_level_skipping_extras().ok()? {
                Some(level) => level,
                None => {
                    general_level::<serde_json::Error>(scan, &mut NumberFault::default()).ok()?
                }
            }
        };
        levels.push((side, level.0, level.1));
    }
    Some(())
}

/// `{"p": price, "s": size}`, each a string or a JSON number, other keys skipped.
fn scan_object_level(scan: &mut Scanner) -> Option<(Decimal, Decimal)> {
    scan.begin_object().ok()?;
    let mut first = true;
    let (mut price, mut size) = (None, None);
    while let Some(key) = scan.next_key(&mut first).ok()? {
        match key {
            b"p" if price.is_none() => price = Some(loose_decimal(scan)?),
            b"s" if size.is_none() => size = Some(loose_decimal(scan)?),
            b"p" | b"s" => return None,
            _ => scan.skip_value().ok()?,
        }
    }
    Some((price?, size?))
}

/// A decimal written as a string or as a JSON number, read from its text either way.
fn loose_decimal(scan: &mut Scanner) -> Option<Decimal> {
    if scan.peek()? == b'"' {
        return scan.quoted_decimal().ok()?.ok();
    }
    Decimal::parse_bytes(scan.number().ok()?).ok()
}
