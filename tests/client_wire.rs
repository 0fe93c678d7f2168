//! Our producer and push consumer put on the wire what Apache's Java client
//! 4.9.8 does: the same request codes with the same header fields, offsets
//! committed oneway, pulls held 15 s. A recording proxy sits in front of the
//! broker; its requests are compared with the Java client's captures.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
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
use rmq::remoting::code::request;
use support::cluster::Cluster;
use support::pcap;

/// Request code -> (header field names, oneway), as first seen.
type Seen = Arc<Mutex<BTreeMap<i32, (BTreeSet<String>, bool)>>>;
/// The first PULL_MESSAGE's header fields and values.
type FirstPull = Arc<Mutex<Option<BTreeMap<String, String>>>>;

static FIRST_PULL: std::sync::LazyLock<FirstPull> = std::sync::LazyLock::new(Default::default);

fn note(seen: &Seen, cmd: &RemotingCommand) {
    if cmd.is_response() {
        return;
    }
    let keys = cmd.ext_fields.iter().map(|(k, _)| k.to_string()).collect();
    if cmd.code == request::PULL_MESSAGE && FIRST_PULL.lock().is_none() {
        *FIRST_PULL.lock() = Some(cmd.ext_fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    }
    seen.lock().entry(cmd.code).or_insert((keys, cmd.is_oneway()));
}

/// Forwards one connection to `broker`, noting each client request.
fn proxy(listener: TcpListener, broker: String, seen: Seen) {
    for client in listener.incoming() {
        let Ok(mut client) = client else { return };
        let Ok(mut upstream) = TcpStream::connect(&broker) else { return };
        let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut u2, &mut c2);
        });
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 65536];
            loop {
                let n = match client.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if upstream.write_all(&chunk[..n]).is_err() {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                while buf.len() >= 4 {
                    let total = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                    if buf.len() < 4 + total {
                        break;
                    }
                    let frame: Vec<u8> = buf.drain(..4 + total).collect();
                    note(&seen, &RemotingCommand::decode_frame(&frame).unwrap());
                }
            }
        });
    }
}

/// What the Java client sent to the broker in the captures.
fn java_requests() -> BTreeMap<i32, (BTreeSet<String>, bool)> {
    let seen: Seen = Arc::default();
    for name in ["java-producer.pcap", "java-consumer.pcap"] {
        for f in pcap::frames(&pcap::vectors_dir().join(name)) {
            if f.flow.dport == 20911 {
                note(&seen, &RemotingCommand::decode_frame(&f.bytes).unwrap());
            }
        }
    }
    Arc::try_unwrap(seen).map(Mutex::into_inner).unwrap_or_default()
}

/// Takes every queue. Behind the proxy one broker answers under two names,
/// and it lists this client once per connection; averaging over that list
/// would leave the proxy's queues to a consumer id counted twice.
struct EveryQueue;

impl rmq::client::consumer::allocate::AllocateStrategy for EveryQueue {
    fn name(&self) -> &str {
        "EVERY_QUEUE"
    }
    fn allocate(
        &self,
        _group: &str,
        _cid: &str,
        mqs: &[rmq::remoting::body::MessageQueue],
        _cids: &[String],
    ) -> Vec<rmq::remoting::body::MessageQueue> {
        mqs.to_vec()
    }
}

#[test]
fn our_client_sends_the_java_clients_requests_and_fields() {
    let c = Cluster::start();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_addr = listener.local_addr().unwrap().to_string();
    let seen: Seen = Arc::default();
    let (broker, s) = (c.broker_addr(), seen.clone());
    std::thread::spawn(move || proxy(listener, broker, s));
    // Only the proxy knows the topic, so every request about it goes through it.
    c.register_broker("broker-p", &proxy_addr, "WireT");
    let client = |name: &str| ClientConfig {
        namesrv_addr: Some(c.ns_addr()),
        instance_name: name.into(),
        persist_consumer_offset_interval: Duration::from_millis(200),
        ..Default::default()
    };
    let p = Producer::new(ProducerConfig::new("pg_wire"), client("p_wire"));
    p.start().unwrap();
    for i in 0..4 {
        let mut m = Message::new("WireT", format!("w{i}"));
        m.set_tags("TagA");
        m.set_keys(["k"]);
        p.send(m).unwrap();
    }
    p.shutdown();
    let mut cfg = PushConsumerConfig::new("cg_wire");
    cfg.consume_from_where = ConsumeFromWhere::FirstOffset;
    cfg.allocate_strategy = Arc::new(EveryQueue);
    let consumer = PushConsumer::new(cfg, client("c_wire"));
    consumer.subscribe("WireT", "*").unwrap();
    let got: Arc<Mutex<usize>> = Arc::default();
    let g = got.clone();
    consumer.register_message_listener(MessageListener::concurrently(move |m: &[MessageExt], _: &mut _| {
        *g.lock() += m.len();
        ConsumeConcurrentlyStatus::ConsumeSuccess
    }));
    consumer.start().unwrap();
    assert!(wait::until(Duration::from_secs(20), || *got.lock() >= 4));
    assert!(
        wait::until(Duration::from_secs(10), || seen.lock().contains_key(&request::UPDATE_CONSUMER_OFFSET)),
        "{:?}",
        seen.lock()
    );
    consumer.shutdown();

    let ours = seen.lock().clone();
    let java = java_requests();
    for code in [
        request::SEND_MESSAGE_V2,
        request::HEART_BEAT,
        request::QUERY_CONSUMER_OFFSET,
        request::PULL_MESSAGE,
        request::UPDATE_CONSUMER_OFFSET,
        request::UNREGISTER_CLIENT,
    ] {
        let name = rmq::remoting::code::request::name(code).unwrap_or("?");
        let (our_keys, our_oneway) = ours.get(&code).unwrap_or_else(|| panic!("we never sent {name}: {ours:?}"));
        let (java_keys, java_oneway) = java.get(&code).unwrap_or_else(|| panic!("not in the captures: {name}"));
        assert_eq!(our_keys, java_keys, "{name}: header fields");
        assert_eq!(our_oneway, java_oneway, "{name}: oneway");
    }
    let pull = FIRST_PULL.lock().clone().unwrap();
    assert_eq!(pull["suspendTimeoutMillis"], "15000", "the broker may hold a pull 15 s");
    assert_eq!(pull["maxMsgNums"], "32");
    assert_eq!(pull["expressionType"], "TAG");
    assert_eq!(pull["sysFlag"], "2", "suspend only: no offset committed yet, subscription not posted");
    let unknown: Vec<i32> = ours.keys().filter(|c| !java.contains_key(c)).copied().collect();
    assert!(unknown.is_empty(), "requests the Java client does not send: {unknown:?}");
}
