//! Trades of the venues that send a symbol's recent trades when it is subscribed (Bitfinex's
//! trades snapshot, Gemini's `trades` list): that history and the live trades after it become
//! `Trade` events through one place, which marks the history and keeps a resubscribe from
//! repeating trades already emitted.

use crate::decimal::Decimal;
use crate::event::{Event, SymbolId, Trade, TradeSide};
use crate::venue::ms_to_ns;

/// A trade as decoded, before it gets its symbol and receive time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawTrade {
    pub id: u64,
    /// The venue's time of the trade, in milliseconds since the epoch (0: not given).
    pub ts_ms: u64,
    pub price: Decimal,
    pub size: Decimal,
    pub side: Option<TradeSide>,
}

impl RawTrade {
    fn push(&self, symbol: SymbolId, ts_ns: u64, is_snapshot: bool, out: &mut Vec<Event>) {
        out.push(Event::Trade(Trade {
            symbol,
            price: self.price,
            size: self.size,
            side: self.side,
            trade_id: self.id.to_string(),
            exchange_ts_ns: ms_to_ns(self.ts_ms),
            ts_ns,
            is_snapshot,
        }));
    }
}

/// One symbol's highest trade id emitted so far. Venue trade ids grow with time, so a trade
/// whose id is not above it was emitted already.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TradeCursor {
    last_id: Option<u64>,
}

impl TradeCursor {
    pub fn last_id(&self) -> Option<u64> {
        self.last_id
    }

    /// Trades the venue sent with a (re)subscription: emitted oldest first and marked
    /// `is_snapshot`, leaving out those emitted already (a resubscribe sends them again).
    pub fn history(
        &mut self,
        trades: &mut [RawTrade],
        symbol: SymbolId,
        ts_ns: u64,
        out: &mut Vec<Event>,
    ) {
        trades.sort_unstable_by_key(|t| t.id);
        for t in trades.iter() {
            if self.last_id.is_some_and(|last| t.id <= last) {
                continue;
            }
            t.push(symbol, ts_ns, true, out);
            self.last_id = Some(t.id);
        }
    }

    /// A trade as it happens: always emitted, never marked.
    pub fn live(&mut self, trade: &RawTrade, symbol: SymbolId, ts_ns: u64, out: &mut Vec<Event>) {
        trade.push(symbol, ts_ns, false, out);
        self.last_id = Some(self.last_id.map_or(trade.id, |last| last.max(trade.id)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trade(id: u64) -> RawTrade {
        RawTrade {
            id,
            ts_ms: 1_600_000_000_000 + id,
            price: Decimal::parse("100.5").unwrap(),
            size: Decimal::parse("0.25").unwrap(),
            side: Some(TradeSide::Buy),
        }
    }

    fn emitted(out: &[Event]) -> Vec<(String, bool)> {
        out.iter()
            .map(|e| match e {
                Event::Trade(t) => (t.trade_id.clone(), t.is_snapshot),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn history_is_marked_sorted_and_not_repeated_live_is_not_marked() {
        let mut cursor = TradeCursor::default();
        let mut out = Vec::new();
        cursor.history(&mut [trade(3), trade(1), trade(2)], 7, 9, &mut out);
        cursor.live(&trade(4), 7, 9, &mut out);
        // A resubscribe repeats the history with one trade more.
        cursor.history(&mut [trade(5), trade(4), trade(3)], 7, 9, &mut out);
        assert_eq!(
            emitted(&out),
            [
                ("1".into(), true),
                ("2".into(), true),
                ("3".into(), true),
                ("4".into(), false),
                ("5".into(), true)
            ]
        );
        let Event::Trade(first) = &out[0] else {
            unreachable!()
        };
        assert_eq!(
            (first.symbol, first.ts_ns, first.exchange_ts_ns),
            (7, 9, 1_600_000_000_001_000_000)
        );
        assert_eq!(cursor.last_id(), Some(5));
    }

    #[test]
    fn a_live_trade_out_of_order_is_still_emitted() {
        let mut cursor = TradeCursor::default();
        let mut out = Vec::new();
        cursor.live(&trade(9), 0, 0, &mut out);
        cursor.live(&trade(8), 0, 0, &mut out);
        assert_eq!(emitted(&out), [("9".into(), false), ("8".into(), false)]);
        assert_eq!(cursor.last_id(), Some(9));
    }
}
