//! Latency fault tolerance (RocketMQ: MQFaultStrategy with
//! LatencyFaultToleranceImpl): every send's latency, or a failure, marks its
//! broker unavailable for a while, and queue selection prefers brokers that
//! are available, so a slow or dead broker stops taking sends until its time
//! is up. Times are milliseconds passed in by the caller, so the table can be
//! tested without sleeping.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::RwLock;

use crate::remoting::body::MessageQueue;

/// Latency thresholds in ms (RocketMQ: latencyMax), paired with [`NOT_AVAILABLE_DURATION`].
pub const LATENCY_MAX: [i64; 7] = [50, 100, 550, 1000, 2000, 3000, 15000];

/// How long (ms) a broker is avoided after a send as slow as the paired
/// [`LATENCY_MAX`] entry (RocketMQ: notAvailableDuration).
pub const NOT_AVAILABLE_DURATION: [i64; 7] = [0, 0, 30000, 60000, 120000, 180000, 600000];

/// The latency (ms) a failed send counts as: isolates its broker for 600 s.
pub const ISOLATION_LATENCY: i64 = 30000;

/// How long (ms) a broker is avoided after a send that took `latency` ms:
/// the duration of the largest threshold reached, 0 below all of them.
pub fn not_available_duration(latency: i64) -> i64 {
    LATENCY_MAX.iter().zip(NOT_AVAILABLE_DURATION).rev().find(|(max, _)| latency >= **max).map_or(0, |(_, d)| d)
}

/// One broker's last latency and when it may take sends again (RocketMQ: FaultItem).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultItem {
    pub broker_name: String,
    /// The last send's latency, ms.
    pub current_latency: i64,
    /// Epoch ms from which the broker is available again.
    pub start_timestamp: i64,
}

impl FaultItem {
    pub fn is_available(&self, now: i64) -> bool {
        now >= self.start_timestamp
    }
}

/// Broker name -> fault item (RocketMQ: LatencyFaultToleranceImpl).
#[derive(Debug, Default)]
pub struct LatencyFaultTolerance {
    items: RwLock<HashMap<String, FaultItem>>,
    /// Rotates the pick among the better half (RocketMQ: whichItemWorst).
    which_item_worst: AtomicUsize,
}

impl LatencyFaultTolerance {
    /// Records `broker`'s latency; it is unavailable for `not_available` ms from `now`.
    pub fn update_fault_item(&self, broker: &str, current_latency: i64, not_available: i64, now: i64) {
        let item = FaultItem {
            broker_name: broker.to_string(),
            current_latency,
            start_timestamp: now.saturating_add(not_available),
        };
        self.items.write().insert(broker.to_string(), item);
    }

    /// True when `broker` has no fault item or its time is up.
    pub fn is_available(&self, broker: &str, now: i64) -> bool {
        self.items.read().get(broker).is_none_or(|i| i.is_available(now))
    }

    pub fn remove(&self, broker: &str) {
        self.items.write().remove(broker);
    }

    /// `broker`'s fault item, if any.
    pub fn item(&self, broker: &str) -> Option<FaultItem> {
        self.items.read().get(broker).cloned()
    }

    /// The least bad broker when none is available: items ordered available
    /// first, then by latency, then by start time; one of the better half,
    /// taken in turn (the only one when there are fewer than two).
    pub fn pick_one_at_least(&self, now: i64) -> Option<String> {
        let mut items: Vec<FaultItem> = self.items.read().values().cloned().collect();
        items.sort_by_key(|i| (!i.is_available(now), i.current_latency, i.start_timestamp));
        let half = items.len() / 2;
        let i = if half == 0 { 0 } else { self.which_item_worst.fetch_add(1, Ordering::Relaxed) % half };
        items.into_iter().nth(i).map(|i| i.broker_name)
    }
}

/// Queue selection for sends (RocketMQ: MQFaultStrategy): round robin that
/// avoids the broker that just failed, and, when latency fault tolerance is
/// on, brokers still unavailable after a slow or failed send.
#[derive(Debug, Default)]
pub struct FaultStrategy {
    /// RocketMQ: sendLatencyFaultEnable.
    enabled: bool,
    table: LatencyFaultTolerance,
    /// The round-robin position (RocketMQ: sendWhichQueue).
    next_queue: AtomicUsize,
}

impl FaultStrategy {
    pub fn new(enabled: bool) -> Self {
        FaultStrategy { enabled, ..Default::default() }
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The fault items (empty unless enabled).
    pub fn table(&self) -> &LatencyFaultTolerance {
        &self.table
    }

    fn next(&self) -> usize {
        self.next_queue.fetch_add(1, Ordering::Relaxed)
    }

    /// The queue for the next try (RocketMQ: selectOneMessageQueue);
    /// `last_failed` is the broker of the previous try on a retry. `None`
    /// only for an empty list.
    pub fn select(&self, queues: &[MessageQueue], last_failed: Option<&str>, now: i64) -> Option<MessageQueue> {
        if queues.is_empty() {
            return None;
        }
        let n = queues.len();
        let start = self.next();
        let mut rotation = (0..n).map(|i| &queues[(start + i) % n]);
        let retried = |q: &MessageQueue| Some(q.broker_name.as_str()) == last_failed;
        if !self.enabled {
            return Some(rotation.find(|q| !retried(q)).unwrap_or(&queues[start % n]).clone());
        }
        if let Some(q) = rotation.find(|q| !retried(q) && self.table.is_available(&q.broker_name, now)) {
            return Some(q.clone());
        }
        if let Some(broker) = self.table.pick_one_at_least(now) {
            let of_broker: Vec<&MessageQueue> = queues.iter().filter(|q| q.broker_name == broker).collect();
            if of_broker.is_empty() {
                // A broker of another topic: forget it rather than pick it again.
                self.table.remove(&broker);
            } else {
                return Some(of_broker[self.next() % of_broker.len()].clone());
            }
        }
        Some(queues[self.next() % n].clone())
    }

    /// Records a send to `broker` that took `latency` ms, or failed
    /// (`isolation`: counted as [`ISOLATION_LATENCY`]); nothing when disabled
    /// (RocketMQ: updateFaultItem).
    pub fn update_fault_item(&self, broker: &str, latency: i64, isolation: bool, now: i64) {
        if !self.enabled {
            return;
        }
        let duration = not_available_duration(if isolation { ISOLATION_LATENCY } else { latency });
        self.table.update_fault_item(broker, latency, duration, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queues() -> Vec<MessageQueue> {
        ["broker-a", "broker-b"].iter().flat_map(|b| (0..2).map(move |i| MessageQueue::new("T", *b, i))).collect()
    }

    fn brokers_picked(s: &FaultStrategy, last: Option<&str>, now: i64, n: usize) -> Vec<String> {
        (0..n).map(|_| s.select(&queues(), last, now).map(|q| q.broker_name).unwrap_or_default()).collect()
    }

    #[test]
    fn durations_follow_the_latency_steps() {
        let cases = [(0, 0), (49, 0), (100, 0), (549, 0), (550, 30000), (999, 30000), (1000, 60000)];
        for (latency, d) in cases {
            assert_eq!(not_available_duration(latency), d, "latency {latency}");
        }
        assert_eq!(not_available_duration(2999), 120000);
        assert_eq!(not_available_duration(3000), 180000);
        assert_eq!(not_available_duration(ISOLATION_LATENCY), 600000);
        assert_eq!(not_available_duration(15000), 600000);
        assert_eq!(not_available_duration(i64::MAX), 600000);
    }

    #[test]
    fn a_broker_is_unavailable_until_its_start_timestamp() {
        let t = LatencyFaultTolerance::default();
        assert!(t.is_available("a", 0), "unknown brokers are available");
        t.update_fault_item("a", 700, 30000, 1000);
        assert_eq!(t.item("a").map(|i| (i.current_latency, i.start_timestamp)), Some((700, 31000)));
        assert!(!t.is_available("a", 1000));
        assert!(!t.is_available("a", 30999));
        assert!(t.is_available("a", 31000));
        t.update_fault_item("a", 10, 0, 2000);
        assert!(t.is_available("a", 2000), "a later fast send clears it");
        t.remove("a");
        assert_eq!(t.item("a"), None);
    }

    #[test]
    fn pick_one_at_least_prefers_available_then_fast_then_early() {
        let t = LatencyFaultTolerance::default();
        assert_eq!(t.pick_one_at_least(0), None);
        t.update_fault_item("slow", 3000, 180000, 0);
        assert_eq!(t.pick_one_at_least(0).as_deref(), Some("slow"), "the only one");
        t.update_fault_item("fast", 600, 30000, 0);
        assert_eq!(t.pick_one_at_least(0).as_deref(), Some("fast"), "better half of two: the faster");
        t.update_fault_item("ready", 5000, 0, 0);
        t.update_fault_item("late", 600, 60000, 0);
        // Order: ready (available), fast (600, 30000), late (600, 60000), slow.
        let picks: Vec<String> = (0..4).filter_map(|_| t.pick_one_at_least(10)).collect();
        assert_eq!(picks, ["fast", "ready", "fast", "ready"], "the better half in turn");
    }

    #[test]
    fn enabled_selection_skips_unavailable_brokers() {
        let s = FaultStrategy::new(true);
        s.update_fault_item("broker-a", 10, true, 0);
        assert!(brokers_picked(&s, None, 1, 8).iter().all(|b| b == "broker-b"));
        assert!(brokers_picked(&s, None, 600_000, 8).contains(&"broker-a".to_string()), "available again");
    }

    #[test]
    fn enabled_selection_avoids_the_last_failed_broker_on_a_retry() {
        let s = FaultStrategy::new(true);
        assert!(brokers_picked(&s, Some("broker-b"), 0, 8).iter().all(|b| b == "broker-a"));
    }

    #[test]
    fn with_every_broker_unavailable_the_least_bad_is_picked() {
        let s = FaultStrategy::new(true);
        s.update_fault_item("broker-a", 3000, true, 0);
        s.update_fault_item("broker-b", 2500, false, 0);
        assert_eq!(s.table().item("broker-b").map(|i| i.start_timestamp), Some(120000));
        assert!(brokers_picked(&s, None, 1, 8).iter().all(|b| b == "broker-b"), "lower latency first");
        let s = FaultStrategy::new(true);
        s.update_fault_item("other-topics-broker", 10, true, 0);
        s.update_fault_item("broker-a", 10, true, 0);
        s.update_fault_item("broker-b", 10, true, 0);
        assert_eq!(brokers_picked(&s, None, 1, 8).len(), 8, "always some queue");
    }

    #[test]
    fn a_picked_broker_without_queues_is_forgotten() {
        let s = FaultStrategy::new(true);
        s.update_fault_item("gone", 10, false, 0);
        s.update_fault_item("broker-a", 10, true, 0);
        s.update_fault_item("broker-b", 10, true, 0);
        // "gone" sorts first (available) but has no queue of this topic.
        for _ in 0..4 {
            let _ = s.select(&queues(), None, 1);
        }
        assert_eq!(s.table().item("gone"), None);
    }

    #[test]
    fn disabled_selection_is_round_robin_avoiding_the_last_failed_broker() {
        let s = FaultStrategy::new(false);
        s.update_fault_item("broker-a", 10, true, 0);
        assert_eq!(s.table().item("broker-a"), None, "no fault items when disabled");
        let picked: Vec<i32> = (0..4).filter_map(|_| s.select(&queues(), None, 0)).map(|q| q.queue_id).collect();
        assert_eq!(picked, [0, 1, 0, 1]);
        assert_eq!(brokers_picked(&s, None, 0, 4).iter().filter(|b| *b == "broker-a").count(), 2);
        assert!(brokers_picked(&s, Some("broker-a"), 0, 4).iter().all(|b| b == "broker-b"));
        assert_eq!(s.select(&[], None, 0), None);
    }
}
