//! What generators produce (`Op`: a command plus how to compare its replies) and the random
//! source they draw from (`Gen`: seeded RNG, the shared key space, argument pools, expiry times
//! that cannot tie).

use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::families::CmdGen;
use super::resp::Value;

pub type Args = Vec<Vec<u8>>;

/// How the two replies to one command are compared.
#[derive(Clone, Debug)]
pub enum Check {
    /// Byte-for-byte equal raw RESP.
    Exact,
    /// Equal after applying the normalizer to both parsed replies (types are kept, so this is
    /// as strict as `Exact` apart from what the normalizer deliberately erases, e.g. order).
    Norm(fn(&Value) -> Value),
    /// Integers within ± this much (TTL, PTTL, EXPIRETIME...); negative specials must be equal.
    Tol(i64),
    /// A command with a random result: same shape, members verified, state re-synced.
    Random(RandomCheck),
    /// `SCAN 0 ...`, `HSCAN key 0 ...` and the like: iterate fully on each server and compare
    /// the sets of elements (keys, members, field-value and member-score pairs), not the
    /// cursors.
    Scan,
    /// `HELLO`: the same map apart from the connection id.
    Hello,
    /// An array whose elements are compared one by one, each with its own check (EXEC replies:
    /// each element with the check of the command queued at its place).
    Each(Vec<Check>),
    /// `DUMP key`: the payloads may differ (encodings are each server's choice), so only
    /// nil-or-not is compared; then the plan's RESTOREs run on each server with its own
    /// payload, the other server's, or a damaged one, and the restored keys are compared.
    Dump(DumpPlan),
}

/// What the harness does with the payloads of a `DUMP` (see `Check::Dump`).
#[derive(Clone, Debug)]
pub struct DumpPlan {
    pub restores: Vec<RestorePlan>,
}

/// `RESTORE target ttl <payload> options...`.
#[derive(Clone, Debug)]
pub struct RestorePlan {
    pub target: Vec<u8>,
    pub ttl: Vec<u8>,
    pub options: Args,
    pub payload: Payload,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    /// The server's own DUMP payload.
    Own,
    /// The other server's payload (Redis restores StayKV's and StayKV Redis's).
    Other,
    /// Redis's payload damaged the same way for both servers.
    Damaged(Damage),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// RDB version in the footer above 10.
    Version,
    /// A flipped CRC byte.
    Crc,
    /// The last `n` bytes cut off.
    Truncated(usize),
    /// A flipped body byte (the CRC then fails).
    Body,
}

/// A `DUMP`-format payload for an object body (type byte + object): RDB version 10 and the
/// CRC-64 appended, as Redis writes them.
pub fn dump_payload(body: &[u8]) -> Vec<u8> {
    let mut p = body.to_vec();
    p.extend_from_slice(&10u16.to_le_bytes());
    let crc = staykv_rdb::crc64(0, &p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RandKind {
    RandomKey,
    SRandMember,
    SPop,
    HRandField,
    ZRandMember,
}

#[derive(Clone, Debug)]
pub struct RandomCheck {
    pub kind: RandKind,
    pub key: Vec<u8>,
    /// The count argument, when given and an integer.
    pub count: Option<i64>,
    /// WITHVALUES / WITHSCORES.
    pub with_values: bool,
}

/// One command to send to both servers.
#[derive(Clone, Debug)]
pub struct Op {
    pub args: Args,
    pub check: Check,
    /// A lexicographical range over this sorted set: Redis leaves the result unspecified when
    /// the members' scores differ, so the harness sends the command only when they are all
    /// equal (checked on Redis just before) and counts the skipped ones.
    pub lex_key: Option<Vec<u8>>,
    /// Sent by another client: the harness runs `SELECT <db>` and the command on its second
    /// connection to each server (a write between WATCH and EXEC), between two batches.
    pub side_db: Option<Vec<u8>>,
    /// Sent on subscriber connection `n` of each server (families with subscribers): its
    /// replies are read, with the messages, when the harness drains the subscribers.
    pub sub: Option<usize>,
    /// Never mutated (a command the next ones depend on, such as clearing Redis's errno
    /// before SORT).
    pub keep: bool,
}

impl Op {
    pub fn new(args: Args) -> Op {
        Op { args, check: Check::Exact, lex_key: None, side_db: None, sub: None, keep: false }
    }

    pub fn with(args: Args, check: Check) -> Op {
        Op { args, check, lex_key: None, side_db: None, sub: None, keep: false }
    }

    pub fn lex(args: Args, key: Vec<u8>) -> Op {
        Op { args, check: Check::Exact, lex_key: Some(key), side_db: None, sub: None, keep: false }
    }

    /// `args` sent by another client in database `db`.
    pub fn side(db: Vec<u8>, args: Args) -> Op {
        Op { args, check: Check::Exact, lex_key: None, side_db: Some(db), sub: None, keep: false }
    }

    /// `args` compared exactly and never mutated (see `keep`).
    pub fn kept(args: Args) -> Op {
        Op { keep: true, ..Op::new(args) }
    }

    /// `args` wrapping `inner`'s command (a script calling it): compared by `inner`'s check,
    /// and never mutated when `inner` is not.
    pub fn wrapping(args: Args, inner: &Op) -> Op {
        Op { keep: inner.keep, ..Op::with(args, inner.check.clone()) }
    }

    /// `args` sent on subscriber connection `n`.
    pub fn on_sub(n: usize, args: Args) -> Op {
        Op { args, check: Check::Exact, lex_key: None, side_db: None, sub: Some(n), keep: false }
    }

    /// Whether the command can run inside MULTI or a script with its reply still compared by
    /// its own check: not a random reply (its follow-up checks would run after the EXEC), not
    /// a SCAN iteration, not a lex range that needs a look at the key first.
    pub fn nestable(&self) -> bool {
        matches!(self.check, Check::Exact | Check::Norm(_) | Check::Tol(_))
            && self.lex_key.is_none()
            && self.side_db.is_none()
            && self.sub.is_none()
    }

    /// Whether the batch must end right after this command (its check talks to the servers).
    pub fn ends_batch(&self) -> bool {
        matches!(self.check, Check::Random(_) | Check::Scan | Check::Hello | Check::Dump(_))
    }

    /// Whether random argument mutations keep the comparison meaningful.
    pub fn mutable(&self) -> bool {
        matches!(self.check, Check::Exact | Check::Norm(_))
            && self.args.len() >= 2
            && self.side_db.is_none()
            && self.sub.is_none()
            && !self.keep
    }
}

pub fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// The shared key space: few keys, so commands interact; some with bytes that matter to
/// glob patterns and to the protocol.
pub const KEYS: &[&[u8]] = &[
    b"k0",
    b"k1",
    b"k2",
    b"k3",
    b"k4",
    b"k5",
    b"k6",
    b"k7",
    b"k8",
    b"k9",
    b"k10",
    b"k11",
    b"k12",
    b"k13",
    b"",
    b"k\x00z",
    b"sp ace",
    "\u{3ba}\u{3bb}".as_bytes(),
    b"a*b",
    b"h?llo",
];

/// Valid databases the generators use; the dataset comparison covers exactly these.
pub const DBS: &[&str] = &["0", "1", "2", "3"];

/// Seconds between two expiry "slots": far more than a run lasts, so two different slots
/// compare the same way on both servers whatever the few milliseconds between them.
const SLOT_SECS: i64 = 20_000;
const SLOTS: u32 = 200_000;

pub struct Gen {
    pub rng: StdRng,
    /// Unix time (s) when the run started; absolute expiry times are built from it.
    t0_secs: i64,
    used_slots: HashSet<u32>,
    /// Set when an expiry in the past (or zero/negative) was generated: a key may now be
    /// logically expired but not yet reclaimed, which only DBSIZE could tell; the harness
    /// follows up with `EXISTS <every key>` so both servers reclaim it at the same point.
    pub past_used: bool,
    /// Generators of the plain families (not MULTI, not scripts), for the commands the
    /// transactions and scripting families wrap; set by the harness.
    pub inner: Vec<&'static CmdGen>,
}

impl std::fmt::Debug for Gen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gen").field("t0_secs", &self.t0_secs).finish()
    }
}

pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Gen {
    pub fn new(seed: u64) -> Gen {
        Gen {
            rng: StdRng::seed_from_u64(seed),
            t0_secs: now_ms() / 1000,
            used_slots: HashSet::new(),
            past_used: false,
            inner: Vec::new(),
        }
    }

    /// A generator drawn by weight (`None` only when `gens` is empty).
    pub fn pick_gen(&mut self, gens: &[&'static CmdGen]) -> Option<&'static CmdGen> {
        let total: u32 = gens.iter().map(|c| c.weight).sum();
        let mut pick = u32::try_from(self.below(usize::try_from(total).unwrap_or(1))).unwrap_or(0);
        for gen in gens {
            if pick < gen.weight {
                return Some(gen);
            }
            pick -= gen.weight;
        }
        gens.first().copied()
    }

    /// The commands of one random plain-family generator (weighted like in its family) whose
    /// checks all work inside MULTI and scripts.
    pub fn inner_ops(&mut self) -> Vec<Op> {
        let inner = std::mem::take(&mut self.inner);
        let ops = loop {
            let Some(gen) = self.pick_gen(&inner) else { break vec![Op::new(args!["PING"])] };
            let ops = (gen.gen)(self);
            if ops.iter().all(Op::nestable) {
                break ops;
            }
        };
        self.inner = inner;
        ops
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.rng.gen_bool(p.clamp(0.0, 1.0))
    }

    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        self.rng.gen_range(lo..=hi)
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.rng.gen_range(0..n.max(1))
    }

    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        let i = self.below(xs.len());
        xs[i]
    }

    pub fn rng_shuffle<T>(&mut self, xs: &mut [T]) {
        use rand::seq::SliceRandom;
        xs.shuffle(&mut self.rng);
    }

    pub fn pick_str(&mut self, xs: &[&str]) -> Vec<u8> {
        b(self.pick(xs))
    }

    pub fn pick_bytes(&mut self, xs: &[&[u8]]) -> Vec<u8> {
        self.pick(xs).to_vec()
    }

    /// A command name in random letter case now and then (commands are case-insensitive).
    pub fn name(&mut self, name: &str) -> Vec<u8> {
        match self.below(20) {
            0 => name.to_ascii_lowercase().into_bytes(),
            1 => name
                .chars()
                .enumerate()
                .map(|(i, c)| if i % 2 == 0 { c.to_ascii_lowercase() } else { c.to_ascii_uppercase() })
                .collect::<String>()
                .into_bytes(),
            _ => name.as_bytes().to_vec(),
        }
    }

    /// An option keyword, occasionally in lower case.
    pub fn kw(&mut self, kw: &str) -> Vec<u8> {
        if self.chance(0.1) {
            kw.to_ascii_lowercase().into_bytes()
        } else {
            kw.as_bytes().to_vec()
        }
    }

    pub fn key(&mut self) -> Vec<u8> {
        // Favour the plain keys a little so values accumulate.
        if self.chance(0.7) {
            KEYS[self.below(8)].to_vec()
        } else {
            self.pick(KEYS).to_vec()
        }
    }

    pub fn keys(&mut self, min: usize, max: usize) -> Args {
        let n = self.rng.gen_range(min..=max);
        (0..n).map(|_| self.key()).collect()
    }

    /// Two or more distinct keys.
    pub fn distinct_keys(&mut self, n: usize) -> Args {
        let mut out: Args = Vec::new();
        while out.len() < n.min(KEYS.len()) {
            let k = self.key();
            if !out.contains(&k) {
                out.push(k);
            }
        }
        out
    }

    pub fn db(&mut self) -> Vec<u8> {
        if self.chance(0.9) {
            self.pick_str(DBS)
        } else {
            self.pick_str(&["16", "-1", "x", "1.0", "", "99999999999999999999", "2147483648", "-2147483649"])
        }
    }

    /// String values: numbers (valid and not), floats, binary, the 44/45-byte embstr limit.
    pub fn value(&mut self) -> Vec<u8> {
        const V: &[&[u8]] = &[
            b"",
            b"v",
            b"hello",
            b"hello world",
            b"0",
            b"1",
            b"-1",
            b"42",
            b"10",
            b"007",
            b"-0",
            b"+5",
            b"1.5",
            b"3.0e2",
            b"-2.5",
            b"9223372036854775807",
            b"-9223372036854775808",
            b"9223372036854775808",
            b" 12",
            b"12 ",
            b"0x1a",
            b"inf",
            b"nan",
            b"\x00\x01\xff\r\n",
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            b"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
            b"abcdefg",
            b"ACGTACGTTA",
            b"xyzabcdxyz",
            b"ohmytext",
            b"mynewtext",
            b"12345678901234567890",
            b"9999",
            b"10000",
            b"-10000",
            b"1e3",
        ];
        self.pick_bytes(V)
    }

    /// An integer argument: mostly small, sometimes at or past the i64 limits, sometimes not
    /// an integer at all.
    pub fn int(&mut self) -> Vec<u8> {
        match self.below(20) {
            0..=11 => self.range(-20, 20).to_string().into_bytes(),
            12 | 13 => self.range(-100_000, 100_000).to_string().into_bytes(),
            14 | 15 => self.pick_str(&[
                "9223372036854775807",
                "-9223372036854775808",
                "9223372036854775806",
                "-9223372036854775807",
                "4611686018427387904",
            ]),
            _ => self.pick_str(&[
                "9223372036854775808",
                "-9223372036854775809",
                "1.5",
                "",
                "abc",
                " 1",
                "1 ",
                "+1",
                "007",
                "0x10",
                "1e3",
                "-0",
                "99999999999999999999999",
            ]),
        }
    }

    /// A small integer, occasionally invalid.
    pub fn small_int(&mut self, lo: i64, hi: i64) -> Vec<u8> {
        if self.chance(0.05) {
            self.pick_str(&["abc", "", "1.5", "9223372036854775808", "-9223372036854775809", " 2"])
        } else {
            self.range(lo, hi).to_string().into_bytes()
        }
    }

    /// A float argument (INCRBYFLOAT, HINCRBYFLOAT, scores).
    pub fn float(&mut self) -> Vec<u8> {
        match self.below(20) {
            0..=5 => self.range(-50, 50).to_string().into_bytes(),
            6..=13 => self.pick_str(&[
                "0.1", "-0.1", "1.5", "2.25", "-3.75", "0.5", "1e3", "1e-3", "1.5e10", "3.0", "-0", "0.0", "10.5",
                "100.01", "3.14159", "2.5e-5",
            ]),
            14..=16 => self.pick_str(&["inf", "-inf", "+inf", "nan", "abc", "", " 1", "1 ", "0x10"]),
            // Beyond f64: long double's range and precision, its overflow and underflow.
            17 | 18 => {
                self.pick_str(&["1e309", "-1e400", "1.18973149535723176502e4932", "1e-400", "1e-5000", "0x1p-16445"])
            }
            _ => self.pick_str(&["5e-324", "1e20", "123456789.123456789", "-1e15"]),
        }
    }

    fn slot(&mut self) -> i64 {
        if self.used_slots.len() as u32 > SLOTS * 9 / 10 {
            self.used_slots.clear();
        }
        loop {
            let s = self.rng.gen_range(1..=SLOTS);
            if self.used_slots.insert(s) {
                return i64::from(s);
            }
        }
    }

    /// A relative expiry in seconds, unique in the run (see `SLOT_SECS`).
    pub fn rel_secs(&mut self) -> i64 {
        self.slot() * SLOT_SECS
    }

    /// A relative expiry in milliseconds, unique in the run.
    pub fn rel_ms(&mut self) -> i64 {
        self.slot() * SLOT_SECS * 1000 + self.range(0, 999)
    }

    /// An absolute future Unix time in seconds, unique in the run (half a slot away from
    /// every relative expiry).
    pub fn abs_secs(&mut self) -> i64 {
        self.t0_secs + self.slot() * SLOT_SECS + SLOT_SECS / 2
    }

    pub fn abs_ms(&mut self) -> i64 {
        (self.t0_secs + self.slot() * SLOT_SECS + SLOT_SECS / 2) * 1000 + self.range(0, 999)
    }

    /// A time in the past, zero or negative (for EXPIRE: the key is deleted at once).
    /// Relative times are never small positive numbers: a key must not expire mid-run at a
    /// moment that differs between the servers.
    pub fn past(&mut self, ms: bool, absolute: bool) -> i64 {
        self.past_used = true;
        let secs = match self.below(4) {
            0 => 0,
            1 => -self.range(1, 1000),
            2 if absolute => 1,
            _ if absolute => self.t0_secs - self.range(10, 100_000),
            _ => -self.range(1_000_000, 2_000_000_000),
        };
        if ms && (secs != 0 || absolute) {
            secs * 1000 + self.range(0, 999)
        } else if ms {
            // A relative 0 s plus a few hundred ms would be a small positive expiry.
            0
        } else {
            secs
        }
    }

    /// Numbers an expiry must reject (not integers, overflowing once scaled or offset).
    pub fn bad_time(&mut self) -> Vec<u8> {
        self.pick_str(&[
            "abc",
            "",
            "1.5",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775",
            "9223372036854776",
            "-9223372036854776",
            "9223372036854775808",
            " 100",
        ])
    }

    /// A relative expiry argument in seconds (or ms): mostly valid, sometimes past or invalid.
    pub fn rel_arg(&mut self, ms: bool) -> Vec<u8> {
        match self.below(20) {
            0 | 1 => self.past(ms, false).to_string().into_bytes(),
            2 => self.bad_time(),
            _ => if ms { self.rel_ms() } else { self.rel_secs() }.to_string().into_bytes(),
        }
    }

    /// An absolute expiry argument in seconds (or ms).
    pub fn abs_arg(&mut self, ms: bool) -> Vec<u8> {
        match self.below(20) {
            0 | 1 => self.past(ms, true).to_string().into_bytes(),
            2 => self.bad_time(),
            _ => if ms { self.abs_ms() } else { self.abs_secs() }.to_string().into_bytes(),
        }
    }

    /// A SCAN-family command (`SCAN`, or `HSCAN key` and the like, given as `prefix`) with a
    /// cursor and options, iterated to the end on each server (`Check::Scan`). Errors (odd
    /// option lists, bad counts, TYPE outside SCAN) are compared on the first reply.
    pub fn scan_op(&mut self, mut a: Args) -> Op {
        if self.chance(0.08) {
            // Cursors strtoul refuses: an exact error.
            a.push(self.pick_str(&["abc", "1.5", " 0", "18446744073709551616", "+", "-", "0x10", "1 "]));
            return Op::with(a, Check::Scan);
        }
        // Spellings of cursor 0 that strtoul accepts.
        a.push(if self.chance(0.1) { self.pick_str(&["", "+0", "-0", "00"]) } else { b"0".to_vec() });
        for _ in 0..self.range(0, 3) {
            match self.below(7) {
                0 | 1 => {
                    a.push(self.kw("MATCH"));
                    a.push(self.pattern());
                }
                2 | 3 => {
                    a.push(self.kw("COUNT"));
                    a.push(if self.chance(0.85) {
                        self.range(1, 30).to_string().into_bytes()
                    } else {
                        self.small_int(-2, 0)
                    });
                }
                4 | 5 => {
                    a.push(self.kw("TYPE"));
                    a.push(self.pick_str(&["string", "list", "set", "zset", "hash", "none", "stream", "STRING"]));
                }
                _ => a.push(self.pick_str(&["FOO", "MATCH", "COUNT"])),
            }
        }
        Op::with(a, Check::Scan)
    }

    /// A glob pattern for KEYS and SCAN MATCH.
    pub fn pattern(&mut self) -> Vec<u8> {
        const P: &[&[u8]] = &[
            b"*",
            b"*",
            b"k*",
            b"k?",
            b"k1*",
            b"*[0-9]",
            b"k[^0-4]*",
            b"k[1-3]",
            b"k[3-1]",
            b"\\*",
            b"a\\*b",
            b"a*b",
            b"h?llo",
            b"h[?]llo",
            b"h\\?llo",
            b"*\x00*",
            b"[",
            b"k[",
            b"k\\",
            b"*z",
            b"s*e",
            b"[a-z]*",
            b"[^a]*",
            b"\xce*",
            b"",
            b"**k**",
            b"?",
            b"??",
            b"k[0-9][0-9]",
            b"k[\\]]",
            b"[!k]*",
            b"*1",
            b"K*",
            b"k[a-",
            b"*[",
            b"[]*",
            b"[^]k*",
            b"?*?",
        ];
        self.pick_bytes(P)
    }

    /// `EXISTS` on every key: makes both servers reclaim logically expired keys now.
    pub fn touch_all() -> Op {
        let mut a = vec![b"EXISTS".to_vec()];
        a.extend(KEYS.iter().map(|k| k.to_vec()));
        Op::new(a)
    }
}

// ---- normalizers ----------------------------------------------------------------------------

/// Sort the elements of a top-level array or set (KEYS, SMEMBERS, HKEYS...).
pub fn unordered(v: &Value) -> Value {
    match v {
        Value::Array(items) => {
            let mut s = items.clone();
            s.sort();
            Value::Array(s)
        }
        Value::Set(items) => {
            let mut s = items.clone();
            s.sort();
            Value::Set(s)
        }
        other => other.clone(),
    }
}

/// Sort field/value pairs: a RESP2 flat array, a RESP3 map (HGETALL).
pub fn unordered_pairs(v: &Value) -> Value {
    match v {
        Value::Array(items) if items.len() % 2 == 0 => {
            let mut pairs: Vec<(Value, Value)> = items.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect();
            pairs.sort();
            Value::Array(pairs.into_iter().flat_map(|(a, b)| [a, b]).collect())
        }
        Value::Map(m) => {
            let mut m = m.clone();
            m.sort();
            Value::Map(m)
        }
        other => other.clone(),
    }
}
