//! What every venue session holds in the same way: its symbol table, its frame counters and
//! the options it was made with. A venue keeps one `SessionCore` and only its own state beside.

use crate::event::SymbolId;
use crate::sync::{ResyncBy, SymbolSync, Symbols};

use super::{SessionOptions, SessionStats};

pub struct SessionCore {
    pub symbols: Symbols,
    pub stats: SessionStats,
    pub options: SessionOptions,
}

impl SessionCore {
    pub fn new(options: SessionOptions) -> Self {
        SessionCore {
            symbols: options.symbols_table(),
            stats: SessionStats::default(),
            options,
        }
    }

    /// The id of `name`, making its sync state on first sight; `None` for a symbol that was
    /// not subscribed (the caller drops the frame, the table counts it).
    pub fn intern(
        &mut self,
        name: &str,
        resync_by: ResyncBy,
        truncate_to: Option<usize>,
    ) -> Option<SymbolId> {
        self.symbols
            .intern(name, || SymbolSync::new(resync_by, truncate_to))
    }

    /// The session's counters with the symbol table's count of dropped frames folded in.
    pub fn stats(&self) -> SessionStats {
        SessionStats {
            unsubscribed: self.symbols.unsubscribed(),
            ..self.stats
        }
    }
}
