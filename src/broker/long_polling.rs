//! Long polling: `PullRequestHoldService` keeps pulls that found nothing,
//! keyed `topic@queueId`, and hands each back to be run again as soon as a
//! matching message is indexed (the store's arriving listener calls
//! [`PullRequestHoldService::notify_message_arriving`] on
//! `ReputMessageService`, so a held pull never waits for the periodic
//! check), when its own timeout comes (Apache answers timeouts only on its
//! 5 s check; we wake at the first deadline), or on the periodic check (5 s;
//! 1 s with short polling).

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::common::time::now_millis;
use crate::common::{ServiceThread, thread};
use crate::remoting::{Channel, RemotingCommand};

/// A pull waiting for messages. RocketMQ: PullRequest (broker side).
pub struct HeldPull {
    pub request: RemotingCommand,
    pub channel: Channel,
    /// When it started waiting (ms).
    pub suspend_timestamp: i64,
    /// How long it may wait (ms).
    pub timeout_millis: i64,
    /// The queue offset it asked for.
    pub pull_from_offset: i64,
    /// Tag hashes it wants; `None` for every message (`*`).
    pub tags_codes: Option<Vec<i64>>,
}

impl HeldPull {
    fn wants(&self, tags_code: Option<i64>) -> bool {
        match (&self.tags_codes, tags_code) {
            (Some(codes), Some(code)) => codes.contains(&code),
            _ => true,
        }
    }
}

/// Runs a held pull again (RocketMQ: executeRequestWhenWakeup).
pub type Wake = Arc<dyn Fn(HeldPull) + Send + Sync>;
/// The queue's max offset in the store.
pub type MaxOffset = Arc<dyn Fn(&str, i32) -> i64 + Send + Sync>;

/// Held pulls by (topic, queue id).
type HoldTable = Mutex<HashMap<(String, i32), Vec<HeldPull>>>;

pub struct PullRequestHoldService {
    table: Arc<HoldTable>,
    wake: Wake,
    service: ServiceThread,
}

impl PullRequestHoldService {
    /// Starts `PullRequestHoldService`, checking every `check_interval`.
    pub fn start(check_interval: Duration, max_offset: MaxOffset, wake: Wake) -> io::Result<Self> {
        let table: Arc<HoldTable> = Arc::default();
        let (t, w) = (table.clone(), wake.clone());
        let service = ServiceThread::start("PullRequestHoldService", "broker", move |ctx| {
            while !ctx.is_stopped() {
                // Sleep until the periodic check or the first held pull's
                // deadline, whichever is sooner, so a timeout is answered on time.
                let now = now_millis();
                let first_deadline = t.lock().values().flatten().map(|p| p.suspend_timestamp + p.timeout_millis).min();
                let wait = first_deadline
                    .map(|d| Duration::from_millis((d - now).max(1) as u64))
                    .map_or(check_interval, |d| d.min(check_interval));
                thread::doing("waiting to check held pulls");
                ctx.wait_for_running(wait);
                thread::doing("checking held pulls");
                let keys: Vec<(String, i32)> = t.lock().keys().cloned().collect();
                for (topic, qid) in keys {
                    let max = max_offset(&topic, qid);
                    notify(&t, &w, &topic, qid, max, None);
                }
            }
        })?;
        Ok(PullRequestHoldService { table, wake, service })
    }

    /// Holds a pull until a message for it arrives or it times out.
    pub fn suspend(&self, topic: &str, queue_id: i32, pull: HeldPull) {
        self.table.lock().entry((topic.to_string(), queue_id)).or_default().push(pull);
        // The new pull's deadline may come before the planned check.
        self.service.wakeup();
    }

    /// A message reached `topic`/`queue_id`, whose max offset is now
    /// `max_offset`: wakes the held pulls it satisfies, and those timed out.
    pub fn notify_message_arriving(&self, topic: &str, queue_id: i32, max_offset: i64, tags_code: Option<i64>) {
        notify(&self.table, &self.wake, topic, queue_id, max_offset, tags_code);
    }

    /// Pulls held now.
    pub fn held(&self) -> usize {
        self.table.lock().values().map(Vec::len).sum()
    }

    /// Stops the thread and runs every held pull once more, so each gets an
    /// answer (the broker is going away).
    pub fn shutdown(&self) {
        self.service.shutdown();
        let all: Vec<HeldPull> = self.table.lock().drain().flat_map(|(_, v)| v).collect();
        for p in all {
            (self.wake)(p);
        }
    }
}

fn notify(table: &HoldTable, wake: &Wake, topic: &str, queue_id: i32, max_offset: i64, tags_code: Option<i64>) {
    let now = now_millis();
    let ready: Vec<HeldPull> = {
        let mut t = table.lock();
        let Some(list) = t.get_mut(&(topic.to_string(), queue_id)) else { return };
        let mut ready = Vec::new();
        let mut keep = Vec::new();
        for p in list.drain(..) {
            let arrived = max_offset > p.pull_from_offset && p.wants(tags_code);
            // Strictly past: store times are whole milliseconds, and a pull must
            // be held for at least its timeout.
            let expired = now > p.suspend_timestamp + p.timeout_millis;
            if arrived || expired || !p.channel.is_active() {
                ready.push(p);
            } else {
                keep.push(p);
            }
        }
        if keep.is_empty() {
            t.remove(&(topic.to_string(), queue_id));
        } else {
            *list = keep;
        }
        ready
    };
    for p in ready {
        if p.channel.is_active() {
            wake(p);
        }
    }
}
