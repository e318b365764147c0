//! Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT, FCALL, FCALL_RO and
//! FUNCTION (Redis's `eval.c` and `functions.c`). The Lua side lives in [`crate::scripting`].
//!
//! EVAL and FCALL lock every shard: a script may touch keys it did not declare, and holding
//! every lock makes it atomic. Their declared keys are still reported (COMMAND GETKEYS).
//! FUNCTION locks every shard too, like Redis's single thread: its LOAD/DELETE/FLUSH effects
//! (logged so that libraries survive a restart) are then durable before the reply. SCRIPT
//! takes no lock. SCRIPT KILL and FUNCTION KILL against a script running past the busy
//! threshold are answered before any lock is taken (`Scripting::busy_reply`).

use bytes::Bytes;
use staykv_resp::Reply;

use super::{arg, is};
use crate::command::{flags::*, tips, CmdResult, CommandSpec, SubcommandSpec};
use crate::errors::{self, err};
use crate::exec::Ctx;
use crate::key_spec::{key::*, KeySpec};
use crate::scripting::{eval_keys, EvalMode, RestorePolicy};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "eval",
        -3,
        RUNS_SCRIPT | NOSCRIPT | STALE | ALL_SHARDS | MAY_REPLICATE | SKIP_MONITOR | NO_MANDATORY_KEYS,
        "scripting",
        eval,
    )
    .key_finder(eval_keys)
    .key_specs(&[KeySpec::index(2, RW | ACCESS | UPDATE)
        .keynum(0, 1, 1)
        .note("We cannot tell how the keys will be used so we assume the worst, RW and UPDATE")]),
    CommandSpec::new(
        "evalsha",
        -3,
        RUNS_SCRIPT | NOSCRIPT | STALE | ALL_SHARDS | MAY_REPLICATE | SKIP_MONITOR | NO_MANDATORY_KEYS,
        "scripting",
        evalsha,
    )
    .key_finder(eval_keys)
    .key_specs(&[KeySpec::index(2, RW | ACCESS | UPDATE).keynum(0, 1, 1)]),
    CommandSpec::new(
        "eval_ro",
        -3,
        RUNS_SCRIPT | NOSCRIPT | STALE | READONLY | ALL_SHARDS | SKIP_MONITOR | NO_MANDATORY_KEYS,
        "scripting",
        eval_ro,
    )
    .key_finder(eval_keys)
    .key_specs(&[KeySpec::index(2, RO | ACCESS)
        .keynum(0, 1, 1)
        .note("We cannot tell how the keys will be used so we assume the worst, RO and ACCESS")]),
    CommandSpec::new(
        "evalsha_ro",
        -3,
        RUNS_SCRIPT | NOSCRIPT | STALE | READONLY | ALL_SHARDS | SKIP_MONITOR | NO_MANDATORY_KEYS,
        "scripting",
        evalsha_ro,
    )
    .key_finder(eval_keys)
    .key_specs(&[KeySpec::index(2, RO | ACCESS).keynum(0, 1, 1)]),
    CommandSpec::new(
        "fcall",
        -3,
        RUNS_SCRIPT | NOSCRIPT | STALE | ALL_SHARDS | MAY_REPLICATE | SKIP_MONITOR | NO_MANDATORY_KEYS,
        "scripting",
        fcall,
    )
    .key_finder(eval_keys)
    .key_specs(&[KeySpec::index(2, RW | ACCESS | UPDATE)
        .keynum(0, 1, 1)
        .note("We cannot tell how the keys will be used so we assume the worst, RW and UPDATE")]),
    CommandSpec::new(
        "fcall_ro",
        -3,
        RUNS_SCRIPT | NOSCRIPT | STALE | READONLY | ALL_SHARDS | SKIP_MONITOR | NO_MANDATORY_KEYS,
        "scripting",
        fcall_ro,
    )
    .key_finder(eval_keys)
    .key_specs(&[KeySpec::index(2, RO | ACCESS)
        .keynum(0, 1, 1)
        .note("We cannot tell how the keys will be used so we assume the worst, RO and ACCESS")]),
    CommandSpec::new("script", -2, NOSCRIPT, "scripting", script).subcommands(SCRIPT_SUBCOMMANDS),
    CommandSpec::new("function", -2, NOSCRIPT | ALL_SHARDS, "scripting", function).subcommands(FUNCTION_SUBCOMMANDS),
];

/// The FUNCTION subcommands StayKV has, with Redis 7's arities (checked before the handler).
const FUNCTION_SUBCOMMANDS: &[SubcommandSpec] = &[
    SubcommandSpec::new("help", 2, LOADING | STALE).categories(&["scripting"]),
    SubcommandSpec::new("delete", 3, NOSCRIPT | WRITE)
        .categories(&["scripting"])
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
    SubcommandSpec::new("list", -2, NOSCRIPT).categories(&["scripting"]).tips(&["nondeterministic_output_order"]),
    SubcommandSpec::new("flush", -2, NOSCRIPT | WRITE)
        .categories(&["scripting"])
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
    SubcommandSpec::new("restore", -3, NOSCRIPT | WRITE | DENYOOM)
        .categories(&["scripting"])
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
    SubcommandSpec::new("load", -3, NOSCRIPT | WRITE | DENYOOM)
        .categories(&["scripting"])
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
    SubcommandSpec::new("dump", 2, NOSCRIPT).categories(&["scripting"]),
    SubcommandSpec::new("kill", 2, NOSCRIPT | ALLOW_BUSY)
        .categories(&["scripting"])
        .tips(&["request_policy:all_shards", "response_policy:one_succeeded"]),
    SubcommandSpec::new("stats", 2, NOSCRIPT | ALLOW_BUSY).categories(&["scripting"]).tips(tips::SHARD_REPORT),
];

/// The SCRIPT subcommands StayKV has, with Redis 7's arities (checked before the handler).
const SCRIPT_SUBCOMMANDS: &[SubcommandSpec] = &[
    SubcommandSpec::new("help", 2, LOADING | STALE).categories(&["scripting"]),
    SubcommandSpec::new("exists", -3, NOSCRIPT)
        .categories(&["scripting"])
        .tips(&["request_policy:all_shards", "response_policy:agg_logical_and"]),
    SubcommandSpec::new("debug", 3, NOSCRIPT).categories(&["scripting"]),
    SubcommandSpec::new("flush", -2, NOSCRIPT)
        .categories(&["scripting"])
        .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
    SubcommandSpec::new("load", 3, NOSCRIPT | STALE)
        .categories(&["scripting"])
        .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
    SubcommandSpec::new("kill", 2, NOSCRIPT | ALLOW_BUSY)
        .categories(&["scripting"])
        .tips(&["request_policy:all_shards", "response_policy:one_succeeded"]),
];

fn eval(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let engine = ctx.engine;
    engine.scripting.eval(ctx, args, EvalMode { by_sha: false, read_only: false })
}

fn evalsha(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let engine = ctx.engine;
    engine.scripting.eval(ctx, args, EvalMode { by_sha: true, read_only: false })
}

fn eval_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let engine = ctx.engine;
    engine.scripting.eval(ctx, args, EvalMode { by_sha: false, read_only: true })
}

fn evalsha_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let engine = ctx.engine;
    engine.scripting.eval(ctx, args, EvalMode { by_sha: true, read_only: true })
}

fn fcall(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let engine = ctx.engine;
    engine.scripting.fcall(ctx, args, false)
}

fn fcall_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let engine = ctx.engine;
    engine.scripting.fcall(ctx, args, true)
}

const SCRIPT_HELP: &[&str] = &[
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
];

fn script(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = arg(args, 1)?;
    let scripting = &ctx.engine.scripting;
    // The subcommand and its arity were checked before running (`SCRIPT_SUBCOMMANDS`).
    match sub {
        s if is(s, "help") => Ok(super::help(SCRIPT_HELP)),
        s if is(s, "flush") => {
            match args.get(2..).unwrap_or_default() {
                [] => {}
                [mode] if is(mode, "sync") || is(mode, "async") => {}
                _ => return Err(err("ERR SCRIPT FLUSH only support SYNC|ASYNC option")),
            }
            scripting.script_flush();
            Ok(Reply::Ok)
        }
        s if is(s, "exists") => Ok(Reply::Array(
            args.iter().skip(2).map(|sha| Reply::Int(i64::from(scripting.script_exists(sha)))).collect(),
        )),
        s if is(s, "load") => {
            let sha = scripting.script_load(arg(args, 2)?)?;
            Ok(Reply::bulk_str(&sha))
        }
        s if is(s, "kill") => scripting.kill(true, ctx.now),
        s if is(s, "debug") => Err(err("ERR SCRIPT DEBUG is not supported by StayKV")),
        s => Err(errors::unknown_subcommand(s, "script")),
    }
}

const FUNCTION_HELP: &[&str] = &[
    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
    "HELP",
    "    Prints this help.",
];

fn function(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = arg(args, 1)?;
    let scripting = &ctx.engine.scripting;
    // The subcommand and its arity were checked before running (`FUNCTION_SUBCOMMANDS`).
    match sub {
        s if is(s, "load") => {
            let mut replace = false;
            let last = args.len() - 1;
            for option in args.get(2..last).unwrap_or_default() {
                if is(option, "replace") {
                    replace = true;
                } else {
                    return Err(errors::quoting("ERR Unknown option given: ", option, ""));
                }
            }
            let code = arg(args, last)?;
            let name = scripting.function_load(code, replace)?;
            // Logged as LOAD REPLACE so that replaying it never fails.
            ctx.propagate(vec![
                Bytes::from_static(b"FUNCTION"),
                Bytes::from_static(b"LOAD"),
                Bytes::from_static(b"REPLACE"),
                code.clone(),
            ]);
            Ok(Reply::bulk_str(&name))
        }
        s if is(s, "delete") => {
            scripting.function_delete(arg(args, 2)?)?;
            propagate_libraries(ctx);
            Ok(Reply::Ok)
        }
        s if is(s, "flush") => {
            match args.get(2..).unwrap_or_default() {
                [] => {}
                [mode] if is(mode, "sync") || is(mode, "async") => {}
                [_] => return Err(err("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")),
                _ => return Err(crate::errors::subcommand_syntax(s, "function")),
            }
            scripting.function_flush();
            ctx.propagate(vec![Bytes::from_static(b"FUNCTION"), Bytes::from_static(b"FLUSH")]);
            Ok(Reply::Ok)
        }
        s if is(s, "list") => {
            let mut with_code = false;
            let mut pattern: Option<&Bytes> = None;
            let mut i = 2;
            while let Some(option) = args.get(i) {
                i += 1;
                if !with_code && is(option, "withcode") {
                    with_code = true;
                    continue;
                }
                if pattern.is_none() && is(option, "libraryname") {
                    let Some(p) = args.get(i) else { return Err(err("ERR library name argument was not given")) };
                    pattern = Some(p);
                    i += 1;
                    continue;
                }
                return Err(errors::quoting("ERR Unknown argument ", option, ""));
            }
            Ok(scripting.function_list(pattern.map(|p| &p[..]), with_code))
        }
        s if is(s, "stats") => Ok(scripting.function_stats(ctx.now)),
        s if is(s, "kill") => scripting.kill(false, ctx.now),
        s if is(s, "help") => Ok(super::help(FUNCTION_HELP)),
        s if is(s, "dump") => {
            let codes = scripting.library_codes();
            Ok(Reply::Bulk(staykv_rdb::encode_functions_payload(codes.iter().map(|c| &c[..])).into()))
        }
        s if is(s, "restore") => {
            let policy = match args.get(3..).unwrap_or_default() {
                [] => RestorePolicy::Append,
                [p] if is(p, "append") => RestorePolicy::Append,
                [p] if is(p, "replace") => RestorePolicy::Replace,
                [p] if is(p, "flush") => RestorePolicy::Flush,
                [_] => {
                    return Err(err("ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."))
                }
                _ => return Err(crate::errors::subcommand_syntax(s, "function")),
            };
            let codes = staykv_rdb::decode_functions_payload(arg(args, 2)?)
                .map_err(|e| Reply::Error(format!("ERR {}", e.message())))?;
            scripting.function_restore(&codes, policy)?;
            propagate_libraries(ctx);
            Ok(Reply::Ok)
        }
        s => Err(errors::unknown_subcommand(s, "function")),
    }
}

/// Logs a change to the libraries as a flush and a reload of every library loaded now:
/// replay never fails, even on a data directory whose snapshot lost a library since gone.
fn propagate_libraries(ctx: &mut Ctx) {
    ctx.propagate(vec![Bytes::from_static(b"FUNCTION"), Bytes::from_static(b"FLUSH")]);
    for code in ctx.engine.scripting.library_codes() {
        ctx.propagate(vec![
            Bytes::from_static(b"FUNCTION"),
            Bytes::from_static(b"LOAD"),
            Bytes::from_static(b"REPLACE"),
            code,
        ]);
    }
}
