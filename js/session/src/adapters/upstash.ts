import { toError, type ScoreBound, type SessionAdapter, type StoreCommand } from './types.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Method = (...args: any[]) => any;

/** The part of an `@upstash/redis` `Redis` instance the adapter uses. */
export interface UpstashRedisLike {
  get: Method;
  mget: Method;
  zrange: Method;
  multi(): UpstashPipelineLike;
}
export interface UpstashPipelineLike {
  set: Method;
  del: Method;
  pexpireat: Method;
  rename: Method;
  zadd: Method;
  zrem: Method;
  zremrangebyscore: Method;
  zrange: Method;
  exec: Method;
}

/**
 * Adapter over an `@upstash/redis` client: HTTP (`fetch`) only, so it runs in the Next.js
 * edge runtime, middleware/proxy, Cloudflare Workers and Deno. Point it at StayKV's HTTP API
 * (or at Upstash itself):
 *
 * ```ts
 * import { Redis } from '@upstash/redis';
 * const adapter = upstashAdapter(new Redis({ url: process.env.STAYKV_HTTP_URL!, token: process.env.STAYKV_HTTP_TOKEN! }));
 * ```
 *
 * Works with `automaticDeserialization` on (the default) or off: the session core accepts
 * values that the client already JSON-decoded. Transactions use `multi()`, i.e. the REST
 * API's `/multi-exec` endpoint.
 */
export function upstashAdapter(client: UpstashRedisLike): SessionAdapter {
  return {
    name: 'upstash',
    get: (key) => client.get(key),
    async mget(keys) {
      if (keys.length === 0) return [];
      return (await client.mget(...keys)) as unknown[];
    },
    async zrangebyscore(key: string, min: ScoreBound, max: ScoreBound) {
      const r = (await client.zrange(key, min, max, { byScore: true })) as unknown[];
      return r.map(String);
    },
    async multi(commands: StoreCommand[]) {
      const tx = client.multi();
      for (const c of commands) queue(tx, c);
      const replies = (await tx.exec({ keepErrors: true })) as unknown[];
      return replies.map((r) => {
        if (r && typeof r === 'object' && 'result' in r) {
          const { error, result } = r as { error?: unknown; result?: unknown };
          return error ? toError(error) : result;
        }
        return r; // clients without keepErrors return plain results (and throw on errors)
      });
    },
  };
}

function queue(tx: UpstashPipelineLike, c: StoreCommand): void {
  switch (c.cmd) {
    case 'set': {
      const opts: Record<string, unknown> = {};
      if (c.pxat !== undefined) opts.pxat = Math.floor(c.pxat);
      if (c.keepTtl) opts.keepTtl = true;
      if (c.condition === 'NX') opts.nx = true;
      if (c.condition === 'XX') opts.xx = true;
      tx.set(c.key, c.value, opts);
      return;
    }
    case 'del':
      tx.del(...c.keys);
      return;
    case 'pexpireat':
      if (c.option) tx.pexpireat(c.key, Math.floor(c.at), c.option);
      else tx.pexpireat(c.key, Math.floor(c.at));
      return;
    case 'rename':
      tx.rename(c.key, c.to);
      return;
    case 'zadd':
      if (c.condition === 'XX') tx.zadd(c.key, { xx: true }, { score: c.score, member: c.member });
      else if (c.condition === 'NX') tx.zadd(c.key, { nx: true }, { score: c.score, member: c.member });
      else if (c.condition === 'GT') tx.zadd(c.key, { gt: true }, { score: c.score, member: c.member });
      else tx.zadd(c.key, { score: c.score, member: c.member });
      return;
    case 'zrem':
      tx.zrem(c.key, ...c.members);
      return;
    case 'zremrangebyscore':
      tx.zremrangebyscore(c.key, c.min, c.max);
      return;
    case 'zrangebyscore':
      tx.zrange(c.key, c.min, c.max, { byScore: true });
      return;
  }
}
