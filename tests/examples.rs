//! The examples, each run against a name server and broker of its own: they
//! do what their doc comments say. Each example uses its own client
//! instance names, so they run in parallel in this one process.

mod support;

#[path = "../examples/quickstart_consumer.rs"]
#[allow(dead_code)]
mod quickstart_consumer;
#[path = "../examples/quickstart_producer.rs"]
#[allow(dead_code)]
mod quickstart_producer;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rmq::common::wait;
use support::cluster::Cluster;

/// How long a test waits for offsets to reach the broker (sent every 5 s
/// and at shutdown, oneway).
const OFFSETS: Duration = Duration::from_secs(10);

/// The offsets `group` committed on the broker for `topic`, by queue.
fn committed(c: &Cluster, group: &str, topic: &str) -> BTreeMap<i32, i64> {
    c.broker.shared().offsets.query_all(group, topic).into_iter().collect()
}

#[test]
fn quickstart_consumer_receives_every_message_quickstart_producer_sent() {
    let c = Cluster::start();
    let sent = quickstart_producer::run(&c.ns_addr()).unwrap();
    assert_eq!(sent.len(), quickstart_producer::MESSAGES);
    let received = quickstart_consumer::run(&c.ns_addr(), sent.len(), Duration::from_secs(20)).unwrap();

    let by_id: HashMap<&str, &quickstart_consumer::Received> =
        received.iter().map(|r| (r.msg_id.as_str(), r)).collect();
    assert_eq!(received.len(), sent.len(), "each message once: {received:?}");
    for s in &sent {
        let r = by_id.get(s.msg_id.as_str()).unwrap_or_else(|| panic!("{} never arrived", s.msg_id));
        assert_eq!((r.queue_id, r.queue_offset), (s.queue.queue_id, s.queue_offset), "where it was stored");
        assert!(r.body.starts_with("Hello RocketMQ "), "{}", r.body);
    }
    // Shutting down committed the offsets of everything consumed.
    let (group, topic) = (quickstart_consumer::GROUP, quickstart_consumer::TOPIC);
    let all = sent.len() as i64;
    assert!(
        wait::until(OFFSETS, || committed(&c, group, topic).values().sum::<i64>() == all),
        "{:?}",
        committed(&c, group, topic)
    );
}
