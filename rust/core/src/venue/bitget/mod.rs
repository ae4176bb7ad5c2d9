//! Bitget public websocket v1 (`/spot/v1/stream`, `/mix/v1/stream`): `books` with CRC32
//! checksums, trades and candles. (v2's `/v2/ws/public` books have the same shape; its trades
//! are objects with a `tradeId`, which this decoder does not read yet.)
//!
//! `books`: `action` `snapshot` (the whole book) then `update`s (size `"0"` deletes), each with
//! `checksum`, the signed CRC32 of the top 25 levels interleaved `bid:size:ask:size:...` as
//! the venue wrote them (OKX's legacy checksum, `checksum::okx_checksum`). There are no update
//! ids: a book is proven by its checksum alone, after every snapshot and update. A mismatch
//! drops that symbol's book and asks for `NeedResubscribe` (Bitget sends a new snapshot on
//! subscribe); its updates are dropped until the snapshot comes.
//!
//! A connection carries one market (spot or USDT perpetuals), so a book is keyed by `instId`.
//! Trades (`trade`) and candles (`candle1m`, `candle5m`, ... `candle1W`): the `snapshot` sent on
//! subscribe is history (`is_snapshot`), `update`s are live. v1 trade rows carry no trade id.
//! `ticker` carries no sizes and is counted as ignored; `pong` answers the client's `ping`.
//! An error answer (`{"event":"error","code","msg"}`) is `FrameError::VenueError`.

mod wire;

#[cfg(test)]
mod tests;

use crate::book::Side;
use crate::checksum::okx_checksum;
use crate::error::{FrameError, ReceiveError};
use crate::event::{Candle, Event, SymbolId, Trade, TradeSide};
use crate::sync::{LevelChange, ResyncBy, Snapshot, Unsequenced};
use crate::venue::json::venue_error;
use crate::venue::publication::{confirm_checksum, published};
use crate::venue::session_core::SessionCore;
use crate::venue::{check_frame_size, ms_to_ns, Session, SessionOptions};

use std::ops::Range;

use serde_json::value::RawValue;
use wire::{
    millis, number, number_text, scan_frame, BookItem, CandleFields, CandleRow, DataKind, Decoded,
    Frame, Scanned, TradeFields, TradeRow,
};

pub struct BitgetSession {
    core: SessionCore,
    levels: Vec<LevelChange>,
    decoded: Decoded,
}

impl BitgetSession {
    pub fn new(options: SessionOptions) -> Self {
        BitgetSession {
            core: SessionCore::new(options),
            levels: Vec::with_capacity(512),
            decoded: Decoded::default(),
        }
    }

    /// `None` for an instrument that was not subscribed: the caller drops the frame.
    fn intern(&mut self, name: &str) -> Option<SymbolId> {
        self.core.intern(name, ResyncBy::Resubscribe, None)
    }

    fn on_frame(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        if frame.trim_ascii() == b"pong" {
            self.core.stats.ignored += 1;
            return Ok(());
        }
        self.levels.clear();
        self.decoded.books.clear();
        self.decoded.trades.clear();
        self.decoded.candles.clear();
        if let Some(scanned) = scan_frame(frame, &mut self.levels, &mut self.decoded) {
            return self.on_scanned(scanned, ts_ns, out);
        }
        let f: Frame<'_> = serde_json::from_slice(frame).map_err(FrameError::from)?;
        let channel = f.arg.as_ref().and_then(|a| a.channel);
        let inst_id = f.arg.as_ref().and_then(|a| a.inst_id);
        if f.event == Some("error") {
            let code = f.code.map(number_text);
            return Err(venue_error(inst_id, code, f.msg.as_deref()));
        }
        let (None, Some(channel), Some(data)) = (f.event, channel, f.data) else {
            // Subscription acks, login answers.
            self.core.stats.ignored += 1;
            return Ok(());
        };
        let history = match f.action {
            Some("snapshot") => true,
            Some("update") => false,
            Some(other) => {
                let error = FrameError::Invalid(format!("unknown action {other:?}"));
                return Err(self.named_error(channel, inst_id, error, out));
            }
            None => {
                let error = FrameError::MissingField("action");
                return Err(self.named_error(channel, inst_id, error, out));
            }
        };
        let Some(name) = inst_id else {
            return Err(FrameError::MissingField("arg.instId").into());
        };
        match channel {
            "books" => self.on_books(name, history, data, ts_ns, out),
            "trade" => self.on_trades(name, history, data, ts_ns, out),
            _ => match channel.strip_prefix("candle") {
                Some(interval) => self.on_candles(name, interval, history, data, ts_ns, out),
                None => {
                    self.core.stats.ignored += 1;
                    Ok(())
                }
            },
        }
    }

    /// A data frame the scanner read whole: the same steps as the derived path's, on rows
    /// already parsed.
    fn on_scanned(
        &mut self,
        frame: Scanned<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let name = frame.inst_id;
        let named = |error| ReceiveError::new(Some(name.to_owned()), error);
        match frame.kind {
            DataKind::Books => {
                let Some(id) = self.intern(name) else {
                    return Ok(());
                };
                let mut start = 0;
                for i in 0..self.decoded.books.len() {
                    let book = self.decoded.books[i];
                    let ts = book.ts_ms;
                    let levels = start..book.end;
                    start = book.end;
                    if let Err(e) =
                        self.apply_book(id, frame.snapshot, levels, ts, book.checksum, ts_ns, out)
                    {
                        return Err(self.core.symbols.bad_frame(id, e, out));
                    }
                }
            }
            DataKind::Trades => {
                let Some(symbol) = self.intern(name) else {
                    return Ok(());
                };
                let history = frame.snapshot;
                out.extend(
                    self.decoded
                        .trades
                        .iter()
                        .map(|trade| trade_event(symbol, trade, history, ts_ns)),
                );
            }
            DataKind::Candles => {
                let interval = &frame.channel["candle".len()..];
                let length_ns = candle_length_ns(interval).map_err(named)?;
                let Some(symbol) = self.intern(name) else {
                    return Ok(());
                };
                let interval = interval.to_ascii_lowercase();
                for candle in &self.decoded.candles {
                    let (history, interval) = (frame.snapshot, interval.clone());
                    out.push(candle_event(
                        symbol, interval, length_ns, candle, history, ts_ns,
                    ));
                }
            }
            DataKind::Skipped => self.core.stats.ignored += 1,
        }
        Ok(())
    }

    /// An error of a frame on `channel` for `inst_id`: a book frame costs that book its sync.
    fn named_error(
        &mut self,
        channel: &str,
        inst_id: Option<&str>,
        error: FrameError,
        out: &mut Vec<Event>,
    ) -> ReceiveError {
        let symbols = &mut self.core.symbols;
        match inst_id.and_then(|s| symbols.id(s)) {
            Some(id) if channel == "books" => symbols.bad_frame(id, error, out),
            _ => ReceiveError::new(inst_id.map(str::to_owned), error),
        }
    }

    fn on_books(
        &mut self,
        name: &str,
        snapshot: bool,
        data: &RawValue,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let Some(id) = self.intern(name) else {
            return Ok(());
        };
        let items: Vec<BookItem<'_>> = match serde_json::from_str(data.get()) {
            Ok(items) => items,
            Err(e) => return Err(self.core.symbols.bad_frame(id, e.into(), out)),
        };
        if items.is_empty() {
            let error = FrameError::MissingField("data");
            return Err(self.core.symbols.bad_frame(id, error, out));
        }
        for item in &items {
            if let Err(e) = self.on_book_item(id, snapshot, item, ts_ns, out) {
                return Err(self.core.symbols.bad_frame(id, e, out));
            }
        }
        Ok(())
    }

    fn on_book_item(
        &mut self,
        id: SymbolId,
        snapshot: bool,
        item: &BookItem<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), FrameError> {
        self.levels.clear();
        for (side, levels) in [(Side::Bid, &item.bids), (Side::Ask, &item.asks)] {
            for &(price, size) in levels {
                self.levels
                    .push((side, number("price", price)?, number("size", size)?));
            }
        }
        let ts_ms = match item.ts {
            Some(ts) => Some(millis("ts", number_text(ts))?),
            None => None,
        };
        let levels = 0..self.levels.len();
        self.apply_book(id, snapshot, levels, ts_ms, item.checksum, ts_ns, out)
    }

    /// One book's levels (`levels` of the level buffer), proven by its checksum when it has
    /// one.
    #[allow(clippy::too_many_arguments)]
    fn apply_book(
        &mut self,
        id: SymbolId,
        snapshot: bool,
        levels: Range<usize>,
        ts_ms: Option<u64>,
        checksum: Option<i64>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), FrameError> {
        let exchange_ts_ns = ts_ms.map_or(0, ms_to_ns);
        let expected = match checksum {
            None => None,
            Some(c) => Some(i32::try_from(c).map_err(|_| {
                FrameError::Invalid(format!("checksum {c} is not a 32-bit integer"))
            })?),
        };
        let sync = self
            .core
            .symbols
            .sync_mut(id)
            .expect("interned by the caller");
        let mark = out.len();
        let applied = if snapshot {
            let snapshot = Snapshot {
                symbol: id,
                id: None,
                levels: &self.levels[levels],
                exchange_ts_ns,
                ts_ns,
            };
            sync.apply_snapshot(&Unsequenced, snapshot, out)?;
            published(&out[mark..], id)
        } else {
            // While a new snapshot is awaited (after a mismatch) updates are dropped.
            sync.on_unsequenced_delta(id, &self.levels[levels], exchange_ts_ns, ts_ns, out)?
        };
        if let (true, Some(expected)) = (applied, expected) {
            let computed = okx_checksum(sync.book.bids(), sync.book.asks());
            confirm_checksum(sync, id, expected as u32, computed as u32, out, mark);
        }
        Ok(())
    }

    fn on_trades(
        &mut self,
        name: &str,
        history: bool,
        data: &RawValue,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let named = |error| ReceiveError::new(Some(name.to_owned()), error);
        let rows: Vec<TradeRow<'_>> =
            serde_json::from_str(data.get()).map_err(|e| named(e.into()))?;
        let Some(symbol) = self.intern(name) else {
            return Ok(());
        };
        for (ts, price, size, side) in rows {
            let side = match side {
                "buy" => TradeSide::Buy,
                "sell" => TradeSide::Sell,
                other => {
                    let e = FrameError::Invalid(format!("trade side {other:?} is not buy or sell"));
                    return Err(named(e));
                }
            };
            let trade = TradeFields {
                price: number("price", price).map_err(named)?,
                size: number("size", size).map_err(named)?,
                side,
                ts_ms: millis("ts", ts).map_err(named)?,
            };
            out.push(trade_event(symbol, &trade, history, ts_ns));
        }
        Ok(())
    }

    fn on_candles(
        &mut self,
        name: &str,
        interval: &str,
        history: bool,
        data: &RawValue,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let named = |error| ReceiveError::new(Some(name.to_owned()), error);
        let length_ns = candle_length_ns(interval).map_err(named)?;
        let rows: Vec<CandleRow<'_>> =
            serde_json::from_str(data.get()).map_err(|e| named(e.into()))?;
        let Some(symbol) = self.intern(name) else {
            return Ok(());
        };
        // Bitget writes hours, days and weeks in upper case (`candle1H`); lobfeed's intervals
        // are lower case like every other venue's.
        let interval = interval.to_ascii_lowercase();
        for (open, o, h, l, c, v) in rows {
            let candle = CandleFields {
                open_ms: millis("ts", open).map_err(named)?,
                ohlcv: [
                    number("o", o).map_err(named)?,
                    number("h", h).map_err(named)?,
                    number("l", l).map_err(named)?,
                    number("c", c).map_err(named)?,
                    number("v", v).map_err(named)?,
                ],
            };
            let interval = interval.clone();
            out.push(candle_event(
                symbol, interval, length_ns, &candle, history, ts_ns,
            ));
        }
        Ok(())
    }
}

fn trade_event(symbol: SymbolId, trade: &TradeFields, history: bool, ts_ns: u64) -> Event {
    Event::Trade(Trade {
        symbol,
        price: trade.price,
        size: trade.size,
        side: Some(trade.side),
        trade_id: String::new(),
        exchange_ts_ns: ms_to_ns(trade.ts_ms),
        ts_ns,
        is_snapshot: history,
    })
}

fn candle_event(
    symbol: SymbolId,
    interval: String,
    length_ns: u64,
    candle: &CandleFields,
    history: bool,
    ts_ns: u64,
) -> Event {
    let open_ts_ns = ms_to_ns(candle.open_ms);
    let [open, high, low, close, volume] = candle.ohlcv;
    Event::Candle(Candle {
        symbol,
        interval,
        open_ts_ns,
        close_ts_ns: open_ts_ns.saturating_add(length_ns),
        open,
        high,
        low,
        close,
        volume,
        trades: None,
        closed: false,
        exchange_ts_ns: open_ts_ns,
        ts_ns,
        is_snapshot: history,
    })
}

/// A candle channel's interval as a length, or the error naming it.
fn candle_length_ns(interval: &str) -> Result<u64, FrameError> {
    interval_ns(interval)
        .ok_or_else(|| FrameError::Invalid(format!("unknown candle interval {interval:?}")))
}

/// A candle channel's interval (`1m`, `5m`, `1H`, `1D`, `1W`) in nanoseconds.
fn interval_ns(interval: &str) -> Option<u64> {
    let unit = interval.chars().last()?;
    let count: u64 = interval[..interval.len() - unit.len_utf8()].parse().ok()?;
    let seconds = match unit {
        'm' => 60,
        'H' | 'h' => 3600,
        'D' | 'd' => 86_400,
        'W' | 'w' => 7 * 86_400,
        _ => return None,
    };
    count.checked_mul(seconds)?.checked_mul(1_000_000_000)
}

impl Session for BitgetSession {
    fn venue(&self) -> &'static str {
        "bitget"
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

    fn core(&self) -> &SessionCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut SessionCore {
        &mut self.core
    }
}
