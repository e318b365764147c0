// Next.js App Router helpers (Next 15 and 16): server components, server actions and route
// handlers. Uses the async `cookies()` of `next/headers` and React `cache()`.
import { cookies } from 'next/headers';
import { cache } from 'react';

import { clearedCookieOptions, sessionCookieName, sessionCookieOptions } from '../cookie.js';
import type { CreatedSession, Session, SessionStore } from '../store.js';

export interface NextSessionOptions {
  /** Base cookie name (default `session`, i.e. cookie `__Host-session`). */
  cookieName?: string;
  /**
   * Cookie lifetime: `"absolute"` (default) makes the cookie persistent until the session's
   * absolute expiry; `"browser-session"` drops it when the browser closes. Either way the
   * store enforces the idle and absolute expiry.
   */
  cookieLifetime?: 'absolute' | 'browser-session';
  /** Whether `getCurrentSession` renews the session (sliding expiry). Default true. */
  touch?: boolean;
}

export interface NextSessions<T> {
  /** The cookie name, `__Host-…`. */
  readonly cookieName: string;
  readonly store: SessionStore<T>;
  /**
   * The current request's session or null; renews it when due. Wrapped in React `cache()`,
   * so every server component of one render shares one store round trip. Usable in server
   * components, server actions and route handlers.
   */
  getCurrentSession(): Promise<Session<T> | null>;
  /** The raw token from the cookie (not validated), or null. */
  getCurrentToken(): Promise<string | null>;
  /**
   * Signs `userId` in: destroys the session of the current cookie (if any), creates a new
   * session with a fresh token and sets the cookie. Server actions and route handlers only.
   */
  signIn(userId: string, data: T): Promise<Session<T>>;
  /** Destroys the current session and deletes the cookie. Server actions and route handlers only. */
  signOut(): Promise<void>;
  /**
   * New token for the current session (privilege change); the old one is deleted and the
   * cookie replaced. Returns null if there is no live session, leaving the cookie: the
   * session may have gone to a concurrent rotation (a double submit) whose new cookie a
   * deletion from this response could erase.
   */
  rotate(options?: { data?: T; userId?: string }): Promise<Session<T> | null>;
  /** Replaces the current session's data; null if there is no live session. */
  update(update: T | ((current: T) => T)): Promise<Session<T> | null>;
  /** Sets the session cookie for a token you created yourself. */
  setSessionCookie(created: CreatedSession<T>): Promise<void>;
  /** Deletes the session cookie (with the attributes `__Host-` requires). */
  clearSessionCookie(): Promise<void>;
}

/**
 * Binds a session store to the request cookies of Next.js.
 *
 * ```ts
 * // lib/session.ts
 * export const sessions = createNextSessions(createSessionStore<SessionData>({ adapter }));
 * ```
 */
export function createNextSessions<T>(store: SessionStore<T>, options: NextSessionOptions = {}): NextSessions<T> {
  const cookieName = sessionCookieName(options.cookieName);
  const touch = options.touch ?? true;
  const persistent = (options.cookieLifetime ?? 'absolute') === 'absolute';

  const getCurrentToken = async (): Promise<string | null> => (await cookies()).get(cookieName)?.value ?? null;

  const setSessionCookie = async ({ token, session }: CreatedSession<T>): Promise<void> => {
    (await cookies()).set(cookieName, token, {
      ...sessionCookieOptions(persistent ? session.absoluteExpiresAt : null),
    });
  };

  const clearSessionCookie = async (): Promise<void> => {
    // cookies().delete() would omit Secure, and browsers ignore a `__Host-` Set-Cookie
    // without Secure, so the cookie would survive. Expire it with the full attributes.
    (await cookies()).set(cookieName, '', { ...clearedCookieOptions() });
  };

  const getCurrentSession = cache(async (): Promise<Session<T> | null> => {
    const token = await getCurrentToken();
    if (!token) return null;
    return touch ? store.touch(token) : store.getSession(token);
  });

  return {
    cookieName,
    store,
    getCurrentSession,
    getCurrentToken,
    setSessionCookie,
    clearSessionCookie,

    async signIn(userId, data) {
      const previous = await getCurrentToken();
      if (previous) await store.destroySession(previous);
      const created = await store.createSession(userId, data);
      await setSessionCookie(created);
      return created.session;
    },

    async signOut() {
      const token = await getCurrentToken();
      if (token) await store.destroySession(token);
      await clearSessionCookie();
    },

    async rotate(rotateOptions = {}) {
      const token = await getCurrentToken();
      const created = token ? await store.rotateSession(token, rotateOptions) : null;
      if (!created) return null;
      await setSessionCookie(created);
      return created.session;
    },

    async update(update) {
      const token = await getCurrentToken();
      return token ? store.updateSession(token, update) : null;
    },
  };
}

export { verifyOrigin, verifyCsrfToken } from '../csrf.js';
export type { VerifyOriginOptions, RequestLike } from '../csrf.js';
export { sessionMiddleware, getRequestSession, safeRedirectPath, storeUnavailableResponse } from './middleware.js';
export type { SessionMiddlewareOptions, MiddlewareRequest } from './middleware.js';
export { sessionCookieName } from '../cookie.js';
export { SessionStoreError } from '../store.js';
export type { Session, SessionInfo, CreatedSession } from '../store.js';
