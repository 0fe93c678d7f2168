//! `PushConsumer` (RocketMQ: DefaultMQPushConsumer and its Impl): messages
//! arrive through long-polling pulls and are handed to a listener.
//!
//! The flow, thread by thread: `RebalanceService` gives this consumer its
//! queues, each with a ProcessQueue and a PullRequest -> `PullMessageService`
//! calls [`PushInner::pull_message`] (flow control, then an async
//! PULL_MESSAGE that the broker holds up to 15 s) -> the reply's callback on
//! `NettyClientPublicExecutor_N` puts the messages in the ProcessQueue,
//! submits consume requests to `ConsumeMessageThread_N` and queues the next
//! pull -> the listener's result removes the messages from the ProcessQueue
//! and advances the offset store, persisted every 5 s and on shutdown.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::client::api::{PullResult, PullStatus, pull_sys_flag};
use crate::client::config::ClientConfig;
use crate::client::consumer::allocate::{AllocateStrategy, Averagely};
use crate::client::consumer::consume_concurrently::ConcurrentlyService;
use crate::client::consumer::consume_orderly::OrderlyService;
use crate::client::consumer::offset_store::{
    LocalFileOffsetStore, OffsetStore, ReadOffsetType, RemoteBrokerOffsetStore,
};
use crate::client::consumer::process_queue::ProcessQueue;
use crate::client::consumer::pull_service::PullRequest;
use crate::client::consumer::rebalance::Rebalance;
use crate::client::consumer::{ConsumeDirectlyResult, ConsumeFromWhere, ConsumerInner, MessageListener, MessageModel};
use crate::client::instance::{ClientError, ClientInstance, ServiceState};
use crate::common::message::{MessageExt, property};
use crate::common::time::now_millis;
use crate::common::topic::retry_topic;
use crate::remoting::body::{ConsumeStatus, ConsumerData, ConsumerRunningInfo, MessageQueue, SubscriptionData};
use crate::remoting::headers::PullMessageRequestHeader;

/// How long the broker may hold a pull (RocketMQ: BROKER_SUSPEND_MAX_TIME_MILLIS).
pub const BROKER_SUSPEND_MAX_TIME: Duration = Duration::from_secs(15);
/// The client's timeout of a held pull (RocketMQ: CONSUMER_TIMEOUT_MILLIS_WHEN_SUSPEND).
pub const CONSUMER_TIMEOUT_WHEN_SUSPEND: Duration = Duration::from_secs(30);
/// Pull again after a flow-control stop (RocketMQ: PULL_TIME_DELAY_MILLS_WHEN_FLOW_CONTROL).
const DELAY_WHEN_FLOW_CONTROL: Duration = Duration::from_millis(50);
/// Pull again after a failure (RocketMQ: pullTimeDelayMillsWhenException).
const DELAY_WHEN_EXCEPTION: Duration = Duration::from_secs(3);
/// Pull again while suspended (RocketMQ: PULL_TIME_DELAY_MILLS_WHEN_SUSPEND).
const DELAY_WHEN_SUSPEND: Duration = Duration::from_secs(1);

/// RocketMQ: DefaultMQPushConsumer settings.
#[derive(Clone)]
pub struct PushConsumerConfig {
    pub group: String,
    pub message_model: MessageModel,
    pub consume_from_where: ConsumeFromWhere,
    /// CONSUME_FROM_TIMESTAMP's start in milliseconds (RocketMQ:
    /// consumeTimestamp, a yyyyMMddHHmmss string, default half an hour ago).
    pub consume_timestamp: i64,
    pub allocate_strategy: Arc<dyn AllocateStrategy>,
    /// consumeThreadMin, 20: the `ConsumeMessageThread_N` threads.
    pub consume_thread_min: usize,
    /// consumeThreadMax, 64 (as in Apache, the pool never grows past the
    /// minimum: its queue is unbounded).
    pub consume_thread_max: usize,
    /// consumeConcurrentlyMaxSpan, 2000.
    pub consume_concurrently_max_span: i64,
    /// pullThresholdForQueue, 1000 cached messages.
    pub pull_threshold_for_queue: usize,
    /// pullThresholdSizeForQueue, 100 MiB cached.
    pub pull_threshold_size_for_queue_mib: u64,
    /// pullInterval, 0.
    pub pull_interval: Duration,
    /// consumeMessageBatchMaxSize, 1.
    pub consume_message_batch_max_size: usize,
    /// pullBatchSize, 32.
    pub pull_batch_size: i32,
    /// postSubscriptionWhenPull, false.
    pub post_subscription_when_pull: bool,
    /// maxReconsumeTimes, -1: 16 for concurrent consumption, unlimited for orderly.
    pub max_reconsume_times: i32,
    /// suspendCurrentQueueTimeMillis, 1000.
    pub suspend_current_queue_time_millis: i64,
    /// consumeTimeout, 15 min: a message held by a listener longer goes back
    /// to the broker.
    pub consume_timeout: Duration,
    /// How long shutdown waits for running listener calls (RocketMQ:
    /// awaitTerminationMillisWhenShutdown, whose default 0 does not wait;
    /// ours drains).
    pub await_termination: Duration,
    /// Broadcasting offsets live under this directory (RocketMQ:
    /// rocketmq.client.localOffsetStoreDir, `~/.rocketmq_offsets`).
    pub offset_store_dir: PathBuf,
}

impl PushConsumerConfig {
    pub fn new(group: impl Into<String>) -> Self {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
        PushConsumerConfig {
            group: group.into(),
            message_model: MessageModel::Clustering,
            consume_from_where: ConsumeFromWhere::LastOffset,
            consume_timestamp: now_millis() - 30 * 60 * 1000,
            allocate_strategy: Arc::new(Averagely),
            consume_thread_min: 20,
            consume_thread_max: 64,
            consume_concurrently_max_span: 2000,
            pull_threshold_for_queue: 1000,
            pull_threshold_size_for_queue_mib: 100,
            pull_interval: Duration::ZERO,
            consume_message_batch_max_size: 1,
            pull_batch_size: 32,
            post_subscription_when_pull: false,
            max_reconsume_times: -1,
            suspend_current_queue_time_millis: 1000,
            consume_timeout: Duration::from_secs(15 * 60),
            await_termination: Duration::from_secs(30),
            offset_store_dir: home.join(".rocketmq_offsets"),
        }
    }

    /// Checks the settings as RocketMQ's checkConfig does.
    fn check(&self) -> Result<(), ClientError> {
        let bad = |m: String| Err(ClientError::State(m));
        if self.group.is_empty() || crate::common::topic::is_topic_or_group_illegal(&self.group) {
            return bad(format!("consumerGroup {:?} is empty or has illegal characters", self.group));
        }
        if self.group == "DEFAULT_CONSUMER" {
            return bad("consumerGroup can not equal DEFAULT_CONSUMER, please specify another one.".into());
        }
        if !(1..=1000).contains(&self.consume_thread_min) || self.consume_thread_max < self.consume_thread_min {
            return bad("consumeThreadMin out of range [1, 1000] or above consumeThreadMax".into());
        }
        if !(1..=65535).contains(&self.consume_concurrently_max_span) {
            return bad("consumeConcurrentlyMaxSpan out of range [1, 65535]".into());
        }
        if !(1..=65535).contains(&self.pull_threshold_for_queue) {
            return bad("pullThresholdForQueue out of range [1, 65535]".into());
        }
        if !(1..=1024).contains(&self.pull_threshold_size_for_queue_mib) {
            return bad("pullThresholdSizeForQueue out of range [1, 1024]".into());
        }
        if !(1..=1024).contains(&self.consume_message_batch_max_size) {
            return bad("consumeMessageBatchMaxSize out of range [1, 1024]".into());
        }
        if !(1..=1024).contains(&self.pull_batch_size) {
            return bad("pullBatchSize out of range [1, 1024]".into());
        }
        Ok(())
    }
}

/// The consume service the listener picked.
pub(crate) enum ConsumeService {
    Concurrently(ConcurrentlyService),
    Orderly(OrderlyService),
    /// The lite pull consumer: `poll` takes what the pulls bring.
    Poll(crate::client::consumer::lite_pull::PollService),
}

impl ConsumeService {
    /// Whether the offset store may advance on its own (past ranges the
    /// filter left out) when nothing is in flight: not when the application
    /// commits by hand.
    fn commits_on_its_own(&self) -> bool {
        !matches!(self, ConsumeService::Poll(s) if !s.auto_commit)
    }
}

/// Counters behind the running info's consume status.
#[derive(Default)]
pub(crate) struct Stats {
    pub consume_ok: AtomicU64,
    pub consume_failed: AtomicU64,
    pub consume_rt_total_ms: AtomicU64,
    pub pulls: AtomicU64,
}

/// A started push consumer's state (RocketMQ: DefaultMQPushConsumerImpl).
pub struct PushInner {
    pub(crate) config: PushConsumerConfig,
    pub(crate) instance: Arc<ClientInstance>,
    pub(crate) rebalance: Rebalance,
    pub(crate) offset_store: Arc<dyn OffsetStore>,
    pub(crate) consume: ConsumeService,
    pub(crate) stats: Stats,
    paused: AtomicBool,
    /// Set by shutdown: no new pulls, no new listener calls.
    pub(crate) stopping: AtomicBool,
    start_timestamp: i64,
}

impl PushInner {
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    fn consume_type(&self) -> &'static str {
        match self.consume {
            ConsumeService::Poll(_) => "CONSUME_ACTIVELY",
            _ => "CONSUME_PASSIVELY",
        }
    }

    pub(crate) fn orderly(&self) -> bool {
        matches!(self.consume, ConsumeService::Orderly(_))
    }

    fn later(&self, req: PullRequest, delay: Duration) {
        if let Some(ps) = self.instance.pull_service() {
            ps.execute_pull_request_later(req, delay);
        }
    }

    fn now(&self, req: PullRequest) {
        if let Some(ps) = self.instance.pull_service() {
            ps.execute_pull_request_immediately(req);
        }
    }

    /// One pull for `req` (RocketMQ: DefaultMQPushConsumerImpl.pullMessage).
    pub(crate) fn do_pull(self: &Arc<Self>, mut req: PullRequest) {
        let pq = req.pq.clone();
        if pq.is_dropped() || self.is_stopping() {
            return;
        }
        pq.set_last_pull_timestamp(now_millis());
        if self.paused.load(Ordering::Acquire) {
            return self.later(req, DELAY_WHEN_SUSPEND);
        }
        if pq.cached_count() > self.config.pull_threshold_for_queue
            || pq.cached_size() > self.config.pull_threshold_size_for_queue_mib * 1024 * 1024
        {
            return self.later(req, DELAY_WHEN_FLOW_CONTROL);
        }
        if !self.orderly() {
            if pq.max_span() > self.config.consume_concurrently_max_span {
                return self.later(req, DELAY_WHEN_FLOW_CONTROL);
            }
        } else if pq.is_locked() {
            if !req.locked_first {
                let offset = self.rebalance.compute_pull_from_where(&req.mq);
                if offset < 0 {
                    return self.later(req, DELAY_WHEN_EXCEPTION);
                }
                if offset < req.next_offset {
                    log::info!("{}: {:?} starts again at {offset} after its lock", self.config.group, req.mq);
                }
                req.locked_first = true;
                req.next_offset = offset;
            }
        } else {
            return self.later(req, DELAY_WHEN_EXCEPTION);
        }
        let Some(sub) = self.rebalance.subscriptions.read().get(&req.mq.topic).cloned() else {
            return self.later(req, DELAY_WHEN_EXCEPTION);
        };
        let commit_offset = match self.config.message_model {
            MessageModel::Clustering => self.offset_store.read_offset(&req.mq, ReadOffsetType::Memory).max(0),
            MessageModel::Broadcasting => 0,
        };
        let expression =
            (self.config.post_subscription_when_pull && !sub.class_filter_mode).then(|| sub.sub_string.clone());
        let h = PullMessageRequestHeader {
            consumer_group: self.config.group.clone(),
            topic: req.mq.topic.clone(),
            queue_id: req.mq.queue_id,
            queue_offset: req.next_offset,
            max_msg_nums: self.config.pull_batch_size,
            sys_flag: pull_sys_flag::build(commit_offset > 0, true, expression.is_some(), sub.class_filter_mode),
            commit_offset,
            suspend_timeout_millis: BROKER_SUSPEND_MAX_TIME.as_millis() as i64,
            subscription: expression,
            sub_version: sub.sub_version,
            expression_type: Some(sub.expression_type.clone()),
            bname: Some(req.mq.broker_name.clone()),
        };
        let addr = match self.instance.master_addr_or_update(&req.mq.broker_name, &req.mq.topic) {
            Ok(a) => a,
            Err(e) => {
                log::warn!("{}: cannot pull {:?}: {e}", self.config.group, req.mq);
                return self.later(req, DELAY_WHEN_EXCEPTION);
            }
        };
        self.stats.pulls.fetch_add(1, Ordering::Relaxed);
        let me = self.clone();
        let retry = req.clone();
        let sent = self.instance.pull_message_async(&addr, &h, Some(sub), CONSUMER_TIMEOUT_WHEN_SUSPEND, move |r| {
            me.on_pull_result(req, r)
        });
        if let Err(e) = sent {
            log::warn!("{}: pull of {:?} not sent: {e}", self.config.group, retry.mq);
            self.later(retry, DELAY_WHEN_EXCEPTION);
        }
    }

    /// The pull callback, on `NettyClientPublicExecutor_N` (RocketMQ: the
    /// PullCallback of pullMessage).
    fn on_pull_result(self: &Arc<Self>, mut req: PullRequest, result: Result<PullResult, ClientError>) {
        if self.is_stopping() || req.pq.is_dropped() {
            return;
        }
        let p = match result {
            Ok(p) => p,
            Err(e) => {
                if !req.pq.is_dropped() {
                    log::warn!("{}: pull of {:?} failed: {e}", self.config.group, req.mq);
                }
                return self.later(req, DELAY_WHEN_EXCEPTION);
            }
        };
        match p.status {
            PullStatus::Found => {
                let prev = req.next_offset;
                req.next_offset = p.next_begin_offset;
                if p.next_begin_offset < prev {
                    log::warn!("{}: {:?} went back from {prev} to {}", self.config.group, req.mq, p.next_begin_offset);
                }
                if p.msgs.is_empty() {
                    return self.now(req);
                }
                let dispatch = req.pq.put_messages(&p.msgs);
                self.submit_consume(p.msgs, &req.pq, &req.mq, dispatch);
                if self.config.pull_interval > Duration::ZERO {
                    self.later(req, self.config.pull_interval)
                } else {
                    self.now(req)
                }
            }
            PullStatus::NoNewMsg | PullStatus::NoMatchedMsg => {
                req.next_offset = p.next_begin_offset;
                if req.pq.cached_count() == 0 && self.consume.commits_on_its_own() {
                    // Nothing in flight: the filtered-out range counts as consumed.
                    self.offset_store.update_offset(&req.mq, req.next_offset, true);
                }
                self.now(req)
            }
            PullStatus::OffsetIllegal => {
                log::warn!(
                    "{}: offset {} of {:?} is illegal; the broker says {}",
                    self.config.group,
                    req.next_offset,
                    req.mq,
                    p.next_begin_offset
                );
                req.next_offset = p.next_begin_offset;
                req.pq.set_dropped(true);
                let me = self.clone();
                if let Some(ps) = self.instance.pull_service() {
                    ps.execute_task_later(Duration::from_secs(10), move || {
                        me.offset_store.update_offset(&req.mq, req.next_offset, false);
                        me.offset_store.persist(&req.mq);
                        me.rebalance.remove_process_queue(&req.mq);
                    });
                }
            }
        }
    }

    pub(crate) fn submit_consume(
        self: &Arc<Self>,
        msgs: Vec<MessageExt>,
        pq: &Arc<ProcessQueue>,
        mq: &MessageQueue,
        dispatch: bool,
    ) {
        match &self.consume {
            ConsumeService::Concurrently(s) => s.submit(self, msgs, pq, mq),
            ConsumeService::Orderly(s) => {
                if dispatch {
                    s.submit(self, pq, mq, Duration::ZERO)
                }
            }
            ConsumeService::Poll(s) => s.submit(msgs, pq, mq),
        }
    }

    /// Retry messages carry their original topic in RETRY_TOPIC; listeners
    /// see that one (RocketMQ: resetRetryAndNamespace).
    pub(crate) fn reset_retry_topic(&self, msgs: &mut [MessageExt]) {
        let group_topic = retry_topic(&self.config.group);
        for m in msgs {
            if m.message.topic == group_topic
                && let Some(t) = m.property(property::RETRY_TOPIC).map(String::from)
            {
                m.message.topic = t;
            }
        }
    }

    /// maxReconsumeTimes as used: -1 means 16 (concurrently) or unlimited (orderly).
    pub(crate) fn max_reconsume_times(&self) -> i32 {
        match (self.config.max_reconsume_times, self.orderly()) {
            (-1, false) => 16,
            (-1, true) => i32::MAX,
            (n, _) => n,
        }
    }

    /// CONSUMER_SEND_MSG_BACK for `msg` to its queue's broker; false when it
    /// could not be sent (the caller consumes it again locally).
    pub(crate) fn send_message_back(&self, msg: &MessageExt, broker_name: &str, delay_level: i32) -> bool {
        let sent = self.instance.master_addr_or_update(broker_name, msg.topic()).and_then(|addr| {
            self.instance.consumer_send_msg_back(
                &addr,
                msg,
                &self.config.group,
                delay_level,
                self.max_reconsume_times(),
            )
        });
        match sent {
            Ok(()) => true,
            Err(e) => {
                log::warn!("{}: sending {} back failed: {e}", self.config.group, msg.msg_id);
                false
            }
        }
    }

    /// Messages a listener has held longer than consumeTimeout go back to
    /// the broker with delay level 3 (RocketMQ: cleanExpireMsg).
    pub(crate) fn clean_expired_msg(&self) {
        for (mq, pq) in self.rebalance.process_queues() {
            for _ in 0..16 {
                let Some(msg) = pq.first_expired(self.config.consume_timeout) else { break };
                log::info!("{}: {} was consumed for too long; sending it back", self.config.group, msg.msg_id);
                let mut back = msg.clone();
                self.reset_retry_topic(std::slice::from_mut(&mut back));
                if !self.send_message_back(&back, &mq.broker_name, 3) {
                    break;
                }
                pq.remove_messages(std::slice::from_ref(&msg));
            }
        }
    }

    fn subscriptions(&self) -> Vec<SubscriptionData> {
        self.rebalance.subscriptions.read().values().cloned().collect()
    }
}

impl ConsumerInner for PushInner {
    fn group(&self) -> &str {
        &self.config.group
    }

    fn consumer_data(&self) -> ConsumerData {
        ConsumerData {
            group_name: self.config.group.clone(),
            consume_type: self.consume_type().into(),
            message_model: self.config.message_model.name().into(),
            consume_from_where: self.config.consume_from_where.name().into(),
            subscription_data_set: self.subscriptions(),
            unit_mode: false,
        }
    }

    fn do_rebalance(&self) {
        if !self.is_stopping() {
            self.rebalance.do_rebalance();
        }
    }

    fn persist_consumer_offset(&self) {
        self.offset_store.persist_all(&self.rebalance.owned_queues());
    }

    fn pull_message(self: Arc<Self>, request: PullRequest) {
        self.do_pull(request);
    }

    fn running_info(&self) -> ConsumerRunningInfo {
        let mut properties = BTreeMap::new();
        let ns = self.instance.config().namesrv_addr.clone().or_else(|| std::env::var("NAMESRV_ADDR").ok());
        properties.insert("PROP_NAMESERVER_ADDR".into(), ns.unwrap_or_default());
        properties.insert("PROP_CONSUME_TYPE".into(), self.consume_type().into());
        properties.insert("PROP_CONSUMEORDERLY".into(), self.orderly().to_string());
        properties.insert("PROP_THREADPOOL_CORE_SIZE".into(), self.config.consume_thread_min.to_string());
        properties.insert("PROP_CLIENT_VERSION".into(), "V4_9_8".into());
        properties.insert("PROP_CONSUMER_START_TIMESTAMP".into(), self.start_timestamp.to_string());
        properties.insert("messageModel".into(), self.config.message_model.name().into());
        properties.insert("consumeFromWhere".into(), self.config.consume_from_where.name().into());
        properties.insert("allocateMessageQueueStrategy".into(), self.config.allocate_strategy.name().into());
        let mq_table = self
            .rebalance
            .process_queues()
            .into_iter()
            .map(|(mq, pq)| {
                let commit = self.offset_store.read_offset(&mq, ReadOffsetType::Memory);
                (mq, pq.info(commit))
            })
            .collect();
        let ok = self.stats.consume_ok.load(Ordering::Relaxed);
        let status = ConsumeStatus {
            consume_rt: if ok == 0 {
                0.0
            } else {
                self.stats.consume_rt_total_ms.load(Ordering::Relaxed) as f64 / ok as f64
            },
            consume_failed_msgs: self.stats.consume_failed.load(Ordering::Relaxed) as i64,
            ..Default::default()
        };
        let status_table = self.subscriptions().into_iter().map(|s| (s.topic, status.clone())).collect();
        ConsumerRunningInfo { properties, subscription_set: self.subscriptions(), mq_table, status_table, jstack: None }
    }

    fn reset_offset(&self, topic: &str, offsets: &HashMap<MessageQueue, i64>) {
        log::info!("{}: resetting the offsets of {topic}: {offsets:?}", self.config.group);
        for (mq, offset) in offsets {
            if mq.topic != topic {
                continue;
            }
            self.offset_store.update_offset(mq, *offset, false);
            self.offset_store.persist(mq);
            self.rebalance.restart_queue_at(mq, *offset);
        }
    }

    fn consume_message_directly(&self, msg: MessageExt, broker_name: Option<&str>) -> Option<ConsumeDirectlyResult> {
        let broker = broker_name.unwrap_or_default().to_string();
        let mq = MessageQueue::new(msg.topic(), broker, msg.queue_id);
        let mut msgs = vec![msg];
        self.reset_retry_topic(&mut msgs);
        Some(match &self.consume {
            ConsumeService::Concurrently(s) => s.consume_directly(&msgs, mq),
            ConsumeService::Orderly(s) => s.consume_directly(&msgs, mq),
            ConsumeService::Poll(_) => return None,
        })
    }
}

/// A push consumer (RocketMQ: DefaultMQPushConsumer). Subscribe, register a
/// listener, start; the listener runs on `ConsumeMessageThread_N`.
pub struct PushConsumer {
    config: PushConsumerConfig,
    client_config: ClientConfig,
    subscriptions: Mutex<Vec<SubscriptionData>>,
    listener: Mutex<Option<MessageListener>>,
    inner: Mutex<Option<Arc<PushInner>>>,
    state: Mutex<ServiceState>,
}

impl PushConsumer {
    pub fn new(config: PushConsumerConfig, client_config: ClientConfig) -> Self {
        PushConsumer {
            config,
            client_config,
            subscriptions: Mutex::default(),
            listener: Mutex::new(None),
            inner: Mutex::new(None),
            state: Mutex::new(ServiceState::CreateJust),
        }
    }

    pub fn state(&self) -> ServiceState {
        *self.state.lock()
    }

    /// Subscribes to `topic` with a TAG expression (`*`, or `TagA || TagB`).
    pub fn subscribe(&self, topic: &str, expression: &str) -> Result<(), ClientError> {
        subscribe(&self.subscriptions, self.inner.lock().as_ref(), topic, expression)
    }

    /// Sets the listener; its kind (concurrently or orderly) picks the
    /// consume service.
    pub fn register_message_listener(&self, listener: MessageListener) {
        *self.listener.lock() = Some(listener);
    }

    /// Starts consuming (RocketMQ: DefaultMQPushConsumerImpl.start): checks
    /// the settings, copies the subscriptions (plus `%RETRY%<group>` when
    /// clustering), loads the offset store, starts the consume service,
    /// registers with the client instance, starts it, updates routes, sends
    /// heartbeats, and rebalances at once.
    pub fn start(&self) -> Result<(), ClientError> {
        let mut state = self.state.lock();
        if *state != ServiceState::CreateJust {
            return Err(ClientError::State(format!(
                "The PushConsumer service state not OK, maybe started once, {:?}",
                *state
            )));
        }
        match self.start_inner() {
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

    fn start_inner(&self) -> Result<Arc<PushInner>, ClientError> {
        self.config.check()?;
        let listener =
            self.listener.lock().clone().ok_or_else(|| {
                ClientError::State("messageListener is null: register a listener before start".into())
            })?;
        let mut subs: BTreeMap<String, SubscriptionData> =
            self.subscriptions.lock().iter().map(|s| (s.topic.clone(), s.clone())).collect();
        if subs.is_empty() {
            return Err(ClientError::State("no subscription: subscribe to a topic before start".into()));
        }
        if self.config.message_model == MessageModel::Clustering {
            let retry = retry_topic(&self.config.group);
            subs.insert(retry.clone(), SubscriptionData::build(&retry, "*").map_err(ClientError::State)?);
        }
        let threads = self.config.consume_thread_min;
        let orderly = matches!(listener, MessageListener::Orderly(_));
        start_pull_driven(&self.config, &self.client_config, subs, orderly, move || {
            Ok(match listener {
                MessageListener::Concurrently(l) => ConsumeService::Concurrently(ConcurrentlyService::new(l, threads)?),
                MessageListener::Orderly(l) => ConsumeService::Orderly(OrderlyService::new(l, threads)?),
            })
        })
    }

    /// Stops pulling but keeps the queues (RocketMQ: suspend).
    pub fn suspend(&self) {
        if let Some(i) = self.inner.lock().as_ref() {
            i.set_paused(true);
        }
    }

    /// Pulls again after [`PushConsumer::suspend`].
    pub fn resume(&self) {
        if let Some(i) = self.inner.lock().as_ref() {
            i.set_paused(false);
        }
    }

    /// The queues this consumer owns now.
    pub fn assigned_queues(&self) -> Vec<MessageQueue> {
        self.inner.lock().as_ref().map(|i| i.rebalance.owned_queues()).unwrap_or_default()
    }

    /// The running info a broker would get for this consumer.
    pub fn running_info(&self) -> Option<ConsumerRunningInfo> {
        self.inner.lock().as_ref().map(|i| i.running_info())
    }

    /// The client id (`ip@instance`) this consumer is known by.
    pub fn client_id(&self) -> String {
        self.client_config.client_id()
    }

    /// Stops with a drain: no new pulls or listener calls, running ones
    /// finish (up to `await_termination`), offsets persisted, orderly locks
    /// given back, UNREGISTER_CLIENT sent, threads joined.
    pub fn shutdown(&self) {
        let mut state = self.state.lock();
        if *state != ServiceState::Running {
            return;
        }
        if let Some(inner) = self.inner.lock().take() {
            inner.shutdown();
        }
        *state = ServiceState::ShutdownAlready;
    }
}

/// Adds or replaces the subscription to `topic`; a running consumer
/// announces it and rebalances at once.
pub(crate) fn subscribe(
    subs: &Mutex<Vec<SubscriptionData>>,
    running: Option<&Arc<PushInner>>,
    topic: &str,
    expression: &str,
) -> Result<(), ClientError> {
    let sd = SubscriptionData::build(topic, expression).map_err(ClientError::State)?;
    let mut subs = subs.lock();
    subs.retain(|s| s.topic != topic);
    subs.push(sd.clone());
    if let Some(inner) = running {
        inner.rebalance.subscriptions.write().insert(topic.to_string(), sd);
        inner.instance.send_heartbeat_to_all_brokers();
        inner.instance.rebalance_immediately();
    }
    Ok(())
}

/// Builds, starts and registers a consumer fed by long-polling pulls: the
/// push consumer, and the lite pull consumer with a poll queue as its
/// consume service (RocketMQ: the first half of DefaultMQPushConsumerImpl.start).
pub(crate) fn start_pull_driven(
    config: &PushConsumerConfig,
    client_config: &ClientConfig,
    subs: BTreeMap<String, SubscriptionData>,
    orderly: bool,
    consume_service: impl FnOnce() -> std::io::Result<ConsumeService>,
) -> Result<Arc<PushInner>, ClientError> {
    let instance = ClientInstance::get_or_create(client_config)
        .map_err(|e| ClientError::State(format!("cannot create the client instance: {e}")))?;
    let offset_store: Arc<dyn OffsetStore> = match config.message_model {
        MessageModel::Clustering => Arc::new(RemoteBrokerOffsetStore::new(instance.clone(), &config.group)),
        MessageModel::Broadcasting => {
            Arc::new(LocalFileOffsetStore::new(&config.offset_store_dir, instance.client_id(), &config.group))
        }
    };
    offset_store.load()?;
    let rebalance = Rebalance::new(
        config.group.clone(),
        config.message_model,
        orderly,
        config.consume_from_where,
        config.consume_timestamp,
        config.allocate_strategy.clone(),
        instance.clone(),
        offset_store.clone(),
    );
    *rebalance.subscriptions.write() = subs;
    let consume =
        consume_service().map_err(|e| ClientError::State(format!("cannot start the consume threads: {e}")))?;
    let inner = Arc::new(PushInner {
        config: config.clone(),
        instance: instance.clone(),
        rebalance,
        offset_store,
        consume,
        stats: Stats::default(),
        paused: AtomicBool::new(false),
        stopping: AtomicBool::new(false),
        start_timestamp: now_millis(),
    });
    match &inner.consume {
        ConsumeService::Concurrently(s) => s.start(&inner),
        ConsumeService::Orderly(s) => s.start(&inner),
        ConsumeService::Poll(_) => {}
    }
    if let Err(e) = instance.register_consumer(inner.clone()) {
        inner.shutdown_consume_service();
        return Err(e);
    }
    if let Err(e) = instance.start() {
        instance.unregister_consumer(&config.group);
        inner.shutdown_consume_service();
        return Err(e);
    }
    Ok(inner)
}

impl PushInner {
    /// Routes, heartbeat and a rebalance right after start.
    pub(crate) fn after_start(&self) {
        for topic in self.rebalance.subscriptions.read().keys() {
            if let Err(e) = self.instance.update_topic_route(topic) {
                log::warn!("{}: no route of {topic} yet: {e}", self.config.group);
            }
        }
        self.instance.send_heartbeat_to_all_brokers();
        self.instance.rebalance_immediately();
    }

    /// The draining stop: no new pulls or listener calls, running ones
    /// finish, offsets persisted, UNREGISTER_CLIENT, threads joined.
    pub(crate) fn shutdown(&self) {
        self.stopping.store(true, Ordering::Release);
        self.shutdown_consume_service();
        self.persist_consumer_offset();
        self.instance.unregister_consumer(&self.config.group);
        self.rebalance.destroy();
        if self.instance.is_unused() {
            self.instance.shutdown();
        }
    }

    pub(crate) fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Release);
    }

    fn shutdown_consume_service(&self) {
        match &self.consume {
            ConsumeService::Concurrently(s) => s.shutdown(self.config.await_termination),
            ConsumeService::Orderly(s) => {
                s.shutdown(self.config.await_termination);
                if self.config.message_model == MessageModel::Clustering {
                    self.rebalance.unlock_all(false);
                }
            }
            ConsumeService::Poll(s) => s.shutdown(),
        }
    }
}

impl Drop for PushConsumer {
    fn drop(&mut self) {
        self.shutdown();
    }
}
