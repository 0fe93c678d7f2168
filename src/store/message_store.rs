//! `MessageStore` (RocketMQ: DefaultMessageStore): the facade the broker
//! uses, with put and get. It owns the CommitLog, the ConsumeQueues, the
//! checkpoint and the store's threads, whose work lives beside it:
//! recovery (`recovery.rs`), `ReputMessageService` (`reput.rs`), the flush
//! services (`flush.rs`) and file cleaning on `StoreScheduledThread`
//! (`cleaning.rs`).

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::common::message::{self, MessageExt, MessageToStore};
use crate::common::wait::{Deadline, OneShot};
use crate::common::{ScheduledExecutor, ServiceThread, thread};
use crate::store::checkpoint::Checkpoint;
use crate::store::commit_log::{AppendError, Appended, CommitLog};
use crate::store::config::{FlushDiskType, StoreConfig};
use crate::store::consume_queue::{CQ_STORE_UNIT_SIZE, ConsumeQueue, CqUnit};
use crate::store::disk::{DISK_CHECK_INTERVAL, DiskSpace};
use crate::store::mapped_file_queue::AllocateMappedFileService;

/// The topic delayed messages wait in; its ConsumeQueue units carry the
/// delivery time as tags code.
pub const SCHEDULE_TOPIC: &str = "SCHEDULE_TOPIC_XXXX";

/// Told about every message as soon as it is indexed (RocketMQ:
/// MessageArrivingListener); long polling hangs on this.
pub trait MessageArrivingListener: Send + Sync + 'static {
    /// `next_offset` is the message's queue offset + 1.
    fn arriving(&self, topic: &str, queue_id: i32, next_offset: i64, tags_code: i64, store_timestamp: i64);
}

/// Chooses messages while reading a queue (RocketMQ: MessageFilter).
pub trait MessageFilter {
    /// By the tags code in the ConsumeQueue unit.
    fn is_matched_by_consume_queue(&self, tags_code: i64) -> bool;
    /// By the stored record (for filters needing properties).
    fn is_matched_by_commit_log(&self, _record: &[u8]) -> bool {
        true
    }
}

/// RocketMQ: PutMessageStatus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMessageStatus {
    PutOk,
    FlushDiskTimeout,
    ServiceNotAvailable,
    CreateMappedFileFailed,
    MessageIllegal,
    UnknownError,
}

#[derive(Debug, Clone)]
pub struct PutMessageResult {
    pub status: PutMessageStatus,
    pub appended: Option<Appended>,
    /// Why, when not PutOk.
    pub remark: Option<String>,
}

impl PutMessageResult {
    fn failed(status: PutMessageStatus, remark: String) -> Self {
        PutMessageResult { status, appended: None, remark: Some(remark) }
    }
    pub fn is_ok(&self) -> bool {
        self.status == PutMessageStatus::PutOk
    }
}

/// RocketMQ: GetMessageStatus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetMessageStatus {
    Found,
    NoMatchedMessage,
    MessageWasRemoving,
    OffsetFoundNull,
    OffsetOverflowBadly,
    OffsetOverflowOne,
    OffsetTooSmall,
    NoMatchedLogicQueue,
    NoMessageInQueue,
}

/// RocketMQ: GetMessageResult. `messages` are slices of the mapped files.
#[derive(Debug, Clone)]
pub struct GetMessageResult {
    pub status: GetMessageStatus,
    pub next_begin_offset: i64,
    pub min_offset: i64,
    pub max_offset: i64,
    pub messages: Vec<Bytes>,
    pub queue_offsets: Vec<i64>,
    pub buffer_total_size: usize,
    pub suggest_pulling_from_slave: bool,
}

impl GetMessageResult {
    fn empty(status: GetMessageStatus, next: i64, min: i64, max: i64) -> Self {
        GetMessageResult {
            status,
            next_begin_offset: next,
            min_offset: min,
            max_offset: max,
            messages: Vec::new(),
            queue_offsets: Vec::new(),
            buffer_total_size: 0,
            suggest_pulling_from_slave: false,
        }
    }
    pub fn message_count(&self) -> usize {
        self.messages.len()
    }
}

type QueueTable = HashMap<String, HashMap<i32, Arc<ConsumeQueue>>>;

pub(super) struct Inner {
    pub(super) config: StoreConfig,
    pub(super) commit_log: CommitLog,
    pub(super) queues: RwLock<QueueTable>,
    pub(super) checkpoint: Checkpoint,
    pub(super) listener: RwLock<Option<Arc<dyn MessageArrivingListener>>>,
    /// The CommitLog offset up to which messages are indexed.
    pub(super) reput_from: AtomicI64,
    pub(super) delay_levels: Vec<Duration>,
    /// accessMessageInMemoryMaxRatio of the machine's memory: messages
    /// further behind the end than this are "on disk".
    pub(super) memory_window: i64,
    /// Sync-flush requests: (offset that must be flushed, who waits).
    pub(super) group_commit: Mutex<Vec<(i64, Arc<OneShot<bool>>)>>,
    pub(super) shutting_down: AtomicBool,
    /// Full or not, and why (puts are refused while full).
    pub(super) disk: DiskSpace,
    /// Store time of the last message indexed (the checkpoint's
    /// ConsumeQueue time once the queues are flushed).
    pub(super) dispatched_store_timestamp: AtomicI64,
    /// Indexing is stopped at a record it could not index (logged once).
    pub(super) reput_stalled: AtomicBool,
    /// When a ConsumeQueue unit that does not match its record was last logged.
    bad_unit_logged: AtomicI64,
    /// Records from here on were verified at start-up or appended since;
    /// one below is checked (structure and CRC) when it is read.
    pub(super) verified_from: AtomicI64,
}

/// The store and its threads. Dropping it shuts it down.
pub struct MessageStore {
    inner: Arc<Inner>,
    /// An exclusive lock on `<storePathRootDir>/lock` until shutdown, as
    /// Apache's: two stores on one directory would both recover, cut and
    /// append.
    lock: Mutex<Option<nix::fcntl::Flock<std::fs::File>>>,
    allocator: Arc<AllocateMappedFileService>,
    reput: ServiceThread,
    flush_commit_log: ServiceThread,
    flush_consume_queue: ServiceThread,
    scheduled: ScheduledExecutor,
    disk_check: ScheduledExecutor,
    closed: AtomicBool,
}

impl MessageStore {
    /// Opens the store at `config.store_path_root_dir`, recovering from a
    /// crash when the `abort` file shows the last run did not stop cleanly.
    pub fn open(config: StoreConfig) -> io::Result<Self> {
        crate::common::file::create_dir_durably(&config.store_path_root_dir)?;
        let lock_path = config.store_path_root_dir.join("lock");
        let lock_file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path)?;
        let lock =
            nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
                io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{}: {e}: another store (broker) has this directory open", lock_path.display()),
                )
            })?;
        let delay_levels = config
            .delay_levels()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("messageDelayLevel: {e}")))?;
        let allocator = Arc::new(AllocateMappedFileService::start(config.warm_mapped_file_enable)?);
        let commit_log = CommitLog::new(
            config.commit_log_dir(),
            config.mapped_file_size_commit_log,
            config.max_message_size,
            Some(allocator.clone()),
        );
        let checkpoint = Checkpoint::open(&config.checkpoint_path())?;
        let memory_window =
            (total_physical_memory() as f64 * config.access_message_in_memory_max_ratio as f64 / 100.0) as i64;
        let inner = Arc::new(Inner {
            config,
            commit_log,
            queues: RwLock::new(HashMap::new()),
            checkpoint,
            listener: RwLock::new(None),
            reput_from: AtomicI64::new(0),
            delay_levels,
            memory_window,
            group_commit: Mutex::new(Vec::new()),
            shutting_down: AtomicBool::new(false),
            disk: DiskSpace::default(),
            dispatched_store_timestamp: AtomicI64::new(0),
            reput_stalled: AtomicBool::new(false),
            bad_unit_logged: AtomicI64::new(0),
            verified_from: AtomicI64::new(0),
        });
        // `abort` from before recovery writes anything: a crash during
        // recovery is a crash. A refused start puts back what was there.
        let abort = inner.config.abort_path();
        let abnormal = abort.exists();
        crate::common::file::create_marker(&abort)?;
        if let Err(e) = inner.recover(abnormal) {
            if !abnormal {
                let _ = crate::common::file::remove_marker(&abort);
            }
            return Err(e);
        }
        inner.disk.check(&inner.config);
        inner.commit_log.queue().prepare_next();

        let r = inner.clone();
        let reput = ServiceThread::start("ReputMessageService", "store", move |ctx| {
            while !ctx.is_stopped() {
                thread::doing("waiting for new CommitLog entries");
                ctx.wait_for_running(Duration::from_millis(100));
                thread::doing("indexing new CommitLog entries");
                r.do_reput();
            }
            r.do_reput();
        })?;
        let f = inner.clone();
        let flush_commit_log = match inner.config.flush_disk_type {
            FlushDiskType::AsyncFlush => {
                ServiceThread::start("FlushRealTimeService", "store", move |ctx| f.run_flush_real_time(ctx))?
            }
            FlushDiskType::SyncFlush => {
                ServiceThread::start("GroupCommitService", "store", move |ctx| f.run_group_commit(ctx))?
            }
        };
        let q = inner.clone();
        let flush_consume_queue =
            ServiceThread::start("FlushConsumeQueueService", "store", move |ctx| q.run_flush_consume_queue(ctx))?;
        let scheduled = ScheduledExecutor::new("StoreScheduledThread", "store")?;
        let c = inner.clone();
        let interval = inner.config.clean_resource_interval;
        scheduled.schedule_at_fixed_rate(Duration::from_secs(60).min(interval), interval, move || {
            if let Err(e) = c.clean_files(false) {
                log::error!("cleaning expired files failed: {e}");
            }
        });
        let disk_check = ScheduledExecutor::new("DiskCheckScheduledThread", "store")?;
        let d = inner.clone();
        disk_check.schedule_with_fixed_delay(DISK_CHECK_INTERVAL, DISK_CHECK_INTERVAL, move || {
            thread::doing("reading the disk's free space");
            d.disk.check(&d.config);
        });
        log::info!(
            "message store open at {}: CommitLog {}..{}",
            inner.config.store_path_root_dir.display(),
            inner.commit_log.min_offset(),
            inner.commit_log.max_offset()
        );
        Ok(MessageStore {
            inner,
            lock: Mutex::new(Some(lock)),
            allocator,
            reput,
            flush_commit_log,
            flush_consume_queue,
            scheduled,
            disk_check,
            closed: AtomicBool::new(false),
        })
    }

    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// Registers the listener told about each indexed message.
    pub fn set_arriving_listener(&self, l: Arc<dyn MessageArrivingListener>) {
        *self.inner.listener.write() = Some(l);
    }

    /// Appends one message; under SYNC_FLUSH returns once it is on disk
    /// (FLUSH_DISK_TIMEOUT after `syncFlushTimeout`) unless `wait_store_ok`
    /// is false (the message's WAIT property).
    pub fn put_message(&self, msg: &MessageToStore, wait_store_ok: bool) -> PutMessageResult {
        self.put(std::slice::from_ref(msg), wait_store_ok)
    }

    /// Appends messages of one topic and queue together (a batch send).
    pub fn put_messages(&self, msgs: &[MessageToStore], wait_store_ok: bool) -> PutMessageResult {
        self.put(msgs, wait_store_ok)
    }

    fn put(&self, msgs: &[MessageToStore], wait_store_ok: bool) -> PutMessageResult {
        if self.inner.shutting_down.load(Ordering::Acquire) {
            return PutMessageResult::failed(
                PutMessageStatus::ServiceNotAvailable,
                "service not available now: the message store is shutting down".into(),
            );
        }
        if self.inner.disk.is_full() {
            return PutMessageResult::failed(PutMessageStatus::ServiceNotAvailable, self.inner.disk.remark());
        }
        for m in msgs {
            if m.body.len() > self.inner.config.max_message_size {
                return PutMessageResult::failed(
                    PutMessageStatus::MessageIllegal,
                    format!(
                        "body of {} bytes exceeds maxMessageSize {}",
                        m.body.len(),
                        self.inner.config.max_message_size
                    ),
                );
            }
        }
        let appended = match self.inner.commit_log.put_batch(msgs) {
            Ok(a) => a,
            Err(AppendError::MessageIllegal(m)) => {
                return PutMessageResult::failed(PutMessageStatus::MessageIllegal, m);
            }
            Err(AppendError::CreateMappedFileFailed(m)) => {
                return PutMessageResult::failed(PutMessageStatus::CreateMappedFileFailed, m);
            }
            Err(AppendError::DiskFull(m)) => {
                log::error!("{m}");
                self.inner.disk.mark_no_space(
                    &self.inner.config,
                    "a CommitLog file",
                    self.inner.config.mapped_file_size_commit_log as u64,
                );
                return PutMessageResult::failed(PutMessageStatus::ServiceNotAvailable, self.inner.disk.remark());
            }
        };
        self.reput.wakeup();
        let mut status = PutMessageStatus::PutOk;
        match self.inner.config.flush_disk_type {
            FlushDiskType::SyncFlush => {
                let slot = Arc::new(OneShot::new());
                self.inner.group_commit.lock().push((appended.end_offset(), slot.clone()));
                self.flush_commit_log.wakeup();
                if wait_store_ok && slot.wait(Deadline::after(self.inner.config.sync_flush_timeout)) != Some(true) {
                    log::warn!("sync flush of offset {} did not finish in time", appended.end_offset());
                    status = PutMessageStatus::FlushDiskTimeout;
                }
            }
            FlushDiskType::AsyncFlush => {}
        }
        PutMessageResult { status, appended: Some(appended), remark: None }
    }

    /// Reads up to `max_msg_nums` messages of a queue from `offset`, as
    /// RocketMQ's getMessage does (statuses, next-offset correction, limits).
    pub fn get_message(
        &self,
        _group: &str,
        topic: &str,
        queue_id: i32,
        offset: i64,
        max_msg_nums: usize,
        filter: Option<&dyn MessageFilter>,
    ) -> GetMessageResult {
        let inner = &self.inner;
        let max_phy = inner.commit_log.max_offset();
        if queue_id < 0 {
            return GetMessageResult::empty(GetMessageStatus::NoMatchedLogicQueue, 0, 0, 0);
        }
        // As Apache, a queue read before its first message exists (empty).
        let cq = inner.find_or_create_queue(topic, queue_id);
        let min = cq.min_offset_in_queue();
        let max = cq.max_offset_in_queue();
        if max == 0 {
            return GetMessageResult::empty(GetMessageStatus::NoMessageInQueue, 0, min, max);
        }
        if offset < min {
            return GetMessageResult::empty(GetMessageStatus::OffsetTooSmall, min, min, max);
        }
        if offset == max {
            return GetMessageResult::empty(GetMessageStatus::OffsetOverflowOne, offset, min, max);
        }
        if offset > max {
            let next = if min == 0 { min } else { max };
            return GetMessageResult::empty(GetMessageStatus::OffsetOverflowBadly, next, min, max);
        }
        let Some((file, start, len)) = cq.units_from(offset) else {
            return GetMessageResult::empty(GetMessageStatus::OffsetFoundNull, cq.roll_next_file(offset), min, max);
        };
        let units = file.read(start, len).unwrap_or(&[]);
        let mut result = GetMessageResult::empty(GetMessageStatus::NoMatchedMessage, offset, min, max);
        let mut next_phy_file_start = i64::MIN;
        let mut max_phy_pulling = 0;
        // In bytes of units, as Apache counts it.
        let max_filter_count = 16000.max(max_msg_nums * CQ_STORE_UNIT_SIZE);
        let mut i = 0;
        while i < units.len() && i < max_filter_count {
            let Some(unit) = CqUnit::decode(&units[i..]) else { break };
            let logic = offset + (i / CQ_STORE_UNIT_SIZE) as i64;
            i += CQ_STORE_UNIT_SIZE;
            max_phy_pulling = unit.commit_log_offset;
            if next_phy_file_start != i64::MIN && unit.commit_log_offset < next_phy_file_start {
                continue;
            }
            let in_disk = max_phy.saturating_sub(unit.commit_log_offset) > inner.memory_window;
            if self.batch_full(unit.size.max(0) as usize, max_msg_nums, &result, in_disk) {
                i -= CQ_STORE_UNIT_SIZE;
                break;
            }
            if let Some(f) = filter
                && !f.is_matched_by_consume_queue(unit.tags_code)
            {
                continue;
            }
            if unit.size == i32::MAX {
                continue; // the filler where units were missing
            }
            let Some(record) =
                (unit.size > 0).then(|| inner.commit_log.slice(unit.commit_log_offset, unit.size as usize)).flatten()
            else {
                if unit.commit_log_offset < inner.commit_log.min_offset() {
                    // Its CommitLog file was cleaned: so were the ones before.
                    if result.messages.is_empty() {
                        result.status = GetMessageStatus::MessageWasRemoving;
                    }
                    next_phy_file_start = inner.commit_log.roll_next_file(unit.commit_log_offset);
                } else {
                    inner.bad_unit(topic, queue_id, logic, unit.commit_log_offset, "holds no such record");
                }
                continue;
            };
            if !message::layout::header_matches(&record, unit.size, queue_id, logic, unit.commit_log_offset) {
                inner.bad_unit(topic, queue_id, logic, unit.commit_log_offset, "holds another record");
                continue;
            }
            if !inner.verified(unit.commit_log_offset, &record) {
                inner.bad_unit(topic, queue_id, logic, unit.commit_log_offset, "holds a record that fails its check");
                continue;
            }
            if let Some(f) = filter
                && !f.is_matched_by_commit_log(&record)
            {
                continue;
            }
            result.buffer_total_size += record.len();
            result.messages.push(record);
            result.queue_offsets.push(logic);
            result.status = GetMessageStatus::Found;
            next_phy_file_start = i64::MIN;
        }
        result.next_begin_offset = offset + (i / CQ_STORE_UNIT_SIZE) as i64;
        result.suggest_pulling_from_slave = max_phy.saturating_sub(max_phy_pulling) > inner.memory_window;
        result
    }

    /// RocketMQ: isTheBatchFull.
    fn batch_full(&self, size: usize, max_msg_nums: usize, r: &GetMessageResult, in_disk: bool) -> bool {
        let c = &self.inner.config;
        let (count, bytes) = (r.messages.len(), r.buffer_total_size);
        if count == 0 || bytes == 0 {
            return false;
        }
        if max_msg_nums <= count {
            return true;
        }
        if in_disk {
            bytes + size > c.max_transfer_bytes_on_message_in_disk
                || count > c.max_transfer_count_on_message_in_disk - 1
        } else {
            bytes + size > c.max_transfer_bytes_on_message_in_memory
                || count > c.max_transfer_count_on_message_in_memory - 1
        }
    }

    /// The queue offset the next message of the queue will get (0 if none).
    pub fn max_offset_in_queue(&self, topic: &str, queue_id: i32) -> i64 {
        self.inner.consume_queue(topic, queue_id).map_or(0, |q| q.max_offset_in_queue())
    }

    pub fn min_offset_in_queue(&self, topic: &str, queue_id: i32) -> i64 {
        self.inner.consume_queue(topic, queue_id).map_or(0, |q| q.min_offset_in_queue())
    }

    /// The CommitLog offset of the message at a queue offset.
    pub fn commit_log_offset_in_queue(&self, topic: &str, queue_id: i32, offset: i64) -> Option<i64> {
        let u = self.inner.consume_queue(topic, queue_id)?.unit(offset)?;
        (u.size > 0 && u.size != i32::MAX).then_some(u.commit_log_offset)
    }

    /// The store time of the message at a queue offset.
    pub fn message_store_timestamp(&self, topic: &str, queue_id: i32, offset: i64) -> Option<i64> {
        let u = self.inner.consume_queue(topic, queue_id)?.unit(offset)?;
        self.inner.store_time(u.commit_log_offset, u.size)
    }

    /// The store time of the first message still in the queue.
    pub fn earliest_message_time(&self, topic: &str, queue_id: i32) -> Option<i64> {
        let min = self.min_offset_in_queue(topic, queue_id);
        self.message_store_timestamp(topic, queue_id, min)
    }

    /// The first queue offset whose message was stored at or after `timestamp`.
    pub fn offset_in_queue_by_time(&self, topic: &str, queue_id: i32, timestamp: i64) -> i64 {
        match self.inner.consume_queue(topic, queue_id) {
            Some(q) => q.offset_by_time(timestamp, |off, size| self.inner.store_time(off, size)),
            None => 0,
        }
    }

    /// The message at a CommitLog offset, decoded (VIEW_MESSAGE_BY_ID).
    pub fn look_message_by_offset(&self, commit_log_offset: i64) -> Option<MessageExt> {
        let rec = self.inner.checked_record(commit_log_offset)?;
        message::decode(&rec, true, false).ok()
    }

    /// The stored bytes of the message at a CommitLog offset.
    pub fn select_one_message_by_offset(&self, commit_log_offset: i64) -> Option<Bytes> {
        self.inner.checked_record(commit_log_offset)
    }

    pub fn max_phy_offset(&self) -> i64 {
        self.inner.commit_log.max_offset()
    }
    pub fn min_phy_offset(&self) -> i64 {
        self.inner.commit_log.min_offset()
    }
    /// The CommitLog offset up to which bytes are on disk (RocketMQ: flushedWhere).
    pub fn flushed_phy_offset(&self) -> i64 {
        self.inner.commit_log.flushed_where()
    }
    /// Bytes appended but not yet indexed.
    pub fn dispatch_behind_bytes(&self) -> i64 {
        self.inner.commit_log.max_offset() - self.inner.reput_from.load(Ordering::Acquire)
    }

    /// Every (topic, queue ids) that has a ConsumeQueue.
    pub fn queues(&self) -> Vec<(String, Vec<i32>)> {
        self.inner.queues.read().iter().map(|(t, m)| (t.clone(), m.keys().copied().collect())).collect()
    }

    /// Drops a topic's ConsumeQueues (its CommitLog records age out as usual).
    pub fn delete_topic(&self, topic: &str) -> io::Result<()> {
        let removed = self.inner.queues.write().remove(topic);
        if let Some(m) = removed {
            for (qid, q) in m {
                q.destroy()?;
                self.inner.commit_log.remove_queue_offset(topic, qid);
            }
        }
        let _ = std::fs::remove_dir(self.inner.config.consume_queue_dir().join(topic));
        Ok(())
    }

    /// Runs one round of file cleaning now; `force` ignores `deleteWhen`
    /// and the disk ratio (RocketMQ: executeDeleteFilesManually). Returns
    /// the CommitLog files deleted.
    pub fn clean_expired_files(&self, force: bool) -> io::Result<usize> {
        self.inner.clean_files(force)
    }

    /// Waits until everything appended so far is indexed (tests, shutdown).
    pub fn wait_dispatched(&self, timeout: Duration) -> bool {
        crate::common::wait::until(timeout, || self.dispatch_behind_bytes() <= 0)
    }

    /// Flushes everything, stops the threads, removes the `abort` file.
    pub fn shutdown(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.inner.shutting_down.store(true, Ordering::Release);
        self.scheduled.shutdown();
        self.disk_check.shutdown();
        self.reput.shutdown();
        self.flush_commit_log.shutdown();
        self.flush_consume_queue.shutdown();
        self.allocator.shutdown();
        // Clean only when everything is indexed and on disk: else the next
        // start must recover as after a crash, indexing again from the
        // checkpoint.
        let indexed = self.dispatch_behind_bytes() <= 0;
        let flushed = self.inner.flush_everything();
        if indexed && flushed && self.inner.commit_log.flushed_where() >= self.inner.commit_log.max_offset() {
            match crate::common::file::remove_marker(&self.inner.config.abort_path()) {
                Ok(()) => log::info!("message store shut down cleanly"),
                Err(e) => log::error!("cannot remove {}: {e}", self.inner.config.abort_path().display()),
            }
        } else {
            log::error!("message store could not index and flush everything; the next start recovers");
        }
        self.lock.lock().take();
    }
}

impl Drop for MessageStore {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Inner {
    pub(super) fn consume_queue(&self, topic: &str, queue_id: i32) -> Option<Arc<ConsumeQueue>> {
        self.queues.read().get(topic)?.get(&queue_id).cloned()
    }

    pub(super) fn find_or_create_queue(&self, topic: &str, queue_id: i32) -> Arc<ConsumeQueue> {
        if let Some(q) = self.consume_queue(topic, queue_id) {
            return q;
        }
        let mut t = self.queues.write();
        t.entry(topic.to_string())
            .or_default()
            .entry(queue_id)
            .or_insert_with(|| {
                Arc::new(ConsumeQueue::new(
                    &self.config.consume_queue_dir(),
                    topic,
                    queue_id,
                    self.config.mapped_file_size_consume_queue,
                ))
            })
            .clone()
    }

    /// Whether the record at `offset` may be returned: always when it was
    /// verified at start-up or appended since; else when its structure and
    /// CRC check out (damage in old files is never served).
    fn verified(&self, offset: i64, record: &[u8]) -> bool {
        offset >= self.verified_from.load(Ordering::Acquire) || message::parse_record(record, true).is_ok()
    }

    /// The message record at a CommitLog offset, checked as [`Inner::verified`]
    /// says; never a blank end-of-file record.
    fn checked_record(&self, offset: i64) -> Option<Bytes> {
        let record = self.commit_log.record_at(offset)?;
        let magic = message::record_size(&record).map(|(_, m)| m);
        (magic != Some(message::BLANK_MAGIC_CODE) && self.verified(offset, &record)).then_some(record)
    }

    /// A ConsumeQueue unit whose record is not what it says (a damaged
    /// index or file): skipped, never returned; logged at most every 10 s.
    fn bad_unit(&self, topic: &str, queue_id: i32, logic: i64, commit_log_offset: i64, what: &str) {
        let now = crate::common::time::now_millis();
        let last = self.bad_unit_logged.load(Ordering::Relaxed);
        if now - last >= 10_000
            && self.bad_unit_logged.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            log::error!(
                "{topic}-{queue_id} offset {logic}: the ConsumeQueue points at CommitLog offset {commit_log_offset}, \
                 which {what}; skipped (to rebuild the queue from the CommitLog, stop the broker and create \
                 consumequeue/{topic}/{queue_id}.rebuild)"
            );
        }
    }

    fn store_time(&self, commit_log_offset: i64, size: i32) -> Option<i64> {
        if size <= 0 || size == i32::MAX {
            return None;
        }
        let rec = self.commit_log.slice(commit_log_offset, size as usize)?;
        message::decode(&rec, false, false).ok().map(|m| m.store_timestamp)
    }
}

/// The machine's memory in bytes, from /proc/meminfo (8 GiB if unreadable).
fn total_physical_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("MemTotal:"))?.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(8 << 30, |kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::message::Message;

    fn store(dir: &std::path::Path) -> MessageStore {
        MessageStore::open(StoreConfig {
            mapped_file_size_commit_log: 16 * 1024,
            mapped_file_size_consume_queue: 100 * CQ_STORE_UNIT_SIZE,
            ..StoreConfig::at(dir)
        })
        .unwrap()
    }

    fn put(s: &MessageStore, topic: &str, n: usize) {
        let host = "127.0.0.1:10911".parse().unwrap();
        for i in 0..n {
            let m = Message::new(topic, format!("{topic}-{i:0200}"));
            assert!(s.put_message(&MessageToStore::from_message(&m, 0, 1, host, host), true).is_ok());
        }
        assert!(s.wait_dispatched(Duration::from_secs(5)));
    }

    #[test]
    fn message_was_removing_when_the_commit_log_file_is_gone_but_the_index_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        put(&s, "A", 10);
        put(&s, "B", 300);
        let gone = s.inner.commit_log.queue().delete_leading(1, Duration::ZERO, |_| true).unwrap();
        assert_eq!(gone, 1);
        let r = s.get_message("g", "A", 0, 0, 32, None);
        assert_eq!((r.status, r.next_begin_offset), (GetMessageStatus::MessageWasRemoving, 10));
    }

    #[test]
    fn offset_found_null_when_the_index_file_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        put(&s, "Q", 150);
        let cq = s.inner.consume_queue("Q", 0).unwrap();
        assert_eq!(cq.files().delete_leading(1, Duration::ZERO, |_| true).unwrap(), 1);
        let r = s.get_message("g", "Q", 0, 5, 32, None);
        assert_eq!((r.status, r.next_begin_offset), (GetMessageStatus::OffsetFoundNull, 100));
    }
}
