//! The consumers (RocketMQ: client.consumer): the push consumer built on
//! long-polling pulls, the pull consumer and the lite pull consumer, with
//! the pieces they share: process queues, offset stores, rebalancing and
//! allocation strategies, and the consume services.

pub mod allocate;
pub mod consume_concurrently;
pub mod consume_orderly;
pub mod lite_pull;
pub mod offset_store;
pub mod process_queue;
pub mod pull;
pub mod pull_service;
pub mod push;
pub mod rebalance;

use std::collections::HashMap;
use std::sync::Arc;

use crate::common::ThreadPool;
use crate::common::message::MessageExt;
use crate::remoting::body::{ConsumerData, MessageQueue};

pub use lite_pull::{LitePullConsumer, LitePullConsumerConfig};
pub use pull::{PullConsumer, PullConsumerConfig};
pub use push::{PushConsumer, PushConsumerConfig};

/// The consume pool's queue bound: Apache's is unbounded; this one is never
/// reached in practice (pulls stop at 1000 cached messages per queue).
const CONSUME_QUEUE_CAPACITY: usize = 1 << 22;

/// `ConsumeMessageThread_1..threads`, where both consume services run the
/// listener (RocketMQ: consumeExecutor).
fn consume_pool(threads: usize) -> std::io::Result<Arc<ThreadPool>> {
    ThreadPool::new("ConsumeMessageThread_", "consumer", threads, CONSUME_QUEUE_CAPACITY).map(Arc::new)
}

/// No room for one more consume request: the caller tries again later
/// (`try_execute` would drop the job, not hand it back).
fn consume_pool_full(pool: &ThreadPool) -> bool {
    pool.queued() + 1 >= CONSUME_QUEUE_CAPACITY
}

/// RocketMQ: MessageModel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageModel {
    /// Each message goes to one consumer of the group; offsets on the broker.
    Clustering,
    /// Each consumer gets every message; offsets in a local file.
    Broadcasting,
}

impl MessageModel {
    /// The heartbeat's name for it.
    pub fn name(self) -> &'static str {
        match self {
            MessageModel::Clustering => "CLUSTERING",
            MessageModel::Broadcasting => "BROADCASTING",
        }
    }
}

/// Where a group with no committed offset starts (RocketMQ: ConsumeFromWhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeFromWhere {
    LastOffset,
    FirstOffset,
    /// From the first message stored at or after `consume_timestamp`.
    Timestamp,
}

impl ConsumeFromWhere {
    pub fn name(self) -> &'static str {
        match self {
            ConsumeFromWhere::LastOffset => "CONSUME_FROM_LAST_OFFSET",
            ConsumeFromWhere::FirstOffset => "CONSUME_FROM_FIRST_OFFSET",
            ConsumeFromWhere::Timestamp => "CONSUME_FROM_TIMESTAMP",
        }
    }
}

/// RocketMQ: ConsumeConcurrentlyStatus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeConcurrentlyStatus {
    ConsumeSuccess,
    ReconsumeLater,
}

/// What a concurrent listener may set (RocketMQ: ConsumeConcurrentlyContext).
#[derive(Debug, Clone)]
pub struct ConsumeConcurrentlyContext {
    pub message_queue: MessageQueue,
    /// 0: the broker picks (3 + reconsume times); negative: straight to the
    /// dead-letter queue; positive: that delay level.
    pub delay_level_when_next_consume: i32,
    /// With ConsumeSuccess, messages after this index are sent back.
    pub ack_index: i32,
}

/// RocketMQ: ConsumeOrderlyStatus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeOrderlyStatus {
    Success,
    /// Try the same messages again after `suspend_current_queue_time_millis`.
    SuspendCurrentQueueAMoment,
}

/// What an orderly listener may set (RocketMQ: ConsumeOrderlyContext).
#[derive(Debug, Clone)]
pub struct ConsumeOrderlyContext {
    pub message_queue: MessageQueue,
    /// -1: the consumer's `suspend_current_queue_time_millis`.
    pub suspend_current_queue_time_millis: i64,
}

/// A listener that may be called on many threads at once for one queue
/// (RocketMQ: MessageListenerConcurrently). Closures implement it.
pub trait MessageListenerConcurrently: Send + Sync + 'static {
    fn consume_message(&self, msgs: &[MessageExt], ctx: &mut ConsumeConcurrentlyContext) -> ConsumeConcurrentlyStatus;
}

impl<F> MessageListenerConcurrently for F
where
    F: Fn(&[MessageExt], &mut ConsumeConcurrentlyContext) -> ConsumeConcurrentlyStatus + Send + Sync + 'static,
{
    fn consume_message(&self, msgs: &[MessageExt], ctx: &mut ConsumeConcurrentlyContext) -> ConsumeConcurrentlyStatus {
        self(msgs, ctx)
    }
}

/// A listener called by one thread at a time per queue, in queue order
/// (RocketMQ: MessageListenerOrderly). Closures implement it.
pub trait MessageListenerOrderly: Send + Sync + 'static {
    fn consume_message(&self, msgs: &[MessageExt], ctx: &mut ConsumeOrderlyContext) -> ConsumeOrderlyStatus;
}

impl<F> MessageListenerOrderly for F
where
    F: Fn(&[MessageExt], &mut ConsumeOrderlyContext) -> ConsumeOrderlyStatus + Send + Sync + 'static,
{
    fn consume_message(&self, msgs: &[MessageExt], ctx: &mut ConsumeOrderlyContext) -> ConsumeOrderlyStatus {
        self(msgs, ctx)
    }
}

/// The listener of a push consumer: its kind picks the consume service.
#[derive(Clone)]
pub enum MessageListener {
    Concurrently(Arc<dyn MessageListenerConcurrently>),
    Orderly(Arc<dyn MessageListenerOrderly>),
}

impl MessageListener {
    pub fn concurrently(l: impl MessageListenerConcurrently) -> Self {
        MessageListener::Concurrently(Arc::new(l))
    }
    pub fn orderly(l: impl MessageListenerOrderly) -> Self {
        MessageListener::Orderly(Arc::new(l))
    }
}

/// Runs a listener call; a panic counts as `failed` and is logged, so a
/// listener can never kill a consume thread.
pub(crate) fn call_listener<T>(what: &str, failed: T, f: impl FnOnce() -> T) -> T {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            log::warn!("{what}: the listener panicked ({msg}); the messages will be consumed again");
            failed
        }
    }
}

/// Runs a listener for CONSUME_MESSAGE_DIRECTLY and reports its verdict
/// and time; a panic is CR_THROW_EXCEPTION. Offsets are not touched.
pub(crate) fn consume_directly(order: bool, f: impl FnOnce() -> ConsumeDirectlyStatus) -> ConsumeDirectlyResult {
    let started = std::time::Instant::now();
    let (status, remark) = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(s) => (s, String::new()),
        Err(_) => (ConsumeDirectlyStatus::Error, "the listener panicked".to_string()),
    };
    ConsumeDirectlyResult {
        order,
        auto_commit: true,
        status,
        remark,
        spent_time_mills: started.elapsed().as_millis() as i64,
    }
}

/// What the client instance needs from each consumer of a group (RocketMQ:
/// MQConsumerInner): its heartbeat entry, rebalancing, offset persistence,
/// and the requests brokers send about it.
pub trait ConsumerInner: Send + Sync + 'static {
    fn group(&self) -> &str;
    /// The heartbeat's entry for this consumer.
    fn consumer_data(&self) -> ConsumerData;
    fn do_rebalance(&self);
    fn persist_consumer_offset(&self);
    /// Pulls for `request` (push consumers only; others ignore it).
    fn pull_message(self: Arc<Self>, _request: pull_service::PullRequest) {}
    /// GET_CONSUMER_RUNNING_INFO's body (RocketMQ: ConsumerRunningInfo), JSON.
    fn running_info(&self) -> crate::remoting::body::ConsumerRunningInfo;
    /// RESET_CONSUMER_CLIENT_OFFSET: consume `topic` from these offsets.
    fn reset_offset(&self, _topic: &str, _offsets: &HashMap<MessageQueue, i64>) {}
    /// CONSUME_MESSAGE_DIRECTLY: hand `msg` to the listener now.
    fn consume_message_directly(&self, _msg: MessageExt, _broker_name: Option<&str>) -> Option<ConsumeDirectlyResult> {
        None
    }
}

/// RocketMQ: CMResult.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeDirectlyStatus {
    Success,
    Later,
    Rollback,
    Commit,
    Error,
    ReturnNull,
}

impl ConsumeDirectlyStatus {
    pub fn name(self) -> &'static str {
        match self {
            ConsumeDirectlyStatus::Success => "CR_SUCCESS",
            ConsumeDirectlyStatus::Later => "CR_LATER",
            ConsumeDirectlyStatus::Rollback => "CR_ROLLBACK",
            ConsumeDirectlyStatus::Commit => "CR_COMMIT",
            ConsumeDirectlyStatus::Error => "CR_THROW_EXCEPTION",
            ConsumeDirectlyStatus::ReturnNull => "CR_RETURN_NULL",
        }
    }
}

/// CONSUME_MESSAGE_DIRECTLY's answer (RocketMQ: ConsumeMessageDirectlyResult).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumeDirectlyResult {
    pub order: bool,
    pub auto_commit: bool,
    pub status: ConsumeDirectlyStatus,
    pub remark: String,
    pub spent_time_mills: i64,
}
