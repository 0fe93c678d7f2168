//! Disk space as a state of the store (RocketMQ: the DISK_FULL bit of
//! RunningFlags and the checks of CleanCommitLogService.isSpaceToDelete).
//!
//! The disk is marked full two ways: at once, when a file cannot get its
//! blocks (`posix_fallocate` says ENOSPC), and by `DiskCheckScheduledThread`,
//! which reads the disk every second and marks it full above
//! `diskSpaceWarningLevelRatio` (90 %). While full, puts are refused with
//! SERVICE_NOT_AVAILABLE; reads go on. The disk is OK again once it is at
//! or below `diskSpaceCleanForciblyRatio` (85 %, as Apache) and, after an
//! ENOSPC, has as much free as the failed allocation wanted.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use crate::store::config::StoreConfig;

/// How often `DiskCheckScheduledThread` reads the disk (Apache checks every
/// `cleanResourceInterval`, 10 s, on its cleaning thread).
pub const DISK_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Total and usable (by an unprivileged writer) bytes of the disk holding `path`.
pub fn space(path: &Path) -> Option<(u64, u64)> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    let total = s.blocks() as u64 * s.fragment_size() as u64;
    let usable = s.blocks_available() as u64 * s.fragment_size() as u64;
    (total > 0).then_some((total, usable))
}

/// The used fraction (0..1, rounded up to a whole percent) of the disk
/// holding `path`, as Apache's `UtilAll.getDiskPartitionSpaceUsedPercent`
/// computes it: used / (used + usable), so the root-reserved blocks count
/// as neither.
pub fn used_ratio(path: &Path) -> Option<f64> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    let frag = s.fragment_size() as u64;
    let (total, free, usable) =
        (s.blocks() as u64 * frag, s.blocks_free() as u64 * frag, s.blocks_available() as u64 * frag);
    let used = total.checked_sub(free)?;
    let entire = used + usable;
    if entire == 0 {
        return None;
    }
    Some((used * 100).div_ceil(entire) as f64 / 100.0)
}

/// The store's view of its disk.
#[derive(Default)]
pub struct DiskSpace {
    full: AtomicBool,
    /// Above `diskSpaceCleanForciblyRatio`, or short of what a failed
    /// allocation wanted: cleaning may remove unexpired files (with
    /// `cleanFileForciblyEnable`).
    clean_immediately: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The remark a refused put gets (made when the disk is marked full).
    remark: String,
    /// Free bytes the last failed allocation wanted.
    needed: u64,
    /// Counts ENOSPCs, so a check that read the disk before one does not
    /// clear it.
    no_space_seen: u64,
}

/// What a check reads of the disk.
struct Reading {
    percent: u64,
    usable: u64,
    /// No inode left: files cannot be created however many blocks are free.
    no_inodes: bool,
}

fn read(config: &StoreConfig) -> Option<Reading> {
    let dirs = [config.commit_log_dir(), config.consume_queue_dir()];
    let paths: Vec<&Path> =
        dirs.iter().map(|d| if d.exists() { d.as_path() } else { config.store_path_root_dir.as_path() }).collect();
    let percent = paths.iter().filter_map(|d| used_ratio(d)).map(|r| (r * 100.0).round() as u64).max()?;
    let usable = paths.iter().filter_map(|d| space(d)).map(|(_, u)| u).min().unwrap_or(0);
    let no_inodes = paths
        .iter()
        .filter_map(|d| nix::sys::statvfs::statvfs(*d).ok())
        .any(|s| s.files() > 0 && s.files_available() == 0);
    Some(Reading { percent, usable, no_inodes })
}

impl DiskSpace {
    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::Acquire)
    }

    pub fn clean_immediately(&self) -> bool {
        self.clean_immediately.load(Ordering::Acquire)
    }

    /// A file could not get `needed` bytes of blocks: full at once.
    pub fn mark_no_space(&self, config: &StoreConfig, what: &str, needed: u64) {
        let mut st = self.state.lock();
        st.needed = st.needed.max(needed);
        st.no_space_seen += 1;
        self.clean_immediately.store(true, Ordering::Release);
        self.set_full(&mut st, config, format!("no space left for {what}"));
    }

    fn set_full(&self, st: &mut State, config: &StoreConfig, why: String) {
        if !self.full.swap(true, Ordering::AcqRel) {
            log::error!("the disk is full ({why}): puts are refused until space is freed");
        }
        st.remark = remark(config, &why);
    }

    /// Reads the disk and updates the state (RocketMQ: isSpaceToDelete's
    /// marking). Returns the used ratio in percent, if the disk could be read.
    pub fn check(&self, config: &StoreConfig) -> Option<u64> {
        let seen = self.state.lock().no_space_seen;
        let r = read(config)?;
        let mut st = self.state.lock();
        let warning = config.disk_space_warning_level_ratio;
        let forcibly = config.disk_space_clean_forcibly_ratio;
        let short = r.usable < st.needed;
        if r.percent > warning {
            self.clean_immediately.store(true, Ordering::Release);
            self.set_full(&mut st, config, format!("{}% used, above diskSpaceWarningLevelRatio {warning}%", r.percent));
        } else if r.no_inodes {
            self.set_full(&mut st, config, "no inode left".into());
        } else if r.percent > forcibly || short {
            self.clean_immediately.store(true, Ordering::Release);
        } else {
            self.clean_immediately.store(false, Ordering::Release);
            if st.no_space_seen == seen {
                st.needed = 0;
                if self.full.swap(false, Ordering::AcqRel) {
                    log::info!("the disk has room again ({}% used): puts are taken again", r.percent);
                }
            }
        }
        Some(r.percent)
    }

    /// The remark of a put refused because the disk is full.
    pub fn remark(&self) -> String {
        self.state.lock().remark.clone()
    }
}

/// Apache's remark for SERVICE_NOT_AVAILABLE, with the ratios of the
/// CommitLog, ConsumeQueue and index disks, and why the disk is full.
fn remark(config: &StoreConfig, why: &str) -> String {
    let ratio = |p: &Path| used_ratio(p).unwrap_or(-1.0);
    format!(
        "service not available now. It may be caused by one of the following reasons: the broker's disk is full \
         [CL: {:5.2} CQ: {:5.2} INDEX: {:5.2}] ({why}), messages are put to the slave, message store has been \
         shut down, etc.",
        ratio(&config.commit_log_dir()),
        ratio(&config.consume_queue_dir()),
        ratio(&config.store_path_root_dir.join("index")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_above_the_warning_ratio_and_ok_again_at_the_clean_forcibly_ratio() {
        let dir = tempfile::tempdir().unwrap();
        let percent = (used_ratio(dir.path()).unwrap() * 100.0).round() as u64;
        let mut config = StoreConfig::at(dir.path());
        let d = DiskSpace::default();
        config.disk_space_warning_level_ratio = percent.saturating_sub(1);
        config.disk_space_clean_forcibly_ratio = percent.saturating_sub(2);
        assert_eq!(d.check(&config), Some(percent));
        assert!(d.is_full() && d.clean_immediately());
        assert!(d.remark().contains("the broker's disk is full [CL:"), "{}", d.remark());

        config.disk_space_warning_level_ratio = 100;
        config.disk_space_clean_forcibly_ratio = percent;
        d.check(&config);
        assert!(!d.is_full() && !d.clean_immediately(), "at the clean-forcibly ratio the disk is OK");

        d.mark_no_space(&config, "a CommitLog file", u64::MAX);
        assert!(d.is_full(), "ENOSPC marks it full at once");
        d.check(&config);
        assert!(d.is_full(), "not OK until what the failed allocation wanted is free");
        assert!(d.clean_immediately(), "short of what it wanted: cleaning may free it");
        assert!(d.remark().contains("no space left for a CommitLog file"));
    }
}
