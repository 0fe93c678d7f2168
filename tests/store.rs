//! The message store end to end: rolls, reads, statuses, limits, recovery
//! (clean, torn tail, flipped byte), rebuilding and cleaning. Crashes (real
//! SIGKILL, failpoints, power cuts) are in store_durability.rs and
//! failpoints.rs.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use parking_lot::Mutex;
use rmq::common::message::{self, Message, MessageToStore};
use rmq::store::message_store::SCHEDULE_TOPIC;
use rmq::store::{
    FlushDiskType, GetMessageStatus, MessageArrivingListener, MessageFilter, MessageStore, PutMessageStatus,
    StoreConfig,
};

const CL_FILE: usize = 64 * 1024;
const CQ_FILE: usize = 100 * 20;

fn config(dir: &Path) -> StoreConfig {
    StoreConfig {
        mapped_file_size_commit_log: CL_FILE,
        mapped_file_size_consume_queue: CQ_FILE,
        flush_interval_commit_log: Duration::from_millis(20),
        flush_interval_consume_queue: Duration::from_millis(20),
        message_delay_level: "1s 2s 3s".into(),
        ..StoreConfig::at(dir)
    }
}

fn host() -> SocketAddr {
    "127.0.0.1:10911".parse().unwrap()
}

fn msg(topic: &str, queue_id: i32, body: &[u8], tags: Option<&str>) -> MessageToStore {
    let mut m = Message::new(topic, Bytes::copy_from_slice(body));
    if let Some(t) = tags {
        m.set_tags(t);
    }
    m.put_property("UNIQ_KEY", format!("{:x}", body.len()));
    MessageToStore::from_message(
        &m,
        queue_id,
        rmq::common::time::now_millis(),
        "127.0.0.1:5000".parse().unwrap(),
        host(),
    )
}

fn body(i: usize) -> Vec<u8> {
    format!("message-{i:06}-{}", "x".repeat(i % 300)).into_bytes()
}

/// Every message of a queue from `from`, in order, each checked by its CRC.
fn read_all(store: &MessageStore, topic: &str, qid: i32, from: i64) -> Vec<message::MessageExt> {
    support::store_child::read_queue_from(store, topic, qid, from)
}

#[test]
fn messages_round_trip_across_file_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    let mut ids = Vec::new();
    for i in 0..2000 {
        let r = store.put_message(&msg("TopicA", (i % 3) as i32, &body(i), Some("TagA")), true);
        assert_eq!(r.status, PutMessageStatus::PutOk);
        let a = r.appended.unwrap();
        assert_eq!(a.logics_offset, (i / 3) as i64, "queue offsets count per queue");
        ids.push((a.msg_id, a.wrote_offset, i));
    }
    assert!(store.wait_dispatched(Duration::from_secs(10)));
    let files = std::fs::read_dir(dir.path().join("commitlog")).unwrap().count();
    assert!(files >= 5, "only {files} CommitLog files: the test must cross rolls");
    for qid in 0..3 {
        let got = read_all(&store, "TopicA", qid, 0);
        let want: Vec<usize> = (0..2000).filter(|i| i % 3 == qid as usize).collect();
        assert_eq!(got.len(), want.len());
        for (m, i) in got.iter().zip(want) {
            assert_eq!(&m.message.body[..], &body(i)[..]);
            assert_eq!(m.queue_id, qid);
            assert_eq!(m.message.tags(), Some("TagA"));
        }
        assert_eq!(store.max_offset_in_queue("TopicA", qid), got.len() as i64);
    }
    for (id, offset, i) in ids.iter().step_by(97) {
        let (h, off) = message::decode_message_id(id).unwrap();
        assert_eq!((h, off), (host(), *offset));
        let m = store.look_message_by_offset(off).unwrap();
        assert_eq!(&m.message.body[..], &body(*i)[..]);
        assert_eq!(&m.msg_id, id);
    }
}

#[test]
fn get_message_statuses_and_batch_limits() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    let r = store.get_message("g", "Nothing", 0, 0, 32, None);
    assert_eq!(r.status, GetMessageStatus::NoMessageInQueue);
    assert_eq!(store.get_message("g", "Nothing", -1, 0, 32, None).status, GetMessageStatus::NoMatchedLogicQueue);

    for i in 0..100 {
        store.put_message(&msg("T", 0, &body(i), Some(if i % 2 == 0 { "Even" } else { "Odd" })), true);
    }
    assert!(store.wait_dispatched(Duration::from_secs(10)));
    let r = store.get_message("g", "T", 0, 0, 1000, None);
    assert_eq!((r.status, r.message_count()), (GetMessageStatus::Found, 32), "32 messages at most in memory");
    assert_eq!(r.next_begin_offset, 32);
    assert_eq!((r.min_offset, r.max_offset), (0, 100));
    assert_eq!(store.get_message("g", "T", 0, 100, 32, None).status, GetMessageStatus::OffsetOverflowOne);
    let bad = store.get_message("g", "T", 0, 500, 32, None);
    assert_eq!((bad.status, bad.next_begin_offset), (GetMessageStatus::OffsetOverflowBadly, 0));

    struct Tag(i64);
    impl MessageFilter for Tag {
        fn is_matched_by_consume_queue(&self, code: i64) -> bool {
            code == self.0
        }
    }
    let odd = Tag(message::tags_hash("Odd"));
    let r = store.get_message("g", "T", 0, 10, 4, Some(&odd));
    assert_eq!(r.status, GetMessageStatus::Found);
    assert_eq!(r.queue_offsets, vec![11, 13, 15, 17], "tag filtering at the ConsumeQueue");
    let none = Tag(message::tags_hash("Neither"));
    let r = store.get_message("g", "T", 0, 0, 32, Some(&none));
    assert_eq!((r.status, r.next_begin_offset), (GetMessageStatus::NoMatchedMessage, 100));

    for _ in 0..20 {
        store.put_message(&msg("Big", 0, &vec![7u8; 20 * 1024], None), true);
    }
    assert!(store.wait_dispatched(Duration::from_secs(10)));
    let r = store.get_message("g", "Big", 0, 0, 32, None);
    let size = r.messages[0].len();
    let fit = 256 * 1024 / size;
    assert_eq!(r.message_count(), fit, "256 KiB at most in memory ({size}-byte records)");
    assert_eq!(r.buffer_total_size, fit * size);
}

#[test]
fn the_arriving_listener_hears_each_message_with_its_next_offset() {
    struct Record(Mutex<Vec<(String, i32, i64, i64)>>);
    impl MessageArrivingListener for Record {
        fn arriving(&self, topic: &str, qid: i32, next: i64, tags: i64, _ts: i64) {
            self.0.lock().push((topic.to_string(), qid, next, tags));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    let rec = Arc::new(Record(Mutex::new(Vec::new())));
    store.set_arriving_listener(rec.clone());
    store.put_message(&msg("L", 2, b"a", Some("X")), true);
    store.put_message(&msg("L", 2, b"b", Some("X")), true);
    assert!(rmq::common::wait::until(Duration::from_secs(5), || rec.0.lock().len() == 2));
    let got = rec.0.lock().clone();
    assert_eq!(got[0], ("L".to_string(), 2, 1, message::tags_hash("X")));
    assert_eq!(got[1].2, 2);

    // A delayed message is indexed under its delivery time.
    let mut d = msg(SCHEDULE_TOPIC, 1, b"later", Some("X"));
    d.properties = format!("{}\u{1}2\u{2}{}", message::property::DELAY, d.properties);
    let at = store.put_message(&d, true).appended.unwrap().store_timestamp;
    assert!(rmq::common::wait::until(Duration::from_secs(5), || rec.0.lock().len() == 3));
    assert_eq!(rec.0.lock()[2].3, at + 2000, "level 2 of '1s 2s 3s'");
}

#[test]
fn offsets_by_time_and_store_times() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    let mut times = Vec::new();
    for i in 0..20 {
        times.push(store.put_message(&msg("Time", 0, &body(i), None), true).appended.unwrap().store_timestamp);
        if i % 5 == 4 {
            std::thread::sleep(Duration::from_millis(15));
        }
    }
    assert!(store.wait_dispatched(Duration::from_secs(5)));
    assert_eq!(store.earliest_message_time("Time", 0), Some(times[0]));
    assert_eq!(store.message_store_timestamp("Time", 0, 7), Some(times[7]));
    let first_at_or_after = |t: i64| times.iter().position(|&x| x >= t).unwrap_or(times.len()) as i64;
    for probe in [times[0] - 1, times[5], times[12], times[19] + 1000] {
        assert_eq!(store.offset_in_queue_by_time("Time", 0, probe), first_at_or_after(probe), "at {probe}");
    }
}

fn put_many(store: &MessageStore, topic: &str, n: usize) {
    for i in 0..n {
        assert!(store.put_message(&msg(topic, 0, &body(i), None), true).is_ok());
    }
    assert!(store.wait_dispatched(Duration::from_secs(10)));
}

/// The CommitLog file holding `offset` and the position in it.
fn file_of(dir: &Path, offset: i64) -> (std::path::PathBuf, usize) {
    let start = offset - offset % CL_FILE as i64;
    (dir.join("commitlog").join(format!("{start:020}")), (offset - start) as usize)
}

fn mark_crashed(dir: &Path) {
    std::fs::write(dir.join("abort"), b"").unwrap();
}

#[test]
fn a_flipped_byte_is_caught_by_the_crc_and_never_returned() {
    let dir = tempfile::tempdir().unwrap();
    let flipped_at;
    {
        let store = MessageStore::open(config(dir.path())).unwrap();
        put_many(&store, "Crc", 50);
        let victim = store.get_message("g", "Crc", 0, 40, 1, None);
        let m = message::decode(&victim.messages[0], false, false).unwrap();
        flipped_at = m.commit_log_offset;
        store.shutdown();
    }
    let (path, pos) = file_of(dir.path(), flipped_at);
    let mut bytes = std::fs::read(&path).unwrap();
    let size = i32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
    bytes[pos + size - 30] ^= 0x5a; // inside the body or properties, not the header
    std::fs::write(&path, &bytes).unwrap();
    mark_crashed(dir.path());

    let store = MessageStore::open(config(dir.path())).unwrap();
    let got = read_all(&store, "Crc", 0, 0);
    assert_eq!(got.len(), 40, "the log ends before the corrupt record");
    assert!(got.iter().enumerate().all(|(i, m)| m.message.body[..] == body(i)[..]));
    assert_eq!(store.max_phy_offset(), flipped_at);
    // Appends go on from there and are readable.
    assert!(store.put_message(&msg("Crc", 0, b"after", None), true).is_ok());
    assert!(store.wait_dispatched(Duration::from_secs(5)));
    let got = read_all(&store, "Crc", 0, 0);
    assert_eq!(got.len(), 41);
    assert_eq!(&got[40].message.body[..], b"after");
}

#[test]
fn a_torn_tail_is_cut_at_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let last_at;
    {
        let store = MessageStore::open(config(dir.path())).unwrap();
        put_many(&store, "Torn", 30);
        let r = store.get_message("g", "Torn", 0, 29, 1, None);
        last_at = message::decode(&r.messages[0], false, false).unwrap().commit_log_offset;
        store.shutdown();
    }
    // Zero the second half of the last record, as a crash mid-write leaves it.
    let (path, pos) = file_of(dir.path(), last_at);
    let mut bytes = std::fs::read(&path).unwrap();
    let size = i32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
    bytes[pos + size / 2..pos + size].fill(0);
    std::fs::write(&path, &bytes).unwrap();
    mark_crashed(dir.path());

    let store = MessageStore::open(config(dir.path())).unwrap();
    assert_eq!(read_all(&store, "Torn", 0, 0).len(), 29);
    assert_eq!(store.max_offset_in_queue("Torn", 0), 29, "the ConsumeQueue was cut to match");
    assert!(store.put_message(&msg("Torn", 0, b"next", None), true).is_ok());
    assert!(store.wait_dispatched(Duration::from_secs(5)));
    let got = read_all(&store, "Torn", 0, 0);
    assert_eq!((got.len(), &got[29].message.body[..]), (30, &b"next"[..]));
    assert_eq!(got[29].queue_offset, 29);
}

#[test]
fn consume_queues_are_rebuilt_from_the_commit_log() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = MessageStore::open(config(dir.path())).unwrap();
        for i in 0..600 {
            store.put_message(&msg("Rebuild", (i % 2) as i32, &body(i), None), true);
        }
        assert!(store.wait_dispatched(Duration::from_secs(10)));
        store.shutdown();
    }
    std::fs::remove_dir_all(dir.path().join("consumequeue")).unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    for qid in 0..2 {
        let got = read_all(&store, "Rebuild", qid, 0);
        assert_eq!(got.len(), 300);
        assert!(got.iter().enumerate().all(|(k, m)| m.queue_offset == k as i64));
    }
    // New messages continue the queue offsets.
    let a = store.put_message(&msg("Rebuild", 1, b"more", None), true).appended.unwrap();
    assert_eq!(a.logics_offset, 300);
}

#[test]
fn a_clean_restart_keeps_everything_and_continues_offsets() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = MessageStore::open(config(dir.path())).unwrap();
        put_many(&store, "Clean", 250);
        store.shutdown();
        assert!(!dir.path().join("abort").exists(), "a clean stop removes the abort file");
    }
    let store = MessageStore::open(config(dir.path())).unwrap();
    assert!(dir.path().join("abort").exists(), "a running store has an abort file");
    assert_eq!(read_all(&store, "Clean", 0, 0).len(), 250);
    assert_eq!(store.put_message(&msg("Clean", 0, b"x", None), true).appended.unwrap().logics_offset, 250);
}

#[test]
fn cleaning_removes_only_expired_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.file_reserved_time = Duration::from_secs(3600);
    let store = MessageStore::open(cfg).unwrap();
    put_many(&store, "Old", 1500);
    let mut files: Vec<_> =
        std::fs::read_dir(dir.path().join("commitlog")).unwrap().flatten().map(|e| e.path()).collect();
    files.sort();
    assert!(files.len() >= 5);
    let old = SystemTime::now() - Duration::from_secs(2 * 3600);
    for f in &files[..2] {
        std::fs::File::options().write(true).open(f).unwrap().set_modified(old).unwrap();
    }
    let min_before = store.min_offset_in_queue("Old", 0);
    assert_eq!(store.clean_expired_files(true).unwrap(), 2);
    for f in &files[..2] {
        assert!(!f.exists(), "{} is expired", f.display());
    }
    for f in &files[2..] {
        assert!(f.exists(), "{} is not expired", f.display());
    }
    assert_eq!(store.min_phy_offset(), 2 * CL_FILE as i64);
    let min = store.min_offset_in_queue("Old", 0);
    assert!(min > min_before, "the queue's minimum moved past deleted messages");
    let r = store.get_message("g", "Old", 0, 0, 32, None);
    assert_eq!((r.status, r.next_begin_offset), (GetMessageStatus::OffsetTooSmall, min));
    assert_eq!(read_all(&store, "Old", 0, min).len() as i64, 1500 - min);
    assert_eq!(store.clean_expired_files(true).unwrap(), 0, "nothing else is old enough");
}

#[test]
fn a_sync_flush_that_does_not_finish_in_time_is_flush_disk_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.flush_disk_type = FlushDiskType::SyncFlush;
    cfg.sync_flush_timeout = Duration::ZERO;
    let store = MessageStore::open(cfg).unwrap();
    let statuses: Vec<PutMessageStatus> =
        (0..50).map(|i| store.put_message(&msg("Slow", 0, &body(i), None), true).status).collect();
    assert!(statuses.contains(&PutMessageStatus::FlushDiskTimeout), "{statuses:?}");
    // The messages are stored all the same (the flush only came late).
    assert!(store.wait_dispatched(Duration::from_secs(5)));
    assert_eq!(read_all(&store, "Slow", 0, 0).len(), 50);
    // A put that does not wait (WAIT=false) never reports a timeout.
    assert_eq!(store.put_message(&msg("Slow", 0, b"nowait", None), false).status, PutMessageStatus::PutOk);
}
