//! A lite pull consumer: subscribe, start, then `poll` in the application's
//! own loop. Queues are assigned by the group's rebalancing, as for a push
//! consumer; polled messages count as consumed, their offsets committed
//! every 5 s, at `commit_sync` and at shutdown.
//!
//! make run                                  # in another terminal
//! cargo run --example lite_pull_consumer

use std::collections::BTreeSet;
use std::error::Error;
use std::time::{Duration, Instant};

use rmq::client::config::ClientConfig;
use rmq::client::consumer::{ConsumeFromWhere, LitePullConsumer, LitePullConsumerConfig};
use rmq::client::producer::{Producer, ProducerConfig};
use rmq::common::message::Message;

pub const TOPIC: &str = "LitePullTopic";
pub const PRODUCER_GROUP: &str = "lite_pull_producer";
pub const CONSUMER_GROUP: &str = "lite_pull_consumer";

/// What was sent and polled, by message id.
#[derive(Debug, Default)]
pub struct Outcome {
    pub sent: BTreeSet<String>,
    pub polled: BTreeSet<String>,
    /// How many `poll` calls it took.
    pub polls: usize,
}

/// Sends `count` messages, then polls until every one of them came (or 30 s
/// passed).
pub fn run(namesrv: &str, count: usize) -> Result<Outcome, Box<dyn Error>> {
    let mut outcome = Outcome::default();
    // The producer and the consumer share one client instance, by its name.
    let client =
        ClientConfig { namesrv_addr: Some(namesrv.into()), instance_name: CONSUMER_GROUP.into(), ..Default::default() };

    let producer = Producer::new(ProducerConfig::new(PRODUCER_GROUP), client.clone());
    producer.start()?;
    for i in 0..count {
        outcome.sent.insert(producer.send(Message::new(TOPIC, format!("poll me {i}")))?.msg_id);
    }
    producer.shutdown();

    let mut config = LitePullConsumerConfig::new(CONSUMER_GROUP);
    config.consume_from_where = ConsumeFromWhere::FirstOffset;
    let consumer = LitePullConsumer::new(config, client);
    consumer.subscribe(TOPIC, "*")?;
    consumer.start()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !outcome.sent.is_subset(&outcome.polled) && Instant::now() < deadline {
        // One pulled batch of one queue, or nothing within the timeout.
        let msgs = consumer.poll(Duration::from_secs(1))?;
        outcome.polls += 1;
        for m in msgs {
            outcome.polled.insert(m.message.unique_key().unwrap_or(&m.msg_id).to_string());
        }
    }
    // Commit now rather than wait for the next auto commit.
    consumer.commit_sync()?;
    consumer.shutdown();
    Ok(outcome)
}

fn main() -> Result<(), Box<dyn Error>> {
    env_logger::init();
    let namesrv = std::env::var("NAMESRV_ADDR").unwrap_or_else(|_| "127.0.0.1:9876".into());
    let outcome = run(&namesrv, 20)?;
    let missing = outcome.sent.difference(&outcome.polled).count();
    println!(
        "sent {} messages, polled {} in {} polls ({missing} missing)",
        outcome.sent.len(),
        outcome.polled.len(),
        outcome.polls
    );
    Ok(())
}
