//! The family registry. A family is a name, the commands it cannot do without, and weighted
//! generators, one per command; each generator returns the command(s) to send with how to
//! compare their replies (`Check`). A generator is used only when StayKV (and Redis) know its
//! command and every command its check needs (`COMMAND INFO` at start); a family is enabled
//! when its required commands are all known.
//!
//! To add a family: write `families/<name>.rs` exposing `pub const FAMILY: Family`, and list
//! it in `registry()`.

use super::gen::{Gen, Op};

pub mod bits;
pub mod blocking;
pub mod dump;
pub mod hashes;
pub mod hll;
pub mod keys;
pub mod lists;
pub mod notify;
pub mod pubsub;
pub mod scripting;
pub mod sets;
pub mod streams;
pub mod strings;
pub mod transactions;
pub mod zsets;

pub type GenFn = fn(&mut Gen) -> Vec<Op>;

#[derive(Debug)]
pub struct CmdGen {
    /// The command generated ("" for commands that must be unknown to both servers).
    pub name: &'static str,
    pub weight: u32,
    /// Other commands the comparison needs (re-sync, membership checks).
    pub needs: &'static [&'static str],
    pub gen: GenFn,
}

pub const fn c(name: &'static str, weight: u32, gen: GenFn) -> CmdGen {
    CmdGen { name, weight, needs: &[], gen }
}

pub const fn cn(name: &'static str, weight: u32, needs: &'static [&'static str], gen: GenFn) -> CmdGen {
    CmdGen { name, weight, needs, gen }
}

/// A generator's single command, compared exactly.
pub fn one(args: Vec<Vec<u8>>) -> Vec<Op> {
    vec![Op::new(args)]
}

#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    /// Without these the family is skipped (e.g. nothing creates a hash without HSET).
    pub required: &'static [&'static str],
    pub gens: &'static [CmdGen],
    /// Its commands wrap other families' commands (MULTI/EXEC, scripts): its generators are
    /// not drawn as the wrapped commands (`Gen::inner`).
    pub wraps: bool,
    /// Subscriber connections the harness keeps open to each server while the family runs
    /// (pub/sub, keyspace notifications). After every batch, and after every command sent
    /// on a subscriber, each subscriber is drained and what it received is compared.
    pub subscribers: usize,
    /// Commands each subscriber runs when (re)opened, e.g. its PSUBSCRIBE.
    pub sub_setup: &'static [&'static [&'static str]],
    /// Runs once before the family and after each re-sync (e.g. CONFIG SET), on both servers.
    pub setup: &'static [&'static [&'static str]],
}

impl Family {
    /// The defaults of a family without subscribers or setup.
    pub const PLAIN: Family =
        Family { name: "", required: &[], gens: &[], wraps: false, subscribers: 0, sub_setup: &[], setup: &[] };
}

pub fn registry() -> Vec<&'static Family> {
    vec![
        &strings::FAMILY,
        &keys::FAMILY,
        &hashes::FAMILY,
        &lists::FAMILY,
        &sets::FAMILY,
        &zsets::FAMILY,
        &streams::FAMILY,
        &bits::FAMILY,
        &hll::FAMILY,
        &blocking::FAMILY,
        &dump::FAMILY,
        &pubsub::FAMILY,
        &notify::FAMILY,
        &transactions::FAMILY,
        &scripting::FAMILY,
    ]
}
