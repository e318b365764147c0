//! Cluster commands (Redis's `cluster.c`): StayKV is a single server, as Redis is with
//! `cluster-enabled no`, and answers these commands as such a Redis does.
//!
//! The answer matters to clients more than it seems: cluster-aware clients and tools probe a
//! server with `CLUSTER INFO`, `CLUSTER SLOTS` or `READONLY` and take Redis's exact refusal,
//! "This instance has cluster support disabled", to mean "a single server, use it as one".
//! An unknown-command error instead fails their connection.

use bytes::Bytes;

use crate::command::{flags::*, CmdResult, CommandSpec};
use crate::errors::err;
use crate::exec::Ctx;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("cluster", -2, 0, "cluster", cluster_disabled)
        .subcommands(CLUSTER_SUBCOMMANDS)
        .subcommand_flags(&[("reset", NOSCRIPT)]),
    CommandSpec::new("readonly", 1, LOADING | STALE | FAST, "connection", cluster_disabled),
    CommandSpec::new("readwrite", 1, LOADING | STALE | FAST, "connection", cluster_disabled),
    CommandSpec::new("asking", 1, FAST, "connection", cluster_disabled),
];

/// Redis 7.0's CLUSTER subcommands and their arities: an unknown subcommand or a wrong count
/// is refused as such before the cluster check, as in Redis.
const CLUSTER_SUBCOMMANDS: &[(&str, i32)] = &[
    ("addslots", -3),
    ("addslotsrange", -4),
    ("bumpepoch", 2),
    ("count-failure-reports", 3),
    ("countkeysinslot", 3),
    ("delslots", -3),
    ("delslotsrange", -4),
    ("failover", -2),
    ("flushslots", 2),
    ("forget", 3),
    ("getkeysinslot", 4),
    ("help", 2),
    ("info", 2),
    ("keyslot", 3),
    ("links", 2),
    ("meet", -4),
    ("myid", 2),
    ("nodes", 2),
    ("replicas", 3),
    ("replicate", 3),
    ("reset", -2),
    ("saveconfig", 2),
    ("set-config-epoch", 3),
    ("setslot", -4),
    ("shards", 2),
    ("slaves", 3),
    ("slots", 2),
];

/// Redis's answer to every cluster command when cluster mode is off (HELP included).
const CLUSTER_DISABLED: &str = "ERR This instance has cluster support disabled";

fn cluster_disabled(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(err(CLUSTER_DISABLED))
}
