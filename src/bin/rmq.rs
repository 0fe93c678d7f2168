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
    /// Name server + broker in one process. For now only their transport
    /// runs (the store, routes and processors arrive with the next issues):
    /// every request is answered REQUEST_CODE_NOT_SUPPORTED.
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

/// Starts the name server's and the broker's transports and serves until killed.
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
    let not_yet = |who: &'static str| {
        Arc::new(move |_: &Channel, req: RemotingCommand| {
            Some(RemotingCommand::response(
                response::REQUEST_CODE_NOT_SUPPORTED,
                format!("{} is not implemented yet by this {who}", req.code_name()),
            ))
        })
    };
    let mut ns = RemotingServer::new(ServerConfig { listen: vec![ns_addr], ..Default::default() });
    let ns_pool =
        Arc::new(ThreadPool::new("RemotingExecutorThread_", "namesrv", 8, 10_000).map_err(|e| e.to_string())?);
    ns.register_default_processor(not_yet("name server"), ns_pool);
    let ns_bound = ns.start().map_err(|e| e.to_string())?;
    let mut br = RemotingServer::new(ServerConfig { listen: vec![broker_addr, vip], ..Default::default() });
    let br_pool = Arc::new(ThreadPool::new("AdminBrokerThread_", "broker", 16, 10_000).map_err(|e| e.to_string())?);
    br.register_default_processor(not_yet("broker"), br_pool);
    let br_bound = br.start().map_err(|e| e.to_string())?;
    println!("name server transport listening on {}", ns_bound[0]);
    println!("broker transport listening on {} and {} (VIP)", br_bound[0], br_bound[1]);
    println!("thread dump: rmq threads {}", std::process::id());
    loop {
        std::thread::park();
    }
}
