//! The producer against our broker: state checks, validation, sends to a
//! topic it creates through TBW102, round robin over queues, and, with a dead
//! or refusing broker registered beside ours, latency fault tolerance and
//! async retries.

mod support;

use rmq::broker::processor::pull_flag;
use rmq::client::config::ClientConfig;
use rmq::client::instance::ClientError;
use rmq::client::producer::{Producer, ProducerConfig, SendStatus};
use rmq::common::message::{self, Message};
use rmq::common::wait;
use rmq::remoting::RemotingCommand;
use rmq::remoting::code::{request, response};
use rmq::remoting::headers::PullMessageRequestHeader;
use support::cluster::{Cluster, RefusingBroker, T, dead_addr};

fn pull_all(c: &Cluster, topic: &str, queue_id: i32) -> Vec<message::MessageExt> {
    let h = PullMessageRequestHeader {
        consumer_group: "reader".into(),
        topic: topic.into(),
        queue_id,
        max_msg_nums: 32,
        sys_flag: pull_flag::SUBSCRIPTION,
        subscription: Some("*".into()),
        expression_type: Some("TAG".into()),
        ..Default::default()
    };
    let r = c.call(RemotingCommand::request_with(request::PULL_MESSAGE, &h));
    if r.code == response::SUCCESS { message::decode_all(&r.body.bytes(), true).unwrap() } else { vec![] }
}

#[test]
fn sends_create_the_topic_and_spread_over_its_queues() {
    let c = Cluster::start();
    let client =
        ClientConfig { namesrv_addr: Some(c.ns_addr()), instance_name: "producer_test".into(), ..Default::default() };
    let p = Producer::new(ProducerConfig::new("pg_test"), client);
    assert!(matches!(p.send(Message::new("Early", "x")), Err(ClientError::State(_))), "send before start");
    p.start().unwrap();
    assert!(matches!(p.start(), Err(ClientError::State(_))), "starting twice");
    assert!(p.send(Message::new("bad topic", "x")).is_err());
    assert!(p.send(Message::new("Fine", "")).is_err(), "empty body");

    let mut ids = Vec::new();
    for i in 0..8 {
        let mut m = Message::new("ProducedTopic", format!("body-{i}"));
        m.set_tags("TagA");
        m.set_keys(["k"]);
        let r = p.send(m).unwrap();
        assert_eq!(r.status, SendStatus::SendOk);
        assert_eq!(r.msg_id.len(), 32);
        assert_eq!(message::decode_message_id(&r.offset_msg_id).unwrap().0, c.broker.addr());
        ids.push((r.queue.queue_id, r.msg_id));
    }
    let queues: std::collections::BTreeSet<i32> = ids.iter().map(|(q, _)| *q).collect();
    assert_eq!(queues.len(), 4, "round robin over the 4 queues created from TBW102");
    assert!(wait::until(T, || (0..4).map(|q| pull_all(&c, "ProducedTopic", q).len()).sum::<usize>() == 8));
    let stored = pull_all(&c, "ProducedTopic", ids[0].0);
    assert!(stored.iter().any(|m| m.message.properties.get("UNIQ_KEY") == Some(ids[0].1.as_str())));
    assert_eq!(stored[0].message.tags(), Some("TagA"));
    p.shutdown();
    assert!(p.send(Message::new("ProducedTopic", "late")).is_err(), "send after shutdown");
}

#[test]
fn async_and_oneway_sends_arrive() {
    let c = Cluster::start();
    let client =
        ClientConfig { namesrv_addr: Some(c.ns_addr()), instance_name: "producer_async".into(), ..Default::default() };
    let p = Producer::new(ProducerConfig::new("pg_async"), client);
    p.start().unwrap();
    p.send(Message::new("AsyncTopic", "sync first")).unwrap();
    let (tx, rx) = crossbeam_channel::bounded(16);
    for i in 0..5 {
        let tx = tx.clone();
        p.send_async(Message::new("AsyncTopic", format!("async-{i}")), move |r| {
            let on = rmq::common::thread::current_name().unwrap_or_default();
            let _ = tx.send((r, on));
        })
        .unwrap();
    }
    for _ in 0..5 {
        let (r, thread) = rx.recv_timeout(T).expect("every async send calls back");
        assert_eq!(r.unwrap().status, SendStatus::SendOk);
        assert!(thread.starts_with("NettyClientPublicExecutor_"), "callback ran on {thread}");
    }
    p.send_oneway(Message::new("AsyncTopic", "oneway")).unwrap();
    assert!(wait::until(T, || (0..4).map(|q| pull_all(&c, "AsyncTopic", q).len()).sum::<usize>() == 7));
}

#[test]
fn a_selector_keeps_messages_of_one_key_in_one_queue_in_order() {
    let c = Cluster::start();
    let client =
        ClientConfig { namesrv_addr: Some(c.ns_addr()), instance_name: "producer_order".into(), ..Default::default() };
    let p = Producer::new(ProducerConfig::new("pg_order"), client);
    p.start().unwrap();
    let by_key =
        |key: u32| move |qs: &[rmq::remoting::body::MessageQueue], _: &Message| qs[key as usize % qs.len()].clone();
    for i in 0..6 {
        let r = p.send_with_selector(Message::new("OrderTopic", format!("order7-step{i}")), by_key(7)).unwrap();
        assert_eq!(r.queue.queue_id, 3, "key 7 of 4 queues");
    }
    assert!(wait::until(T, || pull_all(&c, "OrderTopic", 3).len() == 6));
    let bodies: Vec<String> =
        pull_all(&c, "OrderTopic", 3).iter().map(|m| String::from_utf8_lossy(&m.message.body).to_string()).collect();
    assert_eq!(bodies, (0..6).map(|i| format!("order7-step{i}")).collect::<Vec<_>>());
    let mq = rmq::remoting::body::MessageQueue::new("OrderTopic", "broker-a", 1);
    assert_eq!(p.send_to_queue(Message::new("OrderTopic", "direct"), mq.clone()).unwrap().queue, mq);
    assert!(p.send_to_queue(Message::new("Other", "x"), mq).is_err(), "topic must match the queue's");
}

#[test]
fn bodies_over_4_kib_travel_compressed_and_inflate_back() {
    let c = Cluster::start();
    let client =
        ClientConfig { namesrv_addr: Some(c.ns_addr()), instance_name: "producer_zip".into(), ..Default::default() };
    let p = Producer::new(ProducerConfig::new("pg_zip"), client);
    p.start().unwrap();
    let big: Vec<u8> = (0..10_000u32).flat_map(|i| (i % 97).to_string().into_bytes()).collect();
    let mq = rmq::remoting::body::MessageQueue::new("ZipTopic", "broker-a", 0);
    p.send_to_queue(Message::new("ZipTopic", big.clone()), mq.clone()).unwrap();
    p.send_to_queue(Message::new("ZipTopic", "small"), mq).unwrap();
    assert!(wait::until(T, || pull_all(&c, "ZipTopic", 0).len() == 2));
    let stored = pull_all(&c, "ZipTopic", 0);
    assert_eq!(stored[0].sys_flag & message::sys_flag::COMPRESSED_FLAG, 1, "compressed on the wire and on disk");
    assert!(stored[0].message.body.len() < big.len());
    assert_eq!(&message::uncompressed_body(&stored[0]).unwrap()[..], &big[..]);
    assert_eq!(stored[1].sys_flag & message::sys_flag::COMPRESSED_FLAG, 0);
    assert_eq!(&message::uncompressed_body(&stored[1]).unwrap()[..], b"small");
}

#[test]
fn a_batch_is_stored_together_with_an_id_per_message() {
    let c = Cluster::start();
    let client =
        ClientConfig { namesrv_addr: Some(c.ns_addr()), instance_name: "producer_batch".into(), ..Default::default() };
    let p = Producer::new(ProducerConfig::new("pg_batch"), client);
    p.start().unwrap();
    let msgs: Vec<Message> = (0..3)
        .map(|i| {
            let mut m = Message::new("BatchTopic", format!("b{i}"));
            m.set_tags("T");
            m
        })
        .collect();
    let r = p.send_batch(msgs).unwrap();
    let ids: Vec<&str> = r.msg_id.split(',').collect();
    assert_eq!(ids.len(), 3);
    assert!(wait::until(T, || pull_all(&c, "BatchTopic", r.queue.queue_id).len() == 3));
    let stored = pull_all(&c, "BatchTopic", r.queue.queue_id);
    for (m, id) in stored.iter().zip(ids) {
        assert_eq!(m.message.properties.get("UNIQ_KEY"), Some(id));
        assert_eq!(m.message.tags(), Some("T"));
    }
    assert_eq!(stored.iter().map(|m| m.queue_offset).collect::<Vec<_>>(), vec![0, 1, 2]);
    let mixed = vec![Message::new("BatchTopic", "a"), Message::new("Other", "b")];
    assert!(p.send_batch(mixed).is_err(), "one topic per batch");
}

/// A producer of its own client instance, `tune` applied to its settings.
fn producer(c: &Cluster, name: &str, tune: impl FnOnce(&mut ProducerConfig)) -> Producer {
    let client = ClientConfig { namesrv_addr: Some(c.ns_addr()), instance_name: name.into(), ..Default::default() };
    let mut config = ProducerConfig::new(format!("pg_{name}"));
    tune(&mut config);
    let p = Producer::new(config, client);
    p.start().unwrap();
    p
}

/// `topic` on our broker (broker-a) and on a broker `name` at `addr`.
fn topic_beside(c: &Cluster, topic: &str, name: &str, addr: &str) {
    c.send(topic, b"seed", 0);
    c.register_broker(name, addr, topic);
    assert!(wait::until(T, || c.route_brokers(topic) == [name, "broker-a"]), "{:?}", c.route_brokers(topic));
}

#[test]
fn with_latency_fault_tolerance_a_broker_that_failed_gets_no_more_sends() {
    let c = Cluster::start();
    topic_beside(&c, "FaultTopic", "broker-0", &dead_addr());
    // No retries: a send that picks the dead broker fails, so failures count
    // the sends the dead broker got.
    let failures =
        |p: &Producer| (0..8).filter(|i| p.send(Message::new("FaultTopic", format!("m{i}"))).is_err()).count();

    let plain = producer(&c, "fault_off", |p| p.retry_times_when_send_failed = 0);
    assert_eq!(failures(&plain), 4, "round robin over 8 queues, 4 of them on the dead broker");

    let tolerant = producer(&c, "fault_on", |p| {
        p.retry_times_when_send_failed = 0;
        p.send_latency_fault_enable = true;
    });
    assert_eq!(failures(&tolerant), 1, "the first failure isolates the dead broker");
    assert_eq!(failures(&tolerant), 0);
}

#[test]
fn a_failed_async_send_is_retried_on_another_broker_and_calls_back_once() {
    let c = Cluster::start();
    let refusing = RefusingBroker::start(response::SYSTEM_ERROR);
    topic_beside(&c, "RefusedTopic", "broker-0", &refusing.addr);
    topic_beside(&c, "DeadTopic", "broker-1", &dead_addr());
    c.register_broker("broker-1", &dead_addr(), "DeadOnlyTopic");

    type Outcome = (Result<rmq::client::producer::SendResult, ClientError>, String);
    let send_all = |p: &Producer, topic: &str, n: usize| -> Vec<Outcome> {
        let (tx, rx) = crossbeam_channel::unbounded();
        for i in 0..n {
            let tx = tx.clone();
            p.send_async(Message::new(topic, format!("async-{i}")), move |r| {
                let _ = tx.send((r, rmq::common::thread::current_name().unwrap_or_default()));
            })
            .unwrap();
        }
        drop(tx);
        let outcomes: Vec<Outcome> = (0..n).map(|_| rx.recv_timeout(T).expect("every send calls back")).collect();
        assert!(rx.recv_timeout(std::time::Duration::from_millis(300)).is_err(), "one callback per send");
        for (_, thread) in &outcomes {
            assert!(thread.starts_with("NettyClientPublicExecutor_"), "callback ran on {thread}");
        }
        outcomes
    };

    let p = producer(&c, "async_retry", |_| {});
    // Refused with a retryable code in the response: retried from the callback.
    for (r, _) in send_all(&p, "RefusedTopic", 8) {
        assert_eq!(r.unwrap().queue.broker_name, "broker-a");
    }
    // The first try of the first send takes the first queue, broker-0's.
    assert!(refusing.sends.load(std::sync::atomic::Ordering::SeqCst) > 0, "some first tries were refused");
    // Refused connections, before anything is sent: retried at once.
    for (r, _) in send_all(&p, "DeadTopic", 8) {
        assert_eq!(r.unwrap().queue.broker_name, "broker-a");
    }
    assert!(wait::until(T, || (0..4).map(|q| pull_all(&c, "RefusedTopic", q).len()).sum::<usize>() == 9));
    // Every try failing: the last error, still on the callback thread.
    let outcomes = send_all(&p, "DeadOnlyTopic", 1);
    assert!(matches!(outcomes[0].0, Err(ClientError::Remoting(_))), "{:?}", outcomes[0].0);

    let no_retry = producer(&c, "async_no_retry", |p| p.retry_times_when_send_async_failed = 0);
    let refused = send_all(&no_retry, "RefusedTopic", 8)
        .into_iter()
        .filter(|(r, _)| matches!(r, Err(ClientError::Refused { code: response::SYSTEM_ERROR, .. })))
        .count();
    assert_eq!(refused, 4, "without retries the refusals reach the callback");
}
