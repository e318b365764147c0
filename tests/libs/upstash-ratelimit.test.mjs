// @upstash/ratelimit unchanged against StayKV's HTTP API through @upstash/redis (default
// settings: auto-pipelining, base64 responses): sliding window, token bucket and fixed window
// allow n requests, deny the next within the window, and allow again after it.
//
// Two releases run the same tests:
// - @upstash/ratelimit 2.2.0, the current one, whose scripts start with
//   `#!lua flags=allow-key-locking` (an Upstash-only shebang flag, since 2.1.0);
// - 2.0.8, the last release without that flag (plain Redis Lua scripts).
// redis-server 7.0 refuses the flag (`EVAL "#!lua flags=allow-key-locking\nreturn 1" 0` →
// `ERR Unexpected flag in script shebang: allow-key-locking`); Upstash's servers accept it.
// StayKV accepts the flag: its scripts hold every shard, more than the flag asks for.
//
// The limiter is made strict so the server does the limiting: no ephemeral (in-process)
// cache of blocked identifiers, and no timeout (by default a slow answer lets a request pass).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { Redis } from "@upstash/redis";
import { Ratelimit as Ratelimit22 } from "@upstash/ratelimit";
import { Ratelimit as Ratelimit20 } from "upstash-ratelimit-2-0";
import { startServer, requireSupport, sleep } from "./lib/server.mjs";

process.env.UPSTASH_DISABLE_TELEMETRY = "1";
const require = createRequire(import.meta.url);
const versionOf = (pkg) => require(`${pkg}/package.json`).version.replace(/^v/, "");
const RELEASES = [
  { name: `@upstash/ratelimit ${versionOf("@upstash/ratelimit")}`, Ratelimit: Ratelimit22 },
  { name: `@upstash/ratelimit ${versionOf("upstash-ratelimit-2-0")}`, Ratelimit: Ratelimit20 },
];
const COMMANDS = ["EVALSHA", "EVAL", "SCRIPT", "HMGET", "HSET", "PEXPIRE", "GET", "INCRBY", "SCAN", "DEL", "PTTL"];
const TIMEOUT = 60_000;

let server;
let redis;

before(async () => {
  server = await startServer({ http: true });
  redis = new Redis({ url: server.httpUrl, token: server.token }); // the client's defaults
});

after(async () => {
  await server?.stop();
});

function limiterOf(Ratelimit, limiter) {
  return new Ratelimit({
    redis,
    limiter,
    prefix: `rl-${randomUUID()}`,
    ephemeralCache: false,
    timeout: 0,
    analytics: false,
  });
}

/** Calls limit() `n` times in sequence; returns the responses. */
async function hits(rl, id, n) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(await rl.limit(id));
  return out;
}

/**
 * Asserts `responses` (of an identifier with its whole budget) are `allowed` successes, with
 * `remaining` counting down from limit-1, then denials with remaining 0.
 */
function assertPattern(responses, allowed, limit, what) {
  responses.forEach((r, i) => {
    const expectOk = i < allowed;
    assert.equal(r.success, expectOk, `${what}: request ${i + 1} success=${r.success}, expected ${expectOk}`);
    assert.equal(r.limit, limit, `${what}: limit of request ${i + 1}`);
    if (expectOk) assert.equal(r.remaining, limit - i - 1, `${what}: remaining after request ${i + 1}`);
    else assert.equal(r.remaining, 0, `${what}: remaining of denied request ${i + 1}`);
  });
}

test("the server has what @upstash/ratelimit calls", { timeout: TIMEOUT }, async () => {
  await requireSupport(server, "@upstash/ratelimit", COMMANDS);
});

for (const { name, Ratelimit } of RELEASES) {
  test(`${name}: sliding window allows n, denies within the window, allows again after`, { timeout: TIMEOUT }, async () => {
    await requireSupport(server, name, COMMANDS);
    const LIMIT = 5;
    const WINDOW = 2000;
    const rl = limiterOf(Ratelimit, Ratelimit.slidingWindow(LIMIT, "2 s"));
    const id = `user-${randomUUID()}`;
    // Start the burst just after a window boundary: a burst that straddles one would see the
    // requests before it weighted into the new window, and `remaining` would differ by design.
    await sleep(WINDOW - (Date.now() % WINDOW) + 50);
    const first = await hits(rl, id, LIMIT + 2);
    assertPattern(first, LIMIT, LIMIT, "first window");
    const denied = first.at(-1);
    assert.ok(denied.reset > Date.now() && denied.reset <= Date.now() + WINDOW, `reset ${denied.reset - Date.now()} ms ahead`);
    // Another identifier is independent.
    assertPattern(await hits(rl, `other-${randomUUID()}`, 1), 1, LIMIT, "another identifier");
    // The sliding window weighs the previous window: wait until the window after next
    // starts, when the requests above no longer count.
    await sleep(denied.reset + WINDOW - Date.now() + 100);
    assertPattern(await hits(rl, id, LIMIT + 1), LIMIT, LIMIT, "two windows later");
    // resetUsedTokens clears an identifier at once.
    await rl.resetUsedTokens(id);
    assert.equal((await rl.limit(id)).success, true, "denied after resetUsedTokens");
  });

  test(`${name}: token bucket allows the bucket, denies when empty, refills`, { timeout: TIMEOUT }, async () => {
    await requireSupport(server, name, COMMANDS);
    const MAX = 5;
    // 5 tokens refilled every 2 s, at most 5.
    const rl = limiterOf(Ratelimit, Ratelimit.tokenBucket(MAX, "2 s", MAX));
    const id = `user-${randomUUID()}`;
    const first = await hits(rl, id, MAX + 2);
    assertPattern(first, MAX, MAX, "full bucket");
    const denied = first.at(-1);
    assert.ok(denied.reset > Date.now() && denied.reset <= Date.now() + 2000, `reset ${denied.reset - Date.now()} ms ahead`);
    const { remaining } = await rl.getRemaining(id);
    assert.equal(remaining, 0);
    // Still empty just before the refill, full after it.
    const beforeRefill = denied.reset - Date.now() - 400;
    if (beforeRefill > 0) {
      await sleep(beforeRefill);
      assert.equal((await rl.limit(id)).success, false, "allowed before the refill");
    }
    await sleep(denied.reset - Date.now() + 100);
    assertPattern(await hits(rl, id, MAX + 1), MAX, MAX, "after the refill");
  });

  test(`${name}: fixed window allows n, denies until the window ends`, { timeout: TIMEOUT }, async () => {
    await requireSupport(server, name, COMMANDS);
    const LIMIT = 3;
    const WINDOW = 2000;
    const rl = limiterOf(Ratelimit, Ratelimit.fixedWindow(LIMIT, "2 s"));
    const id = `user-${randomUUID()}`;
    // Start the burst just after a window boundary: a burst that straddles one would start
    // counting again in the new window.
    await sleep(WINDOW - (Date.now() % WINDOW) + 50);
    const first = await hits(rl, id, LIMIT + 2);
    assertPattern(first, LIMIT, LIMIT, "first window");
    await sleep(first.at(-1).reset - Date.now() + 100);
    assertPattern(await hits(rl, id, LIMIT + 1), LIMIT, LIMIT, "next window");
  });

  test(`${name}: concurrent requests for one identifier: exactly the limit passes`, { timeout: TIMEOUT }, async () => {
    await requireSupport(server, name, COMMANDS);
    const LIMIT = 10;
    const rl = limiterOf(Ratelimit, Ratelimit.slidingWindow(LIMIT, "60 s"));
    const id = `burst-${randomUUID()}`;
    const results = await Promise.all(Array.from({ length: 30 }, () => rl.limit(id)));
    assert.equal(results.filter((r) => r.success).length, LIMIT);
  });
}
