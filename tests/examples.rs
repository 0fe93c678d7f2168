//! The examples, each run against a name server and broker of its own: they
//! do what their doc comments say. Each example uses its own client
//! instance names, so they run in parallel in this one process.

mod support;

#[path = "../examples/broadcasting.rs"]
#[allow(dead_code)]
mod broadcasting;
#[path = "../examples/ordered.rs"]
#[allow(dead_code)]
mod ordered;
#[path = "../examples/quickstart_consumer.rs"]
#[allow(dead_code)]
mod quickstart_consumer;
#[path = "../examples/quickstart_producer.rs"]
#[allow(dead_code)]
mod quickstart_producer;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use rmq::common::wait;
use rmq::remoting::body::OffsetTable;
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

#[test]
fn ordered_keeps_every_orders_steps_in_one_queue_in_order() {
    let c = Cluster::start();
    let o = ordered::run(&c.ns_addr()).unwrap();
    assert_eq!(o.received.len(), ordered::STEPS.len() * ordered::ORDERS as usize, "{:?}", o.received);
    let mut steps: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    for s in &o.received {
        steps.entry(s.order_id).or_default().push(&s.step);
        assert_eq!(Some(&s.queue_id), o.sent_to.get(&s.order_id), "an order's steps share its queue: {s:?}");
    }
    for order_id in 0..ordered::ORDERS {
        assert_eq!(steps.get(&order_id), Some(&ordered::STEPS.to_vec()), "order {order_id}");
    }
    let queues: BTreeSet<i32> = o.sent_to.values().copied().collect();
    assert!(queues.len() > 1, "the orders spread over the queues: {queues:?}");
}

#[test]
fn broadcasting_gives_every_message_to_both_consumers_with_offsets_in_local_files() {
    let c = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let o = broadcasting::run(&c.ns_addr(), Some(dir.path())).unwrap();
    assert_eq!(o.sent.len(), broadcasting::MESSAGES);
    assert_eq!(o.received.len(), 2);
    for (n, got) in o.received.iter().enumerate() {
        assert_eq!(got, &o.sent, "consumer {n}");
    }
    assert_eq!(o.offset_files.len(), 2);
    for file in &o.offset_files {
        assert!(file.starts_with(dir.path()), "{}", file.display());
        let table = OffsetTable::decode(&std::fs::read(file).unwrap()).unwrap();
        let total: i64 = table.offset_table.iter().map(|(_, o)| *o).sum();
        assert_eq!(total, broadcasting::MESSAGES as i64, "{}: {:?}", file.display(), table.offset_table);
    }
    assert!(committed(&c, broadcasting::CONSUMER_GROUP, broadcasting::TOPIC).is_empty(), "none on the broker");
}
