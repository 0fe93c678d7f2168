//! Admin operations over the wire (RocketMQ: DefaultMQAdminExt and the
//! mqadmin sub-commands): routes, cluster and topic lists, topic create and
//! delete, topic and broker statistics, consumer progress, view by message id,
//! and text renderers laid out as mqadmin prints them.
//!
//! One blocking [`Admin`] owns one [`RemotingClient`]. Name server requests go
//! to the configured name servers in order until one answers; broker requests
//! go to the address the route or cluster info names.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

use crate::common::message::{self, MessageExt};
use crate::common::time::{format_utc_millis, now_millis};
use crate::remoting::body::{
    ClusterInfo, ConsumeStats, KvTable, MASTER_ID, MessageQueue, OffsetWrapper, TopicConfig, TopicList, TopicOffset,
    TopicRouteData, TopicStatsTable, perm,
};
use crate::remoting::code::{request, response};
use crate::remoting::headers::{
    CreateTopicRequestHeader, DeleteTopicFromNamesrvRequestHeader, DeleteTopicRequestHeader,
    GetConsumeStatsRequestHeader, GetRouteInfoRequestHeader, PutKvConfigRequestHeader, TopicRequestHeader,
    ViewMessageRequestHeader,
};
use crate::remoting::json::from_body;
use crate::remoting::{ClientConfig, RemotingClient, RemotingCommand, RemotingError};

/// RocketMQ: MixAll.RETRY_GROUP_TOPIC_PREFIX.
pub const RETRY_GROUP_TOPIC_PREFIX: &str = "%RETRY%";
/// RocketMQ: MixAll.DLQ_GROUP_TOPIC_PREFIX.
pub const DLQ_GROUP_TOPIC_PREFIX: &str = "%DLQ%";
/// The topic new topics inherit from (RocketMQ: TopicValidator.AUTO_CREATE_TOPIC_KEY_TOPIC).
pub const DEFAULT_TOPIC: &str = "TBW102";
/// The KV namespace of order topic configs (RocketMQ: NamesrvUtil.NAMESPACE_ORDER_TOPIC_CONFIG).
pub const NAMESPACE_ORDER_TOPIC_CONFIG: &str = "ORDER_TOPIC_CONFIG";
/// DefaultMQAdminExt's timeoutMillis.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an admin operation failed.
#[derive(Debug)]
pub enum AdminError {
    /// The request did not get an answer (connect, send, timeout, closed).
    Remoting(RemotingError),
    /// The server answered with a code other than SUCCESS.
    Refused { code: i32, remark: String },
    /// The answer could not be read.
    Decode(String),
    /// What was asked for does not exist (topic route, cluster, consume stats).
    NotFound(String),
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminError::Remoting(e) => write!(f, "remoting error: {e}"),
            AdminError::Refused { code, remark } => {
                let name = response::name(*code).unwrap_or("UNKNOWN");
                write!(f, "CODE: {code} ({name}) DESC: {remark}")
            }
            AdminError::Decode(m) => write!(f, "bad response: {m}"),
            AdminError::NotFound(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for AdminError {}

impl From<RemotingError> for AdminError {
    fn from(e: RemotingError) -> Self {
        AdminError::Remoting(e)
    }
}

/// Where `updateTopic` sends the topic config: one broker (`-b addr`) or
/// every master of a cluster (`-c name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Broker(String),
    Cluster(String),
}

/// The topic config mqadmin updateTopic starts from: 8 read and 8 write
/// queues, perm 6 (read and write), not ordered.
pub fn default_topic_config(topic: &str) -> TopicConfig {
    TopicConfig {
        topic_name: topic.to_string(),
        read_queue_nums: 8,
        write_queue_nums: 8,
        perm: perm::PERM_READ | perm::PERM_WRITE,
        ..Default::default()
    }
}

/// `%RETRY%<group>` (RocketMQ: MixAll.getRetryTopic).
pub fn retry_topic(group: &str) -> String {
    format!("{RETRY_GROUP_TOPIC_PREFIX}{group}")
}

/// A blocking admin client (RocketMQ: DefaultMQAdminExt).
pub struct Admin {
    client: RemotingClient,
    namesrv: Vec<String>,
    timeout: Duration,
}

impl Admin {
    /// Starts a client for the `;`-separated name server addresses.
    pub fn new(namesrv_addrs: &str) -> Result<Admin, AdminError> {
        let namesrv: Vec<String> =
            namesrv_addrs.split(';').map(str::trim).filter(|a| !a.is_empty()).map(String::from).collect();
        if namesrv.is_empty() {
            return Err(AdminError::NotFound(format!("no name server address in {namesrv_addrs:?}")));
        }
        let config = ClientConfig { worker_threads: 2, callback_threads: 1, ..ClientConfig::default() };
        let client = RemotingClient::start(config).map_err(|e| {
            AdminError::Remoting(RemotingError::Connect {
                addr: namesrv_addrs.to_string(),
                reason: format!("cannot start the remoting client: {e}"),
            })
        })?;
        Ok(Admin { client, namesrv, timeout: DEFAULT_TIMEOUT })
    }

    /// The same admin with another request timeout (DefaultMQAdminExt's timeoutMillis).
    pub fn with_timeout(mut self, timeout: Duration) -> Admin {
        self.timeout = timeout;
        self
    }

    /// The name server addresses in use.
    pub fn namesrv_addrs(&self) -> &[String] {
        &self.namesrv
    }

    /// Sends a request built by `make` to the name servers in order until one
    /// answers; the answer is returned whatever its code.
    fn call_namesrv(&self, make: impl Fn() -> RemotingCommand) -> Result<RemotingCommand, AdminError> {
        let mut last = None;
        for addr in &self.namesrv {
            match self.client.invoke_sync(addr, make(), self.timeout) {
                Ok(r) => return Ok(r),
                Err(e) => {
                    log::warn!("name server {addr} did not answer: {e}");
                    last = Some(e);
                }
            }
        }
        Err(AdminError::Remoting(last.unwrap_or(RemotingError::ShutDown)))
    }

    /// Sends a request built by `make` to every name server; all are tried,
    /// and the first failure (no answer, or not SUCCESS) is returned.
    fn on_every_namesrv(&self, make: impl Fn() -> RemotingCommand) -> Result<(), AdminError> {
        let mut first_err = None;
        for addr in &self.namesrv {
            if let Err(e) = self.call(addr, make(), self.timeout).and_then(success) {
                log::warn!("name server {addr}: {e}");
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Sends `req` to `addr`, waiting up to `timeout`.
    fn call(&self, addr: &str, req: RemotingCommand, timeout: Duration) -> Result<RemotingCommand, AdminError> {
        Ok(self.client.invoke_sync(addr, req, timeout)?)
    }

    /// RocketMQ: examineTopicRouteInfo (GET_ROUTEINFO_BY_TOPIC).
    pub fn topic_route(&self, topic: &str) -> Result<TopicRouteData, AdminError> {
        let h = GetRouteInfoRequestHeader { topic: topic.to_string(), accept_standard_json_only: None };
        let r = self.call_namesrv(|| RemotingCommand::request_with(request::GET_ROUTEINFO_BY_TOPIC, &h))?;
        if r.code == response::TOPIC_NOT_EXIST {
            return Err(AdminError::NotFound(format!("No topic route info in name server for the topic: {topic}")));
        }
        decode_json(success(r)?, "topic route")
    }

    /// RocketMQ: examineBrokerClusterInfo (GET_BROKER_CLUSTER_INFO).
    pub fn cluster_info(&self) -> Result<ClusterInfo, AdminError> {
        let r = self.call_namesrv(|| RemotingCommand::request(request::GET_BROKER_CLUSTER_INFO))?;
        decode_json(success(r)?, "cluster info")
    }

    /// RocketMQ: fetchAllTopicList (GET_ALL_TOPIC_LIST_FROM_NAMESERVER).
    pub fn topic_list(&self) -> Result<TopicList, AdminError> {
        let r = self.call_namesrv(|| RemotingCommand::request(request::GET_ALL_TOPIC_LIST_FROM_NAMESERVER))?;
        decode_json(success(r)?, "topic list")
    }

    /// The master addresses of `cluster`'s broker groups (RocketMQ:
    /// CommandUtil.fetchMasterAddrByClusterName), in broker name order.
    pub fn cluster_masters(&self, cluster: &str) -> Result<Vec<String>, AdminError> {
        let info = self.cluster_info()?;
        let names = info.cluster_addr_table.get(cluster).ok_or_else(|| {
            AdminError::NotFound(format!(
                "cluster [{cluster}] not found: make sure the cluster name exists and the name server is the right one"
            ))
        })?;
        Ok(names
            .iter()
            .filter_map(|name| info.broker_addr_table.get(name))
            .filter_map(|bd| bd.broker_addrs.get(&MASTER_ID).cloned())
            .collect())
    }

    /// mqadmin updateTopic: UPDATE_AND_CREATE_TOPIC to one broker or to
    /// every master of a cluster; an order topic also gets its order config
    /// (`brokerName:writeQueueNums`, `;`-joined) in the name servers' KV
    /// config. Returns the broker addresses updated.
    pub fn update_topic(&self, target: Target, cfg: TopicConfig) -> Result<Vec<String>, AdminError> {
        let addrs = match &target {
            Target::Broker(addr) => vec![addr.clone()],
            Target::Cluster(cluster) => self.cluster_masters(cluster)?,
        };
        if addrs.is_empty() {
            return Err(AdminError::NotFound(format!("no master broker to update in {target:?}")));
        }
        let h = CreateTopicRequestHeader {
            topic: cfg.topic_name.clone(),
            default_topic: DEFAULT_TOPIC.to_string(),
            read_queue_nums: cfg.read_queue_nums,
            write_queue_nums: cfg.write_queue_nums,
            perm: cfg.perm,
            topic_filter_type: cfg.topic_filter_type.clone(),
            topic_sys_flag: Some(cfg.topic_sys_flag),
            order: cfg.order,
        };
        for addr in &addrs {
            let r =
                self.call(addr, RemotingCommand::request_with(request::UPDATE_AND_CREATE_TOPIC, &h), self.timeout)?;
            success(r)?;
        }
        if cfg.order {
            let info = self.cluster_info()?;
            let names: BTreeSet<&str> = match &target {
                Target::Broker(addr) => info
                    .broker_addr_table
                    .values()
                    .filter(|bd| bd.broker_addrs.values().any(|a| a == addr))
                    .map(|bd| bd.broker_name.as_str())
                    .collect(),
                Target::Cluster(cluster) => info
                    .cluster_addr_table
                    .get(cluster)
                    .map(|s| s.iter().map(String::as_str).collect())
                    .unwrap_or_default(),
            };
            let conf: Vec<String> = names.iter().map(|n| format!("{n}:{}", cfg.write_queue_nums)).collect();
            self.put_kv_config(NAMESPACE_ORDER_TOPIC_CONFIG, &cfg.topic_name, &conf.join(";"))?;
        }
        Ok(addrs)
    }

    /// PUT_KV_CONFIG on every name server (RocketMQ: putKVConfigValue).
    pub fn put_kv_config(&self, namespace: &str, key: &str, value: &str) -> Result<(), AdminError> {
        let h = PutKvConfigRequestHeader { namespace: namespace.into(), key: key.into(), value: value.into() };
        self.on_every_namesrv(|| RemotingCommand::request_with(request::PUT_KV_CONFIG, &h))
    }

    /// mqadmin deleteTopic -c cluster -t topic: DELETE_TOPIC_IN_BROKER on
    /// each master of the cluster, then DELETE_TOPIC_IN_NAMESRV on every name
    /// server.
    pub fn delete_topic(&self, cluster: &str, topic: &str) -> Result<(), AdminError> {
        let h = DeleteTopicRequestHeader { topic: topic.to_string() };
        for addr in self.cluster_masters(cluster)? {
            let r =
                self.call(&addr, RemotingCommand::request_with(request::DELETE_TOPIC_IN_BROKER, &h), self.timeout)?;
            success(r)?;
        }
        let h = DeleteTopicFromNamesrvRequestHeader { topic: topic.to_string(), cluster_name: Some(cluster.into()) };
        self.on_every_namesrv(|| RemotingCommand::request_with(request::DELETE_TOPIC_IN_NAMESRV, &h))
    }

    /// mqadmin topicStatus (RocketMQ: examineTopicStats): GET_TOPIC_STATS_INFO
    /// from each broker group in the topic's route, queues in order.
    pub fn topic_status(&self, topic: &str) -> Result<Vec<(MessageQueue, TopicOffset)>, AdminError> {
        let route = self.topic_route(topic)?;
        let h = TopicRequestHeader { topic: topic.to_string() };
        let mut all = Vec::new();
        for bd in &route.broker_datas {
            let Some(addr) = bd.select_broker_addr() else { continue };
            let r = self.call(addr, RemotingCommand::request_with(request::GET_TOPIC_STATS_INFO, &h), self.timeout)?;
            let r = success(r)?;
            let table = TopicStatsTable::decode(&r.body.bytes()).map_err(|e| decode_err("topic stats", addr, e))?;
            all.extend(table.offset_table);
        }
        all.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(all)
    }

    /// mqadmin brokerStatus (RocketMQ: fetchBrokerRuntimeStats):
    /// GET_BROKER_RUNTIME_INFO, keys in order.
    pub fn broker_status(&self, broker_addr: &str) -> Result<BTreeMap<String, String>, AdminError> {
        let r = self.call(broker_addr, RemotingCommand::request(request::GET_BROKER_RUNTIME_INFO), self.timeout)?;
        let kv: KvTable = decode_json(success(r)?, "broker runtime info")?;
        Ok(kv.table.into_iter().collect())
    }

    /// RocketMQ: examineConsumeStats(group) as mqadmin consumerProgress
    /// calls it: the brokers come from the route of `%RETRY%<group>`, each
    /// answers GET_CONSUME_STATS (with three times the timeout); the tables
    /// are merged and the TPS summed. An empty table is an error, as in Apache.
    pub fn consume_stats(&self, group: &str) -> Result<ConsumeStats, AdminError> {
        let route = self.topic_route(&retry_topic(group))?;
        let h = GetConsumeStatsRequestHeader { consumer_group: group.to_string(), topic: None };
        let mut all = ConsumeStats::default();
        for bd in &route.broker_datas {
            let Some(addr) = bd.select_broker_addr() else { continue };
            let req = RemotingCommand::request_with(request::GET_CONSUME_STATS, &h);
            let r = success(self.call(addr, req, self.timeout * 3)?)?;
            let stats = ConsumeStats::decode(&r.body.bytes()).map_err(|e| decode_err("consume stats", addr, e))?;
            all.offset_table.extend(stats.offset_table);
            all.consume_tps += stats.consume_tps;
        }
        if all.offset_table.is_empty() {
            return Err(AdminError::NotFound(
                "Not found the consumer group consume stats, because return offset table is empty, maybe the consumer not consume any message".into(),
            ));
        }
        all.offset_table.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(all)
    }

    /// mqadmin consumerProgress -g group: the queues of [`Admin::consume_stats`].
    pub fn consumer_progress(&self, group: &str) -> Result<Vec<(MessageQueue, OffsetWrapper)>, AdminError> {
        Ok(self.consume_stats(group)?.offset_table)
    }

    /// mqadmin queryMsgById (RocketMQ: viewMessage(msgId)): the offset
    /// message id names the broker's store address and the CommitLog offset;
    /// VIEW_MESSAGE_BY_ID there answers the stored record.
    pub fn query_msg_by_id(&self, msg_id: &str) -> Result<MessageExt, AdminError> {
        let (addr, offset) = message::decode_message_id(msg_id.trim())
            .map_err(|e| AdminError::Decode(format!("{msg_id:?} is not an offset message id: {e}")))?;
        let addr = addr.to_string();
        let req = RemotingCommand::request_with(request::VIEW_MESSAGE_BY_ID, &ViewMessageRequestHeader { offset });
        let r = success(self.call(&addr, req, self.timeout)?)?;
        message::decode(&r.body.bytes(), true, false).map_err(|e| decode_err("message", &addr, e))
    }
}

/// The answer when it is SUCCESS, else [`AdminError::Refused`].
fn success(r: RemotingCommand) -> Result<RemotingCommand, AdminError> {
    if r.code == response::SUCCESS {
        Ok(r)
    } else {
        Err(AdminError::Refused { code: r.code, remark: r.remark.unwrap_or_default() })
    }
}

fn decode_json<T: serde::de::DeserializeOwned>(r: RemotingCommand, what: &str) -> Result<T, AdminError> {
    from_body(&r.body.bytes()).map_err(|e| AdminError::Decode(format!("{what}: {e}")))
}

fn decode_err(what: &str, addr: &str, e: impl fmt::Display) -> AdminError {
    AdminError::Decode(format!("{what} from {addr}: {e}"))
}

// ---- Renderers, laid out as Apache's mqadmin prints.

/// At most `n` leading characters of `s` (RocketMQ: UtilAll.frontStringAtLeast).
fn front(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// mqadmin topicList: one topic a line.
pub fn render_topic_list(list: &TopicList) -> String {
    list.topic_list.iter().map(|t| format!("{t}\n")).collect()
}

/// mqadmin topicRoute: the route as pretty JSON, keys in alphabetical order
/// and tab indentation as fastjson writes it.
pub fn render_topic_route(route: &TopicRouteData) -> String {
    let value = serde_json::to_value(route).unwrap_or(serde_json::Value::Null);
    let mut out = String::new();
    pretty_json(&value, 0, &mut out);
    out.push('\n');
    out
}

fn pretty_json(v: &serde_json::Value, depth: usize, out: &mut String) {
    use serde_json::Value;
    let indent = |out: &mut String, d: usize| out.extend(std::iter::repeat_n('\t', d));
    match v {
        Value::Object(m) if !m.is_empty() => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push_str("{\n");
            for (i, k) in keys.iter().enumerate() {
                indent(out, depth + 1);
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                if let Some(child) = m.get(*k) {
                    pretty_json(child, depth + 1, out);
                }
                out.push_str(if i + 1 < keys.len() { ",\n" } else { "\n" });
            }
            indent(out, depth);
            out.push('}');
        }
        Value::Array(a) if !a.is_empty() => {
            out.push_str("[\n");
            for (i, child) in a.iter().enumerate() {
                indent(out, depth + 1);
                pretty_json(child, depth + 1, out);
                out.push_str(if i + 1 < a.len() { ",\n" } else { "\n" });
            }
            indent(out, depth);
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// mqadmin clusterList: one line per broker address, clusters and broker
/// names in order, with figures from each address's runtime info in
/// `statuses` (missing ones print empty).
pub fn render_cluster_list(info: &ClusterInfo, statuses: &BTreeMap<String, BTreeMap<String, String>>) -> String {
    let mut out = format!(
        "{:<16}  {:<22}  {:<4}  {:<22} {:<16} {:>19} {:>19} {:>10} {:>5} {:>6}\n",
        "#Cluster Name",
        "#Broker Name",
        "#BID",
        "#Addr",
        "#Version",
        "#InTPS(LOAD)",
        "#OutTPS(LOAD)",
        "#PCWait(ms)",
        "#Hour",
        "#SPACE"
    );
    let clusters: BTreeMap<&String, &BTreeSet<String>> = info.cluster_addr_table.iter().collect();
    let empty = BTreeMap::new();
    let now = now_millis();
    for (cluster, names) in clusters {
        for name in names {
            let Some(bd) = info.broker_addr_table.get(name) else { continue };
            for (id, addr) in &bd.broker_addrs {
                let kv = statuses.get(addr).unwrap_or(&empty);
                let get = |k: &str| kv.get(k).map(String::as_str).unwrap_or("");
                let first_f64 = |k: &str| get(k).split(' ').next().and_then(|t| t.parse::<f64>().ok()).unwrap_or(0.0);
                let hour = get("earliestMessageTimeStamp")
                    .parse::<i64>()
                    .map(|t| (now - t) as f64 / 1000.0 / 60.0 / 60.0)
                    .unwrap_or(0.0);
                let space = get("commitLogDiskRatio").parse::<f64>().unwrap_or(0.0);
                let in_tps = format!(
                    "{:9.2}({},{}ms)",
                    first_f64("putTps"),
                    get("sendThreadPoolQueueSize"),
                    get("sendThreadPoolQueueHeadWaitTimeMills")
                );
                let out_tps = format!(
                    "{:9.2}({},{}ms)",
                    first_f64("getTransferedTps"),
                    get("pullThreadPoolQueueSize"),
                    get("pullThreadPoolQueueHeadWaitTimeMills")
                );
                out.push_str(&format!(
                    "{:<16}  {:<22}  {:<4}  {:<22} {:<16} {:>19} {:>19} {:>10} {:>5} {:>6}\n",
                    cluster,
                    name,
                    id,
                    addr,
                    get("brokerVersionDesc"),
                    in_tps,
                    out_tps,
                    get("pageCacheLockTimeMills"),
                    format!("{hour:2.2}"),
                    format!("{space:.4}")
                ));
            }
        }
    }
    out
}

/// mqadmin topicStatus: broker name, queue id, min and max offsets and the
/// last store time of each queue.
pub fn render_topic_status(queues: &[(MessageQueue, TopicOffset)]) -> String {
    let mut out = format!(
        "{:<32}  {:<4}  {:<20}  {:<20}    {}\n",
        "#Broker Name", "#QID", "#Min Offset", "#Max Offset", "#Last Updated"
    );
    let mut sorted: Vec<&(MessageQueue, TopicOffset)> = queues.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (mq, o) in sorted {
        let updated =
            if o.last_update_timestamp > 0 { format_utc_millis(o.last_update_timestamp) } else { String::new() };
        out.push_str(&format!(
            "{:<32}  {:<4}  {:<20}  {:<20}    {}\n",
            front(&mq.broker_name, 32),
            mq.queue_id,
            o.min_offset,
            o.max_offset,
            updated
        ));
    }
    out
}

/// mqadmin brokerStatus: `key : value` lines in key order; with
/// `broker_addr` (the `-c cluster` form) each line starts with the address.
pub fn render_broker_status(broker_addr: Option<&str>, status: &BTreeMap<String, String>) -> String {
    status
        .iter()
        .map(|(k, v)| match broker_addr {
            Some(addr) => format!("{addr:<24} {k:<32}: {v}\n"),
            None => format!("{k:<32}: {v}\n"),
        })
        .collect()
}

/// mqadmin consumerProgress -g group: one line per queue, then the TPS and
/// the total diff. With `client_ips` (the `-s true` form) a `#Client IP`
/// column shows who holds each queue (`N/A` when nobody).
pub fn render_consumer_progress(stats: &ConsumeStats, client_ips: Option<&HashMap<MessageQueue, String>>) -> String {
    let mut out = match client_ips {
        Some(_) => format!(
            "{:<64}  {:<32}  {:<4}  {:<20}  {:<20}  {:<20} {:<20}  {}\n",
            "#Topic", "#Broker Name", "#QID", "#Broker Offset", "#Consumer Offset", "#Client IP", "#Diff", "#LastTime"
        ),
        None => format!(
            "{:<64}  {:<32}  {:<4}  {:<20}  {:<20}  {:<20}  {}\n",
            "#Topic", "#Broker Name", "#QID", "#Broker Offset", "#Consumer Offset", "#Diff", "#LastTime"
        ),
    };
    let mut sorted: Vec<&(MessageQueue, OffsetWrapper)> = stats.offset_table.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut diff_total = 0i64;
    for (mq, w) in sorted {
        let diff = w.broker_offset - w.consumer_offset;
        diff_total += diff;
        let last = if w.last_timestamp == 0 { "N/A".to_string() } else { format_utc_millis(w.last_timestamp) };
        let (topic, broker) = (front(&mq.topic, 64), front(&mq.broker_name, 32));
        out.push_str(&match client_ips {
            Some(ips) => format!(
                "{topic:<64}  {broker:<32}  {:<4}  {:<20}  {:<20}  {:<20} {diff:<20}  {last}\n",
                mq.queue_id,
                w.broker_offset,
                w.consumer_offset,
                ips.get(mq).map(String::as_str).unwrap_or("N/A"),
            ),
            None => format!(
                "{topic:<64}  {broker:<32}  {:<4}  {:<20}  {:<20}  {diff:<20}  {last}\n",
                mq.queue_id, w.broker_offset, w.consumer_offset,
            ),
        });
    }
    let tps = if stats.consume_tps.is_finite() { stats.consume_tps } else { 0.0 };
    out.push_str(&format!("\nConsume TPS: {tps:.2}\nDiff Total: {diff_total}\n"));
    out
}

/// mqadmin queryMsgById: the message's fields as `Name: value` lines; the
/// body is printed inline (lossy UTF-8) where mqadmin prints the path of a
/// file it wrote the body to.
pub fn render_message(msg: &MessageExt) -> String {
    let props: Vec<String> = msg.message.properties.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let lines: [(&str, String); 17] = [
        ("OffsetID:", msg.msg_id.clone()),
        ("Topic:", msg.topic().to_string()),
        ("Tags:", format!("[{}]", msg.tags().unwrap_or("null"))),
        ("Keys:", format!("[{}]", msg.keys().unwrap_or("null"))),
        ("Queue ID:", msg.queue_id.to_string()),
        ("Queue Offset:", msg.queue_offset.to_string()),
        ("CommitLog Offset:", msg.commit_log_offset.to_string()),
        ("Reconsume Times:", msg.reconsume_times.to_string()),
        ("Born Timestamp:", format_utc_millis(msg.born_timestamp)),
        ("Store Timestamp:", format_utc_millis(msg.store_timestamp)),
        ("Born Host:", msg.born_host.to_string()),
        ("Store Host:", msg.store_host.to_string()),
        ("System Flag:", msg.sys_flag.to_string()),
        ("Properties:", format!("{{{}}}", props.join(", "))),
        ("Body CRC:", msg.body_crc.to_string()),
        ("Body Length:", msg.body().len().to_string()),
        ("Message Body:", String::from_utf8_lossy(msg.body()).into_owned()),
    ];
    lines.iter().map(|(name, value)| format!("{name:<20} {value}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_cuts_at_characters_and_route_json_is_sorted_with_tabs() {
        assert_eq!(front("abcdef", 3), "abc");
        assert_eq!(front("ab", 3), "ab");
        assert_eq!(front("ééé", 2), "éé");
        let mut route = TopicRouteData::default();
        route.broker_datas.push(crate::remoting::body::BrokerData {
            cluster: "C".into(),
            broker_name: "b".into(),
            broker_addrs: [(0, "1.2.3.4:10911".to_string())].into_iter().collect(),
        });
        let s = render_topic_route(&route);
        assert!(
            s.starts_with("{\n\t\"brokerDatas\":[\n\t\t{\n\t\t\t\"brokerAddrs\":{\n\t\t\t\t\"0\":\"1.2.3.4:10911\""),
            "{s}"
        );
        assert!(s.contains("\t\"filterServerTable\":{},\n\t\"queueDatas\":[]\n}"), "{s}");
    }
}
