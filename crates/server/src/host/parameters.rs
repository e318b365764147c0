//! The parameters CONFIG GET reads and CONFIG SET changes, in one table: an entry per
//! parameter says how to read it and how to change it, as Redis's `config.c` keeps its
//! `standardConfig` table. Adding a parameter is adding an entry.
//!
//! Values are parsed and range-checked as Redis 7.0 does, with its error texts; the caller
//! wraps a setter's reason in Redis's "CONFIG SET failed" sentence.

use std::ops::RangeInclusive;
use std::sync::atomic::Ordering;
use std::sync::LazyLock;

use staykv_engine::evict::{Policy, LFU_DECAY_MINUTES, LFU_LOG_FACTOR};
use staykv_engine::glob;
use staykv_engine::lazyfree::LazyOption;
use staykv_engine::value::FIXED_ENCODING_CONFIG;
use staykv_engine::Engine;

use super::ServerHost;
use crate::config::FsyncPolicy;
use crate::limits::config_memory;

/// The largest byte count most memory parameters take: Redis keeps them in a `long long`.
const I64_MAX: u64 = i64::MAX.unsigned_abs();

/// What a parameter is read from and applied to.
pub(super) struct Scope<'a> {
    pub host: &'a ServerHost,
    pub engine: &'a Engine,
}

type Get = Box<dyn Fn(&Scope) -> String + Send + Sync>;
type Apply = Box<dyn Fn(&Scope, &str) -> Result<(), String> + Send + Sync>;

struct Parameter {
    name: &'static str,
    get: Get,
    set: Set,
}

/// What CONFIG SET does with a parameter.
enum Set {
    /// Parses the value and applies it, or says why not.
    Apply(Apply),
    /// Fixed while StayKV runs, yet its current value is taken: a tool setting every
    /// parameter back to what CONFIG GET gave (as Redis's own tests do), or turning RDB saves
    /// off, must not fail on it. Any other value is refused with the reason this gives from
    /// the current one, not ignored.
    OnlyCurrent(fn(&str) -> String),
    /// Refused whatever the value, as Redis refuses its immutable parameters.
    Immutable,
    /// Refused whatever the value, as Redis refuses its protected ones (`dir`) under its
    /// default `enable-protected-configs no`.
    Protected,
}

/// The parameters `pattern` matches, with their values.
pub(super) fn get(scope: &Scope, pattern: &[u8]) -> Vec<(String, String)> {
    PARAMETERS
        .iter()
        .filter(|parameter| glob::matches(pattern, parameter.name.as_bytes(), true))
        .map(|parameter| (parameter.name.to_string(), (parameter.get)(scope)))
        .collect()
}

/// Whether CONFIG GET/SET know a parameter of this name.
pub(crate) fn exists(name: &str) -> bool {
    PARAMETERS.iter().any(|parameter| parameter.name == name)
}

/// Sets parameter `name` (in any case) to `text`, or gives the error reply: one refusing the
/// name names it as given, one refusing the value by the parameter's name, as Redis's do.
pub(super) fn set(scope: &Scope, name: &str, text: &str) -> Result<(), String> {
    let Some(parameter) = PARAMETERS.iter().find(|parameter| parameter.name.eq_ignore_ascii_case(name)) else {
        return Err(format!("ERR Unknown option or number of arguments for CONFIG SET - '{name}'"));
    };
    let failed = |named: &str, reason: &str| {
        format!("ERR CONFIG SET failed (possibly related to argument '{named}') - {reason}")
    };
    let applied = match &parameter.set {
        Set::Apply(apply) => apply(scope, text),
        Set::OnlyCurrent(why) => {
            let current = (parameter.get)(scope);
            if text.eq_ignore_ascii_case(&current) {
                Ok(())
            } else {
                Err(why(&current))
            }
        }
        Set::Immutable => return Err(failed(name, "can't set immutable config")),
        Set::Protected => return Err(failed(name, "can't set protected config")),
    };
    applied.map_err(|reason| failed(parameter.name, &reason))
}

static PARAMETERS: LazyLock<Vec<Parameter>> = LazyLock::new(|| {
    let mut all = vec![
        fixed("aclfile", |s| s.host.config.aclfile.as_ref().map(|p| p.display().to_string()).unwrap_or_default()),
        integer(
            "acllog-max-len",
            0..=i64::MAX,
            |s| s.engine.acl.log_max_len().to_string(),
            |s, n| {
                s.engine.acl.set_log_max_len(usize::try_from(n).unwrap_or(usize::MAX));
            },
        ),
        text(
            "acl-pubsub-default",
            |s| s.engine.acl.pubsub_default().into(),
            |s, text| match s.engine.acl.set_pubsub_default(text) {
                true => Ok(()),
                false => Err("argument(s) must be one of the following: allchannels, resetchannels".into()),
            },
        ),
        integer("timeout", 0..=i32::MAX.into(), |s| s.host.limits.timeout_secs.load(Ordering::Relaxed).to_string(), {
            |s, n| {
                s.host.limits.timeout_secs.store(n.unsigned_abs(), Ordering::Relaxed);
                // Idle clients wait on a deadline from the old value: each takes the new one
                // now, as Redis's clientsCron reads it on every pass.
                s.host.wake_every_connection();
            }
        }),
        integer(
            "tcp-keepalive",
            0..=i32::MAX.into(),
            |s| s.host.limits.tcp_keepalive_secs.load(Ordering::Relaxed).to_string(),
            |s, n| s.host.limits.tcp_keepalive_secs.store(n.unsigned_abs(), Ordering::Relaxed),
        ),
        text("loglevel", |_| crate::logging::redis_level().into(), |_, text| crate::logging::set_redis_level(text)),
        busy_threshold("busy-reply-threshold"),
        integer(
            "slowlog-log-slower-than",
            -1..=i64::MAX,
            |s| s.engine.slowlog.threshold_us().to_string(),
            |s, n| s.engine.slowlog.set_threshold_us(n),
        ),
        integer(
            "slowlog-max-len",
            0..=i64::MAX,
            |s| s.engine.slowlog.max_len().to_string(),
            |s, n| {
                s.engine.slowlog.set_max_len(usize::try_from(n).unwrap_or(usize::MAX));
            },
        ),
        integer(
            "latency-monitor-threshold",
            0..=i64::MAX,
            |s| s.engine.latency.threshold_ms().to_string(),
            |s, n| s.engine.latency.set_threshold_ms(n.unsigned_abs()),
        ),
        yes_or_no(
            "latency-tracking",
            |s| s.engine.counters.latency_tracking(),
            |s, on| s.engine.counters.set_latency_tracking(on),
        ),
        text(
            "latency-tracking-info-percentiles",
            |s| {
                let percentiles = s.engine.counters.info_percentiles().into_iter();
                percentiles.map(staykv_engine::stats::format_percentile).collect::<Vec<_>>().join(" ")
            },
            |s, text| s.engine.counters.set_info_percentiles(text).map_err(String::from),
        ),
        busy_threshold("lua-time-limit"),
        memory(
            "client-query-buffer-limit",
            1024 * 1024..=I64_MAX,
            |s| s.host.limits.query_buffer_limit().to_string(),
            |s, n| s.host.limits.query_buffer_limit.store(n, Ordering::Relaxed),
        ),
        memory(
            "proto-max-bulk-len",
            1024 * 1024..=I64_MAX,
            |s| s.host.limits.proto_max_bulk_len().to_string(),
            |s, n| s.host.limits.proto_max_bulk_len.store(n, Ordering::Relaxed),
        ),
        text(
            "client-output-buffer-limit",
            |s| s.host.limits.output().format(),
            |s, text| {
                let limits = s.host.limits.output().parse_over(text)?;
                s.host.limits.set_output(limits);
                Ok(())
            },
        ),
        text(
            "maxmemory-clients",
            |s| s.host.limits.format_client_memory_limit(),
            |s, text| {
                let limit = crate::limits::parse_client_memory_limit(text)?;
                s.host.limits.maxmemory_clients.store(limit, Ordering::Relaxed);
                Ok(())
            },
        ),
        text(
            "notify-keyspace-events",
            |s| staykv_engine::notify::format_flags(s.engine.notifier.flags()),
            |s, text| {
                let flags = staykv_engine::notify::parse_flags(text)
                    .ok_or("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")?;
                s.engine.notifier.set_flags(flags);
                Ok(())
            },
        ),
        listening("bind", |s| s.host.config.bind.to_string()),
        listening("port", |s| s.host.config.port.to_string()),
        listening("http-port", |s| s.host.config.http_port.to_string()),
        Parameter { name: "dir", get: Box::new(|s| s.host.config.dir.display().to_string()), set: Set::Protected },
        always_on("appendonly", "yes"),
        text(
            "appendfsync",
            |s| s.host.runtime.read().fsync.as_str().into(),
            |s, text| {
                let policy =
                    FsyncPolicy::parse(text).ok_or("argument(s) must be one of the following: everysec, always, no")?;
                s.host.persistence.set_fsync(policy);
                s.host.runtime.write().fsync = policy;
                Ok(())
            },
        ),
        text(
            "requirepass",
            |s| s.host.runtime.read().requirepass.clone().unwrap_or_default(),
            |s, text| {
                let password = (!text.is_empty()).then_some(text);
                // The value it has leaves `default` as ACL SETUSER made it since, as in Redis,
                // which applies only a change: a tool setting every parameter back must not
                // reset its passwords (or, from "", make it `nopass`).
                if s.host.runtime.read().requirepass.as_deref() == password {
                    return Ok(());
                }
                s.engine.acl.set_default_password(password.map(str::as_bytes), &s.engine.table);
                s.host.runtime.write().requirepass = password.map(String::from);
                Ok(())
            },
        ),
        memory("maxmemory", 0..=u64::MAX, |_| crate::memory::limit().to_string(), |_, n| crate::memory::set_limit(n)),
        text(
            "maxmemory-policy",
            |s| s.engine.eviction.policy().name().into(),
            |s, text| {
                let policy = Policy::parse(text).ok_or_else(|| {
                    format!(
                        "argument(s) must be one of the following: {}",
                        Policy::names().collect::<Vec<_>>().join(", ")
                    )
                })?;
                s.engine.eviction.set_policy(policy);
                Ok(())
            },
        ),
        // Taken up to INT_MAX as Redis takes it; an eviction samples at most 64 keys.
        integer(
            "maxmemory-samples",
            1..=i32::MAX.into(),
            |s| s.engine.eviction.samples().to_string(),
            |s, n| s.engine.eviction.set_samples(u32::try_from(n).unwrap_or(u32::MAX)),
        ),
        integer(
            "maxmemory-eviction-tenacity",
            0..=100,
            |s| s.engine.eviction.tenacity().to_string(),
            |s, n| s.engine.eviction.set_tenacity(u8::try_from(n).unwrap_or(100)),
        ),
        text(
            "maxclients",
            |s| s.host.runtime.read().maxclients.to_string(),
            |s, text| {
                let maxclients = usize::try_from(parse_integer(text, &(1..=u32::MAX.into()))?).unwrap_or(usize::MAX);
                // Room for them in the open files limit first, as Redis's updateMaxclients.
                crate::limits::refit_open_files_limit(maxclients)?;
                s.host.runtime.write().maxclients = maxclients;
                Ok(())
            },
        ),
        integer(
            "tracking-table-max-keys",
            0..=i64::MAX,
            |s| s.engine.tracking.max_keys().to_string(),
            |s, n| s.engine.tracking.set_max_keys(n.unsigned_abs()),
        ),
        integer(
            "hz",
            0..=i32::MAX.into(),
            |s| s.host.hz.get().to_string(),
            |s, n| {
                s.host.hz.set(u32::try_from(n).unwrap_or(u32::MAX));
            },
        ),
        integer(
            "stream-node-max-entries",
            0..=i64::MAX,
            |s| s.engine.stream_nodes.limits().max_entries.to_string(),
            |s, n| s.engine.stream_nodes.set_max_entries(n.unsigned_abs()),
        ),
        memory(
            "stream-node-max-bytes",
            0..=I64_MAX,
            |s| s.engine.stream_nodes.limits().max_bytes.to_string(),
            |s, n| s.engine.stream_nodes.set_max_bytes(n),
        ),
        fixed("databases", |s| s.host.config.databases.to_string()),
        always_on("save", ""),
        // Without a password, a start refuses a bind beyond loopback, and a client from beyond
        // it is refused (`connection::serve`).
        constant("protected-mode", "yes", |_| {
            "StayKV always refuses clients beyond loopback while there is no password".to_string()
        }),
        constant("lfu-log-factor", LFU_LOG_FACTOR, lfu_defaults),
        constant("lfu-decay-time", LFU_DECAY_MINUTES, lfu_defaults),
        fixed("disable-thp", |_| "yes".into()),
        integer(
            "auto-aof-rewrite-percentage",
            0..=i32::MAX.into(),
            |s| s.host.persistence.auto_rewrite_percentage().to_string(),
            |s, n| s.host.persistence.set_auto_rewrite_percentage(n.unsigned_abs()),
        ),
        memory(
            "auto-aof-rewrite-min-size",
            0..=I64_MAX,
            |s| s.host.persistence.auto_rewrite_min_size().to_string(),
            |s, n| s.host.persistence.set_auto_rewrite_min_size(n),
        ),
    ];
    all.extend(LazyOption::ALL.map(|option| {
        yes_or_no(
            option.name(),
            move |s| s.engine.lazyfree.is_on(option),
            move |s, on| s.engine.lazyfree.set(option, on),
        )
    }));
    all.extend(FIXED_ENCODING_CONFIG.iter().map(|&(name, value)| {
        constant(name, value, |current| {
            format!("StayKV's encoding parameters are fixed at Redis's defaults (this one is {current})")
        })
    }));
    all
});

/// A parameter whose value is checked or parsed by the function that applies it.
fn text(
    name: &'static str,
    get: impl Fn(&Scope) -> String + Send + Sync + 'static,
    apply: impl Fn(&Scope, &str) -> Result<(), String> + Send + Sync + 'static,
) -> Parameter {
    Parameter { name, get: Box::new(get), set: Set::Apply(Box::new(apply)) }
}

/// An integer parameter that takes values in `range`.
fn integer(
    name: &'static str,
    range: RangeInclusive<i64>,
    get: impl Fn(&Scope) -> String + Send + Sync + 'static,
    apply: impl Fn(&Scope, i64) + Send + Sync + 'static,
) -> Parameter {
    text(name, get, move |s, text| {
        apply(s, parse_integer(text, &range)?);
        Ok(())
    })
}

/// An integer parameter's value: as Redis's `string2ll` reads it (no sign but a minus, no
/// leading zeros, no spaces), in `range`.
fn parse_integer(text: &str, range: &RangeInclusive<i64>) -> Result<i64, String> {
    let n = staykv_engine::num::parse_i64(text.as_bytes()).ok_or("argument couldn't be parsed into an integer")?;
    within(n, range)
}

/// A byte count that takes `100mb`-style values (`config_memory`) in `range`.
fn memory(
    name: &'static str,
    range: RangeInclusive<u64>,
    get: impl Fn(&Scope) -> String + Send + Sync + 'static,
    apply: impl Fn(&Scope, u64) + Send + Sync + 'static,
) -> Parameter {
    text(name, get, move |s, text| {
        let bytes = config_memory(text).ok_or("argument must be a memory value")?;
        apply(s, within(bytes, &range)?);
        Ok(())
    })
}

fn yes_or_no(
    name: &'static str,
    get: impl Fn(&Scope) -> bool + Send + Sync + 'static,
    apply: impl Fn(&Scope, bool) + Send + Sync + 'static,
) -> Parameter {
    let get = move |s: &Scope| if get(s) { "yes" } else { "no" }.to_string();
    text(name, get, move |s, text| {
        match text.to_ascii_lowercase().as_str() {
            "yes" => apply(s, true),
            "no" => apply(s, false),
            _ => return Err("argument must be 'yes' or 'no'".into()),
        }
        Ok(())
    })
}

/// Where a server listens: Redis re-listens on a new address or port, StayKV only at a
/// restart.
fn listening(name: &'static str, get: fn(&Scope) -> String) -> Parameter {
    let why = |current: &str| format!("StayKV listens where it started ({current}) until a restart");
    Parameter { name, get: Box::new(get), set: Set::OnlyCurrent(why) }
}

/// What these switch on in Redis is always on here, and there is no save schedule.
fn always_on(name: &'static str, value: &'static str) -> Parameter {
    let why =
        |_: &str| "StayKV logs every write and compacts its log as it grows (appendonly yes, save \"\")".to_string();
    constant(name, value, why)
}

/// A parameter StayKV holds at `value`: CONFIG SET takes that value, and says why not another.
fn constant(
    name: &'static str,
    value: impl std::fmt::Display + Send + Sync + 'static,
    why: fn(&str) -> String,
) -> Parameter {
    Parameter { name, get: Box::new(move |_| value.to_string()), set: Set::OnlyCurrent(why) }
}

fn lfu_defaults(_: &str) -> String {
    format!(
        "StayKV's LFU counter keeps Redis's defaults (lfu-log-factor {LFU_LOG_FACTOR}, lfu-decay-time {LFU_DECAY_MINUTES})"
    )
}

fn fixed(name: &'static str, get: fn(&Scope) -> String) -> Parameter {
    Parameter { name, get: Box::new(get), set: Set::Immutable }
}

/// `busy-reply-threshold` and its old name `lua-time-limit`: one setting.
fn busy_threshold(name: &'static str) -> Parameter {
    integer(
        name,
        0..=i64::MAX,
        |s| s.engine.scripting.busy_threshold_ms().to_string(),
        |s, n| {
            s.engine.scripting.set_busy_threshold_ms(n.unsigned_abs());
        },
    )
}

fn within<T: PartialOrd + std::fmt::Display + Copy>(n: T, range: &RangeInclusive<T>) -> Result<T, String> {
    if range.contains(&n) {
        Ok(n)
    } else {
        Err(format!("argument must be between {} and {} inclusive", range.start(), range.end()))
    }
}
