// Runs the session suite against live servers:
//   StayKV over ioredis, node-redis and @upstash/redis (HTTP API), and redis-server over ioredis.

import { Redis as UpstashRedis } from '@upstash/redis';
import { Redis as IORedis } from 'ioredis';
import { createClient } from 'redis';

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import { createSessionStore, ioredisAdapter, nodeRedisAdapter, SessionStoreError, upstashAdapter } from '../src/index.js';
import { sessionMiddleware } from '../src/next/middleware.js';
import { startRedisServer, startStayKV, type ServerHandle } from './harness.js';
import { defineSessionSuite } from './suite.js';

const staykv = await startStayKV();
const redis = await startRedisServer();
const servers: ServerHandle[] = [staykv, redis];
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

const ioredisFor = (port: number) => new IORedis({ port, host: '127.0.0.1', lazyConnect: false, maxRetriesPerRequest: 1 });

function ioredisTarget(port: number) {
  return async () => {
    const client = ioredisFor(port);
    return {
      adapter: ioredisAdapter(client),
      admin: client,
      close: async () => void (await client.quit()),
    };
  };
}

defineSessionSuite(`StayKV (RESP :${staykv.port}) via ioredis`, { connect: ioredisTarget(staykv.port) });

defineSessionSuite(`StayKV (RESP :${staykv.port}) via node-redis`, {
  connect: async () => {
    const client = await createClient({ url: `redis://127.0.0.1:${staykv.port}` }).connect();
    const admin = ioredisFor(staykv.port);
    return {
      adapter: nodeRedisAdapter(client),
      admin,
      close: async () => {
        await client.quit();
        await admin.quit();
      },
    };
  },
});

if (staykv.httpUnavailableReason) {
  console.log(`# SKIP @upstash/redis (HTTP) suites: ${staykv.httpUnavailableReason}`);
}
for (const automaticDeserialization of [true, false]) {
  defineSessionSuite(
    `StayKV (HTTP :${staykv.httpPort}) via @upstash/redis (automaticDeserialization: ${automaticDeserialization})`,
    {
      skip: staykv.httpUnavailableReason ?? false,
      connect: async () => {
        const client = new UpstashRedis({
          url: staykv.httpUrl,
          token: staykv.httpToken,
          automaticDeserialization,
          enableTelemetry: false,
          retry: false,
        });
        const admin = ioredisFor(staykv.port);
        return { adapter: upstashAdapter(client), admin, close: async () => void (await admin.quit()) };
      },
    },
  );
}

defineSessionSuite(`redis-server (RESP :${redis.port}) via ioredis`, { connect: ioredisTarget(redis.port) });

// A store that stops: every call fails with a SessionStoreError carrying the client's own
// error, and the middleware answers 503 instead of letting the request through or sending the
// user to sign in again.
describe('a store that cannot be reached', () => {
  it('fails calls with SessionStoreError and the middleware with 503, over RESP and HTTP', async (t) => {
    const down = await startStayKV();
    servers.push(down);
    const ioredis = new IORedis({ port: down.port, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => 50 });
    t.after(() => ioredis.disconnect());
    const adapters = [ioredisAdapter(ioredis)];
    if (!down.httpUnavailableReason) {
      const client = new UpstashRedis({ url: down.httpUrl, token: down.httpToken, enableTelemetry: false, retry: false });
      adapters.push(upstashAdapter(client));
    }
    const stores = adapters.map((adapter) => createSessionStore<{ n: number }>({ adapter }));
    const tokens = await Promise.all(stores.map(async (store) => (await store.createSession('kim', { n: 1 })).token));
    await down.stop();
    for (const [i, store] of stores.entries()) {
      const name = store.adapter.name;
      const token = tokens[i] ?? '';
      await assert.rejects(store.getSession(token), (e: unknown) => {
        assert.ok(e instanceof SessionStoreError, `${name}: ${String(e)}`);
        assert.ok(e.cause instanceof Error, `${name}: the client's error is the cause`);
        return true;
      });
      const mw = sessionMiddleware(store, { loginPath: '/login' });
      const response = await mw(new Request('https://app.example/', { headers: { cookie: `__Host-session=${token}` } }));
      assert.equal(response?.status, 503, name);
      assert.equal(response?.headers.get('retry-after'), '1', name);
      assert.equal(response?.headers.get('x-staykv-session'), 'unavailable', name);
    }
  });
});
