//! `Producer` (RocketMQ: DefaultMQProducer): synchronous and async sends
//! (both retried on another broker), oneway, to-queue, selector and batch
//! sends, with validation, the unique message id, topic routes (auto-creation
//! through `TBW102`), and round-robin queue choice that avoids the broker that
//! just failed and, with `send_latency_fault_enable`, brokers that were slow or
//! failing (see [`crate::client::latency`]). Bodies over 4 KiB go
//! zlib-compressed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::client::config::ClientConfig;
use crate::client::instance::{ClientError, ClientInstance, ServiceState, queues_of};
use crate::client::latency::FaultStrategy;
use crate::client::unique_id::create_unique_id;
use crate::common::message::{Message, properties_to_string, property};
use crate::common::time::now_millis;
use crate::common::wait::Deadline;
use crate::remoting::RemotingCommand;
use crate::remoting::body::MessageQueue;
use crate::remoting::code::{request, response};
use crate::remoting::headers::{SendMessageRequestHeaderV2, SendMessageResponseHeader};

/// A topic's writable queues, shared (RocketMQ: TopicPublishInfo's list).
type Queues = Arc<[MessageQueue]>;

/// The topic new topics are created from (RocketMQ: TBW102).
pub const DEFAULT_TOPIC: &str = "TBW102";

/// RocketMQ: SendStatus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendStatus {
    SendOk,
    FlushDiskTimeout,
    FlushSlaveTimeout,
    SlaveNotAvailable,
}

/// RocketMQ: SendResult.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendResult {
    pub status: SendStatus,
    /// The client's unique id (UNIQ_KEY), what clients call msgId.
    pub msg_id: String,
    /// The broker's id (store host + CommitLog offset).
    pub offset_msg_id: String,
    pub queue: MessageQueue,
    pub queue_offset: i64,
}

/// RocketMQ: DefaultMQProducer settings.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    pub group: String,
    /// sendMsgTimeout, 3 s.
    pub send_msg_timeout: Duration,
    /// retryTimesWhenSendFailed, 2: extra tries of a sync (or batch) send.
    pub retry_times_when_send_failed: u32,
    /// retryTimesWhenSendAsyncFailed, 2: extra tries of an async send.
    pub retry_times_when_send_async_failed: u32,
    /// defaultTopicQueueNums, 4.
    pub default_topic_queue_nums: i32,
    /// maxMessageSize, 4 MiB.
    pub max_message_size: usize,
    /// compressMsgBodyOverHowmuch, 4 KiB: larger bodies go zlib-compressed
    /// with the COMPRESSED sys flag.
    pub compress_msg_body_over: usize,
    /// sendLatencyFaultEnable, off: avoid brokers that were slow or failed
    /// for a time that grows with their latency.
    pub send_latency_fault_enable: bool,
}

impl ProducerConfig {
    pub fn new(group: impl Into<String>) -> Self {
        ProducerConfig {
            group: group.into(),
            send_msg_timeout: Duration::from_secs(3),
            retry_times_when_send_failed: 2,
            retry_times_when_send_async_failed: 2,
            default_topic_queue_nums: 4,
            max_message_size: 4 * 1024 * 1024,
            compress_msg_body_over: 4 * 1024,
            send_latency_fault_enable: false,
        }
    }
}

pub struct Producer {
    config: Arc<ProducerConfig>,
    client_config: ClientConfig,
    instance: Mutex<Option<Arc<ClientInstance>>>,
    state: Mutex<ServiceState>,
    /// Queue choice and the brokers' fault items, shared with async sends.
    fault: Arc<FaultStrategy>,
    /// Topics not known yet, sent to through TBW102's route until the next
    /// route poll, so that every broker of TBW102 creates them (as Apache's
    /// topicPublishInfoTable keeps the default route).
    default_routed: Mutex<HashMap<String, (Queues, Instant)>>,
}

/// Response codes after which another try may succeed (as RocketMQ retries).
const RETRY_CODES: [i32; 4] =
    [response::TOPIC_NOT_EXIST, response::SERVICE_NOT_AVAILABLE, response::SYSTEM_ERROR, response::NO_PERMISSION];

/// Whether another try may succeed after `e`: wire errors, a broker missing
/// from the route, and the retryable response codes.
fn retryable(e: &ClientError) -> bool {
    match e {
        ClientError::Refused { code, .. } => RETRY_CODES.contains(code),
        ClientError::Remoting(_) | ClientError::State(_) => true,
    }
}

/// Topic names as brokers accept them: 1..=127 of `[%|a-zA-Z0-9_-]`.
fn check_topic(topic: &str) -> Result<(), ClientError> {
    if topic.trim().is_empty() {
        return Err(ClientError::State("the specified topic is blank".into()));
    }
    if topic.len() > 127 {
        return Err(ClientError::State("the specified topic is longer than topic max length 127.".into()));
    }
    if !topic.bytes().all(|b| b.is_ascii_alphanumeric() || b"%|_-".contains(&b)) {
        return Err(ClientError::State(format!(
            "the specified topic[{topic}] contains illegal characters, allowing only ^[%|a-zA-Z0-9_-]+$"
        )));
    }
    Ok(())
}

impl Producer {
    pub fn new(config: ProducerConfig, client_config: ClientConfig) -> Self {
        Producer {
            fault: Arc::new(FaultStrategy::new(config.send_latency_fault_enable)),
            config: Arc::new(config),
            client_config,
            instance: Mutex::new(None),
            state: Mutex::new(ServiceState::CreateJust),
            default_routed: Mutex::default(),
        }
    }

    pub fn state(&self) -> ServiceState {
        *self.state.lock()
    }

    /// Joins (or creates) the client instance and registers the group.
    pub fn start(&self) -> Result<(), ClientError> {
        let mut state = self.state.lock();
        if *state != ServiceState::CreateJust {
            return Err(ClientError::State(format!(
                "The producer service state not OK, maybe started once, {:?}",
                *state
            )));
        }
        let started = (|| {
            let inst = ClientInstance::get_or_create(&self.client_config)
                .map_err(|e| ClientError::State(format!("cannot create the client instance: {e}")))?;
            inst.register_producer(&self.config.group)?;
            if let Err(e) = inst.start() {
                inst.unregister_producer(&self.config.group);
                return Err(e);
            }
            Ok(inst)
        })();
        match started {
            Ok(inst) => {
                inst.send_heartbeat_to_all_brokers();
                *self.instance.lock() = Some(inst);
                *state = ServiceState::Running;
                Ok(())
            }
            Err(e) => {
                *state = ServiceState::StartFailed;
                Err(e)
            }
        }
    }

    fn instance(&self) -> Result<Arc<ClientInstance>, ClientError> {
        if *self.state.lock() != ServiceState::Running {
            return Err(ClientError::State("The producer service state not OK, maybe not started".into()));
        }
        self.instance.lock().clone().ok_or_else(|| ClientError::State("the producer is not started".into()))
    }

    /// The writable queues of `topic`, creating the route from TBW102's when
    /// the name servers do not know the topic yet.
    fn publish_queues(&self, inst: &ClientInstance, topic: &str) -> Result<Arc<[MessageQueue]>, ClientError> {
        if let Some(q) = inst.publish_queues(topic) {
            return Ok(q);
        }
        if let Some((queues, at)) = self.default_routed.lock().get(topic)
            && at.elapsed() < inst.config().poll_name_server_interval
        {
            return Ok(queues.clone());
        }
        if inst.update_topic_route(topic)?.is_some()
            && let Some(q) = inst.publish_queues(topic)
        {
            self.default_routed.lock().remove(topic);
            return Ok(q);
        }
        let Some(mut d) = inst.update_topic_route(DEFAULT_TOPIC)? else {
            return Err(ClientError::State(format!(
                "No route info of this topic: {topic} (and none of {DEFAULT_TOPIC} to create it)"
            )));
        };
        for q in &mut d.queue_datas {
            q.write_queue_nums = q.write_queue_nums.min(self.config.default_topic_queue_nums);
            q.read_queue_nums = q.read_queue_nums.min(self.config.default_topic_queue_nums);
        }
        let queues: Arc<[MessageQueue]> = queues_of(topic, &d).into();
        self.default_routed.lock().insert(topic.to_string(), (queues.clone(), Instant::now()));
        Ok(queues)
    }

    /// Checks `msg`, gives it its unique id, and finds the queues to send to.
    fn prepare(&self, msg: &mut Message) -> Result<(Arc<ClientInstance>, String, Queues), ClientError> {
        let inst = self.instance()?;
        check_topic(&msg.topic)?;
        if msg.body.is_empty() {
            return Err(ClientError::State("the message body is empty".into()));
        }
        if msg.body.len() > self.config.max_message_size {
            return Err(ClientError::State(format!(
                "the message body size over max value, MAX: {}",
                self.config.max_message_size
            )));
        }
        let uniq = match msg.property(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX) {
            Some(u) => u.to_string(),
            None => {
                let id = create_unique_id();
                msg.put_property(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX, id.clone());
                id
            }
        };
        let queues = self.publish_queues(&inst, &msg.topic)?;
        if queues.is_empty() {
            return Err(ClientError::State(format!("No writable queue for the topic {}", msg.topic)));
        }
        Ok((inst, uniq, queues))
    }

    /// Sends `msg` and waits for the broker's answer, retrying on another
    /// queue (another broker where there is one) after a failure.
    pub fn send(&self, mut msg: Message) -> Result<SendResult, ClientError> {
        let (inst, uniq, queues) = self.prepare(&mut msg)?;
        let (mq, status, h) =
            self.send_with_retries(&inst, &queues, |mq| send_request(&self.config, &inst, mq, &msg))?;
        Ok(send_result(uniq, mq, status, h))
    }

    /// Sends what `request` builds for the chosen queue and waits, retrying
    /// on another queue up to `retry_times_when_send_failed` times within the
    /// send timeout; every try's latency or failure goes to the fault table.
    fn send_with_retries(
        &self,
        inst: &ClientInstance,
        queues: &[MessageQueue],
        request: impl Fn(&MessageQueue) -> RemotingCommand,
    ) -> Result<(MessageQueue, SendStatus, SendMessageResponseHeader), ClientError> {
        let deadline = Deadline::after(self.config.send_msg_timeout);
        let mut last_failed: Option<String> = None;
        let mut last_error = None;
        for _ in 0..=self.config.retry_times_when_send_failed {
            if deadline.passed() {
                break;
            }
            let mq = self.select_queue(queues, last_failed.as_deref())?;
            let begin = now_millis();
            let sent = Self::target(inst, &mq).and_then(|addr| {
                send_response(inst.remoting().invoke_sync(&addr, request(&mq), deadline.remaining())?)
            });
            let end = now_millis();
            self.fault.update_fault_item(&mq.broker_name, end - begin, sent.is_err(), end);
            match sent {
                Ok((status, h)) => return Ok((mq, status, h)),
                Err(e) => {
                    log::warn!("send to {} failed: {e}", mq.broker_name);
                    if !retryable(&e) {
                        return Err(e);
                    }
                    last_failed = Some(mq.broker_name);
                    last_error = Some(e);
                }
            }
        }
        if deadline.passed() {
            // Out of time, whichever try it was in (RocketMQ: "sendDefaultImpl call timeout").
            let addr = last_failed.and_then(|b| inst.master_addr(&b)).unwrap_or_default();
            return Err(ClientError::Remoting(crate::remoting::RemotingError::Timeout {
                addr,
                timeout: self.config.send_msg_timeout,
            }));
        }
        Err(last_error.unwrap_or_else(|| ClientError::State("send failed before any try".into())))
    }

    /// Where to send for `mq`: its broker's master (VIP port when enabled).
    fn target(inst: &ClientInstance, mq: &MessageQueue) -> Result<String, ClientError> {
        let addr = inst
            .master_addr(&mq.broker_name)
            .ok_or_else(|| ClientError::State(format!("The broker[{}] not exist", mq.broker_name)))?;
        Ok(inst.config().broker_addr_for_send(addr))
    }

    /// The queue for the next try (RocketMQ: selectOneMessageQueue): round
    /// robin avoiding `last_failed`, and unavailable brokers when latency
    /// fault tolerance is on.
    fn select_queue(&self, queues: &[MessageQueue], last_failed: Option<&str>) -> Result<MessageQueue, ClientError> {
        select_queue(&self.fault, queues, last_failed)
    }

    /// Records a send to `broker_name` that took `latency`, or failed
    /// (`isolation`), in the fault table used when `send_latency_fault_enable`
    /// is on (RocketMQ: updateFaultItem). Sends record their own; this is for
    /// what the application knows besides.
    pub fn update_fault_item(&self, broker_name: &str, latency: Duration, isolation: bool) {
        let ms = i64::try_from(latency.as_millis()).unwrap_or(i64::MAX);
        self.fault.update_fault_item(broker_name, ms, isolation, now_millis());
    }

    /// Sends `msg` to the queue `select` picks among the topic's writable
    /// queues (RocketMQ: send with a MessageQueueSelector), e.g. by a key
    /// for ordered messages. No retry on another queue: order would break.
    pub fn send_with_selector(
        &self,
        mut msg: Message,
        select: impl FnOnce(&[MessageQueue], &Message) -> MessageQueue,
    ) -> Result<SendResult, ClientError> {
        let (inst, uniq, queues) = self.prepare(&mut msg)?;
        let mq = select(&queues, &msg);
        self.send_to_queue_prepared(&inst, uniq, mq, &msg)
    }

    /// Sends `msg` to `mq` (RocketMQ: send(msg, mq)).
    pub fn send_to_queue(&self, mut msg: Message, mq: MessageQueue) -> Result<SendResult, ClientError> {
        let (inst, uniq, _) = self.prepare(&mut msg)?;
        if mq.topic != msg.topic {
            return Err(ClientError::State(format!("message's topic {} not equal mq's topic {}", msg.topic, mq.topic)));
        }
        self.send_to_queue_prepared(&inst, uniq, mq, &msg)
    }

    fn send_to_queue_prepared(
        &self,
        inst: &ClientInstance,
        uniq: String,
        mq: MessageQueue,
        msg: &Message,
    ) -> Result<SendResult, ClientError> {
        let addr = Self::target(inst, &mq)?;
        let req = send_request(&self.config, inst, &mq, msg);
        let (status, h) = send_response(inst.remoting().invoke_sync(&addr, req, self.config.send_msg_timeout)?)?;
        Ok(send_result(uniq, mq, status, h))
    }

    /// Sends messages of one topic as one batch (SEND_BATCH_MESSAGE) to one
    /// queue, stored together, retried as a sync send is. The result's
    /// `msg_id` lists every message's unique id, comma-separated, as RocketMQ
    /// does.
    pub fn send_batch(&self, msgs: Vec<Message>) -> Result<SendResult, ClientError> {
        let Some(first) = msgs.first() else {
            return Err(ClientError::State("the batch is empty".into()));
        };
        let topic = first.topic.clone();
        let mut ids = Vec::with_capacity(msgs.len());
        let mut body = Vec::new();
        let mut probe = Message::new(topic.clone(), "batch");
        let (inst, _, queues) = self.prepare(&mut probe)?;
        for mut m in msgs {
            if m.topic != topic {
                return Err(ClientError::State("all messages of a batch must have the same topic".into()));
            }
            if m.property(property::DELAY).is_some() {
                return Err(ClientError::State("TimeDelayLevel is not supported for batching".into()));
            }
            let id = match m.property(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX) {
                Some(u) => u.to_string(),
                None => create_unique_id(),
            };
            m.put_property(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX, id.clone());
            ids.push(id);
            let props = properties_to_string(&m.properties);
            // TOTALSIZE, MAGICCODE (0), BODYCRC (0), FLAG, BODY, PROPERTIES.
            let total = 4 + 4 + 4 + 4 + 4 + m.body.len() + 2 + props.len();
            body.extend_from_slice(&(total as i32).to_be_bytes());
            body.extend_from_slice(&[0u8; 8]);
            body.extend_from_slice(&m.flag.to_be_bytes());
            body.extend_from_slice(&(m.body.len() as i32).to_be_bytes());
            body.extend_from_slice(&m.body);
            body.extend_from_slice(&(props.len() as i16).to_be_bytes());
            body.extend_from_slice(props.as_bytes());
        }
        if body.len() > self.config.max_message_size {
            return Err(ClientError::State(format!(
                "the batch size over max value, MAX: {}",
                self.config.max_message_size
            )));
        }
        let body = bytes::Bytes::from(body);
        let header_only = Message { topic, flag: 0, properties: Default::default(), body: bytes::Bytes::new() };
        let (mq, status, h) = self.send_with_retries(&inst, &queues, |mq| {
            let mut req = send_request(&self.config, &inst, mq, &header_only);
            req.code = request::SEND_BATCH_MESSAGE;
            req.ext_fields.insert("m", "true");
            req.body = crate::remoting::Body::from(body.clone());
            req
        })?;
        Ok(send_result(ids.join(","), mq, status, h))
    }

    /// Sends `msg` without waiting: `callback` runs once, on
    /// `NettyClientPublicExecutor_N`, with the result. A failed try is retried
    /// on another queue (another broker where there is one) up to
    /// `retry_times_when_send_async_failed` times within the send timeout.
    /// Errors found before the first try (state, validation, route) come
    /// back here and the callback is not called.
    pub fn send_async(
        &self,
        mut msg: Message,
        callback: impl FnOnce(Result<SendResult, ClientError>) + Send + 'static,
    ) -> Result<(), ClientError> {
        let (inst, uniq, queues) = self.prepare(&mut msg)?;
        let send = AsyncSend {
            inst,
            config: self.config.clone(),
            fault: self.fault.clone(),
            queues,
            msg,
            uniq,
            deadline: Deadline::after(self.config.send_msg_timeout),
            retries_left: self.config.retry_times_when_send_async_failed,
            callback: Box::new(callback),
        };
        send.try_next(None, false);
        Ok(())
    }

    /// Sends `msg` and waits for nothing (oneway).
    pub fn send_oneway(&self, mut msg: Message) -> Result<(), ClientError> {
        let (inst, _, queues) = self.prepare(&mut msg)?;
        let mq = self.select_queue(&queues, None)?;
        let begin = now_millis();
        let sent = Self::target(&inst, &mq).and_then(|addr| {
            let req = send_request(&self.config, &inst, &mq, &msg);
            Ok(inst.remoting().invoke_oneway(&addr, req, self.config.send_msg_timeout)?)
        });
        let end = now_millis();
        self.fault.update_fault_item(&mq.broker_name, end - begin, sent.is_err(), end);
        sent
    }

    /// Unregisters the group; the instance stops with its last user.
    pub fn shutdown(&self) {
        let mut state = self.state.lock();
        if *state != ServiceState::Running {
            return;
        }
        if let Some(inst) = self.instance.lock().take() {
            inst.unregister_producer(&self.config.group);
            if inst.is_unused() {
                inst.shutdown();
            }
        }
        *state = ServiceState::ShutdownAlready;
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A send's answer as a status and header, or the broker's refusal.
fn send_response(r: RemotingCommand) -> Result<(SendStatus, SendMessageResponseHeader), ClientError> {
    let status = match r.code {
        response::SUCCESS => SendStatus::SendOk,
        response::FLUSH_DISK_TIMEOUT => SendStatus::FlushDiskTimeout,
        response::FLUSH_SLAVE_TIMEOUT => SendStatus::FlushSlaveTimeout,
        response::SLAVE_NOT_AVAILABLE => SendStatus::SlaveNotAvailable,
        code => return Err(ClientError::Refused { code, remark: r.remark.unwrap_or_default() }),
    };
    let header = r.header::<SendMessageResponseHeader>().map_err(|e| ClientError::Refused {
        code: response::SYSTEM_ERROR,
        remark: format!("bad send response: {e}"),
    })?;
    Ok((status, header))
}

/// The SEND_MESSAGE_V2 request for `msg` to `mq`.
fn send_request(config: &ProducerConfig, inst: &ClientInstance, mq: &MessageQueue, msg: &Message) -> RemotingCommand {
    let (body, sys_flag) = match (msg.body.len() > config.compress_msg_body_over)
        .then(|| crate::common::message::compress_body(&msg.body))
        .flatten()
    {
        Some(z) => (z, crate::common::message::sys_flag::COMPRESSED_FLAG),
        None => (msg.body.clone(), 0),
    };
    let h = SendMessageRequestHeaderV2 {
        producer_group: config.group.clone(),
        topic: msg.topic.clone(),
        default_topic: DEFAULT_TOPIC.into(),
        default_topic_queue_nums: config.default_topic_queue_nums,
        queue_id: mq.queue_id,
        sys_flag,
        born_timestamp: now_millis(),
        flag: msg.flag,
        properties: Some(properties_to_string(&msg.properties)),
        reconsume_times: Some(0),
        unit_mode: Some(false),
        max_reconsume_times: None,
        batch: Some(false),
        broker_name: Some(mq.broker_name.clone()),
    };
    RemotingCommand::request_with(request::SEND_MESSAGE_V2, &h)
        .with_body(body)
        .with_serialize_type(inst.config().serialize_type)
}

/// The result of a send to `mq` the broker accepted (its queue id is the one
/// the broker stored to).
fn send_result(msg_id: String, mq: MessageQueue, status: SendStatus, h: SendMessageResponseHeader) -> SendResult {
    SendResult {
        status,
        msg_id,
        offset_msg_id: h.msg_id,
        queue_offset: h.queue_offset,
        queue: MessageQueue { queue_id: h.queue_id, ..mq },
    }
}

/// `fault`'s choice among `queues` now.
fn select_queue(
    fault: &FaultStrategy,
    queues: &[MessageQueue],
    last_failed: Option<&str>,
) -> Result<MessageQueue, ClientError> {
    fault.select(queues, last_failed, now_millis()).ok_or_else(|| ClientError::State("No writable queue".into()))
}

/// An async send between tries: what a retry needs (RocketMQ: what
/// sendMessageAsync carries into onExceptionImpl).
struct AsyncSend {
    inst: Arc<ClientInstance>,
    config: Arc<ProducerConfig>,
    fault: Arc<FaultStrategy>,
    queues: Arc<[MessageQueue]>,
    msg: Message,
    uniq: String,
    deadline: Deadline,
    /// Tries left after the current one.
    retries_left: u32,
    callback: Box<dyn FnOnce(Result<SendResult, ClientError>) + Send>,
}

impl AsyncSend {
    /// Makes the next try; `on_callback_thread` says whether this runs on
    /// `NettyClientPublicExecutor_N` (a retry from a callback) or on the
    /// sender's thread (the first try, or a retry after a try that failed
    /// before anything was sent).
    fn try_next(self, mut last_failed: Option<String>, on_callback_thread: bool) {
        let mut send = self;
        loop {
            let mq = match select_queue(&send.fault, &send.queues, last_failed.as_deref()) {
                Ok(mq) => mq,
                Err(e) => return send.finish(Err(e), on_callback_thread),
            };
            let begin = now_millis();
            let addr = match Producer::target(&send.inst, &mq) {
                Ok(addr) => addr,
                Err(e) => match send.failed(&mq, begin, e, on_callback_thread) {
                    Some(s) => {
                        send = s;
                        last_failed = Some(mq.broker_name);
                        continue;
                    }
                    None => return,
                },
            };
            let req = send_request(&send.config, &send.inst, &mq, &send.msg);
            let inst = send.inst.clone();
            let timeout = send.deadline.remaining();
            // The callback may run before invoke_async returns; whoever takes
            // the send from the slot goes on with it.
            let slot = Arc::new(Mutex::new(Some(send)));
            let in_callback = slot.clone();
            let sent_to = mq.clone();
            let issued = inst.remoting().invoke_async(&addr, req, timeout, move |r| {
                let taken = in_callback.lock().take();
                if let Some(send) = taken {
                    send.on_response(sent_to, begin, r);
                }
            });
            let Err(e) = issued else { return };
            let Some(s) = slot.lock().take() else { return };
            match s.failed(&mq, begin, e.into(), on_callback_thread) {
                Some(s) => {
                    send = s;
                    last_failed = Some(mq.broker_name);
                }
                None => return,
            }
        }
    }

    /// The broker's answer (or the wire error) to the try on `mq`, on `NettyClientPublicExecutor_N`.
    fn on_response(self, mq: MessageQueue, begin: i64, r: crate::remoting::InvokeResult) {
        match r.map_err(ClientError::from).and_then(send_response) {
            Ok((status, h)) => {
                let end = now_millis();
                self.fault.update_fault_item(&mq.broker_name, end - begin, false, end);
                (self.callback)(Ok(send_result(self.uniq, mq, status, h)));
            }
            Err(e) => {
                if let Some(send) = self.failed(&mq, begin, e, true) {
                    send.try_next(Some(mq.broker_name), true);
                }
            }
        }
    }

    /// Records the failed try on `mq`; gives the send back when it may be
    /// retried, else calls back with `e`.
    fn failed(mut self, mq: &MessageQueue, begin: i64, e: ClientError, on_callback_thread: bool) -> Option<Self> {
        let end = now_millis();
        self.fault.update_fault_item(&mq.broker_name, end - begin, true, end);
        if retryable(&e) && self.retries_left > 0 && !self.deadline.passed() {
            self.retries_left -= 1;
            log::warn!("async send to {} failed, retrying on another queue: {e}", mq.broker_name);
            return Some(self);
        }
        log::warn!("async send to {} failed: {e}", mq.broker_name);
        self.finish(Err(e), on_callback_thread);
        None
    }

    /// Calls back with the final result, on `NettyClientPublicExecutor_N`.
    fn finish(self, result: Result<SendResult, ClientError>, on_callback_thread: bool) {
        let callback = self.callback;
        if on_callback_thread {
            callback(result);
        } else {
            self.inst.remoting().run_on_callback_thread(move || callback(result));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn producer(latency_fault: bool) -> Producer {
        let config = ProducerConfig { send_latency_fault_enable: latency_fault, ..ProducerConfig::new("pg_select") };
        Producer::new(config, ClientConfig::default())
    }

    /// Two brokers with two queues each, as `queues_of` lists them.
    fn queues() -> Vec<MessageQueue> {
        ["broker-a", "broker-b"].iter().flat_map(|b| (0..2).map(move |i| MessageQueue::new("T", *b, i))).collect()
    }

    fn brokers_picked(p: &Producer, last_failed: Option<&str>) -> Vec<String> {
        (0..8).filter_map(|_| p.select_queue(&queues(), last_failed).ok()).map(|q| q.broker_name).collect()
    }

    #[test]
    fn an_isolated_broker_gets_no_queue_while_latency_fault_tolerance_is_on() {
        let p = producer(true);
        assert_eq!(brokers_picked(&p, None).iter().filter(|b| *b == "broker-a").count(), 4, "both in turn");
        p.update_fault_item("broker-a", Duration::from_millis(5), true);
        assert_eq!(brokers_picked(&p, None), vec!["broker-b"; 8]);
        p.update_fault_item("broker-b", Duration::from_millis(20), false);
        assert_eq!(brokers_picked(&p, None), vec!["broker-b"; 8], "a fast broker stays available");
        p.update_fault_item("broker-b", Duration::from_millis(600), false);
        p.update_fault_item("broker-a", Duration::from_millis(5), false);
        assert_eq!(brokers_picked(&p, None), vec!["broker-a"; 8], "a slow send (550 ms and over) isolates too");
    }

    #[test]
    fn without_latency_fault_tolerance_only_the_last_failed_broker_is_avoided() {
        let p = producer(false);
        p.update_fault_item("broker-a", Duration::from_millis(5), true);
        assert_eq!(brokers_picked(&p, None).iter().filter(|b| *b == "broker-a").count(), 4);
        assert_eq!(brokers_picked(&p, Some("broker-a")), vec!["broker-b"; 8]);
        assert!(p.select_queue(&[], None).is_err());
    }

    #[test]
    fn only_refusals_with_a_retry_code_stop_retries() {
        assert!(retryable(&ClientError::Remoting(crate::remoting::RemotingError::ShutDown)));
        assert!(retryable(&ClientError::State("The broker[x] not exist".into())));
        assert!(retryable(&ClientError::Refused { code: response::SYSTEM_ERROR, remark: String::new() }));
        assert!(!retryable(&ClientError::Refused { code: response::MESSAGE_ILLEGAL, remark: String::new() }));
    }
}
