//! The broker's request processors (RocketMQ: SendMessageProcessor,
//! PullMessageProcessor, ClientManageProcessor, ConsumerManageProcessor,
//! and the offset queries of AdminBrokerProcessor).

use std::net::SocketAddr;
use std::sync::{Arc, Weak};

use bytes::Bytes;

use crate::broker::client_manager::{ClientChannelInfo, notify_consumer_ids_changed};
use crate::broker::controller::BrokerShared;
use crate::broker::long_polling::HeldPull;
use crate::broker::schedule;
use crate::broker::topic_config::{check_send_allowed, retry_topic, validate_topic};
use crate::common::message::{self, MessageToStore, property};
use crate::common::time::now_millis;
use crate::remoting::body::{GetConsumerListByGroupResponseBody, HeartbeatData, SubscriptionData, perm};
use crate::remoting::code::{request, response};
use crate::remoting::command::Body;
use crate::remoting::headers::*;
use crate::remoting::json::{from_body, to_body};
use crate::remoting::{Channel, RemotingCommand, ReplyTo, RequestProcessor};
use crate::store::{GetMessageStatus, MessageFilter, PutMessageStatus};

/// Apache's suffix for "apply first" remarks (RocketMQ: FAQUrl.suggestTodo).
const FAQ: &str = "\nSee http://rocketmq.apache.org/docs/faq/ for further details.";

/// Pull request sys flags (RocketMQ: PullSysFlag).
pub mod pull_flag {
    pub const COMMIT_OFFSET: i32 = 0x1;
    pub const SUSPEND: i32 = 0x1 << 1;
    pub const SUBSCRIPTION: i32 = 0x1 << 2;
    pub const CLASS_FILTER: i32 = 0x1 << 3;
}

// ---------------------------------------------------------------- send

pub struct SendMessageProcessor(pub Arc<BrokerShared>);

impl RequestProcessor for SendMessageProcessor {
    fn process(&self, channel: &Channel, req: RemotingCommand) -> Option<RemotingCommand> {
        let h: SendMessageRequestHeader = match req.code {
            request::SEND_MESSAGE => crate::header_or_answer!(req),
            request::SEND_MESSAGE_V2 | request::SEND_BATCH_MESSAGE => {
                let v2: SendMessageRequestHeaderV2 = crate::header_or_answer!(req);
                v2.into()
            }
            request::CONSUMER_SEND_MSG_BACK => {
                let h: ConsumerSendMsgBackRequestHeader = crate::header_or_answer!(req);
                return Some(self.send_back(&req, h));
            }
            code => {
                return Some(RemotingCommand::error(
                    response::REQUEST_CODE_NOT_SUPPORTED,
                    format!(" request type {code} not supported"),
                ));
            }
        };
        let mut resp = self.send(channel, &req, h);
        resp.ext_fields.insert(property::MSG_REGION, "DefaultRegion");
        resp.ext_fields.insert(property::TRACE_ON, "true");
        Some(resp)
    }
}

impl SendMessageProcessor {
    fn send(&self, channel: &Channel, req: &RemotingCommand, h: SendMessageRequestHeader) -> RemotingCommand {
        let b = &self.0;
        if !perm::is_writeable(b.config.broker_permission as i32) {
            return RemotingCommand::error(
                response::NO_PERMISSION,
                format!("the broker[{}] sending message is forbidden", b.config.broker_ip1),
            );
        }
        if let Err(remark) = validate_topic(&h.topic) {
            return RemotingCommand::error(response::SYSTEM_ERROR, remark);
        }
        if let Err(remark) = check_send_allowed(&h.topic) {
            return RemotingCommand::error(response::NO_PERMISSION, remark);
        }
        let topic_config = match b.topics.select(&h.topic) {
            Some(tc) => tc,
            None => {
                let created = b.topics.create_in_send(&h.topic, &h.default_topic, h.default_topic_queue_nums, 0);
                let created = match created {
                    Ok(Some(tc)) => Some(tc),
                    Ok(None) if h.topic.starts_with(crate::broker::topic_config::RETRY_GROUP_TOPIC_PREFIX) => {
                        b.topics.create_in_send_back(&h.topic, 1, perm::PERM_READ | perm::PERM_WRITE, 0).ok()
                    }
                    Ok(None) => None,
                    Err(e) => {
                        return RemotingCommand::error(
                            response::SYSTEM_ERROR,
                            format!("cannot create topic {}: {e}", h.topic),
                        );
                    }
                };
                match created {
                    Some(tc) => {
                        b.register_now();
                        tc
                    }
                    None => {
                        return RemotingCommand::error(
                            response::TOPIC_NOT_EXIST,
                            format!("topic[{}] not exist, apply first please!{FAQ}", h.topic),
                        );
                    }
                }
            }
        };
        if !perm::is_writeable(topic_config.perm) {
            return RemotingCommand::error(
                response::NO_PERMISSION,
                format!("the topic[{}] sending message is forbidden", h.topic),
            );
        }
        let max_queue = topic_config.write_queue_nums.max(topic_config.read_queue_nums);
        if h.queue_id >= max_queue {
            return RemotingCommand::error(
                response::SYSTEM_ERROR,
                format!(
                    "request queueId[{}] is illegal, {:?} Producer: {}",
                    h.queue_id,
                    topic_config,
                    channel.remote_addr()
                ),
            );
        }
        let queue_id =
            if h.queue_id < 0 { (rand_u32() % topic_config.write_queue_nums.max(1) as u32) as i32 } else { h.queue_id };
        let body = req.body.to_bytes();
        if body.len() > b.config.store.max_message_size {
            return RemotingCommand::error(
                response::MESSAGE_ILLEGAL,
                format!(
                    "the message body size {} exceeds the limit of {} bytes",
                    body.len(),
                    b.config.store.max_message_size
                ),
            );
        }
        let mut props = message::string_to_properties(h.properties.as_deref().unwrap_or(""));
        let wait = props.get(property::WAIT).is_none_or(|w| !w.eq_ignore_ascii_case("false"));
        props.insert(property::CLUSTER, b.config.broker_cluster_name.clone());
        let base = MessageToStore {
            topic: h.topic.clone(),
            queue_id,
            flag: h.flag,
            body: Bytes::new(),
            properties: String::new(),
            tags_code: 0,
            sys_flag: h.sys_flag,
            born_timestamp: h.born_timestamp,
            born_host: channel.remote_addr(),
            store_host: b.store_host,
            reconsume_times: h.reconsume_times.unwrap_or(0),
            prepared_transaction_offset: 0,
        };
        let msgs = if req.code == request::SEND_BATCH_MESSAGE || h.batch == Some(true) {
            match decode_batch(&body, &base, &props) {
                Ok(m) if !m.is_empty() => m,
                Ok(_) => return RemotingCommand::error(response::MESSAGE_ILLEGAL, "the batch holds no message"),
                Err(e) => {
                    return RemotingCommand::error(
                        response::MESSAGE_ILLEGAL,
                        format!("the batch body cannot be read: {e}"),
                    );
                }
            }
        } else {
            let mut m = base;
            m.tags_code = props.get(property::TAGS).map_or(0, message::tags_hash);
            m.properties = message::properties_to_string(&props);
            m.body = body;
            let level = props.get(property::DELAY).and_then(|l| l.trim().parse::<i32>().ok()).unwrap_or(0);
            if level > 0
                && message::sys_flag::transaction_value(m.sys_flag) != message::sys_flag::TRANSACTION_PREPARED_TYPE
            {
                schedule::to_schedule_topic(&mut m, level, b.config.max_delay_level() as i32);
            }
            vec![m]
        };
        if msgs.iter().any(|m| m.properties.len() > i16::MAX as usize) {
            return RemotingCommand::error(response::MESSAGE_ILLEGAL, "the message properties exceed 32767 bytes");
        }
        let r = b.store.put_messages(&msgs, wait);
        let code = match r.status {
            PutMessageStatus::PutOk => response::SUCCESS,
            PutMessageStatus::FlushDiskTimeout => response::FLUSH_DISK_TIMEOUT,
            PutMessageStatus::MessageIllegal => {
                return RemotingCommand::error(
                    response::MESSAGE_ILLEGAL,
                    format!(
                        "the message is illegal, maybe msg body or properties length not matched. msg body length limit {}B, msg properties length limit 32KB. {}",
                        b.config.store.max_message_size,
                        r.remark.unwrap_or_default()
                    ),
                );
            }
            PutMessageStatus::CreateMappedFileFailed => {
                return RemotingCommand::error(
                    response::SYSTEM_ERROR,
                    "create mapped file failed, server is busy or broken.",
                );
            }
            PutMessageStatus::ServiceNotAvailable => {
                let why = r.remark.unwrap_or_else(|| "service not available now".into());
                return RemotingCommand::error(response::SERVICE_NOT_AVAILABLE, why);
            }
            PutMessageStatus::UnknownError => return RemotingCommand::error(response::SYSTEM_ERROR, "UNKNOWN_ERROR"),
        };
        let Some(a) = r.appended else {
            return RemotingCommand::error(response::SYSTEM_ERROR, "putMessageResult is null");
        };
        let mut resp = RemotingCommand::response(code, None);
        resp.set_header(&SendMessageResponseHeader {
            msg_id: a.msg_id,
            queue_id,
            queue_offset: a.logics_offset,
            transaction_id: None,
        });
        resp
    }
}

impl SendMessageProcessor {
    /// CONSUMER_SEND_MSG_BACK: a message the consumer failed goes to
    /// `%RETRY%<group>` after a delay (level 3 + reconsume times, or the
    /// level asked for), or to `%DLQ%<group>` once it was consumed
    /// `retryMaxTimes` times (or the level is negative).
    fn send_back(&self, req: &RemotingCommand, h: ConsumerSendMsgBackRequestHeader) -> RemotingCommand {
        let b = &self.0;
        let Some(group) = b.groups.find_or_create(&h.group) else {
            return RemotingCommand::error(
                response::SUBSCRIPTION_GROUP_NOT_EXIST,
                format!("subscription group not exist, {} {FAQ}", h.group),
            );
        };
        if !perm::is_writeable(b.config.broker_permission as i32) {
            return RemotingCommand::error(
                response::NO_PERMISSION,
                format!("the broker[{}] sending message is forbidden", b.config.broker_ip1),
            );
        }
        if group.retry_queue_nums <= 0 {
            return RemotingCommand::success();
        }
        let Some(mut msg) = b.store.look_message_by_offset(h.offset) else {
            return RemotingCommand::error(
                response::SYSTEM_ERROR,
                format!("look message by offset failed, {}", h.offset),
            );
        };
        let mut props = msg.message.properties.clone();
        if props.get(property::RETRY_TOPIC).is_none() {
            props.insert(property::RETRY_TOPIC, msg.message.topic.clone());
        }
        props.insert(property::WAIT, "false");
        // Clients from 3.4.9 (version 121) on send their own maximum.
        let max_times = h.max_reconsume_times.filter(|_| req.version >= 121).unwrap_or(group.retry_max_times);
        let rw = perm::PERM_READ | perm::PERM_WRITE;
        let (topic, queue_nums, delay) = if msg.reconsume_times >= max_times || h.delay_level < 0 {
            (crate::broker::topic_config::dlq_topic(&h.group), 1, 0)
        } else {
            let level = if h.delay_level == 0 { 3 + msg.reconsume_times } else { h.delay_level };
            (retry_topic(&h.group), group.retry_queue_nums, level)
        };
        let tc = match b.topics.select(&topic) {
            Some(tc) => tc,
            None => match b.topics.create_in_send_back(&topic, queue_nums, rw, 0) {
                Ok(tc) => {
                    b.register_now();
                    tc
                }
                Err(_) => return RemotingCommand::error(response::SYSTEM_ERROR, format!("topic[{topic}] not exist")),
            },
        };
        if !perm::is_writeable(tc.perm) {
            return RemotingCommand::error(
                response::NO_PERMISSION,
                format!("the topic[{topic}] sending message is forbidden"),
            );
        }
        if props.get(property::ORIGIN_MESSAGE_ID).is_none_or(str::is_empty) {
            props.insert(
                property::ORIGIN_MESSAGE_ID,
                h.origin_msg_id.clone().filter(|s| !s.is_empty()).unwrap_or(msg.msg_id.clone()),
            );
        }
        props.remove(property::DELAY);
        msg.message.properties = props;
        let mut back = MessageToStore {
            topic,
            queue_id: (rand_u32() % tc.write_queue_nums.max(1) as u32) as i32,
            flag: msg.message.flag,
            body: msg.message.body.clone(),
            tags_code: msg.message.tags().map_or(0, message::tags_hash),
            properties: message::properties_to_string(&msg.message.properties),
            sys_flag: msg.sys_flag,
            born_timestamp: msg.born_timestamp,
            born_host: msg.born_host,
            store_host: msg.store_host,
            reconsume_times: msg.reconsume_times + 1,
            prepared_transaction_offset: 0,
        };
        if delay > 0 {
            schedule::to_schedule_topic(&mut back, delay, b.config.max_delay_level() as i32);
        }
        let r = b.store.put_message(&back, false);
        if r.is_ok() {
            RemotingCommand::success()
        } else {
            RemotingCommand::error(response::SYSTEM_ERROR, format!("{:?}", r.status))
        }
    }
}

/// A cheap random number for picking a queue.
fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(now_millis());
    h.finish() as u32
}

/// The messages of a batch body (RocketMQ: MessageDecoder.decodeMessages):
/// each `TOTALSIZE i32 | MAGICCODE i32 | BODYCRC i32 | FLAG i32 | BODYLEN i32
/// | BODY | PROPERTIESLENGTH i16 | PROPERTIES`.
fn decode_batch(
    body: &Bytes,
    base: &MessageToStore,
    batch_props: &message::Properties,
) -> Result<Vec<MessageToStore>, String> {
    let mut out = Vec::new();
    let mut at = 0usize;
    let i32_at = |p: usize| -> Result<i32, String> {
        body.get(p..p + 4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| format!("truncated at byte {p}"))
    };
    while at < body.len() {
        let total = i32_at(at)?;
        if total < 22 || at + total as usize > body.len() {
            return Err(format!("message at byte {at} claims {total} bytes"));
        }
        let flag = i32_at(at + 12)?;
        let body_len = i32_at(at + 16)?;
        if body_len < 0 || 20 + body_len as usize + 2 > total as usize {
            return Err(format!("message at byte {at} has a bad body length {body_len}"));
        }
        let b_start = at + 20;
        let b_end = b_start + body_len as usize;
        let p_len_bytes = body.get(b_end..b_end + 2).ok_or("truncated properties length")?;
        let p_len = i16::from_be_bytes([p_len_bytes[0], p_len_bytes[1]]);
        if p_len < 0 || b_end + 2 + p_len as usize > at + total as usize {
            return Err(format!("message at byte {at} has a bad properties length {p_len}"));
        }
        let p_bytes = &body[b_end + 2..b_end + 2 + p_len as usize];
        let mut props = message::string_to_properties(&String::from_utf8_lossy(p_bytes));
        for (k, v) in batch_props.iter() {
            if props.get(k).is_none() {
                props.insert(k, v);
            }
        }
        let mut m = base.clone();
        m.flag = flag;
        m.body = body.slice(b_start..b_end);
        m.tags_code = props.get(property::TAGS).map_or(0, message::tags_hash);
        m.properties = message::properties_to_string(&props);
        out.push(m);
        at += total as usize;
    }
    Ok(out)
}

// ---------------------------------------------------------------- pull

/// Filters by tag hash (RocketMQ: ExpressionMessageFilter for TAG).
struct TagFilter(SubscriptionData);

impl MessageFilter for TagFilter {
    fn is_matched_by_consume_queue(&self, tags_code: i64) -> bool {
        self.0.matches_tags_code(tags_code)
    }
}

pub struct PullMessageProcessor {
    pub shared: Arc<BrokerShared>,
    /// To run held pulls again on this processor.
    pub me: Weak<PullMessageProcessor>,
}

impl RequestProcessor for PullMessageProcessor {
    fn process(&self, channel: &Channel, req: RemotingCommand) -> Option<RemotingCommand> {
        self.pull(channel, req, true)
    }
}

impl PullMessageProcessor {
    /// A held pull woke: run it again without suspending, answer on its channel.
    pub fn wake(&self, p: HeldPull) {
        let to = ReplyTo::of(&p.request);
        if let Some(resp) = self.pull(&p.channel, p.request, false) {
            let _ = p.channel.respond(to, resp);
        }
    }

    fn pull(&self, channel: &Channel, req: RemotingCommand, allow_suspend: bool) -> Option<RemotingCommand> {
        let b = &self.shared;
        let h: PullMessageRequestHeader = crate::header_or_answer!(req);
        if !perm::is_readable(b.config.broker_permission as i32) {
            return Some(RemotingCommand::error(
                response::NO_PERMISSION,
                format!("the broker[{}] pulling message is forbidden", b.config.broker_ip1),
            ));
        }
        let Some(group) = b.groups.find_or_create(&h.consumer_group) else {
            return Some(RemotingCommand::error(
                response::SUBSCRIPTION_GROUP_NOT_EXIST,
                format!("subscription group [{}] does not exist, {FAQ}", h.consumer_group),
            ));
        };
        if !group.consume_enable {
            return Some(RemotingCommand::error(
                response::NO_PERMISSION,
                format!("subscription group no permission, {}", h.consumer_group),
            ));
        }
        let has_suspend = h.sys_flag & pull_flag::SUSPEND != 0;
        let has_commit = h.sys_flag & pull_flag::COMMIT_OFFSET != 0;
        let has_subscription = h.sys_flag & pull_flag::SUBSCRIPTION != 0;
        let Some(tc) = b.topics.select(&h.topic) else {
            return Some(RemotingCommand::error(
                response::TOPIC_NOT_EXIST,
                format!("topic[{}] not exist, apply first please! {FAQ}", h.topic),
            ));
        };
        if !perm::is_readable(tc.perm) {
            return Some(RemotingCommand::error(
                response::NO_PERMISSION,
                format!("the topic[{}] pulling message is forbidden", h.topic),
            ));
        }
        if h.queue_id < 0 || h.queue_id >= tc.read_queue_nums {
            return Some(RemotingCommand::error(
                response::SYSTEM_ERROR,
                format!(
                    "queueId[{}] is illegal, topic:[{}] topicConfig.readQueueNums:[{}] consumer:[{}]",
                    h.queue_id,
                    h.topic,
                    tc.read_queue_nums,
                    channel.remote_addr()
                ),
            ));
        }
        let subscription = if has_subscription {
            match SubscriptionData::build(&h.topic, h.subscription.as_deref().unwrap_or("*")) {
                Ok(s) => s,
                Err(_) => {
                    return Some(RemotingCommand::error(
                        response::SUBSCRIPTION_PARSE_FAILED,
                        "parse the consumer's subscription failed",
                    ));
                }
            }
        } else {
            match b.consumers.subscription(&h.consumer_group, &h.topic) {
                Some(s) if s.sub_version < h.sub_version => {
                    return Some(RemotingCommand::error(
                        response::SUBSCRIPTION_NOT_LATEST,
                        "the consumer's subscription not latest",
                    ));
                }
                Some(s) => s,
                None if b.consumers.group_info(&h.consumer_group).is_none() => {
                    return Some(RemotingCommand::error(
                        response::SUBSCRIPTION_NOT_EXIST,
                        format!("the consumer's group info not exist{FAQ}"),
                    ));
                }
                None => {
                    return Some(RemotingCommand::error(
                        response::SUBSCRIPTION_NOT_EXIST,
                        format!("the consumer's subscription not exist{FAQ}"),
                    ));
                }
            }
        };
        let filter = TagFilter(subscription.clone());
        let max_nums = h.max_msg_nums.max(0) as usize;
        let r = b.store.get_message(&h.consumer_group, &h.topic, h.queue_id, h.queue_offset, max_nums, Some(&filter));
        let code = match r.status {
            GetMessageStatus::Found => response::SUCCESS,
            GetMessageStatus::MessageWasRemoving | GetMessageStatus::NoMatchedMessage => {
                response::PULL_RETRY_IMMEDIATELY
            }
            GetMessageStatus::NoMatchedLogicQueue | GetMessageStatus::NoMessageInQueue => {
                if h.queue_offset != 0 {
                    response::PULL_OFFSET_MOVED
                } else {
                    response::PULL_NOT_FOUND
                }
            }
            GetMessageStatus::OffsetFoundNull | GetMessageStatus::OffsetOverflowOne => response::PULL_NOT_FOUND,
            GetMessageStatus::OffsetOverflowBadly | GetMessageStatus::OffsetTooSmall => response::PULL_OFFSET_MOVED,
        };
        let suggest = if r.suggest_pulling_from_slave { group.which_broker_when_consume_slowly } else { 0 };
        if allow_suspend && has_commit {
            b.offsets.commit(&h.consumer_group, &h.topic, h.queue_id, h.commit_offset);
        }
        if code == response::PULL_NOT_FOUND && allow_suspend && has_suspend {
            let timeout = if b.config.long_polling_enable {
                h.suspend_timeout_millis
            } else {
                b.config.short_polling_time_mills.as_millis() as i64
            };
            let tags_codes = (!subscription.sub_string.is_empty() && subscription.sub_string != "*")
                .then(|| subscription.code_set.iter().map(|c| *c as i64).collect());
            b.hold.suspend(
                &h.topic,
                h.queue_id,
                HeldPull {
                    request: req,
                    channel: channel.clone(),
                    suspend_timestamp: now_millis(),
                    timeout_millis: timeout,
                    pull_from_offset: h.queue_offset,
                    tags_codes,
                },
            );
            return None;
        }
        let mut resp =
            RemotingCommand::response(code, Some(format!("{:?}", r.status)).filter(|_| code != response::SUCCESS));
        resp.set_header(&PullMessageResponseHeader {
            suggest_which_broker_id: suggest,
            next_begin_offset: r.next_begin_offset,
            min_offset: r.min_offset,
            max_offset: r.max_offset,
        });
        if code == response::SUCCESS {
            resp.body = Body::Many(r.messages);
        }
        Some(resp)
    }
}

// ---------------------------------------------------------------- clients

pub struct ClientManageProcessor(pub Arc<BrokerShared>);

impl RequestProcessor for ClientManageProcessor {
    fn process(&self, channel: &Channel, req: RemotingCommand) -> Option<RemotingCommand> {
        let b = &self.0;
        Some(match req.code {
            request::HEART_BEAT => {
                let hb: HeartbeatData = match from_body(&req.body.bytes()) {
                    Ok(h) => h,
                    Err(e) => {
                        return Some(RemotingCommand::error(
                            response::SYSTEM_ERROR,
                            format!("bad heartbeat body: {e}"),
                        ));
                    }
                };
                let info = ClientChannelInfo {
                    channel: channel.clone(),
                    client_id: hb.client_id.clone(),
                    language: req.language.name().to_string(),
                    version: req.version,
                    last_update_timestamp: now_millis(),
                };
                for c in &hb.consumer_data_set {
                    if let Some(g) = b.groups.find_or_create(&c.group_name) {
                        let retry = retry_topic(&c.group_name);
                        if b.topics.select(&retry).is_none() {
                            let perm = perm::PERM_READ | perm::PERM_WRITE;
                            if b.topics.create_in_send_back(&retry, g.retry_queue_nums, perm, 0).is_ok() {
                                b.register_now();
                            }
                        }
                        let notify = g.notify_consumer_ids_changed_enable;
                        if b.consumers.register_consumer(c, info.clone()) && notify {
                            notify_consumer_ids_changed(&b.consumers, &c.group_name);
                        }
                    }
                }
                for p in &hb.producer_data_set {
                    b.producers.register_producer(&p.group_name, info.clone());
                }
                RemotingCommand::success()
            }
            request::UNREGISTER_CLIENT => {
                let h: UnregisterClientRequestHeader = crate::header_or_answer!(req);
                if let Some(g) = h.producer_group.filter(|g| !g.is_empty()) {
                    b.producers.unregister_producer(&g, channel);
                }
                if let Some(g) = h.consumer_group.filter(|g| !g.is_empty())
                    && b.consumers.unregister_consumer(&g, channel)
                    && b.groups.get(&g).is_none_or(|c| c.notify_consumer_ids_changed_enable)
                {
                    notify_consumer_ids_changed(&b.consumers, &g);
                }
                RemotingCommand::success()
            }
            request::CHECK_CLIENT_CONFIG => RemotingCommand::success(),
            code => RemotingCommand::error(
                response::REQUEST_CODE_NOT_SUPPORTED,
                format!(" request type {code} not supported"),
            ),
        })
    }
}

pub struct ConsumerManageProcessor(pub Arc<BrokerShared>);

impl RequestProcessor for ConsumerManageProcessor {
    fn process(&self, _channel: &Channel, req: RemotingCommand) -> Option<RemotingCommand> {
        let b = &self.0;
        Some(match req.code {
            request::GET_CONSUMER_LIST_BY_GROUP => {
                let h: GetConsumerListByGroupRequestHeader = crate::header_or_answer!(req);
                let ids = b.consumers.consumer_ids(&h.consumer_group);
                if ids.is_empty() {
                    RemotingCommand::error(
                        response::SYSTEM_ERROR,
                        format!("no consumer for this group, {}", h.consumer_group),
                    )
                } else {
                    RemotingCommand::success()
                        .with_body(to_body(&GetConsumerListByGroupResponseBody { consumer_id_list: ids }))
                }
            }
            request::QUERY_CONSUMER_OFFSET => {
                let h: QueryConsumerOffsetRequestHeader = crate::header_or_answer!(req);
                match b.offsets.query(&h.consumer_group, &h.topic, h.queue_id) {
                    Some(offset) if offset >= 0 => {
                        RemotingCommand::success_with(&QueryConsumerOffsetResponseHeader { offset })
                    }
                    _ => {
                        // A new group starts at 0 while the queue still holds its
                        // first message (Apache: minOffset <= 0 and in memory).
                        let min = b.store.min_offset_in_queue(&h.topic, h.queue_id);
                        if min <= 0 {
                            RemotingCommand::success_with(&QueryConsumerOffsetResponseHeader { offset: 0 })
                        } else {
                            RemotingCommand::error(
                                response::QUERY_NOT_FOUND,
                                "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first",
                            )
                        }
                    }
                }
            }
            request::UPDATE_CONSUMER_OFFSET => {
                let h: UpdateConsumerOffsetRequestHeader = crate::header_or_answer!(req);
                if h.commit_offset >= 0 {
                    b.offsets.commit(&h.consumer_group, &h.topic, h.queue_id, h.commit_offset);
                }
                RemotingCommand::success()
            }
            code => RemotingCommand::error(
                response::REQUEST_CODE_NOT_SUPPORTED,
                format!(" request type {code} not supported"),
            ),
        })
    }
}

/// The store host as a socket address (for stored records and message ids).
pub fn store_host(ip: &str, port: u16) -> SocketAddr {
    format!("{ip}:{port}").parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], port)))
}
