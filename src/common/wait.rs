//! Waiting with a deadline: the one way this crate waits for a condition.

use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// A point in time a wait must not pass.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Instant);

impl Deadline {
    pub fn after(timeout: Duration) -> Self {
        Deadline(Instant::now() + timeout)
    }
    pub fn instant(&self) -> Instant {
        self.0
    }
    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }
    pub fn passed(&self) -> bool {
        Instant::now() >= self.0
    }
}

/// A flag threads can wait on until it is set or a deadline passes.
#[derive(Default)]
pub struct Signal {
    set: Mutex<bool>,
    cv: Condvar,
}

impl Signal {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn set(&self) {
        *self.set.lock() = true;
        self.cv.notify_all();
    }
    pub fn is_set(&self) -> bool {
        *self.set.lock()
    }
    /// Waits until set or `deadline`; returns whether it was set.
    pub fn wait(&self, deadline: Deadline) -> bool {
        let mut g = self.set.lock();
        while !*g {
            if self.cv.wait_until(&mut g, deadline.instant()).timed_out() {
                return *g;
            }
        }
        true
    }
}

/// A value handed from one thread to one waiting thread. The waiter parks
/// at once instead of spinning first (crossbeam's channels spin and yield,
/// which starves the threads that would produce the value on a small machine).
pub struct OneShot<T> {
    value: Mutex<Option<T>>,
    cv: Condvar,
}

impl<T> Default for OneShot<T> {
    fn default() -> Self {
        OneShot { value: Mutex::new(None), cv: Condvar::new() }
    }
}

impl<T> OneShot<T> {
    pub fn new() -> Self {
        Self::default()
    }
    /// Stores the value (a later one replaces an earlier one not yet taken).
    pub fn set(&self, v: T) {
        *self.value.lock() = Some(v);
        self.cv.notify_one();
    }
    /// Takes the value, waiting until `deadline`.
    pub fn wait(&self, deadline: Deadline) -> Option<T> {
        let mut g = self.value.lock();
        loop {
            if let Some(v) = g.take() {
                return Some(v);
            }
            if self.cv.wait_until(&mut g, deadline.instant()).timed_out() {
                return g.take();
            }
        }
    }
}

/// Calls `cond` until it holds or `timeout` passes; returns whether it held.
/// For conditions no thread signals (file contents, another process's state,
/// counters in tests): polls at a short, growing interval.
pub fn until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Deadline::after(timeout);
    let mut pause = Duration::from_micros(100);
    loop {
        if cond() {
            return true;
        }
        if deadline.passed() {
            return false;
        }
        std::thread::sleep(pause.min(deadline.remaining()));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// A counting semaphore (RocketMQ bounds async and oneway requests with one).
pub struct Semaphore {
    permits: Mutex<usize>,
    cv: Condvar,
}

impl Semaphore {
    pub fn new(permits: usize) -> Self {
        Semaphore { permits: Mutex::new(permits), cv: Condvar::new() }
    }
    /// Takes a permit, waiting up to `timeout`; false when none came.
    pub fn try_acquire(&self, timeout: Duration) -> bool {
        let deadline = Deadline::after(timeout);
        let mut p = self.permits.lock();
        while *p == 0 {
            if self.cv.wait_until(&mut p, deadline.instant()).timed_out() && *p == 0 {
                return false;
            }
        }
        *p -= 1;
        true
    }
    pub fn release(&self) {
        *self.permits.lock() += 1;
        self.cv.notify_one();
    }
    pub fn available(&self) -> usize {
        *self.permits.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn signal_wakes_waiter_and_times_out_when_unset() {
        let s = Arc::new(Signal::new());
        assert!(!s.wait(Deadline::after(Duration::from_millis(10))));
        let s2 = s.clone();
        let h = std::thread::spawn(move || s2.wait(Deadline::after(Duration::from_secs(10))));
        s.set();
        assert!(h.join().expect("join"));
    }

    #[test]
    fn semaphore_bounds_permits() {
        let s = Semaphore::new(2);
        assert!(s.try_acquire(Duration::ZERO));
        assert!(s.try_acquire(Duration::ZERO));
        assert!(!s.try_acquire(Duration::from_millis(5)));
        s.release();
        assert!(s.try_acquire(Duration::ZERO));
        assert_eq!(s.available(), 0);
    }
}
