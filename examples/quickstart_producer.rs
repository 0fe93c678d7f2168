//! Sends ten messages to `TopicTest` through the name server at
//! `NAMESRV_ADDR` (default 127.0.0.1:9876), e.g. the one `make run` starts.
//! `quickstart_consumer` receives them.
//!
//! make run                                  # in another terminal
//! cargo run --example quickstart_producer

use std::error::Error;

use rmq::client::config::ClientConfig;
use rmq::client::producer::{Producer, ProducerConfig, SendResult};
use rmq::common::message::Message;

pub const TOPIC: &str = "TopicTest";
pub const GROUP: &str = "quickstart_producer";
pub const MESSAGES: usize = 10;

/// Sends [`MESSAGES`] messages tagged `TagA` and returns what the broker
/// answered for each. A send that fails is reported and ends the run: the
/// producer has already retried it on another queue.
pub fn run(namesrv: &str) -> Result<Vec<SendResult>, Box<dyn Error>> {
    // Producers and consumers with the same instance name share one client
    // instance (threads, connections, and the name servers it was created with).
    let client = ClientConfig { namesrv_addr: Some(namesrv.into()), instance_name: GROUP.into(), ..Default::default() };
    let producer = Producer::new(ProducerConfig::new(GROUP), client);
    producer.start()?;
    let mut results = Vec::with_capacity(MESSAGES);
    for i in 0..MESSAGES {
        let mut msg = Message::new(TOPIC, format!("Hello RocketMQ {i}"));
        msg.set_tags("TagA");
        results.push(producer.send(msg).map_err(|e| format!("send {i} failed: {e}"))?);
    }
    producer.shutdown();
    Ok(results)
}

fn main() -> Result<(), Box<dyn Error>> {
    env_logger::init();
    let namesrv = std::env::var("NAMESRV_ADDR").unwrap_or_else(|_| "127.0.0.1:9876".into());
    for r in run(&namesrv)? {
        println!("{:?} msgId={} queue={} offset={}", r.status, r.msg_id, r.queue.queue_id, r.queue_offset);
    }
    Ok(())
}
