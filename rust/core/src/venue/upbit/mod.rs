//! Upbit (`wss://api.upbit.com/websocket/v1`), `SIMPLE` format: one request names every
//! channel; frames arrive as binary websocket frames of JSON text.
//!
//! - `orderbook` (`ty`, `cd` the market code, `tms`, `obu` units `{ap, as, bp, bs}`): every
//!   message is the whole book (15 units), so each one replaces it. No sequence number.
//! - Upbit's own truth: `tas`/`tbs`, the total ask and bid sizes of the message. After each
//!   book is applied its sides are summed exactly and compared with them, value for value
//!   (`1.50` equals `1.5`), through the sync's checksum counters: the "checksum" of each side
//!   is a CRC32 of its total written without trailing zeros, the venue's against ours. A
//!   mismatch drops the book and asks for a resubscribe, like any checksum.
//! - `trade` (`tp` price, `tv` volume, `ab` `ASK`/`BID` the taker's side, `sid` id, `ttms`).
//! - `{"error":{"name","message"}}`: `FrameError::VenueError`; `{"status":"UP"}` (the answer to
//!   a text `PING`) is ignored.
//!
//! Numbers are JSON numbers parsed from their digits (exponents too: `9.9E-7`), never `f64`.

mod wire;

#[cfg(test)]
mod tests;

use crate::book::{Book, Side};
use crate::decimal::Decimal;
use crate::error::{FrameError, ReceiveError};
use crate::event::{Event, SymbolId, Trade, TradeSide};
use crate::sync::{LevelChange, ResyncBy, Snapshot, Unsequenced};
use crate::venue::json::venue_error;
use crate::venue::publication::{confirm_checksum, published};
use crate::venue::session_core::SessionCore;
use crate::venue::{check_frame_size, ms_to_ns, Session, SessionOptions};

pub struct UpbitSession {
    core: SessionCore,
    levels: Vec<LevelChange>,
}

impl UpbitSession {
    pub fn new(options: SessionOptions) -> Self {
        UpbitSession {
            core: SessionCore::new(options),
            levels: Vec::with_capacity(32),
        }
    }

    fn receive_inner(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        check_frame_size(frame, self.core.options.max_frame_bytes)?;
        self.levels.clear();
        if let Some((symbol, totals)) = wire::scan_book(frame, &mut self.levels) {
            let Some(id) = self.core.intern(symbol, ResyncBy::Resubscribe, None) else {
                return Ok(());
            };
            return self
                .apply_book(id, totals, ts_ns, out)
                .map_err(|e| self.core.symbols.bad_frame(id, e, out));
        }
        let f = wire::read_frame(frame)?;
        if let Some(error) = &f.error {
            return Err(venue_error(
                f.cd.as_deref(),
                error.name.as_deref(),
                error.message.as_deref(),
            ));
        }
        match f.ty.as_deref() {
            Some("orderbook") => {
                let symbol = f.cd.as_deref().ok_or(FrameError::MissingField("cd"))?;
                let Some(id) = self.core.intern(symbol, ResyncBy::Resubscribe, None) else {
                    return Ok(());
                };
                if let Err(e) = self.on_book(id, &f, ts_ns, out) {
                    return Err(self.core.symbols.bad_frame(id, e, out));
                }
                Ok(())
            }
            Some("trade") => {
                let symbol = f.cd.as_deref().ok_or(FrameError::MissingField("cd"))?;
                let Some(id) = self.core.intern(symbol, ResyncBy::Resubscribe, None) else {
                    return Ok(());
                };
                let trade =
                    trade(id, &f, ts_ns).map_err(|e| ReceiveError::new(Some(symbol.into()), e))?;
                out.push(Event::Trade(trade));
                Ok(())
            }
            _ => {
                // `{"status":"UP"}`, ticker frames of a channel we do not decode.
                self.core.stats.ignored += 1;
                Ok(())
            }
        }
    }

    fn on_book(
        &mut self,
        id: SymbolId,
        f: &wire::Frame<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), FrameError> {
        let units = f.obu.as_deref().ok_or(FrameError::MissingField("obu"))?;
        let totals = wire::BookTotals {
            tms: f.tms,
            total_asks: wire::number("tas", f.tas)?,
            total_bids: wire::number("tbs", f.tbs)?,
        };
        self.levels.clear();
        for unit in units {
            let ask = wire::number("ap", Some(unit.ap))?;
            let ask_size = wire::number("as", Some(unit.ask_size))?;
            let bid = wire::number("bp", Some(unit.bp))?;
            let bid_size = wire::number("bs", Some(unit.bs))?;
            self.levels.push((Side::Ask, ask, ask_size));
            self.levels.push((Side::Bid, bid, bid_size));
        }
        self.apply_book(id, totals, ts_ns, out)
    }

    /// The levels in `self.levels` replace the book, whose sums are then held to the totals.
    /// All the units are kept whatever `SessionOptions::depth` says: the totals cover all 15.
    fn apply_book(
        &mut self,
        id: SymbolId,
        totals: wire::BookTotals,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), FrameError> {
        let sync = self
            .core
            .symbols
            .sync_mut(id)
            .expect("interned by the caller");
        let mark = out.len();
        let snapshot = Snapshot {
            symbol: id,
            id: None,
            levels: &self.levels,
            exchange_ts_ns: ms_to_ns(totals.tms.unwrap_or(0)),
            ts_ns,
        };
        sync.apply_snapshot(&Unsequenced, snapshot, out)?;
        if !published(&out[mark..], id) {
            // Dropped (crossed): there is no book to hold to the totals.
            return Ok(());
        }
        let (expected, computed) =
            totals_fingerprints(&sync.book, totals.total_asks, totals.total_bids)?;
        confirm_checksum(sync, id, expected, computed, out, mark);
        Ok(())
    }
}

/// The venue's totals and the book's sums, each pair as CRC32 fingerprints that are equal
/// exactly when both totals are equal in value.
fn totals_fingerprints(
    book: &Book,
    total_asks: Decimal,
    total_bids: Decimal,
) -> Result<(u32, u32), FrameError> {
    let sum = |side| -> Result<Decimal, FrameError> {
        book.levels(side).try_fold(Decimal::ZERO, |acc, level| {
            add(acc, level.qty).map_err(|error| FrameError::BadNumber {
                field: "obu",
                error,
            })
        })
    };
    let asks = sum(Side::Ask)?;
    let bids = sum(Side::Bid)?;
    let expected = fingerprint(total_asks, total_bids);
    let mut computed = fingerprint(asks, bids);
    let agree = asks.cmp(&total_asks).is_eq() && bids.cmp(&total_bids).is_eq();
    if !agree && computed == expected {
        // Different totals whose texts collide in CRC32: still a mismatch.
        computed = !computed;
    }
    Ok((expected, computed))
}

/// `a + b`, exact.
fn add(a: Decimal, b: Decimal) -> Result<Decimal, crate::decimal::DecimalError> {
    let negated = Decimal::ZERO.checked_sub(b)?;
    a.checked_sub(negated)
}

/// CRC32 of `asks:bids`, each written without trailing zeros after the point.
fn fingerprint(asks: Decimal, bids: Decimal) -> u32 {
    let text = format!("{}:{}", plain(asks), plain(bids));
    crc32fast::hash(text.as_bytes())
}

fn plain(value: Decimal) -> String {
    let text = value.to_string();
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

fn trade(id: SymbolId, f: &wire::Frame<'_>, ts_ns: u64) -> Result<Trade, FrameError> {
    let side = match f.ab.as_deref() {
        Some("BID") => Some(TradeSide::Buy),
        Some("ASK") => Some(TradeSide::Sell),
        None => None,
        Some(other) => {
            return Err(FrameError::Invalid(format!(
                "trade side {other:?} is neither ASK nor BID"
            )))
        }
    };
    let trade_id = f
        .sid
        .map(|raw| raw.get().trim_matches('"').to_owned())
        .ok_or(FrameError::MissingField("sid"))?;
    Ok(Trade {
        symbol: id,
        price: wire::number("tp", f.tp)?,
        size: wire::number("tv", f.tv)?,
        side,
        trade_id,
        exchange_ts_ns: ms_to_ns(f.ttms.or(f.tms).unwrap_or(0)),
        ts_ns,
        is_snapshot: false,
    })
}

impl Session for UpbitSession {
    fn venue(&self) -> &'static str {
        "upbit"
    }

    fn receive_frame(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        self.receive_inner(frame, ts_ns, out)
    }

    fn core(&self) -> &SessionCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut SessionCore {
        &mut self.core
    }
}
