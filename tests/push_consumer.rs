//! The push consumer against our broker: the long-polling flow end to end,
//! offsets committed on shutdown, no message twice after a clean restart.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rmq::client::config::ClientConfig;
use rmq::client::consumer::{
    ConsumeConcurrentlyStatus, ConsumeFromWhere, MessageListener, PushConsumer, PushConsumerConfig,
};
use rmq::client::producer::{Producer, ProducerConfig};
use rmq::common::message::Message;
use rmq::common::wait;
use support::cluster::Cluster;

fn client(c: &Cluster, instance: &str) -> ClientConfig {
    ClientConfig { namesrv_addr: Some(c.ns_addr()), instance_name: instance.into(), ..Default::default() }
}

fn produce(c: &Cluster, topic: &str, n: usize, tag: &str) -> Vec<String> {
    let p = Producer::new(ProducerConfig::new(format!("pg_{topic}")), client(c, &format!("p_{topic}")));
    p.start().unwrap();
    let ids = (0..n)
        .map(|i| {
            let mut m = Message::new(topic, format!("m{i}"));
            m.set_tags(tag);
            p.send(m).unwrap().msg_id
        })
        .collect();
    p.shutdown();
    ids
}

/// A consumer that records each body it gets.
fn collecting(c: &Cluster, group: &str, topic: &str, instance: &str) -> (PushConsumer, Arc<Mutex<Vec<String>>>) {
    let mut cfg = PushConsumerConfig::new(group);
    cfg.consume_from_where = ConsumeFromWhere::FirstOffset;
    let consumer = PushConsumer::new(cfg, client(c, instance));
    consumer.subscribe(topic, "*").unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    consumer.register_message_listener(MessageListener::concurrently(
        move |msgs: &[rmq::common::message::MessageExt], _: &mut _| {
            sink.lock().extend(msgs.iter().map(|m| String::from_utf8_lossy(m.body()).into_owned()));
            ConsumeConcurrentlyStatus::ConsumeSuccess
        },
    ));
    (consumer, got)
}

#[test]
fn consumes_everything_once_and_resumes_after_a_clean_restart() {
    let c = Cluster::start();
    produce(&c, "PushT", 40, "TagA");
    let (consumer, got) = collecting(&c, "cg_push", "PushT", "c1");
    consumer.start().unwrap();
    assert!(wait::until(Duration::from_secs(20), || got.lock().len() >= 40), "got {}", got.lock().len());
    consumer.shutdown();
    let first: BTreeSet<String> = got.lock().iter().cloned().collect();
    assert_eq!(first.len(), 40, "every message once");
    assert_eq!(got.lock().len(), 40, "none twice");

    produce(&c, "PushT", 10, "TagA");
    let (again, got2) = collecting(&c, "cg_push", "PushT", "c2");
    again.start().unwrap();
    assert!(wait::until(Duration::from_secs(20), || got2.lock().len() >= 10), "got {}", got2.lock().len());
    // Anything consumed twice would show up within a moment of the new ones.
    std::thread::sleep(Duration::from_millis(300));
    again.shutdown();
    assert_eq!(got2.lock().len(), 10, "after a clean shutdown only the new messages come: {:?}", got2.lock());
}

fn quick_client(ns: &str, instance: &str) -> ClientConfig {
    ClientConfig {
        namesrv_addr: Some(ns.into()),
        instance_name: instance.into(),
        poll_name_server_interval: Duration::from_millis(500),
        heartbeat_broker_interval: Duration::from_millis(500),
        ..Default::default()
    }
}

/// Sends `n` messages `<prefix><i>` to queue 0 of `topic`.
fn send_to_queue_0(ns: &str, topic: &str, n: usize, prefix: &str) {
    let p = Producer::new(ProducerConfig::new(format!("pg_{topic}_q0")), quick_client(ns, &format!("p_{topic}_q0")));
    p.start().unwrap();
    for i in 0..n {
        p.send_with_selector(Message::new(topic, format!("{prefix}{i}")), |qs, _| qs[0].clone()).unwrap();
    }
    p.shutdown();
}

type Seen = Arc<Mutex<Vec<rmq::common::message::MessageExt>>>;

/// A started clustering consumer of `topic` from the first offset that
/// records every message it gets.
fn recording(ns: &str, group: &str, topic: &str, instance: &str) -> (PushConsumer, Seen) {
    let mut cfg = PushConsumerConfig::new(group);
    cfg.consume_from_where = ConsumeFromWhere::FirstOffset;
    start_recording(cfg, ns, topic, instance)
}

/// A started consumer with `cfg` that records every message it gets.
fn start_recording(cfg: PushConsumerConfig, ns: &str, topic: &str, instance: &str) -> (PushConsumer, Seen) {
    let consumer = PushConsumer::new(cfg, quick_client(ns, instance));
    consumer.subscribe(topic, "*").unwrap();
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    consumer.register_message_listener(MessageListener::concurrently(
        move |msgs: &[rmq::common::message::MessageExt], _: &mut _| {
            sink.lock().extend(msgs.iter().cloned());
            ConsumeConcurrentlyStatus::ConsumeSuccess
        },
    ));
    consumer.start().unwrap();
    (consumer, seen)
}

fn bodies(seen: &Seen) -> BTreeSet<String> {
    seen.lock().iter().map(|m| String::from_utf8_lossy(m.body()).into_owned()).collect()
}

fn topic_queues(consumers: &[&PushConsumer], topic: &str) -> Vec<Vec<rmq::remoting::body::MessageQueue>> {
    consumers.iter().map(|c| c.assigned_queues().into_iter().filter(|q| q.topic == topic).collect()).collect()
}

/// True when the consumers own disjoint sets of `topic`'s queues covering all `n`.
fn split_exactly(consumers: &[&PushConsumer], topic: &str, n: usize) -> bool {
    let owned = topic_queues(consumers, topic);
    let all: BTreeSet<_> = owned.iter().flatten().collect();
    owned.iter().map(Vec::len).sum::<usize>() == n && all.len() == n && owned.iter().all(|o| !o.is_empty())
}

#[test]
fn consumers_of_a_group_split_the_queues_and_a_third_joins_without_loss() {
    let c = Cluster::start();
    let ns = c.ns_addr();
    produce(&c, "Split", 8, "TagA");
    let (a, seen_a) = recording(&ns, "cg_split", "Split", "a");
    let (b, seen_b) = recording(&ns, "cg_split", "Split", "b");
    assert!(
        wait::until(Duration::from_secs(20), || split_exactly(&[&a, &b], "Split", 4)),
        "two consumers split 4 queues: {:?}",
        topic_queues(&[&a, &b], "Split")
    );
    let (third, seen_c) = recording(&ns, "cg_split", "Split", "c");
    assert!(
        wait::until(Duration::from_secs(20), || split_exactly(&[&a, &b, &third], "Split", 4)),
        "three consumers split 4 queues: {:?}",
        topic_queues(&[&a, &b, &third], "Split")
    );
    let sent: BTreeSet<String> = (0..40).map(|i| format!("m{i}")).collect();
    produce(&c, "Split", 40, "TagA");
    let union = || {
        let mut all = bodies(&seen_a);
        all.extend(bodies(&seen_b));
        all.extend(bodies(&seen_c));
        all
    };
    assert!(wait::until(Duration::from_secs(20), || sent.is_subset(&union())), "no loss: {:?}", union());
    for x in [&a, &b, &third] {
        x.shutdown();
    }
}

#[test]
fn orderly_consumption_keeps_per_queue_order_under_load() {
    let c = Cluster::start();
    let ns = c.ns_addr();
    let p = Producer::new(ProducerConfig::new("pg_order"), quick_client(&ns, "p_order"));
    p.start().unwrap();
    let keys = 8;
    let per_key = 60;
    for seq in 0..per_key {
        for key in 0..keys {
            let m = Message::new("Ordered", format!("{key}:{seq}"));
            p.send_with_selector(m, |qs, _| qs[key % qs.len()].clone()).unwrap();
        }
    }
    let mut cfg = PushConsumerConfig::new("cg_order");
    cfg.consume_from_where = ConsumeFromWhere::FirstOffset;
    cfg.consume_message_batch_max_size = 3;
    let consumer = PushConsumer::new(cfg, quick_client(&ns, "c_order"));
    consumer.subscribe("Ordered", "*").unwrap();
    let seen: Arc<Mutex<Vec<(usize, usize)>>> = Arc::default();
    let busy: Arc<Mutex<BTreeSet<i32>>> = Arc::default();
    let overlap = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (sink, busy2, overlap2) = (seen.clone(), busy.clone(), overlap.clone());
    consumer.register_message_listener(MessageListener::orderly(
        move |msgs: &[rmq::common::message::MessageExt], ctx: &mut rmq::client::consumer::ConsumeOrderlyContext| {
            let q = ctx.message_queue.queue_id;
            if !busy2.lock().insert(q) {
                overlap2.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            std::thread::sleep(Duration::from_micros(200));
            for m in msgs {
                let s = String::from_utf8_lossy(m.body()).into_owned();
                let (k, n) = s.split_once(':').unwrap();
                sink.lock().push((k.parse().unwrap(), n.parse().unwrap()));
            }
            busy2.lock().remove(&q);
            rmq::client::consumer::ConsumeOrderlyStatus::Success
        },
    ));
    consumer.start().unwrap();
    // More load while consuming.
    for seq in per_key..per_key + 20 {
        for key in 0..keys {
            let m = Message::new("Ordered", format!("{key}:{seq}"));
            p.send_with_selector(m, |qs, _| qs[key % qs.len()].clone()).unwrap();
        }
    }
    let total = keys * (per_key + 20);
    assert!(wait::until(Duration::from_secs(30), || seen.lock().len() >= total), "got {}", seen.lock().len());
    consumer.shutdown();
    p.shutdown();
    assert!(!overlap.load(std::sync::atomic::Ordering::SeqCst), "two threads consumed one queue at once");
    let seen = seen.lock();
    for key in 0..keys {
        let order: Vec<usize> = seen.iter().filter(|(k, _)| *k == key).map(|(_, n)| *n).collect();
        assert_eq!(order, (0..per_key + 20).collect::<Vec<_>>(), "key {key} in order, once each");
    }
}

#[test]
fn failed_messages_are_retried_then_reach_the_dead_letter_queue() {
    let c = Cluster::start();
    let ns = c.ns_addr();
    produce(&c, "Fails", 1, "TagA");
    let mut cfg = PushConsumerConfig::new("cg_fail");
    cfg.consume_from_where = ConsumeFromWhere::FirstOffset;
    cfg.max_reconsume_times = 2;
    let consumer = PushConsumer::new(cfg, quick_client(&ns, "c_fail"));
    consumer.subscribe("Fails", "*").unwrap();
    let attempts: Arc<Mutex<Vec<(i32, String)>>> = Arc::default();
    let sink = attempts.clone();
    consumer.register_message_listener(MessageListener::concurrently(
        move |msgs: &[rmq::common::message::MessageExt],
              ctx: &mut rmq::client::consumer::ConsumeConcurrentlyContext| {
            ctx.delay_level_when_next_consume = 1; // 1 s between tries
            for m in msgs {
                sink.lock().push((m.reconsume_times, m.topic().to_string()));
            }
            if msgs[0].reconsume_times == 0 {
                panic!("a panicking listener counts as reconsume-later");
            }
            ConsumeConcurrentlyStatus::ReconsumeLater
        },
    ));
    consumer.start().unwrap();
    assert!(wait::until(Duration::from_secs(30), || attempts.lock().len() >= 3), "{:?}", attempts.lock());
    let dlq = "%DLQ%cg_fail";
    let pull = rmq::client::consumer::PullConsumer::new(
        rmq::client::consumer::PullConsumerConfig::new("cg_dlq_reader"),
        quick_client(&ns, "dlq_reader"),
    );
    pull.start().unwrap();
    let mut found = Vec::new();
    assert!(
        wait::until(Duration::from_secs(20), || {
            let Ok(qs) = pull.fetch_subscribe_message_queues(dlq) else { return false };
            found = qs.iter().flat_map(|q| pull.pull(q, "*", 0, 32).map(|r| r.msgs).unwrap_or_default()).collect();
            !found.is_empty()
        }),
        "the message reaches {dlq}"
    );
    consumer.shutdown();
    pull.shutdown();
    let attempts = attempts.lock().clone();
    assert_eq!(
        attempts.iter().map(|(n, _)| *n).take(3).collect::<Vec<_>>(),
        vec![0, 1, 2],
        "first try, then two retries"
    );
    assert!(attempts.iter().all(|(_, t)| t == "Fails"), "retries show the original topic: {attempts:?}");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].body().as_ref(), b"m0");
}

#[test]
fn broadcasting_consumers_each_get_everything_with_local_offsets() {
    let c = Cluster::start();
    let ns = c.ns_addr();
    produce(&c, "Bcast", 12, "TagA");
    let offsets = tempfile::tempdir().unwrap();
    let start = |instance: &str| {
        let mut cfg = PushConsumerConfig::new("cg_bcast");
        cfg.consume_from_where = ConsumeFromWhere::FirstOffset;
        cfg.message_model = rmq::client::consumer::MessageModel::Broadcasting;
        cfg.offset_store_dir = offsets.path().to_path_buf();
        start_recording(cfg, &ns, "Bcast", instance)
    };
    let (a, seen_a) = start("bc_a");
    let (b, seen_b) = start("bc_b");
    assert!(wait::until(Duration::from_secs(20), || seen_a.lock().len() >= 12 && seen_b.lock().len() >= 12));
    let id_a = a.client_id();
    a.shutdown();
    b.shutdown();
    assert_eq!(bodies(&seen_a).len(), 12);
    assert_eq!(bodies(&seen_b).len(), 12);
    let file = offsets.path().join(&id_a).join("cg_bcast").join("offsets.json");
    let table = rmq::remoting::body::OffsetTable::decode(&std::fs::read(&file).unwrap()).unwrap();
    let total: i64 = table.offset_table.iter().filter(|(q, _)| q.topic == "Bcast").map(|(_, o)| o).sum();
    assert_eq!(total, 12, "the local file holds the consumed offsets: {table:?}");

    produce(&c, "Bcast", 3, "TagA");
    let (again, seen_again) = start("bc_a");
    assert!(wait::until(Duration::from_secs(20), || seen_again.lock().len() >= 3));
    std::thread::sleep(Duration::from_millis(300));
    again.shutdown();
    assert_eq!(seen_again.lock().len(), 3, "restarted from the local offsets: {:?}", bodies(&seen_again));
}

/// A queue whose first messages were cleaned away: the broker has no
/// offset for a new group there (QUERY_NOT_FOUND), so ConsumeFromWhere
/// decides. (While a queue still starts at offset 0 the broker answers 0,
/// and every new group reads it from the start, as Apache's broker does.)
#[test]
fn consume_from_timestamp_starts_at_the_first_message_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let ns = rmq::namesrv::NamesrvController::start(rmq::namesrv::NamesrvConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        kv_config_path: dir.path().join("kv.json"),
        ..Default::default()
    })
    .unwrap();
    let ns_addr = ns.addr().to_string();
    let broker = rmq::broker::BrokerController::start(rmq::broker::BrokerConfig {
        listen_port: 0,
        namesrv_addr: Some(ns_addr.clone()),
        store: rmq::store::StoreConfig {
            mapped_file_size_commit_log: 64 * 1024,
            file_reserved_time: Duration::ZERO,
            ..rmq::store::StoreConfig::at(dir.path().join("store"))
        },
        ..Default::default()
    })
    .unwrap();
    let mut pc = ProducerConfig::new("pg_stamp");
    pc.compress_msg_body_over = usize::MAX; // the old bodies must fill CommitLog files
    let p = Producer::new(pc, quick_client(&ns_addr, "p_stamp"));
    p.start().unwrap();
    let to_q0 = |p: &Producer, body: Vec<u8>| p.send_with_selector(Message::new("Stamp", body), |qs, _| qs[0].clone());
    for _ in 0..20 {
        to_q0(&p, vec![b'o'; 8 * 1024]).unwrap();
    }
    assert!(broker.shared().store.wait_dispatched(Duration::from_secs(5)));
    assert!(
        wait::until(Duration::from_secs(5), || broker.shared().store.clean_expired_files(true).unwrap() > 0),
        "old CommitLog files deleted"
    );
    let q0 = rmq::remoting::body::MessageQueue::new("Stamp", "broker-a", 0);
    let min = broker.shared().store.min_offset_in_queue("Stamp", 0);
    assert!(min > 0, "queue 0 no longer starts at 0 ({min}, {q0:?})");
    std::thread::sleep(Duration::from_millis(20));
    let t = rmq::common::time::now_millis();
    std::thread::sleep(Duration::from_millis(20));
    for i in 0..8 {
        to_q0(&p, format!("late{i}").into_bytes()).unwrap();
    }
    p.shutdown();
    let mut cfg = PushConsumerConfig::new("cg_stamp");
    cfg.consume_from_where = ConsumeFromWhere::Timestamp;
    cfg.consume_timestamp = t;
    let (consumer, seen) = start_recording(cfg, &ns_addr, "Stamp", "c_stamp");
    assert!(wait::until(Duration::from_secs(20), || seen.lock().len() >= 8));
    std::thread::sleep(Duration::from_millis(300));
    consumer.shutdown();
    let got = bodies(&seen);
    assert_eq!(got, (0..8).map(|i| format!("late{i}")).collect(), "only messages stored after the timestamp");
    drop(broker);
}

#[test]
fn consumers_recover_by_themselves_when_the_broker_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let ns = rmq::namesrv::NamesrvController::start(rmq::namesrv::NamesrvConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        kv_config_path: dir.path().join("kv.json"),
        ..Default::default()
    })
    .unwrap();
    let ns_addr = ns.addr().to_string();
    let store = dir.path().join("store");
    let mut broker = support::cluster::start_broker(&ns_addr, "broker-a", &store, 0);
    let port = broker.addr().port();
    let p = Producer::new(ProducerConfig::new("pg_restart"), quick_client(&ns_addr, "p_restart"));
    p.start().unwrap();
    for i in 0..30 {
        p.send(Message::new("Restart", format!("before{i}"))).unwrap();
    }
    let (consumer, seen) = recording(&ns_addr, "cg_restart", "Restart", "c_restart");
    assert!(wait::until(Duration::from_secs(20), || seen.lock().len() >= 30));
    broker.shutdown();
    drop(broker);
    let broker = support::cluster::start_broker(&ns_addr, "broker-a", &store, port);
    let mut expected: BTreeSet<String> = (0..30).map(|i| format!("before{i}")).collect();
    let mut sent = 0;
    assert!(
        wait::until(Duration::from_secs(30), || {
            if sent < 30 && p.send(Message::new("Restart", format!("after{sent}"))).is_ok() {
                expected.insert(format!("after{sent}"));
                sent += 1;
            }
            sent == 30 && expected.is_subset(&bodies(&seen))
        }),
        "after the restart every message arrives: sent {sent}, missing {:?}",
        expected.difference(&bodies(&seen)).collect::<Vec<_>>()
    );
    consumer.shutdown();
    p.shutdown();
    drop(broker);
}

#[test]
fn producers_fail_over_when_one_of_two_brokers_stops() {
    let c = Cluster::start();
    let ns = c.ns_addr();
    let dir_b = tempfile::tempdir().unwrap();
    let mut b = support::cluster::start_broker(&ns, "broker-b", dir_b.path(), 0);
    let p = Producer::new(ProducerConfig::new("pg_failover"), quick_client(&ns, "p_failover"));
    p.start().unwrap();
    let mut brokers = BTreeSet::new();
    for i in 0..16 {
        brokers.insert(p.send(Message::new("TwoBrokers", format!("x{i}"))).unwrap().queue.broker_name);
    }
    assert_eq!(brokers.len(), 2, "sends spread over both brokers: {brokers:?}");
    b.shutdown();
    for i in 0..20 {
        let r = p.send(Message::new("TwoBrokers", format!("y{i}"))).unwrap();
        assert_eq!(r.queue.broker_name, "broker-a", "the stopped broker gets nothing");
    }
    p.shutdown();
}

#[test]
fn a_consumer_runs_on_rocketmqs_thread_names() {
    let c = Cluster::start();
    produce(&c, "Threads", 1, "TagA");
    let (consumer, seen) = recording(&c.ns_addr(), "cg_threads", "Threads", "c_threads");
    assert!(wait::until(Duration::from_secs(20), || !seen.lock().is_empty()));
    let names = rmq::common::thread::registered_names();
    for want in [
        "NettyClientSelector_1",
        "NettyClientWorkerThread_1",
        "NettyClientPublicExecutor_1",
        "PullMessageService",
        "PullMessageServiceScheduledThread",
        "RebalanceService",
        "MQClientFactoryScheduledThread",
        "ClientHouseKeepingService",
        "ConsumeMessageThread_1",
        "ConsumeMessageThread_20",
        "ConsumeMessageScheduledThread_1",
        "CleanExpireMsgScheduledThread_1",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
    }
    consumer.shutdown();
}

#[test]
fn orderly_messages_past_max_reconsume_times_go_to_the_dead_letter_queue() {
    let c = Cluster::start();
    let ns = c.ns_addr();
    send_to_queue_0(&ns, "OrderDlq", 2, "o");
    let mut cfg = PushConsumerConfig::new("cg_odlq");
    cfg.consume_from_where = ConsumeFromWhere::FirstOffset;
    cfg.max_reconsume_times = 2;
    cfg.suspend_current_queue_time_millis = 10;
    let consumer = PushConsumer::new(cfg, quick_client(&ns, "c_odlq"));
    consumer.subscribe("OrderDlq", "*").unwrap();
    let calls: Arc<Mutex<Vec<(String, i32)>>> = Arc::default();
    let sink = calls.clone();
    consumer.register_message_listener(MessageListener::orderly(
        move |msgs: &[rmq::common::message::MessageExt], _: &mut rmq::client::consumer::ConsumeOrderlyContext| {
            let body = String::from_utf8_lossy(msgs[0].body()).into_owned();
            sink.lock().push((body.clone(), msgs[0].reconsume_times));
            if body == "o0" {
                rmq::client::consumer::ConsumeOrderlyStatus::SuspendCurrentQueueAMoment
            } else {
                rmq::client::consumer::ConsumeOrderlyStatus::Success
            }
        },
    ));
    consumer.start().unwrap();
    assert!(wait::until(Duration::from_secs(20), || calls.lock().iter().any(|(b, _)| b == "o1")), "{:?}", calls.lock());
    consumer.shutdown();
    let calls = calls.lock().clone();
    assert_eq!(
        calls,
        vec![("o0".into(), 0), ("o0".into(), 1), ("o0".into(), 2), ("o1".into(), 0)],
        "o0 is tried until maxReconsumeTimes, then o1 follows in order"
    );
    let dlq = c.broker.shared().store.max_offset_in_queue("%DLQ%cg_odlq", 0);
    assert_eq!(dlq, 1, "o0 is in the dead-letter queue");
}

#[test]
fn a_message_held_past_the_consume_timeout_goes_back_to_the_broker() {
    let c = Cluster::start();
    let ns = c.ns_addr();
    produce(&c, "Slow", 1, "TagA");
    let mut cfg = PushConsumerConfig::new("cg_slow");
    cfg.consume_from_where = ConsumeFromWhere::FirstOffset;
    cfg.consume_timeout = Duration::from_millis(200);
    let consumer = PushConsumer::new(cfg, quick_client(&ns, "c_slow"));
    consumer.subscribe("Slow", "*").unwrap();
    let release = Arc::new(rmq::common::wait::Signal::new());
    let (r2, started) = (release.clone(), Arc::new(rmq::common::wait::Signal::new()));
    let s2 = started.clone();
    consumer.register_message_listener(MessageListener::concurrently(
        move |_: &[rmq::common::message::MessageExt], _: &mut _| {
            s2.set();
            r2.wait(rmq::common::wait::Deadline::after(Duration::from_secs(20)));
            ConsumeConcurrentlyStatus::ConsumeSuccess
        },
    ));
    consumer.start().unwrap();
    assert!(started.wait(rmq::common::wait::Deadline::after(Duration::from_secs(20))));
    let cached = || {
        consumer.running_info().map_or(1, |i| {
            i.mq_table.iter().filter(|(q, _)| q.topic == "Slow").map(|(_, pq)| pq.cached_msg_count).sum::<i32>()
        })
    };
    if !wait::until(Duration::from_secs(10), || cached() == 0) {
        release.set();
        panic!("the stuck message did not leave the ProcessQueue");
    }
    // Sent back with delay level 3: it waits in the schedule topic's queue 2.
    let scheduled = || c.broker.shared().store.max_offset_in_queue("SCHEDULE_TOPIC_XXXX", 2);
    let went_back = wait::until(Duration::from_secs(10), || scheduled() >= 1);
    release.set();
    assert!(went_back, "the message went back to the broker for a later retry");
    assert_eq!(scheduled(), 1, "once");
    consumer.shutdown();
}

#[test]
fn shutdown_lets_running_listeners_finish_and_a_restart_gets_only_the_rest() {
    let c = Cluster::start();
    let ns = c.ns_addr();
    produce(&c, "Drain", 24, "TagA");
    let started: Seen = Arc::default();
    let finished: Seen = Arc::default();
    let mut cfg = PushConsumerConfig::new("cg_drain");
    cfg.consume_from_where = ConsumeFromWhere::FirstOffset;
    cfg.consume_thread_min = 4;
    cfg.consume_thread_max = 4;
    let consumer = PushConsumer::new(cfg.clone(), quick_client(&ns, "c_drain"));
    consumer.subscribe("Drain", "*").unwrap();
    let (s2, f2) = (started.clone(), finished.clone());
    consumer.register_message_listener(MessageListener::concurrently(
        move |msgs: &[rmq::common::message::MessageExt], _: &mut _| {
            s2.lock().extend(msgs.iter().cloned());
            std::thread::sleep(Duration::from_millis(150));
            f2.lock().extend(msgs.iter().cloned());
            ConsumeConcurrentlyStatus::ConsumeSuccess
        },
    ));
    consumer.start().unwrap();
    assert!(wait::until(Duration::from_secs(20), || started.lock().len() >= 4));
    consumer.shutdown();
    let done = bodies(&finished);
    assert_eq!(bodies(&started), done, "every listener call that started finished before shutdown returned");
    assert!(done.len() < 24, "shutdown did not wait for the whole backlog");

    let (again, seen) = recording(&ns, "cg_drain", "Drain", "c_drain2");
    assert!(wait::until(Duration::from_secs(20), || bodies(&seen).len() + done.len() >= 24));
    std::thread::sleep(Duration::from_millis(300));
    again.shutdown();
    let rest = bodies(&seen);
    assert!(rest.is_disjoint(&done), "nothing consumed twice: {:?}", rest.intersection(&done).collect::<Vec<_>>());
    assert_eq!(rest.len() + done.len(), 24, "nothing lost");
}

#[test]
fn consumer_state_errors_are_clear() {
    let c = Cluster::start();
    let ns = c.ns_addr();
    let listener = || {
        MessageListener::concurrently(|_: &[rmq::common::message::MessageExt], _: &mut _| {
            ConsumeConcurrentlyStatus::ConsumeSuccess
        })
    };
    let no_listener = PushConsumer::new(PushConsumerConfig::new("cg_state"), quick_client(&ns, "st"));
    no_listener.subscribe("State", "*").unwrap();
    let e = no_listener.start().unwrap_err().to_string();
    assert!(e.contains("listener"), "{e}");
    assert_eq!(no_listener.state(), rmq::client::instance::ServiceState::StartFailed);

    let no_sub = PushConsumer::new(PushConsumerConfig::new("cg_state"), quick_client(&ns, "st"));
    no_sub.register_message_listener(listener());
    assert!(no_sub.start().unwrap_err().to_string().contains("subscri"));

    assert!(
        PushConsumer::new(PushConsumerConfig::new("cg_state"), quick_client(&ns, "st")).subscribe("T", "||").is_err()
    );

    let first = PushConsumer::new(PushConsumerConfig::new("cg_state"), quick_client(&ns, "st"));
    first.subscribe("State", "*").unwrap();
    first.register_message_listener(listener());
    first.start().unwrap();
    assert!(first.start().unwrap_err().to_string().contains("started once"));
    let twin = PushConsumer::new(PushConsumerConfig::new("cg_state"), quick_client(&ns, "st"));
    twin.subscribe("State", "*").unwrap();
    twin.register_message_listener(listener());
    let e = twin.start().unwrap_err().to_string();
    assert!(e.contains("has been created before"), "one group per client instance: {e}");
    let mut bad = PushConsumerConfig::new("cg_state2");
    bad.pull_batch_size = 5000;
    let out_of_range = PushConsumer::new(bad, quick_client(&ns, "st"));
    out_of_range.subscribe("State", "*").unwrap();
    out_of_range.register_message_listener(listener());
    assert!(out_of_range.start().unwrap_err().to_string().contains("pullBatchSize"));
    first.shutdown();
    assert_eq!(first.state(), rmq::client::instance::ServiceState::ShutdownAlready);
}

/// An orderly consumer that takes over queues mid-run locks them and
/// consumes at once, not at its next 20 s lock renewal.
#[test]
fn orderly_queues_taken_over_are_consumed_at_once() {
    let c = Cluster::start();
    let ns = c.ns_addr();
    produce(&c, "TakeOver", 4, "TagA");
    let start = |instance: &str, sink: Arc<Mutex<Vec<(i32, std::time::Instant)>>>| {
        let mut cfg = PushConsumerConfig::new("cg_takeover");
        cfg.consume_from_where = ConsumeFromWhere::LastOffset;
        let consumer = PushConsumer::new(cfg, quick_client(&ns, instance));
        consumer.subscribe("TakeOver", "*").unwrap();
        consumer.register_message_listener(MessageListener::orderly(
            move |msgs: &[rmq::common::message::MessageExt], _: &mut rmq::client::consumer::ConsumeOrderlyContext| {
                sink.lock().extend(msgs.iter().map(|m| (m.queue_id, std::time::Instant::now())));
                rmq::client::consumer::ConsumeOrderlyStatus::Success
            },
        ));
        consumer.start().unwrap();
        consumer
    };
    let got: Arc<Mutex<Vec<(i32, std::time::Instant)>>> = Arc::default();
    let first = start("to_a", Arc::default());
    let second = start("to_b", got.clone());
    let both = || split_exactly(&[&first, &second], "TakeOver", 4);
    assert!(wait::until(Duration::from_secs(20), both));
    // Past the first lock renewal (1 s after start): only a takeover locks now.
    std::thread::sleep(Duration::from_millis(1500));
    let theirs: Vec<i32> =
        first.assigned_queues().iter().filter(|q| q.topic == "TakeOver").map(|q| q.queue_id).collect();
    first.shutdown();
    assert!(wait::until(Duration::from_secs(10), || second
        .assigned_queues()
        .iter()
        .filter(|q| q.topic == "TakeOver")
        .count()
        == 4));
    let sent_at = std::time::Instant::now();
    let p = Producer::new(ProducerConfig::new("pg_takeover"), quick_client(&ns, "p_takeover"));
    p.start().unwrap();
    for q in &theirs {
        let q = *q;
        p.send_with_selector(Message::new("TakeOver", "late"), move |qs, _| qs[q as usize].clone()).unwrap();
    }
    p.shutdown();
    let taken_over = |got: &[(i32, std::time::Instant)]| got.iter().filter(|(q, _)| theirs.contains(q)).count();
    assert!(
        wait::until(Duration::from_secs(8), || taken_over(&got.lock()) >= theirs.len()),
        "the taken-over queues are consumed well before the 20 s renewal: {:?}",
        got.lock()
    );
    assert!(sent_at.elapsed() < Duration::from_secs(8));
    second.shutdown();
}

/// Pulls stop while a queue caches more than pullThresholdForQueue messages
/// and go on once the listener catches up.
#[test]
fn flow_control_stops_pulling_past_the_cached_threshold() {
    let c = Cluster::start();
    let ns = c.ns_addr();
    send_to_queue_0(&ns, "Flow", 200, "f");
    let mut cfg = PushConsumerConfig::new("cg_flow");
    cfg.consume_from_where = ConsumeFromWhere::FirstOffset;
    cfg.pull_threshold_for_queue = 10;
    cfg.pull_batch_size = 8;
    cfg.consume_thread_min = 2;
    cfg.consume_thread_max = 2;
    let consumer = PushConsumer::new(cfg, quick_client(&ns, "c_flow"));
    consumer.subscribe("Flow", "*").unwrap();
    let gate = Arc::new(rmq::common::wait::Signal::new());
    let done: Arc<Mutex<usize>> = Arc::default();
    let (g2, d2) = (gate.clone(), done.clone());
    consumer.register_message_listener(MessageListener::concurrently(
        move |msgs: &[rmq::common::message::MessageExt], _: &mut _| {
            g2.wait(rmq::common::wait::Deadline::after(Duration::from_secs(30)));
            *d2.lock() += msgs.len();
            ConsumeConcurrentlyStatus::ConsumeSuccess
        },
    ));
    consumer.start().unwrap();
    let cached = || {
        consumer.running_info().map_or(0, |i| {
            i.mq_table
                .iter()
                .filter(|(q, _)| q.topic == "Flow" && q.queue_id == 0)
                .map(|(_, pq)| pq.cached_msg_count)
                .sum()
        })
    };
    assert!(wait::until(Duration::from_secs(20), || cached() > 10), "pulls fill the cache past the threshold");
    std::thread::sleep(Duration::from_millis(300));
    let held = cached();
    assert!(held <= 10 + 8, "at most one pull batch past the threshold: {held}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cached(), held, "no pulls while over the threshold");
    gate.set();
    assert!(wait::until(Duration::from_secs(20), || *done.lock() >= 200), "all consumed after the listener catches up");
    consumer.shutdown();
}
