//! Start-up recovery (RocketMQ: CommitLog.recoverNormally / recoverAbnormally,
//! DefaultMessageStore.recover): load the files, find where the valid
//! CommitLog ends, cut what lies past it, and make the ConsumeQueues agree.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::common::message;
use crate::store::commit_log::CommitLog;
use crate::store::consume_queue::ConsumeQueue;
use crate::store::message_store::Inner;

impl Inner {
    pub(super) fn recover(&self) -> io::Result<()> {
        let abnormal = self.config.abort_path().exists();
        self.commit_log.queue().load()?;
        self.load_consume_queues()?;
        let scan_from = if abnormal {
            log::warn!("the last run did not stop cleanly: recovering from the checkpoint");
            self.abnormal_recovery_start()
        } else {
            self.commit_log.queue().last().map_or(0, |f| f.from_offset())
        };
        let end = self.scan_valid_end(scan_from);
        self.commit_log.queue().truncate_from(end)?;
        self.commit_log.queue().set_flushed_where(end);
        let min = self.commit_log.min_offset();
        let queues: Vec<Arc<ConsumeQueue>> = self.queues.read().values().flat_map(|m| m.values().cloned()).collect();
        let mut reput_from = if queues.is_empty() { min } else { 0 };
        for q in &queues {
            q.truncate_dirty(end)?;
            q.correct_min_offset(min);
            reput_from = reput_from.max(q.max_physic_offset());
        }
        if abnormal {
            reput_from = reput_from.min(scan_from);
        }
        self.reput_from.store(reput_from.clamp(min, end), Ordering::Release);
        self.do_reput();
        let mut table = HashMap::new();
        for (topic, m) in self.queues.read().iter() {
            for (qid, q) in m {
                table.insert(CommitLog::queue_key(topic, *qid), q.max_offset_in_queue());
            }
        }
        self.commit_log.set_queue_offsets(table);
        Ok(())
    }

    pub(super) fn load_consume_queues(&self) -> io::Result<()> {
        let root = self.config.consume_queue_dir();
        let Ok(topics) = std::fs::read_dir(&root) else { return Ok(()) };
        for t in topics.flatten() {
            let topic = t.file_name().to_string_lossy().to_string();
            let Ok(qids) = std::fs::read_dir(t.path()) else { continue };
            for q in qids.flatten() {
                let Ok(qid) = q.file_name().to_string_lossy().parse::<i32>() else { continue };
                let cq = self.find_or_create_queue(&topic, qid);
                cq.load()?;
                cq.recover();
            }
        }
        Ok(())
    }

    /// The start of the newest file whose first message is older than the
    /// checkpoint's flushed time (RocketMQ: isMappedFileMatchedRecover).
    pub(super) fn abnormal_recovery_start(&self) -> i64 {
        let min_ts = self.checkpoint.min_timestamp();
        let files = self.commit_log.queue().files();
        for f in files.iter().rev() {
            let first = message::decode(f.read_whole(), false, false);
            if let Ok(m) = first
                && m.store_timestamp > 0
                && m.store_timestamp <= min_ts
            {
                return f.from_offset();
            }
        }
        files.first().map_or(0, |f| f.from_offset())
    }

    /// Walks records from `from` across files while they are whole and
    /// valid (size, magic, CRC, their own offset); returns where they end.
    pub(super) fn scan_valid_end(&self, from: i64) -> i64 {
        let q = self.commit_log.queue();
        let mut at = from;
        let check_crc = self.config.check_crc_on_recover;
        while let Some(f) = q.find(at) {
            let whole = f.read_whole();
            let pos = (at - f.from_offset()) as usize;
            let rest = &whole[pos..];
            let Some((size, magic)) = message::record_size(rest) else { break };
            if magic == message::BLANK_MAGIC_CODE && size as usize == rest.len() {
                at = f.from_offset() + f.size() as i64;
                continue;
            }
            if size <= 0 || size as usize > rest.len() {
                break;
            }
            match message::decode(&rest[..size as usize], false, check_crc) {
                Ok(m) if m.commit_log_offset == at => {
                    f.set_last_store_timestamp(m.store_timestamp);
                    at += size as i64;
                }
                Ok(m) => {
                    log::warn!("record at {at} says it is at {}: the log ends here", m.commit_log_offset);
                    break;
                }
                Err(e) => {
                    if size != 0 {
                        log::warn!("invalid record at CommitLog offset {at} ({e}): the log ends here");
                    }
                    break;
                }
            }
        }
        at
    }
}
