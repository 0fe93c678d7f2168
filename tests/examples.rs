//! The examples, each run against a name server and broker of its own: they
//! do what their doc comments say. Each example uses its own client
//! instance names, so they run in parallel in this one process.

mod support;

#[path = "../examples/batch.rs"]
#[allow(dead_code)]
mod batch;
#[path = "../examples/broadcasting.rs"]
#[allow(dead_code)]
mod broadcasting;
#[path = "../examples/delay.rs"]
#[allow(dead_code)]
mod delay;
#[path = "../examples/lite_pull_consumer.rs"]
#[allow(dead_code)]
mod lite_pull_consumer;
#[path = "../examples/ordered.rs"]
#[allow(dead_code)]
mod ordered;
#[path = "../examples/pull_consumer.rs"]
#[allow(dead_code)]
mod pull_consumer;
#[path = "../examples/quickstart_consumer.rs"]
#[allow(dead_code)]
mod quickstart_consumer;
#[path = "../examples/quickstart_producer.rs"]
#[allow(dead_code)]
mod quickstart_producer;
#[path = "../examples/tag_filter.rs"]
#[allow(dead_code)]
mod tag_filter;
#[path = "../examples/timeouts_and_errors.rs"]
#[allow(dead_code)]
mod timeouts_and_errors;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use rmq::broker::processor::pull_flag;
use rmq::client::config::ClientConfig;
use rmq::client::instance::ClientError;
use rmq::client::producer::{Producer, ProducerConfig};
use rmq::common::message::{self, Message, MessageExt};
use rmq::common::wait;
use rmq::remoting::body::OffsetTable;
use rmq::remoting::code::{request, response};
use rmq::remoting::headers::PullMessageRequestHeader;
use rmq::remoting::{RemotingCommand, RemotingError};
use support::cluster::Cluster;

/// How long a test waits for offsets to reach the broker (sent every 5 s
/// and at shutdown, oneway).
const OFFSETS: Duration = Duration::from_secs(10);

/// `n` stored messages of `topic`'s queue `queue_id` from `offset`, read
/// straight from the broker. A send is answered once the message is in the
/// CommitLog; its ConsumeQueue unit comes a moment later, so a pull that
/// finds nothing yet is asked again until a deadline.
fn stored(c: &Cluster, topic: &str, queue_id: i32, offset: i64, n: usize) -> Vec<MessageExt> {
    let mut msgs: Vec<MessageExt> = Vec::new();
    while msgs.len() < n {
        let h = PullMessageRequestHeader {
            consumer_group: "examples_reader".into(),
            topic: topic.into(),
            queue_id,
            queue_offset: offset + msgs.len() as i64,
            max_msg_nums: (n - msgs.len()) as i32,
            sys_flag: pull_flag::SUBSCRIPTION,
            subscription: Some("*".into()),
            expression_type: Some("TAG".into()),
            ..Default::default()
        };
        let mut last = None;
        wait::until(Duration::from_secs(10), || {
            let r = c.call(RemotingCommand::request_with(request::PULL_MESSAGE, &h));
            let found = r.code == response::SUCCESS;
            last = Some(r);
            found
        });
        let r = last.expect("pulled at least once");
        assert_eq!(r.code, response::SUCCESS, "pull {topic}-{queue_id} at {}: {:?}", h.queue_offset, r.remark);
        msgs.extend(message::decode_all(&r.body.bytes(), true).unwrap());
    }
    msgs
}

/// The offsets `group` committed on the broker for `topic`, by queue.
fn committed(c: &Cluster, group: &str, topic: &str) -> BTreeMap<i32, i64> {
    c.broker.shared().offsets.query_all(group, topic).into_iter().collect()
}

/// How many messages of `sent` (message id -> queue id) went to each queue.
fn per_queue(sent: &BTreeMap<String, i32>) -> BTreeMap<i32, i64> {
    let mut counts = BTreeMap::new();
    for q in sent.values() {
        *counts.entry(*q).or_insert(0) += 1;
    }
    counts
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

#[test]
fn batch_splits_by_size_and_each_batch_is_stored_together() {
    let c = Cluster::start();
    let results = batch::run(&c.ns_addr()).unwrap();
    assert!(results.len() >= 2, "{} messages of 1 KiB need more than one 64 KiB batch", batch::MESSAGES);
    let mut total = 0;
    for r in &results {
        let ids: Vec<&str> = r.msg_id.split(',').collect();
        total += ids.len();
        let msgs = stored(&c, batch::TOPIC, r.queue.queue_id, r.queue_offset, ids.len());
        for (i, (m, id)) in msgs.iter().zip(&ids).enumerate() {
            assert_eq!(m.message.unique_key(), Some(*id), "message {i} of the batch");
            assert_eq!(m.queue_offset, r.queue_offset + i as i64, "consecutive queue offsets");
        }
        for pair in msgs.windows(2) {
            let end = pair[0].commit_log_offset + pair[0].store_size as i64;
            assert_eq!(pair[1].commit_log_offset, end, "side by side in the CommitLog");
        }
    }
    assert_eq!(total, batch::MESSAGES);
}

#[test]
fn batch_splitting_keeps_order_and_the_limit() {
    let msgs: Vec<Message> = (0..50).map(|i| Message::new("T", vec![b'x'; 10 * i + 1])).collect();
    let batches = batch::split_by_size(msgs.clone(), 1000);
    assert!(batches.len() > 1);
    for b in &batches {
        let size: usize = b.iter().map(batch::batch_size).sum();
        assert!(size <= 1000 || b.len() == 1, "{size} bytes in {} messages", b.len());
    }
    assert_eq!(batches.concat(), msgs, "every message, in order");
    let alone = batch::split_by_size(vec![Message::new("T", vec![b'x'; 2000])], 1000);
    assert_eq!(alone.len(), 1, "a message over the limit goes alone");
    assert!(batch::split_by_size(Vec::new(), 1000).is_empty());
}

#[test]
fn delay_level_1_arrives_no_earlier_than_1_s() {
    let c = Cluster::start();
    let o = delay::run(&c.ns_addr(), 1).unwrap();
    let delay = delay::level_delay(1).unwrap();
    assert_eq!(delay, Duration::from_secs(1));
    assert!(o.stored_after >= delay, "stored {:?} after it was born", o.stored_after);
    assert!(o.waited >= delay, "arrived {:?} after the send", o.waited);
    assert!(o.waited < delay + Duration::from_secs(15), "but not much later: {:?}", o.waited);
    assert_eq!(delay::level_delay(2), Some(Duration::from_secs(5)));
    assert_eq!(delay::level_delay(0), None);
    assert_eq!(delay::level_delay(19), None);
}

#[test]
fn tag_filter_delivers_only_the_subscribed_tags() {
    let c = Cluster::start();
    let o = tag_filter::run(&c.ns_addr()).unwrap();
    assert_eq!(o.sent.len(), tag_filter::TAGS.len() * tag_filter::ROUNDS);
    let wanted: BTreeMap<String, String> = o
        .sent
        .iter()
        .filter(|(_, tag)| *tag == "TagA" || *tag == "TagC")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(wanted.len(), 2 * tag_filter::ROUNDS);
    assert_eq!(o.received, wanted);
}

#[test]
fn pull_consumer_reads_from_the_stored_offsets_and_stores_new_ones() {
    let c = Cluster::start();
    let group = pull_consumer::CONSUMER_GROUP;
    let topic = pull_consumer::TOPIC;
    let first = pull_consumer::run(&c.ns_addr(), 20).unwrap();
    let sent: BTreeSet<&String> = first.sent.keys().collect();
    assert_eq!(sent.len(), 20);
    assert_eq!(first.read.iter().collect::<BTreeSet<_>>(), sent, "every message");
    assert_eq!(first.read.len(), 20, "each once");
    let ends = per_queue(&first.sent);
    for (q, offset) in &first.offsets {
        assert_eq!(*offset, ends.get(q).copied().unwrap_or(0), "queue {q} read to its end");
    }
    let stored_on_broker = |expected: &BTreeMap<i32, i64>| {
        let expected: BTreeMap<i32, i64> = expected.iter().filter(|(_, o)| **o > 0).map(|(q, o)| (*q, *o)).collect();
        wait::until(OFFSETS, || committed(&c, group, topic) == expected)
    };
    assert!(stored_on_broker(&first.offsets), "{:?} vs {:?}", committed(&c, group, topic), first.offsets);

    let second = pull_consumer::run(&c.ns_addr(), 8).unwrap();
    let sent: BTreeSet<&String> = second.sent.keys().collect();
    assert_eq!(second.read.iter().collect::<BTreeSet<_>>(), sent, "only the new messages");
    assert_eq!(second.read.len(), 8);
    let added = per_queue(&second.sent);
    for (q, offset) in &second.offsets {
        let expected = first.offsets.get(q).copied().unwrap_or(0) + added.get(q).copied().unwrap_or(0);
        assert_eq!(*offset, expected, "queue {q}");
    }
    assert!(stored_on_broker(&second.offsets), "{:?} vs {:?}", committed(&c, group, topic), second.offsets);
}

#[test]
fn lite_pull_consumer_polls_every_message_and_commits() {
    let c = Cluster::start();
    let o = lite_pull_consumer::run(&c.ns_addr(), 20).unwrap();
    assert_eq!(o.sent.len(), 20);
    assert_eq!(o.polled, o.sent);
    let group = lite_pull_consumer::CONSUMER_GROUP;
    let topic = lite_pull_consumer::TOPIC;
    assert!(
        wait::until(OFFSETS, || committed(&c, group, topic).values().sum::<i64>() == 20),
        "{:?}",
        committed(&c, group, topic)
    );
}

#[test]
fn each_failure_comes_as_its_client_error_variant() {
    let c = Cluster::start();
    let cases = timeouts_and_errors::run(&c.ns_addr()).unwrap();
    let got: Vec<(&str, &ClientError)> = cases.iter().map(|c| (c.what, &c.error)).collect();
    assert_eq!(got.len(), 5, "{got:?}");
    for (what, e) in &got[..3] {
        assert!(matches!(e, ClientError::State(_)), "{what}: {e:?}");
    }
    let (what, e) = got[3];
    assert!(matches!(e, ClientError::Remoting(RemotingError::Connect { .. })), "{what}: {e:?}");
    let (what, e) = got[4];
    assert!(matches!(e, ClientError::Remoting(RemotingError::Timeout { .. })), "{what}: {e:?}");
    for (_, e) in got {
        assert!(!e.to_string().is_empty());
        assert!(!timeouts_and_errors::meaning(e).is_empty());
    }
}

#[test]
fn a_send_that_runs_out_of_time_is_always_a_timeout() {
    let c = Cluster::start();
    let send = |instance: &str, timeout: Duration| {
        let client =
            ClientConfig { namesrv_addr: Some(c.ns_addr()), instance_name: instance.into(), ..Default::default() };
        let producer =
            Producer::new(ProducerConfig { send_msg_timeout: timeout, ..ProducerConfig::new(instance) }, client);
        producer.start().unwrap();
        producer.send(Message::new("TimeoutT", "late")).unwrap_err()
    };
    // No connection to the broker yet: the timeout runs out while connecting.
    let e = send("examples_timeout_connecting", Duration::from_micros(10));
    assert!(matches!(e, ClientError::Remoting(RemotingError::Timeout { .. })), "{e:?}");
    // The timeout is over before the first try.
    let e = send("examples_timeout_zero", Duration::ZERO);
    assert!(matches!(e, ClientError::Remoting(RemotingError::Timeout { .. })), "{e:?}");
}
