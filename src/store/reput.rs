//! `ReputMessageService`: reads records appended to the CommitLog, writes
//! their ConsumeQueue units and tells the arriving listener at once. A unit
//! that cannot be written because the disk is full stops the service at
//! that record; it tries again on its next round, so no message goes
//! unindexed. Any other failure is the queue's own (a name the filesystem
//! refuses, say): that record is logged and skipped, and indexing goes on.

use std::io;
use std::sync::atomic::Ordering;

use crate::common::message;
use crate::store::commit_log::takes_queue_offset;
use crate::store::consume_queue::CqUnit;
use crate::store::message_store::{Inner, SCHEDULE_TOPIC};

impl Inner {
    /// Indexes every record past `reput_from` into its ConsumeQueue and
    /// tells the listener at once.
    pub(super) fn do_reput(&self) {
        loop {
            let at = self.reput_from.load(Ordering::Acquire);
            if at >= self.commit_log.max_offset() {
                return;
            }
            let Some(f) = self.commit_log.queue().find(at) else {
                let min = self.commit_log.min_offset();
                if at < min {
                    self.reput_from.store(min, Ordering::Release);
                    continue;
                }
                return;
            };
            let pos = (at - f.from_offset()) as usize;
            let Some(head) = f.read(pos, 8) else { return };
            let Some((size, magic)) = message::record_size(head) else { return };
            if magic == message::BLANK_MAGIC_CODE {
                self.reput_from.store(f.from_offset() + f.size() as i64, Ordering::Release);
                continue;
            }
            let record = if size > 8 { f.read(pos, size as usize) } else { None };
            let parsed = record.map(|r| message::parse_record(r, false));
            match parsed {
                Some(Ok(m)) => {
                    match self.dispatch(&m, size) {
                        Err(e) if e.kind() == io::ErrorKind::StorageFull => {
                            let needed = crate::store::consume_queue::CQ_RESERVE_MAX as u64;
                            self.disk.mark_no_space(&self.config, "a ConsumeQueue", needed);
                            if !self.reput_stalled.swap(true, Ordering::AcqRel) {
                                log::error!(
                                    "cannot index {}-{} offset {}: {e}; trying again once the disk has room",
                                    m.topic(),
                                    m.queue_id,
                                    m.queue_offset
                                );
                            }
                            return;
                        }
                        Err(e) => {
                            // Not the disk: this queue cannot take it (a topic
                            // name the filesystem refuses, permissions).
                            // Skipping keeps every other queue indexed.
                            log::error!(
                                "cannot index {}-{} offset {} (CommitLog offset {at}): {e}; skipped",
                                m.topic(),
                                m.queue_id,
                                m.queue_offset
                            );
                        }
                        Ok(()) => {}
                    }
                    if self.reput_stalled.load(Ordering::Relaxed) && self.reput_stalled.swap(false, Ordering::AcqRel) {
                        log::info!("indexing goes on at CommitLog offset {at}");
                    }
                    self.dispatched_store_timestamp.store(m.store_timestamp, Ordering::Release);
                    self.reput_from.store(at + size as i64, Ordering::Release);
                }
                _ => {
                    log::error!("unreadable CommitLog record at {at}; skipping to the next file");
                    self.reput_from.store(self.commit_log.roll_next_file(at), Ordering::Release);
                }
            }
        }
    }

    fn dispatch(&self, m: &message::RecordView<'_>, size: i32) -> io::Result<()> {
        if !takes_queue_offset(m.sys_flag) {
            return Ok(());
        }
        let topic = m.topic();
        let tags_code = self.tags_code(m);
        let cq = self.find_or_create_queue(&topic, m.queue_id);
        let unit = CqUnit { commit_log_offset: m.commit_log_offset, size, tags_code };
        cq.put(m.queue_offset, unit)?;
        let listener = self.listener.read().clone();
        if let Some(l) = listener {
            l.arriving(&topic, m.queue_id, m.queue_offset + 1, tags_code, m.store_timestamp);
        }
        Ok(())
    }

    /// The tags hash, or for a delayed message its delivery time.
    pub(super) fn tags_code(&self, m: &message::RecordView<'_>) -> i64 {
        if m.topic == SCHEDULE_TOPIC.as_bytes()
            && let Some(level) = m.property(message::property::DELAY).and_then(|l| l.trim().parse::<usize>().ok())
            && level > 0
            && !self.delay_levels.is_empty()
        {
            let d = self.delay_levels[level.min(self.delay_levels.len()) - 1];
            return m.store_timestamp + d.as_millis() as i64;
        }
        m.property(message::property::TAGS).map_or(0, |t| message::tags_hash(&t))
    }
}
