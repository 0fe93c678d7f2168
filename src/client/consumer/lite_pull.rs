//! `LitePullConsumer` (RocketMQ: DefaultLitePullConsumer): `subscribe`,
//! `start`, then `poll(timeout)` in the application's own loop; queues are
//! rebalanced automatically and offsets committed automatically (or by
//! `commit_sync`).
//!
//! It shares the push consumer's machinery: `RebalanceService` assigns the
//! queues, `PullMessageService` long-polls them with the same flow control,
//! and the pulled messages wait in a poll queue instead of going to a
//! listener. (Apache runs the lite consumer's pulls on its own
//! `PullMsgThread-<group>` pool; here they share the instance's pull thread.)

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::client::config::ClientConfig;
use crate::client::consumer::allocate::{AllocateStrategy, Averagely};
use crate::client::consumer::process_queue::ProcessQueue;
use crate::client::consumer::push::{ConsumeService, PushConsumerConfig, PushInner, start_pull_driven};
use crate::client::consumer::{ConsumeFromWhere, ConsumerInner, MessageModel};
use crate::client::instance::{ClientError, ServiceState};
use crate::common::message::MessageExt;
use crate::common::queue::BlockingQueue;
use crate::common::time::now_millis;
use crate::common::wait::Deadline;
use crate::remoting::body::{MessageQueue, SubscriptionData};

/// RocketMQ: DefaultLitePullConsumer settings.
#[derive(Clone)]
pub struct LitePullConsumerConfig {
    pub group: String,
    pub message_model: MessageModel,
    pub consume_from_where: ConsumeFromWhere,
    /// CONSUME_FROM_TIMESTAMP's start in milliseconds.
    pub consume_timestamp: i64,
    pub allocate_strategy: Arc<dyn AllocateStrategy>,
    /// autoCommit, true: polled messages count as consumed, committed
    /// every `auto_commit_interval`.
    pub auto_commit: bool,
    /// autoCommitIntervalMillis, 5 s.
    pub auto_commit_interval: Duration,
    /// pullBatchSize, 10.
    pub pull_batch_size: i32,
    /// pullThresholdForQueue, 1000.
    pub pull_threshold_for_queue: usize,
    /// pullThresholdSizeForQueue, 100 MiB.
    pub pull_threshold_size_for_queue_mib: u64,
    /// consumeMaxSpan, 2000.
    pub consume_max_span: i64,
    /// Broadcasting offsets live under this directory.
    pub offset_store_dir: PathBuf,
}

impl LitePullConsumerConfig {
    pub fn new(group: impl Into<String>) -> Self {
        let push = PushConsumerConfig::new(group);
        LitePullConsumerConfig {
            group: push.group,
            message_model: MessageModel::Clustering,
            consume_from_where: ConsumeFromWhere::LastOffset,
            consume_timestamp: push.consume_timestamp,
            allocate_strategy: Arc::new(Averagely),
            auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            pull_batch_size: 10,
            pull_threshold_for_queue: 1000,
            pull_threshold_size_for_queue_mib: 100,
            consume_max_span: 2000,
            offset_store_dir: push.offset_store_dir,
        }
    }

    fn as_push(&self) -> PushConsumerConfig {
        PushConsumerConfig {
            message_model: self.message_model,
            consume_from_where: self.consume_from_where,
            consume_timestamp: self.consume_timestamp,
            allocate_strategy: self.allocate_strategy.clone(),
            pull_batch_size: self.pull_batch_size,
            pull_threshold_for_queue: self.pull_threshold_for_queue,
            pull_threshold_size_for_queue_mib: self.pull_threshold_size_for_queue_mib,
            consume_concurrently_max_span: self.consume_max_span,
            offset_store_dir: self.offset_store_dir.clone(),
            ..PushConsumerConfig::new(self.group.clone())
        }
    }
}

struct Pulled {
    msgs: Vec<MessageExt>,
    pq: Arc<ProcessQueue>,
    mq: MessageQueue,
}

/// The lite consumer's consume service: pulled batches wait for `poll`.
pub struct PollService {
    queue: BlockingQueue<Pulled>,
    /// Offsets of polled messages not committed yet.
    polled: Mutex<HashMap<MessageQueue, i64>>,
    next_auto_commit: Mutex<i64>,
    pub(crate) auto_commit: bool,
}

impl PollService {
    fn new(auto_commit: bool) -> Self {
        PollService {
            auto_commit,
            queue: BlockingQueue::new(usize::MAX / 2),
            polled: Mutex::default(),
            next_auto_commit: Mutex::new(0),
        }
    }

    pub(crate) fn submit(&self, msgs: Vec<MessageExt>, pq: &Arc<ProcessQueue>, mq: &MessageQueue) {
        if self.queue.try_push(Pulled { msgs, pq: pq.clone(), mq: mq.clone() }).is_err() {
            // Only after shutdown: the messages stay uncommitted.
            log::info!("the lite pull consumer is stopped; pulled messages are left unconsumed");
        }
    }

    pub(crate) fn shutdown(&self) {
        self.queue.close();
    }
}

/// A lite pull consumer (RocketMQ: DefaultLitePullConsumer).
pub struct LitePullConsumer {
    config: LitePullConsumerConfig,
    client_config: ClientConfig,
    subscriptions: Mutex<Vec<SubscriptionData>>,
    inner: Mutex<Option<Arc<PushInner>>>,
    state: Mutex<ServiceState>,
}

impl LitePullConsumer {
    pub fn new(config: LitePullConsumerConfig, client_config: ClientConfig) -> Self {
        LitePullConsumer {
            config,
            client_config,
            subscriptions: Mutex::default(),
            inner: Mutex::new(None),
            state: Mutex::new(ServiceState::CreateJust),
        }
    }

    /// Subscribes to `topic` with a TAG expression.
    pub fn subscribe(&self, topic: &str, expression: &str) -> Result<(), ClientError> {
        crate::client::consumer::push::subscribe(&self.subscriptions, self.inner.lock().as_ref(), topic, expression)
    }

    pub fn start(&self) -> Result<(), ClientError> {
        let mut state = self.state.lock();
        if *state != ServiceState::CreateJust {
            return Err(ClientError::State(format!(
                "The LitePullConsumer service state not OK, maybe started once, {:?}",
                *state
            )));
        }
        let subs: BTreeMap<String, SubscriptionData> =
            self.subscriptions.lock().iter().map(|s| (s.topic.clone(), s.clone())).collect();
        let started = start_pull_driven(&self.config.as_push(), &self.client_config, subs, false, || {
            Ok(ConsumeService::Poll(PollService::new(self.config.auto_commit)))
        });
        match started {
            Ok(inner) => {
                *self.inner.lock() = Some(inner.clone());
                *state = ServiceState::Running;
                inner.after_start();
                Ok(())
            }
            Err(e) => {
                *state = ServiceState::StartFailed;
                Err(e)
            }
        }
    }

    fn running(&self) -> Result<Arc<PushInner>, ClientError> {
        self.inner
            .lock()
            .clone()
            .ok_or_else(|| ClientError::State("The LitePullConsumer service state not OK, maybe not started".into()))
    }

    /// The next pulled messages (one pulled batch of one queue), or an
    /// empty list when none came within `timeout`. With auto commit, the
    /// messages count as consumed once returned.
    pub fn poll(&self, timeout: Duration) -> Result<Vec<MessageExt>, ClientError> {
        let inner = self.running()?;
        let ConsumeService::Poll(service) = &inner.consume else { return Ok(Vec::new()) };
        if self.config.auto_commit {
            let due = {
                let mut next = service.next_auto_commit.lock();
                let now = now_millis();
                let due = now >= *next;
                if due {
                    *next = now + self.config.auto_commit_interval.as_millis() as i64;
                }
                due
            };
            if due {
                commit(&inner, service);
            }
        }
        let deadline = Deadline::after(timeout);
        while let Some(mut p) = service.queue.pop_until(deadline) {
            if p.pq.is_dropped() {
                continue;
            }
            let offset = p.pq.remove_messages(&p.msgs);
            if offset >= 0 {
                service.polled.lock().insert(p.mq.clone(), offset);
            }
            inner.reset_retry_topic(&mut p.msgs);
            return Ok(p.msgs);
        }
        Ok(Vec::new())
    }

    /// Commits the offsets of everything polled so far and sends them to
    /// the broker now (RocketMQ: commitSync).
    pub fn commit_sync(&self) -> Result<(), ClientError> {
        let inner = self.running()?;
        if let ConsumeService::Poll(service) = &inner.consume {
            commit(&inner, service);
        }
        Ok(())
    }

    /// The queues this consumer owns now.
    pub fn assignment(&self) -> Vec<MessageQueue> {
        self.inner.lock().as_ref().map(|i| i.rebalance.owned_queues()).unwrap_or_default()
    }

    /// Stops pulling and polling; with auto commit, commits what was polled.
    pub fn shutdown(&self) {
        let mut state = self.state.lock();
        if *state != ServiceState::Running {
            return;
        }
        if let Some(inner) = self.inner.lock().take() {
            if self.config.auto_commit
                && let ConsumeService::Poll(service) = &inner.consume
            {
                move_polled_to_store(&inner, service);
            }
            inner.shutdown();
        }
        *state = ServiceState::ShutdownAlready;
    }
}

impl Drop for LitePullConsumer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn move_polled_to_store(inner: &PushInner, service: &PollService) {
    let polled: Vec<(MessageQueue, i64)> = service.polled.lock().drain().collect();
    for (mq, offset) in polled {
        if inner.rebalance.process_queue(&mq).is_some_and(|pq| !pq.is_dropped()) {
            inner.offset_store.update_offset(&mq, offset, true);
        }
    }
}

fn commit(inner: &PushInner, service: &PollService) {
    move_polled_to_store(inner, service);
    inner.persist_consumer_offset();
}
