//! The broker's topics (RocketMQ: TopicConfigManager), persisted in
//! `<storePathRootDir>/config/topics.json` as
//! `{"topicConfigTable":{name: TopicConfig}, "dataVersion":{...}}`. The
//! topic-name rules (`common::topic`) are re-exported here.
//!
//! Loading starts from the system topics Apache's broker creates in its
//! constructor, then lays the file's topics over them (a topic in the file
//! wins) and takes the file's data version. Every change bumps the data
//! version (counter + 1, timestamp now) and rewrites the file atomically.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};

use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::common::file::{read_parsed_with_backup, write_atomically};
use crate::common::time::now_millis;
use crate::remoting::body::perm::{PERM_INHERIT, PERM_READ, PERM_WRITE};
use crate::remoting::body::{DataVersion, KvTable, TopicConfig, TopicConfigSerializeWrapper};
use crate::remoting::json::from_body;

pub use crate::common::topic::*;

/// `<storePathRootDir>/config/<name>` (RocketMQ: BrokerPathConfigHelper).
pub fn config_file(store_path_root_dir: &Path, name: &str) -> PathBuf {
    store_path_root_dir.join("config").join(name)
}

/// Reads a broker config file, or its `.bak` when the file is missing,
/// empty or malformed. `None` when neither exists; a malformed file with no
/// usable `.bak` is an `InvalidData` error naming the file.
pub(crate) fn read_config<T: DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    read_parsed_with_backup(path, from_body::<T>)
}

/// Pretty-printed JSON, as Apache's brokers write their config files.
pub(crate) fn to_pretty<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    serde_json::to_vec_pretty(value).map_err(io::Error::other)
}

/// The next data version (RocketMQ: DataVersion.nextVersion).
pub(crate) fn next_version(v: &mut DataVersion) {
    v.counter += 1;
    v.timestamp = now_millis();
}

/// Broker settings that decide the system topics (RocketMQ: BrokerConfig).
#[derive(Debug, Clone)]
pub struct TopicConfigOptions {
    /// brokerClusterName (default `DefaultCluster`).
    pub cluster_name: String,
    /// brokerName.
    pub broker_name: String,
    /// defaultTopicQueueNums (default 8): the queues of TBW102.
    pub default_topic_queue_nums: i32,
    /// autoCreateTopicEnable (default true): whether TBW102 exists and may
    /// be inherited from.
    pub auto_create_topic_enable: bool,
    /// clusterTopicEnable (default true): the cluster-name topic is readable
    /// and writable.
    pub cluster_topic_enable: bool,
    /// brokerTopicEnable (default true): the broker-name topic is readable
    /// and writable.
    pub broker_topic_enable: bool,
    /// msgTraceTopicName when traceTopicEnable (default: off, `None`).
    pub trace_topic: Option<String>,
}

impl Default for TopicConfigOptions {
    fn default() -> Self {
        TopicConfigOptions {
            cluster_name: "DefaultCluster".into(),
            broker_name: String::new(),
            default_topic_queue_nums: 8,
            auto_create_topic_enable: true,
            cluster_topic_enable: true,
            broker_topic_enable: true,
            trace_topic: None,
        }
    }
}

struct State {
    table: HashMap<String, TopicConfig>,
    data_version: DataVersion,
}

/// The file's shape, written with sorted topic names.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TopicsFile<'a> {
    topic_config_table: BTreeMap<&'a str, &'a TopicConfig>,
    data_version: &'a DataVersion,
}

/// The broker's topic table (RocketMQ: TopicConfigManager). Thread-safe.
pub struct TopicConfigManager {
    path: PathBuf,
    auto_create_topic_enable: bool,
    /// Topics this broker adds to the system set: its cluster name, broker
    /// name, reply topic and trace topic.
    own_system_topics: HashSet<String>,
    state: RwLock<State>,
    /// Held while writing the file, so writes happen one at a time and each
    /// writes the table as it is when the write starts.
    persist_lock: Mutex<()>,
}

fn topic(name: &str, queues: i32, perm: i32) -> TopicConfig {
    TopicConfig {
        topic_name: name.to_string(),
        read_queue_nums: queues,
        write_queue_nums: queues,
        perm,
        ..Default::default()
    }
}

/// The topics Apache's broker creates before reading `topics.json`.
fn system_topics(o: &TopicConfigOptions) -> Vec<TopicConfig> {
    let rw = PERM_READ | PERM_WRITE;
    let default_queues = TopicConfig::default().read_queue_nums;
    let mut v = vec![topic(SELF_TEST_TOPIC, 1, rw)];
    if o.auto_create_topic_enable {
        v.push(topic(TBW102, o.default_topic_queue_nums, PERM_INHERIT | rw));
    }
    v.push(topic(BENCHMARK_TOPIC, 1024, rw));
    // An empty name (not configured) makes no topic.
    if !o.cluster_name.is_empty() {
        let cluster_perm = if o.cluster_topic_enable { PERM_INHERIT | rw } else { PERM_INHERIT };
        v.push(topic(&o.cluster_name, default_queues, cluster_perm));
    }
    if !o.broker_name.is_empty() {
        let broker_perm = if o.broker_topic_enable { PERM_INHERIT | rw } else { PERM_INHERIT };
        v.push(topic(&o.broker_name, 1, broker_perm));
    }
    v.push(topic(OFFSET_MOVED_EVENT, 1, rw));
    v.push(topic(SCHEDULE_TOPIC, SCHEDULE_TOPIC_QUEUE_NUM, rw));
    if let Some(trace) = &o.trace_topic {
        v.push(topic(trace, 1, rw));
    }
    v.push(topic(&reply_topic(&o.cluster_name), 1, rw));
    v
}

impl TopicConfigManager {
    /// `<storePathRootDir>/config/topics.json`.
    pub fn default_path(store_path_root_dir: &Path) -> PathBuf {
        config_file(store_path_root_dir, "topics.json")
    }

    /// Loads `path` (the `topics.json` file itself) with Apache's defaults
    /// for the other system-topic settings (cluster and broker topics
    /// enabled, no trace topic).
    pub fn load(
        path: PathBuf,
        cluster_name: &str,
        broker_name: &str,
        default_topic_queue_nums: i32,
        auto_create_topic_enable: bool,
    ) -> io::Result<Self> {
        let options = TopicConfigOptions {
            cluster_name: cluster_name.to_string(),
            broker_name: broker_name.to_string(),
            default_topic_queue_nums,
            auto_create_topic_enable,
            ..Default::default()
        };
        Self::load_with(path, &options)
    }

    /// Creates the system topics, then lays the file (or its `.bak` when
    /// the file is missing or empty) over them. A missing file is no
    /// error; a malformed one is, naming the file. Nothing is written.
    pub fn load_with(path: PathBuf, options: &TopicConfigOptions) -> io::Result<Self> {
        let mut table = HashMap::new();
        for tc in system_topics(options) {
            table.insert(tc.topic_name.clone(), tc);
        }
        let mut data_version = DataVersion { counter: 0, timestamp: now_millis() };
        if let Some(file) = read_config::<TopicConfigSerializeWrapper>(&path)? {
            for (name, mut tc) in file.topic_config_table {
                if tc.topic_name.is_empty() {
                    tc.topic_name = name.clone();
                }
                table.insert(name, tc);
            }
            data_version = file.data_version;
        }
        let own_system_topics: HashSet<String> = [&options.cluster_name, &options.broker_name]
            .into_iter()
            .chain(options.trace_topic.as_ref())
            .filter(|name| !name.is_empty())
            .cloned()
            .chain([reply_topic(&options.cluster_name)])
            .collect();
        Ok(TopicConfigManager {
            path,
            auto_create_topic_enable: options.auto_create_topic_enable,
            own_system_topics,
            state: RwLock::new(State { table, data_version }),
            persist_lock: Mutex::new(()),
        })
    }

    /// The file this manager persists to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn select(&self, topic: &str) -> Option<TopicConfig> {
        self.state.read().table.get(topic).cloned()
    }

    /// Every topic, sorted by name.
    pub fn all(&self) -> Vec<TopicConfig> {
        let mut v: Vec<TopicConfig> = self.state.read().table.values().cloned().collect();
        v.sort_by(|a, b| a.topic_name.cmp(&b.topic_name));
        v
    }

    pub fn data_version(&self) -> DataVersion {
        self.state.read().data_version.clone()
    }

    /// Table and data version as one consistent snapshot, for
    /// REGISTER_BROKER and GET_ALL_TOPIC_CONFIG.
    pub fn wrapper(&self) -> TopicConfigSerializeWrapper {
        let s = self.state.read();
        TopicConfigSerializeWrapper { topic_config_table: s.table.clone(), data_version: s.data_version.clone() }
    }

    /// Creates or replaces `tc` (RocketMQ: updateTopicConfig), bumps the
    /// data version and persists.
    pub fn update(&self, tc: TopicConfig) -> io::Result<()> {
        {
            let mut s = self.state.write();
            match s.table.insert(tc.topic_name.clone(), tc.clone()) {
                Some(old) => log::info!("update topic config, old: {old:?} new: {tc:?}"),
                None => log::info!("create new topic {tc:?}"),
            }
            next_version(&mut s.data_version);
        }
        self.persist()
    }

    /// Removes `topic` (RocketMQ: deleteTopicConfig); bumps the data version
    /// and persists only when it existed.
    pub fn delete(&self, topic: &str) -> io::Result<Option<TopicConfig>> {
        let old = {
            let mut s = self.state.write();
            let old = s.table.remove(topic);
            if old.is_some() {
                next_version(&mut s.data_version);
            }
            old
        };
        match &old {
            Some(tc) => {
                log::info!("delete topic config OK, topic: {tc:?}");
                self.persist()?;
            }
            None => log::warn!("delete topic config failed, topic: {topic} not exists"),
        }
        Ok(old)
    }

    /// RocketMQ: createTopicInSendMessageMethod. The existing config when
    /// `topic` exists; otherwise, when `default_topic` exists and is
    /// inheritable, creates `topic` with min(`client_default_queue_nums`,
    /// its write queues) queues (at least 0), its perm without
    /// PERM_INHERIT, its filter type and `topic_sys_flag`, bumps the data
    /// version and persists; `None` when not allowed. With
    /// autoCreateTopicEnable off, TBW102 (if the file still has it) loses
    /// PERM_INHERIT first, as in Apache, so nothing is created from it.
    /// Compare [`Self::data_version`] before and after to learn whether a
    /// topic was created (the broker then registers with the name servers).
    /// On a persist error the topic stays created in memory.
    pub fn create_in_send(
        &self,
        topic: &str,
        default_topic: &str,
        client_default_queue_nums: i32,
        topic_sys_flag: i32,
    ) -> io::Result<Option<TopicConfig>> {
        let created = {
            let mut s = self.state.write();
            if let Some(tc) = s.table.get(topic) {
                return Ok(Some(tc.clone()));
            }
            let auto_create = self.auto_create_topic_enable;
            let Some(default_tc) = s.table.get_mut(default_topic) else {
                log::warn!("Create new topic {topic} failed: the default topic {default_topic} does not exist");
                return Ok(None);
            };
            if default_topic == TBW102 && !auto_create {
                default_tc.perm = PERM_READ | PERM_WRITE;
            }
            if default_tc.perm & PERM_INHERIT != PERM_INHERIT {
                log::warn!(
                    "Create new topic {topic} failed: the default topic {default_topic} has no inherit perm ({})",
                    default_tc.perm
                );
                return Ok(None);
            }
            let queue_nums = client_default_queue_nums.min(default_tc.write_queue_nums).max(0);
            let tc = TopicConfig {
                topic_name: topic.to_string(),
                read_queue_nums: queue_nums,
                write_queue_nums: queue_nums,
                perm: default_tc.perm & !PERM_INHERIT,
                topic_filter_type: default_tc.topic_filter_type.clone(),
                topic_sys_flag,
                order: false,
            };
            log::info!("Create new topic by default topic {default_topic}: {tc:?}");
            s.table.insert(topic.to_string(), tc.clone());
            next_version(&mut s.data_version);
            tc
        };
        self.persist()?;
        Ok(Some(created))
    }

    /// RocketMQ: createTopicInSendMessageBackMethod, for `%RETRY%group` and
    /// `%DLQ%group` topics (and TRANS_CHECK_MAX_TIME_TOPIC). The existing
    /// config when `topic` exists; otherwise creates it with `queue_nums`
    /// read and write queues, `perm` and `topic_sys_flag`, bumps the data
    /// version and persists.
    pub fn create_in_send_back(
        &self,
        topic: &str,
        queue_nums: i32,
        perm: i32,
        topic_sys_flag: i32,
    ) -> io::Result<TopicConfig> {
        if let Some(tc) = self.select(topic) {
            return Ok(tc);
        }
        let created = {
            let mut s = self.state.write();
            if let Some(tc) = s.table.get(topic) {
                return Ok(tc.clone());
            }
            let tc = TopicConfig {
                topic_name: topic.to_string(),
                read_queue_nums: queue_nums,
                write_queue_nums: queue_nums,
                perm,
                topic_sys_flag,
                ..Default::default()
            };
            log::info!("create new topic {tc:?}");
            s.table.insert(topic.to_string(), tc.clone());
            next_version(&mut s.data_version);
            tc
        };
        self.persist()?;
        Ok(created)
    }

    /// Marks exactly the topics named in the name server's
    /// ORDER_TOPIC_CONFIG table as ordered (RocketMQ:
    /// updateOrderTopicConfig); bumps the data version and persists when
    /// anything changed.
    pub fn update_order_topic_config(&self, order_topics: &KvTable) -> io::Result<()> {
        let changed = {
            let mut s = self.state.write();
            let mut changed = false;
            for (name, tc) in s.table.iter_mut() {
                let order = order_topics.table.contains_key(name);
                if tc.order != order {
                    tc.order = order;
                    changed = true;
                    log::info!("update order topic config, topic={name}, order={order}");
                }
            }
            if changed {
                next_version(&mut s.data_version);
            }
            changed
        };
        if changed { self.persist() } else { Ok(()) }
    }

    pub fn is_order_topic(&self, topic: &str) -> bool {
        self.state.read().table.get(topic).is_some_and(|tc| tc.order)
    }

    /// Writes the table and data version to the file.
    pub fn persist(&self) -> io::Result<()> {
        let _writing = self.persist_lock.lock();
        let bytes = {
            let s = self.state.read();
            let file = TopicsFile {
                topic_config_table: s.table.iter().map(|(k, v)| (k.as_str(), v)).collect(),
                data_version: &s.data_version,
            };
            to_pretty(&file)?
        };
        write_atomically(&self.path, &bytes)
    }

    /// The fixed system topics and any `rmq_sys_` topic (RocketMQ:
    /// TopicValidator.isSystemTopic without the names a broker adds; see
    /// [`Self::is_system`]).
    pub fn is_system_topic(topic: &str) -> bool {
        SYSTEM_TOPICS.contains(&topic) || topic.starts_with(SYSTEM_TOPIC_PREFIX)
    }

    /// [`Self::is_system_topic`] plus this broker's cluster-name,
    /// broker-name, reply and trace topics, as Apache's broker registers
    /// them as system topics.
    pub fn is_system(&self, topic: &str) -> bool {
        Self::is_system_topic(topic) || self.own_system_topics.contains(topic)
    }

    /// The check of UPDATE_AND_CREATE_TOPIC and DELETE_TOPIC_IN_BROKER; the
    /// error is Apache's remark, answered with code SYSTEM_ERROR.
    pub fn check_not_system(&self, topic: &str) -> Result<(), String> {
        if self.is_system(topic) {
            return Err(format!("The topic[{topic}] is conflict with system topic."));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn illegal_characters() {
        assert!(!is_topic_or_group_illegal("%RETRY%a|b_c-D9"));
        assert!(is_topic_or_group_illegal("a.b"));
        assert!(is_topic_or_group_illegal("é"));
        assert_eq!(validate_topic(""), Err("The specified topic is blank.".into()));
        assert!(validate_topic(&"a".repeat(127)).is_ok());
    }
}
