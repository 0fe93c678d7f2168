//! Named, numbered, bounded worker pools (RocketMQ's `ThreadPoolExecutor` +
//! `ThreadFactoryImpl`: threads `<prefix>1..N`, a bounded queue whose
//! overflow is reported to the caller instead of growing).
//!
//! Built on [`BlockingQueue`] rather than the `threadpool` crate, which gives
//! every thread the same name and has an unbounded queue.

use std::fmt;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use parking_lot::Mutex;

use crate::common::queue::{BlockingQueue, PushError};
use crate::common::thread;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Why a job was not queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolError {
    /// The queue holds `capacity` jobs already.
    Full {
        pool: String,
        capacity: usize,
    },
    ShutDown {
        pool: String,
    },
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::Full { pool, capacity } => write!(f, "thread pool {pool} is busy: {capacity} tasks queued"),
            PoolError::ShutDown { pool } => write!(f, "thread pool {pool} is shut down"),
        }
    }
}

impl std::error::Error for PoolError {}

/// A fixed set of named threads taking jobs from one bounded queue.
pub struct ThreadPool {
    prefix: String,
    queue: Arc<BlockingQueue<Job>>,
    handles: Mutex<Vec<JoinHandle<()>>>,
    active: Arc<AtomicUsize>,
}

impl ThreadPool {
    /// Starts `threads` threads named `<prefix>1` .. `<prefix>N` (the prefix
    /// includes RocketMQ's trailing underscore, e.g. `SendMessageThread_`).
    pub fn new(prefix: &str, role: &'static str, threads: usize, queue_capacity: usize) -> io::Result<Self> {
        let queue = Arc::new(BlockingQueue::<Job>::new(queue_capacity));
        let active = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for i in 1..=threads.max(1) {
            let rx = queue.clone();
            let active = active.clone();
            let name = format!("{prefix}{i}");
            handles.push(thread::spawn(name.clone(), role, move || {
                loop {
                    thread::doing("waiting for tasks");
                    let Some(job) = rx.pop() else { break };
                    thread::doing("running a task");
                    active.fetch_add(1, Ordering::Relaxed);
                    if catch_unwind(AssertUnwindSafe(job)).is_err() {
                        log::error!("a task panicked on {name}; the thread goes on");
                    }
                    active.fetch_sub(1, Ordering::Relaxed);
                }
            })?);
        }
        Ok(ThreadPool { prefix: prefix.to_string(), queue, handles: Mutex::new(handles), active })
    }

    /// The pool's name as used in errors (prefix without the underscore).
    pub fn name(&self) -> &str {
        self.prefix.trim_end_matches('_')
    }

    /// Queues `job`, or says at once why it cannot.
    pub fn try_execute(&self, job: impl FnOnce() + Send + 'static) -> Result<(), PoolError> {
        match self.queue.try_push(Box::new(job)) {
            Ok(()) => Ok(()),
            Err(PushError::Full(_)) => {
                Err(PoolError::Full { pool: self.name().to_string(), capacity: self.queue.capacity() })
            }
            Err(PushError::Closed(_)) => Err(PoolError::ShutDown { pool: self.name().to_string() }),
        }
    }

    /// Jobs waiting in the queue.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Jobs running now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    pub fn threads(&self) -> usize {
        self.handles.lock().len()
    }

    /// Refuses new jobs and waits up to `timeout` for queued and running
    /// ones to finish; then joins the threads. False (threads left to end on
    /// their own) when the time ran out (RocketMQ: shutdown + awaitTermination).
    pub fn shutdown_within(&self, timeout: std::time::Duration) -> bool {
        self.queue.close();
        if crate::common::wait::until(timeout, || self.queue.is_empty() && self.active() == 0) {
            self.shutdown();
            true
        } else {
            log::warn!("{}: tasks still running after {timeout:?}; not waiting for them", self.name());
            false
        }
    }

    /// Refuses new jobs, lets the threads finish what is queued, joins them.
    pub fn shutdown(&self) {
        self.queue.close();
        let current = std::thread::current().id();
        for h in self.handles.lock().drain(..) {
            if h.thread().id() != current {
                let _ = h.join();
            }
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::wait;
    use std::time::Duration;

    #[test]
    fn threads_are_numbered_and_a_full_queue_is_reported() {
        let pool = ThreadPool::new("UnitPoolThread_", "test", 2, 1).expect("pool");
        let names = thread::registered_names();
        assert!(names.contains(&"UnitPoolThread_1".to_string()));
        assert!(names.contains(&"UnitPoolThread_2".to_string()));
        let gate = Arc::new(crate::common::wait::Signal::new());
        for running in 1..=2 {
            let g = gate.clone();
            pool.try_execute(move || {
                g.wait(wait::Deadline::after(Duration::from_secs(10)));
            })
            .expect("taken by an idle thread");
            assert!(wait::until(Duration::from_secs(5), || pool.active() == running));
        }
        pool.try_execute(|| {}).expect("one queued");
        let err = pool.try_execute(|| {}).expect_err("queue is full");
        assert_eq!(err, PoolError::Full { pool: "UnitPoolThread".into(), capacity: 1 });
        gate.set();
        pool.shutdown();
        assert!(matches!(pool.try_execute(|| {}), Err(PoolError::ShutDown { .. })));
    }

    #[test]
    fn a_panicking_job_does_not_kill_its_thread() {
        let pool = ThreadPool::new("UnitPanicPool_", "test", 1, 4).expect("pool");
        pool.try_execute(|| panic!("job failed")).expect("queued");
        let done = Arc::new(crate::common::wait::Signal::new());
        let d = done.clone();
        pool.try_execute(move || d.set()).expect("queued");
        assert!(done.wait(wait::Deadline::after(Duration::from_secs(5))));
    }
}
