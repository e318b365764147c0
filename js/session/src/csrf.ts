import { timingSafeEqual } from './crypto.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

export interface VerifyOriginOptions {
  /**
   * Extra origins allowed to send unsafe requests, e.g. `["https://admin.example.com"]`.
   * Compared as exact origins (scheme, host and port).
   */
  allow?: string[];
  /**
   * Compare the Origin with `X-Forwarded-Host` instead of `Host` when present. Only enable
   * it behind a proxy that sets that header itself (Vercel and most platforms do).
   */
  trustForwardedHost?: boolean;
}

/** The request shape `verifyOrigin` reads (a `Request`, `NextRequest` or similar). */
export interface RequestLike {
  method: string;
  headers: { get(name: string): string | null };
}

/**
 * CSRF defence for mutating route handlers (Next.js checks Server Actions itself, but not
 * route handlers). Returns true for safe methods (GET, HEAD, OPTIONS, TRACE). For any other
 * method the request must carry an `Origin` header (a missing or `null` Origin is rejected)
 * whose host equals the request's `Host` (or `X-Forwarded-Host`, if trusted), or whose
 * origin is in `allow`.
 *
 * ```ts
 * export async function POST(request: Request) {
 *   if (!verifyOrigin(request)) return new Response('Forbidden', { status: 403 });
 *   …
 * }
 * ```
 */
export function verifyOrigin(request: RequestLike, options: VerifyOriginOptions = {}): boolean {
  const method = (request.method || 'GET').toUpperCase();
  if (SAFE_METHODS.has(method)) return true;
  const originHeader = request.headers.get('origin');
  if (!originHeader || originHeader === 'null') return false;
  let origin: URL;
  try {
    origin = new URL(originHeader);
  } catch {
    return false;
  }
  if (origin.protocol !== 'https:' && origin.protocol !== 'http:') return false;
  for (const allowed of options.allow ?? []) {
    try {
      if (new URL(allowed).origin === origin.origin) return true;
    } catch {
      // ignore malformed allow-list entries
    }
  }
  let host: string | null = null;
  if (options.trustForwardedHost) {
    host = request.headers.get('x-forwarded-host')?.split(',')[0]?.trim() || null;
  }
  host ??= request.headers.get('host');
  if (!host) return false;
  return origin.host === host.trim().toLowerCase();
}

/**
 * Synchronizer-token CSRF check: compares a submitted token (form field or header) with the
 * session's `csrfToken` in constant time. Use it where an Origin check is not enough (e.g.
 * you must accept requests without Origin).
 */
export function verifyCsrfToken(session: { csrfToken: string } | null | undefined, submitted: unknown): boolean {
  if (!session || typeof submitted !== 'string' || submitted.length === 0) return false;
  return timingSafeEqual(session.csrfToken, submitted);
}
