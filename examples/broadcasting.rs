//! Broadcasting: every consumer of the group gets every message (with the
//! default, clustering, each message goes to one of them). Each consumer
//! keeps its own offsets in a local file, `<dir>/<client id>/<group>/offsets.json`,
//! instead of on the broker. Two consumers run here, as two processes of one
//! application would.
//!
//! make run                                  # in another terminal
//! cargo run --example broadcasting          # offsets under ~/.rocketmq_offsets

use std::collections::BTreeSet;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rmq::client::config::ClientConfig;
use rmq::client::consumer::{
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, ConsumeFromWhere, MessageListener, MessageModel,
    PushConsumer, PushConsumerConfig,
};
use rmq::client::producer::{Producer, ProducerConfig};
use rmq::common::message::{Message, MessageExt};

pub const TOPIC: &str = "BroadcastTopic";
pub const PRODUCER_GROUP: &str = "broadcast_producer";
pub const CONSUMER_GROUP: &str = "broadcast_consumer";
pub const MESSAGES: usize = 20;
const CONSUMERS: usize = 2;

/// What each consumer got.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The ids of the messages sent.
    pub sent: BTreeSet<String>,
    /// Per consumer, the ids of the messages it got.
    pub received: Vec<BTreeSet<String>>,
    /// Per consumer, the file its offsets were saved to at shutdown.
    pub offset_files: Vec<PathBuf>,
}

/// Sends [`MESSAGES`] messages and has two broadcasting consumers of one
/// group receive them; their offsets go under `offset_dir` (`None`: the
/// default, `~/.rocketmq_offsets`, as Apache's clients).
pub fn run(namesrv: &str, offset_dir: Option<&Path>) -> Result<Outcome, Box<dyn Error>> {
    let mut outcome = Outcome { received: vec![BTreeSet::new(); CONSUMERS], ..Default::default() };
    let client = |instance: String| ClientConfig {
        namesrv_addr: Some(namesrv.into()),
        instance_name: instance,
        ..Default::default()
    };

    let producer = Producer::new(ProducerConfig::new(PRODUCER_GROUP), client(PRODUCER_GROUP.into()));
    producer.start()?;
    for i in 0..MESSAGES {
        let r = producer.send(Message::new(TOPIC, format!("broadcast {i}")))?;
        outcome.sent.insert(r.msg_id);
    }
    producer.shutdown();

    let (tx, rx) = mpsc::channel();
    let mut consumers = Vec::new();
    for n in 0..CONSUMERS {
        let mut config = PushConsumerConfig::new(CONSUMER_GROUP);
        config.message_model = MessageModel::Broadcasting;
        config.consume_from_where = ConsumeFromWhere::FirstOffset;
        if let Some(dir) = offset_dir {
            config.offset_store_dir = dir.to_path_buf();
        }
        let offset_dir = config.offset_store_dir.clone();
        // One group, two client ids: in one process each consumer needs an
        // instance name of its own (two processes would differ anyway).
        let client = client(format!("{CONSUMER_GROUP}_{n}"));
        outcome.offset_files.push(offset_dir.join(client.client_id()).join(CONSUMER_GROUP).join("offsets.json"));
        let consumer = PushConsumer::new(config, client);
        consumer.subscribe(TOPIC, "*")?;
        let tx = tx.clone();
        consumer.register_message_listener(MessageListener::concurrently(
            move |msgs: &[MessageExt], _ctx: &mut ConsumeConcurrentlyContext| {
                for m in msgs {
                    let _ = tx.send((n, m.message.unique_key().unwrap_or(&m.msg_id).to_string()));
                }
                ConsumeConcurrentlyStatus::ConsumeSuccess
            },
        ));
        consumer.start()?;
        consumers.push(consumer);
    }

    let deadline = Instant::now() + Duration::from_secs(30);
    while outcome.received.iter().any(|got| !outcome.sent.is_subset(got)) {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((n, id)) => {
                outcome.received[n].insert(id);
            }
            Err(_) => break,
        }
    }
    // Shutting down writes each consumer's offsets file.
    for consumer in &consumers {
        consumer.shutdown();
    }
    Ok(outcome)
}

fn main() -> Result<(), Box<dyn Error>> {
    env_logger::init();
    let namesrv = std::env::var("NAMESRV_ADDR").unwrap_or_else(|_| "127.0.0.1:9876".into());
    let outcome = run(&namesrv, None)?;
    println!("sent {} messages", outcome.sent.len());
    for (n, (got, file)) in outcome.received.iter().zip(&outcome.offset_files).enumerate() {
        let missing = outcome.sent.difference(got).count();
        println!("consumer {n}: got {} of them ({missing} missing); offsets in {}", got.len(), file.display());
    }
    Ok(())
}
