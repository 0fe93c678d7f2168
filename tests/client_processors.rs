//! Requests a broker sends to a consumer, driven through our broker as an
//! admin tool would: running info (with the thread dump), consume a message
//! directly, and reset the group's offsets.

mod support;

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rmq::client::config::ClientConfig;
use rmq::client::consumer::{
    ConsumeConcurrentlyStatus, ConsumeFromWhere, MessageListener, PushConsumer, PushConsumerConfig,
};
use rmq::client::producer::{Producer, ProducerConfig};
use rmq::common::message::{Message, MessageExt};
use rmq::common::wait;
use rmq::remoting::RemotingCommand;
use rmq::remoting::body::{ConsumeMessageDirectlyResult, ConsumerRunningInfo, OffsetTable};
use rmq::remoting::code::{request, response};
use rmq::remoting::headers::{
    ConsumeMessageDirectlyResultRequestHeader, GetConsumerRunningInfoRequestHeader, ResetOffsetRequestHeader,
};
use rmq::remoting::json::from_body;
use support::cluster::Cluster;

#[test]
fn running_info_direct_consumption_and_offset_reset_reach_the_consumer() {
    let c = Cluster::start();
    let client = |name: &str| ClientConfig {
        namesrv_addr: Some(c.ns_addr()),
        instance_name: name.into(),
        persist_consumer_offset_interval: Duration::from_millis(100),
        ..Default::default()
    };
    let p = Producer::new(ProducerConfig::new("pg_proc"), client("p_proc"));
    p.start().unwrap();
    let sent: Vec<_> = (0..6).map(|i| p.send(Message::new("Proc", format!("m{i}"))).unwrap()).collect();
    p.shutdown();

    let mut cfg = PushConsumerConfig::new("cg_proc");
    cfg.consume_from_where = ConsumeFromWhere::FirstOffset;
    let consumer = PushConsumer::new(cfg, client("c_proc"));
    consumer.subscribe("Proc", "*").unwrap();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = seen.clone();
    consumer.register_message_listener(MessageListener::concurrently(move |msgs: &[MessageExt], _: &mut _| {
        sink.lock().extend(msgs.iter().map(|m| String::from_utf8_lossy(m.body()).into_owned()));
        ConsumeConcurrentlyStatus::ConsumeSuccess
    }));
    consumer.start().unwrap();
    assert!(wait::until(Duration::from_secs(20), || seen.lock().len() >= 6));
    let client_id = consumer.client_id();

    // GET_CONSUMER_RUNNING_INFO, forwarded by the broker, with a jstack.
    let h = GetConsumerRunningInfoRequestHeader {
        consumer_group: "cg_proc".into(),
        client_id: client_id.clone(),
        jstack_enable: Some(true),
    };
    let r = c.call(RemotingCommand::request_with(request::GET_CONSUMER_RUNNING_INFO, &h));
    assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark);
    let info = ConsumerRunningInfo::decode(&r.body.bytes()).unwrap();
    assert_eq!(info.properties.get("PROP_CONSUME_TYPE").map(String::as_str), Some("CONSUME_PASSIVELY"));
    let topics: Vec<&str> = info.subscription_set.iter().map(|s| s.topic.as_str()).collect();
    assert!(topics.contains(&"Proc") && topics.contains(&"%RETRY%cg_proc"), "{topics:?}");
    assert_eq!(info.mq_table.iter().filter(|(q, _)| q.topic == "Proc").count(), 4, "{:?}", info.mq_table);
    let committed: i64 =
        info.mq_table.iter().filter(|(q, _)| q.topic == "Proc").map(|(_, pq)| pq.commit_offset.max(0)).sum();
    assert_eq!(committed, 6, "each queue's commit offset is reported");
    let jstack = info.jstack.unwrap_or_default();
    assert!(jstack.contains("ConsumeMessageThread_1") && jstack.contains("PullMessageService"), "{jstack}");

    // CONSUME_MESSAGE_DIRECTLY: the broker reads the message and the listener runs on it.
    let h = ConsumeMessageDirectlyResultRequestHeader {
        consumer_group: "cg_proc".into(),
        client_id: Some(client_id.clone()),
        msg_id: Some(sent[2].offset_msg_id.clone()),
        broker_name: Some("broker-a".into()),
    };
    let r = c.call(RemotingCommand::request_with(request::CONSUME_MESSAGE_DIRECTLY, &h));
    assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark);
    let result: ConsumeMessageDirectlyResult = from_body(&r.body.bytes()).unwrap();
    assert_eq!(result.consume_result, "CR_SUCCESS");
    assert_eq!(seen.lock().iter().filter(|b| *b == "m2").count(), 2, "the listener got m2 again");

    // INVOKE_BROKER_TO_RESET_OFFSET to the start: every message comes again.
    // The broker needs the group's committed offsets first (sent every 100 ms
    // here), as Apache's does; until then it answers CONSUMER_NOT_ONLINE.
    let h = ResetOffsetRequestHeader { topic: "Proc".into(), group: "cg_proc".into(), timestamp: 0, is_force: true };
    let mut r = RemotingCommand::success();
    assert!(wait::until(Duration::from_secs(10), || {
        r = c.call(RemotingCommand::request_with(request::INVOKE_BROKER_TO_RESET_OFFSET, &h));
        r.code == response::SUCCESS
    }));
    let table = OffsetTable::decode(&r.body.bytes()).unwrap();
    assert!(table.offset_table.iter().all(|(_, o)| *o == 0), "{table:?}");
    assert!(
        wait::until(Duration::from_secs(20), || seen.lock().len() >= 6 + 1 + 6),
        "consumed again from 0: {:?}",
        seen.lock()
    );
    consumer.shutdown();
}
