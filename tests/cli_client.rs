//! `rmq produce`, `rmq consume` and `rmq bench` as a user runs them, against
//! a real name server and broker.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Output, Stdio};

use support::cluster::Cluster;

/// Runs `rmq <args> -n <the cluster's name server>`.
fn rmq(c: &Cluster, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rmq"))
        .args(args)
        .args(["-n", &c.ns_addr()])
        .env("RMQ_THREADS_DIR", c.dir.path().join("threads"))
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts a zero exit and returns stdout.
fn ok(o: Output, what: &str) -> String {
    assert!(o.status.success(), "{what}: {:?}\nstdout:\n{}\nstderr:\n{}", o.status, stdout(&o), stderr(&o));
    stdout(&o)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The last line of `out` that is a JSON object.
fn json_line(out: &str) -> serde_json::Value {
    let line = out.lines().rev().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("no JSON line in:\n{out}"));
    serde_json::from_str(line).unwrap()
}

#[test]
fn produce_then_consume_prints_every_message_once() {
    let c = Cluster::start();
    let out = ok(rmq(&c, &["produce", "-t", "CliT", "-c", "5", "--tag", "T1", "--keys", "k1"]), "produce");
    let sent: Vec<&str> = out.lines().filter(|l| l.starts_with("SEND_OK msgId=")).collect();
    assert_eq!(sent.len(), 5, "{out}");
    assert!(sent.iter().all(|l| l.contains("offsetMsgId=") && l.contains("queueOffset=")), "{out}");
    assert!(out.contains("5 messages: 5 ok, 0 failed"), "{out}");

    let out = ok(
        rmq(&c, &["consume", "-t", "CliT", "-g", "cli_g", "-c", "5", "--from", "first", "--timeout", "20"]),
        "consume",
    );
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("topic=CliT ")).collect();
    assert_eq!(lines.len(), 5, "{out}");
    for i in 0..5 {
        let body = format!("body=Hello RocketMQ {i}");
        assert_eq!(lines.iter().filter(|l| l.ends_with(&body)).count(), 1, "{body} once in:\n{out}");
    }
    assert!(lines.iter().all(|l| l.contains(" tags=T1 ") && l.contains(" keys=k1 ") && l.contains("reconsumeTimes=0")));
    // Each sent msgId comes back.
    for l in &sent {
        let id = l.split_whitespace().nth(1).unwrap();
        assert!(out.contains(id), "{id} not consumed:\n{out}");
    }

    // Async answers come from callbacks, oneway sends have none; the group's
    // committed offsets skip what it already consumed.
    let out = ok(rmq(&c, &["produce", "-t", "CliT", "-c", "3", "--mode", "async", "-b", "async body"]), "async");
    assert_eq!(out.lines().filter(|l| l.starts_with("SEND_OK ")).count(), 3, "{out}");
    let out = ok(rmq(&c, &["produce", "-t", "CliT", "-c", "2", "--mode", "oneway", "-s", "300"]), "oneway");
    assert_eq!(out.lines().filter(|l| *l == "sent").count(), 2, "{out}");
    let out = ok(rmq(&c, &["consume", "-t", "CliT", "-g", "cli_g", "-c", "5", "--timeout", "20"]), "consume again");
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("topic=CliT ")).collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert_eq!(lines.iter().filter(|l| l.ends_with("body=async body")).count(), 3, "{out}");
    assert_eq!(lines.iter().filter(|l| l.ends_with("... (300 bytes)")).count(), 2, "long bodies are cut: {out}");
}

#[test]
fn consume_times_out_and_produce_fails_without_a_name_server() {
    let c = Cluster::start();
    let o = rmq(&c, &["consume", "-t", "NothingHere", "-c", "1", "--timeout", "2"]);
    assert!(!o.status.success(), "no message within the timeout must fail");
    assert!(stderr(&o).contains("timed out"), "{}", stderr(&o));

    let dead = support::cluster::dead_addr();
    let o = Command::new(env!("CARGO_BIN_EXE_rmq"))
        .args(["produce", "-t", "CliT", "-n", &dead])
        .env("RMQ_THREADS_DIR", c.dir.path().join("threads"))
        .output()
        .unwrap();
    assert!(!o.status.success(), "a failed send must fail the command: {}", stdout(&o));
    assert!(stderr(&o).contains("failed"), "{}", stderr(&o));
}

#[test]
fn bench_producer_and_consumer_side_by_side() {
    let c = Cluster::start();
    // The topic exists before the consumer subscribes; its one message is
    // older than the consumer bench, which leaves it out.
    ok(rmq(&c, &["produce", "-t", "BenchT"]), "produce");
    let mut consumer = Command::new(env!("CARGO_BIN_EXE_rmq"))
        .args([
            "bench",
            "consumer",
            "-t",
            "BenchT",
            "-g",
            "bench_g",
            "-w",
            "4",
            "-d",
            "7",
            "--json",
            "-n",
            &c.ns_addr(),
        ])
        .env("RMQ_THREADS_DIR", c.dir.path().join("threads"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut consumer_out = BufReader::new(consumer.stdout.take().unwrap());
    let mut first = String::new();
    consumer_out.read_line(&mut first).unwrap();
    assert!(first.starts_with("Consume TPS: "), "{first}");

    let out = ok(rmq(&c, &["bench", "producer", "-t", "BenchT", "-d", "2", "-w", "4", "-s", "100", "--json"]), "bench");
    assert!(out.lines().filter(|l| l.starts_with("Send TPS: ")).count() >= 1, "{out}");
    let p = json_line(&out);
    assert_eq!(p["role"], "producer");
    let sent = p["total"].as_u64().unwrap();
    assert!(sent > 0, "{p}");
    assert_eq!(p["failures"], 0, "{p}");
    assert!(p["latency_ms"]["p99"].as_f64().unwrap() > 0.0, "{p}");
    assert!(p["latency_ms"]["max"].as_f64() >= p["latency_ms"]["p50"].as_f64(), "{p}");

    let mut rest = String::new();
    consumer_out.read_to_string(&mut rest).unwrap();
    assert!(consumer.wait().unwrap().success(), "{rest}");
    let s = json_line(&rest);
    assert_eq!(s["role"], "consumer");
    assert_eq!(s["total"], sent, "every bench message consumed once: {s}");
    assert_eq!(s["skipped"], 1, "the message from before the start is left out: {s}");
    let e2e = &s["latency_ms"];
    assert!(e2e["p50"].as_f64().unwrap() > 0.0 && e2e["max"].as_f64().unwrap() < 5000.0, "{s}");
}

#[test]
fn bench_consumer_drains_a_prefilled_backlog() {
    let c = Cluster::start();
    let out = ok(rmq(&c, &["bench", "consumer", "-t", "DrainT", "--prefill", "200", "-d", "30", "--json"]), "bench");
    assert!(out.contains("prefill: 200 messages"), "{out}");
    let s = json_line(&out);
    assert_eq!(s["role"], "consumer");
    assert_eq!(s["prefill"], 200, "{s}");
    assert_eq!(s["drained"], true, "{s}");
    assert!(s["total"].as_u64().unwrap() >= 200, "{s}");
    assert!(s["elapsed_secs"].as_f64().unwrap() < 30.0, "ends when drained: {s}");
}

/// A running `rmq consume` shows RocketMQ's client threads to `rmq threads`.
#[test]
fn a_running_consumer_process_has_rocketmqs_thread_names() {
    let c = Cluster::start();
    ok(rmq(&c, &["produce", "-t", "ThreadsT", "-c", "1"]), "produce");
    let threads_dir = c.dir.path().join("threads");
    let mut consumer = Command::new(env!("CARGO_BIN_EXE_rmq"))
        .args(["consume", "-t", "ThreadsT", "-g", "threads_g", "--from", "first", "-n", &c.ns_addr()])
        .env("RMQ_THREADS_DIR", &threads_dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(consumer.stdout.take().unwrap());
    let mut line = String::new();
    while line.is_empty() || !line.contains("ThreadsT") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "rmq consume ended before printing the message");
    }
    let dump = Command::new(env!("CARGO_BIN_EXE_rmq"))
        .args(["threads", &consumer.id().to_string()])
        .env("RMQ_THREADS_DIR", &threads_dir)
        .output()
        .unwrap();
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(consumer.id() as i32), nix::sys::signal::Signal::SIGTERM);
    let status = consumer.wait().unwrap();
    let text = stdout(&dump);
    for name in [
        "NettyClientSelector_1",
        "NettyClientWorkerThread_4",
        "NettyClientPublicExecutor_1",
        "ClientHouseKeepingService",
        "MQClientFactoryScheduledThread",
        "PullMessageService",
        "PullMessageServiceScheduledThread",
        "RebalanceService",
        "ConsumeMessageThread_1",
        "ConsumeMessageScheduledThread_1",
        "CleanExpireMsgScheduledThread_1",
        "Attach Listener",
    ] {
        assert!(text.contains(&format!("\"{name}\"")), "{name} missing from:\n{text}");
    }
    assert!(status.success(), "SIGTERM ends rmq consume cleanly: {status:?}");
}
