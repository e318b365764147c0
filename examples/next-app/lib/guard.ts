// The middleware (Next 15, edge runtime) / proxy (Next 16, Node runtime) logic: check the
// session over StayKV's HTTP API with @upstash/redis — fetch only, no TCP — and send
// logged-out visitors to /login.
import { createSessionStore, upstashAdapter } from '@staykv/session';
import { sessionMiddleware } from '@staykv/session/next/middleware';
import { Redis } from '@upstash/redis';

import { cookieName, env, sessionConfig, type SessionData } from './config';

let guardFn: ((request: Request) => Promise<Response | undefined>) | undefined;

export function guard(request: Request): Promise<Response | undefined> {
  guardFn ??= sessionMiddleware(
    createSessionStore<SessionData>({
      // The read-only token: a token that can write can plant sessions. One retry: a store
      // that is down answers 503 at once rather than after the client's five.
      adapter: upstashAdapter(
        new Redis({ url: env.httpUrl(), token: env.httpReadonlyToken(), enableTelemetry: false, retry: { retries: 1 } }),
      ),
      ...sessionConfig,
    }),
    { cookieName, loginPath: '/login' },
  );
  return guardFn(request);
}
