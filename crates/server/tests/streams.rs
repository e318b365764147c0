//! Streams against the real binaries: the same commands sent to `staykv` and to Debian's
//! `redis-server` 7.0 must get byte-identical replies (RESP2 and RESP3, errors included);
//! XREAD BLOCK is woken by XADD from another client, a transaction or a script, and times
//! out with nil; WATCH is broken by stream writes; keyspace events are published; streams
//! survive SIGKILL (log replay), a snapshot, and DUMP/RESTORE both ways with redis-server.
//! Consumer groups likewise: a second differential script, XREADGROUP BLOCK against both
//! servers, keyspace events and WATCH compared with redis-server, and groups, pending lists
//! and consumers surviving SIGKILL, a snapshot and DUMP/RESTORE.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
mod persist_common;

use std::time::{Duration, Instant};

use common::{frame_text, RawConn, Server};
use persist_common::{call, call_str, dump_all, Val};

/// Commands whose replies are compared, in order, on one connection per server. IDs are
/// explicit so that replies do not depend on the clock.
const SCRIPT: &[&[&str]] = &[
    &["XADD", "ids1", "1- -1", "a", "1"],
    &["XADD", "ids2", "1--1", "a", "1"],
    &["XADD", "ids3", "1--01", "a", "1"],
    &["XADD", "ids4", "1--0", "a", "1"],
    &["XADD", "ids5", "1- -18446744073709551615", "a", "1"],
    &["XADD", "ids6", "1- -18446744073709551616", "a", "1"],
    &["XADD", "ids7", "1- +5", "a", "1"],
    &["XADD", "ids8", "MAXLEN", "5", "MAXLEN", "3", "*", "a", "1"],
    &["XADD", "ids8", "MINID", "0", "MAXLEN", "3", "*", "a", "1"],
    &["XTRIM", "ids1", "MAXLEN", "1", "MINID", "0"],
    &["XTRIM", "ids1", "MINID", "0", "MINID", "0"],
    &["EXISTS", "ids8"],
    // A millisecond whose sequence numbers are used up, then the last ID of all.
    &["XADD", "ids9", "5-18446744073709551615", "a", "1"],
    &["XADD", "ids9", "5-*", "a", "1"],
    &["XADD", "ids9", "4-*", "a", "1"],
    &["XADD", "ids9", "18446744073709551615-18446744073709551615", "a", "1"],
    &["XADD", "ids9", "18446744073709551615-*", "a", "1"],
    &["XADD", "ids9", "*", "a", "1"],
    &["DEL", "ids1", "ids2", "ids3", "ids4", "ids5", "ids6", "ids7", "ids8", "ids9"],
    &["XADD", "s", "1-1", "a", "1"],
    &["XADD", "s", "1-2", "b", "2", "c", "3"],
    &["XADD", "s", "1", "x", "y"],
    &["XADD", "s", "2-*", "x", "y"],
    &["XADD", "s", "2-*", "x", "y"],
    &["XADD", "s", "0-0", "a", "b"],
    &["XADD", "fresh", "0-0", "a", "b"],
    &["EXISTS", "fresh"],
    &["XADD", "s", "bad", "a", "b"],
    &["XADD", "s", "*", "a"],
    &["XADD", "s", "MAXLEN", "-1", "*", "a", "b"],
    &["XADD", "s", "MAXLEN", "x", "*", "a", "b"],
    &["XADD", "s", "MAXLEN", "=", "4", "5-0", "a", "b"],
    &["XADD", "s", "MINID", "~", "0", "6-0", "a", "b"],
    &["XADD", "s", "LIMIT", "10", "7-0", "a", "b"],
    &["XADD", "s", "MAXLEN", "1", "LIMIT", "10", "7-0", "a", "b"],
    &["XADD", "s", "MAXLEN", "~", "1", "LIMIT", "10", "8-0", "a", "b"],
    &["XADD", "s", "NOMKSTREAM", "9-0", "k", "v"],
    &["XADD", "nomk", "NOMKSTREAM", "*", "a", "b"],
    &["EXISTS", "nomk"],
    &["XLEN", "s"],
    &["XLEN", "nokey"],
    &["XRANGE", "s", "-", "+"],
    &["XRANGE", "s", "-", "+", "COUNT", "2"],
    &["XRANGE", "s", "-", "+", "COUNT", "0"],
    &["XRANGE", "s", "-", "+", "COUNT", "-5"],
    &["XRANGE", "s", "(5-0", "+"],
    &["XRANGE", "s", "5", "6"],
    &["XRANGE", "s", "(", "+"],
    &["XRANGE", "s", "(-", "+"],
    &["XRANGE", "s", "-", "(0-0"],
    &["XRANGE", "s", "(18446744073709551615-18446744073709551615", "+"],
    &["XRANGE", "s", "-", "+", "FOO"],
    &["XRANGE", "s", "-", "+", "COUNT", "x"],
    &["XRANGE", "nokey", "-", "+"],
    &["XRANGE", "s", "9", "1"],
    &["XREVRANGE", "s", "+", "-"],
    &["XREVRANGE", "s", "+", "-", "COUNT", "1"],
    &["XREVRANGE", "s", "(8", "-"],
    &["XDEL", "s", "6-0", "99-0"],
    &["XDEL", "s", "bad"],
    &["XDEL", "nokey", "1-1"],
    &["XINFO", "STREAM", "s"],
    &["XTRIM", "s", "MAXLEN", "3"],
    &["XTRIM", "s", "MINID", "=", "9"],
    &["XTRIM", "s", "FOO", "1"],
    &["XTRIM", "nokey", "FOO", "1"],
    &["XTRIM", "nokey", "MAXLEN", "1"],
    &["XTRIM", "s", "MAXLEN"],
    &["XTRIM", "s", "MAXLEN", "~", "0", "LIMIT", "-1"],
    &["XTRIM", "s", "LIMIT", "5", "MAXLEN", "~", "0"],
    &["XADD", "s", "10-0", "f", "v"],
    &["XSETID", "s", "100-0"],
    &["XSETID", "s", "1-0"],
    &["XSETID", "s", "200-0", "ENTRIESADDED", "1"],
    &["XSETID", "s", "200-0", "ENTRIESADDED", "-1"],
    &["XSETID", "s", "200-0", "MAXDELETEDID", "300-0"],
    &["XSETID", "s", "200-0", "ENTRIESADDED", "50", "MAXDELETEDID", "150-0"],
    &["XSETID", "s", "200-0", "BOGUS", "1"],
    &["XSETID", "nokey", "1-1"],
    // Below the max deleted ID, above the top entry: allowed.
    &["XADD", "d", "1-1", "f", "v"],
    &["XADD", "d", "2-1", "f", "v"],
    &["XDEL", "d", "2-1"],
    &["XSETID", "d", "1-5"],
    &["XINFO", "STREAM", "d"],
    // `0` is 0-0, refused before the key is looked at; blanks before an ID part skipped.
    &["XADD", "z0", "0", "f", "v"],
    &["EXISTS", "z0"],
    &["XADD", "d", " 3", "f", "v"],
    &["XDEL", "d", "\t3-0"],
    &["XADD", "d", " -4", "f", "v"],
    // Gone again: a later SCAN lists the streams, in each server's own order.
    &["DEL", "d"],
    &["XINFO", "STREAM", "s"],
    &["XINFO", "STREAM", "nokey"],
    &["XINFO", "NOPE"],
    &["XADD", "s", "150-0", "f", "v"],
    &["XADD", "s", "200-*", "f", "v"],
    &["XREAD", "STREAMS", "s", "0"],
    &["XREAD", "COUNT", "1", "STREAMS", "s", "nokey", "0", "0"],
    &["XREAD", "STREAMS", "s", "$"],
    &["XREAD", "STREAMS", "s"],
    &["XREAD", "STREAMS", "s", ">"],
    &["XREAD", "STREAMS", "s", "bad"],
    &["XREAD", "COUNT", "x", "STREAMS", "s", "0"],
    &["XREAD", "BLOCK", "-1", "STREAMS", "s", "0"],
    &["XREAD", "BLOCK", "x", "STREAMS", "s", "0"],
    &["XREAD", "FOO", "STREAMS", "s", "0"],
    &["XREAD", "BLOCK", "10", "STREAMS", "s", "200-1"],
    &["XREAD", "COUNT", "2", "BLOCK", "10", "STREAMS", "s", "0"],
    &["MULTI"],
    &["XREAD", "BLOCK", "0", "STREAMS", "s", "$"],
    &["XADD", "s", "300-0", "in", "multi"],
    &["EXEC"],
    &["EVAL", "return redis.call('XADD', KEYS[1], '400-0', 'from', 'lua')", "1", "s"],
    &["EVAL", "return redis.call('XREAD', 'COUNT', 1, 'STREAMS', KEYS[1], '300-0')", "1", "s"],
    &["EVAL", "return redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 2)", "1", "s"],
    &["SET", "str", "x"],
    &["XADD", "str", "*", "a", "b"],
    &["XRANGE", "str", "-", "+"],
    &["XLEN", "str"],
    &["XREAD", "STREAMS", "str", "0"],
    &["XINFO", "STREAM", "str"],
    &["TYPE", "s"],
    &["OBJECT", "ENCODING", "s"],
    &["SCAN", "0", "TYPE", "stream"],
    &["EXPIRE", "s", "100"],
    &["TTL", "s"],
    &["RENAME", "s", "s3"],
    &["XRANGE", "s3", "-", "+"],
    &["XINFO", "STREAM", "s3"],
    &["COPY", "s3", "s4"],
    &["XINFO", "STREAM", "s4"],
    &["DEL", "s3", "s4"],
    &["XADD", "s5", "1-1", "a", "b"],
    &["XDEL", "s5", "1-1"],
    &["XLEN", "s5"],
    &["EXISTS", "s5"],
    &["XINFO", "STREAM", "s5"],
    &["XADD", "s5", "1-1", "a", "b"],
    &["XADD", "s5", "1-2", "a", "b"],
    &["XRANGE", "s5", "-", "+"],
    &["XADD", "big", "MAXLEN", "~", "50", "1-1", "a", "b"],
];

/// Consumer groups, compared like [`SCRIPT`]. Commands marked [`Clock::Masked`] answer idle
/// times, which depend on each server's clock: their integers that follow a string (the idle
/// times of XPENDING rows, the counts of XINFO CONSUMERS) are masked before comparing.
const GROUP_SCRIPT: &[(Clock, &[&str])] = &[
    (Exact, &["XADD", "s", "1-0", "a", "1"]),
    (Exact, &["XADD", "s", "2-0", "b", "2"]),
    (Exact, &["XADD", "s", "3-0", "c", "3"]),
    (Exact, &["XADD", "s", "4-0", "d", "4"]),
    // XGROUP
    (Exact, &["XGROUP", "CREATE", "s", "g", "0"]),
    (Exact, &["XGROUP", "CREATE", "s", "last", "$"]),
    (Exact, &["XGROUP", "CREATE", "s", "mid", "2-0"]),
    (Exact, &["XGROUP", "CREATE", "s", "er", "0", "ENTRIESREAD", "1"]),
    (Exact, &["XGROUP", "CREATE", "s", "x", "0", "ENTRIESREAD", "-2"]),
    (Exact, &["XGROUP", "CREATE", "s", "x", "0", "ENTRIESREAD", "x"]),
    (Exact, &["XGROUP", "CREATE", "s", "x", "0", "FOO"]),
    (Exact, &["XGROUP", "CREATE", "s", "x", "0", "MKSTREAM", "ENTRIESREAD"]),
    (Exact, &["XGROUP", "CREATE", "s", "x", "0", "MKSTREAM", "MKSTREAM", "MKSTREAM", "MKSTREAM"]),
    (Exact, &["XGROUP", "CREATE", "s", "g", "$"]),
    (Exact, &["XGROUP", "CREATE", "s", "x", "bad"]),
    (Exact, &["XGROUP", "CREATE", "s", "x", "-"]),
    (Exact, &["XGROUP", "CREATE", "nokey", "g", "$"]),
    (Exact, &["XGROUP", "CREATE", "made", "g", "$", "MKSTREAM"]),
    (Exact, &["XGROUP", "CREATE", "made2", "g", "bad", "MKSTREAM"]),
    (Exact, &["EXISTS", "made", "made2"]),
    (Exact, &["XINFO", "STREAM", "made"]),
    (Exact, &["XINFO", "GROUPS", "made"]),
    (Exact, &["XINFO", "GROUPS", "s"]),
    (Exact, &["XGROUP", "SETID", "s", "mid", "1-0"]),
    (Exact, &["XGROUP", "SETID", "s", "mid", "$", "ENTRIESREAD", "4"]),
    (Exact, &["XGROUP", "SETID", "s", "mid", "-"]),
    (Exact, &["XGROUP", "SETID", "s", "mid", "$", "ENTRIESREAD"]),
    (Exact, &["XGROUP", "SETID", "s", "mid", "$", "FOO", "1"]),
    (Exact, &["XGROUP", "SETID", "s", "mid", "$", "ENTRIESREAD", "-5"]),
    (Exact, &["XGROUP", "SETID", "s", "nog", "1"]),
    (Exact, &["XGROUP", "SETID", "nokey", "g", "1"]),
    (Exact, &["XGROUP", "SETID", "s", "mid", "bad"]),
    // A bad ENTRIESREAD value before a stray argument; a repeat refused only after the key
    // and the group are found.
    (Exact, &["XGROUP", "SETID", "s", "mid", "$", "ENTRIESREAD", "9223372036854775808", "x"]),
    (Exact, &["XGROUP", "SETID", "s", "mid", "$", "ENTRIESREAD", "5", "x"]),
    (Exact, &["XGROUP", "SETID", "nokey", "g", "0", "ENTRIESREAD", "5", "ENTRIESREAD", "6"]),
    (Exact, &["XGROUP", "SETID", "s", "nog", "0", "ENTRIESREAD", "5", "ENTRIESREAD", "6"]),
    (Exact, &["XGROUP", "SETID", "s", "mid", "0", "ENTRIESREAD", "5", "ENTRIESREAD", "6"]),
    (Exact, &["XGROUP", "DESTROY", "s", "last"]),
    (Exact, &["XGROUP", "DESTROY", "s", "last"]),
    (Exact, &["XGROUP", "DESTROY", "nokey", "last"]),
    (Exact, &["XGROUP", "CREATECONSUMER", "s", "g", "zed"]),
    (Exact, &["XGROUP", "CREATECONSUMER", "s", "g", "zed"]),
    (Exact, &["XGROUP", "CREATECONSUMER", "s", "nog", "zed"]),
    (Exact, &["XGROUP", "DELCONSUMER", "s", "g", "nobody"]),
    (Exact, &["XGROUP", "DELCONSUMER", "s", "nog", "nobody"]),
    (Exact, &["XGROUP", "FOO", "s", "g"]),
    (Exact, &["XGROUP", "CREATE", "s"]),
    (Exact, &["XGROUP", "DESTROY", "s"]),
    (Exact, &["XGROUP", "HELP"]),
    (Exact, &["XGROUP", "HELP", "x"]),
    (Exact, &["XGROUP"]),
    // XREADGROUP
    (Exact, &["XREADGROUP", "GROUP", "g", "alice", "COUNT", "2", "STREAMS", "s", ">"]),
    (Exact, &["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", ">"]),
    (Exact, &["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", ">"]),
    (Exact, &["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "0"]),
    (Exact, &["XREADGROUP", "GROUP", "g", "alice", "COUNT", "1", "STREAMS", "s", "0"]),
    (Exact, &["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "1-0"]),
    (Exact, &["XREADGROUP", "GROUP", "g", "carol", "STREAMS", "s", "0"]),
    (Exact, &["XREADGROUP", "GROUP", "er", "dan", "STREAMS", "s", "made", ">", ">"]),
    (Exact, &["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "$"]),
    (Exact, &["XREADGROUP", "GROUP", "nog", "alice", "STREAMS", "s", ">"]),
    (Exact, &["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "nokey", ">"]),
    (Exact, &["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "nokey", ">"]),
    (Exact, &["XREADGROUP", "STREAMS", "s", ">"]),
    (Exact, &["XREADGROUP", "COUNT", "1", "STREAMS", "s", ">"]),
    (Exact, &["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s"]),
    (Exact, &["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "s", ">"]),
    (Exact, &["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "bad"]),
    (Exact, &["XREADGROUP", "GROUP", "g", "alice", "FOO", "STREAMS", "s", ">"]),
    (Exact, &["XREADGROUP", "GROUP", "g", "alice", "COUNT", "x", "STREAMS", "s", ">"]),
    (Exact, &["XREADGROUP", "GROUP", "g", "alice", "BLOCK", "-1", "STREAMS", "s", ">"]),
    (Exact, &["XREADGROUP", "GROUP", "g", "alice", "BLOCK", "10", "STREAMS", "s", ">"]),
    (Exact, &["XREADGROUP", "GROUP", "g", "alice", "NOACK", "STREAMS", "s", ">"]),
    (Exact, &["XREADGROUP", "GROUP", "g", "newbie", "STREAMS", "s", ">"]),
    (Exact, &["XINFO", "GROUPS", "s"]),
    (Exact, &["XREAD", "GROUP", "g", "alice", "STREAMS", "s", ">"]),
    (Exact, &["XREAD", "NOACK", "STREAMS", "s", "0"]),
    // XPENDING
    (Exact, &["XPENDING", "s", "g"]),
    (Masked, &["XPENDING", "s", "g", "-", "+", "10"]),
    (Masked, &["XPENDING", "s", "g", "-", "+", "1", "bob"]),
    (Masked, &["XPENDING", "s", "g", "(1", "(4", "10"]),
    (Masked, &["XPENDING", "s", "g", "IDLE", "0", "-", "+", "10"]),
    (Exact, &["XPENDING", "s", "g", "IDLE", "100000000", "-", "+", "10"]),
    (Exact, &["XPENDING", "s", "g", "-", "+", "10", "nobody"]),
    (Exact, &["XPENDING", "s", "g", "-", "+", "-1"]),
    (Exact, &["XPENDING", "s", "g", "3", "2", "10"]),
    (Exact, &["XPENDING", "s", "g", "IDLE", "x", "-", "+", "10"]),
    (Exact, &["XPENDING", "s", "g", "IDLE", "10", "-", "+"]),
    (Exact, &["XPENDING", "s", "g", "-", "+", "x"]),
    (Exact, &["XPENDING", "s", "g", "bad", "+", "10"]),
    (Exact, &["XPENDING", "s", "g", "-", "+"]),
    (Exact, &["XPENDING", "s", "g", "-", "+", "1", "a", "b", "c"]),
    (Exact, &["XPENDING", "s", "nog"]),
    (Exact, &["XPENDING", "nokey", "g"]),
    (Exact, &["XPENDING", "s", "er"]),
    // XCLAIM
    (Exact, &["XCLAIM", "s", "g", "bob", "0", "1-0", "TIME", "1000"]),
    (Exact, &["XCLAIM", "s", "g", "erin", "100000000", "1-0", "2-0"]),
    (Exact, &["XCLAIM", "s", "g", "erin", "0", "2-0", "IDLE", "5000", "RETRYCOUNT", "7"]),
    (Exact, &["XCLAIM", "s", "g", "erin", "0", "3-0", "JUSTID"]),
    (Exact, &["XCLAIM", "s", "g", "erin", "0", "9-0", "FORCE"]),
    (Exact, &["XCLAIM", "s", "g", "erin", "0", "9-0", "3-0", "FORCE", "JUSTID"]),
    (Exact, &["XCLAIM", "s", "g", "erin", "0", "4-0", "LASTID", "10-0"]),
    (Exact, &["XCLAIM", "s", "g", "erin", "0", "4-0", "TIME", "-1", "RETRYCOUNT", "-3"]),
    (Exact, &["XCLAIM", "s", "g", "erin", "-5", "4-0", "TIME", "99999999999999"]),
    (Exact, &["XCLAIM", "s", "g", "erin", "0", "4-0", "LASTID", "bad"]),
    (Exact, &["XCLAIM", "s", "g", "erin", "x", "4-0"]),
    (Exact, &["XCLAIM", "s", "g", "erin", "0", "4-0", "IDLE", "x"]),
    (Exact, &["XCLAIM", "s", "g", "erin", "0", "4-0", "TIME", "x"]),
    (Exact, &["XCLAIM", "s", "g", "erin", "0", "4-0", "RETRYCOUNT", "x"]),
    (Exact, &["XCLAIM", "s", "g", "erin", "0", "4-0", "BOGUS"]),
    (Exact, &["XCLAIM", "s", "g", "erin", "0", "4-0", "IDLE"]),
    (Exact, &["XCLAIM", "s", "g", "erin", "0", "bad"]),
    (Exact, &["XCLAIM", "s", "nog", "erin", "0", "1-0"]),
    (Exact, &["XCLAIM", "nokey", "g", "erin", "0", "1-0"]),
    (Exact, &["XCLAIM", "s", "g", "erin", "0"]),
    (Exact, &["XPENDING", "s", "g"]),
    (Exact, &["XINFO", "GROUPS", "s"]),
    (Masked, &["XINFO", "CONSUMERS", "s", "g"]),
    (Exact, &["XINFO", "CONSUMERS", "s", "nog"]),
    (Exact, &["XINFO", "CONSUMERS", "nokey", "g"]),
    (Exact, &["XINFO", "GROUPS", "nokey"]),
    (Exact, &["XINFO", "GROUPS"]),
    (Exact, &["XINFO", "HELP"]),
    (Exact, &["XINFO", "STREAM", "made", "FULL"]),
    (Masked, &["XINFO", "STREAM", "s", "FULL"]),
    (Masked, &["XINFO", "STREAM", "s", "full", "count", "1"]),
    (Masked, &["XINFO", "STREAM", "s", "FULL", "COUNT", "-1"]),
    (Masked, &["XINFO", "STREAM", "s", "FULL", "COUNT", "0"]),
    (Exact, &["XINFO", "STREAM", "s", "FOO"]),
    (Exact, &["XINFO", "STREAM", "s", "FULL", "COUNT"]),
    (Exact, &["XINFO", "STREAM", "s", "FULL", "COUNT", "x"]),
    (Exact, &["XINFO", "STREAM", "s", "FULL", "FOO", "1"]),
    (Exact, &["XINFO", "STREAM", "nokey", "FULL"]),
    // XDEL, XTRIM and the groups
    (Exact, &["XDEL", "s", "2-0"]),
    (Exact, &["XREADGROUP", "GROUP", "g", "erin", "STREAMS", "s", "0"]),
    (Exact, &["XINFO", "GROUPS", "s"]),
    (Exact, &["XCLAIM", "s", "g", "bob", "0", "2-0", "3-0"]),
    (Exact, &["XPENDING", "s", "g"]),
    (Exact, &["XADD", "s", "5-0", "e", "5"]),
    (Exact, &["XADD", "s", "6-0", "f", "6"]),
    (Exact, &["XGROUP", "SETID", "s", "g", "4-0"]),
    (Exact, &["XINFO", "GROUPS", "s"]),
    (Exact, &["XREADGROUP", "GROUP", "g", "carol", "COUNT", "1", "STREAMS", "s", ">"]),
    (Exact, &["XINFO", "GROUPS", "s"]),
    (Exact, &["XREADGROUP", "GROUP", "g", "carol", "NOACK", "STREAMS", "s", ">"]),
    (Exact, &["XINFO", "GROUPS", "s"]),
    (Exact, &["XPENDING", "s", "g"]),
    // XAUTOCLAIM
    (Exact, &["XAUTOCLAIM", "s", "g", "dave", "0", "0", "COUNT", "1"]),
    (Exact, &["XAUTOCLAIM", "s", "g", "dave", "0", "0", "COUNT", "1", "JUSTID"]),
    (Exact, &["XAUTOCLAIM", "s", "g", "dave", "0", "(3-0", "JUSTID"]),
    (Exact, &["XAUTOCLAIM", "s", "g", "dave", "100000000", "0"]),
    (Exact, &["XAUTOCLAIM", "s", "g", "dave", "0", "0", "COUNT", "0"]),
    (Exact, &["XAUTOCLAIM", "s", "g", "dave", "0", "0", "COUNT", "x"]),
    (Exact, &["XAUTOCLAIM", "s", "g", "dave", "0", "0", "COUNT", "922337203685477580"]),
    (Exact, &["XAUTOCLAIM", "s", "g", "dave", "0", "0", "COUNT"]),
    (Exact, &["XAUTOCLAIM", "s", "g", "dave", "0", "0", "BOGUS"]),
    (Exact, &["XAUTOCLAIM", "s", "g", "dave", "x", "0"]),
    (Exact, &["XAUTOCLAIM", "s", "g", "dave", "0", "bad"]),
    (Exact, &["XAUTOCLAIM", "s", "nog", "dave", "0", "0"]),
    (Exact, &["XAUTOCLAIM", "nokey", "g", "dave", "0", "0"]),
    (Exact, &["XDEL", "s", "3-0", "4-0"]),
    (Exact, &["XAUTOCLAIM", "s", "g", "dave", "0", "0", "COUNT", "1"]),
    (Exact, &["XAUTOCLAIM", "s", "g", "dave", "0", "0", "COUNT", "2"]),
    (Exact, &["XAUTOCLAIM", "s", "g", "dave", "0", "0"]),
    (Exact, &["XPENDING", "s", "g"]),
    (Exact, &["XTRIM", "s", "MAXLEN", "1"]),
    (Exact, &["XREADGROUP", "GROUP", "g", "dave", "STREAMS", "s", "0"]),
    (Exact, &["XINFO", "GROUPS", "s"]),
    // XACK, DELCONSUMER
    (Exact, &["XACK", "s", "g", "5-0", "9-0"]),
    (Exact, &["XACK", "s", "g", "5-0"]),
    (Exact, &["XACK", "s", "g", "bad"]),
    (Exact, &["XACK", "s", "nog", "1-0"]),
    (Exact, &["XACK", "nokey", "g", "1-0"]),
    (Exact, &["XACK", "s", "g"]),
    (Exact, &["XREADGROUP", "GROUP", "g", "zed", "STREAMS", "s", "0"]),
    (Exact, &["XGROUP", "SETID", "s", "g", "0"]),
    (Exact, &["XREADGROUP", "GROUP", "g", "zed", "STREAMS", "s", ">"]),
    (Exact, &["XPENDING", "s", "g"]),
    (Exact, &["XGROUP", "DELCONSUMER", "s", "g", "zed"]),
    (Exact, &["XPENDING", "s", "g"]),
    (Exact, &["XINFO", "GROUPS", "s"]),
    // Types, transactions, scripts, deletion
    (Exact, &["SET", "str", "x"]),
    (Exact, &["XGROUP", "CREATE", "str", "g", "$"]),
    (Exact, &["XGROUP", "CREATE", "str", "g", "$", "MKSTREAM"]),
    (Exact, &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "str", ">"]),
    (Exact, &["XACK", "str", "g", "1-0"]),
    (Exact, &["XPENDING", "str", "g"]),
    (Exact, &["XCLAIM", "str", "g", "c", "0", "1-0"]),
    (Exact, &["XAUTOCLAIM", "str", "g", "c", "0", "0"]),
    (Exact, &["XINFO", "GROUPS", "str"]),
    (Exact, &["XINFO", "CONSUMERS", "str", "g"]),
    (Exact, &["MULTI"]),
    (Exact, &["XREADGROUP", "GROUP", "g", "mc", "BLOCK", "0", "STREAMS", "s", ">"]),
    (Exact, &["XADD", "s", "7-0", "in", "multi"]),
    (Exact, &["XREADGROUP", "GROUP", "g", "mc", "STREAMS", "s", ">"]),
    (Exact, &["EXEC"]),
    (Exact, &["EVAL", "return redis.call('XREADGROUP', 'GROUP', 'g', 'lua', 'STREAMS', KEYS[1], '0')", "1", "s"]),
    (
        Exact,
        &[
            "EVAL",
            "return redis.call('XREADGROUP', 'GROUP', 'g', 'lua', 'BLOCK', 1, 'STREAMS', KEYS[1], '>')",
            "1",
            "s",
        ],
    ),
    (Exact, &["XPENDING", "s", "g"]),
    (Exact, &["COPY", "s", "s2"]),
    (Exact, &["XINFO", "GROUPS", "s2"]),
    (Exact, &["XPENDING", "s2", "g"]),
    (Exact, &["DEL", "s"]),
    (Exact, &["XPENDING", "s", "g"]),
    (Exact, &["XADD", "s", "1-0", "a", "1"]),
    (Exact, &["XINFO", "GROUPS", "s"]),
];

/// Whether a reply can be compared as it is.
#[derive(Debug, Clone, Copy)]
enum Clock {
    Exact,
    Masked,
}
use Clock::{Exact, Masked};

/// A reply's text with every integer that directly follows a string's data replaced by `?`.
fn mask_idle(frame: &str) -> String {
    let lines: Vec<&str> = frame.split("\r\n").collect();
    let masked = lines.iter().enumerate().map(|(i, line)| {
        let after_string = i >= 2 && lines[i - 2].starts_with('$');
        if line.starts_with(':') && after_string {
            ":?"
        } else {
            line
        }
    });
    masked.collect::<Vec<_>>().join("\r\n")
}

fn run_group_script(conn: &mut RawConn) -> Vec<String> {
    GROUP_SCRIPT
        .iter()
        .map(|(clock, args)| {
            let text = frame_text(&conn.cmd(args));
            match clock {
                Exact => text,
                Masked => mask_idle(&text),
            }
        })
        .collect()
}

#[test]
fn group_replies_match_redis_in_resp2_and_resp3() {
    let Some(redis) = Server::redis() else { return };
    let staykv = Server::staykv();
    for (protocol, expected, got) in common::on_both_in_resp2_and_resp3(&redis, &staykv, run_group_script) {
        for (((_, args), e), g) in GROUP_SCRIPT.iter().zip(&expected).zip(&got) {
            assert_eq!(g, e, "{protocol} {args:?}");
        }
    }
}

fn run_script(conn: &mut RawConn) -> Vec<String> {
    SCRIPT.iter().map(|args| frame_text(&conn.cmd(args))).collect()
}

#[test]
fn replies_match_redis_in_resp2_and_resp3() {
    let Some(redis) = Server::redis() else { return };
    let staykv = Server::staykv();
    for (protocol, expected, got) in common::on_both_in_resp2_and_resp3(&redis, &staykv, run_script) {
        for ((args, e), g) in SCRIPT.iter().zip(&expected).zip(&got) {
            assert_eq!(g, e, "{protocol} {args:?}");
        }
    }
}

/// A stream's length and the two radix-tree figures of XINFO STREAM, which show where the
/// nodes of its entries end.
fn layout(conn: &mut RawConn, key: &str) -> String {
    let items = call_str(conn, &["XINFO", "STREAM", key]).items();
    let wanted = ["length", "radix-tree-keys", "radix-tree-nodes"];
    let fields = items.chunks(2).filter(|kv| wanted.contains(&kv[0].text().as_str()));
    fields.map(|kv| format!("{} {}", kv[0].text(), kv[1].int())).collect::<Vec<_>>().join(", ")
}

/// Adds `n` entries `<first + i>-0` to `key`, each `f` with a value of `value_len` bytes.
fn add_entries(conn: &mut RawConn, key: &str, first: u32, n: u32, value_len: usize) {
    let value = "v".repeat(value_len);
    for i in first..first + n {
        conn.cmd(&["XADD", key, &format!("{i}-0"), "f", &value]);
    }
}

/// Where nodes end and what `~` trims: nodes closed by entry count and by bytes (deleted
/// entries count in both), whole nodes only, never past LIMIT; an exact trim leaves the
/// rest of a node as deleted entries; `MINID ~` goes by a node's last ID, deleted or not.
/// Cases from Redis's own stream.tcl among them.
fn node_layouts(server: &Server) -> Vec<String> {
    fn run(conn: &mut RawConn, lines: &mut Vec<String>, args: &[&str]) {
        let reply = frame_text(&conn.cmd(args));
        lines.push(format!("{} -> {reply}", args.join(" ")));
    }
    let mut conn = server.connect();
    let mut lines = Vec::new();
    // 10 entries a node: LIMIT 30 removes three whole nodes, and the next call two more
    // plus the one its XADD filled (stream.tcl "XADD with LIMIT consecutive calls").
    run(&mut conn, &mut lines, &["CONFIG", "SET", "stream-node-max-entries", "10"]);
    add_entries(&mut conn, "a", 1, 100, 1);
    for id in ["101-0", "102-0"] {
        run(&mut conn, &mut lines, &["XADD", "a", "MAXLEN", "~", "55", "LIMIT", "30", id, "f", "v"]);
        run(&mut conn, &mut lines, &["XLEN", "a"]);
    }
    // LIMIT below a node's entries removes nothing (stream.tcl).
    run(&mut conn, &mut lines, &["CONFIG", "SET", "stream-node-max-entries", "2"]);
    add_entries(&mut conn, "b", 1, 3, 1);
    run(&mut conn, &mut lines, &["XTRIM", "b", "MAXLEN", "~", "0", "LIMIT", "1"]);
    run(&mut conn, &mut lines, &["XTRIM", "b", "MAXLEN", "~", "0", "LIMIT", "2"]);
    run(&mut conn, &mut lines, &["CONFIG", "SET", "stream-node-max-entries", "100"]);
    // Exact trims leave deleted entries in the first node, so `~ 444` stops at 500
    // (stream.tcl "XTRIM with MAXLEN option basic test").
    add_entries(&mut conn, "c", 1, 1000, 3);
    for args in [["666", "="], ["555", "="], ["444", "~"], ["400", "~"]] {
        run(&mut conn, &mut lines, &["XTRIM", "c", "MAXLEN", args[1], args[0]]);
        lines.push(layout(&mut conn, "c"));
    }
    // 300-byte values close a node at 4096 bytes, after 13 entries; XDEL'd entries stay
    // in their node's count and bytes; a node goes with its last entry present.
    add_entries(&mut conn, "d", 1, 60, 300);
    lines.push(layout(&mut conn, "d"));
    run(&mut conn, &mut lines, &["XDEL", "d", "2-0", "3-0", "14-0", "15-0"]);
    for i in 16..=26 {
        run(&mut conn, &mut lines, &["XDEL", "d", &format!("{i}-0")]);
    }
    lines.push(layout(&mut conn, "d"));
    run(&mut conn, &mut lines, &["XTRIM", "d", "MAXLEN", "~", "40"]);
    run(&mut conn, &mut lines, &["XTRIM", "d", "MAXLEN", "~", "30"]);
    lines.push(layout(&mut conn, "d"));
    // Entries deleted from the last node still count toward its 10 entries.
    run(&mut conn, &mut lines, &["CONFIG", "SET", "stream-node-max-entries", "10"]);
    add_entries(&mut conn, "g", 1, 5, 1);
    run(&mut conn, &mut lines, &["XDEL", "g", "2-0", "4-0"]);
    add_entries(&mut conn, "g", 6, 6, 1);
    lines.push(layout(&mut conn, "g"));
    run(&mut conn, &mut lines, &["CONFIG", "SET", "stream-node-max-entries", "100"]);
    // `MINID ~` removes a node only when its last ID, deleted or not, is below the ID.
    add_entries(&mut conn, "e", 1, 250, 1);
    run(&mut conn, &mut lines, &["XDEL", "e", "100-0"]);
    run(&mut conn, &mut lines, &["XTRIM", "e", "MINID", "~", "100"]);
    run(&mut conn, &mut lines, &["XTRIM", "e", "MINID", "~", "101"]);
    run(&mut conn, &mut lines, &["XTRIM", "e", "MINID", "~", "202"]);
    // Exact MINID inside a node whose last entry was deleted: the node stays, empty.
    run(&mut conn, &mut lines, &["XDEL", "e", "250-0"]);
    run(&mut conn, &mut lines, &["XTRIM", "e", "MINID", "249-5"]);
    lines.push(layout(&mut conn, "e"));
    run(&mut conn, &mut lines, &["XADD", "e", "300-0", "g", "1", "h", "2"]);
    lines.push(layout(&mut conn, "e"));
    // No limit on entries or on bytes: one node.
    run(&mut conn, &mut lines, &["CONFIG", "SET", "stream-node-max-entries", "0"]);
    run(&mut conn, &mut lines, &["CONFIG", "SET", "stream-node-max-bytes", "0"]);
    add_entries(&mut conn, "f", 1, 300, 50);
    lines.push(layout(&mut conn, "f"));
    run(&mut conn, &mut lines, &["XTRIM", "f", "MAXLEN", "~", "10"]);
    run(&mut conn, &mut lines, &["CONFIG", "SET", "stream-node-max-entries", "100"]);
    run(&mut conn, &mut lines, &["CONFIG", "SET", "stream-node-max-bytes", "4096"]);
    lines
}

#[test]
fn nodes_are_filled_and_trimmed_like_redis() {
    common::same_as_redis(
        node_layouts,
        &[
            "XLEN a -> 71",
            "XLEN a -> 62",
            "XTRIM b MAXLEN ~ 0 LIMIT 1 -> 0",
            "XTRIM c MAXLEN ~ 444 -> 55",
            "XTRIM e MINID ~ 100 -> 0",
            "XTRIM d MAXLEN ~ 30 -> 11",
            "length 1, radix-tree-keys 1",
            "length 9, radix-tree-keys 2",
            "length 300, radix-tree-keys 1",
        ],
    );
}

/// Read one frame within `timeout`, or `None`.
fn frame_within(conn: &mut RawConn, timeout: Duration) -> Option<String> {
    conn.stream().set_read_timeout(Some(timeout)).unwrap();
    let frame = conn.read_frame().ok().map(|f| frame_text(&f));
    conn.stream().set_read_timeout(None).unwrap();
    frame
}

#[test]
fn xread_block_is_woken_by_any_writer_in_arrival_order() {
    let server = Server::staykv();
    let mut writer = server.connect();
    writer.cmd(&["XADD", "s", "1-0", "old", "entry"]);
    // Two readers wait on `$`; both get the entry written after they blocked.
    let mut readers = [server.connect(), server.connect()];
    for r in &mut readers {
        r.send(&common::encode_str(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]));
    }
    writer.wait_blocked(2);
    writer.cmd(&["XADD", "s", "2-0", "new", "entry"]);
    for r in &mut readers {
        let reply = frame_within(r, Duration::from_secs(5)).expect("woken by XADD");
        assert!(reply.contains("2-0") && !reply.contains("1-0"), "{reply}");
    }
    // Woken by a transaction and by a script.
    for (i, write) in [
        vec![vec!["MULTI"], vec!["XADD", "s", "3-0", "f", "v"], vec!["EXEC"]],
        vec![vec!["EVAL", "return redis.call('XADD', KEYS[1], '4-0', 'f', 'v')", "1", "s"]],
    ]
    .into_iter()
    .enumerate()
    {
        let mut reader = server.connect();
        reader.send(&common::encode_str(&["XREAD", "BLOCK", "5000", "STREAMS", "s", "$"]));
        writer.wait_blocked(1);
        for args in &write {
            writer.cmd(args);
        }
        let reply = frame_within(&mut reader, Duration::from_secs(5)).expect("woken");
        assert!(reply.contains(&format!("{}-0", i + 3)), "{reply}");
    }
    // A timeout answers nil: `*-1` in RESP2, `_` in RESP3.
    let mut reader = server.connect();
    let started = Instant::now();
    assert_eq!(reader.cmd(&["XREAD", "BLOCK", "100", "STREAMS", "s", "$"]), b"*-1\r\n");
    assert!(started.elapsed() >= Duration::from_millis(90));
    reader.cmd(&["HELLO", "3"]);
    assert_eq!(reader.cmd(&["XREAD", "BLOCK", "50", "STREAMS", "s", "$"]), b"_\r\n");
    // A stream created while waiting on a missing key wakes the reader.
    reader.send(&common::encode_str(&["XREAD", "BLOCK", "0", "STREAMS", "later", "0"]));
    writer.wait_blocked(1);
    writer.cmd(&["XADD", "later", "7-7", "f", "v"]);
    assert!(frame_within(&mut reader, Duration::from_secs(5)).unwrap().contains("7-7"));
}

#[test]
fn watch_and_keyspace_events() {
    let server = Server::staykv();
    let mut a = server.connect();
    let mut b = server.connect();
    a.cmd(&["XADD", "s", "1-0", "f", "v"]);
    a.cmd(&["WATCH", "s"]);
    b.cmd(&["XADD", "s", "2-0", "f", "v"]);
    a.cmd(&["MULTI"]);
    a.cmd(&["XLEN", "s"]);
    assert_eq!(a.cmd(&["EXEC"]), b"*-1\r\n");

    b.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    let mut sub = server.connect();
    sub.cmd(&["PSUBSCRIBE", "__keyevent@0__:x*"]);
    b.cmd(&["XADD", "s", "MAXLEN", "1", "3-0", "f", "v"]);
    b.cmd(&["XDEL", "s", "3-0"]);
    b.cmd(&["XSETID", "s", "9-0"]);
    b.cmd(&["XADD", "s", "10-0", "f", "v"]);
    b.cmd(&["XTRIM", "s", "MAXLEN", "0"]);
    let mut events = Vec::new();
    while let Some(frame) = frame_within(&mut sub, Duration::from_millis(500)) {
        events.push(frame.rsplit("__keyevent@0__:").next().unwrap_or_default().split('\r').next().unwrap().to_string());
    }
    assert_eq!(events, ["xadd", "xtrim", "xdel", "xsetid", "xadd", "xtrim"]);
}

#[test]
fn streams_survive_sigkill_and_snapshots() {
    let mut server = Server::staykv();
    let mut conn = server.connect();
    for i in 1..=300 {
        conn.cmd(&["XADD", "s", "MAXLEN", "~", "150", "*", "n", &i.to_string()]);
    }
    conn.cmd(&["XDEL", "s", "0-1"]);
    let ids: Vec<String> = (0..3).map(|_| frame_text(&conn.cmd(&["XADD", "t", "*", "f", "v"]))).collect();
    conn.cmd(&["XDEL", "t", &ids[1]]);
    conn.cmd(&["XSETID", "t", "99999999999999-5", "ENTRIESADDED", "10"]);
    conn.cmd(&["XADD", "empty", "1-1", "f", "v"]);
    conn.cmd(&["XDEL", "empty", "1-1"]);
    conn.cmd(&["RENAME", "t", "t2"]);
    let before = stream_state(&mut conn);
    server.kill();
    server.restart();
    let mut conn = server.connect();
    assert_eq!(stream_state(&mut conn), before, "after SIGKILL (log replay)");
    // Fold everything into a snapshot, then replay the snapshot alone.
    assert!(matches!(call_str(&mut conn, &["BGREWRITEAOF"]), Val::Simple(_)));
    let done = common::wait_until(Duration::from_secs(20), || {
        persist_common::info_field(&mut conn, "aof_rewrite_in_progress") == "0"
    });
    assert!(done, "compaction did not finish");
    server.kill();
    server.restart();
    let mut conn = server.connect();
    assert_eq!(stream_state(&mut conn), before, "after a snapshot");
}

/// Counters a client pushes to their end (a delivery count by XCLAIM RETRYCOUNT, a group's
/// entries read by ENTRIESREAD) stop at i64::MAX, where Redis wraps them to negative numbers:
/// logged past it, they were refused by the replay, and the server by its next start.
#[test]
fn stream_counters_at_their_end_survive_a_restart() {
    let mut server = Server::staykv();
    let mut conn = server.connect();
    let max = i64::MAX.to_string();
    let steps: [&[&str]; 8] = [
        &["XADD", "s", "1-0", "a", "1"],
        &["XADD", "s", "2-0", "a", "1"],
        &["XGROUP", "CREATE", "s", "g", "0"],
        &["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s", ">"],
        &["XCLAIM", "s", "g", "c2", "0", "1-0", "RETRYCOUNT", &max, "JUSTID"],
        &["XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", "0"],
        &["XGROUP", "CREATE", "s", "h", "0", "ENTRIESREAD", &max],
        &["XREADGROUP", "GROUP", "h", "c", "STREAMS", "s", ">"],
    ];
    for step in steps {
        assert!(!frame_text(&conn.cmd(step)).starts_with("ERR"), "{step:?}");
    }
    conn.cmd(&["XAUTOCLAIM", "s", "g", "c3", "0", "0"]);
    // Each pending entry but its idle time, which a restart moves on.
    let state = |conn: &mut RawConn| {
        let pending = call_str(conn, &["XPENDING", "s", "g", "-", "+", "10"]).items();
        let pending: Vec<String> = pending
            .iter()
            .map(|p| format!("{} {} {}", p.items()[0].text(), p.items()[1].text(), p.items()[3].int()))
            .collect();
        (pending, call_str(conn, &["XINFO", "GROUPS", "s"]))
    };
    let before = state(&mut conn);
    assert_eq!(before.0, [format!("1-0 c3 {max}")]);
    drop(conn);
    server.restart();
    assert_eq!(state(&mut server.connect()), before);
}

/// Every stream key's entries and XINFO STREAM.
fn stream_state(conn: &mut RawConn) -> Vec<(String, Val, Val)> {
    let keys = dump_all(conn, 1);
    keys.keys()
        .map(|(_, k)| {
            let k = String::from_utf8_lossy(k).into_owned();
            let range = call_str(conn, &["XRANGE", &k, "-", "+"]);
            let info = call_str(conn, &["XINFO", "STREAM", &k]);
            (k, range, info)
        })
        .collect()
}

#[test]
fn dump_and_restore_with_redis_both_ways() {
    let Some(redis) = Server::redis() else { return };
    let staykv = Server::staykv();
    let (mut r, mut s) = (redis.connect(), staykv.connect());
    for conn in [&mut r, &mut s] {
        for i in 1..=250u32 {
            let fields = if i.is_multiple_of(9) { vec!["other", "x"] } else { vec!["event", "added", "jobId"] };
            let mut args = vec!["XADD".to_string(), "s".into(), format!("{}-{}", 1000 + i / 4, i % 4)];
            args.extend(fields.iter().map(|f| f.to_string()));
            args.push(i.to_string());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            conn.cmd(&args);
        }
        conn.cmd(&["XDEL", "s", "1010-2"]);
        conn.cmd(&["XSETID", "s", "5000-0", "ENTRIESADDED", "400"]);
    }
    for to_staykv in [true, false] {
        let (from, to, name) =
            if to_staykv { (&mut r, &mut s, "redis -> staykv") } else { (&mut s, &mut r, "staykv -> redis") };
        let payload = call(from, &[b"DUMP", b"s"]).bytes();
        let reply = call(to, &[b"RESTORE", b"copy", b"0", &payload, b"REPLACE"]);
        assert_eq!(reply, Val::Simple("OK".into()), "{name}");
        assert_eq!(call_str(to, &["XRANGE", "copy", "-", "+"]), call_str(from, &["XRANGE", "s", "-", "+"]), "{name}");
        assert_eq!(call_str(to, &["XINFO", "STREAM", "copy"]), call_str(from, &["XINFO", "STREAM", "s"]), "{name}");
    }
}

/// A DUMP keeps a stream's nodes: StayKV restores Redis's with their deleted entries
/// counted, so later appends and `~` trims go on as in Redis; Redis restores StayKV's with
/// the same boundaries (each node with its entries present only).
#[test]
fn dump_and_restore_keep_the_nodes() {
    let Some(redis) = Server::redis() else { return };
    let staykv = Server::staykv();
    let (mut r, mut s) = (redis.connect(), staykv.connect());
    for conn in [&mut r, &mut s] {
        conn.cmd(&["CONFIG", "SET", "stream-node-max-entries", "10"]);
        add_entries(conn, "s", 1, 95, 20);
        conn.cmd(&["XDEL", "s", "11-0", "12-0", "25-0", "93-0"]);
        conn.cmd(&["XTRIM", "s", "MINID", "5-0"]);
    }
    let from_redis = call(&mut r, &[b"DUMP", b"s"]).bytes();
    for conn in [&mut r, &mut s] {
        let reply = call(conn, &[b"RESTORE", b"copy", b"0", &from_redis]);
        assert_eq!(reply, Val::Simple("OK".into()));
    }
    assert_eq!(layout(&mut s, "copy"), layout(&mut r, "copy"));
    // The last node holds 91-0 to 95-0, 93-0 deleted: it takes five more entries, not six.
    for i in 96..=101 {
        let args = ["XADD", "copy", &format!("{i}-0"), "f", "v"];
        assert_eq!(frame_text(&s.cmd(&args)), frame_text(&r.cmd(&args)), "{args:?}");
    }
    for args in [
        &["XINFO", "STREAM", "copy"][..],
        &["XTRIM", "copy", "MAXLEN", "~", "85"],
        &["XTRIM", "copy", "MAXLEN", "~", "75"],
        &["XTRIM", "copy", "MAXLEN", "~", "70"],
        &["XLEN", "copy"],
    ] {
        assert_eq!(frame_text(&s.cmd(args)), frame_text(&r.cmd(args)), "{args:?}");
        assert_eq!(layout(&mut s, "copy"), layout(&mut r, "copy"), "after {args:?}");
    }
    let from_staykv = call(&mut s, &[b"DUMP", b"s"]).bytes();
    assert_eq!(call(&mut r, &[b"RESTORE", b"mine", b"0", &from_staykv]), Val::Simple("OK".into()));
    assert_eq!(layout(&mut r, "mine"), layout(&mut s, "s"));
    for conn in [&mut r, &mut s] {
        conn.cmd(&["CONFIG", "SET", "stream-node-max-entries", "100"]);
    }
}

/// Builds consumer groups the same way on any server: two groups, deliveries, a history
/// re-delivery, claims with explicit times, acks, a NOACK read, a deleted pending entry, a
/// deleted consumer.
const GROUP_SETUP: &[&[&str]] = &[
    &["XADD", "q", "1-0", "n", "1"],
    &["XADD", "q", "2-0", "n", "2"],
    &["XADD", "q", "3-0", "n", "3"],
    &["XADD", "q", "4-0", "n", "4"],
    &["XADD", "q", "5-0", "n", "5"],
    &["XGROUP", "CREATE", "q", "workers", "0"],
    &["XGROUP", "CREATE", "q", "audit", "$", "ENTRIESREAD", "5"],
    &["XGROUP", "CREATE", "empty", "g", "$", "MKSTREAM"],
    &["XGROUP", "CREATECONSUMER", "q", "audit", "idle-one"],
    &["XREADGROUP", "GROUP", "workers", "alice", "COUNT", "2", "STREAMS", "q", ">"],
    &["XREADGROUP", "GROUP", "workers", "bob", "COUNT", "2", "STREAMS", "q", ">"],
    &["XREADGROUP", "GROUP", "workers", "alice", "STREAMS", "q", "0"],
    &["XCLAIM", "q", "workers", "carol", "0", "3-0", "TIME", "1000", "RETRYCOUNT", "5"],
    &["XAUTOCLAIM", "q", "workers", "dave", "0", "4-0", "COUNT", "1"],
    &["XACK", "q", "workers", "1-0"],
    &["XREADGROUP", "GROUP", "workers", "erin", "NOACK", "STREAMS", "q", ">"],
    &["XGROUP", "CREATECONSUMER", "q", "workers", "gone"],
    &["XCLAIM", "q", "workers", "gone", "0", "2-0"],
    &["XGROUP", "DELCONSUMER", "q", "workers", "gone"],
    &["XADD", "q", "6-0", "n", "6"],
    &["XREADGROUP", "GROUP", "workers", "bob", "STREAMS", "q", ">"],
    &["XDEL", "q", "6-0"],
    &["XGROUP", "CREATE", "q", "temp", "0"],
    &["XGROUP", "DESTROY", "q", "temp"],
];

/// What the groups of `key` look like, without idle times: XINFO GROUPS, XPENDING's
/// summary, and each pending entry's ID, owner and delivery count.
fn group_view(conn: &mut RawConn, key: &str) -> Vec<Val> {
    let mut view = vec![call_str(conn, &["XINFO", "GROUPS", key])];
    for group in view[0].clone().items() {
        let name = group.items()[1].text();
        view.push(call_str(conn, &["XPENDING", key, &name]));
        for row in call_str(conn, &["XPENDING", key, &name, "-", "+", "1000"]).items() {
            let row = row.items();
            view.extend([row[0].clone(), row[1].clone(), row[3].clone()]);
        }
        for consumer in call_str(conn, &["XINFO", "CONSUMERS", key, &name]).items() {
            view.extend(consumer.items().into_iter().take(4));
        }
    }
    view
}

#[test]
fn groups_survive_sigkill_and_snapshots() {
    let mut server = Server::staykv();
    let mut conn = server.connect();
    for args in GROUP_SETUP {
        assert!(!matches!(call_str(&mut conn, args), Val::Error(_)), "{args:?}");
    }
    // XINFO STREAM FULL and DUMP carry everything, delivery and seen times included.
    let state = |conn: &mut RawConn| -> Vec<(Vec<Val>, Val, Vec<u8>)> {
        ["q", "empty"]
            .iter()
            .map(|k| {
                let full = call_str(conn, &["XINFO", "STREAM", k, "FULL", "COUNT", "0"]);
                (group_view(conn, k), full, call(conn, &[b"DUMP", k.as_bytes()]).bytes())
            })
            .collect()
    };
    let before = state(&mut conn);
    assert_eq!(before[0].0[0].items().len(), 2, "two groups");
    server.kill();
    server.restart();
    let mut conn = server.connect();
    assert_eq!(state(&mut conn), before, "after SIGKILL (log replay)");
    assert!(matches!(call_str(&mut conn, &["BGREWRITEAOF"]), Val::Simple(_)));
    let done = common::wait_until(Duration::from_secs(20), || {
        persist_common::info_field(&mut conn, "aof_rewrite_in_progress") == "0"
    });
    assert!(done, "compaction did not finish");
    server.kill();
    server.restart();
    let mut conn = server.connect();
    assert_eq!(state(&mut conn), before, "after a snapshot");
}

#[test]
fn groups_match_redis_and_restore_both_ways() {
    let Some(redis) = Server::redis() else { return };
    let staykv = Server::staykv();
    let (mut r, mut s) = (redis.connect(), staykv.connect());
    for conn in [&mut r, &mut s] {
        for args in GROUP_SETUP {
            conn.cmd(args);
        }
    }
    assert_eq!(group_view(&mut s, "q"), group_view(&mut r, "q"));
    for to_staykv in [true, false] {
        let (from, to, name) =
            if to_staykv { (&mut r, &mut s, "redis -> staykv") } else { (&mut s, &mut r, "staykv -> redis") };
        let payload = call(from, &[b"DUMP", b"q"]).bytes();
        let reply = call(to, &[b"RESTORE", b"copy", b"0", &payload, b"REPLACE"]);
        assert_eq!(reply, Val::Simple("OK".into()), "{name}");
        assert_eq!(group_view(to, "copy"), group_view(from, "q"), "{name}");
    }
}

#[test]
fn xreadgroup_block_is_woken_by_xadd_and_times_out_like_redis() {
    let Some(redis) = Server::redis() else { return };
    let staykv = Server::staykv();
    let mut replies = Vec::new();
    for server in [&redis, &staykv] {
        let mut writer = server.connect();
        writer.cmd(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
        // Two consumers of one group wait: one XADD serves the first to block, the next XADD
        // the other.
        let mut readers = [server.connect(), server.connect()];
        for (i, r) in readers.iter_mut().enumerate() {
            r.send(&common::encode_str(&[
                "XREADGROUP",
                "GROUP",
                "g",
                &format!("c{i}"),
                "BLOCK",
                "0",
                "STREAMS",
                "s",
                ">",
            ]));
            writer.wait_blocked(i + 1);
        }
        writer.cmd(&["XADD", "s", "1-0", "f", "v"]);
        writer.wait_blocked(1);
        let mut got: Vec<Option<String>> =
            readers.iter_mut().map(|r| frame_within(r, Duration::from_millis(300))).collect();
        let served = got.iter().position(Option::is_some).expect("woken by XADD");
        assert_eq!(served, 0, "the entry went to the consumer that blocked first");
        assert!(got[1 - served].is_none(), "the entry went to one consumer only");
        writer.cmd(&["XADD", "s", "2-0", "f", "v"]);
        let second = frame_within(&mut readers[1 - served], Duration::from_secs(5)).expect("woken by the next XADD");
        let first = got.swap_remove(served).unwrap_or_default();
        // A timeout answers nil: `*-1` in RESP2, `_` in RESP3.
        let mut reader = server.connect();
        let started = Instant::now();
        let timeout2 =
            frame_text(&reader.cmd(&["XREADGROUP", "GROUP", "g", "c2", "BLOCK", "100", "STREAMS", "s", ">"]));
        assert!(started.elapsed() >= Duration::from_millis(90));
        reader.cmd(&["HELLO", "3"]);
        let timeout3 = frame_text(&reader.cmd(&["XREADGROUP", "GROUP", "g", "c2", "BLOCK", "50", "STREAMS", "s", ">"]));
        let pending = frame_text(&writer.cmd(&["XPENDING", "s", "g"]));
        let groups = frame_text(&writer.cmd(&["XINFO", "GROUPS", "s"]));
        // The group or the key going away unblocks with an error.
        let mut gone = Vec::new();
        for removal in [&["XGROUP", "DESTROY", "s", "g"][..], &["DEL", "s"]] {
            writer.cmd(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
            reader.send(&common::encode_str(&["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"]));
            writer.wait_blocked(1);
            writer.cmd(removal);
            gone.push(frame_within(&mut reader, Duration::from_secs(5)).expect("unblocked"));
        }
        replies.push([first, second, timeout2, timeout3, pending, groups, gone.join("")]);
    }
    assert_eq!(replies[1], replies[0]);
    assert_eq!(replies[0][2], "*-1\r\n");
    assert_eq!(replies[0][3], "_\r\n");
}

/// Consumers of two groups and a plain reader wait on one stream: an XADD serves the
/// longest-waiting consumer of each group and the reader, and the next XADD the consumer that
/// waited second in the first group, as Redis serves them.
#[test]
fn blocked_consumers_are_served_per_group_in_blocking_order_like_redis() {
    let Some(redis) = Server::redis() else { return };
    let staykv = Server::staykv();
    let mut seen = Vec::new();
    for server in [&redis, &staykv] {
        let mut writer = server.connect();
        writer.cmd(&["XGROUP", "CREATE", "s", "g1", "$", "MKSTREAM"]);
        writer.cmd(&["XGROUP", "CREATE", "s", "g2", "$"]);
        let waits: [&[&str]; 4] = [
            &["XREADGROUP", "GROUP", "g1", "a", "BLOCK", "0", "STREAMS", "s", ">"],
            &["XREADGROUP", "GROUP", "g1", "b", "BLOCK", "0", "STREAMS", "s", ">"],
            &["XREADGROUP", "GROUP", "g2", "c", "BLOCK", "0", "STREAMS", "s", ">"],
            &["XREAD", "BLOCK", "0", "STREAMS", "s", "$"],
        ];
        let mut clients: Vec<RawConn> = Vec::new();
        for (i, wait) in waits.iter().enumerate() {
            let mut client = server.connect();
            client.send(&common::encode_str(wait));
            writer.wait_blocked(i + 1);
            clients.push(client);
        }
        writer.cmd(&["XADD", "s", "1-0", "f", "v"]);
        let first: Vec<Option<String>> =
            clients.iter_mut().map(|c| frame_within(c, Duration::from_millis(500))).collect();
        writer.cmd(&["XADD", "s", "2-0", "f", "v"]);
        let second = frame_within(&mut clients[1], Duration::from_secs(5));
        seen.push(format!("{first:?} then {second:?}; {}", frame_text(&writer.cmd(&["XINFO", "GROUPS", "s"]))));
    }
    assert_eq!(seen[1], seen[0]);
    assert!(seen[0].starts_with("[Some("), "{}", seen[0]);
}

#[test]
fn group_keyspace_events_match_redis() {
    let Some(redis) = Server::redis() else { return };
    let staykv = Server::staykv();
    let script: &[&[&str]] = &[
        &["XADD", "s", "1-0", "f", "v"],
        &["XGROUP", "CREATE", "s", "g", "0"],
        &["XGROUP", "CREATE", "m", "g", "$", "MKSTREAM"],
        &["XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", ">"],
        &["XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", "0"],
        &["XCLAIM", "s", "g", "b", "0", "1-0"],
        &["XAUTOCLAIM", "s", "g", "c", "0", "0"],
        &["XACK", "s", "g", "1-0"],
        &["XGROUP", "SETID", "s", "g", "0"],
        &["XGROUP", "CREATECONSUMER", "s", "g", "d"],
        &["XGROUP", "CREATECONSUMER", "s", "g", "d"],
        &["XGROUP", "DELCONSUMER", "s", "g", "d"],
        &["XGROUP", "DESTROY", "s", "g"],
    ];
    let mut seen = Vec::new();
    for server in [&redis, &staykv] {
        let mut conn = server.connect();
        conn.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
        let mut sub = server.connect();
        sub.cmd(&["PSUBSCRIBE", "__keyevent@0__:*"]);
        for args in script {
            conn.cmd(args);
        }
        let mut events = Vec::new();
        while let Some(frame) = frame_within(&mut sub, Duration::from_millis(300)) {
            let event = frame.rsplit("__keyevent@0__:").next().unwrap_or_default().split('\r').next().unwrap();
            events.push(event.to_string());
        }
        seen.push(events);
    }
    assert_eq!(seen[1], seen[0]);
    assert!(seen[0].contains(&"xgroup-createconsumer".to_string()), "{:?}", seen[0]);
}

#[test]
fn group_commands_do_not_break_watch_like_redis() {
    let Some(redis) = Server::redis() else { return };
    let staykv = Server::staykv();
    let changes: &[&[&str]] = &[
        &["XGROUP", "CREATE", "s", "g", "0"],
        &["XGROUP", "SETID", "s", "g", "0"],
        &["XGROUP", "CREATECONSUMER", "s", "g", "c"],
        &["XREADGROUP", "GROUP", "g0", "c", "STREAMS", "s", ">"],
        &["XACK", "s", "g0", "1-0"],
        &["XCLAIM", "s", "g", "d", "0", "1-0", "FORCE"],
        &["XAUTOCLAIM", "s", "g", "e", "0", "0"],
        &["XGROUP", "DELCONSUMER", "s", "g", "c"],
        &["XGROUP", "DESTROY", "s", "g"],
        &["XGROUP", "CREATE", "new", "g", "$", "MKSTREAM"],
    ];
    let mut outcomes = Vec::new();
    for server in [&redis, &staykv] {
        let (mut a, mut b) = (server.connect(), server.connect());
        a.cmd(&["XADD", "s", "1-0", "f", "v"]);
        a.cmd(&["XGROUP", "CREATE", "s", "g0", "0"]);
        let runs: Vec<String> = changes
            .iter()
            .map(|change| {
                a.cmd(&["WATCH", change[2], "new"]);
                b.cmd(change);
                a.cmd(&["MULTI"]);
                a.cmd(&["PING"]);
                frame_text(&a.cmd(&["EXEC"]))
            })
            .collect();
        outcomes.push(runs);
    }
    assert_eq!(outcomes[1], outcomes[0]);
}

/// A blocked XREAD or XREADGROUP without COUNT, woken by 1,500 entries added in one EXEC,
/// reads 1,000 of them, as Redis caps a woken reader (`XREAD_BLOCKED_DEFAULT_COUNT`); one
/// with a COUNT keeps it. (StayKV's woken readers read everything.) Per reader: how many
/// entries came, and the group's entries-read after it.
fn woken_reader_counts(server: &Server) -> Vec<String> {
    let mut writer = server.connect();
    let readers: [&[&str]; 3] = [
        &["XREAD", "BLOCK", "0", "STREAMS", "s", "$"],
        &["XREAD", "COUNT", "1200", "BLOCK", "0", "STREAMS", "s", "$"],
        &["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"],
    ];
    readers
        .iter()
        .map(|read| {
            writer.cmd(&["DEL", "s"]);
            writer.cmd(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
            let mut reader = server.connect();
            reader.send(&common::encode_str(read));
            writer.wait_blocked(1);
            let adds: Vec<u8> =
                (1..=1500).flat_map(|n| common::encode_str(&["XADD", "s", &format!("{n}-0"), "f", "v"])).collect();
            writer.send(&[common::encode_str(&["MULTI"]), adds, common::encode_str(&["EXEC"])].concat());
            for _ in 0..1502 {
                writer.read_frame().unwrap();
            }
            let reply = frame_text(&reader.read_frame().unwrap());
            let entries = reply.matches("-0").count();
            let group = frame_text(&writer.cmd(&["XINFO", "GROUPS", "s"]));
            format!("{}: {entries} entries; group: {}", read[0], group.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .collect()
}

#[test]
fn woken_readers_without_count_read_a_thousand_entries_like_redis() {
    common::same_as_redis(woken_reader_counts, &["XREAD: 1000 entries", "XREADGROUP: 1000 entries"]);
}

/// A consumer blocked on `>` is not woken by its group's ID moving back (`XGROUP SETID`):
/// it waits for the next XADD and then reads from the new ID on, as in Redis. (StayKV woke it
/// on any change logged for the key, and it read the old entries at once.)
fn setid_while_blocked(server: &Server) -> Vec<String> {
    let mut writer = server.connect();
    writer.cmd(&["XADD", "s", "1-0", "f", "v"]);
    writer.cmd(&["XADD", "s", "2-0", "f", "v"]);
    writer.cmd(&["XGROUP", "CREATE", "s", "g", "$"]);
    let mut reader = server.connect();
    reader.send(&common::encode_str(&["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"]));
    writer.wait_blocked(1);
    writer.cmd(&["XGROUP", "SETID", "s", "g", "0"]);
    let early = frame_within(&mut reader, Duration::from_millis(300));
    writer.cmd(&["XADD", "s", "3-0", "f", "v"]);
    let woken = frame_within(&mut reader, Duration::from_secs(5)).unwrap_or_default();
    vec![format!("woken by SETID: {}", early.is_some()), format!("after XADD: {woken}")]
}

#[test]
fn a_group_id_moved_back_does_not_wake_its_consumers_like_redis() {
    common::same_as_redis(setid_while_blocked, &["woken by SETID: false", "3-0"]);
}

/// A reader blocked on a stream whose new entry is deleted in the same transaction is
/// answered with no entries, as Redis serves blocked readers by the last ID given out (a
/// group's consumer is created too). StayKV went by the last entry present and kept them
/// waiting. Per reader: its reply, then the group's consumers.
fn added_and_deleted_while_blocked(server: &Server) -> Vec<String> {
    let mut writer = server.connect();
    writer.cmd(&["XADD", "s", "1-0", "f", "v"]);
    writer.cmd(&["XGROUP", "CREATE", "s", "g", "$"]);
    let mut readers = [server.connect(), server.connect()];
    readers[0].send(&common::encode_str(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]));
    writer.wait_blocked(1);
    readers[1].send(&common::encode_str(&["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"]));
    writer.wait_blocked(2);
    writer.cmd(&["MULTI"]);
    writer.cmd(&["XADD", "s", "2-0", "f", "v"]);
    writer.cmd(&["XDEL", "s", "2-0"]);
    writer.cmd(&["EXEC"]);
    let mut seen: Vec<String> = readers
        .iter_mut()
        .map(|r| frame_within(r, Duration::from_secs(2)).unwrap_or_else(|| "(still blocked)".into()))
        .collect();
    seen.push(
        frame_text(&writer.cmd(&["XINFO", "CONSUMERS", "s", "g"]))
            .split_whitespace()
            .take(4)
            .collect::<Vec<_>>()
            .join(" "),
    );
    seen
}

#[test]
fn an_entry_added_and_deleted_in_one_exec_answers_blocked_readers_like_redis() {
    common::same_as_redis(added_and_deleted_while_blocked, &["*2\r\n$1\r\ns\r\n*0\r\n", "*1 *6 $4 name"]);
}
