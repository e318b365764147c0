//! Cluster commands (Redis's `cluster.c`): StayKV is a single server, as Redis is with
//! `cluster-enabled no`, and answers these commands as such a Redis does.
//!
//! The answer matters to clients more than it seems: cluster-aware clients and tools probe a
//! server with `CLUSTER INFO`, `CLUSTER SLOTS` or `READONLY` and take Redis's exact refusal,
//! "This instance has cluster support disabled", to mean "a single server, use it as one".
//! An unknown-command error instead fails their connection.

use bytes::Bytes;

use crate::command::{flags::*, CmdResult, CommandSpec, SubcommandSpec};
use crate::errors::err;
use crate::exec::Ctx;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("cluster", -2, 0, "cluster", cluster_disabled).subcommands(CLUSTER_SUBCOMMANDS),
    CommandSpec::new("readonly", 1, LOADING | STALE | FAST, "connection", cluster_disabled),
    CommandSpec::new("readwrite", 1, LOADING | STALE | FAST, "connection", cluster_disabled),
    CommandSpec::new("asking", 1, FAST, "connection", cluster_disabled),
];

/// Redis 7.0's CLUSTER subcommands and their arities: an unknown subcommand or a wrong count
/// is refused as such before the cluster check, as in Redis.
const CLUSTER_SUBCOMMANDS: &[SubcommandSpec] = &[
    SubcommandSpec::new("addslots", -3, NO_ASYNC_LOADING | ADMIN | STALE),
    SubcommandSpec::new("addslotsrange", -4, NO_ASYNC_LOADING | ADMIN | STALE),
    SubcommandSpec::new("bumpepoch", 2, NO_ASYNC_LOADING | ADMIN | STALE).tips(&["nondeterministic_output"]),
    SubcommandSpec::new("count-failure-reports", 3, ADMIN | STALE).tips(&["nondeterministic_output"]),
    SubcommandSpec::new("countkeysinslot", 3, STALE),
    SubcommandSpec::new("delslots", -3, NO_ASYNC_LOADING | ADMIN | STALE),
    SubcommandSpec::new("delslotsrange", -4, NO_ASYNC_LOADING | ADMIN | STALE),
    SubcommandSpec::new("failover", -2, NO_ASYNC_LOADING | ADMIN | STALE),
    SubcommandSpec::new("flushslots", 2, NO_ASYNC_LOADING | ADMIN | STALE),
    SubcommandSpec::new("forget", 3, NO_ASYNC_LOADING | ADMIN | STALE),
    SubcommandSpec::new("getkeysinslot", 4, STALE).tips(&["nondeterministic_output"]),
    SubcommandSpec::new("help", 2, LOADING | STALE),
    SubcommandSpec::new("info", 2, STALE).tips(&["nondeterministic_output"]),
    SubcommandSpec::new("keyslot", 3, STALE),
    SubcommandSpec::new("links", 2, STALE).tips(&["nondeterministic_output"]),
    SubcommandSpec::new("meet", -4, NO_ASYNC_LOADING | ADMIN | STALE),
    SubcommandSpec::new("myid", 2, STALE),
    SubcommandSpec::new("nodes", 2, STALE).tips(&["nondeterministic_output"]),
    SubcommandSpec::new("replicas", 3, ADMIN | STALE).tips(&["nondeterministic_output"]),
    SubcommandSpec::new("replicate", 3, NO_ASYNC_LOADING | ADMIN | STALE),
    SubcommandSpec::new("reset", -2, ADMIN | STALE | NOSCRIPT),
    SubcommandSpec::new("saveconfig", 2, NO_ASYNC_LOADING | ADMIN | STALE),
    SubcommandSpec::new("set-config-epoch", 3, NO_ASYNC_LOADING | ADMIN | STALE),
    SubcommandSpec::new("setslot", -4, NO_ASYNC_LOADING | ADMIN | STALE),
    SubcommandSpec::new("shards", 2, STALE).tips(&["nondeterministic_output"]),
    SubcommandSpec::new("slaves", 3, ADMIN | STALE).tips(&["nondeterministic_output"]),
    SubcommandSpec::new("slots", 2, STALE).tips(&["nondeterministic_output"]),
];

/// Redis's answer to every cluster command when cluster mode is off (HELP included).
const CLUSTER_DISABLED: &str = "ERR This instance has cluster support disabled";

fn cluster_disabled(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(err(CLUSTER_DISABLED))
}
