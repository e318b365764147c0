//! `staykv`: the server binary and its maintenance subcommands.

mod auth;
mod client_buffers;
mod clock;
mod config;
mod connection;
mod durable_wait;
mod host;
mod http;
mod import;
mod limits;
mod logging;
mod memory;
mod metrics;
mod migrate;
mod persistence;
mod server;
mod snapshot;
mod stats;
mod tls;
mod tools;

use std::process::ExitCode;

use config::Command;
use server::Stop;

/// Counted, so that `maxmemory` compares with memory in use as Redis's `used_memory` does.
#[global_allocator]
static ALLOCATOR: memory::CountingAllocator = memory::CountingAllocator;

fn main() -> ExitCode {
    match start() {
        Ok(()) => ExitCode::SUCCESS,
        // Once, on stderr: the log is stdout, and a service manager keeps both.
        Err(stop) => {
            let (code, message) = match stop {
                Stop::Usage(message) => (2, message),
                Stop::Failure(message) => (1, message),
            };
            eprintln!("staykv: {message}");
            ExitCode::from(code)
        }
    }
}

/// Parses the options and runs the server or the tool they name. A usage error (a flag, the
/// config file, or options that do not go together) exits 2, as clap's own do; a failure
/// while running exits 1.
fn start() -> Result<(), Stop> {
    let parsed = config::parse().and_then(|(cli, file)| match cli.command {
        None => cli.server.validate().map(|()| (cli, file)),
        Some(_) => Ok((cli, file)),
    });
    let (cli, _) = parsed.map_err(Stop::Usage)?;
    let log_stream = if cli.command.is_some() { logging::LogStream::Stderr } else { logging::LogStream::Stdout };
    logging::init(cli.server.loglevel, log_stream);
    match cli.command {
        None => run_server(cli.server),
        Some(tool) => run_tool(tool).map_err(Stop::Failure),
    }
}

fn run_tool(tool: Command) -> Result<(), String> {
    match tool {
        Command::Check { dir, fix, yes, replay } => tools::check(&dir, fix, yes, replay),
        Command::Import { source, dir, partial } => import::import(&source, &dir, partial),
        Command::Export { rdb, dir, on_replay_error } => tools::export(&dir, &rdb, on_replay_error),
    }
}

/// Runs the server on a validated `config` (before the runtime is built: its builder panics
/// on zero threads).
fn run_server(mut config: config::Config) -> Result<(), Stop> {
    memory::disable_transparent_huge_pages();
    config.maxclients = limits::fit_open_files_limit(config.maxclients)?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = config.threads {
        builder.worker_threads(threads);
    }
    let runtime = builder
        .enable_all()
        .thread_name("staykv-worker")
        .on_thread_park(memory::release_free_pages_when_due)
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let result = runtime.block_on(server::run(config));
    // The log is flushed by now. A script that SHUTDOWN NOSAVE interrupted still runs on a
    // thread of the runtime, and dropping the runtime would wait for it to end.
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    result
}

/// How long threads of the runtime may take to finish once the server has stopped.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(1);
