//! Gate API v4: spot (`gateio`) and USDT perpetual futures (`gateio-futures`) books bridged to
//! REST snapshots, book tickers, trades and candles.
//!
//! `*.order_book_update` carries `U` (first update id) and `u` (last) and the changed levels
//! (size `0` deletes): spot levels are `["price", "size"]` strings, futures levels
//! `{"p": "price", "s": size}` with whole-contract sizes as JSON numbers. The REST book
//! (`with_id=true`) stands at `id`. Sync as Binance spot: updates with `u <= id` are dropped, the
//! first applied one has `U <= id + 1 <= u`, and each later one `U == previous u + 1`; anything
//! else is a gap, and the symbol waits for a fresh REST snapshot (the only way Gate gives a book).
//!
//! `*.book_ticker` becomes a `Quote` at `seq = u`, the venue's best bid/ask as of that book
//! update. Spot `spot.tickers` carry no sizes and are not quotes: they are counted as ignored.
//! Trades: spot's `side` is the taker's; a futures `size` is negative when the taker sold.
//! Candles: `n` is `<interval>_<symbol>`, `t` the open time in seconds.
//!
//! The update stream is every change of the whole book, so books are kept whole whatever
//! `SessionOptions::depth` says (cutting them would lose levels that come back into range).
//! A refused request (`"error":{"code","message"}`) is `FrameError::VenueError`; it changes no
//! book.

mod wire;

#[cfg(test)]
mod tests;

use crate::book::Side;
use crate::decimal::Decimal;
use crate::error::{FrameError, ReceiveError};
use crate::event::{Candle, Event, Quote, SymbolId, Trade, TradeSide};
use crate::sync::{Continuity, Delta, DeltaIds, LevelChange, ResyncBy, SequenceRule, Snapshot};
use crate::venue::json::venue_error;
use crate::venue::session_core::SessionCore;
use crate::venue::time::parse_epoch_seconds_ns;
use crate::venue::{check_frame_size, ms_to_ns, Session, SessionOptions};

use serde_json::value::RawValue;
use wire::{
    number_text, rows, scan_book_update, BookTicker, BookUpdate, CandleRow, Envelope, Level,
    RestBook, ScannedUpdate, TradeRow,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Market {
    Spot,
    Futures,
}

impl Market {
    pub fn venue_name(self) -> &'static str {
        match self {
            Market::Spot => "gateio",
            Market::Futures => "gateio-futures",
        }
    }

    /// The prefix of this market's channel names.
    fn prefix(self) -> &'static str {
        match self {
            Market::Spot => "spot.",
            Market::Futures => "futures.",
        }
    }

    /// This market's book update channel.
    fn book_channel(self) -> &'static str {
        match self {
            Market::Spot => "spot.order_book_update",
            Market::Futures => "futures.order_book_update",
        }
    }
}

/// Gate's `U`/`u` chain: a snapshot at `id` is bridged by `U <= id + 1 <= u`; then each update
/// starts right after the last (`U == previous u + 1`).
pub struct GateRule;

impl SequenceRule for GateRule {
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
        if d.first == last.last + 1 {
            Continuity::Apply
        } else if d.last <= last.last {
            Continuity::Stale
        } else {
            Continuity::Gap {
                expected: last.last + 1,
                received: d.first,
            }
        }
    }
}

pub struct GateSession {
    core: SessionCore,
    market: Market,
    /// Reused for every frame's levels.
    levels: Vec<LevelChange>,
}

impl GateSession {
    pub fn new(market: Market, options: SessionOptions) -> Self {
        GateSession {
            core: SessionCore::new(options),
            market,
            levels: Vec::with_capacity(128),
        }
    }

    /// `None` for a symbol that was not subscribed: the caller drops the frame.
    fn intern(&mut self, symbol: &str) -> Option<SymbolId> {
        self.core.intern(symbol, ResyncBy::Snapshot, None)
    }

    fn on_frame(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        self.levels.clear();
        let channel = self.market.book_channel();
        if let Some(update) = scan_book_update(frame, channel, &mut self.levels) {
            return self.on_scanned_update(update, ts_ns, out);
        }
        let envelope: Envelope<'_> = serde_json::from_slice(frame).map_err(FrameError::from)?;
        if let Some(error) = &envelope.error {
            let code = error.code.map(|c| c.to_string());
            return Err(venue_error(
                None,
                code.as_deref().or(error.label.as_deref()),
                error.message.as_deref(),
            ));
        }
        let channel = envelope
            .channel
            .and_then(|c| c.strip_prefix(self.market.prefix()));
        let (Some(channel), Some("update" | "all"), Some(result)) =
            (channel, envelope.event, envelope.result)
        else {
            // Subscription acks, pongs, the other market's channels.
            self.core.stats.ignored += 1;
            return Ok(());
        };
        match channel {
            "order_book_update" => self.on_book_update(result, ts_ns, out),
            "book_ticker" => self.on_book_ticker(result, ts_ns, out),
            "trades" => self.on_trades(result, ts_ns, out),
            "candlesticks" => self.on_candles(result, ts_ns, out),
            _ => {
                self.core.stats.ignored += 1;
                Ok(())
            }
        }
    }

    fn on_book_update(
        &mut self,
        result: &RawValue,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let update: Result<BookUpdate<'_>, _> = serde_json::from_str(result.get());
        let update = match update {
            Ok(update) => update,
            Err(e) => {
                // A book frame that names its symbol but cannot be read costs that symbol its sync.
                return Err(self.bad_book_frame(symbol_of(result), e.into(), out));
            }
        };
        let name = update.symbol.ok_or(FrameError::MissingField("s"))?;
        let Some(symbol) = self.intern(name) else {
            return Ok(());
        };
        let decoded = update_ids(update.first, update.last).and_then(|ids| {
            self.levels.clear();
            read_levels(&update.bids, &update.asks, &mut self.levels)?;
            Ok(ids)
        });
        self.apply_update(symbol, decoded, update.time_ms, ts_ns, out)
    }

    /// A book update the scanner read whole (its levels in `self.levels`).
    fn on_scanned_update(
        &mut self,
        update: ScannedUpdate<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let Some(symbol) = self.intern(update.symbol) else {
            return Ok(());
        };
        let ids = update_ids(Some(update.first), Some(update.last));
        self.apply_update(symbol, ids, update.time_ms, ts_ns, out)
    }

    /// The update in `self.levels`, at `ids` (or the error its decoding met).
    fn apply_update(
        &mut self,
        symbol: SymbolId,
        ids: Result<DeltaIds, FrameError>,
        time_ms: Option<u64>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let ids = match ids {
            Ok(ids) => ids,
            Err(e) => return Err(self.core.symbols.bad_frame(symbol, e, out)),
        };
        let delta = Delta {
            symbol,
            ids,
            levels: &self.levels,
            exchange_ts_ns: ms_to_ns(time_ms.unwrap_or(0)),
            ts_ns,
        };
        let symbols = &mut self.core.symbols;
        let sync = symbols.sync_mut(symbol).expect("interned above");
        match sync.apply_delta(&GateRule, delta, out) {
            Ok(_) => Ok(()),
            Err(e) => Err(symbols.bad_frame(symbol, e.into(), out)),
        }
    }

    fn bad_book_frame(
        &mut self,
        name: Option<String>,
        error: FrameError,
        out: &mut Vec<Event>,
    ) -> ReceiveError {
        let symbols = &mut self.core.symbols;
        match name.as_deref().and_then(|n| symbols.id(n)) {
            Some(id) => symbols.bad_frame(id, error, out),
            None => ReceiveError::new(name, error),
        }
    }

    fn on_book_ticker(
        &mut self,
        result: &RawValue,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let ticker: BookTicker<'_> =
            serde_json::from_str(result.get()).map_err(FrameError::from)?;
        let name = ticker.symbol.ok_or(FrameError::MissingField("s"))?;
        let owned = || Some(name.to_owned());
        let quote = (|| {
            Ok::<_, FrameError>((
                number("b", ticker.bid)?,
                number("B", ticker.bid_size)?,
                number("a", ticker.ask)?,
                number("A", ticker.ask_size)?,
            ))
        })()
        .map_err(|e| ReceiveError::new(owned(), e))?;
        let Some(symbol) = self.intern(name) else {
            return Ok(());
        };
        let (bid_price, bid_size, ask_price, ask_size) = quote;
        out.push(Event::Quote(Quote {
            symbol,
            seq: ticker.id,
            bid_price,
            bid_size,
            ask_price,
            ask_size,
            exchange_ts_ns: ms_to_ns(ticker.time_ms.unwrap_or(0)),
            ts_ns,
        }));
        Ok(())
    }

    fn on_trades(
        &mut self,
        result: &RawValue,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let trades: Vec<TradeRow<'_>> = rows(result).map_err(FrameError::from)?;
        for row in &trades {
            let name = row
                .currency_pair
                .or(row.contract)
                .ok_or(FrameError::MissingField("currency_pair"))?;
            let trade = self
                .trade(row)
                .map_err(|e| ReceiveError::new(Some(name.to_owned()), e))?;
            let Some(symbol) = self.intern(name) else {
                continue;
            };
            out.push(Event::Trade(Trade {
                symbol,
                ts_ns,
                ..trade
            }));
        }
        Ok(())
    }

    fn trade(&self, row: &TradeRow<'_>) -> Result<Trade, FrameError> {
        let price = number("price", row.price)?;
        let (size, side) = match self.market {
            Market::Spot => {
                let side = match row.side {
                    Some("buy") => Some(TradeSide::Buy),
                    Some("sell") => Some(TradeSide::Sell),
                    Some(other) => {
                        return Err(FrameError::Invalid(format!("unknown trade side {other:?}")))
                    }
                    None => None,
                };
                (number("amount", row.amount)?, side)
            }
            Market::Futures => {
                let signed = number("size", row.size)?;
                let side = if signed.is_negative() {
                    TradeSide::Sell
                } else {
                    TradeSide::Buy
                };
                let size = signed.abs().map_err(|error| FrameError::BadNumber {
                    field: "size",
                    error,
                })?;
                (size, Some(side))
            }
        };
        let id = row.id.ok_or(FrameError::MissingField("id"))?;
        let exchange_ts_ns = match row.create_time_ms {
            Some(ms) => ms_text_to_ns(number_text(ms))
                .ok_or_else(|| FrameError::Invalid("bad create_time_ms".to_owned()))?,
            None => row.create_time.unwrap_or(0).saturating_mul(1_000_000_000),
        };
        Ok(Trade {
            symbol: 0,
            price,
            size,
            side,
            trade_id: number_text(id).to_owned(),
            exchange_ts_ns,
            ts_ns: 0,
            is_snapshot: false,
        })
    }

    fn on_candles(
        &mut self,
        result: &RawValue,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let candles: Vec<CandleRow<'_>> = rows(result).map_err(FrameError::from)?;
        for row in &candles {
            let name = row.name.ok_or(FrameError::MissingField("n"))?;
            let (interval, pair) = name.split_once('_').ok_or_else(|| {
                FrameError::Invalid(format!("candle name {name:?} is not <interval>_<symbol>"))
            })?;
            let candle =
                candle(row, interval).map_err(|e| ReceiveError::new(Some(pair.to_owned()), e))?;
            let Some(symbol) = self.intern(pair) else {
                continue;
            };
            out.push(Event::Candle(Candle {
                symbol,
                ts_ns,
                ..candle
            }));
        }
        Ok(())
    }
}

fn candle(row: &CandleRow<'_>, interval: &str) -> Result<Candle, FrameError> {
    let open_s = row.open_s.ok_or(FrameError::MissingField("t"))?;
    let open_ts_ns = parse_epoch_seconds_ns(number_text(open_s))
        .ok_or_else(|| FrameError::Invalid("bad candle time `t`".to_owned()))?;
    let length_ns = interval_ns(interval)
        .ok_or_else(|| FrameError::Invalid(format!("unknown candle interval {interval:?}")))?;
    Ok(Candle {
        symbol: 0,
        interval: interval.to_owned(),
        open_ts_ns,
        close_ts_ns: open_ts_ns.saturating_add(length_ns),
        open: number("o", row.open)?,
        high: number("h", row.high)?,
        low: number("l", row.low)?,
        close: number("c", row.close)?,
        volume: number("v", row.volume)?,
        trades: None,
        closed: row.closed.unwrap_or(false),
        exchange_ts_ns: open_ts_ns,
        ts_ns: 0,
        is_snapshot: false,
    })
}

/// Gate's candle intervals (`10s`, `1m`, `4h`, `7d`, `30d`...) in nanoseconds.
fn interval_ns(interval: &str) -> Option<u64> {
    let unit = interval.chars().last()?;
    let count: u64 = interval[..interval.len() - unit.len_utf8()].parse().ok()?;
    let seconds = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return None,
    };
    count.checked_mul(seconds)?.checked_mul(1_000_000_000)
}

/// Milliseconds with an optional fraction (`"1619093543708.2642"`) to nanoseconds; digits past
/// the sixth decimal are dropped.
fn ms_text_to_ns(text: &str) -> Option<u64> {
    let (ms, frac) = text.split_once('.').unwrap_or((text, ""));
    if ms.is_empty() || !ms.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let ms: u64 = ms.parse().ok()?;
    let nanos = (0..6).fold(0u64, |acc, i| {
        let digit = frac.as_bytes().get(i).map_or(0, |c| u64::from(c - b'0'));
        acc * 10 + digit
    });
    ms.checked_mul(1_000_000)?.checked_add(nanos)
}

/// A required number field, exactly from its text (string or JSON number).
fn number(field: &'static str, raw: Option<&RawValue>) -> Result<Decimal, FrameError> {
    let raw = raw.ok_or(FrameError::MissingField(field))?;
    Decimal::parse(number_text(raw)).map_err(|error| FrameError::BadNumber { field, error })
}

fn update_ids(first: Option<u64>, last: Option<u64>) -> Result<DeltaIds, FrameError> {
    let first = first.ok_or(FrameError::MissingField("U"))?;
    let last = last.ok_or(FrameError::MissingField("u"))?;
    if first > last {
        return Err(FrameError::Invalid(format!(
            "first update id {first} is after last {last}"
        )));
    }
    Ok(DeltaIds {
        first,
        last,
        prev: None,
    })
}

fn read_levels(
    bids: &[Level<'_>],
    asks: &[Level<'_>],
    out: &mut Vec<LevelChange>,
) -> Result<(), FrameError> {
    for (side, levels) in [(Side::Bid, bids), (Side::Ask, asks)] {
        for level in levels {
            let price = number("price", Some(level.price))?;
            let size = number("size", Some(level.size))?;
            out.push((side, price, size));
        }
    }
    Ok(())
}

/// The `s` of a book update that did not decode, to resync the symbol it names.
fn symbol_of(result: &RawValue) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Named {
        s: Option<String>,
    }
    serde_json::from_str::<Named>(result.get()).ok()?.s
}

impl Session for GateSession {
    fn venue(&self) -> &'static str {
        self.market.venue_name()
    }

    fn receive_frame(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        check_frame_size(frame, self.core.options.max_frame_bytes)?;
        self.on_frame(frame, ts_ns, out)
    }

    fn receive_snapshot(
        &mut self,
        symbol: &str,
        body: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let owned_symbol = || Some(symbol.to_owned());
        check_frame_size(body, self.core.options.max_frame_bytes)
            .map_err(|e| ReceiveError::new(owned_symbol(), e))?;
        let book: RestBook<'_> = serde_json::from_slice(body)
            .map_err(|e| ReceiveError::new(owned_symbol(), e.into()))?;
        if book.label.is_some() || book.message.is_some() {
            return Err(venue_error(
                Some(symbol),
                book.label.as_deref(),
                book.message.as_deref(),
            ));
        }
        let id = book
            .id
            .ok_or_else(|| ReceiveError::new(owned_symbol(), FrameError::MissingField("id")))?;
        self.levels.clear();
        read_levels(&book.bids, &book.asks, &mut self.levels)
            .map_err(|e| ReceiveError::new(owned_symbol(), e))?;
        let exchange_ts_ns = book
            .current
            .and_then(|t| parse_epoch_seconds_ns(number_text(t)))
            .unwrap_or(0);
        // Gate spells symbols in upper case in every frame; the snapshot is read as they do.
        let Some(id_of_symbol) = self.intern(&symbol.to_ascii_uppercase()) else {
            return Ok(());
        };
        let snapshot = Snapshot {
            symbol: id_of_symbol,
            id: Some(id),
            levels: &self.levels,
            exchange_ts_ns,
            ts_ns,
        };
        let sync = self
            .core
            .symbols
            .sync_mut(id_of_symbol)
            .expect("interned above");
        sync.apply_snapshot(&GateRule, snapshot, out)
            .map_err(|e| ReceiveError::new(owned_symbol(), e.into()))
    }

    fn resync_modes(&self) -> &'static [ResyncBy] {
        // Update streams carry no book: only the REST snapshot rebuilds one.
        &[ResyncBy::Snapshot]
    }

    fn core(&self) -> &SessionCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut SessionCore {
        &mut self.core
    }
}
