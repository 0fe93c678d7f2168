//! The clients connected to the broker (RocketMQ: ConsumerManager,
//! ConsumerGroupInfo, ProducerManager, ClientChannelInfo, and
//! Broker2Client.notifyConsumerIdsChanged).
//!
//! HEART_BEAT registers (and refreshes) a client's producer and consumer
//! groups on the connection it came on; UNREGISTER_CLIENT, a closed
//! connection or two minutes of silence remove it. Consumers learn of a
//! change in their group's membership from NOTIFY_CONSUMER_IDS_CHANGED and
//! then ask for the member list (GET_CONSUMER_LIST_BY_GROUP) to rebalance.
//!
//! Each manager is one table behind a read-write lock: heartbeats come every
//! 30 s per client, reads (pulls asking for a group's subscription) far more
//! often, and every change is a few map operations.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::RwLock;

use crate::common::time::now_millis;
use crate::remoting::RemotingCommand;
use crate::remoting::body::{Connection, ConsumerConnection, ConsumerData, SubscriptionData};
use crate::remoting::code::request;
use crate::remoting::connection::Channel;
use crate::remoting::headers::NotifyConsumerIdsChangedRequestHeader;

/// A client not heard from for this long is dropped by the broker's
/// periodic scan (RocketMQ: CHANNEL_EXPIRED_TIMEOUT).
pub const CHANNEL_EXPIRED_TIMEOUT_MS: i64 = 120_000;

/// One client on one connection, as its last heartbeat described it.
#[derive(Debug, Clone)]
pub struct ClientChannelInfo {
    pub channel: Channel,
    pub client_id: String,
    /// The request's LanguageCode name (`JAVA`, `CPP`, ...).
    pub language: String,
    /// The request's client version.
    pub version: i32,
    /// When the client was last heard from, epoch millis.
    pub last_update_timestamp: i64,
}

impl ClientChannelInfo {
    /// The client sending `request` on `channel`, heard from now.
    pub fn of_request(channel: &Channel, client_id: impl Into<String>, request: &RemotingCommand) -> Self {
        ClientChannelInfo {
            channel: channel.clone(),
            client_id: client_id.into(),
            language: request.language.name().to_string(),
            version: request.version,
            last_update_timestamp: now_millis(),
        }
    }

    /// The connection as GET_CONSUMER_CONNECTION_LIST reports it.
    pub fn connection(&self) -> Connection {
        Connection {
            client_id: self.client_id.clone(),
            client_addr: self.channel.remote_addr().to_string(),
            language: self.language.clone(),
            version: self.version,
        }
    }
}

/// A consumer group's members and subscriptions. The consume type, message
/// model and where to start are the last heartbeat's (Apache constant names,
/// as in [`ConsumerData`]).
#[derive(Debug, Clone)]
pub struct ConsumerGroupInfo {
    pub group: String,
    pub consume_type: String,
    pub message_model: String,
    pub consume_from_where: String,
    pub channels: HashMap<Channel, ClientChannelInfo>,
    /// By topic.
    pub subscriptions: HashMap<String, SubscriptionData>,
    /// When a heartbeat last touched the group, epoch millis.
    pub last_update_timestamp: i64,
}

impl ConsumerGroupInfo {
    fn new(data: &ConsumerData) -> Self {
        ConsumerGroupInfo {
            group: data.group_name.clone(),
            consume_type: data.consume_type.clone(),
            message_model: data.message_model.clone(),
            consume_from_where: data.consume_from_where.clone(),
            channels: HashMap::new(),
            subscriptions: HashMap::new(),
            last_update_timestamp: now_millis(),
        }
    }

    /// The member with `client_id`.
    pub fn find_channel(&self, client_id: &str) -> Option<&ClientChannelInfo> {
        self.channels.values().find(|c| c.client_id == client_id)
    }

    /// The members' connections, oldest connection first.
    pub fn all_channels(&self) -> Vec<Channel> {
        let mut v: Vec<Channel> = self.channels.keys().cloned().collect();
        v.sort_by_key(Channel::id);
        v
    }

    /// The members' client ids, sorted.
    pub fn all_client_ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self.channels.values().map(|c| c.client_id.clone()).collect();
        v.sort();
        v
    }

    /// The topics the group subscribes to, sorted.
    pub fn subscribed_topics(&self) -> Vec<String> {
        let mut v: Vec<String> = self.subscriptions.keys().cloned().collect();
        v.sort();
        v
    }

    /// The GET_CONSUMER_CONNECTION_LIST body for this group.
    pub fn consumer_connection(&self) -> ConsumerConnection {
        let mut infos: Vec<&ClientChannelInfo> = self.channels.values().collect();
        infos.sort_by_key(|c| c.channel.id());
        ConsumerConnection {
            connection_set: infos.into_iter().map(ClientChannelInfo::connection).collect(),
            subscription_table: self.subscriptions.clone(),
            consume_type: self.consume_type.clone(),
            message_model: self.message_model.clone(),
            consume_from_where: self.consume_from_where.clone(),
        }
    }

    /// Adds or refreshes a member; true when it is new (RocketMQ: updateChannel).
    fn update_channel(&mut self, info: ClientChannelInfo, data: &ConsumerData) -> bool {
        self.consume_type.clone_from(&data.consume_type);
        self.message_model.clone_from(&data.message_model);
        self.consume_from_where.clone_from(&data.consume_from_where);
        let now = now_millis();
        self.last_update_timestamp = now;
        match self.channels.get_mut(&info.channel) {
            None => {
                log::info!(
                    "new consumer connected, group: {} {} {} channel: {} clientId: {}",
                    self.group,
                    data.consume_type,
                    data.message_model,
                    info.channel.remote_addr(),
                    info.client_id
                );
                let mut info = info;
                info.last_update_timestamp = now;
                self.channels.insert(info.channel.clone(), info);
                true
            }
            Some(old) => {
                if old.client_id != info.client_id {
                    log::error!(
                        "[BUG] consumer channel exist in broker, but clientId not equal. GROUP: {} OLD: {} NEW: {}",
                        self.group,
                        old.client_id,
                        info.client_id
                    );
                    *old = info;
                }
                old.last_update_timestamp = now;
                false
            }
        }
    }

    /// Takes a heartbeat's subscriptions; true when a topic was added or
    /// dropped. A newer version of a known topic's subscription replaces the
    /// old one without counting as a change (RocketMQ: updateSubscription).
    fn update_subscription(&mut self, subs: &[SubscriptionData]) -> bool {
        let mut updated = false;
        for sub in subs {
            match self.subscriptions.get_mut(&sub.topic) {
                None => {
                    log::info!("subscription changed, add new topic, group: {} {sub:?}", self.group);
                    self.subscriptions.insert(sub.topic.clone(), sub.clone());
                    updated = true;
                }
                Some(old) if sub.sub_version > old.sub_version => {
                    if self.consume_type == "CONSUME_PASSIVELY" {
                        log::info!("subscription changed, group: {} OLD: {old:?} NEW: {sub:?}", self.group);
                    }
                    *old = sub.clone();
                }
                Some(_) => {}
            }
        }
        let group = &self.group;
        self.subscriptions.retain(|topic, old| {
            let keep = subs.iter().any(|s| &s.topic == topic);
            if !keep {
                log::warn!("subscription changed, group: {group} remove topic {topic} {old:?}");
                updated = true;
            }
            keep
        });
        self.last_update_timestamp = now_millis();
        updated
    }
}

/// The consumer groups and their members (RocketMQ: ConsumerManager).
/// Thread-safe; every method takes `&self`.
#[derive(Default)]
pub struct ConsumerManager {
    table: RwLock<HashMap<String, ConsumerGroupInfo>>,
}

impl ConsumerManager {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers or refreshes the consumer `info` of the group in `data`
    /// from a heartbeat, taking the heartbeat's consume settings and
    /// subscriptions for the group.
    ///
    /// Returns what Apache's registerConsumer returns: true when the group
    /// gained a member (a channel new to it) or a subscribed topic was added
    /// or dropped. A newer version of an existing subscription, or a refresh
    /// of a known member, is not a change. On true the caller sends
    /// NOTIFY_CONSUMER_IDS_CHANGED to the group ([`notify_consumer_ids_changed`])
    /// when the group's `notifyConsumerIdsChangedEnable` is on, as Apache does.
    pub fn register_consumer(&self, data: &ConsumerData, info: ClientChannelInfo) -> bool {
        let mut table = self.table.write();
        let group = table.entry(data.group_name.clone()).or_insert_with(|| ConsumerGroupInfo::new(data));
        let new_member = group.update_channel(info, data);
        let new_topics = group.update_subscription(&data.subscription_data_set);
        new_member || new_topics
    }

    /// Removes `channel` from `group` (UNREGISTER_CLIENT); a group left
    /// without members is dropped. True when the channel was a member: the
    /// caller then notifies the rest of the group. (Apache notifies whenever
    /// the group exists, member or not; nothing changed in the other case.)
    pub fn unregister_consumer(&self, group: &str, channel: &Channel) -> bool {
        let mut table = self.table.write();
        let Some(info) = table.get_mut(group) else { return false };
        let removed = info.channels.remove(channel);
        if let Some(old) = &removed {
            log::info!("unregister a consumer[{group}] from consumerGroupInfo {}", old.client_id);
        }
        if info.channels.is_empty() {
            table.remove(group);
            log::info!("unregister consumer ok, no any connection, and remove consumer group, {group}");
        }
        removed.is_some()
    }

    /// Removes a closed connection from every group; returns the groups
    /// that lost a member, sorted (Apache notifies each of them). Groups
    /// left without members are dropped.
    pub fn on_channel_closed(&self, channel: &Channel) -> Vec<String> {
        let mut table = self.table.write();
        let mut lost = Vec::new();
        for (group, info) in table.iter_mut() {
            if let Some(old) = info.channels.remove(channel) {
                log::warn!(
                    "NETTY EVENT: remove not active channel[{} {}] from ConsumerGroupInfo groupChannelTable, consumer group: {group}",
                    old.client_id,
                    channel.remote_addr()
                );
                lost.push(group.clone());
            }
        }
        table.retain(|group, info| {
            let keep = !info.channels.is_empty();
            if !keep {
                log::info!("unregister consumer ok, no any connection, and remove consumer group, {group}");
            }
            keep
        });
        lost.sort();
        lost
    }

    /// Removes and closes the members not heard from for more than
    /// `expired_ms` (RocketMQ: scanNotActiveChannel; the broker runs it every
    /// 10 s with [`CHANNEL_EXPIRED_TIMEOUT_MS`]). Returns each removed
    /// (group, channel). Apache sends no notice for these; the connection's
    /// close, which follows, finds them gone already.
    pub fn scan_not_active_channels(&self, expired_ms: i64) -> Vec<(String, Channel)> {
        let now = now_millis();
        let mut removed = Vec::new();
        {
            let mut table = self.table.write();
            for (group, info) in table.iter_mut() {
                info.channels.retain(|ch, c| {
                    let keep = now - c.last_update_timestamp <= expired_ms;
                    if !keep {
                        log::warn!(
                            "SCAN: remove expired channel from ConsumerManager consumerTable. channel={}, consumerGroup={group}",
                            ch.remote_addr()
                        );
                        removed.push((group.clone(), ch.clone()));
                    }
                    keep
                });
            }
            table.retain(|group, info| {
                let keep = !info.channels.is_empty();
                if !keep {
                    log::warn!(
                        "SCAN: remove expired channel from ConsumerManager consumerTable, all clear, consumerGroup={group}"
                    );
                }
                keep
            });
        }
        removed.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.id().cmp(&b.1.id())));
        for (_, ch) in &removed {
            ch.close("consumer not heard from in time");
        }
        removed
    }

    /// The client ids of `group`'s members, sorted (GET_CONSUMER_LIST_BY_GROUP).
    pub fn consumer_ids(&self, group: &str) -> Vec<String> {
        self.table.read().get(group).map(ConsumerGroupInfo::all_client_ids).unwrap_or_default()
    }

    /// The connections of `group`'s members, oldest first.
    pub fn channels(&self, group: &str) -> Vec<Channel> {
        self.table.read().get(group).map(ConsumerGroupInfo::all_channels).unwrap_or_default()
    }

    /// The member of `group` with `client_id`.
    pub fn find_channel(&self, group: &str, client_id: &str) -> Option<ClientChannelInfo> {
        self.table.read().get(group).and_then(|g| g.find_channel(client_id).cloned())
    }

    /// `group`'s subscription to `topic` (RocketMQ: findSubscriptionData).
    pub fn subscription(&self, group: &str, topic: &str) -> Option<SubscriptionData> {
        self.table.read().get(group).and_then(|g| g.subscriptions.get(topic).cloned())
    }

    /// A copy of `group`'s state.
    pub fn group_info(&self, group: &str) -> Option<ConsumerGroupInfo> {
        self.table.read().get(group).cloned()
    }

    /// The GET_CONSUMER_CONNECTION_LIST body for `group`; `None` when no
    /// member is online (Apache answers CONSUMER_NOT_ONLINE).
    pub fn consumer_connection(&self, group: &str) -> Option<ConsumerConnection> {
        self.table.read().get(group).map(ConsumerGroupInfo::consumer_connection)
    }

    /// Every group with a member online, sorted.
    pub fn groups(&self) -> Vec<String> {
        let mut v: Vec<String> = self.table.read().keys().cloned().collect();
        v.sort();
        v
    }

    /// The online groups subscribing to `topic`, sorted (RocketMQ: queryTopicConsumeByWho).
    pub fn groups_subscribing(&self, topic: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .table
            .read()
            .iter()
            .filter(|(_, g)| g.subscriptions.contains_key(topic))
            .map(|(k, _)| k.clone())
            .collect();
        v.sort();
        v
    }
}

#[derive(Default)]
struct ProducerTables {
    groups: HashMap<String, HashMap<Channel, ClientChannelInfo>>,
    /// The connection of each client id (for transaction checks).
    clients: HashMap<String, Channel>,
}

impl ProducerTables {
    /// Forgets `client_id`'s connection if it is `channel`.
    fn forget_client(&mut self, client_id: &str, channel: &Channel) {
        if self.clients.get(client_id) == Some(channel) {
            self.clients.remove(client_id);
        }
    }
}

/// The producer groups and their members (RocketMQ: ProducerManager).
/// Thread-safe; every method takes `&self`.
#[derive(Default)]
pub struct ProducerManager {
    tables: RwLock<ProducerTables>,
    /// Round robin for [`ProducerManager::available_channel`].
    next: AtomicUsize,
}

impl ProducerManager {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `info` in `group` from a heartbeat, or refreshes its
    /// timestamp when its connection is known; true when new.
    pub fn register_producer(&self, group: &str, info: ClientChannelInfo) -> bool {
        let mut t = self.tables.write();
        if let Some(old) = t.groups.get_mut(group).and_then(|m| m.get_mut(&info.channel)) {
            old.last_update_timestamp = now_millis();
            return false;
        }
        log::info!(
            "new producer connected, group: {group} channel: {} clientId: {}",
            info.channel.remote_addr(),
            info.client_id
        );
        t.clients.insert(info.client_id.clone(), info.channel.clone());
        t.groups.entry(group.to_string()).or_default().insert(info.channel.clone(), info);
        true
    }

    /// Removes `channel` from `group` (UNREGISTER_CLIENT); true when it was there.
    pub fn unregister_producer(&self, group: &str, channel: &Channel) -> bool {
        let mut t = self.tables.write();
        let Some(members) = t.groups.get_mut(group) else { return false };
        let old = members.remove(channel);
        let empty = members.is_empty();
        if empty {
            t.groups.remove(group);
            log::info!("unregister a producer group[{group}] from groupChannelTable");
        }
        match old {
            Some(old) => {
                log::info!("unregister a producer[{group}] from groupChannelTable {}", old.client_id);
                t.forget_client(&old.client_id, channel);
                true
            }
            None => false,
        }
    }

    /// Removes a closed connection from every group; returns the groups it
    /// was in, sorted.
    pub fn on_channel_closed(&self, channel: &Channel) -> Vec<String> {
        let mut t = self.tables.write();
        let mut lost = Vec::new();
        let mut gone_clients = Vec::new();
        for (group, members) in t.groups.iter_mut() {
            if let Some(old) = members.remove(channel) {
                log::info!(
                    "NETTY EVENT: remove channel[{} {}] from ProducerManager groupChannelTable, producer group: {group}",
                    old.client_id,
                    channel.remote_addr()
                );
                lost.push(group.clone());
                gone_clients.push(old.client_id);
            }
        }
        t.groups.retain(|_, m| !m.is_empty());
        for id in gone_clients {
            t.forget_client(&id, channel);
        }
        lost.sort();
        lost
    }

    /// Removes and closes the producers not heard from for more than
    /// `expired_ms` (RocketMQ: scanNotActiveChannel); returns each removed
    /// (group, channel).
    pub fn scan_not_active_channels(&self, expired_ms: i64) -> Vec<(String, Channel)> {
        let now = now_millis();
        let mut removed = Vec::new();
        let mut gone_clients = Vec::new();
        {
            let mut t = self.tables.write();
            for (group, members) in t.groups.iter_mut() {
                members.retain(|ch, c| {
                    let keep = now - c.last_update_timestamp <= expired_ms;
                    if !keep {
                        log::warn!(
                            "SCAN: remove expired channel[{}] from ProducerManager groupChannelTable, producer group name: {group}",
                            ch.remote_addr()
                        );
                        removed.push((group.clone(), ch.clone()));
                        gone_clients.push((c.client_id.clone(), ch.clone()));
                    }
                    keep
                });
            }
            t.groups.retain(|_, m| !m.is_empty());
            for (id, ch) in &gone_clients {
                t.forget_client(id, ch);
            }
        }
        removed.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.id().cmp(&b.1.id())));
        for (_, ch) in &removed {
            ch.close("producer not heard from in time");
        }
        removed
    }

    /// Copies of every group's members (RocketMQ: getProducerTable), each
    /// group's oldest connection first.
    pub fn groups(&self) -> HashMap<String, Vec<ClientChannelInfo>> {
        self.tables
            .read()
            .groups
            .iter()
            .map(|(g, m)| {
                let mut v: Vec<ClientChannelInfo> = m.values().cloned().collect();
                v.sort_by_key(|c| c.channel.id());
                (g.clone(), v)
            })
            .collect()
    }

    /// The connection of producer `client_id` (RocketMQ: findChannel).
    pub fn find_channel(&self, client_id: &str) -> Option<Channel> {
        self.tables.read().clients.get(client_id).cloned()
    }

    /// An open connection of `group`, taken in turn (RocketMQ:
    /// getAvailableChannel, which asks a producer to check a transaction).
    pub fn available_channel(&self, group: &str) -> Option<Channel> {
        let mut channels: Vec<Channel> = self.tables.read().groups.get(group)?.keys().cloned().collect();
        if channels.is_empty() {
            return None;
        }
        channels.sort_by_key(Channel::id);
        let start = self.next.fetch_add(1, Ordering::Relaxed) % channels.len();
        channels.iter().cycle().skip(start).take(channels.len()).find(|c| c.is_active()).cloned()
    }
}

/// Sends NOTIFY_CONSUMER_IDS_CHANGED (oneway, header `consumerGroup`) to
/// every member of `group`, so each rebalances (RocketMQ:
/// Broker2Client.notifyConsumerIdsChanged over the group's channels). A send
/// that fails is logged, never returned.
pub fn notify_consumer_ids_changed(mgr: &ConsumerManager, group: &str) {
    let header = NotifyConsumerIdsChangedRequestHeader { consumer_group: group.to_string() };
    for channel in mgr.channels(group) {
        let cmd = RemotingCommand::request_with(request::NOTIFY_CONSUMER_IDS_CHANGED, &header);
        if let Err(e) = channel.send_oneway(cmd) {
            log::error!(
                "notifyConsumerIdsChanged exception. group={group}, channel={}, error={e}",
                channel.remote_addr()
            );
        }
    }
}
