//! PullRequestHoldService: held pulls wake at once on a matching arrival,
//! stay held for other tags or old offsets, and time out on the check.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rmq::broker::long_polling::{HeldPull, PullRequestHoldService};
use rmq::common::ThreadPool;
use rmq::common::wait;
use rmq::remoting::code::response;
use rmq::remoting::{Channel, ClientConfig, RemotingClient, RemotingCommand, RemotingServer, ServerConfig};

/// A real server-side channel, from a request a client sends.
fn channel() -> (RemotingServer, RemotingClient, Channel) {
    let mut s =
        RemotingServer::new(ServerConfig { listen: vec!["127.0.0.1:0".parse().unwrap()], ..Default::default() });
    let seen: Arc<Mutex<Option<Channel>>> = Arc::default();
    let s2 = seen.clone();
    let pool = Arc::new(ThreadPool::new("HoldTestThread_", "test", 1, 10).unwrap());
    s.register_processor(
        1,
        Arc::new(move |ch: &Channel, _: RemotingCommand| {
            *s2.lock() = Some(ch.clone());
            Some(RemotingCommand::response(response::SUCCESS, None))
        }),
        pool,
    );
    let addr = s.start().unwrap()[0].to_string();
    let c = RemotingClient::start(ClientConfig::default()).unwrap();
    c.invoke_sync(&addr, RemotingCommand::request(1), Duration::from_secs(5)).unwrap();
    let ch = seen.lock().clone().unwrap();
    (s, c, ch)
}

fn held(ch: &Channel, offset: i64, timeout_ms: i64, tags: Option<Vec<i64>>) -> HeldPull {
    HeldPull {
        request: RemotingCommand::request(11),
        channel: ch.clone(),
        suspend_timestamp: rmq::common::time::now_millis(),
        timeout_millis: timeout_ms,
        pull_from_offset: offset,
        tags_codes: tags,
    }
}

#[test]
fn held_pulls_wake_on_arrival_tag_or_timeout() {
    let (_s, _c, ch) = channel();
    let woken: Arc<Mutex<Vec<(i64, Instant)>>> = Arc::default();
    let w = woken.clone();
    let hold = PullRequestHoldService::start(
        Duration::from_millis(50),
        Arc::new(|_: &str, _: i32| 0),
        Arc::new(move |p: HeldPull| w.lock().push((p.pull_from_offset, Instant::now()))),
    )
    .unwrap();
    hold.suspend("T", 0, held(&ch, 5, 30_000, None));
    hold.suspend("T", 0, held(&ch, 6, 30_000, Some(vec![42])));
    hold.suspend("T", 1, held(&ch, 0, 150, None));
    assert_eq!(hold.held(), 3);

    hold.notify_message_arriving("T", 0, 5, None);
    assert!(woken.lock().is_empty(), "offset 5 has no message yet");
    let t0 = Instant::now();
    hold.notify_message_arriving("T", 0, 7, Some(7));
    assert_eq!(woken.lock().iter().map(|w| w.0).collect::<Vec<_>>(), vec![5], "tag 7 wakes only the '*' pull");
    assert!(woken.lock()[0].1 - t0 < Duration::from_millis(5), "woken at once, not by the periodic check");
    hold.notify_message_arriving("T", 0, 8, Some(42));
    assert_eq!(woken.lock().len(), 2);

    // The queue-1 pull times out and is answered by the periodic check.
    assert!(wait::until(Duration::from_secs(3), || woken.lock().len() == 3));
    assert_eq!(hold.held(), 0);
    hold.suspend("T", 2, held(&ch, 0, 60_000, None));
    hold.shutdown();
    assert_eq!(woken.lock().len(), 4, "shutdown answers what is still held");
}
