//! The flush services: `FlushRealTimeService` (ASYNC_FLUSH),
//! `GroupCommitService` (SYNC_FLUSH) and `FlushConsumeQueueService`, which
//! also writes the checkpoint.

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
        let c = &self.config;
        let (every, least, thorough) =
            (c.flush_interval_commit_log, c.flush_commit_log_least_pages, c.flush_commit_log_thorough_interval);
        flush_rounds(ctx, every, least, thorough, "flushing the CommitLog", |pages| {
            self.flush_commit_log(pages);
        });
    }

    pub(super) fn flush_commit_log(&self, least_pages: usize) -> bool {
        match self.commit_log.flush(least_pages) {
            Ok(_) => {
                self.note_commit_log_flushed();
                true
            }
            Err(e) => {
                log::error!("CommitLog flush failed: {e}");
                false
            }
        }
    }

    /// Moves the checkpoint's CommitLog time to the last message known
    /// flushed. Every flush moves it, whether or not the flushes have caught
    /// up with the writes, so under steady load recovery still starts near
    /// the end of the log.
    fn note_commit_log_flushed(&self) {
        let ts = self.commit_log.queue().store_timestamp();
        if ts > 0 {
            self.checkpoint.set_physic_msg_timestamp(ts);
        }
        fail::fail_point!("store::commit_log_flushed");
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
                self.note_commit_log_flushed();
                let flushed = self.commit_log.flushed_where();
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
        let c = &self.config;
        let (every, least, thorough) = (
            c.flush_interval_consume_queue,
            c.flush_consume_queue_least_pages,
            c.flush_consume_queue_thorough_interval,
        );
        flush_rounds(ctx, every, least, thorough, "flushing ConsumeQueues", |pages| {
            self.flush_consume_queues(pages);
        });
    }

    /// True when every queue and the checkpoint were flushed without error.
    pub(super) fn flush_consume_queues(&self, least_pages: usize) -> bool {
        // Read before the flushes: every unit of that message and before it
        // is below the write positions the flushes then read.
        let ts = self.dispatched_store_timestamp.load(Ordering::Acquire);
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
            all = false;
        }
        all
    }

    /// Flushes the CommitLog, every ConsumeQueue and the checkpoint (a clean
    /// stop). True when all of it reached the disk.
    pub(super) fn flush_everything(&self) -> bool {
        if let Err(e) = self.commit_log.queue().flush_all() {
            log::error!("CommitLog flush failed: {e}");
            return false;
        }
        self.note_commit_log_flushed();
        self.flush_consume_queues(0)
    }
}

/// The loop of a flush service: every `every` (or when woken) `flush` with
/// `least` pages, or with 0 (everything) once `thorough` has passed.
fn flush_rounds(
    ctx: &crate::common::ServiceContext,
    every: Duration,
    least: usize,
    thorough: Duration,
    doing: &'static str,
    mut flush: impl FnMut(usize),
) {
    let mut last_thorough = Instant::now();
    while !ctx.is_stopped() {
        thread::doing("sleeping until the next flush");
        ctx.wait_for_running(every);
        let mut pages = least;
        if last_thorough.elapsed() >= thorough {
            last_thorough = Instant::now();
            pages = 0;
        }
        thread::doing(doing);
        flush(pages);
    }
}
