//! RocketMQ's `ServiceThread`: one named thread that loops until stopped,
//! sleeping in [`ServiceContext::wait_for_running`] between rounds unless woken.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::common::thread;

/// The state a service's loop sees: stop flag and wake-ups.
#[derive(Default)]
pub struct ServiceContext {
    stopped: AtomicBool,
    notified: Mutex<bool>,
    cv: Condvar,
}

impl ServiceContext {
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Sleeps up to `interval` unless a [`ServiceThread::wakeup`] came since the
    /// last wait (then returns at once). Returns true when woken, false when
    /// the interval passed. Like RocketMQ, a wake-up is never lost: one that
    /// arrives while the loop is working ends the next wait immediately.
    pub fn wait_for_running(&self, interval: Duration) -> bool {
        let mut n = self.notified.lock();
        if !*n && !self.is_stopped() {
            let _ = self.cv.wait_for(&mut n, interval);
        }
        std::mem::replace(&mut *n, false)
    }

    fn wakeup(&self) {
        let mut n = self.notified.lock();
        if !*n {
            *n = true;
            self.cv.notify_one();
        }
    }
}

/// A running service thread. Dropping it stops and joins it.
pub struct ServiceThread {
    name: String,
    ctx: Arc<ServiceContext>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl ServiceThread {
    /// Starts `body` on a thread named `name`. `body` runs once and should loop
    /// `while !ctx.is_stopped()`.
    pub fn start<F>(name: impl Into<String>, role: &'static str, body: F) -> io::Result<Self>
    where
        F: FnOnce(&ServiceContext) + Send + 'static,
    {
        let name = name.into();
        let ctx = Arc::new(ServiceContext::default());
        let c = ctx.clone();
        let handle = thread::spawn(name.clone(), role, move || body(&c))?;
        Ok(ServiceThread { name, ctx, handle: Mutex::new(Some(handle)) })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn wakeup(&self) {
        self.ctx.wakeup();
    }

    pub fn is_stopped(&self) -> bool {
        self.ctx.is_stopped()
    }

    /// Asks the loop to stop and wakes it, without waiting.
    pub fn stop(&self) {
        self.ctx.stopped.store(true, Ordering::Release);
        self.ctx.wakeup();
    }

    /// Stops the loop and waits for the thread to end. Idempotent.
    pub fn shutdown(&self) {
        self.stop();
        let handle = self.handle.lock().take();
        if let Some(h) = handle {
            if h.thread().id() == std::thread::current().id() {
                return;
            }
            if h.join().is_err() {
                log::error!("service thread {} ended by panic", self.name);
            }
        }
    }
}

impl Drop for ServiceThread {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::wait;
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    #[test]
    fn wakeup_ends_a_long_wait_at_once_and_shutdown_joins() {
        let rounds = Arc::new(AtomicUsize::new(0));
        let r = rounds.clone();
        let svc = ServiceThread::start("UnitTestService", "test", move |ctx| {
            while !ctx.is_stopped() {
                ctx.wait_for_running(Duration::from_secs(60));
                r.fetch_add(1, Ordering::SeqCst);
            }
        })
        .expect("start");
        let t0 = Instant::now();
        svc.wakeup();
        assert!(wait::until(Duration::from_secs(5), || rounds.load(Ordering::SeqCst) >= 1));
        assert!(t0.elapsed() < Duration::from_secs(5));
        svc.shutdown();
        assert!(svc.is_stopped());
        assert!(!thread::registered_names().contains(&"UnitTestService".to_string()));
    }

    #[test]
    fn wakeup_during_work_is_not_lost() {
        let ctx = ServiceContext::default();
        ctx.wakeup();
        let t0 = Instant::now();
        assert!(ctx.wait_for_running(Duration::from_secs(30)));
        assert!(t0.elapsed() < Duration::from_secs(1));
        assert!(!ctx.wait_for_running(Duration::from_millis(5)));
    }
}
