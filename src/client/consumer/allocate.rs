//! How the consumers of a group share a topic's queues (RocketMQ:
//! AllocateMessageQueueStrategy and its AVG, AVG_BY_CIRCLE and CONSISTENT_HASH
//! implementations). Every consumer of a group runs the same strategy on the
//! same sorted inputs and keeps only its own share, so the result must match
//! Apache's bit for bit: a Rust and a Java consumer in one group would
//! otherwise both take, or both skip, some queues.

use std::collections::BTreeMap;

use md5::{Digest, Md5};

use crate::remoting::body::MessageQueue;

/// A rule for splitting queues among the consumers of a group (RocketMQ:
/// AllocateMessageQueueStrategy).
pub trait AllocateStrategy: Send + Sync {
    /// The strategy's name as Apache reports it (`AVG`, `AVG_BY_CIRCLE`, `CONSISTENT_HASH`).
    fn name(&self) -> &str;

    /// The queues of `mqs` that `current_cid` should consume, given all the
    /// group's consumer ids `cids`. Both lists come sorted from the caller.
    /// Empty when either list is empty or `current_cid` is not in `cids`
    /// (Apache throws for empty inputs; an empty share is the safe answer here).
    fn allocate(&self, group: &str, current_cid: &str, mqs: &[MessageQueue], cids: &[String]) -> Vec<MessageQueue>;
}

/// Position of `current_cid` in `cids`, or `None` (with a log line) when the
/// inputs give it nothing to consume.
fn index_of(group: &str, current_cid: &str, mqs: &[MessageQueue], cids: &[String]) -> Option<usize> {
    if current_cid.is_empty() || mqs.is_empty() || cids.is_empty() {
        return None;
    }
    let index = cids.iter().position(|c| c == current_cid);
    if index.is_none() {
        log::info!("consumer {current_cid} of group {group} is not among the group's consumers {cids:?}");
    }
    index
}

/// Contiguous blocks: the first `len % consumers` consumers get one queue more
/// (RocketMQ: AllocateMessageQueueAveragely).
#[derive(Debug, Clone, Copy, Default)]
pub struct Averagely;

impl AllocateStrategy for Averagely {
    fn name(&self) -> &str {
        "AVG"
    }

    fn allocate(&self, group: &str, current_cid: &str, mqs: &[MessageQueue], cids: &[String]) -> Vec<MessageQueue> {
        let Some(index) = index_of(group, current_cid, mqs, cids) else {
            return Vec::new();
        };
        let (queues, consumers) = (mqs.len(), cids.len());
        let rest = queues % consumers;
        let one_more = rest > 0 && index < rest;
        let size = if queues <= consumers {
            1
        } else if one_more {
            queues / consumers + 1
        } else {
            queues / consumers
        };
        let start = if one_more { index * size } else { index * size + rest };
        // Past the end when there are more consumers than queues: nothing left.
        let count = size.min(queues.saturating_sub(start));
        mqs.iter().skip(start).take(count).cloned().collect()
    }
}

/// Round robin: consumer `i` gets queues `i`, `i + n`, `i + 2n`, ...
/// (RocketMQ: AllocateMessageQueueAveragelyByCircle).
#[derive(Debug, Clone, Copy, Default)]
pub struct AveragelyByCircle;

impl AllocateStrategy for AveragelyByCircle {
    fn name(&self) -> &str {
        "AVG_BY_CIRCLE"
    }

    fn allocate(&self, group: &str, current_cid: &str, mqs: &[MessageQueue], cids: &[String]) -> Vec<MessageQueue> {
        let Some(index) = index_of(group, current_cid, mqs, cids) else {
            return Vec::new();
        };
        mqs.iter().skip(index).step_by(cids.len()).cloned().collect()
    }
}

/// A hash ring of consumers, each placed `virtual_nodes` times; a queue goes to
/// the first ring point at or after its hash, wrapping around. Consumers
/// joining or leaving move only the queues next to their points (RocketMQ:
/// AllocateMessageQueueConsistentHash with the default MD5 hash of
/// ConsistentHashRouter).
#[derive(Debug, Clone, Copy)]
pub struct ConsistentHash {
    /// Ring points per consumer; 0 leaves the ring empty and every queue unassigned, as in Apache.
    pub virtual_nodes: usize,
}

impl Default for ConsistentHash {
    /// Apache's default of 10 virtual nodes per consumer.
    fn default() -> Self {
        ConsistentHash { virtual_nodes: 10 }
    }
}

/// The ring hash (RocketMQ: ConsistentHashRouter.MD5Hash): the first four MD5
/// digest bytes of the UTF-8 key, big-endian, as an unsigned 32-bit number.
fn ring_hash(key: &str) -> u32 {
    let digest = Md5::digest(key.as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// The key a queue is hashed by: Java's MessageQueue.toString.
fn queue_key(mq: &MessageQueue) -> String {
    format!("MessageQueue [topic={}, brokerName={}, queueId={}]", mq.topic, mq.broker_name, mq.queue_id)
}

impl ConsistentHash {
    /// Builds the ring: hash -> consumer id. Points are keyed `<cid>-<n>`; a
    /// later point overwrites an earlier one with the same hash, and a repeated
    /// cid continues its numbering after the points it still holds, as Apache's
    /// TreeMap-based router does.
    fn ring<'a>(&self, cids: &'a [String]) -> BTreeMap<u32, &'a str> {
        let mut ring: BTreeMap<u32, &str> = BTreeMap::new();
        for cid in cids {
            let held = ring.values().filter(|c| **c == cid.as_str()).count();
            for n in 0..self.virtual_nodes {
                ring.insert(ring_hash(&format!("{cid}-{}", n + held)), cid.as_str());
            }
        }
        ring
    }
}

impl AllocateStrategy for ConsistentHash {
    fn name(&self) -> &str {
        "CONSISTENT_HASH"
    }

    fn allocate(&self, group: &str, current_cid: &str, mqs: &[MessageQueue], cids: &[String]) -> Vec<MessageQueue> {
        if index_of(group, current_cid, mqs, cids).is_none() {
            return Vec::new();
        }
        let ring = self.ring(cids);
        mqs.iter()
            .filter(|mq| {
                let hash = ring_hash(&queue_key(mq));
                let owner = ring.range(hash..).next().or_else(|| ring.iter().next());
                owner.is_some_and(|(_, cid)| *cid == current_cid)
            })
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queues(brokers: &[&str], per_broker: i32) -> Vec<MessageQueue> {
        brokers.iter().flat_map(|b| (0..per_broker).map(move |q| MessageQueue::new("TopicTest", *b, q))).collect()
    }

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    /// Queue ids (single broker) given to each consumer, in cid order.
    fn shares(strategy: &dyn AllocateStrategy, mqs: &[MessageQueue], cids: &[String]) -> Vec<Vec<i32>> {
        cids.iter().map(|cid| strategy.allocate("G", cid, mqs, cids).iter().map(|mq| mq.queue_id).collect()).collect()
    }

    fn strategies() -> Vec<Box<dyn AllocateStrategy>> {
        vec![Box::new(Averagely), Box::new(AveragelyByCircle), Box::new(ConsistentHash::default())]
    }

    #[test]
    fn names_are_apaches() {
        let names: Vec<String> = strategies().iter().map(|s| s.name().to_string()).collect();
        assert_eq!(names, ["AVG", "AVG_BY_CIRCLE", "CONSISTENT_HASH"]);
    }

    #[test]
    fn averagely_eight_over_three() {
        let (mqs, cids) = (queues(&["broker-a"], 8), ids(&["c0", "c1", "c2"]));
        assert_eq!(shares(&Averagely, &mqs, &cids), vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7]]);
    }

    #[test]
    fn averagely_more_consumers_than_queues() {
        let (mqs, cids) = (queues(&["broker-a"], 2), ids(&["c0", "c1", "c2", "c3"]));
        assert_eq!(shares(&Averagely, &mqs, &cids), vec![vec![0], vec![1], vec![], vec![]]);
        let (mqs, cids) = (queues(&["broker-a"], 3), ids(&["c0", "c1", "c2"]));
        assert_eq!(shares(&Averagely, &mqs, &cids), vec![vec![0], vec![1], vec![2]]);
    }

    #[test]
    fn by_circle_eight_over_three() {
        let (mqs, cids) = (queues(&["broker-a"], 8), ids(&["c0", "c1", "c2"]));
        assert_eq!(shares(&AveragelyByCircle, &mqs, &cids), vec![vec![0, 3, 6], vec![1, 4, 7], vec![2, 5]]);
    }

    #[test]
    fn by_circle_more_consumers_than_queues() {
        let (mqs, cids) = (queues(&["broker-a"], 2), ids(&["c0", "c1", "c2", "c3"]));
        assert_eq!(shares(&AveragelyByCircle, &mqs, &cids), vec![vec![0], vec![1], vec![], vec![]]);
    }

    #[test]
    fn unknown_consumer_or_empty_input_gets_nothing() {
        let (mqs, cids) = (queues(&["broker-a"], 4), ids(&["c0", "c1"]));
        for s in strategies() {
            assert!(s.allocate("G", "c9", &mqs, &cids).is_empty(), "{}", s.name());
            assert!(s.allocate("G", "", &mqs, &cids).is_empty(), "{}", s.name());
            assert!(s.allocate("G", "c0", &[], &cids).is_empty(), "{}", s.name());
            assert!(s.allocate("G", "c0", &mqs, &[]).is_empty(), "{}", s.name());
        }
    }

    #[test]
    fn every_queue_allocated_exactly_once() {
        for s in strategies() {
            for queue_count in 1..=12 {
                for consumer_count in 1..=7 {
                    let mqs = queues(&["broker-a", "broker-b"], queue_count);
                    let cids: Vec<String> = (0..consumer_count).map(|i| format!("10.0.0.{i}@{}", 100 + i)).collect();
                    let mut all: Vec<MessageQueue> =
                        cids.iter().flat_map(|cid| s.allocate("G", cid, &mqs, &cids)).collect();
                    all.sort();
                    assert_eq!(
                        all,
                        mqs,
                        "{} with {queue_count} queues per broker, {consumer_count} consumers",
                        s.name()
                    );
                }
            }
        }
    }

    #[test]
    fn ring_hash_is_md5_prefix() {
        // First four bytes of MD5("hello world") = 5eb63bbb...
        assert_eq!(ring_hash("hello world"), 0x5eb6_3bbb);
        // Computed with Python's hashlib.
        assert_eq!(ring_hash("MessageQueue [topic=TopicTest, brokerName=broker-a, queueId=0]"), 0x767d_59fc);
        assert_eq!(ring_hash("192.168.1.10@1001-0"), 97_093_950);
    }

    /// Three consumer ids shaped like Apache's (`ip@pid`).
    const THREE: [&str; 3] = ["192.168.1.10@1001", "192.168.1.11@1002", "192.168.1.12@1003"];

    /// The one owner of each of broker-a 0..4 then broker-b 0..4 under the default ring.
    fn owners(cids: &[String]) -> Vec<String> {
        let mqs = queues(&["broker-a", "broker-b"], 4);
        let strategy = ConsistentHash::default();
        mqs.iter()
            .map(|mq| {
                let owner: Vec<&String> =
                    cids.iter().filter(|cid| strategy.allocate("G", cid, &mqs, cids).contains(mq)).collect();
                assert_eq!(owner.len(), 1, "{mq:?}");
                owner[0].clone()
            })
            .collect()
    }

    /// Expected owners (here and below) computed with Python's hashlib and
    /// checked against Apache 4.9.8's ConsistentHashRouter on a JVM.
    #[test]
    fn consistent_hash_matches_apache() {
        let (a, b, c) = (THREE[0], THREE[1], THREE[2]);
        assert_eq!(owners(&ids(&THREE)), [c, a, c, c, b, c, c, a]);
    }

    #[test]
    fn consistent_hash_new_consumer_takes_only_some_queues() {
        let before = owners(&ids(&THREE));
        let d = "192.168.1.13@1004";
        let mut four = THREE.to_vec();
        four.push(d);
        let after = owners(&ids(&four));
        let (a, b, c) = (THREE[0], THREE[1], THREE[2]);
        assert_eq!(after, [c, d, c, d, b, d, d, a]);
        // Every queue either stays put or moves to the newcomer.
        for (old, new) in before.iter().zip(&after) {
            assert!(new == old || new == d, "{old} -> {new}");
        }
        assert!(before.iter().zip(&after).any(|(old, new)| old == new));
    }

    #[test]
    fn consistent_hash_without_virtual_nodes_assigns_nothing() {
        let (mqs, cids) = (queues(&["broker-a"], 4), ids(&["c0", "c1"]));
        let strategy = ConsistentHash { virtual_nodes: 0 };
        assert!(cids.iter().all(|cid| strategy.allocate("G", cid, &mqs, &cids).is_empty()));
    }
}
