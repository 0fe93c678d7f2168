//! A broker on a small, full filesystem: sends are refused with
//! SERVICE_NOT_AVAILABLE (14), the process stays up and serves what it
//! acknowledged, and sends are taken again once space returns. The test
//! mounts a 64 MiB tmpfs, which needs root; elsewhere it is skipped with a
//! message.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;
use rmq::common::wait;
use rmq::remoting::code::response;
use rmq::remoting::headers::SendMessageResponseHeader;
use support::broker_process::{BrokerProcess, free_broker_port};

const MIB: u64 = 1024 * 1024;
const TOPIC: &str = "DiskFull";
const QUEUES: i32 = 4;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: u64) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            // Not root, or no mount namespace rights.
            return Err(format!("mount failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

fn body(i: usize) -> Vec<u8> {
    let mut b = format!("message {i} ").into_bytes();
    b.resize(32 * 1024, b'0' + (i % 10) as u8);
    b
}

fn send(broker: &BrokerProcess, i: usize) -> rmq::remoting::RemotingCommand {
    broker.send(TOPIC, i as i32 % QUEUES, QUEUES, body(i))
}

fn fill(path: &PathBuf, bytes: u64) {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5au8; MIB as usize];
    for _ in 0..bytes / MIB {
        f.write_all(&chunk).unwrap();
    }
    f.sync_all().unwrap();
}

#[test]
fn a_full_disk_refuses_sends_with_code_14_and_takes_them_again_when_space_returns() {
    let fs = match Tmpfs::mount(64 * MIB) {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("skipped: the disk-full test mounts a small tmpfs ({why})");
            return;
        }
    };
    // Our own filler first, so space can come back without the broker
    // deleting anything.
    let filler = fs.path().join("filler");
    fill(&filler, 40 * MIB);
    let mut broker = BrokerProcess::start(
        &fs.path().join("store"),
        free_broker_port(),
        &[
            "flushDiskType=SYNC_FLUSH",
            "mappedFileSizeCommitLog=4194304",
            "mappedFileSizeConsumeQueue=6000",
            "cleanFileForciblyEnable=false",
            "autoCreateTopicEnable=true",
        ],
    );

    let mut acked: Vec<(i32, i64, usize)> = Vec::new();
    let mut refused = None;
    for i in 0..2000 {
        let r = send(&broker, i);
        if r.code == response::SUCCESS {
            let h: SendMessageResponseHeader = r.header().unwrap();
            acked.push((h.queue_id, h.queue_offset, i));
            continue;
        }
        assert_eq!(r.code, response::SERVICE_NOT_AVAILABLE, "send {i}: {:?}", r.remark);
        refused = r.remark;
        break;
    }
    let remark = refused.expect("the disk filled up and sends were refused");
    println!("{} sends taken, then refused: {remark}", acked.len());
    assert!(remark.contains("disk is full"), "{remark}");
    assert!(acked.len() > 10, "sends were taken before the disk filled ({})", acked.len());
    for i in 0..5 {
        assert_eq!(send(&broker, 10_000 + i).code, response::SERVICE_NOT_AVAILABLE);
    }
    assert!(broker.is_running(), "the broker is still running");

    // Everything acknowledged is readable, intact, at its offset.
    for qid in 0..QUEUES {
        let stored = broker.pull_all(TOPIC, qid);
        let want: Vec<_> = acked.iter().filter(|(q, _, _)| *q == qid).collect();
        assert_eq!(stored.len(), want.len(), "queue {qid}");
        for (m, (_, offset, i)) in stored.iter().zip(want) {
            assert_eq!(m.queue_offset, *offset);
            assert_eq!(&m.message.body[..], &body(*i)[..], "queue {qid} offset {offset}");
        }
    }

    std::fs::remove_file(&filler).unwrap();
    let mut taken = None;
    let again = wait::until(Duration::from_secs(20), || {
        let r = send(&broker, 20_000);
        taken = r.remark.clone();
        r.code == response::SUCCESS
    });
    assert!(again, "sends are taken again once space returns (last: {taken:?})");
    assert!(broker.is_running(), "the broker is still running");
    let status = broker.stop(Signal::SIGTERM);
    assert!(status.success(), "the broker stopped cleanly: {status:?}");
}
