//! `Routes`: where `Session.receive_routed` sends each event it makes, so that a feed's hot
//! path runs no Python of its own between the websocket frame and the user's callback: no
//! tuple of events, no loop, no lookup per event in a Python dict.
//!
//! The table maps an event class to the callable that takes it (`None`: nobody asked for it).
//! A class not in the table (the sync events, and any a later session adds) goes to the
//! fallback, which is how a new event type needs no entry here.

use std::sync::Arc;

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};
use pyo3::PyVisit;

pub struct Routes {
    by_class: Vec<(Py<PyType>, Option<Py<PyAny>>)>,
    fallback: Option<Py<PyAny>>,
    /// `on_error(handler, event, exception)`: a handler raised an `Exception`.
    on_error: Py<PyAny>,
    /// `on_rejected(frame_error)`: the frame failed; the error carries the events it made.
    pub on_rejected: Py<PyAny>,
}

impl Routes {
    pub fn new(
        table: &Bound<'_, PyDict>,
        fallback: Option<Bound<'_, PyAny>>,
        on_error: Bound<'_, PyAny>,
        on_rejected: Bound<'_, PyAny>,
    ) -> PyResult<Arc<Self>> {
        let mut by_class = Vec::with_capacity(table.len());
        for (class, handler) in table.iter() {
            let class = class.cast_into::<PyType>()?.unbind();
            let handler = (!handler.is_none()).then(|| handler.unbind());
            by_class.push((class, handler));
        }
        Ok(Arc::new(Routes {
            by_class,
            fallback: fallback.filter(|f| !f.is_none()).map(Bound::unbind),
            on_error: on_error.unbind(),
            on_rejected: on_rejected.unbind(),
        }))
    }

    fn handler_of<'a>(&'a self, event: &Bound<'_, PyAny>) -> Option<&'a Py<PyAny>> {
        let class = event.get_type();
        // A handful of classes: comparing pointers beats hashing.
        match self.by_class.iter().find(|(c, _)| c.is(&class)) {
            Some((_, handler)) => handler.as_ref(),
            None => self.fallback.as_ref(),
        }
    }

    /// Hands each event to its handler, in order. A handler's `Exception` goes to `on_error`
    /// and the next events are still delivered; anything else (`KeyboardInterrupt`, a
    /// cancellation) and a failing `on_error` propagate.
    pub fn deliver(&self, events: Vec<Bound<'_, PyAny>>) -> PyResult<()> {
        for event in events {
            let Some(handler) = self.handler_of(&event) else {
                continue;
            };
            let py = event.py();
            if let Err(err) = handler.call1(py, (&event,)) {
                if !err.is_instance_of::<PyException>(py) {
                    return Err(err);
                }
                self.on_error
                    .call1(py, (handler, &event, err.into_value(py)))?;
            }
        }
        Ok(())
    }

    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        for (class, handler) in &self.by_class {
            visit.call(class)?;
            visit.call(handler)?;
        }
        visit.call(&self.fallback)?;
        visit.call(&self.on_error)?;
        visit.call(&self.on_rejected)
    }
}
