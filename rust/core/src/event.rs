//! What a session hands back for each frame: book changes, sync signals, trades, candles, quotes.

use crate::decimal::Decimal;

/// Index of a symbol in its session's table; stable for the session's life.
pub type SymbolId = u32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeSide {
    Buy,
    Sell,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trade {
    pub symbol: SymbolId,
    pub price: Decimal,
    pub size: Decimal,
    /// The taker's side, where the venue tells it.
    pub side: Option<TradeSide>,
    pub trade_id: String,
    pub exchange_ts_ns: u64,
    pub ts_ns: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candle {
    pub symbol: SymbolId,
    pub interval: String,
    pub open_ts_ns: u64,
    pub close_ts_ns: u64,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    pub volume: Decimal,
    pub trades: Option<u64>,
    pub closed: bool,
    pub exchange_ts_ns: u64,
    pub ts_ns: u64,
}

/// The venue's own best bid/ask at an update id (Binance `bookTicker`): a cross-check of the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote {
    pub symbol: SymbolId,
    pub seq: Option<u64>,
    pub bid_price: Decimal,
    pub bid_size: Decimal,
    pub ask_price: Decimal,
    pub ask_size: Decimal,
    pub exchange_ts_ns: u64,
    pub ts_ns: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The symbol's book changed and is in sync; `seq` is the venue's update id, if it has one.
    BookUpdated {
        symbol: SymbolId,
        seq: Option<u64>,
        exchange_ts_ns: u64,
        ts_ns: u64,
    },
    /// Fetch a REST snapshot for this symbol and hand it to `receive_snapshot`.
    NeedSnapshot {
        symbol: SymbolId,
    },
    /// Ask the venue again for this symbol's channel (venues whose snapshot comes in-band).
    NeedResubscribe {
        symbol: SymbolId,
    },
    /// Continuity broke: the book was cleared and is being rebuilt.
    GapDetected {
        symbol: SymbolId,
        expected: u64,
        received: u64,
    },
    /// The book checksum the venue sent does not match ours: the book was cleared.
    ChecksumMismatch {
        symbol: SymbolId,
        expected: u32,
        computed: u32,
    },
    /// The book is in sync again after a gap, mismatch or bad frame.
    Resynced {
        symbol: SymbolId,
        seq: Option<u64>,
    },
    Trade(Trade),
    Candle(Candle),
    Quote(Quote),
}

impl Event {
    pub fn symbol(&self) -> SymbolId {
        match self {
            Event::BookUpdated { symbol, .. }
            | Event::NeedSnapshot { symbol }
            | Event::NeedResubscribe { symbol }
            | Event::GapDetected { symbol, .. }
            | Event::ChecksumMismatch { symbol, .. }
            | Event::Resynced { symbol, .. } => *symbol,
            Event::Trade(t) => t.symbol,
            Event::Candle(c) => c.symbol,
            Event::Quote(q) => q.symbol,
        }
    }
}
