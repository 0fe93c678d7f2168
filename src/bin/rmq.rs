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

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    match cli.command {
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
