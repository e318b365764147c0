//! Scripting: EVAL EVALSHA EVAL_RO EVALSHA_RO and SCRIPT LOAD/EXISTS/FLUSH, with small fixed
//! Lua scripts that run random commands of the plain families through redis.call and
//! redis.pcall (the command comes in ARGV, so any bytes pass through) and return their
//! results plainly, typed, caught or under RESP3; scripts that return random Lua values
//! (integers, numbers with fractions that truncate, booleans, strings, nested tables with
//! nils, error and status tables, doubles); redis.error_reply/status_reply; and script
//! errors. Every script is deterministic. Functions: FUNCTION LOAD (REPLACE, and libraries
//! Redis refuses), FCALL and FCALL_RO of one-function libraries that run a plain-family
//! command, FUNCTION LIST of one library, FUNCTION DELETE and FLUSH.
//!
//! Left out, unspecified: Lua numbers beyond i64 or not finite (`1/0`, `2^63`): Redis casts
//! the double to `long long`, undefined behaviour in C. Tables with more than one field under
//! `map`/`set`: Lua's table order. FUNCTION LIST of several libraries, or of a library with
//! several functions: Redis lists them in its dictionaries' hash order.

use staykv_engine::scripting::sha1_hex;

use super::{c, CmdGen, Family};
use crate::differential::gen::{Check, Gen, Op};

pub const FAMILY: Family =
    Family { name: "scripting", required: &["EVAL", "SCRIPT"], gens: GENS, wraps: true, ..Family::PLAIN };

const GENS: &[CmdGen] = &[
    c("EVAL", 16, eval_call),
    c("EVAL", 6, eval_literal),
    c("EVAL", 3, eval_helpers),
    c("EVAL", 3, eval_errors),
    c("EVALSHA", 6, evalsha),
    c("EVAL_RO", 3, eval_ro),
    c("EVALSHA_RO", 1, evalsha_ro),
    c("SCRIPT", 2, script_exists),
    c("SCRIPT", 2, script_load),
    c("SCRIPT", 1, script_flush),
    c("FUNCTION", 3, function_load),
    c("FCALL", 6, fcall),
    c("FCALL_RO", 2, fcall_ro),
    c("FUNCTION", 1, function_list),
    c("FUNCTION", 1, function_delete),
    c("FUNCTION", 1, function_flush),
];

/// Libraries of one function each (FUNCTION LIST order within a library is Redis's hash
/// order): the command comes in the arguments, as for the EVAL scripts.
const LIBRARIES: &[(&str, &str)] = &[
    ("dcall", "#!lua name=dcall\nredis.register_function('fcall_call', function(keys, args) return redis.call(unpack(args)) end)"),
    ("dpcall", "#!lua name=dpcall\nredis.register_function{function_name='fcall_pcall', callback=function(keys, args) return redis.pcall(unpack(args)) end, flags={'no-writes'}}"),
    ("dwrap", "#!lua name=dwrap\nredis.register_function('fcall_wrap', function(keys, args) local r = redis.pcall(unpack(args)) return {type(r), r} end)"),
];

/// Libraries Redis refuses to load, each for its own reason.
const BAD_LIBRARIES: &[&str] = &[
    "redis.register_function('g', function() return 1 end)",
    "#!lua\nredis.register_function('g', function() return 1 end)",
    "#!js name=dbad\nfoo()",
    "#!lua name=dbad\nreturn (",
    "#!lua name=dbad\nredis.register_function('fcall_call', function() return 1 end)",
    "#!lua name=dbad\nredis.call('SET', 'k0', 'v')",
    "#!lua name=dbad\n",
    "#!lua name=dbad foo=bar\nredis.register_function('g', function() return 1 end)",
    "#!lua name=dbad\nredis.register_function('bad name!', function() return 1 end)",
    "#!lua name=dbad\nredis.register_function{function_name='g', callback=function() return 1 end, flags={'bogus'}}",
];

/// Scripts whose reply is the command's own (or its RESP3 form, or a second run's): compared
/// with the command's check.
const PLAIN: &[&str] = &[
    "return redis.call(unpack(ARGV))",
    "return redis.pcall(unpack(ARGV))",
    "redis.setresp(3) return redis.call(unpack(ARGV))",
    "redis.setresp(3) return redis.pcall(unpack(ARGV))",
    "redis.pcall(unpack(ARGV)) return redis.pcall(unpack(ARGV))",
];

/// Scripts that wrap the reply (its Lua type, a caught error, the key's state after it):
/// used for commands compared exactly.
const WRAPPED: &[&str] = &[
    "local r = redis.pcall(unpack(ARGV)) return {type(r), r}",
    "local ok, r = pcall(redis.call, unpack(ARGV)) if ok then return {'ok', r} end return {'caught', type(r), r}",
    "local r = redis.pcall(unpack(ARGV)) return {r, redis.call('EXISTS', KEYS[1]), redis.call('TYPE', KEYS[1])}",
    "local r = redis.pcall(unpack(ARGV)) if type(r) == 'table' then return #r end return tostring(r)",
    "redis.setresp(3) local r = redis.pcall(unpack(ARGV)) return {type(r), r}",
];

/// `EVAL script 1 key argv...` for the wrapped scripts (KEYS[1] is the command's key), 0 keys
/// otherwise.
fn eval_args(name: Vec<u8>, script: &[u8], key: Option<&[u8]>, argv: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut a = args![name, script];
    match key {
        Some(k) => {
            a.push(b"1".to_vec());
            a.push(k.to_vec());
        }
        None => a.push(b"0".to_vec()),
    }
    a.extend(argv.iter().cloned());
    a
}

/// A plain-family command inside a script, and how to compare the script's reply.
fn call_script(g: &mut Gen) -> (&'static str, Option<Vec<u8>>, Op) {
    let op = g.inner_ops().swap_remove(0);
    if matches!(op.check, Check::Exact) && g.chance(0.4) {
        let script = g.pick(WRAPPED);
        let key = op.args.get(1).cloned().unwrap_or_else(|| b"k0".to_vec());
        return (script, Some(key), op);
    }
    (g.pick(PLAIN), None, op)
}

fn eval_call(g: &mut Gen) -> Vec<Op> {
    let (script, key, op) = call_script(g);
    let name = g.name("EVAL");
    vec![Op::wrapping(eval_args(name, script.as_bytes(), key.as_deref(), &op.args), &op)]
}

fn eval_ro(g: &mut Gen) -> Vec<Op> {
    let (script, key, op) = call_script(g);
    let name = g.name("EVAL_RO");
    vec![Op::wrapping(eval_args(name, script.as_bytes(), key.as_deref(), &op.args), &op)]
}

/// EVALSHA of a script, loaded first (or by an earlier EVAL), sometimes not (NOSCRIPT after a
/// SCRIPT FLUSH), sometimes by an unknown or malformed SHA.
fn by_sha(g: &mut Gen, name: &str) -> Vec<Op> {
    let (script, key, op) = call_script(g);
    let mut ops = Vec::new();
    if g.chance(0.5) {
        ops.push(Op::new(args![g.name("SCRIPT"), g.kw("LOAD"), script]));
    }
    let mut sha = sha1_hex(script.as_bytes()).into_bytes();
    match g.below(20) {
        0 => sha.make_ascii_uppercase(),
        1 => {
            sha = g.pick_str(&[
                "0000000000000000000000000000000000000000",
                "abc",
                "",
                "ffffffffffffffffffffffffffffffffffffffff",
            ])
        }
        _ => {}
    }
    let name = g.name(name);
    ops.push(Op::wrapping(eval_args(name, &sha, key.as_deref(), &op.args), &op));
    ops
}

fn evalsha(g: &mut Gen) -> Vec<Op> {
    by_sha(g, "EVALSHA")
}

fn evalsha_ro(g: &mut Gen) -> Vec<Op> {
    by_sha(g, "EVALSHA_RO")
}

/// A random Lua value: numbers (truncated to integers), booleans (true 1, false nil), strings,
/// nested tables (an array ends at its first nil), error and status tables, doubles.
fn lua_value(g: &mut Gen, depth: u32) -> String {
    match g.below(if depth < 3 { 13 } else { 8 }) {
        0 | 1 => g.range(-1000, 1000).to_string(),
        2 => g
            .pick(&[
                "1.5",
                "-1.5",
                "3.99",
                "-3.99",
                "0.5",
                "-0.5",
                "2.5e3",
                "1e-3",
                "0.1",
                "123456.789",
                "10/4",
                "-7/2",
                "10%3",
            ])
            .to_string(),
        3 => g.pick(&["2^53", "-2^53", "2^62", "-2^62", "9007199254740993", "1e15", "-0.0", "0"]).to_string(),
        4 => g.pick(&["true", "false"]).to_string(),
        5 => {
            g.pick(&["'x'", "''", "'hello world'", "'a\\0b'", "'123'", "'1.5'", "tostring(1.5)", "'\\255'"]).to_string()
        }
        6 => "nil".to_string(),
        7 => g
            .pick(&[
                "{err='ERR custom'}",
                "{err='MYERR spaced out'}",
                "{err=''}",
                "{ok='FINE'}",
                "{ok=''}",
                "redis.error_reply('ERR made')",
                "redis.error_reply('NOPREFIX')",
                "redis.status_reply('QUEUED')",
                "{err=1}",
                "{ok=true}",
            ])
            .to_string(),
        8 => g.pick(&["{double=1.5}", "{double=0.1}", "{double=-3}", "{double=1e300}", "{double='x'}"]).to_string(),
        9 => g.pick(&["{map={f='v'}}", "{set={m=true}}", "{map={}}", "{set={}}"]).to_string(),
        _ => {
            let items: Vec<String> = (0..g.range(0, 4)).map(|_| lua_value(g, depth + 1)).collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

fn literal_script(g: &mut Gen) -> String {
    let value = lua_value(g, 0);
    if g.chance(0.2) {
        format!("redis.setresp(3) return {value}")
    } else {
        format!("return {value}")
    }
}

fn eval_literal(g: &mut Gen) -> Vec<Op> {
    let script = literal_script(g);
    vec![Op::new(args![g.name("EVAL"), script, "0"])]
}

/// redis.error_reply / status_reply and the equivalent tables, with ARGV's text.
fn eval_helpers(g: &mut Gen) -> Vec<Op> {
    let script = g.pick(&[
        "return redis.error_reply(ARGV[1])",
        "return redis.status_reply(ARGV[1])",
        "return {err=ARGV[1]}",
        "return {ok=ARGV[1]}",
        "return {redis.error_reply(ARGV[1]), redis.status_reply(ARGV[1])}",
        "return redis.pcall('INCR', ARGV[1])",
        "local e = redis.pcall('NOSUCHCOMMAND') return {e, type(e)}",
        "return redis.sha1hex(ARGV[1])",
        "return {ARGV[1], #ARGV, #KEYS}",
    ]);
    let text = g.pick_str(&["ERR x", "MYERR custom", "x", "", "OK", "-ERR dash", "a\r\nb", "WRONGTYPE w"]);
    vec![Op::new(args![g.name("EVAL"), script, "0", text])]
}

/// Script errors: compile and run-time errors, bad calls, bad numkeys.
fn eval_errors(g: &mut Gen) -> Vec<Op> {
    let script = g.pick(&[
        "return (",
        "error('boom')",
        "error({err='MY custom'})",
        "error()",
        "return redis.call()",
        "return redis.call('GET')",
        "return redis.call('NOSUCHCOMMAND')",
        "return redis.pcall('GET')",
        "local t = {} t.x.y = 1",
        "return redis.call('EVAL', 'return 1', 0)",
        "return redis.call('MULTI')",
        "return redis.call(1)",
        "return redis.call('SET', 'k0', {})",
        "return redis.call('SET', 'k0', 1.5)",
        "return redis.call('SET', 'k0', true)",
        "return redis.call('SET', 'k0', 10/3)",
        "x = 1",
        "return undefined_global",
        "return redis.setresp(4)",
        "redis.log(redis.LOG_WARNING) return 1",
        "return redis.error_reply()",
        "return redis.status_reply({})",
        "return redis.sha1hex()",
        "return",
    ]);
    let numkeys = g.pick_str(&["0", "0", "0", "1", "-1", "abc", "3", "2147483648"]);
    let mut a = args![g.name("EVAL"), script, numkeys];
    for _ in 0..g.range(0, 2) {
        a.push(g.key());
    }
    vec![Op::new(a)]
}

fn script_load(g: &mut Gen) -> Vec<Op> {
    let script = if g.chance(0.7) { g.pick(PLAIN).to_string() } else { literal_script(g) };
    let mut a = args![g.name("SCRIPT"), g.kw("LOAD"), script];
    if g.chance(0.05) {
        a.pop();
    }
    vec![Op::new(a)]
}

fn script_exists(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("SCRIPT"), g.kw("EXISTS")];
    for _ in 0..g.range(0, 4) {
        let sha = match g.below(4) {
            0 => sha1_hex(g.pick(WRAPPED).as_bytes()),
            1 => "0000000000000000000000000000000000000000".to_string(),
            _ => sha1_hex(g.pick(PLAIN).as_bytes()),
        };
        a.push(sha.into_bytes());
    }
    vec![Op::new(a)]
}

fn script_flush(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("SCRIPT"), g.kw("FLUSH")];
    match g.below(5) {
        0 => a.push(g.kw("ASYNC")),
        1 => a.push(g.kw("SYNC")),
        2 => a.push(g.pick_str(&["FOO", "LAZY"])),
        _ => {}
    }
    vec![Op::new(a)]
}

fn function_load(g: &mut Gen) -> Vec<Op> {
    let code = if g.chance(0.75) { g.pick(LIBRARIES).1 } else { g.pick(BAD_LIBRARIES) };
    let mut a = args![g.name("FUNCTION"), g.kw("LOAD")];
    if g.chance(0.5) {
        a.push(g.kw("REPLACE"));
    }
    a.push(code.as_bytes().to_vec());
    vec![Op::new(a)]
}

/// `FCALL{,_RO} function 0 command...`: the wrapping function only for commands compared
/// exactly, as the wrapped EVAL scripts.
fn fcall_named(g: &mut Gen, name: &str) -> Vec<Op> {
    let op = g.inner_ops().swap_remove(0);
    let function = if matches!(op.check, Check::Exact) && g.chance(0.3) {
        "fcall_wrap"
    } else {
        g.pick(&["fcall_call", "fcall_pcall", "fcall_call", "fcall_pcall", "nosuchfunction"])
    };
    let mut a = args![g.name(name), function, "0"];
    a.extend(op.args.iter().cloned());
    vec![Op::wrapping(a, &op)]
}

fn fcall(g: &mut Gen) -> Vec<Op> {
    fcall_named(g, "FCALL")
}

fn fcall_ro(g: &mut Gen) -> Vec<Op> {
    fcall_named(g, "FCALL_RO")
}

fn library_name(g: &mut Gen) -> Vec<u8> {
    g.pick_str(&["dcall", "dpcall", "dwrap", "dbad", "nosuch"])
}

fn function_list(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("FUNCTION"), g.kw("LIST"), g.kw("LIBRARYNAME"), library_name(g)];
    if g.chance(0.5) {
        a.push(g.kw("WITHCODE"));
    }
    vec![Op::new(a)]
}

fn function_delete(g: &mut Gen) -> Vec<Op> {
    vec![Op::new(args![g.name("FUNCTION"), g.kw("DELETE"), library_name(g)])]
}

fn function_flush(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("FUNCTION"), g.kw("FLUSH")];
    match g.below(4) {
        0 => a.push(g.kw("ASYNC")),
        1 => a.push(g.kw("SYNC")),
        _ => {}
    }
    vec![Op::new(a)]
}
