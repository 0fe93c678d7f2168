//! `CommitLog`: every message of every topic, appended in Apache's stored
//! record layout to one `MappedFileQueue`. One writer at a time (the put
//! lock); records are encoded before the lock is taken and only the queue
//! offset, physical offset and store time are patched in under it. A record
//! never spans files: when one does not fit, the rest of the file becomes a
//! blank record (size + BLANK magic) and the record goes to the next file.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::common::message::{self, MessageToStore, layout};
use crate::common::time::now_millis;
use crate::store::mapped_file::{MappedFile, Reserve};
use crate::store::mapped_file_queue::{AllocateMappedFileService, MappedFileQueue};

pub use crate::common::message::BLANK_MAGIC_CODE;
/// Bytes a blank record needs (size + magic).
const END_FILE_MIN_BLANK_LENGTH: usize = 8;

/// Why an append failed (RocketMQ: AppendMessageStatus / PutMessageStatus).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendError {
    /// Too large, or fields out of range (MESSAGE_ILLEGAL).
    MessageIllegal(String),
    /// A new file could not be created (CREATE_MAPEDFILE_FAILED).
    CreateMappedFileFailed(String),
    /// The disk has no room for the file or the record.
    DiskFull(String),
}

impl AppendError {
    fn from_io(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::StorageFull {
            AppendError::DiskFull(e.to_string())
        } else {
            AppendError::CreateMappedFileFailed(e.to_string())
        }
    }
}

impl std::fmt::Display for AppendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppendError::MessageIllegal(m) => write!(f, "message illegal: {m}"),
            AppendError::CreateMappedFileFailed(m) => write!(f, "cannot create a CommitLog file: {m}"),
            AppendError::DiskFull(m) => write!(f, "the disk is full: {m}"),
        }
    }
}

/// Where one appended message went (RocketMQ: AppendMessageResult).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Physical offset of the (first) record.
    pub wrote_offset: i64,
    /// Bytes written (all records of a batch).
    pub wrote_bytes: usize,
    /// Broker message id(s), one per message, comma-joined for a batch as Apache does.
    pub msg_id: String,
    pub store_timestamp: i64,
    /// Queue offset of the (first) message.
    pub logics_offset: i64,
    pub msg_num: usize,
}

impl Appended {
    /// The offset just past the last record.
    pub fn end_offset(&self) -> i64 {
        self.wrote_offset + self.wrote_bytes as i64
    }
}

/// Is this sys flag a transaction message that must not take a queue offset?
pub(crate) fn takes_queue_offset(sys_flag: i32) -> bool {
    let t = sys_flag & message::sys_flag::TRANSACTION_MASK;
    t == message::sys_flag::TRANSACTION_NOT_TYPE || t == message::sys_flag::TRANSACTION_COMMIT_TYPE
}

pub struct CommitLog {
    queue: MappedFileQueue,
    max_message_size: usize,
    /// Next queue offset per `topic-queueId` (RocketMQ: topicQueueTable).
    put_lock: Mutex<HashMap<String, i64>>,
}

impl CommitLog {
    pub fn new(
        dir: std::path::PathBuf,
        file_size: usize,
        max_message_size: usize,
        allocator: Option<Arc<AllocateMappedFileService>>,
    ) -> Self {
        CommitLog {
            queue: MappedFileQueue::new(dir, file_size, Reserve::Whole, allocator),
            max_message_size,
            put_lock: Mutex::new(HashMap::new()),
        }
    }

    pub fn queue(&self) -> &MappedFileQueue {
        &self.queue
    }

    pub fn file_size(&self) -> usize {
        self.queue.file_size()
    }

    pub fn min_offset(&self) -> i64 {
        self.queue.min_offset()
    }

    pub fn max_offset(&self) -> i64 {
        self.queue.max_offset()
    }

    /// Sets the next queue offset of every queue (after recovery).
    pub fn set_queue_offsets(&self, table: HashMap<String, i64>) {
        *self.put_lock.lock() = table;
    }

    pub fn queue_key(topic: &str, queue_id: i32) -> String {
        format!("{topic}-{queue_id}")
    }

    /// Forgets a queue's offsets (its topic was deleted).
    pub fn remove_queue_offset(&self, topic: &str, queue_id: i32) {
        self.put_lock.lock().remove(&Self::queue_key(topic, queue_id));
    }

    /// Appends one message.
    pub fn put(&self, msg: &MessageToStore) -> Result<Appended, AppendError> {
        self.put_batch(std::slice::from_ref(msg))
    }

    /// Appends messages of one topic and queue as one run of records in one
    /// file, under one lock.
    pub fn put_batch(&self, msgs: &[MessageToStore]) -> Result<Appended, AppendError> {
        let Some(first) = msgs.first() else {
            return Err(AppendError::MessageIllegal("empty batch".into()));
        };
        let mut records = Vec::with_capacity(msgs.len());
        let mut total = 0usize;
        for m in msgs {
            let rec = message::encode_for_store(m, 0).map_err(|e| AppendError::MessageIllegal(e.to_string()))?;
            if rec.len() > self.max_message_size + 1024 * 16 {
                return Err(AppendError::MessageIllegal(format!(
                    "record of {} bytes exceeds maxMessageSize {}",
                    rec.len(),
                    self.max_message_size
                )));
            }
            total += rec.len();
            records.push(rec);
        }
        if total + END_FILE_MIN_BLANK_LENGTH > self.queue.file_size() {
            return Err(AppendError::MessageIllegal(format!(
                "{total} bytes do not fit in one CommitLog file of {} bytes",
                self.queue.file_size()
            )));
        }
        let key = Self::queue_key(&first.topic, first.queue_id);
        let mut table = self.put_lock.lock();
        let store_timestamp = now_millis();
        let file = self.file_with_room(total)?;
        let wrote_offset = file.from_offset() + file.wrote_position() as i64;
        let first_queue_offset = table.get(&key).copied().unwrap_or(0);
        let mut queue_offset = first_queue_offset;
        let mut phys = wrote_offset;
        let mut ids = Vec::with_capacity(msgs.len());
        for (m, rec) in msgs.iter().zip(records.iter_mut()) {
            let q = if takes_queue_offset(m.sys_flag) { queue_offset } else { 0 };
            layout::patch(rec, q, phys, store_timestamp).map_err(|e| AppendError::MessageIllegal(e.to_string()))?;
            ids.push(message::create_message_id(m.store_host, phys));
            if takes_queue_offset(m.sys_flag) {
                queue_offset += 1;
            }
            phys += rec.len() as i64;
        }
        // One append keeps a batch whole in the file; a single record needs no joining copy.
        let appended = match records.as_slice() {
            [one] => file.append(one),
            many => file.append(&many.concat()),
        };
        match appended {
            Ok(true) => {}
            Ok(false) => {
                return Err(AppendError::CreateMappedFileFailed("the file refused an append that fit".into()));
            }
            Err(e) => return Err(AppendError::from_io(e)),
        }
        file.set_last_store_timestamp(store_timestamp);
        fail::fail_point!("commit_log::after_append");
        table.insert(key, queue_offset);
        drop(table);
        let msg_id = if ids.len() == 1 { ids.swap_remove(0) } else { ids.join(",") };
        Ok(Appended {
            wrote_offset,
            wrote_bytes: total,
            msg_id,
            store_timestamp,
            logics_offset: first_queue_offset,
            msg_num: msgs.len(),
        })
    }

    /// The last file if `len` bytes (plus a blank record) fit in it; else the
    /// rest of it becomes a blank record and the next file is used.
    fn file_with_room(&self, len: usize) -> Result<Arc<MappedFile>, AppendError> {
        loop {
            let file = self.queue.last_for_append(0).map_err(AppendError::from_io)?;
            let remaining = file.remaining();
            if len + END_FILE_MIN_BLANK_LENGTH <= remaining {
                return Ok(file);
            }
            let blank = message::blank_record(remaining as i32);
            let end = &blank[..remaining.min(blank.len())];
            file.append_and_fill(end).map_err(AppendError::from_io)?;
        }
    }

    /// The stored bytes `[offset, offset + size)` as a zero-copy slice.
    pub fn slice(&self, offset: i64, size: usize) -> Option<Bytes> {
        let f = self.queue.find(offset)?;
        f.slice((offset - f.from_offset()) as usize, size)
    }

    /// The whole record at `offset` (its size read from its first 4 bytes).
    pub fn record_at(&self, offset: i64) -> Option<Bytes> {
        let f = self.queue.find(offset)?;
        let pos = (offset - f.from_offset()) as usize;
        let head = f.read(pos, 8)?;
        let size = i32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        if size <= 0 {
            return None;
        }
        f.slice(pos, size as usize)
    }

    /// The start of the file after the one holding `offset` (RocketMQ: rollNextFile).
    pub fn roll_next_file(&self, offset: i64) -> i64 {
        let size = self.queue.file_size() as i64;
        offset.saturating_add(size - offset.rem_euclid(size))
    }

    pub fn flush(&self, least_pages: usize) -> io::Result<bool> {
        self.queue.flush(least_pages)
    }

    pub fn flushed_where(&self) -> i64 {
        self.queue.flushed_where()
    }
}
