//! Process figures for INFO and metrics, read from /proc (Linux) with safe fallbacks.

/// Resident set size in bytes, 0 where unknown.
pub fn rss_bytes() -> u64 {
    resident_pages().0 * PAGE
}

/// Resident bytes not backed by a file (the heap, stacks): the RSS less the binary's and the
/// libraries' pages. 0 where unknown.
pub fn anonymous_rss_bytes() -> u64 {
    let (resident, shared) = resident_pages();
    resident.saturating_sub(shared) * PAGE
}

/// Linux on x86-64 and arm64 (as built here) uses 4 KiB pages.
const PAGE: u64 = 4096;

/// /proc/self/statm's resident and shared (file-backed) pages, one read; 0 where unknown.
fn resident_pages() -> (u64, u64) {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let mut fields = statm.split_whitespace().skip(1).map(|pages| pages.parse().unwrap_or(0));
    (fields.next().unwrap_or(0), fields.next().unwrap_or(0))
}

/// (user, system) CPU seconds of this process.
pub fn cpu_seconds() -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return (0.0, 0.0);
    };
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return (0.0, 0.0);
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    (ticks(11) / 100.0, ticks(12) / 100.0)
}

/// Total memory of the machine in bytes (`MemTotal`), 0 where unknown.
pub fn total_system_memory() -> u64 {
    let Ok(meminfo) = std::fs::read_to_string("/proc/meminfo") else {
        return 0;
    };
    let kib = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()));
    kib.unwrap_or(0) * 1024
}

/// Redis's `bytesToHuman`: `512B`, `1.50K`, `3.00M`, ...
pub fn bytes_to_human(bytes: u64) -> String {
    const UNITS: [(u64, &str); 5] = [(1 << 10, "K"), (1 << 20, "M"), (1 << 30, "G"), (1 << 40, "T"), (1 << 50, "P")];
    match UNITS.iter().take_while(|(size, _)| bytes >= *size).last() {
        Some((size, unit)) => format!("{:.2}{unit}", bytes as f64 / *size as f64),
        None => format!("{bytes}B"),
    }
}

/// What [`Instantaneous`] tracks, in this order.
pub const OPS: usize = 0;
pub const NET_INPUT: usize = 1;
pub const NET_OUTPUT: usize = 2;

/// Samples kept per metric (Redis's `STATS_METRIC_SAMPLES`).
const SAMPLES: usize = 16;

/// Redis's instantaneous metrics (`instantaneous_ops_per_sec`, `..._kbps`): the housekeeping
/// tick (every 100 ms) samples each counter's rate since the previous tick; INFO reports the
/// mean of the last 16 samples, about the last 1.6 s.
#[derive(Debug, Default)]
pub struct Instantaneous {
    state: parking_lot::Mutex<Sampled>,
}

#[derive(Debug, Default)]
struct Sampled {
    last: Option<(std::time::Instant, [u64; 3])>,
    rates: [[u64; SAMPLES]; 3],
    next: usize,
}

impl Instantaneous {
    /// Takes a sample of the three counters' totals at `at`.
    pub fn sample(&self, at: std::time::Instant, totals: [u64; 3]) {
        let mut state = self.state.lock();
        if let Some((before, previous)) = state.last {
            let millis = u64::try_from(at.saturating_duration_since(before).as_millis()).unwrap_or(u64::MAX).max(1);
            let next = state.next;
            for ((rates, total), previous) in state.rates.iter_mut().zip(totals).zip(previous) {
                if let Some(slot) = rates.get_mut(next) {
                    *slot = total.saturating_sub(previous).saturating_mul(1000) / millis;
                }
            }
            state.next = (next + 1) % SAMPLES;
        }
        state.last = Some((at, totals));
    }

    /// The mean rate per second of `metric` over the samples.
    pub fn per_second(&self, metric: usize) -> u64 {
        self.state.lock().rates.get(metric).map_or(0, |rates| rates.iter().sum::<u64>() / SAMPLES as u64)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn human_sizes_as_redis_prints_them() {
        assert_eq!(bytes_to_human(512), "512B");
        assert_eq!(bytes_to_human(1536), "1.50K");
        assert_eq!(bytes_to_human(3 << 20), "3.00M");
        assert_eq!(bytes_to_human(5 << 30), "5.00G");
    }

    #[test]
    fn instantaneous_rates_average_the_last_sixteen_samples() {
        let rates = Instantaneous::default();
        let start = Instant::now();
        for tick in 0..=16u64 {
            // 1,000 ops, 10 KB in and 20 KB out per 100 ms tick.
            rates.sample(start + Duration::from_millis(100 * tick), [1_000 * tick, 10_000 * tick, 20_000 * tick]);
        }
        assert_eq!(rates.per_second(OPS), 10_000);
        assert_eq!(rates.per_second(NET_INPUT), 100_000);
        assert_eq!(rates.per_second(NET_OUTPUT), 200_000);
        // A quiet second later, the mean falls as the old samples leave.
        for tick in 17..=24u64 {
            rates.sample(start + Duration::from_millis(100 * tick), [16_000, 160_000, 320_000]);
        }
        assert_eq!(rates.per_second(OPS), 5_000);
    }
}
