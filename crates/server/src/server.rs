//! Start-up, the accept loop, background jobs and orderly shutdown.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use staykv_engine::host::Host as _;
use staykv_engine::{Engine, EngineOptions};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::connection::{self, Shared};
use crate::host::ServerHost;
use crate::persistence::Persistence;

/// How many slots one active expiry pass may look at.
const EXPIRE_BUDGET: usize = 20_000;
/// How often INFO's `instantaneous_*` rates are sampled, whatever `hz` is (Redis samples
/// them every 100 ms too).
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// `hz`: how many times a second the housekeeping tick runs (active expiry, the clients'
/// limits), as Redis's `serverCron`. CONFIG SET takes 0 to `INT_MAX` and keeps it within
/// 1 to 500, as Redis does.
#[derive(Debug)]
pub struct Hz(AtomicU32);

impl Default for Hz {
    fn default() -> Hz {
        Hz(AtomicU32::new(10))
    }
}

impl Hz {
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }

    pub fn set(&self, hz: u32) {
        self.0.store(hz.clamp(1, 500), Ordering::Relaxed);
    }

    /// The time between two ticks.
    fn period(&self) -> Duration {
        Duration::from_micros(1_000_000 / u64::from(self.get().max(1)))
    }
}

/// Why the server stopped short: options it cannot run with (a usage error, which exits 2
/// as clap's do) or a failure while starting or running (exit 1).
#[derive(Debug)]
pub enum Stop {
    Usage(String),
    Failure(String),
}

impl From<String> for Stop {
    fn from(message: String) -> Stop {
        Stop::Failure(message)
    }
}

/// Run the server until SIGTERM, SIGINT or SHUTDOWN; flush the log and return. `config` has
/// been validated.
pub async fn run(config: Config) -> Result<(), Stop> {
    tracing::info!("starting StayKV {} with {config}", env!("CARGO_PKG_VERSION"));
    tracing::info!("command threads: {}", tokio::runtime::Handle::current().metrics().num_workers());
    let engine = Arc::new(Engine::new(EngineOptions { databases: config.databases, ..EngineOptions::default() }));
    let policy = staykv_engine::evict::Policy::parse(&config.maxmemory_policy)
        .ok_or_else(|| format!("unknown maxmemory-policy '{}'", config.maxmemory_policy))?;
    engine.eviction.set_policy(policy);
    engine.scripting.on_long_run(Box::new(crate::host::hand_off_worker));
    // clap took only one of the names.
    engine.acl.set_pubsub_default(&config.acl_pubsub_default);
    if let Some(password) = &config.requirepass {
        engine.acl.set_default_password(Some(password.as_bytes()), &engine.table);
    }
    if let Some(path) = &config.aclfile {
        crate::auth::load_acl_file(path, &engine, config.requirepass.as_deref())?;
    }
    // Protected mode: the RESP port on a non-loopback address needs a default user that
    // asks for a password (--requirepass, or the ACL file).
    if config.port != 0 && !config.bind.is_loopback() && !engine.acl.auth_required() {
        return Err(Stop::Failure(format!(
            "refusing to listen on {} with no password: anyone who can reach the RESP port could read every session. \
             Set --requirepass (or give the default user a password in --aclfile), or bind 127.0.0.1.",
            config.bind
        )));
    }
    let persistence = Arc::new(Persistence::new(config.fsync));
    let host = Arc::new(ServerHost::new(config.clone(), persistence.clone()));
    let _ = host.notifier.set(engine.clone());
    // Before anything is served or loaded, as Redis reads its config file.
    let file = config.config.as_ref().map(|path| path.display().to_string()).unwrap_or_default();
    for (name, value) in &config.settings {
        host.config_set(name, value.as_bytes()).map_err(|error| Stop::Usage(format!("config file {file}: {error}")))?;
    }
    let shared = Shared { engine: engine.clone(), host: host.clone(), persistence: persistence.clone() };
    crate::metrics::install();

    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key, config.tls_ca_cert.as_deref())?),
        _ => None,
    };
    persistence.expect_load(&config.dir);
    // Listen first, so clients that connect during a long recovery get -LOADING, as in Redis.
    if config.port != 0 {
        let addr = SocketAddr::new(config.bind, config.port);
        let listener = listen(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        host.tcp_port.store(u64::from(local.port()), std::sync::atomic::Ordering::Relaxed);
        match tls.clone() {
            Some(acceptor) => {
                tracing::info!("RESP listening on {local} (TLS)");
                let listener = crate::tls::TlsListener::new(listener, acceptor).map_err(|e| e.to_string())?;
                tokio::spawn(accept_tls_loop(listener, shared.clone()));
            }
            None => {
                tracing::info!("RESP listening on {local}");
                tokio::spawn(accept_loop(listener, shared.clone()));
            }
        }
    }
    if config.http_port != 0 {
        crate::http::start(&config, shared.clone(), tls).await?;
    }
    tokio::spawn(watch_signals(host.clone()));

    let dir = config.dir.clone();
    let (p, e) = (persistence.clone(), engine.clone());
    let load = tokio::task::spawn_blocking(move || {
        p.open(&dir, &e, config.fsync, config.log_segment_size, config.on_replay_error)
    });
    let mut stop = host.shutdown.subscribe();
    tokio::select! {
        loaded = load => loaded.map_err(|e| format!("recovery task failed: {e}"))??,
        _ = stop.wait_for(|s| *s) => {
            // A stop must not wait out a long load (a service manager's stop timeout would
            // end it with SIGKILL anyway), and it need not: writes are refused while loading,
            // so nothing is in the log to flush, and what the load changes on disk (a torn
            // tail cut, leftovers removed) is as safe to interrupt as any crash.
            tracing::info!("shutting down during the load: nothing to flush; bye");
            return Ok(());
        }
    }
    tokio::spawn(housekeeping(engine.clone(), persistence.clone(), host.clone()));
    tokio::spawn(evict_in_background(engine.clone(), persistence.clone(), host.clone()));

    let _ = stop.wait_for(|s| *s).await;
    tracing::info!("shutting down: flushing the log");
    let flushed = tokio::task::spawn_blocking(move || persistence.close()).await.map_err(|e| e.to_string())?;
    flushed.map_err(|e| format!("could not flush the log on shutdown: {e}"))?;
    tracing::info!("bye");
    Ok(())
}

/// Lets the connections already served run after every [`ACCEPT_BURST`] accepts. In a
/// connect flood, accepting back to back (up to tokio's budget of 128 per poll) kept ready
/// clients waiting behind each burst; yielding after every accept cost each connection of a
/// connect-per-request client (the serverless pattern) a third more context switches.
#[derive(Default)]
struct AcceptPacer {
    in_burst: u32,
    /// When an accept failure was last logged ([`accept_failed`]).
    last_failure_log: Option<std::time::Instant>,
}

const ACCEPT_BURST: u32 = 16;

impl AcceptPacer {
    async fn accepted(&mut self) {
        self.in_burst += 1;
        if self.in_burst == ACCEPT_BURST {
            self.in_burst = 0;
            tokio::task::yield_now().await;
        }
    }
}

/// A connection's local address (`CLIENT INFO` `laddr=`) when the listener's says it: not on
/// a wildcard address, where only the connection's socket knows which address the client
/// reached (a `getsockname` per connection).
fn fixed_local_addr(listening: Option<std::net::SocketAddr>) -> Option<std::net::SocketAddr> {
    listening.filter(|addr| !addr.ip().is_unspecified())
}

async fn accept_loop(listener: TcpListener, shared: Shared) {
    let local = fixed_local_addr(listener.local_addr().ok());
    let mut pacer = AcceptPacer::default();
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                // Boxed: a connection's future is about 4 KB, and tokio moves a task's future
                // by value (into the task, then at each stage change), five copies of it per
                // connection; the box moves once. Measured under callgrind, connect-per-request
                // session flow: 45,978 → 40,583 instructions a connection.
                tokio::spawn(Box::pin(connection::serve_tcp(stream, addr, local, shared.clone())));
                pacer.accepted().await;
            }
            Err(error) => accept_failed(&error, &mut pacer.last_failure_log).await,
        }
    }
}

/// Out of file descriptors and the like: backs off instead of spinning, and says so at most
/// every ten seconds (at each retry, 20 times a second, it drowned the log).
pub(crate) async fn accept_failed(error: &std::io::Error, last_log: &mut Option<std::time::Instant>) {
    if last_log.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
        *last_log = Some(std::time::Instant::now());
        tracing::warn!(%error, "accept failed; new connections wait in the listen queue (said at most every 10 s)");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Redis's `tcp-backlog` default. tokio's `bind` listens with 128: during a burst of
/// connects the accept queue overflowed and each overflowing client waited a SYN retry (1 s).
const LISTEN_BACKLOG: u32 = 511;

/// A listening socket with Redis's backlog (and SO_REUSEADDR, as `TcpListener::bind` sets).
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

async fn accept_tls_loop(mut listener: crate::tls::TlsListener, shared: Shared) {
    let fixed = fixed_local_addr(Some(listener.local_addr()));
    let mut pacer = AcceptPacer::default();
    while let Some((stream, addr)) = listener.accept().await {
        let Some(local) = fixed.or_else(|| stream.get_ref().0.local_addr().ok()) else { continue };
        // Boxed, as in `accept_loop`.
        let fd = stream.get_ref().0.as_raw_fd();
        shared.host.limits.keep_alive(stream.get_ref().0);
        let peer = connection::Peer { addr, laddr: local, fd };
        tokio::spawn(Box::pin(connection::serve(stream, peer, shared.clone())));
        pacer.accepted().await;
    }
}

/// Periodic work: active expiry, the tracking table's limit, the output buffers' soft limits,
/// `maxmemory-clients`, and INFO's memory peak and instantaneous rates.
async fn housekeeping(engine: Arc<Engine>, persistence: Arc<Persistence>, host: Arc<ServerHost>) {
    let mut sampled = Instant::now();
    loop {
        tokio::time::sleep(host.hz.period()).await;
        engine.active_expire(crate::clock::now_ms(), EXPIRE_BUDGET, &*persistence, &*host);
        // Each command enforces `tracking-table-max-keys` too; this is for a server left
        // idle after a CONFIG SET lowered it, as Redis's serverCron does.
        engine.tracking.enforce_limit();
        host.enforce_soft_output_limits();
        host.close_clients_over_limit();
        // A server over `maxmemory` with no command coming, after a CLIENT PAUSE or a script
        // held eviction off, still gets back under its limit.
        if host.over_memory_limit() {
            host.evict_in_background();
        }
        if sampled.elapsed() >= SAMPLE_EVERY {
            sampled = Instant::now();
            host.sample_metrics(&engine);
        }
    }
}

/// Evicts between commands, one pass at a time, while memory stays over `maxmemory` after
/// a pass ran out of its time (Redis's `evictionTimeProc`). Commands go on meanwhile: each
/// evicts for its own pass first, so writers faster than the eviction are slowed, not refused.
async fn evict_in_background(engine: Arc<Engine>, persistence: Arc<Persistence>, host: Arc<ServerHost>) {
    loop {
        host.eviction_due.notified().await;
        // A pass that runs out of time asks for the next one ([`Host::evict_in_background`]).
        engine.evict(crate::clock::now_ms(), &*persistence, &*host, &|| host.over_memory_limit());
        tokio::task::yield_now().await;
    }
}

/// SIGTERM and SIGINT stop the server. SIGHUP is logged and ignored, as Redis ignores it: a
/// closed terminal or a log rotation's HUP must not kill a store (by default it would, with
/// nothing flushed).
async fn watch_signals(host: Arc<ServerHost>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
    else {
        tracing::warn!("cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
            _ = hup.recv() => {
                tracing::info!("SIGHUP received: ignored (SIGTERM stops the server)");
                continue;
            }
        }
        break;
    }
    host.request_shutdown();
}
