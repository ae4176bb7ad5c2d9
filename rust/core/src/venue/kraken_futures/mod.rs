//! Kraken Futures ws v1: `book` (with its `book_snapshot`) and `trade` feeds.
//!
//! No capture of this venue is shared: the decoder follows the protocol notes
//! (`../shared/docs/PROTOCOLS.md`) and is proven by unit tests on frames written from the shapes
//! they give, not on the venue's own truth.
//!
//! Per product: `book_snapshot` (`seq`, `bids`/`asks` as `[{"price", "qty"}]`) then `book`
//! messages of one level each (`side` `buy`/`sell`, `price`, `qty`, 0 deletes, `seq`). Each
//! `seq` is the previous + 1 (the first after the snapshot is the snapshot's + 1); a gap drops
//! that product's book and asks for `NeedResubscribe`, which brings a new snapshot. Product ids
//! are answered in upper case. `trade` messages are trades; `trade_snapshot` holds the last ones
//! before the subscription (history, `is_snapshot`). `ticker_lite` carries no sizes, so it gives
//! no `Quote`. `{"event":"error","message"}` is a venue error; other events are answers.

mod wire;

#[cfg(test)]
mod tests;

use crate::book::Side;
use crate::error::{FrameError, ReceiveError};
use crate::event::{Event, SymbolId, Trade, TradeSide};
use crate::sync::{Continuity, Delta, DeltaIds, LevelChange, ResyncBy, SequenceRule, Snapshot};
use crate::venue::json::venue_error;
use crate::venue::session_core::SessionCore;
use crate::venue::{check_frame_size, ms_to_ns, Session, SessionOptions};

use wire::Frame;

/// Per product `seq` + 1, starting at the snapshot's + 1.
pub struct KrakenFuturesRule;

impl SequenceRule for KrakenFuturesRule {
    fn bridges(&self, snapshot_id: u64, d: &DeltaIds) -> Continuity {
        next_after(snapshot_id, d)
    }

    fn follows(&self, last: &DeltaIds, d: &DeltaIds) -> Continuity {
        next_after(last.last, d)
    }
}

fn next_after(at: u64, d: &DeltaIds) -> Continuity {
    let expected = at.saturating_add(1);
    if d.first == expected {
        Continuity::Apply
    } else if d.last <= at {
        Continuity::Stale
    } else {
        Continuity::Gap {
            expected,
            received: d.first,
        }
    }
}

pub struct KrakenFuturesSession {
    core: SessionCore,
    levels: Vec<LevelChange>,
}

impl KrakenFuturesSession {
    pub fn new(options: SessionOptions) -> Self {
        KrakenFuturesSession {
            core: SessionCore::new(options),
            levels: Vec::with_capacity(64),
        }
    }

    fn receive_inner(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        check_frame_size(frame, self.core.options.max_frame_bytes)?;
        let f: Frame<'_> = serde_json::from_slice(frame).map_err(FrameError::from)?;
        if f.event == Some("error") {
            return Err(venue_error(f.product_id, None, f.message.as_deref()));
        }
        match f.feed {
            _ if f.event.is_some() => {
                self.core.stats.ignored += 1;
                Ok(())
            }
            Some(feed @ ("book_snapshot" | "book")) => {
                let name = f.product_id.ok_or(FrameError::MissingField("product_id"))?;
                let Some(id) = self.core.intern(name, ResyncBy::Resubscribe, None) else {
                    return Ok(());
                };
                let result = self.on_book(id, feed == "book_snapshot", &f, ts_ns, out);
                result.map_err(|e| self.core.symbols.bad_frame(id, e, out))
            }
            Some("trade") => self.on_trade(&f, ts_ns, out),
            Some("trade_snapshot") => self.on_trade_snapshot(&f, ts_ns, out),
            _ => {
                self.core.stats.ignored += 1;
                Ok(())
            }
        }
    }

    fn on_book(
        &mut self,
        id: SymbolId,
        snapshot: bool,
        f: &Frame<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), FrameError> {
        let seq = f.seq.ok_or(FrameError::MissingField("seq"))?;
        let exchange_ts_ns = ms_to_ns(f.timestamp.unwrap_or(0));
        self.levels.clear();
        if snapshot {
            for (side, levels) in [(Side::Bid, &f.bids), (Side::Ask, &f.asks)] {
                for level in levels {
                    let price = wire::number("price", Some(level.price))?;
                    let qty = wire::number("qty", Some(level.qty))?;
                    self.levels.push((side, price, qty));
                }
            }
        } else {
            let side = match f.side {
                Some("buy") => Side::Bid,
                Some("sell") => Side::Ask,
                Some(other) => {
                    return Err(FrameError::Invalid(format!(
                        "book side {other:?} is not buy or sell"
                    )))
                }
                None => return Err(FrameError::MissingField("side")),
            };
            let price = wire::number("price", f.price)?;
            let qty = wire::number("qty", f.qty)?;
            self.levels.push((side, price, qty));
        }
        let sync = self
            .core
            .symbols
            .sync_mut(id)
            .expect("interned by the caller");
        if snapshot {
            let snapshot = Snapshot {
                symbol: id,
                id: Some(seq),
                levels: &self.levels,
                exchange_ts_ns,
                ts_ns,
            };
            // A new snapshot replaces the book even when it is older than the last update:
            // the venue sends one only when (re)subscribed.
            sync.forget_stream();
            sync.apply_snapshot(&KrakenFuturesRule, snapshot, out)?;
        } else {
            let delta = Delta {
                symbol: id,
                ids: DeltaIds::single(seq),
                levels: &self.levels,
                exchange_ts_ns,
                ts_ns,
            };
            sync.apply_delta(&KrakenFuturesRule, delta, out)?;
        }
        Ok(())
    }

    fn trade(
        &mut self,
        t: TradeFields<'_>,
        history: bool,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let error = |e| ReceiveError::new(t.product_id.map(str::to_owned), e);
        let name = t
            .product_id
            .ok_or_else(|| error(FrameError::MissingField("product_id")))?;
        let side = match t.side {
            Some("buy") => Some(TradeSide::Buy),
            Some("sell") => Some(TradeSide::Sell),
            None => None,
            Some(other) => {
                let e = FrameError::Invalid(format!("trade side {other:?} is not buy or sell"));
                return Err(error(e));
            }
        };
        let price = wire::number("price", t.price).map_err(error)?;
        let size = wire::number("qty", t.qty).map_err(error)?;
        let Some(symbol) = self.core.intern(name, ResyncBy::Resubscribe, None) else {
            return Ok(());
        };
        out.push(Event::Trade(Trade {
            symbol,
            price,
            size,
            side,
            trade_id: t.uid.unwrap_or("").to_owned(),
            exchange_ts_ns: ms_to_ns(t.time.unwrap_or(0)),
            ts_ns,
            is_snapshot: history,
        }));
        Ok(())
    }

    fn on_trade(
        &mut self,
        f: &Frame<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let fields = TradeFields {
            product_id: f.product_id,
            uid: f.uid.as_deref(),
            side: f.side,
            price: f.price,
            qty: f.qty,
            time: f.time,
        };
        self.trade(fields, false, ts_ns, out)
    }

    fn on_trade_snapshot(
        &mut self,
        f: &Frame<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        for row in &f.trades {
            let fields = TradeFields {
                product_id: row.product_id.or(f.product_id),
                uid: row.uid.as_deref(),
                side: row.side,
                price: Some(row.price),
                qty: Some(row.qty),
                time: row.time,
            };
            self.trade(fields, true, ts_ns, out)?;
        }
        Ok(())
    }
}

/// What a trade message and a row of a `trade_snapshot` both give.
struct TradeFields<'a> {
    product_id: Option<&'a str>,
    uid: Option<&'a str>,
    side: Option<&'a str>,
    price: Option<&'a serde_json::value::RawValue>,
    qty: Option<&'a serde_json::value::RawValue>,
    time: Option<u64>,
}

impl Session for KrakenFuturesSession {
    fn venue(&self) -> &'static str {
        "kraken-futures"
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
