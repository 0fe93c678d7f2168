//! `MappedFileQueue`: the ordered files of one log (the CommitLog, or one
//! ConsumeQueue), and `AllocateMappedFileService`, which creates and
//! pre-faults the next CommitLog file before a writer needs it.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::common::ServiceThread;
use crate::common::thread;
use crate::store::mapped_file::{MappedFile, Reserve};

/// Creates files in the background (RocketMQ: AllocateMappedFileService).
pub struct AllocateMappedFileService {
    shared: Arc<AllocShared>,
    service: ServiceThread,
}

#[derive(Default)]
struct AllocShared {
    /// Requested (None) or ready (Some) files by path.
    files: Mutex<HashMap<PathBuf, Option<io::Result<Arc<MappedFile>>>>>,
    requests: Mutex<Vec<(PathBuf, i64, usize)>>,
    done: Condvar,
    warm: bool,
}

impl AllocateMappedFileService {
    pub fn start(warm: bool) -> io::Result<Self> {
        let shared = Arc::new(AllocShared { warm, ..Default::default() });
        let s = shared.clone();
        let service = ServiceThread::start("AllocateMappedFileService", "store", move |ctx| {
            while !ctx.is_stopped() {
                thread::doing("waiting for file requests");
                ctx.wait_for_running(Duration::from_secs(1));
                let requests: Vec<_> = std::mem::take(&mut *s.requests.lock());
                for (path, from, size) in requests {
                    thread::doing("creating and pre-faulting a file");
                    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                    let made = MappedFile::open(&dir, from, size, Reserve::Whole).map(|f| {
                        if s.warm {
                            f.warm();
                        }
                        Arc::new(f)
                    });
                    if let Err(e) = &made {
                        // Not yet needed: the writer that needs it tries again
                        // and reports the error then.
                        log::warn!("cannot create the next CommitLog file ahead of time: {e}");
                    }
                    s.files.lock().insert(path, Some(made));
                    s.done.notify_all();
                }
            }
        })?;
        Ok(AllocateMappedFileService { shared, service })
    }

    /// Asks for a file to be made in the background.
    pub fn request(&self, dir: &Path, from: i64, size: usize) {
        let path = dir.join(crate::store::mapped_file::file_name(from));
        let mut files = self.shared.files.lock();
        if files.contains_key(&path) {
            return;
        }
        files.insert(path.clone(), None);
        drop(files);
        self.shared.requests.lock().push((path, from, size));
        self.service.wakeup();
    }

    /// The file, made in the background if it was requested (waiting for it
    /// to be ready), else (or when making it failed there, or the service
    /// has stopped) made now.
    pub fn take(&self, dir: &Path, from: i64, size: usize) -> io::Result<Arc<MappedFile>> {
        let path = dir.join(crate::store::mapped_file::file_name(from));
        let mut files = self.shared.files.lock();
        loop {
            match files.get(&path) {
                Some(None) if !self.service.is_stopped() => {
                    self.service.wakeup();
                    self.shared.done.wait_for(&mut files, Duration::from_millis(100));
                }
                _ => {
                    let made = files.remove(&path).flatten();
                    drop(files);
                    return match made {
                        Some(Ok(f)) => Ok(f),
                        _ => MappedFile::open(dir, from, size, Reserve::Whole).map(Arc::new),
                    };
                }
            }
        }
    }

    pub fn shutdown(&self) {
        self.service.shutdown();
    }
}

/// The files of one log, ordered by offset.
pub struct MappedFileQueue {
    dir: PathBuf,
    file_size: usize,
    reserve: Reserve,
    files: RwLock<Vec<Arc<MappedFile>>>,
    /// The log offset up to which bytes are flushed.
    flushed_where: AtomicI64,
    /// Store time of the last message known flushed (RocketMQ: storeTimestamp).
    store_timestamp: AtomicI64,
    /// Makes new files in the background; only with [`Reserve::Whole`].
    allocator: Option<Arc<AllocateMappedFileService>>,
}

impl MappedFileQueue {
    pub fn new(
        dir: PathBuf,
        file_size: usize,
        reserve: Reserve,
        allocator: Option<Arc<AllocateMappedFileService>>,
    ) -> Self {
        MappedFileQueue {
            dir,
            file_size,
            reserve,
            files: RwLock::new(Vec::new()),
            flushed_where: AtomicI64::new(0),
            store_timestamp: AtomicI64::new(0),
            allocator,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn file_size(&self) -> usize {
        self.file_size
    }

    /// Maps the files on disk (all marked full; recovery then sets the real
    /// end). Files of the wrong size, and a missing file between two
    /// others, are an error naming them. True when the newest file was a
    /// short, empty one (made when the process died) and was removed.
    pub fn load(&self) -> io::Result<bool> {
        let mut found: Vec<(i64, PathBuf)> = Vec::new();
        match std::fs::read_dir(&self.dir) {
            Ok(entries) => {
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().to_string();
                    let Ok(off) = name.parse::<i64>() else {
                        log::warn!("ignoring {} in {}", name, self.dir.display());
                        continue;
                    };
                    if name.len() != 20 {
                        log::warn!("ignoring {} in {}", name, self.dir.display());
                        continue;
                    }
                    found.push((off, e.path()));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        found.sort();
        // The newest file may be one the process died creating (made, not
        // yet sized): if it is short and never held data, it goes. A short
        // file anywhere else is damage.
        let mut removed = false;
        if let Some((_, last)) = found.last()
            && std::fs::metadata(last)?.len() < self.file_size as u64
            && std::fs::read(last)?.iter().all(|b| *b == 0)
        {
            log::warn!("removing {}: an unfinished, empty file", last.display());
            std::fs::remove_file(last)?;
            found.pop();
            removed = true;
        }
        for (_, path) in &found {
            let len = std::fs::metadata(path)?.len();
            if len != self.file_size as u64 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} is {len} bytes but files here are {} bytes (damaged, or was the file size setting changed?)",
                        path.display(),
                        self.file_size
                    ),
                ));
            }
        }
        for pair in found.windows(2) {
            if pair[1].0 != pair[0].0 + self.file_size as i64 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} is not followed by the file starting at {} (next found: {}): a file is missing",
                        pair[0].1.display(),
                        pair[0].0 + self.file_size as i64,
                        pair[1].1.display()
                    ),
                ));
            }
        }
        let mut files = Vec::new();
        for (off, _) in found {
            let f = MappedFile::open(&self.dir, off, self.file_size, self.reserve)?;
            f.mark_full();
            files.push(Arc::new(f));
        }
        *self.files.write() = files;
        Ok(removed)
    }

    pub fn files(&self) -> Vec<Arc<MappedFile>> {
        self.files.read().clone()
    }
    pub fn first(&self) -> Option<Arc<MappedFile>> {
        self.files.read().first().cloned()
    }
    pub fn last(&self) -> Option<Arc<MappedFile>> {
        self.files.read().last().cloned()
    }
    pub fn is_empty(&self) -> bool {
        self.files.read().is_empty()
    }

    /// The file to append to: the last one unless it is full (or there is
    /// none), then a new one starting at `start_offset` (first file) or
    /// right after the last one.
    pub fn last_for_append(&self, start_offset: i64) -> io::Result<Arc<MappedFile>> {
        if let Some(f) = self.last().filter(|f| !f.is_full()) {
            return Ok(f);
        }
        let mut files = self.files.write();
        if let Some(f) = files.last().filter(|f| !f.is_full()) {
            return Ok(f.clone());
        }
        let from = match files.last() {
            Some(l) => l.from_offset() + self.file_size as i64,
            None => start_offset - start_offset.rem_euclid(self.file_size as i64),
        };
        fail::fail_point!("mapped_file_queue::roll");
        let f = match &self.allocator {
            Some(a) => {
                let f = a.take(&self.dir, from, self.file_size)?;
                a.request(&self.dir, from + self.file_size as i64, self.file_size);
                f
            }
            None => Arc::new(MappedFile::open(&self.dir, from, self.file_size, self.reserve)?),
        };
        if files.is_empty() && from > 0 {
            self.flushed_where.store(from, Ordering::Release);
        }
        files.push(f.clone());
        Ok(f)
    }

    /// Asks the allocator for the file the next roll will need (the first
    /// one of an empty log), so no writer waits for it to be made.
    pub fn prepare_next(&self) {
        let Some(a) = &self.allocator else { return };
        let next = match self.last() {
            Some(l) if !l.is_full() => return,
            Some(l) => l.from_offset() + self.file_size as i64,
            None => 0,
        };
        a.request(&self.dir, next, self.file_size);
    }

    /// The file holding log offset `offset`.
    pub fn find(&self, offset: i64) -> Option<Arc<MappedFile>> {
        let files = self.files.read();
        let first = files.first()?;
        if offset < first.from_offset() {
            return None;
        }
        let idx = ((offset - first.from_offset()) / self.file_size as i64) as usize;
        let f = files.get(idx)?;
        (offset >= f.from_offset() && offset < f.from_offset() + self.file_size as i64).then(|| f.clone())
    }

    /// The first offset still stored.
    pub fn min_offset(&self) -> i64 {
        self.first().map_or(0, |f| f.from_offset())
    }

    /// The offset after the last written byte.
    pub fn max_offset(&self) -> i64 {
        self.last().map_or(0, |f| f.from_offset() + f.wrote_position() as i64)
    }

    pub fn flushed_where(&self) -> i64 {
        self.flushed_where.load(Ordering::Acquire)
    }

    pub(crate) fn set_flushed_where(&self, v: i64) {
        self.flushed_where.store(v, Ordering::Release);
    }

    /// Store time of the last message known flushed (0: none yet). It
    /// advances with every flush, caught up with the writes or not.
    pub fn store_timestamp(&self) -> i64 {
        self.store_timestamp.load(Ordering::Acquire)
    }

    /// Flushes the file holding the flush position (RocketMQ flushes one
    /// file per call and catches up on the next). True when something new
    /// reached the disk.
    pub fn flush(&self, least_pages: usize) -> io::Result<bool> {
        let mut at = self.flushed_where();
        let first = self.min_offset();
        if at < first {
            // Files before the first are gone (cleaned, or a queue that
            // starts late): nothing there to flush.
            at = first;
            self.flushed_where.fetch_max(first, Ordering::AcqRel);
        }
        let Some(f) = self.find(at) else {
            return Ok(false);
        };
        // Read before the flush: the message it names is below the write
        // position the flush then reads, so it is flushed.
        let ts = f.last_store_timestamp();
        let pos = f.flush(least_pages)?;
        let now = f.from_offset() + pos as i64;
        if now > at {
            self.flushed_where.store(now, Ordering::Release);
            if ts > 0 {
                self.store_timestamp.fetch_max(ts, Ordering::AcqRel);
            }
            return Ok(true);
        }
        Ok(false)
    }

    /// Flushes until everything written is on disk.
    pub fn flush_all(&self) -> io::Result<()> {
        while self.flushed_where() < self.max_offset() {
            if !self.flush(0)? {
                return Err(io::Error::other(format!(
                    "{}: flushing stopped at {} of {}",
                    self.dir.display(),
                    self.flushed_where(),
                    self.max_offset()
                )));
            }
        }
        Ok(())
    }

    /// Drops everything past `offset` (recovery): the file holding it is cut
    /// there, later files are deleted and their removal synced, so a power
    /// cut cannot bring their stale records back.
    pub(crate) fn truncate_from(&self, offset: i64) -> io::Result<()> {
        let mut files = self.files.write();
        let mut deleted = false;
        // Newest first: an interrupted cut never leaves a gap between files.
        while let Some(f) = files.last().filter(|f| f.from_offset() > offset).cloned() {
            fail::fail_point!("recovery::delete_file");
            f.delete()?;
            files.pop();
            deleted = true;
        }
        if let Some(f) = files.last().filter(|f| offset < f.from_offset() + self.file_size as i64) {
            f.reset_to((offset - f.from_offset()) as usize)?;
        }
        if deleted {
            crate::common::file::sync_dir(&self.dir)?;
        }
        if self.flushed_where() > offset {
            self.flushed_where.store(offset, Ordering::Release);
        }
        Ok(())
    }

    /// Deletes every file (a ConsumeQueue being rebuilt or removed), the
    /// ones on disk that were never loaded too, newest first, so that an
    /// interrupted deletion never leaves a gap; then the directory.
    pub(crate) fn destroy(&self) -> io::Result<()> {
        for f in self.files.write().drain(..).rev() {
            f.delete()?;
        }
        self.flushed_where.store(0, Ordering::Release);
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            let mut left: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            left.sort();
            for p in left.iter().rev() {
                std::fs::remove_file(p)?;
            }
        }
        match std::fs::remove_dir(&self.dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        crate::common::file::sync_parent(&self.dir)
    }

    /// Deletes leading files while `expired(file)` holds, never the last
    /// one, at most `max` of them, pausing `pause` between deletions.
    pub fn delete_leading(
        &self,
        max: usize,
        pause: Duration,
        mut expired: impl FnMut(&MappedFile) -> bool,
    ) -> io::Result<usize> {
        let mut deleted = 0;
        while deleted < max {
            let victim = {
                let files = self.files.read();
                match files.first() {
                    Some(f) if files.len() > 1 && expired(f) => f.clone(),
                    _ => break,
                }
            };
            victim.delete()?;
            self.files.write().retain(|f| !Arc::ptr_eq(f, &victim));
            log::info!("deleted {}", victim.path().display());
            deleted += 1;
            if deleted < max && !pause.is_zero() {
                std::thread::sleep(pause);
            }
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolls_finds_truncates_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let q = MappedFileQueue::new(dir.path().to_path_buf(), 1024, Reserve::Whole, None);
        for i in 0..5u8 {
            let f = q.last_for_append(0).unwrap();
            assert!(f.append_and_fill(&[i; 8]).unwrap());
        }
        assert_eq!(q.files().len(), 5);
        assert_eq!(q.max_offset(), 5 * 1024);
        assert_eq!(q.find(2048 + 7).unwrap().from_offset(), 2048);
        assert!(q.find(5 * 1024).is_none());
        q.flush_all().unwrap();
        assert_eq!(q.flushed_where(), 5 * 1024);
        q.truncate_from(2048 + 4).unwrap();
        assert_eq!(q.files().len(), 3);
        assert_eq!(q.max_offset(), 2048 + 4);
        let q2 = MappedFileQueue::new(dir.path().to_path_buf(), 1024, Reserve::Whole, None);
        q2.load().unwrap();
        assert_eq!(q2.files().len(), 3);
        let deleted = q2.delete_leading(10, Duration::ZERO, |f| f.from_offset() < 2048).unwrap();
        assert_eq!(deleted, 2);
        assert_eq!(q2.min_offset(), 2048);
        let wrong = MappedFileQueue::new(dir.path().to_path_buf(), 512, Reserve::Whole, None);
        assert!(wrong.load().is_err(), "a file of another size is refused with an error");
        // A file the process died creating (empty, not yet sized) is dropped.
        std::fs::write(dir.path().join(crate::store::mapped_file::file_name(3072)), b"").unwrap();
        let q3 = MappedFileQueue::new(dir.path().to_path_buf(), 1024, Reserve::Whole, None);
        q3.load().unwrap();
        assert_eq!(q3.files().len(), 1);
        assert!(!dir.path().join(crate::store::mapped_file::file_name(3072)).exists());
    }

    #[test]
    fn the_allocator_prepares_the_next_file() {
        let dir = tempfile::tempdir().unwrap();
        let alloc = Arc::new(AllocateMappedFileService::start(true).unwrap());
        let q = MappedFileQueue::new(dir.path().to_path_buf(), 4096, Reserve::Whole, Some(alloc.clone()));
        let f = q.last_for_append(0).unwrap();
        assert!(f.append_and_fill(b"x").unwrap());
        let next = dir.path().join(crate::store::mapped_file::file_name(4096));
        assert!(crate::common::wait::until(Duration::from_secs(5), || next.exists()), "pre-created in the background");
        assert_eq!(q.last_for_append(0).unwrap().from_offset(), 4096);
        alloc.shutdown();
    }
}
