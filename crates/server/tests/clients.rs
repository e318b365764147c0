//! The `redis` crate (redis-rs) against StayKV over RESP2 and RESP3, sync and async: GET,
//! SET with EX, TTL and a full SCAN of 1,000 keys. Each scenario also runs against Debian's
//! redis-server when it is installed, so the expectations are known to hold for Redis.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::collections::HashSet;

use common::Server;
use redis::{Commands, Value};

const KEYS: usize = 1000;

fn servers() -> Vec<Server> {
    let mut servers = vec![Server::staykv()];
    servers.extend(Server::redis());
    servers
}

fn url(server: &Server, resp3: bool) -> String {
    if resp3 {
        server.url_resp3()
    } else {
        server.url()
    }
}

/// The protocol the connection really speaks, from the server's `HELLO` reply.
fn negotiated_protocol(con: &mut redis::Connection, resp3: bool) -> i64 {
    let hello: Value = redis::cmd("HELLO").arg(if resp3 { 3 } else { 2 }).query(con).unwrap();
    let fields: Vec<(Value, Value)> = match hello {
        Value::Map(pairs) => pairs,
        Value::Array(items) => items.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect(),
        other => panic!("HELLO replied {other:?}"),
    };
    let proto = fields.iter().find(|(k, _)| matches!(k, Value::BulkString(b) if b == b"proto"));
    match proto {
        Some((_, Value::Int(n))) => *n,
        other => panic!("no proto in HELLO: {other:?}"),
    }
}

fn scenario(server: &Server, resp3: bool) {
    let what = format!("{:?} resp3={resp3}", server.kind());
    let client = redis::Client::open(url(server, resp3)).unwrap();
    let mut con = client.get_connection().unwrap();
    assert_eq!(negotiated_protocol(&mut con, resp3), if resp3 { 3 } else { 2 }, "{what}");
    if resp3 {
        // A RESP3-only reply type reaches the client: CONFIG GET answers a map.
        let reply: Value = redis::cmd("CONFIG").arg("GET").arg("maxmemory").query(&mut con).unwrap();
        assert!(matches!(reply, Value::Map(_)), "{what}: CONFIG GET gave {reply:?}");
    }

    let missing: Option<String> = con.get("missing").unwrap();
    assert_eq!(missing, None, "{what}");
    let ok: String = redis::cmd("SET").arg("session:1").arg("alice").arg("EX").arg(100).query(&mut con).unwrap();
    assert_eq!(ok, "OK", "{what}");
    let value: Option<String> = con.get("session:1").unwrap();
    assert_eq!(value.as_deref(), Some("alice"), "{what}");
    let ttl: i64 = con.ttl("session:1").unwrap();
    assert!((98..=100).contains(&ttl), "{what}: TTL {ttl}");
    let () = con.set_ex("session:2", "bob", 5).unwrap();
    let ttl: i64 = con.ttl("session:2").unwrap();
    assert!((3..=5).contains(&ttl), "{what}: TTL {ttl}");
    let () = con.set("plain", "x").unwrap();
    assert_eq!(con.ttl::<_, i64>("plain").unwrap(), -1, "{what}");
    assert_eq!(con.ttl::<_, i64>("missing").unwrap(), -2, "{what}");
    assert_eq!(con.pttl::<_, i64>("missing").unwrap(), -2, "{what}");
    let err = redis::cmd("SET").arg("k").arg("v").arg("EX").arg(0).query::<()>(&mut con).unwrap_err();
    assert_eq!(err.detail(), Some("invalid expire time in 'set' command"), "{what}: {err:?}");

    // 1,000 keys in one pipeline, then a full SCAN: each key exactly once.
    let mut pipe = redis::pipe();
    for i in 0..KEYS {
        pipe.set(format!("scan:{i}"), i).ignore();
    }
    let () = pipe.query(&mut con).unwrap();
    let expected: HashSet<String> = (0..KEYS).map(|i| format!("scan:{i}")).collect();

    let mut seen = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) =
            redis::cmd("SCAN").arg(cursor).arg("MATCH").arg("scan:*").arg("COUNT").arg(100).query(&mut con).unwrap();
        seen.extend(keys);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), unique.len(), "{what}: SCAN returned duplicates");
    assert_eq!(unique, expected, "{what}: SCAN MATCH/COUNT missed or invented keys");

    // The client's own iterator (plain SCAN, default COUNT) over everything.
    let all: Vec<String> = con.scan().unwrap().collect();
    let all_set: HashSet<String> = all.iter().cloned().collect();
    assert_eq!(all.len(), all_set.len(), "{what}: SCAN iterator returned duplicates");
    let mut want = expected.clone();
    want.extend(["session:1", "session:2", "plain"].map(String::from));
    assert_eq!(all_set, want, "{what}");
    assert_eq!(redis::cmd("DBSIZE").query::<usize>(&mut con).unwrap(), KEYS + 3, "{what}");
}

#[test]
fn redis_crate_resp2() {
    for server in servers() {
        scenario(&server, false);
    }
}

#[test]
fn redis_crate_resp3() {
    for server in servers() {
        scenario(&server, true);
    }
}

/// The async multiplexed connection (what web servers use) over both protocols.
#[test]
fn redis_crate_async_multiplexed() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for server in servers() {
        for resp3 in [false, true] {
            let what = format!("{:?} resp3={resp3}", server.kind());
            runtime.block_on(async {
                let client = redis::Client::open(url(&server, resp3)).unwrap();
                let mut con = client.get_multiplexed_async_connection().await.unwrap();
                let ok: String =
                    redis::cmd("SET").arg("async:k").arg("v").arg("EX").arg(60).query_async(&mut con).await.unwrap();
                assert_eq!(ok, "OK", "{what}");
                let value: Option<String> = redis::cmd("GET").arg("async:k").query_async(&mut con).await.unwrap();
                assert_eq!(value.as_deref(), Some("v"), "{what}");
                let ttl: i64 = redis::cmd("TTL").arg("async:k").query_async(&mut con).await.unwrap();
                assert!((58..=60).contains(&ttl), "{what}: TTL {ttl}");
                // Many requests in flight at once on one connection keep their order.
                let futures = (0..200).map(|_| {
                    let mut con = con.clone();
                    async move {
                        redis::cmd("INCR")
                            .arg(format!("async:counter:{resp3}"))
                            .query_async::<i64>(&mut con)
                            .await
                            .unwrap()
                    }
                });
                let mut results = futures_join(futures).await;
                results.sort_unstable();
                assert_eq!(results, (1..=200).collect::<Vec<i64>>(), "{what}");
            });
        }
    }
}

/// Run futures concurrently on the current task (tokio has no `join_all`).
async fn futures_join<F: std::future::Future<Output = i64> + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<i64> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

/// `addr=` and `laddr=` of `CLIENT INFO`, as the client's socket sees the two ends.
fn client_info_addresses(server: &Server, password: Option<&str>) {
    let mut conn = server.connect();
    if let Some(password) = password {
        assert_eq!(conn.cmd_text(&["AUTH", password]), "OK");
    }
    let info = conn.cmd_text(&["CLIENT", "INFO"]);
    let field = |name: &str| {
        info.split_whitespace()
            .find_map(|pair| pair.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))
            .unwrap_or_else(|| panic!("no {name}= in {info}"))
            .to_string()
    };
    let stream = conn.stream();
    assert_eq!(field("addr"), stream.local_addr().unwrap().to_string(), "{:?}: {info}", server.kind());
    assert_eq!(field("laddr"), stream.peer_addr().unwrap().to_string(), "{:?}: {info}", server.kind());
}

/// The peer address comes from `accept`, the local one from the listener unless it listens
/// on a wildcard address: then only the socket knows which address the client reached.
#[test]
fn client_info_names_both_ends_of_the_connection() {
    client_info_addresses(&Server::staykv(), None);
    client_info_addresses(&Server::staykv_with(&["--bind", "0.0.0.0", "--requirepass", "pw"]), Some("pw"));
    if let Some(redis) = Server::redis() {
        client_info_addresses(&redis, None);
    }
}

/// `cmd=` of the `CLIENT LIST` line with `id=<id>`.
fn listed_command(list: &str, id: &str) -> String {
    let line =
        list.lines().find(|l| l.starts_with(&format!("id={id} "))).unwrap_or_else(|| panic!("no id={id} in {list}"));
    line.split_whitespace()
        .find_map(|f| f.strip_prefix("cmd="))
        .unwrap_or_else(|| panic!("no cmd= in {line}"))
        .to_string()
}

/// `cmd=` names the command a client ran last, a container's subcommand as `client|setname`,
/// and in a client's own line the command asking; CLIENT's subcommands are checked as Redis 7
/// checks them.
fn client_list_commands(server: &Server) {
    let what = format!("{:?}", server.kind());
    let (mut one, mut other) = (server.connect(), server.connect());
    let one_id = one.cmd_text(&["CLIENT", "ID"]);
    let info = one.cmd_text(&["CLIENT", "INFO"]);
    assert_eq!(listed_command(&info, &one_id), "client|info", "{what}: {info}");
    one.cmd_text(&["SET", "k", "v"]);
    one.cmd_text(&["GET", "k"]);
    let list = other.cmd_text(&["CLIENT", "LIST"]);
    assert_eq!(listed_command(&list, &one_id), "get", "{what}: {list}");
    let other_id = other.cmd_text(&["CLIENT", "ID"]);
    assert_eq!(listed_command(&list, &other_id), "client|list", "{what}: {list}");
    assert_eq!(one.cmd_text(&["CLIENT", "SETNAME", "a"]), "OK");
    let list = other.cmd_text(&["CLIENT", "LIST", "ID", &one_id]);
    assert_eq!(listed_command(&list, &one_id), "client|setname", "{what}: {list}");
    assert_eq!(
        one.cmd_text(&["CLIENT", "INFO", "x"]),
        "ERR wrong number of arguments for 'client|info' command",
        "{what}"
    );
    assert_eq!(one.cmd_text(&["CLIENT", "NOSUCH"]), "ERR unknown subcommand 'NOSUCH'. Try CLIENT HELP.", "{what}");
    let list = other.cmd_text(&["CLIENT", "LIST", "ID", &one_id]);
    assert_eq!(listed_command(&list, &one_id), "NULL", "{what}: after an unknown subcommand: {list}");
    one.cmd_text(&["CONFIG", "GET", "maxmemory"]);
    let list = other.cmd_text(&["CLIENT", "LIST", "ID", &one_id]);
    assert_eq!(listed_command(&list, &one_id), "config|get", "{what}: {list}");
}

/// A container's subcommand with too few or too many arguments gets Redis 7's arity error,
/// named `container|subcommand`, before the command runs.
fn subcommand_arity_errors(server: &Server) {
    let mut conn = server.connect();
    let cases: &[(&[&str], &str)] = &[
        (&["CONFIG", "GET"], "config|get"),
        (&["CONFIG", "SET", "maxmemory"], "config|set"),
        (&["CONFIG", "RESETSTAT", "x"], "config|resetstat"),
        (&["ACL", "GETUSER"], "acl|getuser"),
        (&["ACL", "WHOAMI", "x"], "acl|whoami"),
        (&["ACL", "DRYRUN", "default"], "acl|dryrun"),
        (&["COMMAND", "COUNT", "x"], "command|count"),
        (&["COMMAND", "GETKEYS", "GET"], "command|getkeys"),
        (&["SCRIPT", "LOAD"], "script|load"),
        (&["SCRIPT", "KILL", "x"], "script|kill"),
        (&["FUNCTION", "DELETE"], "function|delete"),
        (&["FUNCTION", "STATS", "x"], "function|stats"),
        (&["XINFO", "STREAM"], "xinfo|stream"),
        (&["OBJECT", "ENCODING"], "object|encoding"),
        (&["PUBSUB", "NUMPAT", "x"], "pubsub|numpat"),
        (&["CLIENT", "GETNAME", "x"], "client|getname"),
    ];
    for (args, name) in cases {
        let expected = format!("ERR wrong number of arguments for '{name}' command");
        assert_eq!(conn.cmd_text(args), expected, "{:?}: {args:?}", server.kind());
    }
}

#[test]
fn subcommands_are_checked_as_redis_checks_them() {
    for server in servers() {
        subcommand_arity_errors(&server);
    }
}

#[test]
fn client_list_names_each_clients_command() {
    for server in servers() {
        client_list_commands(&server);
    }
}
