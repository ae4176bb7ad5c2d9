//! Rust errors raised as the Python exception tree of `lobfeed.exceptions`.

use lobfeed_core::{FrameError, ReceiveError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

fn exception_class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("lobfeed.exceptions")?.getattr(name)
}

/// Builds the Python exception for a frame error, carrying the symbol and the events the frame
/// caused before it failed (a resync request, typically).
pub fn receive_error(py: Python<'_>, err: &ReceiveError, events: Bound<'_, PyTuple>) -> PyErr {
    let class = match err.error {
        FrameError::Oversized { .. } => "OversizedFrameError",
        FrameError::Book(_) => "BookRejectedError",
        FrameError::VenueError(_) => "VenueErrorMessage",
        FrameError::Json(_)
        | FrameError::MissingField(_)
        | FrameError::BadNumber { .. }
        | FrameError::Invalid(_) => "DecodeError",
    };
    let message = match &err.symbol {
        Some(symbol) => format!("{symbol}: {}", err.error),
        None => err.error.to_string(),
    };
    let build = || -> PyResult<PyErr> {
        let exc = exception_class(py, class)?.call1((message.clone(),))?;
        exc.setattr("symbol", err.symbol.as_deref())?;
        exc.setattr("events", events)?;
        Ok(PyErr::from_value(exc))
    };
    build().unwrap_or_else(|e| e)
}

pub fn raise(py: Python<'_>, class: &str, message: String) -> PyErr {
    match exception_class(py, class).and_then(|c| c.call1((message,))) {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

/// A user's argument that is out of range or of the wrong kind: `lobfeed.exceptions.ConfigError`.
pub fn config_error(py: Python<'_>, message: String) -> PyErr {
    raise(py, "ConfigError", message)
}
