//! Connection commands: PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET, CLIENT.

use bytes::Bytes;
use staykv_resp::{Protocol, Reply};

use super::keys::db_index;
use super::{arg, int_arg, is, text};
use crate::blocking::Unblock;
use crate::client::ReplyMode;
use crate::command::{flags::*, CmdResult, CommandSpec, SubcommandSpec};
use crate::errors::{self, err};
use crate::exec::Ctx;
use crate::host::{ClientFilter, ClientType};

/// The Redis version StayKV answers as: clients switch features on it.
pub const REDIS_COMPAT_VERSION: &str = "7.0.15";

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("ping", -1, FAST | SUBSCRIBED_OK, "connection", ping)
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
    CommandSpec::new("echo", 2, FAST | LOADING | STALE, "connection", echo),
    CommandSpec::new("hello", -1, NO_AUTH | FAST | STALE | LOADING | ALLOW_BUSY | NOSCRIPT, "connection", hello),
    CommandSpec::new("auth", -2, NO_AUTH | FAST | STALE | LOADING | NOSCRIPT | ALLOW_BUSY, "connection", auth),
    CommandSpec::new("select", 2, FAST | LOADING | STALE, "connection", select),
    CommandSpec::new(
        "quit",
        -1,
        NO_AUTH | FAST | SUBSCRIBED_OK | STALE | LOADING | NOSCRIPT | TRANSACTION_CONTROL | ALLOW_BUSY,
        "connection",
        quit,
    ),
    CommandSpec::new(
        "reset",
        1,
        NO_AUTH | FAST | SUBSCRIBED_OK | STALE | LOADING | NOSCRIPT | TRANSACTION_CONTROL | ALLOW_BUSY,
        "connection",
        reset,
    ),
    CommandSpec::new("client", -2, ADMIN | NOSCRIPT | LOADING | STALE, "connection", client)
        .subcommands(CLIENT_SUBCOMMANDS),
];

fn ping(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 2 {
        return Err(errors::wrong_arity("ping"));
    }
    if ctx.client.protocol == Protocol::Resp2 && ctx.client.subscription_count() > 0 {
        let payload = args.get(1).cloned().unwrap_or_default();
        return Ok(Reply::Array(vec![Reply::bulk_str("pong"), Reply::Bulk(payload)]));
    }
    match args.get(1) {
        None => Ok(Reply::Status("PONG")),
        Some(payload) => Ok(Reply::Bulk(payload.clone())),
    }
}

fn echo(_ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Bulk(arg(args, 1)?.clone()))
}

fn hello(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut protocol = ctx.client.protocol;
    if let Some(version) = args.get(1) {
        protocol = match int_arg(version) {
            Ok(2) => Protocol::Resp2,
            Ok(3) => Protocol::Resp3,
            Ok(_) => return Err(err("NOPROTO unsupported protocol version")),
            Err(_) => return Err(err("ERR Protocol version is not an integer or out of range")),
        };
    }
    let mut name = None;
    let mut i = 2;
    while let Some(option) = args.get(i) {
        if is(option, "auth") && i + 2 < args.len() {
            authenticate(ctx, arg(args, 0)?, arg(args, i + 1)?, arg(args, i + 2)?)?;
            i += 3;
        } else if is(option, "setname") && i + 1 < args.len() {
            name = Some(valid_client_name(arg(args, i + 1)?)?);
            i += 2;
        } else {
            return Err(errors::quoting("ERR Syntax error in HELLO option '", option, "'"));
        }
    }
    if !ctx.client.authenticated {
        return Err(err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"));
    }
    if let Some(name) = name {
        ctx.client.name = name;
    }
    ctx.client.protocol = protocol;
    ctx.host.client_updated(ctx.client);
    let version = if protocol == Protocol::Resp3 { 3 } else { 2 };
    Ok(Reply::Map(vec![
        (Reply::bulk_str("server"), Reply::bulk_str("redis")),
        (Reply::bulk_str("version"), Reply::bulk_str(REDIS_COMPAT_VERSION)),
        (Reply::bulk_str("proto"), Reply::Int(version)),
        (Reply::bulk_str("id"), Reply::Int(ctx.client.id as i64)),
        (Reply::bulk_str("mode"), Reply::bulk_str("standalone")),
        (Reply::bulk_str("role"), Reply::bulk_str("master")),
        (Reply::bulk_str("modules"), Reply::Array(Vec::new())),
    ]))
}

fn auth(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (user, password) = match args {
        [_, password] => {
            if ctx.engine.acl.user("default").is_some_and(|u| u.nopass) {
                return Err(err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"));
            }
            (&b"default"[..], password)
        }
        [_, user, password] => (&user[..], password),
        _ => return Err(errors::syntax()),
    };
    authenticate(ctx, arg(args, 0)?, user, password)?;
    Ok(Reply::Ok)
}

/// Switch the client to `user` if the password opens it; a failure is logged in ACL LOG
/// (its object the command, `command` as the client typed it, as in Redis) and leaves the
/// client as it was.
fn authenticate(ctx: &mut Ctx, command: &[u8], user: &[u8], password: &[u8]) -> Result<(), Reply> {
    if let Err(error) = ctx.engine.acl.authenticate(user, password) {
        let context = if ctx.client.multi.is_some() || ctx.in_exec() { "multi" } else { "toplevel" };
        ctx.engine.acl_log(ctx.client, ctx.host, "auth", context, text(command), text(user), ctx.now);
        return Err(Reply::Error(error));
    }
    ctx.client.authenticated = true;
    ctx.client.user = text(user);
    ctx.client.acl_user = None;
    ctx.host.client_updated(ctx.client);
    Ok(())
}

fn select(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ctx.client.db = db_index(ctx, arg(args, 1)?)?;
    ctx.host.client_updated(ctx.client);
    Ok(Reply::Ok)
}

fn quit(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    ctx.client.close_after_reply = true;
    Ok(Reply::Ok)
}

fn reset(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let engine = ctx.engine;
    engine.watches.unwatch_all(ctx.client);
    crate::cmd::pubsub::forget(engine, ctx.client);
    engine.pubsub.remove_monitor(ctx.client.id);
    super::client_tracking::turn_off(ctx);
    let client = &mut *ctx.client;
    client.multi = None;
    client.multi_failed = false;
    client.db = 0;
    client.protocol = Protocol::Resp2;
    client.name = None;
    // A skip in force still silences RESET's own reply: Redis's clearClientConnectionState
    // clears OFF and a skip asked for next, not the one under way.
    if matches!(client.reply_mode, ReplyMode::Off | ReplyMode::SkipNext) {
        client.reply_mode = ReplyMode::On;
    }
    // CLIENT NO-EVICT stays, as in Redis 7.0 (7.2 clears it).
    client.no_touch = false;
    // Back to the default user, authenticated only if it needs no password (as Redis).
    client.user = "default".into();
    client.acl_user = None;
    client.authenticated = !ctx.engine.acl.auth_required();
    ctx.host.client_updated(ctx.client);
    Ok(Reply::Status("RESET"))
}

/// Redis refuses names with spaces, newlines or other characters outside `!`..`~`.
fn valid_client_name(name: &Bytes) -> Result<Option<Bytes>, Reply> {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(err("ERR Client names cannot contain spaces, newlines or special characters."));
    }
    Ok((!name.is_empty()).then(|| name.clone()))
}

fn on_off(value: &[u8]) -> Result<bool, Reply> {
    match value {
        v if is(v, "on") => Ok(true),
        v if is(v, "off") => Ok(false),
        _ => Err(errors::syntax()),
    }
}

const CLIENT_HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    // Redis 7.2's, which current client libraries send.
    "SETINFO <LIB-NAME|LIB-VER> <value>",
    "    Set client library name or version.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "NO-TOUCH (ON|OFF)",
    "    Will not touch LRU/LFU stats when this mode is on.",
    "HELP",
    "    Prints this help.",
];

/// The subcommands StayKV has, with Redis 7's arities (checked before [`client`] runs).
const CLIENT_SUBCOMMANDS: &[SubcommandSpec] = &[
    SubcommandSpec::new("id", 2, NOSCRIPT | LOADING | STALE).categories(&["connection"]),
    SubcommandSpec::new("getname", 2, NOSCRIPT | LOADING | STALE).categories(&["connection"]),
    SubcommandSpec::new("setname", 3, NOSCRIPT | LOADING | STALE).categories(&["connection"]),
    SubcommandSpec::new("setinfo", 4, NOSCRIPT | LOADING | STALE)
        .categories(&["connection"])
        .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
    SubcommandSpec::new("no-evict", 3, ADMIN | NOSCRIPT | LOADING | STALE).categories(&["connection"]),
    SubcommandSpec::new("no-touch", 3, NOSCRIPT | LOADING | STALE).categories(&["connection"]),
    SubcommandSpec::new("reply", 3, NOSCRIPT | LOADING | STALE).categories(&["connection"]),
    SubcommandSpec::new("info", 2, NOSCRIPT | LOADING | STALE)
        .categories(&["connection"])
        .tips(&["nondeterministic_output"]),
    SubcommandSpec::new("list", -2, ADMIN | NOSCRIPT | LOADING | STALE)
        .categories(&["connection"])
        .tips(&["nondeterministic_output"]),
    SubcommandSpec::new("kill", -3, ADMIN | NOSCRIPT | LOADING | STALE).categories(&["connection"]),
    SubcommandSpec::new("pause", -3, ADMIN | NOSCRIPT | LOADING | STALE).categories(&["connection"]),
    SubcommandSpec::new("unpause", 2, ADMIN | NOSCRIPT | LOADING | STALE).categories(&["connection"]),
    SubcommandSpec::new("unblock", -3, ADMIN | NOSCRIPT | LOADING | STALE).categories(&["connection"]),
    SubcommandSpec::new("tracking", -3, NOSCRIPT | LOADING | STALE).categories(&["connection"]),
    SubcommandSpec::new("caching", 3, NOSCRIPT | LOADING | STALE).categories(&["connection"]),
    SubcommandSpec::new("getredir", 2, NOSCRIPT | LOADING | STALE).categories(&["connection"]),
    SubcommandSpec::new("trackinginfo", 2, NOSCRIPT | LOADING | STALE).categories(&["connection"]),
    SubcommandSpec::new("help", 2, LOADING | STALE).categories(&["connection"]),
];

fn client(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = arg(args, 1)?;
    let c = &mut *ctx.client;
    let reply = match sub {
        s if is(s, "id") => Reply::Int(c.id as i64),
        s if is(s, "getname") => c.name.clone().map_or(Reply::Nil, Reply::Bulk),
        s if is(s, "setname") => {
            c.name = valid_client_name(arg(args, 2)?)?;
            Reply::Ok
        }
        s if is(s, "setinfo") => {
            let value = arg(args, 3)?;
            if value.iter().any(|&ch| !(b'!'..=b'~').contains(&ch)) {
                return Err(Reply::Error(format!(
                    "ERR {} cannot contain spaces, newlines or special characters.",
                    text(arg(args, 2)?).to_ascii_lowercase()
                )));
            }
            match arg(args, 2)? {
                attr if is(attr, "lib-name") => c.lib_name = Some(value.clone()),
                attr if is(attr, "lib-ver") => c.lib_ver = Some(value.clone()),
                attr => return Err(errors::quoting("ERR Unrecognized option '", attr, "'")),
            }
            Reply::Ok
        }
        s if is(s, "no-evict") => {
            c.no_evict = on_off(arg(args, 2)?)?;
            Reply::Ok
        }
        s if is(s, "no-touch") => {
            c.no_touch = on_off(arg(args, 2)?)?;
            Reply::Ok
        }
        s if is(s, "reply") => {
            c.reply_mode = match arg(args, 2)? {
                m if is(m, "on") => ReplyMode::On,
                m if is(m, "off") => ReplyMode::Off,
                // Under OFF a skip changes nothing, as in Redis.
                m if is(m, "skip") && c.reply_mode == ReplyMode::Off => ReplyMode::Off,
                m if is(m, "skip") => ReplyMode::SkipNext,
                _ => return Err(errors::syntax()),
            };
            Reply::Ok
        }
        s if is(s, "info") => Reply::verbatim(ctx.host.client_list(ctx.client, &ClientFilter::id(ctx.client.id))),
        s if is(s, "list") => Reply::verbatim(client_list(ctx, args)?),
        s if is(s, "kill") => client_kill(ctx, args)?,
        s if is(s, "pause") => client_pause(ctx, args)?,
        s if is(s, "unblock") => client_unblock(ctx, args)?,
        s if is(s, "unpause") => {
            ctx.engine.pause.unpause();
            Reply::Ok
        }
        s if is(s, "tracking") => super::client_tracking::tracking(ctx, args)?,
        s if is(s, "caching") => super::client_tracking::caching(ctx, args)?,
        s if is(s, "getredir") => super::client_tracking::getredir(ctx),
        s if is(s, "trackinginfo") => super::client_tracking::trackinginfo(ctx),
        s if is(s, "help") => super::help(CLIENT_HELP),
        s => return Err(errors::unknown_subcommand(s, "client")),
    };
    ctx.host.client_updated(ctx.client);
    Ok(reply)
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: 1 if that client was blocked (it then answers as if its
/// timeout had passed, or with an error), else 0.
fn client_unblock(ctx: &mut Ctx, args: &[Bytes]) -> Result<Reply, Reply> {
    if args.len() > 4 {
        return Err(errors::subcommand_syntax(arg(args, 1)?, "client"));
    }
    let id = int_arg(arg(args, 2)?)?;
    let how = match args.get(3) {
        None => Unblock::Timeout,
        Some(reason) if is(reason, "timeout") => Unblock::Timeout,
        Some(reason) if is(reason, "error") => Unblock::Error,
        Some(_) => return Err(err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")),
    };
    let unblocked = u64::try_from(id).is_ok_and(|id| ctx.engine.blocked.unblock(id, how));
    Ok(Reply::Int(i64::from(unblocked)))
}

/// CLIENT PAUSE timeout [WRITE|ALL] (ALL by default).
fn client_pause(ctx: &mut Ctx, args: &[Bytes]) -> Result<Reply, Reply> {
    if args.len() > 4 {
        return Err(errors::subcommand_syntax(arg(args, 1)?, "client"));
    }
    let timeout =
        crate::num::parse_i64(arg(args, 2)?).ok_or_else(|| err("ERR timeout is not an integer or out of range"))?;
    let timeout = u64::try_from(timeout).map_err(|_| err("ERR timeout is negative"))?;
    let all = match args.get(3) {
        None => true,
        Some(mode) if is(mode, "all") => true,
        Some(mode) if is(mode, "write") => false,
        Some(_) => return Err(err("ERR CLIENT PAUSE mode must be WRITE or ALL")),
    };
    ctx.engine.pause.pause(ctx.now.saturating_add(timeout), all, ctx.now);
    Ok(Reply::Ok)
}

fn client_list(ctx: &mut Ctx, args: &[Bytes]) -> Result<String, Reply> {
    let mut filter = ClientFilter::default();
    let mut i = 2;
    while let Some(option) = args.get(i) {
        if is(option, "type") && i + 1 < args.len() {
            filter.client_type = Some(client_type(arg(args, i + 1)?)?);
            i += 2;
        } else if is(option, "id") && i + 1 < args.len() {
            let mut list = Vec::new();
            for id in args.iter().skip(i + 1) {
                let id = int_arg(id).map_err(|_| err("ERR Invalid client ID"))?;
                // An ID no client can have (0, negative) lists nothing, as in Redis.
                list.extend(u64::try_from(id).ok());
            }
            filter.ids = Some(list);
            i = args.len();
        } else {
            return Err(errors::syntax());
        }
    }
    Ok(ctx.host.client_list(ctx.client, &filter))
}

fn client_type(name: &[u8]) -> Result<ClientType, Reply> {
    ClientType::parse(name).ok_or_else(|| errors::quoting("ERR Unknown client type '", name, "'"))
}

/// CLIENT KILL addr (the old form, which may close the caller too), or CLIENT KILL with
/// filters (ID, TYPE, USER, ADDR, LADDR, SKIPME yes|no), which skips the caller by default.
fn client_kill(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() == 3 {
        let filter = ClientFilter { addr: Some(text(arg(args, 2)?)), ..ClientFilter::default() };
        return match ctx.host.client_kill(&filter) {
            0 => Err(err("ERR No such client")),
            _ => Ok(Reply::Ok),
        };
    }
    let mut filter = ClientFilter { skip_me: Some(ctx.client.id), ..ClientFilter::default() };
    let pairs = args.get(2..).unwrap_or_default();
    if pairs.len() % 2 != 0 {
        return Err(errors::syntax());
    }
    for pair in pairs.chunks_exact(2) {
        let (option, value) = (arg(pair, 0)?, arg(pair, 1)?);
        match option {
            o if is(o, "id") => {
                let id = int_arg(value)
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| err("ERR client-id should be greater than 0"))?;
                filter.ids = Some(vec![id as u64]);
            }
            o if is(o, "type") => filter.client_type = Some(client_type(value)?),
            o if is(o, "addr") => filter.addr = Some(text(value)),
            o if is(o, "laddr") => filter.laddr = Some(text(value)),
            o if is(o, "user") => {
                if ctx.engine.acl.user_named(value).is_none() {
                    return Err(errors::quoting("ERR No such user '", value, "'"));
                }
                filter.user = Some(text(value));
            }
            o if is(o, "skipme") => {
                filter.skip_me = match value {
                    v if is(v, "yes") => Some(ctx.client.id),
                    v if is(v, "no") => None,
                    _ => return Err(errors::syntax()),
                }
            }
            _ => return Err(errors::syntax()),
        }
    }
    Ok(Reply::Int(ctx.host.client_kill(&filter) as i64))
}
