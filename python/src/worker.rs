//! The thread a backend lives on.
//!
//! A backend (`Box<dyn Backend>` from the registry) is not `Send`: the trait does not ask it to
//! be. So each Python `Backend` object owns one thread that builds its backend and runs every
//! call on it; the Python thread hands it a job and waits with the GIL released, so other Python
//! threads run meanwhile. Jobs of one backend run one after another, in order.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::Duration;

use ppml_nn::backend::Backend;
use pyo3::prelude::*;

use crate::error::{Failure, Kind};

/// A job: runs on the backend's thread with the backend.
type Job = Box<dyn FnOnce(&mut dyn Backend) + Send>;

/// What a waiting caller hears from the backend's thread.
enum Message<T> {
    /// `(done, total)` of a long job.
    Progress(usize, usize),
    /// The job's result.
    Done(T),
}

/// How often a waiting caller looks for Ctrl-C.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// The sending end of a backend's thread; the thread ends when this is dropped.
pub struct Worker {
    jobs: Sender<Job>,
}

impl Worker {
    /// Starts a thread, builds a backend on it with `build` (which runs there: a backend never
    /// leaves its thread) and returns once it is built, or why it could not be.
    pub fn start<B>(name: &str, build: B) -> Result<Self, Failure>
    where
        B: FnOnce() -> Result<Box<dyn Backend>, Failure> + Send + 'static,
    {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (built_tx, built_rx) = mpsc::channel::<Result<(), Failure>>();
        thread::Builder::new()
            .name(format!("ppml-{name}"))
            .spawn(move || {
                let mut backend = match build() {
                    Ok(b) => b,
                    Err(f) => {
                        let _ = built_tx.send(Err(f));
                        return;
                    }
                };
                if built_tx.send(Ok(())).is_err() {
                    return;
                }
                serve(backend.as_mut(), &queue);
            })
            .map_err(|e| Failure::new(Kind::Backend, format!("starting a thread: {e}")))?;
        match built_rx.recv() {
            Ok(Ok(())) => Ok(Self { jobs }),
            Ok(Err(f)) => Err(f),
            Err(_) => Err(Failure::new(
                Kind::Backend,
                format!("the {name} backend stopped while it was being built"),
            )),
        }
    }

    /// Runs `job` on the backend's thread and waits for its result with the GIL released.
    /// `progress(done, total)` is called with the GIL (its first exception is raised once the
    /// job ends, and it is not called again). Ctrl-C stops the wait (the job still finishes on
    /// the backend's thread before the next one starts).
    pub fn run<T, F>(
        &self,
        py: Python<'_>,
        progress: Option<&Bound<'_, PyAny>>,
        job: F,
    ) -> PyResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Backend, &mut dyn FnMut(usize, usize)) -> T + Send + 'static,
    {
        let (tx, rx) = mpsc::channel::<Message<T>>();
        let wrapped: Job = Box::new(move |backend| {
            let progress_tx = tx.clone();
            let mut report = move |done, total| {
                let _ = progress_tx.send(Message::Progress(done, total));
            };
            let result = job(backend, &mut report);
            let _ = tx.send(Message::Done(result));
        });
        self.jobs.send(wrapped).map_err(|_| stopped())?;
        let callback: Option<Py<PyAny>> = progress.map(|p| p.clone().unbind());
        py.detach(move || wait(&rx, callback.as_ref()))
    }
}

/// Runs jobs until the queue closes. A job that panics is reported as an error to its caller and
/// leaves the backend unusable (its state is unknown): later jobs are refused.
fn serve(backend: &mut dyn Backend, queue: &Receiver<Job>) {
    while let Ok(job) = queue.recv() {
        // The job's reply channel is dropped by the unwinding, which its caller reports.
        if catch_unwind(AssertUnwindSafe(|| job(backend))).is_err() {
            break;
        }
    }
}

fn stopped() -> Failure {
    Failure::new(
        Kind::Backend,
        "the backend stopped after an internal error (a panic); create a new backend",
    )
}

/// Waits for the job's result, relaying progress and polling for Ctrl-C.
fn wait<T>(rx: &Receiver<Message<T>>, callback: Option<&Py<PyAny>>) -> PyResult<T> {
    let mut callback_error: Option<PyErr> = None;
    loop {
        match rx.recv_timeout(SIGNAL_POLL) {
            Ok(Message::Done(result)) => {
                return match callback_error {
                    Some(e) => Err(e),
                    None => Ok(result),
                }
            }
            Ok(Message::Progress(done, total)) => {
                if let (Some(cb), None) = (callback, &callback_error) {
                    if let Err(e) = Python::attach(|py| cb.call1(py, (done, total))) {
                        callback_error = Some(e);
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => Python::attach(|py| py.check_signals())?,
            Err(RecvTimeoutError::Disconnected) => return Err(stopped().into()),
        }
    }
}
