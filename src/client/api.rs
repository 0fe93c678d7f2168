//! The requests consumers send to brokers (RocketMQ: MQClientAPIImpl and
//! PullAPIWrapper): pulls, consumer offsets, consumer ids, send-back, queue
//! locks and queue offsets. Each is one typed request and one typed answer.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::client::instance::{ClientError, ClientInstance};
use crate::common::message::{self, MessageExt, property};
use crate::remoting::body::{
    GetConsumerListByGroupResponseBody, LockBatchRequestBody, LockBatchResponseBody, MessageQueue, SubscriptionData,
};
use crate::remoting::code::{request, response};
use crate::remoting::headers::{
    ConsumerSendMsgBackRequestHeader, GetConsumerListByGroupRequestHeader, OffsetResponseHeader,
    PullMessageRequestHeader, PullMessageResponseHeader, QueryConsumerOffsetRequestHeader,
    QueryConsumerOffsetResponseHeader, QueueRequestHeader, SearchOffsetRequestHeader,
    UpdateConsumerOffsetRequestHeader,
};
use crate::remoting::json::{from_body, to_body};
use crate::remoting::{CommandHeader, RemotingCommand};

/// RocketMQ: PullStatus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullStatus {
    Found,
    NoNewMsg,
    NoMatchedMsg,
    OffsetIllegal,
}

/// What a pull brought (RocketMQ: PullResult / PullResultExt).
#[derive(Debug, Clone)]
pub struct PullResult {
    pub status: PullStatus,
    pub next_begin_offset: i64,
    pub min_offset: i64,
    pub max_offset: i64,
    /// The broker id the broker suggests for the next pull.
    pub suggest_which_broker_id: i64,
    pub msgs: Vec<MessageExt>,
}

/// PullSysFlag bits of PULL_MESSAGE.
pub mod pull_sys_flag {
    pub const COMMIT_OFFSET: i32 = 0x1;
    pub const SUSPEND: i32 = 0x1 << 1;
    pub const SUBSCRIPTION: i32 = 0x1 << 2;
    pub const CLASS_FILTER: i32 = 0x1 << 3;

    /// RocketMQ: PullSysFlag.buildSysFlag.
    pub fn build(commit_offset: bool, suspend: bool, subscription: bool, class_filter: bool) -> i32 {
        let mut f = 0;
        if commit_offset {
            f |= COMMIT_OFFSET;
        }
        if suspend {
            f |= SUSPEND;
        }
        if subscription {
            f |= SUBSCRIPTION;
        }
        if class_filter {
            f |= CLASS_FILTER;
        }
        f
    }
}

impl PullResult {
    /// A PULL_MESSAGE reply as a result (messages not decoded yet).
    fn from_response(r: RemotingCommand) -> Result<(PullResult, bytes::Bytes), ClientError> {
        let status = match r.code {
            response::SUCCESS => PullStatus::Found,
            response::PULL_NOT_FOUND => PullStatus::NoNewMsg,
            response::PULL_RETRY_IMMEDIATELY => PullStatus::NoMatchedMsg,
            response::PULL_OFFSET_MOVED => PullStatus::OffsetIllegal,
            code => return Err(ClientError::Refused { code, remark: r.remark.unwrap_or_default() }),
        };
        let h: PullMessageResponseHeader = typed(&r)?;
        let result = PullResult {
            status,
            next_begin_offset: h.next_begin_offset,
            min_offset: h.min_offset,
            max_offset: h.max_offset,
            suggest_which_broker_id: h.suggest_which_broker_id,
            msgs: Vec::new(),
        };
        Ok((result, r.body.to_bytes()))
    }

    /// Decodes the found messages, inflates compressed bodies, keeps those
    /// whose tag the subscription takes, and marks each with the queue's
    /// MIN_OFFSET / MAX_OFFSET (RocketMQ: PullAPIWrapper.processPullResult).
    fn decode(&mut self, body: &[u8], sub: Option<&SubscriptionData>) -> Result<(), ClientError> {
        if self.status != PullStatus::Found {
            return Ok(());
        }
        let bad = |e: message::MessageError| ClientError::Refused {
            code: response::SYSTEM_ERROR,
            remark: format!("undecodable pull body: {e}"),
        };
        let mut msgs = message::decode_all(body, true).map_err(bad)?;
        let filter = sub.filter(|s| !s.class_filter_mode && s.is_tag_type() && !s.tags_set.is_empty());
        if let Some(s) = filter {
            msgs.retain(|m| m.tags().is_some_and(|t| s.tags_set.contains(t)));
        }
        let (min, max) = (self.min_offset.to_string(), self.max_offset.to_string());
        for m in &mut msgs {
            if m.sys_flag & message::sys_flag::COMPRESSED_FLAG != 0 {
                m.message.body = message::uncompressed_body(m).map_err(bad)?;
                m.sys_flag &= !message::sys_flag::COMPRESSED_FLAG;
            }
            m.message.put_property(property::MIN_OFFSET, min.clone());
            m.message.put_property(property::MAX_OFFSET, max.clone());
        }
        self.msgs = msgs;
        Ok(())
    }
}

/// The typed header of a reply, or a clear error.
fn typed<H: CommandHeader>(r: &RemotingCommand) -> Result<H, ClientError> {
    r.header::<H>()
        .map_err(|e| ClientError::Refused { code: response::SYSTEM_ERROR, remark: format!("bad reply: {e}") })
}

/// A reply that must be SUCCESS.
fn success(r: RemotingCommand) -> Result<RemotingCommand, ClientError> {
    if r.code == response::SUCCESS {
        Ok(r)
    } else {
        Err(ClientError::Refused { code: r.code, remark: r.remark.unwrap_or_default() })
    }
}

impl ClientInstance {
    fn request<H: CommandHeader>(&self, code: i32, h: &H) -> RemotingCommand {
        RemotingCommand::request_with(code, h).with_serialize_type(self.config().serialize_type)
    }

    fn call(&self, addr: &str, req: RemotingCommand, timeout: Duration) -> Result<RemotingCommand, ClientError> {
        Ok(self.remoting().invoke_sync(addr, req, timeout)?)
    }

    /// PULL_MESSAGE, answered on `NettyClientPublicExecutor_N` through
    /// `callback` with the decoded (and tag-filtered) result.
    pub fn pull_message_async(
        &self,
        addr: &str,
        h: &PullMessageRequestHeader,
        sub: Option<SubscriptionData>,
        timeout: Duration,
        callback: impl FnOnce(Result<PullResult, ClientError>) + Send + 'static,
    ) -> Result<(), ClientError> {
        let req = self.request(request::PULL_MESSAGE, h);
        self.remoting().invoke_async(addr, req, timeout, move |r| {
            let result = r.map_err(ClientError::from).and_then(PullResult::from_response).and_then(|(mut p, body)| {
                p.decode(&body, sub.as_ref())?;
                Ok(p)
            });
            callback(result)
        })?;
        Ok(())
    }

    /// PULL_MESSAGE, waiting for the reply.
    pub fn pull_message_sync(
        &self,
        addr: &str,
        h: &PullMessageRequestHeader,
        sub: Option<&SubscriptionData>,
        timeout: Duration,
    ) -> Result<PullResult, ClientError> {
        let r = self.call(addr, self.request(request::PULL_MESSAGE, h), timeout)?;
        let (mut p, body) = PullResult::from_response(r)?;
        p.decode(&body, sub)?;
        Ok(p)
    }

    /// QUERY_CONSUMER_OFFSET: the group's committed offset of `mq`;
    /// `Refused { code: QUERY_NOT_FOUND }` when the broker has none.
    pub fn query_consumer_offset(&self, addr: &str, group: &str, mq: &MessageQueue) -> Result<i64, ClientError> {
        let h = QueryConsumerOffsetRequestHeader {
            consumer_group: group.into(),
            topic: mq.topic.clone(),
            queue_id: mq.queue_id,
            bname: Some(mq.broker_name.clone()),
        };
        let r =
            success(self.call(addr, self.request(request::QUERY_CONSUMER_OFFSET, &h), self.config().api_timeout)?)?;
        Ok(typed::<QueryConsumerOffsetResponseHeader>(&r)?.offset)
    }

    /// UPDATE_CONSUMER_OFFSET, oneway as Apache's Java client sends it.
    pub fn update_consumer_offset_oneway(
        &self,
        addr: &str,
        group: &str,
        mq: &MessageQueue,
        offset: i64,
    ) -> Result<(), ClientError> {
        let h = UpdateConsumerOffsetRequestHeader {
            consumer_group: group.into(),
            topic: mq.topic.clone(),
            queue_id: mq.queue_id,
            commit_offset: offset,
            bname: Some(mq.broker_name.clone()),
        };
        let req = self.request(request::UPDATE_CONSUMER_OFFSET, &h);
        Ok(self.remoting().invoke_oneway(addr, req, self.config().api_timeout)?)
    }

    /// GET_CONSUMER_LIST_BY_GROUP: the client ids of `group` a broker knows.
    pub fn consumer_id_list(&self, addr: &str, group: &str) -> Result<Vec<String>, ClientError> {
        let h = GetConsumerListByGroupRequestHeader { consumer_group: group.into() };
        let r = self.call(addr, self.request(request::GET_CONSUMER_LIST_BY_GROUP, &h), self.config().api_timeout)?;
        let r = success(r)?;
        let body: GetConsumerListByGroupResponseBody = from_body(&r.body.bytes()).map_err(|e| {
            ClientError::Refused { code: response::SYSTEM_ERROR, remark: format!("bad consumer list: {e}") }
        })?;
        Ok(body.consumer_id_list)
    }

    /// CONSUMER_SEND_MSG_BACK: `msg` goes to the group's retry topic at
    /// `delay_level` (0: the broker picks 3 + reconsume times; negative:
    /// straight to the dead-letter queue).
    pub fn consumer_send_msg_back(
        &self,
        addr: &str,
        msg: &MessageExt,
        group: &str,
        delay_level: i32,
        max_reconsume_times: i32,
    ) -> Result<(), ClientError> {
        let h = ConsumerSendMsgBackRequestHeader {
            offset: msg.commit_log_offset,
            group: group.into(),
            delay_level,
            origin_msg_id: Some(msg.msg_id.clone()),
            origin_topic: Some(msg.topic().to_string()),
            unit_mode: Some(false),
            max_reconsume_times: Some(max_reconsume_times),
            bname: None,
        };
        let r = self.call(addr, self.request(request::CONSUMER_SEND_MSG_BACK, &h), self.config().api_timeout)?;
        success(r).map(drop)
    }

    /// LOCK_BATCH_MQ: the queues of `mqs` this client now holds.
    pub fn lock_batch_mq(
        &self,
        addr: &str,
        group: &str,
        mqs: BTreeSet<MessageQueue>,
    ) -> Result<BTreeSet<MessageQueue>, ClientError> {
        let body = LockBatchRequestBody {
            consumer_group: group.into(),
            client_id: self.client_id().into(),
            mq_set: mqs,
            only_this_broker: None,
        };
        let req = RemotingCommand::request(request::LOCK_BATCH_MQ)
            .with_body(to_body(&body))
            .with_serialize_type(self.config().serialize_type);
        let r = success(self.call(addr, req, self.config().api_timeout)?)?;
        let locked: LockBatchResponseBody = from_body(&r.body.bytes()).map_err(|e| ClientError::Refused {
            code: response::SYSTEM_ERROR,
            remark: format!("bad lock reply: {e}"),
        })?;
        Ok(locked.lock_ok_mq_set)
    }

    /// UNLOCK_BATCH_MQ, oneway or waiting for the reply.
    pub fn unlock_batch_mq(
        &self,
        addr: &str,
        group: &str,
        mqs: BTreeSet<MessageQueue>,
        oneway: bool,
    ) -> Result<(), ClientError> {
        let body = LockBatchRequestBody {
            consumer_group: group.into(),
            client_id: self.client_id().into(),
            mq_set: mqs,
            only_this_broker: None,
        };
        let req = RemotingCommand::request(request::UNLOCK_BATCH_MQ)
            .with_body(to_body(&body))
            .with_serialize_type(self.config().serialize_type);
        if oneway {
            return Ok(self.remoting().invoke_oneway(addr, req, self.config().api_timeout)?);
        }
        success(self.call(addr, req, self.config().api_timeout)?).map(drop)
    }

    fn queue_offset(&self, code: i32, mq: &MessageQueue) -> Result<i64, ClientError> {
        let addr = self.master_addr_or_update(&mq.broker_name, &mq.topic)?;
        let h =
            QueueRequestHeader { topic: mq.topic.clone(), queue_id: mq.queue_id, bname: Some(mq.broker_name.clone()) };
        let r = success(self.call(&addr, self.request(code, &h), self.config().api_timeout)?)?;
        Ok(typed::<OffsetResponseHeader>(&r)?.offset)
    }

    /// GET_MAX_OFFSET: the offset after the last message of `mq`.
    pub fn max_offset(&self, mq: &MessageQueue) -> Result<i64, ClientError> {
        self.queue_offset(request::GET_MAX_OFFSET, mq)
    }

    /// GET_MIN_OFFSET: the first offset still stored in `mq`.
    pub fn min_offset(&self, mq: &MessageQueue) -> Result<i64, ClientError> {
        self.queue_offset(request::GET_MIN_OFFSET, mq)
    }

    /// SEARCH_OFFSET_BY_TIMESTAMP: the first offset of `mq` stored at or
    /// after `timestamp` (milliseconds).
    pub fn search_offset(&self, mq: &MessageQueue, timestamp: i64) -> Result<i64, ClientError> {
        let addr = self.master_addr_or_update(&mq.broker_name, &mq.topic)?;
        let h = SearchOffsetRequestHeader {
            topic: mq.topic.clone(),
            queue_id: mq.queue_id,
            timestamp,
            bname: Some(mq.broker_name.clone()),
        };
        let r = self.call(&addr, self.request(request::SEARCH_OFFSET_BY_TIMESTAMP, &h), self.config().api_timeout)?;
        Ok(typed::<OffsetResponseHeader>(&success(r)?)?.offset)
    }

    /// The master of `broker_name`, refreshing `topic`'s route once when it
    /// is not known yet (RocketMQ: findBrokerAddressInPublish + update).
    pub fn master_addr_or_update(&self, broker_name: &str, topic: &str) -> Result<String, ClientError> {
        if let Some(a) = self.master_addr(broker_name) {
            return Ok(a);
        }
        self.update_topic_route(topic)?;
        self.master_addr(broker_name).ok_or_else(|| ClientError::State(format!("The broker[{broker_name}] not exist")))
    }

    /// The readable queues of `topic` from its cached route (RocketMQ:
    /// topicRouteData2TopicSubscribeInfo).
    pub fn subscribe_queues(&self, topic: &str) -> Option<Vec<MessageQueue>> {
        let route = self.topic_route(topic)?;
        let mut v: Vec<MessageQueue> = route
            .queue_datas
            .iter()
            .filter(|q| crate::remoting::body::perm::is_readable(q.perm))
            .flat_map(|q| (0..q.read_queue_nums).map(move |i| MessageQueue::new(topic, q.broker_name.clone(), i)))
            .collect();
        v.sort();
        Some(v)
    }

    /// Some broker of `topic` to ask about the group (RocketMQ:
    /// findBrokerAddrByTopic, which takes one at random).
    pub fn any_broker_of_topic(&self, topic: &str) -> Option<String> {
        let route = self.topic_route(topic)?;
        if route.broker_datas.is_empty() {
            return None;
        }
        let i = (crate::common::time::now_millis() as usize) % route.broker_datas.len();
        route.broker_datas[i].select_broker_addr().map(String::from)
    }
}
