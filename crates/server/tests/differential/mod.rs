//! Differential harness modules (see `tests/differential.rs`).

pub mod families;
pub mod gen;
pub mod harness;
pub mod launch;
pub mod resp;
