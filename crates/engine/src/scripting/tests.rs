//! Unit tests: scripts run through `Engine::execute`, as a client would run them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use bytes::Bytes;
use staykv_resp::{Protocol, Reply};

use crate::client::Client;
use crate::exec::{Engine, EngineOptions, NoJournal};
use crate::host::NoHost;

fn run(engine: &Engine, client: &mut Client, args: &[&str]) -> Reply {
    let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
    engine.execute(client, &args, 1_700_000_000_000, &NoHost, &NoJournal).reply
}

fn wire(reply: &Reply, protocol: Protocol) -> String {
    let mut out = bytes::BytesMut::new();
    reply.encode(protocol, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn eval(engine: &Engine, script: &str) -> String {
    let mut client = Client::new(1, true);
    wire(&run(engine, &mut client, &["EVAL", script, "0"]), Protocol::Resp2)
}

#[test]
fn basic_values() {
    let e = Engine::new(EngineOptions::default());
    assert_eq!(eval(&e, "return 1"), ":1\r\n");
    assert_eq!(eval(&e, "return 'a'"), "$1\r\na\r\n");
    assert_eq!(eval(&e, "return {1,2,{3,'x'}}"), "*3\r\n:1\r\n:2\r\n*2\r\n:3\r\n$1\r\nx\r\n");
    assert_eq!(eval(&e, "return 3.99"), ":3\r\n");
    assert_eq!(eval(&e, "return false"), "$-1\r\n");
    assert_eq!(eval(&e, "return true"), ":1\r\n");
    assert_eq!(eval(&e, "return {err='My Error'}"), "-My Error\r\n");
    assert_eq!(eval(&e, "return redis.status_reply('FINE')"), "+FINE\r\n");
}
