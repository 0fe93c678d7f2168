//! The real `rmq broker` under SYNC_FLUSH, stopped and killed as a user
//! would: every send answered SEND_OK is there after each restart.

mod support;

use std::collections::HashMap;

use nix::sys::signal::Signal;
use rmq::remoting::code::response;
use rmq::remoting::headers::SendMessageResponseHeader;
use support::broker_process::{BrokerProcess, free_broker_port};

const TOPIC: &str = "CrashTopic";
const QUEUES: i32 = 4;
const SETTINGS: &[&str] =
    &["flushDiskType=SYNC_FLUSH", "mappedFileSizeCommitLog=1048576", "autoCreateTopicEnable=true"];

/// Sends `n` messages tagged `run`; what was acknowledged, by (queue, offset).
fn send_some(b: &BrokerProcess, run: &str, n: usize, acked: &mut HashMap<(i32, i64), Vec<u8>>) {
    for i in 0..n {
        let body = format!("{run}-{i}-{}", "x".repeat(i % 700)).into_bytes();
        let r = b.send(TOPIC, i as i32 % QUEUES, QUEUES, body.clone());
        assert_eq!(r.code, response::SUCCESS, "{run} send {i}: {:?}", r.remark);
        let h: SendMessageResponseHeader = r.header().unwrap();
        acked.insert((h.queue_id, h.queue_offset), body);
    }
}

fn check(b: &BrokerProcess, acked: &HashMap<(i32, i64), Vec<u8>>, when: &str) {
    let mut found = 0;
    for qid in 0..QUEUES {
        for m in b.pull_all(TOPIC, qid) {
            if let Some(want) = acked.get(&(qid, m.queue_offset)) {
                assert_eq!(&m.message.body[..], &want[..], "{when}: queue {qid} offset {}", m.queue_offset);
                found += 1;
            }
        }
    }
    assert_eq!(found, acked.len(), "{when}: acknowledged messages lost");
}

/// The steps that lost half the messages: send, SIGTERM, start, send,
/// kill -9, start. Then once more, with a second clean restart.
#[test]
fn sigterm_then_sigkill_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let port = free_broker_port();
    let mut acked = HashMap::new();
    let steps = [
        ("first", Signal::SIGTERM),
        ("second", Signal::SIGKILL),
        ("third", Signal::SIGTERM),
        ("fourth", Signal::SIGKILL),
    ];
    for (run, stop) in steps {
        let b = BrokerProcess::start(&store, port, SETTINGS);
        check(&b, &acked, &format!("start of the {run} run"));
        send_some(&b, run, 1500, &mut acked);
        let status = b.stop(stop);
        if stop == Signal::SIGTERM {
            assert!(status.success(), "{run}: {status:?}");
        }
    }
    let b = BrokerProcess::start(&store, port, SETTINGS);
    check(&b, &acked, "the end");
    b.stop(Signal::SIGTERM);
}
