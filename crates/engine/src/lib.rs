//! The StayKV engine: keyspace, value types, expiry and the command table.
//!
//! This crate is the functional core. It opens no socket, touches no file and never reads
//! the clock: the caller passes the time of every command, so each command is a function of
//! (keyspace, arguments, time) and is unit-testable as such. The one other input is
//! randomness, where Redis has it too (SPOP, SRANDMEMBER, RANDOMKEY, eviction's samples, LFU
//! counters): a write records what it did, not what it was asked (SPOP as an SREM of the
//! members it drew), so a replay draws nothing and rebuilds the same keyspace.
//!
//! * [`Engine::execute`] runs one command for one client and returns its [`Reply`] plus the
//!   log position the reply depends on (see [`Outcome`]).
//! * Every write records its **effects** ([`Effect`]): the commands that reproduce the change
//!   when replayed at the same time. The caller's [`Journal`] logs them as one batch.
//! * Connection- and server-level state the engine does not own (other clients, config,
//!   persistence) is reached through the [`Host`] trait that the server implements.
//!
//! Commands live in [`cmd`], one module per family, each command one function registered in
//! the table of [`command`] with its arity, flags and key positions, as in Redis.

#![cfg_attr(not(test), warn(clippy::indexing_slicing))]

pub mod acl;
pub mod blocking;
mod byte_table;
pub mod client;
pub mod cmd;
pub mod command;
pub mod effects;
pub mod errors;
pub mod evict;
pub mod exec;
mod framed;
pub mod geo;
pub mod glob;
pub mod hash;
pub mod hll;
pub mod host;
pub mod key_spec;
pub mod keyspace;
pub mod latency;
pub mod latency_report;
pub mod lazyfree;
pub mod list;
pub mod long_double;
pub mod memory_report;
pub mod notify;
pub mod num;
pub mod pause;
pub mod pqsort;
pub mod pubsub;
pub mod rdbconv;
pub mod scripting;
pub mod set;
mod slab;
pub mod slowlog;
pub mod small_bytes;
pub mod sparkline;
pub mod stats;
pub mod stream;
pub mod tracking;
pub mod value;
pub mod watch;
pub mod zset;

pub use client::Client;
pub use effects::{decode_batch, decode_batch_view, encode_batch, Effect, EffectView};
pub use exec::{Blocked, Ctx, Engine, EngineOptions, Journal, Outcome, ReplayFailure};
pub use host::Host;
pub use staykv_resp::{Protocol, Reply};
