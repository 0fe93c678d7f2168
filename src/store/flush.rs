//! The flush services: `FlushRealTimeService` (ASYNC_FLUSH),
//! `GroupCommitService` (SYNC_FLUSH) and `FlushConsumeQueueService`, which
//! also writes the checkpoint.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::common::thread;
use crate::common::wait::OneShot;
use crate::store::consume_queue::ConsumeQueue;
use crate::store::message_store::Inner;

impl Inner {
    /// `FlushRealTimeService`: every flushIntervalCommitLog, flush when at
    /// least flushCommitLogLeastPages are dirty; everything every
    /// flushCommitLogThoroughInterval.
    pub(super) fn run_flush_real_time(&self, ctx: &crate::common::ServiceContext) {
        let mut last_thorough = Instant::now();
        while !ctx.is_stopped() {
            thread::doing("sleeping until the next flush");
            ctx.wait_for_running(self.config.flush_interval_commit_log);
            let mut pages = self.config.flush_commit_log_least_pages;
            if last_thorough.elapsed() >= self.config.flush_commit_log_thorough_interval {
                last_thorough = Instant::now();
                pages = 0;
            }
            thread::doing("flushing the CommitLog");
            self.flush_commit_log(pages);
        }
    }

    pub(super) fn flush_commit_log(&self, least_pages: usize) -> bool {
        let ts = self.commit_log.queue().last().map_or(0, |f| f.last_store_timestamp());
        match self.commit_log.flush(least_pages) {
            Ok(_) => {
                if ts > 0 && self.commit_log.flushed_where() >= self.commit_log.max_offset() {
                    self.checkpoint.set_physic_msg_timestamp(ts);
                }
                true
            }
            Err(e) => {
                log::error!("CommitLog flush failed: {e}");
                false
            }
        }
    }

    /// `GroupCommitService`: takes every waiting sync-flush request, flushes
    /// once for all of them, and answers each.
    pub(super) fn run_group_commit(&self, ctx: &crate::common::ServiceContext) {
        loop {
            let stopped = ctx.is_stopped();
            let requests: Vec<(i64, Arc<OneShot<bool>>)> = std::mem::take(&mut *self.group_commit.lock());
            if !requests.is_empty() {
                thread::doing("flushing a group of sync puts");
                let want = requests.iter().map(|(o, _)| *o).max().unwrap_or(0);
                let ts = self.commit_log.queue().last().map_or(0, |f| f.last_store_timestamp());
                // A group may end in a later file: flush file by file.
                while self.commit_log.flushed_where() < want {
                    match self.commit_log.flush(0) {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) => {
                            log::error!("CommitLog flush failed: {e}");
                            break;
                        }
                    }
                }
                let flushed = self.commit_log.flushed_where();
                if ts > 0 && flushed >= want {
                    self.checkpoint.set_physic_msg_timestamp(ts);
                }
                for (offset, slot) in requests {
                    slot.set(flushed >= offset);
                }
                continue;
            }
            if stopped {
                return;
            }
            thread::doing("waiting for sync puts");
            ctx.wait_for_running(Duration::from_millis(10));
        }
    }

    /// `FlushConsumeQueueService`: flushes the ConsumeQueues every
    /// flushIntervalConsumeQueue, then the checkpoint.
    pub(super) fn run_flush_consume_queue(&self, ctx: &crate::common::ServiceContext) {
        let mut last_thorough = Instant::now();
        while !ctx.is_stopped() {
            thread::doing("sleeping until the next flush");
            ctx.wait_for_running(self.config.flush_interval_consume_queue);
            let mut pages = self.config.flush_consume_queue_least_pages;
            if last_thorough.elapsed() >= self.config.flush_consume_queue_thorough_interval {
                last_thorough = Instant::now();
                pages = 0;
            }
            thread::doing("flushing ConsumeQueues");
            self.flush_consume_queues(pages);
        }
    }

    pub(super) fn flush_consume_queues(&self, least_pages: usize) {
        let ts = self.last_dispatched_store_time();
        let queues: Vec<Arc<ConsumeQueue>> = self.queues.read().values().flat_map(|m| m.values().cloned()).collect();
        let mut all = true;
        for q in queues {
            let r = if least_pages == 0 { q.flush_all().map(|_| true) } else { q.flush(least_pages) };
            if let Err(e) = r {
                log::error!("ConsumeQueue {}-{} flush failed: {e}", q.topic(), q.queue_id());
                all = false;
            }
        }
        if all && least_pages == 0 && ts > 0 {
            self.checkpoint.set_logics_msg_timestamp(ts);
        }
        if let Err(e) = self.checkpoint.flush() {
            log::error!("checkpoint flush failed: {e}");
        }
    }

    /// Store time of the last indexed message.
    pub(super) fn last_dispatched_store_time(&self) -> i64 {
        let at = self.reput_from.load(Ordering::Acquire);
        if at <= 0 {
            return 0;
        }
        self.commit_log.queue().find(at - 1).map_or(0, |f| f.last_store_timestamp())
    }

    pub(super) fn flush_everything(&self) -> io::Result<()> {
        self.commit_log.queue().flush_all()?;
        let ts = self.commit_log.queue().last().map_or(0, |f| f.last_store_timestamp());
        if ts > 0 {
            self.checkpoint.set_physic_msg_timestamp(ts);
        }
        self.flush_consume_queues(0);
        Ok(())
    }
}
