//! Unit tests: scripts run through `Engine::execute`, as a client would run them. Expected
//! replies were recorded from redis-server 7.0.15.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use staykv_resp::{Protocol, Reply};

use crate::client::Client;
use crate::effects::Effect;
use crate::exec::{Engine, EngineOptions, Journal, NoJournal};
use crate::host::NoHost;

const NOW: u64 = 1_700_000_000_000;

fn args(list: &[&str]) -> Vec<Bytes> {
    list.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()
}

fn run_at(engine: &Engine, client: &mut Client, list: &[&str], now: u64, journal: &dyn Journal) -> Reply {
    engine.execute(client, &args(list), now, &NoHost, journal).reply
}

fn wire(reply: &Reply, protocol: Protocol) -> String {
    let mut out = bytes::BytesMut::new();
    reply.encode(protocol, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs commands on one client and returns their replies on the wire.
struct Session {
    engine: Arc<Engine>,
    client: Client,
}

impl Session {
    fn new() -> Session {
        Session::with(Arc::new(Engine::new(EngineOptions::default())))
    }

    fn with(engine: Arc<Engine>) -> Session {
        Session { engine, client: Client::new(1, true) }
    }

    fn cmd(&mut self, list: &[&str]) -> String {
        let protocol = self.client.protocol;
        wire(&run_at(&self.engine, &mut self.client, list, NOW, &NoJournal), protocol)
    }

    fn eval(&mut self, script: &str) -> String {
        self.cmd(&["EVAL", script, "0"])
    }
}

fn sha(script: &str) -> String {
    super::sha1_hex(script.as_bytes())
}

#[test]
fn lua_to_reply_conversions() {
    let mut s = Session::new();
    assert_eq!(s.eval("return 1"), ":1\r\n");
    assert_eq!(s.eval("return 'a'"), "$1\r\na\r\n");
    assert_eq!(s.eval("return {1,2,3,'ciao',{1,2}}"), "*5\r\n:1\r\n:2\r\n:3\r\n$4\r\nciao\r\n*2\r\n:1\r\n:2\r\n");
    assert_eq!(s.eval("return 3.99"), ":3\r\n");
    assert_eq!(s.eval("return -3.99"), ":-3\r\n");
    assert_eq!(s.eval("return 0/0"), ":-9223372036854775808\r\n");
    assert_eq!(s.eval("return {1,2,nil,4}"), "*2\r\n:1\r\n:2\r\n");
    assert_eq!(s.eval("return false"), "$-1\r\n");
    assert_eq!(s.eval("return true"), ":1\r\n");
    assert_eq!(s.eval("return"), "$-1\r\n");
    assert_eq!(s.eval("return 'a', 'b'"), "$1\r\na\r\n");
    assert_eq!(s.eval("return {err='My Error'}"), "-My Error\r\n");
    assert_eq!(s.eval("return {err=123}"), "*0\r\n");
    assert_eq!(s.eval("return {ok='a\\r\\nb'}"), "+a  b\r\n");
    assert_eq!(s.eval("return {double=3.5}"), "$3\r\n3.5\r\n");
    assert_eq!(s.eval("return {map={a=1}}"), "*2\r\n$1\r\na\r\n:1\r\n");
    assert_eq!(s.eval("return {set={a=true}}"), "*1\r\n$1\r\na\r\n");
    assert_eq!(
        s.eval("return {1,{ok='x'},{err='y'}, 'z', true, false, 3.5}"),
        "*7\r\n:1\r\n+x\r\n-y\r\n$1\r\nz\r\n:1\r\n$-1\r\n:3\r\n"
    );
    assert_eq!(s.eval("redis.setresp(3) return {false, true}"), "*2\r\n:0\r\n:1\r\n");
    s.client.protocol = Protocol::Resp3;
    assert_eq!(s.eval("return false"), "_\r\n");
    assert_eq!(s.eval("redis.setresp(3) return {false, true}"), "*2\r\n#f\r\n#t\r\n");
    assert_eq!(s.eval("return {double=3.5}"), ",3.5\r\n");
    assert_eq!(s.eval("return {map={a=1}}"), "%1\r\n$1\r\na\r\n:1\r\n");
    assert_eq!(s.eval("return {verbatim_string={format='txt', string='hello'}}"), "=9\r\ntxt:hello\r\n");
}

#[test]
fn reply_to_lua_conversions() {
    let mut s = Session::new();
    assert_eq!(s.eval("return redis.call('get', 'nokey')"), "$-1\r\n");
    assert_eq!(s.eval("return type(redis.call('get', 'nokey'))"), "$7\r\nboolean\r\n");
    assert_eq!(s.eval("local t = redis.call('ping') return type(t)..t.ok"), "$9\r\ntablePONG\r\n");
    s.cmd(&["HSET", "h1", "a", "1"]);
    assert_eq!(s.eval("return redis.call('hgetall', 'h1')"), "*2\r\n$1\r\na\r\n$1\r\n1\r\n");
    assert_eq!(
        s.eval("redis.setresp(3) local t = redis.call('hgetall', 'h1') return {type(t), type(t.map), t.map.a}"),
        "*3\r\n$5\r\ntable\r\n$5\r\ntable\r\n$1\r\n1\r\n"
    );
    assert_eq!(s.eval("redis.setresp(3) return {redis.call('get', 'nokey') == nil}"), "*1\r\n:1\r\n");
    assert_eq!(s.eval("redis.call('set','x',0.1) return redis.call('get','x')"), "$19\r\n0.10000000000000001\r\n");
    assert_eq!(s.eval("redis.call('set','x',1e20) return redis.call('get','x')"), "$5\r\n1e+20\r\n");
    let e = s.eval("local e = redis.pcall('nosuch') return {type(e), e.err, tostring(e.ignore_error_stats_update)}");
    assert_eq!(e, "*3\r\n$5\r\ntable\r\n$44\r\nERR Unknown Redis command called from script\r\n$4\r\ntrue\r\n");
    assert_eq!(s.eval("return redis.pcall('ping', 'a', 'b')"), "-ERR wrong number of arguments for 'ping' command\r\n");
}

#[test]
fn error_texts() {
    let mut s = Session::new();
    let run = |s: &mut Session, script: &str| s.eval(script).replace(&sha(script), "SHA");
    assert_eq!(
        run(&mut s, "return redis.call('get')"),
        "-ERR Wrong number of args calling Redis command from script script: SHA, on @user_script:1.\r\n"
    );
    assert_eq!(
        run(&mut s, "\nreturn redis.call('nosuchcmd')"),
        "-ERR Unknown Redis command called from script script: SHA, on @user_script:2.\r\n"
    );
    assert_eq!(
        run(&mut s, "return foo"),
        "-ERR user_script:1: Script attempted to access nonexistent global variable 'foo' script: SHA, on @user_script:1.\r\n"
    );
    assert_eq!(
        run(&mut s, "foo = 1"),
        "-ERR user_script:1: Attempt to modify a readonly table script: SHA, on @user_script:1.\r\n"
    );
    assert_eq!(run(&mut s, "error('boom')"), "-ERR user_script:1: boom script: SHA, on @user_script:1.\r\n");
    assert_eq!(run(&mut s, "error({err='X boom'})"), "-X boom script: SHA, on @user_script:1.\r\n");
    assert_eq!(run(&mut s, "error(nil)"), "-ERR nil script: SHA, on @user_script:1.\r\n");
    assert_eq!(run(&mut s, "error('x', 0)"), "-ERR x script: SHA, on @user_script:1.\r\n");
    assert_eq!(
        run(&mut s, "return redis.call()"),
        "-ERR Please specify at least one argument for this redis lib call script: SHA, on @user_script:1.\r\n"
    );
    assert_eq!(
        run(&mut s, "return redis.call('set', {}, 1)"),
        "-ERR Lua redis lib command arguments must be strings or integers script: SHA, on @user_script:1.\r\n"
    );
    assert_eq!(
        run(&mut s, "return redis.call('eval', 'return 1', 0)"),
        "-ERR This Redis command is not allowed from script script: SHA, on @user_script:1.\r\n"
    );
    assert_eq!(
        run(&mut s, "return redis.call('blpop', 'l', 0)"),
        "-ERR This Redis command is not allowed from script script: SHA, on @user_script:1.\r\n"
    );
    assert_eq!(
        run(&mut s, "return cjson.decode('bad')"),
        "-ERR user_script:1: Expected value but found invalid token at character 1 script: SHA, on @user_script:1.\r\n"
    );
    assert_eq!(
        run(&mut s, "return bit.tobit()"),
        "-ERR user_script:1: bad argument #1 to 'tobit' (number expected, got no value) script: SHA, on @user_script:1.\r\n"
    );
    assert_eq!(
        run(&mut s, "return redis.setresp(4)"),
        "-ERR RESP version must be 2 or 3. script: SHA, on @user_script:1.\r\n"
    );
    assert_eq!(
        s.eval("return 1 +"),
        "-ERR Error compiling script (new function): user_script:1: unexpected symbol near '<eof>'\r\n"
    );
    assert_eq!(s.cmd(&["EVAL", "return 1", "3", "a"]), "-ERR Number of keys can't be greater than number of args\r\n");
    assert_eq!(s.cmd(&["EVAL", "return 1", "-1", "a"]), "-ERR Number of keys can't be negative\r\n");
    assert_eq!(s.cmd(&["EVAL", "return 1", "x"]), "-ERR value is not an integer or out of range\r\n");
    // pcall returns the message of error tables, as Redis 7 does.
    assert_eq!(
        s.eval("local ok, e = pcall(redis.call, 'nosuch') return {tostring(ok), e}"),
        "*2\r\n$5\r\nfalse\r\n$44\r\nERR Unknown Redis command called from script\r\n"
    );
    assert_eq!(
        s.eval("local ok, e = pcall(cjson.decode, 'bad') return {tostring(ok), e}"),
        "*2\r\n$5\r\nfalse\r\n$53\r\nExpected value but found invalid token at character 1\r\n"
    );
}

#[test]
fn read_only_scripts_and_shebang() {
    let mut s = Session::new();
    let ro = s.cmd(&["EVAL_RO", "return redis.call('set', 'a', 1)", "0"]);
    assert!(ro.starts_with("-ERR Write commands are not allowed from read-only scripts. script: "), "{ro}");
    // A write container's HELP is no write, as in Redis 7.0.
    let help = s.cmd(&["EVAL_RO", "return redis.call('xgroup', 'help')[1]", "0"]);
    assert!(help.starts_with("+XGROUP <subcommand>"), "{help}");
    let create = s.cmd(&["EVAL_RO", "return redis.call('xgroup', 'create', 's', 'g', '$', 'MKSTREAM')", "0"]);
    assert!(create.starts_with("-ERR Write commands are not allowed from read-only scripts."), "{create}");
    let flagged = s.eval("#!lua flags=no-writes\nreturn redis.call('set', 'a', 1)");
    assert!(flagged.ends_with("on @user_script:2.\r\n"), "{flagged}");
    assert_eq!(
        s.cmd(&["EVAL_RO", "#!lua\nreturn 1", "0"]),
        "-ERR Can not execute a script with write flag using *_ro command.\r\n"
    );
    assert_eq!(s.eval("#!lua flags=bad\nreturn 1"), "-ERR Unexpected flag in script shebang: bad\r\n");
    // Upstash's flag (@upstash/ratelimit 2.1+), which Redis 7.0 refuses: accepted.
    assert_eq!(s.eval("#!lua flags=no-writes,allow-key-locking\nreturn 1"), ":1\r\n");
    assert_eq!(s.eval("#!lua foo=bar\nreturn 1"), "-ERR Unknown lua shebang option: foo=bar\r\n");
    assert_eq!(s.eval("#!js\nreturn 1"), "-ERR Unexpected engine in script shebang: #!js\r\n");
    assert_eq!(s.eval("#!lua"), "-ERR Invalid script shebang\r\n");
    assert_eq!(s.eval("#!lua flags=no-writes,allow-oom\nreturn 1"), ":1\r\n");
    assert_eq!(s.cmd(&["EVAL_RO", "return redis.call('get', 'a')", "0"]), "$-1\r\n");
}

#[test]
fn script_cache() {
    let mut s = Session::new();
    let hash = sha("return 1");
    assert_eq!(s.cmd(&["SCRIPT", "LOAD", "return 1"]), format!("$40\r\n{hash}\r\n"));
    assert_eq!(s.cmd(&["SCRIPT", "EXISTS", &hash, &hash.to_uppercase(), "ffff"]), "*3\r\n:1\r\n:1\r\n:0\r\n");
    assert_eq!(s.cmd(&["EVALSHA", &hash.to_uppercase(), "0"]), ":1\r\n");
    assert_eq!(s.cmd(&["EVALSHA", "fff", "0"]), "-NOSCRIPT No matching script. Please use EVAL.\r\n");
    assert_eq!(s.cmd(&["SCRIPT", "FLUSH", "ASYNC"]), "+OK\r\n");
    assert_eq!(s.cmd(&["EVALSHA", &hash, "0"]), "-NOSCRIPT No matching script. Please use EVAL.\r\n");
    assert_eq!(s.cmd(&["SCRIPT", "FLUSH", "bad"]), "-ERR SCRIPT FLUSH only support SYNC|ASYNC option\r\n");
    assert_eq!(s.cmd(&["SCRIPT", "KILL"]), "-NOTBUSY No scripts in execution right now.\r\n");
    // EVAL caches too.
    s.eval("return 2");
    assert_eq!(s.cmd(&["EVALSHA", &sha("return 2"), "0"]), ":2\r\n");
    assert_eq!(s.cmd(&["SCRIPT", "foo"]), "-ERR unknown subcommand 'foo'. Try SCRIPT HELP.\r\n");
}

#[test]
fn keys_argv_and_select() {
    let mut s = Session::new();
    assert_eq!(
        s.cmd(&["EVAL", "return {KEYS, ARGV}", "2", "a", "b", "c"]),
        "*2\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n*1\r\n$1\r\nc\r\n"
    );
    assert_eq!(
        s.eval("redis.call('select', 1) redis.call('set', 'dbx', '1') return redis.call('get', 'dbx')"),
        "$1\r\n1\r\n"
    );
    assert_eq!(s.cmd(&["GET", "dbx"]), "$-1\r\n");
    assert_eq!(s.client.db, 0);
    assert_eq!(s.cmd(&["SELECT", "1"]), "+OK\r\n");
    assert_eq!(s.cmd(&["GET", "dbx"]), "$1\r\n1\r\n");
}

#[test]
fn sandbox() {
    let mut s = Session::new();
    for name in ["os", "io", "print", "loadfile", "dofile", "debug", "require", "module", "setfenv", "newproxy"] {
        let reply = s.eval(&format!("return type({name})"));
        assert!(reply.contains("Script attempted to access nonexistent global variable"), "{name}: {reply}");
    }
    let reply = s.eval("redis.call = nil return 1");
    assert!(reply.contains("user_script:1: Attempt to modify a readonly table"), "{reply}");
    let reply = s.eval("rawset(_G, 'x', 1) return x");
    assert!(reply.starts_with("-ERR Attempt to modify a readonly table script:"), "{reply}");
    let reply = s.eval("setmetatable(_G, nil) return 1");
    assert!(reply.starts_with("-ERR Attempt to modify a readonly table script:"), "{reply}");
    assert!(s.eval("string.foo = 1").contains("Attempt to modify a readonly table"));
    assert_eq!(s.eval("return getmetatable('').__index == string"), ":1\r\n");
    assert_eq!(s.eval("local t = {} t.x = 1 return t.x"), ":1\r\n");
    assert_eq!(s.eval("KEYS[1] = 'x' return KEYS[1]"), "$1\r\nx\r\n");
    assert_eq!(s.eval("return loadstring('return 5')()"), ":5\r\n");
    assert_eq!(s.eval("return loadstring(string.dump(function() return 1 end))"), "$-1\r\n");
    assert_eq!(
        s.eval("local f, e = loadstring(string.dump(function() return 1 end)) return e"),
        "$53\r\n[string \"\x1bLuaQ\"]:1: unexpected symbol near 'char(27)'\r\n"
    );
    assert_eq!(s.eval("local n = 0 for k in pairs(redis) do n = n + 1 end return n > 10"), ":1\r\n");
    // Globals written by one script never leak into the next.
    assert!(s.eval("x = 1").starts_with("-ERR"));
    assert!(s.eval("return x").contains("nonexistent global variable 'x'"));
}

/// No script gets hold of a library's real table, or writes into its read-only proxy, so
/// none can change what later scripts (another user's, run with that user's rights) see:
/// `pairs` handed out the real table, and the table functions wrote into proxies raw.
#[test]
fn no_script_changes_the_environment_of_the_next() {
    let mut s = Session::new();
    for (library, hijack) in [
        ("redis", "local _, r = pairs(redis) rawset(r, 'call', function() return 'hijacked' end)"),
        ("string", "local _, r = pairs(string) rawset(r, 'upper', function() return 'pwned' end)"),
        ("_G", "local _, r = pairs(_G) rawset(r, 'planted', 1)"),
        ("redis", "table.insert(redis, 'x')"),
        ("_G", "table.insert(_G, 1, 'x')"),
        ("string", "table.sort(string)"),
        ("redis", "table.remove(redis)"),
    ] {
        let reply = s.eval(hijack);
        assert!(reply.contains("Attempt to modify a readonly table"), "{library}: {hijack}: {reply}");
    }
    assert_eq!(s.eval("return redis.call('ping')"), "+PONG\r\n");
    assert_eq!(s.eval("return ('abc'):upper()"), "$3\r\nABC\r\n");
    assert_eq!(s.eval("return {redis[1], rawget(_G, 1)}"), "*0\r\n");
    assert!(s.eval("return planted").contains("nonexistent global variable"));
    assert_eq!(s.eval("local n = 0 for k, v in pairs(redis) do n = n + 1 end return n > 10"), ":1\r\n");
    assert_eq!(
        s.eval("local t = {3, 1, 2} table.sort(t) table.insert(t, 4) return t"),
        "*4\r\n:1\r\n:2\r\n:3\r\n:4\r\n"
    );
    assert_eq!(s.eval("local t = {1, 2} return table.remove(t)"), ":2\r\n");
    assert!(s.eval("table.insert(1, 2)").contains("bad argument #1 to 'insert' (table expected, got number)"));
}

/// An xpcall handler gets the error as Redis raises it: a redis.call error is its error table
/// (the handler used to get an opaque userdata, so `e.err` was nil).
#[test]
fn xpcall_handlers_get_error_tables() {
    let mut s = Session::new();
    let reply = s.eval("return {xpcall(function() redis.call('nosuchcmd') end, function(e) return e.err end)}");
    assert_eq!(reply, "*2\r\n$-1\r\n$44\r\nERR Unknown Redis command called from script\r\n");
    assert_eq!(
        s.eval("return {xpcall(function() error({err='x'}) end, function(e) return type(e) end)}"),
        "*2\r\n$-1\r\n$5\r\ntable\r\n"
    );
    assert_eq!(s.eval("return {xpcall(function() return 7 end, function(e) return e end)}"), "*2\r\n:1\r\n:7\r\n");
    assert!(s
        .eval("return {xpcall(function() error('boom') end, function(e) return 'h:' .. e end)}")
        .contains("h:user_script:1: boom"));
}

/// A result nested deeper than a reply can be converted is cut with an error element, and the
/// server goes on (at 2,990 levels of maps the conversion panicked, leaving every client told
/// BUSY until a restart).
#[test]
fn a_result_nested_too_deep_is_cut_and_the_next_script_runs() {
    let mut s = Session::new();
    for shape in ["t={map={x=t}}", "t={t}", "t={set={[t]=true}}"] {
        let reply = s.eval(&format!("local t = 1 for i = 1, 2990 do {shape} end return t"));
        assert!(reply.contains("reached lua stack limit"), "{shape}: {}", &reply[reply.len().saturating_sub(200)..]);
        assert_eq!(s.eval("return 1"), ":1\r\n", "after {shape}");
    }
}

#[test]
fn redis_api() {
    let mut s = Session::new();
    assert_eq!(s.eval("return redis.sha1hex('')"), "$40\r\nda39a3ee5e6b4b0d3255bfef95601890afd80709\r\n");
    assert_eq!(s.eval("return redis.error_reply('My Error')"), "-My Error\r\n");
    assert_eq!(s.eval("local e = redis.error_reply('FOO') return e.err"), "$7\r\nERR FOO\r\n");
    assert_eq!(s.eval("return redis.error_reply()"), "-ERR wrong number or type of arguments\r\n");
    assert_eq!(s.eval("return redis.status_reply('FINE')"), "+FINE\r\n");
    assert_eq!(s.eval("return redis.log(redis.LOG_WARNING, 'hi', 'there')"), "$-1\r\n");
    assert_eq!(s.engine.scripting.drain_log(), vec![(3, "hi there".to_string())]);
    assert_eq!(s.eval("return redis.set_repl(redis.REPL_ALL)"), "$-1\r\n");
    assert_eq!(s.eval("return redis.replicate_commands()"), ":1\r\n");
    assert_eq!(s.eval("return redis.breakpoint()"), "$-1\r\n");
    assert_eq!(s.eval("return {redis.REDIS_VERSION, redis.REDIS_VERSION_NUM}"), "*2\r\n$6\r\n7.0.15\r\n:458767\r\n");
    assert_eq!(s.eval("return redis.acl_check_cmd('set','a','b')"), ":1\r\n");
}

#[test]
fn math_random_is_redis_rand48() {
    let mut s = Session::new();
    // A fresh redis-server 7.0 answers these to its first scripts.
    assert_eq!(s.eval("return math.random(100)"), ":40\r\n");
    assert_eq!(
        s.eval("return {math.random(100), math.random(100), math.random()*1000000}"),
        "*3\r\n:85\r\n:36\r\n:446583\r\n"
    );
    assert_eq!(s.eval("math.randomseed(7) return {math.random(100), math.random(100)}"), "*2\r\n:27\r\n:69\r\n");
}

#[test]
fn libraries() {
    let mut s = Session::new();
    assert_eq!(
        s.eval("return cjson.encode({1.5, 0.1, 1/3, 1e100, -0, 100000000000000, 123456789012})"),
        "$55\r\n[1.5,0.1,0.33333333333333,1e+100,-0,1e+14,123456789012]\r\n"
    );
    assert_eq!(
        s.eval("return cjson.encode({a={}, b={1,2,{c='d'}}})"),
        "$28\r\n{\"a\":{},\"b\":[1,2,{\"c\":\"d\"}]}\r\n"
    );
    assert_eq!(
        s.eval("return cjson.encode({a=1,b=2,c=3,d=4,e=5})"),
        "$31\r\n{\"a\":1,\"c\":3,\"b\":2,\"e\":5,\"d\":4}\r\n"
    );
    assert_eq!(s.eval("return cjson.encode('a/b\"c')"), "$9\r\n\"a\\/b\\\"c\"\r\n");
    assert!(s.eval("return cjson.encode({[1]=1,[20]=2})").contains("excessively sparse array"));
    assert!(s.eval("local t = {} t[1] = t return cjson.encode(t)").contains("excessive nesting (1001)"));
    assert_eq!(s.eval("return cjson.decode('[1,2,3]')"), "*3\r\n:1\r\n:2\r\n:3\r\n");
    assert_eq!(s.eval("return cjson.decode('{\"a\":null}').a == cjson.null"), ":1\r\n");
    assert!(s
        .eval("return cjson.decode(string.rep('[', 1001) .. string.rep(']', 1001))")
        .contains("Found too many nested data structures (1001) at character 1001"));
    assert_eq!(
        s.eval("local s = cmsgpack.pack({1,2,3}, 'a', 1.5, -1, true, {a=1}, 300) local t = {} for i=1,#s do t[i] = string.format('%02x', string.byte(s,i)) end return table.concat(t)"),
        "$40\r\n93010203a161ca3fc00000ffc381a16101cd012c\r\n"
    );
    assert_eq!(
        s.eval("return {cmsgpack.unpack(cmsgpack.pack(1,'a',{1,2}, -5))}"),
        "*4\r\n:1\r\n$1\r\na\r\n*2\r\n:1\r\n:2\r\n:-5\r\n"
    );
    assert!(s.eval("return cmsgpack.unpack(string.char(0xc1))").contains("Bad data format in input."));
    assert_eq!(s.eval("return {cmsgpack.unpack_one(cmsgpack.pack(1,2,3), 2)}"), "*2\r\n:-1\r\n:3\r\n");
    assert_eq!(
        s.eval("return {struct.unpack('>I2 <i3 b B h H l L T', struct.pack('>I2 <i3 b B h H l L T', 258, -5, -1, 255, -300, 60000, -7, 123456789012, 42))}"),
        "*10\r\n:258\r\n:-5\r\n:-1\r\n:255\r\n:-300\r\n:60000\r\n:-7\r\n:123456789012\r\n:42\r\n:36\r\n"
    );
    assert_eq!(s.eval("return struct.size('!4 b i d')"), ":16\r\n");
    assert_eq!(
        s.eval("return {bit.tobit(0xffffffff), bit.band(0xff, 0x0f, 0x3), bit.rol(0x12345678, 8), bit.tohex(-1, -4)}"),
        "*4\r\n:-1\r\n:3\r\n:878082066\r\n$4\r\nFFFF\r\n"
    );
}

#[test]
fn functions() {
    let mut s = Session::new();
    let lib = "#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return {keys, args} end)\nredis.register_function{function_name='ro', callback=function(keys, args) return redis.call('get', keys[1]) end, flags={'no-writes'}, description='a ro fn'}";
    assert_eq!(s.cmd(&["FUNCTION", "LOAD", lib]), "$5\r\nmylib\r\n");
    assert_eq!(s.cmd(&["FUNCTION", "LOAD", lib]), "-ERR Library 'mylib' already exists\r\n");
    assert_eq!(s.cmd(&["FUNCTION", "LOAD", "REPLACE", lib]), "$5\r\nmylib\r\n");
    assert_eq!(s.cmd(&["FCALL", "myfunc", "1", "k", "a", "b"]), "*2\r\n*1\r\n$1\r\nk\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    assert_eq!(
        s.cmd(&["FCALL_RO", "myfunc", "0"]),
        "-ERR Can not execute a script with write flag using *_ro command.\r\n"
    );
    assert_eq!(s.cmd(&["FCALL_RO", "ro", "1", "k"]), "$-1\r\n");
    assert_eq!(s.cmd(&["FCALL", "nosuch", "0"]), "-ERR Function not found\r\n");
    assert_eq!(s.cmd(&["FCALL", "MyFunc", "0"]), "*2\r\n*0\r\n*0\r\n", "function names ignore case");
    assert_eq!(
        s.cmd(&["FUNCTION", "LOAD", "#!lua name=y\nredis.register_function('MYFUNC', function() return 1 end)"]),
        "-ERR Function MYFUNC already exists\r\n"
    );
    assert_eq!(
        s.cmd(&["FUNCTION", "LIST"]),
        "*1\r\n*6\r\n$12\r\nlibrary_name\r\n$5\r\nmylib\r\n$6\r\nengine\r\n$3\r\nLUA\r\n$9\r\nfunctions\r\n*2\r\n*6\r\n$4\r\nname\r\n$6\r\nmyfunc\r\n$11\r\ndescription\r\n$-1\r\n$5\r\nflags\r\n*0\r\n*6\r\n$4\r\nname\r\n$2\r\nro\r\n$11\r\ndescription\r\n$7\r\na ro fn\r\n$5\r\nflags\r\n*1\r\n+no-writes\r\n"
    );
    assert_eq!(
        s.cmd(&["FUNCTION", "STATS"]),
        "*4\r\n$14\r\nrunning_script\r\n$-1\r\n$7\r\nengines\r\n*2\r\n$3\r\nLUA\r\n*4\r\n$15\r\nlibraries_count\r\n:1\r\n$15\r\nfunctions_count\r\n:2\r\n"
    );
    assert_eq!(
        s.cmd(&["FUNCTION", "LOAD", "#!lua name=x\nredis.call('ping')"]),
        "-ERR Error registering functions: ERR user_function:2: Script attempted to access nonexistent global variable 'call'\r\n"
    );
    assert_eq!(
        s.cmd(&["FUNCTION", "LOAD", "#!lua name=x\nredis.register_function('f', 1)"]),
        "-ERR Error registering functions: ERR second argument to redis.register_function must be a function\r\n"
    );
    assert_eq!(
        s.cmd(&["FUNCTION", "LOAD", "#!lua name=x\nredis.register_function('myfunc', function() return 1 end)"]),
        "-ERR Function myfunc already exists\r\n"
    );
    assert_eq!(s.cmd(&["FUNCTION", "LOAD", "#!lua name=x\nreturn 1"]), "-ERR No functions registered\r\n");
    assert_eq!(
        s.cmd(&["FUNCTION", "LOAD", "#!lua name=x\nwhile true do end"]),
        "-ERR Error registering functions: ERR FUNCTION LOAD timeout\r\n"
    );
    assert_eq!(s.cmd(&["FUNCTION", "DELETE", "mylib"]), "+OK\r\n");
    assert_eq!(s.cmd(&["FUNCTION", "DELETE", "mylib"]), "-ERR Library not found\r\n");
    assert_eq!(s.cmd(&["FCALL", "myfunc", "0"]), "-ERR Function not found\r\n");
    assert_eq!(
        s.cmd(&["FUNCTION", "LOAD", "#!lua name=w\nredis.register_function('e', function() error('boom') end)"]),
        "$1\r\nw\r\n"
    );
    assert_eq!(s.cmd(&["FCALL", "e", "0"]), "-ERR user_function:2: boom script: e, on @user_function:2.\r\n");
    assert_eq!(s.cmd(&["FUNCTION", "FLUSH"]), "+OK\r\n");
    assert_eq!(s.cmd(&["FUNCTION", "LIST"]), "*0\r\n");
}

/// A journal that keeps every batch, for replay.
#[derive(Default)]
struct Recorder {
    batches: Mutex<Vec<(u64, Vec<Effect>)>>,
}

impl Journal for Recorder {
    fn append(&self, time_ms: u64, effects: &[Effect]) -> Result<u64, String> {
        let mut batches = self.batches.lock();
        batches.push((time_ms, effects.to_vec()));
        Ok(batches.len() as u64)
    }
}

#[test]
fn script_effects_are_one_batch_and_replay_identically() {
    let engine = Engine::new(EngineOptions::default());
    let journal = Recorder::default();
    let mut client = Client::new(1, true);
    run_at(&engine, &mut client, &["SADD", "s", "a", "b", "c", "d", "e", "f"], NOW, &journal);
    let script = "local m = redis.call('SPOP', 's') local t = redis.call('TIME') \
                  redis.call('SET', 'picked', m) redis.call('SET', 'when', t[1]) \
                  redis.call('SET', 'rnd', math.random(1000000)) redis.call('EXPIRE', 'rnd', 100) return m";
    run_at(&engine, &mut client, &["EVAL", script, "0"], NOW, &journal);
    let lib = "#!lua name=l\nredis.register_function('f', function(k) return redis.call('INCR', k[1]) end)";
    run_at(&engine, &mut client, &["FUNCTION", "LOAD", lib], NOW, &journal);
    run_at(&engine, &mut client, &["FCALL", "f", "1", "n"], NOW, &journal);
    let batches = journal.batches.lock().clone();
    assert_eq!(batches.len(), 4, "{batches:?}");
    assert_eq!(batches[1].1.len(), 5, "the script's writes are one batch: {:?}", batches[1].1);

    let replica = Engine::new(EngineOptions::default());
    for (time, effects) in &batches {
        replica.replay(*time, effects).unwrap();
    }
    let mut a = Client::new(2, true);
    let mut b = Client::new(3, true);
    for key in ["s", "picked", "when", "rnd", "n"] {
        let cmd = if key == "s" { vec!["SMEMBERS", key] } else { vec!["GET", key] };
        let left = run_at(&engine, &mut a, &cmd, NOW, &NoJournal);
        let right = run_at(&replica, &mut b, &cmd, NOW, &NoJournal);
        let (mut left, mut right) = (wire(&left, Protocol::Resp2), wire(&right, Protocol::Resp2));
        if key == "s" {
            let sort = |s: &str| {
                let mut lines: Vec<&str> = s.lines().collect();
                lines.sort_unstable();
                lines.join("\n")
            };
            (left, right) = (sort(&left), sort(&right));
        }
        assert_eq!(left, right, "{key}");
    }
    assert_eq!(wire(&run_at(&replica, &mut b, &["PTTL", "rnd"], NOW, &NoJournal), Protocol::Resp2), ":100000\r\n");
    // The function library came back with the log.
    assert_eq!(wire(&run_at(&replica, &mut b, &["FCALL", "f", "1", "n"], NOW, &NoJournal), Protocol::Resp2), ":2\r\n");
    // A logged FUNCTION DELETE replays even where the library is unknown.
    run_at(&engine, &mut client, &["FUNCTION", "DELETE", "l"], NOW, &journal);
    let last = journal.batches.lock().last().cloned().unwrap();
    Engine::new(EngineOptions::default()).replay(last.0, &last.1).unwrap();
}

#[test]
fn eval_inside_multi() {
    let mut s = Session::new();
    assert_eq!(s.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(s.cmd(&["EVAL", "return redis.call('incr', KEYS[1])", "1", "c"]), "+QUEUED\r\n");
    assert_eq!(s.cmd(&["EVAL", "return redis.call('info', 'keyspace') ~= nil", "0"]), "+QUEUED\r\n");
    assert_eq!(s.cmd(&["EXEC"]), "*2\r\n:1\r\n:1\r\n");
}

#[test]
fn busy_script_kill_and_unkillable() {
    let engine = Arc::new(Engine::new(EngineOptions::default()));
    let later = NOW + super::DEFAULT_BUSY_THRESHOLD_MS + 1000;
    for (script, expect_kill) in
        [("local i = 0 while true do i = i + 1 end", true), ("redis.call('set', 'w', 1) while true do end", false)]
    {
        let e = engine.clone();
        let runner = std::thread::spawn(move || {
            let mut client = Client::new(7, true);
            wire(&run_at(&e, &mut client, &["EVAL", script, "0"], NOW, &NoJournal), Protocol::Resp2)
        });
        let started = |e: &Engine| {
            let running = e.scripting.running.lock();
            running.as_ref().is_some_and(|r| expect_kill || r.wrote.load(Ordering::Acquire))
        };
        while !started(&engine) {
            std::thread::yield_now();
        }
        let mut other = Client::new(8, true);
        // Before the threshold: NOTBUSY, as Redis answers once the script is done.
        assert_eq!(
            wire(&run_at(&engine, &mut other, &["SCRIPT", "KILL"], NOW + 10, &NoJournal), Protocol::Resp2),
            "-NOTBUSY No scripts in execution right now.\r\n"
        );
        assert_eq!(
            wire(&run_at(&engine, &mut other, &["GET", "x"], later, &NoJournal), Protocol::Resp2),
            "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n"
        );
        assert_eq!(
            wire(&run_at(&engine, &mut other, &["FUNCTION", "KILL"], later, &NoJournal), Protocol::Resp2),
            if expect_kill {
                "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n"
            } else {
                "-UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.\r\n"
            }
        );
        let kill = wire(&run_at(&engine, &mut other, &["SCRIPT", "KILL"], later, &NoJournal), Protocol::Resp2);
        if expect_kill {
            assert_eq!(kill, "+OK\r\n");
        } else {
            assert!(kill.starts_with("-UNKILLABLE"), "{kill}");
            // What SHUTDOWN NOSAVE would end; the test stops it directly.
            engine.scripting.shared.kill.store(true, Ordering::Release);
        }
        let reply = runner.join().unwrap().replace(&sha(script), "SHA");
        assert_eq!(reply, "-ERR Script killed by user with SCRIPT KILL... script: SHA, on @user_script:1.\r\n");
    }
}

/// A host whose clock the test sets, in Unix ms.
struct SetClock(std::sync::atomic::AtomicU64);

impl crate::host::Host for SetClock {
    fn clock_micros(&self) -> Option<u64> {
        Some(self.0.load(Ordering::Acquire) * 1000)
    }
}

#[test]
fn commands_waiting_behind_a_script_are_answered_at_the_busy_threshold() {
    let engine = Arc::new(Engine::new(EngineOptions::default()));
    let library = "#!lua name=spin\nredis.register_function('spin', function() while true do end end)";
    run_at(&engine, &mut Client::new(7, true), &["FUNCTION", "LOAD", library], NOW, &NoJournal);
    let e = engine.clone();
    let runner =
        std::thread::spawn(move || run_at(&e, &mut Client::new(7, true), &["FCALL", "spin", "0"], NOW, &NoJournal));
    while !engine.scripting.is_running() {
        std::thread::yield_now();
    }
    let clock = Arc::new(SetClock(NOW.into()));
    // Each command passed the BUSY check just before the script started (its `now` is then),
    // so it waits for the shards the script holds.
    let (replies, answered) = std::sync::mpsc::channel();
    for line in ["GET x", "WATCH x", "FUNCTION STATS"] {
        let (e, clock, replies) = (engine.clone(), clock.clone(), replies.clone());
        std::thread::spawn(move || {
            let reply = e.run_line_on(&*clock, &mut Client::new(8, true), NOW, &NoJournal, line).reply;
            let _ = replies.send((line, wire(&reply, Protocol::Resp2)));
        });
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    let later = NOW + super::DEFAULT_BUSY_THRESHOLD_MS;
    clock.0.store(later, Ordering::Release);
    let mut got: Vec<_> = (0..3).map_while(|_| answered.recv_timeout(std::time::Duration::from_secs(5)).ok()).collect();
    let kill = run_at(&engine, &mut Client::new(9, true), &["FUNCTION", "KILL"], later, &NoJournal);
    assert_eq!(wire(&kill, Protocol::Resp2), "+OK\r\n");
    runner.join().unwrap();
    got.sort();
    assert_eq!(got.len(), 3, "commands still waiting at the threshold: {got:?}");
    assert_eq!(got[0].0, "FUNCTION STATS");
    assert!(got[0].1.contains("running_script\r\n*6\r\n$4\r\nname\r\n$4\r\nspin\r\n"), "{}", got[0].1);
    assert_eq!(
        got[1],
        (
            "GET x",
            "-BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.\r\n".into()
        )
    );
    assert_eq!(got[2], ("WATCH x", "+OK\r\n".into()));
}

#[test]
fn the_script_cache_is_counted_as_scripts_come_and_go() {
    let mut s = Session::new();
    let scripting = &s.engine.scripting;
    assert_eq!((scripting.cached_scripts(), scripting.cache_bytes().0), (0, 0));
    s.cmd(&["SCRIPT", "LOAD", "return 1"]);
    s.cmd(&["SCRIPT", "LOAD", "return 1"]);
    s.cmd(&["EVAL", "return 2", "0"]);
    let scripting = &s.engine.scripting;
    assert_eq!(scripting.cached_scripts(), 2, "a script loaded twice is cached once");
    assert!(scripting.cache_bytes().0 >= 2 * 40, "two 40-character shas at least");
    s.cmd(&["SCRIPT", "FLUSH"]);
    let scripting = &s.engine.scripting;
    assert_eq!((scripting.cached_scripts(), scripting.cache_bytes().0), (0, 0));
}

/// Ten thousand cached scripts and as many functions: each is kept in its Lua state, not as a
/// handle of the Lua binding, which holds fewer than 8,000 (the 7,988th SCRIPT LOAD panicked).
#[test]
fn scripts_and_functions_by_the_ten_thousand() {
    let mut s = Session::new();
    let shas: Vec<String> = (0..10_000).map(|i| s.cmd(&["SCRIPT", "LOAD", &format!("return {i}")])).collect();
    assert!(shas.iter().all(|reply| reply.starts_with("$40\r\n")), "{:?}", shas.iter().find(|r| !r.starts_with("$40")));
    let sha = shas[9_999].trim_start_matches("$40\r\n").trim_end();
    assert_eq!(s.cmd(&["EVALSHA", sha, "0"]), ":9999\r\n");
    let many: String =
        (0..10_000).map(|i| format!("redis.register_function('f{i}', function() return {i} end)\n")).collect();
    for _ in 0..3 {
        let reply = s.cmd(&["FUNCTION", "LOAD", "REPLACE", &format!("#!lua name=many\n{many}")]);
        assert_eq!(reply, "$4\r\nmany\r\n");
    }
    assert_eq!(s.cmd(&["FCALL", "f9999", "0"]), ":9999\r\n");
    let compiled = |s: &Session| {
        let state = s.engine.scripting.state.lock();
        state.functions.as_ref().map_or(0, |vm| vm.compiled.pairs::<u64, mlua::Value>().count())
    };
    assert_eq!(compiled(&s), 10_000, "a replaced library's functions are dropped");
    assert_eq!(s.cmd(&["FUNCTION", "DELETE", "many"]), "+OK\r\n");
    assert_eq!(s.cmd(&["FCALL", "f1", "0"]), "-ERR Function not found\r\n");
    assert_eq!(compiled(&s), 0);
}

/// A script that built a large table leaves no large heap behind it (Lua's collector would
/// wait for the heap to double before collecting it).
#[test]
fn a_large_heap_is_collected_when_its_script_ends() {
    let mut session = Session::new();
    let reply = session.eval("local t = {} for i = 1, 3000000 do t[i] = {i} end return #t");
    assert_eq!(reply, ":3000000\r\n");
    let heap = session.engine.scripting.memory().eval_heap;
    assert!(heap < 8 << 20, "{heap} bytes of Lua heap after the script");
}

/// An eviction that meets a running script gives up rather than wait for the shards it
/// holds: a command let through a busy script, or one that passed its checks just before the
/// script started, would otherwise hold its thread until the script ends, which it may never.
#[test]
fn eviction_gives_up_on_the_shards_a_running_script_holds() {
    let engine = Arc::new(Engine::new(EngineOptions::default()));
    run_at(&engine, &mut Client::new(7, true), &["SET", "k", "v"], NOW, &NoJournal);
    engine.eviction.set_policy(crate::evict::Policy::AllKeysLru);
    let e = engine.clone();
    let runner = std::thread::spawn(move || {
        run_at(&e, &mut Client::new(7, true), &["EVAL", "while true do end", "0"], NOW, &NoJournal)
    });
    while !engine.scripting.is_running() {
        std::thread::yield_now();
    }
    let (done, evicted) = std::sync::mpsc::channel();
    let e = engine.clone();
    std::thread::spawn(move || done.send(e.evict(NOW, &NoJournal, &NoHost, &|| true)));
    let evicted = evicted.recv_timeout(std::time::Duration::from_secs(5));
    engine.scripting.shared.kill.store(true, Ordering::Release);
    runner.join().unwrap();
    assert_eq!(evicted.ok(), Some(crate::evict::Evicted::Stuck), "the eviction waited for the script");
}
