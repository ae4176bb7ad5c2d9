//! Kraken's frames as borrowed types, and their reading into levels, trades and quotes.
//!
//! A v1 data frame is an array whose payload shape is told by the channel name written after
//! it (`[channelID, payload.., channelName, pair]`). Book channels, announced by their
//! `subscriptionStatus` before the first frame, are read in one pass straight into the
//! session's level buffer; other payloads are kept raw and read with derived types once the
//! name is known. Objects (v1 events and every v2 message) are one `Message`: a v2 book's
//! `data` is read in the same pass when `channel` came first (Kraken writes it first), any
//! other `data` is kept raw for the channel's derived types.
//!
//! Hand-written visitors are the book paths only; each says what the alternative costs.

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
use crate::venue::json::{LooseText, NumberFault};
use crate::venue::scan::Scanner;
use crate::venue::time::parse_epoch_seconds_ns;

/// A v1 data array: its channel id, its payloads, and the trailing channel name and pair
/// (either may be missing: the `subscriptionStatus` of the channel id then tells them).
#[derive(Default)]
pub struct V1Frame<'a> {
    pub channel_id: u64,
    /// The payloads, unread: the channel name will say how to read them.
    pub payloads: Vec<&'a RawValue>,
    /// Read as a book in the same pass (its channel was announced as one); its levels were
    /// appended to the caller's buffer and `payloads` is empty.
    pub book: Option<V1Book<'a>>,
    pub name: Option<&'a str>,
    pub pair: Option<&'a str>,
}

/// What a v1 book frame said besides its levels.
#[derive(Debug, Clone, Copy, Default)]
pub struct V1Book<'a> {
    pub snapshot: bool,
    pub checksum: Option<&'a str>,
    /// The newest level timestamp: the frame's exchange time.
    pub newest_ns: u64,
}

/// Reads a v1 array. `announce` is told the channel id as soon as it is read, and answers
/// whether the channel is a book: its payloads are then read as one in the same pass, their
/// levels appended to `levels`; any other payload is kept raw.
pub fn read_v1_frame<'a>(
    frame: &'a [u8],
    mut announce: impl FnMut(u64) -> bool,
    levels: &mut Vec<LevelChange>,
) -> Result<V1Frame<'a>, FrameError> {
    let kept = levels.len();
    if let Some(v1) = scan_v1_book(frame, &mut announce, levels) {
        return Ok(v1);
    }
    // Not a book frame in the common shape: serde reads it from the start and says what is
    // wrong, if anything.
    levels.truncate(kept);
    let mut read = V1Read::new(levels);
    let mut de = serde_json::Deserializer::from_slice(frame);
    let result = V1FrameSeed {
        read: &mut read,
        announce: &mut announce,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    if let Err(e) = result {
        return Err(read.error(e));
    }
    let book = if read.as_book {
        Some(read.finish_book()?)
    } else {
        None
    };
    Ok(V1Frame {
        channel_id: read.channel_id.unwrap_or_default(),
        book,
        ..read.frame
    })
}

/// A book frame of an announced book channel read by the scanner in one pass, each level's
/// numbers straight to fixed point (serde made a `&str` of each and checked its UTF-8 before
/// `Decimal::parse` read it again). `None` at anything else: another channel, a level not in
/// the common short shape, a fault; the caller's serde path then reads the frame.
fn scan_v1_book<'a>(
    frame: &'a [u8],
    announce: &mut impl FnMut(u64) -> bool,
    levels: &mut Vec<LevelChange>,
) -> Option<V1Frame<'a>> {
    let mut scan = Scanner::new(frame);
    scan.begin_array().ok()?;
    let channel_id = scan.u64().ok()?;
    if !announce(channel_id) {
        return None;
    }
    let mut book = V1Book::default();
    let (mut saw_snapshot, mut saw_update) = (false, false);
    let (mut name, mut pair) = (None, None);
    let mut first = false;
    while scan.next_element(&mut first).ok()? {
        if scan.peek()? == b'"' {
            let text = scan.str_value().ok()?;
            match (name, pair) {
                (None, _) => name = Some(text),
                (Some(_), None) => pair = Some(text),
                _ => return None,
            }
            continue;
        }
        scan.begin_object().ok()?;
        let mut first_key = true;
        while let Some(key) = scan.next_key(&mut first_key).ok()? {
            let side = match key {
                b"as" | b"a" => Side::Ask,
                b"bs" | b"b" => Side::Bid,
                b"c" => {
                    book.checksum = Some(scan.str_value().ok()?);
                    continue;
                }
                _ => return None,
            };
            if key.len() == 2 {
                saw_snapshot = true;
            } else {
                saw_update = true;
            }
            scan_v1_side(&mut scan, side, levels, &mut book.newest_ns)?;
        }
    }
    scan.finish().ok()?;
    // One of the two kinds, as `finish_book` wants (its errors are serde's path's to give).
    if saw_snapshot == saw_update {
        return None;
    }
    book.snapshot = saw_snapshot;
    Some(V1Frame {
        channel_id,
        payloads: Vec::new(),
        book: Some(book),
        name,
        pair,
    })
}

/// `[["price","volume","time"(,"r")], ...]`, the newest time kept in `newest_ns`.
fn scan_v1_side(
    scan: &mut Scanner,
    side: Side,
    levels: &mut Vec<LevelChange>,
    newest_ns: &mut u64,
) -> Option<()> {
    scan.begin_array().ok()?;
    let mut first = true;
    while scan.next_element(&mut first).ok()? {
        let (price, volume) = match scan.short_level_head() {
            Some(head) => head,
            // Longer numbers (nine decimals on small prices): still one pass.
            None => {
                scan.begin_array().ok()?;
                let mut head = true;
                scan.next_element(&mut head).ok()?.then_some(())?;
                let price = scan.quoted_decimal().ok()?.ok()?;
                scan.next_element(&mut head).ok()?.then_some(())?;
                (price, scan.quoted_decimal().ok()?.ok()?)
            }
        };
        let mut rest = false;
        scan.next_element(&mut rest).ok()?.then_some(())?;
        let time = std::str::from_utf8(scan.string().ok()?).ok()?;
        *newest_ns = (*newest_ns).max(parse_epoch_seconds_ns(time)?);
        // The republish flag, applied like any level.
        if scan.next_element(&mut rest).ok()? {
            scan.str_value().ok()?;
            if scan.next_element(&mut rest).ok()? {
                return None;
            }
        }
        levels.push((side, price, volume));
    }
    Some(())
}

/// Reads the payloads of a book frame that were kept raw (its channel was never announced).
pub fn read_v1_book<'a>(
    payloads: &[&'a RawValue],
    levels: &mut Vec<LevelChange>,
) -> Result<V1Book<'a>, FrameError> {
    let mut read = V1Read::new(levels);
    for raw in payloads {
        let mut de = serde_json::Deserializer::from_str(raw.get());
        BookElementSeed(&mut read)
            .deserialize(&mut de)
            .map_err(|e| read.error(e))?;
    }
    read.finish_book()
}

/// One v1 read: what was read so far, and why it stopped.
struct V1Read<'a, 'l> {
    channel_id: Option<u64>,
    as_book: bool,
    frame: V1Frame<'a>,
    book: V1Book<'a>,
    saw_snapshot: bool,
    saw_update: bool,
    levels: &'l mut Vec<LevelChange>,
    fault: NumberFault,
    shape: Option<&'static str>,
}

impl<'a, 'l> V1Read<'a, 'l> {
    fn new(levels: &'l mut Vec<LevelChange>) -> Self {
        V1Read {
            channel_id: None,
            as_book: false,
            frame: V1Frame::default(),
            book: V1Book::default(),
            saw_snapshot: false,
            saw_update: false,
            levels,
            fault: NumberFault::default(),
            shape: None,
        }
    }

    /// The typed error of a read that stopped on `e`.
    fn error(&mut self, e: serde_json::Error) -> FrameError {
        if let Some((field, error)) = self.fault.fault.take() {
            return FrameError::BadNumber { field, error };
        }
        match self.shape.take() {
            Some(message) => FrameError::Invalid(message.into()),
            None => e.into(),
        }
    }

    /// Stops the read on a frame of the wrong shape.
    fn refuse<E: de::Error>(&mut self, message: &'static str) -> E {
        self.shape.get_or_insert(message);
        E::custom(message)
    }

    /// The channel name, then the pair.
    fn trailing<E: de::Error>(&mut self, text: &'a str) -> Result<(), E> {
        if self.frame.name.is_none() {
            self.frame.name = Some(text);
        } else if self.frame.pair.is_none() {
            self.frame.pair = Some(text);
        } else {
            return Err(self.refuse("more than two strings after the payload"));
        }
        Ok(())
    }

    fn finish_book(&self) -> Result<V1Book<'a>, FrameError> {
        match (self.saw_snapshot, self.saw_update) {
            (true, true) => Err(FrameError::Invalid(
                "book frame mixes snapshot and update keys".into(),
            )),
            (false, false) => Err(FrameError::Invalid("book frame has no levels".into())),
            (snapshot, _) => Ok(V1Book {
                snapshot,
                ..self.book
            }),
        }
    }
}

// Hand-written for the hot path: reading v1 book payloads raw, then again as a book, costs 9%
// more instructions on the whole Kraken tape than this one pass (valgrind, 2 builds).
struct V1FrameSeed<'r, 'a, 'l, F> {
    read: &'r mut V1Read<'a, 'l>,
    announce: &'r mut F,
}

impl<'de, F: FnMut(u64) -> bool> DeserializeSeed<'de> for V1FrameSeed<'_, 'de, '_, F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(u64) -> bool> Visitor<'de> for V1FrameSeed<'_, 'de, '_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("[channelID, payload.., channelName, pair]")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let read = self.read;
        let channel_id: u64 = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &"[channelID, payload.., name, pair]"))?;
        read.channel_id = Some(channel_id);
        if (self.announce)(channel_id) {
            read.as_book = true;
            while seq
                .next_element_seed(BookElementSeed(&mut *read))?
                .is_some()
            {}
            return Ok(());
        }
        while let Some(raw) = seq.next_element::<&'de RawValue>()? {
            if raw.get().starts_with('"') {
                let text = serde_json::from_str(raw.get()).map_err(de::Error::custom)?;
                read.trailing(text)?;
            } else {
                read.frame.payloads.push(raw);
            }
        }
        Ok(())
    }
}

/// An element after the channel id of a book frame: a dict of levels, or a trailing string.
struct BookElementSeed<'r, 'a, 'l>(&'r mut V1Read<'a, 'l>);

impl<'de> DeserializeSeed<'de> for BookElementSeed<'_, 'de, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BookElementSeed<'_, 'de, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a dict of book levels, the channel name or the pair")
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<(), E> {
        self.0.trailing(text)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.0.refuse("book frame payload is not a book"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let read = self.0;
        while let Some(key) = map.next_key::<&'de str>()? {
            let side = match key {
                "as" | "a" => Side::Ask,
                "bs" | "b" => Side::Bid,
                "c" => {
                    read.book.checksum = Some(map.next_value()?);
                    continue;
                }
                _ => return Err(read.refuse("book frame payload is not a book")),
            };
            if key.len() == 2 {
                read.saw_snapshot = true;
            } else {
                read.saw_update = true;
            }
            map.next_value_seed(SideSeed(&mut *read, side))?;
        }
        Ok(())
    }
}

/// `[[price, volume, timestamp(, "r")], ...]` of one side.
struct SideSeed<'r, 'a, 'l>(&'r mut V1Read<'a, 'l>, Side);

impl<'de> DeserializeSeed<'de> for SideSeed<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for SideSeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of [price, volume, timestamp] levels")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let SideSeed(read, side) = self;
        while let Some(level) = seq.next_element::<V1Level<'de>>()? {
            let time = parse_epoch_seconds_ns(level.time).ok_or_else(|| {
                de::Error::custom(format_args!("bad level timestamp {:?}", level.time))
            })?;
            let price = read.fault.parse("price", level.price)?;
            let volume = read.fault.parse("volume", level.volume)?;
            read.book.newest_ns = read.book.newest_ns.max(time);
            read.levels.push((side, price, volume));
        }
        Ok(())
    }
}

/// `[price, volume, timestamp]`, with `"r"` after a level republished because it came back
/// inside the subscribed depth (applied like any other).
#[derive(Deserialize)]
struct V1Level<'a> {
    price: &'a str,
    volume: &'a str,
    time: &'a str,
    #[serde(default)]
    _republished: Option<&'a str>,
}

/// `[price, volume, time, side, orderType, misc]`, newer rows with a trade id after.
#[derive(Deserialize)]
pub struct V1TradeRow<'a> {
    pub price: &'a str,
    pub volume: &'a str,
    pub time: &'a str,
    pub side: &'a str,
    _order_type: IgnoredAny,
    _misc: IgnoredAny,
    #[serde(default, borrow, deserialize_with = "loose_text")]
    pub trade_id: Option<Cow<'a, str>>,
}

/// The one list payload of a v1 trade frame.
pub fn read_v1_trades<'a>(payloads: &[&'a RawValue]) -> Result<Vec<V1TradeRow<'a>>, FrameError> {
    match payloads {
        [raw] if raw.get().starts_with('[') => Ok(serde_json::from_str(raw.get())?),
        _ => Err(FrameError::Invalid(
            "trade frame payload is not a list of trades".into(),
        )),
    }
}

/// A v1 ticker's best ask (`a`) and bid (`b`); the other statistics are not kept.
#[derive(Deserialize)]
pub struct V1Ticker<'a> {
    #[serde(rename = "a", borrow)]
    pub ask: V1TickerTop<'a>,
    #[serde(rename = "b", borrow)]
    pub bid: V1TickerTop<'a>,
}

/// `[price, wholeLotVolume, lotVolume]`: the whole-lot volume is the lot volume rounded down
/// to an integer, so the lot volume is the size.
#[derive(Deserialize)]
pub struct V1TickerTop<'a> {
    pub price: &'a str,
    _whole_lot_volume: IgnoredAny,
    pub lot_volume: &'a str,
}

/// The one dict payload of a v1 ticker frame.
pub fn read_v1_ticker<'a>(payloads: &[&'a RawValue]) -> Result<V1Ticker<'a>, FrameError> {
    match payloads {
        [raw] => Ok(serde_json::from_str(raw.get())?),
        _ => Err(FrameError::Invalid(
            "ticker frame has more than one payload".into(),
        )),
    }
}

/// A v1 event or any v2 message: the fields the session uses.
#[derive(Default)]
pub struct Message<'a> {
    pub event: Option<&'a str>,
    pub channel_id: Option<u64>,
    pub channel_name: Option<&'a str>,
    pub pair: Option<&'a str>,
    pub status: Option<&'a str>,
    pub subscription: Option<V1Subscription<'a>>,
    pub channel: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub method: Option<&'a str>,
    pub success: Option<bool>,
    pub result: Option<V2Result<'a>>,
    /// v2 answers name their symbol at the top level.
    pub symbol: Option<&'a str>,
    /// v1 `errorMessage`, v2 `error`.
    pub error: Option<Cow<'a, str>>,
    pub data: Option<Data<'a>>,
}

/// A v2 `data` list.
pub enum Data<'a> {
    /// Not read yet: the channel says how.
    Raw(&'a RawValue),
    /// A book's items, read as the frame was (`channel` came first), their levels appended to
    /// the caller's buffer.
    Book(BookItems<'a>),
}

/// The items of a v2 book message: one in practice, kept without allocating.
pub enum BookItems<'a> {
    None,
    One(V2BookItem<'a>),
    Many(Vec<V2BookItem<'a>>),
}

impl<'a> BookItems<'a> {
    fn push(&mut self, item: V2BookItem<'a>) {
        *self = match std::mem::replace(self, BookItems::None) {
            BookItems::None => BookItems::One(item),
            BookItems::One(first) => BookItems::Many(vec![first, item]),
            BookItems::Many(mut items) => {
                items.push(item);
                BookItems::Many(items)
            }
        };
    }

    pub fn as_slice(&self) -> &[V2BookItem<'a>] {
        match self {
            BookItems::None => &[],
            BookItems::One(item) => std::slice::from_ref(item),
            BookItems::Many(items) => items,
        }
    }
}

/// v1 `subscription` of a `subscriptionStatus`.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct V1Subscription<'a> {
    pub name: Option<&'a str>,
    pub depth: Option<u64>,
}

/// v2 `result` of a `subscribe` answer.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct V2Result<'a> {
    pub channel: Option<&'a str>,
    pub symbol: Option<&'a str>,
    pub depth: Option<u64>,
}

/// One item of a v2 `book` message's `data`, its levels a range of the caller's buffer.
pub struct V2BookItem<'a> {
    pub symbol: Option<&'a str>,
    pub levels: Range<usize>,
    pub checksum: Option<u32>,
    pub timestamp: Option<&'a str>,
}

/// An object that could not be read, with the first book symbol read before the fault (a v2
/// book frame names one in practice, and it lost an update).
pub struct MessageFault<'a> {
    pub book_symbol: Option<&'a str>,
    pub error: FrameError,
}

/// Reads a v1 event or a v2 message into `message` (a default one: filled in place, as it is
/// large); a v2 book's levels are appended to `levels`.
pub fn read_message<'a>(
    frame: &'a [u8],
    message: &mut Message<'a>,
    levels: &mut Vec<LevelChange>,
) -> Result<(), MessageFault<'a>> {
    let mut read = V2Read {
        levels,
        fault: NumberFault::default(),
        book_symbol: None,
    };
    let mut de = serde_json::Deserializer::from_slice(frame);
    MessageSeed {
        message,
        read: &mut read,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end())
    .map_err(|e| read.fault(e))
}

/// Reads the items of a v2 book `data` that came before its `channel` (never, from Kraken).
pub fn read_v2_book<'a>(
    data: &'a RawValue,
    levels: &mut Vec<LevelChange>,
) -> Result<BookItems<'a>, MessageFault<'a>> {
    let mut read = V2Read {
        levels,
        fault: NumberFault::default(),
        book_symbol: None,
    };
    let mut de = serde_json::Deserializer::from_str(data.get());
    BookItemsSeed(&mut read)
        .deserialize(&mut de)
        .map_err(|e| read.fault(e))
}

struct V2Read<'a, 'l> {
    levels: &'l mut Vec<LevelChange>,
    fault: NumberFault,
    book_symbol: Option<&'a str>,
}

impl<'a> V2Read<'a, '_> {
    fn fault(&mut self, e: serde_json::Error) -> MessageFault<'a> {
        let error = match self.fault.fault.take() {
            Some((field, error)) => FrameError::BadNumber { field, error },
            None => e.into(),
        };
        MessageFault {
            book_symbol: self.book_symbol,
            error,
        }
    }
}

// Hand-written for the hot path of v2: reading `data` raw, then as derived book items, costs
// 12% more instructions than this one pass on the Kraken tape's books written as v2 frames.
struct MessageSeed<'m, 'r, 'a, 'l> {
    message: &'m mut Message<'a>,
    read: &'r mut V2Read<'a, 'l>,
}

impl<'de> DeserializeSeed<'de> for MessageSeed<'_, '_, 'de, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MessageSeed<'_, '_, 'de, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Kraken event or message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let m = self.message;
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "event" => m.event = map.next_value()?,
                "channelID" => m.channel_id = map.next_value()?,
                "channelName" => m.channel_name = map.next_value()?,
                "pair" => m.pair = map.next_value()?,
                "status" => m.status = map.next_value()?,
                "subscription" => m.subscription = map.next_value()?,
                "channel" => m.channel = map.next_value()?,
                "type" => m.kind = map.next_value()?,
                "method" => m.method = map.next_value()?,
                "success" => m.success = map.next_value()?,
                "result" => m.result = map.next_value()?,
                "symbol" => m.symbol = map.next_value()?,
                "error" | "errorMessage" => m.error = map.next_value_seed(LooseText)?,
                "data" if m.channel == Some("book") => {
                    let items = map.next_value_seed(BookItemsSeed(&mut *self.read))?;
                    m.data = Some(Data::Book(items));
                }
                "data" => m.data = Some(Data::Raw(map.next_value()?)),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// `[{"symbol", "bids", "asks", "checksum", "timestamp"}, ...]` of a v2 book message.
struct BookItemsSeed<'r, 'a, 'l>(&'r mut V2Read<'a, 'l>);

impl<'de> DeserializeSeed<'de> for BookItemsSeed<'_, 'de, '_> {
    type Value = BookItems<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for BookItemsSeed<'_, 'de, '_> {
    type Value = BookItems<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of book items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let read = self.0;
        let mut items = BookItems::None;
        while let Some(item) = seq.next_element_seed(BookItemSeed(&mut *read))? {
            items.push(item);
        }
        Ok(items)
    }
}

struct BookItemSeed<'r, 'a, 'l>(&'r mut V2Read<'a, 'l>);

impl<'de> DeserializeSeed<'de> for BookItemSeed<'_, 'de, '_> {
    type Value = V2BookItem<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for BookItemSeed<'_, 'de, '_> {
    type Value = V2BookItem<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a book item")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let read = self.0;
        let start = read.levels.len();
        let mut item = V2BookItem {
            symbol: None,
            levels: start..start,
            checksum: None,
            timestamp: None,
        };
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "symbol" => {
                    let symbol: &'de str = map.next_value()?;
                    item.symbol = Some(symbol);
                    read.book_symbol.get_or_insert(symbol);
                }
                "bids" => map.next_value_seed(V2SideSeed(&mut *read, Side::Bid))?,
                "asks" => map.next_value_seed(V2SideSeed(&mut *read, Side::Ask))?,
                "checksum" => item.checksum = map.next_value()?,
                "timestamp" => item.timestamp = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        item.levels.end = read.levels.len();
        Ok(item)
    }
}

/// `[{"price": N, "qty": N}, ...]` of one side of a v2 book item.
struct V2SideSeed<'r, 'a, 'l>(&'r mut V2Read<'a, 'l>, Side);

impl<'de> DeserializeSeed<'de> for V2SideSeed<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for V2SideSeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of {price, qty} levels")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let V2SideSeed(read, side) = self;
        while let Some(level) = seq.next_element::<V2Level<'de>>()? {
            let price = read.fault.parse("price", unquoted(level.price))?;
            let qty = read.fault.parse("qty", unquoted(level.qty))?;
            read.levels.push((side, price, qty));
        }
        Ok(())
    }
}

/// `{"price": N, "qty": N}`, numbers kept as the venue wrote them (its checksum reads the
/// digits, trailing zeros included).
#[derive(Deserialize)]
struct V2Level<'a> {
    #[serde(borrow)]
    price: &'a RawValue,
    #[serde(borrow)]
    qty: &'a RawValue,
}

/// One item of a v2 `trade` message's `data`.
#[derive(Deserialize)]
pub struct V2Trade<'a> {
    pub symbol: &'a str,
    #[serde(default)]
    pub side: Option<&'a str>,
    #[serde(borrow)]
    pub price: &'a RawValue,
    #[serde(borrow)]
    pub qty: &'a RawValue,
    #[serde(default, borrow, deserialize_with = "loose_text")]
    pub trade_id: Option<Cow<'a, str>>,
    #[serde(default)]
    pub timestamp: Option<&'a str>,
}

/// One item of a v2 `ticker` message's `data`: best bid and ask with their sizes (absent or
/// null when a side is empty).
#[derive(Deserialize)]
pub struct V2Ticker<'a> {
    pub symbol: &'a str,
    #[serde(default, borrow)]
    pub bid: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub bid_qty: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub ask: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub ask_qty: Option<&'a RawValue>,
    #[serde(default)]
    pub timestamp: Option<&'a str>,
}

/// A decimal written as text.
pub fn number(field: &'static str, text: &str) -> Result<Decimal, FrameError> {
    Decimal::parse(text).map_err(|error| FrameError::BadNumber { field, error })
}

/// A JSON number as a decimal with the digits the venue wrote.
pub fn raw_number(field: &'static str, raw: &RawValue) -> Result<Decimal, FrameError> {
    number(field, unquoted(raw))
}

/// The text of a JSON number token; a quoted number (as Kraken's guide prints them) loses its
/// quotes.
fn unquoted(raw: &RawValue) -> &str {
    let text = raw.get();
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text)
}

/// A trade id written as a number or as a string.
fn loose_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    LooseText.deserialize(d)
}
