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
