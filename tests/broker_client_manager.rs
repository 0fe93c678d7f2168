//! Client management: real clients' heartbeats parse, TAG subscriptions are
//! built as Apache builds them, consumers and producers join and leave groups
//! over real connections, and NOTIFY_CONSUMER_IDS_CHANGED reaches them.

mod support;

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rmq::broker::client_manager::{ClientChannelInfo, ConsumerManager, ProducerManager, notify_consumer_ids_changed};
use rmq::common::ThreadPool;
use rmq::common::time::now_millis;
use rmq::common::wait;
use rmq::remoting::body::{
    ConsumerConnection, ConsumerData, GetConsumerListByGroupResponseBody, HeartbeatData, SubscriptionData,
};
use rmq::remoting::code::{request, response};
use rmq::remoting::headers::NotifyConsumerIdsChangedRequestHeader;
use rmq::remoting::json::{from_body, to_body};
use rmq::remoting::{Channel, ClientConfig, RemotingClient, RemotingCommand, RemotingServer, ServerConfig};
use support::pcap;

const T: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------- bodies

#[test]
fn every_captured_heartbeat_parses() {
    let mut seen = 0;
    let mut clients = Vec::new();
    for path in pcap::captures() {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        for f in pcap::frames(&path) {
            let cmd = RemotingCommand::decode_frame(&f.bytes).unwrap();
            if cmd.is_response() || cmd.code != request::HEART_BEAT {
                continue;
            }
            let body = cmd.body.bytes();
            let hb: HeartbeatData =
                from_body(&body).unwrap_or_else(|e| panic!("{name}: {e}: {}", String::from_utf8_lossy(&body)));
            seen += 1;
            assert!(!hb.client_id.is_empty(), "{name}");
            assert!(!hb.consumer_data_set.is_empty() || !hb.producer_data_set.is_empty(), "{name}: {hb:?}");
            for p in &hb.producer_data_set {
                assert!(!p.group_name.is_empty(), "{name}");
            }
            for c in &hb.consumer_data_set {
                assert!(!c.group_name.is_empty(), "{name}");
                assert_eq!(c.consume_type, "CONSUME_PASSIVELY", "{name}");
                assert_eq!(c.message_model, "CLUSTERING", "{name}");
                assert!(c.consume_from_where.starts_with("CONSUME_FROM_"), "{name}: {c:?}");
                assert!(!c.subscription_data_set.is_empty(), "{name}");
                for s in &c.subscription_data_set {
                    assert!(s.sub_version > 1_700_000_000_000, "{name}: {s:?}");
                }
                // The first-wave captures (groups `cap_*` on topics `Cap_*`)
                // subscribe to every tag; later ones (ACL, SQL92) differ.
                if !c.group_name.starts_with("cap_") {
                    continue;
                }
                let retry = format!("%RETRY%{}", c.group_name);
                assert!(c.subscription_data_set.iter().any(|s| s.topic.starts_with("Cap_")), "{name}: {c:?}");
                for s in &c.subscription_data_set {
                    assert!(s.topic.starts_with("Cap_") || s.topic == retry, "{name}: {s:?}");
                    assert_eq!(s.sub_string, "*", "{name}");
                    assert!(s.is_tag_type(), "{name}");
                    assert!(s.matches_tags_code(12345));
                }
            }
            // What we write reads back the same.
            let again: HeartbeatData = from_body(&to_body(&hb)).unwrap();
            assert_eq!(again, hb, "{name}");
            clients.push(name.clone());
        }
    }
    assert!(seen >= 10, "only {seen} heartbeats");
    for must in ["java-consumer", "ali-ons-consumer", "rocketmq-py-consumer", "rocketmq-client-python-producer"] {
        assert!(clients.iter().any(|c| c.starts_with(must)), "no heartbeat from {must}: {clients:?}");
    }
}

#[test]
fn cpp_heartbeats_carry_enum_ordinals_and_string_versions() {
    let body = br#"{"clientID":"1-127.0.0.1@DEFAULT","consumerDataSet":[{"consumeFromWhere":4,"consumeType":0,"groupName":"g","messageModel":0,"subscriptionDataSet":[{"subString":"*","subVersion":"1795317500022","topic":"T"}]}]}
"#;
    let hb: HeartbeatData = from_body(body).unwrap();
    let c = &hb.consumer_data_set[0];
    assert_eq!(
        (c.consume_type.as_str(), c.message_model.as_str(), c.consume_from_where.as_str()),
        ("CONSUME_ACTIVELY", "BROADCASTING", "CONSUME_FROM_FIRST_OFFSET")
    );
    let s = &c.subscription_data_set[0];
    assert_eq!(s.sub_version, 1_795_317_500_022);
    assert_eq!(s.expression_type, "TAG");
    assert!(hb.producer_data_set.is_empty());
    assert!(from_body::<HeartbeatData>(br#"{"consumerDataSet":[{"consumeType":7}]}"#).is_err());
    let nulls: HeartbeatData =
        from_body(br#"{"clientID":null,"consumerDataSet":null,"producerDataSet":null}"#).unwrap();
    assert_eq!(nulls, HeartbeatData::default());
}

#[test]
fn tag_subscriptions_are_built_as_apache_builds_them() {
    let s = SubscriptionData::build("T", "TagA || TagB").unwrap();
    assert_eq!(s.topic, "T");
    assert_eq!(s.sub_string, "TagA || TagB");
    assert_eq!(s.tags_set.iter().map(String::as_str).collect::<Vec<_>>(), ["TagA", "TagB"]);
    assert_eq!(s.code_set.iter().copied().collect::<Vec<_>>(), [2598919, 2598920]);
    assert!(s.matches_tags_code(2598919));
    assert!(s.matches_tags_code(2598920));
    assert!(!s.matches_tags_code(rmq::common::message::tags_hash("TagC")));
    assert!(s.sub_version > 0 && (now_millis() - s.sub_version).abs() < 60_000);

    for all in ["*", ""] {
        let s = SubscriptionData::build("T", all).unwrap();
        assert_eq!(s.sub_string, "*");
        assert!(s.tags_set.is_empty() && s.code_set.is_empty());
        assert!(s.matches_tags_code(42) && s.matches_tags_code(0));
    }
    let s = SubscriptionData::build("T", "||A|| ||").unwrap();
    assert_eq!(s.tags_set.iter().map(String::as_str).collect::<Vec<_>>(), ["A"]);
    assert!(SubscriptionData::build("T", "||").is_err());
    assert!(SubscriptionData::build("T", "||||").is_err());

    // SQL92 subscriptions are not decided by tags codes.
    let sql = SubscriptionData { sub_string: "a > 1".into(), expression_type: "SQL92".into(), ..Default::default() };
    assert!(sql.matches_tags_code(1));

    let json = String::from_utf8(to_body(&SubscriptionData::build("T", "TagA").unwrap())).unwrap();
    for key in
        [r#""classFilterMode":false"#, r#""subString":"TagA""#, r#""tagsSet":["TagA"]"#, r#""codeSet":[2598919]"#]
    {
        assert!(json.contains(key), "{json}");
    }
    assert!(json.contains(r#""expressionType":"TAG""#) && json.contains(r#""subVersion":"#), "{json}");
}

#[test]
fn consumer_list_bodies_use_apache_names() {
    let json = String::from_utf8(to_body(&GetConsumerListByGroupResponseBody {
        consumer_id_list: vec!["a@1".into(), "b@2".into()],
    }))
    .unwrap();
    assert_eq!(json, r#"{"consumerIdList":["a@1","b@2"]}"#);
    // As Apache's broker writes it (fastjson: enums by name, sets as arrays).
    let apache = br#"{"connectionSet":[{"clientAddr":"127.0.0.1:5000","clientId":"127.0.0.1@1","language":"JAVA","version":409}],"consumeFromWhere":"CONSUME_FROM_FIRST_OFFSET","consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","subscriptionTable":{"T":{"classFilterMode":false,"codeSet":[],"expressionType":"TAG","subString":"*","subVersion":1,"tagsSet":[],"topic":"T"}}}"#;
    let cc: ConsumerConnection = from_body(apache).unwrap();
    assert_eq!(cc.connection_set[0].client_addr, "127.0.0.1:5000");
    assert_eq!(cc.connection_set[0].language, "JAVA");
    assert_eq!(cc.min_version(), 409);
    assert_eq!(cc.subscription_table["T"].sub_version, 1);
    assert_eq!(cc.consume_type, "CONSUME_PASSIVELY");
}

// ---------------------------------------------------------------- managers

/// A server that records the channel of each request, and what clients got.
struct Net {
    _server: RemotingServer,
    addr: String,
    seen: Arc<Mutex<Vec<Channel>>>,
}

impl Net {
    fn start() -> Net {
        let mut server =
            RemotingServer::new(ServerConfig { listen: vec!["127.0.0.1:0".parse().unwrap()], ..Default::default() });
        let seen: Arc<Mutex<Vec<Channel>>> = Arc::default();
        let s2 = seen.clone();
        let pool = Arc::new(ThreadPool::new("ClientMgrTestThread_", "test", 1, 10).unwrap());
        server.register_processor(
            1,
            Arc::new(move |ch: &Channel, _: RemotingCommand| {
                s2.lock().push(ch.clone());
                Some(RemotingCommand::response(response::SUCCESS, None))
            }),
            pool,
        );
        let addr = server.start().unwrap()[0].to_string();
        Net { _server: server, addr, seen }
    }

    /// A connected client whose NOTIFY_CONSUMER_IDS_CHANGED groups land in
    /// the returned list ("?" for an unreadable header, a "!" suffix for a
    /// notice that is not oneway), and the server's channel for it.
    fn client(&self) -> (RemotingClient, Channel, Arc<Mutex<Vec<String>>>) {
        let c = RemotingClient::start(ClientConfig::default()).unwrap();
        let notices: Arc<Mutex<Vec<String>>> = Arc::default();
        let n2 = notices.clone();
        c.register_processor(
            request::NOTIFY_CONSUMER_IDS_CHANGED,
            Arc::new(move |_: &Channel, cmd: RemotingCommand| {
                let group = cmd
                    .header::<NotifyConsumerIdsChangedRequestHeader>()
                    .map_or_else(|_| "?".to_string(), |h| h.consumer_group);
                n2.lock().push(if cmd.is_oneway() { group } else { format!("{group}!") });
                None
            }),
        );
        let before = self.seen.lock().len();
        c.invoke_sync(&self.addr, RemotingCommand::request(1), T).unwrap();
        let ch = self.seen.lock()[before].clone();
        (c, ch, notices)
    }
}

fn consumer(group: &str, topics: &[(&str, &str)]) -> ConsumerData {
    ConsumerData {
        group_name: group.into(),
        consume_type: "CONSUME_PASSIVELY".into(),
        message_model: "CLUSTERING".into(),
        consume_from_where: "CONSUME_FROM_FIRST_OFFSET".into(),
        subscription_data_set: topics.iter().map(|(t, e)| SubscriptionData::build(t, e).unwrap()).collect(),
        unit_mode: false,
    }
}

fn info(ch: &Channel, id: &str) -> ClientChannelInfo {
    ClientChannelInfo {
        channel: ch.clone(),
        client_id: id.into(),
        language: "JAVA".into(),
        version: 409,
        last_update_timestamp: now_millis(),
    }
}

#[test]
fn consumers_join_refresh_and_leave_groups() {
    let net = Net::start();
    let (_c1, ch1, _) = net.client();
    let (_c2, ch2, _) = net.client();
    let m = ConsumerManager::new();
    let data = consumer("G", &[("T", "TagA || TagB"), ("%RETRY%G", "*")]);

    assert!(m.register_consumer(&data, info(&ch1, "c1")), "a new member is a change");
    assert!(!m.register_consumer(&data, info(&ch1, "c1")), "a refresh is not");
    assert!(m.register_consumer(&data, info(&ch2, "c2")));
    assert_eq!(m.consumer_ids("G"), ["c1", "c2"]);
    assert_eq!(m.channels("G"), [ch1.clone(), ch2.clone()]);
    assert_eq!(m.find_channel("G", "c2").map(|i| i.channel), Some(ch2.clone()));
    assert!(m.find_channel("G", "c3").is_none());
    assert_eq!(m.groups(), ["G"]);
    assert_eq!(m.groups_subscribing("T"), ["G"]);
    assert!(m.groups_subscribing("U").is_empty());
    let sub = m.subscription("G", "T").unwrap();
    assert!(sub.matches_tags_code(2598919) && !sub.matches_tags_code(1));
    let g = m.group_info("G").unwrap();
    assert_eq!((g.consume_type.as_str(), g.message_model.as_str()), ("CONSUME_PASSIVELY", "CLUSTERING"));
    assert_eq!(g.subscribed_topics(), ["%RETRY%G", "T"]);
    let cc = m.consumer_connection("G").unwrap();
    assert_eq!(cc.connection_set.len(), 2);
    assert_eq!(cc.connection_set[0].client_addr, ch1.remote_addr().to_string());
    assert_eq!(cc.subscription_table.len(), 2);

    // Subscriptions: a new topic is a change, a newer version of one is not,
    // a dropped topic is.
    let mut more = consumer("G", &[("T", "TagA || TagB"), ("%RETRY%G", "*"), ("U", "*")]);
    assert!(m.register_consumer(&more, info(&ch1, "c1")));
    assert_eq!(m.groups_subscribing("U"), ["G"]);
    let version = m.subscription("G", "T").unwrap().sub_version;
    more.subscription_data_set[0] = SubscriptionData::build("T", "TagC").unwrap();
    more.subscription_data_set[0].sub_version = version + 1;
    assert!(!m.register_consumer(&more, info(&ch1, "c1")));
    assert_eq!(m.subscription("G", "T").unwrap().sub_string, "TagC");
    let mut older = more.clone();
    older.subscription_data_set[0] = SubscriptionData::build("T", "TagD").unwrap();
    older.subscription_data_set[0].sub_version = version;
    assert!(!m.register_consumer(&older, info(&ch1, "c1")));
    assert_eq!(m.subscription("G", "T").unwrap().sub_string, "TagC", "an older version is ignored");
    assert!(m.register_consumer(&data, info(&ch1, "c1")), "U dropped");
    assert!(m.groups_subscribing("U").is_empty());

    // Leaving: unregister, then the connection closing.
    assert!(m.unregister_consumer("G", &ch2));
    assert!(!m.unregister_consumer("G", &ch2), "not a member any more");
    assert!(!m.unregister_consumer("H", &ch1), "no such group");
    assert_eq!(m.consumer_ids("G"), ["c1"]);
    assert!(m.register_consumer(&consumer("H", &[("T", "*")]), info(&ch1, "c1")));
    assert_eq!(m.groups_subscribing("T"), ["G", "H"]);
    assert!(m.on_channel_closed(&ch2).is_empty());
    assert_eq!(m.on_channel_closed(&ch1), ["G", "H"]);
    assert!(m.groups().is_empty(), "groups without members are dropped");
    assert!(m.consumer_ids("G").is_empty() && m.subscription("G", "T").is_none() && m.group_info("G").is_none());
    assert!(m.consumer_connection("G").is_none());
}

#[test]
fn scanning_drops_and_closes_silent_consumers_and_producers() {
    let net = Net::start();
    let (_c1, ch1, _) = net.client();
    let (_c2, ch2, _) = net.client();
    let m = ConsumerManager::new();
    let p = ProducerManager::new();
    let data = consumer("G", &[("T", "*")]);
    m.register_consumer(&data, info(&ch1, "c1"));
    m.register_consumer(&data, info(&ch2, "c2"));
    let mut old = info(&ch1, "c1");
    old.last_update_timestamp -= 10_000;
    assert!(p.register_producer("P", old));
    assert!(p.register_producer("P", info(&ch2, "c2")));

    // ch1 falls silent; ch2 keeps sending heartbeats.
    let t0 = now_millis();
    assert!(wait::until(T, || now_millis() - t0 > 100));
    assert!(!m.register_consumer(&data, info(&ch2, "c2")));
    assert!(!p.register_producer("P", info(&ch2, "c2")));
    assert!(m.scan_not_active_channels(60_000).is_empty());
    assert_eq!(m.scan_not_active_channels(80), [("G".to_string(), ch1.clone())]);
    assert_eq!(m.consumer_ids("G"), ["c2"]);
    assert!(wait::until(T, || !ch1.is_active()), "a dropped consumer's connection is closed");
    assert!(ch2.is_active());

    assert_eq!(p.scan_not_active_channels(80), [("P".to_string(), ch1.clone())]);
    let groups = p.groups();
    assert_eq!(groups["P"].iter().map(|i| i.client_id.as_str()).collect::<Vec<_>>(), ["c2"]);
    assert!(p.find_channel("c1").is_none());
    assert_eq!(p.find_channel("c2"), Some(ch2.clone()));
}

#[test]
fn producers_join_and_leave_groups() {
    let net = Net::start();
    let (_c1, ch1, _) = net.client();
    let (_c2, ch2, _) = net.client();
    let p = ProducerManager::new();
    assert!(p.register_producer("P", info(&ch1, "p1")));
    assert!(!p.register_producer("P", info(&ch1, "p1")));
    assert!(p.register_producer("P", info(&ch2, "p2")));
    assert!(p.register_producer("Q", info(&ch2, "p2")));
    let groups = p.groups();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups["P"].iter().map(|i| i.channel.clone()).collect::<Vec<_>>(), [ch1.clone(), ch2.clone()]);
    assert_eq!(p.find_channel("p1"), Some(ch1.clone()));
    let picks: Vec<Channel> = (0..4).filter_map(|_| p.available_channel("P")).collect();
    assert!(picks.contains(&ch1) && picks.contains(&ch2), "taken in turn");
    assert!(p.available_channel("nobody").is_none());

    assert!(p.unregister_producer("P", &ch1));
    assert!(!p.unregister_producer("P", &ch1));
    assert!(p.find_channel("p1").is_none());
    assert_eq!(p.on_channel_closed(&ch2), ["P", "Q"]);
    assert!(p.groups().is_empty());
    assert!(p.find_channel("p2").is_none());
    assert!(p.available_channel("P").is_none());
}

#[test]
fn members_are_notified_of_membership_changes() {
    let net = Net::start();
    let (_c1, ch1, n1) = net.client();
    let (_c2, ch2, n2) = net.client();
    let (_c3, ch3, n3) = net.client();
    let m = ConsumerManager::new();
    m.register_consumer(&consumer("G", &[("T", "*")]), info(&ch1, "c1"));
    m.register_consumer(&consumer("G", &[("T", "*")]), info(&ch2, "c2"));
    m.register_consumer(&consumer("H", &[("T", "*")]), info(&ch3, "c3"));

    notify_consumer_ids_changed(&m, "G");
    assert!(wait::until(T, || n1.lock().len() == 1 && n2.lock().len() == 1), "{:?} {:?}", n1.lock(), n2.lock());
    assert_eq!(n1.lock()[0], "G");
    assert_eq!(n2.lock()[0], "G");
    notify_consumer_ids_changed(&m, "H");
    assert!(wait::until(T, || n3.lock().len() == 1));
    assert_eq!(*n3.lock(), ["H"]);
    assert_eq!(n1.lock().len(), 1, "other groups are not told");

    // A closed member is skipped (its send error is logged); the rest hear.
    ch2.close("test");
    notify_consumer_ids_changed(&m, "G");
    notify_consumer_ids_changed(&m, "nobody");
    assert!(wait::until(T, || n1.lock().len() == 2));
    assert_eq!(n2.lock().len(), 1);
}
