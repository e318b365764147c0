// ioredis 6 and node-redis 5 (RESP2 and RESP3) and node-redis 4 (RESP2) against StayKV:
// GET, SET with EX, TTL, and a full SCAN of 1,000 keys that returns each key exactly once;
// and node-redis 5's client-side cache (CLIENT TRACKING) served and invalidated.
// The same tests run against redis-server when it is installed, which shows that the
// expectations are Redis's behaviour.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import Redis from 'ioredis';
import { createClient as createClient5 } from 'redis';
import { createClient as createClient4 } from 'redis4';

import { startServer, skipReason } from './server.mjs';

const KEYS = 1000;

/**
 * A uniform face over the three client libraries.
 * @typedef {{ get(k: string): Promise<string|null>, setEx(k: string, v: string, s: number): Promise<string>,
 *   set(k: string, v: string): Promise<string>, ttl(k: string): Promise<number>,
 *   scanPage(cursor: string, count: number): Promise<[string, string[]]>, scanAll(match: string): Promise<string[]>,
 *   raw(args: string[]): Promise<unknown>, pipelineSet(pairs: [string, string][]): Promise<void>, close(): Promise<void> }} Face
 */

/** @returns {Promise<Face>} */
async function ioredis(port, protocol) {
  const client = new Redis({
    host: '127.0.0.1',
    port,
    protocol,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  await client.connect();
  return {
    get: (k) => client.get(k),
    set: (k, v) => client.set(k, v),
    setEx: (k, v, s) => client.set(k, v, 'EX', s),
    ttl: (k) => client.ttl(k),
    scanPage: async (cursor, count) => client.scan(cursor, 'COUNT', count),
    scanAll: (match) =>
      new Promise((resolve, reject) => {
        const keys = [];
        client
          .scanStream({ match, count: 100 })
          .on('data', (batch) => keys.push(...batch))
          .on('end', () => resolve(keys))
          .on('error', reject);
      }),
    raw: (args) => client.call(...args),
    pipelineSet: async (pairs) => {
      const pipeline = client.pipeline();
      for (const [k, v] of pairs) pipeline.set(k, v);
      const results = await pipeline.exec();
      for (const [err, res] of results) {
        assert.equal(err, null);
        assert.equal(res, 'OK');
      }
    },
    close: async () => {
      await client.quit();
    },
  };
}

/** @returns {Promise<Face>} */
async function nodeRedis5(port, RESP) {
  const client = createClient5({ url: `redis://127.0.0.1:${port}`, RESP, socket: { reconnectStrategy: false } });
  client.on('error', () => {});
  await client.connect();
  return {
    get: (k) => client.get(k),
    set: (k, v) => client.set(k, v),
    setEx: (k, v, s) => client.set(k, v, { expiration: { type: 'EX', value: s } }),
    ttl: (k) => client.ttl(k),
    scanPage: async (cursor, count) => {
      const { cursor: next, keys } = await client.scan(cursor, { COUNT: count });
      return [String(next), keys];
    },
    scanAll: async (match) => {
      const keys = [];
      // v5 yields a batch (array) of keys per SCAN call.
      for await (const batch of client.scanIterator({ MATCH: match, COUNT: 100 })) keys.push(...batch);
      return keys;
    },
    raw: (args) => client.sendCommand(args),
    pipelineSet: async (pairs) => {
      const multi = client.multi();
      for (const [k, v] of pairs) multi.set(k, v);
      const results = await multi.execAsPipeline();
      assert.ok(results.every((r) => r === 'OK'));
    },
    close: async () => {
      await client.close();
    },
  };
}

/** @returns {Promise<Face>} */
async function nodeRedis4(port) {
  const client = createClient4({ url: `redis://127.0.0.1:${port}`, socket: { reconnectStrategy: false } });
  client.on('error', () => {});
  await client.connect();
  return {
    get: (k) => client.get(k),
    set: (k, v) => client.set(k, v),
    setEx: (k, v, s) => client.set(k, v, { EX: s }),
    ttl: (k) => client.ttl(k),
    scanPage: async (cursor, count) => {
      const { cursor: next, keys } = await client.scan(Number(cursor), { COUNT: count });
      return [String(next), keys];
    },
    scanAll: async (match) => {
      const keys = [];
      // v4 yields one key at a time.
      for await (const key of client.scanIterator({ MATCH: match, COUNT: 100 })) keys.push(key);
      return keys;
    },
    raw: (args) => client.sendCommand(args),
    pipelineSet: async (pairs) => {
      const multi = client.multi();
      for (const [k, v] of pairs) multi.set(k, v);
      const results = await multi.execAsPipeline();
      assert.ok(results.every((r) => r === 'OK'));
    },
    close: async () => {
      await client.quit();
    },
  };
}

const CLIENTS = [
  { name: 'ioredis 6', resp: 2, open: (port) => ioredis(port, 2) },
  { name: 'ioredis 6', resp: 3, open: (port) => ioredis(port, 3) },
  { name: 'node-redis 5', resp: 2, open: (port) => nodeRedis5(port, 2) },
  { name: 'node-redis 5', resp: 3, open: (port) => nodeRedis5(port, 3) },
  { name: 'node-redis 4', resp: 2, open: (port) => nodeRedis4(port) },
];

function assertEachKeyOnce(keys, expected, what) {
  const unique = new Set(keys);
  assert.equal(keys.length, unique.size, `${what}: SCAN returned duplicates`);
  assert.deepEqual([...unique].sort(), [...expected].sort(), `${what}: SCAN missed or invented keys`);
}

async function scenario(client) {
  assert.equal(await client.raw(['FLUSHALL']), 'OK');

  // The connection really speaks the protocol asked for.
  const info = String(await client.raw(['CLIENT', 'INFO']));
  const resp = Number(/\bresp=(\d)/.exec(info)?.[1]);

  assert.equal(await client.get('missing'), null);
  assert.equal(await client.setEx('session:1', 'alice', 100), 'OK');
  assert.equal(await client.get('session:1'), 'alice');
  const ttl = await client.ttl('session:1');
  assert.ok(ttl === 100 || ttl === 99, `TTL ${ttl}`);
  assert.equal(await client.set('plain', 'x'), 'OK');
  assert.equal(await client.ttl('plain'), -1);
  assert.equal(await client.ttl('missing'), -2);
  await assert.rejects(client.raw(['SET', 'k', 'v', 'EX', '0']), /invalid expire time in 'set' command/);

  const pairs = Array.from({ length: KEYS }, (_, i) => [`scan:${i}`, String(i)]);
  await client.pipelineSet(pairs);
  const expected = [...pairs.map(([k]) => k), 'session:1', 'plain'];

  // A full SCAN, page by page, over every key.
  const seen = [];
  let cursor = '0';
  let pages = 0;
  do {
    const [next, keys] = await client.scanPage(cursor, 100);
    seen.push(...keys);
    cursor = next;
    pages++;
  } while (cursor !== '0');
  assert.ok(pages > 1, 'SCAN finished in one page: COUNT ignored?');
  assertEachKeyOnce(seen, expected, 'SCAN COUNT 100');

  // The library's own iterator, with MATCH.
  assertEachKeyOnce(await client.scanAll('scan:*'), pairs.map(([k]) => k), 'scan iterator MATCH scan:*');
  assert.equal(await client.raw(['DBSIZE']), KEYS + 2);
  return resp;
}

for (const kind of ['staykv', 'redis']) {
  describe(kind, () => {
    let server = null;
    before(async () => {
      server = await startServer(kind);
    });
    after(async () => {
      await server?.stop();
    });

    for (const { name, resp, open } of CLIENTS) {
      it(`${name} over RESP${resp}: GET, SET EX, TTL, full SCAN`, async (t) => {
        if (server === null) {
          t.skip(skipReason);
          return;
        }
        const client = await open(server.port);
        try {
          const negotiated = await scenario(client);
          assert.equal(negotiated, resp, `CLIENT INFO shows resp=${negotiated}`);
        } finally {
          await client.close();
        }
      });
    }
  });
}

// Client-side caching (node-redis 5 over RESP3): the second GET is answered from the client's
// cache without reaching the server, and a write from another client invalidates it, so the
// next GET reads the new value.
for (const kind of ['staykv', 'redis']) {
  describe(`${kind}: client-side caching`, () => {
    let server = null;
    before(async () => {
      server = await startServer(kind);
    });
    after(async () => {
      await server?.stop();
    });

    it('node-redis 5 clientSideCache: cached GET, invalidated by another client', async (t) => {
      if (server === null) {
        t.skip(skipReason);
        return;
      }
      const socket = { host: '127.0.0.1', port: server.port, reconnectStrategy: false };
      const cached = createClient5({ socket, RESP: 3, clientSideCache: { ttl: 0, maxEntries: 0 } });
      const writer = createClient5({ socket });
      for (const client of [cached, writer]) {
        client.on('error', () => {});
        await client.connect();
      }
      try {
        await writer.set('csc:k', 'v1');
        const getsBefore = await serverGets(writer);
        assert.equal(await cached.get('csc:k'), 'v1');
        assert.equal(await cached.get('csc:k'), 'v1');
        assert.equal(await serverGets(writer), getsBefore + 1, 'the second GET reached the server');
        assert.equal(cached.clientSideCache.stats().hitCount, 1);

        const invalidated = new Promise((resolve) => cached.clientSideCache.once('invalidate', resolve));
        await writer.set('csc:k', 'v2');
        assert.equal(String(await invalidated), 'csc:k');
        assert.equal(await cached.get('csc:k'), 'v2');
        assert.equal(await serverGets(writer), getsBefore + 2);
      } finally {
        await cached.quit();
        await writer.quit();
      }
    });
  });
}

/** How many GETs the server has run (INFO commandstats). */
async function serverGets(client) {
  const info = await client.info('commandstats');
  const match = /cmdstat_get:calls=(\d+)/.exec(info);
  return match ? Number(match[1]) : 0;
}
