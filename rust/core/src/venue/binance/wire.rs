//! Binance frames as read: every field of a depth, bookTicker, trade, aggTrade, kline, snapshot
//! or error frame, in one pass over the bytes.
//!
//! Hand-written over `venue::scan::Scanner` rather than derived serde: depth frames are the
//! hottest path of the crate, and the scanner parses levels straight into the session's buffer
//! (`cargo bench --bench decode_apply` measures it).

use crate::book::Side;
use crate::error::{FrameError, ReceiveError};
use crate::sync::LevelChange;
use crate::venue::check_frame_size;
use crate::venue::json::venue_error;
use crate::venue::scan::Scanner;

/// Reads `frame` into `fields`, its book levels (depth frames, REST snapshots) into `levels`.
pub(super) fn decode<'a>(
    frame: &'a [u8],
    fields: &mut Fields<'a>,
    levels: &mut Vec<LevelChange>,
    max_bytes: usize,
) -> Result<(), FrameError> {
    check_frame_size(frame, max_bytes)?;
    let mut scanner = Scanner::new(frame);
    read_object(&mut scanner, fields, levels, true)?;
    Ok(scanner.finish()?)
}

/// Every field any Binance frame we read can carry; filled in one pass over the frame.
#[derive(Debug, Default)]
pub(super) struct Fields<'a> {
    pub e: Option<&'a str>,
    pub s: Option<&'a str>,
    pub first_id: Option<u64>,
    pub last_id: Option<u64>,
    pub prev_id: Option<u64>,
    pub event_time: Option<u64>,
    pub tx_time: Option<u64>,
    /// `b`/`a` are level lists in depth frames, prices in bookTicker; `a` is the aggregate
    /// trade id in aggTrade.
    pub b_str: Option<&'a str>,
    pub a_str: Option<&'a str>,
    pub a_num: Option<u64>,
    pub bid_size: Option<&'a str>,
    pub ask_size: Option<&'a str>,
    pub p: Option<&'a str>,
    pub q: Option<&'a str>,
    pub t: Option<u64>,
    pub m: Option<bool>,
    pub k: Option<Kline<'a>>,
    pub last_update_id: Option<u64>,
    pub code: Option<i64>,
    pub msg: Option<&'a [u8]>,
}

impl Fields<'_> {
    /// The event this frame is: its `e`, or `bookTicker` for spot's, which carry none.
    pub fn event(&self) -> Option<&str> {
        self.e
            .or(if self.b_str.is_some() && self.ask_size.is_some() {
                Some("bookTicker")
            } else {
                None
            })
    }

    /// A refused request's error (`code C: msg`), concerning `symbol`, if this frame is one.
    pub fn venue_error(&self, symbol: Option<&str>) -> Option<ReceiveError> {
        let msg = String::from_utf8_lossy(self.msg?);
        let code = self.code.unwrap_or(0).to_string();
        Some(venue_error(symbol, Some(&code), Some(&msg)))
    }
}

#[derive(Debug, Default)]
pub(super) struct Kline<'a> {
    pub open_time: u64,
    pub close_time: u64,
    pub interval: &'a str,
    pub open: &'a str,
    pub close: &'a str,
    pub high: &'a str,
    pub low: &'a str,
    pub volume: &'a str,
    pub trades: Option<u64>,
    pub closed: bool,
}
/// One object of the frame: the combined-stream wrapper, the event inside it, or a raw event.
fn read_object<'a>(
    s: &mut Scanner<'a>,
    f: &mut Fields<'a>,
    levels: &mut Vec<LevelChange>,
    outer: bool,
) -> Result<(), FrameError> {
    s.begin_object()?;
    let mut first = true;
    while let Some(key) = s.next_key(&mut first)? {
        match key {
            b"data" if outer => read_object(s, f, levels, false)?,
            // `{"error":{"code","msg"},"id"}`: a refused request, read like a flat one.
            b"error" if outer => read_object(s, f, levels, false)?,
            // Nearly every frame is a depth frame: its name needs no UTF-8 check.
            b"e" => f.e = Some(s.str_value_mostly("depthUpdate")?),
            b"s" => f.s = Some(s.str_value()?),
            b"U" => f.first_id = Some(s.u64()?),
            b"u" => f.last_id = Some(s.u64()?),
            b"pu" => f.prev_id = Some(s.u64()?),
            b"E" => f.event_time = Some(s.u64()?),
            b"T" => f.tx_time = Some(s.u64()?),
            b"b" | b"bids" => side_value(s, Side::Bid, levels, &mut f.b_str, &mut None)?,
            b"a" | b"asks" => side_value(s, Side::Ask, levels, &mut f.a_str, &mut f.a_num)?,
            b"B" => f.bid_size = optional_str(s)?,
            b"A" => f.ask_size = optional_str(s)?,
            b"p" => f.p = Some(s.str_value()?),
            b"q" => f.q = Some(s.str_value()?),
            b"t" => f.t = Some(s.u64()?),
            b"m" => f.m = Some(s.bool()?),
            b"k" => f.k = Some(read_kline(s)?),
            b"lastUpdateId" => f.last_update_id = Some(s.u64()?),
            b"code" => f.code = Some(signed(s)?),
            b"msg" => f.msg = Some(s.string()?),
            _ => s.skip_value()?,
        }
    }
    Ok(())
}

fn optional_str<'a>(s: &mut Scanner<'a>) -> Result<Option<&'a str>, FrameError> {
    if s.null()? {
        return Ok(None);
    }
    Ok(Some(s.str_value()?))
}

fn signed(s: &mut Scanner<'_>) -> Result<i64, FrameError> {
    let text = s.number()?;
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| s.error("expected an integer").into())
}

/// `b`/`a`: a list of levels (depth), a price string (bookTicker) or a number (`a`, the
/// aggregate id of an aggTrade; `b`/`a`, the order ids of old trade events).
fn side_value<'a>(
    s: &mut Scanner<'a>,
    side: Side,
    levels: &mut Vec<LevelChange>,
    text: &mut Option<&'a str>,
    number: &mut Option<u64>,
) -> Result<(), FrameError> {
    match s.peek() {
        Some(b'[') => read_levels(s, side, levels),
        Some(b'"') => {
            *text = Some(s.str_value()?);
            Ok(())
        }
        Some(b'0'..=b'9') => {
            *number = Some(s.u64()?);
            Ok(())
        }
        _ => Ok(s.skip_value()?),
    }
}

/// `[["price","qty"], ...]`, parsed straight into the level buffer.
fn read_levels(
    s: &mut Scanner<'_>,
    side: Side,
    levels: &mut Vec<LevelChange>,
) -> Result<(), FrameError> {
    s.begin_array()?;
    let mut first = true;
    loop {
        s.short_levels(&mut first, |price, qty| levels.push((side, price, qty)));
        if !s.next_element(&mut first)? {
            break;
        }
        s.begin_array()?;
        let mut inner = true;
        if !s.next_element(&mut inner)? {
            return Err(s.error("empty price level").into());
        }
        let price = s.quoted_decimal()?;
        if !s.next_element(&mut inner)? {
            return Err(s.error("price level without a quantity").into());
        }
        let qty = s.quoted_decimal()?;
        while s.next_element(&mut inner)? {
            s.skip_value()?;
        }
        let price = price.map_err(|error| FrameError::BadNumber {
            field: "price",
            error,
        })?;
        let qty = qty.map_err(|error| FrameError::BadNumber {
            field: "quantity",
            error,
        })?;
        levels.push((side, price, qty));
    }
    Ok(())
}

fn read_kline<'a>(s: &mut Scanner<'a>) -> Result<Kline<'a>, FrameError> {
    let mut k = Kline::default();
    let mut seen = 0u16;
    s.begin_object()?;
    let mut first = true;
    while let Some(key) = s.next_key(&mut first)? {
        let bit = match key {
            b"t" => {
                k.open_time = s.u64()?;
                1
            }
            b"T" => {
                k.close_time = s.u64()?;
                2
            }
            b"i" => {
                k.interval = s.str_value()?;
                4
            }
            b"o" => {
                k.open = s.str_value()?;
                8
            }
            b"c" => {
                k.close = s.str_value()?;
                16
            }
            b"h" => {
                k.high = s.str_value()?;
                32
            }
            b"l" => {
                k.low = s.str_value()?;
                64
            }
            b"v" => {
                k.volume = s.str_value()?;
                128
            }
            b"x" => {
                k.closed = s.bool()?;
                256
            }
            b"n" => {
                k.trades = Some(s.u64()?);
                0
            }
            _ => {
                s.skip_value()?;
                0
            }
        };
        seen |= bit;
    }
    if seen != 511 {
        return Err(FrameError::MissingField("k.{t,T,i,o,c,h,l,v,x}"));
    }
    Ok(k)
}
