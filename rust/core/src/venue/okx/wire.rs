//! OKX's frames as borrowed types, and their reading into levels, trades and quotes.
//!
//! Every frame is one object: `{"arg":{"channel","instId"},"action","data":[...]}` for data,
//! `{"event","code","msg"}` for answers and notices; the REST book is
//! `{"code","msg","data":[{...}]}`. A book's `data` is read in the same pass as the frame,
//! straight into the session's level buffer, when `arg` came first (OKX writes it first) or
//! the frame is a REST book; any other `data` is kept raw and read with derived types once
//! the channel is known.

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
use crate::venue::json::{LevelsSeed, LooseText, NumberFault};

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
