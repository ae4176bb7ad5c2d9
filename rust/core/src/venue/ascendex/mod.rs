//! AscendEX (pro API v1 websocket): depth books whose snapshot is asked for on the socket,
//! and trades.
//!
//! Sequence rule (per symbol): `depth-snapshot` (sent in answer to
//! `{"op":"req","action":"depth-snapshot","args":{"symbol":S}}`) stands at `seqnum` N; `depth`
//! messages each carry one `seqnum`: those at or before N are stale, the first applied one is
//! N + 1 and each later one the previous + 1; anything else drops the book and asks for a new
//! snapshot (`NeedResubscribe`: the I/O layer sends the snapshot request again).
//!
//! The subscribe messages already ask for every symbol's first snapshot, so the updates that
//! arrive before it are buffered without asking again; only a lost sync asks.
//!
//! `{"m":"ping"}` is answered with `Event::Reply` `{"op":"pong"}`. `trades` items become
//! `Trade`s (`bm`: the buyer was the maker, so the taker sold; the id is the trade's
//! `seqnum`). A `sub` answer with a non-zero `code`, and an `error` frame, are
//! `FrameError::VenueError`.

mod wire;

#[cfg(test)]
mod tests;

use crate::error::{FrameError, ReceiveError};
use crate::event::{Event, SymbolId, Trade, TradeSide};
use crate::sync::{Continuity, Delta, DeltaIds, LevelChange, ResyncBy, SequenceRule, Snapshot};
use crate::venue::json::venue_error;
use crate::venue::session_core::SessionCore;
use crate::venue::{check_frame_size, decimal_field, ms_to_ns, Session, SessionOptions};
use crate::Side;

use wire::Frame;

/// What a `{"m":"ping"}` is answered with.
pub const PONG: &str = r#"{"op":"pong"}"#;

/// `seqnum` +1 chaining (one `seqnum` per message: `first == last`).
pub struct AscendexRule;

impl SequenceRule for AscendexRule {
    fn bridges(&self, snapshot_id: u64, d: &DeltaIds) -> Continuity {
        self.after(snapshot_id, d)
    }

    fn follows(&self, last: &DeltaIds, d: &DeltaIds) -> Continuity {
        self.after(last.last, d)
    }
}

impl AscendexRule {
    fn after(&self, last: u64, d: &DeltaIds) -> Continuity {
        let expected = last.saturating_add(1);
        if d.last <= last {
            Continuity::Stale
        } else if d.first == expected {
            Continuity::Apply
        } else {
            Continuity::Gap {
                expected,
                received: d.first,
            }
        }
    }
}

pub struct AscendexSession {
    core: SessionCore,
    levels: Vec<LevelChange>,
}

impl AscendexSession {
    pub fn new(options: SessionOptions) -> Self {
        AscendexSession {
            core: SessionCore::new(options),
            levels: Vec::with_capacity(64),
        }
    }

    fn intern(&mut self, name: &str) -> Option<SymbolId> {
        self.core.intern(name, ResyncBy::Resubscribe, None)
    }

    /// `frame`'s `data` as a book: its levels into `self.levels`, its `seqnum` and time.
    fn read_depth(&mut self, frame: &Frame<'_>) -> Result<(u64, u64), FrameError> {
        let data = frame.data.ok_or(FrameError::MissingField("data"))?;
        let depth: wire::Depth<'_> = serde_json::from_str(data.get())?;
        self.levels.clear();
        for (side, levels) in [(Side::Bid, &depth.bids), (Side::Ask, &depth.asks)] {
            for &(price, size) in levels {
                let price = decimal_field("price", Some(price))?;
                let size = decimal_field("size", Some(size))?;
                self.levels.push((side, price, size));
            }
        }
        Ok((depth.seqnum, ms_to_ns(depth.ts.unwrap_or(0))))
    }

    fn on_depth(
        &mut self,
        frame: &Frame<'_>,
        snapshot: bool,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let name = frame.symbol.ok_or(FrameError::MissingField("symbol"))?;
        let Some(symbol) = self.intern(name) else {
            return Ok(());
        };
        let (seqnum, exchange_ts_ns) = match self.read_depth(frame) {
            Ok(read) => read,
            Err(e) => return Err(self.core.symbols.bad_frame(symbol, e, out)),
        };
        self.apply_depth(symbol, snapshot, seqnum, exchange_ts_ns, ts_ns, out)
    }

    /// A depth frame the scanner read whole (its levels in `self.levels`).
    fn on_scanned_depth(
        &mut self,
        depth: wire::ScannedDepth<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let Some(symbol) = self.intern(depth.symbol) else {
            return Ok(());
        };
        let exchange_ts_ns = ms_to_ns(depth.ts_ms.unwrap_or(0));
        self.apply_depth(
            symbol,
            depth.snapshot,
            depth.seqnum,
            exchange_ts_ns,
            ts_ns,
            out,
        )
    }

    /// The book message in `self.levels`, at `seqnum`.
    fn apply_depth(
        &mut self,
        symbol: SymbolId,
        snapshot: bool,
        seqnum: u64,
        exchange_ts_ns: u64,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let symbols = &mut self.core.symbols;
        let sync = symbols.sync_mut(symbol).expect("interned above");
        let result = if snapshot {
            let snapshot = Snapshot {
                symbol,
                id: Some(seqnum),
                levels: &self.levels,
                exchange_ts_ns,
                ts_ns,
            };
            sync.apply_snapshot(&AscendexRule, snapshot, out)
        } else {
            // Never live nor lost yet: the subscribe messages asked for this symbol's first
            // snapshot already, so the request the buffering makes is not passed on.
            let first = sync.counters.snapshots == 0 && sync.counters.gaps == 0;
            let start = out.len();
            let delta = Delta {
                symbol,
                ids: DeltaIds::single(seqnum),
                levels: &self.levels,
                exchange_ts_ns,
                ts_ns,
            };
            let applied = sync.apply_delta(&AscendexRule, delta, out).map(|_| ());
            if first {
                let mut i = start;
                while i < out.len() {
                    if out[i] == (Event::NeedResubscribe { symbol }) {
                        out.remove(i);
                    } else {
                        i += 1;
                    }
                }
            }
            applied
        };
        result.map_err(|e| symbols.bad_frame(symbol, e.into(), out))
    }

    fn on_trades(
        &mut self,
        frame: &Frame<'_>,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        let named = |error| ReceiveError::new(frame.symbol.map(str::to_owned), error);
        let name = frame.symbol.ok_or(FrameError::MissingField("symbol"))?;
        let data = frame
            .data
            .ok_or(FrameError::MissingField("data"))
            .map_err(named)?;
        let items: Vec<wire::TradeItem<'_>> =
            serde_json::from_str(data.get()).map_err(|e| named(e.into()))?;
        let mut trades = Vec::with_capacity(items.len());
        for item in &items {
            let price = decimal_field("p", Some(item.p)).map_err(named)?;
            let size = decimal_field("q", Some(item.q)).map_err(named)?;
            // `bm`: the buyer was the maker, so the taker sold.
            let side = item.bm.map(|maker| {
                if maker {
                    TradeSide::Sell
                } else {
                    TradeSide::Buy
                }
            });
            trades.push((price, size, side, item));
        }
        let Some(symbol) = self.intern(name) else {
            return Ok(());
        };
        for (price, size, side, item) in trades {
            out.push(Event::Trade(Trade {
                symbol,
                price,
                size,
                side,
                trade_id: item.seqnum.to_string(),
                exchange_ts_ns: ms_to_ns(item.ts.unwrap_or(0)),
                ts_ns,
                is_snapshot: false,
            }));
        }
        Ok(())
    }
}

impl Session for AscendexSession {
    fn venue(&self) -> &'static str {
        "ascendex"
    }

    fn receive_frame(
        &mut self,
        frame: &[u8],
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), ReceiveError> {
        check_frame_size(frame, self.core.options.max_frame_bytes)?;
        self.levels.clear();
        if let Some(depth) = wire::scan_depth(frame, &mut self.levels) {
            return self.on_scanned_depth(depth, ts_ns, out);
        }
        let parsed: Frame<'_> = serde_json::from_slice(frame).map_err(FrameError::from)?;
        match parsed.m {
            Some("depth") => self.on_depth(&parsed, false, ts_ns, out),
            Some("depth-snapshot") => self.on_depth(&parsed, true, ts_ns, out),
            Some("trades") => self.on_trades(&parsed, ts_ns, out),
            Some("ping") => {
                out.push(Event::Reply {
                    text: PONG.to_owned(),
                });
                Ok(())
            }
            Some("error") => {
                let message = parsed.info.as_deref().or(parsed.reason.as_deref());
                Err(venue_error(parsed.symbol, parsed.code.as_deref(), message))
            }
            Some("sub") | Some("unsub") if parsed.code.as_deref().is_some_and(|c| c != "0") => {
                let symbol = parsed.ch.and_then(|ch| ch.split_once(':')).map(|(_, s)| s);
                let message = parsed.info.as_deref().or(parsed.reason.as_deref());
                Err(venue_error(symbol, parsed.code.as_deref(), message))
            }
            _ => {
                self.core.stats.ignored += 1;
                Ok(())
            }
        }
    }

    fn resync_modes(&self) -> &'static [ResyncBy] {
        // The snapshot is asked for on the socket: the I/O layer's resubscribe sends it.
        &[ResyncBy::Resubscribe]
    }

    fn core(&self) -> &SessionCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut SessionCore {
        &mut self.core
    }
}
