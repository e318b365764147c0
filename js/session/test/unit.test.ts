// Pure functions: crypto helpers, cookies, CSRF checks, redirects; plus a check that the
// edge-facing build never touches Node-only APIs.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  clearedCookieOptions,
  createSessionStore,
  generateToken,
  SessionStoreError,
  isWellFormedToken,
  readCookie,
  serializeCookie,
  sessionCookieName,
  sessionCookieOptions,
  sha256Hex,
  timingSafeEqual,
  verifyCsrfToken,
  verifyOrigin,
  type SessionAdapter,
} from '../src/index.js';
import { safeRedirectPath } from '../src/next/middleware.js';

const req = (method: string, headers: Record<string, string>) => new Request('http://localhost:3000/api/x', { method, headers });

describe('tokens and hashing (Web Crypto)', () => {
  it('generates 43-char base64url tokens of 32 random bytes', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const t = generateToken();
      assert.ok(isWellFormedToken(t));
      assert.equal(Buffer.from(t, 'base64url').length, 32);
      seen.add(t);
    }
    assert.equal(seen.size, 1000);
  });
  it('sha256Hex matches node:crypto', async () => {
    for (const s of ['', 'abc', generateToken(), 'ünïcødé']) {
      assert.equal(await sha256Hex(s), createHash('sha256').update(s, 'utf8').digest('hex'));
    }
  });
  it('timingSafeEqual', () => {
    assert.equal(timingSafeEqual('abc', 'abc'), true);
    assert.equal(timingSafeEqual('abc', 'abd'), false);
    assert.equal(timingSafeEqual('abc', 'ab'), false);
    assert.equal(timingSafeEqual('', ''), true);
    assert.equal(timingSafeEqual('a', ''), false);
    assert.equal(timingSafeEqual(undefined as unknown as string, 'a'), false);
  });
});

describe('cookies', () => {
  it('always uses the __Host- prefix', () => {
    assert.equal(sessionCookieName(), '__Host-session');
    assert.equal(sessionCookieName('sid'), '__Host-sid');
    assert.equal(sessionCookieName('__Host-sid'), '__Host-sid');
    assert.throws(() => sessionCookieName('a b'));
    assert.throws(() => sessionCookieName('x;y'));
    assert.throws(() => sessionCookieName(''));
  });
  it('attributes are HttpOnly, Secure, SameSite=Lax, Path=/ and no Domain', () => {
    const o = sessionCookieOptions(Date.UTC(2030, 0, 1));
    assert.deepEqual(o, { httpOnly: true, secure: true, sameSite: 'lax', path: '/', expires: new Date(Date.UTC(2030, 0, 1)) });
    assert.equal(
      serializeCookie('__Host-session', 'tok', o),
      '__Host-session=tok; Path=/; Expires=Tue, 01 Jan 2030 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax',
    );
    assert.deepEqual(sessionCookieOptions(null), { httpOnly: true, secure: true, sameSite: 'lax', path: '/' });
  });
  it('refuses to serialize what a Set-Cookie header cannot carry', () => {
    const o = sessionCookieOptions(null);
    assert.throws(() => serializeCookie('__Host-session', 'tok; Domain=evil.example', o), TypeError);
    assert.throws(() => serializeCookie('__Host-session', 'a b', o), TypeError);
    assert.throws(() => serializeCookie('__Host-session', 'line\r\nSet-Cookie: x=1', o), TypeError);
    assert.throws(() => serializeCookie('bad name', 'tok', o), TypeError);
    assert.throws(() => serializeCookie('__Host-session', 'tok', { ...o, expires: new Date(NaN) }), TypeError);
    assert.throws(() => serializeCookie('__Host-session', 'tok', { ...o, maxAge: 1.5 }), TypeError);
    assert.equal(serializeCookie('__Host-session', '', clearedCookieOptions()).split(';')[0], '__Host-session=');
  });
  it('reads a cookie from a Cookie header', () => {
    assert.equal(readCookie('a=1; __Host-session=xyz; b=2', '__Host-session'), 'xyz');
    assert.equal(readCookie('session=xyz', '__Host-session'), undefined, 'the unprefixed name is not accepted');
    assert.equal(readCookie('x__Host-session=1', '__Host-session'), undefined);
    assert.equal(readCookie(null, '__Host-session'), undefined);
  });
});

describe('verifyOrigin', () => {
  it('lets safe methods through', () => {
    for (const m of ['GET', 'HEAD', 'OPTIONS']) assert.equal(verifyOrigin(req(m, { host: 'localhost:3000' })), true);
  });
  it('accepts a same-origin unsafe request', () => {
    for (const m of ['POST', 'PUT', 'PATCH', 'DELETE']) {
      assert.equal(verifyOrigin(req(m, { host: 'localhost:3000', origin: 'http://localhost:3000' })), true, m);
    }
  });
  it('rejects a foreign, missing, null or malformed Origin on unsafe methods', () => {
    const host = 'localhost:3000';
    assert.equal(verifyOrigin(req('POST', { host, origin: 'https://evil.example' })), false);
    assert.equal(verifyOrigin(req('POST', { host, origin: 'http://localhost:3001' })), false, 'other port');
    assert.equal(verifyOrigin(req('POST', { host, origin: 'http://localhost:3000.evil.example' })), false);
    assert.equal(verifyOrigin(req('POST', { host })), false, 'missing Origin');
    assert.equal(verifyOrigin(req('POST', { host, origin: 'null' })), false);
    assert.equal(verifyOrigin(req('POST', { host, origin: 'not a url' })), false);
    assert.equal(verifyOrigin(req('DELETE', { host, origin: 'file:///x' })), false);
    assert.equal(verifyOrigin(req('POST', { origin: 'http://localhost:3000' })), false, 'no Host');
  });
  it('honours the allow-list and (only when trusted) X-Forwarded-Host', () => {
    const r = req('POST', { host: 'internal:3000', origin: 'https://app.example', 'x-forwarded-host': 'app.example' });
    assert.equal(verifyOrigin(r), false);
    assert.equal(verifyOrigin(r, { trustForwardedHost: true }), true);
    assert.equal(verifyOrigin(r, { allow: ['https://app.example'] }), true);
    assert.equal(verifyOrigin(r, { allow: ['http://app.example'] }), false, 'scheme is part of an allowed origin');
  });
  it('verifyCsrfToken compares with the session secret', () => {
    const s = { csrfToken: generateToken() };
    assert.equal(verifyCsrfToken(s, s.csrfToken), true);
    assert.equal(verifyCsrfToken(s, generateToken()), false);
    assert.equal(verifyCsrfToken(s, ''), false);
    assert.equal(verifyCsrfToken(null, s.csrfToken), false);
  });
});

describe('an adapter that throws', () => {
  it('throwing at once, not rejecting, still gives a SessionStoreError', async () => {
    const broken = new Error('client not connected');
    const fail = (): never => {
      throw broken;
    };
    const adapter: SessionAdapter = { name: 'custom', get: fail, mget: fail, zrangebyscore: fail, multi: fail };
    const store = createSessionStore({ adapter });
    for (const call of [() => store.getSession(generateToken()), () => store.createSession('u', {})]) {
      await assert.rejects(call(), (e: unknown) => e instanceof SessionStoreError && e.cause === broken);
    }
  });
});

describe('safeRedirectPath', () => {
  it('keeps same-origin paths only', () => {
    assert.equal(safeRedirectPath('/dashboard?x=1'), '/dashboard?x=1');
    for (const bad of ['//evil.example', '/\\evil.example', 'https://evil.example', 'dashboard', '', null, '/a\nb']) {
      assert.equal(safeRedirectPath(bad, '/home'), '/home', String(bad));
    }
  });
});

describe('edge safety of the build', () => {
  it('dist never imports Node built-ins; only dist/next/index.js imports next/headers and react', () => {
    const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist');
    const files = readdirSync(dist, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js'));
    assert.ok(files.length > 5, 'run `npm run build` first');
    for (const f of files) {
      // Code only: doc comments contain usage examples with imports.
      const src = readFileSync(path.join(dist, f), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
      const imports = [...src.matchAll(/(?:import|export)\s[^;]*?from\s+['"]([^'"]+)['"]/g)].map((m) => m[1]!);
      for (const spec of imports) {
        assert.ok(!spec.startsWith('node:') && !/^(crypto|fs|net|tls|buffer|path)$/.test(spec), `${f} imports ${spec}`);
        if (!spec.startsWith('.')) {
          assert.equal(f, path.join('next', 'index.js'), `${f} imports ${spec}`);
          assert.ok(['next/headers', 'react'].includes(spec), `${f} imports ${spec}`);
        }
      }
      assert.ok(!/\brequire\(|process\.|Buffer\b/.test(src), `${f} uses a Node-only global`);
    }
  });
});
