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
    /// Part of the history the venue sends on subscribe (Bitfinex, Gemini), not a live trade.
    pub is_snapshot: bool,
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
    /// Part of the history the venue sends on subscribe (Coinbase candles), not a live candle.
    pub is_snapshot: bool,
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

/// Why a symbol's book was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossReason {
    /// An update is missing between the book and the update received.
    Gap { expected: u64, received: u64 },
    /// The venue's checksum disagrees with our book.
    Checksum { expected: u32, computed: u32 },
    /// A frame for the symbol could not be decoded: it may have held an update.
    BadFrame,
    /// The book refused an update (a negative size, a price out of range).
    Rejected,
    /// After an update the best bid was at or above the best ask.
    Crossed { bid: Decimal, ask: Decimal },
    /// An update strictly older than the one before it: the venue's ids went backwards.
    IdsBackwards { last: u64, received: u64 },
}

impl LossReason {
    /// The word for the reason, as the Python binding spells it.
    pub fn name(&self) -> &'static str {
        match self {
            LossReason::Gap { .. } => "gap",
            LossReason::Checksum { .. } => "checksum",
            LossReason::BadFrame => "bad-frame",
            LossReason::Rejected => "rejected",
            LossReason::Crossed { .. } => "crossed",
            LossReason::IdsBackwards { .. } => "ids-backwards",
        }
    }
}

/// A short sentence for logs and book views.
impl std::fmt::Display for LossReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LossReason::Gap { expected, received } => {
                write!(f, "expected update {expected}, received {received}")
            }
            LossReason::Checksum { expected, computed } => {
                write!(f, "venue checksum {expected} but book gives {computed}")
            }
            LossReason::BadFrame => f.write_str("a frame for the symbol could not be decoded"),
            LossReason::Rejected => f.write_str("the book refused an update"),
            LossReason::Crossed { bid, ask } => write!(f, "bid {bid} >= ask {ask}"),
            LossReason::IdsBackwards { last, received } => {
                write!(f, "update id {received} after {last}")
            }
        }
    }
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
    /// The symbol's book was dropped to be rebuilt, and why; always comes before the
    /// `NeedSnapshot`/`NeedResubscribe` it causes (and after `GapDetected`/`ChecksumMismatch`).
    SyncLost {
        symbol: SymbolId,
        reason: LossReason,
    },
    /// The book is in sync again after a gap, mismatch or bad frame.
    Resynced {
        symbol: SymbolId,
        seq: Option<u64>,
    },
    Trade(Trade),
    Candle(Candle),
    Quote(Quote),
    /// The venue asked the client to answer on this connection (an application-level ping:
    /// HTX `{"ping":T}`, AscendEX `{"m":"ping"}`, a Deribit `test_request`): send `text` back
    /// on the connection whose frame caused it. Belongs to no symbol.
    Reply {
        text: String,
    },
}

impl Event {
    /// The symbol the event is about; `None` for a connection's `Reply`.
    pub fn symbol(&self) -> Option<SymbolId> {
        Some(match self {
            Event::BookUpdated { symbol, .. }
            | Event::NeedSnapshot { symbol }
            | Event::NeedResubscribe { symbol }
            | Event::GapDetected { symbol, .. }
            | Event::ChecksumMismatch { symbol, .. }
            | Event::SyncLost { symbol, .. }
            | Event::Resynced { symbol, .. } => *symbol,
            Event::Trade(t) => t.symbol,
            Event::Candle(c) => c.symbol,
            Event::Quote(q) => q.symbol,
            Event::Reply { .. } => return None,
        })
    }
}
