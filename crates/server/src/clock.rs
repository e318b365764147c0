//! The clocks, read in one place: the engine never reads them itself.
//!
//! A command needs the Unix time (expiry, TTLs) and an instant to time it from (INFO
//! commandstats, SLOWLOG, LATENCY). Both come from one read of the monotonic clock: the Unix
//! time is that reading plus the wall clock's offset from the monotonic one, measured again
//! every [`RESYNC_EVERY`], so a step of the wall clock (NTP, an operator) reaches commands
//! within that. A clock read costs 25–35 ns on the VMs measured; three a command (the wall
//! clock, the start and the end of its run) were ~7% of the server CPU of pipelined HGETs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often the wall clock's offset is measured again.
const RESYNC_EVERY: Duration = Duration::from_millis(100);

/// One reading of the clocks.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    /// The monotonic clock.
    pub at: Instant,
    /// Unix time in milliseconds.
    pub unix_ms: u64,
}

/// What monotonic readings are counted from.
static BASE: OnceLock<Instant> = OnceLock::new();
/// Unix time at [`BASE`] in microseconds, as the last resync measured it.
static UNIX_US_AT_BASE: AtomicU64 = AtomicU64::new(0);
/// When (microseconds past [`BASE`]) the offset is due to be measured again; 0 until the first
/// measurement, so the first reading takes it.
static RESYNC_DUE_US: AtomicU64 = AtomicU64::new(0);

/// Reads the clocks.
pub fn now() -> Reading {
    let at = Instant::now();
    let since_base = micros(at.saturating_duration_since(*BASE.get_or_init(|| at)));
    // Acquire pairs with the resync's release: a thread that sees the due time of a
    // measurement sees the offset it stored.
    if since_base >= RESYNC_DUE_US.load(Ordering::Acquire) {
        resync(since_base);
    }
    let unix_us = UNIX_US_AT_BASE.load(Ordering::Relaxed).saturating_add(since_base);
    Reading { at, unix_ms: unix_us / 1000 }
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    now().unix_ms
}

/// The wall clock read directly, in microseconds since the Unix epoch (`None` before it): for
/// what must follow it to the microsecond (TIME, INFO's `server_time_usec`).
pub fn wall_micros() -> Option<u64> {
    SystemTime::now().duration_since(UNIX_EPOCH).ok().map(micros)
}

/// The wall clock read directly, in whole seconds since the Unix epoch.
pub fn unix_secs() -> u64 {
    wall_micros().map_or(0, |us| us / 1_000_000)
}

/// Measures the wall clock's offset from the monotonic reading `since_base`. Threads that
/// find it due at once each measure it; they store nearly the same value.
fn resync(since_base: u64) {
    let wall = wall_micros().unwrap_or(0);
    UNIX_US_AT_BASE.store(wall.saturating_sub(since_base), Ordering::Relaxed);
    RESYNC_DUE_US.store(since_base.saturating_add(micros(RESYNC_EVERY)), Ordering::Release);
}

/// A duration in whole microseconds, saturating.
pub fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wall_ms() -> u64 {
        wall_micros().map_or(0, |us| us / 1000)
    }

    #[test]
    fn readings_follow_the_wall_clock_and_the_monotonic_one() {
        let before = wall_ms();
        let first = now();
        let after = wall_ms();
        assert!((before..=after).contains(&first.unix_ms), "{before} <= {} <= {after}", first.unix_ms);
        std::thread::sleep(RESYNC_EVERY + Duration::from_millis(20));
        let later = now();
        let elapsed_ms = micros(later.at - first.at) / 1000;
        // Across a resync, the Unix time moves with the monotonic clock, to within a millisecond
        // of truncation on each side.
        assert!(later.unix_ms.abs_diff(first.unix_ms + elapsed_ms) <= 2, "{first:?} then {later:?}");
        assert!(later.unix_ms.abs_diff(wall_ms()) <= 2);
    }
}
