//! The interop captures as fixtures: every frame five real clients and Apache
//! RocketMQ 4.9.7 exchanged must decode; binary headers must re-encode to the
//! same bytes, JSON headers to the same fields; typed headers must read.

mod support;

use rmq::remoting::code::request;
use rmq::remoting::headers::*;
use rmq::remoting::{RemotingCommand, SerializeType};
use serde_json::Value;
use support::pcap;

fn all_frames() -> Vec<(String, pcap::Frame)> {
    let mut v = Vec::new();
    for path in pcap::captures() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        for f in pcap::frames(&path) {
            v.push((name.clone(), f));
        }
    }
    v
}

fn decoded() -> Vec<(String, pcap::Frame, RemotingCommand)> {
    all_frames()
        .into_iter()
        .map(|(name, f)| {
            let cmd = RemotingCommand::decode_frame(&f.bytes)
                .unwrap_or_else(|e| panic!("{name}: frame {:?} does not decode: {e}", f.flow));
            (name, f, cmd)
        })
        .collect()
}

fn header_json(frame: &[u8]) -> Value {
    let hl = (u32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]) & 0xff_ffff) as usize;
    serde_json::from_slice(&frame[8..8 + hl]).expect("JSON header")
}

/// A JSON ext value as the text our decoder keeps.
fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[test]
fn every_captured_frame_decodes() {
    let frames = decoded();
    assert!(frames.len() > 200, "only {} frames found", frames.len());
    let binary = frames.iter().filter(|(_, _, c)| c.serialize_type == SerializeType::RocketMq).count();
    assert!(binary > 20, "the binary-header captures must contribute frames ({binary})");
}

#[test]
fn binary_headers_re_encode_to_the_same_bytes() {
    for (name, f, cmd) in decoded().into_iter().filter(|(_, _, c)| c.serialize_type == SerializeType::RocketMq) {
        assert_eq!(cmd.encode(), f.bytes, "{name}: {} re-encodes differently", cmd.code_name());
    }
}

#[test]
fn json_headers_re_encode_to_the_same_fields() {
    for (name, f, cmd) in decoded().into_iter().filter(|(_, _, c)| c.serialize_type == SerializeType::Json) {
        let ours = cmd.encode();
        let (a, b) = (header_json(&f.bytes), header_json(&ours));
        for key in ["code", "flag", "opaque", "version", "language"] {
            let theirs = &a[key];
            let mine = &b[key];
            assert_eq!(as_text(theirs), as_text(mine), "{name}: {key} differs");
        }
        assert_eq!(a.get("remark").and_then(as_text), b.get("remark").and_then(as_text), "{name}: remark");
        let theirs: Vec<(String, String)> = a
            .get("extFields")
            .and_then(Value::as_object)
            .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), as_text(v)?))).collect())
            .unwrap_or_default();
        let mine: Vec<(String, String)> = b
            .get("extFields")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), as_text(v).unwrap())).collect())
            .unwrap_or_default();
        assert_eq!(theirs, mine, "{name}: extFields differ");
        let body_at = ours.len() - cmd.body.len();
        assert_eq!(&ours[body_at..], &f.bytes[f.bytes.len() - cmd.body.len()..], "{name}: body");
    }
}

#[test]
fn typed_headers_read_from_every_client() {
    let mut seen = std::collections::HashSet::new();
    for (name, _, cmd) in decoded().into_iter().filter(|(_, _, c)| !c.is_response()) {
        let ok = match cmd.code {
            request::SEND_MESSAGE => {
                let h: SendMessageRequestHeader = cmd.header().unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(!h.topic.is_empty() && h.born_timestamp > 0, "{name}: {h:?}");
                true
            }
            request::SEND_MESSAGE_V2 | request::SEND_BATCH_MESSAGE => {
                let h: SendMessageRequestHeaderV2 = cmd.header().unwrap_or_else(|e| panic!("{name}: {e}"));
                let v1 = SendMessageRequestHeader::from(h.clone());
                assert_eq!(v1.topic, h.topic);
                assert_eq!(h.default_topic, "TBW102", "{name}");
                true
            }
            request::PULL_MESSAGE => {
                let h: PullMessageRequestHeader = cmd.header().unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(h.max_msg_nums > 0 && h.suspend_timeout_millis >= 0, "{name}: {h:?}");
                true
            }
            request::QUERY_CONSUMER_OFFSET => {
                cmd.header::<QueryConsumerOffsetRequestHeader>().unwrap_or_else(|e| panic!("{name}: {e}"));
                true
            }
            request::UPDATE_CONSUMER_OFFSET => {
                let h: UpdateConsumerOffsetRequestHeader = cmd.header().unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(h.commit_offset >= -1, "{name}: {h:?}");
                true
            }
            request::UNREGISTER_CLIENT => {
                cmd.header::<UnregisterClientRequestHeader>().unwrap_or_else(|e| panic!("{name}: {e}"));
                true
            }
            request::GET_CONSUMER_LIST_BY_GROUP => {
                cmd.header::<GetConsumerListByGroupRequestHeader>().unwrap_or_else(|e| panic!("{name}: {e}"));
                true
            }
            request::NOTIFY_CONSUMER_IDS_CHANGED => {
                cmd.header::<NotifyConsumerIdsChangedRequestHeader>().unwrap_or_else(|e| panic!("{name}: {e}"));
                true
            }
            request::GET_ROUTEINFO_BY_TOPIC => {
                let h: GetRouteInfoRequestHeader = cmd.header().unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(!h.topic.is_empty());
                true
            }
            _ => false,
        };
        if ok {
            seen.insert(cmd.code);
        }
    }
    for code in [
        request::SEND_MESSAGE,
        request::SEND_MESSAGE_V2,
        request::PULL_MESSAGE,
        request::QUERY_CONSUMER_OFFSET,
        request::UPDATE_CONSUMER_OFFSET,
        request::UNREGISTER_CLIENT,
        request::GET_CONSUMER_LIST_BY_GROUP,
        request::GET_ROUTEINFO_BY_TOPIC,
    ] {
        assert!(seen.contains(&code), "no {code} request in the captures was read");
    }
}

#[test]
fn ext_values_sent_as_json_numbers_and_booleans_are_kept_as_text() {
    let ali = decoded()
        .into_iter()
        .find(|(n, _, c)| n.starts_with("ali-ons-producer") && c.code == request::SEND_MESSAGE_V2)
        .expect("an ali-ons send");
    let raw = header_json(&ali.1.bytes);
    assert!(raw["extFields"]["d"].is_number(), "ali-ons sends numbers");
    assert!(raw["extFields"]["k"].is_boolean(), "ali-ons sends booleans");
    let h: SendMessageRequestHeaderV2 = ali.2.header().unwrap();
    assert_eq!(h.default_topic_queue_nums, 4);
    assert_eq!(h.unit_mode, Some(false));
}
