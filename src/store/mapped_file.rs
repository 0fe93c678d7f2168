//! `MappedFile`: one fixed-size file, named by the 20-digit offset its first
//! byte has in the whole log, mapped into memory and appended to in place.
//!
//! The store's `unsafe` is here, and in the recovery code that calls the
//! `unsafe fn`s below (which say what their callers must ensure). The rule
//! that makes it sound: bytes
//! below `wrote_position` are never written again while the file is shared
//! (appends go above it and publish with a release store; readers see only
//! what an acquire load of it covers). The two places that lower the
//! position, recovery and truncation, run before the store serves readers.
//!
//! No page is written without a disk block behind it: a store to a mapped
//! page of a sparse file allocates the block in the page fault, and on a
//! full disk that fault is a SIGBUS that kills the process. So blocks are
//! reserved (`posix_fallocate`) before the pages they back are written,
//! and a full disk is an `io::ErrorKind::StorageFull` error from
//! [`MappedFile::open`] or [`MappedFile::append`] instead.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};

use bytes::Bytes;
use memmap2::{Advice, MmapRaw};
use parking_lot::Mutex;

use crate::common::file::{create_dir_durably, sync_parent};

/// The page size used for flush accounting (RocketMQ: OS_PAGE_SIZE).
pub const OS_PAGE_SIZE: usize = 4096;

/// How a file gets the disk blocks behind its pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserve {
    /// All of them when the file is created (CommitLog files).
    Whole,
    /// In steps ahead of the write position (ConsumeQueues, whose files
    /// are many and mostly sparse): each step an eighth of what is written,
    /// at least `min` and at most `max` bytes.
    Ahead { min: usize, max: usize },
}

/// The file name for a file starting at `offset`.
pub fn file_name(offset: i64) -> String {
    format!("{offset:020}")
}

pub struct MappedFile {
    path: PathBuf,
    from_offset: i64,
    size: usize,
    file: File,
    map: MmapRaw,
    reserve: Reserve,
    /// Bytes from the start known to have disk blocks.
    reserved: AtomicUsize,
    /// Appended bytes; readable below it.
    wrote: AtomicUsize,
    /// Bytes known to be on disk.
    flushed: AtomicUsize,
    /// Store time of the last message appended (for recovery and cleaning).
    last_store_timestamp: AtomicI64,
    /// One appender at a time.
    append_lock: Mutex<()>,
    /// Set once the file is deleted; readers stop taking new slices.
    deleted: AtomicBool,
}

impl std::fmt::Debug for MappedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MappedFile({}, wrote {})", self.path.display(), self.wrote_position())
    }
}

impl MappedFile {
    /// Creates (or reopens) the file `dir/<20-digit from_offset>` of `size`
    /// bytes and maps it. A new file reads as zeros, gets its first blocks
    /// as `reserve` says (all of them for [`Reserve::Whole`]), and its
    /// directory entry is synced. An error names the file; a full disk is
    /// `StorageFull`, and the half-made file is removed.
    pub fn open(dir: &Path, from_offset: i64, size: usize, reserve: Reserve) -> io::Result<Self> {
        create_dir_durably(dir)?;
        let path = dir.join(file_name(from_offset));
        let shown = path.display().to_string();
        let named = |e: io::Error| io::Error::new(e.kind(), format!("{shown}: {e}"));
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(named)?;
        let len = file.metadata().map_err(named)?.len();
        if len > size as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is {len} bytes, larger than the configured {size}", path.display()),
            ));
        }
        let fresh = len == 0;
        if len != size as u64 {
            file.set_len(size as u64).map_err(named)?;
        }
        let map = MmapRaw::map_raw(&file).map_err(named)?;
        let f = MappedFile {
            path,
            from_offset,
            size,
            file,
            map,
            reserve,
            reserved: AtomicUsize::new(0),
            wrote: AtomicUsize::new(0),
            flushed: AtomicUsize::new(0),
            last_store_timestamp: AtomicI64::new(0),
            append_lock: Mutex::new(()),
            deleted: AtomicBool::new(false),
        };
        if fresh {
            let first = match reserve {
                Reserve::Whole => size,
                Reserve::Ahead { min, .. } => min,
            };
            let made = f.reserve_to(first).and_then(|_| sync_parent(&f.path));
            if let Err(e) = made {
                let _ = std::fs::remove_file(&f.path);
                return Err(named(e));
            }
        }
        Ok(f)
    }

    /// Makes sure `[0, end)` has disk blocks, reserving the next step when
    /// it does not. Callers hold the append lock (or own the file).
    fn reserve_to(&self, end: usize) -> io::Result<()> {
        let end = end.min(self.size);
        let have = self.reserved.load(Ordering::Acquire);
        if end <= have {
            return Ok(());
        }
        let want = match self.reserve {
            Reserve::Whole => self.size,
            Reserve::Ahead { min, max } => end + (end / 8).clamp(min, max),
        };
        let want = want.div_ceil(OS_PAGE_SIZE).saturating_mul(OS_PAGE_SIZE).min(self.size).max(end);
        let from = have / OS_PAGE_SIZE * OS_PAGE_SIZE;
        allocate(&self.file, from, want - from)?;
        self.reserved.store(want, Ordering::Release);
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The log offset of this file's first byte.
    pub fn from_offset(&self) -> i64 {
        self.from_offset
    }
    pub fn size(&self) -> usize {
        self.size
    }
    pub fn wrote_position(&self) -> usize {
        self.wrote.load(Ordering::Acquire)
    }
    pub fn flushed_position(&self) -> usize {
        self.flushed.load(Ordering::Acquire)
    }
    pub fn is_full(&self) -> bool {
        self.wrote_position() >= self.size
    }
    pub fn remaining(&self) -> usize {
        self.size - self.wrote_position()
    }
    /// Store time of the last message appended. Set after its append, so a
    /// flush that reads it first and the write position after covers that
    /// message.
    pub fn last_store_timestamp(&self) -> i64 {
        self.last_store_timestamp.load(Ordering::Acquire)
    }
    pub fn set_last_store_timestamp(&self, t: i64) {
        self.last_store_timestamp.store(t, Ordering::Release);
    }
    pub fn last_modified_millis(&self) -> i64 {
        std::fs::metadata(&self.path).and_then(|m| m.modified()).map(crate::common::time::millis_of).unwrap_or(0)
    }

    /// Appends `data` whole: `Ok(false)` (nothing written) when it does not
    /// fit, `Err` when the disk has no room for its blocks. Readers see it
    /// once this returns.
    pub fn append(&self, data: &[u8]) -> io::Result<bool> {
        self.write_at_end(data, false)
    }

    /// Fills the file up: writes `data` (the blank end-of-file record) at the
    /// current position and marks the whole file as written.
    pub fn append_and_fill(&self, data: &[u8]) -> io::Result<bool> {
        self.write_at_end(data, true)
    }

    fn write_at_end(&self, data: &[u8], fill: bool) -> io::Result<bool> {
        let _one_writer = self.append_lock.lock();
        let pos = self.wrote.load(Ordering::Acquire);
        if pos + data.len() > self.size || self.deleted.load(Ordering::Acquire) {
            return Ok(false);
        }
        self.reserve_to(pos + data.len())?;
        // SAFETY: [pos, pos + len) lies inside the mapping (checked above)
        // and has disk blocks (reserved above), nobody reads it (readers
        // stop at `wrote`, still `pos`), and the append lock keeps other
        // appenders out; `data` is a separate buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.map.as_mut_ptr().add(pos), data.len());
        }
        self.wrote.store(if fill { self.size } else { pos + data.len() }, Ordering::Release);
        Ok(true)
    }

    /// Bytes `[pos, pos + len)` if already written.
    pub fn read(&self, pos: usize, len: usize) -> Option<&[u8]> {
        let end = pos.checked_add(len)?;
        if end > self.wrote_position() {
            return None;
        }
        // SAFETY: the range is inside the mapping and below `wrote`, so it is
        // fully written and never written again while `self` is shared; the
        // mapping lives as long as `self`, which the returned borrow keeps.
        Some(unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(pos), len) })
    }

    /// Every byte of the file, written or not, for recovery's scans.
    ///
    /// # Safety
    /// Nothing may write to the file while the slice lives: no append, no
    /// [`reset_to`](Self::reset_to), no other process. The store calls it
    /// only while it recovers, before its threads start and before anyone
    /// can reach the file to append to it.
    pub(crate) unsafe fn read_whole(&self) -> &[u8] {
        // SAFETY: the whole mapping is valid for `size` bytes and lives as
        // long as `self`; the caller promises no writer while it is borrowed.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr(), self.size) }
    }

    /// A ref-counted slice that keeps the file mapped while it lives, for
    /// writing stored bytes to a socket without copying them.
    pub fn slice(self: &Arc<Self>, pos: usize, len: usize) -> Option<Bytes> {
        if self.deleted.load(Ordering::Acquire) {
            return None;
        }
        self.read(pos, len)?;
        Some(Bytes::from_owner(MappedSlice { file: self.clone(), pos, len }))
    }

    /// Sets the write position (recovery: the end of the valid data), zeroes
    /// whatever non-zero bytes lie beyond it (so stale records can never be
    /// read as valid later), syncs them, and treats everything below as
    /// flushed. Runs during recovery or truncation, before readers see the
    /// bytes past `pos`.
    pub(crate) fn reset_to(&self, pos: usize) -> io::Result<()> {
        let pos = pos.min(self.size);
        let _one_writer = self.append_lock.lock();
        let end = self.last_nonzero_end(pos);
        if end > pos {
            fail::fail_point!("recovery::zero_tail");
            // Pages between may be holes; give them blocks before writing.
            allocate(&self.file, pos, end - pos)?;
            // SAFETY: [pos, end) is inside the mapping and has blocks; no
            // reader holds these bytes (they are past what any reader was
            // given since recovery), and the append lock is held.
            unsafe { std::ptr::write_bytes(self.map.as_mut_ptr().add(pos), 0, end - pos) };
            self.map.flush_range(pos, end - pos)?;
        }
        self.wrote.store(pos, Ordering::Release);
        self.flushed.store(pos, Ordering::Release);
        Ok(())
    }

    /// The parts of `[from, size)` that may hold data: holes (never written,
    /// or reserved and never written, on most filesystems) are skipped with
    /// `SEEK_DATA`/`SEEK_HOLE`, so a mostly empty file is not read page by
    /// page. Where those are not supported the whole range is returned.
    fn data_ranges(&self, from: usize) -> Vec<std::ops::Range<usize>> {
        use nix::unistd::{Whence, lseek};
        let mut out = Vec::new();
        let mut pos = from;
        while pos < self.size {
            let start = match lseek(&self.file, pos as i64, Whence::SeekData) {
                Ok(s) => s as usize,
                Err(nix::errno::Errno::ENXIO) => break,
                Err(_) => {
                    out.push(pos..self.size);
                    break;
                }
            };
            if start >= self.size {
                break;
            }
            let end =
                lseek(&self.file, start as i64, Whence::SeekHole).map_or(self.size, |e| (e as usize).min(self.size));
            out.push(start..end.max(start + 1));
            pos = end.max(start + 1);
        }
        out
    }

    /// The end of the last non-zero byte at or after `from` (`from` if none).
    fn last_nonzero_end(&self, from: usize) -> usize {
        for r in self.data_ranges(from).into_iter().rev() {
            // SAFETY: `r` is inside the mapping; past `from` nobody writes
            // but the caller, which holds the append lock.
            let chunk = unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(r.start), r.len()) };
            if let Some(i) = chunk.iter().rposition(|&b| b != 0) {
                return r.start + i + 1;
            }
        }
        from
    }

    /// Whether any byte at or after `from` is non-zero.
    ///
    /// # Safety
    /// As [`read_whole`](Self::read_whole): nothing may write to the file
    /// while this runs.
    pub(crate) unsafe fn has_data_after(&self, from: usize) -> bool {
        // SAFETY: the caller promises no writer; the ranges are inside the mapping.
        let whole = unsafe { self.read_whole() };
        self.data_ranges(from).into_iter().any(|r| whole[r].iter().any(|&b| b != 0))
    }

    /// Marks the file as fully written and flushed (a full, older file found
    /// at start-up).
    pub(crate) fn mark_full(&self) {
        self.wrote.store(self.size, Ordering::Release);
        self.flushed.store(self.size, Ordering::Release);
    }

    /// Flushes written bytes when at least `least_pages` pages are dirty (0:
    /// any dirty byte). Returns the flushed position.
    pub fn flush(&self, least_pages: usize) -> io::Result<usize> {
        let wrote = self.wrote_position();
        let flushed = self.flushed_position();
        if wrote <= flushed {
            return Ok(flushed);
        }
        let full = wrote >= self.size;
        if !full && least_pages > 0 && (wrote / OS_PAGE_SIZE).saturating_sub(flushed / OS_PAGE_SIZE) < least_pages {
            return Ok(flushed);
        }
        let start = flushed / OS_PAGE_SIZE * OS_PAGE_SIZE;
        fail::fail_point!("mapped_file::flush");
        self.map.flush_range(start, wrote - start)?;
        self.flushed.fetch_max(wrote, Ordering::AcqRel);
        Ok(wrote)
    }

    /// Pre-faults every page for writing so the first append to a page does
    /// not stall: `MADV_POPULATE_WRITE`, or a zero written to each page on
    /// kernels without it. Only on an empty file whose blocks are all
    /// reserved.
    pub fn warm(&self) {
        if self.wrote_position() != 0 || self.reserved.load(Ordering::Acquire) < self.size {
            return;
        }
        if self.map.advise(Advice::PopulateWrite).is_ok() {
            return;
        }
        let _one_writer = self.append_lock.lock();
        let mut p = 0;
        while p < self.size {
            // SAFETY: p < size, inside the mapping and reserved (checked
            // above); the file is empty (no reader may read it) and the
            // append lock is held.
            unsafe { self.map.as_mut_ptr().add(p).write_volatile(0) };
            p += OS_PAGE_SIZE;
        }
    }

    /// Deletes the file. Readers' slices keep the pages mapped until dropped.
    pub fn delete(&self) -> io::Result<()> {
        self.deleted.store(true, Ordering::Release);
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }
}

/// Gives `[offset, offset + len)` of `file` disk blocks.
fn allocate(file: &File, offset: usize, len: usize) -> io::Result<()> {
    fail::fail_point!("mapped_file::allocate", |_| Err(io::Error::new(
        io::ErrorKind::StorageFull,
        "no space left on device (failpoint)"
    )));
    if len == 0 {
        return Ok(());
    }
    nix::fcntl::posix_fallocate(file, offset as i64, len as i64).map_err(io::Error::from)
}

/// A range of a mapped file, kept mapped by its `Arc`.
struct MappedSlice {
    file: Arc<MappedFile>,
    pos: usize,
    len: usize,
}

impl AsRef<[u8]> for MappedSlice {
    fn as_ref(&self) -> &[u8] {
        // The range was checked against `wrote` when the slice was made and
        // written bytes never shrink while the file is shared.
        self.file.read(self.pos, self.len).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn append_read_slice_flush_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let f = Arc::new(MappedFile::open(dir.path(), 8192, 8192, Reserve::Whole).unwrap());
        assert_eq!(f.path().file_name().unwrap(), "00000000000000008192");
        assert!(f.append(b"hello").unwrap());
        assert!(f.append(b" world").unwrap());
        assert_eq!(f.read(0, 11), Some(&b"hello world"[..]));
        assert_eq!(f.read(6, 6), None, "beyond what was written");
        let s = f.slice(6, 5).unwrap();
        assert_eq!(&s[..], b"world");
        assert!(!f.append(&vec![1u8; 8192]).unwrap(), "does not fit");
        assert_eq!(f.flush(0).unwrap(), 11);
        drop(f);
        let g = MappedFile::open(dir.path(), 8192, 8192, Reserve::Whole).unwrap();
        // SAFETY: nothing writes `g` while the slices live.
        assert_eq!(unsafe { &g.read_whole()[..11] }, b"hello world", "bytes are on disk");
        g.reset_to(5).unwrap();
        assert_eq!(unsafe { &g.read_whole()[..11] }, b"hello\0\0\0\0\0\0", "the tail past the reset is zeroed");
        assert!(
            MappedFile::open(dir.path(), 8192, 4096, Reserve::Whole).is_err(),
            "a larger file than configured is refused"
        );
    }

    #[test]
    fn blocks_are_reserved_before_pages_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = |f: &MappedFile| f.path().metadata().unwrap().blocks() * 512;
        let whole = MappedFile::open(dir.path(), 0, 1 << 20, Reserve::Whole).unwrap();
        assert!(blocks(&whole) >= 1 << 20, "a whole file gets every block when made");

        let ahead = Reserve::Ahead { min: 16 * 1024, max: 64 * 1024 };
        let cq = MappedFile::open(dir.path(), 1 << 20, 1 << 20, ahead).unwrap();
        assert!(blocks(&cq) >= 16 * 1024 && blocks(&cq) < 1 << 20, "a first step only: {}", blocks(&cq));
        for _ in 0..(200 * 1024 / 20) {
            assert!(cq.append(&[7u8; 20]).unwrap());
        }
        let reserved = cq.reserved.load(Ordering::Acquire);
        assert!((200 * 1024..=200 * 1024 + 64 * 1024).contains(&reserved), "{reserved}");
        assert!(blocks(&cq) as usize >= reserved, "the reservation is real blocks");
    }

    #[test]
    fn slices_outlive_deletion() {
        let dir = tempfile::tempdir().unwrap();
        let f = Arc::new(MappedFile::open(dir.path(), 0, 4096, Reserve::Whole).unwrap());
        f.warm();
        assert!(f.append(b"kept").unwrap());
        let s = f.slice(0, 4).unwrap();
        f.delete().unwrap();
        drop(f);
        assert_eq!(&s[..], b"kept");
    }
}
