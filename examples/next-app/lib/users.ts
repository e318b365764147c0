// Users live in StayKV too: `user:<email>` holds a JSON record with a scrypt password hash.
import { randomBytes, randomUUID, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';

import { redis } from './session';

export interface User {
  id: string;
  email: string;
  name: string;
  passwordHash: string;
}

/** OWASP's Password Storage Cheat Sheet: scrypt with N = 2^17, r = 8, p = 1 (128 MiB a hash). */
const SCRYPT = { N: 2 ** 17, r: 8, p: 1, keylen: 32 };
/** Node refuses scrypt above 32 MiB unless told more: room for N = 2^17 and r = 8. */
const SCRYPT_MAXMEM = 256 * 1024 * 1024;

function scrypt(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  const options = { ...opts, maxmem: SCRYPT_MAXMEM };
  return new Promise((resolve, reject) =>
    scryptCb(password.normalize('NFKC'), salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const { N, r, p, keylen } = SCRYPT;
  const key = await scrypt(password, salt, keylen, { N, r, p });
  return ['scrypt', N, r, p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [alg, n, r, p, salt, hash] = stored.split('$');
  if (alg !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64url');
  const key = await scrypt(password, Buffer.from(salt, 'base64url'), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
  });
  return timingSafeEqual(key, expected);
}

// Verified against when the email is unknown, so both cases take the same time.
const dummyHash = hashPassword(randomUUID());

const userKey = (email: string) => `user:${email}`;

export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

export async function createUser(email: string, name: string, password: string): Promise<User | null> {
  const user: User = { id: randomUUID(), email: normalizeEmail(email), name: name.trim(), passwordHash: await hashPassword(password) };
  const ok = await redis().set(userKey(user.email), JSON.stringify(user), 'NX');
  return ok === 'OK' ? user : null;
}

/** The user if the email exists and the password matches; null otherwise (same timing). */
export async function authenticate(email: string, password: string): Promise<User | null> {
  const raw = await redis().get(userKey(normalizeEmail(email)));
  const user = raw ? (JSON.parse(raw) as User) : null;
  const ok = await verifyPassword(password, user?.passwordHash ?? (await dummyHash));
  return user && ok ? user : null;
}
