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
