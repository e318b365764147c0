//! `staykv-loadgen`: the load generator of `bench/run`.
//!
//! redis-benchmark cannot express the session workload (48-byte token keys, a zipfian
//! popularity, a GET/EXPIRE/SET EX/DEL mix, connect-per-request, the HTTP API) nor an
//! open-loop request rate, so this small tool does. Every subcommand prints one line of
//! `name=value` pairs on stdout for `bench/run` to collect.

mod gen;
mod proto;
mod run;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::gen::KeyKind;

#[derive(Debug, Parser)]
#[command(name = "staykv-loadgen", about = "Load generator for StayKV's benchmarks (bench/run)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options every load-generating subcommand shares.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// Server address (RESP port, or HTTP port for `--mode http`).
    #[arg(long, default_value = "127.0.0.1:6379")]
    pub addr: String,
    /// Key set: `session` (sess: + 43 chars) or `small` (k: + 10 digits).
    #[arg(long, value_enum, default_value_t = KeyKind::Session)]
    pub kind: KeyKind,
    /// Seed of the key set (the same seed gives the same keys).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Value size in bytes (random alphanumeric).
    #[arg(long, default_value_t = 1024)]
    pub value_size: usize,
    /// TTL in seconds of every SET ... EX and EXPIRE.
    #[arg(long, default_value_t = 604_800)]
    pub ttl: u64,
    /// Tokio worker threads (1 = a single-threaded runtime, like redis-benchmark).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the key of one index.
    Key {
        #[arg(long, value_enum, default_value_t = KeyKind::Session)]
        kind: KeyKind,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 0)]
        index: u64,
    },
    /// Load keys 0..count with `SET key value EX ttl`, pipelined.
    Preload {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        count: u64,
        /// Connections loading in parallel.
        #[arg(long, default_value_t = 4)]
        conns: usize,
        /// Commands in flight per connection.
        #[arg(long, default_value_t = 64)]
        pipeline: usize,
    },
    /// The session workload: zipfian keys, 70% GET, 18% EXPIRE, 11% SET EX, 1% DEL.
    Session(run::SessionArgs),
    /// Poll until `GET key` returns a value; print the time since `--since-ns`.
    WaitReady {
        #[arg(long, default_value = "127.0.0.1:6379")]
        addr: String,
        #[arg(long)]
        key: String,
        /// Start time, nanoseconds since the Unix epoch (`date +%s%N` before starting the server).
        #[arg(long)]
        since_ns: u128,
        #[arg(long, default_value_t = 600)]
        timeout_secs: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Key { kind, seed, index } => {
            println!("{}", gen::key_string(kind, seed, index));
            Ok(())
        }
        Command::Preload { common, count, conns, pipeline } => run::preload(&common, count, conns, pipeline),
        Command::Session(args) => run::session(&args),
        Command::WaitReady { addr, key, since_ns, timeout_secs } => {
            run::wait_ready(&addr, &key, since_ns, timeout_secs)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("staykv-loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}
