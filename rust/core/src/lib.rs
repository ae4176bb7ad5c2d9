//! lobfeed-core: exact L2 books and the sans-I/O sync machines of each venue.
//!
//! Feed it bytes (`Session::receive`, `Session::receive_snapshot`) and read events and books
//! back. It never opens a socket, never sleeps and never reads a clock.

pub mod book;
pub mod checksum;
pub mod decimal;
pub mod error;
pub mod event;
pub mod sync;
pub mod venue;

pub use book::{Book, BookError, Level, Side};
pub use decimal::{Decimal, DecimalError};
pub use error::{FrameError, ReceiveError};
pub use event::{Candle, Event, LossReason, Quote, SymbolId, Trade, TradeSide};
pub use sync::{ResyncBy, SymbolSync, Symbols, SyncCounters, SyncState};
pub use venue::{
    new_session, resync_name, Session, SessionError, SessionOptions, SessionStats, UnknownVenue,
    VENUES,
};
