import { commandArgs, toError, type ScoreBound, type SessionAdapter, type StoreCommand } from './types.js';

/**
 * The part of an `ioredis` client the adapter uses. A `Redis` instance: not a `Cluster` one,
 * whose transactions cannot span a session's keys and its user's index (different slots).
 */
export interface IORedisLike {
  call(command: string, ...args: string[]): Promise<unknown>;
  multi(commands: string[][]): { exec(): Promise<[Error | null, unknown][] | null> };
}

/**
 * Adapter over an `ioredis` client (v5+). TCP/RESP: Node.js runtime only.
 *
 * ```ts
 * import Redis from 'ioredis';
 * const adapter = ioredisAdapter(new Redis(process.env.STAYKV_URL));
 * ```
 */
export function ioredisAdapter(client: IORedisLike): SessionAdapter {
  return {
    name: 'ioredis',
    get: (key) => client.call('GET', key),
    async mget(keys) {
      if (keys.length === 0) return [];
      return (await client.call('MGET', ...keys)) as unknown[];
    },
    async zrangebyscore(key: string, min: ScoreBound, max: ScoreBound) {
      const r = (await client.call('ZRANGEBYSCORE', key, String(min), String(max))) as unknown[];
      return r.map(String);
    },
    async multi(commands: StoreCommand[]) {
      // ioredis takes lowercase command names as method names.
      const queued = commands.map((c) => {
        const [name, ...args] = commandArgs(c);
        return [name!.toLowerCase(), ...args];
      });
      const replies = await client.multi(queued).exec();
      if (replies === null) throw new Error('transaction aborted');
      return replies.map(([err, value]) => (err ? toError(err) : value));
    },
  };
}
