// @vercel/kv (createClient, which turns auto-pipelining on) against a live staykv.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createClient } from "@vercel/kv";
import { startServer, commandsPresent, skipUnless } from "./lib/server.mjs";

// Top-level await: the commands the server has must be known before tests are declared.
const server = await startServer();
const kv = createClient({ url: server.url, token: server.token });
const present = await commandsPresent(server, ["hset", "hgetall", "zadd", "zrange", "sadd", "smembers", "rpush", "lrange", "scan"]);

after(async () => {
  await server.stop();
});

test("session flow: set with ex, get, ttl, del", async () => {
  const key = `session:${randomUUID()}`;
  const session = { userId: "u_1", email: "zoë@example.com", expires: Date.now() + 604800_000 };
  assert.equal(await kv.set(key, JSON.stringify(session), { ex: 604800 }), "OK");
  assert.deepEqual(await kv.get(key), session);
  const ttl = await kv.ttl(key);
  assert.ok(ttl > 604790 && ttl <= 604800, `ttl ${ttl}`);
  assert.equal(await kv.del(key), 1);
  assert.equal(await kv.get(key), null);
});

test("strings, empty and unicode values", async () => {
  for (const value of ["", "ünïcödé 😀", "a b c", '{"a":[1,"ü"]}']) {
    await kv.set("v", value);
    const back = await kv.get("v");
    assert.deepEqual(back, value.startsWith("{") ? JSON.parse(value) : value);
  }
  assert.equal(await kv.incr("counter"), 1);
  assert.deepEqual(await kv.mget("v", "nope"), [{ a: [1, "ü"] }, null]);
});

test("hashes", { skip: skipUnless(present, "hset", "hgetall") }, async () => {
  await kv.hset("user:1", { name: "Ada", logins: 3 });
  assert.deepEqual(await kv.hgetall("user:1"), { name: "Ada", logins: 3 });
});

test("sorted sets: a per-user session index", { skip: skipUnless(present, "zadd", "zrange") }, async () => {
  const now = Date.now();
  await kv.zadd("user:1:sessions", { score: now + 1000, member: "s1" }, { score: now + 2000, member: "s2" });
  assert.deepEqual(await kv.zrange("user:1:sessions", 0, -1), ["s1", "s2"]);
});

test("sets and lists", { skip: skipUnless(present, "sadd", "smembers", "rpush", "lrange") }, async () => {
  await kv.sadd("tags", "a", "b");
  assert.deepEqual((await kv.smembers("tags")).sort(), ["a", "b"]);
  await kv.rpush("queue", "x", "y");
  assert.deepEqual(await kv.lrange("queue", 0, -1), ["x", "y"]);
});

test("scanIterator", { skip: skipUnless(present, "scan") }, async () => {
  await Promise.all([1, 2, 3].map((i) => kv.set(`it:${i}`, i)));
  const keys = [];
  for await (const key of kv.scanIterator({ match: "it:*" })) keys.push(key);
  assert.deepEqual(keys.sort(), ["it:1", "it:2", "it:3"]);
});

test("pipeline and multi with an error inside", async () => {
  const p = kv.pipeline();
  p.set("p", "text").incr("p").get("p");
  const results = await p.exec({ keepErrors: true });
  assert.equal(results[0].result, "OK");
  assert.match(results[1].error, /ERR value is not an integer/);
  assert.equal(results[2].result, "text");
  const tx = kv.multi();
  tx.set("t", 1).incr("t");
  assert.deepEqual(await tx.exec(), ["OK", 2]);
});

test("read-only token and bad token", async () => {
  await kv.set("shared", "value");
  const ro = createClient({ url: server.url, token: server.readonlyToken });
  assert.equal(await ro.get("shared"), "value");
  await assert.rejects(ro.set("shared", "x"), /NOPERM/);
  const bad = createClient({ url: server.url, token: "wrong" });
  await assert.rejects(bad.get("shared"), /WRONGPASS/);
});
