//! The `checkpoint` file (RocketMQ: StoreCheckpoint): store times up to
//! which the CommitLog and the ConsumeQueues are known flushed, as Apache
//! lays it out: a 4 KiB file holding physicMsgTimestamp, logicsMsgTimestamp
//! and indexMsgTimestamp as big-endian i64 at bytes 0, 8 and 16.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};

const FILE_SIZE: u64 = 4096;

pub struct Checkpoint {
    file: File,
    physic: AtomicI64,
    logics: AtomicI64,
    index: AtomicI64,
}

impl Checkpoint {
    pub fn open(path: &Path) -> io::Result<Self> {
        let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(named)?;
        if file.metadata().map_err(named)?.len() < FILE_SIZE {
            // Blocks now, so a later write cannot fail for want of space.
            nix::fcntl::posix_fallocate(&file, 0, FILE_SIZE as i64).map_err(|e| named(e.into()))?;
            crate::common::file::sync_parent(path).map_err(named)?;
        }
        let mut b = [0u8; 24];
        file.read_exact_at(&mut b, 0).map_err(named)?;
        let at = |i: usize| {
            let mut v = [0u8; 8];
            v.copy_from_slice(&b[i..i + 8]);
            i64::from_be_bytes(v)
        };
        Ok(Checkpoint {
            file,
            physic: AtomicI64::new(at(0)),
            logics: AtomicI64::new(at(8)),
            index: AtomicI64::new(at(16)),
        })
    }

    pub fn physic_msg_timestamp(&self) -> i64 {
        self.physic.load(Ordering::Acquire)
    }
    pub fn logics_msg_timestamp(&self) -> i64 {
        self.logics.load(Ordering::Acquire)
    }
    pub fn set_physic_msg_timestamp(&self, t: i64) {
        self.physic.fetch_max(t, Ordering::AcqRel);
    }
    pub fn set_logics_msg_timestamp(&self, t: i64) {
        self.logics.fetch_max(t, Ordering::AcqRel);
    }

    /// Forgets the times (a checkpoint found in the future): recovery after
    /// the next crash starts at the first file until the flushes set them.
    pub fn reset(&self) {
        self.physic.store(0, Ordering::Release);
        self.logics.store(0, Ordering::Release);
        self.index.store(0, Ordering::Release);
    }

    /// The store time before which everything is certainly flushed: the
    /// smaller of the two, less 3 s of margin, as Apache computes it.
    pub fn min_timestamp(&self) -> i64 {
        (self.physic_msg_timestamp().min(self.logics_msg_timestamp()) - 3000).max(0)
    }

    /// Writes the three times and syncs the file.
    pub fn flush(&self) -> io::Result<()> {
        let mut b = [0u8; 24];
        b[0..8].copy_from_slice(&self.physic_msg_timestamp().to_be_bytes());
        b[8..16].copy_from_slice(&self.logics_msg_timestamp().to_be_bytes());
        b[16..24].copy_from_slice(&self.index.load(Ordering::Acquire).to_be_bytes());
        self.file.write_all_at(&b, 0)?;
        fail::fail_point!("checkpoint::flush");
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_persist_in_apaches_layout() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("checkpoint");
        let c = Checkpoint::open(&p).unwrap();
        c.set_physic_msg_timestamp(10_000);
        c.set_logics_msg_timestamp(9_000);
        c.set_logics_msg_timestamp(8_000);
        c.flush().unwrap();
        let raw = std::fs::read(&p).unwrap();
        assert_eq!(raw.len(), 4096);
        assert_eq!(&raw[0..8], &10_000i64.to_be_bytes());
        assert_eq!(&raw[8..16], &9_000i64.to_be_bytes(), "times never go back");
        let again = Checkpoint::open(&p).unwrap();
        assert_eq!(again.min_timestamp(), 6_000);
    }
}
