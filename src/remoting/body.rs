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

// ---- Clients: heartbeats and connections ----
//
// HEART_BEAT / GET_CONSUMER_CONNECTION_LIST / GET_CONSUMER_LIST_BY_GROUP
// bodies (RocketMQ: HeartbeatData, ProducerData, ConsumerData,
// SubscriptionData, ConsumerConnection, Connection,
// GetConsumerListByGroupResponseBody). Read leniently, as the broker's
// fastjson does: rocketmq-client-cpp (and the Python clients built on it)
// sends enums as ordinals (`"consumeType":1`), `subVersion` as a string and
// leaves out fields it has no value for.

/// A TAG expression that takes every message (RocketMQ: SubscriptionData.SUB_ALL).
pub const SUB_ALL: &str = "*";
/// RocketMQ: ExpressionType.TAG.
pub const EXPRESSION_TYPE_TAG: &str = "TAG";
/// RocketMQ: ExpressionType.SQL92.
pub const EXPRESSION_TYPE_SQL92: &str = "SQL92";

/// ConsumeType constants by ordinal (pull, push).
pub const CONSUME_TYPES: [&str; 2] = ["CONSUME_ACTIVELY", "CONSUME_PASSIVELY"];
/// MessageModel constants by ordinal.
pub const MESSAGE_MODELS: [&str; 2] = ["BROADCASTING", "CLUSTERING"];
/// ConsumeFromWhere constants by ordinal (the middle three are deprecated).
pub const CONSUME_FROM_WHERES: [&str; 6] = [
    "CONSUME_FROM_LAST_OFFSET",
    "CONSUME_FROM_LAST_OFFSET_AND_FROM_MIN_WHEN_BOOT_FIRST",
    "CONSUME_FROM_MIN_OFFSET",
    "CONSUME_FROM_MAX_OFFSET",
    "CONSUME_FROM_FIRST_OFFSET",
    "CONSUME_FROM_TIMESTAMP",
];

/// Field readers for what clients other than Apache's Java one send.
mod lenient {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    use super::{CONSUME_FROM_WHERES, CONSUME_TYPES, MESSAGE_MODELS};
    use crate::remoting::command::LanguageCode;

    /// `null` reads as the default.
    pub fn or_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
        Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
    }

    /// A Java enum: its name, or its ordinal as fastjson also accepts.
    fn enum_name<'de, D: Deserializer<'de>>(d: D, names: &[&str]) -> Result<String, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(String::new()),
            Value::String(s) => Ok(s),
            Value::Number(n) => n
                .as_u64()
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| names.get(i))
                .map(|name| (*name).to_string())
                .ok_or_else(|| D::Error::custom(format!("no constant with ordinal {n} among {names:?}"))),
            other => Err(D::Error::custom(format!("expected an enum name or ordinal, found {other}"))),
        }
    }

    pub fn consume_type<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        enum_name(d, &CONSUME_TYPES)
    }

    pub fn message_model<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        enum_name(d, &MESSAGE_MODELS)
    }

    pub fn consume_from_where<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        enum_name(d, &CONSUME_FROM_WHERES)
    }

    /// A LanguageCode: its name, or its wire byte.
    pub fn language<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(String::new()),
            Value::String(s) => Ok(s),
            Value::Number(n) => n
                .as_u64()
                .and_then(|i| u8::try_from(i).ok())
                .map(|b| LanguageCode(b).name().to_string())
                .ok_or_else(|| D::Error::custom(format!("no language with code {n}"))),
            other => Err(D::Error::custom(format!("expected a language name or code, found {other}"))),
        }
    }

    /// A Java long: a number, or a string holding one (rocketmq-client-cpp's `subVersion`).
    pub fn long<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(0),
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
                .ok_or_else(|| D::Error::custom(format!("{n} is not a long"))),
            Value::String(s) => {
                let t = s.trim();
                if t.is_empty() {
                    Ok(0)
                } else {
                    t.parse().map_err(|_| D::Error::custom(format!("{s:?} is not a long")))
                }
            }
            other => Err(D::Error::custom(format!("expected a long, found {other}"))),
        }
    }
}

/// HEART_BEAT body: one client's producer and consumer groups.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HeartbeatData {
    #[serde(rename = "clientID", deserialize_with = "lenient::or_default")]
    pub client_id: String,
    #[serde(deserialize_with = "lenient::or_default")]
    pub producer_data_set: Vec<ProducerData>,
    #[serde(deserialize_with = "lenient::or_default")]
    pub consumer_data_set: Vec<ConsumerData>,
}

/// A producer group in a heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProducerData {
    #[serde(deserialize_with = "lenient::or_default")]
    pub group_name: String,
}

/// A consumer group in a heartbeat: how it consumes and what it subscribes to.
/// The enums are kept as their Apache constant names (`CONSUME_PASSIVELY`,
/// `CLUSTERING`, `CONSUME_FROM_FIRST_OFFSET`, ...); ordinals are read as names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumerData {
    #[serde(deserialize_with = "lenient::or_default")]
    pub group_name: String,
    #[serde(deserialize_with = "lenient::consume_type")]
    pub consume_type: String,
    #[serde(deserialize_with = "lenient::message_model")]
    pub message_model: String,
    #[serde(deserialize_with = "lenient::consume_from_where")]
    pub consume_from_where: String,
    #[serde(deserialize_with = "lenient::or_default")]
    pub subscription_data_set: Vec<SubscriptionData>,
    #[serde(deserialize_with = "lenient::or_default")]
    pub unit_mode: bool,
}

/// One topic a consumer group subscribes to, with its filter expression.
/// For TAG expressions `tags_set` holds the tags and `code_set` their Java
/// `String.hashCode()`s, which the ConsumeQueue stores as tags codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubscriptionData {
    #[serde(deserialize_with = "lenient::or_default")]
    pub class_filter_mode: bool,
    #[serde(deserialize_with = "lenient::or_default")]
    pub topic: String,
    #[serde(deserialize_with = "lenient::or_default")]
    pub sub_string: String,
    #[serde(deserialize_with = "lenient::or_default")]
    pub tags_set: BTreeSet<String>,
    #[serde(deserialize_with = "lenient::or_default")]
    pub code_set: BTreeSet<i32>,
    #[serde(deserialize_with = "lenient::long")]
    pub sub_version: i64,
    #[serde(deserialize_with = "lenient::or_default")]
    pub expression_type: String,
}

impl Default for SubscriptionData {
    /// As Apache's: version "now", a TAG expression. A heartbeat without
    /// `subVersion` (none seen) therefore reads as the newest version.
    fn default() -> Self {
        SubscriptionData {
            class_filter_mode: false,
            topic: String::new(),
            sub_string: String::new(),
            tags_set: BTreeSet::new(),
            code_set: BTreeSet::new(),
            sub_version: crate::common::time::now_millis(),
            expression_type: EXPRESSION_TYPE_TAG.to_string(),
        }
    }
}

impl SubscriptionData {
    /// The subscription to `topic` with TAG `expression` (RocketMQ:
    /// FilterAPI.buildSubscriptionData): `"*"` or `""` takes all; otherwise
    /// the `||`-separated tags, trimmed, empty ones skipped. An expression
    /// made of separators only is an error, as in Apache.
    pub fn build(topic: &str, expression: &str) -> Result<SubscriptionData, String> {
        let mut sd = SubscriptionData { topic: topic.to_string(), ..Default::default() };
        if expression.is_empty() || expression == SUB_ALL {
            sd.sub_string = SUB_ALL.to_string();
            return Ok(sd);
        }
        sd.sub_string = expression.to_string();
        let parts: Vec<&str> = expression.split("||").collect();
        if parts.iter().all(|p| p.is_empty()) {
            return Err(format!("subString split error: {expression:?} has no tags"));
        }
        for tag in parts.into_iter().map(str::trim).filter(|t| !t.is_empty()) {
            sd.code_set.insert(crate::common::message::tags_hash(tag) as i32);
            sd.tags_set.insert(tag.to_string());
        }
        Ok(sd)
    }

    /// A TAG expression (RocketMQ: ExpressionType.isTagType: absent, empty or "TAG").
    pub fn is_tag_type(&self) -> bool {
        self.expression_type.is_empty() || self.expression_type == EXPRESSION_TYPE_TAG
    }

    /// Whether a ConsumeQueue unit with tags code `code` passes this
    /// subscription's tag filter (RocketMQ: ExpressionMessageFilter.isMatchedByConsumeQueue
    /// for TAG): `"*"` takes all, else the code (as Java's `intValue()`) must be
    /// one of `code_set`. Class-filter and non-TAG (SQL92) subscriptions are
    /// not decided by tags codes and pass here.
    pub fn matches_tags_code(&self, code: i64) -> bool {
        if self.class_filter_mode || !self.is_tag_type() || self.sub_string == SUB_ALL {
            return true;
        }
        self.code_set.contains(&(code as i32))
    }
}

/// One client connection in GET_CONSUMER_CONNECTION_LIST (RocketMQ: Connection).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Connection {
    #[serde(deserialize_with = "lenient::or_default")]
    pub client_id: String,
    /// `ip:port` of the client's end.
    #[serde(deserialize_with = "lenient::or_default")]
    pub client_addr: String,
    /// A LanguageCode name (`JAVA`, `CPP`, ...).
    #[serde(deserialize_with = "lenient::language")]
    pub language: String,
    #[serde(deserialize_with = "lenient::or_default")]
    pub version: i32,
}

/// GET_CONSUMER_CONNECTION_LIST body: a consumer group's members and
/// subscriptions (RocketMQ: ConsumerConnection).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumerConnection {
    #[serde(deserialize_with = "lenient::or_default")]
    pub connection_set: Vec<Connection>,
    #[serde(deserialize_with = "lenient::or_default")]
    pub subscription_table: HashMap<String, SubscriptionData>,
    #[serde(deserialize_with = "lenient::consume_type")]
    pub consume_type: String,
    #[serde(deserialize_with = "lenient::message_model")]
    pub message_model: String,
    #[serde(deserialize_with = "lenient::consume_from_where")]
    pub consume_from_where: String,
}

impl ConsumerConnection {
    /// The oldest client version among the connections, `i32::MAX` for none
    /// (RocketMQ: computeMinVersion).
    pub fn min_version(&self) -> i32 {
        self.connection_set.iter().map(|c| c.version).min().unwrap_or(i32::MAX)
    }
}

/// GET_CONSUMER_LIST_BY_GROUP response body: the group's client ids.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GetConsumerListByGroupResponseBody {
    #[serde(deserialize_with = "lenient::or_default")]
    pub consumer_id_list: Vec<String>,
}

// ---- Orderly consumption: queue locks ----
//
// LOCK_BATCH_MQ / UNLOCK_BATCH_MQ bodies (RocketMQ: LockBatchRequestBody,
// UnlockBatchRequestBody, LockBatchResponseBody) and the MessageQueue they
// carry, which the admin bodies below use too. Java sends each `Set<MessageQueue>` as a JSON array.

/// One queue of a topic on one broker group (RocketMQ: MessageQueue). Ordered
/// by topic, then broker name, then queue id, as Apache compares them.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MessageQueue {
    #[serde(deserialize_with = "lenient::or_default")]
    pub topic: String,
    #[serde(deserialize_with = "lenient::or_default")]
    pub broker_name: String,
    #[serde(deserialize_with = "lenient::or_default")]
    pub queue_id: i32,
}

impl MessageQueue {
    pub fn new(topic: impl Into<String>, broker_name: impl Into<String>, queue_id: i32) -> Self {
        MessageQueue { topic: topic.into(), broker_name: broker_name.into(), queue_id }
    }
}

/// LOCK_BATCH_MQ request body: the queues `client_id` wants for `consumer_group`.
/// `onlyThisBroker` comes from 5.x clients (a 4.x broker only ever locks its own
/// table); it is kept when present and not written when absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LockBatchRequestBody {
    #[serde(deserialize_with = "lenient::or_default")]
    pub consumer_group: String,
    #[serde(deserialize_with = "lenient::or_default")]
    pub client_id: String,
    #[serde(deserialize_with = "lenient::or_default")]
    pub mq_set: BTreeSet<MessageQueue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub only_this_broker: Option<bool>,
}

/// UNLOCK_BATCH_MQ request body: the same fields as the lock request (the
/// queues `client_id` gives back).
pub type UnlockBatchRequestBody = LockBatchRequestBody;

/// LOCK_BATCH_MQ response body: the requested queues the requester now holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LockBatchResponseBody {
    #[serde(rename = "lockOKMQSet", deserialize_with = "lenient::or_default")]
    pub lock_ok_mq_set: BTreeSet<MessageQueue>,
}

// ---- Admin: statistics and tables (RocketMQ: GroupList, MessageQueue,
// TopicOffset, TopicStatsTable, OffsetWrapper, ConsumeStats,
// ConsumerOffsetSerializeWrapper, the delay offset table).
//
// Apache's fastjson writes a map keyed by MessageQueue with each key as a
// JSON object, unquoted: `{"offsetTable":{{"brokerName":"b","queueId":0,
// "topic":"T"}:{"maxOffset":3,...}}}`. That is not standard JSON, but it is
// what Apache's admin tools read; `encode`/`decode` below write and read it.

/// QUERY_TOPIC_CONSUME_BY_WHO body: group names (RocketMQ: GroupList).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GroupList {
    pub group_list: BTreeSet<String>,
}

/// A MessageQueue key as fastjson writes it: fields in alphabetical order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MqKey<'a> {
    broker_name: &'a str,
    queue_id: i32,
    topic: &'a str,
}

/// A queue's offsets in GET_TOPIC_STATS_INFO (RocketMQ: TopicOffset).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicOffset {
    pub last_update_timestamp: i64,
    pub max_offset: i64,
    pub min_offset: i64,
}

/// A queue's offsets in GET_CONSUME_STATS (RocketMQ: OffsetWrapper).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OffsetWrapper {
    pub broker_offset: i64,
    pub consumer_offset: i64,
    pub last_timestamp: i64,
}

/// A table keyed by queue in fastjson's form,
/// `{"offsetTable":{{mq}:value,...}}`, queues in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqTable<V> {
    pub offset_table: Vec<(MessageQueue, V)>,
}

impl<V> Default for MqTable<V> {
    fn default() -> Self {
        MqTable { offset_table: Vec::new() }
    }
}

impl<V: Serialize + serde::de::DeserializeOwned> MqTable<V> {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = b"{\"offsetTable\":".to_vec();
        out.extend_from_slice(&encode_mq_map(&self.offset_table));
        out.push(b'}');
        out
    }

    /// Reads fastjson's form (and the same with standard-JSON values).
    pub fn decode(body: &[u8]) -> Result<Self, String> {
        let mut t = MqTable::default();
        for (key, value) in mq_json::object(body)? {
            if key == "offsetTable" {
                t.offset_table = mq_json::mq_map(&value)?;
            }
        }
        Ok(t)
    }
}

/// GET_TOPIC_STATS_INFO body (RocketMQ: TopicStatsTable).
pub type TopicStatsTable = MqTable<TopicOffset>;

/// Offsets by queue: the RESET_CONSUMER_CLIENT_OFFSET body (RocketMQ:
/// ResetOffsetBody) and a broadcasting consumer's `offsets.json` (RocketMQ:
/// OffsetSerializeWrapper).
pub type OffsetTable = MqTable<i64>;

/// One queue's ProcessQueue in a consumer's running info (RocketMQ: ProcessQueueInfo).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProcessQueueInfo {
    pub commit_offset: i64,
    pub cached_msg_min_offset: i64,
    pub cached_msg_max_offset: i64,
    pub cached_msg_count: i32,
    #[serde(rename = "cachedMsgSizeInMiB")]
    pub cached_msg_size_in_mib: i32,
    pub transaction_msg_min_offset: i64,
    pub transaction_msg_max_offset: i64,
    pub transaction_msg_count: i32,
    pub locked: bool,
    pub try_unlock_times: i64,
    pub last_lock_timestamp: i64,
    /// Apache's spelling.
    pub droped: bool,
    pub last_pull_timestamp: i64,
    pub last_consume_timestamp: i64,
}

/// A topic's consume rates in a consumer's running info (RocketMQ: ConsumeStatus).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumeStatus {
    #[serde(rename = "pullRT")]
    pub pull_rt: f64,
    #[serde(rename = "pullTPS")]
    pub pull_tps: f64,
    #[serde(rename = "consumeRT")]
    pub consume_rt: f64,
    #[serde(rename = "consumeOKTPS")]
    pub consume_ok_tps: f64,
    #[serde(rename = "consumeFailedTPS")]
    pub consume_failed_tps: f64,
    #[serde(rename = "consumeFailedMsgs")]
    pub consume_failed_msgs: i64,
}

/// GET_CONSUMER_RUNNING_INFO body (RocketMQ: ConsumerRunningInfo): settings,
/// subscriptions, every ProcessQueue, rates, and a thread dump when asked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsumerRunningInfo {
    pub properties: BTreeMap<String, String>,
    pub subscription_set: Vec<SubscriptionData>,
    pub mq_table: Vec<(MessageQueue, ProcessQueueInfo)>,
    pub status_table: BTreeMap<String, ConsumeStatus>,
    pub jstack: Option<String>,
}

impl ConsumerRunningInfo {
    /// fastjson's form, keys in its (alphabetical) order.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = b"{".to_vec();
        if let Some(j) = &self.jstack {
            out.extend_from_slice(b"\"jstack\":");
            out.extend_from_slice(&crate::remoting::json::to_body(j));
            out.push(b',');
        }
        out.extend_from_slice(b"\"mqTable\":");
        out.extend_from_slice(&encode_mq_map(&self.mq_table));
        out.extend_from_slice(b",\"properties\":");
        out.extend_from_slice(&crate::remoting::json::to_body(&self.properties));
        out.extend_from_slice(b",\"statusTable\":");
        out.extend_from_slice(&crate::remoting::json::to_body(&self.status_table));
        out.extend_from_slice(b",\"subscriptionSet\":");
        out.extend_from_slice(&crate::remoting::json::to_body(&self.subscription_set));
        out.push(b'}');
        out
    }

    pub fn decode(body: &[u8]) -> Result<Self, String> {
        let mut info = ConsumerRunningInfo::default();
        for (key, value) in mq_json::object(body)? {
            let field = |e: serde_json::Error| format!("{key}: {e}");
            match key.as_str() {
                "jstack" => info.jstack = serde_json::from_slice(&value).map_err(field)?,
                "mqTable" => info.mq_table = mq_json::mq_map(&value)?,
                "properties" => info.properties = serde_json::from_slice(&value).map_err(field)?,
                "statusTable" => info.status_table = serde_json::from_slice(&value).map_err(field)?,
                "subscriptionSet" => info.subscription_set = serde_json::from_slice(&value).map_err(field)?,
                _ => {}
            }
        }
        Ok(info)
    }
}

/// CONSUME_MESSAGE_DIRECTLY reply body (RocketMQ: ConsumeMessageDirectlyResult).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumeMessageDirectlyResult {
    pub auto_commit: bool,
    /// A CMResult name (`CR_SUCCESS`, `CR_LATER`, ...).
    pub consume_result: String,
    pub order: bool,
    pub remark: String,
    pub spent_time_mills: i64,
}

/// GET_CONSUME_STATS body (RocketMQ: ConsumeStats), queues in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsumeStats {
    pub offset_table: Vec<(MessageQueue, OffsetWrapper)>,
    pub consume_tps: f64,
}

impl ConsumeStats {
    /// fastjson's form: `{"consumeTps":0.0,"offsetTable":{{mq}:{offsets},...}}`.
    pub fn encode(&self) -> Vec<u8> {
        let tps = if self.consume_tps.is_finite() { self.consume_tps } else { 0.0 };
        let mut out = format!("{{\"consumeTps\":{tps:?},\"offsetTable\":").into_bytes();
        out.extend_from_slice(&encode_mq_map(&self.offset_table));
        out.push(b'}');
        out
    }

    pub fn decode(body: &[u8]) -> Result<Self, String> {
        let mut s = ConsumeStats::default();
        for (key, value) in mq_json::object(body)? {
            match key.as_str() {
                "offsetTable" => s.offset_table = mq_json::mq_map(&value)?,
                "consumeTps" => {
                    s.consume_tps = serde_json::from_slice(&value).map_err(|e| format!("consumeTps: {e}"))?
                }
                _ => {}
            }
        }
        Ok(s)
    }

    /// Sum over queues of brokerOffset - consumerOffset (RocketMQ: computeTotalDiff).
    pub fn total_diff(&self) -> i64 {
        self.offset_table.iter().map(|(_, w)| w.broker_offset - w.consumer_offset).sum()
    }
}

/// `{mq}:{value},...` inside braces, each key a MessageQueue object.
fn encode_mq_map<V: Serialize>(entries: &[(MessageQueue, V)]) -> Vec<u8> {
    let mut out = vec![b'{'];
    for (i, (mq, v)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let key = MqKey { broker_name: &mq.broker_name, queue_id: mq.queue_id, topic: &mq.topic };
        out.extend_from_slice(&crate::remoting::json::to_body(&key));
        out.push(b':');
        out.extend_from_slice(&crate::remoting::json::to_body(v));
    }
    out.push(b'}');
    out
}

/// A reader for objects whose keys may be JSON objects (fastjson's maps
/// keyed by MessageQueue).
mod mq_json {
    use serde::de::DeserializeOwned;

    use super::MessageQueue;

    fn skip_ws(b: &[u8], pos: &mut usize) {
        while b.get(*pos).is_some_and(|c| c.is_ascii_whitespace()) {
            *pos += 1;
        }
    }

    fn expect(b: &[u8], pos: &mut usize, c: u8) -> Result<(), String> {
        skip_ws(b, pos);
        if b.get(*pos) == Some(&c) {
            *pos += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {}", c as char, *pos))
        }
    }

    /// The raw bytes of the value at `pos`: a standard JSON value, or an
    /// object whose keys are objects (read recursively).
    fn raw_value<'a>(b: &'a [u8], pos: &mut usize) -> Result<&'a [u8], String> {
        skip_ws(b, pos);
        let start = *pos;
        let rest = b.get(start..).ok_or("unexpected end")?;
        let mut it = serde_json::Deserializer::from_slice(rest).into_iter::<serde_json::Value>();
        match it.next() {
            Some(Ok(_)) => {
                *pos = start + it.byte_offset();
                Ok(&b[start..*pos])
            }
            _ if rest.first() == Some(&b'{') => {
                let mut p = start;
                entries(b, &mut p)?;
                *pos = p;
                Ok(&b[start..p])
            }
            Some(Err(e)) => Err(format!("at byte {start}: {e}")),
            None => Err("unexpected end".into()),
        }
    }

    /// A raw key and its raw value.
    type Entry<'a> = (&'a [u8], &'a [u8]);

    /// The (raw key, raw value) pairs of the object at `pos`.
    fn entries<'a>(b: &'a [u8], pos: &mut usize) -> Result<Vec<Entry<'a>>, String> {
        expect(b, pos, b'{')?;
        let mut out = Vec::new();
        skip_ws(b, pos);
        if b.get(*pos) == Some(&b'}') {
            *pos += 1;
            return Ok(out);
        }
        loop {
            let k = raw_value(b, pos)?;
            expect(b, pos, b':')?;
            let v = raw_value(b, pos)?;
            out.push((k, v));
            skip_ws(b, pos);
            match b.get(*pos) {
                Some(b',') => *pos += 1,
                Some(b'}') => {
                    *pos += 1;
                    return Ok(out);
                }
                _ => return Err(format!("expected ',' or '}}' at byte {}", *pos)),
            }
        }
    }

    /// A top-level object: string keys, raw values.
    pub fn object(body: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
        let mut pos = 0;
        entries(body, &mut pos)?
            .into_iter()
            .map(|(k, v)| {
                let key: String = serde_json::from_slice(k).map_err(|e| format!("bad key: {e}"))?;
                Ok((key, v.to_vec()))
            })
            .collect()
    }

    /// A map keyed by MessageQueue objects (or by strings holding one).
    pub fn mq_map<V: DeserializeOwned>(raw: &[u8]) -> Result<Vec<(MessageQueue, V)>, String> {
        let mut pos = 0;
        entries(raw, &mut pos)?
            .into_iter()
            .map(|(k, v)| {
                let mq = match serde_json::from_slice::<MessageQueue>(k) {
                    Ok(mq) => mq,
                    Err(e) => {
                        let s: String = serde_json::from_slice(k).map_err(|_| format!("bad queue key: {e}"))?;
                        serde_json::from_str(&s).map_err(|e| format!("bad queue key: {e}"))?
                    }
                };
                let value = crate::remoting::json::from_body(v).map_err(|e| format!("bad queue value: {e}"))?;
                Ok((mq, value))
            })
            .collect()
    }
}

/// GET_ALL_CONSUMER_OFFSET body, the consumerOffset.json content: offsets
/// by `topic@group`, then by queue id (RocketMQ: ConsumerOffsetSerializeWrapper).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumerOffsetSerializeWrapper {
    pub offset_table: BTreeMap<String, BTreeMap<i32, i64>>,
}

/// GET_ALL_DELAY_OFFSET body, the delayOffset.json content: offsets by
/// delay level.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DelayOffsetSerializeWrapper {
    pub offset_table: BTreeMap<i32, i64>,
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
