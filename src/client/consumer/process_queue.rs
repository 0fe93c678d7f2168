//! `ProcessQueue`: the messages pulled from one queue and not yet consumed,
//! in queue-offset order, with the counts flow control reads, the dropped
//! and lock flags, and (orderly) the messages being consumed now.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::common::message::{MessageExt, property};
use crate::common::time::now_millis;
use crate::remoting::body::ProcessQueueInfo;

/// A broker lock counts as lost after this long without renewal (RocketMQ:
/// rocketmq.client.rebalance.lockMaxLiveTime, 30 s).
pub const LOCK_MAX_LIVE_TIME: Duration = Duration::from_secs(30);
/// How often orderly consumers renew their locks (RocketMQ:
/// rocketmq.client.rebalance.lockInterval, 20 s).
pub const LOCK_RENEW_INTERVAL: Duration = Duration::from_secs(20);
/// A queue not pulled for this long is dropped by the next rebalance
/// (RocketMQ: rocketmq.client.pull.pullMaxIdleTime, 120 s).
pub const PULL_MAX_IDLE_TIME: Duration = Duration::from_secs(120);

struct Held {
    msg: MessageExt,
    /// When a listener got the message (0: not yet).
    consume_start: i64,
}

#[derive(Default)]
struct State {
    msgs: BTreeMap<i64, Held>,
    /// Orderly: taken by the listener, not committed yet.
    consuming: BTreeMap<i64, Held>,
    msg_count: usize,
    msg_size: u64,
    queue_offset_max: i64,
    /// A consume request is queued or running (concurrently: set by the
    /// first put; orderly: cleared when nothing is left to take).
    consuming_flag: bool,
    /// How far the broker's max offset was ahead at the last put.
    msg_acc_cnt: i64,
}

/// RocketMQ: ProcessQueue.
pub struct ProcessQueue {
    state: Mutex<State>,
    /// Orderly: held while the listener runs, so a rebalance does not unlock
    /// the queue in the middle of a batch (RocketMQ: consumeLock).
    pub consume_lock: Mutex<()>,
    dropped: AtomicBool,
    locked: AtomicBool,
    last_lock_timestamp: AtomicI64,
    last_pull_timestamp: AtomicI64,
    last_consume_timestamp: AtomicI64,
    try_unlock_times: AtomicI64,
}

impl Default for ProcessQueue {
    fn default() -> Self {
        let now = now_millis();
        ProcessQueue {
            state: Mutex::default(),
            consume_lock: Mutex::new(()),
            dropped: AtomicBool::new(false),
            locked: AtomicBool::new(false),
            last_lock_timestamp: AtomicI64::new(now),
            last_pull_timestamp: AtomicI64::new(now),
            last_consume_timestamp: AtomicI64::new(now),
            try_unlock_times: AtomicI64::new(0),
        }
    }
}

impl ProcessQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds pulled messages; true when a consume request should be
    /// dispatched (nothing was in flight for this queue).
    pub fn put_messages(&self, msgs: &[MessageExt]) -> bool {
        let mut s = self.state.lock();
        for m in msgs {
            if s.msgs.insert(m.queue_offset, Held { msg: m.clone(), consume_start: 0 }).is_none() {
                s.msg_count += 1;
                s.msg_size += m.message.body.len() as u64;
                s.queue_offset_max = m.queue_offset;
            }
        }
        let mut dispatch = false;
        if !s.msgs.is_empty() && !s.consuming_flag {
            s.consuming_flag = true;
            dispatch = true;
        }
        if let Some(last) = msgs.last()
            && let Some(max) = last.property(property::MAX_OFFSET).and_then(|v| v.parse::<i64>().ok())
        {
            s.msg_acc_cnt = (max - last.queue_offset).max(0);
        }
        dispatch
    }

    /// The offset distance between the first and last cached message.
    pub fn max_span(&self) -> i64 {
        let s = self.state.lock();
        match (s.msgs.first_key_value(), s.msgs.last_key_value()) {
            (Some((a, _)), Some((b, _))) => b - a,
            _ => 0,
        }
    }

    /// Removes consumed messages; returns the offset to commit: the first
    /// still cached, or one past the highest put when none is left; -1 when
    /// nothing was cached.
    pub fn remove_messages(&self, msgs: &[MessageExt]) -> i64 {
        let mut s = self.state.lock();
        self.last_consume_timestamp.store(now_millis(), Ordering::Relaxed);
        if s.msgs.is_empty() {
            return -1;
        }
        let mut result = s.queue_offset_max + 1;
        for m in msgs {
            if let Some(h) = s.msgs.remove(&m.queue_offset) {
                s.msg_count -= 1;
                s.msg_size = s.msg_size.saturating_sub(h.msg.message.body.len() as u64);
            }
        }
        if let Some((first, _)) = s.msgs.first_key_value() {
            result = *first;
        }
        result
    }

    /// Records that the listener got these messages now (for expiry).
    pub fn mark_consume_start(&self, msgs: &[MessageExt]) {
        let now = now_millis();
        let mut s = self.state.lock();
        for m in msgs {
            if let Some(h) = s.msgs.get_mut(&m.queue_offset) {
                h.consume_start = now;
            }
        }
    }

    /// The first cached message when a listener has had it longer than
    /// `timeout` (RocketMQ: cleanExpiredMsg's check).
    pub fn first_expired(&self, timeout: Duration) -> Option<MessageExt> {
        let s = self.state.lock();
        let (_, h) = s.msgs.first_key_value()?;
        (h.consume_start > 0 && now_millis() - h.consume_start > timeout.as_millis() as i64).then(|| h.msg.clone())
    }

    /// Orderly: moves up to `n` messages to the consuming set and returns
    /// them; with none left, clears the consuming flag.
    pub fn take_messages(&self, n: usize) -> Vec<MessageExt> {
        let now = now_millis();
        self.last_consume_timestamp.store(now, Ordering::Relaxed);
        let mut s = self.state.lock();
        let mut out = Vec::with_capacity(n.min(s.msgs.len()));
        while out.len() < n {
            let Some((offset, mut h)) = s.msgs.pop_first() else { break };
            h.consume_start = now;
            out.push(h.msg.clone());
            s.consuming.insert(offset, h);
        }
        if out.is_empty() {
            s.consuming_flag = false;
        }
        out
    }

    /// Orderly: the taken messages are consumed; returns the offset to
    /// commit (one past the last taken), or -1 when none was taken.
    pub fn commit(&self) -> i64 {
        let mut s = self.state.lock();
        let Some((&last, _)) = s.consuming.last_key_value() else { return -1 };
        let taken = std::mem::take(&mut s.consuming);
        s.msg_count -= taken.len();
        let size: u64 = taken.values().map(|h| h.msg.message.body.len() as u64).sum();
        s.msg_size = s.msg_size.saturating_sub(size);
        last + 1
    }

    /// Orderly: puts every taken message back to be consumed again.
    pub fn rollback(&self) {
        let mut s = self.state.lock();
        let taken = std::mem::take(&mut s.consuming);
        s.msgs.extend(taken);
    }

    /// Orderly: puts `msgs` back from the consuming set, as given (with
    /// their updated reconsume times; RocketMQ: makeMessageToConsumeAgain).
    pub fn make_messages_to_consume_again(&self, msgs: &[MessageExt]) {
        let mut s = self.state.lock();
        for m in msgs {
            if let Some(h) = s.consuming.remove(&m.queue_offset) {
                s.msgs.insert(m.queue_offset, Held { msg: m.clone(), consume_start: h.consume_start });
            }
        }
    }

    /// Messages cached or being consumed (RocketMQ: hasTempMessage).
    pub fn has_temp_message(&self) -> bool {
        let s = self.state.lock();
        !s.msgs.is_empty() || !s.consuming.is_empty()
    }

    pub fn cached_count(&self) -> usize {
        self.state.lock().msg_count
    }

    pub fn cached_size(&self) -> u64 {
        self.state.lock().msg_size
    }

    /// Forgets every cached message (after a drop or an offset reset).
    pub fn clear(&self) {
        let mut s = self.state.lock();
        s.msgs.clear();
        s.consuming.clear();
        s.msg_count = 0;
        s.msg_size = 0;
        s.queue_offset_max = 0;
        s.consuming_flag = false;
    }

    pub fn is_dropped(&self) -> bool {
        self.dropped.load(Ordering::Acquire)
    }
    pub fn set_dropped(&self, d: bool) {
        self.dropped.store(d, Ordering::Release);
    }
    pub fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Acquire)
    }
    /// Sets the broker-lock flag; a lock taken also renews its timestamp.
    pub fn set_locked(&self, l: bool) {
        if l {
            self.last_lock_timestamp.store(now_millis(), Ordering::Relaxed);
        }
        self.locked.store(l, Ordering::Release);
    }
    pub fn is_lock_expired(&self) -> bool {
        now_millis() - self.last_lock_timestamp.load(Ordering::Relaxed) > LOCK_MAX_LIVE_TIME.as_millis() as i64
    }
    pub fn set_last_pull_timestamp(&self, t: i64) {
        self.last_pull_timestamp.store(t, Ordering::Relaxed);
    }
    pub fn is_pull_expired(&self) -> bool {
        now_millis() - self.last_pull_timestamp.load(Ordering::Relaxed) > PULL_MAX_IDLE_TIME.as_millis() as i64
    }
    pub fn inc_try_unlock_times(&self) {
        self.try_unlock_times.fetch_add(1, Ordering::Relaxed);
    }

    /// The running-info view of this queue (RocketMQ: fillProcessQueueInfo).
    pub fn info(&self, commit_offset: i64) -> ProcessQueueInfo {
        let s = self.state.lock();
        ProcessQueueInfo {
            commit_offset,
            cached_msg_min_offset: s.msgs.first_key_value().map_or(0, |(k, _)| *k),
            cached_msg_max_offset: s.msgs.last_key_value().map_or(0, |(k, _)| *k),
            cached_msg_count: s.msgs.len() as i32,
            cached_msg_size_in_mib: (s.msg_size / (1024 * 1024)) as i32,
            transaction_msg_min_offset: s.consuming.first_key_value().map_or(0, |(k, _)| *k),
            transaction_msg_max_offset: s.consuming.last_key_value().map_or(0, |(k, _)| *k),
            transaction_msg_count: s.consuming.len() as i32,
            locked: self.is_locked(),
            try_unlock_times: self.try_unlock_times.load(Ordering::Relaxed),
            last_lock_timestamp: self.last_lock_timestamp.load(Ordering::Relaxed),
            droped: self.is_dropped(),
            last_pull_timestamp: self.last_pull_timestamp.load(Ordering::Relaxed),
            last_consume_timestamp: self.last_consume_timestamp.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::message::Message;

    fn msg(offset: i64, body: &str) -> MessageExt {
        MessageExt {
            message: Message::new("T", body.to_string()),
            queue_id: 0,
            store_size: 0,
            queue_offset: offset,
            sys_flag: 0,
            born_timestamp: 0,
            born_host: "127.0.0.1:1".parse().expect("addr"),
            store_timestamp: 0,
            store_host: "127.0.0.1:2".parse().expect("addr"),
            msg_id: String::new(),
            commit_log_offset: offset * 100,
            body_crc: 0,
            reconsume_times: 0,
            prepared_transaction_offset: 0,
        }
    }

    #[test]
    fn put_remove_and_commit_offsets() {
        let pq = ProcessQueue::new();
        let batch: Vec<_> = (10..15).map(|o| msg(o, "ab")).collect();
        assert!(pq.put_messages(&batch), "the first put dispatches");
        assert!(!pq.put_messages(&[msg(15, "cd")]), "a request is already in flight");
        assert_eq!((pq.cached_count(), pq.cached_size(), pq.max_span()), (6, 12, 5));
        assert_eq!(pq.remove_messages(&batch[1..3]), 10, "offset 10 is still cached");
        assert_eq!(pq.remove_messages(&batch[..1]), 13);
        assert_eq!(pq.remove_messages(&[batch[3].clone(), batch[4].clone(), msg(15, "cd")]), 16);
        assert_eq!((pq.cached_count(), pq.cached_size()), (0, 0));
        assert_eq!(pq.remove_messages(&batch), -1, "nothing cached");
    }

    #[test]
    fn orderly_take_commit_rollback() {
        let pq = ProcessQueue::new();
        pq.put_messages(&(0..5).map(|o| msg(o, "x")).collect::<Vec<_>>());
        let first = pq.take_messages(2);
        assert_eq!(first.iter().map(|m| m.queue_offset).collect::<Vec<_>>(), vec![0, 1]);
        pq.rollback();
        assert_eq!(pq.take_messages(3).iter().map(|m| m.queue_offset).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(pq.commit(), 3);
        assert_eq!(pq.cached_count(), 2);
        let again = pq.take_messages(2);
        pq.make_messages_to_consume_again(&again[1..]);
        assert_eq!(pq.commit(), 4, "only offset 3 stays taken");
        assert_eq!(pq.take_messages(5).len(), 1);
        assert_eq!(pq.commit(), 5);
        assert!(pq.take_messages(1).is_empty());
        assert!(pq.put_messages(&[msg(5, "x")]), "an empty take clears the consuming flag");
    }

    #[test]
    fn expiry_needs_a_started_consumption() {
        let pq = ProcessQueue::new();
        let m = msg(1, "x");
        pq.put_messages(std::slice::from_ref(&m));
        assert!(pq.first_expired(Duration::ZERO).is_none(), "not handed to a listener yet");
        pq.mark_consume_start(std::slice::from_ref(&m));
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(pq.first_expired(Duration::ZERO).map(|m| m.queue_offset), Some(1));
        assert!(pq.first_expired(Duration::from_secs(60)).is_none());
    }
}
