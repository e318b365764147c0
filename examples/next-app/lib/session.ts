// Node-side session access: StayKV over RESP with ioredis. Imported by server components,
// server actions and route handlers only.
import { createSessionStore, ioredisAdapter, SessionStoreError } from '@staykv/session';
import { createNextSessions, storeUnavailableResponse } from '@staykv/session/next';
import { Redis } from 'ioredis';

import { cookieName, env, sessionConfig, type SessionData } from './config';

const globalForRedis = globalThis as unknown as { staykvRedis?: Redis };

/** One connection per server process (reused across requests and hot reloads). */
export function redis(): Redis {
  globalForRedis.staykvRedis ??= new Redis(env.redisUrl(), { maxRetriesPerRequest: 3 });
  return globalForRedis.staykvRedis;
}

export const store = createSessionStore<SessionData>({ adapter: ioredisAdapter(lazyClient()), ...sessionConfig });

export const sessions = createNextSessions(store, { cookieName });

/** Defers connecting until the first command (so `next build` needs no StayKV). */
function lazyClient() {
  return {
    call: (command: string, ...args: string[]) => redis().call(command, ...args),
    multi: (commands: string[][]) => redis().multi(commands),
  };
}

/**
 * A route handler's answer when the session store cannot be reached: the middleware's 503.
 * Whether the session exists is unknown then, so the request is treated neither as signed
 * in nor as signed out. Any other error is thrown on.
 */
export function storeUnavailable(error: unknown): Response {
  if (!(error instanceof SessionStoreError)) throw error;
  return storeUnavailableResponse();
}
