//! BrokerConfig: Apache key names, `.properties` parsing, overrides, the
//! NAMESRV_ADDR fallback.

use std::time::Duration;

use rmq::broker::config::{BrokerConfig, parse_override, parse_properties};
use rmq::store::FlushDiskType;

const BROKER_CONF: &str = r#"
# Apache's sample broker.conf, plus a few more keys
brokerClusterName = DefaultCluster
brokerName = broker-b
brokerId = 0
deleteWhen = 04
fileReservedTime = 48
! Java also takes '!' comments
brokerRole = ASYNC_MASTER
flushDiskType = SYNC_FLUSH

listenPort: 20911
namesrvAddr=127.0.0.1:9876; 127.0.0.2:9876 ;;
brokerIP1 10.0.0.7
storePathRootDir=/tmp/rmq-test-store
mappedFileSizeCommitLog=1048576
messageDelayLevel=1s 2s \
    3s
autoCreateTopicEnable=false
sendMessageThreadPoolNums = 2
someFutureKey=whatever
"#;

#[test]
fn defaults_match_apache_or_documented_choices() {
    let c = BrokerConfig::default();
    let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
    assert_eq!(c.broker_cluster_name, "DefaultCluster");
    assert_eq!(c.broker_name, "broker-a");
    assert_eq!(c.broker_id, 0);
    assert_eq!(c.namesrv_addr, None);
    assert_eq!(c.listen_port, 10911);
    assert_eq!(c.broker_ip1, "127.0.0.1");
    assert!(c.auto_create_topic_enable && c.auto_create_subscription_group);
    assert_eq!(c.default_topic_queue_nums, 8);
    assert_eq!(c.broker_permission, 6);
    assert!(c.long_polling_enable);
    assert_eq!(c.short_polling_time_mills, Duration::from_secs(1));
    assert_eq!(c.send_message_thread_pool_nums, cores.min(4));
    assert_eq!(c.pull_message_thread_pool_nums, 16 + 2 * cores);
    assert_eq!(c.admin_broker_thread_pool_nums, 16);
    assert_eq!(c.client_manage_thread_pool_nums, 32);
    assert_eq!(c.consumer_manage_thread_pool_nums, 32);
    assert_eq!(c.heartbeat_thread_pool_nums, cores.min(32));
    assert_eq!(c.send_thread_pool_queue_capacity, 10_000);
    assert_eq!(c.pull_thread_pool_queue_capacity, 100_000);
    assert_eq!(c.client_manager_thread_pool_queue_capacity, 1_000_000);
    assert_eq!(c.consumer_manager_thread_pool_queue_capacity, 1_000_000);
    assert_eq!(c.heartbeat_thread_pool_queue_capacity, 50_000);
    assert_eq!(c.admin_broker_thread_pool_queue_capacity, 10_000);
    assert_eq!(c.register_name_server_period, Duration::from_secs(30));
    assert_eq!(c.flush_consumer_offset_interval, Duration::from_secs(5));
    assert_eq!(c.channel_expired_timeout, Duration::from_secs(120));
    assert!(c.notify_consumer_ids_changed_enable);
    assert!(!c.trace_topic_enable);
    assert_eq!(c.max_delay_level(), 18);
    assert_eq!(c.broker_addr(), "127.0.0.1:10911");
    assert_eq!(c.vip_port(), 10909);
    assert!(c.namesrv_addrs().is_empty());
}

#[test]
fn broker_conf_with_comments_store_and_broker_keys_parses() {
    let (c, warnings) = BrokerConfig::from_properties(BROKER_CONF).unwrap();
    assert_eq!(c.broker_name, "broker-b");
    assert_eq!(c.listen_port, 20911);
    assert_eq!(c.vip_port(), 20909);
    assert_eq!(c.broker_ip1, "10.0.0.7");
    assert_eq!(c.broker_addr(), "10.0.0.7:20911");
    assert!(!c.auto_create_topic_enable);
    assert_eq!(c.send_message_thread_pool_nums, 2);
    // Store keys reach the StoreConfig.
    assert_eq!(c.store.flush_disk_type, FlushDiskType::SyncFlush);
    assert_eq!(c.store.store_path_root_dir, std::path::PathBuf::from("/tmp/rmq-test-store"));
    assert_eq!(c.store.mapped_file_size_commit_log, 1 << 20);
    assert_eq!(c.store.file_reserved_time, Duration::from_secs(48 * 3600));
    assert_eq!(c.store.message_delay_level, "1s 2s 3s");
    assert_eq!(c.max_delay_level(), 3);
    // Unknown keys are warnings naming key and line, not errors.
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("brokerRole") && warnings[0].contains("line 9"), "{warnings:?}");
    assert!(warnings[1].contains("someFutureKey"), "{warnings:?}");
}

#[test]
fn namesrv_list_is_split_trimmed_and_empties_dropped() {
    let (c, _) = BrokerConfig::from_properties(BROKER_CONF).unwrap();
    assert_eq!(c.namesrv_addrs(), vec!["127.0.0.1:9876".to_string(), "127.0.0.2:9876".to_string()]);
    let mut c = BrokerConfig::default();
    assert_eq!(c.apply("namesrvAddr", "  "), Ok(true));
    assert_eq!(c.namesrv_addr, None);
    assert_eq!(c.apply("namesrvAddr", "[::1]:9876;ns1.example:9876"), Ok(true));
    assert_eq!(c.namesrv_addrs().len(), 2);
    for bad in ["127.0.0.1", "127.0.0.1:x", ":9876", "a:9876;b:99999"] {
        let e = c.apply("namesrvAddr", bad).unwrap_err();
        assert!(e.contains("namesrvAddr"), "{e}");
    }
}

#[test]
fn bad_values_are_errors_naming_the_key() {
    for (text, key) in [
        ("listenPort=abc", "listenPort"),
        ("listenPort=70000", "listenPort"),
        ("listenPort=1", "listenPort"),
        ("flushDiskType=X", "flushDiskType"),
        ("brokerId=-x", "brokerId"),
        ("brokerId=-1", "brokerId"),
        ("autoCreateTopicEnable=yes", "autoCreateTopicEnable"),
        ("pullMessageThreadPoolNums=0", "pullMessageThreadPoolNums"),
        ("sendThreadPoolQueueCapacity=-5", "sendThreadPoolQueueCapacity"),
        ("brokerPermission=16", "brokerPermission"),
        ("brokerIP1=not an ip", "brokerIP1"),
        ("messageDelayLevel=1s 1q", "messageDelayLevel"),
    ] {
        let e = BrokerConfig::from_properties(&format!("# first\n{text}\n")).unwrap_err();
        assert!(e.contains(key) && e.contains("line 2"), "{text}: {e}");
    }
    let e = BrokerConfig::default().apply("listenPort", "abc").unwrap_err();
    assert!(e.contains("listenPort") && e.contains("abc") && e.contains("expected"), "{e}");
}

#[test]
fn a_line_that_is_not_key_value_is_an_error_naming_the_line() {
    let e = BrokerConfig::from_properties("brokerName=a\n\n   justAKey\n").unwrap_err();
    assert!(e.contains("line 3"), "{e}");
    let e = BrokerConfig::from_properties("=value\n").unwrap_err();
    assert!(e.contains("line 1"), "{e}");
    // An empty value is a value: fine for namesrvAddr, an error for a number.
    assert!(BrokerConfig::from_properties("namesrvAddr=\n").is_ok());
    assert!(BrokerConfig::from_properties("listenPort=\n").unwrap_err().contains("listenPort"));
}

#[test]
fn properties_subset_separators_escapes_and_continuations() {
    let parsed =
        parse_properties("a=1\n  b : 2 \nc 3\nd\\=x = y=z\ne=tab\\there\nf=\\u0041\\uD83D\\uDE00\ng=1,\\\n   2\n")
            .unwrap();
    let kv: Vec<(&str, &str)> = parsed.iter().map(|(_, k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        kv,
        vec![("a", "1"), ("b", "2"), ("c", "3"), ("d=x", "y=z"), ("e", "tab\there"), ("f", "A\u{1F600}"), ("g", "1,2")]
    );
    assert_eq!(parsed[1].0, 2);
    assert!(parse_properties("a=\\u12").unwrap_err().contains("line 1"));
    assert!(parse_properties("a=\\uD83D").is_err());
    assert_eq!(parse_properties("a=1\r\nb=2\r\n").unwrap().len(), 2);
}

#[test]
fn overrides_win_over_the_file_and_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broker.conf");
    std::fs::write(&path, BROKER_CONF).unwrap();
    let overrides = vec![
        parse_override("brokerName=broker-z").unwrap(),
        parse_override(" listenPort = 30911 ").unwrap(),
        parse_override("namesrvAddr=10.1.1.1:9876").unwrap(),
        parse_override("noSuchKey=1").unwrap(),
    ];
    let (c, warnings) = BrokerConfig::load_with_env(&path, &overrides, Some("10.9.9.9:9876".into())).unwrap();
    assert_eq!(c.broker_name, "broker-z");
    assert_eq!(c.listen_port, 30911);
    assert_eq!(c.namesrv_addrs(), vec!["10.1.1.1:9876".to_string()]);
    assert_eq!(c.store.flush_disk_type, FlushDiskType::SyncFlush);
    assert!(warnings.iter().any(|w| w.contains("noSuchKey")), "{warnings:?}");

    let e = BrokerConfig::load_with_env(&path, &[("listenPort".into(), "x".into())], None).unwrap_err();
    assert!(e.contains("listenPort") && e.contains("command line"), "{e}");

    std::fs::write(&path, "brokerId=-x\n").unwrap();
    let e = BrokerConfig::load(&path, &[]).unwrap_err();
    assert!(e.contains("broker.conf") && e.contains("brokerId") && e.contains("line 1"), "{e}");

    let missing = dir.path().join("missing.conf");
    let e = BrokerConfig::load(&missing, &[]).unwrap_err();
    assert!(e.contains("missing.conf"), "{e}");
}

#[test]
fn parse_override_takes_key_equals_value() {
    assert_eq!(parse_override("a=b=c"), Ok(("a".into(), "b=c".into())));
    assert_eq!(parse_override("a="), Ok(("a".into(), "".into())));
    assert!(parse_override("novalue").unwrap_err().contains("novalue"));
    assert!(parse_override("=x").is_err());
}

#[test]
fn namesrv_env_is_the_fallback_when_the_key_is_absent() {
    // Key absent: the environment's value is used.
    let (mut c, _) = BrokerConfig::from_properties("brokerName=a\n").unwrap();
    c.apply_env_defaults(Some("1.2.3.4:9876;5.6.7.8:9876".into())).unwrap();
    assert_eq!(c.namesrv_addrs(), vec!["1.2.3.4:9876".to_string(), "5.6.7.8:9876".to_string()]);

    // Key present: the environment is ignored.
    let (mut c, _) = BrokerConfig::from_properties("namesrvAddr=9.9.9.9:9876\n").unwrap();
    c.apply_env_defaults(Some("1.2.3.4:9876".into())).unwrap();
    assert_eq!(c.namesrv_addrs(), vec!["9.9.9.9:9876".to_string()]);

    // Neither: unset.
    let mut c = BrokerConfig::default();
    c.apply_env_defaults(None).unwrap();
    assert_eq!(c.namesrv_addr, None);

    // A bad environment value names the variable.
    let e = BrokerConfig::default().apply_env_defaults(Some("nonsense".into())).unwrap_err();
    assert!(e.contains("NAMESRV_ADDR"), "{e}");

    // load_with_env: the file has no namesrvAddr, so the given value is used.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broker.conf");
    std::fs::write(&path, "brokerName=a\n").unwrap();
    let (c, _) = BrokerConfig::load_with_env(&path, &[], Some("7.7.7.7:9876".into())).unwrap();
    assert_eq!(c.namesrv_addrs(), vec!["7.7.7.7:9876".to_string()]);
}

#[test]
fn register_period_is_clamped_like_apache() {
    let mut c = BrokerConfig::default();
    c.apply("registerNameServerPeriod", "1000").unwrap();
    assert_eq!(c.register_name_server_period, Duration::from_secs(10));
    c.apply("registerNameServerPeriod", "600000").unwrap();
    assert_eq!(c.register_name_server_period, Duration::from_secs(60));
    c.apply("registerNameServerPeriod", "45000").unwrap();
    assert_eq!(c.register_name_server_period, Duration::from_secs(45));
}
