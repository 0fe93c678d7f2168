//! The admin client (`rmq admin`, RocketMQ's DefaultMQAdminExt) end to end
//! against a name server and a broker: routes, cluster info, topic lists,
//! updateTopic / deleteTopic, topic and broker status, consumer progress,
//! view by message id, and the mqadmin-style renderers.

mod support;

use support::cluster::T;

use std::collections::BTreeMap;
use std::time::Duration;

use rmq::client::admin::{self, Admin, AdminError, Target};
use rmq::common::message::{self};
use rmq::common::wait;
use rmq::remoting::RemotingCommand;
use rmq::remoting::body::{HeartbeatData, TopicConfig};
use rmq::remoting::code::{request, response};
use rmq::remoting::headers::*;
use rmq::remoting::json::{from_body, to_body};

/// The shared cluster plus an admin client (dropped first).
struct Cluster {
    admin: Admin,
    inner: support::cluster::Cluster,
}

impl std::ops::Deref for Cluster {
    type Target = support::cluster::Cluster;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

fn cluster() -> Cluster {
    let inner = support::cluster::Cluster::start();
    let admin = Admin::new(&inner.ns_addr()).unwrap().with_timeout(T);
    Cluster { admin, inner }
}

impl Cluster {
    /// Sends one message to queue `queue_id`; returns its offset message id.
    fn send_id(&self, topic: &str, body: &[u8], queue_id: i32) -> String {
        self.send(topic, body, queue_id).msg_id
    }

    fn max_offset(&self, topic: &str, queue_id: i32) -> i64 {
        let h = QueueRequestHeader { bname: None, topic: topic.into(), queue_id };
        let r = self.call(RemotingCommand::request_with(request::GET_MAX_OFFSET, &h));
        assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark);
        r.header::<OffsetResponseHeader>().unwrap().offset
    }

    /// Waits until the queue's max offset reaches `n` (sends are indexed
    /// after they are answered).
    fn wait_indexed(&self, topic: &str, queue_id: i32, n: i64) {
        assert!(wait::until(T, || self.max_offset(topic, queue_id) >= n), "{topic}:{queue_id} never reached {n}");
    }

    /// Waits until the name server has a route for `topic`.
    fn wait_routable(&self, topic: &str) {
        assert!(wait::until(T, || self.admin.topic_route(topic).is_ok()), "{topic} never got a route");
    }
}

#[test]
fn every_admin_operation_end_to_end() {
    let c = cluster();
    let addr = c.broker_addr();

    // clusterList: the broker registered itself.
    assert!(wait::until(T, || c.admin.cluster_info().is_ok_and(|i| !i.broker_addr_table.is_empty())));
    let info = c.admin.cluster_info().unwrap();
    assert_eq!(info.cluster_addr_table["DefaultCluster"].iter().collect::<Vec<_>>(), ["broker-a"]);
    assert_eq!(info.broker_addr_table["broker-a"].broker_addrs[&0], addr);
    assert_eq!(c.admin.cluster_masters("DefaultCluster").unwrap(), vec![addr.clone()]);
    assert!(matches!(c.admin.cluster_masters("Nope"), Err(AdminError::NotFound(_))));
    // An unreachable name server first: reads move on to the next one.
    let failover = Admin::new(&format!("127.0.0.1:1; {}", c.ns.addr())).unwrap();
    assert_eq!(failover.cluster_info().unwrap(), info);

    // brokerStatus.
    let status = c.admin.broker_status(&addr).unwrap();
    assert_eq!(status["brokerVersionDesc"], "V4_9_8");
    assert!(status.contains_key("commitLogMaxOffset"));
    let text = admin::render_broker_status(None, &status);
    assert!(text.lines().any(|l| l == format!("{:<32}: V4_9_8", "brokerVersionDesc")), "{text}");
    assert!(admin::render_broker_status(Some(&addr), &status).starts_with(&format!("{addr:<24} ")));
    let statuses: BTreeMap<String, BTreeMap<String, String>> = [(addr.clone(), status)].into_iter().collect();
    let text = admin::render_cluster_list(&info, &statuses);
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("#Cluster Name     #Broker Name            #BID  #Addr "), "{header}");
    assert!(header.ends_with("#PCWait(ms) #Hour #SPACE"), "{header}");
    let row = lines.next().unwrap();
    assert!(
        row.starts_with(&format!(
            "{:<16}  {:<22}  {:<4}  {addr:<22} {:<16}",
            "DefaultCluster", "broker-a", 0, "V4_9_8"
        ))
    );

    // A message, then topicList, topicRoute, topicStatus, queryMsgById.
    let msg_id = c.send_id("AdminCli", b"hello admin", 0);
    c.wait_indexed("AdminCli", 0, 1);
    assert!(wait::until(T, || c.admin.topic_list().is_ok_and(|l| l.topic_list.contains("AdminCli"))));
    let list = c.admin.topic_list().unwrap();
    assert!(admin::render_topic_list(&list).lines().any(|l| l == "AdminCli"));
    c.wait_routable("AdminCli");
    let route = c.admin.topic_route("AdminCli").unwrap();
    assert_eq!(route.broker_datas[0].broker_addrs[&0], addr);
    assert_eq!(route.queue_datas[0].write_queue_nums, 4);
    let json = admin::render_topic_route(&route);
    assert!(json.starts_with("{\n\t\"brokerDatas\":[\n"), "{json}");
    let reparsed: rmq::remoting::body::TopicRouteData = from_body(json.as_bytes()).unwrap();
    assert_eq!(reparsed, route);
    match c.admin.topic_route("NoSuchTopic") {
        Err(e @ AdminError::NotFound(_)) => {
            assert_eq!(e.to_string(), "No topic route info in name server for the topic: NoSuchTopic")
        }
        other => panic!("expected NotFound, got {other:?}"),
    }

    let queues = c.admin.topic_status("AdminCli").unwrap();
    assert_eq!(queues.len(), 4);
    assert_eq!(queues.iter().map(|(mq, _)| mq.queue_id).collect::<Vec<_>>(), [0, 1, 2, 3]);
    let (mq, o) = &queues[0];
    assert_eq!((mq.broker_name.as_str(), o.min_offset, o.max_offset), ("broker-a", 0, 1));
    assert!(o.last_update_timestamp > 0);
    assert_eq!((queues[1].1.min_offset, queues[1].1.max_offset), (0, 0));
    let text = admin::render_topic_status(&queues);
    assert_eq!(
        text.lines().next().unwrap(),
        format!("{:<32}  {:<4}  {:<20}  {:<20}    #Last Updated", "#Broker Name", "#QID", "#Min Offset", "#Max Offset")
    );
    assert!(text.lines().nth(1).unwrap().starts_with(&format!("{:<32}  0     0                     1   ", "broker-a")));

    let m = c.admin.query_msg_by_id(&msg_id).unwrap();
    assert_eq!(m.body().as_ref(), b"hello admin");
    assert_eq!(
        (m.topic(), m.tags(), m.keys(), m.queue_id, m.queue_offset),
        ("AdminCli", Some("TagA"), Some("k1"), 0, 0)
    );
    assert_eq!(m.msg_id, msg_id);
    let text = admin::render_message(&m);
    for line in [
        format!("{:<20} {msg_id}", "OffsetID:"),
        format!("{:<20} AdminCli", "Topic:"),
        format!("{:<20} [TagA]", "Tags:"),
        format!("{:<20} [k1]", "Keys:"),
        format!("{:<20} 0", "Queue ID:"),
        format!("{:<20} {}", "Store Host:", m.store_host),
        format!("{:<20} {}", "Born Timestamp:", rmq::common::time::format_utc_millis(m.born_timestamp)),
        format!("{:<20} hello admin", "Message Body:"),
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
    }
    assert!(matches!(c.admin.query_msg_by_id("not-an-id"), Err(AdminError::Decode(_))));
    let missing = message::create_message_id(m.store_host, 1 << 40);
    assert!(matches!(c.admin.query_msg_by_id(&missing), Err(AdminError::Refused { code: response::SYSTEM_ERROR, .. })));

    // consumerProgress: a consumer's heartbeat creates %RETRY%G (the route
    // consumerProgress finds the brokers by), then an offset commit.
    assert!(matches!(c.admin.consumer_progress("G"), Err(AdminError::NotFound(_))));
    let hb: HeartbeatData = from_body(
        br#"{"clientID":"127.0.0.1@9","consumerDataSet":[{"groupName":"G","consumeType":"CONSUME_PASSIVELY",
        "messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","subscriptionDataSet":
        [{"topic":"AdminCli","subString":"*","tagsSet":[],"codeSet":[],"subVersion":1}],"unitMode":false}],
        "producerDataSet":[]}"#,
    )
    .unwrap();
    assert_eq!(c.call(RemotingCommand::request(request::HEART_BEAT).with_body(to_body(&hb))).code, response::SUCCESS);
    let commit = UpdateConsumerOffsetRequestHeader {
        bname: None,
        consumer_group: "G".into(),
        topic: "AdminCli".into(),
        queue_id: 0,
        commit_offset: 0,
    };
    assert_eq!(c.call(RemotingCommand::request_with(request::UPDATE_CONSUMER_OFFSET, &commit)).code, response::SUCCESS);
    c.wait_routable("%RETRY%G");
    let progress = c.admin.consumer_progress("G").unwrap();
    let (_, w) = progress.iter().find(|(mq, _)| mq.topic == "AdminCli" && mq.queue_id == 0).unwrap();
    assert_eq!((w.broker_offset, w.consumer_offset), (1, 0));
    let stats = c.admin.consume_stats("G").unwrap();
    assert_eq!(stats.total_diff(), 1);
    let text = admin::render_consumer_progress(&stats, None);
    let header = text.lines().next().unwrap();
    assert_eq!(
        header,
        format!(
            "{:<64}  {:<32}  {:<4}  {:<20}  {:<20}  {:<20}  #LastTime",
            "#Topic", "#Broker Name", "#QID", "#Broker Offset", "#Consumer Offset", "#Diff"
        )
    );
    assert!(text.ends_with("\nConsume TPS: 0.00\nDiff Total: 1\n"), "{text}");
    let with_ips = admin::render_consumer_progress(&stats, Some(&Default::default()));
    assert!(
        with_ips.lines().next().unwrap().contains(&format!("{:<20}  {:<20} #Diff", "#Consumer Offset", "#Client IP"))
    );
    assert!(with_ips.lines().nth(1).unwrap().contains("  N/A "));

    // updateTopic to the cluster's masters, then to one broker.
    let cfg = TopicConfig { read_queue_nums: 3, write_queue_nums: 5, ..admin::default_topic_config("Created") };
    assert_eq!((cfg.perm, cfg.topic_filter_type.as_str()), (6, "SINGLE_TAG"));
    let updated = c.admin.update_topic(Target::Cluster("DefaultCluster".into()), cfg).unwrap();
    assert_eq!(updated, vec![addr.clone()]);
    let route = c.admin.topic_route("Created").unwrap();
    assert_eq!((route.queue_datas[0].read_queue_nums, route.queue_datas[0].write_queue_nums), (3, 5));
    assert_eq!(route.queue_datas[0].perm, 6);
    let cfg = TopicConfig { perm: 4, order: true, ..admin::default_topic_config("Created") };
    assert_eq!(c.admin.update_topic(Target::Broker(addr.clone()), cfg).unwrap(), vec![addr.clone()]);
    let route = c.admin.topic_route("Created").unwrap();
    assert_eq!((route.queue_datas[0].write_queue_nums, route.queue_datas[0].perm), (8, 4));
    assert_eq!(route.order_topic_conf.as_deref(), Some("broker-a:8"));
    let bad = TopicConfig { ..admin::default_topic_config("TBW102") };
    match c.admin.update_topic(Target::Broker(addr.clone()), bad) {
        Err(e @ AdminError::Refused { .. }) => assert!(e.to_string().contains("conflict with system topic"), "{e}"),
        other => panic!("expected Refused, got {other:?}"),
    }
    assert!(matches!(
        c.admin.update_topic(Target::Cluster("Nope".into()), admin::default_topic_config("X")),
        Err(AdminError::NotFound(_))
    ));

    // deleteTopic: gone from the broker and from the route.
    c.admin.delete_topic("DefaultCluster", "Created").unwrap();
    assert!(matches!(c.admin.topic_route("Created"), Err(AdminError::NotFound(_))));
    assert!(!c.admin.topic_list().unwrap().topic_list.contains("Created"));
    let r = c.call(RemotingCommand::request(request::GET_ALL_TOPIC_CONFIG));
    let all: rmq::remoting::body::TopicConfigSerializeWrapper = from_body(&r.body.bytes()).unwrap();
    assert!(!all.topic_config_table.contains_key("Created"));
    assert!(all.topic_config_table.contains_key("AdminCli"));
}

#[test]
fn bad_name_server_lists_and_unreachable_servers_are_errors() {
    assert!(matches!(Admin::new(" ; "), Err(AdminError::NotFound(_))));
    let a = Admin::new("127.0.0.1:1").unwrap().with_timeout(Duration::from_millis(500));
    assert_eq!(a.namesrv_addrs(), ["127.0.0.1:1"]);
    match a.cluster_info() {
        Err(e @ AdminError::Remoting(_)) => assert!(e.to_string().contains("127.0.0.1:1"), "{e}"),
        other => panic!("expected a remoting error, got {other:?}"),
    }
}
