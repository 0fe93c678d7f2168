//! Queue locks for orderly consumption (RocketMQ: RebalanceLockManager and
//! the LOCK_BATCH_MQ / UNLOCK_BATCH_MQ requests of AdminBrokerProcessor).
//!
//! A lock belongs to one client id for one (consumer group, message queue).
//! It lives [`DEFAULT_LOCK_MAX_LIVE_TIME`] (Apache's
//! `rocketmq.broker.rebalance.lockMaxLiveTime`, 60 s) after it was last taken
//! or renewed; the holder locking again renews it, anyone may take it once it
//! has expired, and only the holder can release it. Orderly consumers renew
//! their locks every 20 s, so a lock outlives its holder by at most a minute.
//!
//! Each broker has its own [`RebalanceLockManager`], found with
//! [`lock_manager`]. Tests shorten the live time of one broker's locks with
//! `lock_manager(&shared).set_max_live_time(..)`; other brokers in the same
//! process keep theirs.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::broker::controller::BrokerShared;
use crate::remoting::body::{LockBatchRequestBody, LockBatchResponseBody, MessageQueue, UnlockBatchRequestBody};
use crate::remoting::code::{request, response};
use crate::remoting::json::{from_body, to_body};
use crate::remoting::{Channel, RemotingCommand};

/// How long a lock lives without renewal (Apache's default of
/// `rocketmq.broker.rebalance.lockMaxLiveTime`).
pub const DEFAULT_LOCK_MAX_LIVE_TIME: Duration = Duration::from_secs(60);

/// Who holds a queue and since when (taken or last renewed).
struct LockEntry {
    client_id: String,
    last_update: Instant,
}

impl LockEntry {
    fn expired(&self, now: Instant, max_live: Duration) -> bool {
        now.saturating_duration_since(self.last_update) > max_live
    }

    fn held_by(&self, client_id: &str, now: Instant, max_live: Duration) -> bool {
        self.client_id == client_id && !self.expired(now, max_live)
    }
}

/// The queue locks of one broker, by consumer group then queue.
pub struct RebalanceLockManager {
    max_live_ms: AtomicU64,
    table: Mutex<HashMap<String, HashMap<MessageQueue, LockEntry>>>,
}

impl Default for RebalanceLockManager {
    fn default() -> Self {
        Self::with_max_live_time(DEFAULT_LOCK_MAX_LIVE_TIME)
    }
}

impl RebalanceLockManager {
    pub fn new() -> Self {
        Self::default()
    }

    /// A manager whose locks expire `max_live` after they were last renewed.
    pub fn with_max_live_time(max_live: Duration) -> Self {
        RebalanceLockManager { max_live_ms: AtomicU64::new(millis(max_live)), table: Mutex::new(HashMap::new()) }
    }

    pub fn max_live_time(&self) -> Duration {
        Duration::from_millis(self.max_live_ms.load(Ordering::Relaxed))
    }

    /// Changes how long locks live, for locks already held too (tests use a
    /// short one to see a lock expire). Millisecond precision.
    pub fn set_max_live_time(&self, max_live: Duration) {
        self.max_live_ms.store(millis(max_live), Ordering::Relaxed);
    }

    /// Locks for `client_id` whichever of `mqs` are free, expired or already
    /// its own (renewing those), and returns the queues of `mqs` it now holds.
    pub fn try_lock_batch<'a>(
        &self,
        group: &str,
        mqs: impl IntoIterator<Item = &'a MessageQueue>,
        client_id: &str,
    ) -> BTreeSet<MessageQueue> {
        let max_live = self.max_live_time();
        let now = Instant::now();
        let mut table = self.table.lock();
        let locks = table.entry(group.to_string()).or_default();
        let mut locked = BTreeSet::new();
        for mq in mqs {
            match locks.get_mut(mq) {
                Some(e) if e.held_by(client_id, now, max_live) => e.last_update = now,
                Some(e) if e.expired(now, max_live) => {
                    log::warn!(
                        "lock of {mq:?} in group {group} expired (held by {}); {client_id} takes it",
                        e.client_id
                    );
                    e.client_id = client_id.to_string();
                    e.last_update = now;
                }
                Some(e) => {
                    log::debug!("{mq:?} in group {group} is locked by {}, not {client_id}", e.client_id);
                    continue;
                }
                None => {
                    locks.insert(mq.clone(), LockEntry { client_id: client_id.to_string(), last_update: now });
                }
            }
            locked.insert(mq.clone());
        }
        if locks.is_empty() {
            table.remove(group);
        }
        locked
    }

    /// Releases those of `mqs` that `client_id` holds (expired or not); locks
    /// of other clients stay.
    pub fn unlock_batch<'a>(&self, group: &str, mqs: impl IntoIterator<Item = &'a MessageQueue>, client_id: &str) {
        let mut table = self.table.lock();
        let Some(locks) = table.get_mut(group) else { return };
        for mq in mqs {
            match locks.get(mq) {
                Some(e) if e.client_id == client_id => {
                    locks.remove(mq);
                }
                Some(e) => {
                    log::warn!("{client_id} cannot unlock {mq:?} in group {group}: {} holds it", e.client_id)
                }
                None => {}
            }
        }
        if locks.is_empty() {
            table.remove(group);
        }
    }

    /// The client holding an unexpired lock on `mq` for `group`.
    pub fn holder(&self, group: &str, mq: &MessageQueue) -> Option<String> {
        let max_live = self.max_live_time();
        let now = Instant::now();
        let table = self.table.lock();
        let e = table.get(group)?.get(mq)?;
        (!e.expired(now, max_live)).then(|| e.client_id.clone())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The lock managers of the brokers in this process, by store host
/// (ip:listenPort, unique per running broker).
/// The lock manager of broker `b`.
pub fn lock_manager(b: &BrokerShared) -> Arc<RebalanceLockManager> {
    b.locks.clone()
}

/// Answers LOCK_BATCH_MQ and UNLOCK_BATCH_MQ.
pub fn process(b: &BrokerShared, _channel: &Channel, req: &RemotingCommand) -> Option<RemotingCommand> {
    let body = req.body.bytes();
    match req.code {
        request::LOCK_BATCH_MQ => {
            let r: LockBatchRequestBody = match from_body(&body) {
                Ok(r) => r,
                Err(e) => {
                    return Some(RemotingCommand::error(
                        response::SYSTEM_ERROR,
                        format!("bad LockBatchRequestBody: {e}"),
                    ));
                }
            };
            let lock_ok_mq_set = lock_manager(b).try_lock_batch(&r.consumer_group, &r.mq_set, &r.client_id);
            let reply = LockBatchResponseBody { lock_ok_mq_set };
            Some(RemotingCommand::response(response::SUCCESS, None).with_body(to_body(&reply)))
        }
        request::UNLOCK_BATCH_MQ => {
            let r: UnlockBatchRequestBody = match from_body(&body) {
                Ok(r) => r,
                Err(e) => {
                    return Some(RemotingCommand::error(
                        response::SYSTEM_ERROR,
                        format!("bad UnlockBatchRequestBody: {e}"),
                    ));
                }
            };
            lock_manager(b).unlock_batch(&r.consumer_group, &r.mq_set, &r.client_id);
            Some(RemotingCommand::response(response::SUCCESS, None))
        }
        code => Some(RemotingCommand::error(
            response::REQUEST_CODE_NOT_SUPPORTED,
            format!(" request type {code} not supported"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(i: i32) -> MessageQueue {
        MessageQueue { topic: "T".into(), broker_name: "broker-a".into(), queue_id: i }
    }

    #[test]
    fn lock_renew_steal_after_expiry_and_unlock() {
        let m = RebalanceLockManager::new();
        let both = [q(0), q(1)];
        assert_eq!(m.try_lock_batch("g", &both, "A"), both.iter().cloned().collect());
        assert!(m.try_lock_batch("g", &[q(1), q(2)], "B").into_iter().eq([q(2)]));
        // Another group is another table.
        assert_eq!(m.try_lock_batch("other", &[q(1)], "B").len(), 1);
        // B cannot release A's lock; A can.
        m.unlock_batch("g", &[q(1)], "B");
        assert_eq!(m.holder("g", &q(1)).as_deref(), Some("A"));
        m.unlock_batch("g", &[q(1)], "A");
        assert_eq!(m.holder("g", &q(1)), None);
        assert_eq!(m.try_lock_batch("g", &[q(1)], "B").len(), 1);
        // Expired locks go to whoever asks.
        m.set_max_live_time(Duration::ZERO);
        assert!(crate::common::wait::until(Duration::from_secs(5), || m.holder("g", &q(0)).is_none()));
        assert_eq!(m.try_lock_batch("g", &[q(0)], "B").len(), 1);
    }

    #[test]
    fn unlocking_everything_drops_the_group() {
        let m = RebalanceLockManager::new();
        m.try_lock_batch("g", &[q(0)], "A");
        m.unlock_batch("g", &[q(0)], "A");
        assert!(m.table.lock().is_empty());
        assert!(m.try_lock_batch("g", &[], "A").is_empty());
        assert!(m.table.lock().is_empty());
    }
}
