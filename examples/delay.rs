//! Delayed messages: a message with a delay level is held by the broker and
//! delivered to its topic only after that level's delay. The levels are the
//! broker's `messageDelayLevel` setting, by default
//! "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h" (level 1 is
//! 1 s, level 2 is 5 s, ...); arbitrary delays are not possible.
//!
//! make run                                  # in another terminal
//! cargo run --example delay                 # level 2: about 5 s

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

pub const TOPIC: &str = "DelayTopic";
pub const PRODUCER_GROUP: &str = "delay_producer";
pub const CONSUMER_GROUP: &str = "delay_consumer";

/// The delay of `level` with the broker's default levels.
pub fn level_delay(level: i32) -> Option<Duration> {
    const SECONDS: [u64; 18] = [1, 5, 10, 30, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600, 1200, 1800, 3600, 7200];
    let i = usize::try_from(level).ok()?.checked_sub(1)?;
    SECONDS.get(i).map(|s| Duration::from_secs(*s))
}

/// When the delayed message arrived.
#[derive(Debug)]
pub struct Outcome {
    pub level: i32,
    pub msg_id: String,
    /// From just before the send until the listener got the message.
    pub waited: Duration,
    /// The stored message's store time minus its born time: the delay as
    /// the broker applied it.
    pub stored_after: Duration,
}

/// Sends one message with delay `level` and waits for it.
pub fn run(namesrv: &str, level: i32) -> Result<Outcome, Box<dyn Error>> {
    let delay = level_delay(level).ok_or_else(|| format!("no delay level {level}"))?;
    // The producer and the consumer share one client instance, by its name.
    let client =
        ClientConfig { namesrv_addr: Some(namesrv.into()), instance_name: CONSUMER_GROUP.into(), ..Default::default() };

    let producer = Producer::new(ProducerConfig::new(PRODUCER_GROUP), client.clone());
    producer.start()?;
    let mut msg = Message::new(TOPIC, format!("delayed by level {level}"));
    msg.set_delay_level(level);
    let sent_at = Instant::now();
    let msg_id = producer.send(msg)?.msg_id;
    producer.shutdown();

    // The send created the topic, so the consumer finds it at once. Its
    // start-up overlaps the delay: the broker's store time of the message
    // (`stored_after`) shows the delay whatever the consumer did.
    let mut config = PushConsumerConfig::new(CONSUMER_GROUP);
    config.consume_from_where = ConsumeFromWhere::FirstOffset;
    let consumer = PushConsumer::new(config, client);
    consumer.subscribe(TOPIC, "*")?;
    let (tx, rx) = mpsc::channel();
    consumer.register_message_listener(MessageListener::concurrently(
        move |msgs: &[MessageExt], _ctx: &mut ConsumeConcurrentlyContext| {
            let now = Instant::now();
            for m in msgs {
                let _ = tx.send((now, m.clone()));
            }
            ConsumeConcurrentlyStatus::ConsumeSuccess
        },
    ));
    consumer.start()?;

    let deadline = sent_at + delay + Duration::from_secs(30);
    let outcome = loop {
        let Ok((at, m)) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) else {
            return Err(format!("the delayed message {msg_id} did not arrive within {delay:?} + 30 s").into());
        };
        // The topic may hold messages of earlier runs.
        if m.message.unique_key() == Some(msg_id.as_str()) {
            let stored_after = u64::try_from(m.store_timestamp - m.born_timestamp).unwrap_or(0);
            break Outcome { level, msg_id, waited: at - sent_at, stored_after: Duration::from_millis(stored_after) };
        }
    };
    consumer.shutdown();
    Ok(outcome)
}

fn main() -> Result<(), Box<dyn Error>> {
    env_logger::init();
    let namesrv = std::env::var("NAMESRV_ADDR").unwrap_or_else(|_| "127.0.0.1:9876".into());
    let o = run(&namesrv, 2)?;
    println!(
        "message {} with delay level {} ({:?}) arrived after {:?} (stored {:?} after it was sent)",
        o.msg_id,
        o.level,
        level_delay(o.level).unwrap_or_default(),
        o.waited,
        o.stored_after
    );
    Ok(())
}
