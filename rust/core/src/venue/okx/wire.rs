//! OKX's frames as borrowed types, and their reading into levels, trades and quotes.
//!
//! Every frame is one object: `{"arg":{"channel","instId"},"action","data":[...]}` for data,
//! `{"event","code","msg"}` for answers and notices; the REST book is
//! `{"code","msg","data":[{...}]}`. A websocket book frame in OKX's usual shape is read by
//! the scanner in one pass, its numbers straight to fixed point into the session's level
//! buffer. Anything else goes through serde, which also reads a book's `data` in the frame's
//! pass when `arg` came first or the frame is a REST book; any other `data` is kept raw and
//! read with derived types once the channel is known.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::book::Side;
use crate::decimal::Decimal;
use crate::error::FrameError;
use crate::sync::LevelChange;
use crate::venue::json::{scan_side, LevelsSeed, LooseText, NumberFault};
use crate::venue::scan::Scanner;

/// The channels whose `data` holds books.
pub fn is_book_channel(channel: &str) -> bool {
    matches!(
        channel,
        "books" | "books-l2-tbt" | "books50-l2-tbt" | "books-elp" | "books5" | "bbo-tbt"
    )
}

/// A frame (or REST body): the fields the session uses.
#[derive(Default)]
pub struct Frame<'a> {
    pub channel: Option<&'a str>,
    pub inst_id: Option<&'a str>,
    pub action: Option<&'a str>,
    pub event: Option<&'a str>,
    pub code: Option<Cow<'a, str>>,
    pub msg: Option<Cow<'a, str>>,
    pub data: Option<Data<'a>>,
}

/// A `data` list.
pub enum Data<'a> {
    /// Not read yet: the channel says how.
    Raw(&'a RawValue),
    /// Book items, read as the frame was, their levels appended to the caller's buffer.
    Book(Vec<BookItem>),
}

/// One book of a `data` list, its levels a range of the caller's buffer.
#[derive(Debug, Clone)]
pub struct BookItem {
    pub levels: Range<usize>,
    pub ts: Option<i64>,
    pub checksum: Option<i64>,
    pub seq_id: Option<i64>,
    pub prev_seq_id: Option<i64>,
}

/// A frame that could not be read, with what it named before the fault.
pub struct FrameFault<'a> {
    pub channel: Option<&'a str>,
    pub inst_id: Option<&'a str>,
    pub error: FrameError,
}

/// Reads a frame, or a REST book body when `rest_book` (its `data` is a book without `arg`).
pub fn read_frame<'a>(
    frame: &'a [u8],
    rest_book: bool,
    levels: &mut Vec<LevelChange>,
) -> Result<Frame<'a>, FrameFault<'a>> {
    if !rest_book {
        let kept = levels.len();
        if let Some(parsed) = scan_book_frame(frame, levels) {
            return Ok(parsed);
        }
        // Not the usual book frame: serde reads it from the start, so what the frame yields
        // (and how it fails) is serde's alone.
        levels.truncate(kept);
    }
    let mut fault = NumberFault::default();
    let mut parsed = Frame::default();
    let mut de = serde_json::Deserializer::from_slice(frame);
    let result = FrameSeed {
        frame: &mut parsed,
        rest_book,
        levels: &mut *levels,
        fault: &mut fault,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    match result {
        Ok(()) => Ok(parsed),
        Err(e) => Err(FrameFault {
            channel: parsed.channel,
            inst_id: parsed.inst_id,
            error: typed(fault, e),
        }),
    }
}

/// Reads book items kept raw (their `data` came before `arg`: never, from OKX).
pub fn read_book_items(
    data: &RawValue,
    levels: &mut Vec<LevelChange>,
) -> Result<Vec<BookItem>, FrameError> {
    let mut fault = NumberFault::default();
    let mut de = serde_json::Deserializer::from_str(data.get());
    BookItemsSeed {
        levels,
        fault: &mut fault,
    }
    .deserialize(&mut de)
    .map_err(|e| typed(fault, e))
}

/// The usual book frame (`arg` first, then `action` and `data` of items of `asks`, `bids`,
/// `ts`, `checksum`, `seqId`, `prevSeqId`) read by the scanner in one pass: serde found each
/// side's list as a raw value and the scanner then read it again, and serde's walk of the rest
/// checked every string's UTF-8 (the whole OKX tape: see benches/README.md). `None` at the
/// first thing outside that shape, a bad number or a malformed frame included.
fn scan_book_frame<'a>(frame: &'a [u8], levels: &mut Vec<LevelChange>) -> Option<Frame<'a>> {
    let mut scan = Scanner::new(frame);
    let mut parsed = Frame::default();
    scan.begin_object().ok()?;
    let mut first = true;
    while let Some(key) = scan.next_key(&mut first).ok()? {
        match key {
            b"arg" => scan_arg(&mut scan, &mut parsed)?,
            b"action" => parsed.action = Some(scan.str_value().ok()?),
            b"data" if parsed.channel.is_some_and(is_book_channel) => {
                parsed.data = Some(Data::Book(scan_book_items(&mut scan, levels)?));
            }
            _ => return None,
        }
    }
    scan.finish().ok()?;
    Some(parsed)
}

fn scan_arg<'a>(scan: &mut Scanner<'a>, parsed: &mut Frame<'a>) -> Option<()> {
    scan.begin_object().ok()?;
    let mut first = true;
    while let Some(key) = scan.next_key(&mut first).ok()? {
        match key {
            b"channel" => parsed.channel = Some(scan.str_value().ok()?),
            b"instId" => parsed.inst_id = Some(scan.str_value().ok()?),
            _ => return None,
        }
    }
    Some(())
}

fn scan_book_items(scan: &mut Scanner, levels: &mut Vec<LevelChange>) -> Option<Vec<BookItem>> {
    let mut items = Vec::with_capacity(1);
    scan.begin_array().ok()?;
    let mut first_item = true;
    while scan.next_element(&mut first_item).ok()? {
        let start = levels.len();
        let mut item = BookItem {
            levels: start..start,
            ts: None,
            checksum: None,
            seq_id: None,
            prev_seq_id: None,
        };
        scan.begin_object().ok()?;
        let mut first = true;
        while let Some(key) = scan.next_key(&mut first).ok()? {
            match key {
                b"asks" => scan_side(scan, Side::Ask, levels)?,
                b"bids" => scan_side(scan, Side::Bid, levels)?,
                b"ts" => item.ts = Some(scan_int(scan)?),
                b"checksum" => item.checksum = Some(scan_int(scan)?),
                b"seqId" => item.seq_id = Some(scan_int(scan)?),
                b"prevSeqId" => item.prev_seq_id = Some(scan_int(scan)?),
                _ => return None,
            }
        }
        item.levels.end = levels.len();
        items.push(item);
    }
    Some(items)
}

/// An integer as `IntSeed` reads it, in its plain shapes only: `-?digits` as a JSON number or
/// as a string (OKX quotes `ts`), at most 18 digits.
fn scan_int(scan: &mut Scanner) -> Option<i64> {
    let text = if scan.peek() == Some(b'"') {
        scan.string().ok()?
    } else {
        scan.number().ok()?
    };
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = digits
        .iter()
        .fold(0i64, |value, &digit| value * 10 + (digit - b'0') as i64);
    Some(if negative { -value } else { value })
}

fn typed(fault: NumberFault, e: serde_json::Error) -> FrameError {
    match fault.fault {
        Some((field, error)) => FrameError::BadNumber { field, error },
        None => e.into(),
    }
}

/// `{"channel", "instId"}` of a frame.
#[derive(Deserialize)]
struct Arg<'a> {
    #[serde(default)]
    channel: Option<&'a str>,
    #[serde(default, rename = "instId")]
    inst_id: Option<&'a str>,
}

// Hand-written for the hot path: reading a book's `data` raw, then again as book items, costs
// 18% more instructions on the whole OKX tape than this one pass (valgrind, 2 builds).
struct FrameSeed<'f, 'a, 'l> {
    frame: &'f mut Frame<'a>,
    rest_book: bool,
    levels: &'l mut Vec<LevelChange>,
    fault: &'l mut NumberFault,
}

impl<'de> DeserializeSeed<'de> for FrameSeed<'_, 'de, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FrameSeed<'_, 'de, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an OKX message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let f = self.frame;
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "arg" => {
                    let arg: Arg<'de> = map.next_value()?;
                    f.channel = arg.channel;
                    f.inst_id = arg.inst_id;
                }
                "action" => f.action = map.next_value()?,
                "event" => f.event = map.next_value()?,
                "code" => f.code = map.next_value_seed(LooseText)?,
                "msg" => f.msg = map.next_value_seed(LooseText)?,
                "data" if self.rest_book || f.channel.is_some_and(is_book_channel) => {
                    let items = map.next_value_seed(BookItemsSeed {
                        levels: &mut *self.levels,
                        fault: &mut *self.fault,
                    })?;
                    f.data = Some(Data::Book(items));
                }
                "data" => f.data = Some(Data::Raw(map.next_value()?)),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct BookItemsSeed<'l> {
    levels: &'l mut Vec<LevelChange>,
    fault: &'l mut NumberFault,
}

impl<'de> DeserializeSeed<'de> for BookItemsSeed<'_> {
    type Value = Vec<BookItem>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for BookItemsSeed<'_> {
    type Value = Vec<BookItem>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of OKX books")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(1);
        while let Some(item) = seq.next_element_seed(BookItemSeed {
            levels: &mut *self.levels,
            fault: &mut *self.fault,
        })? {
            items.push(item);
        }
        Ok(items)
    }
}

struct BookItemSeed<'l> {
    levels: &'l mut Vec<LevelChange>,
    fault: &'l mut NumberFault,
}

impl<'de> DeserializeSeed<'de> for BookItemSeed<'_> {
    type Value = BookItem;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for BookItemSeed<'_> {
    type Value = BookItem;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an OKX book object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let start = self.levels.len();
        let mut item = BookItem {
            levels: start..start,
            ts: None,
            checksum: None,
            seq_id: None,
            prev_seq_id: None,
        };
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "asks" | "bids" => map.next_value_seed(LevelsSeed {
                    side: if key == "asks" { Side::Ask } else { Side::Bid },
                    out: &mut *self.levels,
                    fault: &mut *self.fault,
                })?,
                "ts" => item.ts = Some(map.next_value_seed(IntSeed)?),
                "checksum" => item.checksum = Some(map.next_value_seed(IntSeed)?),
                "seqId" => item.seq_id = Some(map.next_value_seed(IntSeed)?),
                "prevSeqId" => item.prev_seq_id = Some(map.next_value_seed(IntSeed)?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        item.levels.end = self.levels.len();
        Ok(item)
    }
}

/// One item of a `trades` (or `trades-all`) frame.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TradeItem<'a> {
    #[serde(default)]
    pub inst_id: Option<&'a str>,
    pub trade_id: &'a str,
    pub px: &'a str,
    pub sz: &'a str,
    #[serde(default)]
    pub side: Option<&'a str>,
    #[serde(default, deserialize_with = "int")]
    pub ts: Option<i64>,
}

/// One item of a `tickers` frame: best bid and ask with their sizes (empty when a side has
/// nothing).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TickerItem<'a> {
    #[serde(default)]
    pub inst_id: Option<&'a str>,
    #[serde(default)]
    pub bid_px: &'a str,
    #[serde(default)]
    pub bid_sz: &'a str,
    #[serde(default)]
    pub ask_px: &'a str,
    #[serde(default)]
    pub ask_sz: &'a str,
    #[serde(default, deserialize_with = "int")]
    pub ts: Option<i64>,
}

/// A decimal written as text.
pub fn number(field: &'static str, text: &str) -> Result<Decimal, FrameError> {
    Decimal::parse(text).map_err(|error| FrameError::BadNumber { field, error })
}

fn int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    IntSeed.deserialize(d).map(Some)
}

/// An integer written as a JSON number or as a string of digits (OKX quotes `ts`).
struct IntSeed;

impl<'de> DeserializeSeed<'de> for IntSeed {
    type Value = i64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<i64, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for IntSeed {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom("integer out of range"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        v.parse()
            .map_err(|_| E::custom(format_args!("not an integer: {v:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame's names, its items' integer fields and their levels.
    type Read<'a> = (
        Vec<Option<&'a str>>,
        Vec<[Option<i64>; 4]>,
        Vec<LevelChange>,
    );

    fn read(frame: &str) -> Option<Read<'_>> {
        let mut levels = Vec::new();
        let f = read_frame(frame.as_bytes(), false, &mut levels).ok()?;
        let Some(Data::Book(items)) = &f.data else {
            return None;
        };
        let fields = items
            .iter()
            .map(|i| [i.ts, i.checksum, i.seq_id, i.prev_seq_id])
            .collect();
        let mut by_item = Vec::new();
        for item in items {
            by_item.extend_from_slice(&levels[item.levels.clone()]);
        }
        Some((vec![f.channel, f.inst_id, f.action], fields, by_item))
    }

    #[test]
    fn scanned_and_serde_read_book_frames_agree() {
        // Compact (the scanner's), then with white space, an unknown key and a long number
        // (serde's): the same frame either way.
        let compact = r#"{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[["30242","0.0012","0","2"],["30248.9","0","0","0"]],"bids":[["30240.4","123456789.123456789","0","1"]],"ts":"1652459227125","checksum":-1023321165,"seqId":17,"prevSeqId":-1}]}"#;
        let spaced = r#"{ "arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "update", "x": 1, "data": [{"asks": [["30242", "0.0012", "0", "2"], ["30248.9","0","0","0"]], "bids": [["30240.4","123456789.123456789","0","1"]], "ts": 1652459227125, "checksum": -1023321165, "seqId": "17", "prevSeqId": -1}]}"#;
        let want = read(compact).expect("a book frame");
        assert_eq!(read(spaced), Some(want.clone()));
        assert_eq!(want.0, [Some("books"), Some("BTC-USDT"), Some("update")]);
        assert_eq!(
            want.1,
            [[
                Some(1_652_459_227_125),
                Some(-1_023_321_165),
                Some(17),
                Some(-1)
            ]]
        );
        let d = |s: &str| Decimal::parse(s).unwrap();
        assert_eq!(
            want.2,
            [
                (Side::Ask, d("30242"), d("0.0012")),
                (Side::Ask, d("30248.9"), d("0")),
                (Side::Bid, d("30240.4"), d("123456789.123456789")),
            ]
        );
        // A bad number is typed whichever reader met it first.
        let bad = compact.replace("\"0.0012\"", "\"0.0x12\"");
        let mut levels = Vec::new();
        let fault = read_frame(bad.as_bytes(), false, &mut levels)
            .err()
            .unwrap();
        assert!(matches!(fault.error, FrameError::BadNumber { .. }));
        assert_eq!(fault.inst_id, Some("BTC-USDT"));
    }
}
