//! Orderly consumption (RocketMQ: ConsumeMessageOrderlyService): one thread
//! at a time per queue, under the broker's lock (LOCK_BATCH_MQ, renewed
//! every 20 s on `ConsumeMessageScheduledThread_1`) and a local per-queue
//! lock, in queue order. SUSPEND_CURRENT_QUEUE_A_MOMENT puts the batch back
//! and tries again later; past maxReconsumeTimes a message goes to the
//! dead-letter queue.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::client::consumer::process_queue::{LOCK_RENEW_INTERVAL, ProcessQueue};
use crate::client::consumer::push::{ConsumeService, PushInner};
use crate::client::consumer::{
    ConsumeDirectlyResult, ConsumeDirectlyStatus, ConsumeOrderlyContext, ConsumeOrderlyStatus, MessageListenerOrderly,
    MessageModel, call_listener, consume_directly,
};
use crate::common::message::{MessageExt, property};
use crate::common::{ScheduledExecutor, ThreadPool};
use crate::remoting::body::MessageQueue;

/// One request consumes a queue at most this long before yielding the
/// thread (RocketMQ: MAX_TIME_CONSUME_CONTINUOUSLY, 60 s).
const MAX_TIME_CONSUME_CONTINUOUSLY: Duration = Duration::from_secs(60);

pub struct OrderlyService {
    listener: Arc<dyn MessageListenerOrderly>,
    pool: Arc<ThreadPool>,
    scheduled: ScheduledExecutor,
    /// One lock per queue so two requests never consume it at once
    /// (RocketMQ: MessageQueueLock).
    queue_locks: Mutex<HashMap<MessageQueue, Arc<Mutex<()>>>>,
}

impl OrderlyService {
    pub fn new(listener: Arc<dyn MessageListenerOrderly>, threads: usize) -> std::io::Result<Self> {
        Ok(OrderlyService {
            listener,
            pool: super::consume_pool(threads)?,
            scheduled: ScheduledExecutor::new("ConsumeMessageScheduledThread_1", "consumer")?,
            queue_locks: Mutex::default(),
        })
    }

    /// Clustering: renews the broker locks every 20 s (first after 1 s).
    pub(crate) fn start(&self, inner: &Arc<PushInner>) {
        if inner.config.message_model != MessageModel::Clustering {
            return;
        }
        let me = Arc::downgrade(inner);
        self.scheduled.schedule_at_fixed_rate(Duration::from_secs(1), LOCK_RENEW_INTERVAL, move || {
            if let Some(i) = me.upgrade()
                && !i.is_stopping()
            {
                i.rebalance.lock_all();
            }
        });
    }

    /// Queues a consume request for `mq` after `delay`.
    pub(crate) fn submit(&self, inner: &Arc<PushInner>, pq: &Arc<ProcessQueue>, mq: &MessageQueue, delay: Duration) {
        let (me, pq, mq) = (inner.clone(), pq.clone(), mq.clone());
        if delay > Duration::ZERO {
            self.scheduled.schedule(delay, move || {
                if let ConsumeService::Orderly(s) = &me.consume {
                    s.submit(&me, &pq, &mq, Duration::ZERO);
                }
            });
            return;
        }
        if super::consume_pool_full(&self.pool) {
            return self.submit(inner, &pq, &mq, Duration::from_millis(100));
        }
        if let Err(e) = self.pool.try_execute(move || consume(&me, &pq, &mq)) {
            log::info!("{}: {e}", inner.config.group);
        }
    }

    /// Locks `mq` on its broker later, then consumes (RocketMQ: tryLockLaterAndReconsume).
    fn try_lock_later_and_reconsume(
        &self,
        inner: &Arc<PushInner>,
        pq: &Arc<ProcessQueue>,
        mq: &MessageQueue,
        delay: Duration,
    ) {
        let (me, pq, mq) = (inner.clone(), pq.clone(), mq.clone());
        self.scheduled.schedule(delay, move || {
            let locked = me.rebalance.lock(&mq);
            if let ConsumeService::Orderly(s) = &me.consume {
                let next = if locked { Duration::from_millis(10) } else { Duration::from_secs(3) };
                s.submit(&me, &pq, &mq, next);
            }
        });
    }

    fn queue_lock(&self, mq: &MessageQueue) -> Arc<Mutex<()>> {
        self.queue_locks.lock().entry(mq.clone()).or_default().clone()
    }

    pub(crate) fn consume_directly(&self, msgs: &[MessageExt], mq: MessageQueue) -> ConsumeDirectlyResult {
        let mut ctx = ConsumeOrderlyContext { message_queue: mq, suspend_current_queue_time_millis: -1 };
        consume_directly(true, || match self.listener.consume_message(msgs, &mut ctx) {
            ConsumeOrderlyStatus::Success => ConsumeDirectlyStatus::Success,
            ConsumeOrderlyStatus::SuspendCurrentQueueAMoment => ConsumeDirectlyStatus::Later,
        })
    }

    pub(crate) fn shutdown(&self, wait: Duration) {
        self.scheduled.shutdown();
        self.pool.shutdown_within(wait);
    }
}

/// One orderly consume request (RocketMQ: ConsumeMessageOrderlyService.ConsumeRequest.run).
fn consume(inner: &Arc<PushInner>, pq: &Arc<ProcessQueue>, mq: &MessageQueue) {
    let ConsumeService::Orderly(service) = &inner.consume else { return };
    if pq.is_dropped() || inner.is_stopping() {
        return;
    }
    let clustering = inner.config.message_model == MessageModel::Clustering;
    let lock = service.queue_lock(mq);
    let _one_at_a_time = lock.lock();
    if clustering && (!pq.is_locked() || pq.is_lock_expired()) {
        return service.try_lock_later_and_reconsume(inner, pq, mq, Duration::from_millis(100));
    }
    let began = Instant::now();
    let batch = inner.config.consume_message_batch_max_size.max(1);
    loop {
        if pq.is_dropped() || inner.is_stopping() {
            break;
        }
        if clustering && (!pq.is_locked() || pq.is_lock_expired()) {
            service.try_lock_later_and_reconsume(inner, pq, mq, Duration::from_millis(10));
            break;
        }
        if began.elapsed() > MAX_TIME_CONSUME_CONTINUOUSLY {
            service.submit(inner, pq, mq, Duration::from_millis(10));
            break;
        }
        let mut msgs = pq.take_messages(batch);
        if msgs.is_empty() {
            break;
        }
        inner.reset_retry_topic(&mut msgs);
        let mut ctx = ConsumeOrderlyContext { message_queue: mq.clone(), suspend_current_queue_time_millis: -1 };
        let status = {
            let _consuming = pq.consume_lock.lock();
            if pq.is_dropped() {
                break;
            }
            crate::common::thread::doing("running the listener");
            let started = Instant::now();
            let s = call_listener(&inner.config.group, ConsumeOrderlyStatus::SuspendCurrentQueueAMoment, || {
                service.listener.consume_message(&msgs, &mut ctx)
            });
            inner.stats.consume_rt_total_ms.fetch_add(started.elapsed().as_millis() as u64, Ordering::Relaxed);
            s
        };
        if !process_result(inner, service, msgs, status, &ctx, pq, mq) {
            break;
        }
    }
}

/// Commits or suspends after a batch; false stops the current request.
fn process_result(
    inner: &Arc<PushInner>,
    service: &OrderlyService,
    mut msgs: Vec<MessageExt>,
    status: ConsumeOrderlyStatus,
    ctx: &ConsumeOrderlyContext,
    pq: &Arc<ProcessQueue>,
    mq: &MessageQueue,
) -> bool {
    let n = msgs.len() as u64;
    let commit_offset = match status {
        ConsumeOrderlyStatus::Success => {
            inner.stats.consume_ok.fetch_add(n, Ordering::Relaxed);
            pq.commit()
        }
        ConsumeOrderlyStatus::SuspendCurrentQueueAMoment => {
            inner.stats.consume_failed.fetch_add(n, Ordering::Relaxed);
            if suspend_or_dead_letter(inner, &mut msgs, mq) {
                pq.make_messages_to_consume_again(&msgs);
                let millis = if ctx.suspend_current_queue_time_millis >= 0 {
                    ctx.suspend_current_queue_time_millis
                } else {
                    inner.config.suspend_current_queue_time_millis
                };
                service.submit(inner, pq, mq, Duration::from_millis(millis.clamp(10, 30_000) as u64));
                return false;
            }
            pq.commit()
        }
    };
    if commit_offset >= 0 && !pq.is_dropped() {
        inner.offset_store.update_offset(mq, commit_offset, false);
    }
    true
}

/// Messages past maxReconsumeTimes go to the dead-letter queue; true when
/// the batch must be consumed again (RocketMQ: checkReconsumeTimes).
fn suspend_or_dead_letter(inner: &Arc<PushInner>, msgs: &mut [MessageExt], mq: &MessageQueue) -> bool {
    let max = inner.max_reconsume_times();
    let mut suspend = false;
    for m in msgs.iter_mut() {
        if m.reconsume_times >= max {
            m.message.put_property(property::RECONSUME_TIME, m.reconsume_times.to_string());
            // A negative delay level sends it straight to %DLQ%<group>.
            if !inner.send_message_back(m, &mq.broker_name, -1) {
                suspend = true;
                m.reconsume_times += 1;
            }
        } else {
            suspend = true;
            m.reconsume_times += 1;
        }
    }
    suspend
}
