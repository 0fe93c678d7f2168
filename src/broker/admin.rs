//! The broker's admin and query requests (RocketMQ: AdminBrokerProcessor,
//! and VIEW_MESSAGE_BY_ID of QueryMessageProcessor).
//!
//! Done: UPDATE_AND_CREATE_TOPIC, DELETE_TOPIC_IN_BROKER, GET_ALL_TOPIC_CONFIG,
//! UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, GET_ALL_SUBSCRIPTIONGROUP_CONFIG,
//! GET_MAX_OFFSET, GET_MIN_OFFSET, SEARCH_OFFSET_BY_TIMESTAMP,
//! GET_EARLIEST_MSG_STORETIME, VIEW_MESSAGE_BY_ID, QUERY_TOPIC_CONSUME_BY_WHO,
//! GET_ALL_CONSUMER_OFFSET, GET_ALL_DELAY_OFFSET, GET_CONSUMER_CONNECTION_LIST,
//! GET_BROKER_RUNTIME_INFO, GET_TOPIC_STATS_INFO, GET_CONSUME_STATS, and
//! GET_CONSUMER_RUNNING_INFO (forwarded to the consumer).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::broker::controller::BrokerShared;
use crate::broker::subscription_group::SubscriptionGroupConfig;
use crate::broker::topic_config::validate_topic;
use crate::common::time::now_millis;
use crate::remoting::body::{
    ConsumeStats, ConsumerOffsetSerializeWrapper, GroupList, KvTable, MessageQueue, OffsetTable, OffsetWrapper,
    TopicConfig, TopicOffset, TopicStatsTable,
};
use crate::remoting::code::{request, response};
use crate::remoting::command::CURRENT_VERSION;
use crate::remoting::headers::*;
use crate::remoting::json::{from_body, to_body};
use crate::remoting::{Channel, RemotingCommand, RequestProcessor};

pub struct AdminBrokerProcessor(pub Arc<BrokerShared>);

impl RequestProcessor for AdminBrokerProcessor {
    fn process(&self, channel: &Channel, req: RemotingCommand) -> Option<RemotingCommand> {
        match req.code {
            request::LOCK_BATCH_MQ | request::UNLOCK_BATCH_MQ => {
                crate::broker::rebalance_lock::process(&self.0, channel, &req)
            }
            code => Some(self.admin(channel, &req, code)),
        }
    }
}

impl AdminBrokerProcessor {
    fn admin(&self, channel: &Channel, req: &RemotingCommand, code: i32) -> RemotingCommand {
        match code {
            request::UPDATE_AND_CREATE_TOPIC => self.update_and_create_topic(channel, req),
            request::DELETE_TOPIC_IN_BROKER => self.delete_topic(channel, req),
            request::GET_ALL_TOPIC_CONFIG => self.get_all_topic_config(),
            request::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP => self.update_and_create_subscription_group(channel, req),
            request::GET_ALL_SUBSCRIPTIONGROUP_CONFIG => self.get_all_subscription_group(),
            request::GET_MAX_OFFSET => self.get_max_offset(req),
            request::GET_MIN_OFFSET => self.get_min_offset(req),
            request::SEARCH_OFFSET_BY_TIMESTAMP => self.search_offset_by_timestamp(req),
            request::GET_EARLIEST_MSG_STORETIME => self.get_earliest_msg_storetime(req),
            request::VIEW_MESSAGE_BY_ID => self.view_message_by_id(req),
            request::QUERY_TOPIC_CONSUME_BY_WHO => self.query_topic_consume_by_who(req),
            request::GET_ALL_CONSUMER_OFFSET => self.get_all_consumer_offset(),
            request::GET_ALL_DELAY_OFFSET => RemotingCommand::success().with_body(self.0.schedule.offsets_json()),
            request::GET_CONSUMER_CONNECTION_LIST => self.get_consumer_connection_list(req),
            request::GET_BROKER_RUNTIME_INFO => self.get_broker_runtime_info(),
            request::GET_TOPIC_STATS_INFO => self.get_topic_stats_info(req),
            request::GET_CONSUME_STATS => self.get_consume_stats(req),
            request::GET_CONSUMER_RUNNING_INFO => self.get_consumer_running_info(req),
            request::CONSUME_MESSAGE_DIRECTLY => self.consume_message_directly(req),
            request::INVOKE_BROKER_TO_RESET_OFFSET => self.reset_offset(req),
            code => RemotingCommand::error(
                response::REQUEST_CODE_NOT_SUPPORTED,
                format!(" request type {code} not supported"),
            ),
        }
    }
}

impl AdminBrokerProcessor {
    // ------------------------------------------------------------ topics

    fn update_and_create_topic(&self, channel: &Channel, req: &RemotingCommand) -> RemotingCommand {
        let b = &self.0;
        let h: CreateTopicRequestHeader = crate::header_or_answer!(req);
        log::info!("updateAndCreateTopic called by {}", channel.remote_addr());
        if let Err(remark) = validate_topic(&h.topic) {
            return RemotingCommand::error(response::SYSTEM_ERROR, remark);
        }
        if let Err(remark) = b.topics.check_not_system(&h.topic) {
            return RemotingCommand::error(response::SYSTEM_ERROR, remark);
        }
        let tc = TopicConfig {
            topic_name: h.topic.clone(),
            read_queue_nums: h.read_queue_nums,
            write_queue_nums: h.write_queue_nums,
            perm: h.perm,
            topic_filter_type: if h.topic_filter_type.is_empty() {
                TopicConfig::default().topic_filter_type
            } else {
                h.topic_filter_type
            },
            topic_sys_flag: h.topic_sys_flag.unwrap_or(0),
            order: false,
        };
        if let Err(e) = b.topics.update(tc) {
            return RemotingCommand::error(response::SYSTEM_ERROR, format!("cannot persist topic {}: {e}", h.topic));
        }
        b.register_now();
        RemotingCommand::success()
    }

    fn delete_topic(&self, channel: &Channel, req: &RemotingCommand) -> RemotingCommand {
        let b = &self.0;
        let h: DeleteTopicRequestHeader = crate::header_or_answer!(req);
        log::info!("deleteTopic called by {}", channel.remote_addr());
        if let Err(remark) = validate_topic(&h.topic) {
            return RemotingCommand::error(response::SYSTEM_ERROR, remark);
        }
        if let Err(remark) = b.topics.check_not_system(&h.topic) {
            return RemotingCommand::error(response::SYSTEM_ERROR, remark);
        }
        if let Err(e) = b.topics.delete(&h.topic) {
            return RemotingCommand::error(
                response::SYSTEM_ERROR,
                format!("cannot persist the topics without {}: {e}", h.topic),
            );
        }
        if let Err(e) = b.store.delete_topic(&h.topic) {
            return RemotingCommand::error(
                response::SYSTEM_ERROR,
                format!("cannot delete the consume queues of {}: {e}", h.topic),
            );
        }
        b.offsets.remove_topic(&h.topic);
        RemotingCommand::success()
    }

    fn get_all_topic_config(&self) -> RemotingCommand {
        let w = self.0.topics.wrapper();
        if w.topic_config_table.is_empty() {
            return RemotingCommand::error(response::SYSTEM_ERROR, "No topic in this broker");
        }
        RemotingCommand::success().with_body(to_body(&w))
    }

    // ------------------------------------------------------------ groups

    fn update_and_create_subscription_group(&self, channel: &Channel, req: &RemotingCommand) -> RemotingCommand {
        log::info!("updateAndCreateSubscriptionGroup called by {}", channel.remote_addr());
        let body = req.body.bytes();
        if body.iter().all(u8::is_ascii_whitespace) || body.as_ref() == b"null" {
            return RemotingCommand::success();
        }
        let cfg: SubscriptionGroupConfig = match from_body(&body) {
            Ok(c) => c,
            Err(e) => {
                return RemotingCommand::error(
                    response::SYSTEM_ERROR,
                    format!("bad SubscriptionGroupConfig body: {e}"),
                );
            }
        };
        if let Err(e) = self.0.groups.update(cfg) {
            return RemotingCommand::error(
                response::SYSTEM_ERROR,
                format!("cannot persist the subscription groups: {e}"),
            );
        }
        RemotingCommand::success()
    }

    fn get_all_subscription_group(&self) -> RemotingCommand {
        RemotingCommand::success().with_body(to_body(&self.0.groups.wrapper()))
    }

    // ------------------------------------------------------------ offsets

    fn get_max_offset(&self, req: &RemotingCommand) -> RemotingCommand {
        let h: QueueRequestHeader = crate::header_or_answer!(req);
        let offset = self.0.store.max_offset_in_queue(&h.topic, h.queue_id);
        RemotingCommand::success_with(&OffsetResponseHeader { offset })
    }

    fn get_min_offset(&self, req: &RemotingCommand) -> RemotingCommand {
        let h: QueueRequestHeader = crate::header_or_answer!(req);
        let offset = self.0.store.min_offset_in_queue(&h.topic, h.queue_id);
        RemotingCommand::success_with(&OffsetResponseHeader { offset })
    }

    fn search_offset_by_timestamp(&self, req: &RemotingCommand) -> RemotingCommand {
        let h: SearchOffsetRequestHeader = crate::header_or_answer!(req);
        let offset = self.0.store.offset_in_queue_by_time(&h.topic, h.queue_id, h.timestamp);
        RemotingCommand::success_with(&OffsetResponseHeader { offset })
    }

    fn get_earliest_msg_storetime(&self, req: &RemotingCommand) -> RemotingCommand {
        let h: QueueRequestHeader = crate::header_or_answer!(req);
        let timestamp = self.0.store.earliest_message_time(&h.topic, h.queue_id).unwrap_or(-1);
        RemotingCommand::success_with(&GetEarliestMsgStoretimeResponseHeader { timestamp })
    }

    /// The stored record at a CommitLog offset, bytes as in the CommitLog.
    fn view_message_by_id(&self, req: &RemotingCommand) -> RemotingCommand {
        let h: ViewMessageRequestHeader = crate::header_or_answer!(req);
        match self.0.store.select_one_message_by_offset(h.offset) {
            Some(record) => RemotingCommand::success().with_body(record),
            None => RemotingCommand::error(
                response::SYSTEM_ERROR,
                format!("can not find message by the offset, {}", h.offset),
            ),
        }
    }

    fn get_all_consumer_offset(&self) -> RemotingCommand {
        let table = self.0.offsets.table();
        let w = ConsumerOffsetSerializeWrapper {
            offset_table: table.into_iter().map(|(k, q)| (k, q.into_iter().collect::<BTreeMap<_, _>>())).collect(),
        };
        RemotingCommand::success().with_body(to_body(&w))
    }

    // ------------------------------------------------------------ consumers

    fn query_topic_consume_by_who(&self, req: &RemotingCommand) -> RemotingCommand {
        let h: TopicRequestHeader = crate::header_or_answer!(req);
        let mut groups: BTreeSet<String> = self.0.consumers.groups_subscribing(&h.topic).into_iter().collect();
        groups.extend(self.0.offsets.groups_of_topic(&h.topic));
        RemotingCommand::success().with_body(to_body(&GroupList { group_list: groups }))
    }

    fn get_consumer_connection_list(&self, req: &RemotingCommand) -> RemotingCommand {
        let h: GetConsumerConnectionListRequestHeader = crate::header_or_answer!(req);
        match self.0.consumers.consumer_connection(&h.consumer_group) {
            Some(c) => RemotingCommand::success().with_body(to_body(&c)),
            None => RemotingCommand::error(
                response::CONSUMER_NOT_ONLINE,
                format!("the consumer group[{}] not online", h.consumer_group),
            ),
        }
    }

    fn get_consumer_running_info(&self, req: &RemotingCommand) -> RemotingCommand {
        let h: GetConsumerRunningInfoRequestHeader = crate::header_or_answer!(req);
        self.forward_to_consumer(req, &h.consumer_group, &h.client_id, crate::remoting::Body::default())
    }

    /// CONSUME_MESSAGE_DIRECTLY: the message `msgId` names goes, with the
    /// request's header, to that consumer, whose answer comes back
    /// (RocketMQ: AdminBrokerProcessor.consumeMessageDirectly).
    fn consume_message_directly(&self, req: &RemotingCommand) -> RemotingCommand {
        let h: ConsumeMessageDirectlyResultRequestHeader = crate::header_or_answer!(req);
        let Some(client_id) = h.client_id.as_deref() else {
            return RemotingCommand::error(response::SYSTEM_ERROR, "clientId is required");
        };
        let offset = match h.msg_id.as_deref().map(crate::common::message::decode_message_id) {
            Some(Ok((_, offset))) => offset,
            _ => return RemotingCommand::error(response::SYSTEM_ERROR, format!("bad msgId {:?}", h.msg_id)),
        };
        let Some(bytes) = self.0.store.select_one_message_by_offset(offset) else {
            return RemotingCommand::error(response::SYSTEM_ERROR, format!("no message at CommitLog offset {offset}"));
        };
        self.forward_to_consumer(req, &h.consumer_group, client_id, bytes.into())
    }

    /// Sends `req` (a new opaque, same header, `body`) to `client_id` of
    /// `group` and returns its answer.
    fn forward_to_consumer(
        &self,
        req: &RemotingCommand,
        group: &str,
        client_id: &str,
        body: crate::remoting::Body,
    ) -> RemotingCommand {
        let Some(info) = self.0.consumers.find_channel(group, client_id) else {
            return RemotingCommand::error(
                response::SYSTEM_ERROR,
                format!("The Consumer <{group}> <{client_id}> not online"),
            );
        };
        let mut forward = RemotingCommand::request(req.code).with_body(body);
        forward.ext_fields = req.ext_fields.clone();
        match self.0.invoker.invoke_sync(&info.channel, forward, std::time::Duration::from_secs(5)) {
            Ok(mut r) => {
                r.flag = 0;
                r
            }
            Err(rmq_err) => RemotingCommand::error(
                response::SYSTEM_ERROR,
                format!("invoke the consumer <{group}> <{client_id}> failed: {rmq_err}"),
            ),
        }
    }

    /// INVOKE_BROKER_TO_RESET_OFFSET: each queue's offset at `timestamp`
    /// (-1: the end), or the group's own when that is earlier and not
    /// forced, sent to every consumer of the group with
    /// RESET_CONSUMER_CLIENT_OFFSET; the table is the answer (RocketMQ:
    /// Broker2Client.resetOffset). The consumers commit the new offsets.
    fn reset_offset(&self, req: &RemotingCommand) -> RemotingCommand {
        let b = &self.0;
        let h: ResetOffsetRequestHeader = crate::header_or_answer!(req);
        let Some(tc) = b.topics.select(&h.topic) else {
            return RemotingCommand::error(response::TOPIC_NOT_EXIST, format!("topic[{}] not exist", h.topic));
        };
        let mut table = OffsetTable::default();
        for qid in 0..tc.write_queue_nums.max(0) {
            let Some(consumer_offset) = b.offsets.query(&h.group, &h.topic, qid) else {
                return RemotingCommand::error(
                    response::CONSUMER_NOT_ONLINE,
                    format!("THe consumer group <{}> not exist", h.group),
                );
            };
            let at = if h.timestamp == -1 {
                b.store.max_offset_in_queue(&h.topic, qid)
            } else {
                b.store.offset_in_queue_by_time(&h.topic, qid, h.timestamp)
            };
            let offset = if h.is_force || at < consumer_offset { at } else { consumer_offset };
            table.offset_table.push((MessageQueue::new(h.topic.clone(), b.config.broker_name.clone(), qid), offset));
        }
        let body = table.encode();
        for channel in b.consumers.channels(&h.group) {
            let cmd = RemotingCommand::request_with(request::RESET_CONSUMER_CLIENT_OFFSET, &h).with_body(body.clone());
            if let Err(e) = channel.send_oneway(cmd) {
                log::warn!("reset offset of {} to {}: {e}", h.group, channel.remote_addr());
            }
        }
        RemotingCommand::success().with_body(body)
    }

    // ------------------------------------------------------------ statistics

    fn get_topic_stats_info(&self, req: &RemotingCommand) -> RemotingCommand {
        let b = &self.0;
        let h: TopicRequestHeader = crate::header_or_answer!(req);
        let Some(tc) = b.topics.select(&h.topic) else {
            return RemotingCommand::error(response::TOPIC_NOT_EXIST, format!("topic[{}] not exist", h.topic));
        };
        let mut table = TopicStatsTable::default();
        for qid in 0..tc.write_queue_nums.max(0) {
            let min = b.store.min_offset_in_queue(&h.topic, qid).max(0);
            let max = b.store.max_offset_in_queue(&h.topic, qid).max(0);
            let last = if max > 0 { b.store.message_store_timestamp(&h.topic, qid, max - 1).unwrap_or(-1) } else { 0 };
            table.offset_table.push((
                MessageQueue::new(h.topic.clone(), b.config.broker_name.clone(), qid),
                TopicOffset { min_offset: min, max_offset: max, last_update_timestamp: last },
            ));
        }
        RemotingCommand::success().with_body(table.encode())
    }

    /// consumeTps is 0: the broker keeps no per-group statistics yet.
    fn get_consume_stats(&self, req: &RemotingCommand) -> RemotingCommand {
        let b = &self.0;
        let h: GetConsumeStatsRequestHeader = crate::header_or_answer!(req);
        let group = h.consumer_group;
        let topics: BTreeSet<String> = match h.topic.filter(|t| !t.trim().is_empty()) {
            Some(t) => [t].into(),
            None => b.offsets.topics_of_group(&group),
        };
        let online = b.consumers.group_info(&group);
        let mut stats = ConsumeStats::default();
        for topic in topics {
            let Some(tc) = b.topics.select(&topic) else {
                log::warn!("consumeStats, topic config not exist, {topic}");
                continue;
            };
            if let Some(g) = &online
                && !g.subscriptions.is_empty()
                && !g.subscriptions.contains_key(&topic)
            {
                log::warn!("consumeStats, the consumer group[{group}], topic[{topic}] not exist");
                continue;
            }
            for qid in 0..tc.read_queue_nums.max(0) {
                let broker_offset = b.store.max_offset_in_queue(&topic, qid).max(0);
                let consumer_offset = b.offsets.query(&group, &topic, qid).unwrap_or(-1).max(0);
                let last_timestamp = if consumer_offset > 0 {
                    b.store.message_store_timestamp(&topic, qid, consumer_offset - 1).filter(|t| *t > 0).unwrap_or(0)
                } else {
                    0
                };
                stats.offset_table.push((
                    MessageQueue::new(topic.clone(), b.config.broker_name.clone(), qid),
                    OffsetWrapper { broker_offset, consumer_offset, last_timestamp },
                ));
            }
        }
        RemotingCommand::success().with_body(stats.encode())
    }

    /// Apache's keys. Real: brokerVersion(Desc), bootTimestamp (when the
    /// store opened: its `abort` file's time), runtime, commitLogMin/MaxOffset,
    /// dispatchBehindBytes, earliestMessageTimeStamp, the disk ratios, the
    /// thread pool capacities, commitLogDirCapacity. Not measured yet, sent
    /// as zeros so Apache's tools can parse them: the put/get totals and
    /// TPS, the thread pool queue sizes and head wait times, the put latencies.
    fn get_broker_runtime_info(&self) -> RemotingCommand {
        let b = &self.0;
        let sc = b.store.config();
        let mut t: HashMap<String, String> = HashMap::new();
        let mut put = |k: &str, v: String| {
            t.insert(k.to_string(), v);
        };
        put("brokerVersionDesc", version_desc(CURRENT_VERSION));
        put("brokerVersion", CURRENT_VERSION.to_string());
        let now = now_millis();
        let boot = std::fs::metadata(sc.abort_path())
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(now, |d| d.as_millis() as i64);
        put("bootTimestamp", boot.to_string());
        put("runtime", format_runtime(now - boot));
        put("commitLogMinOffset", b.store.min_phy_offset().to_string());
        put("commitLogMaxOffset", b.store.max_phy_offset().to_string());
        put("dispatchBehindBytes", b.store.dispatch_behind_bytes().to_string());
        let earliest = b.store.look_message_by_offset(b.store.min_phy_offset()).map_or(-1, |m| m.store_timestamp);
        put("earliestMessageTimeStamp", earliest.to_string());
        let root = &sc.store_path_root_dir;
        use crate::store::disk::{space as disk_space, used_ratio as disk_used_ratio};
        put("commitLogDiskRatio", disk_used_ratio(root).map_or("-1".into(), |r| r.to_string()));
        put("consumeQueueDiskRatio", disk_used_ratio(&sc.consume_queue_dir()).map_or("-1".into(), |r| r.to_string()));
        if let Some((total, free)) = disk_space(root) {
            put("commitLogDirCapacity", format!("Total : {}, Free : {}.", human_bytes(total), human_bytes(free)));
        }
        put("sendThreadPoolQueueCapacity", b.config.send_thread_pool_queue_capacity.to_string());
        put("pullThreadPoolQueueCapacity", b.config.pull_thread_pool_queue_capacity.to_string());
        put("queryThreadPoolQueueCapacity", b.config.query_thread_pool_queue_capacity.to_string());
        put("EndTransactionThreadPoolQueueCapacity", b.config.end_transaction_pool_queue_capacity.to_string());
        for k in [
            "msgPutTotalYesterdayMorning",
            "msgPutTotalTodayMorning",
            "msgPutTotalTodayNow",
            "msgGetTotalYesterdayMorning",
            "msgGetTotalTodayMorning",
            "msgGetTotalTodayNow",
            "sendThreadPoolQueueSize",
            "pullThreadPoolQueueSize",
            "queryThreadPoolQueueSize",
            "EndTransactionQueueSize",
            "sendThreadPoolQueueHeadWaitTimeMills",
            "pullThreadPoolQueueHeadWaitTimeMills",
            "queryThreadPoolQueueHeadWaitTimeMills",
            "putMessageTimesTotal",
            "putMessageSizeTotal",
            "putMessageFailedTimes",
        ] {
            put(k, "0".into());
        }
        for k in ["putTps", "getFoundTps", "getMissTps", "getTotalTps", "getTransferedTps"] {
            put(k, "0.00 0.00 0.00".into());
        }
        for k in ["putLatency99", "putLatency999"] {
            put(k, "0.00".into());
        }
        RemotingCommand::success().with_body(to_body(&KvTable { table: t }))
    }
}

/// Apache's version name (MQVersion.getVersionDesc) of the version this
/// crate speaks; any other ordinal reads as its number.
fn version_desc(v: i32) -> String {
    if v == CURRENT_VERSION { "V4_9_8".to_string() } else { format!("V{v}") }
}

/// Apache's runtime text: `[ D days, H hours, M minutes, S seconds ]`.
fn format_runtime(millis: i64) -> String {
    let s = millis.max(0) / 1000;
    format!("[ {} days, {} hours, {} minutes, {} seconds ]", s / 86400, s % 86400 / 3600, s % 3600 / 60, s % 60)
}

/// Apache's MixAll.humanReadableByteCount(bytes, false): `512 B`, `1.5 KiB`, ...
fn human_bytes(bytes: u64) -> String {
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let exp = ((bytes as f64).ln() / 1024f64.ln()) as i32;
    let unit = ["K", "M", "G", "T", "P", "E"].get((exp - 1).clamp(0, 5) as usize).copied().unwrap_or("E");
    format!("{:.1} {unit}iB", bytes as f64 / 1024f64.powi(exp))
}
