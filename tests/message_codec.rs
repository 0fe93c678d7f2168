//! The stored-message codec: round trips through the public API, real pull
//! replies from Apache RocketMQ 4.9.7 in the interop captures, and random or
//! mutated input that must never panic.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;

use proptest::prelude::*;
use rmq::common::message::*;
use rmq::remoting::RemotingCommand;
use rmq::remoting::code::{request, response};
use support::pcap;

const BROKER_PORT: u16 = 20911;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

fn to_store(topic: &str, body: &[u8], props: &[(&str, &str)], born: SocketAddr, store: SocketAddr) -> MessageToStore {
    let mut msg = Message::new(topic, body.to_vec());
    for (k, v) in props {
        msg.put_property(*k, *v);
    }
    MessageToStore::from_message(&msg, 1, 1_795_317_440_124, born, store)
}

#[test]
fn round_trips_over_host_families_magic_versions_and_bodies() {
    let hosts = [
        (addr("127.0.0.1:49528"), addr("127.0.0.1:20911")),
        (addr("[2001:db8::7]:49528"), addr("[::1]:20911")),
        (addr("[::ffff:10.0.0.1]:1"), addr("192.168.1.1:10911")),
    ];
    let props: &[(&str, &str)] =
        &[(TAGS, "TagA"), (KEYS, "k1 k2"), ("interop_prop", "value-0"), (UNIQ_CLIENT_MESSAGE_ID_KEYIDX, "ABC")];
    let long_topic = "L".repeat(200);
    for (born, store) in hosts {
        for topic in ["Cap_java", long_topic.as_str()] {
            for body in [&b""[..], b"hello from rust", &[0u8; 4096]] {
                let m = to_store(topic, body, props, born, store);
                let mut rec = encode_for_store(&m, 11).expect("encodes");
                let magic = if topic.len() > 127 { MAGIC_CODE_V2 } else { MAGIC_CODE_V1 };
                assert_eq!(record_size(&rec), Some((rec.len() as i32, magic)));
                let sys_flag = decode(&rec, false, true).expect("decodes").sys_flag;
                assert_eq!(decode(&rec, false, true).expect("decodes").store_timestamp, 11);
                rec[layout::QUEUE_OFFSET_POS..][..8].copy_from_slice(&17i64.to_be_bytes());
                rec[layout::PHYSICAL_OFFSET_POS..][..8].copy_from_slice(&123_456i64.to_be_bytes());
                rec[layout::store_timestamp_pos(sys_flag)..][..8].copy_from_slice(&22i64.to_be_bytes());
                let d = decode(&rec, true, true).expect("decodes");
                assert_eq!((d.queue_offset, d.commit_log_offset, d.store_timestamp), (17, 123_456, 22));
                assert_eq!((d.born_host, d.store_host), (born, store));
                assert_eq!(d.topic(), topic);
                assert_eq!(d.body().as_ref(), body);
                assert_eq!(d.message.properties.iter().collect::<Vec<_>>(), props.to_vec());
                assert_eq!(d.store_size as usize, rec.len());
                assert_eq!(decode_message_id(&d.msg_id), Ok((store, 123_456)));
                assert_eq!(d.message.tags(), Some("TagA"));
                assert_eq!(m.tags_code, tags_hash("TagA"));
            }
        }
    }
}

#[test]
fn known_message_id_vector() {
    assert_eq!(create_message_id(addr("127.0.0.1:20911"), 0x1053), "7F000001000051AF0000000000001053");
    assert_eq!(decode_message_id("7F000001000051AF0000000000001053"), Ok((addr("127.0.0.1:20911"), 0x1053)));
}

#[test]
fn tags_hash_is_java_string_hash_code() {
    assert_eq!(tags_hash("TagA"), 2_598_919);
    assert_eq!(tags_hash("é"), 233);
    assert_eq!(tags_hash("😀"), 31 * 0xD83D + 0xDE00);
}

/// Every successful PULL_MESSAGE reply in the captures: each stored record
/// decodes (CRC checked) and agrees with the request that asked for it.
#[test]
fn captured_pull_replies_decode() {
    let mut replies_checked = 0;
    let mut records_checked = 0;
    for path in pcap::captures() {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let frames = pcap::frames(&path);
        // Pull requests by (client address, client port, opaque).
        let mut pulls: HashMap<(String, u16, i32), RemotingCommand> = HashMap::new();
        for f in &frames {
            if f.flow.dport != BROKER_PORT {
                continue;
            }
            let cmd = RemotingCommand::decode_frame(&f.bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            if !cmd.is_response() && cmd.code == request::PULL_MESSAGE {
                pulls.insert((f.flow.src.clone(), f.flow.sport, cmd.opaque), cmd);
            }
        }
        for f in frames.iter().filter(|f| f.flow.sport == BROKER_PORT) {
            let cmd = RemotingCommand::decode_frame(&f.bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            if !cmd.is_response() || cmd.code != response::SUCCESS {
                continue;
            }
            let Some(req) = pulls.get(&(f.flow.dst.clone(), f.flow.dport, cmd.opaque)) else { continue };
            let topic = req.ext_fields.get("topic").expect("pull request topic");
            let queue_id: i32 = req.ext_fields.get("queueId").and_then(|q| q.parse().ok()).expect("queueId");
            let queue_offset: i64 = req.ext_fields.get("queueOffset").and_then(|q| q.parse().ok()).expect("offset");
            let body = cmd.body.bytes();
            let msgs = decode_all(&body, true).unwrap_or_else(|e| panic!("{name}: pull reply {}: {e}", cmd.opaque));
            assert!(!msgs.is_empty(), "{name}: a SUCCESS pull reply without messages");
            let mut at = 0usize;
            for m in &msgs {
                assert!(m.topic() == topic || m.topic().starts_with("%RETRY%"), "{name}: topic {}", m.topic());
                assert_eq!(m.queue_id, queue_id, "{name}: queue id");
                assert!(m.queue_offset >= queue_offset, "{name}: queue offset {}", m.queue_offset);
                assert!(m.store_size > 0);
                let rec = body.get(at..at + m.store_size as usize).expect("record inside the body");
                let again = decode(rec, true, true).expect("each record decodes alone with its CRC checked");
                assert_eq!(&again, m);
                at += m.store_size as usize;
                assert_eq!(decode_message_id(&m.msg_id), Ok((m.store_host, m.commit_log_offset)), "{name}");
                assert_eq!(m.store_host.port(), BROKER_PORT, "{name}: store host");
                // Re-encoding what we decoded gives the broker's bytes back.
                let mut ours = encode_for_store(
                    &MessageToStore {
                        topic: m.topic().to_string(),
                        queue_id: m.queue_id,
                        flag: m.message.flag,
                        body: m.body().clone(),
                        properties: properties_to_string(&m.message.properties),
                        tags_code: 0,
                        sys_flag: m.sys_flag,
                        born_timestamp: m.born_timestamp,
                        born_host: m.born_host,
                        store_host: m.store_host,
                        reconsume_times: m.reconsume_times,
                        prepared_transaction_offset: m.prepared_transaction_offset,
                    },
                    m.store_timestamp,
                )
                .expect("re-encodes");
                layout::patch(&mut ours, m.queue_offset, m.commit_log_offset, m.store_timestamp).expect("patch");
                assert_eq!(ours, rec, "{name}: re-encoded record differs");
                records_checked += 1;
            }
            assert_eq!(at, body.len(), "{name}: store sizes add up to the body");
            replies_checked += 1;
        }
    }
    eprintln!("checked {replies_checked} pull replies, {records_checked} records");
    assert!(replies_checked >= 5, "only {replies_checked} pull replies with messages found");
    assert!(records_checked >= replies_checked);
}

fn valid_record() -> impl Strategy<Value = Vec<u8>> {
    (
        "[a-zA-Z0-9_%]{0,200}",
        proptest::collection::vec(any::<u8>(), 0..300),
        proptest::collection::vec(("[A-Z_]{1,8}", "[ -~]{0,12}"), 0..5),
        any::<bool>(),
        any::<bool>(),
        any::<i32>(),
    )
        .prop_map(|(topic, body, props, v6_born, v6_store, flag)| {
            let born = if v6_born { addr("[2001:db8::1]:1234") } else { addr("10.1.2.3:1234") };
            let store = if v6_store { addr("[::1]:20911") } else { addr("127.0.0.1:20911") };
            let props: Properties = props.into_iter().collect();
            let mut m = MessageToStore::from_message(&Message::new(topic, body), 0, 1, born, store);
            m.properties = properties_to_string(&props);
            m.sys_flag = flag;
            encode_for_store(&m, 2).expect("encodes")
        })
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode(&bytes, true, true);
        let _ = decode(&bytes, false, false);
        let _ = decode_all(&bytes, true);
        let _ = record_size(&bytes);
        let _ = decode_message_id(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn valid_records_decode_and_mutated_ones_never_panic(
        rec in valid_record(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let m = decode(&rec, true, true).expect("a valid record decodes");
        prop_assert_eq!(m.store_size as usize, rec.len());
        let twice = [rec.clone(), rec.clone()].concat();
        prop_assert_eq!(decode_all(&twice, true).expect("two records").len(), 2);

        let mut bad = rec.clone();
        for (i, b) in edits {
            let i = i % bad.len();
            bad[i] = b;
        }
        let _ = decode(&bad, true, true);
        let _ = decode(&bad, false, false);
        let _ = decode_all(&bad, true);
        let _ = decode_all(&[rec.clone(), bad].concat(), false);
        let cut = cut % (rec.len() + 1);
        prop_assert!(decode(&rec[..cut], true, false).is_err() || cut == rec.len());
    }

    #[test]
    fn message_ids_never_panic(s in "\\PC{0,60}", hex in "[0-9A-Fa-f]{32}|[0-9A-Fa-f]{56}") {
        let _ = decode_message_id(&s);
        if let Ok((host, offset)) = decode_message_id(&hex) {
            prop_assert_eq!(create_message_id(host, offset), hex.to_ascii_uppercase());
        }
    }

    #[test]
    fn properties_parse_anything_and_round_trip(
        s in "[a-c\u{1}\u{2}]{0,40}",
        pairs in proptest::collection::vec(("[a-z]{1,6}", "[a-z0-9 ]{0,6}"), 0..6),
    ) {
        let p = string_to_properties(&s);
        let clean = |k: &str| !k.is_empty() && !k.contains(NAME_VALUE_SEPARATOR) && !k.contains(PROPERTY_SEPARATOR);
        prop_assert!(p.iter().all(|(k, _)| clean(k)));
        let p: Properties = pairs.into_iter().collect();
        prop_assert_eq!(string_to_properties(&properties_to_string(&p)), p);
    }
}
