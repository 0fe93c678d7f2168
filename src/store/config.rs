//! Store settings, under Apache RocketMQ's `MessageStoreConfig` key names.

use std::path::PathBuf;
use std::time::Duration;

/// ASYNC_FLUSH or SYNC_FLUSH (RocketMQ: FlushDiskType).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushDiskType {
    AsyncFlush,
    SyncFlush,
}

impl FlushDiskType {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "ASYNC_FLUSH" => Some(FlushDiskType::AsyncFlush),
            "SYNC_FLUSH" => Some(FlushDiskType::SyncFlush),
            _ => None,
        }
    }
}

/// RocketMQ: MessageStoreConfig. Field comments give the Apache key.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// storePathRootDir: holds `commitlog/`, `consumequeue/`, `checkpoint`, `abort`, `config/`.
    pub store_path_root_dir: PathBuf,
    /// mappedFileSizeCommitLog, 1 GiB.
    pub mapped_file_size_commit_log: usize,
    /// mappedFileSizeConsumeQueue, 300,000 units of 20 bytes.
    pub mapped_file_size_consume_queue: usize,
    /// flushDiskType.
    pub flush_disk_type: FlushDiskType,
    /// flushIntervalCommitLog, 500 ms.
    pub flush_interval_commit_log: Duration,
    /// flushCommitLogLeastPages, 4.
    pub flush_commit_log_least_pages: usize,
    /// flushCommitLogThoroughInterval, 10 s.
    pub flush_commit_log_thorough_interval: Duration,
    /// flushIntervalConsumeQueue, 1 s.
    pub flush_interval_consume_queue: Duration,
    /// flushConsumeQueueLeastPages, 2.
    pub flush_consume_queue_least_pages: usize,
    /// flushConsumeQueueThoroughInterval, 60 s.
    pub flush_consume_queue_thorough_interval: Duration,
    /// syncFlushTimeout, 5 s.
    pub sync_flush_timeout: Duration,
    /// maxMessageSize, 4 MiB.
    pub max_message_size: usize,
    /// checkCRCOnRecover.
    pub check_crc_on_recover: bool,
    /// maxTransferBytesOnMessageInMemory, 256 KiB.
    pub max_transfer_bytes_on_message_in_memory: usize,
    /// maxTransferCountOnMessageInMemory, 32.
    pub max_transfer_count_on_message_in_memory: usize,
    /// maxTransferBytesOnMessageInDisk, 64 KiB.
    pub max_transfer_bytes_on_message_in_disk: usize,
    /// maxTransferCountOnMessageInDisk, 8.
    pub max_transfer_count_on_message_in_disk: usize,
    /// accessMessageInMemoryMaxRatio, 40 (% of physical memory).
    pub access_message_in_memory_max_ratio: u64,
    /// fileReservedTime, 72 hours.
    pub file_reserved_time: Duration,
    /// deleteWhen, "04": the hours (`;`-separated) at which expired files go.
    pub delete_when: String,
    /// diskMaxUsedSpaceRatio, 75 (%, kept within 10..95 as Apache): above
    /// it expired files go at once, not only at `deleteWhen`.
    pub disk_max_used_space_ratio: u64,
    /// diskSpaceWarningLevelRatio, 90 (%): above it the disk is marked full
    /// and puts are refused (a RocketMQ 5 key; 4.9 sets the fraction with
    /// `-Drocketmq.broker.diskSpaceWarningLevelRatio`).
    pub disk_space_warning_level_ratio: u64,
    /// diskSpaceCleanForciblyRatio, 85 (%): above it cleaning removes the
    /// oldest files even when not expired, if `cleanFileForciblyEnable`;
    /// at or below it a full disk is OK again.
    pub disk_space_clean_forcibly_ratio: u64,
    /// cleanFileForciblyEnable, true.
    pub clean_file_forcibly_enable: bool,
    /// cleanResourceInterval, 10 s.
    pub clean_resource_interval: Duration,
    /// deleteCommitLogFilesInterval, 100 ms between two deletions.
    pub delete_commit_log_files_interval: Duration,
    /// warmMapedFileEnable: pre-fault every page of a new CommitLog file in
    /// the background so appends never take a page fault. Off, as Apache's:
    /// pre-faulting dirties the whole file, and writing back a GiB of zeros
    /// beside the real data measured worse end-to-end tails and drains.
    pub warm_mapped_file_enable: bool,
    /// messageDelayLevel: delay of each level, used to stamp delayed messages'
    /// delivery time into the ConsumeQueue.
    pub message_delay_level: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            store_path_root_dir: dirs_home().join("store"),
            mapped_file_size_commit_log: 1024 * 1024 * 1024,
            mapped_file_size_consume_queue: 300_000 * 20,
            flush_disk_type: FlushDiskType::AsyncFlush,
            flush_interval_commit_log: Duration::from_millis(500),
            flush_commit_log_least_pages: 4,
            flush_commit_log_thorough_interval: Duration::from_secs(10),
            flush_interval_consume_queue: Duration::from_secs(1),
            flush_consume_queue_least_pages: 2,
            flush_consume_queue_thorough_interval: Duration::from_secs(60),
            sync_flush_timeout: Duration::from_secs(5),
            max_message_size: 4 * 1024 * 1024,
            check_crc_on_recover: true,
            max_transfer_bytes_on_message_in_memory: 256 * 1024,
            max_transfer_count_on_message_in_memory: 32,
            max_transfer_bytes_on_message_in_disk: 64 * 1024,
            max_transfer_count_on_message_in_disk: 8,
            access_message_in_memory_max_ratio: 40,
            file_reserved_time: Duration::from_secs(72 * 3600),
            delete_when: "04".into(),
            disk_max_used_space_ratio: 75,
            disk_space_warning_level_ratio: 90,
            disk_space_clean_forcibly_ratio: 85,
            clean_file_forcibly_enable: true,
            clean_resource_interval: Duration::from_secs(10),
            delete_commit_log_files_interval: Duration::from_millis(100),
            warm_mapped_file_enable: false,
            message_delay_level: "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h".into(),
        }
    }
}

fn dirs_home() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."))
}

impl StoreConfig {
    /// A config rooted at `dir` with everything else default.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        StoreConfig { store_path_root_dir: dir.into(), ..Default::default() }
    }
    pub fn commit_log_dir(&self) -> PathBuf {
        self.store_path_root_dir.join("commitlog")
    }
    pub fn consume_queue_dir(&self) -> PathBuf {
        self.store_path_root_dir.join("consumequeue")
    }
    pub fn checkpoint_path(&self) -> PathBuf {
        self.store_path_root_dir.join("checkpoint")
    }
    pub fn abort_path(&self) -> PathBuf {
        self.store_path_root_dir.join("abort")
    }

    /// Sets the setting named by its Apache key (as in `broker.conf`).
    /// `Ok(false)`: not a store key; `Err`: a store key with a bad value,
    /// naming both.
    pub fn apply(&mut self, key: &str, value: &str) -> Result<bool, String> {
        let v = value.trim();
        let bad = |what: &str| format!("{key}={value:?}: expected {what}");
        let num = |what: &str| v.parse::<u64>().map_err(|_| bad(what));
        let percent = || {
            num("a whole percentage, 0 to 100")
                .and_then(|p| if p <= 100 { Ok(p) } else { Err(bad("a whole percentage, 0 to 100")) })
        };
        let flag = || match v {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(bad("true or false")),
        };
        let ms = |n: u64| Duration::from_millis(n);
        match key {
            "storePathRootDir" => self.store_path_root_dir = PathBuf::from(v),
            "mappedFileSizeCommitLog" => self.mapped_file_size_commit_log = num("a size in bytes")? as usize,
            "mappedFileSizeConsumeQueue" => self.mapped_file_size_consume_queue = num("a size in bytes")? as usize,
            "flushDiskType" => {
                self.flush_disk_type = FlushDiskType::parse(v).ok_or_else(|| bad("ASYNC_FLUSH or SYNC_FLUSH"))?
            }
            "flushIntervalCommitLog" => self.flush_interval_commit_log = ms(num("milliseconds")?),
            "flushCommitLogLeastPages" => self.flush_commit_log_least_pages = num("a page count")? as usize,
            "flushCommitLogThoroughInterval" => self.flush_commit_log_thorough_interval = ms(num("milliseconds")?),
            "flushIntervalConsumeQueue" => self.flush_interval_consume_queue = ms(num("milliseconds")?),
            "flushConsumeQueueLeastPages" => self.flush_consume_queue_least_pages = num("a page count")? as usize,
            "flushConsumeQueueThoroughInterval" => {
                self.flush_consume_queue_thorough_interval = ms(num("milliseconds")?)
            }
            "syncFlushTimeout" => self.sync_flush_timeout = ms(num("milliseconds")?),
            "maxMessageSize" => self.max_message_size = num("a size in bytes")? as usize,
            "checkCRCOnRecover" => self.check_crc_on_recover = flag()?,
            "maxTransferBytesOnMessageInMemory" => {
                self.max_transfer_bytes_on_message_in_memory = num("a size in bytes")? as usize
            }
            "maxTransferCountOnMessageInMemory" => {
                self.max_transfer_count_on_message_in_memory = num("a count")?.max(1) as usize
            }
            "maxTransferBytesOnMessageInDisk" => {
                self.max_transfer_bytes_on_message_in_disk = num("a size in bytes")? as usize
            }
            "maxTransferCountOnMessageInDisk" => {
                self.max_transfer_count_on_message_in_disk = num("a count")?.max(1) as usize
            }
            "accessMessageInMemoryMaxRatio" => self.access_message_in_memory_max_ratio = num("a percentage")?,
            "fileReservedTime" => self.file_reserved_time = Duration::from_secs(num("hours")? * 3600),
            "deleteWhen" => self.delete_when = v.to_string(),
            "diskMaxUsedSpaceRatio" => self.disk_max_used_space_ratio = num("a percentage")?.clamp(10, 95),
            "diskSpaceWarningLevelRatio" => self.disk_space_warning_level_ratio = percent()?,
            "diskSpaceCleanForciblyRatio" => self.disk_space_clean_forcibly_ratio = percent()?,
            "cleanFileForciblyEnable" => self.clean_file_forcibly_enable = flag()?,
            "cleanResourceInterval" => self.clean_resource_interval = ms(num("milliseconds")?.max(1)),
            "deleteCommitLogFilesInterval" => self.delete_commit_log_files_interval = ms(num("milliseconds")?),
            "warmMapedFileEnable" => self.warm_mapped_file_enable = flag()?,
            "messageDelayLevel" => {
                parse_delay_levels(v).map_err(|e| format!("{key}: {e}"))?;
                self.message_delay_level = v.to_string()
            }
            _ => return Ok(false),
        }
        if self.mapped_file_size_consume_queue < 20 || self.mapped_file_size_commit_log < 4096 {
            return Err(format!("{key}={value:?}: file sizes must be at least 4096 (CommitLog) and 20 (ConsumeQueue)"));
        }
        Ok(true)
    }

    /// The delay of each level (1-based) from `message_delay_level`.
    pub fn delay_levels(&self) -> Result<Vec<Duration>, String> {
        parse_delay_levels(&self.message_delay_level)
    }
}

/// Parses `1s 5s 10s 30s 1m ... 2h` (units s, m, h, d).
pub fn parse_delay_levels(s: &str) -> Result<Vec<Duration>, String> {
    s.split_whitespace()
        .map(|item| {
            let (num, unit) = item.split_at(item.len().saturating_sub(1));
            let n: u64 = num.parse().map_err(|_| format!("bad delay level {item:?}"))?;
            let secs = match unit {
                "s" => 1,
                "m" => 60,
                "h" => 3600,
                "d" => 86400,
                _ => return Err(format!("bad delay level unit in {item:?} (use s, m, h or d)")),
            };
            Ok(Duration::from_secs(n * secs))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apache_delay_levels_parse() {
        let l = StoreConfig::default().delay_levels().unwrap();
        assert_eq!(l.len(), 18);
        assert_eq!(l[0], Duration::from_secs(1));
        assert_eq!(l[17], Duration::from_secs(7200));
        assert!(parse_delay_levels("1x").is_err());
        assert!(parse_delay_levels("s").is_err());
    }

    #[test]
    fn apache_keys_set_fields_and_bad_values_name_the_key() {
        let mut c = StoreConfig::default();
        assert_eq!(c.apply("flushDiskType", "SYNC_FLUSH"), Ok(true));
        assert_eq!(c.flush_disk_type, FlushDiskType::SyncFlush);
        assert_eq!(c.apply("mappedFileSizeCommitLog", "1048576"), Ok(true));
        assert_eq!(c.mapped_file_size_commit_log, 1 << 20);
        assert_eq!(c.apply("fileReservedTime", "48"), Ok(true));
        assert_eq!(c.file_reserved_time, Duration::from_secs(48 * 3600));
        assert_eq!(c.apply("brokerName", "x"), Ok(false));
        let e = c.apply("flushDiskType", "SOMETIMES").unwrap_err();
        assert!(e.contains("flushDiskType") && e.contains("SYNC_FLUSH"), "{e}");
        assert!(c.apply("syncFlushTimeout", "-1").unwrap_err().contains("syncFlushTimeout"));
        assert!(c.apply("messageDelayLevel", "1s 1q").is_err());
        assert_eq!(c.apply("diskSpaceWarningLevelRatio", "80"), Ok(true));
        assert_eq!(c.disk_space_warning_level_ratio, 80);
        assert!(c.apply("diskSpaceWarningLevelRatio", "0.9").unwrap_err().contains("whole percentage"));
        assert!(c.apply("diskSpaceCleanForciblyRatio", "101").is_err());
        assert_eq!(c.apply("cleanFileForciblyEnable", "false"), Ok(true));
        assert!(!c.clean_file_forcibly_enable);
        assert_eq!(c.apply("diskMaxUsedSpaceRatio", "99"), Ok(true));
        assert_eq!(c.disk_max_used_space_ratio, 95, "kept within 10..95 as Apache");
    }
}
