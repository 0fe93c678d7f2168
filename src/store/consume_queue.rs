//! `ConsumeQueue`: the index of one topic's queue, under
//! `consumequeue/<topic>/<queueId>/`: 20-byte units (CommitLog offset i64,
//! size i32, tags code i64), unit N at byte N * 20 of the queue's log.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::store::mapped_file::{MappedFile, Reserve};
use crate::store::mapped_file_queue::MappedFileQueue;

/// Bytes per unit (RocketMQ: CQ_STORE_UNIT_SIZE).
pub const CQ_STORE_UNIT_SIZE: usize = 20;

/// Disk blocks a ConsumeQueue file gets ahead of its writes: files are 5.7
/// MiB by default and a broker may have thousands, so they are not
/// reserved whole; 16 KiB (819 units) at first, up to 1 MiB for a busy queue.
pub const CQ_RESERVE: Reserve = Reserve::Ahead { min: 16 * 1024, max: CQ_RESERVE_MAX };
/// The largest step of [`CQ_RESERVE`].
pub const CQ_RESERVE_MAX: usize = 1024 * 1024;

/// One unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CqUnit {
    pub commit_log_offset: i64,
    pub size: i32,
    pub tags_code: i64,
}

impl CqUnit {
    fn encode(&self) -> [u8; CQ_STORE_UNIT_SIZE] {
        let mut b = [0u8; CQ_STORE_UNIT_SIZE];
        b[0..8].copy_from_slice(&self.commit_log_offset.to_be_bytes());
        b[8..12].copy_from_slice(&self.size.to_be_bytes());
        b[12..20].copy_from_slice(&self.tags_code.to_be_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Option<CqUnit> {
        let b: &[u8; CQ_STORE_UNIT_SIZE] = b.get(..CQ_STORE_UNIT_SIZE)?.try_into().ok()?;
        let mut o = [0u8; 8];
        o.copy_from_slice(&b[0..8]);
        let mut t = [0u8; 8];
        t.copy_from_slice(&b[12..20]);
        Some(CqUnit {
            commit_log_offset: i64::from_be_bytes(o),
            size: i32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            tags_code: i64::from_be_bytes(t),
        })
    }

    /// What a real unit looks like (zeros and blanks are not).
    fn is_valid(&self) -> bool {
        self.commit_log_offset >= 0 && self.size > 0 && self.size != i32::MAX
    }

    /// The CommitLog offset just past the unit's message (saturating: a
    /// damaged unit must not overflow).
    pub fn end(&self) -> i64 {
        self.commit_log_offset.saturating_add(self.size as i64)
    }

    /// The filler Apache writes where units are missing.
    const BLANK: CqUnit = CqUnit { commit_log_offset: 0, size: i32::MAX, tags_code: 0 };
}

pub struct ConsumeQueue {
    topic: String,
    queue_id: i32,
    queue: MappedFileQueue,
    /// The CommitLog offset just past the last message indexed.
    max_physic_offset: AtomicI64,
    /// The byte offset (in this queue's log) of the first unit still pointing
    /// at a stored message.
    min_logic_offset: AtomicI64,
}

impl ConsumeQueue {
    pub fn new(root: &std::path::Path, topic: &str, queue_id: i32, file_size: usize) -> Self {
        let file_size = file_size / CQ_STORE_UNIT_SIZE * CQ_STORE_UNIT_SIZE;
        let dir: PathBuf = root.join(topic).join(queue_id.to_string());
        ConsumeQueue {
            topic: topic.to_string(),
            queue_id,
            queue: MappedFileQueue::new(dir, file_size, CQ_RESERVE, None),
            max_physic_offset: AtomicI64::new(-1),
            min_logic_offset: AtomicI64::new(0),
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }
    pub fn queue_id(&self) -> i32 {
        self.queue_id
    }
    pub fn files(&self) -> &MappedFileQueue {
        &self.queue
    }

    /// Loads the queue's files (see [`MappedFileQueue::load`]).
    pub fn load(&self) -> io::Result<bool> {
        self.queue.load()
    }

    /// Finds where the valid units end, walking the last three files as
    /// Apache does, and cuts the queue there (later files are deleted). `Err`
    /// when what lies past that end shows the queue damaged rather than cut
    /// short by a crash: anything after a clean stop, or a unit of garbage
    /// followed by more data after a crash (a torn write leaves nothing
    /// after it). The caller rebuilds the queue from the CommitLog then.
    pub(crate) fn recover(&self, crashed: bool) -> io::Result<()> {
        let files = self.queue.files();
        let Some(last) = files.last() else { return Ok(()) };
        let mut end = last.from_offset() + last.size() as i64;
        for (i, f) in files.iter().enumerate().skip(files.len().saturating_sub(3)) {
            // SAFETY: recovery runs before the queue is shared: nothing appends.
            let whole = unsafe { f.read_whole() };
            let mut pos = 0;
            while pos + CQ_STORE_UNIT_SIZE <= whole.len() {
                match CqUnit::decode(&whole[pos..]) {
                    Some(u) if u.is_valid() || u == CqUnit::BLANK => pos += CQ_STORE_UNIT_SIZE,
                    _ => break,
                }
            }
            if pos + CQ_STORE_UNIT_SIZE > whole.len() {
                continue;
            }
            let unit_end = pos + CQ_STORE_UNIT_SIZE;
            let garbage = whole[pos..unit_end].iter().any(|&b| b != 0);
            // SAFETY: as above.
            let more = unsafe { f.has_data_after(unit_end) || files[i + 1..].iter().any(|g| g.has_data_after(0)) };
            if more && (garbage || !crashed) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: no valid unit at byte {pos}, and data after it", f.path().display()),
                ));
            }
            end = f.from_offset() + pos as i64;
            break;
        }
        self.queue.truncate_from(end)?;
        self.queue.set_flushed_where(end);
        let max_phys = self.last_valid_unit().map_or(-1, |u| u.end());
        self.max_physic_offset.store(max_phys, Ordering::Release);
        Ok(())
    }

    fn last_valid_unit(&self) -> Option<CqUnit> {
        for f in self.queue.files().iter().rev() {
            let data = f.read(0, f.wrote_position())?;
            if let Some(u) =
                data.chunks_exact(CQ_STORE_UNIT_SIZE).rev().filter_map(CqUnit::decode).find(CqUnit::is_valid)
            {
                return Some(u);
            }
        }
        None
    }

    /// Indexes the message at logic offset `logic_offset`. Units already
    /// present are skipped (re-dispatch after recovery); a gap is filled with
    /// blank units so every unit stays at its own position.
    pub fn put(&self, logic_offset: i64, unit: CqUnit) -> io::Result<()> {
        let expected = logic_offset * CQ_STORE_UNIT_SIZE as i64;
        if unit.end() <= self.max_physic_offset() {
            return Ok(());
        }
        loop {
            let f = self.queue.last_for_append(expected)?;
            let current = f.from_offset() + f.wrote_position() as i64;
            if expected < current {
                return Ok(());
            }
            if expected > current {
                log::debug!("{}-{}: padding before unit {logic_offset}", self.topic, self.queue_id);
                let blank = CqUnit::BLANK.encode();
                if !f.append(&blank)? {
                    f.append_and_fill(&[])?;
                }
                continue;
            }
            fail::fail_point!("consume_queue::put");
            if f.append(&unit.encode())? {
                self.max_physic_offset.store(unit.end(), Ordering::Release);
                return Ok(());
            }
            f.append_and_fill(&[])?;
        }
    }

    /// The unit at `logic_offset`.
    pub fn unit(&self, logic_offset: i64) -> Option<CqUnit> {
        let pos = logic_offset.checked_mul(CQ_STORE_UNIT_SIZE as i64)?;
        let f = self.queue.find(pos)?;
        CqUnit::decode(f.read((pos - f.from_offset()) as usize, CQ_STORE_UNIT_SIZE)?)
    }

    /// The units from `logic_offset` to the end of its file's written part
    /// (RocketMQ: getIndexBuffer).
    pub fn units_from(&self, logic_offset: i64) -> Option<(Arc<MappedFile>, usize, usize)> {
        let pos = logic_offset.checked_mul(CQ_STORE_UNIT_SIZE as i64)?;
        if pos < self.min_logic_offset.load(Ordering::Acquire) {
            return None;
        }
        let f = self.queue.find(pos)?;
        let start = (pos - f.from_offset()) as usize;
        let len = f.wrote_position().checked_sub(start)?;
        (len > 0).then_some((f, start, len))
    }

    /// The first logic offset that still points at a stored message.
    pub fn min_offset_in_queue(&self) -> i64 {
        self.min_logic_offset.load(Ordering::Acquire) / CQ_STORE_UNIT_SIZE as i64
    }

    /// The logic offset the next message will get.
    pub fn max_offset_in_queue(&self) -> i64 {
        self.queue.max_offset() / CQ_STORE_UNIT_SIZE as i64
    }

    pub fn max_physic_offset(&self) -> i64 {
        self.max_physic_offset.load(Ordering::Acquire)
    }

    /// The first logic offset of the file after the one holding `logic_offset`.
    pub fn roll_next_file(&self, logic_offset: i64) -> i64 {
        let per_file = (self.queue.file_size() / CQ_STORE_UNIT_SIZE) as i64;
        logic_offset + per_file - logic_offset % per_file
    }

    /// Moves the minimum past units whose messages the CommitLog no longer
    /// holds (RocketMQ: correctMinOffset).
    pub fn correct_min_offset(&self, commit_log_min: i64) {
        let Some(first) = self.queue.first() else { return };
        let Some(data) = first.read(0, first.wrote_position()) else { return };
        for (i, b) in data.chunks_exact(CQ_STORE_UNIT_SIZE).enumerate() {
            if let Some(u) = CqUnit::decode(b)
                && u.is_valid()
                && u.commit_log_offset >= commit_log_min
            {
                let v = first.from_offset() + (i * CQ_STORE_UNIT_SIZE) as i64;
                self.min_logic_offset.store(v, Ordering::Release);
                return;
            }
        }
        let end = first.from_offset() + data.len() as i64;
        self.min_logic_offset.store(end, Ordering::Release);
    }

    /// Drops the units past the last one whose message ends within the
    /// CommitLog (cut at `phy_offset`), searching from the end so that a
    /// damaged unit further back does not take the good ones after it.
    pub(crate) fn truncate_dirty(&self, phy_offset: i64) -> io::Result<()> {
        let mut cut = None;
        'files: for f in self.queue.files().iter().rev() {
            let data = f.read(0, f.wrote_position()).unwrap_or(&[]);
            for (k, chunk) in data.chunks_exact(CQ_STORE_UNIT_SIZE).enumerate().rev() {
                if CqUnit::decode(chunk).is_some_and(|u| u.is_valid() && u.end() <= phy_offset) {
                    cut = Some(f.from_offset() + ((k + 1) * CQ_STORE_UNIT_SIZE) as i64);
                    break 'files;
                }
            }
            cut = Some(f.from_offset());
        }
        if let Some(cut) = cut.filter(|&c| c < self.queue.max_offset()) {
            self.queue.truncate_from(cut)?;
        }
        let max = self.last_valid_unit().map_or(-1, |u| u.end());
        self.max_physic_offset.store(max, Ordering::Release);
        Ok(())
    }

    /// Deletes leading files whose every unit points below `commit_log_min`.
    pub fn delete_expired(&self, commit_log_min: i64) -> io::Result<usize> {
        let n = self.queue.delete_leading(usize::MAX, Duration::ZERO, |f| {
            let w = f.wrote_position();
            if w < CQ_STORE_UNIT_SIZE {
                return false;
            }
            f.read(w - CQ_STORE_UNIT_SIZE, CQ_STORE_UNIT_SIZE)
                .and_then(CqUnit::decode)
                .is_some_and(|u| u.end() <= commit_log_min)
        })?;
        self.correct_min_offset(commit_log_min);
        Ok(n)
    }

    /// The logic offset of the first message stored at or after `timestamp`
    /// (RocketMQ: getOffsetInQueueByTime), by binary search over the units;
    /// `store_time` reads a message's store time from the CommitLog.
    pub fn offset_by_time(&self, timestamp: i64, store_time: impl Fn(i64, i32) -> Option<i64>) -> i64 {
        let (mut lo, mut hi) = (self.min_offset_in_queue(), self.max_offset_in_queue());
        if lo >= hi {
            return lo;
        }
        let time_at =
            |i: i64| self.unit(i).filter(CqUnit::is_valid).and_then(|u| store_time(u.commit_log_offset, u.size));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match time_at(mid) {
                Some(t) if t < timestamp => lo = mid + 1,
                Some(_) => hi = mid,
                None => lo = mid + 1,
            }
        }
        lo
    }

    pub fn flush(&self, least_pages: usize) -> io::Result<bool> {
        self.queue.flush(least_pages)
    }

    pub fn flush_all(&self) -> io::Result<()> {
        self.queue.flush_all()
    }

    /// Deletes the queue's files and directory (topic deleted).
    pub(crate) fn destroy(&self) -> io::Result<()> {
        self.max_physic_offset.store(-1, Ordering::Release);
        self.min_logic_offset.store(0, Ordering::Release);
        self.queue.destroy()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(off: i64) -> CqUnit {
        CqUnit { commit_log_offset: off, size: 100, tags_code: off * 7 }
    }

    #[test]
    fn units_roll_over_files_and_are_found_by_logic_offset() {
        let dir = tempfile::tempdir().unwrap();
        let cq = ConsumeQueue::new(dir.path(), "T", 3, 5 * CQ_STORE_UNIT_SIZE);
        for i in 0..12 {
            cq.put(i, unit(i * 100)).unwrap();
        }
        cq.put(5, unit(500)).unwrap();
        assert_eq!(cq.max_offset_in_queue(), 12, "a repeated unit is skipped");
        assert_eq!(cq.files().files().len(), 3);
        assert_eq!(cq.unit(7), Some(unit(700)));
        assert_eq!(cq.unit(12), None);
        let (_, start, len) = cq.units_from(6).unwrap();
        assert_eq!((start, len), (CQ_STORE_UNIT_SIZE, 4 * CQ_STORE_UNIT_SIZE));
        assert_eq!(cq.roll_next_file(6), 10);
        assert_eq!(cq.offset_by_time(450, |off, _| Some(off)), 5);
        assert!(dir.path().join("T/3/00000000000000000000").exists());

        cq.truncate_dirty(750).unwrap();
        assert_eq!(cq.max_offset_in_queue(), 7, "units past the CommitLog end go");
        assert_eq!(cq.max_physic_offset(), 700);

        assert_eq!(cq.delete_expired(550).unwrap(), 1);
        assert_eq!(cq.min_offset_in_queue(), 6, "units pointing below the CommitLog minimum are skipped");

        let again = ConsumeQueue::new(dir.path(), "T", 3, 5 * CQ_STORE_UNIT_SIZE);
        again.load().unwrap();
        again.recover(false).unwrap();
        again.correct_min_offset(550);
        assert_eq!(again.max_offset_in_queue(), 7);
        assert_eq!(again.min_offset_in_queue(), 6);
        assert_eq!(again.max_physic_offset(), 700);
    }

    #[test]
    fn a_queue_starting_late_is_padded_with_blanks() {
        let dir = tempfile::tempdir().unwrap();
        let cq = ConsumeQueue::new(dir.path(), "T", 0, 5 * CQ_STORE_UNIT_SIZE);
        cq.put(7, unit(0)).unwrap();
        assert_eq!(cq.max_offset_in_queue(), 8);
        assert_eq!(cq.unit(7), Some(unit(0)));
        assert_eq!(cq.files().min_offset(), 5 * CQ_STORE_UNIT_SIZE as i64);
    }
}
