//! File cleaning on `StoreScheduledThread` (RocketMQ: CleanCommitLogService,
//! CleanConsumeQueueService), every `cleanResourceInterval`.
//!
//! CommitLog files older than `fileReservedTime` go at the `deleteWhen`
//! hours, or at once when the disk is above `diskMaxUsedSpaceRatio`. Above
//! `diskSpaceCleanForciblyRatio` (or when the disk was marked full), and
//! only with `cleanFileForciblyEnable`, the oldest files go even if they
//! are not expired: expiry by the operator's policy, as Apache's. Never
//! the file being written, never one whose messages are not indexed yet;
//! at most 10 a round. ConsumeQueue files that only point below the new
//! CommitLog minimum go after them.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::common::time::now_millis;
use crate::store::consume_queue::ConsumeQueue;
use crate::store::message_store::Inner;

/// At most this many CommitLog files go in one round (RocketMQ: DELETE_FILES_BATCH_MAX).
const DELETE_FILES_BATCH_MAX: usize = 10;

impl Inner {
    pub(super) fn clean_files(&self, force: bool) -> io::Result<usize> {
        let c = &self.config;
        let hour_matches = {
            let hour = (now_millis() / 3_600_000 % 24) as u32;
            c.delete_when.split(';').filter_map(|h| h.trim().parse::<u32>().ok()).any(|h| h == hour)
        };
        let percent = self.disk.check(c);
        let space_to_delete = percent.is_some_and(|p| p > c.disk_max_used_space_ratio) || self.disk.is_full();
        let mut deleted = 0;
        if force || hour_matches || space_to_delete {
            let at_once = c.clean_file_forcibly_enable && self.disk.clean_immediately();
            let reserved = c.file_reserved_time.as_millis() as i64;
            let now = now_millis();
            let reput_at = self.reput_from.load(Ordering::Acquire);
            deleted = self.commit_log.queue().delete_leading(
                DELETE_FILES_BATCH_MAX,
                c.delete_commit_log_files_interval,
                |f| {
                    let indexed = f.from_offset() + f.size() as i64 <= reput_at;
                    indexed && (at_once || f.last_modified_millis() + reserved <= now)
                },
            )?;
            if deleted > 0 && at_once {
                log::warn!(
                    "the disk is {}% used: removed {deleted} CommitLog file(s) before they expired \
                     (cleanFileForciblyEnable)",
                    percent.unwrap_or(0)
                );
            }
        }
        let min = self.commit_log.min_offset();
        let queues: Vec<Arc<ConsumeQueue>> = self.queues.read().values().flat_map(|m| m.values().cloned()).collect();
        for q in queues {
            q.delete_expired(min)?;
        }
        if deleted > 0 {
            self.disk.check(c);
        }
        Ok(deleted)
    }
}
