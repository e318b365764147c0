// Edge-safe part of the Next.js helpers: no `next/headers`, no React, no Node APIs. Import it
// from `@staykv/session/next/middleware` in `middleware.ts` (Next 15, edge runtime) or
// `proxy.ts` (Next 16, Node runtime), with a store over `upstashAdapter` (HTTP).
import { readCookie, sessionCookieName } from '../cookie.js';
import { SessionStoreError, type Session, type SessionStore } from '../store.js';

/** The request shape the helpers read (`NextRequest` and `Request` both fit). */
export interface MiddlewareRequest {
  url: string;
  /** Taken as GET when absent. */
  method?: string;
  headers: { get(name: string): string | null };
}

export interface SessionMiddlewareOptions {
  /** Base cookie name (default `session`, i.e. cookie `__Host-session`). */
  cookieName?: string;
  /** Where logged-out users are sent, e.g. `/login`. */
  loginPath: string;
  /**
   * Query parameter that carries the originally requested path to the login page (default
   * `next`); `false` to omit it. Validate it with `safeRedirectPath` before redirecting.
   */
  redirectParam?: string | false;
  /** Renew the session (sliding expiry) from the middleware too (default false: read-only). */
  touch?: boolean;
}

/** The session of the request's cookie, or null. */
export async function getRequestSession<T>(
  request: MiddlewareRequest,
  store: SessionStore<T>,
  options: { cookieName?: string; touch?: boolean } = {},
): Promise<Session<T> | null> {
  const token = readCookie(request.headers.get('cookie'), sessionCookieName(options.cookieName));
  if (!token) return null;
  return options.touch ? store.touch(token) : store.getSession(token);
}

/**
 * A middleware/proxy function that lets requests with a live session through (returns
 * undefined, so Next.js continues) and redirects all others to `loginPath`: 307 for GET and
 * HEAD, 303 for other methods, which a 307 would have the browser repeat at `loginPath`
 * (a Server Action's POST would run its action there). Use `config.matcher` to choose the
 * protected paths.
 *
 * A cookie whose session is gone is left alone, not deleted: this request may have raced a
 * rotation or a sign-in (a prefetch sent with the old cookie), and a deletion names only the
 * cookie, so arriving after the new cookie it would erase that and log the user out. The
 * store refuses the stale token anyway, and the next sign-in replaces it.
 *
 * When the store cannot be reached it answers 503 (`retry-after: 1`): it lets no one through,
 * and sends no one to sign in again while their session may well be live.
 *
 * ```ts
 * // middleware.ts (Next 15) — or proxy.ts with `export const proxy = …` (Next 16)
 * export const middleware = sessionMiddleware(edgeStore, { loginPath: '/login' });
 * export const config = { matcher: ['/dashboard/:path*'] };
 * ```
 */
export function sessionMiddleware<T>(
  store: SessionStore<T>,
  options: SessionMiddlewareOptions,
): (request: MiddlewareRequest) => Promise<Response | undefined> {
  const cookieName = sessionCookieName(options.cookieName);
  const param = options.redirectParam === undefined ? 'next' : options.redirectParam;
  return async (request) => {
    const token = readCookie(request.headers.get('cookie'), cookieName);
    let session: Session<T> | null = null;
    try {
      if (token) session = await (options.touch ? store.touch(token) : store.getSession(token));
    } catch (e) {
      if (e instanceof SessionStoreError) return storeUnavailableResponse();
      throw e;
    }
    if (session) return undefined;
    const url = new URL(request.url);
    const target = new URL(options.loginPath, url);
    if (param) target.searchParams.set(param, url.pathname + url.search);
    return redirectResponse(request.method, target, { 'x-staykv-session': token ? 'invalid' : 'missing' });
  };
}

/**
 * The answer while the store cannot be reached (a `SessionStoreError`): 503 with
 * `retry-after: 1`, never cached. Whether the session exists is unknown, so the request is
 * treated neither as signed in nor as signed out. The middleware answers it; route handlers
 * can return it too.
 */
export function storeUnavailableResponse(): Response {
  const headers = { 'retry-after': '1', 'cache-control': 'no-store', 'x-staykv-session': 'unavailable' };
  return new Response('The session store is unavailable; try again shortly.', { status: 503, headers });
}

function redirectResponse(method: string | undefined, location: URL, headers: Record<string, string>): Response {
  const safe = method === undefined || ['GET', 'HEAD'].includes(method.toUpperCase());
  return new Response(null, { status: safe ? 307 : 303, headers: { location: location.toString(), ...headers } });
}

/**
 * `value` if it is a same-origin absolute path (`/…`, not `//…` or `/\…`), else `fallback`.
 * Use it on `?next=` parameters to avoid open redirects.
 */
export function safeRedirectPath(value: unknown, fallback: string = '/'): string {
  if (typeof value !== 'string' || !value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\')) {
    return fallback;
  }
  if (/[\u0000-\u001f\u007f]/.test(value)) return fallback;
  return value;
}
