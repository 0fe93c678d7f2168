//! A single-threaded named scheduled executor (RocketMQ's
//! `Executors.newSingleThreadScheduledExecutor(new ThreadFactoryImpl(name))`).
//!
//! A task that panics is logged and, if periodic, keeps its schedule (RocketMQ
//! wraps each of its periodic tasks in a catch-all for the same effect).
//! A fixed-rate task that falls behind runs once, not once per missed period.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::common::thread;

type TaskFn = Box<dyn FnMut() + Send + 'static>;

#[derive(Clone, Copy)]
enum Repeat {
    Once,
    FixedRate(Duration),
    FixedDelay(Duration),
}

struct Task {
    repeat: Repeat,
    cancelled: AtomicBool,
    f: Mutex<TaskFn>,
}

/// Cancels its task; dropping the handle does not.
#[derive(Clone)]
pub struct TaskHandle(Arc<Task>);

impl TaskHandle {
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::Release);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Acquire)
    }
}

struct Entry {
    at: Instant,
    seq: u64,
    task: Arc<Task>,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        self.at == o.at && self.seq == o.seq
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    // Reversed: BinaryHeap is a max-heap and we want the earliest first.
    fn cmp(&self, o: &Self) -> CmpOrdering {
        o.at.cmp(&self.at).then_with(|| o.seq.cmp(&self.seq))
    }
}

#[derive(Default)]
struct State {
    heap: BinaryHeap<Entry>,
    seq: u64,
    stopped: bool,
}

struct Shared {
    state: Mutex<State>,
    cv: Condvar,
}

impl Shared {
    fn push(&self, at: Instant, task: Arc<Task>) {
        let mut s = self.state.lock();
        if s.stopped {
            return;
        }
        s.seq += 1;
        let seq = s.seq;
        s.heap.push(Entry { at, seq, task });
        self.cv.notify_one();
    }
}

/// One named thread running delayed and periodic tasks in time order.
pub struct ScheduledExecutor {
    shared: Arc<Shared>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl ScheduledExecutor {
    pub fn new(name: impl Into<String>, role: &'static str) -> io::Result<Self> {
        let shared = Arc::new(Shared { state: Mutex::new(State::default()), cv: Condvar::new() });
        let s = shared.clone();
        let handle = thread::spawn(name, role, move || run(&s))?;
        Ok(ScheduledExecutor { shared, handle: Mutex::new(Some(handle)) })
    }

    fn add(&self, delay: Duration, repeat: Repeat, f: TaskFn) -> TaskHandle {
        let task = Arc::new(Task { repeat, cancelled: AtomicBool::new(false), f: Mutex::new(f) });
        self.shared.push(Instant::now() + delay, task.clone());
        TaskHandle(task)
    }

    /// Runs `f` once after `delay`.
    pub fn schedule(&self, delay: Duration, f: impl FnOnce() + Send + 'static) -> TaskHandle {
        let mut f = Some(f);
        self.add(
            delay,
            Repeat::Once,
            Box::new(move || {
                if let Some(f) = f.take() {
                    f()
                }
            }),
        )
    }

    /// Runs `f` after `initial`, then every `period` measured start to start.
    pub fn schedule_at_fixed_rate(
        &self,
        initial: Duration,
        period: Duration,
        f: impl FnMut() + Send + 'static,
    ) -> TaskHandle {
        self.add(initial, Repeat::FixedRate(period.max(Duration::from_millis(1))), Box::new(f))
    }

    /// Runs `f` after `initial`, then `delay` after each run ends.
    pub fn schedule_with_fixed_delay(
        &self,
        initial: Duration,
        delay: Duration,
        f: impl FnMut() + Send + 'static,
    ) -> TaskHandle {
        self.add(initial, Repeat::FixedDelay(delay), Box::new(f))
    }

    /// Tasks waiting to run (cancelled ones included until their time comes).
    pub fn pending(&self) -> usize {
        self.shared.state.lock().heap.len()
    }

    /// Drops every pending task and joins the thread (a running task finishes).
    pub fn shutdown(&self) {
        {
            let mut s = self.shared.state.lock();
            s.stopped = true;
            s.heap.clear();
        }
        self.shared.cv.notify_all();
        if let Some(h) = self.handle.lock().take()
            && h.thread().id() != std::thread::current().id()
        {
            let _ = h.join();
        }
    }
}

impl Drop for ScheduledExecutor {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run(shared: &Shared) {
    loop {
        let task = {
            let mut s = shared.state.lock();
            loop {
                if s.stopped {
                    return;
                }
                let now = Instant::now();
                match s.heap.peek() {
                    None => {
                        thread::doing("waiting for scheduled tasks");
                        shared.cv.wait(&mut s);
                    }
                    Some(e) if e.at > now => {
                        let at = e.at;
                        thread::doing("waiting for the next scheduled task");
                        shared.cv.wait_until(&mut s, at);
                    }
                    Some(_) => {
                        let Some(e) = s.heap.pop() else { continue };
                        if e.task.cancelled.load(Ordering::Acquire) {
                            continue;
                        }
                        break e;
                    }
                }
            }
        };
        thread::doing("running a scheduled task");
        let started = Instant::now();
        let panicked = {
            let mut f = task.task.f.lock();
            catch_unwind(AssertUnwindSafe(|| (*f)())).is_err()
        };
        if panicked {
            log::error!("a scheduled task panicked on {}", thread::current_name().unwrap_or_default());
        }
        let next = match task.task.repeat {
            Repeat::Once => None,
            Repeat::FixedRate(p) => Some((task.at + p).max(started)),
            Repeat::FixedDelay(d) => Some(Instant::now() + d),
        };
        if let Some(at) = next
            && !task.task.cancelled.load(Ordering::Acquire)
        {
            shared.push(at, task.task);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::wait;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn once_rate_delay_and_cancel() {
        let ex = ScheduledExecutor::new("UnitScheduledThread", "test").expect("executor");
        let once = Arc::new(AtomicUsize::new(0));
        let o = once.clone();
        ex.schedule(Duration::from_millis(5), move || {
            o.fetch_add(1, Ordering::SeqCst);
        });
        let rate = Arc::new(AtomicUsize::new(0));
        let r = rate.clone();
        let rate_handle = ex.schedule_at_fixed_rate(Duration::ZERO, Duration::from_millis(2), move || {
            r.fetch_add(1, Ordering::SeqCst);
        });
        let delay = Arc::new(AtomicUsize::new(0));
        let d = delay.clone();
        ex.schedule_with_fixed_delay(Duration::ZERO, Duration::from_millis(2), move || {
            d.fetch_add(1, Ordering::SeqCst);
            panic!("periodic task fails but keeps its schedule");
        });
        let never = Arc::new(AtomicUsize::new(0));
        let n = never.clone();
        ex.schedule(Duration::from_millis(20), move || {
            n.fetch_add(1, Ordering::SeqCst);
        })
        .cancel();
        assert!(wait::until(Duration::from_secs(5), || {
            once.load(Ordering::SeqCst) == 1 && rate.load(Ordering::SeqCst) >= 5 && delay.load(Ordering::SeqCst) >= 3
        }));
        rate_handle.cancel();
        std::thread::sleep(Duration::from_millis(40));
        let after_cancel = rate.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(rate.load(Ordering::SeqCst), after_cancel, "cancelled task ran again");
        assert_eq!(never.load(Ordering::SeqCst), 0);
        assert_eq!(once.load(Ordering::SeqCst), 1);
        ex.shutdown();
    }
}
