// Web Crypto only (globalThis.crypto): runs unchanged on Node >= 20, the Next.js edge
// runtime, Cloudflare Workers and Deno. Never import node:crypto from this package.

const encoder = new TextEncoder();

/** Number of random bytes in a session token (256 bits). */
export const TOKEN_BYTES = 32;

/** 32 bytes in unpadded base64url are exactly 43 characters of [A-Za-z0-9_-]. */
const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;

/** A session id is the lowercase hex SHA-256 of the token. */
const ID_RE = /^[0-9a-f]{64}$/;

function webCrypto(): Crypto {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  if (!c || typeof c.getRandomValues !== 'function' || !c.subtle) {
    throw new Error('@staykv/session needs the Web Crypto API (globalThis.crypto); use Node.js >= 20 or an edge runtime');
  }
  return c;
}

export function base64url(bytes: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]!);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** A fresh 256-bit token from the platform CSPRNG, base64url without padding (43 chars). */
export function generateToken(): string {
  const bytes = new Uint8Array(TOKEN_BYTES);
  webCrypto().getRandomValues(bytes);
  return base64url(bytes);
}

/** True when `token` has the exact shape of a token this library issues. */
export function isWellFormedToken(token: unknown): token is string {
  return typeof token === 'string' && TOKEN_RE.test(token);
}

export function isWellFormedSessionId(id: unknown): id is string {
  return typeof id === 'string' && ID_RE.test(id);
}

/** Lowercase hex SHA-256 of the UTF-8 bytes of `value`. */
export async function sha256Hex(value: string): Promise<string> {
  const digest = new Uint8Array(await webCrypto().subtle.digest('SHA-256', encoder.encode(value)));
  let hex = '';
  for (let i = 0; i < digest.length; i++) hex += digest[i]!.toString(16).padStart(2, '0');
  return hex;
}

/**
 * The session id (and store key suffix) of a token: SHA-256(token) in hex. The store only
 * ever sees this value, never the token itself.
 */
export function sessionIdForToken(token: string): Promise<string> {
  return sha256Hex(token);
}

/**
 * Compares two strings in time that depends only on their lengths, not on where they differ.
 * Use it for secrets of a fixed, public length (tokens, ids, hashes).
 */
export function timingSafeEqual(a: string, b: string): boolean {
  if (typeof a !== 'string' || typeof b !== 'string') return false;
  const len = Math.max(a.length, b.length);
  let diff = a.length ^ b.length;
  for (let i = 0; i < len; i++) {
    // charCodeAt past the end is NaN; `| 0` turns it into 0 so the loop always runs `len` times.
    diff |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0);
  }
  return diff === 0;
}
