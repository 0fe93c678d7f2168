//! Shutting a client and a server down joins every thread they started.
//! (Its own test binary: the thread registry is process-wide.)

use std::sync::Arc;
use std::time::Duration;

use rmq::common::ThreadPool;
use rmq::remoting::code::response;
use rmq::remoting::{Channel, ClientConfig, RemotingClient, RemotingCommand, RemotingServer, ServerConfig};

#[test]
fn shutdown_joins_every_thread_and_fails_nothing_silently() {
    let before = rmq::common::thread::registered_names();
    let mut server =
        RemotingServer::new(ServerConfig { listen: vec!["127.0.0.1:0".parse().unwrap()], ..Default::default() });
    let pool = Arc::new(ThreadPool::new("ShutdownTestThread_", "test", 2, 100).unwrap());
    server.register_processor(
        1,
        Arc::new(|_: &Channel, _: RemotingCommand| Some(RemotingCommand::response(response::SUCCESS, None))),
        pool.clone(),
    );
    server.register_processor(2, Arc::new(|_: &Channel, _: RemotingCommand| None), pool.clone());
    let addr = server.start().unwrap()[0].to_string();
    let client = RemotingClient::start(ClientConfig::default()).unwrap();
    client.invoke_sync(&addr, RemotingCommand::request(1), Duration::from_secs(5)).unwrap();
    let (tx, rx) = crossbeam_channel::bounded(1);
    client
        .invoke_async(&addr, RemotingCommand::request(2), Duration::from_secs(60), move |r| {
            let _ = tx.send(r.is_err());
        })
        .unwrap();
    assert!(rmq::common::thread::registered_names().len() > before.len() + 10);

    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        client.shutdown();
        server.shutdown();
        pool.shutdown();
        let _ = done_tx.send(());
    });
    done_rx.recv_timeout(Duration::from_secs(10)).expect("shutdown hung");
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(true), "the pending async call was failed");
    let mut after = rmq::common::thread::registered_names();
    after.retain(|n| !before.contains(n) && n != "Attach Listener");
    assert!(after.is_empty(), "threads left running: {after:?}");
}
