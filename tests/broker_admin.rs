//! The broker's admin requests end to end, with a name server, over the
//! wire: offset queries, view by offset, topic and group admin, consume and
//! topic statistics, runtime info, connections, and bad requests.

mod support;

use support::cluster::{Cluster, T};

use rmq::common::message::{self};
use rmq::common::time::now_millis;
use rmq::common::wait;
use rmq::remoting::RemotingCommand;
use rmq::remoting::body::{
    ConsumeStats, ConsumerConnection, ConsumerOffsetSerializeWrapper, GroupList, HeartbeatData, KvTable,
    TopicConfigSerializeWrapper, TopicRouteData, TopicStatsTable,
};
use rmq::remoting::code::{request, response};
use rmq::remoting::headers::*;
use rmq::remoting::json::{from_body, to_body};

fn cluster() -> Cluster {
    let c = Cluster::start();
    let client = &c.client;
    // As a consumer would: answer GET_CONSUMER_RUNNING_INFO the broker forwards.
    client.register_processor(
        request::GET_CONSUMER_RUNNING_INFO,
        std::sync::Arc::new(|_: &rmq::remoting::Channel, req: RemotingCommand| {
            let jstack = req.ext_fields.get("jstackEnable").unwrap_or("?").to_string();
            Some(
                RemotingCommand::response(response::SUCCESS, None)
                    .with_body(format!("running info, jstack={jstack}").into_bytes()),
            )
        }),
    );
    c
}

impl Cluster {
    /// Sends one message to queue `queue_id`; returns its CommitLog offset.
    fn send_at(&self, topic: &str, body: &[u8], queue_id: i32) -> i64 {
        message::decode_message_id(&self.send(topic, body, queue_id).msg_id).unwrap().1
    }

    fn queue_offset(&self, code: i32, topic: &str, queue_id: i32) -> i64 {
        let h = QueueRequestHeader { bname: None, topic: topic.into(), queue_id };
        let r = self.call(RemotingCommand::request_with(code, &h));
        assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark);
        r.header::<OffsetResponseHeader>().unwrap().offset
    }

    /// Waits until the queue's max offset reaches `n` (sends are indexed
    /// after they are answered).
    fn wait_indexed(&self, topic: &str, queue_id: i32, n: i64) {
        assert!(
            wait::until(T, || self.queue_offset(request::GET_MAX_OFFSET, topic, queue_id) >= n),
            "{topic}:{queue_id} never reached offset {n}"
        );
    }

    fn view(&self, offset: i64) -> RemotingCommand {
        self.call(RemotingCommand::request_with(request::VIEW_MESSAGE_BY_ID, &ViewMessageRequestHeader { offset }))
    }

    fn all_topics(&self) -> TopicConfigSerializeWrapper {
        let r = self.call(RemotingCommand::request(request::GET_ALL_TOPIC_CONFIG));
        assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark);
        from_body(&r.body.bytes()).unwrap()
    }

    fn route(&self, topic: &str) -> RemotingCommand {
        let h = GetRouteInfoRequestHeader { topic: topic.into(), accept_standard_json_only: None };
        self.call_ns(RemotingCommand::request_with(request::GET_ROUTEINFO_BY_TOPIC, &h))
    }
}

fn remark(r: &RemotingCommand) -> String {
    r.remark.clone().unwrap_or_default()
}

#[test]
fn offsets_timestamps_and_view_by_offset() {
    let c = cluster();
    let first = c.send_at("Stock", b"first", 0);
    c.wait_indexed("Stock", 0, 1);
    let t1 = c.view(first);
    assert_eq!(t1.code, response::SUCCESS, "{:?}", t1.remark);
    let m1 = message::decode(&t1.body.bytes(), true, true).unwrap();
    assert_eq!(m1.body().as_ref(), b"first");
    // The next message is stored at a later millisecond.
    assert!(wait::until(T, || now_millis() > m1.store_timestamp + 2));
    let second = c.send_at("Stock", b"second", 0);
    c.send("Stock", b"third", 0);
    c.wait_indexed("Stock", 0, 3);

    assert_eq!(c.queue_offset(request::GET_MAX_OFFSET, "Stock", 0), 3);
    assert_eq!(c.queue_offset(request::GET_MIN_OFFSET, "Stock", 0), 0);
    assert_eq!(c.queue_offset(request::GET_MAX_OFFSET, "Stock", 1), 0);
    assert_eq!(c.queue_offset(request::GET_MAX_OFFSET, "NoSuchTopic", 0), 0);

    let h = QueueRequestHeader { bname: None, topic: "Stock".into(), queue_id: 0 };
    let r = c.call(RemotingCommand::request_with(request::GET_EARLIEST_MSG_STORETIME, &h));
    assert_eq!(r.code, response::SUCCESS);
    assert_eq!(r.header::<GetEarliestMsgStoretimeResponseHeader>().unwrap().timestamp, m1.store_timestamp);

    // VIEW_MESSAGE_BY_ID answers the stored record at a CommitLog offset.
    let r = c.view(second);
    assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark);
    let m2 = message::decode(&r.body.bytes(), true, true).unwrap();
    assert_eq!((m2.body().as_ref(), m2.queue_offset, m2.commit_log_offset), (&b"second"[..], 1, second));
    assert!(m2.store_timestamp > m1.store_timestamp);

    let search = |timestamp: i64| {
        let h = SearchOffsetRequestHeader { bname: None, topic: "Stock".into(), queue_id: 0, timestamp };
        let r = c.call(RemotingCommand::request_with(request::SEARCH_OFFSET_BY_TIMESTAMP, &h));
        assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark);
        r.header::<OffsetResponseHeader>().unwrap().offset
    };
    assert_eq!(search(m1.store_timestamp), 0);
    assert_eq!(search(m1.store_timestamp - 1000), 0);
    assert_eq!(search(m2.store_timestamp), 1);

    // Bad requests.
    let r = c.view(1 << 40);
    assert_eq!(r.code, response::SYSTEM_ERROR);
    assert_eq!(remark(&r), format!("can not find message by the offset, {}", 1i64 << 40));
    let mut bad = RemotingCommand::request(request::GET_MAX_OFFSET);
    bad.ext_fields.insert("topic", "Stock");
    let r = c.call(bad);
    assert_eq!(r.code, response::SYSTEM_ERROR);
    assert!(remark(&r).contains("queueId"), "{:?}", r.remark);
    let r = c.call(RemotingCommand::request(request::SEARCH_OFFSET_BY_TIMESTAMP));
    assert_eq!(r.code, response::SYSTEM_ERROR);
    assert!(remark(&r).contains("topic") || remark(&r).contains("queueId") || remark(&r).contains("timestamp"));
    let r = c.call(RemotingCommand::request(9999));
    assert_eq!((r.code, remark(&r)), (response::REQUEST_CODE_NOT_SUPPORTED, " request type 9999 not supported".into()));
}

#[test]
fn create_and_delete_topics() {
    let c = cluster();
    let create = |topic: &str| CreateTopicRequestHeader {
        topic: topic.into(),
        default_topic: "TBW102".into(),
        read_queue_nums: 3,
        write_queue_nums: 3,
        perm: 6,
        topic_filter_type: "SINGLE_TAG".into(),
        topic_sys_flag: Some(0),
        order: false,
    };
    let r = c.call(RemotingCommand::request_with(request::UPDATE_AND_CREATE_TOPIC, &create("AdminT")));
    assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark);
    let tc = c.all_topics().topic_config_table.get("AdminT").cloned().unwrap();
    assert_eq!((tc.read_queue_nums, tc.write_queue_nums, tc.perm), (3, 3, 6));
    let route = c.route("AdminT");
    assert_eq!(route.code, response::SUCCESS, "the new topic is routable at once: {:?}", route.remark);
    let data: TopicRouteData = from_body(&route.body.bytes()).unwrap();
    assert_eq!(data.queue_datas[0].write_queue_nums, 3);

    // Refused: system topics, illegal names, missing fields.
    let r = c.call(RemotingCommand::request_with(request::UPDATE_AND_CREATE_TOPIC, &create("TBW102")));
    assert_eq!(
        (r.code, remark(&r)),
        (response::SYSTEM_ERROR, "The topic[TBW102] is conflict with system topic.".into())
    );
    let r = c.call(RemotingCommand::request_with(request::UPDATE_AND_CREATE_TOPIC, &create("a.b")));
    assert_eq!(r.code, response::SYSTEM_ERROR);
    assert!(remark(&r).contains("illegal characters"), "{:?}", r.remark);
    let mut no_perm = RemotingCommand::request_with(request::UPDATE_AND_CREATE_TOPIC, &create("Other"));
    no_perm.ext_fields.remove("perm");
    let r = c.call(no_perm);
    assert_eq!(r.code, response::SYSTEM_ERROR);
    assert!(remark(&r).contains("perm"), "{:?}", r.remark);
    assert!(!c.all_topics().topic_config_table.contains_key("Other"));

    // Delete: the config, the queues and the offsets go.
    c.send("AdminT", b"x", 2);
    c.wait_indexed("AdminT", 2, 1);
    let commit = UpdateConsumerOffsetRequestHeader {
        bname: None,
        consumer_group: "G".into(),
        topic: "AdminT".into(),
        queue_id: 2,
        commit_offset: 1,
    };
    assert_eq!(c.call(RemotingCommand::request_with(request::UPDATE_CONSUMER_OFFSET, &commit)).code, response::SUCCESS);
    let del = DeleteTopicRequestHeader { topic: "AdminT".into() };
    let r = c.call(RemotingCommand::request_with(request::DELETE_TOPIC_IN_BROKER, &del));
    assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark);
    assert!(!c.all_topics().topic_config_table.contains_key("AdminT"));
    assert_eq!(c.queue_offset(request::GET_MAX_OFFSET, "AdminT", 2), 0);
    let r = c.call(RemotingCommand::request(request::GET_ALL_CONSUMER_OFFSET));
    let offsets: ConsumerOffsetSerializeWrapper = from_body(&r.body.bytes()).unwrap();
    assert!(!offsets.offset_table.contains_key("AdminT@G"));
    // As mqadmin deleteTopic does, then remove the route.
    let h = DeleteTopicFromNamesrvRequestHeader { topic: "AdminT".into(), cluster_name: None };
    assert_eq!(c.call_ns(RemotingCommand::request_with(request::DELETE_TOPIC_IN_NAMESRV, &h)).code, response::SUCCESS);
    assert_eq!(c.route("AdminT").code, response::TOPIC_NOT_EXIST);
    let r = c.call(RemotingCommand::request_with(
        request::DELETE_TOPIC_IN_BROKER,
        &DeleteTopicRequestHeader { topic: "SCHEDULE_TOPIC_XXXX".into() },
    ));
    assert_eq!(r.code, response::SYSTEM_ERROR);
}

#[test]
fn groups_consume_stats_topic_stats_and_runtime_info() {
    let c = cluster();
    let body = br#"{"groupName":"G1","consumeEnable":true,"retryMaxTimes":3,"retryQueueNums":1}"#.to_vec();
    let r = c.call(RemotingCommand::request(request::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP).with_body(body));
    assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark);
    let r = c.call(RemotingCommand::request(request::GET_ALL_SUBSCRIPTIONGROUP_CONFIG));
    let all: serde_json::Value = serde_json::from_slice(&r.body.bytes()).unwrap();
    assert_eq!(all["subscriptionGroupTable"]["G1"]["retryMaxTimes"], 3);
    assert!(all["dataVersion"]["counter"].as_i64().unwrap() > 0);

    for body in [&b"a"[..], b"b", b"c"] {
        c.send("Stats", body, 0);
    }
    c.wait_indexed("Stats", 0, 3);
    let commit = UpdateConsumerOffsetRequestHeader {
        bname: None,
        consumer_group: "G1".into(),
        topic: "Stats".into(),
        queue_id: 0,
        commit_offset: 2,
    };
    assert_eq!(c.call(RemotingCommand::request_with(request::UPDATE_CONSUMER_OFFSET, &commit)).code, response::SUCCESS);

    // Consume stats: every readable queue of the group's topics.
    let h = GetConsumeStatsRequestHeader { consumer_group: "G1".into(), topic: None };
    let r = c.call(RemotingCommand::request_with(request::GET_CONSUME_STATS, &h));
    assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark);
    let raw = String::from_utf8_lossy(&r.body.bytes()).to_string();
    assert!(raw.starts_with(r#"{"consumeTps":0.0,"offsetTable":{{"brokerName":""#), "{raw}");
    let stats = ConsumeStats::decode(&r.body.bytes()).unwrap();
    assert_eq!(stats.offset_table.len(), 4);
    let (mq, w) = stats.offset_table.iter().find(|(mq, _)| mq.queue_id == 0).unwrap();
    assert_eq!((mq.topic.as_str(), w.broker_offset, w.consumer_offset), ("Stats", 3, 2));
    let second = c.call(RemotingCommand::request_with(
        request::GET_EARLIEST_MSG_STORETIME,
        &QueueRequestHeader { bname: None, topic: "Stats".into(), queue_id: 0 },
    ));
    assert!(w.last_timestamp >= second.header::<GetEarliestMsgStoretimeResponseHeader>().unwrap().timestamp);
    assert!(w.last_timestamp <= now_millis());
    assert_eq!(stats.total_diff(), 1);

    // Who consumes the topic, and the offsets file.
    let r = c.call(RemotingCommand::request_with(
        request::QUERY_TOPIC_CONSUME_BY_WHO,
        &TopicRequestHeader { topic: "Stats".into() },
    ));
    let groups: GroupList = from_body(&r.body.bytes()).unwrap();
    assert!(groups.group_list.contains("G1"));
    let r = c.call(RemotingCommand::request(request::GET_ALL_CONSUMER_OFFSET));
    let offsets: ConsumerOffsetSerializeWrapper = from_body(&r.body.bytes()).unwrap();
    assert_eq!(offsets.offset_table["Stats@G1"][&0], 2);
    let r = c.call(RemotingCommand::request(request::GET_ALL_DELAY_OFFSET));
    assert_eq!(r.code, response::SUCCESS);
    assert!(String::from_utf8_lossy(&r.body.bytes()).contains("offsetTable"));

    // Topic stats, in fastjson's MessageQueue-keyed form.
    let r = c.call(RemotingCommand::request_with(
        request::GET_TOPIC_STATS_INFO,
        &TopicRequestHeader { topic: "Stats".into() },
    ));
    assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark);
    let table = TopicStatsTable::decode(&r.body.bytes()).unwrap();
    assert_eq!(table.offset_table.len(), 4);
    let (_, o) = table.offset_table.iter().find(|(mq, _)| mq.queue_id == 0).unwrap();
    assert_eq!((o.min_offset, o.max_offset), (0, 3));
    assert!(o.last_update_timestamp >= w.last_timestamp);
    let (_, empty) = table.offset_table.iter().find(|(mq, _)| mq.queue_id == 1).unwrap();
    assert_eq!((empty.max_offset, empty.last_update_timestamp), (0, 0));
    let r = c.call(RemotingCommand::request_with(
        request::GET_TOPIC_STATS_INFO,
        &TopicRequestHeader { topic: "Nope".into() },
    ));
    assert_eq!((r.code, remark(&r)), (response::TOPIC_NOT_EXIST, "topic[Nope] not exist".into()));

    // Connections: none, then one after a heartbeat.
    let list = || {
        c.call(RemotingCommand::request_with(
            request::GET_CONSUMER_CONNECTION_LIST,
            &GetConsumerConnectionListRequestHeader { consumer_group: "G1".into() },
        ))
    };
    let r = list();
    assert_eq!((r.code, remark(&r)), (response::CONSUMER_NOT_ONLINE, "the consumer group[G1] not online".into()));
    let hb: HeartbeatData = from_body(
        br#"{"clientID":"127.0.0.1@7","consumerDataSet":[{"groupName":"G1","consumeType":"CONSUME_PASSIVELY",
        "messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","subscriptionDataSet":
        [{"topic":"Stats","subString":"*","tagsSet":[],"codeSet":[],"subVersion":1}],"unitMode":false}],
        "producerDataSet":[]}"#,
    )
    .unwrap();
    assert_eq!(c.call(RemotingCommand::request(request::HEART_BEAT).with_body(to_body(&hb))).code, response::SUCCESS);
    let r = list();
    assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark);
    let cc: ConsumerConnection = from_body(&r.body.bytes()).unwrap();
    assert_eq!(cc.connection_set[0].client_id, "127.0.0.1@7");
    assert!(cc.subscription_table.contains_key("Stats"));
    let running = |client_id: &str| {
        let h = GetConsumerRunningInfoRequestHeader {
            consumer_group: "G1".into(),
            client_id: client_id.into(),
            jstack_enable: Some(false),
        };
        c.call(RemotingCommand::request_with(request::GET_CONSUMER_RUNNING_INFO, &h))
    };
    let r = running("nobody");
    assert_eq!((r.code, remark(&r)), (response::SYSTEM_ERROR, "The Consumer <G1> <nobody> not online".into()));
    let r = running("127.0.0.1@7");
    assert_eq!(r.code, response::SUCCESS, "forwarded to the consumer: {:?}", r.remark);
    assert_eq!(&r.body.bytes()[..], b"running info, jstack=false");

    // Runtime info.
    let r = c.call(RemotingCommand::request(request::GET_BROKER_RUNTIME_INFO));
    assert_eq!(r.code, response::SUCCESS);
    let kv: KvTable = from_body(&r.body.bytes()).unwrap();
    let store = &c.broker.shared().store;
    assert_eq!(kv.table["commitLogMaxOffset"], store.max_phy_offset().to_string());
    assert_eq!(kv.table["commitLogMinOffset"], "0");
    assert_eq!(kv.table["brokerVersion"], "409");
    assert_eq!(kv.table["brokerVersionDesc"], "V4_9_8");
    let boot: i64 = kv.table["bootTimestamp"].parse().unwrap();
    assert!(boot > 0 && boot <= now_millis());
    assert!(kv.table["runtime"].starts_with("[ 0 days, 0 hours, "), "{}", kv.table["runtime"]);
    assert_eq!(kv.table["putTps"].split(' ').count(), 3);
    assert!(kv.table["earliestMessageTimeStamp"].parse::<i64>().unwrap() > 0);
}
