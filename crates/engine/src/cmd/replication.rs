//! Replication commands (Redis's `replication.c`). StayKV has no replicas and is never one:
//! it answers these as a Redis master without replicas does, accepts what `redis-cli --rdb`
//! sends to take a snapshot, and refuses with a reason what would need a replication stream.

use bytes::Bytes;
use staykv_resp::Reply;

use super::{is, text};
use crate::client::RdbInclude;
use crate::command::{flags::*, CmdResult, CommandSpec};
use crate::errors::{self, err};
use crate::exec::Ctx;
use crate::num::parse_i64;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("role", 1, NOSCRIPT | LOADING | STALE | FAST, "server", role).categories(&["admin", "dangerous"]),
    CommandSpec::new("replconf", -1, ADMIN | NOSCRIPT | LOADING | STALE | ALLOW_BUSY, "server", replconf),
    CommandSpec::new("sync", 1, ADMIN | NOSCRIPT | NO_MULTI | NO_ASYNC_LOADING, "server", sync),
    CommandSpec::new("replicaof", 3, ADMIN | NOSCRIPT | STALE | NO_ASYNC_LOADING, "server", replicaof),
    CommandSpec::new("slaveof", 3, ADMIN | NOSCRIPT | STALE | NO_ASYNC_LOADING, "server", replicaof),
    CommandSpec::new("failover", -1, ADMIN | NOSCRIPT | STALE, "server", failover),
];

/// ROLE: StayKV has no replicas, so it is a master at replication offset 0.
fn role(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Ok(Reply::Array(vec![Reply::bulk_str("master"), Reply::Int(0), Reply::Array(Vec::new())]))
}

/// `REPLCONF <option> <value> ...`: what `redis-cli --rdb` sends before SYNC (`capa eof`,
/// `rdb-only 1`), and what a replica announces of itself, accepted as Redis 7.0 accepts them.
/// `ACK` and `GETACK` come from replicas only, which StayKV does not have.
fn replconf(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(errors::syntax());
    }
    for pair in args.get(1..).unwrap_or_default().chunks_exact(2) {
        let [option, value] = pair else { continue };
        if is(option, "rdb-only") {
            ctx.client.rdb_only = match parse_i64(value) {
                Some(0) => false,
                Some(1) => true,
                Some(_) => return Err(err("ERR value is out of range, value must between 0 and 1")),
                None => return Err(err("ERR value is not an integer or out of range")),
            };
        } else if is(option, "rdb-filter-only") {
            ctx.client.rdb_include = rdb_include(value)?;
        } else if is(option, "listening-port") {
            parse_i64(value).ok_or_else(|| err("ERR value is not an integer or out of range"))?;
        } else if !is(option, "ip-address") && !is(option, "capa") {
            return Err(err(&format!("ERR Unrecognized REPLCONF option: {}", text(option))));
        }
    }
    Ok(Reply::Ok)
}

/// `rdb-filter-only`'s value: the parts of the dataset to include, space-separated (quotes
/// as in redis-cli); Redis 7.0 knows one, `functions`, and an empty list includes nothing.
fn rdb_include(value: &[u8]) -> Result<RdbInclude, Reply> {
    let filters = staykv_resp::split_args(value).ok_or_else(|| err("ERR Missing rdb-filter-only values"))?;
    let mut include = RdbInclude::Nothing;
    for filter in &filters {
        if !is(filter, "functions") {
            return Err(err(&format!("ERR Unsupported rdb-filter-only option: {}", text(filter))));
        }
        include = RdbInclude::Functions;
    }
    Ok(include)
}

/// `SYNC` after `REPLCONF rdb-only 1` (`redis-cli --rdb`): the host sends a snapshot of
/// everything acknowledged so far, as an RDB payload (`$<length>` and the file, no CRLF), and
/// the connection closes. With `rdb-filter-only` the engine writes the RDB itself: the
/// function libraries or nothing, no keys (`redis-cli --functions-rdb`). StayKV has no
/// replicas: without `rdb-only` (a replica, which would then wait for the stream of writes)
/// SYNC is refused.
fn sync(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    if !ctx.client.rdb_only {
        return Err(err(SYNC_WITHOUT_RDB_ONLY));
    }
    let sent = match ctx.client.rdb_include {
        RdbInclude::Everything => ctx.host.send_snapshot(ctx.client.id),
        include => {
            keyless_rdb(ctx, include == RdbInclude::Functions).and_then(|rdb| ctx.host.send_rdb(ctx.client.id, rdb))
        }
    };
    sent.map_err(Reply::Error)?;
    ctx.client.close_after_reply = true;
    Ok(Reply::Many(Vec::new()))
}

/// An RDB file without keys: the function libraries when `with_libraries`, else empty.
fn keyless_rdb(ctx: &Ctx, with_libraries: bool) -> Result<Vec<u8>, String> {
    let libraries = if with_libraries { ctx.engine.scripting.library_codes() } else { Vec::new() };
    staykv_rdb::keyless_file(libraries.iter().map(|code| &code[..]))
        .map_err(|e| format!("ERR cannot encode the RDB: {e}"))
}

/// SYNC's answer to a would-be replica.
const SYNC_WITHOUT_RDB_ONLY: &str =
    "ERR StayKV has no replication: SYNC sends only a snapshot, after REPLCONF rdb-only 1 (redis-cli --rdb)";

/// `REPLICAOF NO ONE` (and its old name SLAVEOF): a master stays one, `+OK` as in Redis.
/// `REPLICAOF <host> <port>` would make this server a replica, which StayKV cannot be: once
/// the port passes Redis's check, it is refused with the reason.
fn replicaof(_ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let [_, host, port] = args else { return Err(errors::syntax()) };
    if is(host, "no") && is(port, "one") {
        return Ok(Reply::Ok);
    }
    if !parse_i64(port).is_some_and(|port| (0..=65535).contains(&port)) {
        return Err(err("ERR Invalid master port"));
    }
    Err(err(REPLICAOF_REFUSED))
}

const REPLICAOF_REFUSED: &str =
    "ERR StayKV has no replication: it cannot become a replica (REPLICAOF NO ONE is accepted: it is a master)";

/// `FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms]`: the arguments are checked as Redis
/// 7.0 checks them, then, with no replica to hand over to, refused as Redis refuses a master
/// without replicas.
fn failover(_ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let options = args.get(1..).unwrap_or_default();
    if let [only] = options {
        if is(only, "abort") {
            return Err(err("ERR No failover in progress."));
        }
    }
    let (mut timed, mut target, mut force) = (false, false, false);
    let mut rest = options;
    while let Some((option, after)) = rest.split_first() {
        rest = match (option, after) {
            (o, [ms, after @ ..]) if is(o, "timeout") && !timed => {
                let ms = parse_i64(ms).ok_or_else(|| err(errors::NOT_INTEGER))?;
                if ms <= 0 {
                    return Err(err("ERR FAILOVER timeout must be greater than 0"));
                }
                timed = true;
                after
            }
            (o, [_host, port, after @ ..]) if is(o, "to") && !target => {
                parse_i64(port).ok_or_else(|| err(errors::NOT_INTEGER))?;
                target = true;
                after
            }
            (o, after) if is(o, "force") && !force => {
                force = true;
                after
            }
            _ => return Err(errors::syntax()),
        };
    }
    Err(err("ERR FAILOVER requires connected replicas."))
}
