/**
 * The session cookie: `__Host-<name>`, HttpOnly, Secure, SameSite=Lax, Path=/, no Domain.
 * The `__Host-` prefix makes browsers refuse the cookie unless it is Secure, has Path=/ and
 * no Domain, so a sibling subdomain or a plain-http page cannot set or shadow it. Browsers
 * treat http://localhost as secure, so this works in local development on localhost too.
 */

export const HOST_PREFIX = '__Host-';

/** RFC 6265 cookie-name characters (a "token"). */
const NAME_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** `__Host-` + `base` (default `session`); a name that already has the prefix is kept. */
export function sessionCookieName(base: string = 'session'): string {
  const name = base.startsWith(HOST_PREFIX) ? base : HOST_PREFIX + base;
  if (name === HOST_PREFIX || !NAME_RE.test(name) || name.startsWith(HOST_PREFIX + '__')) {
    throw new TypeError(`invalid session cookie name: ${JSON.stringify(base)}`);
  }
  return name;
}

export interface SessionCookieOptions {
  httpOnly: true;
  secure: true;
  sameSite: 'lax';
  path: '/';
  expires?: Date;
  maxAge?: number;
}

/**
 * Attributes for the session cookie. With `expiresAt` (default: the session's absolute
 * expiry) the cookie is persistent; pass `null` for a browser-session cookie. The store
 * enforces the idle expiry itself, so the cookie never needs rewriting on renewal.
 */
export function sessionCookieOptions(expiresAt: number | null): SessionCookieOptions {
  const opts: SessionCookieOptions = { httpOnly: true, secure: true, sameSite: 'lax', path: '/' };
  if (expiresAt !== null) opts.expires = new Date(expiresAt);
  return opts;
}

/** Attributes that delete the cookie. They keep Secure and Path=/, as `__Host-` requires. */
export function clearedCookieOptions(): SessionCookieOptions {
  return { httpOnly: true, secure: true, sameSite: 'lax', path: '/', expires: new Date(0), maxAge: 0 };
}

/** RFC 6265 cookie-octets: no whitespace, `"`, `,`, `;` or `\`. */
const VALUE_RE = /^[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*$/;

/**
 * A `Set-Cookie` header value, for code that builds raw `Response`s. Throws a `TypeError`
 * for a name or value a cookie cannot carry (a `;` in the value would add attributes), an
 * invalid `expires` or a `maxAge` that is not a whole number.
 */
export function serializeCookie(name: string, value: string, opts: SessionCookieOptions): string {
  if (!NAME_RE.test(name)) throw new TypeError(`invalid cookie name: ${JSON.stringify(name)}`);
  if (!VALUE_RE.test(value)) throw new TypeError(`invalid cookie value for ${name}: ${JSON.stringify(value.slice(0, 40))}`);
  if (opts.expires && Number.isNaN(opts.expires.getTime())) throw new TypeError(`invalid expires for ${name}`);
  if (opts.maxAge !== undefined && !Number.isSafeInteger(opts.maxAge)) {
    throw new TypeError(`invalid maxAge for ${name}: ${opts.maxAge}`);
  }
  let s = `${name}=${value}; Path=${opts.path}`;
  if (opts.expires) s += `; Expires=${opts.expires.toUTCString()}`;
  if (opts.maxAge !== undefined) s += `; Max-Age=${opts.maxAge}`;
  s += '; HttpOnly; Secure; SameSite=Lax';
  return s;
}

/** The value of cookie `name` in a `Cookie` request header (first occurrence). */
export function readCookie(header: string | null | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    let value = part.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    return value;
  }
  return undefined;
}
