//! The broker end to end, with a name server, over the wire: send (both
//! header forms, both send codes, batch), pull with and without messages, a
//! held pull answered as soon as a message lands, tag filtering, offsets,
//! heartbeats and consumer lists, routes through the name server.

mod support;

use std::time::{Duration, Instant};

use support::cluster::{Cluster, T, send_v2};

use rmq::broker::processor::pull_flag;
use rmq::broker::{BrokerConfig, BrokerController};
use rmq::common::message::{self, Message};
use rmq::common::wait;
use rmq::remoting::body::{HeartbeatData, TopicRouteData};
use rmq::remoting::code::{request, response};
use rmq::remoting::headers::*;
use rmq::remoting::json::{from_body, to_body};
use rmq::remoting::{ClientConfig, RemotingClient, RemotingCommand, SerializeType};

fn cluster() -> Cluster {
    Cluster::start()
}

fn pull_req(topic: &str, queue_id: i32, offset: i64, sub: &str, suspend_ms: i64) -> RemotingCommand {
    let h = PullMessageRequestHeader {
        bname: None,
        consumer_group: "cg".into(),
        topic: topic.into(),
        queue_id,
        queue_offset: offset,
        max_msg_nums: 32,
        sys_flag: pull_flag::SUBSCRIPTION | if suspend_ms > 0 { pull_flag::SUSPEND } else { 0 },
        commit_offset: 0,
        suspend_timeout_millis: suspend_ms,
        subscription: Some(sub.into()),
        sub_version: 0,
        expression_type: Some("TAG".into()),
    };
    RemotingCommand::request_with(request::PULL_MESSAGE, &h)
}

/// Pulls until `n` messages come back: the store indexes a message just
/// after the send is answered, so a pull right after may find nothing yet.
fn pull_n(c: &Cluster, topic: &str, offset: i64, sub: &str, n: usize) -> (RemotingCommand, Vec<message::MessageExt>) {
    let b = c.broker.addr().to_string();
    let mut last = None;
    let got = wait::until(T, || {
        let r = c
            .client
            .invoke_sync(&b, pull_req(topic, if topic == "Orders" { 1 } else { 0 }, offset, sub, 0), T)
            .unwrap();
        let msgs =
            if r.code == response::SUCCESS { message::decode_all(&r.body.bytes(), true).unwrap() } else { vec![] };
        let done = msgs.len() == n;
        last = Some((r, msgs));
        done
    });
    let (r, msgs) = last.unwrap();
    assert!(got, "wanted {n} messages, got {} ({:?})", msgs.len(), r.remark);
    (r, msgs)
}

#[test]
fn send_route_pull_and_long_polling() {
    let c = cluster();
    let b = c.broker.addr().to_string();
    // Auto-created through TBW102; the route reaches the name server.
    let r = c.client.invoke_sync(&b, send_v2("Orders", b"first", "TagA", 1), T).unwrap();
    assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark);
    let h: SendMessageResponseHeader = r.header().unwrap();
    assert_eq!((h.queue_id, h.queue_offset), (1, 0));
    assert_eq!(message::decode_message_id(&h.msg_id).unwrap(), (c.broker.addr(), 0));
    assert_eq!(r.ext_fields.get("MSG_REGION"), Some("DefaultRegion"));
    let ns = c.ns.addr().to_string();
    let route = || {
        let h = GetRouteInfoRequestHeader { topic: "Orders".into(), accept_standard_json_only: None };
        c.client.invoke_sync(&ns, RemotingCommand::request_with(request::GET_ROUTEINFO_BY_TOPIC, &h), T).unwrap()
    };
    assert_eq!(route().code, response::SUCCESS, "a topic created by a send is routable once the send is answered");
    let data: TopicRouteData = from_body(&route().body.bytes()).unwrap();
    assert_eq!(data.broker_datas[0].select_broker_addr(), Some(b.as_str()));

    // The old SEND_MESSAGE with long names, in the binary header form.
    let v1: SendMessageRequestHeader =
        send_v2("Orders", b"", "TagB", 1).header::<SendMessageRequestHeaderV2>().unwrap().into();
    let req = RemotingCommand::request_with(request::SEND_MESSAGE, &v1)
        .with_body(b"second".to_vec())
        .with_serialize_type(SerializeType::RocketMq);
    let r = c.client.invoke_sync(&b, req, T).unwrap();
    assert_eq!((r.code, r.serialize_type), (response::SUCCESS, SerializeType::RocketMq));

    // Pull both back; the reply body is the stored records.
    let (r, msgs) = pull_n(&c, "Orders", 0, "*", 2);
    assert_eq!(msgs.iter().map(|m| &m.message.body[..]).collect::<Vec<_>>(), vec![&b"first"[..], &b"second"[..]]);
    assert_eq!(msgs[0].message.properties.get("CLUSTER"), Some("DefaultCluster"));
    let ph: PullMessageResponseHeader = r.header().unwrap();
    assert_eq!((ph.next_begin_offset, ph.max_offset), (2, 2));
    // Tag filtering at the ConsumeQueue.
    let (_, msgs) = pull_n(&c, "Orders", 0, "TagB", 1);
    assert_eq!(msgs[0].message.tags(), Some("TagB"));
    // Nothing new and no suspend flag: PULL_NOT_FOUND at once.
    let r = c.client.invoke_sync(&b, pull_req("Orders", 1, 2, "*", 0), T).unwrap();
    assert_eq!(r.code, response::PULL_NOT_FOUND);

    // A held pull is answered as soon as a message lands, not after its 15 s.
    let (tx, rx) = crossbeam_channel::bounded(1);
    c.client
        .invoke_async(&b, pull_req("Orders", 1, 2, "*", 15_000), Duration::from_secs(30), move |r| {
            let _ = tx.send((r, Instant::now()));
        })
        .unwrap();
    assert!(wait::until(Duration::from_secs(5), || c.broker.shared().hold.held() == 1));
    let sent = c.client.invoke_sync(&b, send_v2("Orders", b"third", "TagA", 1), T).unwrap();
    let replied_at = Instant::now();
    assert_eq!(sent.code, response::SUCCESS);
    let (r, at) = rx.recv_timeout(Duration::from_secs(5)).expect("the held pull was answered");
    let r = r.unwrap();
    assert_eq!(r.code, response::SUCCESS);
    assert!(at.saturating_duration_since(replied_at) < Duration::from_millis(500));
    let msgs = message::decode_all(&r.body.bytes(), true).unwrap();
    assert_eq!(&msgs[0].message.body[..], b"third");

    // A held pull for another tag stays held; its timeout answers it.
    let t0 = Instant::now();
    let r = c.client.invoke_sync(&b, pull_req("Orders", 1, 3, "TagZ", 300), T).unwrap();
    assert_eq!(r.code, response::PULL_NOT_FOUND);
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert!(t0.elapsed() < Duration::from_secs(2), "answered at its own deadline, not the 5 s check");
}

#[test]
fn batches_offsets_heartbeats_and_errors() {
    let c = cluster();
    let b = c.broker.addr().to_string();
    // A batch body: TOTALSIZE, MAGIC, BODYCRC, FLAG, BODY, PROPERTIES each.
    let mut batch = Vec::new();
    for i in 0..3 {
        let mut m = Message::new("Batch", format!("b{i}"));
        m.set_tags("T");
        let props = message::properties_to_string(&m.properties);
        let total = 4 + 4 + 4 + 4 + 4 + m.body.len() + 2 + props.len();
        batch.extend_from_slice(&(total as i32).to_be_bytes());
        batch.extend_from_slice(&[0; 8]);
        batch.extend_from_slice(&0i32.to_be_bytes());
        batch.extend_from_slice(&(m.body.len() as i32).to_be_bytes());
        batch.extend_from_slice(&m.body);
        batch.extend_from_slice(&(props.len() as i16).to_be_bytes());
        batch.extend_from_slice(props.as_bytes());
    }
    let mut req = send_v2("Batch", b"", "T", 0);
    req.code = request::SEND_BATCH_MESSAGE;
    let r = c.client.invoke_sync(&b, req.with_body(batch), T).unwrap();
    assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark);
    assert_eq!(r.header::<SendMessageResponseHeader>().unwrap().msg_id.split(',').count(), 3);
    pull_n(&c, "Batch", 0, "*", 3);

    // Offsets: a new group starts at 0 while the first message is there; -1 is ignored.
    let q = QueryConsumerOffsetRequestHeader {
        bname: None,
        consumer_group: "cg".into(),
        topic: "Batch".into(),
        queue_id: 0,
    };
    let r = c.client.invoke_sync(&b, RemotingCommand::request_with(request::QUERY_CONSUMER_OFFSET, &q), T).unwrap();
    assert_eq!(r.header::<QueryConsumerOffsetResponseHeader>().unwrap().offset, 0);
    for off in [2, -1] {
        let u = UpdateConsumerOffsetRequestHeader {
            bname: None,
            consumer_group: "cg".into(),
            topic: "Batch".into(),
            queue_id: 0,
            commit_offset: off,
        };
        let r =
            c.client.invoke_sync(&b, RemotingCommand::request_with(request::UPDATE_CONSUMER_OFFSET, &u), T).unwrap();
        assert_eq!(r.code, response::SUCCESS);
    }
    let r = c.client.invoke_sync(&b, RemotingCommand::request_with(request::QUERY_CONSUMER_OFFSET, &q), T).unwrap();
    assert_eq!(r.header::<QueryConsumerOffsetResponseHeader>().unwrap().offset, 2);

    // Heartbeat registers the consumer; the consumer list names it.
    let hb: HeartbeatData = from_body(
        br#"{"clientID":"127.0.0.1@1","consumerDataSet":[{"groupName":"cg","consumeType":"CONSUME_PASSIVELY",
        "messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","subscriptionDataSet":
        [{"topic":"Batch","subString":"*","tagsSet":[],"codeSet":[],"subVersion":1}],"unitMode":false}],
        "producerDataSet":[]}"#,
    )
    .unwrap();
    let r = c.client.invoke_sync(&b, RemotingCommand::request(request::HEART_BEAT).with_body(to_body(&hb)), T).unwrap();
    assert_eq!(r.code, response::SUCCESS);
    let g = GetConsumerListByGroupRequestHeader { consumer_group: "cg".into() };
    let r =
        c.client.invoke_sync(&b, RemotingCommand::request_with(request::GET_CONSUMER_LIST_BY_GROUP, &g), T).unwrap();
    assert!(String::from_utf8_lossy(&r.body.bytes()).contains("127.0.0.1@1"));

    // Bad requests get the right codes and remarks.
    let r = c.client.invoke_sync(&b, send_v2("bad topic", b"x", "T", 0), T).unwrap();
    assert_eq!(r.code, response::SYSTEM_ERROR);
    let r = c.client.invoke_sync(&b, pull_req("NoSuchTopic", 0, 0, "*", 0), T).unwrap();
    assert_eq!(r.code, response::TOPIC_NOT_EXIST);
    assert!(r.remark.unwrap().starts_with("topic[NoSuchTopic] not exist, apply first please!"));
    let mut missing = RemotingCommand::request(request::SEND_MESSAGE_V2);
    missing.ext_fields.insert("a", "pg");
    let r = c.client.invoke_sync(&b, missing, T).unwrap();
    assert_eq!(r.code, response::SYSTEM_ERROR);
    assert!(r.remark.unwrap().contains("<b>"), "names the missing field");
}

#[test]
fn a_hostile_connection_does_not_disturb_a_well_behaved_one() {
    use std::io::{Read, Write};
    let c = cluster();
    let b = c.broker.addr().to_string();
    assert_eq!(c.client.invoke_sync(&b, send_v2("Calm", b"before", "A", 0), T).unwrap().code, response::SUCCESS);
    for hostile in [&b"\xff\xff\xff\xffgarbage"[..], &b"\x00\x00\x00\x10\x00\x00\x00\x08{bad json"[..]] {
        let mut s = std::net::TcpStream::connect(&b).unwrap();
        s.write_all(hostile).unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        let mut buf = [0u8; 64];
        assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)), "the broker closes a hostile connection");
    }
    assert_eq!(c.client.invoke_sync(&b, send_v2("Calm", b"after", "A", 0), T).unwrap().code, response::SUCCESS);
    let (_, msgs) = pull_n(&c, "Calm", 0, "*", 2);
    assert_eq!(&msgs[1].message.body[..], b"after");
}

#[test]
fn offsets_and_topics_survive_a_broker_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = || BrokerConfig {
        listen_port: 0,
        store: rmq::store::StoreConfig {
            mapped_file_size_commit_log: 1024 * 1024,
            ..rmq::store::StoreConfig::at(dir.path().join("store"))
        },
        ..Default::default()
    };
    let client = RemotingClient::start(ClientConfig::default()).unwrap();
    let q = QueryConsumerOffsetRequestHeader {
        bname: None,
        consumer_group: "cg".into(),
        topic: "Kept".into(),
        queue_id: 0,
    };
    {
        let broker = BrokerController::start(cfg()).unwrap();
        let b = broker.addr().to_string();
        for i in 0..3 {
            let body = format!("m{i}");
            assert_eq!(client.invoke_sync(&b, send_v2("Kept", body.as_bytes(), "A", 0), T).unwrap().code, 0);
        }
        let u = UpdateConsumerOffsetRequestHeader {
            bname: None,
            consumer_group: "cg".into(),
            topic: "Kept".into(),
            queue_id: 0,
            commit_offset: 2,
        };
        client.invoke_sync(&b, RemotingCommand::request_with(request::UPDATE_CONSUMER_OFFSET, &u), T).unwrap();
    }
    let broker = BrokerController::start(cfg()).unwrap();
    let b = broker.addr().to_string();
    let r = client.invoke_sync(&b, RemotingCommand::request_with(request::QUERY_CONSUMER_OFFSET, &q), T).unwrap();
    assert_eq!(
        r.header::<QueryConsumerOffsetResponseHeader>().unwrap().offset,
        2,
        "the committed offset was persisted"
    );
    assert!(broker.shared().topics.select("Kept").is_some(), "the auto-created topic was persisted");
    let r = client.invoke_sync(&b, send_v2("Kept", b"m3", "A", 0), T).unwrap();
    assert_eq!(r.header::<SendMessageResponseHeader>().unwrap().queue_offset, 3, "queue offsets continue");
}
