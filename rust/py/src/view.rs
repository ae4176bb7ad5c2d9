//! `BookView`: reads a symbol's book in the Rust session lazily, only what is asked for.
//!
//! A view is tied to the book as one update left it. Once the book moves on, reading the view
//! raises `StaleBookError` instead of quietly showing a later book under an earlier `seq`.

use lobfeed_core::{Level, SymbolSync, SyncState};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use crate::errors::raise;
use crate::session::Session;

#[pyclass(frozen, module = "lobfeed._native")]
pub struct BookView {
    session: Py<Session>,
    id: u32,
    #[pyo3(get)]
    symbol: Py<PyString>,
    version: u64,
    #[pyo3(get)]
    seq: Option<u64>,
}

impl BookView {
    pub fn new(
        session: Py<Session>,
        id: u32,
        symbol: Py<PyString>,
        version: u64,
        seq: Option<u64>,
    ) -> Self {
        BookView {
            session,
            id,
            symbol,
            version,
            seq,
        }
    }

    fn with_sync<T>(&self, py: Python<'_>, f: impl FnOnce(&SymbolSync) -> T) -> PyResult<T> {
        let session = self.session.bind(py).try_borrow().map_err(|_| {
            raise(
                py,
                "StaleBookError",
                "the session is busy with a frame".to_owned(),
            )
        })?;
        if session.version(self.id) != self.version {
            return Err(raise(
                py,
                "StaleBookError",
                format!(
                    "{}: the book has changed since this view (seq {:?}) was made",
                    self.symbol.bind(py),
                    self.seq
                ),
            ));
        }
        let sync = session
            .sync(self.id)
            .ok_or_else(|| raise(py, "StaleBookError", "unknown symbol".to_owned()))?;
        Ok(f(sync))
    }
}

fn exact<'py>(py: Python<'py>, level: Level) -> PyResult<Bound<'py, PyTuple>> {
    let mut buf = [0u8; 24];
    let price = PyString::new(py, level.price.format_into(&mut buf));
    let mut buf = [0u8; 24];
    let qty = PyString::new(py, level.qty.format_into(&mut buf));
    PyTuple::new(py, [price, qty])
}

fn float_pair(level: Level) -> (f64, f64) {
    (level.price.to_f64(), level.qty.to_f64())
}

fn exact_list<'py>(
    py: Python<'py>,
    levels: impl Iterator<Item = Level>,
) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for level in levels {
        list.append(exact(py, level)?)?;
    }
    Ok(list)
}

#[pymethods]
impl BookView {
    /// Best bid as `(price, size)` floats, or None.
    fn best_bid(&self, py: Python<'_>) -> PyResult<Option<(f64, f64)>> {
        self.with_sync(py, |s| s.book.best_bid().map(float_pair))
    }

    /// Best ask as `(price, size)` floats, or None.
    fn best_ask(&self, py: Python<'_>) -> PyResult<Option<(f64, f64)>> {
        self.with_sync(py, |s| s.book.best_ask().map(float_pair))
    }

    /// Best bid as `(price, size)` strings with the venue's digits, or None.
    fn best_bid_exact<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        self.with_sync(py, |s| s.book.best_bid())?
            .map(|l| exact(py, l))
            .transpose()
    }

    /// Best ask as `(price, size)` strings with the venue's digits, or None.
    fn best_ask_exact<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        self.with_sync(py, |s| s.book.best_ask())?
            .map(|l| exact(py, l))
            .transpose()
    }

    /// Top `n` bids, best first, as `(price, size)` strings.
    #[pyo3(signature = (n=10))]
    fn bids<'py>(&self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyList>> {
        let levels: Vec<Level> = self.with_sync(py, |s| s.book.bids().take(n).collect())?;
        exact_list(py, levels.into_iter())
    }

    /// Top `n` asks, best first, as `(price, size)` strings.
    #[pyo3(signature = (n=10))]
    fn asks<'py>(&self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyList>> {
        let levels: Vec<Level> = self.with_sync(py, |s| s.book.asks().take(n).collect())?;
        exact_list(py, levels.into_iter())
    }

    /// Top `n` bids as `(price, size)` floats.
    #[pyo3(signature = (n=10))]
    fn bids_float(&self, py: Python<'_>, n: usize) -> PyResult<Vec<(f64, f64)>> {
        self.with_sync(py, |s| s.book.bids().take(n).map(float_pair).collect())
    }

    /// Top `n` asks as `(price, size)` floats.
    #[pyo3(signature = (n=10))]
    fn asks_float(&self, py: Python<'_>, n: usize) -> PyResult<Vec<(f64, f64)>> {
        self.with_sync(py, |s| s.book.asks().take(n).map(float_pair).collect())
    }

    /// Best ask minus best bid, or None when a side is empty.
    fn spread(&self, py: Python<'_>) -> PyResult<Option<f64>> {
        self.with_sync(py, |s| match (s.book.best_bid(), s.book.best_ask()) {
            (Some(b), Some(a)) => Some(a.price.to_f64() - b.price.to_f64()),
            _ => None,
        })
    }

    /// Midpoint of best bid and best ask, or None when a side is empty.
    fn mid(&self, py: Python<'_>) -> PyResult<Option<f64>> {
        self.with_sync(py, |s| match (s.book.best_bid(), s.book.best_ask()) {
            (Some(b), Some(a)) => Some((a.price.to_f64() + b.price.to_f64()) / 2.0),
            _ => None,
        })
    }

    /// Number of levels on each side, `(bids, asks)`.
    fn depth(&self, py: Python<'_>) -> PyResult<(usize, usize)> {
        self.with_sync(py, |s| {
            (
                s.book.len(lobfeed_core::Side::Bid),
                s.book.len(lobfeed_core::Side::Ask),
            )
        })
    }

    /// Whether best bid >= best ask (never true of a synced book).
    #[getter]
    fn crossed(&self, py: Python<'_>) -> PyResult<bool> {
        self.with_sync(py, |s| s.book.is_crossed())
    }

    /// The symbol's status as the I/O layer set it (`Session.set_status`), else `"live"` when
    /// its book is in sync and `"syncing"` while a snapshot is awaited. Current, not as of the
    /// view's update: a view is how a printer asks "what is this book doing now".
    #[getter]
    fn state(&self, py: Python<'_>) -> PyResult<Py<PyString>> {
        let session = self.session.bind(py).try_borrow().map_err(|_| {
            raise(
                py,
                "StaleBookError",
                "the session is busy with a frame".to_owned(),
            )
        })?;
        if let Some(status) = session.status(self.id) {
            return Ok(status.clone_ref(py));
        }
        let word = match session.sync(self.id).map(SymbolSync::state) {
            Some(SyncState::Live) => pyo3::intern!(py, "live"),
            _ => pyo3::intern!(py, "syncing"),
        };
        Ok(word.clone().unbind())
    }

    /// Whether the view still shows the current book.
    #[getter]
    fn is_current(&self, py: Python<'_>) -> bool {
        self.session
            .bind(py)
            .try_borrow()
            .map(|s| s.version(self.id) == self.version)
            .unwrap_or(false)
    }

    /// Plain Python copy of the top `n` levels, safe to keep after the book moves on.
    #[pyo3(signature = (n=10))]
    fn snapshot<'py>(&self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        dict.set_item("symbol", self.symbol.clone_ref(py))?;
        dict.set_item("seq", self.seq)?;
        dict.set_item("bids", self.bids(py, n)?)?;
        dict.set_item("asks", self.asks(py, n)?)?;
        Ok(dict)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "BookView(symbol={:?}, seq={:?})",
            self.symbol.bind(py).to_string(),
            self.seq
        )
    }
}
