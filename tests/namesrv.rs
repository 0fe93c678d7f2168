//! The name server over the wire: registration (with a real Apache broker's
//! registration body from the captures), routes, cluster info, topic lists,
//! KV config, unregistration, and dropping brokers that close or go silent.

mod support;

use std::time::Duration;

use rmq::common::wait;
use rmq::namesrv::{NamesrvConfig, NamesrvController};
use rmq::remoting::body::{ClusterInfo, KvTable, TopicList, TopicRouteData};
use rmq::remoting::code::{request, response};
use rmq::remoting::headers::*;
use rmq::remoting::json::from_body;
use rmq::remoting::{ClientConfig, RemotingClient, RemotingCommand};
use support::{cluster, pcap};

const T: Duration = Duration::from_secs(5);

fn start(dir: &std::path::Path, cfg: impl FnOnce(&mut NamesrvConfig)) -> (NamesrvController, String) {
    let mut c = NamesrvConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        kv_config_path: dir.join("kvConfig.json"),
        ..Default::default()
    };
    cfg(&mut c);
    let ns = NamesrvController::start(c).unwrap();
    let addr = ns.addr().to_string();
    (ns, addr)
}

fn client() -> RemotingClient {
    RemotingClient::start(ClientConfig::default()).unwrap()
}

fn register(c: &RemotingClient, ns: &str, name: &str, addr: &str, id: i64, topics: &[(&str, i32)]) -> RemotingCommand {
    c.invoke_sync(ns, cluster::register_broker_request(name, addr, id, topics), T).unwrap()
}

fn route(c: &RemotingClient, ns: &str, topic: &str) -> RemotingCommand {
    let h = GetRouteInfoRequestHeader { topic: topic.into(), accept_standard_json_only: None };
    c.invoke_sync(ns, RemotingCommand::request_with(request::GET_ROUTEINFO_BY_TOPIC, &h), T).unwrap()
}

#[test]
fn a_real_brokers_registration_gives_routes_cluster_info_and_topic_lists() {
    let dir = tempfile::tempdir().unwrap();
    let (_ns, addr) = start(dir.path(), |_| {});
    let c = client();
    // The REGISTER_BROKER Apache 4.9.7's broker sent, replayed as it was.
    let path = pcap::captures().into_iter().find(|p| p.ends_with("java-consumer.pcap")).unwrap();
    let frame = pcap::frames(&path)
        .into_iter()
        .map(|f| RemotingCommand::decode_frame(&f.bytes).unwrap())
        .find(|c| c.code == request::REGISTER_BROKER)
        .expect("a registration in the capture");
    let mut replay = RemotingCommand::request(request::REGISTER_BROKER);
    replay.ext_fields = frame.ext_fields.clone();
    replay.body = frame.body.clone();
    let r = c.invoke_sync(&addr, replay, T).unwrap();
    assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark);

    let r = route(&c, &addr, "Cap_javabin");
    assert_eq!(r.code, response::SUCCESS);
    let data: TopicRouteData = from_body(&r.body.bytes()).unwrap();
    assert_eq!(data.broker_datas.len(), 1);
    assert_eq!(data.broker_datas[0].broker_name, "broker-a");
    assert_eq!(data.broker_datas[0].cluster, "DefaultCluster");
    assert_eq!(data.broker_datas[0].select_broker_addr(), Some("127.0.0.1:20911"));
    assert_eq!((data.queue_datas[0].read_queue_nums, data.queue_datas[0].perm), (4, 6));
    let text = String::from_utf8(r.body.to_bytes().to_vec()).unwrap();
    assert!(text.contains(r#""brokerAddrs":{"0":"127.0.0.1:20911"}"#), "standard JSON: {text}");

    let r = c.invoke_sync(&addr, RemotingCommand::request(request::GET_BROKER_CLUSTER_INFO), T).unwrap();
    let info: ClusterInfo = from_body(&r.body.bytes()).unwrap();
    assert!(info.cluster_addr_table["DefaultCluster"].contains("broker-a"));
    let r = c.invoke_sync(&addr, RemotingCommand::request(request::GET_ALL_TOPIC_LIST_FROM_NAMESERVER), T).unwrap();
    let topics: TopicList = from_body(&r.body.bytes()).unwrap();
    assert!(topics.topic_list.contains("Cap_javabin") && topics.topic_list.contains("SCHEDULE_TOPIC_XXXX"));
    let h = GetTopicsByClusterRequestHeader { cluster: "DefaultCluster".into() };
    let r = c.invoke_sync(&addr, RemotingCommand::request_with(request::GET_TOPICS_BY_CLUSTER, &h), T).unwrap();
    assert_eq!(from_body::<TopicList>(&r.body.bytes()).unwrap().topic_list, topics.topic_list);
    let h = GetTopicsByClusterRequestHeader { cluster: "Nope".into() };
    let r = c.invoke_sync(&addr, RemotingCommand::request_with(request::GET_TOPICS_BY_CLUSTER, &h), T).unwrap();
    assert!(from_body::<TopicList>(&r.body.bytes()).unwrap().topic_list.is_empty());
}

#[test]
fn missing_routes_deleted_topics_and_bad_requests_get_apaches_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (_ns, addr) = start(dir.path(), |_| {});
    let c = client();
    let r = route(&c, &addr, "%RETRY%g");
    assert_eq!(r.code, response::TOPIC_NOT_EXIST);
    assert_eq!(
        r.remark.as_deref(),
        Some(
            "No topic route info in name server for the topic: %RETRY%g\nSee http://rocketmq.apache.org/docs/faq/ for further details."
        )
    );
    assert_eq!(register(&c, &addr, "b", "127.0.0.1:1", 0, &[("T1", 8)]).code, response::SUCCESS);
    assert_eq!(route(&c, &addr, "T1").code, response::SUCCESS);
    let h = DeleteTopicFromNamesrvRequestHeader { topic: "T1".into(), cluster_name: None };
    assert_eq!(
        c.invoke_sync(&addr, RemotingCommand::request_with(request::DELETE_TOPIC_IN_NAMESRV, &h), T).unwrap().code,
        0
    );
    assert_eq!(route(&c, &addr, "T1").code, response::TOPIC_NOT_EXIST);

    let mut bad = RemotingCommand::request(request::REGISTER_BROKER);
    bad.ext_fields.insert("brokerAddr", "x");
    let r = c.invoke_sync(&addr, bad, T).unwrap();
    assert_eq!(r.code, response::SYSTEM_ERROR);
    assert!(r.remark.unwrap().contains("brokerName"), "the remark names the missing field");

    let h = RegisterBrokerRequestHeader {
        broker_name: "b".into(),
        broker_addr: "127.0.0.1:1".into(),
        cluster_name: "C".into(),
        ha_server_addr: String::new(),
        broker_id: 0,
        compressed: Some(false),
        body_crc32: Some(12345),
    };
    let r = c
        .invoke_sync(&addr, RemotingCommand::request_with(request::REGISTER_BROKER, &h).with_body(b"{}".to_vec()), T)
        .unwrap();
    assert_eq!((r.code, r.remark.as_deref()), (response::SYSTEM_ERROR, Some("crc32 not match")));
    let r = c.invoke_sync(&addr, RemotingCommand::request(request::GET_CONSUME_STATS), T).unwrap();
    assert_eq!(r.code, response::REQUEST_CODE_NOT_SUPPORTED);
}

#[test]
fn kv_config_and_order_topic_conf() {
    let dir = tempfile::tempdir().unwrap();
    let (ns, addr) = start(dir.path(), |_| {});
    let c = client();
    let put =
        PutKvConfigRequestHeader { namespace: "ORDER_TOPIC_CONFIG".into(), key: "OT".into(), value: "b:4".into() };
    assert_eq!(c.invoke_sync(&addr, RemotingCommand::request_with(request::PUT_KV_CONFIG, &put), T).unwrap().code, 0);
    let key = KvConfigKeyRequestHeader { namespace: "ORDER_TOPIC_CONFIG".into(), key: "OT".into() };
    let r = c.invoke_sync(&addr, RemotingCommand::request_with(request::GET_KV_CONFIG, &key), T).unwrap();
    assert_eq!(r.header::<GetKvConfigResponseHeader>().unwrap().value.as_deref(), Some("b:4"));

    let reg = register(&c, &addr, "b", "127.0.0.1:2", 0, &[("OT", 4)]);
    let kv: KvTable = from_body(&reg.body.bytes()).unwrap();
    assert_eq!(kv.table.get("OT").map(String::as_str), Some("b:4"), "brokers get the order topic config back");
    let data: TopicRouteData = from_body(&route(&c, &addr, "OT").body.bytes()).unwrap();
    assert_eq!(data.order_topic_conf.as_deref(), Some("b:4"));

    assert_eq!(
        c.invoke_sync(&addr, RemotingCommand::request_with(request::DELETE_KV_CONFIG, &key), T).unwrap().code,
        0
    );
    let r = c.invoke_sync(&addr, RemotingCommand::request_with(request::GET_KV_CONFIG, &key), T).unwrap();
    assert_eq!(r.code, response::QUERY_NOT_FOUND);
    assert_eq!(r.remark.as_deref(), Some("No config item, Namespace: ORDER_TOPIC_CONFIG Key: OT"));
    drop(ns);
    assert!(dir.path().join("kvConfig.json").exists(), "the KV config is persisted");
}

#[test]
fn unregistered_closed_and_silent_brokers_leave_the_routes() {
    let dir = tempfile::tempdir().unwrap();
    let (ns, addr) = start(dir.path(), |c| {
        c.broker_channel_expired = Duration::from_millis(1500);
        c.scan_interval = Duration::from_millis(100);
    });
    let c = client();
    // A slave learns its master's addresses.
    register(&c, &addr, "b", "127.0.0.1:10", 0, &[("U", 4)]);
    let slave = register(&c, &addr, "b", "127.0.0.1:11", 1, &[]);
    let h = slave.header::<RegisterBrokerResponseHeader>().unwrap();
    assert_eq!(h.master_addr.as_deref(), Some("127.0.0.1:10"));
    assert_eq!(h.ha_server_addr.as_deref(), Some("127.0.0.1:10-ha"));
    let un = UnregisterBrokerRequestHeader {
        broker_name: "b".into(),
        broker_addr: "127.0.0.1:10".into(),
        cluster_name: "DefaultCluster".into(),
        broker_id: 0,
    };
    c.invoke_sync(&addr, RemotingCommand::request_with(request::UNREGISTER_BROKER, &un), T).unwrap();
    let data: TopicRouteData = from_body(&route(&c, &addr, "U").body.bytes()).unwrap();
    assert_eq!(
        data.broker_datas[0].broker_addrs.keys().copied().collect::<Vec<_>>(),
        vec![1],
        "only the slave is left"
    );

    // A broker whose connection closes is dropped at once.
    let own = client();
    register(&own, &addr, "closing", "127.0.0.1:20", 0, &[("Closing", 4)]);
    assert_eq!(route(&c, &addr, "Closing").code, response::SUCCESS);
    own.shutdown();
    // Well inside the 1.5 s expiry: the close, not the silence, removed it.
    assert!(wait::until(Duration::from_millis(1000), || route(&c, &addr, "Closing").code == response::TOPIC_NOT_EXIST));

    // A broker that stays connected but silent is dropped by NSScheduledThread.
    register(&c, &addr, "silent", "127.0.0.1:30", 0, &[("Silent", 4)]);
    assert!(ns.routes().live_brokers().contains_key("127.0.0.1:30"));
    assert!(wait::until(Duration::from_secs(6), || route(&c, &addr, "Silent").code == response::TOPIC_NOT_EXIST));
    let names = rmq::common::thread::registered_names();
    assert!(names.iter().any(|n| n == "NSScheduledThread") && names.iter().any(|n| n == "RemotingExecutorThread_1"));
}
