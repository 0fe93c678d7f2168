//! The shared client instance: one per client id, routes from the name
//! server, heartbeats that register groups on the broker, unregistration.

mod support;

use std::sync::Arc;
use std::time::Duration;

use rmq::client::config::ClientConfig;
use rmq::client::instance::{ClientError, ClientInstance, ServiceState};
use rmq::common::wait;
use support::cluster::Cluster;

#[test]
fn one_instance_per_client_id_with_routes_and_heartbeats() {
    let c = Cluster::start();
    let cfg =
        ClientConfig { namesrv_addr: Some(c.ns_addr()), instance_name: "instance_test".into(), ..Default::default() };
    let a = ClientInstance::get_or_create(&cfg).unwrap();
    let b = ClientInstance::get_or_create(&cfg).unwrap();
    assert!(Arc::ptr_eq(&a, &b), "the same client id shares one instance");
    let other = ClientInstance::get_or_create(&ClientConfig { instance_name: "other".into(), ..cfg.clone() }).unwrap();
    assert!(!Arc::ptr_eq(&a, &other));
    assert_eq!(a.client_id(), "127.0.0.1@instance_test");

    a.start().unwrap();
    assert_eq!(a.state(), ServiceState::Running);
    assert!(rmq::common::thread::registered_names().iter().any(|n| n == "MQClientFactoryScheduledThread"));

    let route = a.update_topic_route("TBW102").unwrap().expect("the default topic has a route");
    assert_eq!(route.broker_datas[0].broker_name, "broker-a");
    assert_eq!(a.master_addr("broker-a"), Some(c.broker_addr()));
    assert_eq!(a.update_topic_route("NoSuchTopic").unwrap(), None);

    a.register_producer("pg_instance").unwrap();
    assert!(matches!(a.register_producer("pg_instance"), Err(ClientError::State(_))), "duplicate group");
    a.send_heartbeat_to_all_brokers();
    let producers = || c.broker.shared().producers.groups();
    assert!(producers().contains_key("pg_instance"), "the heartbeat registered the producer group");
    a.unregister_producer("pg_instance");
    assert!(wait::until(Duration::from_secs(5), || !producers().contains_key("pg_instance")));
    a.shutdown();
    assert_eq!(a.state(), ServiceState::ShutdownAlready);
    assert!(matches!(a.start(), Err(ClientError::State(_))));
}

#[test]
fn starting_without_a_name_server_fails_clearly() {
    let cfg = ClientConfig { namesrv_addr: Some(String::new()), instance_name: "no_ns".into(), ..Default::default() };
    let i = ClientInstance::get_or_create(&cfg).unwrap();
    if std::env::var("NAMESRV_ADDR").is_err() {
        let e = i.start().unwrap_err();
        assert!(e.to_string().contains("name server"), "{e}");
        assert_eq!(i.state(), ServiceState::StartFailed);
    }
}
