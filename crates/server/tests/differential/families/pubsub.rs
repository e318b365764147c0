//! Pub/sub: PUBLISH on the main connection; SUBSCRIBE PSUBSCRIBE UNSUBSCRIBE PUNSUBSCRIBE
//! (with and without arguments), PING, HELLO 2/3, RESET and a plain command on three
//! subscriber connections per server; PUBSUB CHANNELS/NUMSUB/NUMPAT. After every command
//! on a subscriber and after every batch, what each subscriber received (confirmations,
//! messages, pongs, errors) is compared frame by frame (`Harness::drain_subscribers`).
//! Channel and pattern pools are small so that messages match; patterns use `*`, `?`,
//! `[...]`, `[^...]`, ranges and escapes.

use super::{c, CmdGen, Family};
use crate::differential::gen::{unordered, Check, Gen, Op};

pub const FAMILY: Family = Family {
    name: "pubsub",
    required: &["PUBLISH", "SUBSCRIBE", "PSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "PUBSUB"],
    gens: GENS,
    wraps: false,
    subscribers: SUBSCRIBERS,
    ..Family::PLAIN
};

const SUBSCRIBERS: usize = 3;

const GENS: &[CmdGen] = &[
    c("PUBLISH", 30, publish),
    c("SUBSCRIBE", 8, subscribe),
    c("PSUBSCRIBE", 8, psubscribe),
    c("UNSUBSCRIBE", 5, unsubscribe),
    c("PUNSUBSCRIBE", 5, punsubscribe),
    c("PUBSUB", 8, pubsub),
    c("PING", 2, sub_ping),
    c("HELLO", 2, sub_hello),
    c("RESET", 1, sub_reset),
    c("GET", 1, sub_other),
];

const CHANNELS: &[&[u8]] = &[
    b"ch1",
    b"ch2",
    b"ch10",
    b"news.tech",
    b"news.art",
    b"news.",
    b"hello",
    b"hallo",
    b"h?llo",
    b"a*b",
    b"x[y]",
    b"",
    b"\\",
    b"k\x00z",
    b"__keyspace@0__:k1",
];

const PATTERNS: &[&[u8]] = &[
    b"*",
    b"ch?",
    b"ch*",
    b"ch[0-9]*",
    b"ch[^1]",
    b"news.*",
    b"news.[at]*",
    b"h?llo",
    b"h[ae]llo",
    b"h\\?llo",
    b"a\\*b",
    b"a*b",
    b"x\\[y\\]",
    b"x[[]y]",
    b"\\\\",
    b"*\\\\",
    b"k*z",
    b"",
    b"[",
    b"ch[2-1]",
    b"__key*__:*",
];

const MESSAGES: &[&[u8]] = &[b"hello", b"", b"1", b"\x00\xff\r\n", b"a longer message with spaces", b"pong"];

fn channel(g: &mut Gen) -> Vec<u8> {
    g.pick_bytes(CHANNELS)
}

fn pattern(g: &mut Gen) -> Vec<u8> {
    g.pick_bytes(PATTERNS)
}

fn sub(g: &mut Gen) -> usize {
    g.below(SUBSCRIBERS)
}

fn publish(g: &mut Gen) -> Vec<Op> {
    vec![Op::new(args![g.name("PUBLISH"), channel(g), g.pick_bytes(MESSAGES)])]
}

/// `cmd` with 1–3 channels or patterns, on a random subscriber.
fn join(g: &mut Gen, cmd: &str, pick: fn(&mut Gen) -> Vec<u8>) -> Vec<Op> {
    let mut a = args![g.name(cmd)];
    for _ in 0..g.range(1, 3) {
        a.push(pick(g));
    }
    vec![Op::on_sub(sub(g), a)]
}

/// [`join`], or a third of the time `cmd` alone: leave every channel or pattern.
fn leave(g: &mut Gen, cmd: &str, pick: fn(&mut Gen) -> Vec<u8>) -> Vec<Op> {
    if g.chance(0.33) {
        vec![Op::on_sub(sub(g), args![g.name(cmd)])]
    } else {
        join(g, cmd, pick)
    }
}

fn subscribe(g: &mut Gen) -> Vec<Op> {
    join(g, "SUBSCRIBE", channel)
}

fn psubscribe(g: &mut Gen) -> Vec<Op> {
    join(g, "PSUBSCRIBE", pattern)
}

fn unsubscribe(g: &mut Gen) -> Vec<Op> {
    leave(g, "UNSUBSCRIBE", channel)
}

fn punsubscribe(g: &mut Gen) -> Vec<Op> {
    leave(g, "PUNSUBSCRIBE", pattern)
}

fn pubsub(g: &mut Gen) -> Vec<Op> {
    let a = match g.below(12) {
        // Channels come in the server's hash order: compared unordered.
        0..=2 => return vec![Op::with(args![g.name("PUBSUB"), g.kw("CHANNELS")], Check::Norm(unordered))],
        3..=5 => return vec![Op::with(args![g.name("PUBSUB"), g.kw("CHANNELS"), pattern(g)], Check::Norm(unordered))],
        6..=8 => {
            let mut a = args![g.name("PUBSUB"), g.kw("NUMSUB")];
            for _ in 0..g.range(0, 3) {
                a.push(channel(g));
            }
            a
        }
        9 | 10 => args![g.name("PUBSUB"), g.kw("NUMPAT")],
        _ => match g.below(3) {
            0 => args![g.name("PUBSUB"), "NUMPAT", "x"],
            1 => args![g.name("PUBSUB"), "CHANNELS", "a", "b"],
            _ => args![g.name("PUBSUB"), g.pick_str(&["FOO", ""])],
        },
    };
    vec![Op::new(a)]
}

fn sub_ping(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("PING")];
    if g.chance(0.5) {
        a.push(g.pick_bytes(MESSAGES));
    }
    vec![Op::on_sub(sub(g), a)]
}

/// HELLO 3 makes messages push frames and lets a subscriber run any command; HELLO 2 while
/// subscribed is refused in RESP2 (only the subscribe family, PING, QUIT and RESET are).
fn sub_hello(g: &mut Gen) -> Vec<Op> {
    let proto = g.pick_str(&["2", "3", "3"]);
    vec![Op::on_sub(sub(g), args![g.name("HELLO"), proto])]
}

/// RESET: every subscription dropped, back to RESP2.
fn sub_reset(g: &mut Gen) -> Vec<Op> {
    vec![Op::on_sub(sub(g), args![g.name("RESET")])]
}

/// A command outside the subscribe family: refused in RESP2 while subscribed.
fn sub_other(g: &mut Gen) -> Vec<Op> {
    let a = match g.below(3) {
        0 => args![g.name("GET"), g.key()],
        1 => args![g.name("PUBSUB"), "NUMPAT"],
        _ => args![g.name("ECHO"), g.pick_bytes(MESSAGES)],
    };
    vec![Op::on_sub(sub(g), a)]
}
