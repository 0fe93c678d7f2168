//! JSON command bodies shared by name server, broker and client, with
//! Apache's field names (RocketMQ: TopicRouteData, QueueData, BrokerData,
//! ClusterInfo, TopicList, KVTable, RegisterBrokerBody, TopicConfig,
//! DataVersion). Read with [`crate::remoting::json::from_body`], which also
//! accepts the unquoted integer keys of older name servers.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

/// The broker id of a master (RocketMQ: MixAll.MASTER_ID).
pub const MASTER_ID: i64 = 0;

/// Permission bits (RocketMQ: PermName).
pub mod perm {
    pub const PERM_PRIORITY: i32 = 0x1 << 3;
    pub const PERM_READ: i32 = 0x1 << 2;
    pub const PERM_WRITE: i32 = 0x1 << 1;
    pub const PERM_INHERIT: i32 = 0x1;

    pub fn is_readable(p: i32) -> bool {
        p & PERM_READ == PERM_READ
    }
    pub fn is_writeable(p: i32) -> bool {
        p & PERM_WRITE == PERM_WRITE
    }
}

/// A version stamp brokers send with their topic configs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DataVersion {
    pub counter: i64,
    pub timestamp: i64,
}

/// One topic as a broker keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicConfig {
    pub topic_name: String,
    pub read_queue_nums: i32,
    pub write_queue_nums: i32,
    pub perm: i32,
    pub topic_filter_type: String,
    pub topic_sys_flag: i32,
    pub order: bool,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            topic_name: String::new(),
            read_queue_nums: 16,
            write_queue_nums: 16,
            perm: perm::PERM_READ | perm::PERM_WRITE,
            topic_filter_type: "SINGLE_TAG".into(),
            topic_sys_flag: 0,
            order: false,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicConfigSerializeWrapper {
    pub topic_config_table: HashMap<String, TopicConfig>,
    pub data_version: DataVersion,
}

/// REGISTER_BROKER body (uncompressed form).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RegisterBrokerBody {
    pub topic_config_serialize_wrapper: TopicConfigSerializeWrapper,
    pub filter_server_list: Vec<String>,
}

/// A topic's queues on one broker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct QueueData {
    pub broker_name: String,
    pub read_queue_nums: i32,
    pub write_queue_nums: i32,
    pub perm: i32,
    pub topic_sys_flag: i32,
}

/// A broker group: its name, cluster and addresses by broker id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BrokerData {
    pub cluster: String,
    pub broker_name: String,
    pub broker_addrs: BTreeMap<i64, String>,
}

impl BrokerData {
    /// The master's address, else any slave's (RocketMQ: selectBrokerAddr).
    pub fn select_broker_addr(&self) -> Option<&str> {
        self.broker_addrs.get(&MASTER_ID).or_else(|| self.broker_addrs.values().next()).map(String::as_str)
    }
}

/// GET_ROUTEINFO_BY_TOPIC body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicRouteData {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_topic_conf: Option<String>,
    pub queue_datas: Vec<QueueData>,
    pub broker_datas: Vec<BrokerData>,
    pub filter_server_table: HashMap<String, Vec<String>>,
}

/// GET_BROKER_CLUSTER_INFO body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterInfo {
    pub broker_addr_table: HashMap<String, BrokerData>,
    pub cluster_addr_table: HashMap<String, BTreeSet<String>>,
}

/// Topic list bodies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicList {
    pub topic_list: BTreeSet<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker_addr: Option<String>,
}

/// GET_KVLIST_BY_NAMESPACE and REGISTER_BROKER reply body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KvTable {
    pub table: HashMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remoting::json::{from_body, to_body};

    #[test]
    fn route_data_reads_legacy_and_standard_json_and_writes_standard() {
        let legacy = br#"{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911",1:"127.0.0.1:10921"},"brokerName":"broker-a","cluster":"DefaultCluster"}],"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}"#;
        let r: TopicRouteData = from_body(legacy).unwrap();
        assert_eq!(r.broker_datas[0].select_broker_addr(), Some("127.0.0.1:10911"));
        assert_eq!(r.queue_datas[0].write_queue_nums, 4);
        let out = String::from_utf8(to_body(&r)).unwrap();
        assert!(out.contains(r#""brokerAddrs":{"0":"127.0.0.1:10911","1":"127.0.0.1:10921"}"#), "{out}");
        assert!(!out.contains("orderTopicConf"));
        let again: TopicRouteData = from_body(out.as_bytes()).unwrap();
        assert_eq!(again, r);
    }
}
