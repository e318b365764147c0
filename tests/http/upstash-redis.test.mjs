// @upstash/redis with its default settings (auto-pipelining, base64 responses,
// read-your-writes sync tokens) against a live staykv.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { Redis } from "@upstash/redis";
import { startServer, raw, commandsPresent, skipUnless } from "./lib/server.mjs";

process.env.UPSTASH_DISABLE_TELEMETRY = "1";

// Top-level await: the commands the server has must be known before tests are declared.
const server = await startServer();
const redis = new Redis({ url: server.url, token: server.token }); // defaults
// Defaults, but values are not parsed as JSON: strings come back byte-exact.
const exact = new Redis({ url: server.url, token: server.token, automaticDeserialization: false });
const present = await commandsPresent(server, [
  "hset", "hget", "hgetall", "hincrby", "hdel", "sadd", "smembers", "sismember", "srem", "scard",
  "zadd", "zrange", "zscore", "zincrby", "zrem", "zcard", "lpush", "rpush", "lrange", "lpop", "llen", "scan",
]);

after(async () => {
  await server.stop();
});

test("session flow: set with ex, get, ttl, del", async () => {
  const key = `session:${randomUUID()}`;
  const session = { userId: 42, name: "Zoë", roles: ["admin"], csrf: randomUUID(), createdAt: Date.now() };
  assert.equal(await redis.set(key, JSON.stringify(session), { ex: 604800 }), "OK");
  assert.deepEqual(await redis.get(key), session);
  const ttl = await redis.ttl(key);
  assert.ok(ttl > 604790 && ttl <= 604800, `ttl ${ttl}`);
  assert.equal(await redis.del(key), 1);
  assert.equal(await redis.get(key), null);
  assert.equal(await redis.ttl(key), -2);
  // Objects are serialized by the client itself.
  assert.equal(await redis.set(key, session, { ex: 60 }), "OK");
  assert.deepEqual(await redis.get(key), session);
});

test("values come back byte-exact", async () => {
  const values = [
    "plain", "", "héllo wörld ✓ — 😀 𝄞", "中文字符", '{"json":true,"n":[1,2,3],"s":"ä"}', "123", "007", "-0",
    "1e3", "3.14", " 42 ", "true", "null", "OK", "line\nbreak\ttab\"quote\\", "x".repeat(100_000),
  ];
  for (const [i, value] of values.entries()) {
    assert.equal(await exact.set(`exact:${i}`, value), "OK");
    assert.equal(await exact.get(`exact:${i}`), value, JSON.stringify(value.slice(0, 40)));
  }
  const keys = values.map((_, i) => `exact:${i}`);
  assert.deepEqual(await exact.mget(...keys), values);
  // With default deserialization, JSON-looking values parse as the client documents.
  await redis.set("num-like", "123");
  assert.equal(await redis.get("num-like"), 123);
  await redis.set("zero-led", "007");
  assert.equal(await redis.get("zero-led"), "007");
  await redis.set("ключ:😀", "значение");
  assert.equal(await redis.get("ключ:😀"), "значение");
});

test("strings and keys", async () => {
  await redis.set("n", 41);
  assert.equal(await redis.incr("n"), 42);
  assert.equal(await redis.incrby("n", 8), 50);
  assert.equal(await redis.decr("n"), 49);
  assert.equal(await redis.incrbyfloat("n", 0.5), 49.5);
  assert.equal(await redis.append("s", "ab"), 2);
  assert.equal(await redis.append("s", "cd"), 4);
  assert.equal(await redis.strlen("s"), 4);
  assert.equal(await redis.getrange("s", 1, 2), "bc");
  assert.equal(await redis.setnx("s", "zz"), 0);
  assert.equal(await redis.mset({ m1: "a", m2: "b" }), "OK");
  assert.deepEqual(await redis.mget("m1", "m2", "missing"), ["a", "b", null]);
  assert.equal(await redis.exists("m1", "m2", "missing"), 2);
  assert.equal(await redis.type("m1"), "string");
  assert.equal(await redis.expire("m1", 100), 1);
  assert.ok((await redis.pttl("m1")) > 90_000);
  assert.equal(await redis.persist("m1"), 1);
  assert.equal(await redis.ttl("m1"), -1);
  assert.equal(await redis.getdel("m2"), "b");
  assert.equal(await redis.getex("m1", { ex: 30 }), "a");
  assert.ok((await redis.ttl("m1")) > 0);
  assert.equal(await redis.set("nx", "1", { nx: true }), "OK");
  assert.equal(await redis.set("nx", "2", { nx: true }), null);
  assert.equal(await redis.set("nx", "3", { xx: true, get: true }), 1);
  assert.equal(await redis.ping(), "PONG");
  assert.equal(await redis.echo("é"), "é");
  await assert.rejects(redis.incr("s"), /ERR value is not an integer or out of range/);
});

test("hashes", { skip: skipUnless(present, "hset", "hget", "hgetall", "hincrby", "hdel") }, async () => {
  assert.equal(await redis.hset("h", { name: "Ada", visits: 1, meta: { a: 1 } }), 3);
  assert.equal(await redis.hget("h", "name"), "Ada");
  assert.equal(await redis.hincrby("h", "visits", 2), 3);
  assert.deepEqual(await redis.hgetall("h"), { name: "Ada", visits: 3, meta: { a: 1 } });
  assert.equal(await redis.hdel("h", "meta"), 1);
  assert.equal(await redis.hget("h", "meta"), null);
  assert.equal(await redis.hgetall("missing-hash"), null);
  await assert.rejects(redis.hget("s", "f"), /WRONGTYPE/);
});

test("sets", { skip: skipUnless(present, "sadd", "smembers", "sismember", "srem", "scard") }, async () => {
  assert.equal(await redis.sadd("set", "a", "b", "c"), 3);
  assert.equal(await redis.sadd("set", "a"), 0);
  assert.deepEqual((await redis.smembers("set")).sort(), ["a", "b", "c"]);
  assert.equal(await redis.sismember("set", "b"), 1);
  assert.equal(await redis.srem("set", "b"), 1);
  assert.equal(await redis.scard("set"), 2);
});

test("sorted sets", { skip: skipUnless(present, "zadd", "zrange", "zscore", "zincrby", "zrem", "zcard") }, async () => {
  assert.equal(await redis.zadd("z", { score: 1, member: "one" }, { score: 2.5, member: "two" }), 2);
  assert.equal(await redis.zscore("z", "two"), 2.5);
  assert.equal(await redis.zincrby("z", 10, "one"), 11);
  assert.deepEqual(await redis.zrange("z", 0, -1), ["two", "one"]);
  assert.deepEqual(await redis.zrange("z", 0, -1, { withScores: true }), ["two", 2.5, "one", 11]);
  assert.equal(await redis.zrem("z", "two"), 1);
  assert.equal(await redis.zcard("z"), 1);
  // Fractional scores come back as the numbers the SDK declares, not as strings: the HTTP
  // API prints doubles in their shortest form (RESP2's %.17g would give "0.10000000000000001").
  assert.equal(await redis.zadd("z", { score: 0.1, member: "tenth" }), 1);
  assert.equal(await redis.zscore("z", "tenth"), 0.1);
  assert.equal(await redis.zincrby("z", 0.2, "tenth"), 0.30000000000000004);
  assert.deepEqual(await redis.zrange("z", 0, 0, { withScores: true }), ["tenth", 0.30000000000000004]);
});

test("lists", { skip: skipUnless(present, "lpush", "rpush", "lrange", "lpop", "llen") }, async () => {
  assert.equal(await redis.rpush("l", "b", "c"), 2);
  assert.equal(await redis.lpush("l", "a"), 3);
  assert.deepEqual(await redis.lrange("l", 0, -1), ["a", "b", "c"]);
  assert.equal(await redis.lpop("l"), "a");
  assert.equal(await redis.llen("l"), 2);
});

test("auto-pipelining batches concurrent commands", async () => {
  const before = redis.pipelineCounter;
  const keys = Array.from({ length: 50 }, (_, i) => `auto:${i}`);
  await Promise.all(keys.map((k, i) => redis.set(k, `v${i}`)));
  const values = await Promise.all(keys.map((k) => redis.get(k)));
  assert.deepEqual(values, keys.map((_, i) => `v${i}`));
  const pipelines = redis.pipelineCounter - before;
  assert.ok(pipelines >= 1 && pipelines <= 4, `${pipelines} pipelines for 100 commands`);
  // One failing command in a batch fails alone.
  const results = await Promise.allSettled([redis.set("ap", "x"), redis.incr("ap"), redis.get("ap")]);
  assert.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
  assert.match(results[1].reason.message, /ERR value is not an integer/);
});

test("explicit pipeline, with an error inside", async () => {
  const p = redis.pipeline();
  p.set("pk", "text").incr("pk").get("pk").del("pk");
  await assert.rejects(p.exec(), /Command 2 \[ incr \] failed: ERR value is not an integer/);
  const q = redis.pipeline();
  q.set("pk", "text").incr("pk").get("pk");
  const results = await q.exec({ keepErrors: true });
  assert.equal(results[0].result, "OK");
  assert.match(results[1].error, /ERR value is not an integer/);
  assert.equal(results[2].result, "text");
  const many = redis.pipeline();
  for (let i = 0; i < 1000; i++) many.incr("pipeline-counter");
  const counts = await many.exec();
  assert.equal(counts.length, 1000);
  assert.equal(counts[999], 1000);
});

test("multi-exec is atomic; errors inside come back per command", async () => {
  const tx = redis.multi();
  tx.set("tx:a", "1").incr("tx:a").get("tx:a");
  assert.deepEqual(await tx.exec(), ["OK", 2, 2]);
  const bad = redis.multi();
  bad.set("tx:b", "text").incr("tx:b").get("tx:b");
  await assert.rejects(bad.exec(), /Command 2 \[ incr \] failed: ERR value is not an integer/);
  const kept = redis.multi();
  kept.set("tx:c", "text").incr("tx:c").get("tx:c");
  const results = await kept.exec({ keepErrors: true });
  assert.equal(results[0].result, "OK");
  assert.match(results[1].error, /ERR value is not an integer/);
  assert.equal(results[2].result, "text");
  // A command refused while queuing discards everything (one error for the request).
  const ro = new Redis({ url: server.url, token: server.readonlyToken });
  const refused = ro.multi();
  refused.get("tx:a").set("tx:a", "changed");
  await assert.rejects(refused.exec(), /EXECABORT .*NOPERM/);
  assert.equal(await redis.get("tx:a"), 2);
});

test("read-only token reads but cannot write", async () => {
  await redis.set("ro:key", "visible");
  const ro = new Redis({ url: server.url, token: server.readonlyToken });
  assert.equal(await ro.get("ro:key"), "visible");
  assert.equal(await ro.exists("ro:key"), 1);
  await assert.rejects(ro.set("ro:key", "changed"), /NOPERM this user has no permissions to run the 'set' command/);
  await assert.rejects(ro.del("ro:key"), /NOPERM/);
  await assert.rejects(ro.flushall(), /NOPERM/);
  assert.equal(await redis.get("ro:key"), "visible");
  // Read-only scripts: evalRo, and a script made read-only (EVALSHA_RO, then EVAL_RO).
  assert.equal(await ro.evalRo("return redis.call('get', KEYS[1])", ["ro:key"], []), "visible");
  const peek = ro.createScript("return redis.call('strlen', KEYS[1])", { readonly: true });
  assert.equal(await peek.exec(["ro:key"], []), 7);
  await assert.rejects(ro.evalRo("return redis.call('del', KEYS[1])", ["ro:key"], []), /read-only scripts/);
  assert.equal(await redis.get("ro:key"), "visible");
});

test("xread with blockMS waits for the entry another client adds", async () => {
  const key = `stream:${randomUUID()}`;
  const writer = new Redis({ url: server.url, token: server.token, enableAutoPipelining: false });
  const started = Date.now();
  const reading = redis.xread(key, "$", { blockMS: 10_000 });
  await new Promise((ok) => setTimeout(ok, 300));
  const id = await writer.xadd(key, "*", { field: "value" });
  const [[stream, entries]] = await reading;
  assert.equal(stream, key);
  assert.deepEqual(entries, [[id, ["field", "value"]]]);
  const waited = Date.now() - started;
  assert.ok(waited >= 300 && waited < 10_000, `answered after ${waited} ms`);
  // Nothing added: null once the timeout passes.
  assert.equal(await redis.xread(key, "$", { blockMS: 200 }), null);
});

test("a bad or missing token is refused", async () => {
  const bad = new Redis({ url: server.url, token: "not-the-token" });
  await assert.rejects(bad.get("k"), /WRONGPASS invalid auth token/);
  await assert.rejects(bad.set("k", "v"), /WRONGPASS/);
  const direct = await raw(server, ["GET", "k"], { token: "" });
  assert.equal(direct.status, 401);
  assert.match(direct.body.error, /^WRONGPASS/);
});

test("read-your-writes sync token", async () => {
  await redis.set("ryw", "1");
  const token = redis.readYourWritesSyncToken;
  assert.match(token, /^\d+$/);
  assert.ok(Number(token) > 0);
  await redis.set("ryw", "2");
  assert.ok(Number(redis.readYourWritesSyncToken) > Number(token));
  assert.equal(await redis.get("ryw"), 2);
});

test("scan", { skip: skipUnless(present, "scan") }, async () => {
  await Promise.all(["a", "b", "c"].map((s) => redis.set(`scan:${s}`, s)));
  let cursor = "0";
  const seen = [];
  do {
    const [next, keys] = await redis.scan(cursor, { match: "scan:*", count: 100 });
    cursor = String(next);
    seen.push(...keys);
  } while (cursor !== "0");
  assert.deepEqual(seen.sort(), ["scan:a", "scan:b", "scan:c"]);
});
