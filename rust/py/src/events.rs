//! Event objects handed to Python: small frozen classes whose exact numbers become strings only
//! when read.

use lobfeed_core::{Decimal, TradeSide};
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::session::Session;
use crate::view::BookView;

#[pyclass(frozen, module = "lobfeed._native")]
pub struct BookUpdate {
    #[pyo3(get)]
    pub symbol: Py<PyString>,
    #[pyo3(get)]
    pub seq: Option<u64>,
    #[pyo3(get)]
    pub exchange_ts_ns: u64,
    #[pyo3(get)]
    pub ts_ns: u64,
    pub session: Py<Session>,
    pub symbol_id: u32,
    pub version: u64,
}

#[pymethods]
impl BookUpdate {
    /// A view of the book as this update left it.
    #[getter]
    fn book(&self, py: Python<'_>) -> BookView {
        BookView::new(
            self.session.clone_ref(py),
            self.symbol_id,
            self.symbol.clone_ref(py),
            self.version,
            self.seq,
        )
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "BookUpdate(symbol={:?}, seq={:?}, ts_ns={})",
            self.symbol.bind(py).to_string(),
            self.seq,
            self.ts_ns
        )
    }
}

macro_rules! symbol_event {
    ($name:ident { $($field:ident : $ty:ty),* }) => {
        #[pyclass(frozen, module = "lobfeed._native")]
        pub struct $name {
            #[pyo3(get)]
            pub symbol: Py<PyString>,
            $(#[pyo3(get)] pub $field: $ty,)*
        }

        #[pymethods]
        impl $name {
            fn __repr__(&self, py: Python<'_>) -> String {
                let mut text = format!(
                    "{}(symbol={:?}",
                    stringify!($name),
                    self.symbol.bind(py).to_string()
                );
                $(text.push_str(&format!(", {}={:?}", stringify!($field), self.$field));)*
                text.push(')');
                text
            }
        }
    };
}

symbol_event!(NeedSnapshot {});
symbol_event!(NeedResubscribe {});
symbol_event!(GapDetected {
    expected: u64,
    received: u64
});
symbol_event!(ChecksumMismatch {
    expected: u32,
    computed: u32
});
symbol_event!(Resynced { seq: Option<u64> });
// `reason`: "gap", "checksum", "bad-frame", "rejected", "crossed" or "ids-backwards";
// `detail`: a short sentence such as "bid 2683.10 >= ask 2682.51".
symbol_event!(SyncLost {
    reason: &'static str,
    detail: String
});

fn side_name(side: Option<TradeSide>) -> Option<&'static str> {
    side.map(|s| match s {
        TradeSide::Buy => "buy",
        TradeSide::Sell => "sell",
    })
}

/// A trade, normalized across venues; prices and sizes keep the venue's digits.
#[pyclass(frozen, module = "lobfeed._native")]
pub struct Trade {
    #[pyo3(get)]
    pub venue: &'static str,
    #[pyo3(get)]
    pub symbol: Py<PyString>,
    pub price: Decimal,
    pub size: Decimal,
    pub side: Option<TradeSide>,
    #[pyo3(get)]
    pub trade_id: String,
    #[pyo3(get)]
    pub exchange_ts_ns: u64,
    #[pyo3(get)]
    pub ts_ns: u64,
}

#[pymethods]
impl Trade {
    #[getter]
    fn price(&self) -> String {
        self.price.to_string()
    }
    #[getter]
    fn size(&self) -> String {
        self.size.to_string()
    }
    #[getter]
    fn price_float(&self) -> f64 {
        self.price.to_f64()
    }
    #[getter]
    fn size_float(&self) -> f64 {
        self.size.to_f64()
    }
    /// The taker's side, `"buy"` or `"sell"`, where the venue tells it.
    #[getter]
    fn side(&self) -> Option<&'static str> {
        side_name(self.side)
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Trade(venue={:?}, symbol={:?}, price={:?}, size={:?}, side={:?}, trade_id={:?})",
            self.venue,
            self.symbol.bind(py).to_string(),
            self.price.to_string(),
            self.size.to_string(),
            side_name(self.side),
            self.trade_id
        )
    }
}

/// An OHLCV candle; `closed` tells whether its interval has ended.
#[pyclass(frozen, module = "lobfeed._native")]
pub struct Candle {
    #[pyo3(get)]
    pub venue: &'static str,
    #[pyo3(get)]
    pub symbol: Py<PyString>,
    #[pyo3(get)]
    pub interval: String,
    #[pyo3(get)]
    pub open_ts_ns: u64,
    #[pyo3(get)]
    pub close_ts_ns: u64,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    pub volume: Decimal,
    #[pyo3(get)]
    pub trades: Option<u64>,
    #[pyo3(get)]
    pub closed: bool,
    #[pyo3(get)]
    pub exchange_ts_ns: u64,
    #[pyo3(get)]
    pub ts_ns: u64,
}

#[pymethods]
impl Candle {
    #[getter]
    fn open(&self) -> String {
        self.open.to_string()
    }
    #[getter]
    fn high(&self) -> String {
        self.high.to_string()
    }
    #[getter]
    fn low(&self) -> String {
        self.low.to_string()
    }
    #[getter]
    fn close(&self) -> String {
        self.close.to_string()
    }
    #[getter]
    fn volume(&self) -> String {
        self.volume.to_string()
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Candle(venue={:?}, symbol={:?}, interval={:?}, open_ts_ns={}, o={} h={} l={} c={} v={}, closed={})",
            self.venue,
            self.symbol.bind(py).to_string(),
            self.interval,
            self.open_ts_ns,
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
            self.closed
        )
    }
}

/// The venue's own best bid/ask at an update id (Binance `bookTicker`).
#[pyclass(frozen, module = "lobfeed._native")]
pub struct Quote {
    #[pyo3(get)]
    pub symbol: Py<PyString>,
    #[pyo3(get)]
    pub seq: Option<u64>,
    pub bid_price: Decimal,
    pub bid_size: Decimal,
    pub ask_price: Decimal,
    pub ask_size: Decimal,
    #[pyo3(get)]
    pub exchange_ts_ns: u64,
    #[pyo3(get)]
    pub ts_ns: u64,
}

#[pymethods]
impl Quote {
    #[getter]
    fn bid_price(&self) -> String {
        self.bid_price.to_string()
    }
    #[getter]
    fn bid_size(&self) -> String {
        self.bid_size.to_string()
    }
    #[getter]
    fn ask_price(&self) -> String {
        self.ask_price.to_string()
    }
    #[getter]
    fn ask_size(&self) -> String {
        self.ask_size.to_string()
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Quote(symbol={:?}, seq={:?}, bid={}x{}, ask={}x{})",
            self.symbol.bind(py).to_string(),
            self.seq,
            self.bid_price,
            self.bid_size,
            self.ask_price,
            self.ask_size
        )
    }
}
