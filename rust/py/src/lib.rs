//! Python bindings of lobfeed-core: thin wrappers, one call per received frame.

mod args;
mod errors;
mod events;
mod routes;
mod session;
mod view;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<session::Session>()?;
    m.add_class::<view::BookView>()?;
    m.add_class::<events::BookUpdate>()?;
    m.add_class::<events::NeedSnapshot>()?;
    m.add_class::<events::NeedResubscribe>()?;
    m.add_class::<events::GapDetected>()?;
    m.add_class::<events::ChecksumMismatch>()?;
    m.add_class::<events::Resynced>()?;
    m.add_class::<events::SyncLost>()?;
    m.add_class::<events::Trade>()?;
    m.add_class::<events::Candle>()?;
    m.add_class::<events::Quote>()?;
    m.add_function(wrap_pyfunction!(session::supported_venues, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
