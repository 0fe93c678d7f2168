//! `ClientInstance` (RocketMQ: MQClientInstance): one per client id, shared
//! by every producer and consumer of the process with that id, so N of them
//! do not mean N sets of remoting threads. It owns the remoting client
//! (`NettyClientSelector_1`, `NettyClientWorkerThread_1..4`,
//! `NettyClientPublicExecutor_N`, `ClientHouseKeepingService`), the route
//! cache, the broker address table, `MQClientFactoryScheduledThread`
//! (route refresh, heartbeats and offline-broker cleanup every 30 s, offset
//! persistence every 5 s), and the consumers' shared threads
//! `PullMessageService`, `PullMessageServiceScheduledThread` and
//! `RebalanceService`. It answers the requests brokers send to clients.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io;
use std::sync::{Arc, LazyLock, Weak};

use parking_lot::{Mutex, RwLock};

use crate::client::config::ClientConfig;
use crate::client::consumer::ConsumerInner;
use crate::client::consumer::pull_service::PullMessageService;
use crate::common::{ScheduledExecutor, ServiceThread};
use crate::remoting::body::{HeartbeatData, MessageQueue, ProducerData, TopicRouteData, perm};
use crate::remoting::code::{request, response};
use crate::remoting::headers::{GetRouteInfoRequestHeader, UnregisterClientRequestHeader};
use crate::remoting::json::{from_body, to_body};
use crate::remoting::{RemotingClient, RemotingCommand, RemotingError};

/// RocketMQ: ServiceState.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceState {
    CreateJust,
    Running,
    StartFailed,
    ShutdownAlready,
}

/// What a client operation can fail with (RocketMQ: MQClientException).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// A request failed on the wire.
    Remoting(RemotingError),
    /// The server answered with an error code.
    Refused { code: i32, remark: String },
    /// The call does not fit the object's state or settings.
    State(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Remoting(e) => write!(f, "{e}"),
            ClientError::Refused { code, remark } => {
                let name = response::name(*code).unwrap_or("UNKNOWN");
                write!(f, "CODE: {code} ({name}) DESC: {remark}")
            }
            ClientError::State(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<RemotingError> for ClientError {
    fn from(e: RemotingError) -> Self {
        ClientError::Remoting(e)
    }
}

static INSTANCES: LazyLock<Mutex<HashMap<String, Weak<ClientInstance>>>> = LazyLock::new(Default::default);

pub struct ClientInstance {
    client_id: String,
    config: ClientConfig,
    namesrv: Vec<String>,
    remoting: RemotingClient,
    routes: RwLock<HashMap<String, TopicRouteData>>,
    /// Topic -> its writable queues, computed once per route update
    /// (RocketMQ: TopicPublishInfo): sends read it without copying the route.
    publish: RwLock<HashMap<String, Arc<[MessageQueue]>>>,
    /// Broker name -> broker id -> address.
    brokers: RwLock<HashMap<String, BTreeMap<i64, String>>>,
    producers: RwLock<BTreeSet<String>>,
    consumers: RwLock<HashMap<String, Arc<dyn ConsumerInner>>>,
    scheduled: Mutex<Option<ScheduledExecutor>>,
    pull_service: Mutex<Option<Arc<PullMessageService>>>,
    rebalance_service: Mutex<Option<ServiceThread>>,
    state: Mutex<ServiceState>,
}

impl fmt::Debug for ClientInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientInstance({})", self.client_id)
    }
}

impl ClientInstance {
    /// The instance of `config`'s client id, created (not started) when the
    /// process has none alive (RocketMQ: MQClientManager.getOrCreateMQClientInstance).
    pub fn get_or_create(config: &ClientConfig) -> io::Result<Arc<ClientInstance>> {
        let id = config.client_id();
        let mut all = INSTANCES.lock();
        if let Some(i) = all.get(&id).and_then(Weak::upgrade) {
            return Ok(i);
        }
        let remoting = RemotingClient::start(crate::remoting::ClientConfig {
            callback_threads: config.callback_threads,
            connect_timeout: config.api_timeout,
            ..Default::default()
        })?;
        let env = std::env::var("NAMESRV_ADDR").ok();
        let inst = Arc::new(ClientInstance {
            client_id: id.clone(),
            namesrv: config.namesrv_addrs(env.as_deref()),
            config: config.clone(),
            remoting,
            routes: RwLock::default(),
            publish: RwLock::default(),
            brokers: RwLock::default(),
            producers: RwLock::default(),
            consumers: RwLock::default(),
            scheduled: Mutex::new(None),
            pull_service: Mutex::new(None),
            rebalance_service: Mutex::new(None),
            state: Mutex::new(ServiceState::CreateJust),
        });
        all.insert(id, Arc::downgrade(&inst));
        crate::client::processor::register(&inst);
        Ok(inst)
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }
    pub fn remoting(&self) -> &RemotingClient {
        &self.remoting
    }
    pub fn state(&self) -> ServiceState {
        *self.state.lock()
    }

    /// Starts the scheduled tasks (once; later calls do nothing).
    pub fn start(self: &Arc<Self>) -> Result<(), ClientError> {
        let mut state = self.state.lock();
        match *state {
            ServiceState::Running => return Ok(()),
            ServiceState::ShutdownAlready => {
                return Err(ClientError::State(format!("the client instance {} was shut down", self.client_id)));
            }
            _ => {}
        }
        if self.namesrv.is_empty() {
            *state = ServiceState::StartFailed;
            return Err(ClientError::State("no name server address: set namesrvAddr or NAMESRV_ADDR".into()));
        }
        let ex = ScheduledExecutor::new("MQClientFactoryScheduledThread", "client")
            .map_err(|e| ClientError::State(format!("cannot start MQClientFactoryScheduledThread: {e}")))?;
        let me = Arc::downgrade(self);
        let poll = self.config.poll_name_server_interval;
        ex.schedule_at_fixed_rate(std::time::Duration::from_millis(10), poll, move || {
            if let Some(i) = me.upgrade() {
                i.update_all_routes();
            }
        });
        let me = Arc::downgrade(self);
        let beat = self.config.heartbeat_broker_interval;
        ex.schedule_at_fixed_rate(std::time::Duration::from_secs(1), beat, move || {
            if let Some(i) = me.upgrade() {
                i.clean_offline_brokers();
                i.send_heartbeat_to_all_brokers();
            }
        });
        let me = Arc::downgrade(self);
        let persist = self.config.persist_consumer_offset_interval;
        ex.schedule_at_fixed_rate(persist.min(std::time::Duration::from_secs(10)), persist, move || {
            if let Some(i) = me.upgrade() {
                for c in i.consumer_list() {
                    c.persist_consumer_offset();
                }
            }
        });
        *self.scheduled.lock() = Some(ex);
        let started = PullMessageService::start(Arc::downgrade(self)).and_then(|ps| {
            let me = Arc::downgrade(self);
            let rebalance = ServiceThread::start("RebalanceService", "client", move |ctx| {
                while !ctx.is_stopped() {
                    crate::common::thread::doing("waiting for the next rebalance");
                    ctx.wait_for_running(crate::client::consumer::rebalance::REBALANCE_INTERVAL);
                    if ctx.is_stopped() {
                        break;
                    }
                    crate::common::thread::doing("rebalancing");
                    match me.upgrade() {
                        Some(i) => i.do_rebalance(),
                        None => break,
                    }
                }
            })?;
            Ok((ps, rebalance))
        });
        match started {
            Ok((ps, rebalance)) => {
                *self.pull_service.lock() = Some(Arc::new(ps));
                *self.rebalance_service.lock() = Some(rebalance);
            }
            Err(e) => {
                if let Some(ex) = self.scheduled.lock().take() {
                    ex.shutdown();
                }
                *state = ServiceState::StartFailed;
                return Err(ClientError::State(format!("cannot start the consumer threads: {e}")));
            }
        }
        *state = ServiceState::Running;
        Ok(())
    }

    /// Registers a producer group (one per group in an instance).
    pub fn register_producer(&self, group: &str) -> Result<(), ClientError> {
        if !self.producers.write().insert(group.to_string()) {
            return Err(ClientError::State(format!(
                "the producer group [{group}] has been created before, specify another name please."
            )));
        }
        Ok(())
    }

    /// Registers a consumer (one per group in an instance).
    pub fn register_consumer(&self, consumer: Arc<dyn ConsumerInner>) -> Result<(), ClientError> {
        let mut c = self.consumers.write();
        let group = consumer.group().to_string();
        if c.contains_key(&group) {
            return Err(ClientError::State(format!(
                "the consumer group [{group}] has been created before, specify another name please."
            )));
        }
        c.insert(group, consumer);
        Ok(())
    }

    /// The consumer of `group` (RocketMQ: selectConsumer).
    pub fn select_consumer(&self, group: &str) -> Option<Arc<dyn ConsumerInner>> {
        self.consumers.read().get(group).cloned()
    }

    pub fn consumer_list(&self) -> Vec<Arc<dyn ConsumerInner>> {
        self.consumers.read().values().cloned().collect()
    }

    /// Rebalances every consumer (on `RebalanceService`).
    pub fn do_rebalance(&self) {
        for c in self.consumer_list() {
            c.do_rebalance();
        }
    }

    /// Wakes `RebalanceService` (RocketMQ: rebalanceImmediately).
    pub fn rebalance_immediately(&self) {
        if let Some(r) = self.rebalance_service.lock().as_ref() {
            r.wakeup();
        }
    }

    /// Wakes `RebalanceService` after `delay`: an orderly queue another
    /// consumer still held is tried again soon, not at the next 20 s round.
    pub fn rebalance_later(self: &Arc<Self>, delay: std::time::Duration) {
        let me = Arc::downgrade(self);
        if let Some(ex) = self.scheduled.lock().as_ref() {
            ex.schedule(delay, move || {
                if let Some(i) = me.upgrade() {
                    i.rebalance_immediately();
                }
            });
        }
    }

    /// The shared pull service (None before start and after shutdown).
    pub fn pull_service(&self) -> Option<Arc<PullMessageService>> {
        self.pull_service.lock().clone()
    }

    /// Whether no producer or consumer uses the instance any more.
    pub fn is_unused(&self) -> bool {
        self.producers.read().is_empty() && self.consumers.read().is_empty()
    }

    /// Forgets a producer group and tells every broker (UNREGISTER_CLIENT).
    pub fn unregister_producer(&self, group: &str) {
        self.producers.write().remove(group);
        self.unregister_client(Some(group), None);
    }

    /// Forgets a consumer group and tells every broker (UNREGISTER_CLIENT).
    pub fn unregister_consumer(&self, group: &str) {
        self.consumers.write().remove(group);
        self.unregister_client(None, Some(group));
    }

    fn unregister_client(&self, producer: Option<&str>, consumer: Option<&str>) {
        let h = UnregisterClientRequestHeader {
            client_id: self.client_id.clone(),
            producer_group: producer.map(String::from),
            consumer_group: consumer.map(String::from),
        };
        for addr in self.all_broker_addrs() {
            let req = RemotingCommand::request_with(request::UNREGISTER_CLIENT, &h)
                .with_serialize_type(self.config.serialize_type);
            if let Err(e) = self.remoting.invoke_sync(&addr, req, self.config.api_timeout) {
                log::warn!("unregister client from {addr} failed: {e}");
            }
        }
    }

    /// Asks the name servers for `topic`'s route and caches it; `Ok(None)`
    /// when no name server knows the topic (TOPIC_NOT_EXIST).
    pub fn update_topic_route(&self, topic: &str) -> Result<Option<TopicRouteData>, ClientError> {
        let h = GetRouteInfoRequestHeader { topic: topic.to_string(), accept_standard_json_only: None };
        let mut last = None;
        for ns in &self.namesrv {
            let req = RemotingCommand::request_with(request::GET_ROUTEINFO_BY_TOPIC, &h)
                .with_serialize_type(self.config.serialize_type);
            match self.remoting.invoke_sync(ns, req, self.config.api_timeout) {
                Ok(r) if r.code == response::SUCCESS => {
                    let route: TopicRouteData = from_body(&r.body.bytes()).map_err(|e| ClientError::Refused {
                        code: response::SYSTEM_ERROR,
                        remark: format!("bad route body from {ns}: {e}"),
                    })?;
                    {
                        let mut b = self.brokers.write();
                        for bd in &route.broker_datas {
                            b.insert(bd.broker_name.clone(), bd.broker_addrs.clone());
                        }
                    }
                    self.publish.write().insert(topic.to_string(), queues_of(topic, &route).into());
                    self.routes.write().insert(topic.to_string(), route.clone());
                    return Ok(Some(route));
                }
                Ok(r) if r.code == response::TOPIC_NOT_EXIST => return Ok(None),
                Ok(r) => last = Some(ClientError::Refused { code: r.code, remark: r.remark.unwrap_or_default() }),
                Err(e) => last = Some(ClientError::Remoting(e)),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::State("no name server address".into())))
    }

    /// The writable queues of `topic` from its cached route.
    pub fn publish_queues(&self, topic: &str) -> Option<Arc<[MessageQueue]>> {
        self.publish.read().get(topic).cloned()
    }

    /// The cached route of `topic`.
    pub fn topic_route(&self, topic: &str) -> Option<TopicRouteData> {
        self.routes.read().get(topic).cloned()
    }

    /// A broker's master address (RocketMQ: findBrokerAddressInPublish).
    pub fn master_addr(&self, broker_name: &str) -> Option<String> {
        self.brokers.read().get(broker_name)?.get(&crate::remoting::body::MASTER_ID).cloned()
    }

    /// Every known broker address.
    pub fn all_broker_addrs(&self) -> Vec<String> {
        let mut v: Vec<String> = self.brokers.read().values().flat_map(|m| m.values().cloned()).collect();
        v.sort();
        v.dedup();
        v
    }

    fn update_all_routes(&self) {
        let mut topics: BTreeSet<String> = self.routes.read().keys().cloned().collect();
        for c in self.consumers.read().values() {
            topics.extend(c.consumer_data().subscription_data_set.iter().map(|s| s.topic.clone()));
        }
        for t in topics {
            if let Err(e) = self.update_topic_route(&t) {
                log::warn!("cannot update the route of {t}: {e}");
            }
        }
    }

    /// Drops brokers no cached route mentions any more.
    fn clean_offline_brokers(&self) {
        let live: BTreeSet<String> =
            self.routes.read().values().flat_map(|r| r.broker_datas.iter().map(|b| b.broker_name.clone())).collect();
        self.brokers.write().retain(|name, _| live.contains(name));
    }

    /// HEART_BEAT with every producer and consumer group to every broker.
    pub fn send_heartbeat_to_all_brokers(&self) {
        let hb = HeartbeatData {
            client_id: self.client_id.clone(),
            producer_data_set: self.producers.read().iter().map(|g| ProducerData { group_name: g.clone() }).collect(),
            consumer_data_set: self.consumer_list().iter().map(|c| c.consumer_data()).collect(),
        };
        if hb.producer_data_set.is_empty() && hb.consumer_data_set.is_empty() {
            return;
        }
        let body = to_body(&hb);
        for addr in self.all_broker_addrs() {
            let req = RemotingCommand::request(request::HEART_BEAT)
                .with_body(body.clone())
                .with_serialize_type(self.config.serialize_type);
            match self.remoting.invoke_sync(&addr, req, self.config.api_timeout) {
                Ok(r) if r.code == response::SUCCESS => {}
                Ok(r) => log::warn!("heartbeat to {addr} refused: {:?}", r.remark),
                Err(e) => log::warn!("heartbeat to {addr} failed: {e}"),
            }
        }
    }

    /// Stops the scheduled tasks and the remoting threads (when the last
    /// producer or consumer using the instance shuts down).
    pub fn shutdown(&self) {
        let mut state = self.state.lock();
        if *state == ServiceState::ShutdownAlready {
            return;
        }
        if let Some(ex) = self.scheduled.lock().take() {
            ex.shutdown();
        }
        if let Some(ps) = self.pull_service.lock().take() {
            ps.shutdown();
        }
        if let Some(r) = self.rebalance_service.lock().take() {
            r.shutdown();
        }
        self.remoting.shutdown();
        *state = ServiceState::ShutdownAlready;
        INSTANCES.lock().remove(&self.client_id);
    }
}

/// The writable queues of a route, brokers in name order (RocketMQ:
/// topicRouteData2TopicPublishInfo).
pub fn queues_of(topic: &str, route: &TopicRouteData) -> Vec<MessageQueue> {
    let mut qds = route.queue_datas.clone();
    qds.sort_by(|a, b| a.broker_name.cmp(&b.broker_name));
    qds.iter()
        .filter(|q| perm::is_writeable(q.perm))
        .flat_map(|q| (0..q.write_queue_nums).map(move |i| MessageQueue::new(topic, q.broker_name.clone(), i)))
        .collect()
}
