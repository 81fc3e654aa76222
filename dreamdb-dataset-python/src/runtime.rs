//! The one tokio runtime of the process, created lazily and re-created
//! after `fork`.
//!
//! A forked child inherits the parent's memory but none of its threads, so
//! the parent's runtime is a husk there: blocking on it would hang forever
//! (the "loader hangs with forked workers" bug of other dataset libraries).
//! The runtime is therefore stored with the pid that created it; a caller
//! in another process gets a fresh runtime, and the husk is leaked on
//! purpose (dropping it would try to join threads that do not exist in the
//! child). Under `spawn` the module is imported anew and nothing is
//! inherited.
//!
//! Every blocking entry point releases the GIL ([`block_on`]) so Python
//! threads, DataLoader threads and signal handling keep running during I/O.

use std::future::Future;
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use tokio::runtime::{Builder, Runtime};

/// The runtime and the pid of the process that built it.
static RUNTIME: Mutex<Option<(u32, Arc<Runtime>)>> = Mutex::new(None);

/// Worker threads of the runtime: I/O bound, two are enough and keep a
/// DataLoader with many worker processes from oversubscribing the cores.
const WORKER_THREADS: usize = 2;

/// The runtime of this process (built on first use, rebuilt after a fork).
///
/// Called with the GIL held: a fork happens while its caller holds the
/// GIL, so no other thread of ours can be inside this lock at that moment
/// and the child never inherits it locked.
pub(crate) fn runtime(_py: Python<'_>) -> PyResult<Arc<Runtime>> {
    let pid = std::process::id();
    let mut slot = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((owner, rt)) = slot.as_ref() {
        if *owner == pid {
            return Ok(rt.clone());
        }
    }
    if let Some(husk) = slot.take() {
        // Inherited across fork: its threads are gone; never drop it.
        std::mem::forget(husk);
    }
    let rt = Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .thread_name("dreamdb-io")
        .enable_all()
        .build()
        .map_err(|e| {
            pyo3::exceptions::PyRuntimeError::new_err(format!("cannot start the I/O runtime: {e}"))
        })?;
    let rt = Arc::new(rt);
    *slot = Some((pid, rt.clone()));
    Ok(rt)
}

/// Whether the runtime of this process was inherited from a parent
/// (test hook: after a fork the next call builds a new one).
pub(crate) fn runtime_pid() -> Option<u32> {
    RUNTIME
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map(|(pid, _)| *pid)
}

/// Runs `fut` to completion on the process runtime with the GIL released.
pub(crate) fn block_on<F>(py: Python<'_>, fut: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let rt = runtime(py)?;
    Ok(py.detach(move || rt.block_on(fut)))
}
