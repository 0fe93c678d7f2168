//! The route table (RocketMQ: RouteInfoManager): clusters, broker groups
//! (name -> id -> address), topics -> queue data per broker, and each
//! broker's liveness (last update, data version, connection).

use std::collections::{BTreeSet, HashMap};

use parking_lot::RwLock;

use crate::common::time::now_millis;
use crate::remoting::Channel;
use crate::remoting::body::{
    BrokerData, ClusterInfo, DataVersion, MASTER_ID, QueueData, TopicConfig, TopicConfigSerializeWrapper, TopicList,
    TopicRouteData,
};

/// What a name server knows of a live broker. RocketMQ: BrokerLiveInfo.
#[derive(Debug, Clone)]
pub struct BrokerLiveInfo {
    pub last_update_timestamp: i64,
    pub data_version: DataVersion,
    pub channel: Option<Channel>,
    pub ha_server_addr: String,
}

/// The master's addresses, for a slave's registration reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegisterBrokerResult {
    pub ha_server_addr: Option<String>,
    pub master_addr: Option<String>,
}

/// A broker registration.
pub struct Registration<'a> {
    pub cluster: &'a str,
    pub broker_addr: &'a str,
    pub broker_name: &'a str,
    pub broker_id: i64,
    pub ha_server_addr: &'a str,
    pub topics: Option<&'a TopicConfigSerializeWrapper>,
    pub filter_servers: Vec<String>,
    pub channel: Option<Channel>,
}

#[derive(Default)]
struct Tables {
    topic_queue_table: HashMap<String, Vec<QueueData>>,
    broker_addr_table: HashMap<String, BrokerData>,
    cluster_addr_table: HashMap<String, BTreeSet<String>>,
    broker_live_table: HashMap<String, BrokerLiveInfo>,
    filter_server_table: HashMap<String, Vec<String>>,
}

#[derive(Default)]
pub struct RouteInfoManager {
    tables: RwLock<Tables>,
}

impl RouteInfoManager {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a broker and, for a master whose topic configs changed (or
    /// that registers for the first time), its topics' queue data.
    pub fn register_broker(&self, r: Registration<'_>) -> RegisterBrokerResult {
        let mut t = self.tables.write();
        t.cluster_addr_table.entry(r.cluster.to_string()).or_default().insert(r.broker_name.to_string());
        let data = t.broker_addr_table.entry(r.broker_name.to_string()).or_insert_with(|| BrokerData {
            cluster: r.cluster.to_string(),
            broker_name: r.broker_name.to_string(),
            broker_addrs: Default::default(),
        });
        // The same address under another id: a slave became master or back.
        data.broker_addrs.retain(|id, addr| !(addr == r.broker_addr && *id != r.broker_id));
        let first = data.broker_addrs.insert(r.broker_id, r.broker_addr.to_string()).is_none();
        if let Some(wrapper) = r.topics
            && r.broker_id == MASTER_ID
        {
            let changed =
                t.broker_live_table.get(r.broker_addr).is_none_or(|live| live.data_version != wrapper.data_version);
            if changed || first {
                for tc in wrapper.topic_config_table.values() {
                    upsert_queue_data(&mut t, r.broker_name, tc);
                }
            }
        }
        let version = r.topics.map(|w| w.data_version.clone()).unwrap_or_default();
        let prev = t.broker_live_table.insert(
            r.broker_addr.to_string(),
            BrokerLiveInfo {
                last_update_timestamp: now_millis(),
                data_version: version,
                channel: r.channel,
                ha_server_addr: r.ha_server_addr.to_string(),
            },
        );
        if prev.is_none() {
            log::info!("new broker registered: {} {} (id {})", r.broker_name, r.broker_addr, r.broker_id);
        }
        if r.filter_servers.is_empty() {
            t.filter_server_table.remove(r.broker_addr);
        } else {
            t.filter_server_table.insert(r.broker_addr.to_string(), r.filter_servers);
        }
        let mut result = RegisterBrokerResult::default();
        if r.broker_id != MASTER_ID
            && let Some(master) = t.broker_addr_table.get(r.broker_name).and_then(|d| d.broker_addrs.get(&MASTER_ID))
        {
            result.ha_server_addr = t.broker_live_table.get(master).map(|l| l.ha_server_addr.clone());
            result.master_addr = Some(master.clone());
        }
        result
    }

    /// Removes one broker; its group and topics go when it was the last.
    pub fn unregister_broker(&self, cluster: &str, broker_addr: &str, broker_name: &str, broker_id: i64) {
        let mut t = self.tables.write();
        t.broker_live_table.remove(broker_addr);
        t.filter_server_table.remove(broker_addr);
        remove_broker_id(&mut t, cluster, broker_name, broker_id);
        log::info!("broker unregistered: {broker_name} {broker_addr} (id {broker_id})");
    }

    /// The route of `topic`, or `None` when no broker serves it.
    pub fn pick_topic_route_data(&self, topic: &str) -> Option<TopicRouteData> {
        let t = self.tables.read();
        let queue_datas = t.topic_queue_table.get(topic)?.clone();
        let mut broker_datas = Vec::new();
        let mut filter_server_table = HashMap::new();
        for qd in &queue_datas {
            if let Some(bd) = t.broker_addr_table.get(&qd.broker_name) {
                for addr in bd.broker_addrs.values() {
                    if let Some(f) = t.filter_server_table.get(addr) {
                        filter_server_table.insert(addr.clone(), f.clone());
                    }
                }
                broker_datas.push(bd.clone());
            }
        }
        if broker_datas.is_empty() || queue_datas.is_empty() {
            return None;
        }
        Some(TopicRouteData { order_topic_conf: None, queue_datas, broker_datas, filter_server_table })
    }

    /// Drops brokers silent for longer than `timeout_ms` (NSScheduledThread).
    /// Returns their addresses.
    pub fn scan_not_active_broker(&self, timeout_ms: i64) -> Vec<String> {
        let now = now_millis();
        let expired: Vec<String> = self
            .tables
            .read()
            .broker_live_table
            .iter()
            .filter(|(_, l)| l.last_update_timestamp + timeout_ms < now)
            .map(|(a, _)| a.clone())
            .collect();
        for addr in &expired {
            log::warn!("the broker {addr} sent nothing for {timeout_ms} ms; removing it");
            self.remove_broker_at(addr);
        }
        expired
    }

    /// A broker's connection closed: drop the broker registered over it.
    pub fn on_channel_destroy(&self, channel: &Channel) {
        let addr = self
            .tables
            .read()
            .broker_live_table
            .iter()
            .find(|(_, l)| l.channel.as_ref() == Some(channel))
            .map(|(a, _)| a.clone());
        if let Some(addr) = addr {
            log::info!("the connection of broker {addr} closed; removing it");
            self.remove_broker_at(&addr);
        }
    }

    fn remove_broker_at(&self, addr: &str) {
        let mut t = self.tables.write();
        t.broker_live_table.remove(addr);
        t.filter_server_table.remove(addr);
        let found = t.broker_addr_table.iter().find_map(|(name, d)| {
            d.broker_addrs.iter().find(|(_, a)| *a == addr).map(|(id, _)| (name.clone(), d.cluster.clone(), *id))
        });
        if let Some((name, cluster, id)) = found {
            remove_broker_id(&mut t, &cluster, &name, id);
        }
    }

    pub fn cluster_info(&self) -> ClusterInfo {
        let t = self.tables.read();
        ClusterInfo { broker_addr_table: t.broker_addr_table.clone(), cluster_addr_table: t.cluster_addr_table.clone() }
    }

    pub fn all_topics(&self) -> TopicList {
        TopicList { topic_list: self.tables.read().topic_queue_table.keys().cloned().collect(), broker_addr: None }
    }

    /// The topics served by brokers of `cluster`.
    pub fn topics_by_cluster(&self, cluster: &str) -> TopicList {
        let t = self.tables.read();
        let names = t.cluster_addr_table.get(cluster).cloned().unwrap_or_default();
        let topic_list = t
            .topic_queue_table
            .iter()
            .filter(|(_, qds)| qds.iter().any(|q| names.contains(&q.broker_name)))
            .map(|(topic, _)| topic.clone())
            .collect();
        TopicList { topic_list, broker_addr: None }
    }

    /// Forgets a topic (on the brokers of `cluster` only, when given).
    pub fn delete_topic(&self, topic: &str, cluster: Option<&str>) {
        let mut t = self.tables.write();
        match cluster.and_then(|c| t.cluster_addr_table.get(c).cloned()) {
            Some(names) => {
                if let Some(qds) = t.topic_queue_table.get_mut(topic) {
                    qds.retain(|q| !names.contains(&q.broker_name));
                    if qds.is_empty() {
                        t.topic_queue_table.remove(topic);
                    }
                }
            }
            None => {
                t.topic_queue_table.remove(topic);
            }
        }
    }

    /// Live brokers (address -> info), for tests and admin.
    pub fn live_brokers(&self) -> HashMap<String, BrokerLiveInfo> {
        self.tables.read().broker_live_table.clone()
    }
}

fn upsert_queue_data(t: &mut Tables, broker_name: &str, tc: &TopicConfig) {
    let qd = QueueData {
        broker_name: broker_name.to_string(),
        read_queue_nums: tc.read_queue_nums,
        write_queue_nums: tc.write_queue_nums,
        perm: tc.perm,
        topic_sys_flag: tc.topic_sys_flag,
    };
    let list = t.topic_queue_table.entry(tc.topic_name.clone()).or_default();
    match list.iter_mut().find(|q| q.broker_name == broker_name) {
        Some(existing) => *existing = qd,
        None => list.push(qd),
    }
}

/// Removes `id` from the group; the last one out takes the group, its place
/// in the cluster and its queue data with it.
fn remove_broker_id(t: &mut Tables, cluster: &str, broker_name: &str, id: i64) {
    let mut group_gone = false;
    if let Some(d) = t.broker_addr_table.get_mut(broker_name) {
        d.broker_addrs.remove(&id);
        if d.broker_addrs.is_empty() {
            t.broker_addr_table.remove(broker_name);
            group_gone = true;
        }
    }
    if group_gone {
        if let Some(names) = t.cluster_addr_table.get_mut(cluster) {
            names.remove(broker_name);
            if names.is_empty() {
                t.cluster_addr_table.remove(cluster);
            }
        }
        t.topic_queue_table.retain(|_, qds| {
            qds.retain(|q| q.broker_name != broker_name);
            !qds.is_empty()
        });
    }
}
