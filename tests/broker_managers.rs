//! The broker's persisted tables: topics (with Apache's system topics and
//! auto-creation from TBW102), subscription groups and consumer offsets, in
//! Apache's file formats.

use std::fs;
use std::path::Path;

use rmq::broker::consumer_offset::ConsumerOffsetManager;
use rmq::broker::subscription_group::{SubscriptionGroupConfig, SubscriptionGroupManager};
use rmq::broker::topic_config::*;
use rmq::remoting::body::perm::{PERM_INHERIT, PERM_READ, PERM_WRITE};
use rmq::remoting::body::{KvTable, TopicConfig};

const RW: i32 = PERM_READ | PERM_WRITE;

fn topics(dir: &Path, auto_create: bool) -> TopicConfigManager {
    TopicConfigManager::load(TopicConfigManager::default_path(dir), "DefaultCluster", "broker-a", 8, auto_create)
        .unwrap()
}

fn queues_and_perm(m: &TopicConfigManager, topic: &str) -> (i32, i32, i32) {
    let tc = m.select(topic).unwrap_or_else(|| panic!("{topic} missing"));
    (tc.read_queue_nums, tc.write_queue_nums, tc.perm)
}

#[test]
fn system_topics_exist_after_load() {
    let dir = tempfile::tempdir().unwrap();
    let m = topics(dir.path(), true);
    assert_eq!(queues_and_perm(&m, SELF_TEST_TOPIC), (1, 1, RW));
    assert_eq!(queues_and_perm(&m, TBW102), (8, 8, PERM_INHERIT | RW));
    assert_eq!(queues_and_perm(&m, BENCHMARK_TOPIC), (1024, 1024, RW));
    assert_eq!(queues_and_perm(&m, "DefaultCluster"), (16, 16, PERM_INHERIT | RW));
    assert_eq!(queues_and_perm(&m, "broker-a"), (1, 1, PERM_INHERIT | RW));
    assert_eq!(queues_and_perm(&m, OFFSET_MOVED_EVENT), (1, 1, RW));
    assert_eq!(queues_and_perm(&m, SCHEDULE_TOPIC), (18, 18, RW));
    assert_eq!(queues_and_perm(&m, "DefaultCluster_REPLY_TOPIC"), (1, 1, RW));
    assert!(m.select(TRACE_TOPIC).is_none(), "traceTopicEnable is off by default");
    assert_eq!(m.all().len(), 8);
    assert_eq!(m.wrapper().topic_config_table.len(), 8);
    assert_eq!(m.data_version().counter, 0);
    assert!(!TopicConfigManager::default_path(dir.path()).exists(), "loading writes nothing");

    let m = topics(dir.path(), false);
    assert!(m.select(TBW102).is_none());
    assert_eq!(m.all().len(), 7);

    assert!(TopicConfigManager::is_system_topic(TBW102));
    assert!(TopicConfigManager::is_system_topic("rmq_sys_x"));
    assert!(!TopicConfigManager::is_system_topic("DefaultCluster"));
    assert!(m.is_system("DefaultCluster") && m.is_system("broker-a") && m.is_system("DefaultCluster_REPLY_TOPIC"));
    assert_eq!(m.check_not_system("broker-a"), Err("The topic[broker-a] is conflict with system topic.".into()));
    assert!(m.check_not_system("TopicA").is_ok());
}

#[test]
fn auto_create_from_tbw102_obeys_inherit_and_queue_min() {
    let dir = tempfile::tempdir().unwrap();
    let m = topics(dir.path(), true);
    let v0 = m.data_version();

    let tc = m.create_in_send("NewTopic", TBW102, 4, 0).unwrap().unwrap();
    assert_eq!((tc.read_queue_nums, tc.write_queue_nums, tc.perm), (4, 4, RW), "min(4, 8), inherit dropped");
    assert_eq!(tc.topic_filter_type, "SINGLE_TAG");
    assert_eq!(m.data_version().counter, v0.counter + 1);
    let tc = m.create_in_send("Wide", TBW102, 64, 0).unwrap().unwrap();
    assert_eq!(tc.write_queue_nums, 8, "min(64, 8)");
    assert_eq!(m.create_in_send("Negative", TBW102, -3, 0).unwrap().unwrap().write_queue_nums, 0);

    // An existing topic comes back unchanged, without a new version.
    let v = m.data_version();
    assert_eq!(m.create_in_send("NewTopic", TBW102, 2, 0).unwrap().unwrap().write_queue_nums, 4);
    assert_eq!(m.data_version(), v);

    // A default topic without PERM_INHERIT, or a missing one, creates nothing.
    assert!(m.create_in_send("X1", "NewTopic", 4, 0).unwrap().is_none());
    assert!(m.create_in_send("X2", "NoSuchTopic", 4, 0).unwrap().is_none());
    // The broker-name topic is inheritable, as in Apache.
    assert_eq!(m.create_in_send("X3", "broker-a", 4, 0).unwrap().unwrap().write_queue_nums, 1);

    // Created topics were persisted.
    let again = topics(dir.path(), true);
    assert_eq!(again.select("NewTopic"), m.select("NewTopic"));
    assert_eq!(again.data_version(), m.data_version());

    // Without autoCreateTopicEnable a TBW102 left in the file is not inherited from.
    let off = topics(dir.path(), false);
    assert!(off.select(TBW102).is_some());
    assert!(off.create_in_send("Y", TBW102, 4, 0).unwrap().is_none());
    assert_eq!(off.select(TBW102).unwrap().perm, RW);

    // Send-back topics.
    let retry = retry_topic("g1");
    assert_eq!(retry, "%RETRY%g1");
    let tc = m.create_in_send_back(&retry, 1, RW, 0).unwrap();
    assert_eq!((tc.read_queue_nums, tc.write_queue_nums, tc.perm), (1, 1, RW));
    assert_eq!(m.create_in_send_back(&retry, 5, PERM_WRITE, 0).unwrap(), tc, "existing one wins");
    assert_eq!(dlq_topic("g1"), "%DLQ%g1");
    assert_eq!(m.create_in_send_back(&dlq_topic("g1"), 1, PERM_WRITE, 0).unwrap().perm, PERM_WRITE);
}

#[test]
fn update_and_delete_bump_the_version_and_survive_reload() {
    let dir = tempfile::tempdir().unwrap();
    let m = topics(dir.path(), true);
    let tc = TopicConfig {
        topic_name: "TopicA".into(),
        read_queue_nums: 3,
        write_queue_nums: 5,
        perm: PERM_READ,
        ..Default::default()
    };
    m.update(tc.clone()).unwrap();
    assert_eq!(m.data_version().counter, 1);
    m.update(TopicConfig { topic_name: "TopicB".into(), ..Default::default() }).unwrap();
    assert_eq!(m.data_version().counter, 2);
    // A system topic changed by an admin keeps the file's values on reload.
    m.update(TopicConfig { topic_name: SCHEDULE_TOPIC.into(), read_queue_nums: 2, write_queue_nums: 2, ..tc.clone() })
        .unwrap();

    let path = TopicConfigManager::default_path(dir.path());
    let json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(json["topicConfigTable"]["TopicA"]["writeQueueNums"], 5);
    assert_eq!(json["topicConfigTable"]["TopicA"]["topicFilterType"], "SINGLE_TAG");
    assert_eq!(json["dataVersion"]["counter"], 3);

    assert_eq!(m.delete("TopicB").unwrap().map(|t| t.topic_name), Some("TopicB".to_string()));
    assert_eq!(m.data_version().counter, 4);
    assert_eq!(m.delete("TopicB").unwrap(), None);
    assert_eq!(m.data_version().counter, 4, "deleting nothing changes nothing");

    let again = topics(dir.path(), true);
    assert_eq!(again.select("TopicA"), Some(tc));
    assert!(again.select("TopicB").is_none());
    assert_eq!(again.select(SCHEDULE_TOPIC).unwrap().write_queue_nums, 2);
    assert_eq!(again.data_version(), m.data_version());

    // Order flags follow the name server's ORDER_TOPIC_CONFIG table.
    let mut kv = KvTable::default();
    kv.table.insert("TopicA".into(), "broker-a:5".into());
    again.update_order_topic_config(&kv).unwrap();
    assert!(again.is_order_topic("TopicA") && !again.is_order_topic(TBW102));
    assert_eq!(again.data_version().counter, 5);
    again.update_order_topic_config(&kv).unwrap();
    assert_eq!(again.data_version().counter, 5);
}

#[test]
fn bak_is_used_when_the_file_is_missing_or_corrupt_and_both_corrupt_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = TopicConfigManager::default_path(dir.path());
    let m = topics(dir.path(), true);
    m.update(TopicConfig { topic_name: "First".into(), ..Default::default() }).unwrap();
    m.update(TopicConfig { topic_name: "Second".into(), ..Default::default() }).unwrap();

    // The .bak holds the state before the last write; it is read when the
    // file is corrupt (as Apache's ConfigManager does) or missing.
    fs::write(&path, b"{\"topicConfigTable\":{").unwrap();
    for main_file in ["corrupt", "missing"] {
        if main_file == "missing" {
            fs::remove_file(&path).unwrap();
        }
        let from_bak = topics(dir.path(), true);
        assert!(from_bak.select("First").is_some(), "{main_file}");
        assert!(from_bak.select("Second").is_none(), "{main_file}");
        assert_eq!(from_bak.data_version().counter, 1, "{main_file}");
    }
    fs::write(&path, b"{\"topicConfigTable\":{").unwrap();
    let bak = dir.path().join("config").join("topics.json.bak");
    fs::write(&bak, b"[").unwrap();
    let err = TopicConfigManager::load(path.clone(), "DefaultCluster", "broker-a", 8, true).err().unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");

    // The other managers report their files the same way.
    let groups = SubscriptionGroupManager::default_path(dir.path());
    fs::write(&groups, b"[1,").unwrap();
    let err = SubscriptionGroupManager::load(groups.clone(), true).err().unwrap();
    assert!(err.to_string().contains(&groups.display().to_string()), "{err}");
    let offsets = ConsumerOffsetManager::default_path(dir.path());
    fs::write(&offsets, b"{\"offsetTable\":{\"T@g\":{\"0\":\"x\"}}}").unwrap();
    let err = ConsumerOffsetManager::load(offsets.clone()).err().unwrap();
    assert!(err.to_string().contains(&offsets.display().to_string()), "{err}");
}

#[test]
fn subscription_groups_auto_create_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let path = SubscriptionGroupManager::default_path(dir.path());
    let m = SubscriptionGroupManager::load(path.clone(), true).unwrap();
    for g in ["TOOLS_CONSUMER", "FILTERSRV_CONSUMER", "SELF_TEST_C_GROUP", "CID_ONS-HTTP-PROXY", "CID_ONSAPI_PULL"] {
        assert!(m.get(g).is_some(), "{g}");
    }
    assert_eq!(m.all().len(), 7);
    assert!(m.get("g1").is_none());

    let g = m.find_or_create("g1").unwrap();
    assert_eq!(g, SubscriptionGroupConfig::new("g1"));
    assert_eq!((g.retry_max_times, g.retry_queue_nums, g.broker_id, g.which_broker_when_consume_slowly), (16, 1, 0, 1));
    assert!(g.consume_enable && g.consume_from_min_enable && g.consume_broadcast_enable);
    assert!(g.notify_consumer_ids_changed_enable);
    assert_eq!(m.data_version().counter, 1);
    assert_eq!(m.find_or_create("g1"), Some(g.clone()));
    assert_eq!(m.data_version().counter, 1);

    let json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let j = &json["subscriptionGroupTable"]["g1"];
    assert_eq!(j["groupName"], "g1");
    assert_eq!(j["retryMaxTimes"], 16);
    assert_eq!(j["consumeBroadcastEnable"], true);
    assert_eq!(j["whichBrokerWhenConsumeSlowly"], 1);
    assert_eq!(json["dataVersion"]["counter"], 1);

    m.update(SubscriptionGroupConfig {
        retry_max_times: 3,
        consume_enable: false,
        ..SubscriptionGroupConfig::new("g2")
    })
    .unwrap();
    assert!(m.delete("g1").unwrap().is_some());
    let again = SubscriptionGroupManager::load(path.clone(), true).unwrap();
    assert!(again.get("g1").is_none());
    assert_eq!(again.get("g2").unwrap().retry_max_times, 3);
    assert_eq!(again.data_version(), m.data_version());

    // Without auto-creation only CID_RMQ_SYS_ groups appear on their own.
    let no_auto = SubscriptionGroupManager::load(dir.path().join("other.json"), false).unwrap();
    assert!(no_auto.find_or_create("g3").is_none());
    assert!(no_auto.find_or_create("CID_RMQ_SYS_TRANS").is_some());

    // Apache's own file: missing fields take the defaults.
    fs::write(&path, br#"{"subscriptionGroupTable":{"old":{"groupName":"old","retryMaxTimes":5}},"dataVersion":{"counter":7,"timestamp":1}}"#)
        .unwrap();
    let apache = SubscriptionGroupManager::load(path, true).unwrap();
    let old = apache.get("old").unwrap();
    assert_eq!((old.retry_max_times, old.retry_queue_nums, old.consume_enable), (5, 1, true));
    assert_eq!(apache.data_version().counter, 7);
}

#[test]
fn offsets_round_trip_in_apaches_shape() {
    let dir = tempfile::tempdir().unwrap();
    let path = ConsumerOffsetManager::default_path(dir.path());
    let m = ConsumerOffsetManager::load(path.clone()).unwrap();
    assert_eq!(m.query("g", "T", 0), None);
    m.commit("g", "T", 0, 123);
    m.commit("g", "T", 1, 456);
    m.commit("g", "T", 1, 400);
    m.commit("g", "T", 2, -1);
    m.commit("g2", "T", 0, 7);
    m.commit("g", "U", 0, 9);
    assert!(!path.exists(), "commit does not write");
    assert_eq!(m.query("g", "T", 0), Some(123));
    assert_eq!(m.query("g", "T", 1), Some(400), "a lower offset is stored too");
    assert_eq!(m.query("g", "T", 2), Some(-1), "stores what it is given");
    assert_eq!(m.query_all("g", "T").len(), 3);
    assert!(m.query_all("nobody", "T").is_empty());
    assert_eq!(m.groups_of_topic("T").into_iter().collect::<Vec<_>>(), ["g", "g2"]);
    assert_eq!(m.topics_of_group("g").into_iter().collect::<Vec<_>>(), ["T", "U"]);
    assert_eq!(m.table().len(), 3);
    m.persist().unwrap();

    let json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(json["offsetTable"]["T@g"]["0"], 123);
    assert_eq!(json["offsetTable"]["T@g"]["1"], 400);
    assert_eq!(json["offsetTable"]["T@g2"]["0"], 7);
    assert_eq!(json.as_object().unwrap().len(), 1, "only offsetTable");

    let again = ConsumerOffsetManager::load(path.clone()).unwrap();
    assert_eq!(again.table(), m.table());

    again.remove_topic("T");
    assert!(again.groups_of_topic("T").is_empty());
    assert_eq!(again.query("g", "U", 0), Some(9));
    again.clone_offset("g", "g3", "U");
    assert_eq!(again.query("g3", "U", 0), Some(9));
    again.remove_group("g");
    assert_eq!(again.topics_of_group("g3").len(), 1);
    assert!(again.topics_of_group("g").is_empty());

    // An Apache broker's file: queue ids without quotes.
    fs::write(&path, b"{\n\t\"offsetTable\":{\n\t\t\"%RETRY%g@g\":{0:0},\n\t\t\"T@g\":{0:12,1:34}\n\t}\n}").unwrap();
    let apache = ConsumerOffsetManager::load(path).unwrap();
    assert_eq!(apache.query("g", "T", 1), Some(34));
    assert_eq!(apache.query("g", "%RETRY%g", 0), Some(0));
}

#[test]
fn topic_names_are_validated_as_apache_does() {
    for ok in ["%RETRY%g", "Topic_1-x", "a|b", "TBW102", "SCHEDULE_TOPIC_XXXX"] {
        assert_eq!(validate_topic(ok), Ok(()), "{ok}");
    }
    assert!(validate_topic(&"t".repeat(127)).is_ok());
    let illegal = "The specified topic contains illegal characters, allowing only ^[%|a-zA-Z0-9_-]+$";
    for bad in ["a b", "a/b", "a.b", "a@b", "tópico", "a\n"] {
        assert_eq!(validate_topic(bad), Err(illegal.to_string()), "{bad}");
    }
    assert_eq!(validate_topic(&"t".repeat(128)), Err("The specified topic is longer than topic max length.".into()));
    assert_eq!(validate_topic(""), Err("The specified topic is blank.".into()));
    assert_eq!(validate_topic("  "), Err("The specified topic is blank.".into()));

    assert_eq!(
        check_send_allowed(SCHEDULE_TOPIC),
        Err("Sending message to topic[SCHEDULE_TOPIC_XXXX] is forbidden.".into())
    );
    assert!(check_send_allowed(TBW102).is_ok());
    assert!(is_not_allowed_send_topic(OFFSET_MOVED_EVENT));
}
