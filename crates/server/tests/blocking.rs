//! Clients blocked on keys (BLPOP, BLMOVE, BZPOPMIN, XREAD, XREADGROUP) when a key they
//! wait on changes type, against Debian's redis-server 7.0: the same steps on a fresh server
//! of each kind must give the blocked client the same replies.
//!
//! Redis 7.0 serves a blocked client only from a key of the type it waits for: a key that now
//! holds another type leaves it waiting (its first run answers WRONGTYPE, a wake does not),
//! while BLMOVE's destination of another type and XREADGROUP's stream gone (deleted,
//! flushed, or of another type) answer errors.
//! A client woken for data that answers such an error leaves the data to the next in line.
//! Nothing sent after the write that woke a client, even in the same batch, runs on its key
//! before it has been served.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use common::{encode_str, frame_text, same_as_redis, RawConn, Server};

/// Blocked clients (blocked in this order) and the steps another client takes while they wait.
struct Case {
    name: &'static str,
    /// Run first, on an empty database.
    setup: &'static [&'static [&'static str]],
    blocked: &'static [&'static [&'static str]],
    steps: &'static [&'static [&'static str]],
    /// Run once the blocked clients have answered: a client that is woken only once the one
    /// woken before it has failed claims its keys only then, so what it moves shows only once
    /// it has answered (Redis serves both before the step's reply).
    after: &'static [&'static [&'static str]],
}

const CASES: &[Case] = &[
    Case {
        name: "BLPOP: the list becomes a string in a transaction, then a list again",
        setup: &[],
        blocked: &[&["BLPOP", "list", "0"]],
        steps: &[
            &["MULTI"],
            &["LPUSH", "list", "a"],
            &["DEL", "list"],
            &["SET", "list", "foo"],
            &["EXEC"],
            &["DEL", "list"],
            &["LPUSH", "list", "b"],
        ],
        after: &[],
    },
    Case {
        name: "BLPOP: the key becomes a string and stays one",
        setup: &[],
        blocked: &[&["BLPOP", "list", "0"]],
        steps: &[&["SET", "list", "foo"], &["APPEND", "list", "bar"]],
        after: &[],
    },
    Case {
        name: "BRPOP over two keys: the first becomes a string, the second gets data",
        setup: &[],
        blocked: &[&["BRPOP", "k1", "k2", "0"]],
        steps: &[&["SET", "k1", "foo"], &["RPUSH", "k2", "x", "y"]],
        after: &[],
    },
    Case {
        name: "BLMPOP: a key becomes a set, another gets data",
        setup: &[],
        blocked: &[&["BLMPOP", "0", "2", "k1", "k2", "LEFT", "COUNT", "2"]],
        steps: &[&["SADD", "k1", "m"], &["RPUSH", "k2", "x", "y", "z"]],
        after: &[],
    },
    Case {
        name: "BLMOVE: the source becomes a hash, then a list",
        setup: &[],
        blocked: &[&["BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"]],
        steps: &[&["HSET", "src", "f", "v"], &["DEL", "src"], &["RPUSH", "src", "a"]],
        after: &[&["LRANGE", "dst", "0", "-1"]],
    },
    Case {
        name: "BLMOVE: the destination is a string when the source gets data",
        setup: &[&["SET", "dst", "foo"]],
        blocked: &[&["BRPOPLPUSH", "src", "dst", "0"]],
        steps: &[&["RPUSH", "src", "a"], &["LRANGE", "src", "0", "-1"]],
        after: &[],
    },
    Case {
        name: "BRPOPLPUSH by two clients, the first one's destination a string",
        setup: &[&["SET", "target1", "nolist"]],
        blocked: &[&["BRPOPLPUSH", "src", "target1", "0"], &["BRPOPLPUSH", "src", "target2", "0"]],
        steps: &[&["LPUSH", "src", "foo"]],
        after: &[&["LRANGE", "target2", "0", "-1"]],
    },
    Case {
        name: "BZPOPMIN: the sorted set becomes a list in a transaction, then a sorted set",
        setup: &[],
        blocked: &[&["BZPOPMIN", "z", "0"]],
        steps: &[
            &["MULTI"],
            &["ZADD", "z", "1", "a"],
            &["DEL", "z"],
            &["RPUSH", "z", "x"],
            &["EXEC"],
            &["DEL", "z"],
            &["ZADD", "z", "2", "b"],
        ],
        after: &[],
    },
    Case {
        name: "BZMPOP: a key becomes a string, another gets data",
        setup: &[],
        blocked: &[&["BZMPOP", "0", "2", "z1", "z2", "MAX"]],
        steps: &[&["SET", "z1", "foo"], &["ZADD", "z2", "1", "a", "2", "b"]],
        after: &[],
    },
    Case {
        name: "XREAD: a stream becomes a string, another gets an entry",
        setup: &[&["XADD", "s1", "1-1", "f", "v"], &["XADD", "s2", "1-1", "f", "v"]],
        blocked: &[&["XREAD", "BLOCK", "0", "STREAMS", "s1", "s2", "$", "$"]],
        steps: &[&["MULTI"], &["DEL", "s1"], &["SET", "s1", "foo"], &["EXEC"], &["XADD", "s2", "2-2", "g", "w"]],
        after: &[],
    },
    Case {
        name: "XREADGROUP: the stream becomes a string",
        setup: &[&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]],
        blocked: &[&["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"]],
        steps: &[&["MULTI"], &["DEL", "s"], &["SET", "s", "foo"], &["EXEC"]],
        after: &[],
    },
    Case {
        name: "XREADGROUP: FLUSHALL",
        setup: &[&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]],
        blocked: &[&["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"]],
        steps: &[&["FLUSHALL"]],
        after: &[],
    },
    Case {
        name: "XREADGROUP: FLUSHDB, BLPOP: the flush then a push",
        setup: &[&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]],
        blocked: &[&["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"], &["BLPOP", "list", "0"]],
        steps: &[&["FLUSHDB"], &["RPUSH", "list", "a"]],
        after: &[],
    },
];

/// Each case on a fresh database: the replies to the steps and each blocked client's, or
/// that it still waits when the steps are done.
fn scenario(server: &Server) -> Vec<String> {
    let mut seen = Vec::new();
    for case in CASES {
        let (mut other, mut blocked) = block_clients(server, case.setup, case.blocked);
        for step in case.steps {
            seen.push(format!("{}: {step:?} -> {}", case.name, frame_text(&other.cmd(step))));
        }
        seen.extend(outcomes(case.name, &mut blocked, &mut other));
        for step in case.after {
            seen.push(format!("{}: then {step:?} -> {}", case.name, frame_text(&other.cmd(step))));
        }
    }
    seen
}

/// On a flushed database, runs `setup` on a new connection (returned) and sends each of
/// `blocked` on a connection of its own, once the one before it waits; returns those with
/// their client ids.
fn block_clients(server: &Server, setup: &[&[&str]], blocked: &[&[&str]]) -> (RawConn, Vec<(RawConn, String)>) {
    let mut other = server.connect();
    other.cmd(&["FLUSHALL"]);
    for step in setup {
        other.cmd(step);
    }
    let mut waiting = Vec::new();
    for (i, command) in blocked.iter().enumerate() {
        let mut conn = server.connect();
        let id = conn.cmd_text(&["CLIENT", "ID"]);
        conn.send(&encode_str(command));
        other.wait_blocked(i + 1);
        waiting.push((conn, id));
    }
    (other, waiting)
}

/// Each blocked client's [`outcome`], as a line of the case `name`.
fn outcomes(name: &str, blocked: &mut [(RawConn, String)], other: &mut RawConn) -> Vec<String> {
    let lines = blocked.iter_mut().enumerate();
    lines.map(|(i, (conn, id))| format!("{name}: blocked client {i}: {}", outcome(conn, id, other))).collect()
}

/// A blocked client's reply, or "still blocked" if none comes within a second with nothing
/// left to wake it (it is then unblocked as a timeout, so that the next case starts clean).
/// A client that CLIENT UNBLOCK finds no longer blocked was woken and is slow to answer (a
/// loaded machine): its reply is waited for, not read as "still blocked".
fn outcome(blocked: &mut RawConn, id: &str, other: &mut RawConn) -> String {
    blocked.stream().set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    if let Ok(reply) = blocked.read_frame() {
        return frame_text(&reply);
    }
    let unblocked = other.cmd_text(&["CLIENT", "UNBLOCK", id]) == "1";
    blocked.stream().set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let reply = frame_text(&blocked.read_frame().expect("neither answered nor blocked"));
    blocked.stream().set_read_timeout(None).unwrap();
    if unblocked {
        format!("still blocked (then unblocked: {reply})")
    } else {
        reply
    }
}

#[test]
fn a_key_that_changes_type_under_a_blocked_client_wakes_it_as_redis_does() {
    same_as_redis(
        scenario,
        &[
            "still blocked",
            "WRONGTYPE",
            "UNBLOCKED the stream key no longer exists",
            "blocked client 0: *2",
            "blocked client 1: foo",
        ],
    );
}

/// A client blocked in BLPOP that closes its connection leaves the queue at once and takes
/// nothing; one that sends more requests while blocked has them answered after the pop.
fn closing_scenario(server: &Server) -> Vec<String> {
    let mut other = server.connect();
    let mut seen = Vec::new();
    let mut gone = server.connect();
    gone.send(&encode_str(&["BLPOP", "jobs", "0"]));
    other.wait_blocked(1);
    drop(gone);
    other.wait_blocked(0);
    seen.push(format!("RPUSH after the close -> {}", other.cmd_text(&["RPUSH", "jobs", "job1"])));
    seen.push(format!("LLEN -> {}", other.cmd_text(&["LLEN", "jobs"])));
    other.cmd(&["DEL", "jobs"]);
    let mut pipelined = server.connect();
    let mut requests = encode_str(&["BLPOP", "jobs", "0"]);
    requests.extend(encode_str(&["PING"]));
    pipelined.send(&requests);
    other.wait_blocked(1);
    other.cmd(&["RPUSH", "jobs", "job2"]);
    for _ in 0..2 {
        seen.push(format!("pipelined: {}", frame_text(&pipelined.read_frame().unwrap())));
    }
    seen
}

#[test]
fn a_blocked_client_that_goes_away_takes_nothing_as_in_redis() {
    same_as_redis(closing_scenario, &["LLEN -> 1"]);
}

/// A blocking command is counted once in INFO (its `calls`, `failed_calls` and
/// error counts), when it answers, however many times it was woken: served, timed out, or
/// unblocked with an error.
fn counting_scenario(server: &Server) -> Vec<String> {
    let (mut blocked, mut other) = (server.connect(), server.connect());
    let id = blocked.cmd_text(&["CLIENT", "ID"]);
    other.cmd(&["FLUSHALL"]);
    other.cmd(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    other.cmd(&["CONFIG", "RESETSTAT"]);
    // Left out: a plain CLIENT UNBLOCK, which Redis 7.0 also counts as a failed call
    // (`updateStatsOnUnblock` is passed 1 whatever the reply); StayKV counts the timeout reply
    // it gives as a call that did not fail.
    let waits: [(&[&str], &[&[&str]]); 4] = [
        (&["BLPOP", "list", "0"], &[&["SET", "list", "x"], &["DEL", "list"], &["RPUSH", "list", "a"]]),
        (&["BLPOP", "list", "0.5"], &[]),
        (&["BLPOP", "list", "0"], &[&["CLIENT", "UNBLOCK", &id, "ERROR"]]),
        (&["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"], &[&["XGROUP", "DESTROY", "s", "g"]]),
    ];
    let mut seen = Vec::new();
    for (wait, steps) in waits {
        blocked.send(&encode_str(wait));
        other.wait_blocked(1);
        for step in steps {
            other.cmd(step);
        }
        seen.push(format!("{wait:?} -> {}", frame_text(&blocked.read_frame().unwrap())));
    }
    let info = other.cmd_text(&["INFO", "commandstats"]) + &other.cmd_text(&["INFO", "errorstats"]);
    let mut counts: Vec<String> = info
        .lines()
        .filter(|line| line.contains("blpop") || line.contains("xreadgroup") || line.contains("errorstat"))
        // The timings are each server's own.
        .map(|line| line.split(',').filter(|field| !field.contains("usec")).collect::<Vec<_>>().join(","))
        .collect();
    // Redis lists commands in its hash table's order.
    counts.sort();
    seen.extend(counts);
    seen
}

#[test]
fn a_blocking_command_is_counted_once_as_in_redis() {
    same_as_redis(counting_scenario, &["cmdstat_blpop:calls=3,"]);
}

/// Blocked clients (blocked in this order) and a batch another client then sends in one
/// write, so that all of it reaches the server before a woken client could run again.
struct ServedFirst {
    name: &'static str,
    setup: &'static [&'static [&'static str]],
    blocked: &'static [&'static [&'static str]],
    batch: &'static [&'static [&'static str]],
}

const SERVED_FIRST: &[ServedFirst] = &[
    ServedFirst {
        name: "BLPOP: the pusher pops right after its push",
        setup: &[],
        blocked: &[&["BLPOP", "q", "0"]],
        batch: &[&["RPUSH", "q", "x"], &["RPOP", "q"], &["LLEN", "q"]],
    },
    ServedFirst {
        name: "BLPOP by two clients, one push of three",
        setup: &[],
        blocked: &[&["BLPOP", "q", "0"], &["BRPOP", "q", "0"]],
        batch: &[&["RPUSH", "q", "a", "b", "c"], &["LRANGE", "q", "0", "-1"]],
    },
    ServedFirst {
        name: "BRPOPLPUSH: the source popped and read after the push",
        setup: &[],
        blocked: &[&["BRPOPLPUSH", "src", "dst", "0"]],
        batch: &[&["LPUSH", "src", "a"], &["LPOP", "src"], &["EXISTS", "src"]],
    },
    ServedFirst {
        name: "BLMOVE: the destination read after the push",
        setup: &[&["RPUSH", "dst", "old"]],
        blocked: &[&["BLMOVE", "src", "dst", "LEFT", "LEFT", "0"]],
        batch: &[&["RPUSH", "src", "a"], &["LRANGE", "dst", "0", "-1"], &["LPOP", "dst"]],
    },
    ServedFirst {
        name: "BRPOPLPUSH: a transaction watching the destination, run after the push",
        setup: &[],
        blocked: &[&["BRPOPLPUSH", "src", "dst", "0"]],
        batch: &[&["WATCH", "dst"], &["RPUSH", "src", "a"], &["MULTI"], &["PING"], &["EXEC"]],
    },
    ServedFirst {
        name: "BLPOP: SWAPDB brings the list in, then the swapper pops it",
        setup: &[&["SELECT", "1"], &["RPUSH", "q", "x"], &["SELECT", "0"]],
        blocked: &[&["BLPOP", "q", "0"]],
        batch: &[&["SWAPDB", "0", "1"], &["LPOP", "q"], &["EXISTS", "q"]],
    },
    ServedFirst {
        name: "BZPOPMIN: the set popped and counted after the add",
        setup: &[],
        blocked: &[&["BZPOPMIN", "z", "0"]],
        batch: &[&["ZADD", "z", "1", "a"], &["ZPOPMIN", "z"], &["ZCARD", "z"]],
    },
    ServedFirst {
        name: "XREADGROUP: another consumer reads the group right after the add",
        setup: &[&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]],
        blocked: &[&["XREADGROUP", "GROUP", "g", "c1", "BLOCK", "0", "STREAMS", "s", ">"]],
        batch: &[
            &["XADD", "s", "1-1", "f", "v"],
            &["XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"],
            &["XPENDING", "s", "g"],
        ],
    },
    ServedFirst {
        name: "XREAD: a reader takes nothing, so nothing waits for it",
        setup: &[&["XADD", "s", "1-1", "f", "v"]],
        blocked: &[&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]],
        batch: &[&["XADD", "s", "2-2", "g", "w"], &["XLEN", "s"], &["XTRIM", "s", "MAXLEN", "0"]],
    },
    ServedFirst {
        name: "two waiters on overlapping keys, both fed by one transaction",
        setup: &[],
        blocked: &[&["BLPOP", "a", "b", "0"], &["BLPOP", "b", "0"]],
        batch: &[&["MULTI"], &["RPUSH", "b", "x"], &["RPUSH", "a", "y"], &["EXEC"], &["LRANGE", "a", "0", "-1"]],
    },
    ServedFirst {
        name: "BLPOP is served from the key fed first",
        setup: &[],
        blocked: &[&["BLPOP", "q1", "q2", "0"]],
        batch: &[&["MULTI"], &["RPUSH", "q2", "x"], &["RPUSH", "q1", "y"], &["EXEC"], &["LLEN", "q1"]],
    },
    ServedFirst {
        name: "BLMPOP is served from the key fed first",
        setup: &[],
        blocked: &[&["BLMPOP", "0", "2", "q1", "q2", "RIGHT", "COUNT", "5"]],
        batch: &[&["MULTI"], &["RPUSH", "q2", "x"], &["RPUSH", "q1", "y"], &["EXEC"], &["LLEN", "q1"]],
    },
    ServedFirst {
        name: "BZMPOP is served from the key fed first",
        setup: &[],
        blocked: &[&["BZMPOP", "0", "2", "z1", "z2", "MAX", "COUNT", "5"]],
        batch: &[&["MULTI"], &["ZADD", "z2", "1", "x"], &["ZADD", "z1", "2", "y"], &["EXEC"], &["ZCARD", "z1"]],
    },
    ServedFirst {
        name: "a FLUSHALL right after the push",
        setup: &[],
        blocked: &[&["BLPOP", "q", "0"]],
        batch: &[&["RPUSH", "q", "a"], &["FLUSHALL"]],
    },
    ServedFirst {
        name: "a DBSIZE right after the push",
        setup: &[],
        blocked: &[&["BLPOP", "q", "0"]],
        batch: &[&["RPUSH", "q", "a"], &["DBSIZE"], &["KEYS", "*"]],
    },
    ServedFirst {
        name: "a timeout under a millisecond",
        setup: &[],
        blocked: &[],
        batch: &[&["BLPOP", "nokey", "0.0001"], &["BZPOPMIN", "nokey", "1e-10"]],
    },
    ServedFirst {
        name: "a timeout a long double holds",
        setup: &[],
        blocked: &[&["BLPOP", "q", "-0.001"], &["BLPOP", "q", "9223372036854775"]],
        batch: &[&["BLPOP", "nokey", "1e-400"], &["RPUSH", "q", "a", "b"]],
    },
    ServedFirst {
        name: "a script naming its keys in ARGV",
        setup: &[],
        blocked: MOVES_SRC_TO_DST,
        batch: &[
            &["LPUSH", "src", "x"],
            &["EVAL", "return {redis.call('LLEN', ARGV[1]), redis.call('LLEN', ARGV[2])}", "0", "src", "dst"],
        ],
    },
    ServedFirst {
        name: "a transaction that selects the blocked client's database",
        setup: &[],
        blocked: MOVES_SRC_TO_DST,
        batch: &[
            &["LPUSH", "src", "x"],
            &["SELECT", "1"],
            &["MULTI"],
            &["SELECT", "0"],
            &["LLEN", "src"],
            &["LLEN", "dst"],
            &["EXEC"],
            &["SELECT", "0"],
        ],
    },
    ServedFirst {
        name: "a timeout past the clock's range",
        setup: &[],
        blocked: &[&["XREAD", "BLOCK", "9223372036854775807", "STREAMS", "s", "$"]],
        batch: &[&["XADD", "s", "1-1", "f", "v"]],
    },
    ServedFirst {
        name: "BLPOP: a transaction pushes and pops before the blocked client is served",
        setup: &[],
        blocked: &[&["BLPOP", "q", "0"]],
        batch: &[&["MULTI"], &["RPUSH", "q", "x"], &["RPOP", "q"], &["EXEC"], &["RPUSH", "q", "y"], &["LLEN", "q"]],
    },
];

/// A client blocked to move an element from `src` to `dst`.
const MOVES_SRC_TO_DST: &[&[&str]] = &[&["BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"]];

/// Each case on a fresh database: the batch's replies, then each blocked client's.
fn served_first_scenario(server: &Server) -> Vec<String> {
    let mut seen = Vec::new();
    for case in SERVED_FIRST {
        let (mut other, mut blocked) = block_clients(server, case.setup, case.blocked);
        other.send(&case.batch.iter().flat_map(|command| encode_str(command)).collect::<Vec<u8>>());
        for command in case.batch {
            seen.push(format!("{}: {command:?} -> {}", case.name, frame_text(&other.read_frame().unwrap())));
        }
        seen.extend(outcomes(case.name, &mut blocked, &mut other));
    }
    seen
}

/// Redis serves a blocked client inside the command that fed its key; StayKV wakes it to run
/// on its own connection, and until it has, the key is its: nothing sent after the write,
/// even in the same batch, takes what it was woken for or sees it unserved.
#[test]
fn a_woken_client_is_served_before_anything_else_touches_its_key_as_in_redis() {
    same_as_redis(
        served_first_scenario,
        &[
            "the pusher pops right after its push: blocked client 0: *2\r\n$1\r\nq\r\n$1\r\nx",
            "one push of three: [\"LRANGE\", \"q\", \"0\", \"-1\"] -> *1\r\n$1\r\nb",
            "after the add: [\"ZPOPMIN\", \"z\"] -> *0",
            "run after the push: [\"EXEC\"] -> *-1",
            "then the swapper pops it: blocked client 0: *2\r\n$1\r\nq\r\n$1\r\nx",
            "the destination read after the push: [\"LRANGE\", \"dst\", \"0\", \"-1\"] -> *2\r\n$1\r\na",
            "right after the add: [\"XREADGROUP\", \"GROUP\", \"g\", \"c2\", \"STREAMS\", \"s\", \">\"] -> *-1",
            "before the blocked client is served: blocked client 0: *2\r\n$1\r\nq\r\n$1\r\ny",
            "both fed by one transaction: blocked client 0: *2\r\n$1\r\nb\r\n$1\r\nx",
            "both fed by one transaction: blocked client 1: still blocked",
            "BLPOP is served from the key fed first: blocked client 0: *2\r\n$2\r\nq2",
            "BZMPOP is served from the key fed first: blocked client 0: *2\r\n$2\r\nz2",
            "a FLUSHALL right after the push: blocked client 0: *2\r\n$1\r\nq\r\n$1\r\na",
            "a DBSIZE right after the push: [\"DBSIZE\"] -> 0",
            "a timeout under a millisecond: [\"BLPOP\", \"nokey\", \"0.0001\"] -> *-1",
            "a timeout past the clock's range: blocked client 0: *1\r\n*2\r\n$1\r\ns",
            "a timeout a long double holds: [\"BLPOP\", \"nokey\", \"1e-400\"] -> *-1",
            "a timeout a long double holds: blocked client 1: *2\r\n$1\r\nq\r\n$1\r\nb",
            "ARGV: [\"EVAL\", \"return {redis.call('LLEN', ARGV[1]), redis.call('LLEN', ARGV[2])}\", \"0\", \"src\", \"dst\"] -> *2\r\n:0\r\n:1",
            "database: [\"EXEC\"] -> *3\r\n+OK\r\n:0\r\n:1",
        ],
    );
}

/// INFO's `clients_in_timeout_table`: the blocked clients waiting with a timeout.
fn timeout_table_scenario(server: &Server) -> Vec<String> {
    let blocked: &[&[&str]] =
        &[&["BLPOP", "q", "0"], &["BLPOP", "q", "100"], &["XREAD", "BLOCK", "100000", "STREAMS", "s", "$"]];
    let (mut other, mut waiting) = block_clients(server, &[], blocked);
    let fields = |conn: &mut RawConn| -> String {
        let info = conn.cmd_text(&["INFO", "clients"]);
        let wanted = ["blocked_clients", "clients_in_timeout_table"];
        info.lines().filter(|l| wanted.iter().any(|w| l.starts_with(w))).collect::<Vec<_>>().join(" ")
    };
    let mut seen = vec![format!("three blocked: {}", fields(&mut other))];
    other.cmd(&["RPUSH", "q", "a", "b"]);
    other.cmd(&["XADD", "s", "1-1", "f", "v"]);
    seen.extend(outcomes("served", &mut waiting, &mut other));
    seen.push(format!("all served: {}", fields(&mut other)));
    seen
}

#[test]
fn info_counts_the_blocked_clients_with_a_timeout_as_redis_does() {
    same_as_redis(
        timeout_table_scenario,
        &[
            "three blocked: blocked_clients:3 clients_in_timeout_table:2",
            "all served: blocked_clients:0 clients_in_timeout_table:0",
        ],
    );
}
