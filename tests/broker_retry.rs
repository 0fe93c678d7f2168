//! Retry, dead letter and delay: CONSUMER_SEND_MSG_BACK moves a message to
//! %RETRY%<group> after its delay and to %DLQ%<group> past the maximum;
//! a message sent with a delay level reaches its topic only when due.

use std::time::{Duration, Instant};

use rmq::broker::processor::pull_flag;
use rmq::broker::{BrokerConfig, BrokerController};
use rmq::common::message::{self, MessageExt};
use rmq::common::wait;
use rmq::remoting::code::{request, response};
use rmq::remoting::headers::*;
use rmq::remoting::{ClientConfig, RemotingClient, RemotingCommand};

const T: Duration = Duration::from_secs(5);

fn broker(dir: &std::path::Path) -> BrokerController {
    let mut store = rmq::store::StoreConfig::at(dir.join("store"));
    store.message_delay_level = "1s 1s 1s".into();
    store.mapped_file_size_commit_log = 1024 * 1024;
    BrokerController::start(BrokerConfig { listen_port: 0, store, ..Default::default() }).unwrap()
}

fn send(c: &RemotingClient, b: &str, topic: &str, body: &[u8], props: &str) -> RemotingCommand {
    let h = SendMessageRequestHeaderV2 {
        producer_group: "pg".into(),
        topic: topic.into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 1,
        queue_id: 0,
        born_timestamp: rmq::common::time::now_millis(),
        properties: Some(props.into()),
        ..Default::default()
    };
    let r = c
        .invoke_sync(b, RemotingCommand::request_with(request::SEND_MESSAGE_V2, &h).with_body(body.to_vec()), T)
        .unwrap();
    assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark);
    r
}

/// Every message now in queue 0 of `topic`.
fn pull_all(c: &RemotingClient, b: &str, topic: &str) -> Vec<MessageExt> {
    let h = PullMessageRequestHeader {
        consumer_group: "reader".into(),
        topic: topic.into(),
        queue_id: 0,
        queue_offset: 0,
        max_msg_nums: 32,
        sys_flag: pull_flag::SUBSCRIPTION,
        subscription: Some("*".into()),
        expression_type: Some("TAG".into()),
        ..Default::default()
    };
    let r = c.invoke_sync(b, RemotingCommand::request_with(request::PULL_MESSAGE, &h), T).unwrap();
    if r.code != response::SUCCESS {
        return Vec::new();
    }
    message::decode_all(&r.body.bytes(), true).unwrap()
}

fn send_back(c: &RemotingClient, b: &str, m: &MessageExt) -> RemotingCommand {
    let h = ConsumerSendMsgBackRequestHeader {
        bname: None,
        offset: m.commit_log_offset,
        group: "cg".into(),
        delay_level: 0,
        origin_msg_id: Some(m.msg_id.clone()),
        origin_topic: Some(m.message.topic.clone()),
        unit_mode: Some(false),
        max_reconsume_times: Some(2),
    };
    c.invoke_sync(b, RemotingCommand::request_with(request::CONSUMER_SEND_MSG_BACK, &h), T).unwrap()
}

#[test]
fn failed_messages_retry_after_a_delay_then_go_to_the_dead_letter_queue() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let b = broker.addr().to_string();
    let c = RemotingClient::start(ClientConfig::default()).unwrap();
    send(&c, &b, "Work", b"job", "TAGS\u{1}A");
    assert!(wait::until(T, || pull_all(&c, &b, "Work").len() == 1));
    let original = pull_all(&c, &b, "Work").remove(0);

    let t0 = Instant::now();
    assert_eq!(send_back(&c, &b, &original).code, response::SUCCESS);
    assert!(pull_all(&c, &b, "%RETRY%cg").is_empty(), "not before its delay");
    assert!(wait::until(Duration::from_secs(10), || pull_all(&c, &b, "%RETRY%cg").len() == 1));
    assert!(t0.elapsed() >= Duration::from_millis(900), "delivered after the delay level's 1 s");
    let retry1 = pull_all(&c, &b, "%RETRY%cg").remove(0);
    assert_eq!(retry1.reconsume_times, 1);
    assert_eq!(&retry1.message.body[..], b"job");
    assert_eq!(retry1.message.properties.get("RETRY_TOPIC"), Some("Work"));
    assert_eq!(retry1.message.properties.get("ORIGIN_MESSAGE_ID"), Some(original.msg_id.as_str()));
    assert_eq!(retry1.message.properties.get("REAL_TOPIC"), None, "schedule properties are removed");

    assert_eq!(send_back(&c, &b, &retry1).code, response::SUCCESS);
    assert!(wait::until(Duration::from_secs(10), || pull_all(&c, &b, "%RETRY%cg").len() == 2));
    let retry2 = pull_all(&c, &b, "%RETRY%cg").remove(1);
    assert_eq!(retry2.reconsume_times, 2);

    // Consumed twice already: the maximum of 2 sends it to the DLQ, at once.
    assert_eq!(send_back(&c, &b, &retry2).code, response::SUCCESS);
    assert!(wait::until(T, || pull_all(&c, &b, "%DLQ%cg").len() == 1));
    let dead = pull_all(&c, &b, "%DLQ%cg").remove(0);
    assert_eq!((dead.reconsume_times, &dead.message.body[..]), (3, &b"job"[..]));
}

#[test]
fn a_delayed_send_arrives_when_due_and_delay_progress_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = broker(dir.path());
        let b = broker.addr().to_string();
        let c = RemotingClient::start(ClientConfig::default()).unwrap();
        let t0 = Instant::now();
        send(&c, &b, "Later", b"soon", "DELAY\u{1}2\u{2}TAGS\u{1}X");
        std::thread::sleep(Duration::from_millis(300));
        assert!(pull_all(&c, &b, "Later").is_empty(), "a delayed message waits");
        assert!(wait::until(Duration::from_secs(10), || pull_all(&c, &b, "Later").len() == 1));
        assert!(t0.elapsed() >= Duration::from_millis(900));
        let m = pull_all(&c, &b, "Later").remove(0);
        assert_eq!((&m.message.body[..], m.message.tags()), (&b"soon"[..], Some("X")));
    }
    // After a clean restart the delivered message is not delivered again.
    let broker = broker(dir.path());
    let b = broker.addr().to_string();
    let c = RemotingClient::start(ClientConfig::default()).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(pull_all(&c, &b, "Later").len(), 1);
}
