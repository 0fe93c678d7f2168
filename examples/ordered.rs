//! Ordered messages: the steps of each order are sent to the queue the
//! order id picks, so they stay in one queue in the order they were sent,
//! and an orderly push consumer takes each queue one message at a time, so
//! every order's steps arrive in that order (different orders interleave).
//!
//! make run                                  # in another terminal
//! cargo run --example ordered

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rmq::client::config::ClientConfig;
use rmq::client::consumer::{
    ConsumeFromWhere, ConsumeOrderlyContext, ConsumeOrderlyStatus, MessageListener, PushConsumer, PushConsumerConfig,
};
use rmq::client::producer::{Producer, ProducerConfig};
use rmq::common::message::{Message, MessageExt};
use rmq::remoting::body::MessageQueue;

pub const TOPIC: &str = "OrderedTopic";
pub const PRODUCER_GROUP: &str = "ordered_producer";
pub const CONSUMER_GROUP: &str = "ordered_consumer";
/// The steps every order goes through, in order.
pub const STEPS: [&str; 4] = ["created", "paid", "shipped", "delivered"];
pub const ORDERS: u64 = 10;

/// The step of an order as the consumer saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub order_id: u64,
    pub step: String,
    pub queue_id: i32,
}

/// What was sent and received.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The queue each order was sent to.
    pub sent_to: BTreeMap<u64, i32>,
    /// Every step in the order the listener got it.
    pub received: Vec<Step>,
}

/// The queue of `order_id`: the same one for every step of an order.
fn queue_of_order(queues: &[MessageQueue], order_id: u64) -> MessageQueue {
    queues[(order_id % queues.len() as u64) as usize].clone()
}

pub fn run(namesrv: &str) -> Result<Outcome, Box<dyn Error>> {
    let mut outcome = Outcome::default();
    // The producer and the consumer share one client instance, by its name.
    let client =
        ClientConfig { namesrv_addr: Some(namesrv.into()), instance_name: CONSUMER_GROUP.into(), ..Default::default() };

    let producer = Producer::new(ProducerConfig::new(PRODUCER_GROUP), client.clone());
    producer.start()?;
    // Step by step over all orders, so that orders interleave in the queues.
    for step in STEPS {
        for order_id in 0..ORDERS {
            let mut msg = Message::new(TOPIC, format!("{order_id}:{step}"));
            msg.set_tags(step);
            msg.set_keys([format!("order-{order_id}")]);
            // A selector send is not retried on another queue: that would
            // break the order. A failure is the application's to handle.
            let r = producer.send_with_selector(msg, |queues, _| queue_of_order(queues, order_id))?;
            outcome.sent_to.insert(order_id, r.queue.queue_id);
        }
    }
    producer.shutdown();

    let mut config = PushConsumerConfig::new(CONSUMER_GROUP);
    config.consume_from_where = ConsumeFromWhere::FirstOffset;
    let consumer = PushConsumer::new(config, client);
    consumer.subscribe(TOPIC, "*")?;
    let (tx, rx) = mpsc::channel();
    // An orderly listener gets one queue's messages one call at a time, in
    // queue order, while the consumer holds that queue's lock on the broker.
    consumer.register_message_listener(MessageListener::orderly(
        move |msgs: &[MessageExt], _ctx: &mut ConsumeOrderlyContext| {
            for m in msgs {
                let body = String::from_utf8_lossy(m.body());
                let Some((order_id, step)) = body.split_once(':') else {
                    // Not one of ours: skip it rather than stop the queue.
                    continue;
                };
                let Ok(order_id) = order_id.parse() else { continue };
                let _ = tx.send(Step { order_id, step: step.to_string(), queue_id: m.queue_id });
            }
            // SuspendCurrentQueueAMoment would deliver the same messages
            // again after a pause, still before anything later in the queue.
            ConsumeOrderlyStatus::Success
        },
    ));
    consumer.start()?;

    let expected = STEPS.len() * ORDERS as usize;
    let deadline = Instant::now() + Duration::from_secs(30);
    while outcome.received.len() < expected {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(step) => outcome.received.push(step),
            Err(_) => break,
        }
    }
    consumer.shutdown();
    Ok(outcome)
}

fn main() -> Result<(), Box<dyn Error>> {
    env_logger::init();
    let namesrv = std::env::var("NAMESRV_ADDR").unwrap_or_else(|_| "127.0.0.1:9876".into());
    let outcome = run(&namesrv)?;
    for s in &outcome.received {
        println!("queue {} order {} {}", s.queue_id, s.order_id, s.step);
    }
    let mut by_order: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    for s in &outcome.received {
        by_order.entry(s.order_id).or_default().push(&s.step);
    }
    for (order_id, steps) in by_order {
        println!("order {order_id}: {}", steps.join(" -> "));
    }
    Ok(())
}
