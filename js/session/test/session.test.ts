// Runs the session suite against live servers:
//   StayKV over ioredis, node-redis and @upstash/redis (HTTP API), and redis-server over ioredis.
import { after } from 'node:test';

import { Redis as UpstashRedis } from '@upstash/redis';
import { Redis as IORedis } from 'ioredis';
import { createClient } from 'redis';

import { ioredisAdapter, nodeRedisAdapter, upstashAdapter } from '../src/index.js';
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
