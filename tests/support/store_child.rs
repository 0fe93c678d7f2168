//! A message store in a child process, for crash tests. The test binary runs
//! itself (`--exact <child test> --ignored`); the child opens a store in the
//! directory it is given and appends from several threads, printing
//! `ACK <thread> <seq>` after each put the store acknowledged. The parent
//! kills it (SIGKILL), stops it (SIGTERM: a clean shutdown), or lets a
//! failpoint kill it, then checks what a restarted store holds.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use rmq::broker::consumer_offset::ConsumerOffsetManager;
use rmq::common::message::{self, Message, MessageToStore};
use rmq::store::{FlushDiskType, GetMessageStatus, MessageStore, PutMessageStatus, StoreConfig};

const ENV_DIR: &str = "RMQ_STORE_CHILD_DIR";
const ENV_FLUSH: &str = "RMQ_STORE_CHILD_FLUSH";
const ENV_CL_FILE: &str = "RMQ_STORE_CHILD_CL_FILE";
const ENV_FAILPOINT: &str = "RMQ_STORE_CHILD_FAILPOINT";
const ENV_OFFSETS: &str = "RMQ_STORE_CHILD_OFFSETS";
const ENV_FAILCFG: &str = "RMQ_STORE_CHILD_FAILCFG";
const ENV_RACE_FLUSH: &str = "RMQ_STORE_CHILD_RACE_FLUSH";

pub const TOPIC: &str = "Durable";
pub const GROUP: &str = "durable_group";
pub const THREADS: usize = 4;
pub const CQ_FILE: usize = 100 * 20;

/// The store's settings, the same in the child and the parent.
pub fn config(dir: &Path, cl_file: usize, flush: FlushDiskType) -> StoreConfig {
    StoreConfig {
        mapped_file_size_commit_log: cl_file,
        mapped_file_size_consume_queue: CQ_FILE,
        flush_disk_type: flush,
        flush_interval_commit_log: Duration::from_millis(10),
        flush_interval_consume_queue: Duration::from_millis(50),
        flush_consume_queue_thorough_interval: Duration::from_millis(200),
        ..StoreConfig::at(dir)
    }
}

/// The body thread `t` of run `run` (the child's pid) writes as its `seq`th message.
pub fn body(run: u32, t: usize, seq: u64) -> Vec<u8> {
    format!("r{run}-t{t}-s{seq}-{}", "p".repeat((seq as usize * 7) % 400)).into_bytes()
}

pub fn message(queue_id: i32, body: Vec<u8>) -> MessageToStore {
    let host = "127.0.0.1:10911".parse().unwrap();
    let m = Message::new(TOPIC, Bytes::from(body));
    MessageToStore::from_message(&m, queue_id, rmq::common::time::now_millis(), host, host)
}

/// How a child is run.
#[derive(Clone, Debug)]
pub struct Spec {
    pub flush: FlushDiskType,
    pub cl_file: usize,
    /// A failpoint that kills the child (SIGKILL) at its `n`th hit.
    pub kill_at: Option<(&'static str, u64)>,
    /// Commit and persist consumer offsets (config/consumerOffset.json) as
    /// the queues grow.
    pub offsets: bool,
    /// A failpoint and its actions in the `fail` crate's syntax, set in the
    /// child (`("mapped_file::allocate", "5*off->return")`).
    pub fail_cfg: Option<(&'static str, &'static str)>,
    /// Every flush of a mapped file appends one more message while it runs,
    /// so the flushes never catch up with the writes.
    pub race_flushes: bool,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            flush: FlushDiskType::SyncFlush,
            cl_file: 64 * 1024,
            kill_at: None,
            offsets: false,
            fail_cfg: None,
            race_flushes: false,
        }
    }
}

/// The body of the ignored child test: does nothing unless run as a child.
pub fn child_main() {
    let Some(dir) = std::env::var_os(ENV_DIR) else { return };
    let flush = match std::env::var(ENV_FLUSH).as_deref() {
        Ok("ASYNC_FLUSH") => FlushDiskType::AsyncFlush,
        _ => FlushDiskType::SyncFlush,
    };
    let cl_file = std::env::var(ENV_CL_FILE).ok().and_then(|v| v.parse().ok()).unwrap_or(64 * 1024);
    let store_cell: Arc<OnceLock<Arc<MessageStore>>> = Arc::new(OnceLock::new());
    if let Ok(fp) = std::env::var(ENV_FAILPOINT) {
        let (name, n) = fp.rsplit_once(':').unwrap();
        let n: u64 = n.parse().unwrap();
        let hits = AtomicU64::new(0);
        let cell = store_cell.clone();
        let point = name.to_string();
        fail::cfg_callback(name, move || {
            // The CommitLog's flushed offset, exact here on the flushing thread.
            if point == "store::commit_log_flushed"
                && let Some(s) = cell.get()
            {
                println!("FLUSHED {}", s.flushed_phy_offset());
            }
            if hits.fetch_add(1, Ordering::SeqCst) + 1 == n {
                println!("KILLED AT {point}");
                let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
            }
        })
        .unwrap();
    }
    if let Ok(c) = std::env::var(ENV_FAILCFG) {
        let (name, actions) = c.split_once('=').unwrap();
        fail::cfg(name, actions).unwrap();
    }
    if std::env::var_os(ENV_RACE_FLUSH).is_some() {
        let cell = store_cell.clone();
        let racing = AtomicU64::new(0);
        fail::cfg_callback("mapped_file::flush", move || {
            if let Some(s) = cell.get() {
                let n = racing.fetch_add(1, Ordering::Relaxed);
                s.put_message(&message(0, format!("racing a flush {n}").into_bytes()), false);
            }
        })
        .unwrap();
    }
    let store = match MessageStore::open(config(Path::new(&dir), cl_file, flush)) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            println!("OPEN FAILED {e}");
            std::process::exit(3);
        }
    };
    let _ = store_cell.set(store.clone());
    println!("READY");
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut seq = 0u64;
                while !stop.load(Ordering::Acquire) {
                    let r = store.put_message(&message(t as i32, body(std::process::id(), t, seq)), true);
                    if r.status == PutMessageStatus::PutOk {
                        println!("ACK {t} {seq}");
                        seq += 1;
                    } else {
                        println!("REFUSED {t} {:?}", r.status);
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            })
        })
        .collect();
    if std::env::var_os(ENV_OFFSETS).is_some() {
        let (store, stop) = (store.clone(), stop.clone());
        let path = ConsumerOffsetManager::default_path(Path::new(&dir));
        std::thread::spawn(move || {
            let offsets = ConsumerOffsetManager::load(path).unwrap();
            while !stop.load(Ordering::Acquire) {
                for t in 0..THREADS as i32 {
                    offsets.commit(GROUP, TOPIC, t, store.max_offset_in_queue(TOPIC, t));
                }
                let _ = offsets.persist();
                std::thread::sleep(Duration::from_millis(20));
            }
        });
    }
    // SIGTERM: a clean stop.
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGTERM]).unwrap();
    signals.forever().next();
    stop.store(true, Ordering::Release);
    for w in writers {
        let _ = w.join();
    }
    store.shutdown();
    println!("CLEAN");
    std::process::exit(0);
}

/// A running child.
pub struct Running {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

/// What a child said before it ended.
#[derive(Default, Debug)]
pub struct Said {
    /// The child's pid, which its bodies carry.
    pub run: u32,
    /// Acknowledged sequence numbers, per thread.
    pub acked: Vec<Vec<u64>>,
    pub flushed: Option<i64>,
    pub killed_at: Option<String>,
    pub clean: bool,
    pub open_failed: Option<String>,
    /// Puts the store refused, by status (`ServiceNotAvailable`, ...).
    pub refused: HashMap<String, usize>,
}

impl Said {
    pub fn acks(&self) -> usize {
        self.acked.iter().map(Vec::len).sum()
    }
}

/// Starts a child of the test binary, running `child_test` on `dir`.
pub fn spawn(child_test: &str, dir: &Path, spec: &Spec) -> Running {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", child_test, "--ignored", "--nocapture", "--test-threads", "1"])
        .env(ENV_DIR, dir)
        .env(ENV_CL_FILE, spec.cl_file.to_string())
        .env(ENV_FLUSH, if spec.flush == FlushDiskType::SyncFlush { "SYNC_FLUSH" } else { "ASYNC_FLUSH" })
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some((name, n)) = spec.kill_at {
        cmd.env(ENV_FAILPOINT, format!("{name}:{n}"));
    }
    if spec.offsets {
        cmd.env(ENV_OFFSETS, "1");
    }
    if let Some((name, actions)) = spec.fail_cfg {
        cmd.env(ENV_FAILCFG, format!("{name}={actions}"));
    }
    if spec.race_flushes {
        cmd.env(ENV_RACE_FLUSH, "1");
    }
    let mut child = cmd.spawn().unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in out.lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Running { child, lines }
}

impl Running {
    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.id() as i32)
    }

    /// Reads what the child says until it has acknowledged `acks` puts (then
    /// `then` is sent to it, if any) and it ends, or `limit` passes (then it
    /// is killed).
    pub fn run(self, acks: usize, then: Option<nix::sys::signal::Signal>, limit: Duration) -> Said {
        self.run_until(|said| said.acks() >= acks, then, limit)
    }

    /// As [`Running::run`], sending `then` once `ready` holds.
    pub fn run_until(
        mut self,
        ready: impl Fn(&Said) -> bool,
        then: Option<nix::sys::signal::Signal>,
        limit: Duration,
    ) -> Said {
        let mut said = Said { run: self.child.id(), acked: vec![Vec::new(); THREADS], ..Default::default() };
        let deadline = std::time::Instant::now() + limit;
        let mut signalled = false;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(l) => l,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    continue;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            };
            // The test harness prints `test <name> ... ` before the child's
            // first line, without a newline.
            let line = match line.split_once(" ... ") {
                Some((_, said)) if line.starts_with("test ") => said.to_string(),
                _ => line,
            };
            let mut words = line.split(' ');
            match (words.next(), words.next(), words.next()) {
                (Some("ACK"), Some(t), Some(s)) => {
                    if let (Ok(t), Ok(s)) = (t.parse::<usize>(), s.parse::<u64>()) {
                        said.acked[t].push(s);
                    }
                }
                (Some("FLUSHED"), Some(o), _) => said.flushed = o.parse().ok(),
                (Some("KILLED"), _, _) => said.killed_at = Some(line["KILLED AT ".len().min(line.len())..].to_string()),
                (Some("CLEAN"), _, _) => said.clean = true,
                (Some("REFUSED"), Some(_), Some(status)) => *said.refused.entry(status.to_string()).or_default() += 1,
                (Some("OPEN"), _, _) => said.open_failed = Some(line.clone()),
                _ => {}
            }
            if !signalled && ready(&said) {
                signalled = true;
                if let Some(sig) = then {
                    let _ = nix::sys::signal::kill(self.pid(), sig);
                }
            }
        }
        let _ = self.child.wait();
        said
    }
}

/// Every message of queue `qid`, each decoded with its CRC checked: a
/// record that does not decode fails the test.
pub fn read_queue(store: &MessageStore, topic: &str, qid: i32) -> Vec<message::MessageExt> {
    read_queue_from(store, topic, qid, store.min_offset_in_queue(topic, qid))
}

/// As [`read_queue`], from queue offset `from`.
pub fn read_queue_from(store: &MessageStore, topic: &str, qid: i32, from: i64) -> Vec<message::MessageExt> {
    let mut out = Vec::new();
    let mut offset = from;
    loop {
        let r = store.get_message("check", topic, qid, offset, 32, None);
        if r.status != GetMessageStatus::Found {
            break;
        }
        for rec in &r.messages {
            out.push(message::decode(rec, true, true).expect("a stored record that does not decode was returned"));
        }
        offset = r.next_begin_offset;
    }
    out
}

/// Opens the store in `dir` and checks the durability invariants:
/// - every put acknowledged in `said` is there, intact;
/// - every record read decodes with its CRC (checked by `read_queue`);
/// - the ConsumeQueues agree with the CommitLog: each queue is dense from
///   its minimum, each unit's record is of that queue at that offset, and
///   every record of the CommitLog is in its queue at its offset;
/// - committed consumer offsets are not past their queue's end once the
///   broker's start-up correction ran (how many it moved is returned).
pub struct Checked {
    pub store: MessageStore,
    /// Committed offsets the start-up correction brought back to their
    /// queue's end (0 unless a crash lost dispatched messages).
    pub offsets_corrected: usize,
}

pub fn check_invariants(dir: &Path, spec: &Spec, said: &[&Said]) -> Checked {
    let _ = env_logger::builder().is_test(true).try_init();
    let store = MessageStore::open(config(dir, spec.cl_file, spec.flush))
        .unwrap_or_else(|e| panic!("the store did not reopen: {e}"));
    let mut in_queues: HashMap<i64, (i32, i64)> = HashMap::new();
    for t in 0..THREADS {
        let stored = read_queue(&store, TOPIC, t as i32);
        let min = store.min_offset_in_queue(TOPIC, t as i32);
        assert_eq!(stored.len() as i64, store.max_offset_in_queue(TOPIC, t as i32) - min, "queue {t} has holes");
        let bodies: HashSet<&[u8]> = stored.iter().map(|m| &m.message.body[..]).collect();
        for s in said {
            for &seq in &s.acked[t] {
                assert!(
                    bodies.contains(&body(s.run, t, seq)[..]),
                    "acknowledged message r{} t{t} s{seq} was lost (queue {t}: {} stored from {min}, first {:?})",
                    s.run,
                    stored.len(),
                    stored
                        .first()
                        .map(|m| String::from_utf8_lossy(&m.message.body[..20.min(m.message.body.len())]).to_string())
                );
            }
        }
        for (k, m) in stored.iter().enumerate() {
            assert_eq!(m.queue_offset, min + k as i64, "queue {t}: offsets are dense and in order");
            assert_eq!(m.queue_id, t as i32);
            in_queues.insert(m.commit_log_offset, (m.queue_id, m.queue_offset));
        }
    }
    // Every record of the CommitLog (read from its files) is in its queue.
    let mut records = 0;
    let mut files: Vec<_> = std::fs::read_dir(dir.join("commitlog")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for path in files {
        let start: i64 = path.file_name().unwrap().to_str().unwrap().parse().unwrap();
        if start + spec.cl_file as i64 <= store.min_phy_offset() {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let mut pos = 0usize;
        while start + (pos as i64) < store.max_phy_offset() {
            let at = start + pos as i64;
            let (size, magic) = message::record_size(&bytes[pos..]).unwrap();
            if magic == message::BLANK_MAGIC_CODE {
                break;
            }
            let m =
                message::decode(&bytes[pos..], false, true).unwrap_or_else(|e| panic!("CommitLog record at {at}: {e}"));
            assert_eq!(in_queues.get(&at), Some(&(m.queue_id, m.queue_offset)), "record at {at} is not in its queue");
            records += 1;
            pos += size as usize;
        }
    }
    assert_eq!(records, in_queues.len(), "every unit points at a CommitLog record");
    // Committed offsets, after the broker's start-up correction.
    let path = ConsumerOffsetManager::default_path(dir);
    let offsets = ConsumerOffsetManager::load(path).unwrap_or_else(|e| panic!("consumer offsets do not load: {e}"));
    let offsets_corrected = offsets.correct_beyond(|topic, qid| store.max_offset_in_queue(topic, qid));
    for (qid, off) in offsets.query_all(GROUP, TOPIC) {
        assert!(off <= store.max_offset_in_queue(TOPIC, qid), "committed offset {off} past queue {qid}'s end");
    }
    Checked { store, offsets_corrected }
}
