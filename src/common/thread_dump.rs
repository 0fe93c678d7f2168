//! A jstack-like thread dump, of this process or of another one.
//!
//! The dump lists every OS thread of a process (from `/proc/<pid>/task`) with
//! its state and CPU time, joined by thread id with the registry's full name,
//! role and "doing now" label.
//!
//! How another process's registry is read: each process that starts a thread
//! through [`crate::common::thread::spawn`] also starts one `Attach Listener`
//! thread (the JVM's thread for the same job) listening on a Unix socket
//! `<dir>/<pid>.sock`, where `<dir>` is `$RMQ_THREADS_DIR` or
//! `<temp dir>/rmq-threads`. A connection to it receives the dump text and is
//! closed. `rmq threads <pid>` connects there; when nothing listens (a process
//! that does not use this library), it prints the `/proc` view alone, with the
//! kernel's 15-byte names.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use crate::common::thread::{self, ThreadSnapshot};
use crate::common::time::format_utc_millis;

/// Linux reports CPU time in `/proc/*/stat` in USER_HZ ticks, fixed at 100 by
/// the kernel's ABI for these files.
const USER_HZ: f64 = 100.0;

static LISTENER_STARTED: AtomicBool = AtomicBool::new(false);

/// Where the attach sockets live.
pub fn attach_dir() -> PathBuf {
    std::env::var_os("RMQ_THREADS_DIR").map(PathBuf::from).unwrap_or_else(|| std::env::temp_dir().join("rmq-threads"))
}

fn socket_path(pid: u32) -> PathBuf {
    attach_dir().join(format!("{pid}.sock"))
}

/// Starts the `Attach Listener` thread once per process.
pub(crate) fn ensure_attach_listener() {
    if LISTENER_STARTED.swap(true, Ordering::AcqRel) {
        return;
    }
    let pid = std::process::id();
    let dir = attach_dir();
    if let Err(e) = std::fs::create_dir_all(&dir) {
        log::warn!(
            "thread dump: cannot create {}: {e}; full thread names will not be readable from outside",
            dir.display()
        );
        return;
    }
    remove_stale_sockets(&dir);
    let path = socket_path(pid);
    let _ = std::fs::remove_file(&path);
    let listener = match UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            log::warn!("thread dump: cannot listen on {}: {e}", path.display());
            return;
        }
    };
    let started = thread::spawn_unlisted("Attach Listener".to_string(), "thread-dump", move || {
        loop {
            thread::doing("waiting for thread dump requests");
            match listener.accept() {
                Ok((mut stream, _)) => {
                    thread::doing("writing thread dump");
                    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
                    let _ = stream.write_all(thread_dump().as_bytes());
                }
                Err(e) => {
                    log::warn!("thread dump: accept failed: {e}");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    });
    if let Err(e) = started {
        log::warn!("thread dump: cannot start the Attach Listener thread: {e}");
    }
}

/// Removes sockets left by processes that no longer exist.
fn remove_stale_sockets(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_suffix(".sock")).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !PathBuf::from(format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The dump of this process.
pub fn thread_dump() -> String {
    render(std::process::id(), Some(&thread::registered()))
}

/// The dump of process `pid`: asked of its attach listener, or read from
/// `/proc` alone when the process does not serve one.
pub fn thread_dump_of(pid: u32) -> io::Result<String> {
    if pid == std::process::id() {
        return Ok(thread_dump());
    }
    if !PathBuf::from(format!("/proc/{pid}")).exists() {
        return Err(io::Error::new(io::ErrorKind::NotFound, format!("no process with pid {pid}")));
    }
    match UnixStream::connect(socket_path(pid)) {
        Ok(mut s) => {
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            let mut text = String::new();
            s.read_to_string(&mut text)?;
            Ok(text)
        }
        Err(_) => Ok(render(pid, None)),
    }
}

/// One OS thread as `/proc/<pid>/task/<tid>/stat` shows it.
struct TaskStat {
    comm: String,
    state: char,
    cpu_ticks: u64,
}

fn read_task(pid: u32, tid: i32) -> Option<TaskStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    // "tid (comm) S ..." where comm may itself hold spaces and parentheses.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    let state = rest.first()?.chars().next()?;
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some(TaskStat { comm, state, cpu_ticks: utime + stime })
}

fn state_name(s: char) -> &'static str {
    match s {
        'R' => "running",
        'S' => "sleeping",
        'D' => "disk sleep",
        'T' | 't' => "stopped",
        'Z' => "zombie",
        'X' => "dead",
        'I' => "idle",
        _ => "unknown",
    }
}

/// Renders the dump of `pid`; `registry` is that process's registry when known.
fn render(pid: u32, registry: Option<&[ThreadSnapshot]>) -> String {
    let mut tids: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    tids.sort_unstable();
    let by_tid: HashMap<i32, &ThreadSnapshot> = registry.unwrap_or(&[]).iter().map(|t| (t.tid, t)).collect();
    let exe = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let now = SystemTime::now();
    let named = tids.iter().filter(|t| by_tid.contains_key(t)).count();
    let mut out = format!(
        "Full thread dump of process {pid} ({}) at {}: {} threads, {} named by rmq\n",
        exe.trim(),
        format_utc_millis(crate::common::time::millis_of(now)),
        tids.len(),
        named
    );
    if registry.is_none() {
        out.push_str("(no rmq thread registry answered for this process: kernel names, cut to 15 bytes)\n");
    }
    for tid in tids {
        let Some(task) = read_task(pid, tid) else { continue };
        let cpu = task.cpu_ticks as f64 / USER_HZ;
        match by_tid.get(&tid) {
            Some(t) => {
                let age = now.duration_since(t.started).unwrap_or_default().as_secs_f64();
                out.push_str(&format!(
                    "\n\"{}\" tid={} role={} state={} ({}) cpu={:.2}s age={:.1}s\n    doing: {}\n",
                    t.name,
                    tid,
                    t.role,
                    task.state,
                    state_name(task.state),
                    cpu,
                    age,
                    t.doing
                ));
            }
            None => out.push_str(&format!(
                "\n\"{}\" tid={} state={} ({}) cpu={:.2}s\n",
                task.comm,
                tid,
                task.state,
                state_name(task.state),
                cpu
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_shows_full_name_state_and_label() {
        let (tx, rx) = crossbeam_channel::bounded::<()>(0);
        let (ready_tx, ready_rx) = crossbeam_channel::bounded::<()>(0);
        let h = thread::spawn("DumpTestThreadWithALongName_7", "test", move || {
            thread::doing("waiting on dump test");
            ready_tx.send(()).ok();
            rx.recv().ok();
        })
        .expect("spawn");
        ready_rx.recv().expect("ready");
        let text = thread_dump();
        let line = text
            .lines()
            .find(|l| l.starts_with("\"DumpTestThreadWithALongName_7\""))
            .unwrap_or_else(|| panic!("thread missing from dump:\n{text}"));
        assert!(line.contains("role=test"), "{line}");
        assert!(line.contains("state=S"), "{line}");
        assert!(text.contains("doing: waiting on dump test"));
        tx.send(()).ok();
        h.join().expect("join");
    }
}
