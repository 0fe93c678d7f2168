//! Named threads and the process-wide thread registry.
//!
//! Every thread of the library starts through [`spawn`], which gives it its
//! literal RocketMQ name (`NettyClientSelector_1`, `ConsumeMessageThread_12`,
//! ...) and records it in the registry with its OS thread id, role, start time
//! and a "doing now" label the thread keeps current with [`doing`]. Linux keeps
//! only 15 bytes of a name in `/proc/<pid>/task/<tid>/comm`; the full names are
//! served to other processes by the `Attach Listener` thread (the JVM's name for
//! the thread that answers `jstack`), see [`crate::common::thread_dump`].

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::thread::JoinHandle;
use std::time::SystemTime;

use parking_lot::Mutex;

/// One registered thread.
pub struct ThreadEntry {
    pub name: String,
    /// The pool or service the thread belongs to, e.g. `remoting-client`.
    pub role: &'static str,
    /// OS thread id (as in `/proc/<pid>/task/<tid>`), 0 until the thread has
    /// started or when it could not be read.
    tid: AtomicI32,
    pub started: SystemTime,
    doing: Mutex<Cow<'static, str>>,
}

impl ThreadEntry {
    pub fn doing(&self) -> String {
        self.doing.lock().to_string()
    }
    pub fn tid(&self) -> i32 {
        self.tid.load(Ordering::Acquire)
    }
}

/// A copy of one registry entry, taken for a thread dump.
#[derive(Debug, Clone)]
pub struct ThreadSnapshot {
    pub name: String,
    pub role: &'static str,
    pub tid: i32,
    pub started: SystemTime,
    pub doing: String,
}

static REGISTRY: LazyLock<Mutex<BTreeMap<u64, Arc<ThreadEntry>>>> = LazyLock::new(|| Mutex::new(BTreeMap::new()));
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static CURRENT: RefCell<Option<Arc<ThreadEntry>>> = const { RefCell::new(None) };
}

/// Removes the thread's entry when the thread ends, normally or by panic.
struct Registration(u64);

impl Drop for Registration {
    fn drop(&mut self) {
        REGISTRY.lock().remove(&self.0);
        let _ = CURRENT.try_with(|c| c.borrow_mut().take());
    }
}

/// Enters a thread in the registry before it starts, so it is listed as soon
/// as [`spawn`] returns.
fn register(name: String, role: &'static str) -> (u64, Arc<ThreadEntry>) {
    let entry = Arc::new(ThreadEntry {
        name,
        role,
        tid: AtomicI32::new(0),
        started: SystemTime::now(),
        doing: Mutex::new(Cow::Borrowed("starting")),
    });
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    REGISTRY.lock().insert(id, entry.clone());
    (id, entry)
}

/// The OS id of the calling thread, read from the `/proc/thread-self` link
/// (`<pid>/task/<tid>`), which needs no `unsafe` call.
fn current_tid() -> i32 {
    std::fs::read_link("/proc/thread-self").ok().and_then(|p| p.file_name()?.to_str()?.parse().ok()).unwrap_or(0)
}

/// Starts a thread with its literal RocketMQ `name`, registered under `role`
/// for as long as it runs. The only way this crate starts a thread.
pub fn spawn<F, T>(name: impl Into<String>, role: &'static str, f: F) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    crate::common::thread_dump::ensure_attach_listener();
    spawn_unlisted(name.into(), role, f)
}

/// [`spawn`] without starting the attach listener (used to start that listener).
pub(crate) fn spawn_unlisted<F, T>(name: String, role: &'static str, f: F) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (id, entry) = register(name.clone(), role);
    let spawned = std::thread::Builder::new().name(name.clone()).spawn(move || {
        let _registration = Registration(id);
        entry.tid.store(current_tid(), Ordering::Release);
        if BATCH_SCHEDULING.load(Ordering::Relaxed)
            && let Err(e) = schedule_as_batch()
        {
            log::debug!("{name} keeps its scheduling policy: {e}");
        }
        CURRENT.with(|c| *c.borrow_mut() = Some(entry));
        f()
    });
    if spawned.is_err() {
        REGISTRY.lock().remove(&id);
    }
    spawned
}

/// Whether [`spawn`] puts its threads under SCHED_BATCH: on unless the
/// environment says `RMQ_SCHED_BATCH=0` (or `false`, `off`, `no`).
static BATCH_SCHEDULING: LazyLock<AtomicBool> =
    LazyLock::new(|| AtomicBool::new(batch_wanted(std::env::var("RMQ_SCHED_BATCH").ok().as_deref())));

fn batch_wanted(env: Option<&str>) -> bool {
    !env.is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "0" | "false" | "off" | "no"))
}

/// Chooses whether threads [`spawn`] starts from now on run under Linux's
/// SCHED_BATCH policy (the default; `RMQ_SCHED_BATCH=0` in the environment
/// turns it off for a whole process) or keep the policy of the thread that
/// starts them.
///
/// Why batch: a request crosses six threads here, as in RocketMQ, and under
/// the normal policy each thread it wakes preempts the thread that woke it, so
/// a selector or worker is switched out in the middle of a batch of frames.
/// SCHED_BATCH keeps a thread's CPU share (its nice value is unchanged) and
/// only stops wake-up preemption: a woken thread waits for an idle CPU or the
/// end of the running thread's slice. The README's "Threads" section has the
/// measurements (sync sends about 37k -> 50k msgs/s on 2 cores).
pub fn set_batch_scheduling(on: bool) {
    BATCH_SCHEDULING.store(on, Ordering::Relaxed);
}

/// Puts the calling thread under SCHED_BATCH, keeping its nice value. Threads
/// started by [`spawn`] get this by default; an application can call it on its
/// own sending threads for the same effect.
pub fn schedule_as_batch() -> io::Result<()> {
    use preempt_rt::sched::{Pid, Scheduler, SchedulerParams, set_scheduler};
    set_scheduler(Pid::current_thread(), Scheduler::SCHED_BATCH, SchedulerParams { priority: 0 })
        .map_err(|e| io::Error::other(e.to_string()))
}

/// Sets what the calling thread is doing now (shown in thread dumps). Cheap: a
/// thread-local lookup and an uncontended lock; `&'static str` labels do not
/// allocate. A no-op on threads not started by [`spawn`].
pub fn doing(label: impl Into<Cow<'static, str>>) {
    let _ = CURRENT.try_with(|c| {
        if let Some(entry) = c.borrow().as_ref() {
            *entry.doing.lock() = label.into();
        }
    });
}

/// The registered name of the calling thread, if it was started by [`spawn`].
pub fn current_name() -> Option<String> {
    CURRENT.try_with(|c| c.borrow().as_ref().map(|e| e.name.clone())).ok().flatten()
}

/// Every registered thread, in start order.
pub fn registered() -> Vec<ThreadSnapshot> {
    REGISTRY
        .lock()
        .values()
        .map(|e| ThreadSnapshot {
            name: e.name.clone(),
            role: e.role,
            tid: e.tid(),
            started: e.started,
            doing: e.doing(),
        })
        .collect()
}

/// Names of the registered threads (handy for tests and running info).
pub fn registered_names() -> Vec<String> {
    REGISTRY.lock().values().map(|e| e.name.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawned_thread_is_registered_with_label_and_removed_at_exit() {
        let (tx, rx) = crossbeam_channel::bounded::<()>(0);
        let (ready_tx, ready_rx) = crossbeam_channel::bounded::<()>(0);
        let h = spawn("UnitTestThread_ABCDEFGHIJKLMNOP_1", "test", move || {
            doing("waiting on unit test");
            ready_tx.send(()).ok();
            rx.recv().ok();
        })
        .expect("spawn");
        ready_rx.recv().expect("ready");
        let snap = registered();
        let me = snap
            .iter()
            .find(|t| t.name == "UnitTestThread_ABCDEFGHIJKLMNOP_1")
            .expect("registered under its full name");
        assert_eq!(me.doing, "waiting on unit test");
        assert_eq!(me.role, "test");
        assert!(me.tid > 0);
        tx.send(()).ok();
        h.join().expect("join");
        assert!(!registered_names().contains(&"UnitTestThread_ABCDEFGHIJKLMNOP_1".to_string()));
    }

    /// Fields of `/proc/thread-self/stat` after the command name, which may
    /// hold spaces: index 0 is field 3 (state).
    fn own_stat() -> Vec<String> {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("stat");
        let (_, rest) = stat.rsplit_once(')').expect("comm ends with )");
        rest.split_whitespace().map(str::to_string).collect()
    }
    const NICE: usize = 19 - 3;
    const POLICY: usize = 41 - 3;
    const SCHED_BATCH: &str = "3";

    #[test]
    fn spawned_threads_run_under_sched_batch_with_the_same_nice() {
        let parent = own_stat();
        let child = spawn("UnitTestBatch_1", "test", own_stat).expect("spawn").join().expect("join");
        // Unless this test run was started with RMQ_SCHED_BATCH=0.
        let expected = if BATCH_SCHEDULING.load(Ordering::Relaxed) { SCHED_BATCH } else { parent[POLICY].as_str() };
        assert_eq!(child[POLICY], expected);
        assert_eq!(child[NICE], parent[NICE]);
    }

    #[test]
    fn the_environment_can_turn_batch_scheduling_off() {
        assert!(batch_wanted(None));
        assert!(batch_wanted(Some("1")));
        for off in ["0", "false", "OFF", " no "] {
            assert!(!batch_wanted(Some(off)), "{off:?}");
        }
    }

    #[test]
    fn an_application_thread_can_ask_for_sched_batch() {
        let stat = std::thread::spawn(|| {
            schedule_as_batch().expect("SCHED_BATCH needs no privilege");
            own_stat()
        })
        .join()
        .expect("join");
        assert_eq!(stat[POLICY], SCHED_BATCH);
    }

    #[test]
    fn panicking_thread_is_removed() {
        let h = spawn("UnitTestPanics_1", "test", || panic!("boom")).expect("spawn");
        assert!(h.join().is_err());
        assert!(!registered_names().contains(&"UnitTestPanics_1".to_string()));
    }
}
