import { commandArgs, toError, type ScoreBound, type SessionAdapter, type StoreCommand } from './types.js';

/** The part of a `redis` (node-redis v4/v5) client the adapter uses. */
export interface NodeRedisLike {
  sendCommand(args: string[]): Promise<unknown>;
  multi(): NodeRedisMultiLike;
}
export interface NodeRedisMultiLike {
  addCommand(args: string[]): unknown;
  exec(): Promise<unknown[]>;
}

/**
 * Adapter over a connected `redis` (node-redis v4 or v5) client. TCP/RESP: Node.js runtime
 * only.
 *
 * ```ts
 * import { createClient } from 'redis';
 * const client = await createClient({ url: process.env.STAYKV_URL }).connect();
 * const adapter = nodeRedisAdapter(client);
 * ```
 */
export function nodeRedisAdapter(client: NodeRedisLike): SessionAdapter {
  return {
    name: 'node-redis',
    get: (key) => client.sendCommand(['GET', key]),
    async mget(keys) {
      if (keys.length === 0) return [];
      return (await client.sendCommand(['MGET', ...keys])) as unknown[];
    },
    async zrangebyscore(key: string, min: ScoreBound, max: ScoreBound) {
      const r = (await client.sendCommand(['ZRANGEBYSCORE', key, String(min), String(max)])) as unknown[];
      return r.map(String);
    },
    async multi(commands: StoreCommand[]) {
      const m = client.multi();
      for (const c of commands) m.addCommand(commandArgs(c));
      try {
        return await m.exec();
      } catch (e) {
        // node-redis throws MultiErrorReply when a command inside EXEC failed; its
        // `replies` holds every reply, with ErrorReply (an Error) at the failed positions.
        const replies = (e as { replies?: unknown }).replies;
        if (Array.isArray(replies) && replies.length === commands.length) {
          return replies as unknown[];
        }
        throw toError(e);
      }
    },
  };
}
