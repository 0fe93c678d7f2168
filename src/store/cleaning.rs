//! File cleaning on `StoreScheduledThread` (RocketMQ: CleanCommitLogService,
//! CleanConsumeQueueService).

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::common::time::now_millis;
use crate::store::consume_queue::ConsumeQueue;
use crate::store::message_store::Inner;

impl Inner {
    pub(super) fn clean_files(&self, force: bool) -> io::Result<usize> {
        let c = &self.config;
        let hour_matches = {
            let hour = (now_millis() / 3_600_000 % 24) as u32;
            c.delete_when.split(';').filter_map(|h| h.trim().parse::<u32>().ok()).any(|h| h == hour)
        };
        let disk_full = disk_used_ratio(&c.store_path_root_dir).is_some_and(|r| r > c.disk_max_used_space_ratio);
        let mut deleted = 0;
        if force || hour_matches || disk_full {
            let reserved = c.file_reserved_time.as_millis() as i64;
            let now = now_millis();
            let reput_at = self.reput_from.load(Ordering::Acquire);
            deleted = self.commit_log.queue().delete_leading(10, c.delete_commit_log_files_interval, |f| {
                // Never a file whose messages are not indexed yet.
                let indexed = f.from_offset() + f.size() as i64 <= reput_at;
                indexed && f.last_modified_millis() + reserved <= now
            })?;
        }
        let min = self.commit_log.min_offset();
        let queues: Vec<Arc<ConsumeQueue>> = self.queues.read().values().flat_map(|m| m.values().cloned()).collect();
        for q in queues {
            q.delete_expired(min)?;
        }
        Ok(deleted)
    }
}

/// Percentage of the disk holding `path` in use.
fn disk_used_ratio(path: &std::path::Path) -> Option<u64> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    let total = s.blocks() as u64 * s.fragment_size() as u64;
    let free = s.blocks_available() as u64 * s.fragment_size() as u64;
    (total > 0).then(|| (total - free) * 100 / total)
}
