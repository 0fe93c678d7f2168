//! A name server and a broker on free ports with a temp store, and a
//! remoting client to talk to them: the setup of the broker tests. Also
//! stand-ins for other brokers (dead or refusing) to register beside it.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rmq::broker::{BrokerConfig, BrokerController};
use rmq::common::ThreadPool;
use rmq::common::message;
use rmq::namesrv::{NamesrvConfig, NamesrvController};
use rmq::remoting::body::{RegisterBrokerBody, TopicConfig, TopicRouteData};
use rmq::remoting::code::{request, response};
use rmq::remoting::headers::{
    GetRouteInfoRequestHeader, RegisterBrokerRequestHeader, SendMessageRequestHeaderV2, SendMessageResponseHeader,
};
use rmq::remoting::json::{from_body, to_body};
use rmq::remoting::{Channel, ClientConfig, RemotingClient, RemotingCommand, RemotingServer, ServerConfig};

/// How long a test waits for one answer.
pub const T: Duration = Duration::from_secs(5);

/// REGISTER_BROKER as broker `name` (id 0: master) at `addr` of
/// DefaultCluster sends it, holding `topics` (name, queue count).
pub fn register_broker_request(name: &str, addr: &str, id: i64, topics: &[(&str, i32)]) -> RemotingCommand {
    let mut body = RegisterBrokerBody::default();
    for (t, n) in topics {
        let tc = TopicConfig {
            topic_name: t.to_string(),
            read_queue_nums: *n,
            write_queue_nums: *n,
            perm: 6,
            ..Default::default()
        };
        body.topic_config_serialize_wrapper.topic_config_table.insert(t.to_string(), tc);
    }
    body.topic_config_serialize_wrapper.data_version.counter = 1;
    let bytes = to_body(&body);
    let h = RegisterBrokerRequestHeader {
        broker_name: name.into(),
        broker_addr: addr.into(),
        cluster_name: "DefaultCluster".into(),
        ha_server_addr: format!("{addr}-ha"),
        broker_id: id,
        compressed: Some(false),
        body_crc32: Some(message::body_crc(&bytes)),
    };
    RemotingCommand::request_with(request::REGISTER_BROKER, &h).with_body(bytes)
}

/// A SEND_MESSAGE_V2 request as a producer sends it: tag `tags`, key `k1`,
/// auto-creation through TBW102 with 4 queues.
pub fn send_v2(topic: &str, body: &[u8], tags: &str, queue_id: i32) -> RemotingCommand {
    let mut props = message::Properties::new();
    props.insert("TAGS", tags);
    props.insert("KEYS", "k1");
    let h = SendMessageRequestHeaderV2 {
        producer_group: "pg".into(),
        topic: topic.into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id,
        born_timestamp: rmq::common::time::now_millis(),
        properties: Some(message::properties_to_string(&props)),
        reconsume_times: Some(0),
        unit_mode: Some(false),
        batch: Some(false),
        ..Default::default()
    };
    RemotingCommand::request_with(request::SEND_MESSAGE_V2, &h).with_body(body.to_vec())
}

/// Fields drop in order: the client, the broker (it unregisters from the
/// name server), the name server, the directory.
pub struct Cluster {
    pub client: RemotingClient,
    pub broker: BrokerController,
    pub ns: NamesrvController,
    pub dir: tempfile::TempDir,
}

/// A broker named `name` registered with `ns`, storing under `store_dir`,
/// on `port` (0: any free port). Starting again on the same directory and
/// port is a broker restart.
pub fn start_broker(ns: &str, name: &str, store_dir: &std::path::Path, port: u16) -> BrokerController {
    let cfg = BrokerConfig {
        listen_port: port,
        broker_name: name.into(),
        namesrv_addr: Some(ns.to_string()),
        store: rmq::store::StoreConfig {
            mapped_file_size_commit_log: 1024 * 1024,
            ..rmq::store::StoreConfig::at(store_dir.to_path_buf())
        },
        ..Default::default()
    };
    BrokerController::start(cfg).unwrap()
}

impl Cluster {
    pub fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let ns = NamesrvController::start(NamesrvConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            kv_config_path: dir.path().join("kv.json"),
            ..Default::default()
        })
        .unwrap();
        let broker = start_broker(&ns.addr().to_string(), "broker-a", &dir.path().join("store"), 0);
        let client = RemotingClient::start(ClientConfig::default()).unwrap();
        Cluster { client, broker, ns, dir }
    }

    pub fn broker_addr(&self) -> String {
        self.broker.addr().to_string()
    }

    pub fn ns_addr(&self) -> String {
        self.ns.addr().to_string()
    }

    /// A request to the broker, answered within [`T`].
    pub fn call(&self, req: RemotingCommand) -> RemotingCommand {
        self.client.invoke_sync(&self.broker_addr(), req, T).unwrap()
    }

    /// Sends one message (tag TagA) to `queue_id`; asserts SUCCESS.
    pub fn send(&self, topic: &str, body: &[u8], queue_id: i32) -> SendMessageResponseHeader {
        let r = self.call(send_v2(topic, body, "TagA", queue_id));
        assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark);
        r.header().unwrap()
    }

    /// A request to the name server, answered within [`T`].
    pub fn call_ns(&self, req: RemotingCommand) -> RemotingCommand {
        self.client.invoke_sync(&self.ns_addr(), req, T).unwrap()
    }
}

impl Cluster {
    /// Registers with the name server a master `name` at `addr` holding
    /// `topic` with 4 queues, as a broker of the cluster would.
    pub fn register_broker(&self, name: &str, addr: &str, topic: &str) {
        let r = self.call_ns(register_broker_request(name, addr, 0, &[(topic, 4)]));
        assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark);
    }

    /// The broker names in `topic`'s route (empty when there is none).
    pub fn route_brokers(&self, topic: &str) -> Vec<String> {
        let h = GetRouteInfoRequestHeader { topic: topic.into(), accept_standard_json_only: None };
        let r = self.call_ns(RemotingCommand::request_with(request::GET_ROUTEINFO_BY_TOPIC, &h));
        if r.code != response::SUCCESS {
            return vec![];
        }
        let route: TopicRouteData = from_body(&r.body.bytes()).unwrap();
        let mut names: Vec<String> = route.queue_datas.into_iter().map(|q| q.broker_name).collect();
        names.sort();
        names
    }
}

/// An address nothing listens on: connecting is refused.
pub fn dead_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// A server that answers every request with one error code: a broker that
/// refuses sends. `sends` counts the SEND_MESSAGE_V2 requests it refused.
pub struct RefusingBroker {
    pub server: RemotingServer,
    pub addr: String,
    pub sends: Arc<AtomicUsize>,
}

impl RefusingBroker {
    pub fn start(code: i32) -> RefusingBroker {
        let mut server =
            RemotingServer::new(ServerConfig { listen: vec!["127.0.0.1:0".parse().unwrap()], ..Default::default() });
        let pool = Arc::new(ThreadPool::new("RefusingBrokerThread_", "test", 1, 1000).unwrap());
        let sends = Arc::new(AtomicUsize::new(0));
        let seen = sends.clone();
        server.register_default_processor(
            Arc::new(move |_: &Channel, req: RemotingCommand| {
                if req.code == request::SEND_MESSAGE_V2 {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
                Some(RemotingCommand::error(code, "refused by the test"))
            }),
            pool,
        );
        let addr = server.start().unwrap()[0].to_string();
        RefusingBroker { server, addr, sends }
    }
}
