//! Gemini's frames as they arrive, v2 and v1. Each frame is one object read in one pass: its
//! book changes and trades go straight into the session's reusable buffers, and the rest into
//! borrowed fields. The frame objects are read by hand so that the buffers can be filled while
//! reading; the objects inside them (trades, v1 events) are derived.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::book::Side;
use crate::error::{FrameError, ReceiveError};
use crate::event::TradeSide;
use crate::sync::LevelChange;
use crate::venue::json::{venue_error, FrameFault, LooseText};
use crate::venue::scan::Scanner;
use crate::venue::trades::RawTrade;

/// Where a frame's book changes and trades go.
pub struct Buffers<'f> {
    pub levels: &'f mut Vec<LevelChange>,
    pub trades: &'f mut Vec<RawTrade>,
}

/// `{"result":"error","reason":..,"message":..}`: Gemini's answer to a request it refuses.
#[derive(Debug, Default)]
pub struct ErrorFields<'a> {
    result: Option<Cow<'a, str>>,
    reason: Option<Cow<'a, str>>,
    message: Option<Cow<'a, str>>,
}

impl<'de> ErrorFields<'de> {
    /// Reads one top-level key if it belongs to an error answer; returns whether it did.
    fn read<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        let slot = match key {
            "result" => &mut self.result,
            "reason" => &mut self.reason,
            "message" => &mut self.message,
            _ => return Ok(false),
        };
        *slot = map.next_value_seed(LooseText)?;
        Ok(true)
    }
}

impl ErrorFields<'_> {
    pub fn is_error(&self) -> bool {
        self.result.as_deref() == Some("error")
    }

    /// `reason: message` (Gemini's reason is a code word such as `InvalidJson`).
    pub fn to_receive_error(&self, symbol: Option<&str>) -> ReceiveError {
        let message = match (self.reason.as_deref(), self.message.as_deref()) {
            (Some(reason), Some(message)) => format!("{reason}: {message}"),
            (reason, message) => message.or(reason).unwrap_or("").to_owned(),
        };
        venue_error(symbol, None, Some(&message))
    }
}

/// v2 `side` of a trade: the taker's.
pub fn taker_side(side: Option<&str>) -> Result<Option<TradeSide>, FrameError> {
    match side {
        Some("buy") => Ok(Some(TradeSide::Buy)),
        Some("sell") => Ok(Some(TradeSide::Sell)),
        None => Ok(None),
        Some(other) => Err(FrameError::Invalid(format!("unknown trade side {other:?}"))),
    }
}

// ---------------------------------------------------------------------------------------------
// v2
// ---------------------------------------------------------------------------------------------

/// Every top-level field a v2 frame we read can carry.
#[derive(Debug, Default)]
pub struct V2Fields<'a> {
    pub error: ErrorFields<'a>,
    pub kind: Option<&'a str>,
    pub symbol: Option<&'a str>,
    pub has_changes: bool,
    /// Only a symbol's initial book frame carries `trades`.
    pub has_trades: bool,
    pub event_id: Option<u64>,
    pub timestamp: Option<u64>,
    pub price: Option<&'a str>,
    pub quantity: Option<&'a str>,
    pub side: Option<&'a str>,
}

/// One v2 frame into `fields` and the buffers; `fields` holds what was read even on failure.
pub fn decode_v2<'a>(
    frame: &'a [u8],
    fields: &mut V2Fields<'a>,
    buffers: Buffers<'_>,
) -> Result<(), FrameError> {
    let kept = (buffers.levels.len(), buffers.trades.len());
    if scan_v2_update(frame, fields, buffers.levels, buffers.trades).is_some() {
        return Ok(());
    }
    *fields = V2Fields::default();
    buffers.levels.truncate(kept.0);
    buffers.trades.truncate(kept.1);
    let mut fault = FrameFault::default();
    let mut de = serde_json::Deserializer::from_slice(frame);
    let seed = V2Seed {
        fields,
        buffers,
        fault: &mut fault,
    };
    let result = seed.deserialize(&mut de).and_then(|()| de.end());
    result.map_err(|e| fault.into_error(e))
}

/// A v2 book frame, `{"type":"l2_updates","symbol":..,"changes":[..]}` (a symbol's first
/// adds `trades` and `auction_events`), read by the scanner in one pass with numbers straight
/// to fixed point (serde made a checked `&str` of every side and number first). `None` at the
/// first thing outside that shape, a bad number or a malformed frame included: the serde path
/// then reads the frame and says what is wrong with it.
fn scan_v2_update<'a>(
    frame: &'a [u8],
    fields: &mut V2Fields<'a>,
    levels: &mut Vec<LevelChange>,
    trades: &mut Vec<RawTrade>,
) -> Option<()> {
    let mut scan = Scanner::new(frame);
    scan.begin_object().ok()?;
    let mut first = true;
    while let Some(key) = scan.next_key(&mut first).ok()? {
        match key {
            b"type" => fields.kind = Some(scan.str_value().ok()?),
            b"symbol" => fields.symbol = Some(scan.str_value().ok()?),
            b"changes" => {
                fields.has_changes = true;
                scan_changes(&mut scan, levels)?;
            }
            // An initial frame's few trades: found by the scanner, read by serde.
            b"trades" => {
                fields.has_trades = true;
                let start = scan.position();
                scan.skip_value().ok()?;
                let mut de = serde_json::Deserializer::from_slice(&frame[start..scan.position()]);
                let seed = V2TradesSeed {
                    out: &mut *trades,
                    fault: &mut FrameFault::default(),
                };
                seed.deserialize(&mut de).ok()?;
            }
            b"auction_events" => scan.skip_value().ok()?,
            _ => return None,
        }
    }
    scan.finish().ok()?;
    (fields.kind == Some("l2_updates")).then_some(())
}

/// `[["buy"|"sell", "price", "quantity"], ...]`, appended to `levels`.
fn scan_changes(scan: &mut Scanner, levels: &mut Vec<LevelChange>) -> Option<()> {
    scan.begin_array().ok()?;
    let mut first = true;
    while scan.next_element(&mut first).ok()? {
        scan.begin_array().ok()?;
        let mut in_change = true;
        scan.next_element(&mut in_change).ok()?.then_some(())?;
        let side = match scan.string().ok()? {
            b"buy" => Side::Bid,
            b"sell" => Side::Ask,
            _ => return None,
        };
        scan.next_element(&mut in_change).ok()?.then_some(())?;
        let price = scan.quoted_decimal().ok()?.ok()?;
        scan.next_element(&mut in_change).ok()?.then_some(())?;
        let qty = scan.quoted_decimal().ok()?.ok()?;
        scan.skip_rest_of_array(&mut in_change).ok()?;
        levels.push((side, price, qty));
    }
    Some(())
}

struct V2Seed<'f, 'a> {
    fields: &'f mut V2Fields<'a>,
    buffers: Buffers<'f>,
    fault: &'f mut FrameFault,
}

impl<'de> DeserializeSeed<'de> for V2Seed<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for V2Seed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Gemini v2 message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let f = self.fields;
        while let Some(key) = map.next_key::<&'de str>()? {
            if f.error.read(key, &mut map)? {
                continue;
            }
            match key {
                "type" => f.kind = Some(map.next_value()?),
                "symbol" => f.symbol = Some(map.next_value()?),
                "changes" => {
                    f.has_changes = true;
                    map.next_value_seed(ChangesSeed {
                        out: &mut *self.buffers.levels,
                        fault: &mut *self.fault,
                    })?
                }
                "trades" => {
                    f.has_trades = true;
                    map.next_value_seed(V2TradesSeed {
                        out: &mut *self.buffers.trades,
                        fault: &mut *self.fault,
                    })?
                }
                "event_id" => f.event_id = Some(map.next_value()?),
                "timestamp" => f.timestamp = Some(map.next_value()?),
                "price" => f.price = Some(map.next_value()?),
                "quantity" => f.quantity = Some(map.next_value()?),
                "side" => f.side = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// `changes: [["buy"|"sell", price, quantity], ...]` appended to the level buffer.
struct ChangesSeed<'f> {
    out: &'f mut Vec<LevelChange>,
    fault: &'f mut FrameFault,
}

impl<'de> DeserializeSeed<'de> for ChangesSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ChangesSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of [side, price, quantity] changes")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(change) = seq.next_element_seed(ChangeSeed {
            fault: &mut *self.fault,
        })? {
            self.out.push(change);
        }
        Ok(())
    }
}

/// One `[side, price, quantity]` change, by hand: the book's hot path, and extra elements are
/// skipped where a derived tuple would refuse them.
struct ChangeSeed<'f> {
    fault: &'f mut FrameFault,
}

impl<'de> DeserializeSeed<'de> for ChangeSeed<'_> {
    type Value = LevelChange;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<LevelChange, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ChangeSeed<'_> {
    type Value = LevelChange;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a [side, price, quantity] change")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LevelChange, A::Error> {
        let side: &str = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let price: &str = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        let qty: &str = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(2, &self))?;
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        let side = match side {
            "buy" => Side::Bid,
            "sell" => Side::Ask,
            other => return Err(self.fault.invalid(format!("unknown book side {other:?}"))),
        };
        let price = self.fault.number("price", price)?;
        let qty = self.fault.number("quantity", qty)?;
        Ok((side, price, qty))
    }
}

/// A trade of the `trades` list of an initial v2 book frame.
#[derive(Deserialize)]
struct V2TradeWire<'a> {
    event_id: u64,
    #[serde(default)]
    timestamp: Option<u64>,
    price: &'a str,
    quantity: &'a str,
    #[serde(borrow, default)]
    side: Option<&'a str>,
}

/// The `trades` list of an initial v2 book frame, appended to the trade buffer.
struct V2TradesSeed<'f> {
    out: &'f mut Vec<RawTrade>,
    fault: &'f mut FrameFault,
}

impl<'de> DeserializeSeed<'de> for V2TradesSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for V2TradesSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of trade objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(t) = seq.next_element::<V2TradeWire<'de>>()? {
            let price = self.fault.number("price", t.price)?;
            let size = self.fault.number("quantity", t.quantity)?;
            let side = taker_side(t.side).map_err(|e| self.fault.note(e))?;
            self.out.push(RawTrade {
                id: t.event_id,
                ts_ms: t.timestamp.unwrap_or(0),
                price,
                size,
                side,
            });
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// v1
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
pub struct V1Fields<'a> {
    pub error: ErrorFields<'a>,
    pub kind: Option<&'a str>,
    pub socket_sequence: Option<u64>,
    pub timestamp: Option<u64>,
    pub timestampms: Option<u64>,
    /// A change event with reason `initial`: this update is the book.
    pub initial: bool,
}

/// One v1 frame into `fields` and the buffers; `fields` holds what was read even on failure.
pub fn decode_v1<'a>(
    frame: &'a [u8],
    fields: &mut V1Fields<'a>,
    buffers: Buffers<'_>,
) -> Result<(), FrameError> {
    let mut fault = FrameFault::default();
    let mut de = serde_json::Deserializer::from_slice(frame);
    let seed = V1Seed {
        fields,
        buffers,
        fault: &mut fault,
    };
    let result = seed.deserialize(&mut de).and_then(|()| de.end());
    result.map_err(|e| fault.into_error(e))
}

struct V1Seed<'f, 'a> {
    fields: &'f mut V1Fields<'a>,
    buffers: Buffers<'f>,
    fault: &'f mut FrameFault,
}

impl<'de> DeserializeSeed<'de> for V1Seed<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for V1Seed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Gemini v1 message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let f = self.fields;
        while let Some(key) = map.next_key::<&'de str>()? {
            if f.error.read(key, &mut map)? {
                continue;
            }
            match key {
                "type" => f.kind = Some(map.next_value()?),
                "socket_sequence" => f.socket_sequence = Some(map.next_value()?),
                "timestamp" => f.timestamp = map.next_value()?,
                "timestampms" => f.timestampms = map.next_value()?,
                "events" => map.next_value_seed(V1EventsSeed {
                    initial: &mut f.initial,
                    buffers: Buffers {
                        levels: &mut *self.buffers.levels,
                        trades: &mut *self.buffers.trades,
                    },
                    fault: &mut *self.fault,
                })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// An event of a v1 update: a book change or a trade (auctions and block trades are skipped).
#[derive(Deserialize)]
struct V1EventWire<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<&'a str>,
    #[serde(borrow, default)]
    side: Option<&'a str>,
    #[serde(borrow, default)]
    price: Option<&'a str>,
    /// The level's quantity after the change.
    #[serde(borrow, default)]
    remaining: Option<&'a str>,
    #[serde(borrow, default)]
    reason: Option<&'a str>,
    #[serde(default)]
    tid: Option<u64>,
    #[serde(borrow, default)]
    amount: Option<&'a str>,
    #[serde(rename = "makerSide", borrow, default)]
    maker_side: Option<&'a str>,
}

struct V1EventsSeed<'f> {
    initial: &'f mut bool,
    buffers: Buffers<'f>,
    fault: &'f mut FrameFault,
}

impl<'de> DeserializeSeed<'de> for V1EventsSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for V1EventsSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of change/trade events")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(event) = seq.next_element::<V1EventWire<'de>>()? {
            match event.kind {
                Some("change") => {
                    let change = v1_change(&event, self.fault)?;
                    if event.reason == Some("initial") {
                        *self.initial = true;
                    }
                    self.buffers.levels.push(change);
                }
                Some("trade") => {
                    let trade = v1_trade(&event, self.fault)?;
                    self.buffers.trades.push(trade);
                }
                // auction and block-trade events do not touch the book.
                _ => {}
            }
        }
        Ok(())
    }
}

fn required<'a, E: de::Error>(value: Option<&'a str>, field: &'static str) -> Result<&'a str, E> {
    value.ok_or_else(|| de::Error::missing_field(field))
}

fn v1_change<E: de::Error>(
    event: &V1EventWire<'_>,
    fault: &mut FrameFault,
) -> Result<LevelChange, E> {
    let side = match event.side {
        Some("bid") => Side::Bid,
        Some("ask") => Side::Ask,
        other => return Err(fault.invalid(format!("unknown change side {other:?}"))),
    };
    let price = fault.number("price", required(event.price, "price")?)?;
    let qty = fault.number("remaining", required(event.remaining, "remaining")?)?;
    Ok((side, price, qty))
}

fn v1_trade<E: de::Error>(event: &V1EventWire<'_>, fault: &mut FrameFault) -> Result<RawTrade, E> {
    let id = event.tid.ok_or_else(|| de::Error::missing_field("tid"))?;
    let price = fault.number("price", required(event.price, "price")?)?;
    let size = fault.number("amount", required(event.amount, "amount")?)?;
    // The maker's side is given: the taker is on the other one.
    let side = match event.maker_side {
        Some("bid") => Some(TradeSide::Sell),
        Some("ask") => Some(TradeSide::Buy),
        _ => None,
    };
    Ok(RawTrade {
        // The update's time, filled in by the session.
        ts_ms: 0,
        id,
        price,
        size,
        side,
    })
}
