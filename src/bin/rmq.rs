//! `rmq`: the one command-line tool.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// mimalloc instead of glibc's malloc: allocation was a fifth of the CPU
/// of a send under load (measured with perf), and mimalloc's thread-local
/// free lists halve that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use rmq::client::config::ClientConfig;
use rmq::client::consumer::{
    ConsumeConcurrentlyStatus, ConsumeFromWhere, ConsumeOrderlyStatus, MessageListener, MessageModel, PushConsumer,
    PushConsumerConfig,
};
use rmq::client::producer::{Producer, ProducerConfig, SendResult, SendStatus};
use rmq::common::message::{Message, MessageExt};
use rmq::common::wait::{Deadline, Signal};

#[derive(Parser)]
#[command(name = "rmq", version, about = "An Apache RocketMQ 4.x compatible messaging system")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Administration, named and flagged like Apache's mqadmin.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// The name server (default 127.0.0.1:9876).
    Namesrv {
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:9876")]
        listen: String,
        /// Where the KV config is kept (kvConfigPath).
        #[arg(long, default_value = "./data/namesrv/kvConfig.json")]
        kv_config_path: std::path::PathBuf,
    },
    /// Name server + broker in one process (auto-creation on, data under
    /// ./data, CommitLog files of 128 MiB at most: see the README).
    Standalone {
        /// Name server listen address.
        #[arg(long, default_value = "127.0.0.1:9876")]
        namesrv: String,
        /// Broker listen address (the VIP port is this port - 2).
        #[arg(long, default_value = "127.0.0.1:10911")]
        broker: String,
        /// Where the name server's and the broker's data go.
        #[arg(long, default_value = "./data")]
        data_dir: std::path::PathBuf,
        /// Broker settings, `key=value` (broker.conf keys), applied last.
        #[arg(short = 'o', long = "set")]
        overrides: Vec<String>,
    },
    /// A broker, configured by an Apache-style broker.conf.
    Broker {
        /// The properties file (brokerName, namesrvAddr, listenPort, storePathRootDir, ...).
        #[arg(short = 'c', long = "config")]
        config: Option<std::path::PathBuf>,
        /// Overrides, `key=value`, applied after the file.
        #[arg(short = 'o', long = "set")]
        overrides: Vec<String>,
    },
    /// Print a jstack-like dump of a process's threads (full RocketMQ names,
    /// state, CPU time, what each is doing).
    Threads {
        /// Process id to dump.
        pid: u32,
    },
    /// Send messages: one line per message, then a summary; exits non-zero
    /// if any send failed.
    Produce(ProduceArgs),
    /// Consume messages with a push consumer and print one line per message.
    Consume(ConsumeArgs),
    /// Measure send or consume throughput and latency.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

/// How `rmq produce` sends.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SendMode {
    /// Wait for each answer.
    Sync,
    /// Answers arrive in callbacks; the command waits for all of them.
    Async,
    /// No answer.
    Oneway,
}

#[derive(Args)]
struct ProduceArgs {
    /// Name servers, `;`-separated (else NAMESRV_ADDR, else 127.0.0.1:9876).
    #[arg(short = 'n', long)]
    namesrv: Option<String>,
    /// The topic.
    #[arg(short = 't', long)]
    topic: String,
    /// The messages' tag.
    #[arg(long)]
    tag: Option<String>,
    /// The messages' keys, space-separated.
    #[arg(long)]
    keys: Option<String>,
    /// How many messages.
    #[arg(short = 'c', long, default_value_t = 1)]
    count: u64,
    /// The body of every message (default: "Hello RocketMQ <index>").
    #[arg(short = 'b', long, conflicts_with = "size")]
    body: Option<String>,
    /// A body of this many random letters instead.
    #[arg(short = 's', long)]
    size: Option<usize>,
    #[arg(long, value_enum, default_value_t = SendMode::Sync)]
    mode: SendMode,
    /// Producer group.
    #[arg(short = 'g', long, default_value = "rmq_cli_producer")]
    group: String,
}

/// Where a consumer group without a committed offset starts.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StartFrom {
    First,
    Last,
    /// At the first message stored at or after --timestamp.
    Timestamp,
}

#[derive(Args)]
struct ConsumeArgs {
    /// Name servers, `;`-separated (else NAMESRV_ADDR, else 127.0.0.1:9876).
    #[arg(short = 'n', long)]
    namesrv: Option<String>,
    /// The topic.
    #[arg(short = 't', long)]
    topic: String,
    /// Consumer group (its committed offsets win over --from).
    #[arg(short = 'g', long, default_value = "rmq_cli_consumer")]
    group: String,
    /// Tag expression: `*` or `TagA || TagB`.
    #[arg(short = 'e', long, default_value = "*")]
    expression: String,
    /// Consume each queue in order (queue locks on the broker).
    #[arg(long)]
    orderly: bool,
    /// Every consumer of the group gets every message (offsets kept locally).
    #[arg(long)]
    broadcast: bool,
    /// Exit after this many messages (default: run until SIGINT or SIGTERM).
    #[arg(short = 'c', long)]
    count: Option<u64>,
    /// Where a group without a committed offset starts.
    #[arg(long, value_enum, default_value_t = StartFrom::Last)]
    from: StartFrom,
    /// With --from timestamp: milliseconds since the epoch.
    #[arg(long, required_if_eq("from", "timestamp"))]
    timestamp: Option<i64>,
    /// Give up after this many seconds: non-zero exit if --count was not reached.
    #[arg(long)]
    timeout: Option<u64>,
}

/// `rmq bench` commands (RocketMQ: the example benchmark Producer and Consumer).
#[derive(Subcommand)]
enum BenchCommand {
    /// Sender threads each sending synchronously in a loop.
    Producer(BenchProducerArgs),
    /// A push consumer; end-to-end latency from the producer bench's send stamps.
    Consumer(BenchConsumerArgs),
}

#[derive(Args)]
struct BenchProducerArgs {
    /// Name servers, `;`-separated (else NAMESRV_ADDR, else 127.0.0.1:9876).
    #[arg(short = 'n', long)]
    namesrv: Option<String>,
    /// The topic (the broker creates BenchmarkTest with 1024 queues, as Apache's does).
    #[arg(short = 't', long, default_value = "BenchmarkTest")]
    topic: String,
    /// Sender threads.
    #[arg(short = 'w', long, default_value_t = 32)]
    threads: usize,
    /// Body size in bytes.
    #[arg(short = 's', long, default_value_t = 1024)]
    size: usize,
    /// Seconds to run; 0: until SIGINT or SIGTERM.
    #[arg(short = 'd', long, default_value_t = 10)]
    duration: u64,
    /// Messages per second over all threads; 0: as fast as possible.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Producer group.
    #[arg(short = 'g', long, default_value = "benchmark_producer")]
    group: String,
    /// Print the final summary as one JSON object line.
    #[arg(long)]
    json: bool,
}

/// Where the consumer bench's group starts when it has no committed offset.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BenchFrom {
    First,
    Last,
}

#[derive(Args)]
struct BenchConsumerArgs {
    /// Name servers, `;`-separated (else NAMESRV_ADDR, else 127.0.0.1:9876).
    #[arg(short = 'n', long)]
    namesrv: Option<String>,
    /// The topic (the broker creates BenchmarkTest with 1024 queues, as Apache's does).
    #[arg(short = 't', long, default_value = "BenchmarkTest")]
    topic: String,
    /// Consumer group.
    #[arg(short = 'g', long, default_value = "benchmark_consumer")]
    group: String,
    /// Consume threads.
    #[arg(short = 'w', long, default_value_t = 20)]
    threads: usize,
    /// Body size of the --prefill messages.
    #[arg(short = 's', long, default_value_t = 1024)]
    size: usize,
    /// Seconds to run; 0: until SIGINT or SIGTERM. Default 10, or with
    /// --prefill until the backlog is consumed.
    #[arg(short = 'd', long)]
    duration: Option<u64>,
    /// Where a group without a committed offset starts (default: last, or
    /// first with --prefill). With last, messages sent before the start are
    /// left out of the figures (a new group may still be handed them).
    #[arg(long, value_enum)]
    from: Option<BenchFrom>,
    /// First send this many messages (batches from 8 threads), then measure
    /// how fast the consumer drains them.
    #[arg(long, default_value_t = 0)]
    prefill: u64,
    /// Print the final summary as one JSON object line.
    #[arg(long)]
    json: bool,
}

/// `rmq admin` commands (RocketMQ: mqadmin sub-commands).
#[derive(Subcommand)]
#[allow(clippy::enum_variant_names)]
enum AdminCommand {
    /// Create or update a topic on a broker (-b) or every master of a cluster (-c).
    #[command(name = "updateTopic")]
    UpdateTopic {
        #[arg(short = 'n', long)]
        namesrv: Option<String>,
        #[arg(short = 't', long)]
        topic: String,
        #[arg(short = 'b', long)]
        broker: Option<String>,
        #[arg(short = 'c', long)]
        cluster: Option<String>,
        #[arg(short = 'r', long, default_value_t = 8)]
        read_queue_nums: i32,
        #[arg(short = 'w', long, default_value_t = 8)]
        write_queue_nums: i32,
        #[arg(short = 'p', long, default_value_t = 6)]
        perm: i32,
        #[arg(short = 'o', long, default_value_t = false)]
        order: bool,
    },
    /// Delete a topic from a cluster's brokers and the name servers.
    #[command(name = "deleteTopic")]
    DeleteTopic {
        #[arg(short = 'n', long)]
        namesrv: Option<String>,
        #[arg(short = 't', long)]
        topic: String,
        #[arg(short = 'c', long)]
        cluster: String,
    },
    /// Every topic the name servers know.
    #[command(name = "topicList")]
    TopicList {
        #[arg(short = 'n', long)]
        namesrv: Option<String>,
    },
    /// A topic's route.
    #[command(name = "topicRoute")]
    TopicRoute {
        #[arg(short = 'n', long)]
        namesrv: Option<String>,
        #[arg(short = 't', long)]
        topic: String,
    },
    /// A topic's queues with their min and max offsets.
    #[command(name = "topicStatus")]
    TopicStatus {
        #[arg(short = 'n', long)]
        namesrv: Option<String>,
        #[arg(short = 't', long)]
        topic: String,
    },
    /// Clusters and their brokers.
    #[command(name = "clusterList")]
    ClusterList {
        #[arg(short = 'n', long)]
        namesrv: Option<String>,
    },
    /// A broker's runtime information.
    #[command(name = "brokerStatus")]
    BrokerStatus {
        #[arg(short = 'n', long)]
        namesrv: Option<String>,
        #[arg(short = 'b', long)]
        broker: String,
    },
    /// A consumer group's progress per queue.
    #[command(name = "consumerProgress")]
    ConsumerProgress {
        #[arg(short = 'n', long)]
        namesrv: Option<String>,
        #[arg(short = 'g', long)]
        group: String,
    },
    /// A message by its offset message id.
    #[command(name = "queryMsgById")]
    QueryMsgById {
        #[arg(short = 'n', long)]
        namesrv: Option<String>,
        #[arg(short = 'i', long)]
        id: String,
    },
}

/// The name servers: -n, else NAMESRV_ADDR, else 127.0.0.1:9876.
fn namesrv_of(n: &Option<String>) -> String {
    n.clone().or_else(|| std::env::var("NAMESRV_ADDR").ok()).unwrap_or_else(|| "127.0.0.1:9876".into())
}

fn admin(cmd: AdminCommand) -> Result<String, String> {
    use rmq::client::admin::{self as a, Admin, Target};
    let connect = |n: &Option<String>| Admin::new(&namesrv_of(n)).map_err(|e| e.to_string());
    let e = |err: a::AdminError| err.to_string();
    Ok(match cmd {
        AdminCommand::UpdateTopic {
            namesrv,
            topic,
            broker,
            cluster,
            read_queue_nums,
            write_queue_nums,
            perm,
            order,
        } => {
            let target = match (broker, cluster) {
                (Some(b), _) => Target::Broker(b),
                (None, Some(c)) => Target::Cluster(c),
                (None, None) => return Err("updateTopic needs -b <broker addr> or -c <cluster>".into()),
            };
            let mut cfg = a::default_topic_config(&topic);
            cfg.read_queue_nums = read_queue_nums;
            cfg.write_queue_nums = write_queue_nums;
            cfg.perm = perm;
            cfg.order = order;
            let done = connect(&namesrv)?.update_topic(target, cfg.clone()).map_err(e)?;
            format!("create topic to {} success.\n{cfg:?}\n", done.join(", "))
        }
        AdminCommand::DeleteTopic { namesrv, topic, cluster } => {
            connect(&namesrv)?.delete_topic(&cluster, &topic).map_err(e)?;
            format!("delete topic [{topic}] from cluster [{cluster}] success.\n")
        }
        AdminCommand::TopicList { namesrv } => a::render_topic_list(&connect(&namesrv)?.topic_list().map_err(e)?),
        AdminCommand::TopicRoute { namesrv, topic } => {
            a::render_topic_route(&connect(&namesrv)?.topic_route(&topic).map_err(e)?)
        }
        AdminCommand::TopicStatus { namesrv, topic } => {
            a::render_topic_status(&connect(&namesrv)?.topic_status(&topic).map_err(e)?)
        }
        AdminCommand::ClusterList { namesrv } => {
            let adm = connect(&namesrv)?;
            let info = adm.cluster_info().map_err(e)?;
            let mut statuses = std::collections::BTreeMap::new();
            for d in info.broker_addr_table.values() {
                for addr in d.broker_addrs.values() {
                    if let Ok(st) = adm.broker_status(addr) {
                        statuses.insert(addr.clone(), st);
                    }
                }
            }
            a::render_cluster_list(&info, &statuses)
        }
        AdminCommand::BrokerStatus { namesrv, broker } => {
            a::render_broker_status(Some(&broker), &connect(&namesrv)?.broker_status(&broker).map_err(e)?)
        }
        AdminCommand::ConsumerProgress { namesrv, group } => {
            a::render_consumer_progress(&connect(&namesrv)?.consume_stats(&group).map_err(e)?, None)
        }
        AdminCommand::QueryMsgById { namesrv, id } => {
            a::render_message(&connect(&namesrv)?.query_msg_by_id(&id).map_err(e)?)
        }
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Servers log their progress; one-shot commands only problems.
    let level = match cli.command {
        Command::Admin { .. }
        | Command::Threads { .. }
        | Command::Produce(_)
        | Command::Consume(_)
        | Command::Bench { .. } => "warn",
        _ => "info",
    };
    // `rmq consume` leaves a listener call held on purpose (see `consume`);
    // the pool's warning about it would only confuse.
    let level = match cli.command {
        Command::Consume(_) => "warn,rmq::common::pool=error",
        _ => level,
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).init();
    match cli.command {
        Command::Admin { command } => match admin(command) {
            Ok(text) => {
                print!("{text}");
                if !text.ends_with('\n') {
                    println!();
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rmq admin: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Broker { config, overrides } => {
            match (shutdown_signals(), broker_from_config(config.as_deref(), &overrides)) {
                (signals, Ok(b)) => {
                    wait_for_signal(signals);
                    drop(b);
                    ExitCode::SUCCESS
                }
                (_, Err(e)) => {
                    eprintln!("rmq broker: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Namesrv { listen, kv_config_path } => {
            match (shutdown_signals(), start_namesrv(&listen, kv_config_path)) {
                (signals, Ok(ns)) => {
                    wait_for_signal(signals);
                    drop(ns);
                    ExitCode::SUCCESS
                }
                (_, Err(e)) => {
                    eprintln!("rmq namesrv: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Standalone { namesrv, broker, data_dir, overrides } => {
            match standalone(&namesrv, &broker, &data_dir, &overrides) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("rmq standalone: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Threads { pid } => match rmq::common::thread_dump_of(pid) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rmq threads: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Produce(args) => exit_code("produce", produce(args)),
        Command::Consume(args) => exit_code("consume", consume(args)),
        Command::Bench { command } => exit_code("bench", bench(command)),
    }
}

/// Success, or the error on stderr and a failure exit.
fn exit_code(command: &str, r: Result<(), String>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rmq {command}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a line to stdout; false when stdout is gone (e.g. a closed pipe),
/// where `println!` would panic.
fn out(line: &str) -> bool {
    writeln!(std::io::stdout().lock(), "{line}").is_ok()
}

fn client_config(namesrv: &Option<String>) -> ClientConfig {
    ClientConfig { namesrv_addr: Some(namesrv_of(namesrv)), ..Default::default() }
}

/// RocketMQ's name of a send status.
fn status_name(s: SendStatus) -> &'static str {
    match s {
        SendStatus::SendOk => "SEND_OK",
        SendStatus::FlushDiskTimeout => "FLUSH_DISK_TIMEOUT",
        SendStatus::FlushSlaveTimeout => "FLUSH_SLAVE_TIMEOUT",
        SendStatus::SlaveNotAvailable => "SLAVE_NOT_AVAILABLE",
    }
}

/// One sent message's line.
fn send_line(r: &SendResult) -> String {
    format!(
        "{} msgId={} offsetMsgId={} queue={}:{} queueOffset={}",
        status_name(r.status),
        r.msg_id,
        r.offset_msg_id,
        r.queue.broker_name,
        r.queue.queue_id,
        r.queue_offset
    )
}

/// `rmq produce`: sends `count` messages and prints each result; an error
/// when any send failed or did not end SEND_OK.
fn produce(a: ProduceArgs) -> Result<(), String> {
    let producer = Producer::new(ProducerConfig::new(&a.group), client_config(&a.namesrv));
    producer.start().map_err(|e| format!("cannot start the producer: {e}"))?;
    let fixed = a.body.map(bytes::Bytes::from).or_else(|| a.size.map(|n| rmq::bench::filled_body(n).into()));
    let (tx, rx) = crossbeam_channel::unbounded::<bool>();
    let begin = Instant::now();
    let (mut ok, mut failed, mut pending) = (0u64, 0u64, 0u64);
    for i in 0..a.count {
        let body = fixed.clone().unwrap_or_else(|| format!("Hello RocketMQ {i}").into());
        let mut msg = Message::new(a.topic.as_str(), body);
        if let Some(t) = &a.tag {
            msg.set_tags(t.as_str());
        }
        if let Some(k) = &a.keys {
            msg.set_keys(k.split_whitespace());
        }
        let sent = match a.mode {
            SendMode::Sync => producer.send(msg).map(|r| {
                out(&send_line(&r));
                r.status == SendStatus::SendOk
            }),
            SendMode::Async => {
                let tx = tx.clone();
                producer
                    .send_async(msg, move |r| {
                        let good = match r {
                            Ok(r) => out(&send_line(&r)) && r.status == SendStatus::SendOk,
                            Err(e) => {
                                eprintln!("send failed: {e}");
                                false
                            }
                        };
                        let _ = tx.send(good);
                    })
                    .map(|()| {
                        pending += 1;
                        true
                    })
            }
            SendMode::Oneway => producer.send_oneway(msg).map(|()| out("sent")),
        };
        match sent {
            Ok(true) if a.mode != SendMode::Async => ok += 1,
            Ok(true) => {}
            Ok(false) => failed += 1,
            Err(e) => {
                eprintln!("send failed: {e}");
                failed += 1;
            }
        }
    }
    // Every async send ends in its callback within the send timeout (3 s,
    // retries included); the margin covers the timeout scan.
    let deadline = Deadline::after(Duration::from_secs(30));
    while pending > 0 {
        match rx.recv_timeout(deadline.remaining()) {
            Ok(good) if good => ok += 1,
            Ok(_) => failed += 1,
            Err(_) => break,
        }
        pending -= 1;
    }
    if pending > 0 {
        eprintln!("{pending} async sends had no answer");
        failed += pending;
    }
    producer.shutdown();
    out(&format!("{} messages: {ok} ok, {failed} failed in {:.3} s", a.count, begin.elapsed().as_secs_f64()));
    if failed > 0 { Err(format!("{failed} of {} sends failed", a.count)) } else { Ok(()) }
}

/// At most this much of a body is printed.
const BODY_PRINT_LIMIT: usize = 200;

/// One consumed message's line; the body as UTF-8 (invalid bytes replaced)
/// with line breaks escaped, cut at [`BODY_PRINT_LIMIT`] bytes.
fn message_line(m: &MessageExt) -> String {
    let body = m.body();
    let shown = &body[..body.len().min(BODY_PRINT_LIMIT)];
    let mut text: String = String::from_utf8_lossy(shown)
        .chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c if c.is_control() => '?',
            c => c,
        })
        .collect();
    if body.len() > BODY_PRINT_LIMIT {
        text.push_str(&format!("... ({} bytes)", body.len()));
    }
    format!(
        "topic={} queueId={} queueOffset={} msgId={} offsetMsgId={} tags={} keys={} reconsumeTimes={} body={text}",
        m.topic(),
        m.queue_id,
        m.queue_offset,
        m.message.unique_key().unwrap_or(&m.msg_id),
        m.msg_id,
        m.tags().unwrap_or(""),
        m.keys().unwrap_or(""),
        m.reconsume_times,
    )
}

/// How long `rmq consume` lets the listener call it holds (see [`consume`])
/// keep the shutdown waiting.
const HELD_CALL_WAIT: Duration = Duration::from_millis(300);

/// `rmq consume`: prints each message (one consume thread, so lines come in
/// queue order) until `count` were printed, the timeout passes, or a signal
/// comes; then shuts the consumer down, which commits the offsets.
///
/// Exactly `count` messages are printed and acknowledged: a listener call
/// that comes after the count is held, so its messages are never
/// acknowledged unseen; the shutdown stops waiting for it after
/// [`HELD_CALL_WAIT`] and commits the offsets below it, and the process
/// exits with the call still held. The next consumer of the group gets
/// those messages.
fn consume(a: ConsumeArgs) -> Result<(), String> {
    let stop = Arc::new(Signal::new());
    stop_on_signal(stop.clone());
    let mut cfg = PushConsumerConfig::new(&a.group);
    cfg.message_model = if a.broadcast { MessageModel::Broadcasting } else { MessageModel::Clustering };
    cfg.consume_from_where = match a.from {
        StartFrom::First => ConsumeFromWhere::FirstOffset,
        StartFrom::Last => ConsumeFromWhere::LastOffset,
        StartFrom::Timestamp => ConsumeFromWhere::Timestamp,
    };
    if let Some(ts) = a.timestamp {
        cfg.consume_timestamp = ts;
    }
    cfg.consume_thread_min = 1;
    cfg.consume_message_batch_max_size = 1;
    cfg.await_termination = HELD_CALL_WAIT;
    let consumer = PushConsumer::new(cfg, client_config(&a.namesrv));
    consumer.subscribe(&a.topic, &a.expression).map_err(|e| format!("cannot subscribe: {e}"))?;
    let printed = Arc::new(AtomicU64::new(0));
    let show = {
        let (printed, stop, count) = (printed.clone(), stop.clone(), a.count);
        move |msgs: &[MessageExt]| {
            for m in msgs {
                let n = match count {
                    Some(c) => {
                        match printed.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < c).then_some(n + 1)) {
                            Ok(before) => before + 1,
                            Err(_) => loop {
                                // Past the count: held until the process exits.
                                std::thread::park();
                            },
                        }
                    }
                    None => printed.fetch_add(1, Ordering::AcqRel) + 1,
                };
                if !out(&message_line(m)) || count == Some(n) {
                    stop.set();
                }
            }
        }
    };
    consumer.register_message_listener(if a.orderly {
        MessageListener::orderly(move |msgs: &[MessageExt], _: &mut _| {
            show(msgs);
            ConsumeOrderlyStatus::Success
        })
    } else {
        MessageListener::concurrently(move |msgs: &[MessageExt], _: &mut _| {
            show(msgs);
            ConsumeConcurrentlyStatus::ConsumeSuccess
        })
    });
    consumer.start().map_err(|e| format!("cannot start the consumer: {e}"))?;
    let deadline = a.timeout.map(|t| Deadline::after(Duration::from_secs(t)));
    loop {
        let wait = deadline.unwrap_or_else(|| Deadline::after(Duration::from_secs(3600)));
        if stop.wait(wait) || deadline.is_some_and(|d| d.passed()) {
            break;
        }
    }
    consumer.shutdown();
    let n = printed.load(Ordering::Acquire);
    match a.count {
        Some(c) if n < c && !stop.is_set() => {
            Err(format!("timed out after {} s with {n} of {c} messages", a.timeout.unwrap_or(0)))
        }
        Some(c) if n < c => Err(format!("stopped with {n} of {c} messages")),
        _ => Ok(()),
    }
}

/// `rmq bench producer|consumer`: runs [`rmq::bench`] and prints its summary.
fn bench(cmd: BenchCommand) -> Result<(), String> {
    let stop = Arc::new(Signal::new());
    stop_on_signal(stop.clone());
    let mut stdout = std::io::stdout();
    let secs = |d: u64| (d > 0).then(|| Duration::from_secs(d));
    let (summary, json) = match cmd {
        BenchCommand::Producer(a) => {
            let cfg = rmq::bench::ProducerBench {
                namesrv: namesrv_of(&a.namesrv),
                topic: a.topic,
                group: a.group,
                threads: a.threads,
                size: a.size,
                duration: secs(a.duration),
                rate: a.rate,
            };
            (rmq::bench::run_producer(&cfg, stop, &mut stdout)?, a.json)
        }
        BenchCommand::Consumer(a) => {
            let from = a.from.unwrap_or(if a.prefill > 0 { BenchFrom::First } else { BenchFrom::Last });
            let cfg = rmq::bench::ConsumerBench {
                namesrv: namesrv_of(&a.namesrv),
                topic: a.topic,
                group: a.group,
                threads: a.threads,
                from: match from {
                    BenchFrom::First => ConsumeFromWhere::FirstOffset,
                    BenchFrom::Last => ConsumeFromWhere::LastOffset,
                },
                duration: match a.duration {
                    Some(d) => secs(d),
                    None if a.prefill > 0 => None,
                    None => secs(10),
                },
                prefill: a.prefill,
                size: a.size,
                skip_older: from == BenchFrom::Last && a.prefill == 0,
            };
            (rmq::bench::run_consumer(&cfg, stop, &mut stdout)?, a.json)
        }
    };
    out(&if json { summary.json() } else { summary.text() });
    Ok(())
}

/// Starts a name server.
fn start_namesrv(listen: &str, kv_config_path: std::path::PathBuf) -> Result<rmq::namesrv::NamesrvController, String> {
    let listen = listen.parse().map_err(|e| format!("bad address {listen:?}: {e}"))?;
    let cfg = rmq::namesrv::NamesrvConfig { listen, kv_config_path, ..Default::default() };
    let ns = rmq::namesrv::NamesrvController::start(cfg).map_err(|e| e.to_string())?;
    println!("name server listening on {}", ns.addr());
    Ok(ns)
}

/// Starts the name server and a broker using it, data under `data_dir`.
fn standalone(namesrv: &str, broker: &str, data_dir: &std::path::Path, overrides: &[String]) -> Result<(), String> {
    let signals = shutdown_signals();
    let ns = start_namesrv(namesrv, data_dir.join("namesrv").join("kvConfig.json"))?;
    let broker_addr: std::net::SocketAddr = broker.parse().map_err(|e| format!("bad address {broker:?}: {e}"))?;
    let mut cfg = rmq::broker::BrokerConfig {
        broker_ip1: broker_addr.ip().to_string(),
        listen_port: broker_addr.port(),
        namesrv_addr: Some(ns.addr().to_string()),
        auto_create_topic_enable: true,
        auto_create_subscription_group: true,
        ..Default::default()
    };
    cfg.store.store_path_root_dir = data_dir.join("broker");
    cfg.store.mapped_file_size_commit_log = standalone_commit_log_file_size(&cfg.store);
    for o in overrides {
        let (k, v) = rmq::broker::config::parse_override(o)?;
        if !cfg.apply(&k, &v)? {
            eprintln!("warning: unknown key {k:?} ignored");
        }
    }
    let b = start_broker(cfg)?;
    println!("data under {}", data_dir.display());
    println!("thread dump: rmq threads {}", std::process::id());
    wait_for_signal(signals);
    drop(b);
    drop(ns);
    Ok(())
}

/// The CommitLog file size of `rmq standalone`: that of the files already
/// there; for a new store 128 MiB, or an eighth of the disk when that is
/// less (at least 8 MiB). Every file gets its blocks when made, and the next
/// one is made ahead of time, so a 1 GiB file (Apache's size, the broker's
/// default) would take 2 GiB of a laptop's disk before the first message.
fn standalone_commit_log_file_size(store: &rmq::store::StoreConfig) -> usize {
    const MIB: u64 = 1024 * 1024;
    let existing = std::fs::read_dir(store.commit_log_dir()).ok().and_then(|entries| {
        entries.flatten().find_map(|e| {
            let named = e.file_name().to_str().is_some_and(|n| n.len() == 20 && n.bytes().all(|b| b.is_ascii_digit()));
            named.then(|| e.metadata().ok()).flatten().map(|m| m.len())
        })
    });
    if let Some(len) = existing.filter(|&l| l > 0) {
        return len as usize;
    }
    let disk = store.store_path_root_dir.ancestors().find_map(rmq::store::disk::space).map_or(u64::MAX, |(t, _)| t);
    ((disk / 8 / MIB * MIB).clamp(8 * MIB, 128 * MIB)) as usize
}

/// Starts a broker and says where it listens.
fn start_broker(cfg: rmq::broker::BrokerConfig) -> Result<rmq::broker::BrokerController, String> {
    let b = rmq::broker::BrokerController::start(cfg).map_err(|e| e.to_string())?;
    let a = b.addrs();
    println!("broker listening on {} and {} (VIP)", a[0], a.get(1).copied().unwrap_or(a[0]));
    Ok(b)
}

/// SIGINT and SIGTERM, caught from now on: a server takes them before it
/// starts, so one that comes while it starts stops it cleanly once started.
fn shutdown_signals() -> Option<signal_hook::iterator::Signals> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .map_err(|e| eprintln!("cannot watch for signals ({e}); stop with SIGKILL"))
        .ok()
}

/// Blocks until SIGINT or SIGTERM. The caller then shuts down gracefully;
/// a second signal meanwhile exits at once (the store recovers on the next
/// start), watched by the `ShutdownHook` thread (RocketMQ's name for it).
fn wait_for_signal(signals: Option<signal_hook::iterator::Signals>) {
    let Some(mut signals) = signals else {
        loop {
            std::thread::park();
        }
    };
    if let Some(sig) = signals.forever().next() {
        // Not println!: with stdout closed it would panic and skip the clean stop.
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), "signal {sig}: shutting down (a second signal exits at once)");
    }
    let _ = rmq::common::thread::spawn("ShutdownHook", "process", move || {
        if signals.forever().next().is_some() {
            eprintln!("second signal: exiting without a clean shutdown");
            std::process::exit(130);
        }
    });
}

/// Sets `stop` at the first SIGINT or SIGTERM, so a client command can shut
/// down gracefully; a second signal exits at once. The `ShutdownHook` thread
/// watches (as [`wait_for_signal`]'s does after the first signal).
fn stop_on_signal(stop: Arc<Signal>) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot watch for signals ({e}); stop with SIGKILL");
            return;
        }
    };
    let watching = rmq::common::thread::spawn("ShutdownHook", "process", move || {
        let mut signals = signals.forever();
        if let Some(sig) = signals.next() {
            eprintln!("signal {sig}: shutting down (a second signal exits at once)");
            stop.set();
        }
        if signals.next().is_some() {
            eprintln!("second signal: exiting without a clean shutdown");
            std::process::exit(130);
        }
    });
    if let Err(e) = watching {
        eprintln!("cannot watch for signals ({e}); stop with SIGKILL");
    }
}

/// Loads broker.conf (if given) and the overrides, warns about unknown keys.
fn broker_from_config(
    path: Option<&std::path::Path>,
    overrides: &[String],
) -> Result<rmq::broker::BrokerController, String> {
    let pairs = overrides.iter().map(|o| rmq::broker::config::parse_override(o)).collect::<Result<Vec<_>, _>>()?;
    let (cfg, warnings) = match path {
        Some(p) => rmq::broker::BrokerConfig::load(p, &pairs)?,
        None => {
            let mut cfg = rmq::broker::BrokerConfig::default();
            for (k, v) in &pairs {
                if !cfg.apply(k, v)? {
                    eprintln!("warning: unknown key {k:?} ignored");
                }
            }
            cfg.apply_env_defaults(std::env::var("NAMESRV_ADDR").ok())?;
            (cfg, Vec::new())
        }
    };
    for w in warnings {
        eprintln!("warning: {w}");
    }
    start_broker(cfg)
}
