//! A broker on a small, full filesystem: sends are refused with
//! SERVICE_NOT_AVAILABLE (14), the process stays up and serves what it
//! acknowledged, and sends are taken again once space returns. The test
//! mounts a 64 MiB tmpfs, which needs root; elsewhere it is skipped with a
//! message.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rmq::broker::processor::pull_flag;
use rmq::common::message;
use rmq::common::wait;
use rmq::remoting::code::{request, response};
use rmq::remoting::headers::{PullMessageRequestHeader, SendMessageRequestHeaderV2, SendMessageResponseHeader};
use rmq::remoting::{ClientConfig, RemotingClient, RemotingCommand};

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

/// A free port whose port - 2 (the VIP channel's) is free too.
fn free_broker_port() -> u16 {
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if port > 3 && std::net::TcpListener::bind(("127.0.0.1", port - 2)).is_ok() {
            return port;
        }
    }
}

/// `rmq broker` on the tmpfs, as a user starts it; its address.
fn start_broker(store: &Path) -> (Child, String) {
    let set = |kv: &str| ["-o".to_string(), kv.to_string()];
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rmq"));
    cmd.arg("broker");
    for kv in [
        format!("storePathRootDir={}", store.display()),
        "brokerIP1=127.0.0.1".into(),
        format!("listenPort={}", free_broker_port()),
        "flushDiskType=SYNC_FLUSH".into(),
        "mappedFileSizeCommitLog=4194304".into(),
        "mappedFileSizeConsumeQueue=6000".into(),
        "cleanFileForciblyEnable=false".into(),
        "autoCreateTopicEnable=true".into(),
    ] {
        cmd.args(set(&kv));
    }
    let mut child = cmd.env_remove("NAMESRV_ADDR").stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 && !line.contains("broker listening on") {
        line.clear();
    }
    let addr =
        line.split_whitespace().nth(3).unwrap_or_else(|| panic!("the broker did not start: {line:?}")).to_string();
    // Keep reading so the broker never blocks on a full pipe.
    std::thread::spawn(move || for _ in out.lines() {});
    (child, addr)
}

fn send(client: &RemotingClient, addr: &str, i: usize) -> RemotingCommand {
    let h = SendMessageRequestHeaderV2 {
        producer_group: "pg".into(),
        topic: TOPIC.into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: QUEUES,
        queue_id: i as i32 % QUEUES,
        born_timestamp: rmq::common::time::now_millis(),
        properties: Some(message::properties_to_string(&message::Properties::new())),
        ..Default::default()
    };
    let body = body(i);
    client
        .invoke_sync(
            addr,
            RemotingCommand::request_with(request::SEND_MESSAGE_V2, &h).with_body(body),
            Duration::from_secs(10),
        )
        .unwrap()
}

fn body(i: usize) -> Vec<u8> {
    let mut b = format!("message {i} ").into_bytes();
    b.resize(32 * 1024, b'0' + (i % 10) as u8);
    b
}

/// Every stored message of queue `qid`.
fn pull_all(client: &RemotingClient, addr: &str, qid: i32) -> Vec<message::MessageExt> {
    let mut out = Vec::new();
    loop {
        let h = PullMessageRequestHeader {
            consumer_group: "reader".into(),
            topic: TOPIC.into(),
            queue_id: qid,
            queue_offset: out.len() as i64,
            max_msg_nums: 32,
            sys_flag: pull_flag::SUBSCRIPTION,
            subscription: Some("*".into()),
            expression_type: Some("TAG".into()),
            ..Default::default()
        };
        let r = client
            .invoke_sync(addr, RemotingCommand::request_with(request::PULL_MESSAGE, &h), Duration::from_secs(10))
            .unwrap();
        if r.code != response::SUCCESS {
            return out;
        }
        out.extend(message::decode_all(&r.body.bytes(), true).unwrap());
    }
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
    let (mut broker, addr) = start_broker(&fs.path().join("store"));
    let client = RemotingClient::start(ClientConfig::default()).unwrap();

    let mut acked: Vec<(i32, i64, usize)> = Vec::new();
    let mut refused = None;
    for i in 0..2000 {
        let r = send(&client, &addr, i);
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
        assert_eq!(send(&client, &addr, 10_000 + i).code, response::SERVICE_NOT_AVAILABLE);
    }
    assert!(broker.try_wait().unwrap().is_none(), "the broker is still running");

    // Everything acknowledged is readable, intact, at its offset.
    for qid in 0..QUEUES {
        let stored = pull_all(&client, &addr, qid);
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
        let r = send(&client, &addr, 20_000);
        taken = r.remark.clone();
        r.code == response::SUCCESS
    });
    assert!(again, "sends are taken again once space returns (last: {taken:?})");
    assert!(broker.try_wait().unwrap().is_none(), "the broker is still running");

    nix::sys::signal::kill(nix::unistd::Pid::from_raw(broker.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = broker.wait().unwrap();
    assert!(status.success(), "the broker stopped cleanly: {status:?}");
}
