//! Configuration: command-line flags, `STAYKV_*` environment variables and a TOML file, in
//! that order of precedence.
//!
//! clap resolves flags and environment variables and says where each value came from; a
//! value that came only from clap's default is then replaced by the TOML file's, if it has one.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

/// When a write is acknowledged relative to fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// Reply only after the write is fsynced (group commit).
    Always,
    /// Reply at once; fsync every second; writes wait if fsync falls 2 s behind.
    Everysec,
    /// Reply at once; the OS decides when data reaches the disk.
    No,
}

impl FsyncPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::Everysec => "everysec",
            FsyncPolicy::No => "no",
        }
    }

    pub fn parse(text: &str) -> Option<FsyncPolicy> {
        FsyncPolicy::from_str(text, true).ok()
    }
}

/// What a start does with a logged effect that answers an error when replayed. Effects are
/// logged so that they replay without one, so a failure means the log and the engine disagree
/// (a bug): by default StayKV will not serve data that may differ from what it acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnReplayError {
    /// Refuse to start, naming the batch and the error.
    Refuse,
    /// Start without the failing effects, logging each one; compactions skip them too, so
    /// the next snapshot no longer holds them (Redis's AOF loader ignores such errors).
    Skip,
}

impl OnReplayError {
    pub fn as_str(self) -> &'static str {
        match self {
            OnReplayError::Refuse => "refuse",
            OnReplayError::Skip => "skip",
        }
    }
}

/// Log verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

impl LogLevel {
    /// The name `--loglevel` takes.
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
        }
    }
}

/// `staykv`: a durable, Redis-compatible session store with an HTTP API.
#[derive(Debug, Parser)]
#[command(name = "staykv", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub server: ServerOptions,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Verify a data directory; with --fix, truncate at the first damage after asking.
    Check {
        /// The data directory to check.
        #[arg(long, env = "STAYKV_DIR", default_value = "./staykv-data")]
        dir: PathBuf,
        /// Repair what is damaged, after showing what the repair drops: cut the log at the
        /// damage (the cut bytes are kept beside it), rebuild a damaged or missing MANIFEST.
        #[arg(long)]
        fix: bool,
        /// Do not ask before fixing.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Also replay every log batch over the snapshot in memory, as a start does, and
        /// report writes that fail to replay (takes memory for the whole dataset).
        #[arg(long)]
        replay: bool,
    },
    /// Import a Redis dump.rdb, a Redis 7 appendonlydir, or a live redis://host:port.
    Import {
        /// A dump.rdb file, a Redis 7 appendonlydir (or its *.manifest), an appendonly.aof
        /// of Redis before 7, or a live server as `redis://[user:password@]host:port`.
        source: String,
        /// The data directory to create (it must hold no data); start the server on it after.
        #[arg(long, env = "STAYKV_DIR", default_value = "./staykv-data")]
        dir: PathBuf,
        /// Import a source even though some of it cannot be (keys of module types, AOF
        /// commands that fail, function libraries that do not load), listing what is left
        /// out. Without it such a source is refused and nothing is written.
        #[arg(long)]
        partial: bool,
    },
    /// Write an RDB file that redis-server 7.0 loads.
    Export {
        /// The RDB file to write (outside the data directory), or `-` for standard output;
        /// redis-server loads it as its dump.rdb.
        #[arg(long)]
        rdb: PathBuf,
        /// The data directory to read (a running server's is read as it stands).
        #[arg(long, env = "STAYKV_DIR", default_value = "./staykv-data")]
        dir: PathBuf,
        /// A logged write that fails to replay: `refuse` to export, or `skip` it with a
        /// warning.
        #[arg(long, value_enum, default_value_t = OnReplayError::Refuse)]
        on_replay_error: OnReplayError,
    },
}

/// Server options. Every one is also `STAYKV_<NAME>` and a key of the `--config` TOML file.
#[derive(Debug, Clone, Args, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServerOptions {
    /// TOML configuration file: its keys are these options' long names (`maxmemory = "1gb"`,
    /// `fsync = "always"`), flags and environment variables taking precedence, and the CONFIG
    /// parameters that have no flag (`notify-keyspace-events = "Ex"`).
    #[arg(long, env = "STAYKV_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// CONFIG parameters without a flag (`notify-keyspace-events`, `maxmemory-samples`,
    /// `lazyfree-lazy-eviction`...) that the `--config` file sets: applied at start as CONFIG
    /// SET would apply them, so that what CONFIG SET changes can be made lasting.
    #[arg(skip)]
    #[serde(skip)]
    pub settings: Vec<(String, String)>,
    /// Listen address for both front ends.
    #[arg(long, env = "STAYKV_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// RESP (TCP) port; 0 disables.
    #[arg(long, env = "STAYKV_PORT", default_value_t = 6379)]
    pub port: u16,
    /// HTTP API port; 0 disables.
    #[arg(long, env = "STAYKV_HTTP_PORT", default_value_t = 8079)]
    pub http_port: u16,
    /// Data directory, created if missing.
    #[arg(long, env = "STAYKV_DIR", default_value = "./staykv-data")]
    pub dir: PathBuf,
    /// When a write is acknowledged relative to fsync.
    #[arg(long, env = "STAYKV_FSYNC", value_enum, default_value_t = FsyncPolicy::Always)]
    pub fsync: FsyncPolicy,
    /// A logged write that fails to replay at start: `refuse` to start (the default), or
    /// `skip` it with a warning and start (a way out of a bug; see docs/recovery.md).
    #[arg(long, env = "STAYKV_ON_REPLAY_ERROR", value_enum, default_value_t = OnReplayError::Refuse)]
    pub on_replay_error: OnReplayError,
    /// Password of the `default` user (RESP AUTH).
    #[arg(long, env = "STAYKV_REQUIREPASS")]
    pub requirepass: Option<String>,
    /// Bearer token with full access to the HTTP API.
    #[arg(long, env = "STAYKV_HTTP_TOKEN")]
    pub http_token: Option<String>,
    /// Bearer token limited to read commands.
    #[arg(long, env = "STAYKV_HTTP_READONLY_TOKEN")]
    pub http_readonly_token: Option<String>,
    /// Browser origins allowed to call the HTTP API (CORS), comma-separated
    /// (`https://app.example.com,http://localhost:3000`), or `*` for any; needs
    /// --http-token or --http-readonly-token. None by default: pages cannot call it.
    #[arg(long, env = "STAYKV_HTTP_CORS_ORIGIN")]
    pub http_cors_origin: Option<String>,
    /// Largest HTTP request body in bytes; larger requests get 413.
    #[arg(long, env = "STAYKV_HTTP_MAX_BODY", default_value_t = 10 * 1024 * 1024)]
    pub http_max_body: usize,
    /// TLS certificate (PEM) for both front ends.
    #[arg(long, env = "STAYKV_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "STAYKV_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// CA certificate (PEM): clients must present a certificate it signed.
    #[arg(long, env = "STAYKV_TLS_CA_CERT")]
    pub tls_ca_cert: Option<PathBuf>,
    /// Size at which a log segment is sealed and the next begun (256mb). Under `--fsync
    /// always`, small fsyncs go to 32mb segments zero-filled ahead of time
    /// (docs/log-format.md): the log can take up to 64mb of disk more than its data.
    #[arg(long, env = "STAYKV_LOG_SEGMENT_SIZE", default_value = "268435456", value_parser = crate::limits::memory_arg)]
    #[serde(deserialize_with = "crate::limits::deserialize_memory")]
    pub log_segment_size: u64,
    /// Memory limit in bytes (0 = none); past it keys are evicted by --maxmemory-policy, or
    /// writes get OOM errors.
    #[arg(long, env = "STAYKV_MAXMEMORY", default_value = "0", value_parser = crate::limits::memory_arg)]
    #[serde(deserialize_with = "crate::limits::deserialize_memory")]
    pub maxmemory: u64,
    /// What goes past --maxmemory: noeviction (OOM errors), allkeys-lru, volatile-lru,
    /// allkeys-lfu, volatile-lfu, allkeys-random, volatile-random or volatile-ttl.
    #[arg(long, env = "STAYKV_MAXMEMORY_POLICY", default_value = "noeviction", value_parser = parse_policy)]
    pub maxmemory_policy: String,
    /// Log level.
    #[arg(long, env = "STAYKV_LOGLEVEL", value_enum, default_value_t = LogLevel::Info)]
    pub loglevel: LogLevel,
    /// Maximum simultaneous clients.
    #[arg(long, env = "STAYKV_MAXCLIENTS", default_value_t = 10000)]
    pub maxclients: usize,
    /// Number of logical databases (1 to 1024).
    #[arg(long, env = "STAYKV_DATABASES", default_value_t = 16)]
    pub databases: usize,
    /// ACL file in Redis's format (`user <name> <rules...>` lines), loaded at start and used
    /// by ACL LOAD / ACL SAVE.
    #[arg(long, env = "STAYKV_ACLFILE")]
    pub aclfile: Option<PathBuf>,
    /// The channels a new ACL user (or one `reset`) may use: `resetchannels` (none, Redis
    /// 7.0's default) or `allchannels` (Redis 6.2's), as `acl-pubsub-default`.
    #[arg(long, env = "STAYKV_ACL_PUBSUB_DEFAULT", default_value = "resetchannels", value_parser = staykv_engine::acl::PUBSUB_DEFAULTS)]
    pub acl_pubsub_default: String,
    /// Close RESP clients idle for this many seconds (0: never, up to 2147483647), as Redis's
    /// `timeout`.
    #[arg(long, env = "STAYKV_TIMEOUT", default_value_t = 0)]
    pub timeout: u64,
    /// Send TCP keepalive probes on a RESP connection idle this many seconds (0: none), as
    /// Redis's `tcp-keepalive`: a client that vanished without closing (a frozen or
    /// recycled serverless function, a dropped NAT entry) is found and its connection closed.
    #[arg(long, env = "STAYKV_TCP_KEEPALIVE", default_value_t = 300)]
    pub tcp_keepalive: u64,
    /// Largest unparsed input of one client (`client-query-buffer-limit`; 1gb, at least 1mb).
    #[arg(long, env = "STAYKV_CLIENT_QUERY_BUFFER_LIMIT", default_value = "1073741824", value_parser = crate::limits::memory_arg)]
    #[serde(deserialize_with = "crate::limits::deserialize_memory")]
    pub client_query_buffer_limit: u64,
    /// Largest bulk string in a request (`proto-max-bulk-len`; 512mb).
    #[arg(long, env = "STAYKV_PROTO_MAX_BULK_LEN", default_value = "536870912", value_parser = crate::limits::memory_arg)]
    #[serde(deserialize_with = "crate::limits::deserialize_memory")]
    pub proto_max_bulk_len: u64,
    /// Memory all connections' buffers may hold before the largest are closed
    /// (`maxmemory-clients`): bytes, a percentage of --maxmemory such as `10%`, or 0 (none).
    #[arg(long, env = "STAYKV_MAXMEMORY_CLIENTS", default_value = "0")]
    pub maxmemory_clients: String,
    /// `client-output-buffer-limit`: groups of `class hard soft seconds` (classes normal, pubsub).
    #[arg(long, env = "STAYKV_CLIENT_OUTPUT_BUFFER_LIMIT", default_value = "normal 0 0 0 pubsub 32mb 8mb 60")]
    pub client_output_buffer_limit: String,
    /// Threads that run commands, both front ends' (the runtime's workers); one per CPU if
    /// unset. The log writer and snapshots have threads of their own. On a 2-CPU machine
    /// shared with its clients, one thread served the session workload with less CPU than
    /// two under `everysec`; under `always`, where replies wait for the disk, two served
    /// more requests (BENCHMARKS.md, "Measured 2026-12-04").
    #[arg(long, env = "STAYKV_THREADS")]
    pub threads: Option<usize>,
    /// Largest HTTP request head (request line and headers) in bytes; larger ones get 431.
    #[arg(long, env = "STAYKV_HTTP_MAX_HEADER", default_value_t = 64 * 1024)]
    pub http_max_header: usize,
    /// Seconds an HTTP client has to send a request's head before it is disconnected
    /// (slowloris); the body then has 60 s. 1 to 2147483647.
    #[arg(long, env = "STAYKV_HTTP_HEADER_TIMEOUT", default_value_t = 10)]
    pub http_header_timeout: u64,
}

/// More command threads than any machine StayKV runs on has CPUs; a typo's thousands of
/// threads would each reserve a stack.
const MAX_THREADS: usize = 1024;

/// A fully resolved configuration.
pub type Config = ServerOptions;

/// Parse the command line, then fill defaults from the TOML file named by `--config`.
pub fn parse() -> Result<(Cli, ArgMatches), String> {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).map_err(|e| e.to_string())?;
    if cli.command.is_none() {
        if let Some(path) = cli.server.config.clone() {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
            let file: toml::Table = text.parse().map_err(|e| format!("config file {}: {e}", path.display()))?;
            cli.server =
                merge_file(cli.server, &matches, file).map_err(|e| format!("config file {}: {e}", path.display()))?;
        }
    }
    Ok((cli, matches))
}

/// Values from the file replace those clap took from its defaults, and only those. A key
/// that is no flag but a CONFIG parameter is kept for the start ([`ServerOptions::settings`]),
/// in the file's order: of two names for one parameter (`lua-time-limit`,
/// `busy-reply-threshold`), the later one wins, as in a redis.conf.
fn merge_file(options: ServerOptions, matches: &ArgMatches, file: toml::Table) -> Result<ServerOptions, String> {
    let mut merged = toml::Table::try_from(SerializableOptions(&options)).map_err(|e| e.to_string())?;
    let mut settings = Vec::new();
    for (key, value) in file {
        if !ServerOptions::known_key(&key) {
            settings.push(config_setting(key, value)?);
            continue;
        }
        let id = key.replace('-', "_");
        if matches!(matches.value_source(&id), None | Some(ValueSource::DefaultValue)) {
            merged.insert(key, value);
        }
    }
    let mut resolved: ServerOptions = merged.try_into().map_err(|e: toml::de::Error| e.to_string())?;
    resolved.config = options.config;
    resolved.settings = settings;
    Ok(resolved)
}

/// A file key that is no flag: a CONFIG parameter, with its value as CONFIG SET takes it.
fn config_setting(key: String, value: toml::Value) -> Result<(String, String), String> {
    // The one parameter a flag sets under another name: the log is opened with the flag's.
    if key == "appendfsync" {
        return Err("'appendfsync' is set with 'fsync' (the flag's name)".into());
    }
    // Parameter names are Redis's, in any case, as CONFIG SET takes them.
    let name = key.to_ascii_lowercase();
    if !crate::host::is_config_parameter(&name) {
        return Err(format!("unknown option '{key}' (neither a flag nor a CONFIG parameter)"));
    }
    let text = match value {
        toml::Value::String(text) => text,
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Float(x) => x.to_string(),
        toml::Value::Boolean(on) => if on { "yes" } else { "no" }.to_string(),
        _ => return Err(format!("'{key}' takes a string, a number or a boolean")),
    };
    Ok((name, text))
}

impl ServerOptions {
    fn known_key(key: &str) -> bool {
        Cli::command().get_arguments().any(|a| a.get_long() == Some(key) && key != "config")
    }

    /// Refuse options whose feature this build does not have, rather than ignore them.
    pub fn validate(&self) -> Result<(), String> {
        if self.tls_ca_cert.is_some() && self.tls_cert.is_none() {
            return Err("--tls-ca-cert needs --tls-cert and --tls-key".into());
        }
        if self.maxclients == 0 {
            return Err("--maxclients must be at least 1".into());
        }
        // Redis keeps these in an `int`: a larger value would overflow the deadlines made from
        // it (every connection's, or every HTTP request's, would panic).
        if i32::try_from(self.tcp_keepalive).is_err() {
            return Err(format!("--tcp-keepalive must be between 0 and {}", i32::MAX));
        }
        if i32::try_from(self.timeout).is_err() {
            return Err(format!("--timeout must be between 0 and {}", i32::MAX));
        }
        if self.http_header_timeout == 0 || i32::try_from(self.http_header_timeout).is_err() {
            return Err(format!("--http-header-timeout must be between 1 and {} seconds", i32::MAX));
        }
        if self.databases == 0 || self.databases > 1024 {
            return Err("--databases must be between 1 and 1024".into());
        }
        if self.threads.is_some_and(|n| !(1..=MAX_THREADS).contains(&n)) {
            return Err(format!("--threads must be between 1 and {MAX_THREADS}"));
        }
        if self.http_token.as_deref() == Some("") || self.http_readonly_token.as_deref() == Some("") {
            return Err("--http-token and --http-readonly-token must not be empty".into());
        }
        if self.http_token.is_some() && self.http_token == self.http_readonly_token {
            return Err("--http-token and --http-readonly-token must differ".into());
        }
        if let Some(origins) = &self.http_cors_origin {
            crate::http::cors_origins(origins).map(drop).map_err(|e| format!("--http-cors-origin: {e}"))?;
            if self.http_token.is_none() && self.http_readonly_token.is_none() {
                return Err("--http-cors-origin needs --http-token or --http-readonly-token: without one, \
                            every page of those origins could read and write the data"
                    .into());
            }
        }
        if self.http_max_body < 1024 {
            return Err("--http-max-body must be at least 1024 bytes".into());
        }
        if self.http_max_header < 8192 {
            return Err("--http-max-header must be at least 8192 bytes".into());
        }
        if !(1 << 20..=16 << 30).contains(&self.log_segment_size) {
            return Err("--log-segment-size must be between 1mb and 16gb".into());
        }
        if self.proto_max_bulk_len < 1024 * 1024 {
            return Err("--proto-max-bulk-len must be at least 1mb".into());
        }
        if self.client_query_buffer_limit < 1024 * 1024 {
            return Err("--client-query-buffer-limit must be at least 1mb".into());
        }
        crate::limits::OutputLimits::default()
            .parse_over(&self.client_output_buffer_limit)
            .map_err(|e| format!("--client-output-buffer-limit: {e}"))?;
        crate::limits::parse_client_memory_limit(&self.maxmemory_clients)
            .map_err(|e| format!("--maxmemory-clients: {e}"))?;
        // An ACL file can protect the default user; that is checked once it is loaded.
        let protected = self.requirepass.is_none() && self.http_token.is_none() && self.aclfile.is_none();
        if protected && !self.bind.is_loopback() {
            return Err(format!(
                "refusing to listen on {} with no password: anyone who can reach it could read every session. \
                 Set --requirepass (and --http-token for the HTTP API), or bind 127.0.0.1.",
                self.bind
            ));
        }
        if self.port == 0 && self.http_port == 0 {
            // Redis exits likewise ("Configured to not listen anywhere").
            return Err("--port and --http-port are both 0: the server would listen nowhere".into());
        }
        Ok(())
    }
}

/// serde's view of the options for merging (paths and addresses as strings).
struct SerializableOptions<'a>(&'a ServerOptions);

impl serde::Serialize for SerializableOptions<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let o = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("bind", &o.bind.to_string())?;
        map.serialize_entry("port", &o.port)?;
        map.serialize_entry("http-port", &o.http_port)?;
        map.serialize_entry("dir", &o.dir.display().to_string())?;
        map.serialize_entry("fsync", o.fsync.as_str())?;
        map.serialize_entry("on-replay-error", o.on_replay_error.as_str())?;
        if let Some(v) = &o.requirepass {
            map.serialize_entry("requirepass", v)?;
        }
        if let Some(v) = &o.http_token {
            map.serialize_entry("http-token", v)?;
        }
        if let Some(v) = &o.http_readonly_token {
            map.serialize_entry("http-readonly-token", v)?;
        }
        if let Some(v) = &o.http_cors_origin {
            map.serialize_entry("http-cors-origin", v)?;
        }
        map.serialize_entry("http-max-body", &o.http_max_body)?;
        if let Some(v) = &o.tls_cert {
            map.serialize_entry("tls-cert", &v.display().to_string())?;
        }
        if let Some(v) = &o.tls_key {
            map.serialize_entry("tls-key", &v.display().to_string())?;
        }
        if let Some(v) = &o.tls_ca_cert {
            map.serialize_entry("tls-ca-cert", &v.display().to_string())?;
        }
        map.serialize_entry("log-segment-size", &o.log_segment_size)?;
        map.serialize_entry("maxmemory", &o.maxmemory)?;
        map.serialize_entry("maxmemory-policy", &o.maxmemory_policy)?;
        map.serialize_entry("loglevel", o.loglevel.name())?;
        map.serialize_entry("maxclients", &o.maxclients)?;
        map.serialize_entry("databases", &o.databases)?;
        if let Some(v) = &o.aclfile {
            map.serialize_entry("aclfile", &v.display().to_string())?;
        }
        map.serialize_entry("acl-pubsub-default", &o.acl_pubsub_default)?;
        map.serialize_entry("timeout", &o.timeout)?;
        map.serialize_entry("tcp-keepalive", &o.tcp_keepalive)?;
        map.serialize_entry("client-query-buffer-limit", &o.client_query_buffer_limit)?;
        map.serialize_entry("proto-max-bulk-len", &o.proto_max_bulk_len)?;
        map.serialize_entry("client-output-buffer-limit", &o.client_output_buffer_limit)?;
        map.serialize_entry("maxmemory-clients", &o.maxmemory_clients)?;
        if let Some(v) = o.threads {
            map.serialize_entry("threads", &v)?;
        }
        map.serialize_entry("http-max-header", &o.http_max_header)?;
        map.serialize_entry("http-header-timeout", &o.http_header_timeout)?;
        map.end()
    }
}

impl std::fmt::Display for ServerOptions {
    /// The effective configuration, secrets masked, for the start-up log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = |s: &Option<String>| if s.is_some() { "(set)" } else { "(none)" };
        write!(
            f,
            "bind={} port={} http-port={} dir={} fsync={} on-replay-error={} log-segment-size={} requirepass={} http-token={} http-readonly-token={} http-cors-origin={} http-max-body={} maxmemory={} maxmemory-policy={} maxclients={} databases={} loglevel={} aclfile={} acl-pubsub-default={} timeout={} tcp-keepalive={} client-query-buffer-limit={} proto-max-bulk-len={} client-output-buffer-limit='{}' maxmemory-clients={} threads={} http-max-header={} http-header-timeout={} settings={:?}",
            self.bind,
            self.port,
            self.http_port,
            self.dir.display(),
            self.fsync.as_str(),
            self.on_replay_error.as_str(),
            self.log_segment_size,
            secret(&self.requirepass),
            secret(&self.http_token),
            secret(&self.http_readonly_token),
            self.http_cors_origin.as_deref().unwrap_or("(none)"),
            self.http_max_body,
            self.maxmemory,
            self.maxmemory_policy,
            self.maxclients,
            self.databases,
            self.loglevel.name(),
            self.aclfile.as_ref().map_or_else(|| "(none)".to_string(), |p| p.display().to_string()),
            self.acl_pubsub_default,
            self.timeout,
            self.tcp_keepalive,
            self.client_query_buffer_limit,
            self.proto_max_bulk_len,
            self.client_output_buffer_limit,
            self.maxmemory_clients,
            self.threads.map_or_else(|| "(one per CPU)".to_string(), |n| n.to_string()),
            self.http_max_header,
            self.http_header_timeout,
            self.settings,
        )
    }
}

/// `--maxmemory-policy`: one of Redis's policy names.
fn parse_policy(text: &str) -> Result<String, String> {
    staykv_engine::evict::Policy::parse(text)
        .map(|p| p.name().to_string())
        .ok_or_else(|| format!("unknown maxmemory policy '{text}'"))
}
