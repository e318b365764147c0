//! Deterministic keys and values, and the zipfian popularity of the session workload.

use rand::Rng;

/// SplitMix64: a tiny, good-enough mixer for turning an index into key material.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const ALNUM: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The kind of key set a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyKind {
    /// `sess:` + 43 characters (a 256-bit token in base64url, as session libraries make them):
    /// 48-byte keys, 1 KB values by default.
    Session,
    /// `k:` + the index as 10 digits: 12-byte keys, 8-byte values by default.
    Small,
}

/// Append the key for `index` to `out`. The same (seed, index) always gives the same key.
pub fn push_key(out: &mut Vec<u8>, kind: KeyKind, seed: u64, index: u64) {
    match kind {
        KeyKind::Session => {
            out.extend_from_slice(b"sess:");
            let mut state = seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ index;
            let mut raw = [0u8; 33]; // 32 random bytes = 256 bits, plus one zero byte of padding
            for chunk in raw.chunks_mut(8) {
                let word = splitmix64(&mut state).to_le_bytes();
                for (d, s) in chunk.iter_mut().zip(word) {
                    *d = s;
                }
            }
            if let Some(last) = raw.last_mut() {
                *last = 0;
            }
            // base64url without padding: 11 groups of 3 bytes give 44 characters; the 44th
            // would only encode the padding byte, so 43 characters are kept.
            let mut emitted = 0;
            for group in raw.chunks(3) {
                let n = group.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
                for shift in [18u32, 12, 6, 0] {
                    if emitted < 43 {
                        out.push(B64URL.get(((n >> shift) & 63) as usize).copied().unwrap_or(b'A'));
                        emitted += 1;
                    }
                }
            }
        }
        KeyKind::Small => {
            out.extend_from_slice(format!("k:{:010}", index).as_bytes());
        }
    }
}

/// A key as a `String` (for printing and tests).
pub fn key_string(kind: KeyKind, seed: u64, index: u64) -> String {
    let mut v = Vec::with_capacity(48);
    push_key(&mut v, kind, seed, index);
    String::from_utf8_lossy(&v).into_owned()
}

/// A pool of random alphanumeric values (JSON-safe, so the HTTP flow sends the same bytes).
pub fn value_pool(rng: &mut impl Rng, count: usize, size: usize) -> Vec<Vec<u8>> {
    (0..count.max(1))
        .map(|_| (0..size).map(|_| ALNUM.get(rng.gen_range(0..ALNUM.len())).copied().unwrap_or(b'x')).collect())
        .collect()
}

/// YCSB's zipfian generator (Gray et al., "Quickly generating billion-record synthetic
/// databases"), scrambled with FNV-1a so the popular items are spread over the key space.
#[derive(Debug, Clone)]
pub struct Zipf {
    n: u64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
}

fn zeta(n: u64, theta: f64) -> f64 {
    (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum()
}

impl Zipf {
    pub fn new(n: u64, theta: f64) -> Zipf {
        let n = n.max(1);
        let zetan = zeta(n, theta);
        let zeta2 = zeta(2, theta);
        let alpha = 1.0 / (1.0 - theta);
        let eta = (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta2 / zetan);
        Zipf { n, theta, alpha, zetan, eta }
    }

    /// The rank drawn (0 = most popular).
    pub fn rank(&self, rng: &mut impl Rng) -> u64 {
        let u: f64 = rng.gen();
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1.min(self.n - 1);
        }
        let r = (self.n as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        r.min(self.n - 1)
    }

    /// An item index in `0..n`, popular ranks scattered over the index space.
    pub fn item(&self, rng: &mut impl Rng) -> u64 {
        fnv1a(self.rank(rng)) % self.n
    }
}

fn fnv1a(v: u64) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in v.to_le_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn session_keys_are_48_bytes_and_stable() {
        let a = key_string(KeyKind::Session, 1, 7);
        assert_eq!(a.len(), 48);
        assert!(a.starts_with("sess:"));
        assert_eq!(a, key_string(KeyKind::Session, 1, 7));
        assert_ne!(a, key_string(KeyKind::Session, 1, 8));
        assert_eq!(key_string(KeyKind::Small, 1, 42), "k:0000000042");
    }

    #[test]
    fn zipf_is_skewed_and_in_range() {
        let z = Zipf::new(1000, 0.99);
        let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
        let mut zero = 0;
        for _ in 0..10_000 {
            let r = z.rank(&mut rng);
            assert!(r < 1000);
            if r == 0 {
                zero += 1;
            }
            assert!(z.item(&mut rng) < 1000);
        }
        // Rank 0 has probability 1/zeta(1000, 0.99), about 13%.
        assert!(zero > 800 && zero < 1800, "{zero}");
    }
}
