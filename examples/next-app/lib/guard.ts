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
      adapter: upstashAdapter(new Redis({ url: env.httpUrl(), token: env.httpToken(), enableTelemetry: false })),
      ...sessionConfig,
    }),
    { cookieName, loginPath: '/login' },
  );
  return guardFn(request);
}
