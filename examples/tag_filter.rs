//! Filtering by tag: the producer tags messages TagA to TagD, the consumer
//! subscribes to "TagA || TagC" and gets only those. The broker filters by
//! the tags' hash codes, the consumer then by the tags themselves; messages
//! filtered out count as consumed for this group (another group with
//! another expression gets them).
//!
//! make run                                  # in another terminal
//! cargo run --example tag_filter

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rmq::client::config::ClientConfig;
use rmq::client::consumer::{
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, ConsumeFromWhere, MessageListener, PushConsumer,
    PushConsumerConfig,
};
use rmq::client::producer::{Producer, ProducerConfig};
use rmq::common::message::{Message, MessageExt};

pub const TOPIC: &str = "TagFilterTopic";
pub const PRODUCER_GROUP: &str = "tag_filter_producer";
pub const CONSUMER_GROUP: &str = "tag_filter_consumer";
pub const TAGS: [&str; 4] = ["TagA", "TagB", "TagC", "TagD"];
/// `||` separates tags; `*` means every message.
pub const EXPRESSION: &str = "TagA || TagC";
pub const ROUNDS: usize = 5;

/// What was sent and what came, by message id.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Message id -> tag, of every message sent.
    pub sent: BTreeMap<String, String>,
    /// Message id -> tag, of every message the listener got.
    pub received: BTreeMap<String, String>,
}

pub fn run(namesrv: &str) -> Result<Outcome, Box<dyn Error>> {
    let mut outcome = Outcome::default();
    // The producer and the consumer share one client instance, by its name.
    let client =
        ClientConfig { namesrv_addr: Some(namesrv.into()), instance_name: CONSUMER_GROUP.into(), ..Default::default() };

    let producer = Producer::new(ProducerConfig::new(PRODUCER_GROUP), client.clone());
    producer.start()?;
    for round in 0..ROUNDS {
        for tag in TAGS {
            let mut msg = Message::new(TOPIC, format!("{tag} message {round}"));
            msg.set_tags(tag);
            outcome.sent.insert(producer.send(msg)?.msg_id, tag.to_string());
        }
    }
    producer.shutdown();

    let mut config = PushConsumerConfig::new(CONSUMER_GROUP);
    config.consume_from_where = ConsumeFromWhere::FirstOffset;
    let consumer = PushConsumer::new(config, client);
    consumer.subscribe(TOPIC, EXPRESSION)?;
    let (tx, rx) = mpsc::channel();
    consumer.register_message_listener(MessageListener::concurrently(
        move |msgs: &[MessageExt], _ctx: &mut ConsumeConcurrentlyContext| {
            for m in msgs {
                let id = m.message.unique_key().unwrap_or(&m.msg_id).to_string();
                let _ = tx.send((id, m.tags().unwrap_or_default().to_string()));
            }
            ConsumeConcurrentlyStatus::ConsumeSuccess
        },
    ));
    consumer.start()?;

    let wanted: Vec<&String> =
        outcome.sent.iter().filter(|(_, tag)| *tag == "TagA" || *tag == "TagC").map(|(id, _)| id).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !wanted.iter().all(|id| outcome.received.contains_key(*id)) {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((id, tag)) => {
                outcome.received.insert(id, tag);
            }
            Err(_) => break,
        }
    }
    consumer.shutdown();
    // Whatever the listener got while the consumer stopped.
    outcome.received.extend(rx.try_iter());
    Ok(outcome)
}

fn main() -> Result<(), Box<dyn Error>> {
    env_logger::init();
    let namesrv = std::env::var("NAMESRV_ADDR").unwrap_or_else(|_| "127.0.0.1:9876".into());
    let outcome = run(&namesrv)?;
    println!("sent {} messages tagged {}", outcome.sent.len(), TAGS.join(", "));
    for (id, tag) in &outcome.received {
        println!("got {id} tagged {tag}");
    }
    println!("{} messages matched {EXPRESSION:?}", outcome.received.len());
    Ok(())
}
