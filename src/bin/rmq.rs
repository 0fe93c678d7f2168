//! `rmq`: the one command-line tool.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Name server + broker in one process (auto-creation on, data under ./data).
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
        Command::Admin { .. } | Command::Threads { .. } => "warn",
        _ => "info",
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
        Command::Broker { config, overrides } => match broker_from_config(config.as_deref(), &overrides) {
            Ok(b) => {
                wait_for_signal();
                drop(b);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rmq broker: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Namesrv { listen, kv_config_path } => match start_namesrv(&listen, kv_config_path) {
            Ok(ns) => {
                wait_for_signal();
                drop(ns);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rmq namesrv: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Standalone { namesrv, broker, data_dir } => match standalone(&namesrv, &broker, &data_dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("rmq standalone: {e}");
                ExitCode::FAILURE
            }
        },
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
    }
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
fn standalone(namesrv: &str, broker: &str, data_dir: &std::path::Path) -> Result<(), String> {
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
    let b = start_broker(cfg)?;
    println!("data under {}", data_dir.display());
    println!("thread dump: rmq threads {}", std::process::id());
    wait_for_signal();
    drop(b);
    drop(ns);
    Ok(())
}

/// Starts a broker and says where it listens.
fn start_broker(cfg: rmq::broker::BrokerConfig) -> Result<rmq::broker::BrokerController, String> {
    let b = rmq::broker::BrokerController::start(cfg).map_err(|e| e.to_string())?;
    let a = b.addrs();
    println!("broker listening on {} and {} (VIP)", a[0], a.get(1).copied().unwrap_or(a[0]));
    Ok(b)
}

/// Blocks until SIGINT or SIGTERM. The caller then shuts down gracefully;
/// a second signal meanwhile exits at once (the store recovers on the next
/// start), watched by the `ShutdownHook` thread (RocketMQ's name for it).
fn wait_for_signal() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot watch for signals ({e}); stop with SIGKILL");
            loop {
                std::thread::park();
            }
        }
    };
    if let Some(sig) = signals.forever().next() {
        println!("signal {sig}: shutting down (a second signal exits at once)");
    }
    let _ = rmq::common::thread::spawn("ShutdownHook", "process", move || {
        if signals.forever().next().is_some() {
            eprintln!("second signal: exiting without a clean shutdown");
            std::process::exit(130);
        }
    });
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
