//! `BrokerController`: builds the broker from its settings, starts its
//! pools and services, registers with the name servers, and stops it all.
//!
//! Threads: the remoting server's, the processor pools `SendMessageThread_N`,
//! `PullMessageThread_N`, `HeartbeatThread_N`, `ClientManageThread_N`,
//! `ConsumerManageThread_N`, `AdminBrokerThread_N`, `PullRequestHoldService`,
//! `BrokerControllerScheduledThread` (registration every 30 s, offsets every
//! 5 s), `ClientHousekeepingScheduledThread` (drops silent clients), the
//! store's threads, and a remoting client for the name servers.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use crate::broker::client_manager::{ConsumerManager, ProducerManager, notify_consumer_ids_changed};
use crate::broker::config::BrokerConfig;
use crate::broker::consumer_offset::ConsumerOffsetManager;
use crate::broker::long_polling::{HeldPull, PullRequestHoldService};
use crate::broker::processor::{
    ClientManageProcessor, ConsumerManageProcessor, PullMessageProcessor, SendMessageProcessor, store_host,
};
use crate::broker::subscription_group::SubscriptionGroupManager;
use crate::broker::topic_config::TopicConfigManager;
use crate::common::{ScheduledExecutor, ThreadPool};
use crate::remoting::ServerConfig;
use crate::remoting::body::{KvTable, RegisterBrokerBody};
use crate::remoting::code::{request, response};
use crate::remoting::headers::{RegisterBrokerRequestHeader, UnregisterBrokerRequestHeader};
use crate::remoting::json::{from_body, to_body};
use crate::remoting::{Channel, ChannelEventListener, ClientConfig, RemotingClient, RemotingCommand, RemotingServer};
use crate::store::{MessageArrivingListener, MessageStore};

/// What every processor of the broker shares.
pub struct BrokerShared {
    pub config: BrokerConfig,
    pub store: Arc<MessageStore>,
    pub topics: TopicConfigManager,
    pub groups: SubscriptionGroupManager,
    pub offsets: ConsumerOffsetManager,
    pub consumers: ConsumerManager,
    pub producers: ProducerManager,
    pub hold: Arc<PullRequestHoldService>,
    /// The address stored in records and message ids (ip:listenPort).
    pub store_host: SocketAddr,
    /// The client to the name servers (none configured: none).
    namesrv: Option<Arc<RemotingClient>>,
    /// Requests to connected clients (GET_CONSUMER_RUNNING_INFO is forwarded).
    pub invoker: crate::remoting::ServerInvoker,
    /// Queue locks for orderly consumption.
    pub locks: Arc<crate::broker::rebalance_lock::RebalanceLockManager>,
    /// Delayed messages (SCHEDULE_TOPIC_XXXX back to their topics).
    pub schedule: crate::broker::schedule::ScheduleMessageService,
}

impl BrokerShared {
    /// Registers with the name servers now: a topic created by a send is
    /// routable before that send is answered, as in Apache.
    pub fn register_now(&self) {
        if let Some(c) = &self.namesrv {
            register_all(self, c);
        }
    }
}

/// Wakes held pulls as soon as the store indexes a message.
struct WakeHeldPulls(Arc<PullRequestHoldService>);

impl MessageArrivingListener for WakeHeldPulls {
    fn arriving(&self, topic: &str, queue_id: i32, next_offset: i64, tags_code: i64, _store_timestamp: i64) {
        self.0.notify_message_arriving(topic, queue_id, next_offset, Some(tags_code));
    }
}

/// Forgets clients whose connection closed.
struct DropClosedClients(Weak<BrokerShared>);

impl ChannelEventListener for DropClosedClients {
    fn on_channel_close(&self, channel: &Channel) {
        let Some(b) = self.0.upgrade() else { return };
        for group in b.consumers.on_channel_closed(channel) {
            notify_consumer_ids_changed(&b.consumers, &group);
        }
        b.producers.on_channel_closed(channel);
    }
}

/// A running broker.
pub struct BrokerController {
    shared: Arc<BrokerShared>,
    server: RemotingServer,
    pools: Vec<Arc<ThreadPool>>,
    scheduled: ScheduledExecutor,
    housekeeping: ScheduledExecutor,
    namesrv_client: Option<Arc<RemotingClient>>,
    addrs: Vec<SocketAddr>,
    stopped: AtomicBool,
}

impl BrokerController {
    /// Opens the store and the managers, starts serving, registers.
    pub fn start(mut config: BrokerConfig) -> io::Result<Self> {
        let store = Arc::new(MessageStore::open(config.store.clone())?);
        let root = config.store.store_path_root_dir.clone();
        let topics = TopicConfigManager::load(
            TopicConfigManager::default_path(&root),
            &config.broker_cluster_name,
            &config.broker_name,
            config.default_topic_queue_nums as i32,
            config.auto_create_topic_enable,
        )?;
        let groups = SubscriptionGroupManager::load(
            SubscriptionGroupManager::default_path(&root),
            config.auto_create_subscription_group,
        )?;
        let offsets = ConsumerOffsetManager::load(ConsumerOffsetManager::default_path(&root))?;
        offsets.correct_beyond(|topic, qid| store.max_offset_in_queue(topic, qid));

        let pool = |prefix: &str, n: usize, cap: usize| ThreadPool::new(prefix, "broker", n, cap).map(Arc::new);
        let send_pool =
            pool("SendMessageThread_", config.send_message_thread_pool_nums, config.send_thread_pool_queue_capacity)?;
        let pull_pool =
            pool("PullMessageThread_", config.pull_message_thread_pool_nums, config.pull_thread_pool_queue_capacity)?;
        let heartbeat_pool =
            pool("HeartbeatThread_", config.heartbeat_thread_pool_nums, config.heartbeat_thread_pool_queue_capacity)?;
        let client_pool = pool(
            "ClientManageThread_",
            config.client_manage_thread_pool_nums,
            config.client_manager_thread_pool_queue_capacity,
        )?;
        let consumer_pool = pool(
            "ConsumerManageThread_",
            config.consumer_manage_thread_pool_nums,
            config.consumer_manager_thread_pool_queue_capacity,
        )?;
        let admin_pool = pool(
            "AdminBrokerThread_",
            config.admin_broker_thread_pool_nums,
            config.admin_broker_thread_pool_queue_capacity,
        )?;

        let ip: std::net::IpAddr = config.broker_ip1.parse().map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("brokerIP1={}: {e}", config.broker_ip1))
        })?;
        // listenPort 0 (tests): take a free port now, since the store host
        // (in every record and message id) must be the real one.
        let vip_port = if config.listen_port == 0 {
            config.listen_port = std::net::TcpListener::bind(SocketAddr::new(ip, 0))?.local_addr()?.port();
            0
        } else {
            config.vip_port()
        };
        let mut server = RemotingServer::new(ServerConfig {
            listen: vec![SocketAddr::new(ip, config.listen_port), SocketAddr::new(ip, vip_port)],
            selector_threads: config.server_selector_threads,
            codec_threads: config.server_worker_threads,
            idle_timeout: config.server_channel_max_idle_time,
            ..Default::default()
        });

        let namesrv_client = if config.namesrv_addrs().is_empty() {
            None
        } else {
            Some(Arc::new(RemotingClient::start(ClientConfig::default())?))
        };
        let waker: Arc<OnceLock<Weak<PullMessageProcessor>>> = Arc::default();
        let (w, pp, st) = (waker.clone(), pull_pool.clone(), store.clone());
        let check = if config.long_polling_enable { Duration::from_secs(5) } else { config.short_polling_time_mills };
        let hold = Arc::new(PullRequestHoldService::start(
            check,
            Arc::new(move |topic: &str, qid: i32| st.max_offset_in_queue(topic, qid)),
            Arc::new(move |p: HeldPull| {
                let Some(proc_) = w.get().and_then(Weak::upgrade) else { return };
                if let Err(e) = pp.try_execute(move || proc_.wake(p)) {
                    log::warn!("a held pull could not be run again: {e}");
                }
            }),
        )?);
        store.set_arriving_listener(Arc::new(WakeHeldPulls(hold.clone())));

        let levels = config.max_delay_level();
        let shared = Arc::new(BrokerShared {
            store_host: store_host(&config.broker_ip1, config.listen_port),
            config,
            store: store.clone(),
            topics,
            groups,
            offsets,
            consumers: ConsumerManager::new(),
            producers: ProducerManager::new(),
            hold,
            namesrv: namesrv_client.clone(),
            locks: Arc::default(),
            invoker: server.invoker(),
            schedule: crate::broker::schedule::ScheduleMessageService::start(
                store.clone(),
                root.join("config").join("delayOffset.json"),
                levels,
            )?,
        });
        let pull = Arc::new_cyclic(|me| PullMessageProcessor { shared: shared.clone(), me: me.clone() });
        let _ = waker.set(Arc::downgrade(&pull));
        let send = Arc::new(SendMessageProcessor(shared.clone()));
        for code in [
            request::SEND_MESSAGE,
            request::SEND_MESSAGE_V2,
            request::SEND_BATCH_MESSAGE,
            request::CONSUMER_SEND_MSG_BACK,
        ] {
            server.register_processor(code, send.clone(), send_pool.clone());
        }
        server.register_processor(request::PULL_MESSAGE, pull, pull_pool.clone());
        let clients = Arc::new(ClientManageProcessor(shared.clone()));
        server.register_processor(request::HEART_BEAT, clients.clone(), heartbeat_pool.clone());
        server.register_processor(request::UNREGISTER_CLIENT, clients.clone(), client_pool.clone());
        server.register_processor(request::CHECK_CLIENT_CONFIG, clients, client_pool.clone());
        let consumers = Arc::new(ConsumerManageProcessor(shared.clone()));
        for code in
            [request::GET_CONSUMER_LIST_BY_GROUP, request::QUERY_CONSUMER_OFFSET, request::UPDATE_CONSUMER_OFFSET]
        {
            server.register_processor(code, consumers.clone(), consumer_pool.clone());
        }
        server.register_default_processor(
            Arc::new(crate::broker::admin::AdminBrokerProcessor(shared.clone())),
            admin_pool.clone(),
        );
        server.add_channel_listener(Arc::new(DropClosedClients(Arc::downgrade(&shared))));
        let bound = server.start()?;

        let scheduled = ScheduledExecutor::new("BrokerControllerScheduledThread", "broker")?;
        if let Some(c) = &namesrv_client {
            register_all(&shared, c);
            let (s, c2) = (shared.clone(), c.clone());
            let period = shared.config.register_name_server_period;
            scheduled.schedule_at_fixed_rate(period, period, move || register_all(&s, &c2));
        }
        let s = shared.clone();
        let every = shared.config.flush_consumer_offset_interval;
        scheduled.schedule_at_fixed_rate(every, every, move || {
            if let Err(e) = s.offsets.persist() {
                log::error!("cannot persist consumer offsets: {e}");
            }
        });
        let housekeeping = ScheduledExecutor::new("ClientHousekeepingScheduledThread", "broker")?;
        let s = shared.clone();
        let expired = shared.config.channel_expired_timeout.as_millis() as i64;
        housekeeping.schedule_at_fixed_rate(Duration::from_secs(10), Duration::from_secs(10), move || {
            for (group, _) in s.consumers.scan_not_active_channels(expired) {
                notify_consumer_ids_changed(&s.consumers, &group);
            }
            s.producers.scan_not_active_channels(expired);
        });
        log::info!("broker {} listening on {bound:?}", shared.config.broker_name);
        Ok(BrokerController {
            shared,
            server,
            pools: vec![send_pool, pull_pool, heartbeat_pool, client_pool, consumer_pool, admin_pool],
            scheduled,
            housekeeping,
            namesrv_client,
            addrs: bound,
            stopped: AtomicBool::new(false),
        })
    }

    /// The broker's address (ip:listenPort) as registered with name servers.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// Every address it listens on (listenPort, then the VIP port).
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    pub fn shared(&self) -> &Arc<BrokerShared> {
        &self.shared
    }

    /// Stops accepting, answers held pulls, persists offsets and configs,
    /// flushes the store, and unregisters from the name servers.
    pub fn shutdown(&mut self) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        self.scheduled.shutdown();
        self.housekeeping.shutdown();
        if let Some(c) = &self.namesrv_client {
            unregister_all(&self.shared, c);
        }
        self.shared.hold.shutdown();
        self.server.shutdown();
        self.shared.schedule.shutdown();
        for p in &self.pools {
            p.shutdown();
        }
        for r in [self.shared.offsets.persist(), self.shared.topics.persist(), self.shared.groups.persist()] {
            if let Err(e) = r {
                log::error!("cannot persist broker state: {e}");
            }
        }
        self.shared.store.shutdown();
        log::info!("broker {} stopped", self.shared.config.broker_name);
    }
}

impl Drop for BrokerController {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// REGISTER_BROKER to every name server (RocketMQ: BrokerOuterAPI.registerBrokerAll).
fn register_all(b: &BrokerShared, client: &RemotingClient) {
    let body = to_body(&RegisterBrokerBody {
        topic_config_serialize_wrapper: b.topics.wrapper(),
        filter_server_list: Vec::new(),
    });
    let h = RegisterBrokerRequestHeader {
        broker_name: b.config.broker_name.clone(),
        broker_addr: b.store_host.to_string(),
        cluster_name: b.config.broker_cluster_name.clone(),
        ha_server_addr: format!("{}:{}", b.config.broker_ip1, b.store_host.port() + 1),
        broker_id: b.config.broker_id as i64,
        compressed: Some(false),
        body_crc32: Some(crate::common::message::body_crc(&body)),
    };
    for ns in b.config.namesrv_addrs() {
        let req = RemotingCommand::request_with(request::REGISTER_BROKER, &h).with_body(body.clone());
        match client.invoke_sync(&ns, req, b.config.register_broker_timeout_mills) {
            Ok(r) if r.code == response::SUCCESS => {
                if let Ok(kv) = from_body::<KvTable>(&r.body.bytes())
                    && let Err(e) = b.topics.update_order_topic_config(&kv)
                {
                    log::warn!("cannot apply the order topic config from {ns}: {e}");
                }
            }
            Ok(r) => log::warn!("name server {ns} refused the registration: {:?}", r.remark),
            Err(e) => log::warn!("cannot register with name server {ns}: {e}"),
        }
    }
}

fn unregister_all(b: &BrokerShared, client: &RemotingClient) {
    let h = UnregisterBrokerRequestHeader {
        broker_name: b.config.broker_name.clone(),
        broker_addr: b.store_host.to_string(),
        cluster_name: b.config.broker_cluster_name.clone(),
        broker_id: b.config.broker_id as i64,
    };
    for ns in b.config.namesrv_addrs() {
        let req = RemotingCommand::request_with(request::UNREGISTER_BROKER, &h);
        if let Err(e) = client.invoke_sync(&ns, req, Duration::from_secs(3)) {
            log::warn!("cannot unregister from name server {ns}: {e}");
        }
    }
}
