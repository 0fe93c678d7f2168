//! Receives the messages of `TopicTest` with a push consumer whose listener
//! may run on many threads at once (concurrently), e.g. the ten that
//! `quickstart_producer` sent. A new group starts at the first stored message.
//!
//! make run                                  # in another terminal
//! cargo run --example quickstart_producer
//! cargo run --example quickstart_consumer

use std::error::Error;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rmq::client::config::ClientConfig;
use rmq::client::consumer::{
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, ConsumeFromWhere, MessageListener, PushConsumer,
    PushConsumerConfig,
};
use rmq::common::message::MessageExt;

pub const TOPIC: &str = "TopicTest";
pub const GROUP: &str = "quickstart_consumer";

/// One message as the listener saw it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The producer's message id (what `SendResult::msg_id` said).
    pub msg_id: String,
    pub queue_id: i32,
    pub queue_offset: i64,
    pub body: String,
}

/// Consumes until `expected` messages arrived or `timeout` passed, then
/// stops the consumer (which commits the offsets of what it consumed).
pub fn run(namesrv: &str, expected: usize, timeout: Duration) -> Result<Vec<Received>, Box<dyn Error>> {
    // The instance name picks the client instance (threads, connections,
    // name servers) this consumer gets; clients with the same name share one.
    let client = ClientConfig { namesrv_addr: Some(namesrv.into()), instance_name: GROUP.into(), ..Default::default() };
    let mut config = PushConsumerConfig::new(GROUP);
    config.consume_from_where = ConsumeFromWhere::FirstOffset;
    let consumer = PushConsumer::new(config, client);
    consumer.subscribe(TOPIC, "*")?;

    // The listener runs on the consumer's threads; a channel brings what it
    // got to this one.
    let (tx, rx) = mpsc::channel();
    consumer.register_message_listener(MessageListener::concurrently(
        move |msgs: &[MessageExt], _ctx: &mut ConsumeConcurrentlyContext| {
            for m in msgs {
                let received = Received {
                    msg_id: m.message.unique_key().unwrap_or(&m.msg_id).to_string(),
                    queue_id: m.queue_id,
                    queue_offset: m.queue_offset,
                    body: String::from_utf8_lossy(m.body()).into_owned(),
                };
                // The receiver is gone only when `run` has returned.
                let _ = tx.send(received);
            }
            // Anything else (or a panic) means: deliver these again later.
            ConsumeConcurrentlyStatus::ConsumeSuccess
        },
    ));
    consumer.start()?;

    let deadline = Instant::now() + timeout;
    let mut received = Vec::new();
    while received.len() < expected {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(r) => received.push(r),
            Err(_) => break,
        }
    }
    consumer.shutdown();
    Ok(received)
}

fn main() -> Result<(), Box<dyn Error>> {
    env_logger::init();
    let namesrv = std::env::var("NAMESRV_ADDR").unwrap_or_else(|_| "127.0.0.1:9876".into());
    let received = run(&namesrv, 10, Duration::from_secs(30))?;
    for r in &received {
        println!("msgId={} queue={} offset={} body={}", r.msg_id, r.queue_id, r.queue_offset, r.body);
    }
    println!("received {} messages", received.len());
    Ok(())
}
