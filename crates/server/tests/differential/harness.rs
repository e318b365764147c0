//! Runs the families against both servers: pipelined batches, reply comparison, follow-ups
//! for random replies, periodic whole-dataset comparison, mismatch reports.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::time::{Duration, Instant};

use super::families::{self, CmdGen, Family};
use super::gen::{
    dump_payload, now_ms, unordered, unordered_pairs, Args, Check, Damage, DumpPlan, Gen, Op, Payload, RandKind,
    RandomCheck, DBS,
};
use super::launch::Server;
use super::resp::{quote, render, render_command, Conn, ReadError, Value};

/// One element of a SCAN-family reply: a key or member, or a field or member with its value
/// or score.
type ScanElement = Vec<Vec<u8>>;

/// Commands per pipelined batch.
const BATCH: usize = 100;
/// Commands per protocol segment (each segment starts with HELLO 2 or HELLO 3).
const SEGMENT: usize = 5000;
/// Whole-dataset comparison every this many commands.
const DATASET_EVERY: usize = 1000;
/// A short-expiry episode (keys that really expire, then a pause) every this many commands.
const EPISODE_EVERY: usize = 2500;
/// Share of commands drawn from the other enabled families (wrong types, cross-type keys).
const FOREIGN: f64 = 0.05;
/// Share of commands whose arguments are mutated (last one dropped or junk appended).
const MUTATE: f64 = 0.015;
const HISTORY: usize = 40;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).map(|v| !v.is_empty() && v != "0").unwrap_or(false)
}

fn family_seed(seed: u64, family: &str) -> u64 {
    // FNV-1a over the name, mixed with the seed: each family has its own stream.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in family.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn truncate(s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}... ({} bytes in all)", &s[..cut], s.len())
}

/// Compare results.
enum Outcome {
    Same,
    Mismatch(String),
}

#[derive(Debug)]
pub struct Mismatch {
    pub family: String,
    pub index: u64,
    pub command: String,
    pub redis: String,
    pub staykv: String,
    pub detail: String,
}

pub struct Harness {
    seed: u64,
    commands_per_family: usize,
    keep_going: bool,
    redis_srv: Server,
    stay_srv: Server,
    redis: Conn,
    stay: Conn,
    redis_insp: Conn,
    stay_insp: Conn,
    family: &'static str,
    proto: u8,
    index: u64,
    history: VecDeque<(u64, String)>,
    /// Index and history at a mismatch, kept while the rest of its batch is drained.
    frozen: Option<(u64, String)>,
    /// The last commands naming each key (as first argument), for dataset mismatch reports.
    key_history: std::collections::HashMap<Vec<u8>, VecDeque<(u64, String)>>,
    mismatches: Vec<Mismatch>,
    dataset_checks: u64,
    lex_skipped: u64,
    /// The running family's subscriber connections (`Family::subscribers`), per server.
    redis_subs: Vec<Conn>,
    stay_subs: Vec<Conn>,
    /// The running family: its `setup` runs again after a re-sync, its `sub_setup` on every
    /// subscriber opened.
    fam: &'static Family,
    drains: u64,
    /// The next drain compares what each subscriber received as a multiset (see
    /// `notify_expiry_episode`).
    drain_unordered: bool,
    /// Subscribers are being reopened after a mismatch.
    reopening: bool,
    /// `DIFF_SUB_STEP=1`: with subscribers, drain after every generated command (slower; a
    /// mismatch then names the command whose messages differ).
    sub_step: bool,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness").field("seed", &self.seed).finish()
    }
}

/// Which commands a server knows, by `COMMAND INFO`.
fn known_commands(conn: &mut Conn, names: &[String]) -> HashSet<String> {
    let mut cmd: Args = vec![b"COMMAND".to_vec(), b"INFO".to_vec()];
    cmd.extend(names.iter().map(|n| n.as_bytes().to_vec()));
    let reply = conn.pipeline(&[cmd]).expect("COMMAND INFO");
    let mut known = HashSet::new();
    if let Some(items) = reply.first().and_then(Value::items) {
        for (name, entry) in names.iter().zip(items) {
            if matches!(entry, Value::Array(_)) {
                known.insert(name.clone());
            }
        }
    }
    known
}

/// The seed the suite runs by default (see `main`).
const SUITE_SEED: u64 = 51;

pub fn main() {
    // The suite runs a fixed seed, so that CI is deterministic; `DIFF_SEED=random` draws a
    // new one (how the bugs fixed so far were found), and any number reproduces a run.
    let seed = match std::env::var("DIFF_SEED").as_deref() {
        Ok("random") => {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            (t.as_nanos() as u64) ^ u64::from(std::process::id()).rotate_left(32)
        }
        _ => env_u64("DIFF_SEED").unwrap_or(SUITE_SEED),
    };
    let commands = env_u64("DIFF_COMMANDS").map_or(20_000, |n| usize::try_from(n).unwrap_or(20_000));
    let only: Option<Vec<String>> = std::env::var("DIFF_FAMILIES")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect());
    let keep_going = env_flag("DIFF_KEEP_GOING");
    println!(
        "differential: seed {seed} ({commands} commands per family{}); reproduce with DIFF_SEED={seed}",
        if keep_going { ", keep going" } else { "" }
    );

    let started = Instant::now();
    let redis_srv = Server::redis();
    let stay_srv = Server::staykv();
    let mut h = Harness {
        seed,
        commands_per_family: commands,
        keep_going,
        redis: redis_srv.connect(),
        stay: stay_srv.connect(),
        redis_insp: redis_srv.connect(),
        stay_insp: stay_srv.connect(),
        redis_srv,
        stay_srv,
        family: "setup",
        proto: 2,
        index: 0,
        history: VecDeque::new(),
        frozen: None,
        key_history: std::collections::HashMap::new(),
        mismatches: Vec::new(),
        dataset_checks: 0,
        lex_skipped: 0,
        redis_subs: Vec::new(),
        stay_subs: Vec::new(),
        fam: &Family::PLAIN,
        drains: 0,
        drain_unordered: false,
        reopening: false,
        sub_step: env_flag("DIFF_SUB_STEP"),
    };
    if let Ok(Value::Bulk(info)) = h.redis_insp.call(&[b"INFO", b"server"]) {
        let text = String::from_utf8_lossy(&info).into_owned();
        let version = text.lines().find_map(|l| l.strip_prefix("redis_version:")).unwrap_or("?").trim().to_string();
        println!(
            "differential: redis-server {version} on port {}, staykv on port {}",
            h.redis_srv.port, h.stay_srv.port
        );
        if !version.starts_with("7.0.") {
            println!("differential: WARNING: the reference is Redis 7.0; {version} may reply differently");
        }
    }

    // Which generators can run: StayKV and Redis must both know the command and what its
    // check needs.
    let registry = families::registry();
    let mut names: Vec<String> = Vec::new();
    for fam in &registry {
        for g in fam.gens {
            for n in std::iter::once(&g.name).chain(g.needs.iter()).chain(fam.required.iter()) {
                if !n.is_empty() && !names.iter().any(|x| x == n) {
                    names.push((*n).to_string());
                }
            }
        }
    }
    let stay_known = known_commands(&mut h.stay_insp, &names);
    let redis_known = known_commands(&mut h.redis_insp, &names);
    let usable = |n: &str| n.is_empty() || (stay_known.contains(n) && redis_known.contains(n));
    let mut missing: Vec<&String> = names.iter().filter(|n| !stay_known.contains(*n)).collect();
    missing.sort();
    if !missing.is_empty() {
        println!(
            "differential: skipping commands StayKV lacks (COMMAND INFO answers nil): {}",
            missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
        );
    }
    let redis_missing: Vec<&String> = names.iter().filter(|n| !redis_known.contains(*n)).collect();
    if !redis_missing.is_empty() {
        println!("differential: skipping commands the reference Redis lacks: {redis_missing:?}");
    }
    let mut enabled: Vec<(&'static Family, Vec<&'static CmdGen>)> = Vec::new();
    for fam in registry {
        let lacking: Vec<&str> = fam.required.iter().copied().filter(|n| !usable(n)).collect();
        if !lacking.is_empty() {
            println!("differential: family {} skipped: StayKV lacks {}", fam.name, lacking.join(" "));
            continue;
        }
        let gens: Vec<&'static CmdGen> =
            fam.gens.iter().filter(|g| usable(g.name) && g.needs.iter().all(|n| usable(n))).collect();
        let dropped: Vec<&str> =
            fam.gens.iter().filter(|g| !gens.iter().any(|x| std::ptr::eq(*x, *g))).map(|g| g.name).collect();
        if !dropped.is_empty() {
            println!(
                "differential: family {}: generators skipped (command or its check's commands missing): {}",
                fam.name,
                dropped.join(" ")
            );
        }
        enabled.push((fam, gens));
    }

    // What MULTI and scripts wrap: the plain families' commands.
    let inner: Vec<&'static CmdGen> =
        enabled.iter().filter(|(f, _)| !f.wraps).flat_map(|(_, g)| g.iter().copied()).collect();
    let mut summary = Vec::new();
    for (i, (fam, gens)) in enabled.iter().enumerate() {
        if let Some(only) = &only {
            if !only.iter().any(|o| o == fam.name) {
                continue;
            }
        }
        let foreign: Vec<&'static CmdGen> =
            enabled.iter().enumerate().filter(|(j, _)| *j != i).flat_map(|(_, (_, g))| g.iter().copied()).collect();
        let t = Instant::now();
        let mismatches_before = h.mismatches.len();
        h.run_family(fam, gens, &foreign, &inner);
        let lex_skipped = std::mem::take(&mut h.lex_skipped);
        let line = format!(
            "{:<8} {:>6} commands in {:>5.1}s, mismatches: {}{}",
            fam.name,
            h.commands_per_family,
            t.elapsed().as_secs_f64(),
            h.mismatches.len() - mismatches_before,
            if lex_skipped > 0 {
                format!(", lex ranges skipped (mixed scores, unspecified): {lex_skipped}")
            } else {
                String::new()
            }
        );
        println!("differential: {line}");
        summary.push(line);
    }

    println!(
        "differential: done in {:.1}s, seed {seed}, {} dataset comparisons",
        started.elapsed().as_secs_f64(),
        h.dataset_checks
    );
    for line in &summary {
        println!("  {line}");
    }
    if !h.mismatches.is_empty() {
        let mut by_cmd: Vec<(String, usize)> = Vec::new();
        for m in &h.mismatches {
            let name = m.command.split(' ').next().unwrap_or("").to_ascii_uppercase();
            match by_cmd.iter_mut().find(|(n, _)| *n == name) {
                Some(e) => e.1 += 1,
                None => by_cmd.push((name, 1)),
            }
        }
        let mut text =
            format!("differential: {} mismatches (seed {seed}) by command: {by_cmd:?}\n", h.mismatches.len());
        // One line per distinct (command, redis reply, staykv reply); dataset divergences by kind.
        let mut groups: Vec<(String, usize, &Mismatch)> = Vec::new();
        let mut divergences: Vec<(String, usize)> = Vec::new();
        for m in &h.mismatches {
            let name = m.command.split(' ').next().unwrap_or("").to_ascii_uppercase();
            if name.starts_with("\"(DATASET") {
                // Group the individual differences: "db 0 key \"k1\": OBJECT ENCODING redis .. staykv .."
                for line in m.detail.lines().skip(1) {
                    let what = line.trim().split_once(": ").map_or(line.trim(), |(_, rest)| rest);
                    let kind = if what.starts_with("OBJECT ENCODING") || what.starts_with("TYPE") {
                        what.to_string()
                    } else {
                        what.split(" redis").next().unwrap_or(what).split(" only").next().unwrap_or(what).to_string()
                    };
                    match divergences.iter_mut().find(|(k, _)| *k == kind) {
                        Some(d) => d.1 += 1,
                        None => divergences.push((kind, 1)),
                    }
                }
                continue;
            }
            let key = format!("{name}|{}|{}", m.redis, m.staykv);
            match groups.iter_mut().find(|(k, _, _)| *k == key) {
                Some(g) => g.1 += 1,
                None => groups.push((key, 1, m)),
            }
        }
        for (kind, n) in &divergences {
            text.push_str(&format!("--- x{n} dataset divergence: {kind}\n"));
        }
        for (_, n, m) in groups.iter().take(200) {
            text.push_str(&format!(
                "--- x{n} [{}] #{} {}\n    redis:  {}\n    staykv: {}\n    {}\n",
                m.family, m.index, m.command, m.redis, m.staykv, m.detail
            ));
        }
        panic!("{text}");
    }
}

impl Harness {
    fn run_family(
        &mut self,
        fam: &'static Family,
        gens: &[&'static CmdGen],
        foreign: &[&'static CmdGen],
        inner: &[&'static CmdGen],
    ) {
        self.family = fam.name;
        self.index = 0;
        self.history.clear();
        self.key_history.clear();
        let mut g = Gen::new(family_seed(self.seed, fam.name));
        g.inner = inner.to_vec();
        self.reset();
        self.fam = fam;
        self.run_setup();
        self.open_subscribers(fam.subscribers);
        // Families with subscribers draw no foreign commands: some of those are checked with
        // follow-up commands on one server only (SPOP's re-sync), whose events the other
        // server would not publish.
        let foreign = if fam.subscribers > 0 { &[][..] } else { foreign };
        let total = self.commands_per_family;
        let segments = total.div_ceil(SEGMENT).max(2);
        let per_segment = total.div_ceil(segments);
        let mut done = 0usize;
        let mut since_dataset = 0usize;
        let mut since_episode = 0usize;
        for s in 0..segments {
            if s == segments / 2 {
                // A compaction (fork-less snapshot) runs while the second half's commands
                // write; the restart at the end then loads its snapshot and the log after it.
                self.start_compaction();
            }
            let proto = if s % 2 == 0 { 2 } else { 3 };
            self.execute(vec![Op::with(args!["HELLO", proto.to_string()], Check::Hello)]);
            self.proto = proto;
            let mut pending: Vec<Op> = Vec::new();
            let end = (done + per_segment).min(total);
            while done < end {
                let gen = if !foreign.is_empty() && g.chance(FOREIGN) {
                    foreign[g.below(foreign.len())]
                } else {
                    g.pick_gen(gens).unwrap_or(gens[0])
                };
                let mut ops = (gen.gen)(&mut g);
                done += 1;
                since_dataset += 1;
                since_episode += 1;
                if let Some(first) = ops.first_mut() {
                    if first.mutable() && g.chance(MUTATE) {
                        if g.chance(0.5) {
                            first.args.pop();
                        } else {
                            first.args.push(g.pick_str(&["junk", "", "NX", "XX", "GET", "WITHSCORES", "COUNT"]));
                        }
                    }
                }
                if g.past_used {
                    g.past_used = false;
                    ops.push(Gen::touch_all());
                }
                if !self.redis_subs.is_empty() && (self.sub_step || pending.len() + ops.len() > BATCH) {
                    // A command's group (a deadline in the past and the EXISTS that reclaims
                    // the key) stays in one batch: between batches Redis's active expiry may
                    // announce `expired` before the EXISTS would.
                    self.flush(&mut pending);
                }
                for op in ops {
                    if let Some(n) = op.sub {
                        // A subscriber's command, drawn in a family without subscribers, is
                        // skipped.
                        self.flush(&mut pending);
                        if !self.redis_subs.is_empty() {
                            self.sub_command(n % self.redis_subs.len(), &op.args);
                        }
                        continue;
                    }
                    if let Some(db) = &op.side_db {
                        self.flush(&mut pending);
                        self.side(db, &op.args);
                        continue;
                    }
                    if let Some(key) = &op.lex_key {
                        self.flush(&mut pending);
                        if !self.lex_well_defined(key) {
                            self.lex_skipped += 1;
                            continue;
                        }
                    }
                    if matches!(op.check, Check::Scan) {
                        self.flush(&mut pending);
                        self.scan(&op);
                        continue;
                    }
                    let ends = op.ends_batch();
                    pending.push(op);
                    if ends || pending.len() >= BATCH {
                        self.flush(&mut pending);
                    }
                }
                if since_episode >= EPISODE_EVERY {
                    since_episode = 0;
                    self.flush(&mut pending);
                    if self.redis_subs.is_empty() {
                        self.short_expiry_episode(&mut g);
                    } else if !fam.setup.is_empty() {
                        // Subscribers with a setup (keyspace notifications): expiries are
                        // announced, and compared apart. Plain pub/sub has nothing to expire.
                        self.notify_expiry_episode(&mut g);
                    }
                }
                if since_dataset >= DATASET_EVERY {
                    since_dataset = 0;
                    self.flush(&mut pending);
                    self.compare_dataset();
                }
            }
            self.flush(&mut pending);
        }
        self.compare_dataset();
        self.open_subscribers(0);
        self.restart_check();
    }

    /// StayKV killed with SIGKILL and started again on its data directory must come back with
    /// the dataset it had: whatever the family's commands logged replays to the same keys,
    /// types, TTLs and values. Encodings are not compared: a replay or a compaction gives an
    /// object its encoding by size, as a Redis restart does.
    fn restart_check(&mut self) {
        self.wait_for_compaction();
        let before: Vec<DbState> = DBS.iter().map(|db| self.read_db(Side::Staykv, db)).collect();
        let started = Instant::now();
        if let Err(e) = self.stay_srv.kill_and_restart() {
            panic!(
                "differential: staykv did not come back after kill -9 at the end of family {} (seed {}): {e}\nstaykv log tail:\n{}",
                self.family,
                self.seed,
                self.stay_srv.log_tail()
            );
        }
        self.stay = self.stay_srv.connect();
        self.stay_insp = self.stay_srv.connect();
        // A restart empties the script cache, Redis's as well: later EVALSHAs must agree.
        let flushed = self.redis_insp.call(&[b"SCRIPT", b"FLUSH"]).unwrap_or_else(|e| panic!("SCRIPT FLUSH: {e}"));
        assert_eq!(flushed, Value::Simple(b"OK".to_vec()), "SCRIPT FLUSH");
        let after: Vec<DbState> = DBS.iter().map(|db| self.read_db(Side::Staykv, db)).collect();
        self.align_stream_layouts(&after);
        // TTLs count down while the server restarts.
        let slack = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX).saturating_add(1500);
        let ttl_kept = |b: &Value, a: &Value| match (b, a) {
            (Value::Int(b), Value::Int(a)) if *b >= 0 && *a >= 0 => (-100..=slack).contains(&(b - a)),
            (b, a) => b == a,
        };
        let mut problems = Vec::new();
        for ((db, before), after) in DBS.iter().zip(&before).zip(&after) {
            for (key, b) in &before.keys {
                let Some(a) = after.keys.get(key) else {
                    problems.push(format!("db {db} key {}: gone after the restart", quote(key)));
                    continue;
                };
                let same_value = restart_comparable(&b.kind, &b.value) == restart_comparable(&a.kind, &a.value);
                if b.kind != a.kind || !same_value || !ttl_kept(&b.ttl, &a.ttl) {
                    problems.push(format!(
                        "db {db} key {}: TYPE/PTTL/value before {} {} {}, after {} {} {}; last commands naming it:{}",
                        quote(key),
                        render(&b.kind),
                        render(&b.ttl),
                        truncate(render(&b.value), 300),
                        render(&a.kind),
                        render(&a.ttl),
                        truncate(render(&a.value), 300),
                        self.commands_naming(key)
                    ));
                }
            }
            for key in after.keys.keys().filter(|k| !before.keys.contains_key(*k)) {
                problems.push(format!("db {db} key {}: appeared after the restart", quote(key)));
            }
        }
        if !problems.is_empty() {
            let n = problems.len();
            problems.truncate(12);
            let detail = format!(
                "staykv's dataset changed across kill -9 and restart ({n} differences):\n      {}",
                problems.join("\n      ")
            );
            self.mismatch(&[b"(restart)".to_vec()], "(see below)", "(see below)", &[], &[], &detail);
        }
    }

    /// A restart lays StayKV's streams out afresh: a log replay under the restarted server's
    /// node limits (a CONFIG SET is not logged, as in Redis), a snapshot without the deleted
    /// entries Redis's nodes keep. So that later XINFO replies compare layouts like for
    /// like, Redis takes StayKV's node limits, and each stream of `dbs` (as StayKV holds
    /// them now) is restored on both servers from StayKV's DUMP of it.
    fn align_stream_layouts(&mut self, dbs: &[DbState]) {
        let limits = self.inspect_on(Side::Staykv, &[args!["CONFIG", "GET", "stream-node-*"]]);
        let mut set = args!["CONFIG", "SET"];
        match &limits[0] {
            Value::Map(pairs) => {
                set.extend(pairs.iter().flat_map(|(k, v)| [k, v]).filter_map(|x| x.bytes()).map(<[u8]>::to_vec))
            }
            other => set.extend(other.items().unwrap_or_default().iter().filter_map(|x| x.bytes()).map(<[u8]>::to_vec)),
        }
        self.expect_ok(Side::Redis, &[set]);
        for (db, state) in DBS.iter().zip(dbs) {
            let streams = state.keys.iter().filter(|(_, k)| k.kind == Value::Simple(b"stream".to_vec()));
            for (key, _) in streams {
                let read =
                    self.inspect_on(Side::Staykv, &[args!["SELECT", db], args!["DUMP", key], args!["PTTL", key]]);
                let (Some(payload), Value::Int(ttl)) = (read[1].bytes(), &read[2]) else { continue };
                let restore = args!["RESTORE", key, (*ttl).max(0).to_string(), payload, "REPLACE"];
                for side in [Side::Redis, Side::Staykv] {
                    self.expect_ok(side, &[args!["SELECT", db], restore.clone()]);
                }
            }
        }
    }

    /// Run `cmds` on one side's inspector connection; each must answer OK.
    fn expect_ok(&mut self, side: Side, cmds: &[Args]) {
        for (cmd, reply) in cmds.iter().zip(self.inspect_on(side, cmds)) {
            assert_eq!(reply, Value::Simple(b"OK".to_vec()), "{:?} {}", side, render_command(cmd));
        }
    }

    /// BGREWRITEAOF on StayKV alone: it changes no reply, only what a restart reads.
    fn start_compaction(&mut self) {
        let reply = self.inspect_on(Side::Staykv, &[args!["BGREWRITEAOF"]]);
        assert!(
            matches!(&reply[0], Value::Simple(text) if text.starts_with(b"Background append only file rewriting")),
            "BGREWRITEAOF: {}",
            render(&reply[0])
        );
    }

    fn wait_for_compaction(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let info = self.inspect_on(Side::Staykv, &[args!["INFO", "persistence"]]);
            let text = info[0].bytes().map(String::from_utf8_lossy).unwrap_or_default().into_owned();
            if text.contains("aof_rewrite_in_progress:0") && text.contains("aof_rewrite_scheduled:0") {
                return;
            }
            assert!(Instant::now() < deadline, "the compaction did not finish in 60 s:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Database `db` as one server's inspector connection reads it: DBSIZE, and each key's
    /// TYPE, PTTL, OBJECT ENCODING and value.
    fn read_db(&mut self, side: Side, db: &str) -> DbState {
        let head = self.inspect_on(side, &[args!["SELECT", db], args!["DBSIZE"], args!["KEYS", "*"]]);
        let keys: Vec<Vec<u8>> =
            head[2].items().unwrap_or_default().iter().filter_map(|k| k.bytes().map(<[u8]>::to_vec)).collect();
        let meta: Vec<Args> =
            keys.iter().flat_map(|k| [args!["TYPE", k], args!["PTTL", k], args!["OBJECT", "ENCODING", k]]).collect();
        let meta = self.inspect_on(side, &meta);
        let reads: Vec<(Args, Norm)> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                value_read(meta[3 * i].bytes().unwrap_or_default(), k)
                    .unwrap_or_else(|| (args!["TYPE", k], Value::clone))
            })
            .collect();
        let values = self.inspect_on(side, &reads.iter().map(|(cmd, _)| cmd.clone()).collect::<Vec<_>>());
        let keys = keys
            .into_iter()
            .enumerate()
            .map(|(i, key)| {
                let state = KeyState {
                    kind: meta[3 * i].clone(),
                    ttl: meta[3 * i + 1].clone(),
                    encoding: meta[3 * i + 2].clone(),
                    value: reads[i].1(&values[i]),
                };
                (key, state)
            })
            .collect();
        DbState { size: head[1].clone(), keys }
    }

    /// Whether a lex range over `key` is specified by Redis: not a sorted set, or all its
    /// scores are equal.
    fn lex_well_defined(&mut self, key: &[u8]) -> bool {
        let reply = match self.redis.pipeline(&[args!["ZRANGE", key, "0", "-1", "WITHSCORES"]]) {
            Ok(mut r) => r.remove(0),
            Err(e) => self.fatal("ZRANGE before a lex range", &e),
        };
        let Some(items) = reply.items() else { return true };
        let scores: HashSet<Value> = if items.iter().all(|x| x.items().is_some()) {
            items.iter().filter_map(|p| p.items().and_then(|p| p.get(1)).cloned()).collect()
        } else {
            items.iter().skip(1).step_by(2).cloned().collect()
        };
        scores.len() <= 1
    }

    /// Empty both servers and open fresh connections (RESP2, db 0).
    fn reset(&mut self) {
        for c in [&mut self.redis_insp, &mut self.stay_insp] {
            let r = c.call(&[b"FLUSHALL"]).unwrap_or_else(|e| panic!("FLUSHALL: {e}"));
            assert_eq!(r, Value::Simple(b"OK".to_vec()), "FLUSHALL");
            // The notify family changes it; no other family expects events.
            let r = c
                .call(&[b"CONFIG", b"SET", b"notify-keyspace-events", b""])
                .unwrap_or_else(|e| panic!("CONFIG SET: {e}"));
            assert_eq!(r, Value::Simple(b"OK".to_vec()), "CONFIG SET notify-keyspace-events");
        }
        self.redis = self.redis_srv.connect();
        self.stay = self.stay_srv.connect();
        self.proto = 2;
    }

    fn flush(&mut self, pending: &mut Vec<Op>) {
        if !pending.is_empty() {
            let batch = std::mem::take(pending);
            self.execute(batch);
        }
    }

    fn fatal(&mut self, what: &str, e: &ReadError) -> ! {
        let redis_alive = self.redis_srv.alive();
        let stay_alive = self.stay_srv.alive();
        let mut text = format!(
            "differential: {what}: {e}\n  seed {} family {} command #{} (RESP{})\n  redis alive: {redis_alive}, staykv alive: {stay_alive}\n",
            self.seed, self.family, self.index, self.proto
        );
        text.push_str(&self.history_text());
        text.push_str(&format!("staykv log tail:\n{}\n", self.stay_srv.log_tail()));
        for m in &self.mismatches {
            text.push_str(&format!("earlier mismatch: {} -> redis {} / staykv {}\n", m.command, m.redis, m.staykv));
        }
        panic!("{text}");
    }

    fn history_text(&self) -> String {
        let mut text = format!("  last {} commands:\n", self.history.len());
        for (i, c) in &self.history {
            text.push_str(&format!("    #{i} {c}\n"));
        }
        text
    }

    fn remember(&mut self, args: &[Vec<u8>]) {
        self.index += 1;
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        let rendered = truncate(render_command(args), 300);
        if let Some(key) = args.get(1) {
            let recent = self.key_history.entry(key.clone()).or_default();
            if recent.len() == HISTORY {
                recent.pop_front();
            }
            recent.push_back((self.index, rendered.clone()));
        }
        self.history.push_back((self.index, rendered));
    }

    /// `SELECT db` and `args` from another client: on the inspector connections, replies
    /// compared byte for byte.
    fn side(&mut self, db: &[u8], args: &Args) {
        let cmds = [args!["SELECT", db], args.clone()];
        // Shown as `"(other client, db 1) SET" k v`, its key still second for the key history.
        let mut label = args.clone();
        if let Some(name) = label.first_mut() {
            *name = [&b"(other client, db "[..], db, b") ", name].concat();
        }
        self.remember(&label);
        let on = |conn: &mut Conn| {
            conn.send(&cmds).map_err(ReadError::Io)?;
            conn.read()?;
            conn.read()
        };
        let ((r, rraw), (s, sraw)) = match (on(&mut self.redis_insp), on(&mut self.stay_insp)) {
            (Ok(r), Ok(s)) => (r, s),
            (Err(e), _) | (_, Err(e)) => self.fatal("a command on the second connection", &e),
        };
        if rraw != sraw {
            self.mismatch(&label, &render(&r), &render(&s), &rraw, &sraw, "replies on the second connection differ");
            self.resync_all();
        }
    }

    /// Send a batch to both servers, compare the replies one by one.
    fn execute(&mut self, batch: Vec<Op>) {
        let cmds: Vec<Args> = batch.iter().map(|o| o.args.clone()).collect();
        if let Err(e) = self.redis.send(&cmds) {
            self.fatal("sending to redis", &ReadError::Io(e));
        }
        if let Err(e) = self.stay.send(&cmds) {
            self.fatal("sending to staykv", &ReadError::Io(e));
        }
        let mut ops = batch.into_iter();
        while let Some(op) = ops.next() {
            self.remember(&op.args);
            let ((r, rraw), (s, sraw)) = self.read_both();
            let mut outcome = self.compare(&op, &r, &rraw, &s, &sraw);
            if let Outcome::Same = outcome {
                if let Check::Random(rc) = &op.check {
                    if let Some(detail) = self.verify_random(rc, &r, &s) {
                        outcome = Outcome::Mismatch(detail);
                    }
                }
                if let Check::Dump(plan) = &op.check {
                    if let Some(detail) = self.restore_dumps(plan, &r, &s) {
                        outcome = Outcome::Mismatch(detail);
                    }
                }
            }
            match outcome {
                Outcome::Same => {}
                Outcome::Mismatch(detail) => {
                    // The rest of the batch ran on diverged state: drain it, show the key
                    // as each server holds it now, then re-sync. The report shows the
                    // commands up to the mismatch, not the drained ones.
                    self.frozen = Some((self.index, self.history_text()));
                    for rest in ops {
                        self.remember(&rest.args);
                        self.read_both();
                    }
                    let detail = format!("{detail}\n{}", self.key_state(&op.args));
                    self.mismatch(&op.args, &render(&r), &render(&s), &rraw, &sraw, &detail);
                    self.resync_all();
                    return;
                }
            }
        }
        if !self.redis_subs.is_empty() {
            self.drain_subscribers();
        }
    }

    fn read_both(&mut self) -> ((Value, Vec<u8>), (Value, Vec<u8>)) {
        let redis = match self.redis.read() {
            Ok(x) => x,
            Err(e) => self.fatal("reading redis's reply", &e),
        };
        match self.stay.read() {
            Ok(x) => (redis, x),
            Err(e) => self.fatal("reading staykv's reply", &e),
        }
    }

    /// Type, encoding, TTL and DUMP payload of a command's first key on both servers (on the
    /// command connections, so in the database the command ran in), for the mismatch report.
    fn key_state(&mut self, args: &[Vec<u8>]) -> String {
        let Some(key) = args.get(1) else { return String::new() };
        let probe = [args!["TYPE", key], args!["OBJECT", "ENCODING", key], args!["PTTL", key], args!["DUMP", key]];
        let mut text = format!("state of {} after the batch (TYPE, OBJECT ENCODING, PTTL, DUMP):\n", quote(key));
        for (who, conn) in [("redis ", &mut self.redis), ("staykv", &mut self.stay)] {
            let state = match conn.pipeline(&probe) {
                Ok(replies) => replies.iter().map(render).collect::<Vec<_>>().join(" | "),
                Err(e) => format!("(unreadable: {e:?})"),
            };
            text.push_str(&format!("  {who}: {}\n", truncate(state, 600)));
        }
        text
    }

    fn compare(&mut self, op: &Op, r: &Value, rraw: &[u8], s: &Value, sraw: &[u8]) -> Outcome {
        let same = |ok: bool, what: &str| if ok { Outcome::Same } else { Outcome::Mismatch(what.to_string()) };
        match &op.check {
            Check::Exact => same(rraw == sraw, "replies differ"),
            Check::Norm(f) => same(f(r) == f(s), "replies differ (compared unordered)"),
            Check::Tol(t) => match (r, s) {
                (Value::Int(a), Value::Int(b)) if *a >= 0 && *b >= 0 => {
                    same(a.abs_diff(*b) <= t.unsigned_abs(), &format!("differ by more than {t}"))
                }
                _ => same(rraw == sraw, "replies differ"),
            },
            Check::Random(rc) => {
                if r.is_error() || s.is_error() || r.is_nil() || s.is_nil() {
                    return same(rraw == sraw, "replies differ");
                }
                if r.shape() != s.shape() {
                    return Outcome::Mismatch("random replies differ in shape (type or count)".into());
                }
                let distinct = match rc.kind {
                    RandKind::SPop => rc.count.is_some(),
                    RandKind::RandomKey => false,
                    _ => rc.count.is_some_and(|n| n > 0),
                };
                if distinct {
                    for (who, v) in [("redis", r), ("staykv", s)] {
                        let picked = picked(rc, v);
                        let set: HashSet<&Vec<u8>> = picked.iter().map(|(m, _)| m).collect();
                        if set.len() != picked.len() {
                            return Outcome::Mismatch(format!("{who} returned duplicates for a positive count"));
                        }
                    }
                }
                Outcome::Same
            }
            Check::Hello => same(hello_norm(r) == hello_norm(s), "HELLO replies differ (id ignored)"),
            Check::Each(checks) => match (r, s) {
                (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
                    for (i, (x, y)) in a.iter().zip(b).enumerate() {
                        let ok = match checks.get(i) {
                            Some(Check::Norm(f)) => f(x) == f(y),
                            Some(Check::Tol(t)) => match (x, y) {
                                (Value::Int(p), Value::Int(q)) if *p >= 0 && *q >= 0 => {
                                    p.abs_diff(*q) <= t.unsigned_abs()
                                }
                                _ => x == y,
                            },
                            _ => x == y,
                        };
                        if !ok {
                            return Outcome::Mismatch(format!("element {i} differs"));
                        }
                    }
                    Outcome::Same
                }
                _ => same(rraw == sraw, "replies differ"),
            },
            Check::Scan => Outcome::Mismatch("internal: SCAN op compared as a plain command".into()),
            // The payloads are each server's encoding choice: nil or not must agree; the
            // follow-up RESTOREs compare what they stand for.
            Check::Dump(_) => match (r, s) {
                (Value::Bulk(_), Value::Bulk(_)) => Outcome::Same,
                _ => same(rraw == sraw, "replies differ"),
            },
        }
    }

    fn mismatch(&mut self, args: &[Vec<u8>], redis: &str, staykv: &str, rraw: &[u8], sraw: &[u8], detail: &str) {
        let command = truncate(render_command(args), 500);
        let (index, history) = self.frozen.take().unwrap_or_else(|| (self.index, self.history_text()));
        let mut text = format!(
            "\n=== DIFFERENTIAL MISMATCH (seed {seed}, family {fam}, command #{idx}, RESP{proto}) ===\n\
             reproduce: DIFF_SEED={seed} DIFF_FAMILIES={fam} DIFF_COMMANDS={n} cargo test -p staykv --test differential -- --nocapture\n\
             command: {command}\n\
             {detail}\n\
             redis:  {r}\n\
             staykv: {s}\n",
            seed = self.seed,
            fam = self.family,
            idx = index,
            proto = self.proto,
            n = self.commands_per_family,
            r = truncate(redis.to_string(), 2000),
            s = truncate(staykv.to_string(), 2000),
        );
        if !rraw.is_empty() || !sraw.is_empty() {
            text.push_str(&format!(
                "raw redis:  {}\nraw staykv: {}\n",
                truncate(quote(rraw), 1000),
                truncate(quote(sraw), 1000)
            ));
        }
        text.push_str(&history);
        if !self.keep_going {
            panic!("{text}");
        }
        println!("{text}");
        self.mismatches.push(Mismatch {
            family: self.family.to_string(),
            index,
            command,
            redis: truncate(redis.to_string(), 400),
            staykv: truncate(staykv.to_string(), 400),
            detail: detail.to_string(),
        });
    }

    /// Membership checks for random replies, and the SPOP re-sync.
    fn verify_random(&mut self, rc: &RandomCheck, r: &Value, s: &Value) -> Option<String> {
        if r.is_error() || r.is_nil() {
            return None;
        }
        let rp = picked(rc, r);
        let sp = picked(rc, s);
        if rc.kind == RandKind::SPop {
            return self.spop_resync(rc, &rp, &sp);
        }
        for (who, picks) in [("redis", &rp), ("staykv", &sp)] {
            let mut checks: Vec<Args> = Vec::new();
            for (m, v) in picks.iter() {
                checks.push(match (rc.kind, v) {
                    (RandKind::RandomKey, _) => args!["EXISTS", m],
                    (RandKind::SRandMember, _) => args!["SISMEMBER", rc.key, m],
                    (RandKind::HRandField, Some(_)) => args!["HGET", rc.key, m],
                    (RandKind::HRandField, None) => args!["HEXISTS", rc.key, m],
                    (RandKind::ZRandMember, _) => args!["ZSCORE", rc.key, m],
                    (RandKind::SPop, _) => unreachable!(),
                });
            }
            if checks.is_empty() {
                continue;
            }
            let conn = if who == "redis" { &mut self.redis } else { &mut self.stay };
            let replies = match conn.pipeline(&checks) {
                Ok(x) => x,
                Err(e) => self.fatal("verifying a random reply", &e),
            };
            for ((m, v), reply) in picks.iter().zip(&replies) {
                let ok = match (rc.kind, v) {
                    (RandKind::RandomKey | RandKind::SRandMember, _) | (RandKind::HRandField, None) => {
                        *reply == Value::Int(1)
                    }
                    (RandKind::HRandField, Some(val)) | (RandKind::ZRandMember, Some(val)) => reply == val,
                    (RandKind::ZRandMember, None) => !reply.is_nil() && !reply.is_error(),
                    (RandKind::SPop, _) => true,
                };
                if !ok {
                    return Some(format!(
                        "{who}'s random pick {} is not in the key (check replied {})",
                        quote(m),
                        render(reply)
                    ));
                }
            }
        }
        None
    }

    /// After SPOP: put StayKV's popped members back and remove Redis's, then the sets must be
    /// equal again (and the SADD/SREM counts prove the pops were real members).
    fn spop_resync(
        &mut self,
        rc: &RandomCheck,
        rp: &[(Vec<u8>, Option<Value>)],
        sp: &[(Vec<u8>, Option<Value>)],
    ) -> Option<String> {
        let mut cmds: Vec<Args> = Vec::new();
        let mut expect: Vec<i64> = Vec::new();
        if !sp.is_empty() {
            let mut a = args!["SADD", rc.key];
            a.extend(sp.iter().map(|(m, _)| m.clone()));
            cmds.push(a);
            expect.push(i64::try_from(sp.len()).unwrap_or(0));
        }
        if !rp.is_empty() {
            let mut a = args!["SREM", rc.key];
            a.extend(rp.iter().map(|(m, _)| m.clone()));
            cmds.push(a);
            expect.push(i64::try_from(rp.len()).unwrap_or(0));
        }
        if !cmds.is_empty() {
            let replies = match self.stay.pipeline(&cmds) {
                Ok(x) => x,
                Err(e) => self.fatal("re-syncing after SPOP", &e),
            };
            for ((cmd, want), got) in cmds.iter().zip(&expect).zip(&replies) {
                if *got != Value::Int(*want) {
                    return Some(format!(
                        "after SPOP, re-sync `{}` on staykv replied {} (expected {want}): popped members were not members",
                        render_command(cmd),
                        render(got)
                    ));
                }
            }
        }
        let q = args!["SMEMBERS", rc.key];
        let r = self.redis.pipeline(std::slice::from_ref(&q));
        let s = self.stay.pipeline(std::slice::from_ref(&q));
        match (r, s) {
            (Ok(r), Ok(s)) => {
                if unordered(&r[0]) != unordered(&s[0]) {
                    return Some(format!(
                        "after SPOP and re-sync the sets differ: redis {} staykv {}",
                        render(&r[0]),
                        render(&s[0])
                    ));
                }
                let remaining = r[0].items().map_or(0, <[Value]>::len);
                self.spop_rebuild(rc, rp.len(), remaining);
                None
            }
            (Err(e), _) | (_, Err(e)) => self.fatal("SMEMBERS after SPOP", &e),
        }
    }

    /// An SPOP with a count that leaves at most a fifth of the count behind makes Redis 7.0
    /// rebuild the set from what remains (its encoding then follows that content), while the
    /// re-sync's SADD of StayKV's own picks may have converted StayKV's set: StayKV's key is
    /// rebuilt the same way (DUMP/RESTORE keeps its TTL, and RESTORE follows the content).
    fn spop_rebuild(&mut self, rc: &RandomCheck, popped: usize, remaining: usize) {
        let Some(count) = rc.count.and_then(|n| usize::try_from(n).ok()) else { return };
        if remaining == 0 || count >= popped + remaining || remaining * 5 > count {
            return;
        }
        let meta = match self.stay.pipeline(&[args!["PEXPIRETIME", rc.key], args!["DUMP", rc.key]]) {
            Ok(x) => x,
            Err(e) => self.fatal("DUMP after SPOP", &e),
        };
        let at = match &meta[0] {
            Value::Int(n) if *n > 0 => n.to_string(),
            _ => "0".to_string(),
        };
        let Some(payload) = meta[1].bytes().map(<[u8]>::to_vec) else { return };
        let restore = args!["RESTORE", rc.key, at, payload, "REPLACE", "ABSTTL"];
        if let Err(e) = self.stay.pipeline(&[restore]) {
            self.fatal("RESTORE after SPOP", &e);
        }
    }

    /// A SCAN-family command iterated to the end on each server; the element sets must be equal.
    fn scan(&mut self, op: &Op) {
        self.remember(&op.args);
        // Where the cursor is, and how many strings an element is (a field and its value, a
        // member and its score).
        let name = op.args.first().map(|n| n.to_ascii_uppercase()).unwrap_or_default();
        let (cursor_at, stride) = match &name[..] {
            b"SSCAN" => (2, 1),
            b"HSCAN" | b"ZSCAN" => (2, 2),
            _ => (1, 1),
        };
        let first =
            (self.redis.pipeline(std::slice::from_ref(&op.args)), self.stay.pipeline(std::slice::from_ref(&op.args)));
        let (r, s) = match first {
            (Ok(mut r), Ok(mut s)) => (r.remove(0), s.remove(0)),
            (Err(e), _) | (_, Err(e)) => self.fatal("SCAN", &e),
        };
        let parse = |v: &Value| -> Option<(Vec<u8>, Vec<ScanElement>)> {
            let items = v.items()?;
            let cursor = items.first()?.bytes()?.to_vec();
            let strings =
                items.get(1)?.items()?.iter().map(|k| k.bytes().map(<[u8]>::to_vec)).collect::<Option<Vec<_>>>()?;
            (strings.len() % stride == 0).then(|| (cursor, strings.chunks(stride).map(<[_]>::to_vec).collect()))
        };
        let (Some(rf), Some(sf)) = (parse(&r), parse(&s)) else {
            if r != s {
                self.mismatch(&op.args, &render(&r), &render(&s), &[], &[], "SCAN replies differ");
                self.resync_all();
            }
            return;
        };
        let mut sets: Vec<BTreeSet<ScanElement>> = Vec::new();
        for (who, first) in [("redis", rf), ("staykv", sf)] {
            let (mut cursor, keys) = first;
            let mut set: BTreeSet<ScanElement> = keys.into_iter().collect();
            let mut calls = 0;
            while cursor != b"0" {
                calls += 1;
                if calls > 100_000 {
                    self.mismatch(&op.args, "", "", &[], &[], &format!("{who}: SCAN did not come back to cursor 0"));
                    return;
                }
                let mut a = op.args.clone();
                a[cursor_at] = cursor.clone();
                let conn = if who == "redis" { &mut self.redis } else { &mut self.stay };
                let reply = match conn.pipeline(&[a]) {
                    Ok(mut x) => x.remove(0),
                    Err(e) => self.fatal("SCAN iteration", &e),
                };
                let Some((c, keys)) = parse(&reply) else {
                    self.mismatch(
                        &op.args,
                        "",
                        &render(&reply),
                        &[],
                        &[],
                        &format!("{who}: bad SCAN reply while iterating"),
                    );
                    return;
                };
                cursor = c;
                set.extend(keys);
            }
            sets.push(set);
        }
        if sets[0] != sets[1] {
            let show = |element: &ScanElement| element.iter().map(|s| quote(s)).collect::<Vec<_>>().join(" ");
            let only_r: Vec<String> = sets[0].difference(&sets[1]).map(show).collect();
            let only_s: Vec<String> = sets[1].difference(&sets[0]).map(show).collect();
            let detail = format!("full SCAN sets differ: only in redis {only_r:?}, only in staykv {only_s:?}");
            self.mismatch(
                &op.args,
                &format!("{:?}", sets[0].iter().map(show).collect::<Vec<_>>()),
                &format!("{:?}", sets[1].iter().map(show).collect::<Vec<_>>()),
                &[],
                &[],
                &detail,
            );
            self.resync_all();
        }
    }

    /// A few keys get millisecond expiries at the end of a batch; after a pause both servers
    /// have expired them, and an EXISTS on every key reclaims them on both at the same point.
    fn short_expiry_episode(&mut self, g: &mut Gen) {
        let n = g.range(1, 3);
        let keys = g.distinct_keys(usize::try_from(n).unwrap_or(1));
        let mut ops = Vec::new();
        let mut longest = 0;
        for k in keys {
            let ms = g.range(1, 25);
            longest = longest.max(ms);
            let v = g.value();
            let a = match g.below(6) {
                0 => args!["SET", k, v, "PX", ms.to_string()],
                1 => args!["PSETEX", k, ms.to_string(), v],
                2 => args!["PEXPIRE", k, ms.to_string()],
                3 => args!["SET", k, v, "PXAT", (now_ms() + 30 + ms).to_string()],
                4 => args!["GETEX", k, "PX", ms.to_string()],
                _ => args!["PEXPIREAT", k, (now_ms() + 30 + ms).to_string()],
            };
            ops.push(Op::new(a));
        }
        self.execute(ops);
        std::thread::sleep(Duration::from_millis(u64::try_from(longest).unwrap_or(25) + 60));
        self.execute(vec![Gen::touch_all()]);
    }

    /// The family's `setup` on both servers, whose replies must agree.
    fn run_setup(&mut self) {
        for cmd in self.fam.setup {
            let cmd = owned_args(cmd);
            let (r, s) = self.inspect(std::slice::from_ref(&cmd));
            assert_eq!(r, s, "family setup {}", render_command(&cmd));
        }
    }

    // ---- subscribers (pub/sub, keyspace notifications) -----------------------------------

    /// Close the subscriber connections and open `n` fresh ones per server, each running the
    /// family's `sub_setup` (its replies compared at the first drain).
    fn open_subscribers(&mut self, n: usize) {
        self.redis_subs.clear();
        self.stay_subs.clear();
        self.drain_unordered = false;
        for _ in 0..n {
            self.redis_subs.push(self.redis_srv.connect());
            self.stay_subs.push(self.stay_srv.connect());
        }
        if n == 0 {
            return;
        }
        for i in 0..n {
            for cmd in self.fam.sub_setup {
                let cmd = owned_args(cmd);
                for conn in [&mut self.redis_subs[i], &mut self.stay_subs[i]] {
                    if let Err(e) = conn.send(std::slice::from_ref(&cmd)) {
                        panic!("differential: subscriber setup: {e}");
                    }
                }
            }
        }
        self.drain_subscribers();
    }

    /// A command on subscriber `n` of both servers; what it answers is read and compared with
    /// the messages at the drain that follows at once (which also makes sure the command ran
    /// before the next command of the main connection).
    fn sub_command(&mut self, n: usize, args: &Args) {
        let mut label = args.clone();
        if let Some(name) = label.first_mut() {
            *name = [format!("(subscriber {n}) ").as_bytes(), name].concat();
        }
        self.remember(&label);
        let (redis, stay) = (&mut self.redis_subs[n], &mut self.stay_subs[n]);
        if let Err(e) = redis.send(std::slice::from_ref(args)).and_then(|()| stay.send(std::slice::from_ref(args))) {
            self.fatal("sending to a subscriber", &ReadError::Io(e));
        }
        self.drain_subscribers();
    }

    /// Everything each subscriber received since the last drain, on both servers, compared
    /// frame by frame: a `PING <marker>` goes to every subscriber and each is read up to the
    /// marker's reply.
    ///
    /// The marker's position is compared too: messages delivered before a command must
    /// come before its reply, as in Redis. One narrow tolerance:
    /// * A run of `pmessage` frames for the same channel and message (one PUBLISH matching
    ///   several patterns of one subscriber) is compared in sorted order: Redis 7.0 walks its
    ///   pattern dictionary in hash order, which is unspecified. Likewise the channel names
    ///   of a run of `unsubscribe` confirmations (UNSUBSCRIBE without arguments walks the
    ///   client's channel dictionary); the counts are compared in place.
    fn drain_subscribers(&mut self) {
        let n = self.redis_subs.len();
        let mut markers = Vec::new();
        for i in 0..n {
            self.drains += 1;
            let marker = format!("\u{1}drain-{}", self.drains).into_bytes();
            let ping = args!["PING", marker];
            let sent = self.redis_subs[i]
                .send(std::slice::from_ref(&ping))
                .and_then(|()| self.stay_subs[i].send(std::slice::from_ref(&ping)));
            if let Err(e) = sent {
                self.fatal("sending PING to a subscriber", &ReadError::Io(e));
            }
            markers.push(marker);
        }
        let unordered_drain = std::mem::take(&mut self.drain_unordered);
        for (i, marker) in markers.iter().enumerate() {
            let r = match read_to_marker(&mut self.redis_subs[i], marker) {
                Ok(frames) => frames,
                Err(e) => self.fatal("reading a redis subscriber", &e),
            };
            let s = match read_to_marker(&mut self.stay_subs[i], marker) {
                Ok(frames) => frames,
                Err(e) => self.fatal("reading a staykv subscriber", &e),
            };
            let (rn, sn) = if unordered_drain {
                let mut rn = r.clone();
                let mut sn = s.clone();
                rn.sort();
                sn.sort();
                (rn, sn)
            } else {
                (norm_frames(&r), norm_frames(&s))
            };
            if rn != sn {
                let at = rn.iter().zip(&sn).position(|(a, b)| a != b).unwrap_or(rn.len().min(sn.len()));
                let show = |frames: &[Value]| -> String {
                    frames.iter().map(|f| format!("\n        {}", truncate(render(f), 300))).collect::<String>()
                };
                let detail = format!(
                    "subscriber {i} received different frames{} (first difference at frame {at}):\n      redis ({} frames):{}\n      staykv ({} frames):{}",
                    if unordered_drain { " (compared as multisets)" } else { "" },
                    r.len(),
                    show(&r),
                    s.len(),
                    show(&s)
                );
                let label = vec![format!("(subscriber {i} drained)").into_bytes()];
                self.mismatch(
                    &label,
                    &truncate(render(&Value::Array(rn)), 2000),
                    &truncate(render(&Value::Array(sn)), 2000),
                    &[],
                    &[],
                    &detail,
                );
                // Queued frames may still be on their way: start again from fresh subscribers
                // (once: a setup that itself differs is reported, not retried).
                if !self.reopening {
                    self.reopening = true;
                    self.open_subscribers(n);
                    self.reopening = false;
                }
                return;
            }
        }
    }

    /// Keys that really expire (30–50 ms), read again after a pause: the `expired` events
    /// come from active expiry or from the lazy expiry of that read, whichever happens first
    /// on each server, so this one drain compares the events as multisets (see
    /// `drain_unordered`). Everything else in the run is compared in order.
    fn notify_expiry_episode(&mut self, g: &mut Gen) {
        let n = g.range(1, 3);
        let keys = g.distinct_keys(usize::try_from(n).unwrap_or(1));
        let mut ops = Vec::new();
        for k in &keys {
            // Long enough that the ordered drain after this batch sees none of them expire.
            let ms = g.range(30, 50).to_string();
            ops.push(Op::new(match g.below(3) {
                0 => args!["SET", k, g.value(), "PX", ms],
                1 => args!["PSETEX", k, ms, g.value()],
                _ => args!["PEXPIRE", k, ms],
            }));
        }
        self.execute(ops);
        std::thread::sleep(Duration::from_millis(100));
        let mut reads = Vec::new();
        for k in &keys {
            reads.push(Op::new(args![g.pick_str(&["GET", "EXISTS", "TYPE", "PTTL"]), k]));
        }
        self.drain_unordered = true;
        self.execute(reads);
        self.drain_unordered = false;
    }

    // ---- DUMP / RESTORE --------------------------------------------------------------------

    /// After a `DUMP` both answered: the plan's RESTOREs on each server (its own payload, the
    /// other server's, or Redis's damaged), replies compared exactly, then every target key
    /// compared (type, TTL, encoding, value).
    fn restore_dumps(&mut self, plan: &DumpPlan, r: &Value, s: &Value) -> Option<String> {
        let fallback = dump_payload(b"\x00\x05hello");
        let rp = r.bytes().map_or_else(|| fallback.clone(), <[u8]>::to_vec);
        let sp = s.bytes().map_or_else(|| fallback.clone(), <[u8]>::to_vec);
        let mut rcmds: Vec<Args> = Vec::new();
        let mut scmds: Vec<Args> = Vec::new();
        for rs in &plan.restores {
            let (for_redis, for_stay) = match rs.payload {
                Payload::Own => (rp.clone(), sp.clone()),
                Payload::Other => (sp.clone(), rp.clone()),
                Payload::Damaged(d) => {
                    let p = damage(&rp, d);
                    (p.clone(), p)
                }
            };
            for (cmds, payload) in [(&mut rcmds, for_redis), (&mut scmds, for_stay)] {
                let mut a = args!["RESTORE", rs.target, rs.ttl, payload];
                a.extend(rs.options.iter().cloned());
                cmds.push(a);
            }
        }
        let rr = match self.redis.pipeline(&rcmds) {
            Ok(x) => x,
            Err(e) => self.fatal("RESTORE on redis", &e),
        };
        let sr = match self.stay.pipeline(&scmds) {
            Ok(x) => x,
            Err(e) => self.fatal("RESTORE on staykv", &e),
        };
        for (i, (a, b)) in rr.iter().zip(&sr).enumerate() {
            let mut label = rcmds[i].clone();
            label[3] = format!("<{:?} payload>", plan.restores[i].payload).into_bytes();
            self.remember(&label);
            if a != b {
                return Some(format!(
                    "after the DUMP: `{}` answered redis {} staykv {}",
                    render_command(&label),
                    render(a),
                    render(b)
                ));
            }
        }
        let mut targets: Vec<&Vec<u8>> = plan.restores.iter().map(|rs| &rs.target).collect();
        targets.sort();
        targets.dedup();
        for key in targets {
            let probe = [args!["TYPE", key], args!["PTTL", key], args!["OBJECT", "ENCODING", key]];
            let (rm, sm) = match (self.redis.pipeline(&probe), self.stay.pipeline(&probe)) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(e), _) | (_, Err(e)) => self.fatal("probing a restored key", &e),
            };
            if rm[0] != sm[0] || !ttl_close(&rm[1], &sm[1]) || rm[2] != sm[2] {
                return Some(format!(
                    "restored key {}: TYPE/PTTL/OBJECT ENCODING redis {} {} {} staykv {} {} {}",
                    quote(key),
                    render(&rm[0]),
                    render(&rm[1]),
                    render(&rm[2]),
                    render(&sm[0]),
                    render(&sm[1]),
                    render(&sm[2])
                ));
            }
            let Some((read, norm)) = value_read(rm[0].bytes().unwrap_or_default(), key) else { continue };
            let read = std::slice::from_ref(&read);
            let (rv, sv) = match (self.redis.pipeline(read), self.stay.pipeline(read)) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(e), _) | (_, Err(e)) => self.fatal("reading a restored key", &e),
            };
            if norm(&rv[0]) != norm(&sv[0]) {
                return Some(format!(
                    "restored key {}: value redis {} staykv {}",
                    quote(key),
                    truncate(render(&rv[0]), 500),
                    truncate(render(&sv[0]), 500)
                ));
            }
        }
        None
    }

    /// Compare every database (DBSIZE, keys, type, TTL, encoding, value) through the inspector
    /// connections; every difference found is reported together.
    fn compare_dataset(&mut self) {
        self.dataset_checks += 1;
        let mut problems: Vec<String> = Vec::new();
        for db in DBS {
            let (r, s) = (self.read_db(Side::Redis, db), self.read_db(Side::Staykv, db));
            if r.size != s.size {
                problems.push(format!("db {db}: DBSIZE redis {} staykv {}", render(&r.size), render(&s.size)));
            }
            if r.keys.len() != s.keys.len() || r.keys.keys().any(|k| !s.keys.contains_key(k)) {
                let only = |a: &DbState, b: &DbState| -> Vec<String> {
                    a.keys.keys().filter(|k| !b.keys.contains_key(*k)).map(|k| quote(k)).collect()
                };
                problems.push(format!(
                    "db {db}: keys only in redis {:?}, only in staykv {:?}",
                    only(&r, &s),
                    only(&s, &r)
                ));
            }
            for (k, rk) in &r.keys {
                let Some(sk) = s.keys.get(k) else { continue };
                for (what, ok, rv, sv) in [
                    ("TYPE", rk.kind == sk.kind, &rk.kind, &sk.kind),
                    ("PTTL", ttl_close(&rk.ttl, &sk.ttl), &rk.ttl, &sk.ttl),
                    ("OBJECT ENCODING", rk.encoding == sk.encoding, &rk.encoding, &sk.encoding),
                ] {
                    if !ok {
                        problems.push(format!(
                            "db {db} key {}: {what} redis {} staykv {}; last commands naming it:{}",
                            quote(k),
                            render(rv),
                            render(sv),
                            self.commands_naming(k)
                        ));
                    }
                }
                if rk.kind == sk.kind && rk.value != sk.value {
                    problems.push(format!(
                        "db {db} key {}: value redis {} staykv {}",
                        quote(k),
                        truncate(render(&rk.value), 300),
                        truncate(render(&sk.value), 300)
                    ));
                }
            }
        }
        if problems.is_empty() {
            return;
        }
        let last = self.history.back().map(|(_, c)| c.clone()).unwrap_or_default();
        let n = problems.len();
        problems.truncate(12);
        let detail =
            format!("silent state divergence ({n} differences, after {last}):\n      {}", problems.join("\n      "));
        self.mismatch(&[b"(dataset comparison)".to_vec()], "(see below)", "(see below)", &[], &[], &detail);
        self.resync_all();
    }

    /// The last commands of the family that named `key`, one per line.
    fn commands_naming(&self, key: &[u8]) -> String {
        self.key_history.get(key).into_iter().flatten().map(|(n, c)| format!("\n        #{n} {c}")).collect()
    }

    fn inspect(&mut self, cmds: &[Args]) -> (Vec<Value>, Vec<Value>) {
        (self.inspect_on(Side::Redis, cmds), self.inspect_on(Side::Staykv, cmds))
    }

    /// `cmds` pipelined on one server's inspector connection.
    fn inspect_on(&mut self, side: Side, cmds: &[Args]) -> Vec<Value> {
        let (conn, what) = match side {
            Side::Redis => (&mut self.redis_insp, "inspecting redis"),
            Side::Staykv => (&mut self.stay_insp, "inspecting staykv"),
        };
        match conn.pipeline(cmds) {
            Ok(x) => x,
            Err(e) => self.fatal(what, &e),
        }
    }

    /// Rebuild both servers from Redis's data with the same commands (keep-going mode).
    fn resync_all(&mut self) {
        let mut rebuild: Vec<Args> = vec![args!["FLUSHALL"]];
        for db in DBS {
            rebuild.push(args!["SELECT", db]);
            let head = self.redis_insp.pipeline(&[args!["SELECT", db], args!["KEYS", "*"]]);
            let Ok(head) = head else { self.fatal("resync", &ReadError::Closed) };
            let keys: Vec<Vec<u8>> =
                head[1].items().unwrap_or_default().iter().filter_map(|k| k.bytes().map(<[u8]>::to_vec)).collect();
            for k in keys {
                let Ok(meta) = self.redis_insp.pipeline(&[args!["TYPE", k], args!["PEXPIRETIME", k]]) else {
                    self.fatal("resync", &ReadError::Closed)
                };
                let t = meta[0].bytes().unwrap_or_default().to_vec();
                // Streams are not rebuilt (their IDs, groups and pending lists have no simple
                // replay): both servers lose them.
                if t == b"stream" {
                    continue;
                }
                let Some((read, _)) = value_read(&t, &k) else { continue };
                let Ok(v) = self.redis_insp.pipeline(&[read]) else { self.fatal("resync", &ReadError::Closed) };
                let items: Vec<Vec<u8>> =
                    v[0].items().unwrap_or_default().iter().filter_map(|x| x.bytes().map(<[u8]>::to_vec)).collect();
                let mut cmd = match t.as_slice() {
                    b"string" => args!["SET", k, v[0].bytes().unwrap_or_default()],
                    b"hash" => args!["HSET", k],
                    b"list" => args!["RPUSH", k],
                    b"set" => args!["SADD", k],
                    _ => args!["ZADD", k],
                };
                if t == b"zset" {
                    for pair in items.chunks(2) {
                        if let [m, sc] = pair {
                            cmd.push(sc.clone());
                            cmd.push(m.clone());
                        }
                    }
                } else if t != b"string" {
                    cmd.extend(items);
                }
                if cmd.len() > 2 {
                    rebuild.push(cmd);
                }
                if let Value::Int(at) = meta[1] {
                    if at > 0 {
                        rebuild.push(args!["PEXPIREAT", k, at.to_string()]);
                    }
                }
            }
        }
        rebuild.push(args!["SELECT", "0"]);
        for conn in [&mut self.redis_insp, &mut self.stay_insp] {
            if let Err(e) = conn.pipeline(&rebuild) {
                panic!("differential: re-sync failed: {e}");
            }
        }
        println!("differential: both servers re-synced from Redis's data ({} commands)", rebuild.len());
        // A diverged setting (the notify family's CONFIG SET) is set again on both.
        self.run_setup();
        // The rebuild's own events (and whatever a diverged subscriber still had queued) are
        // no comparison: fresh subscribers.
        if !self.redis_subs.is_empty() {
            let n = self.redis_subs.len();
            self.open_subscribers(n);
        }
    }
}

/// PTTLs agree within 1.5 s (the two servers' clocks are read at different moments); a
/// missing key or one without a deadline must agree exactly.
fn ttl_close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(a), Value::Int(b)) if *a >= 0 && *b >= 0 => a.abs_diff(*b) <= 1500,
        (a, b) => a == b,
    }
}

/// A value as the restart check compares it: zero signs and a stream's layout erased.
fn restart_comparable(kind: &Value, value: &Value) -> Value {
    match kind {
        Value::Simple(name) if name == b"stream" => families::streams::layout_erased(value),
        _ => zero_sign_erased(kind, value),
    }
}

/// A sorted set's `ZRANGE ... WITHSCORES` (RESP2) with its -0 scores as 0, if it is one a load
/// puts in a listpack (≤ 128 members, none over 64 bytes): the compaction mid-family makes a
/// snapshot, and a set loaded from it keeps no -0, in StayKV as in Redis. Larger sets load
/// as skip lists and keep the sign, so it is compared.
fn zero_sign_erased(kind: &Value, value: &Value) -> Value {
    let Value::Array(items) = value else { return value.clone() };
    let small = items.len() <= 2 * 128 && items.iter().step_by(2).all(|m| m.bytes().is_some_and(|m| m.len() <= 64));
    if kind != &Value::Simple(b"zset".to_vec()) || !small {
        return value.clone();
    }
    let erased = items.iter().enumerate().map(|(i, item)| match item {
        Value::Bulk(score) if i % 2 == 1 && score == b"-0" => Value::Bulk(b"0".to_vec()),
        other => other.clone(),
    });
    Value::Array(erased.collect())
}

/// Which server an inspector connection reaches.
#[derive(Clone, Copy, Debug)]
enum Side {
    Redis,
    Staykv,
}

/// One database as [`Harness::read_db`] reads it.
struct DbState {
    size: Value,
    keys: BTreeMap<Vec<u8>, KeyState>,
}

/// What the dataset comparison and the restart check read of a key.
struct KeyState {
    kind: Value,
    ttl: Value,
    encoding: Value,
    /// Normalised as [`value_read`] says (hash and set orders are each server's own).
    value: Value,
}

/// How a reply is normalised before comparison.
type Norm = fn(&Value) -> Value;

/// The command that reads a whole value of `type_name` (as TYPE says it) at `key`, and how
/// to normalise its reply for comparison (hash and set orders are the server's own).
fn value_read(type_name: &[u8], key: &[u8]) -> Option<(Args, Norm)> {
    let key = key.to_vec();
    Some(match type_name {
        b"string" => (args!["GET", key], Value::clone),
        b"hash" => (args!["HGETALL", key], unordered_pairs),
        b"list" => (args!["LRANGE", key, "0", "-1"], Value::clone),
        b"set" => (args!["SMEMBERS", key], unordered),
        b"zset" => (args!["ZRANGE", key, "0", "-1", "WITHSCORES"], Value::clone),
        // Entries, groups, pending lists and consumers (clock readings and layout erased).
        b"stream" => (args!["XINFO", "STREAM", key, "FULL", "COUNT", "0"], families::streams::xinfo_norm),
        _ => return None,
    })
}

/// A command written as text, as sent.
fn owned_args(cmd: &[&str]) -> Args {
    cmd.iter().map(|a| crate::differential::gen::b(a)).collect()
}

/// The members (and values/scores) a random command returned.
fn picked(rc: &RandomCheck, v: &Value) -> Vec<(Vec<u8>, Option<Value>)> {
    if let Some(b) = v.bytes() {
        return vec![(b.to_vec(), None)];
    }
    let Some(items) = v.items() else { return Vec::new() };
    if rc.count.is_none() && rc.kind != RandKind::SPop {
        return Vec::new();
    }
    if rc.with_values {
        if items.iter().all(|x| x.items().is_some()) {
            // RESP3: [[member, value], ...]
            return items
                .iter()
                .filter_map(|x| {
                    let p = x.items()?;
                    Some((p.first()?.bytes()?.to_vec(), p.get(1).cloned()))
                })
                .collect();
        }
        return items.chunks(2).filter_map(|c| Some((c.first()?.bytes()?.to_vec(), c.get(1).cloned()))).collect();
    }
    items.iter().filter_map(|x| Some((x.bytes()?.to_vec(), None))).collect()
}

/// HELLO's reply with the connection id erased.
fn hello_norm(v: &Value) -> Value {
    match v {
        Value::Map(m) => Value::Map(
            m.iter()
                .map(
                    |(k, x)| if k.bytes() == Some(b"id") { (k.clone(), Value::Int(0)) } else { (k.clone(), x.clone()) },
                )
                .collect(),
        ),
        Value::Array(items) => {
            let mut out = items.clone();
            for i in (0..out.len().saturating_sub(1)).step_by(2) {
                if out[i].bytes() == Some(b"id") {
                    out[i + 1] = Value::Int(0);
                }
            }
            Value::Array(out)
        }
        other => other.clone(),
    }
}

/// Frames from a subscriber up to the reply to `PING marker` (not included).
fn read_to_marker(conn: &mut Conn, marker: &[u8]) -> Result<Vec<Value>, ReadError> {
    let is_marker = |v: &Value| match v {
        Value::Bulk(b) => b == marker,
        Value::Array(items) | Value::Push(items) => {
            items.len() == 2 && items[0].bytes() == Some(b"pong") && items[1].bytes() == Some(marker)
        }
        _ => false,
    };
    let mut frames = Vec::new();
    loop {
        let (v, _) = conn.read()?;
        if is_marker(&v) {
            return Ok(frames);
        }
        frames.push(v);
    }
}

/// Subscriber frames for comparison: HELLO replies without the connection id, each run of
/// `pmessage` frames for one channel and message sorted, and in each run of `unsubscribe`
/// confirmations the channel names sorted (the counts stay in place): UNSUBSCRIBE without
/// arguments leaves the channels in Redis 7.0's dictionary order (see `drain_subscribers`).
fn norm_frames(frames: &[Value]) -> Vec<Value> {
    let unsub = |v: &Value| -> bool {
        v.items().is_some_and(|items| items.len() == 3 && items[0].bytes() == Some(b"unsubscribe"))
    };
    let mut frames = frames.to_vec();
    let mut i = 0;
    while i < frames.len() {
        if !unsub(&frames[i]) {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < frames.len() && unsub(&frames[j]) {
            j += 1;
        }
        let mut names: Vec<Value> = frames[i..j].iter().filter_map(|f| f.items().map(|x| x[1].clone())).collect();
        names.sort();
        for (frame, name) in frames[i..j].iter_mut().zip(names) {
            if let Value::Array(items) | Value::Push(items) = frame {
                items[1] = name;
            }
        }
        i = j;
    }
    let frames = &frames[..];
    let run_key = |v: &Value| -> Option<(Vec<u8>, Vec<u8>)> {
        let items = v.items()?;
        if items.len() != 4 || items[0].bytes() != Some(b"pmessage") {
            return None;
        }
        Some((items[2].bytes()?.to_vec(), items[3].bytes()?.to_vec()))
    };
    let mut out = Vec::with_capacity(frames.len());
    let mut i = 0;
    while i < frames.len() {
        match run_key(&frames[i]) {
            Some(k) => {
                let mut j = i + 1;
                while j < frames.len() && run_key(&frames[j]).as_ref() == Some(&k) {
                    j += 1;
                }
                let mut run = frames[i..j].to_vec();
                run.sort();
                out.extend(run);
                i = j;
            }
            None => {
                out.push(hello_norm(&frames[i]));
                i += 1;
            }
        }
    }
    out
}

/// `payload` damaged the way `d` says (the same bytes go to both servers).
fn damage(payload: &[u8], d: Damage) -> Vec<u8> {
    let mut p = payload.to_vec();
    let n = p.len();
    match d {
        Damage::Version if n >= 10 => {
            // Versions above 10 are refused by Redis 7.0 (and StayKV reads none above 10).
            p[n - 10] = 11;
            p[n - 9] = 0;
        }
        Damage::Crc if n >= 1 => p[n - 1] ^= 0x5a,
        Damage::Truncated(k) => p.truncate(n.saturating_sub(k)),
        Damage::Body if n > 10 => p[(n - 10) / 2] ^= 0x01,
        _ => p.clear(),
    }
    p
}
