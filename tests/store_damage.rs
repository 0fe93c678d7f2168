//! Recovery never panics on damaged files. A stopped store holding a few
//! hundred messages over several topics, queues and files, with the
//! broker's config files beside it, is copied; one of its files is
//! truncated, bit-flipped or overwritten; and the store then either opens,
//! serving only records that decode with their CRC and taking new
//! messages, or refuses with an error naming the damaged file.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use rmq::broker::consumer_offset::ConsumerOffsetManager;
use rmq::broker::subscription_group::SubscriptionGroupManager;
use rmq::broker::topic_config::TopicConfigManager;
use rmq::common::message::{self, Message, MessageToStore};
use rmq::remoting::body::TopicConfig;
use rmq::store::{GetMessageStatus, MessageStore, PutMessageStatus, StoreConfig};

const CL_FILE: usize = 16 * 1024;
const CQ_FILE: usize = 100 * 20;
const MESSAGES: usize = 480;
/// Reads of one queue before it counts as a read that never ends.
const MAX_READS: usize = 10_000;

static BACKGROUND_PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

thread_local! {
    /// Set on the threads of this file's tests.
    static TEST_THREAD: Cell<bool> = const { Cell::new(false) };
    /// `file:line: message` of this thread's last panic.
    static LAST_PANIC: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Marks the calling thread as a test's and records every panic: those of
/// other threads (the store's own, whose panics would not fail a test by
/// themselves) in [`BACKGROUND_PANICS`], each thread's last in [`LAST_PANIC`].
fn watch_panics() {
    static HOOK: Once = Once::new();
    TEST_THREAD.with(|t| t.set(true));
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let text = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned());
            let at = info.location().map_or(String::new(), |l| format!("{}:{}", l.file(), l.line()));
            let what = format!("{at}: {}", text.unwrap_or_default());
            if !TEST_THREAD.with(Cell::get) {
                let thread = std::thread::current().name().unwrap_or("<unnamed>").to_string();
                BACKGROUND_PANICS.lock().unwrap_or_else(|e| e.into_inner()).push(format!("{thread}: {what}"));
            }
            LAST_PANIC.with(|p| *p.borrow_mut() = what);
            default(info);
        }));
    });
}

fn background_panics() -> Vec<String> {
    std::mem::take(&mut *BACKGROUND_PANICS.lock().unwrap_or_else(|e| e.into_inner()))
}

fn config(dir: &Path) -> StoreConfig {
    StoreConfig {
        mapped_file_size_commit_log: CL_FILE,
        mapped_file_size_consume_queue: CQ_FILE,
        ..StoreConfig::at(dir)
    }
}

/// The topic and queue of message `i`: TopicA-0 gets half of them (three
/// ConsumeQueue files), the other queues one file each.
fn place(i: usize) -> (&'static str, i32) {
    match i % 8 {
        0..=3 => ("TopicA", 0),
        4 | 5 => ("TopicA", 1 + (i % 2) as i32),
        6 => ("TopicB", ((i / 8) % 3) as i32),
        _ => ("TopicC", 0),
    }
}

fn body(i: usize) -> Vec<u8> {
    format!("damage-{i:05}-{}", "y".repeat(i * 37 % 300)).into_bytes()
}

fn msg(topic: &str, queue_id: i32, body: Vec<u8>) -> MessageToStore {
    let mut m = Message::new(topic, Bytes::from(body));
    m.set_tags("TagA");
    MessageToStore::from_message(
        &m,
        queue_id,
        rmq::common::time::now_millis(),
        "127.0.0.1:5000".parse().unwrap(),
        "127.0.0.1:10911".parse().unwrap(),
    )
}

/// Bodies by (topic, queue id) and queue offset.
type Contents = BTreeMap<(String, i32), BTreeMap<i64, Vec<u8>>>;

/// A stopped store and the broker's config files, to be copied and damaged.
struct Template {
    dir: tempfile::TempDir,
    /// Every regular file, relative to the root, sorted.
    files: Vec<PathBuf>,
    sent: Contents,
}

impl Template {
    /// A copy of the template, damaged by `damage`, with the `abort` file
    /// of a crash when `crashed`.
    fn damaged_copy(&self, crashed: bool, damage: impl FnOnce(&Path)) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(self.dir.path(), dir.path());
        damage(dir.path());
        if crashed {
            std::fs::write(dir.path().join("abort"), b"").unwrap();
        }
        dir
    }

    /// The CommitLog files holding messages, oldest first.
    fn commit_log_data_files(&self) -> Vec<PathBuf> {
        let root = self.dir.path();
        self.files
            .iter()
            .filter(|f| f.starts_with("commitlog") && std::fs::read(root.join(f)).unwrap().iter().any(|&b| b != 0))
            .cloned()
            .collect()
    }
}

fn build_template() -> Template {
    watch_panics();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut sent = Contents::new();
    let mut first_stored = 0;
    {
        let store = MessageStore::open(config(root)).unwrap();
        for i in 0..MESSAGES {
            let (topic, qid) = place(i);
            let r = store.put_message(&msg(topic, qid, body(i)), true);
            assert_eq!(r.status, PutMessageStatus::PutOk);
            let a = r.appended.unwrap();
            if i == 0 {
                first_stored = a.store_timestamp;
            }
            sent.entry((topic.to_string(), qid)).or_default().insert(a.logics_offset, body(i));
        }
        assert!(store.wait_dispatched(Duration::from_secs(10)));
        store.shutdown();
    }
    let checkpoint = std::fs::read(root.join("checkpoint")).unwrap();
    let time_at = |i: usize| i64::from_be_bytes(checkpoint[i..i + 8].try_into().unwrap());
    assert!(
        first_stored > time_at(0).min(time_at(8)) - 3000,
        "a crash start must walk the whole CommitLog: the checkpoint's times less 3 s precede the first message"
    );

    let offsets = ConsumerOffsetManager::load(ConsumerOffsetManager::default_path(root)).unwrap();
    for ((topic, qid), queue) in &sent {
        offsets.commit("g", topic, *qid, queue.len() as i64 / 2);
    }
    offsets.persist().unwrap();
    for ((topic, qid), queue) in &sent {
        offsets.commit("g", topic, *qid, queue.len() as i64);
    }
    offsets.persist().unwrap();
    let topics = load_topics(root).unwrap();
    for (name, queues) in [("TopicA", 3), ("TopicB", 3), ("TopicC", 1)] {
        let tc = TopicConfig {
            topic_name: name.into(),
            read_queue_nums: queues,
            write_queue_nums: queues,
            ..Default::default()
        };
        topics.update(tc).unwrap();
    }
    let groups = SubscriptionGroupManager::load(SubscriptionGroupManager::default_path(root), true).unwrap();
    assert!(groups.find_or_create("g").is_some());
    assert!(groups.find_or_create("g2").is_some());

    let mut files = Vec::new();
    list_files(root, root, &mut files);
    files.sort();
    let has = |p: &str| files.iter().any(|f| f.to_str() == Some(p));
    assert!(has("checkpoint") && !has("abort"), "a clean stop: {files:?}");
    for f in ["consumerOffset.json", "topics.json", "subscriptionGroup.json"] {
        assert!(has(&format!("config/{f}")) && has(&format!("config/{f}.bak")), "{f} and its .bak: {files:?}");
    }
    assert!(files.iter().filter(|f| f.starts_with("commitlog")).count() >= 5, "several CommitLog files: {files:?}");
    assert!(has("consumequeue/TopicA/0/00000000000000004000"), "TopicA-0 spans three files: {files:?}");
    Template { dir, files, sent }
}

fn load_topics(root: &Path) -> std::io::Result<TopicConfigManager> {
    TopicConfigManager::load(TopicConfigManager::default_path(root), "DefaultCluster", "broker-a", 8, true)
}

fn list_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let t = e.file_type().unwrap();
        if t.is_dir() {
            list_files(root, &e.path(), out);
        } else if t.is_file() {
            out.push(e.path().strip_prefix(root).unwrap().to_path_buf());
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// What is written over a range of the file.
#[derive(Debug, Clone)]
enum Fill {
    Zeros(usize),
    Ones(usize),
    Bytes(Vec<u8>),
}

#[derive(Debug, Clone)]
enum Damage {
    /// To this length (None: to 0).
    Truncate(Option<Index>),
    /// These bits (byte position, bit).
    Flip(Vec<(Index, u8)>),
    /// From this position, stopping at the end of the file.
    Overwrite(Index, Fill),
}

fn damage_strategy() -> impl Strategy<Value = Damage> {
    let fill = prop_oneof![
        (1usize..4096).prop_map(Fill::Zeros),
        (1usize..4096).prop_map(Fill::Ones),
        proptest::collection::vec(any::<u8>(), 1..512).prop_map(Fill::Bytes),
    ];
    prop_oneof![
        prop_oneof![1 => Just(None), 3 => any::<Index>().prop_map(Some)].prop_map(Damage::Truncate),
        proptest::collection::vec((any::<Index>(), 0u8..8), 1..=8).prop_map(Damage::Flip),
        (any::<Index>(), fill).prop_map(|(at, fill)| Damage::Overwrite(at, fill)),
    ]
}

/// Damages the file at `path`; says what was done.
fn apply(path: &Path, damage: &Damage) -> String {
    let mut bytes = std::fs::read(path).unwrap();
    let len = bytes.len();
    if len == 0 {
        return "nothing (an empty file)".into();
    }
    let done = match damage {
        Damage::Truncate(to) => {
            let to = to.as_ref().map_or(0, |i| i.index(len));
            bytes.truncate(to);
            format!("truncated from {len} to {to} bytes")
        }
        Damage::Flip(bits) => {
            let mut at = Vec::new();
            for (i, bit) in bits {
                let pos = i.index(len);
                bytes[pos] ^= 1 << bit;
                at.push(format!("{pos}.{bit}"));
            }
            format!("bits flipped at {}", at.join(" "))
        }
        Damage::Overwrite(at, fill) => {
            let start = at.index(len);
            let (what, n) = match fill {
                Fill::Zeros(n) => ("zeros", *n),
                Fill::Ones(n) => ("0xFF", *n),
                Fill::Bytes(b) => ("random bytes", b.len()),
            };
            let end = (start + n).min(len);
            for (k, b) in bytes[start..end].iter_mut().enumerate() {
                *b = match fill {
                    Fill::Zeros(_) => 0,
                    Fill::Ones(_) => 0xFF,
                    Fill::Bytes(v) => v[k],
                };
            }
            format!("{what} over [{start}, {end}) of {len} bytes")
        }
    };
    std::fs::write(path, &bytes).unwrap();
    done
}

/// What reading every queue found.
#[derive(Default)]
struct Read {
    contents: Contents,
    /// Records served that do not decode with their CRC, and why.
    undecodable: Vec<String>,
    /// Queues whose reads did not come to an end.
    endless: Vec<String>,
}

/// Reads every queue of every topic from its minimum, following the
/// statuses that move the offset on.
fn read_everything(store: &MessageStore) -> Read {
    let mut read = Read::default();
    for (topic, qids) in store.queues() {
        for qid in qids {
            let mut offset = store.min_offset_in_queue(&topic, qid);
            let mut ended = false;
            for _ in 0..MAX_READS {
                let r = store.get_message("g", &topic, qid, offset, 32, None);
                for (rec, at) in r.messages.iter().zip(&r.queue_offsets) {
                    match message::decode(rec, true, true) {
                        Ok(m) => {
                            read.contents.entry((topic.clone(), qid)).or_default().insert(*at, m.message.body.to_vec());
                        }
                        Err(e) => read.undecodable.push(format!("{topic}-{qid} offset {at}: {e}")),
                    }
                }
                let moves = matches!(
                    r.status,
                    GetMessageStatus::Found
                        | GetMessageStatus::NoMatchedMessage
                        | GetMessageStatus::MessageWasRemoving
                        | GetMessageStatus::OffsetFoundNull
                        | GetMessageStatus::OffsetTooSmall
                );
                if !moves || r.next_begin_offset <= offset {
                    ended = true;
                    break;
                }
                offset = r.next_begin_offset;
            }
            if !ended {
                read.endless.push(format!("{topic}-{qid} still going at offset {offset}"));
            }
        }
    }
    read
}

/// How many messages of `sent` were not read back with their body.
fn missing(sent: &Contents, got: &Contents) -> usize {
    sent.iter()
        .flat_map(|(q, msgs)| msgs.iter().map(move |(o, b)| (q, o, b)))
        .filter(|(q, o, b)| got.get(*q).and_then(|m| m.get(*o)) != Some(*b))
        .count()
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().to_string()
}

/// A refusal must name `victim`.
fn check_refusal(victim: &Path, e: &str) -> Result<(), TestCaseError> {
    let name = file_name(victim);
    prop_assert!(e.contains(&name), "refused without naming {}: {}", name, e);
    Ok(())
}

/// Reads every queue: no panic, and every record served decodes with its CRC.
fn read_checked(store: &MessageStore) -> Result<Read, TestCaseError> {
    let read = match catch_unwind(AssertUnwindSafe(|| read_everything(store))) {
        Ok(read) => read,
        Err(_) => {
            let what = LAST_PANIC.with(|p| p.borrow().clone());
            return Err(TestCaseError::fail(format!("reading the queues panicked: {what}")));
        }
    };
    prop_assert!(
        read.undecodable.is_empty(),
        "records served that do not decode with their CRC: {:?}",
        read.undecodable
    );
    prop_assert!(read.endless.is_empty(), "reads that never end: {:?}", read.endless);
    Ok(read)
}

const AFTER: &[u8] = b"after the damage";

/// The message put after the damage is served at TopicA-0 `at`.
fn check_new_message(store: &MessageStore, at: i64) -> Result<(), TestCaseError> {
    let got = store.get_message("g", "TopicA", 0, at, 1, None);
    prop_assert_eq!(got.status, GetMessageStatus::Found, "the new message at TopicA-0 offset {}", at);
    let m = message::decode(&got.messages[0], true, true);
    prop_assert!(m.is_ok(), "the new message does not decode: {:?}", m.as_ref().err());
    prop_assert_eq!(&m.unwrap().message.body[..], AFTER);
    Ok(())
}

/// Opens the damaged store at `root`: it must refuse naming `victim`, or
/// open, serve only records that decode, take a new message, and open
/// again (or refuse naming `victim`) with the new message kept. Says how
/// it went, in `notes`.
fn check_store(root: &Path, victim: &Path, t: &Template, notes: &mut Vec<String>) -> Result<(), TestCaseError> {
    let store = match MessageStore::open(config(root)) {
        Ok(s) => s,
        Err(e) => {
            check_refusal(victim, &e.to_string())?;
            notes.push(format!("refused: {e}"));
            return Ok(());
        }
    };
    let read = read_checked(&store)?;
    let lost = missing(&t.sent, &read.contents);
    if lost > 0 {
        notes.push(format!("opened, {lost} of {MESSAGES} messages not served"));
    }

    let r = store.put_message(&msg("TopicA", 0, AFTER.to_vec()), true);
    prop_assert_eq!(r.status, PutMessageStatus::PutOk, "a put after the damage: {:?}", r.remark);
    let at = r.appended.unwrap().logics_offset;
    prop_assert!(store.wait_dispatched(Duration::from_secs(10)), "the new message was not indexed");
    check_new_message(&store, at)?;
    store.shutdown();
    drop(store);

    match MessageStore::open(config(root)) {
        Ok(again) => {
            check_new_message(&again, at)?;
            read_checked(&again)?;
            again.shutdown();
        }
        Err(e) => {
            check_refusal(victim, &e.to_string())?;
            notes.push(format!("opened, then refused on the restart: {e}"));
        }
    }
    Ok(())
}

/// Loads the broker's config files; each must load or refuse naming `victim`.
fn check_configs(root: &Path, victim: &Path) -> Result<(), TestCaseError> {
    let name = file_name(victim);
    let results = [
        ConsumerOffsetManager::load(ConsumerOffsetManager::default_path(root)).map(drop),
        load_topics(root).map(drop),
        SubscriptionGroupManager::load(SubscriptionGroupManager::default_path(root), true).map(drop),
    ];
    for e in results.into_iter().filter_map(Result::err) {
        prop_assert!(e.to_string().contains(&name), "a config file refused without naming {}: {}", name, e);
    }
    Ok(())
}

fn run_case(t: &Template, file: &Index, damage: &Damage, crashed: bool) -> Result<(), TestCaseError> {
    let victim = &t.files[file.index(t.files.len())];
    let mut done = String::new();
    let dir = t.damaged_copy(crashed, |root| done = apply(&root.join(victim), damage));
    let mut notes = Vec::new();
    let checked = check_store(dir.path(), victim, t, &mut notes);
    let start = if crashed { "crash" } else { "clean" };
    for n in &notes {
        println!("{} {done}, {start} start: {n}", victim.display());
    }
    checked?;
    check_configs(dir.path(), victim)?;
    let panics = background_panics();
    prop_assert!(panics.is_empty(), "store threads panicked: {:?}", panics);
    Ok(())
}

#[test]
fn damaged_files_open_or_are_refused_naming_them() {
    let t = build_template();
    // PROPTEST_CASES, when set, overrides the 128 cases.
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() { ProptestConfig::default().cases } else { 128 };
    let config = ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(file in any::<Index>(), damage in damage_strategy(), crashed in any::<bool>())| {
        run_case(&t, &file, &damage, crashed)?;
    });
}

// ---------------------------------------------------------------------------
// Specific damage

/// Reads every queue of an opened store, which must serve only records
/// that decode and never panic.
fn read_all(store: &MessageStore) -> Contents {
    let read = read_everything(store);
    assert!(read.undecodable.is_empty(), "records that do not decode: {:?}", read.undecodable);
    assert!(read.endless.is_empty(), "{:?}", read.endless);
    read.contents
}

/// Puts one message after the damage, and finds it again after a restart.
fn put_survives_a_restart(root: &Path, store: MessageStore) {
    let r = store.put_message(&msg("TopicA", 0, AFTER.to_vec()), true);
    assert_eq!(r.status, PutMessageStatus::PutOk, "{:?}", r.remark);
    let at = r.appended.unwrap().logics_offset;
    assert!(store.wait_dispatched(Duration::from_secs(10)));
    store.shutdown();
    drop(store);
    let again = MessageStore::open(config(root)).unwrap();
    check_new_message(&again, at).unwrap();
    again.shutdown();
    assert!(background_panics().is_empty());
}

/// A CommitLog file of the wrong size is refused, after a clean stop or a
/// crash alike, naming it, and no file is deleted or cut.
#[test]
fn the_last_commit_log_file_cut_to_half_is_refused_naming_it() {
    let t = build_template();
    let last = t.commit_log_data_files().pop().unwrap();
    for crashed in [false, true] {
        let dir = t.damaged_copy(crashed, |root| {
            let f = std::fs::OpenOptions::new().write(true).open(root.join(&last)).unwrap();
            f.set_len(CL_FILE as u64 / 2).unwrap();
        });
        let e = MessageStore::open(config(dir.path())).err().expect("a CommitLog file of half the size is refused");
        let e = e.to_string();
        assert!(e.contains(&file_name(&last)), "crashed {crashed}: the error names {}: {e}", last.display());
        for f in &t.files {
            assert!(dir.path().join(f).exists(), "crashed {crashed}: {} was kept", f.display());
        }
        assert_eq!(std::fs::metadata(dir.path().join(&last)).unwrap().len(), CL_FILE as u64 / 2);
    }
    assert!(background_panics().is_empty());
}

/// A checkpoint of 0xFF bytes holds -1 for every time (long past); one ten
/// years ahead is not trusted. Either way the store starts, after a clean
/// stop or a crash, with every message, and takes new ones.
#[test]
fn a_checkpoint_of_ones_or_from_the_future_keeps_every_message() {
    let t = build_template();
    let future = rmq::common::time::now_millis() + 10 * 365 * 24 * 3600 * 1000;
    let mut ahead = vec![0u8; 4096];
    for at in [0, 8, 16] {
        ahead[at..at + 8].copy_from_slice(&future.to_be_bytes());
    }
    for (what, content) in [("0xFF", vec![0xFFu8; 4096]), ("ten years ahead", ahead)] {
        for crashed in [false, true] {
            let dir = t.damaged_copy(crashed, |root| std::fs::write(root.join("checkpoint"), &content).unwrap());
            let store = MessageStore::open(config(dir.path())).unwrap_or_else(|e| panic!("{what}, {crashed}: {e}"));
            let got = read_all(&store);
            let lost = missing(&t.sent, &got);
            assert!(got == t.sent, "a checkpoint of {what}, crashed {crashed}: {lost} messages lost, or others found");
            put_survives_a_restart(dir.path(), store);
            let after = std::fs::read(dir.path().join("checkpoint")).unwrap();
            let physic = i64::from_be_bytes(after[0..8].try_into().unwrap());
            println!("a checkpoint of {what}, crashed {crashed}: its CommitLog time is {physic} after a restart");
        }
    }
}

/// A deterministic stand-in for random bytes.
fn garbage(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// A ConsumeQueue file replaced by random bytes (of the same size), in the
/// middle of TopicA-0 or the only file of TopicB-1. The store opens, never
/// serves a record that does not decode, and serves every message
/// indexed elsewhere. What the garbage indexed: the last file of a queue is
/// checked at start and rebuilt from the CommitLog when damaged, so all of
/// TopicB-1 is served; a file in the middle is not read at start, so its
/// messages are skipped (never served wrong) until the queue is rebuilt.
#[test]
fn a_consume_queue_file_of_garbage_never_serves_a_bad_record() {
    let t = build_template();
    let cases = [
        ("consumequeue/TopicA/0/00000000000000002000", "TopicA", 0, 100..200),
        ("consumequeue/TopicB/1/00000000000000000000", "TopicB", 1, 0..20),
    ];
    for (victim, topic, qid, indexed) in cases {
        for crashed in [false, true] {
            let dir = t.damaged_copy(crashed, |root| {
                std::fs::write(root.join(victim), garbage(CQ_FILE, 0x9E37_79B9_7F4A_7C15)).unwrap()
            });
            let store = MessageStore::open(config(dir.path())).unwrap_or_else(|e| panic!("{victim}, {crashed}: {e}"));
            let got = read_all(&store);
            let mut lost = 0;
            for ((tp, q), msgs) in &t.sent {
                for (offset, body) in msgs {
                    let served = got.get(&(tp.clone(), *q)).and_then(|m| m.get(offset)) == Some(body);
                    if tp == topic && *q == qid && indexed.contains(offset) {
                        lost += usize::from(!served);
                    } else {
                        assert!(served, "{victim}, crashed {crashed}: {tp}-{q} offset {offset} is served");
                    }
                }
            }
            println!(
                "{victim} of garbage, crashed {crashed}: {lost} of the {} messages it indexed not served",
                indexed.end - indexed.start
            );
            if topic == "TopicB" {
                assert_eq!(lost, 0, "{victim}, crashed {crashed}: the damaged last file is rebuilt");
            }
            put_survives_a_restart(dir.path(), store);
        }
    }
}

// ---------------------------------------------------------------------------
// Damage that earlier builds mishandled.

/// Where the bodies of the records of a CommitLog file start, in order.
fn body_positions(file: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Ok(r) = message::parse_record(&file[at..], false) {
        out.push(r.body.as_ptr() as usize - file.as_ptr() as usize);
        at += r.store_size as usize;
    }
    out
}

/// Flips a byte in the body of the `nth` record of the CommitLog file `rel`.
fn flip_body_byte(root: &Path, rel: &Path, nth: usize) {
    let mut bytes = std::fs::read(root.join(rel)).unwrap();
    let at = body_positions(&bytes)[nth] + 2;
    bytes[at] ^= 0x20;
    std::fs::write(root.join(rel), &bytes).unwrap();
}

/// A unit whose CommitLog offset has its sign bit flipped: `get_message`
/// computes `max_phy - unit.commit_log_offset`
/// (src/store/message_store.rs, `in_disk`), which overflows: a panic with
/// overflow checks (debug builds), a wrong value without.
#[test]
fn a_sign_flipped_consume_queue_unit_does_not_panic_a_read() {
    let t = build_template();
    for crashed in [false, true] {
        let dir = t.damaged_copy(crashed, |root| {
            let path = root.join("consumequeue/TopicA/0/00000000000000000000");
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[23 * 20] ^= 0x80;
            std::fs::write(&path, &bytes).unwrap();
        });
        let store = MessageStore::open(config(dir.path())).unwrap();
        read_all(&store);
    }
}

/// A clean start walks the last three CommitLog files only: a record
/// damaged in an older file is checked when read, and never served.
#[test]
fn a_clean_start_never_serves_older_records_that_fail_their_crc() {
    let t = build_template();
    let first = &t.commit_log_data_files()[0];
    let dir = t.damaged_copy(false, |root| flip_body_byte(root, first, 3));
    match MessageStore::open(config(dir.path())) {
        Ok(store) => drop(read_all(&store)),
        Err(e) => assert!(e.to_string().contains(&file_name(first)), "{e}"),
    }
}

/// After a clean stop everything was flushed, so damage is not a torn
/// tail: recovery refuses it rather than cut the flushed messages after it.
#[test]
fn damage_in_the_last_commit_log_file_after_a_clean_stop_is_refused() {
    let t = build_template();
    let last = t.commit_log_data_files().pop().unwrap();
    let dir = t.damaged_copy(false, |root| flip_body_byte(root, &last, 2));
    match MessageStore::open(config(dir.path())) {
        Ok(store) => {
            let lost = missing(&t.sent, &read_all(&store));
            assert!(lost <= 1, "{lost} messages cut, not only the damaged one");
        }
        Err(e) => assert!(e.to_string().contains(&file_name(&last)), "{e}"),
    }
}

/// Only the newest file can be one whose creation a crash interrupted (short
/// and all zeros, removed at load); the first file emptied is damage, and
/// refused naming it.
#[test]
fn an_emptied_first_commit_log_file_is_refused_naming_it() {
    let t = build_template();
    let first = t.commit_log_data_files()[0].clone();
    for crashed in [false, true] {
        let dir = t.damaged_copy(crashed, |root| std::fs::write(root.join(&first), b"").unwrap());
        match MessageStore::open(config(dir.path())) {
            Ok(store) => {
                let lost = missing(&t.sent, &read_all(&store));
                panic!("crashed {crashed}: the store opened without {} ({lost} messages)", first.display());
            }
            Err(e) => assert!(e.to_string().contains(&file_name(&first)), "{e}"),
        }
    }
}
