//! Deribit's JSON-RPC frames as borrowed types.
//!
//! Every frame is one object: `{"jsonrpc","id","result"}` answers a request (subscribe,
//! `public/set_heartbeat`, `public/test`), `{"jsonrpc","id","error":{"code","message"}}` refuses
//! one, and `{"jsonrpc","method":"subscription","params":{"channel","data"}}` carries data;
//! `{"method":"heartbeat","params":{"type":"test_request"|"heartbeat"}}` is the venue's
//! heartbeat. Prices and amounts are JSON numbers: they are kept as `RawValue` and read as
//! decimals from their text, so no digit goes through `f64`.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::book::Side;
use crate::decimal::Decimal;
use crate::error::FrameError;
use crate::sync::LevelChange;
use crate::venue::scan::Scanner;

#[derive(Deserialize)]
pub struct Frame<'a> {
    #[serde(borrow, default)]
    pub method: Option<&'a str>,
    #[serde(borrow, default)]
    pub params: Option<Params<'a>>,
    #[serde(borrow, default)]
    pub error: Option<RpcError<'a>>,
}

#[derive(Deserialize)]
pub struct Params<'a> {
    #[serde(borrow, default)]
    pub channel: Option<&'a str>,
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
    /// The heartbeat's kind: `test_request` (answer it) or `heartbeat`.
    #[serde(borrow, default, rename = "type")]
    pub kind: Option<&'a str>,
}

#[derive(Deserialize)]
pub struct RpcError<'a> {
    #[serde(borrow, default)]
    pub code: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub message: Option<Cow<'a, str>>,
}

/// One `[action, price, amount]` entry of a book side.
type Entry<'a> = (&'a str, &'a RawValue, &'a RawValue);

#[derive(Deserialize)]
pub struct BookData<'a> {
    /// `snapshot` first, then `change`.
    #[serde(borrow, default, rename = "type")]
    pub kind: Option<&'a str>,
    #[serde(borrow, default)]
    pub instrument_name: Option<&'a str>,
    #[serde(default)]
    pub timestamp: Option<u64>,
    #[serde(default)]
    pub change_id: Option<u64>,
    #[serde(default)]
    pub prev_change_id: Option<u64>,
    /// Empty when the scanner read the frame (its levels went straight to the buffer).
    #[serde(borrow, default)]
    bids: Vec<Entry<'a>>,
    #[serde(borrow, default)]
    asks: Vec<Entry<'a>>,
}

impl BookData<'_> {
    /// The entries as level changes appended to `out`; `delete` sets the size to zero whatever
    /// amount came with it.
    pub fn levels(&self, out: &mut Vec<LevelChange>) -> Result<(), FrameError> {
        for (side, entries) in [(Side::Bid, &self.bids), (Side::Ask, &self.asks)] {
            for (action, price, amount) in entries {
                let price = number("price", price)?;
                let amount = match *action {
                    "new" | "change" => number("amount", amount)?,
                    "delete" => Decimal::ZERO,
                    other => {
                        return Err(FrameError::Invalid(format!(
                            "book action {other:?} is not new, change or delete"
                        )))
                    }
                };
                out.push((side, price, amount));
            }
        }
        Ok(())
    }
}

#[derive(Deserialize)]
pub struct TickerData<'a> {
    #[serde(borrow, default)]
    pub instrument_name: Option<&'a str>,
    #[serde(default)]
    pub timestamp: Option<u64>,
    #[serde(borrow, default)]
    pub best_bid_price: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub best_bid_amount: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub best_ask_price: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub best_ask_amount: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub struct TradeData<'a> {
    #[serde(borrow, default)]
    pub instrument_name: Option<&'a str>,
    #[serde(borrow)]
    pub trade_id: Cow<'a, str>,
    pub price: &'a RawValue,
    pub amount: &'a RawValue,
    #[serde(borrow, default)]
    pub direction: Option<&'a str>,
    #[serde(default)]
    pub timestamp: Option<u64>,
}

/// A JSON number (or a string holding one) as an exact decimal from its text.
pub fn number(field: &'static str, raw: &RawValue) -> Result<Decimal, FrameError> {
    let text = raw.get();
    let text = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    Decimal::parse(text).map_err(|error| FrameError::BadNumber { field, error })
}

/// A best-price field of the ticker: absent or `null` is an empty side, 0 as Deribit sends it.
pub fn quote_number(field: &'static str, raw: Option<&RawValue>) -> Result<Decimal, FrameError> {
    match raw {
        None => Ok(Decimal::ZERO),
        Some(raw) if raw.get() == "null" => Ok(Decimal::ZERO),
        Some(raw) => number(field, raw),
    }
}

/// The instrument of a `kind.INSTRUMENT.interval` channel name.
pub fn channel_instrument(channel: &str) -> Option<&str> {
    let mut parts = channel.split('.');
    parts.next()?;
    parts.next().filter(|s| !s.is_empty())
}

/// What the scanner read of a notification.
pub enum Scanned<'a> {
    /// Its levels went to the caller's buffer, not to the book's own lists.
    Book(BookData<'a>),
    Ticker(ScannedTicker<'a>),
}

/// A ticker's top of book: an absent or `null` side is 0, as Deribit sends an empty one.
pub struct ScannedTicker<'a> {
    pub instrument_name: Option<&'a str>,
    pub timestamp: Option<u64>,
    pub quote: (Decimal, Decimal, Decimal, Decimal),
}

/// A book or ticker notification in its common shape (`{"jsonrpc","method":"subscription",
/// "params":{"channel","data"}}`), read by the scanner in one pass with numbers straight to
/// fixed point: serde skipped `data` once to find it, then read it again, each number as
/// text. The channel and what its data said. `None` at the first thing outside that shape, a
/// bad number or a malformed frame included: the serde path then reads the frame and says
/// what is wrong with it.
pub fn scan_notification<'a>(
    frame: &'a [u8],
    levels: &mut Vec<LevelChange>,
) -> Option<(&'a str, Scanned<'a>)> {
    let kept = levels.len();
    let read = scan_frame(frame, levels);
    if read.is_none() {
        levels.truncate(kept);
    }
    read
}

fn scan_frame<'a>(
    frame: &'a [u8],
    levels: &mut Vec<LevelChange>,
) -> Option<(&'a str, Scanned<'a>)> {
    let mut scan = Scanner::new(frame);
    scan.begin_object().ok()?;
    let mut first = true;
    let mut read = None;
    while let Some(key) = scan.next_key(&mut first).ok()? {
        match key {
            b"jsonrpc" => scan.skip_value().ok()?,
            b"method" => (scan.string().ok()? == b"subscription").then_some(())?,
            b"params" if read.is_none() => read = Some(scan_params(&mut scan, levels)?),
            _ => return None,
        }
    }
    scan.finish().ok()?;
    read
}

fn scan_params<'a>(
    scan: &mut Scanner<'a>,
    levels: &mut Vec<LevelChange>,
) -> Option<(&'a str, Scanned<'a>)> {
    scan.begin_object().ok()?;
    let mut first = true;
    if scan.next_key(&mut first).ok()? != Some(b"channel") {
        return None;
    }
    let channel = scan.str_value().ok()?;
    if scan.next_key(&mut first).ok()? != Some(b"data") {
        return None;
    }
    let read = if channel.starts_with("book.") {
        Scanned::Book(scan_book_data(scan, levels)?)
    } else if channel.starts_with("ticker.") {
        Scanned::Ticker(scan_ticker_data(scan)?)
    } else {
        return None;
    };
    (scan.next_key(&mut first).ok()?.is_none()).then_some((channel, read))
}

fn scan_ticker_data<'a>(scan: &mut Scanner<'a>) -> Option<ScannedTicker<'a>> {
    scan.begin_object().ok()?;
    let mut ticker = ScannedTicker {
        instrument_name: None,
        timestamp: None,
        quote: (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO, Decimal::ZERO),
    };
    let mut first = true;
    while let Some(key) = scan.next_key(&mut first).ok()? {
        let field = match key {
            b"instrument_name" => {
                ticker.instrument_name = Some(scan.str_value().ok()?);
                continue;
            }
            b"timestamp" => {
                ticker.timestamp = Some(scan.u64().ok()?);
                continue;
            }
            b"best_bid_price" => &mut ticker.quote.0,
            b"best_bid_amount" => &mut ticker.quote.1,
            b"best_ask_price" => &mut ticker.quote.2,
            b"best_ask_amount" => &mut ticker.quote.3,
            _ => {
                scan.skip_value().ok()?;
                continue;
            }
        };
        if !scan.null().ok()? {
            *field = scan.number_decimal().ok()?.ok()?;
        }
    }
    Some(ticker)
}

fn scan_book_data<'a>(
    scan: &mut Scanner<'a>,
    levels: &mut Vec<LevelChange>,
) -> Option<BookData<'a>> {
    scan.begin_object().ok()?;
    let mut book = BookData {
        kind: None,
        instrument_name: None,
        timestamp: None,
        change_id: None,
        prev_change_id: None,
        bids: Vec::new(),
        asks: Vec::new(),
    };
    let mut first = true;
    while let Some(key) = scan.next_key(&mut first).ok()? {
        match key {
            b"type" => book.kind = Some(scan.str_value().ok()?),
            b"instrument_name" => book.instrument_name = Some(scan.str_value().ok()?),
            b"timestamp" => book.timestamp = Some(scan.u64().ok()?),
            b"change_id" => book.change_id = Some(scan.u64().ok()?),
            b"prev_change_id" => book.prev_change_id = Some(scan.u64().ok()?),
            b"bids" => scan_entries(scan, Side::Bid, levels)?,
            b"asks" => scan_entries(scan, Side::Ask, levels)?,
            _ => scan.skip_value().ok()?,
        }
    }
    Some(book)
}

/// `[["new"|"change"|"delete", price, amount], ...]`; a deletion's amount is not read.
fn scan_entries(scan: &mut Scanner, side: Side, levels: &mut Vec<LevelChange>) -> Option<()> {
    scan.begin_array().ok()?;
    let mut first = true;
    while scan.next_element(&mut first).ok()? {
        scan.begin_array().ok()?;
        let mut in_entry = true;
        scan.next_element(&mut in_entry).ok()?.then_some(())?;
        let delete = match scan.string().ok()? {
            b"new" | b"change" => false,
            b"delete" => true,
            _ => return None,
        };
        scan.next_element(&mut in_entry).ok()?.then_some(())?;
        let price = scan.number_decimal().ok()?.ok()?;
        scan.next_element(&mut in_entry).ok()?.then_some(())?;
        let amount = if delete {
            scan.skip_value().ok()?;
            Decimal::ZERO
        } else {
            scan.number_decimal().ok()?.ok()?
        };
        // Three elements exactly, as the serde path's tuple takes them.
        (!scan.next_element(&mut in_entry).ok()?).then_some(())?;
        levels.push((side, price, amount));
    }
    Some(())
}
