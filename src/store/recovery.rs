//! Start-up recovery (RocketMQ: CommitLog.recoverNormally / recoverAbnormally,
//! DefaultMessageStore.recover): load the files, find where the valid
//! CommitLog ends, cut what lies past it, and make the ConsumeQueues agree.
//!
//! Where the walk starts:
//! - after a clean stop (no `abort` file), at the third-last CommitLog file,
//!   as Apache does;
//! - after a crash, at the newest file whose first record is not newer than
//!   the checkpoint's flushed time (the smaller of the CommitLog and
//!   ConsumeQueue times, less 3 s); a checkpoint from the future is not
//!   trusted and the walk starts at the first file.
//!
//! From there every record is verified: size, magic, body CRC
//! (`checkCRCOnRecover`) and its own physical offset. At the first one that
//! fails:
//! - valid records, then zeros to the end of the file, then a file that
//!   starts with a valid record: the file lacks its end-of-file blank record
//!   (stores written by builds that took the pre-created next file for the
//!   tail after a clean restart look like this). The blank is written and
//!   the walk goes on, so nothing after it is lost.
//! - damage followed by a file whose messages the checkpoint shows were
//!   flushed (or any damage after a clean stop, when everything was
//!   flushed): not a torn tail but damaged data. Recovery refuses with an
//!   error naming the file, rather than delete flushed messages.
//! - otherwise it is the torn tail of a crash: the log ends there, the rest
//!   is zeroed and later files are deleted.
//!
//! ConsumeQueues lose units pointing past the end, and every record from the
//! walk's start (crash) or from the end of the ConsumeQueues (clean stop)
//! is indexed again. A ConsumeQueue that cannot be loaded is rebuilt from
//! the CommitLog.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::common::message;
use crate::common::time::now_millis;
use crate::store::commit_log::{CommitLog, takes_queue_offset};
use crate::store::consume_queue::ConsumeQueue;
use crate::store::mapped_file::{self, MappedFile};
use crate::store::message_store::Inner;

/// Beside a ConsumeQueue's directory while it is being rebuilt.
const REBUILD_MARKER: &str = ".rebuild";

/// A checkpoint time further ahead of the clock than this is not trusted.
const CHECKPOINT_CLOCK_SLACK_MS: i64 = 60_000;

/// What lies at a position of the CommitLog.
enum Record {
    /// A message of `size` bytes stored at `store_timestamp`.
    Message { size: i64, store_timestamp: i64 },
    /// The blank record that ends a file.
    Blank,
    /// Not a record that belongs here, and why.
    Invalid(String),
}

/// Verifies the record at the start of `rest`, which must sit at log
/// offset `at`.
fn check_record(rest: &[u8], at: i64, check_crc: bool) -> Record {
    let Some((size, magic)) = message::record_size(rest) else {
        return Record::Invalid(format!("only {} bytes left in the file", rest.len()));
    };
    if magic == message::BLANK_MAGIC_CODE {
        return if size as usize == rest.len() {
            Record::Blank
        } else {
            Record::Invalid(format!("a blank record of {size} bytes where {} are left", rest.len()))
        };
    }
    if size <= 0 || size as usize > rest.len() {
        return Record::Invalid(if size == 0 && magic == 0 {
            "zeros".to_string()
        } else {
            format!("a record size of {size} with {} bytes left in the file", rest.len())
        });
    }
    match message::parse_record(&rest[..size as usize], check_crc) {
        Ok(m) if m.commit_log_offset == at => Record::Message { size: size as i64, store_timestamp: m.store_timestamp },
        Ok(m) => Record::Invalid(format!("a record that says it is at offset {}", m.commit_log_offset)),
        Err(e) => Record::Invalid(e.to_string()),
    }
}

/// Every byte of `f`, for the walk.
fn bytes_of(f: &MappedFile) -> &[u8] {
    // SAFETY: recovery runs in `MessageStore::open` before any thread of
    // the store starts and before the store is handed out, so nothing
    // appends to or cuts the file while these bytes are looked at; the
    // writes recovery itself makes (`seal`, `reset_to`) happen after the
    // last use of the slice for that file.
    unsafe { f.read_whole() }
}

impl Inner {
    pub(super) fn recover(&self, abnormal: bool) -> io::Result<()> {
        let q = self.commit_log.queue();
        q.load()?;
        let rebuild = self.load_consume_queues(abnormal)?;
        let files = q.files();
        let trusted = self.checkpoint_trusted();
        let scan_from = if abnormal {
            log::warn!("the last run did not stop cleanly: recovering from the checkpoint");
            self.abnormal_recovery_start(&files, trusted)
        } else {
            // The last three files that hold data: files made ahead of time
            // and never written do not count.
            let written = files.len() - files.iter().rev().take_while(|f| bytes_of(f).starts_with(&[0; 8])).count();
            files.get(written.saturating_sub(3)).map_or(0, |f| f.from_offset())
        };
        let end = self.scan_valid_end(scan_from, abnormal, trusted)?;
        if !trusted {
            // Times that only move up would stay in the future for good.
            self.checkpoint.reset();
        }
        self.verified_from.store(scan_from, Ordering::Release);
        q.truncate_from(end)?;
        q.set_flushed_where(end);
        let min = self.commit_log.min_offset();
        let queues: Vec<Arc<ConsumeQueue>> = self.queues.read().values().flat_map(|m| m.values().cloned()).collect();
        let mut reput_from = if queues.is_empty() || rebuild { min } else { 0 };
        for cq in &queues {
            cq.truncate_dirty(end)?;
            cq.correct_min_offset(min);
            if !rebuild {
                reput_from = reput_from.max(cq.max_physic_offset());
            }
        }
        if abnormal {
            reput_from = reput_from.min(scan_from);
        }
        self.reput_from.store(reput_from.clamp(min, end), Ordering::Release);
        self.do_reput();
        self.rebuilt(end)?;
        self.commit_log.set_queue_offsets(self.next_queue_offsets(end));
        Ok(())
    }

    /// Loads every ConsumeQueue. One found damaged (a file of another
    /// size, a missing file, garbage among its units, or after a clean stop
    /// anything short of whole) is rebuilt from the CommitLog: it is an
    /// index of the CommitLog, which still holds its messages. A marker
    /// (`<queueId>.rebuild` beside the queue's directory) is written before
    /// the queue is deleted and removed once re-indexing has caught up, so
    /// a rebuild cut short by a crash or a refused start is taken up again
    /// next time. Other errors (permissions, too many open files) stop the
    /// start. True when a queue is being rebuilt.
    pub(super) fn load_consume_queues(&self, crashed: bool) -> io::Result<bool> {
        let root = self.config.consume_queue_dir();
        let Ok(topics) = std::fs::read_dir(&root) else { return Ok(false) };
        let mut rebuild = false;
        for t in topics.flatten() {
            let topic = t.file_name().to_string_lossy().to_string();
            let Ok(entries) = std::fs::read_dir(t.path()) else { continue };
            let mut qids = std::collections::BTreeMap::new();
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                match name.strip_suffix(REBUILD_MARKER).map(str::parse::<i32>) {
                    Some(Ok(qid)) => *qids.entry(qid).or_insert(false) = true,
                    Some(Err(_)) => {}
                    None => {
                        if let Ok(qid) = name.parse::<i32>() {
                            qids.entry(qid).or_insert(false);
                        }
                    }
                }
            }
            for (qid, marked) in qids {
                let cq = self.find_or_create_queue(&topic, qid);
                let damage = if marked {
                    Some("a rebuild was under way".to_string())
                } else {
                    let loaded = cq.load().and_then(|removed| {
                        if !crashed && (removed || cq.files().is_empty()) {
                            return Err(io::Error::new(io::ErrorKind::InvalidData, "files missing after a clean stop"));
                        }
                        cq.recover(crashed)
                    });
                    match loaded {
                        Ok(()) => None,
                        Err(e) if e.kind() == io::ErrorKind::InvalidData => Some(e.to_string()),
                        Err(e) => return Err(e),
                    }
                };
                if let Some(why) = damage {
                    log::error!("ConsumeQueue {topic}-{qid} is damaged ({why}): rebuilding it from the CommitLog");
                    crate::common::file::create_marker(&t.path().join(format!("{qid}{REBUILD_MARKER}")))?;
                    cq.destroy()?;
                    rebuild = true;
                }
            }
        }
        Ok(rebuild)
    }

    /// Removes the rebuild markers once re-indexing reached `end`.
    fn rebuilt(&self, end: i64) -> io::Result<()> {
        if self.reput_from.load(Ordering::Acquire) < end {
            return Ok(());
        }
        let Ok(topics) = std::fs::read_dir(self.config.consume_queue_dir()) else { return Ok(()) };
        for t in topics.flatten() {
            let Ok(entries) = std::fs::read_dir(t.path()) else { continue };
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().ends_with(REBUILD_MARKER) {
                    crate::common::file::remove_marker(&e.path())?;
                    log::info!("ConsumeQueue rebuilt: {}", e.path().display());
                }
            }
        }
        Ok(())
    }

    /// Is the checkpoint's time believable (not ahead of the clock)?
    fn checkpoint_trusted(&self) -> bool {
        let ahead = self.checkpoint.physic_msg_timestamp().max(self.checkpoint.logics_msg_timestamp());
        let trusted = ahead <= now_millis() + CHECKPOINT_CLOCK_SLACK_MS;
        if !trusted {
            log::warn!("the checkpoint names a time ahead of the clock ({ahead}): it is not trusted");
        }
        trusted
    }

    /// The start of the newest file whose first message is not newer than
    /// the checkpoint's flushed time (RocketMQ: isMappedFileMatchedRecover).
    fn abnormal_recovery_start(&self, files: &[Arc<MappedFile>], trusted: bool) -> i64 {
        let first = files.first().map_or(0, |f| f.from_offset());
        if !trusted {
            return first;
        }
        let min_ts = self.checkpoint.min_timestamp();
        for f in files.iter().rev() {
            if let Ok(m) = message::parse_record(bytes_of(f), false)
                && m.store_timestamp > 0
                && m.store_timestamp <= min_ts
            {
                log::info!("recovering from {} (checkpoint time {min_ts})", f.path().display());
                return f.from_offset();
            }
        }
        first
    }

    /// Walks records from `from` across files while they verify; returns
    /// where the valid log ends, having written missing end-of-file blanks
    /// on the way. Damage that is not a torn tail is an error naming the file.
    fn scan_valid_end(&self, from: i64, abnormal: bool, trusted: bool) -> io::Result<i64> {
        let q = self.commit_log.queue();
        let check_crc = self.config.check_crc_on_recover;
        let mut at = from;
        while let Some(f) = q.find(at) {
            let pos = (at - f.from_offset()) as usize;
            let next_file = f.from_offset() + f.size() as i64;
            let rest = &bytes_of(&f)[pos..];
            if rest.is_empty() {
                at = next_file;
                continue;
            }
            let why = match check_record(rest, at, check_crc) {
                Record::Message { size, store_timestamp } => {
                    f.set_last_store_timestamp(store_timestamp);
                    at += size;
                    continue;
                }
                Record::Blank => {
                    at = next_file;
                    continue;
                }
                Record::Invalid(why) => why,
            };
            let Some((next, next_ts)) =
                q.find(next_file).and_then(|n| match check_record(bytes_of(&n), n.from_offset(), check_crc) {
                    Record::Message { store_timestamp, .. } => Some((n, store_timestamp)),
                    _ => None,
                })
            else {
                // A file's records start at its first byte: a later file with
                // anything in its first page holds (or held) messages.
                let later = q.files().into_iter().filter(|g| g.from_offset() > f.from_offset()).find(|g| {
                    let head = bytes_of(g);
                    head[..head.len().min(mapped_file::OS_PAGE_SIZE)].iter().any(|&b| b != 0)
                });
                // SAFETY: as `bytes_of`.
                let here = unsafe { f.has_data_after(pos) };
                if !abnormal && (here || later.is_some()) {
                    let damaged = match (&later, here) {
                        (Some(g), false) => format!(
                            "{} holds data after the end of the log ({} ends at offset {at}: {why})",
                            g.path().display(),
                            f.path().display()
                        ),
                        _ => format!("{} is damaged at CommitLog offset {at} ({why})", f.path().display()),
                    };
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{damaged}, after a clean stop, when every byte was flushed: recovery does not cut \
                             flushed messages. Restore the file (from a slave or a backup); or, to cut the log \
                             there and lose what follows (later files too), create the file {} and start again",
                            self.config.abort_path().display()
                        ),
                    ));
                }
                log::warn!("the CommitLog ends at offset {at} in {}: {why}", f.path().display());
                return Ok(at);
            };
            // SAFETY: as `bytes_of`: nothing else touches the file while recovery runs.
            if !unsafe { f.has_data_after(pos) } {
                log::warn!(
                    "{}: its records end at {pos} without the end-of-file record, and {} goes on: writing it",
                    f.path().display(),
                    next.path().display()
                );
                seal(&f, pos)?;
                at = next_file;
                continue;
            }
            // The checkpoint's CommitLog time is that of a message whose
            // flush had finished; flushes go in log order, so a later file
            // whose first message is older was preceded by flushed bytes.
            let flushed = !abnormal || (trusted && next_ts < self.checkpoint.physic_msg_timestamp());
            if flushed {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} is damaged at CommitLog offset {at} ({why}), but {} after it holds messages that were \
                         flushed: this is not the torn tail of a crash, and recovery does not delete flushed \
                         messages. Restore the file (from a slave or a backup), or move it and every later \
                         CommitLog file aside to keep only what precedes the damage",
                        f.path().display(),
                        next.path().display()
                    ),
                ));
            }
            log::warn!("the CommitLog ends at offset {at} in {}: {why}", f.path().display());
            return Ok(at);
        }
        Ok(at)
    }

    /// The next queue offset of every queue: from the ConsumeQueues, and
    /// from records not indexed yet (the disk may be too full to index them).
    fn next_queue_offsets(&self, end: i64) -> HashMap<String, i64> {
        let mut table = HashMap::new();
        for (topic, m) in self.queues.read().iter() {
            for (qid, q) in m {
                table.insert(CommitLog::queue_key(topic, *qid), q.max_offset_in_queue());
            }
        }
        let q = self.commit_log.queue();
        let mut at = self.reput_from.load(Ordering::Acquire);
        while at < end {
            let Some(f) = q.find(at) else { break };
            let rest = &bytes_of(&f)[(at - f.from_offset()) as usize..];
            match message::parse_record(rest, false) {
                Ok(m) => {
                    if takes_queue_offset(m.sys_flag) {
                        let next = table.entry(CommitLog::queue_key(&m.topic(), m.queue_id)).or_insert(0);
                        *next = (*next).max(m.queue_offset + 1);
                    }
                    at += m.store_size as i64;
                }
                Err(_) => at = f.from_offset() + f.size() as i64,
            }
        }
        table
    }
}

/// Ends `f` at `pos` with a blank record and syncs it.
fn seal(f: &MappedFile, pos: usize) -> io::Result<()> {
    f.reset_to(pos)?;
    let blank = message::blank_record((f.size() - pos) as i32);
    f.append_and_fill(&blank[..(f.size() - pos).min(blank.len())])?;
    f.flush(0)?;
    Ok(())
}
