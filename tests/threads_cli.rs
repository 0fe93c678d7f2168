//! `rmq threads <pid>` reads another process's full thread names.

use std::process::Command;
use std::time::Duration;

use rmq::common::wait::{Deadline, Signal};
use std::sync::Arc;

#[test]
fn rmq_threads_shows_full_names_and_labels_of_another_process() {
    let stop = Arc::new(Signal::new());
    let s = stop.clone();
    let h = rmq::common::thread::spawn("ConsumeMessageThread_12_with_a_long_suffix", "test", move || {
        rmq::common::thread::doing("waiting on pullRequestQueue");
        s.wait(Deadline::after(Duration::from_secs(60)));
    })
    .unwrap();
    assert!(rmq::common::wait::until(Duration::from_secs(5), || rmq::common::thread_dump()
        .contains("waiting on pullRequestQueue")));
    let out =
        Command::new(env!("CARGO_BIN_EXE_rmq")).args(["threads", &std::process::id().to_string()]).output().unwrap();
    stop.set();
    h.join().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line = text
        .lines()
        .find(|l| l.starts_with("\"ConsumeMessageThread_12_with_a_long_suffix\""))
        .unwrap_or_else(|| panic!("full name missing:\n{text}"));
    assert!(line.contains(" tid=") && line.contains(" state=") && line.contains(" cpu="), "{line}");
    assert!(text.contains("doing: waiting on pullRequestQueue"), "{text}");
    assert!(text.contains("\"Attach Listener\""));
}

#[test]
fn rmq_threads_falls_back_to_kernel_names_and_rejects_missing_pids() {
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rmq")).args(["threads", &child.id().to_string()]).output().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("no rmq thread registry answered"), "{text}");
    assert!(text.contains("\"sleep\""), "{text}");

    let out = Command::new(env!("CARGO_BIN_EXE_rmq")).args(["threads", "999999999"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no process with pid"));
}
