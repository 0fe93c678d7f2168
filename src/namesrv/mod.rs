//! The name server (RocketMQ: NamesrvController): the route table, the KV
//! config, their request processor on `RemotingExecutorThread_N`, and
//! `NSScheduledThread`, which drops brokers silent for 120 s every 10 s.

pub mod kv;
pub mod processor;
pub mod route;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::common::{ScheduledExecutor, ThreadPool};
use crate::remoting::{Channel, ChannelEventListener, RemotingServer, ServerConfig};

use kv::KvConfigManager;
use processor::NamesrvProcessor;
use route::RouteInfoManager;

/// RocketMQ: NamesrvConfig + the name server's NettyServerConfig.
#[derive(Debug, Clone)]
pub struct NamesrvConfig {
    /// listenPort 9876.
    pub listen: SocketAddr,
    /// kvConfigPath.
    pub kv_config_path: PathBuf,
    /// serverWorkerThreads: `RemotingExecutorThread_N`, 8.
    pub executor_threads: usize,
    /// How long a broker may stay silent (120 s).
    pub broker_channel_expired: Duration,
    /// How often silent brokers are looked for (10 s).
    pub scan_interval: Duration,
}

impl Default for NamesrvConfig {
    fn default() -> Self {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
        NamesrvConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9876)),
            kv_config_path: home.join("namesrv").join("kvConfig.json"),
            executor_threads: 8,
            broker_channel_expired: Duration::from_secs(120),
            scan_interval: Duration::from_secs(10),
        }
    }
}

struct DropClosedBrokers(Arc<RouteInfoManager>);

impl ChannelEventListener for DropClosedBrokers {
    fn on_channel_close(&self, channel: &Channel) {
        self.0.on_channel_destroy(channel);
    }
}

/// A running name server.
pub struct NamesrvController {
    routes: Arc<RouteInfoManager>,
    kv: Arc<KvConfigManager>,
    server: RemotingServer,
    scheduled: ScheduledExecutor,
    executor: Arc<ThreadPool>,
    addr: SocketAddr,
}

impl NamesrvController {
    /// Loads the KV config and starts serving.
    pub fn start(config: NamesrvConfig) -> io::Result<Self> {
        let routes = Arc::new(RouteInfoManager::new());
        let kv = Arc::new(KvConfigManager::load(config.kv_config_path.clone())?);
        let executor =
            Arc::new(ThreadPool::new("RemotingExecutorThread_", "namesrv", config.executor_threads, 10_000)?);
        let mut server = RemotingServer::new(ServerConfig { listen: vec![config.listen], ..Default::default() });
        server.register_default_processor(
            Arc::new(NamesrvProcessor { routes: routes.clone(), kv: kv.clone() }),
            executor.clone(),
        );
        server.add_channel_listener(Arc::new(DropClosedBrokers(routes.clone())));
        let addr = server.start()?[0];
        let scheduled = ScheduledExecutor::new("NSScheduledThread", "namesrv")?;
        let r = routes.clone();
        let expired = config.broker_channel_expired.as_millis() as i64;
        scheduled.schedule_at_fixed_rate(
            Duration::from_secs(5).min(config.scan_interval),
            config.scan_interval,
            move || {
                r.scan_not_active_broker(expired);
            },
        );
        log::info!("name server listening on {addr}");
        Ok(NamesrvController { routes, kv, server, scheduled, executor, addr })
    }

    /// The address it listens on (port 0 resolved).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    pub fn routes(&self) -> &Arc<RouteInfoManager> {
        &self.routes
    }
    pub fn kv(&self) -> &Arc<KvConfigManager> {
        &self.kv
    }

    pub fn shutdown(&mut self) {
        self.scheduled.shutdown();
        self.server.shutdown();
        self.executor.shutdown();
    }
}

impl Drop for NamesrvController {
    fn drop(&mut self) {
        self.shutdown();
    }
}
