//! Crashes at the store's crash-sensitive steps, by failpoints (the `fail`
//! crate; built with `--features failpoints`, which `make test` turns on).
//! A child process runs the store under SYNC_FLUSH load and a failpoint
//! kills it (SIGKILL) at a chosen hit; the parent restarts the store and
//! checks the invariants (`support::store_child::check_invariants`): every
//! acknowledged message intact, no corrupt record returned, ConsumeQueues
//! agreeing with the CommitLog, committed offsets within their queues.
//!
//! The power-cut test goes further than SIGKILL, which keeps the page
//! cache: after the kill, every CommitLog page past what the store had
//! flushed is zeroed, filled with garbage or kept, at random, and the
//! ConsumeQueue units written since are dropped, as a power cut may leave
//! them.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;
use rmq::common::message;
use support::store_child::{self, Spec, check_invariants};

const CHILD: &str = "store_child";
const LIMIT: Duration = Duration::from_secs(60);

#[test]
#[ignore = "the child process of the crash tests"]
fn store_child() {
    store_child::child_main();
}

/// Runs a child until the failpoint kills it, then checks the store.
fn crash_at(point: &'static str, hit: u64, spec: Spec) {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec { kill_at: Some((point, hit)), ..spec };
    let said = store_child::spawn(CHILD, dir.path(), &spec).run(usize::MAX, None, LIMIT);
    assert_eq!(said.killed_at.as_deref(), Some(point), "the failpoint killed the child ({} acks)", said.acks());
    let checked = check_invariants(dir.path(), &spec, &[&said]);
    assert_eq!(checked.offsets_corrected, 0, "SIGKILL keeps the page cache: nothing dispatched is lost");
    // And the store goes on: a second crash after more puts loses nothing either.
    checked.store.shutdown();
    drop(checked);
    std::fs::write(dir.path().join("abort"), b"").unwrap();
    let spec = Spec { kill_at: None, ..spec };
    let more = store_child::spawn(CHILD, dir.path(), &spec).run(200, Some(Signal::SIGKILL), LIMIT);
    check_invariants(dir.path(), &spec, &[&said, &more]);
}

#[test]
fn crash_after_an_append_before_its_flush() {
    crash_at("commit_log::after_append", 300, Spec::default());
}

#[test]
fn crash_inside_a_flush() {
    crash_at("mapped_file::flush", 150, Spec::default());
}

#[test]
fn crash_during_a_file_roll() {
    crash_at("mapped_file_queue::roll", 4, Spec::default());
}

#[test]
fn crash_during_the_checkpoint_write() {
    crash_at("checkpoint::flush", 6, Spec::default());
}

#[test]
fn crash_during_a_config_file_rename() {
    crash_at("config::before_rename", 10, Spec { offsets: true, ..Spec::default() });
}

#[test]
fn crash_during_a_consume_queue_write() {
    crash_at("consume_queue::put", 400, Spec::default());
}

/// A crash, then a torn tail and a stale next file for recovery to cut,
/// and a second crash in the middle of that cut.
fn crash_during_recovery(point: &'static str) {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec::default();
    let said = store_child::spawn(CHILD, dir.path(), &spec).run(500, Some(Signal::SIGKILL), LIMIT);
    // Garbage right after the last record: what a torn write leaves.
    let mut files: Vec<_> =
        std::fs::read_dir(dir.path().join("commitlog")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let last = files.iter().rev().find(|f| std::fs::read(f).unwrap().iter().any(|&b| b != 0)).unwrap().clone();
    let mut bytes = std::fs::read(&last).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    let torn = (end + 64).min(bytes.len());
    bytes[end..torn].fill(0xAB);
    std::fs::write(&last, &bytes).unwrap();
    let recovering = Spec { kill_at: Some((point, 1)), ..spec.clone() };
    let during = store_child::spawn(CHILD, dir.path(), &recovering).run(usize::MAX, None, LIMIT);
    assert_eq!(during.killed_at.as_deref(), Some(point), "recovery was cut short by the failpoint: {during:?}");
    assert_eq!(during.acks(), 0);
    check_invariants(dir.path(), &spec, &[&said]);
}

#[test]
fn crash_while_recovery_zeroes_a_torn_tail() {
    crash_during_recovery("recovery::zero_tail");
}

#[test]
fn crash_while_recovery_deletes_files_past_the_end() {
    crash_during_recovery("recovery::delete_file");
}

/// Allocations fail as on a full disk (ENOSPC) after the first few: puts
/// are refused, the process lives, and everything acknowledged stays.
#[test]
fn no_space_for_new_files_refuses_puts_and_keeps_what_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec { fail_cfg: Some(("mapped_file::allocate", "6*off->return")), ..Spec::default() };
    let said = store_child::spawn(CHILD, dir.path(), &spec).run_until(
        |s| s.refused.get("ServiceNotAvailable").is_some_and(|&n| n >= 20),
        Some(Signal::SIGTERM),
        LIMIT,
    );
    assert!(said.acks() > 0, "puts were taken before the disk filled");
    assert!(said.clean, "the store stopped cleanly on SIGTERM: a full disk did not kill it");
    assert_eq!(said.refused.keys().collect::<Vec<_>>(), vec!["ServiceNotAvailable"], "{:?}", said.refused);
    let spec = Spec { fail_cfg: None, ..spec };
    check_invariants(dir.path(), &spec, &[&said]);
}

/// Every flush has a message appended while it runs, so the flushes never
/// catch up with the writes: the checkpoint's CommitLog time must follow
/// them all the same (it used to move only when a flush had caught up, and
/// under steady load stayed where it was, so crash recovery started far
/// back).
#[test]
fn the_checkpoint_follows_flushes_that_never_catch_up() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec { flush: rmq::store::FlushDiskType::AsyncFlush, race_flushes: true, ..Spec::default() };
    let checkpoint = dir.path().join("checkpoint");
    let physic = || {
        std::fs::read(&checkpoint)
            .ok()
            .filter(|b| b.len() >= 8)
            .map_or(0, |b| i64::from_be_bytes(b[0..8].try_into().unwrap()))
    };
    let started = rmq::common::time::now_millis();
    let said = store_child::spawn(CHILD, dir.path(), &spec).run_until(
        |s| s.acks() >= 200 && physic() > started,
        Some(Signal::SIGKILL),
        LIMIT,
    );
    assert!(physic() > started, "the checkpoint's CommitLog time stayed at {} after {} puts", physic(), said.acks());
}

/// A tiny deterministic generator for the power-cut damage.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// What a power cut may leave of the store after the CommitLog was flushed
/// up to `flushed`: each later CommitLog page zeroed, garbage, or kept (the
/// kernel may have written it back); ConsumeQueue units for unflushed
/// messages gone, and with `rng`'s say so every unit back to the
/// checkpoint's ConsumeQueue time.
fn power_cut(dir: &Path, cl_file: usize, flushed: i64, rng: &mut Rng) {
    let ckpt = std::fs::read(dir.join("checkpoint")).unwrap();
    let logics = i64::from_be_bytes(ckpt[8..16].try_into().unwrap());
    let mut commit_log: HashMap<i64, Vec<u8>> = HashMap::new();
    for e in std::fs::read_dir(dir.join("commitlog")).unwrap() {
        let p = e.unwrap().path();
        let start: i64 = p.file_name().unwrap().to_str().unwrap().parse().unwrap();
        commit_log.insert(start, std::fs::read(&p).unwrap());
    }
    let store_time = |offset: i64| -> Option<i64> {
        let file = commit_log.get(&(offset - offset % cl_file as i64))?;
        message::decode(&file[(offset % cl_file as i64) as usize..], false, false).ok().map(|m| m.store_timestamp)
    };
    // ConsumeQueues first, while the CommitLog bytes still tell store times.
    let back_to_checkpoint = rng.next().is_multiple_of(2);
    for topic in std::fs::read_dir(dir.join("consumequeue")).unwrap() {
        for queue in std::fs::read_dir(topic.unwrap().path()).unwrap() {
            for f in std::fs::read_dir(queue.unwrap().path()).unwrap() {
                let p = f.unwrap().path();
                let mut units = std::fs::read(&p).unwrap();
                let mut cut = None;
                for (i, u) in units.chunks_exact(20).enumerate() {
                    let offset = i64::from_be_bytes(u[0..8].try_into().unwrap());
                    let size = i32::from_be_bytes(u[8..12].try_into().unwrap());
                    if size <= 0 {
                        break;
                    }
                    let lost = offset + size as i64 > flushed
                        || (back_to_checkpoint && store_time(offset).is_none_or(|t| t >= logics));
                    if lost {
                        cut = Some(i * 20);
                        break;
                    }
                }
                if let Some(cut) = cut {
                    units[cut..].fill(0);
                    std::fs::write(&p, &units).unwrap();
                }
            }
        }
    }
    for (start, mut bytes) in commit_log {
        let from = (flushed - start).clamp(0, cl_file as i64) as usize;
        if from >= bytes.len() {
            continue;
        }
        let mut page_start = from;
        while page_start < bytes.len() {
            let page_end = ((page_start / 4096) + 1) * 4096;
            let range = page_start..page_end.min(bytes.len());
            match rng.next() % 3 {
                0 => bytes[range].fill(0),
                1 => bytes[range].iter_mut().for_each(|b| *b = rng.next() as u8),
                _ => {}
            }
            page_start = page_end;
        }
        std::fs::write(dir.join("commitlog").join(format!("{start:020}")), &bytes).unwrap();
    }
}

#[test]
fn a_power_cut_loses_no_acknowledged_message() {
    let rounds =
        [(40u64, 0x9E37_79B9_7F4A_7C15u64), (90, 7), (150, 0xDEAD_BEEF), (220, 3), (300, 0x1234_5678), (400, 99)];
    for (round, (flushes, seed)) in rounds.into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let spec = Spec {
            kill_at: Some(("store::commit_log_flushed", flushes)),
            offsets: true,
            cl_file: 32 * 1024,
            ..Spec::default()
        };
        let said = store_child::spawn(CHILD, dir.path(), &spec).run(usize::MAX, None, LIMIT);
        assert_eq!(said.killed_at.as_deref(), Some("store::commit_log_flushed"), "round {round}");
        let flushed = said.flushed.expect("the child reported its flushes");
        power_cut(dir.path(), spec.cl_file, flushed, &mut Rng(seed));
        let checked = check_invariants(dir.path(), &Spec { kill_at: None, ..spec.clone() }, &[&said]);
        assert!(checked.store.max_phy_offset() >= flushed, "round {round}: recovery cut flushed bytes");
        println!(
            "round {round}: {} acknowledged, flushed to {flushed}, recovered to {}, {} committed offsets corrected",
            said.acks(),
            checked.store.max_phy_offset(),
            checked.offsets_corrected
        );
    }
}
