/**
 * The tiny store interface the session core needs. Every adapter implements it over one
 * Redis-compatible client; the core never talks to a client directly, so the same session
 * logic runs over TCP (ioredis, node-redis) and HTTP (@upstash/redis).
 *
 * Only commands every target (StayKV, Redis >= 7.0, Valkey, Upstash) understands are used,
 * and atomicity comes from MULTI/EXEC alone (no WATCH, no Lua), because WATCH is not
 * available over the Upstash REST API.
 */

/** A sorted-set score bound as Redis spells it: a number, `(n` (exclusive), `-inf`, `+inf`. */
export type ScoreBound = number | '-inf' | '+inf' | `(${number}`;

export type StoreCommand =
  | {
      cmd: 'set';
      key: string;
      value: string;
      /** Absolute expiry in Unix milliseconds (`PXAT`). */
      pxat?: number;
      /** Keep the current TTL (`KEEPTTL`); exclusive with `pxat`. */
      keepTtl?: boolean;
      /** `NX`: only create. `XX`: only overwrite an existing key (never creates). */
      condition?: 'NX' | 'XX';
    }
  | { cmd: 'del'; keys: string[] }
  | { cmd: 'pexpireat'; key: string; at: number; option?: 'NX' | 'XX' | 'GT' | 'LT' }
  | { cmd: 'rename'; key: string; to: string }
  | { cmd: 'zadd'; key: string; score: number; member: string; condition?: 'NX' | 'XX' | 'GT' }
  | { cmd: 'zrem'; key: string; members: string[] }
  | { cmd: 'zremrangebyscore'; key: string; min: ScoreBound; max: ScoreBound }
  | { cmd: 'zrangebyscore'; key: string; min: ScoreBound; max: ScoreBound };

export interface SessionAdapter {
  /** A short name for messages and tests ("ioredis", "node-redis", "upstash"). */
  readonly name: string;
  /** GET one key. The value may come back already JSON-decoded (Upstash default). */
  get(key: string): Promise<unknown>;
  /** MGET: one value (or null) per key, same order. */
  mget(keys: string[]): Promise<unknown[]>;
  /** ZRANGEBYSCORE key min max: members in score order. */
  zrangebyscore(key: string, min: ScoreBound, max: ScoreBound): Promise<string[]>;
  /**
   * MULTI, the commands, EXEC: applied atomically (no other client's command runs in
   * between). One entry per command: its reply, or an `Error` for a command that failed
   * at execution time (e.g. RENAME of a missing key). The other commands still run, as in
   * Redis. Rejects only when the transaction as a whole could not run.
   */
  multi(commands: StoreCommand[]): Promise<unknown[]>;
}

/** Redis argument vector of a command, for adapters that can send raw commands. */
export function commandArgs(c: StoreCommand): string[] {
  switch (c.cmd) {
    case 'set': {
      const args = ['SET', c.key, c.value];
      if (c.pxat !== undefined) args.push('PXAT', String(Math.floor(c.pxat)));
      if (c.keepTtl) args.push('KEEPTTL');
      if (c.condition) args.push(c.condition);
      return args;
    }
    case 'del':
      return ['DEL', ...c.keys];
    case 'pexpireat': {
      const args = ['PEXPIREAT', c.key, String(Math.floor(c.at))];
      if (c.option) args.push(c.option);
      return args;
    }
    case 'rename':
      return ['RENAME', c.key, c.to];
    case 'zadd': {
      const args = ['ZADD', c.key];
      if (c.condition) args.push(c.condition);
      args.push(String(c.score), c.member);
      return args;
    }
    case 'zrem':
      return ['ZREM', c.key, ...c.members];
    case 'zremrangebyscore':
      return ['ZREMRANGEBYSCORE', c.key, String(c.min), String(c.max)];
    case 'zrangebyscore':
      return ['ZRANGEBYSCORE', c.key, String(c.min), String(c.max)];
  }
}

export function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
