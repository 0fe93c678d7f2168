//! Batch sends: many small messages of one topic in one request, stored
//! together in one queue. A batch must stay under the broker's message size
//! limit (4 MiB), so a long list is split into batches by size first.
//! Delayed messages cannot be batched.
//!
//! make run                                  # in another terminal
//! cargo run --example batch

use std::error::Error;

use rmq::client::config::ClientConfig;
use rmq::client::producer::{Producer, ProducerConfig, SendResult};
use rmq::common::message::Message;

pub const TOPIC: &str = "BatchTopic";
pub const GROUP: &str = "batch_producer";
pub const MESSAGES: usize = 100;
/// The most bytes one batch may take: well under the broker's 4 MiB, and
/// small enough here that this example's messages need two batches.
pub const BATCH_LIMIT: usize = 64 * 1024;

/// About what `msg` adds to a batch: its body and properties, and the
/// fields around them.
pub fn batch_size(msg: &Message) -> usize {
    let properties: usize = msg.properties.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    20 + msg.body.len() + 2 + properties
}

/// Splits `msgs`, in order, into batches of at most `limit` bytes each (a
/// message larger than that alone goes alone, for the broker to judge).
pub fn split_by_size(msgs: Vec<Message>, limit: usize) -> Vec<Vec<Message>> {
    let mut batches = Vec::new();
    let mut batch = Vec::new();
    let mut size = 0;
    for msg in msgs {
        let n = batch_size(&msg);
        if !batch.is_empty() && size + n > limit {
            batches.push(std::mem::take(&mut batch));
            size = 0;
        }
        size += n;
        batch.push(msg);
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

/// Sends [`MESSAGES`] messages of about 1 KiB in batches of at most
/// [`BATCH_LIMIT`] bytes; one result per batch.
pub fn run(namesrv: &str) -> Result<Vec<SendResult>, Box<dyn Error>> {
    // Clients with the same instance name share one client instance.
    let client = ClientConfig { namesrv_addr: Some(namesrv.into()), instance_name: GROUP.into(), ..Default::default() };
    let producer = Producer::new(ProducerConfig::new(GROUP), client);
    producer.start()?;
    let msgs: Vec<Message> = (0..MESSAGES)
        .map(|i| {
            let mut msg = Message::new(TOPIC, format!("batch message {i:03} {}", ".".repeat(1000)));
            msg.set_tags("TagA");
            msg.set_keys([format!("batch-key-{i}")]);
            msg
        })
        .collect();
    let mut results = Vec::new();
    for batch in split_by_size(msgs, BATCH_LIMIT) {
        // One request, one queue, consecutive offsets; retried as a whole.
        results.push(producer.send_batch(batch)?);
    }
    producer.shutdown();
    Ok(results)
}

fn main() -> Result<(), Box<dyn Error>> {
    env_logger::init();
    let namesrv = std::env::var("NAMESRV_ADDR").unwrap_or_else(|_| "127.0.0.1:9876".into());
    for r in run(&namesrv)? {
        // msg_id lists the id of every message of the batch.
        let ids = r.msg_id.split(',').count();
        println!("{:?}: {ids} messages in queue {} from offset {}", r.status, r.queue.queue_id, r.queue_offset);
    }
    Ok(())
}
