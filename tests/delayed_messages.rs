//! Delayed messages (ScheduleMessageService) against a real store: each
//! delivered exactly once, even when the store answers FLUSH_DISK_TIMEOUT.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rmq::broker::schedule::{ScheduleMessageService, to_schedule_topic};
use rmq::common::message::{Message, MessageToStore};
use rmq::store::message_store::SCHEDULE_TOPIC;
use rmq::store::{FlushDiskType, GetMessageStatus, MessageStore, PutMessageStatus, StoreConfig};

fn delayed(topic: &str, i: usize) -> MessageToStore {
    let host = "127.0.0.1:10911".parse().unwrap();
    let m = Message::new(topic, Bytes::from(format!("delayed-{i}")));
    let mut s = MessageToStore::from_message(&m, 0, rmq::common::time::now_millis(), host, host);
    to_schedule_topic(&mut s, 1, 2);
    s
}

fn count(store: &MessageStore, topic: &str) -> usize {
    let r = store.get_message("g", topic, 0, 0, 1000, None);
    if r.status == GetMessageStatus::Found { r.message_count() } else { 0 }
}

/// A put answered FLUSH_DISK_TIMEOUT stored the message all the same: the
/// schedule service must move on, not put it again on its next round.
#[test]
fn a_flush_timeout_does_not_deliver_a_delayed_message_twice() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        flush_disk_type: FlushDiskType::SyncFlush,
        sync_flush_timeout: Duration::ZERO,
        mapped_file_size_commit_log: 1024 * 1024,
        message_delay_level: "1s 2s".into(),
        ..StoreConfig::at(dir.path())
    };
    let store = Arc::new(MessageStore::open(config).unwrap());
    for i in 0..5 {
        let r = store.put_message(&delayed("Later", i), false);
        assert_eq!(r.status, PutMessageStatus::PutOk);
    }
    assert!(store.wait_dispatched(Duration::from_secs(5)));
    let service = ScheduleMessageService::start(store.clone(), dir.path().join("delayOffset.json"), 2).unwrap();
    let done = rmq::common::wait::until(Duration::from_secs(10), || {
        String::from_utf8_lossy(&service.offsets_json()).contains("\"1\":5")
    });
    assert!(done, "level 1 did not reach offset 5: {}", String::from_utf8_lossy(&service.offsets_json()));
    assert!(store.wait_dispatched(Duration::from_secs(5)));
    assert_eq!(count(&store, "Later"), 5, "each delayed message delivered once");
    assert_eq!(store.max_offset_in_queue(SCHEDULE_TOPIC, 0), 5);
    service.shutdown();
}
