//! `rmq standalone` as a user runs it: it serves, and SIGTERM stops it
//! cleanly (offsets and configs persisted, the store closed, exit 0).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rmq::remoting::code::{request, response};
use rmq::remoting::headers::*;
use rmq::remoting::{ClientConfig, RemotingClient, RemotingCommand};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `rmq standalone` on free ports with data under `dir` and `settings`
/// (`-o key=value`), once it says it serves; its ports.
fn start(dir: &std::path::Path, settings: &[&str]) -> (std::process::Child, u16, u16) {
    let (ns, br) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_rmq"))
        .args(["standalone", "--namesrv", &format!("127.0.0.1:{ns}"), "--broker", &format!("127.0.0.1:{br}")])
        .arg("--data-dir")
        .arg(dir)
        .args(settings.iter().flat_map(|kv| ["-o", kv]))
        .env("RMQ_THREADS_DIR", dir.join("threads"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 && !line.contains("thread dump:") {}
    assert!(line.contains("thread dump:"), "standalone did not start: {line}");
    // Keep reading: a closed pipe would fail the process's later prints.
    std::thread::spawn(move || for _ in out.lines() {});
    (child, ns, br)
}

#[test]
fn standalone_takes_broker_settings() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, _, _) = start(dir.path(), &["mappedFileSizeCommitLog=16777216", "diskSpaceWarningLevelRatio=95"]);
    let first = dir.path().join("broker/commitlog/00000000000000000000");
    let made = rmq::common::wait::until(Duration::from_secs(10), || first.exists());
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(made, "the first CommitLog file is made at start");
    assert_eq!(std::fs::metadata(&first).unwrap().len(), 16 << 20);
    let bad = Command::new(env!("CARGO_BIN_EXE_rmq"))
        .args(["standalone", "--namesrv", "127.0.0.1:0", "--broker", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.path())
        .args(["-o", "diskSpaceWarningLevelRatio=0.9"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("diskSpaceWarningLevelRatio"));
}

#[test]
fn standalone_serves_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, ns, br) = start(dir.path(), &[]);

    let c = RemotingClient::start(ClientConfig::default()).unwrap();
    let u = UpdateConsumerOffsetRequestHeader {
        bname: None,
        consumer_group: "g".into(),
        topic: "TBW102".into(),
        queue_id: 0,
        commit_offset: 7,
    };
    let r = c
        .invoke_sync(
            &format!("127.0.0.1:{br}"),
            RemotingCommand::request_with(request::UPDATE_CONSUMER_OFFSET, &u),
            Duration::from_secs(5),
        )
        .unwrap();
    assert_eq!(r.code, response::SUCCESS);
    assert!(dir.path().join("broker/abort").exists(), "a running store has its abort file");
    // A new store's CommitLog files are 128 MiB at most (each gets its
    // blocks when made), not Apache's 1 GiB.
    let first = dir.path().join("broker/commitlog/00000000000000000000");
    assert!(rmq::common::wait::until(Duration::from_secs(10), || first.exists()), "the first file is made at start");
    let size = std::fs::metadata(&first).unwrap().len();
    assert!((8 << 20..=128 << 20).contains(&size), "{size}");

    // rmq admin, as a user types it.
    let admin = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_rmq"))
            .arg("admin")
            .args(args)
            .args(["-n", &format!("127.0.0.1:{ns}")])
            .output()
            .unwrap();
        assert!(out.status.success(), "rmq admin {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let created = admin(&["updateTopic", "-c", "DefaultCluster", "-t", "CliTopic", "-r", "2", "-w", "2"]);
    assert!(created.contains("success"), "{created}");
    assert!(admin(&["topicList"]).contains("CliTopic"));
    let route = admin(&["topicRoute", "-t", "CliTopic"]);
    assert!(route.contains(&format!("127.0.0.1:{br}")) && route.contains("\"writeQueueNums\":2"), "{route}");
    assert!(admin(&["clusterList"]).contains("broker-a"));
    assert!(admin(&["topicStatus", "-t", "CliTopic"]).contains("broker-a"));
    admin(&["deleteTopic", "-c", "DefaultCluster", "-t", "CliTopic"]);
    assert!(!admin(&["topicList"]).contains("CliTopic"));

    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
    assert!(!dir.path().join("broker/abort").exists(), "the store was shut down cleanly");
    let offsets = std::fs::read_to_string(dir.path().join("broker/config/consumerOffset.json")).unwrap();
    assert!(offsets.contains("TBW102@g"), "{offsets}");
}
