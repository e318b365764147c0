#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use staykv_resp::{Protocol, Reply};

use crate::client::Client;
use crate::effects::Effect;
use crate::exec::{Engine, EngineOptions, Journal, NoJournal};
use crate::host::NoHost;
use crate::value::Value;

const NOW: u64 = 1_700_000_000_000;

#[derive(Default)]
struct Recorder(Mutex<Vec<(u64, Vec<Effect>)>>);

impl Journal for Recorder {
    fn append(&self, time_ms: u64, effects: &[Effect]) -> Result<u64, String> {
        self.0.lock().push((time_ms, effects.to_vec()));
        Ok(0)
    }
}

/// Split a command line on spaces; `"..."` quotes (no escapes), `""` is an empty argument.
fn split(line: &str) -> Vec<Bytes> {
    let mut out = Vec::new();
    let (mut current, mut started, mut quoted) = (String::new(), false, false);
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            ' ' if !quoted => {
                if started {
                    out.push(Bytes::from(std::mem::take(&mut current)));
                }
                started = false;
            }
            c => {
                current.push(c);
                started = true;
            }
        }
    }
    if started {
        out.push(Bytes::from(current));
    }
    out
}

struct Session {
    engine: Engine,
    client: Client,
    journal: Recorder,
}

impl Session {
    fn new(protocol: Protocol) -> Session {
        let mut client = Client::new(1, true);
        client.protocol = protocol;
        Session { engine: Engine::new(EngineOptions::default()), client, journal: Recorder::default() }
    }

    fn run(&mut self, line: &str) -> Reply {
        self.engine.execute(&mut self.client, &split(line), NOW, &NoHost, &self.journal).reply
    }

    fn wire(&mut self, line: &str) -> String {
        let reply = self.run(line);
        let mut out = BytesMut::new();
        reply.encode(self.client.protocol, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The effects logged since the last call, as command lines.
    fn effects(&self) -> Vec<String> {
        let batches = std::mem::take(&mut *self.journal.0.lock());
        batches
            .into_iter()
            .flat_map(|(_, effects)| effects)
            .map(|e| e.argv.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>().join(" "))
            .collect()
    }

    /// Every key of db 0 with its type, deadline and (for sorted sets) members, scores and encoding.
    fn dump(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.engine.for_each_entry(|db, entry| {
            let body = match &entry.value {
                Value::ZSet(z) => format!(
                    "zset {} {:?}",
                    entry.value.encoding(),
                    z.iter().map(|(m, s)| (m, s.to_bits())).collect::<Vec<_>>()
                ),
                Value::Set(members) => {
                    let mut members: Vec<Vec<u8>> = members.iter().map(|m| m.to_vec()).collect();
                    members.sort();
                    format!("set {members:?}")
                }
                other => format!("{other:?}"),
            };
            out.push(format!("{db} {:?} {} {body}", entry.key, entry.expire_at));
        });
        out.sort();
        out
    }
}

#[test]
fn replies_match_recorded_redis() {
    let mut failures = Vec::new();
    for (name, protocol, steps) in super::recorded::SCRIPTS {
        let mut s = Session::new(if *protocol == 3 { Protocol::Resp3 } else { Protocol::Resp2 });
        for (line, expected) in *steps {
            let got = s.wire(line);
            if got != *expected {
                failures.push(format!("[{name}] {line}\n   redis: {expected:?}\n  staykv: {got:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn effects_are_single_key_and_describe_the_change() {
    let mut s = Session::new(Protocol::Resp2);
    s.run("zadd z 1 a 2 b 3 c");
    assert_eq!(s.effects(), ["zadd z 1 a 2 b 3 c"]);
    s.run("zadd z nx 5 a");
    assert!(s.effects().is_empty(), "nothing changed, nothing logged");
    s.run("zadd z incr 2 a");
    assert_eq!(s.effects(), ["ZINCRBY z 2 a"]);
    s.run("zincrby z 0 a");
    assert!(s.effects().is_empty());
    s.run("zpopmin z 2");
    assert_eq!(s.effects(), ["ZREM z b a"]);
    s.run("zmpop 1 z max");
    assert_eq!(s.effects(), ["ZREM z c", "DEL z"]);
    s.run("zadd a 1 x 2 y");
    s.run("zadd b 3 y");
    s.effects();
    s.run("zunionstore d 2 a b");
    assert_eq!(s.effects(), ["ZADD d 1 x 5 y"]);
    s.run("zinterstore d 2 a b weights 0.1 1");
    assert_eq!(s.effects(), ["DEL d", "ZADD d 3.2000000000000002 y"]);
    s.run("zdiffstore d 2 a a");
    assert_eq!(s.effects(), ["DEL d"]);
    s.run("zrangestore d a 0 0");
    assert_eq!(s.effects(), ["ZADD d 1 x"]);
    s.run("zremrangebyscore a 0 10");
    assert_eq!(s.effects(), ["zremrangebyscore a 0 10", "DEL a"]);
    s.run("zrem b nope");
    assert!(s.effects().is_empty());
    s.run("zrem b y");
    assert_eq!(s.effects(), ["zrem b y", "DEL b"]);
}

/// Run random sorted-set commands, replay the logged effects into a fresh engine, and compare.
#[test]
fn replaying_effects_rebuilds_the_same_keyspace() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut s = Session::new(Protocol::Resp2);
    let keys = ["k1", "k2", "k3", "s1"];
    let score = |rng: &mut rand::rngs::StdRng| match rng.gen_range(0..8) {
        0 => "-0".to_string(),
        1 => "inf".to_string(),
        2 => "-inf".to_string(),
        3 => format!("{}", rng.gen_range(-5.0..5.0)),
        _ => format!("{}", rng.gen_range(-3..4)),
    };
    for _ in 0..4000 {
        let k = keys[rng.gen_range(0..3)];
        let m = format!("m{}", rng.gen_range(0..40));
        let line = match rng.gen_range(0..16) {
            0..=3 => format!("zadd {k} {} {m} {} m{}", score(&mut rng), score(&mut rng), rng.gen_range(0..40)),
            4 => format!("zadd {k} gt ch {} {m}", score(&mut rng)),
            5 => format!("zincrby {k} {} {m}", score(&mut rng)),
            6 => format!("zrem {k} {m} m{}", rng.gen_range(0..40)),
            7 => format!("zpopmin {k} {}", rng.gen_range(0..4)),
            8 => format!("zmpop 2 {k} k3 max count {}", rng.gen_range(1..4)),
            9 => format!("zremrangebyscore {k} {} {}", score(&mut rng), score(&mut rng)),
            10 => format!("zremrangebyrank {k} {} {}", rng.gen_range(-5..5), rng.gen_range(-5..5)),
            11 => format!("zunionstore {k} 3 k1 k2 s1 weights 1 {} 2", score(&mut rng)),
            12 => format!("zinterstore {k} 2 k1 k2 aggregate max"),
            13 => format!("zdiffstore {k} 2 k2 k1"),
            14 => format!("zrangestore {k} k{} 0 {}", rng.gen_range(1..4), rng.gen_range(-3..3)),
            _ => format!("sadd s1 {m}"),
        };
        s.run(&line);
    }
    let batches = std::mem::take(&mut *s.journal.0.lock());
    for (_, effects) in &batches {
        for effect in effects {
            assert!(effect.argv.len() >= 2, "{effect:?} names a key");
        }
    }
    let replayed = Session::new(Protocol::Resp2);
    for (time, effects) in &batches {
        replayed.engine.replay(*time, effects).unwrap();
    }
    assert_eq!(s.dump(), replayed.dump());
    assert!(!s.dump().is_empty());
}

#[test]
fn zscan_of_a_large_set_returns_every_member() {
    let mut s = Session::new(Protocol::Resp2);
    for chunk in 0..10 {
        let pairs: Vec<String> = (0..100).map(|i| format!("{i} m{}", chunk * 100 + i)).collect();
        s.run(&format!("zadd z {}", pairs.join(" ")));
    }
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    loop {
        let Reply::Array(parts) = s.run(&format!("zscan z {cursor} count 25")) else { panic!() };
        let [Reply::Bulk(next), Reply::Array(items)] = &parts[..] else { panic!() };
        for pair in items.chunks(2) {
            let Reply::Bulk(m) = &pair[0] else { panic!() };
            seen.insert(m.clone());
        }
        cursor = String::from_utf8_lossy(next).into_owned();
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 1000);
    // MATCH filters members; scores are strings.
    let Reply::Array(parts) = s.run("zscan z 0 match m99 count 2000") else { panic!() };
    assert_eq!(parts[1], Reply::Array(vec![Reply::bulk_str("m99"), Reply::bulk_str("99")]));
}

#[test]
fn randmember_counts() {
    let mut s = Session::new(Protocol::Resp3);
    s.run("zadd z 1 a 2 b 3 c 4 d");
    for count in [1i64, 2, 3, -1, -7] {
        let Reply::Array(items) = s.run(&format!("zrandmember z {count} withscores")) else { panic!() };
        assert_eq!(items.len() as u64, count.unsigned_abs());
        let mut members: Vec<_> = items
            .iter()
            .map(|pair| match pair {
                Reply::Array(p) => p[0].clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        if count > 0 {
            members.sort_by_key(|m| format!("{m:?}"));
            members.dedup();
            assert_eq!(members.len() as i64, count, "distinct");
        }
    }
    let Reply::Bulk(m) = s.run("zrandmember z") else { panic!() };
    assert!(["a", "b", "c", "d"].contains(&&*String::from_utf8_lossy(&m)));
    assert!(matches!(s.run("zrandmember z -99999999999"), Reply::Error(_)));
}

#[test]
fn replay_through_nojournal_is_silent() {
    // Effects replayed at recovery run through the same commands without a journal.
    let engine = Engine::new(EngineOptions::default());
    let mut c = Client::new(0, true);
    let args: Vec<Bytes> = ["zadd", "z", "1", "a"].iter().map(|a| Bytes::from(*a)).collect();
    assert_eq!(engine.execute(&mut c, &args, NOW, &NoHost, &NoJournal).reply, Reply::Int(1));
}

#[test]
fn a_stored_renamed_or_copied_skip_list_replays_with_its_negative_zeros() {
    let mut s = Session::new(Protocol::Resp2);
    let pairs: Vec<String> = (0..200).map(|i| format!("{} m{i}", if i < 150 { 0 } else { 5 })).collect();
    s.run(&format!("zadd src {}", pairs.join(" ")));
    // Weight -1: 150 members scored -0 in the result, a skip list (replayed in score order,
    // a ZADD of the result would hold its first 128 members in a listpack, which keeps no -0).
    s.run("zunionstore dst 1 src weights -1");
    assert_eq!(s.wire("zscore dst m0"), "$2\r\n-0\r\n");
    // RENAME and COPY log the set they recreate the same way.
    s.run("copy dst copied");
    s.run("rename dst moved");
    assert_eq!(s.wire("zscore moved m0"), "$2\r\n-0\r\n");
    let replayed = Session::new(Protocol::Resp2);
    for (time, effects) in std::mem::take(&mut *s.journal.0.lock()) {
        replayed.engine.replay(time, &effects).unwrap();
    }
    assert_eq!(s.dump(), replayed.dump());
}
