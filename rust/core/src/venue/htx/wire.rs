//! HTX's frames: gzip-compressed JSON, inflated here, then read as borrowed types.
//!
//! Data pushes are `{"ch":"market.<sym>.<channel>","ts":..,"tick":{..}}`; subscription answers
//! `{"id","subbed"|"unsubbed","status":"ok"}`; refusals `{"status":"error","err-code","err-msg"}`;
//! the server's heartbeat `{"ping":T}`. Prices and sizes are JSON numbers: each is read from its
//! text (`RawValue`), never through `f64`.

use std::borrow::Cow;
use std::fmt;

use flate2::{Decompress, FlushDecompress, Status};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::book::Side;
use crate::decimal::Decimal;
use crate::error::FrameError;
use crate::sync::LevelChange;
use crate::venue::json::NumberFault;
use crate::venue::scan::Scanner;

/// The two bytes every gzip member starts with (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// What a session keeps between frames to inflate them: one raw-deflate state, reset per
/// frame (a fresh `GzDecoder` allocated and zeroed some 80 KB of state per frame, a fifth of
/// HTX's decode cost).
pub struct Inflater {
    raw: Decompress,
}

impl Default for Inflater {
    fn default() -> Self {
        Inflater {
            raw: Decompress::new(false),
        }
    }
}

impl Inflater {
    /// The JSON text of a frame: inflated into `buf` when it is gzip (what HTX sends), the
    /// frame itself when it is already plain JSON (a proxy or a test that inflated it). An
    /// inflated frame over `max` bytes is refused: a small compressed frame can expand without
    /// bound. The member's CRC-32 and length are checked as a gzip reader checks them.
    pub fn inflate<'a>(
        &mut self,
        frame: &'a [u8],
        buf: &'a mut Vec<u8>,
        max: usize,
    ) -> Result<&'a [u8], FrameError> {
        if !frame.starts_with(&GZIP_MAGIC) {
            return Ok(frame);
        }
        let body = gzip_body(frame).ok_or_else(|| not_gzip("bad gzip header"))?;
        buf.clear();
        // The whole output in one call when it fits: the backend then inflates straight into
        // `buf`, with no copy through its window. It rarely does not fit (the buffer is kept
        // between frames): then grow it, up to just past `max`, and start again.
        let limit = max.saturating_add(1);
        if buf.capacity() == 0 {
            buf.reserve(limit.min(16 * 1024));
        }
        let used = loop {
            self.raw.reset(false);
            buf.clear();
            match self
                .raw
                .decompress_vec(body, buf, FlushDecompress::Finish)
                .map_err(|e| not_gzip(&e.to_string()))?
            {
                Status::StreamEnd => break self.raw.total_in() as usize,
                _ if buf.capacity() >= limit => {
                    return Err(FrameError::Oversized {
                        len: buf.len(),
                        max,
                    })
                }
                _ if buf.len() < buf.capacity() && self.raw.total_in() as usize == body.len() => {
                    return Err(not_gzip("truncated deflate stream"))
                }
                _ => {
                    let grown = (buf.capacity() * 2).min(limit);
                    buf.reserve_exact(grown - buf.len());
                }
            }
        };
        if buf.len() > max {
            return Err(FrameError::Oversized {
                len: buf.len(),
                max,
            });
        }
        let trailer = body
            .get(used..used + 8)
            .ok_or_else(|| not_gzip("truncated gzip trailer"))?;
        let crc = u32::from_le_bytes(trailer[..4].try_into().unwrap_or_default());
        let size = u32::from_le_bytes(trailer[4..].try_into().unwrap_or_default());
        if crc != crc32fast::hash(buf) {
            return Err(not_gzip("CRC-32 mismatch"));
        }
        if size != buf.len() as u32 {
            return Err(not_gzip("length mismatch"));
        }
        Ok(buf)
    }
}

#[cold]
fn not_gzip(why: &str) -> FrameError {
    FrameError::Invalid(format!("gzip frame does not inflate: {why}"))
}

/// The deflate stream of a gzip member (RFC 1952 section 2.3: a ten-byte header, then the
/// optional extra field, name, comment and header CRC its flags announce).
fn gzip_body(frame: &[u8]) -> Option<&[u8]> {
    const FHCRC: u8 = 0x02;
    const FEXTRA: u8 = 0x04;
    const FNAME: u8 = 0x08;
    const FCOMMENT: u8 = 0x10;
    const RESERVED: u8 = 0xE0;
    let header = frame.get(..10)?;
    let flags = header[3];
    if header[2] != 8 || flags & RESERVED != 0 {
        return None;
    }
    let mut at = 10;
    if flags & FEXTRA != 0 {
        let len = u16::from_le_bytes(frame.get(at..at + 2)?.try_into().ok()?) as usize;
        at += 2 + len;
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            at += frame.get(at..)?.iter().position(|&b| b == 0)? + 1;
        }
    }
    if flags & FHCRC != 0 {
        at += 2;
    }
    frame.get(at..)
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

/// Reads a tick's levels, the first `keep` of each side (the rest are skipped).
pub fn read_depth(
    tick: &RawValue,
    keep: usize,
    levels: &mut Vec<LevelChange>,
) -> Result<DepthTick, FrameError> {
    let mut fault = NumberFault::default();
    let mut de = serde_json::Deserializer::from_str(tick.get());
    let parsed = DepthSeed {
        levels,
        keep,
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
    keep: usize,
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
                        keep: self.keep,
                        out: &mut *self.levels,
                        fault: &mut *self.fault,
                    })?;
                    bids = true;
                }
                "asks" => {
                    map.next_value_seed(NumberLevels {
                        side: Side::Ask,
                        keep: self.keep,
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

/// `[[price, size], ...]` of JSON numbers, the first `keep` appended to `out`.
pub struct NumberLevels<'a> {
    pub side: Side,
    pub keep: usize,
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
        let mut read = 0;
        while read < self.keep {
            let Some(level) = seq.next_element::<(&'de RawValue, &'de RawValue)>()? else {
                return Ok(());
            };
            let price = number(self.fault, "price", level.0)?;
            let size = number(self.fault, "size", level.1)?;
            self.out.push((self.side, price, size));
            read += 1;
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
}

/// A depth push as the scanner read it.
pub struct DepthPush<'a> {
    pub symbol: &'a str,
    pub frame_ts: Option<u64>,
    pub tick: DepthTick,
}

/// A `depth.step*` push in its common shape (`ch` first, `ts`, then `tick`), read by the
/// scanner in one pass with numbers straight to fixed point: every push is a whole book, and
/// serde walked `tick` twice (once to find its end, then each number as text). The first
/// `keep` levels of each side are kept, the rest only checked. `None` at the first thing
/// outside that shape, a bad number or a malformed frame included: the serde path then reads
/// the frame and says what is wrong with it.
pub fn scan_depth<'a>(
    text: &'a [u8],
    keep: usize,
    levels: &mut Vec<LevelChange>,
) -> Option<DepthPush<'a>> {
    let kept = levels.len();
    let push = scan_depth_frame(text, keep, levels);
    if push.is_none() {
        levels.truncate(kept);
    }
    push
}

fn scan_depth_frame<'a>(
    text: &'a [u8],
    keep: usize,
    levels: &mut Vec<LevelChange>,
) -> Option<DepthPush<'a>> {
    let mut scan = Scanner::new(text);
    scan.begin_object().ok()?;
    let mut first = true;
    if scan.next_key(&mut first).ok()? != Some(b"ch") {
        return None;
    }
    let Channel::Depth(symbol) = channel(scan.str_value().ok()?) else {
        return None;
    };
    let (mut frame_ts, mut tick) = (None, None);
    while let Some(key) = scan.next_key(&mut first).ok()? {
        match key {
            b"ts" => frame_ts = Some(scan.u64().ok()?),
            b"tick" => tick = Some(scan_tick(&mut scan, keep, levels)?),
            _ => return None,
        }
    }
    scan.finish().ok()?;
    Some(DepthPush {
        symbol,
        frame_ts,
        tick: tick?,
    })
}

fn scan_tick(scan: &mut Scanner, keep: usize, levels: &mut Vec<LevelChange>) -> Option<DepthTick> {
    scan.begin_object().ok()?;
    let mut tick = DepthTick {
        version: None,
        mrid: None,
        ts: None,
    };
    let (mut bids, mut asks) = (false, false);
    let mut first = true;
    while let Some(key) = scan.next_key(&mut first).ok()? {
        match key {
            b"bids" => bids = scan_levels(scan, Side::Bid, keep, levels).is_some(),
            b"asks" => asks = scan_levels(scan, Side::Ask, keep, levels).is_some(),
            b"version" => tick.version = Some(scan.u64().ok()?),
            b"mrid" => tick.mrid = Some(scan.u64().ok()?),
            b"ts" => tick.ts = Some(scan.u64().ok()?),
            _ => scan.skip_value().ok()?,
        }
    }
    (bids && asks).then_some(tick)
}

/// `[[price, size], ...]` of JSON numbers, the first `keep` appended to `levels`.
fn scan_levels(
    scan: &mut Scanner,
    side: Side,
    keep: usize,
    levels: &mut Vec<LevelChange>,
) -> Option<()> {
    scan.begin_array().ok()?;
    let mut first = true;
    for _ in 0..keep {
        if !scan.next_element(&mut first).ok()? {
            return Some(());
        }
        scan.begin_array().ok()?;
        let mut inner = true;
        scan.next_element(&mut inner).ok()?.then_some(())?;
        let price = scan.number_decimal().ok()?.ok()?;
        scan.next_element(&mut inner).ok()?.then_some(())?;
        let size = scan.number_decimal().ok()?.ok()?;
        (!scan.next_element(&mut inner).ok()?).then_some(())?;
        levels.push((side, price, size));
    }
    scan.skip_rest_of_array(&mut first).ok()
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
