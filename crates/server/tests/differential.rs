//! Differential test: the same seeded random commands against StayKV and against Debian's
//! redis-server 7.0 (both started here on ephemeral ports), replies compared at the RESP level.
//!
//! Run:        cargo test -p staykv --test differential -- --nocapture (part of the suite,
//!             which runs a fixed seed; DIFF_SEED=random draws a new one, printed)
//! Reproduce:  DIFF_SEED=<seed printed by a failing run> cargo test -p staykv --test differential -- --nocapture
//! Env:        DIFF_SEED=n|random   seed (default: the fixed suite seed)
//!             DIFF_COMMANDS=n      commands per family (default 20000)
//!             DIFF_FAMILIES=a,b    only these families (each family has its own RNG stream, so a
//!                                  family reproduces alone with the same seed)
//!             DIFF_KEEP_GOING=1    record every mismatch, re-sync both servers and continue;
//!                                  fail at the end with the full list
//!             DIFF_SUB_STEP=1      families with subscribers (pubsub, notify): compare what the
//!                                  subscribers received after every command, not every batch
//!                                  (slower; a mismatch then names its command)
//!             DIFF_FSYNC=mode      StayKV's --fsync (default `no`; replies do not depend on it)
//!             DIFF_REDIS_SERVER=p  redis-server binary (default /usr/bin/redis-server)
//!
//! Families: strings keys hashes lists sets zsets streams bits hll blocking dump pubsub notify
//!             transactions scripting. `pubsub` and `notify` keep subscriber connections to
//!             each server and compare what every subscriber receives, frame by frame
//!             (`Harness::drain_subscribers`); `dump` compares DUMP payloads by what RESTORE
//!             makes of them on both servers (`Check::Dump`); `streams` compares replies that
//!             show idle or delivery times with the times erased.
//!
//! Layout: `differential/resp.rs` RESP client, `launch.rs` server processes, `gen.rs` ops, checks
//! and argument pools, `harness.rs` batching, comparison, re-sync and reports,
//! `families/*.rs` one generator table per command family (see `families/mod.rs` to add one).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

/// An argument vector from byte-like values: `args![b"SET", key, "v"]`.
macro_rules! args {
    ($($a:expr),* $(,)?) => {{
        let v: Vec<Vec<u8>> = vec![$(AsRef::<[u8]>::as_ref(&$a).to_vec()),*];
        v
    }};
}

#[path = "differential/mod.rs"]
mod differential;

#[test]
fn differential_against_redis() {
    differential::harness::main();
}
