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
    /// Name server + broker in one process. The name server is complete; the
    /// broker's transport runs, but its processors arrive with the broker
    /// issue (every broker request is answered REQUEST_CODE_NOT_SUPPORTED).
    Standalone {
        /// Name server listen address.
        #[arg(long, default_value = "127.0.0.1:9876")]
        namesrv: String,
        /// Broker listen address (the VIP port is this port - 2).
        #[arg(long, default_value = "127.0.0.1:10911")]
        broker: String,
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
        Command::Namesrv { listen, kv_config_path } => match start_namesrv(&listen, kv_config_path) {
            Ok(_ns) => loop {
                std::thread::park();
            },
            Err(e) => {
                eprintln!("rmq namesrv: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Standalone { namesrv, broker } => match standalone(&namesrv, &broker) {
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

/// Starts the name server and the broker's transport and serves until killed.
fn standalone(namesrv: &str, broker: &str) -> Result<(), String> {
    use rmq::common::ThreadPool;
    use rmq::remoting::code::response;
    use rmq::remoting::{Channel, RemotingCommand, RemotingServer, ServerConfig};
    use std::net::SocketAddr;
    use std::sync::Arc;

    let parse = |a: &str| a.parse::<SocketAddr>().map_err(|e| format!("bad address {a:?}: {e}"));
    let ns_addr = parse(namesrv)?;
    let broker_addr = parse(broker)?;
    let vip = SocketAddr::new(broker_addr.ip(), broker_addr.port().saturating_sub(2));
    let not_yet = Arc::new(|_: &Channel, req: RemotingCommand| {
        Some(RemotingCommand::response(
            response::REQUEST_CODE_NOT_SUPPORTED,
            format!("{} is not implemented yet by this broker", req.code_name()),
        ))
    });
    let _ns = start_namesrv(&ns_addr.to_string(), "./data/namesrv/kvConfig.json".into())?;
    let mut br = RemotingServer::new(ServerConfig { listen: vec![broker_addr, vip], ..Default::default() });
    let br_pool = Arc::new(ThreadPool::new("AdminBrokerThread_", "broker", 16, 10_000).map_err(|e| e.to_string())?);
    br.register_default_processor(not_yet, br_pool);
    let br_bound = br.start().map_err(|e| e.to_string())?;
    println!("broker transport listening on {} and {} (VIP)", br_bound[0], br_bound[1]);
    println!("thread dump: rmq threads {}", std::process::id());
    loop {
        std::thread::park();
    }
}
