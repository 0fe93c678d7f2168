//! Sends ten messages to `TopicTest` through the name server at
//! `NAMESRV_ADDR` (default 127.0.0.1:9876), e.g. the one `make run` starts.
//!
//! cargo run --example quickstart_producer

use rmq::client::config::ClientConfig;
use rmq::client::producer::{Producer, ProducerConfig};
use rmq::common::message::Message;

fn main() {
    env_logger::init();
    let namesrv = std::env::var("NAMESRV_ADDR").unwrap_or_else(|_| "127.0.0.1:9876".into());
    let producer = Producer::new(
        ProducerConfig::new("quickstart_producer"),
        ClientConfig { namesrv_addr: Some(namesrv), ..Default::default() },
    );
    if let Err(e) = producer.start() {
        eprintln!("cannot start the producer: {e}");
        std::process::exit(1);
    }
    for i in 0..10 {
        let mut msg = Message::new("TopicTest", format!("Hello RocketMQ {i}"));
        msg.set_tags("TagA");
        match producer.send(msg) {
            Ok(r) => println!("{:?} msgId={} queue={} offset={}", r.status, r.msg_id, r.queue.queue_id, r.queue_offset),
            Err(e) => eprintln!("send failed: {e}"),
        }
    }
    producer.shutdown();
}
