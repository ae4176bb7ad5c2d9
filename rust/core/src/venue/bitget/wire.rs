//! Bitget websocket frames as borrowed types: `{"action","arg":{"instType","channel","instId"},
//! "data":[..]}` for data, `{"event","code","msg","arg"}` for answers, the text `pong` for the
//! heartbeat. Data frames (books, trades, candles) are read by the scanner in one pass
//! (`scan_frame`); anything outside their common shape, answers and faulty frames included, is
//! read again by the derived types below, `data` kept raw until the channel says what it holds.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::book::Side;
use crate::decimal::Decimal;
use crate::error::FrameError;
use crate::event::TradeSide;
use crate::sync::LevelChange;
use crate::venue::json::scan_side;
use crate::venue::scan::Scanner;

#[derive(Deserialize)]
pub(super) struct Frame<'a> {
    #[serde(borrow, default)]
    pub event: Option<&'a str>,
    #[serde(borrow, default)]
    pub code: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub msg: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub action: Option<&'a str>,
    #[serde(borrow, default)]
    pub arg: Option<Arg<'a>>,
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub(super) struct Arg<'a> {
    #[serde(borrow, default)]
    pub channel: Option<&'a str>,
    #[serde(rename = "instId", borrow, default)]
    pub inst_id: Option<&'a str>,
}

/// One book of a `books` frame: levels `["price", "size"]`, `ts` in ms (a string), and the
/// signed CRC32 `checksum` of the top 25 levels.
#[derive(Deserialize)]
pub(super) struct BookItem<'a> {
    #[serde(borrow, default)]
    pub asks: Vec<(&'a str, &'a str)>,
    #[serde(borrow, default)]
    pub bids: Vec<(&'a str, &'a str)>,
    #[serde(borrow, default)]
    pub ts: Option<&'a RawValue>,
    #[serde(default)]
    pub checksum: Option<i64>,
}

/// A trade row of ws v1: `["ts", "price", "size", "side"]` (the taker's side; no trade id).
pub(super) type TradeRow<'a> = (&'a str, &'a str, &'a str, &'a str);

/// A candle row: `["open ts", "o", "h", "l", "c", "base volume"]`.
pub(super) type CandleRow<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str, &'a str);

/// The text of a number sent as a JSON number or a string.
pub(super) fn number_text(raw: &RawValue) -> &str {
    let text = raw.get();
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text)
}

/// `text` as a decimal, a bad one named by `field`.
pub(super) fn number(field: &'static str, text: &str) -> Result<Decimal, FrameError> {
    Decimal::parse(text).map_err(|error| FrameError::BadNumber { field, error })
}

/// Milliseconds since the epoch as text (`"1649290077777"`), to a count.
pub(super) fn millis(field: &'static str, text: &str) -> Result<u64, FrameError> {
    text.parse()
        .map_err(|_| FrameError::Invalid(format!("`{field}` {text:?} is not milliseconds")))
}

/// A data frame as the scanner read it; its rows are in `Decoded` (and the book levels in the
/// session's level buffer).
pub(super) struct Scanned<'a> {
    pub snapshot: bool,
    pub channel: &'a str,
    pub inst_id: &'a str,
    pub kind: DataKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DataKind {
    Books,
    Trades,
    Candles,
    /// A channel not read (`ticker`): its data was only checked to be JSON.
    Skipped,
}

/// One book of a `books` frame: its levels end at `end` in the level buffer.
#[derive(Debug, Clone, Copy)]
pub(super) struct BookMark {
    pub end: usize,
    pub ts_ms: Option<u64>,
    pub checksum: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct TradeFields {
    pub ts_ms: u64,
    pub price: Decimal,
    pub size: Decimal,
    pub side: TradeSide,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct CandleFields {
    pub open_ms: u64,
    /// Open, high, low, close, base volume.
    pub ohlcv: [Decimal; 5],
}

/// The scanner's reusable row buffers.
#[derive(Debug, Default)]
pub(super) struct Decoded {
    pub books: Vec<BookMark>,
    pub trades: Vec<TradeFields>,
    pub candles: Vec<CandleFields>,
}

/// A data frame in the venue's shape (`action`, `arg`, then `data`) read in one pass, numbers
/// straight to fixed point: the derived path read the frame once to find `data` and again to
/// read it (books, and candle histories of a thousand rows, are most of the stream's bytes).
/// `None` at the first thing outside that shape, a bad number or an answer included: the caller
/// then reads the frame by the derived path, which says what is wrong.
pub(super) fn scan_frame<'a>(
    frame: &'a [u8],
    levels: &mut Vec<LevelChange>,
    decoded: &mut Decoded,
) -> Option<Scanned<'a>> {
    let mut scan = Scanner::new(frame);
    scan.begin_object().ok()?;
    let mut first = true;
    let mut snapshot = None;
    let mut arg = None;
    let mut kind = None;
    while let Some(key) = scan.next_key(&mut first).ok()? {
        match key {
            b"action" if snapshot.is_none() => {
                snapshot = Some(match scan.string().ok()? {
                    b"snapshot" => true,
                    b"update" => false,
                    _ => return None,
                })
            }
            b"arg" if arg.is_none() => arg = Some(scan_arg(&mut scan)?),
            b"data" if kind.is_none() => {
                let (channel, _) = arg?;
                kind = Some(scan_data(&mut scan, channel, levels, decoded)?);
            }
            _ => return None,
        }
    }
    scan.finish().ok()?;
    let (channel, inst_id) = arg?;
    Some(Scanned {
        snapshot: snapshot?,
        channel,
        inst_id: inst_id?,
        kind: kind?,
    })
}

/// `{"instType","channel","instId"}`: the channel and the instrument.
fn scan_arg<'a>(scan: &mut Scanner<'a>) -> Option<(&'a str, Option<&'a str>)> {
    scan.begin_object().ok()?;
    let mut first = true;
    let (mut channel, mut inst_id) = (None, None);
    while let Some(key) = scan.next_key(&mut first).ok()? {
        match key {
            b"channel" if channel.is_none() => channel = Some(scan.str_value().ok()?),
            b"instId" if inst_id.is_none() => inst_id = Some(scan.str_value().ok()?),
            b"channel" | b"instId" => return None,
            _ => scan.skip_value().ok()?,
        }
    }
    Some((channel?, inst_id))
}

fn scan_data(
    scan: &mut Scanner,
    channel: &str,
    levels: &mut Vec<LevelChange>,
    decoded: &mut Decoded,
) -> Option<DataKind> {
    let kind = match channel {
        "books" => DataKind::Books,
        "trade" => DataKind::Trades,
        _ if channel.starts_with("candle") => DataKind::Candles,
        _ => {
            scan.skip_value().ok()?;
            return Some(DataKind::Skipped);
        }
    };
    scan.begin_array().ok()?;
    let mut first = true;
    while scan.next_element(&mut first).ok()? {
        match kind {
            DataKind::Books => decoded.books.push(scan_book(scan, levels)?),
            DataKind::Trades => decoded.trades.push(scan_trade(scan)?),
            _ => decoded.candles.push(scan_candle(scan)?),
        }
    }
    // A `books` frame without a book is refused by the derived path.
    (kind != DataKind::Books || !decoded.books.is_empty()).then_some(kind)
}

fn scan_book(scan: &mut Scanner, levels: &mut Vec<LevelChange>) -> Option<BookMark> {
    scan.begin_object().ok()?;
    let mut first = true;
    let (mut asks, mut bids) = (false, false);
    let (mut ts_ms, mut checksum) = (None, None);
    while let Some(key) = scan.next_key(&mut first).ok()? {
        match key {
            b"asks" if !asks => {
                asks = true;
                scan_side(scan, Side::Ask, levels)?;
            }
            b"bids" if !bids => {
                bids = true;
                scan_side(scan, Side::Bid, levels)?;
            }
            b"ts" if ts_ms.is_none() => ts_ms = Some(scan.u64_or_quoted().ok()??),
            b"checksum" if checksum.is_none() => {
                let text = std::str::from_utf8(scan.number().ok()?).ok()?;
                checksum = Some(text.parse().ok()?);
            }
            b"asks" | b"bids" | b"ts" | b"checksum" => return None,
            _ => scan.skip_value().ok()?,
        }
    }
    Some(BookMark {
        end: levels.len(),
        ts_ms,
        checksum,
    })
}

/// `["ts","price","size","side"]`.
fn scan_trade(scan: &mut Scanner) -> Option<TradeFields> {
    scan.begin_array().ok()?;
    let mut first = true;
    scan.next_element(&mut first).ok()?.then_some(())?;
    let ts_ms = quoted_millis(scan)?;
    scan.next_element(&mut first).ok()?.then_some(())?;
    let price = scan.quoted_decimal().ok()?.ok()?;
    scan.next_element(&mut first).ok()?.then_some(())?;
    let size = scan.quoted_decimal().ok()?.ok()?;
    scan.next_element(&mut first).ok()?.then_some(())?;
    let side = match scan.string().ok()? {
        b"buy" => TradeSide::Buy,
        b"sell" => TradeSide::Sell,
        _ => return None,
    };
    (!scan.next_element(&mut first).ok()?).then_some(TradeFields {
        ts_ms,
        price,
        size,
        side,
    })
}

/// `["open ts","o","h","l","c","base volume"]`.
fn scan_candle(scan: &mut Scanner) -> Option<CandleFields> {
    scan.begin_array().ok()?;
    let mut first = true;
    scan.next_element(&mut first).ok()?.then_some(())?;
    let open_ms = quoted_millis(scan)?;
    let mut ohlcv = [Decimal::ZERO; 5];
    for value in &mut ohlcv {
        scan.next_element(&mut first).ok()?.then_some(())?;
        *value = scan.quoted_decimal().ok()?.ok()?;
    }
    (!scan.next_element(&mut first).ok()?).then_some(CandleFields { open_ms, ohlcv })
}

/// A row's time: the derived path takes it only as a string.
fn quoted_millis(scan: &mut Scanner) -> Option<u64> {
    (scan.peek()? == b'"').then_some(())?;
    scan.u64_or_quoted().ok()?
}
