//! `PullConsumer` (RocketMQ: DefaultMQPullConsumer): the application picks
//! queues and offsets itself: fetch a topic's queues, `pull` (or
//! `pull_block_if_not_found`, held by the broker until a message comes), and
//! keep consume offsets through the same offset stores as the other consumers.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::client::api::{PullResult, pull_sys_flag};
use crate::client::config::ClientConfig;
use crate::client::consumer::offset_store::{
    LocalFileOffsetStore, OffsetStore, ReadOffsetType, RemoteBrokerOffsetStore,
};
use crate::client::consumer::{ConsumerInner, MessageModel};
use crate::client::instance::{ClientError, ClientInstance, ServiceState};
use crate::common::message::MessageExt;
use crate::remoting::body::{ConsumerData, ConsumerRunningInfo, MessageQueue, SubscriptionData};
use crate::remoting::headers::PullMessageRequestHeader;

/// RocketMQ: DefaultMQPullConsumer settings.
#[derive(Debug, Clone)]
pub struct PullConsumerConfig {
    pub group: String,
    pub message_model: MessageModel,
    /// brokerSuspendMaxTimeMillis, 20 s: how long a blocking pull is held.
    pub broker_suspend_max_time: Duration,
    /// consumerTimeoutMillisWhenSuspend, 30 s.
    pub consumer_timeout_when_suspend: Duration,
    /// consumerPullTimeoutMillis, 10 s.
    pub consumer_pull_timeout: Duration,
    /// registerTopics: topics announced in heartbeats.
    pub register_topics: BTreeSet<String>,
    pub max_reconsume_times: i32,
    /// Broadcasting offsets live under this directory.
    pub offset_store_dir: PathBuf,
}

impl PullConsumerConfig {
    pub fn new(group: impl Into<String>) -> Self {
        let push = crate::client::consumer::PushConsumerConfig::new(group);
        PullConsumerConfig {
            group: push.group,
            message_model: MessageModel::Clustering,
            broker_suspend_max_time: Duration::from_secs(20),
            consumer_timeout_when_suspend: Duration::from_secs(30),
            consumer_pull_timeout: Duration::from_secs(10),
            register_topics: BTreeSet::new(),
            max_reconsume_times: 16,
            offset_store_dir: push.offset_store_dir,
        }
    }
}

struct PullInner {
    config: PullConsumerConfig,
    instance: Arc<ClientInstance>,
    offset_store: Arc<dyn OffsetStore>,
    /// Queues whose offsets the application set, persisted every 5 s.
    touched: Mutex<BTreeSet<MessageQueue>>,
}

impl ConsumerInner for PullInner {
    fn group(&self) -> &str {
        &self.config.group
    }

    fn consumer_data(&self) -> ConsumerData {
        ConsumerData {
            group_name: self.config.group.clone(),
            consume_type: "CONSUME_ACTIVELY".into(),
            message_model: self.config.message_model.name().into(),
            consume_from_where: "CONSUME_FROM_LAST_OFFSET".into(),
            subscription_data_set: self
                .config
                .register_topics
                .iter()
                .filter_map(|t| SubscriptionData::build(t, "*").ok())
                .collect(),
            unit_mode: false,
        }
    }

    /// Queues are the application's choice: nothing to rebalance.
    fn do_rebalance(&self) {}

    fn persist_consumer_offset(&self) {
        let mqs: Vec<MessageQueue> = self.touched.lock().iter().cloned().collect();
        self.offset_store.persist_all(&mqs);
    }

    fn running_info(&self) -> ConsumerRunningInfo {
        let mut info =
            ConsumerRunningInfo { subscription_set: self.consumer_data().subscription_data_set, ..Default::default() };
        info.properties.insert("PROP_CONSUME_TYPE".into(), "CONSUME_ACTIVELY".into());
        info
    }
}

/// A pull consumer (RocketMQ: DefaultMQPullConsumer).
pub struct PullConsumer {
    config: PullConsumerConfig,
    client_config: ClientConfig,
    inner: Mutex<Option<Arc<PullInner>>>,
    state: Mutex<ServiceState>,
}

impl PullConsumer {
    pub fn new(config: PullConsumerConfig, client_config: ClientConfig) -> Self {
        PullConsumer { config, client_config, inner: Mutex::new(None), state: Mutex::new(ServiceState::CreateJust) }
    }

    pub fn start(&self) -> Result<(), ClientError> {
        let mut state = self.state.lock();
        if *state != ServiceState::CreateJust {
            return Err(ClientError::State(format!(
                "The PullConsumer service state not OK, maybe started once, {:?}",
                *state
            )));
        }
        let started = (|| {
            let instance = ClientInstance::get_or_create(&self.client_config)
                .map_err(|e| ClientError::State(format!("cannot create the client instance: {e}")))?;
            let offset_store: Arc<dyn OffsetStore> = match self.config.message_model {
                MessageModel::Clustering => {
                    Arc::new(RemoteBrokerOffsetStore::new(instance.clone(), &self.config.group))
                }
                MessageModel::Broadcasting => Arc::new(LocalFileOffsetStore::new(
                    &self.config.offset_store_dir,
                    instance.client_id(),
                    &self.config.group,
                )),
            };
            offset_store.load()?;
            let inner = Arc::new(PullInner {
                config: self.config.clone(),
                instance: instance.clone(),
                offset_store,
                touched: Mutex::default(),
            });
            instance.register_consumer(inner.clone())?;
            if let Err(e) = instance.start() {
                instance.unregister_consumer(&self.config.group);
                return Err(e);
            }
            for t in &self.config.register_topics {
                let _ = instance.update_topic_route(t);
            }
            instance.send_heartbeat_to_all_brokers();
            Ok(inner)
        })();
        match started {
            Ok(inner) => {
                *self.inner.lock() = Some(inner);
                *state = ServiceState::Running;
                Ok(())
            }
            Err(e) => {
                *state = ServiceState::StartFailed;
                Err(e)
            }
        }
    }

    fn running(&self) -> Result<Arc<PullInner>, ClientError> {
        self.inner
            .lock()
            .clone()
            .ok_or_else(|| ClientError::State("The PullConsumer service state not OK, maybe not started".into()))
    }

    /// The readable queues of `topic` (RocketMQ: fetchSubscribeMessageQueues).
    pub fn fetch_subscribe_message_queues(&self, topic: &str) -> Result<Vec<MessageQueue>, ClientError> {
        let inner = self.running()?;
        inner.instance.update_topic_route(topic)?;
        match inner.instance.subscribe_queues(topic) {
            Some(q) if !q.is_empty() => Ok(q),
            _ => Err(ClientError::State(format!("Can not find Message Queue for this topic, {topic}"))),
        }
    }

    /// Up to `max_nums` messages of `mq` from `offset` matching the TAG
    /// `expression`; answers at once (NO_NEW_MSG when there are none).
    pub fn pull(
        &self,
        mq: &MessageQueue,
        expression: &str,
        offset: i64,
        max_nums: i32,
    ) -> Result<PullResult, ClientError> {
        self.pull_with_timeout(mq, expression, offset, max_nums, self.config.consumer_pull_timeout)
    }

    /// As [`PullConsumer::pull`] with a timeout of the caller's choice.
    pub fn pull_with_timeout(
        &self,
        mq: &MessageQueue,
        expression: &str,
        offset: i64,
        max_nums: i32,
        timeout: Duration,
    ) -> Result<PullResult, ClientError> {
        self.pull_impl(mq, expression, offset, max_nums, false, timeout)
    }

    /// As [`PullConsumer::pull`], but the broker holds the request up to
    /// `broker_suspend_max_time` until a message arrives.
    pub fn pull_block_if_not_found(
        &self,
        mq: &MessageQueue,
        expression: &str,
        offset: i64,
        max_nums: i32,
    ) -> Result<PullResult, ClientError> {
        let timeout = self.config.consumer_timeout_when_suspend;
        self.pull_impl(mq, expression, offset, max_nums, true, timeout)
    }

    fn pull_impl(
        &self,
        mq: &MessageQueue,
        expression: &str,
        offset: i64,
        max_nums: i32,
        block: bool,
        timeout: Duration,
    ) -> Result<PullResult, ClientError> {
        let inner = self.running()?;
        if offset < 0 {
            return Err(ClientError::State("offset < 0".into()));
        }
        if max_nums <= 0 {
            return Err(ClientError::State("maxNums <= 0".into()));
        }
        let sub = SubscriptionData::build(&mq.topic, expression).map_err(ClientError::State)?;
        let h = PullMessageRequestHeader {
            consumer_group: self.config.group.clone(),
            topic: mq.topic.clone(),
            queue_id: mq.queue_id,
            queue_offset: offset,
            max_msg_nums: max_nums,
            sys_flag: pull_sys_flag::build(false, block, true, false),
            commit_offset: 0,
            // Sent even without the suspend flag, as Apache's pull consumer does.
            suspend_timeout_millis: self.config.broker_suspend_max_time.as_millis() as i64,
            subscription: Some(sub.sub_string.clone()),
            sub_version: 0,
            expression_type: Some(sub.expression_type.clone()),
            bname: Some(mq.broker_name.clone()),
        };
        let addr = inner.instance.master_addr_or_update(&mq.broker_name, &mq.topic)?;
        inner.instance.pull_message_sync(&addr, &h, Some(&sub), timeout)
    }

    /// Sets `mq`'s consume offset (in memory; sent to the broker every 5 s
    /// and on shutdown). RocketMQ: updateConsumeOffset.
    pub fn update_consume_offset(&self, mq: &MessageQueue, offset: i64) -> Result<(), ClientError> {
        let inner = self.running()?;
        inner.offset_store.update_offset(mq, offset, false);
        inner.touched.lock().insert(mq.clone());
        Ok(())
    }

    /// `mq`'s consume offset: from memory, or asked of the store with
    /// `from_store`; -1 when there is none.
    pub fn fetch_consume_offset(&self, mq: &MessageQueue, from_store: bool) -> Result<i64, ClientError> {
        let inner = self.running()?;
        let ty = if from_store { ReadOffsetType::Store } else { ReadOffsetType::MemoryFirstThenStore };
        match inner.offset_store.read_offset(mq, ty) {
            crate::client::consumer::offset_store::OFFSET_ERROR => {
                Err(ClientError::State(format!("cannot read the consume offset of {mq:?}")))
            }
            o => Ok(o),
        }
    }

    /// The offsets in memory of `topic`'s queues.
    pub fn consume_offsets(&self, topic: &str) -> Result<HashMap<MessageQueue, i64>, ClientError> {
        Ok(self.running()?.offset_store.offsets_of(topic))
    }

    /// Sends `msg` back to be consumed again at `delay_level` (RocketMQ: sendMessageBack).
    pub fn send_message_back(&self, msg: &MessageExt, delay_level: i32, broker_name: &str) -> Result<(), ClientError> {
        let inner = self.running()?;
        let addr = inner.instance.master_addr_or_update(broker_name, msg.topic())?;
        inner.instance.consumer_send_msg_back(
            &addr,
            msg,
            &self.config.group,
            delay_level,
            self.config.max_reconsume_times,
        )
    }

    /// The offset after the last message of `mq`.
    pub fn max_offset(&self, mq: &MessageQueue) -> Result<i64, ClientError> {
        self.running()?.instance.max_offset(mq)
    }

    /// The first offset still stored in `mq`.
    pub fn min_offset(&self, mq: &MessageQueue) -> Result<i64, ClientError> {
        self.running()?.instance.min_offset(mq)
    }

    /// The first offset of `mq` stored at or after `timestamp` (ms).
    pub fn search_offset(&self, mq: &MessageQueue, timestamp: i64) -> Result<i64, ClientError> {
        self.running()?.instance.search_offset(mq, timestamp)
    }

    /// Persists the offsets set, unregisters, and stops the instance with its last user.
    pub fn shutdown(&self) {
        let mut state = self.state.lock();
        if *state != ServiceState::Running {
            return;
        }
        if let Some(inner) = self.inner.lock().take() {
            inner.persist_consumer_offset();
            inner.instance.unregister_consumer(&self.config.group);
            if inner.instance.is_unused() {
                inner.instance.shutdown();
            }
        }
        *state = ServiceState::ShutdownAlready;
    }
}

impl Drop for PullConsumer {
    fn drop(&mut self) {
        self.shutdown();
    }
}
