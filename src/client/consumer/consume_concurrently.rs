//! Concurrent consumption (RocketMQ: ConsumeMessageConcurrentlyService):
//! batches of `consumeMessageBatchMaxSize` run on `ConsumeMessageThread_N`;
//! failed messages go back to the broker (CONSUMER_SEND_MSG_BACK) or, when
//! that fails, are consumed again here 5 s later; the offset advances to the
//! ProcessQueue's lowest unconsumed message. `ConsumeMessageScheduledThread_1`
//! runs the delayed re-submissions, `CleanExpireMsgScheduledThread_1` the
//! consume-timeout check.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::client::consumer::process_queue::ProcessQueue;
use crate::client::consumer::push::PushInner;
use crate::client::consumer::{
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, ConsumeDirectlyResult, ConsumeDirectlyStatus,
    MessageListenerConcurrently, MessageModel, call_listener, consume_directly,
};
use crate::common::message::MessageExt;
use crate::common::{ScheduledExecutor, ThreadPool};
use crate::remoting::body::MessageQueue;

/// Consume again after a failed send-back or a full pool (RocketMQ: 5 s).
const RESUBMIT_DELAY: Duration = Duration::from_secs(5);

pub struct ConcurrentlyService {
    listener: Arc<dyn MessageListenerConcurrently>,
    pool: Arc<ThreadPool>,
    scheduled: ScheduledExecutor,
    clean_expire: ScheduledExecutor,
}

impl ConcurrentlyService {
    pub fn new(listener: Arc<dyn MessageListenerConcurrently>, threads: usize) -> std::io::Result<Self> {
        Ok(ConcurrentlyService {
            listener,
            pool: super::consume_pool(threads)?,
            scheduled: ScheduledExecutor::new("ConsumeMessageScheduledThread_1", "consumer")?,
            clean_expire: ScheduledExecutor::new("CleanExpireMsgScheduledThread_1", "consumer")?,
        })
    }

    /// Starts the consume-timeout check (every consumeTimeout).
    pub(crate) fn start(&self, inner: &Arc<PushInner>) {
        let me = Arc::downgrade(inner);
        let every = inner.config.consume_timeout;
        self.clean_expire.schedule_at_fixed_rate(every, every, move || {
            if let Some(i) = me.upgrade() {
                i.clean_expired_msg();
            }
        });
    }

    /// Splits pulled messages into consume requests.
    pub(crate) fn submit(
        &self,
        inner: &Arc<PushInner>,
        msgs: Vec<MessageExt>,
        pq: &Arc<ProcessQueue>,
        mq: &MessageQueue,
    ) {
        let batch = inner.config.consume_message_batch_max_size.max(1);
        if msgs.len() <= batch {
            return self.submit_request(inner, msgs, pq.clone(), mq.clone());
        }
        let mut rest = msgs;
        while !rest.is_empty() {
            let tail = rest.split_off(batch.min(rest.len()));
            self.submit_request(inner, std::mem::replace(&mut rest, tail), pq.clone(), mq.clone());
        }
    }

    fn submit_request(&self, inner: &Arc<PushInner>, msgs: Vec<MessageExt>, pq: Arc<ProcessQueue>, mq: MessageQueue) {
        if super::consume_pool_full(&self.pool) {
            log::warn!("{}: the consume pool is full; consuming later", inner.config.group);
            return self.submit_later(inner, msgs, pq, mq);
        }
        let me = inner.clone();
        if let Err(e) = self.pool.try_execute(move || consume(&me, msgs, &pq, &mq)) {
            // Only a pool shut down by the consumer's shutdown gets here: the
            // messages stay unconsumed and their offsets uncommitted.
            log::info!("{}: {e}", inner.config.group);
        }
    }

    fn submit_later(&self, inner: &Arc<PushInner>, msgs: Vec<MessageExt>, pq: Arc<ProcessQueue>, mq: MessageQueue) {
        let me = inner.clone();
        self.scheduled.schedule(RESUBMIT_DELAY, move || {
            if let super::push::ConsumeService::Concurrently(s) = &me.consume {
                s.submit_request(&me, msgs, pq, mq);
            }
        });
    }

    /// CONSUME_MESSAGE_DIRECTLY: the listener's verdict on `msgs`, offsets untouched.
    pub(crate) fn consume_directly(&self, msgs: &[MessageExt], mq: MessageQueue) -> ConsumeDirectlyResult {
        let mut ctx =
            ConsumeConcurrentlyContext { message_queue: mq, delay_level_when_next_consume: 0, ack_index: i32::MAX };
        consume_directly(false, || match self.listener.consume_message(msgs, &mut ctx) {
            ConsumeConcurrentlyStatus::ConsumeSuccess => ConsumeDirectlyStatus::Success,
            ConsumeConcurrentlyStatus::ReconsumeLater => ConsumeDirectlyStatus::Later,
        })
    }

    /// Refuses new requests, lets running ones finish (up to `wait`), joins.
    pub(crate) fn shutdown(&self, wait: Duration) {
        self.clean_expire.shutdown();
        self.scheduled.shutdown();
        self.pool.shutdown_within(wait);
    }
}

/// One consume request (RocketMQ: ConsumeRequest.run).
fn consume(inner: &Arc<PushInner>, mut msgs: Vec<MessageExt>, pq: &Arc<ProcessQueue>, mq: &MessageQueue) {
    if pq.is_dropped() || inner.is_stopping() {
        return;
    }
    let super::push::ConsumeService::Concurrently(service) = &inner.consume else { return };
    inner.reset_retry_topic(&mut msgs);
    pq.mark_consume_start(&msgs);
    let mut ctx =
        ConsumeConcurrentlyContext { message_queue: mq.clone(), delay_level_when_next_consume: 0, ack_index: i32::MAX };
    crate::common::thread::doing("running the listener");
    let started = Instant::now();
    let status = call_listener(&inner.config.group, ConsumeConcurrentlyStatus::ReconsumeLater, || {
        service.listener.consume_message(&msgs, &mut ctx)
    });
    inner.stats.consume_rt_total_ms.fetch_add(started.elapsed().as_millis() as u64, Ordering::Relaxed);
    if pq.is_dropped() {
        log::info!("{}: {mq:?} was dropped while consuming; its result is not applied", inner.config.group);
        return;
    }
    let len = msgs.len() as i32;
    let ack = match status {
        ConsumeConcurrentlyStatus::ConsumeSuccess => ctx.ack_index.min(len - 1),
        ConsumeConcurrentlyStatus::ReconsumeLater => -1,
    };
    let ok = (ack + 1).max(0) as u64;
    inner.stats.consume_ok.fetch_add(ok, Ordering::Relaxed);
    inner.stats.consume_failed.fetch_add(len as u64 - ok, Ordering::Relaxed);
    let failed_from = (ack + 1) as usize;
    match inner.config.message_model {
        MessageModel::Broadcasting => {
            for m in &msgs[failed_from..] {
                log::warn!("{}: broadcasting does not retry; {} is dropped", inner.config.group, m.msg_id);
            }
        }
        MessageModel::Clustering => {
            let mut back_failed = Vec::new();
            for m in &msgs[failed_from..] {
                if !inner.send_message_back(m, &mq.broker_name, ctx.delay_level_when_next_consume) {
                    let mut again = m.clone();
                    again.reconsume_times += 1;
                    back_failed.push(again);
                }
            }
            if !back_failed.is_empty() {
                msgs.retain(|m| !back_failed.iter().any(|f| f.queue_offset == m.queue_offset));
                service.submit_later(inner, back_failed, pq.clone(), mq.clone());
            }
        }
    }
    let offset = pq.remove_messages(&msgs);
    if offset >= 0 && !pq.is_dropped() {
        inner.offset_store.update_offset(mq, offset, true);
    }
}
