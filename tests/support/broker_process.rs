//! The `rmq broker` binary in a child process, as a user starts it (no name
//! server), and a client that sends to it and reads its queues back.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use rmq::broker::processor::pull_flag;
use rmq::common::message;
use rmq::remoting::code::{request, response};
use rmq::remoting::headers::{PullMessageRequestHeader, SendMessageRequestHeaderV2};
use rmq::remoting::{ClientConfig, RemotingClient, RemotingCommand};

/// A free port whose port - 2 (the VIP channel's) is free too.
pub fn free_broker_port() -> u16 {
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if port > 3 && std::net::TcpListener::bind(("127.0.0.1", port - 2)).is_ok() {
            return port;
        }
    }
}

pub struct BrokerProcess {
    pub child: Child,
    pub addr: String,
    pub client: RemotingClient,
}

impl BrokerProcess {
    /// `rmq broker -o storePathRootDir=<store> -o listenPort=<port> ...`
    /// with `settings` (`key=value`) after those; returns once it listens.
    pub fn start(store: &Path, port: u16, settings: &[&str]) -> BrokerProcess {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rmq"));
        cmd.arg("broker");
        let base = [
            format!("storePathRootDir={}", store.display()),
            "brokerIP1=127.0.0.1".into(),
            format!("listenPort={port}"),
        ];
        for kv in base.iter().map(String::as_str).chain(settings.iter().copied()) {
            cmd.args(["-o", kv]);
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
        let client = RemotingClient::start(ClientConfig::default()).unwrap();
        BrokerProcess { child, addr, client }
    }

    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.id() as i32)
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Sends `signal` and waits for the process to end.
    pub fn stop(mut self, signal: nix::sys::signal::Signal) -> ExitStatus {
        nix::sys::signal::kill(self.pid(), signal).unwrap();
        self.child.wait().unwrap()
    }

    /// SEND_MESSAGE_V2 of `body` to `topic`'s queue `queue_id` (topics are
    /// auto-created from TBW102 with `queues` queues).
    pub fn send(&self, topic: &str, queue_id: i32, queues: i32, body: Vec<u8>) -> RemotingCommand {
        let h = SendMessageRequestHeaderV2 {
            producer_group: "pg".into(),
            topic: topic.into(),
            default_topic: "TBW102".into(),
            default_topic_queue_nums: queues,
            queue_id,
            born_timestamp: rmq::common::time::now_millis(),
            properties: Some(message::properties_to_string(&message::Properties::new())),
            ..Default::default()
        };
        let req = RemotingCommand::request_with(request::SEND_MESSAGE_V2, &h).with_body(body);
        self.client.invoke_sync(&self.addr, req, Duration::from_secs(10)).unwrap()
    }

    /// Every stored message of `topic`'s queue `qid`, from offset 0.
    pub fn pull_all(&self, topic: &str, qid: i32) -> Vec<message::MessageExt> {
        let mut out = Vec::new();
        loop {
            let h = PullMessageRequestHeader {
                consumer_group: "reader".into(),
                topic: topic.into(),
                queue_id: qid,
                queue_offset: out.len() as i64,
                max_msg_nums: 32,
                sys_flag: pull_flag::SUBSCRIPTION,
                subscription: Some("*".into()),
                expression_type: Some("TAG".into()),
                ..Default::default()
            };
            let req = RemotingCommand::request_with(request::PULL_MESSAGE, &h);
            let r = self.client.invoke_sync(&self.addr, req, Duration::from_secs(10)).unwrap();
            if r.code != response::SUCCESS {
                return out;
            }
            out.extend(message::decode_all(&r.body.bytes(), true).unwrap());
        }
    }
}
