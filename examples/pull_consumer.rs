//! A pull consumer: the application picks the queues and offsets itself.
//! It reads each queue of the topic from the group's stored offset to the
//! end and stores the new offset, so a second run reads only what came
//! since. The stored offsets reach the broker within 5 s and at shutdown.
//!
//! make run                                  # in another terminal
//! cargo run --example pull_consumer         # twice: the second run reads only the new messages

use std::collections::BTreeMap;
use std::error::Error;
use std::time::Duration;

use rmq::client::api::PullStatus;
use rmq::client::config::ClientConfig;
use rmq::client::consumer::{PullConsumer, PullConsumerConfig};
use rmq::client::producer::{Producer, ProducerConfig};
use rmq::common::message::Message;
use rmq::common::wait;

pub const TOPIC: &str = "PullTopic";
pub const PRODUCER_GROUP: &str = "pull_producer";
pub const CONSUMER_GROUP: &str = "pull_consumer";
/// The most messages one pull brings.
const PULL_BATCH: i32 = 32;

/// What one run sent and read.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The ids of the messages sent, with the queue each went to.
    pub sent: BTreeMap<String, i32>,
    /// The ids of the messages read, in the order read.
    pub read: Vec<String>,
    /// Queue id -> where the group's next read of it starts: the offsets stored.
    pub offsets: BTreeMap<i32, i64>,
}

/// Sends `count` messages, then reads every queue of the topic from the
/// group's stored offset to its end.
pub fn run(namesrv: &str, count: usize) -> Result<Outcome, Box<dyn Error>> {
    let mut outcome = Outcome::default();
    // The producer and the consumer share one client instance, by its name.
    let client =
        ClientConfig { namesrv_addr: Some(namesrv.into()), instance_name: CONSUMER_GROUP.into(), ..Default::default() };

    let producer = Producer::new(ProducerConfig::new(PRODUCER_GROUP), client.clone());
    producer.start()?;
    // Queue id -> the offset after the last message this run sent there.
    let mut sent_ends = BTreeMap::new();
    for i in 0..count {
        let r = producer.send(Message::new(TOPIC, format!("pull me {i}")))?;
        sent_ends.insert(r.queue.queue_id, r.queue_offset + 1);
        outcome.sent.insert(r.msg_id, r.queue.queue_id);
    }
    producer.shutdown();

    let consumer = PullConsumer::new(PullConsumerConfig::new(CONSUMER_GROUP), client);
    consumer.start()?;
    for mq in consumer.fetch_subscribe_message_queues(TOPIC)? {
        // The broker answers a send once the message is stored, and makes
        // it visible to consumers a moment later (its ConsumeQueue entry is
        // written by another thread). Reading "to the end" right after
        // sending waits until the end is where the sends left it.
        let sent_end = sent_ends.get(&mq.queue_id).copied().unwrap_or(0);
        let visible = wait::until(Duration::from_secs(5), || consumer.max_offset(&mq).is_ok_and(|o| o >= sent_end));
        if !visible {
            log::warn!("{mq:?} does not show every message sent yet; reading what it shows");
        }
        // -1: the group has no offset for this queue yet; start at the
        // oldest message still stored.
        let mut offset = match consumer.fetch_consume_offset(&mq, true)? {
            o if o >= 0 => o,
            _ => consumer.min_offset(&mq)?,
        };
        loop {
            let result = consumer.pull(&mq, "*", offset, PULL_BATCH)?;
            match result.status {
                PullStatus::Found => {
                    for m in &result.msgs {
                        outcome.read.push(m.message.unique_key().unwrap_or(&m.msg_id).to_string());
                    }
                    offset = result.next_begin_offset;
                }
                // Messages were there, none matched the expression: skip them.
                PullStatus::NoMatchedMsg => offset = result.next_begin_offset,
                // At the end of the queue.
                PullStatus::NoNewMsg => break,
                // Before the first or past the last stored message: go where
                // the broker says and read on from there.
                PullStatus::OffsetIllegal if result.next_begin_offset == offset => break,
                PullStatus::OffsetIllegal => {
                    log::warn!("offset {offset} of {mq:?} is out of range; going on at {}", result.next_begin_offset);
                    offset = result.next_begin_offset;
                }
            }
            // Where the next read starts; kept in memory, sent to the broker
            // every 5 s and at shutdown.
            consumer.update_consume_offset(&mq, offset)?;
        }
        outcome.offsets.insert(mq.queue_id, offset);
    }
    consumer.shutdown();
    Ok(outcome)
}

fn main() -> Result<(), Box<dyn Error>> {
    env_logger::init();
    let namesrv = std::env::var("NAMESRV_ADDR").unwrap_or_else(|_| "127.0.0.1:9876".into());
    let outcome = run(&namesrv, 10)?;
    println!("sent {} messages, read {}", outcome.sent.len(), outcome.read.len());
    for (queue, offset) in &outcome.offsets {
        println!("queue {queue}: next offset {offset}");
    }
    Ok(())
}
