// rate-limiter-flexible's RateLimiterRedis (with ioredis) unchanged against a live StayKV:
// consume within the limit, rejection past it with msBeforeNext, the reset after the window,
// penalty/reward/get/delete/block, and atomicity under concurrent consumers. Its consume is a
// Lua script (SET NX EX + INCRBY + PTTL) that ioredis sends with EVALSHA.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import { startServer, ioredis, requireSupport, sleep } from "./lib/server.mjs";

// The script's commands, and what the limiter sends outside it.
const COMMANDS = ["EVALSHA", "EVAL", "SET", "INCRBY", "PTTL", "EXPIRE", "GET", "DEL", "MULTI", "EXEC"];
const TIMEOUT = 30_000;

let server;
let client;

before(async () => {
  server = await startServer();
  client = ioredis(server);
});

after(async () => {
  client?.disconnect();
  await server?.stop();
});

async function limiter(opts) {
  await requireSupport(server, "rate-limiter-flexible", COMMANDS);
  return new RateLimiterRedis({ storeClient: client, keyPrefix: `rlflx-${randomUUID()}`, ...opts });
}

/** consume() that resolves to { ok, res } instead of rejecting on the limit (errors still throw). */
async function tryConsume(rl, key, points = 1) {
  try {
    return { ok: true, res: await rl.consume(key, points) };
  } catch (res) {
    if (res instanceof RateLimiterRes) return { ok: false, res };
    throw res;
  }
}

test("the server has what RateLimiterRedis calls", { timeout: TIMEOUT }, async () => {
  await requireSupport(server, "rate-limiter-flexible", COMMANDS);
});

test("consume within the limit, rejected past it with msBeforeNext, allowed again after the window", { timeout: TIMEOUT }, async () => {
  const POINTS = 5;
  const DURATION = 2; // seconds
  const rl = await limiter({ points: POINTS, duration: DURATION });
  const key = "user:42";
  const t0 = Date.now();
  for (let i = 1; i <= POINTS; i++) {
    const { ok, res } = await tryConsume(rl, key);
    assert.ok(ok, `consume ${i} of ${POINTS} was rejected`);
    assert.equal(res.remainingPoints, POINTS - i);
    assert.equal(res.consumedPoints, i);
    assert.equal(res.isFirstInDuration, i === 1);
    assert.ok(res.msBeforeNext > 0 && res.msBeforeNext <= DURATION * 1000, `msBeforeNext ${res.msBeforeNext}`);
  }
  const rejected = await tryConsume(rl, key);
  assert.equal(rejected.ok, false, "the consume past the limit was allowed");
  assert.equal(rejected.res.remainingPoints, 0);
  assert.equal(rejected.res.consumedPoints, POINTS + 1);
  const elapsed = Date.now() - t0;
  assert.ok(
    rejected.res.msBeforeNext > 0 && rejected.res.msBeforeNext <= DURATION * 1000 - elapsed + 50,
    `msBeforeNext ${rejected.res.msBeforeNext} after ${elapsed} ms of a ${DURATION} s window`,
  );
  // The key lives on the server with the window as its TTL.
  const stored = `${rl.keyPrefix}:${key}`;
  assert.equal(await client.get(stored), String(POINTS + 1));
  const pttl = await client.pttl(stored);
  assert.ok(pttl > 0 && pttl <= DURATION * 1000, `PTTL ${pttl}`);
  // Another key has its own budget.
  assert.equal((await tryConsume(rl, "user:43")).res.remainingPoints, POINTS - 1);
  // Still rejected just before the reset; allowed again once msBeforeNext has passed.
  await sleep(Math.max(0, rejected.res.msBeforeNext - 300));
  assert.equal((await tryConsume(rl, key)).ok, false, "allowed before the window ended");
  const left = (await rl.get(key)).msBeforeNext;
  await sleep(left + 100);
  const again = await tryConsume(rl, key);
  assert.ok(again.ok, "still rejected after the window");
  assert.equal(again.res.remainingPoints, POINTS - 1);
  assert.equal(again.res.isFirstInDuration, true);
});

test("consume of several points, penalty, reward, get, delete", { timeout: TIMEOUT }, async () => {
  const rl = await limiter({ points: 10, duration: 60 });
  const key = "ip:10.0.0.1";
  assert.equal(await rl.get(key), null);
  assert.equal((await tryConsume(rl, key, 4)).res.remainingPoints, 6);
  assert.equal((await rl.penalty(key, 3)).remainingPoints, 3);
  assert.equal((await rl.reward(key, 2)).remainingPoints, 5);
  const got = await rl.get(key);
  assert.equal(got.consumedPoints, 5);
  assert.ok(got.msBeforeNext > 55_000 && got.msBeforeNext <= 60_000, `msBeforeNext ${got.msBeforeNext}`);
  const tooMany = await tryConsume(rl, key, 6);
  assert.equal(tooMany.ok, false);
  assert.equal(tooMany.res.consumedPoints, 11);
  assert.equal(await rl.delete(key), true);
  assert.equal(await rl.get(key), null);
  assert.equal((await tryConsume(rl, key, 10)).ok, true);
});

test("blockDuration keeps a key blocked past its window; block() blocks at once", { timeout: TIMEOUT }, async () => {
  const rl = await limiter({ points: 2, duration: 1, blockDuration: 3 });
  const key = "login:alice";
  assert.equal((await tryConsume(rl, key)).ok, true);
  assert.equal((await tryConsume(rl, key)).ok, true);
  const blocked = await tryConsume(rl, key);
  assert.equal(blocked.ok, false);
  assert.ok(blocked.res.msBeforeNext > 2000 && blocked.res.msBeforeNext <= 3000, `msBeforeNext ${blocked.res.msBeforeNext}`);
  await sleep(1300); // the 1 s window is over, the 3 s block is not
  assert.equal((await tryConsume(rl, key)).ok, false, "allowed while blocked");
  const res = await rl.block("login:bob", 5);
  assert.ok(res.msBeforeNext > 4000 && res.msBeforeNext <= 5000);
  assert.equal((await tryConsume(rl, "login:bob")).ok, false);
});

test("concurrent consumers: exactly the limit is allowed", { timeout: TIMEOUT }, async () => {
  const rl = await limiter({ points: 25, duration: 30 });
  const clients = Array.from({ length: 4 }, () => ioredis(server));
  try {
    const limiters = clients.map((c) => new RateLimiterRedis({ storeClient: c, keyPrefix: rl.keyPrefix, points: 25, duration: 30 }));
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => tryConsume(limiters[i % limiters.length], "shared")),
    );
    assert.equal(results.filter((r) => r.ok).length, 25);
    assert.deepEqual(
      results.filter((r) => r.ok).map((r) => r.res.consumedPoints).sort((a, b) => a - b),
      Array.from({ length: 25 }, (_, i) => i + 1),
    );
    assert.equal((await rl.get("shared")).consumedPoints, 100);
  } finally {
    for (const c of clients) c.disconnect();
  }
});
