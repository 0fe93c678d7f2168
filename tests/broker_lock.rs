//! Queue locks for orderly consumption over the wire (LOCK_BATCH_MQ,
//! UNLOCK_BATCH_MQ): two clients contend for the queues of one group; locks
//! renew, release only by their holder, and expire (a short live time set on
//! this broker's lock manager stands in for the 60 s default).

mod support;

use support::cluster::{Cluster, T};

use std::collections::BTreeSet;
use std::time::Duration;

use rmq::broker::rebalance_lock::{DEFAULT_LOCK_MAX_LIVE_TIME, lock_manager};
use rmq::common::wait;
use rmq::remoting::RemotingCommand;
use rmq::remoting::body::{LockBatchRequestBody, LockBatchResponseBody, MessageQueue, UnlockBatchRequestBody};
use rmq::remoting::code::{request, response};
use rmq::remoting::json::{from_body, to_body};

const GROUP: &str = "orderly_cg";

fn cluster() -> Cluster {
    Cluster::start()
}

fn q(i: i32) -> MessageQueue {
    MessageQueue { topic: "OrderedTopic".into(), broker_name: "broker-a".into(), queue_id: i }
}

fn set(qs: &[MessageQueue]) -> BTreeSet<MessageQueue> {
    qs.iter().cloned().collect()
}

impl Cluster {
    fn invoke(&self, req: RemotingCommand) -> RemotingCommand {
        self.client.invoke_sync(&self.broker.addr().to_string(), req, T).unwrap()
    }

    /// LOCK_BATCH_MQ for `client`: the queues it holds afterwards.
    fn lock(&self, client: &str, qs: &[MessageQueue]) -> BTreeSet<MessageQueue> {
        let body = LockBatchRequestBody {
            consumer_group: GROUP.into(),
            client_id: client.into(),
            mq_set: set(qs),
            only_this_broker: None,
        };
        let r = self.invoke(RemotingCommand::request(request::LOCK_BATCH_MQ).with_body(to_body(&body)));
        assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark);
        from_body::<LockBatchResponseBody>(&r.body.bytes()).unwrap().lock_ok_mq_set
    }

    fn unlock(&self, client: &str, qs: &[MessageQueue]) {
        let body = UnlockBatchRequestBody {
            consumer_group: GROUP.into(),
            client_id: client.into(),
            mq_set: set(qs),
            only_this_broker: None,
        };
        let r = self.invoke(RemotingCommand::request(request::UNLOCK_BATCH_MQ).with_body(to_body(&body)));
        assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark);
    }
}

#[test]
fn two_clients_lock_renew_unlock() {
    let c = cluster();
    let (a, b) = ("10.0.0.1@A", "10.0.0.2@B");
    assert_eq!(lock_manager(c.broker.shared()).max_live_time(), DEFAULT_LOCK_MAX_LIVE_TIME);

    assert_eq!(c.lock(a, &[q(0), q(1)]), set(&[q(0), q(1)]), "free queues are A's");
    assert_eq!(c.lock(b, &[q(1), q(2)]), set(&[q(2)]), "B gets only what A does not hold");
    assert_eq!(c.lock(a, &[q(0), q(1), q(2)]), set(&[q(0), q(1)]), "A renews its own, not B's");

    // B cannot release A's lock; A can, and then B takes it.
    c.unlock(b, &[q(1)]);
    assert!(c.lock(b, &[q(1)]).is_empty());
    c.unlock(a, &[q(1)]);
    assert_eq!(c.lock(b, &[q(1)]), set(&[q(1)]));
    assert!(c.lock(a, &[q(1)]).is_empty());

    // Another group's locks are separate.
    let other = LockBatchRequestBody {
        consumer_group: "other_cg".into(),
        client_id: a.into(),
        mq_set: set(&[q(1)]),
        only_this_broker: None,
    };
    let r = c.invoke(RemotingCommand::request(request::LOCK_BATCH_MQ).with_body(to_body(&other)));
    assert_eq!(from_body::<LockBatchResponseBody>(&r.body.bytes()).unwrap().lock_ok_mq_set, set(&[q(1)]));
}

#[test]
fn an_expired_lock_goes_to_the_next_client() {
    let c = cluster();
    let (a, b) = ("10.0.0.1@A", "10.0.0.2@B");
    let locks = lock_manager(c.broker.shared());
    locks.set_max_live_time(Duration::from_millis(300));

    assert_eq!(c.lock(a, &[q(0)]), set(&[q(0)]));
    assert!(c.lock(b, &[q(0)]).is_empty(), "A's lock is live");
    assert!(wait::until(T, || locks.holder(GROUP, &q(0)).is_none()), "A's lock expires");
    assert_eq!(c.lock(b, &[q(0)]), set(&[q(0)]), "B takes the expired lock");
    assert!(c.lock(a, &[q(0)]).is_empty(), "and now B holds it");
    // A's unlock of a queue it lost leaves B's lock alone.
    c.unlock(a, &[q(0)]);
    assert_eq!(locks.holder(GROUP, &q(0)).as_deref(), Some(b));
}

#[test]
fn bodies_as_apaches_java_client_sends_them() {
    let c = cluster();
    // What fastjson writes for LockBatchRequestBody / UnlockBatchRequestBody
    // (a Set<MessageQueue> is a JSON array; 5.x clients add onlyThisBroker).
    let lock = br#"{"clientId":"192.168.1.7@12345#1711111111","consumerGroup":"orderly_cg","mqSet":[{"brokerName":"broker-a","queueId":0,"topic":"OrderedTopic"},{"brokerName":"broker-a","queueId":3,"topic":"OrderedTopic"}]}"#;
    let r = c.invoke(RemotingCommand::request(request::LOCK_BATCH_MQ).with_body(lock.to_vec()));
    assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark);
    let text = String::from_utf8(r.body.bytes().to_vec()).unwrap();
    assert!(text.starts_with(r#"{"lockOKMQSet":["#), "{text}");
    let got: LockBatchResponseBody = from_body(text.as_bytes()).unwrap();
    assert_eq!(got.lock_ok_mq_set, set(&[q(0), q(3)]));

    let unlock = br#"{"clientId":"192.168.1.7@12345#1711111111","consumerGroup":"orderly_cg","mqSet":[{"brokerName":"broker-a","queueId":3,"topic":"OrderedTopic"}],"onlyThisBroker":false}"#;
    let r = c.invoke(RemotingCommand::request(request::UNLOCK_BATCH_MQ).with_body(unlock.to_vec()));
    assert_eq!(r.code, response::SUCCESS, "{:?}", r.remark);
    assert_eq!(c.lock("other@1", &[q(0), q(3)]), set(&[q(3)]), "q3 was released, q0 is still held");

    // A body that is not JSON is an error, not a panic.
    let r = c.invoke(RemotingCommand::request(request::LOCK_BATCH_MQ).with_body(b"{not json".to_vec()));
    assert_eq!(r.code, response::SYSTEM_ERROR);
    let r = c.invoke(RemotingCommand::request(request::UNLOCK_BATCH_MQ));
    assert_eq!(r.code, response::SYSTEM_ERROR);
}
