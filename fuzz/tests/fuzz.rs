//! Every fuzz target for a bounded time (CI), then every saved regression input.
//!
//! `STAYKV_FUZZ_SECS` (default 4) and `STAYKV_FUZZ_ITERS` bound each target;
//! `STAYKV_FUZZ_SEED` changes the run.

#![allow(clippy::panic)]

use std::path::Path;

use staykv_fuzz::{fuzz, replay_dir, targets, test_options, Target};

fn run(target: &Target) {
    let regressions = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions").join(target.name);
    match replay_dir(target, &regressions) {
        Ok(n) => println!("{}: {n} regression inputs pass", target.name),
        Err(failure) => panic!("regression: {failure}"),
    }
    match fuzz(target, &test_options()) {
        Ok(report) => println!("{report}"),
        Err(failure) => panic!("{failure}"),
    }
}

#[test]
fn fuzz_resp_parser() {
    run(&targets::RESP);
}

#[test]
fn fuzz_glob_against_redis_reference() {
    run(&targets::GLOB);
}

#[test]
fn fuzz_log_recovery() {
    run(&targets::LOG);
}

#[test]
fn fuzz_rdb_loading() {
    run(&targets::RDB);
}

#[test]
fn fuzz_restore_payloads() {
    run(&targets::RESTORE);
}
