//! Binance spot, USDⓈ-M and COIN-M: depth diffs bridged to REST snapshots, bookTicker quotes,
//! trades, aggTrades and klines, from combined-stream (`{"stream":..,"data":..}`) or raw frames.
//!
//! Sequence rules (per symbol): spot chains `U == previous u + 1` and bridges a snapshot with
//! `U <= lastUpdateId + 1 <= u`; futures chain `pu == previous u` and bridge with
//! `U <= lastUpdateId <= u`.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use crate::book::Side;
use crate::decimal::Decimal;
use crate::error::{FrameError, ReceiveError};
use crate::event::{Candle, Event, Quote, Trade, TradeSide};
use crate::sync::{Continuity, DeltaIds, LevelChange, ResyncBy, SequenceRule, SymbolSync, Symbols};
use crate::venue::json::{LevelsSeed, NumberFault};
use crate::venue::{ms_to_ns, Session, SessionOptions, SessionStats};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Market {
    Spot,
    UsdM,
    CoinM,
}

impl Market {
    pub fn venue_name(self) -> &'static str {
        match self {
            Market::Spot => "binance",
            Market::UsdM => "binance-usdm",
            Market::CoinM => "binance-coinm",
        }
    }
}

pub struct SpotRule;

impl SequenceRule for SpotRule {
    fn bridges(&self, snapshot_id: u64, d: &DeltaIds) -> Continuity {
        if d.last <= snapshot_id {
            Continuity::Stale
        } else if d.first <= snapshot_id + 1 {
            Continuity::Apply
        } else {
            Continuity::Gap {
                expected: snapshot_id + 1,
                received: d.first,
            }
        }
    }
    fn follows(&self, last: &DeltaIds, d: &DeltaIds) -> Continuity {
        // Quantities are absolute, so an overlapping event is as safe as the next one.
        self.bridges(last.last, d)
    }
}

pub struct FuturesRule;

impl SequenceRule for FuturesRule {
    fn bridges(&self, snapshot_id: u64, d: &DeltaIds) -> Continuity {
        if d.last < snapshot_id {
            Continuity::Stale
        } else if d.first <= snapshot_id {
            Continuity::Apply
        } else {
            Continuity::Gap {
                expected: snapshot_id,
                received: d.first,
            }
        }
    }
    fn follows(&self, last: &DeltaIds, d: &DeltaIds) -> Continuity {
        if d.prev == Some(last.last) {
            Continuity::Apply
        } else if d.last <= last.last {
            Continuity::Stale
        } else {
            Continuity::Gap {
                expected: last.last,
                received: d.prev.unwrap_or(d.first),
            }
        }
    }
}

pub struct BinanceSession {
    market: Market,
    symbols: Symbols,
    levels: Vec<LevelChange>,
    stats: SessionStats,
    options: SessionOptions,
}

impl BinanceSession {
    pub fn new(market: Market, options: SessionOptions) -> Self {
        BinanceSession {
            market,
            symbols: Symbols::new(),
            levels: Vec::with_capacity(256),
            stats: SessionStats::default(),
            options,
        }
    }

    fn rule(&self) -> &'static dyn SequenceRule {
        match self.market {
            Market::Spot => &SpotRule,
            Market::UsdM | Market::CoinM => &FuturesRule,
        }
    }

    fn intern(&mut self, symbol: &str) -> u32 {
        self.symbols
            .intern(symbol, || SymbolSync::new(ResyncBy::Snapshot, None))
    }

    fn on_fields(
        &mut self,
        f: &Fields<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let event = f.e.or(if f.b_str.is_some() && f.ask_size.is_some() {
            Some("bookTicker")
        } else {
            None
        });
        match event {
            Some("depthUpdate") => self.on_depth(f, ts_ns, out),
            Some("bookTicker") => self.on_quote(f, ts_ns, out),
            Some("trade") | Some("aggTrade") => self.on_trade(f, ts_ns, out),
            Some("kline") => self.on_kline(f, ts_ns, out),
            _ => {
                if let Some(msg) = f.msg {
                    return Err(FrameError::VenueError(format!(
                        "code {}: {msg}",
                        f.code.unwrap_or(0)
                    ))
                    .into());
                }
                self.stats.ignored += 1;
                Ok(())
            }
        }
    }

    fn on_depth(
        &mut self,
        f: &Fields<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let name = f.s.ok_or(FrameError::MissingField("s"))?;
        let id = self.intern(name);
        let ids = match self.depth_ids(f) {
            Ok(ids) => ids,
            Err(e) => return Err(self.bad_frame(id, e, out)),
        };
        let rule = self.rule();
        let exchange_ts = ms_to_ns(f.event_time.unwrap_or(0));
        let sync = self.symbols.sync_mut(id).expect("interned above");
        match sync.on_delta(id, rule, ids, &self.levels, exchange_ts, ts_ns, out) {
            Ok(_) => Ok(()),
            Err(e) => Err(self.bad_frame(id, e.into(), out)),
        }
    }

    fn depth_ids(&self, f: &Fields<'_>) -> Result<DeltaIds, FrameError> {
        let first = f.first_id.ok_or(FrameError::MissingField("U"))?;
        let last = f.last_id.ok_or(FrameError::MissingField("u"))?;
        let prev = match self.market {
            Market::Spot => None,
            Market::UsdM | Market::CoinM => Some(f.prev_id.ok_or(FrameError::MissingField("pu"))?),
        };
        if first > last {
            return Err(FrameError::Invalid(format!(
                "first update id {first} is after last {last}"
            )));
        }
        Ok(DeltaIds { first, last, prev })
    }

    /// A depth frame for a known symbol that we cannot use: the symbol has lost an update.
    fn bad_frame(&mut self, id: u32, error: FrameError, out: &mut Vec<Event>) -> ReceiveError {
        if let Some(sync) = self.symbols.sync_mut(id) {
            sync.on_bad_frame(id, out);
        }
        ReceiveError::new(Some(self.symbols.name(id).to_owned()), error)
    }

    fn on_quote(
        &mut self,
        f: &Fields<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let name = f.s.ok_or(FrameError::MissingField("s"))?;
        let bid_price = parse_field("b", f.b_str)?;
        let bid_size = parse_field("B", f.bid_size)?;
        let ask_price = parse_field("a", f.a_str)?;
        let ask_size = parse_field("A", f.ask_size)?;
        let symbol = self.intern(name);
        out.push(Event::Quote(Quote {
            symbol,
            seq: f.last_id,
            bid_price,
            bid_size,
            ask_price,
            ask_size,
            exchange_ts_ns: ms_to_ns(f.event_time.or(f.tx_time).unwrap_or(0)),
            ts_ns,
        }));
        Ok(())
    }

    fn on_trade(
        &mut self,
        f: &Fields<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let name = f.s.ok_or(FrameError::MissingField("s"))?;
        let price = parse_field("p", f.p)?;
        let size = parse_field("q", f.q)?;
        // `m`: the buyer was the maker, so the taker sold.
        let side = f.m.map(|maker| {
            if maker {
                TradeSide::Sell
            } else {
                TradeSide::Buy
            }
        });
        let trade_id = if f.e == Some("aggTrade") {
            f.a_num.ok_or(FrameError::MissingField("a"))?
        } else {
            f.t.ok_or(FrameError::MissingField("t"))?
        };
        let symbol = self.intern(name);
        out.push(Event::Trade(Trade {
            symbol,
            price,
            size,
            side,
            trade_id: trade_id.to_string(),
            exchange_ts_ns: ms_to_ns(f.tx_time.or(f.event_time).unwrap_or(0)),
            ts_ns,
        }));
        Ok(())
    }

    fn on_kline(
        &mut self,
        f: &Fields<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let name = f.s.ok_or(FrameError::MissingField("s"))?;
        let k = f.k.as_ref().ok_or(FrameError::MissingField("k"))?;
        let candle = Candle {
            symbol: 0,
            interval: k.interval.to_owned(),
            open_ts_ns: ms_to_ns(k.open_time),
            // Binance's close time is the last millisecond of the interval.
            close_ts_ns: ms_to_ns(k.close_time.saturating_add(1)),
            open: parse_field("o", Some(k.open))?,
            high: parse_field("h", Some(k.high))?,
            low: parse_field("l", Some(k.low))?,
            close: parse_field("c", Some(k.close))?,
            volume: parse_field("v", Some(k.volume))?,
            trades: k.trades,
            closed: k.closed,
            exchange_ts_ns: ms_to_ns(f.event_time.unwrap_or(0)),
            ts_ns,
        };
        let symbol = self.intern(name);
        out.push(Event::Candle(Candle { symbol, ..candle }));
        Ok(())
    }
}

fn parse_field(field: &'static str, text: Option<&str>) -> Result<Decimal, FrameError> {
    let text = text.ok_or(FrameError::MissingField(field))?;
    Decimal::parse(text).map_err(|error| FrameError::BadNumber { field, error })
}

impl Session for BinanceSession {
    fn venue(&self) -> &'static str {
        self.market.venue_name()
    }

    fn receive(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        self.stats.frames += 1;
        let result = self.receive_inner(frame, ts_ns, out);
        if result.is_err() {
            self.stats.errors += 1;
        }
        result
    }

    fn receive_snapshot(
        &mut self,
        symbol: &str,
        body: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let owned_symbol = || Some(symbol.to_owned());
        self.levels.clear();
        let mut fields = Fields::default();
        let mut fault = NumberFault::default();
        decode(
            body,
            &mut fields,
            &mut self.levels,
            &mut fault,
            self.options.max_frame_bytes,
        )
        .map_err(|e| ReceiveError::new(owned_symbol(), e))?;
        if let Some(msg) = fields.msg {
            return Err(ReceiveError::new(
                owned_symbol(),
                FrameError::VenueError(format!("code {}: {msg}", fields.code.unwrap_or(0))),
            ));
        }
        let last_update_id = fields.last_update_id.ok_or_else(|| {
            ReceiveError::new(owned_symbol(), FrameError::MissingField("lastUpdateId"))
        })?;
        let id = self.intern(symbol);
        let rule = self.rule();
        let exchange_ts = ms_to_ns(fields.event_time.unwrap_or(0));
        let sync = self.symbols.sync_mut(id).expect("interned above");
        sync.on_snapshot(
            id,
            rule,
            Some(last_update_id),
            &self.levels,
            exchange_ts,
            ts_ns,
            out,
        )
        .map_err(|e| ReceiveError::new(owned_symbol(), e.into()))
    }

    fn symbols(&self) -> &Symbols {
        &self.symbols
    }

    fn stats(&self) -> SessionStats {
        self.stats
    }
}

impl BinanceSession {
    fn receive_inner(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        self.levels.clear();
        let mut fields = Fields::default();
        let mut fault = NumberFault::default();
        match decode(
            frame,
            &mut fields,
            &mut self.levels,
            &mut fault,
            self.options.max_frame_bytes,
        ) {
            Ok(()) => self.on_fields(&fields, ts_ns, out),
            Err(error) => {
                // A depth frame that names its symbol but cannot be read costs that symbol its sync.
                if fields.e == Some("depthUpdate") {
                    if let Some(id) = fields.s.and_then(|s| self.symbols.id(s)) {
                        return Err(self.bad_frame(id, error, out));
                    }
                }
                Err(ReceiveError::new(fields.s.map(str::to_owned), error))
            }
        }
    }
}

fn decode<'de>(
    frame: &'de [u8],
    fields: &mut Fields<'de>,
    levels: &mut Vec<LevelChange>,
    fault: &mut NumberFault,
    max_bytes: usize,
) -> Result<(), FrameError> {
    if frame.len() > max_bytes {
        return Err(FrameError::Oversized {
            len: frame.len(),
            max: max_bytes,
        });
    }
    let mut de = serde_json::Deserializer::from_slice(frame);
    let seed = FieldsSeed {
        fields,
        levels,
        fault,
    };
    let result = seed.deserialize(&mut de).and_then(|()| de.end());
    match result {
        Ok(()) => Ok(()),
        Err(e) => Err(match fault.fault {
            Some((field, error)) => FrameError::BadNumber { field, error },
            None => FrameError::Json(e.to_string()),
        }),
    }
}

#[derive(Debug, Deserialize)]
struct Kline<'a> {
    #[serde(rename = "t")]
    open_time: u64,
    #[serde(rename = "T")]
    close_time: u64,
    #[serde(rename = "i", borrow)]
    interval: &'a str,
    #[serde(rename = "o", borrow)]
    open: &'a str,
    #[serde(rename = "c", borrow)]
    close: &'a str,
    #[serde(rename = "h", borrow)]
    high: &'a str,
    #[serde(rename = "l", borrow)]
    low: &'a str,
    #[serde(rename = "v", borrow)]
    volume: &'a str,
    #[serde(rename = "n")]
    trades: Option<u64>,
    #[serde(rename = "x")]
    closed: bool,
}

/// Every field any Binance frame we read can carry; filled in one pass over the frame.
#[derive(Debug, Default)]
struct Fields<'a> {
    e: Option<&'a str>,
    s: Option<&'a str>,
    first_id: Option<u64>,
    last_id: Option<u64>,
    prev_id: Option<u64>,
    event_time: Option<u64>,
    tx_time: Option<u64>,
    /// `b`/`a` are level lists in depth frames, prices in bookTicker, order ids in old trades.
    b_str: Option<&'a str>,
    a_str: Option<&'a str>,
    a_num: Option<u64>,
    bid_size: Option<&'a str>,
    ask_size: Option<&'a str>,
    p: Option<&'a str>,
    q: Option<&'a str>,
    t: Option<u64>,
    m: Option<bool>,
    k: Option<Kline<'a>>,
    last_update_id: Option<u64>,
    code: Option<i64>,
    msg: Option<&'a str>,
}

struct FieldsSeed<'f, 'a> {
    fields: &'f mut Fields<'a>,
    levels: &'f mut Vec<LevelChange>,
    fault: &'f mut NumberFault,
}

impl<'de> DeserializeSeed<'de> for FieldsSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FieldsSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Binance event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let f = self.fields;
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "data" => map.next_value_seed(FieldsSeed {
                    fields: &mut *f,
                    levels: &mut *self.levels,
                    fault: &mut *self.fault,
                })?,
                "e" => f.e = Some(map.next_value()?),
                "s" => f.s = Some(map.next_value()?),
                "U" => f.first_id = Some(map.next_value()?),
                "u" => f.last_id = Some(map.next_value()?),
                "pu" => f.prev_id = Some(map.next_value()?),
                "E" => f.event_time = Some(map.next_value()?),
                "T" => f.tx_time = Some(map.next_value()?),
                "b" | "bids" => map.next_value_seed(SideSeed {
                    side: Side::Bid,
                    levels: &mut *self.levels,
                    fault: &mut *self.fault,
                    text: &mut f.b_str,
                    number: &mut None,
                })?,
                "a" | "asks" => map.next_value_seed(SideSeed {
                    side: Side::Ask,
                    levels: &mut *self.levels,
                    fault: &mut *self.fault,
                    text: &mut f.a_str,
                    number: &mut f.a_num,
                })?,
                "B" => f.bid_size = map.next_value::<Option<&str>>()?,
                "A" => f.ask_size = map.next_value::<Option<&str>>()?,
                "p" => f.p = Some(map.next_value()?),
                "q" => f.q = Some(map.next_value()?),
                "t" => f.t = Some(map.next_value()?),
                "m" => f.m = Some(map.next_value()?),
                "k" => f.k = Some(map.next_value()?),
                "lastUpdateId" => f.last_update_id = Some(map.next_value()?),
                "code" => f.code = map.next_value()?,
                "msg" => f.msg = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// `b`/`a`: a list of levels (depth), a price string (bookTicker) or an order id (old trades).
struct SideSeed<'f, 'a> {
    side: Side,
    levels: &'f mut Vec<LevelChange>,
    fault: &'f mut NumberFault,
    text: &'f mut Option<&'a str>,
    number: &'f mut Option<u64>,
}

impl<'de> DeserializeSeed<'de> for SideSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SideSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("levels, a price string or an id")
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        de::Visitor::visit_seq(
            LevelsSeed {
                side: self.side,
                out: self.levels,
                fault: self.fault,
            },
            seq,
        )
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<(), E> {
        *self.text = Some(v);
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        *self.number = Some(v);
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        *self.number = u64::try_from(v).ok();
        Ok(())
    }
}
