//! HTX's frames: gzip-compressed JSON, inflated here, then read as borrowed types.
//!
//! Data pushes are `{"ch":"market.<sym>.<channel>","ts":..,"tick":{..}}`; subscription answers
//! `{"id","subbed"|"unsubbed","status":"ok"}`; refusals `{"status":"error","err-code","err-msg"}`;
//! the server's heartbeat `{"ping":T}`. Prices and sizes are JSON numbers: each is read from its
//! text (`RawValue`), never through `f64`.

use std::borrow::Cow;
use std::fmt;
use std::io::Read;

use flate2::read::GzDecoder;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::book::Side;
use crate::decimal::Decimal;
use crate::error::FrameError;
use crate::sync::LevelChange;
use crate::venue::json::NumberFault;

/// The two bytes every gzip member starts with (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The JSON text of a frame: inflated into `buf` when it is gzip (what HTX sends), the frame
/// itself when it is already plain JSON (a proxy or a test that inflated it). An inflated frame
/// over `max` bytes is refused: a small compressed frame can expand without bound.
pub fn inflate<'a>(
    frame: &'a [u8],
    buf: &'a mut Vec<u8>,
    max: usize,
) -> Result<&'a [u8], FrameError> {
    if !frame.starts_with(&GZIP_MAGIC) {
        return Ok(frame);
    }
    buf.clear();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    GzDecoder::new(frame)
        .take(limit)
        .read_to_end(buf)
        .map_err(|e| FrameError::Invalid(format!("gzip frame does not inflate: {e}")))?;
    if buf.len() > max {
        return Err(FrameError::Oversized {
            len: buf.len(),
            max,
        });
    }
    Ok(buf)
}

/// The outer object of every frame; `tick` is read once `ch` says what it holds.
#[derive(Deserialize)]
pub struct Frame<'a> {
    #[serde(default, borrow)]
    pub ch: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub tick: Option<&'a RawValue>,
    #[serde(default)]
    pub ts: Option<u64>,
    /// The heartbeat's value, kept as text to be echoed back digit for digit.
    #[serde(default, borrow)]
    pub ping: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub status: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "err-code")]
    pub err_code: Option<&'a RawValue>,
    #[serde(default, borrow, rename = "err-msg")]
    pub err_msg: Option<Cow<'a, str>>,
}

pub fn read_frame(text: &[u8]) -> Result<Frame<'_>, FrameError> {
    Ok(serde_json::from_slice(text)?)
}

/// What a channel name says: `market.<symbol>.<kind>...`.
pub enum Channel<'a> {
    Depth(&'a str),
    Trades(&'a str),
    Other,
}

pub fn channel(ch: &str) -> Channel<'_> {
    let mut parts = ch.splitn(3, '.');
    let (Some("market"), Some(symbol), Some(rest)) = (parts.next(), parts.next(), parts.next())
    else {
        return Channel::Other;
    };
    if symbol.is_empty() {
        return Channel::Other;
    }
    if rest.starts_with("depth.step") {
        Channel::Depth(symbol)
    } else if rest == "trade.detail" {
        Channel::Trades(symbol)
    } else {
        Channel::Other
    }
}

/// A `depth.step*` tick: the whole book, its levels appended to the caller's buffer.
pub struct DepthTick {
    pub version: Option<u64>,
    pub mrid: Option<u64>,
    pub ts: Option<u64>,
}

pub fn read_depth(tick: &RawValue, levels: &mut Vec<LevelChange>) -> Result<DepthTick, FrameError> {
    let mut fault = NumberFault::default();
    let mut de = serde_json::Deserializer::from_str(tick.get());
    let parsed = DepthSeed {
        levels,
        fault: &mut fault,
    }
    .deserialize(&mut de);
    match parsed {
        Ok(tick) => Ok(tick),
        Err(e) => Err(match fault.fault {
            Some((field, error)) => FrameError::BadNumber { field, error },
            None => e.into(),
        }),
    }
}

struct DepthSeed<'l> {
    levels: &'l mut Vec<LevelChange>,
    fault: &'l mut NumberFault,
}

impl<'de> DeserializeSeed<'de> for DepthSeed<'_> {
    type Value = DepthTick;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<DepthTick, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DepthSeed<'_> {
    type Value = DepthTick;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an HTX depth tick")
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<DepthTick, A::Error> {
        let mut tick = DepthTick {
            version: None,
            mrid: None,
            ts: None,
        };
        let (mut bids, mut asks) = (false, false);
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "bids" => {
                    map.next_value_seed(NumberLevels {
                        side: Side::Bid,
                        out: &mut *self.levels,
                        fault: &mut *self.fault,
                    })?;
                    bids = true;
                }
                "asks" => {
                    map.next_value_seed(NumberLevels {
                        side: Side::Ask,
                        out: &mut *self.levels,
                        fault: &mut *self.fault,
                    })?;
                    asks = true;
                }
                "version" => tick.version = map.next_value()?,
                "mrid" => tick.mrid = map.next_value()?,
                "ts" => tick.ts = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        // An empty side is sent as `[]`; a side left out is not a book.
        if !bids {
            return Err(de::Error::missing_field("bids"));
        }
        if !asks {
            return Err(de::Error::missing_field("asks"));
        }
        Ok(tick)
    }
}

/// `[[price, size], ...]` of JSON numbers, appended to `out`.
pub struct NumberLevels<'a> {
    pub side: Side,
    pub out: &'a mut Vec<LevelChange>,
    pub fault: &'a mut NumberFault,
}

impl<'de> DeserializeSeed<'de> for NumberLevels<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for NumberLevels<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of [price, size] number pairs")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(level) = seq.next_element::<(&'de RawValue, &'de RawValue)>()? {
            let price = number(self.fault, "price", level.0)?;
            let size = number(self.fault, "size", level.1)?;
            self.out.push((self.side, price, size));
        }
        Ok(())
    }
}

/// A JSON number as an exact decimal, from the digits the venue wrote.
pub fn number<E: de::Error>(
    fault: &mut NumberFault,
    field: &'static str,
    raw: &RawValue,
) -> Result<Decimal, E> {
    fault.parse(field, raw.get())
}

/// One trade of a `trade.detail` tick's `data`.
#[derive(Deserialize)]
pub struct TradeItem<'a> {
    #[serde(borrow)]
    pub price: &'a RawValue,
    #[serde(borrow)]
    pub amount: &'a RawValue,
    #[serde(default, borrow)]
    pub direction: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub id: Option<&'a RawValue>,
    /// Spot trades carry a shorter `tradeId` beside their long `id`.
    #[serde(default, borrow, rename = "tradeId")]
    pub trade_id: Option<&'a RawValue>,
    #[serde(default)]
    pub ts: Option<u64>,
}

#[derive(Deserialize)]
pub struct TradeTick<'a> {
    #[serde(borrow)]
    pub data: Vec<TradeItem<'a>>,
}

pub fn read_trades(tick: &RawValue) -> Result<TradeTick<'_>, FrameError> {
    Ok(serde_json::from_str(tick.get())?)
}
