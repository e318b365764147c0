// End-to-end test of the example app in Debian's Chromium (playwright-core), against a live
// StayKV, built twice: with Next.js 15 (middleware.ts, edge runtime) and Next.js 16
// (proxy.ts, Node runtime). Screenshots go to test-artifacts/<variant>/.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { Redis } from 'ioredis';
import { chromium } from 'playwright-core';

import { appRoot, freePort, NextServer, repoRoot, run, StayKV } from './servers.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const COOKIE = '__Host-session';
const artifacts = path.join(appRoot, 'test-artifacts');
const libDir = path.join(repoRoot, 'js/session');
const sha256 = (s) => createHash('sha256').update(s).digest('hex');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const env = { NEXT_TELEMETRY_DISABLED: '1' };

// ------------------------------------------------------------------------------------------
// Preparing the two builds

/** Builds js/session and copies it into the app's node_modules (npm installs a copy, not a link). */
async function syncLibrary(appDir) {
  if (!existsSync(path.join(libDir, 'node_modules/typescript'))) await run(npm, ['ci', '--no-audit', '--no-fund'], { cwd: libDir, env, quiet: true });
  await run(npm, ['run', 'build'], { cwd: libDir, env, quiet: true });
  const dest = path.join(appDir, 'node_modules/@staykv/session');
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(dest, { recursive: true });
  cpSync(path.join(libDir, 'dist'), path.join(dest, 'dist'), { recursive: true });
  cpSync(path.join(libDir, 'package.json'), path.join(dest, 'package.json'));
}

async function nextBuild(appDir) {
  rmSync(path.join(appDir, '.next'), { recursive: true, force: true });
  const { ms } = await run(process.execPath, [path.join(appDir, 'node_modules/next/dist/bin/next'), 'build'], { cwd: appDir, env, quiet: true });
  console.log(`# next build in ${path.relative(repoRoot, appDir)}: ${(ms / 1000).toFixed(1)} s`);
}

async function prepareNext15() {
  if (!existsSync(path.join(appRoot, 'node_modules/next'))) await run(npm, ['ci', '--no-audit', '--no-fund'], { cwd: appRoot, env, quiet: true });
  await syncLibrary(appRoot);
  await nextBuild(appRoot);
  return appRoot;
}

/**
 * Assembles .next16-app/: the same app sources, next16/package.json (+ lock) with Next.js 16,
 * and next16/proxy.ts instead of middleware.ts. Returns { dir } or { skip: reason }.
 */
async function prepareNext16() {
  const dir = path.join(appRoot, '.next16-app');
  mkdirSync(dir, { recursive: true });
  for (const entry of ['app', 'lib']) {
    rmSync(path.join(dir, entry), { recursive: true, force: true });
    cpSync(path.join(appRoot, entry), path.join(dir, entry), { recursive: true });
  }
  for (const file of ['next.config.mjs', 'tsconfig.json', '.npmrc']) cpSync(path.join(appRoot, file), path.join(dir, file));
  for (const file of ['package.json', 'package-lock.json', 'proxy.ts']) cpSync(path.join(appRoot, 'next16', file), path.join(dir, file));
  rmSync(path.join(dir, 'middleware.ts'), { force: true });

  const lock = readFileSync(path.join(dir, 'package-lock.json'));
  const stampFile = path.join(dir, 'node_modules/.staykv-lock-sha256');
  const stamp = sha256(lock);
  if (!existsSync(stampFile) || readFileSync(stampFile, 'utf8') !== stamp) {
    try {
      await run(npm, ['ci', '--no-audit', '--no-fund'], { cwd: dir, env, quiet: true });
    } catch (e) {
      return { skip: `Next.js 16 could not be installed from npm on Node ${process.version}: ${String(e.out ?? e.message).trim().split('\n').slice(-5).join(' | ')}` };
    }
    writeFileSync(stampFile, stamp);
  }
  const version = JSON.parse(readFileSync(path.join(dir, 'node_modules/next/package.json'), 'utf8')).version;
  assert.match(version, /^16\./, `installed next is ${version}`);
  await syncLibrary(dir);
  await nextBuild(dir);
  return { dir };
}

// ------------------------------------------------------------------------------------------
// The scenario

let browser;
before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} not found: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  // playwright-core gives every launch a fresh temporary --user-data-dir (it refuses one in args).
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
});
after(async () => {
  await browser?.close();
});

const variants = [
  { key: 'next15', title: 'Next.js 15.5 (middleware.ts in the edge runtime)', prepare: async () => ({ dir: await prepareNext15() }) },
  { key: 'next16', title: 'Next.js 16 (proxy.ts in the Node runtime)', prepare: prepareNext16 },
];

// E2E_ONLY=next15 or next16 runs one variant (for development).
for (const variant of variants.filter((v) => !process.env.E2E_ONLY || v.key === process.env.E2E_ONLY)) {
  describe(variant.title, () => {
    let appDir;
    let skipReason = null;
    let kv;
    let app;
    let admin;
    let origin;
    let ctxA;
    let ctxB;
    let pageA;
    let pageB;
    let shotNo = 0;
    const email = `ada-${variant.key}@example.com`;
    const password = 'correct horse battery staple';

    const shot = async (page, name) => {
      const dir = path.join(artifacts, variant.key);
      mkdirSync(dir, { recursive: true });
      await page.screenshot({ path: path.join(dir, `${String(++shotNo).padStart(2, '0')}-${name}.png`), fullPage: true });
    };
    const sessionCookie = async (ctx) => (await ctx.cookies(origin)).find((c) => c.name === COOKIE);
    /** Server-side request with a given cookie, not following redirects (127.0.0.1 is the same server). */
    const rawGet = (p, token) =>
      fetch(`http://127.0.0.1:${app.port}${p}`, { redirect: 'manual', headers: token ? { cookie: `${COOKIE}=${token}` } : {} });
    const logIn = async (page) => {
      await page.goto(`${origin}/login`);
      await page.fill('input[name=email]', email);
      await page.fill('input[name=password]', password);
      await Promise.all([page.waitForURL(`${origin}/dashboard`), page.click('button[type=submit]')]);
    };
    const sessionIdsOnPage = async (page) =>
      page.$$eval('[data-testid=session-row]', (rows) => rows.map((r) => r.getAttribute('data-session-id')));
    const skipIfUnprepared = (t) => {
      if (skipReason) t.skip(skipReason);
      return !!skipReason;
    };

    before(async () => {
      const prepared = await variant.prepare();
      if (prepared.skip) {
        skipReason = prepared.skip;
        console.log(`# SKIP ${variant.title}: ${skipReason}`);
        return;
      }
      appDir = prepared.dir;
      kv = new StayKV();
      await kv.start();
      admin = new Redis(kv.url, { maxRetriesPerRequest: 1 });
      app = new NextServer(appDir, { STAYKV_URL: kv.url, STAYKV_HTTP_URL: kv.httpUrl, STAYKV_HTTP_READONLY_TOKEN: kv.readonlyToken });
      await app.start();
      origin = app.origin;
      ctxA = await browser.newContext();
      ctxB = await browser.newContext();
      pageA = await ctxA.newPage();
      pageB = await ctxB.newPage();
    });

    after(async () => {
      await ctxA?.close();
      await ctxB?.close();
      admin?.disconnect();
      await app?.stop();
      await kv?.stop();
      if (kv) rmSync(kv.dir, { recursive: true, force: true });
      if (process.env.E2E_DEBUG && app) console.log(app.log());
    });

    it('runs the guard where it should (edge middleware on 15, proxy.ts on 16)', (t) => {
      if (skipIfUnprepared(t)) return;
      if (variant.key === 'next15') {
        const manifest = JSON.parse(readFileSync(path.join(appDir, '.next/server/middleware-manifest.json'), 'utf8'));
        assert.ok(manifest.middleware['/'], 'an edge middleware is registered');
        assert.deepEqual(manifest.middleware['/'].matchers.map((m) => m.originalSource), ['/dashboard/:path*']);
      } else {
        assert.ok(existsSync(path.join(appDir, 'proxy.ts')) && !existsSync(path.join(appDir, 'middleware.ts')));
        const fns = JSON.parse(readFileSync(path.join(appDir, '.next/server/functions-config-manifest.json'), 'utf8'));
        assert.equal(fns.functions['/_middleware']?.runtime, 'nodejs', 'proxy.ts runs on Node');
      }
    });

    it('redirects a logged-out visitor from /dashboard to /login', async (t) => {
      if (skipIfUnprepared(t)) return;
      const res = await rawGet('/dashboard');
      assert.equal(res.status, 307);
      assert.equal(res.headers.get('x-staykv-session'), 'missing', 'redirected by the middleware/proxy');
      assert.match(res.headers.get('location'), /\/login\?next=%2Fdashboard$/);
      await pageA.goto(`${origin}/dashboard`);
      assert.equal(new URL(pageA.url()).pathname, '/login');
      await shot(pageA, 'logged-out-redirect');
    });

    it('signs up (user stored in StayKV, scrypt hash) and logs out', async (t) => {
      if (skipIfUnprepared(t)) return;
      await pageA.goto(`${origin}/signup`);
      await pageA.fill('input[name=name]', 'Ada');
      await pageA.fill('input[name=email]', email);
      await pageA.fill('input[name=password]', password);
      await Promise.all([pageA.waitForURL(`${origin}/dashboard`), pageA.click('button[type=submit]')]);
      await shot(pageA, 'signed-up');
      const user = JSON.parse(await admin.get(`user:${email}`));
      assert.match(user.passwordHash, /^scrypt\$131072\$8\$1\$/);
      assert.ok(!JSON.stringify(user).includes(password));
      await Promise.all([pageA.waitForURL(`${origin}/login`), pageA.click('[data-testid=logout]')]);
      assert.equal(await sessionCookie(ctxA), undefined);
    });

    it('rejects a wrong password', async (t) => {
      if (skipIfUnprepared(t)) return;
      await pageA.goto(`${origin}/login`);
      await pageA.fill('input[name=email]', email);
      await pageA.fill('input[name=password]', 'wrong password!');
      await Promise.all([pageA.waitForURL(/\/login\?error=invalid/), pageA.click('button[type=submit]')]);
      assert.match(await pageA.textContent('[data-testid=login-error]'), /Wrong email or password/);
      assert.equal(await sessionCookie(ctxA), undefined, 'no session cookie');
      await shot(pageA, 'wrong-password');
    });

    it('logs in and lands on the dashboard', async (t) => {
      if (skipIfUnprepared(t)) return;
      await logIn(pageA);
      assert.match(await pageA.textContent('[data-testid=welcome]'), /Signed in as Ada/);
      await shot(pageA, 'dashboard');
    });

    it('sets an HttpOnly, Secure, SameSite=Lax, __Host- cookie that page scripts cannot see; the store holds only its SHA-256', async (t) => {
      if (skipIfUnprepared(t)) return;
      const c = await sessionCookie(ctxA);
      assert.ok(c, 'cookie __Host-session is set');
      assert.equal(c.httpOnly, true);
      assert.equal(c.secure, true);
      assert.equal(c.sameSite, 'Lax');
      assert.equal(c.path, '/');
      assert.equal(c.domain, 'localhost', 'host-only cookie');
      assert.match(c.value, /^[A-Za-z0-9_-]{43}$/);
      const docCookie = await pageA.evaluate(() => document.cookie);
      assert.ok(!docCookie.includes(COOKIE) && !docCookie.includes(c.value), `document.cookie = ${JSON.stringify(docCookie)}`);
      assert.equal(await admin.exists(`session:${sha256(c.value)}`), 1, 'stored under SHA-256(token)');
      const keys = await admin.keys('*');
      assert.ok(!keys.some((k) => k.includes(c.value)), 'no key contains the token');
      for (const k of keys.filter((k) => !k.startsWith('user-sessions:'))) {
        assert.ok(!(await admin.get(k)).includes(c.value), `value of ${k} does not contain the token`);
      }
    });

    it('stays logged in after StayKV is killed with SIGKILL and restarted on the same data', async (t) => {
      if (skipIfUnprepared(t)) return;
      const before = await sessionCookie(ctxA);
      assert.equal(await kv.kill9(), 'SIGKILL');
      // While the store is down the session is neither accepted nor refused: 503 from a route
      // handler, the error page from a page, never the login form.
      const down = await rawGet('/api/me', before.value);
      assert.equal(down.status, 503);
      assert.equal(down.headers.get('retry-after'), '1');
      await pageA.goto(`${origin}/`);
      await pageA.waitForSelector('[data-testid=unavailable]');
      await shot(pageA, 'store-down');
      await kv.start();
      await pageA.reload();
      assert.equal(new URL(pageA.url()).pathname, '/dashboard');
      assert.match(await pageA.textContent('[data-testid=welcome]'), /Signed in as Ada/);
      assert.equal((await sessionCookie(ctxA)).value, before.value);
      const me = await rawGet('/api/me', before.value);
      assert.equal(me.status, 200);
      assert.equal((await me.json()).email, email);
      await shot(pageA, 'after-sigkill-restart');
    });

    it('a second browser context logs in as the same user and appears in the session list', async (t) => {
      if (skipIfUnprepared(t)) return;
      await logIn(pageB);
      const b = await sessionCookie(ctxB);
      const a = await sessionCookie(ctxA);
      assert.notEqual(a.value, b.value);
      await pageA.reload();
      const ids = await sessionIdsOnPage(pageA);
      assert.deepEqual(new Set(ids), new Set([sha256(a.value), sha256(b.value)]));
      assert.equal(await pageA.getAttribute(`[data-session-id="${sha256(a.value)}"]`, 'data-current'), 'yes');
      await shot(pageA, 'two-sessions');
    });

    it('a mutating route handler rejects a foreign Origin (and accepts its own)', async (t) => {
      if (skipIfUnprepared(t)) return;
      const bId = sha256((await sessionCookie(ctxB)).value);
      // 1. Forged request with A's cookie and a foreign Origin.
      const forged = await ctxA.request.post(`${origin}/api/sessions/revoke`, {
        form: { id: bId },
        headers: { origin: 'https://evil.example' },
        maxRedirects: 0,
      });
      assert.equal(forged.status(), 403);
      // 2. No Origin at all on a POST.
      const bare = await fetch(`http://127.0.0.1:${app.port}/api/sessions/revoke`, {
        method: 'POST',
        headers: { cookie: `${COOKIE}=${(await sessionCookie(ctxA)).value}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: `id=${bId}`,
        redirect: 'manual',
      });
      assert.equal(bare.status, 403);
      // 3. A real cross-site form post from another origin (http://127.0.0.1:<port>).
      const evilPort = await freePort();
      const evil = http.createServer((_, res) => {
        res.setHeader('content-type', 'text/html');
        res.end(`<form id=f method=post action="${origin}/api/sessions/revoke"><input name=id value="${bId}"></form><script>f.submit()</script>`);
      });
      await new Promise((r) => evil.listen(evilPort, '127.0.0.1', r));
      try {
        const [response] = await Promise.all([
          pageA.waitForResponse((r) => r.url() === `${origin}/api/sessions/revoke`),
          pageA.goto(`http://127.0.0.1:${evilPort}/`),
        ]);
        assert.equal(response.status(), 403);
        await pageA.waitForLoadState();
        await shot(pageA, 'cross-site-post-refused');
      } finally {
        evil.close();
      }
      // B is still logged in.
      await pageB.reload();
      assert.equal(new URL(pageB.url()).pathname, '/dashboard');
      // 4. Same-origin POST from the app's own page passes the check.
      await pageA.goto(`${origin}/dashboard`);
      const own = await pageA.evaluate(async () => {
        const body = new FormData();
        body.set('id', '0'.repeat(64));
        const r = await fetch('/api/sessions/revoke', { method: 'POST', body, headers: { accept: 'application/json' } });
        return { status: r.status, body: await r.json() };
      });
      assert.deepEqual(own, { status: 200, body: { revoked: false } });
    });

    it('the middleware/proxy checks sessions through the HTTP API', async (t) => {
      if (skipIfUnprepared(t)) return;
      const b = (await sessionCookie(ctxB)).value;
      const count0 = await kv.httpRequestCount();
      const ok = await rawGet('/dashboard', b);
      assert.equal(ok.status, 200, 'a live session passes');
      const count1 = await kv.httpRequestCount();
      const forged = 'A'.repeat(43);
      const bad = await rawGet('/dashboard', forged);
      assert.equal(bad.status, 307);
      assert.equal(bad.headers.get('x-staykv-session'), 'invalid', 'decided by a store lookup');
      assert.equal(bad.headers.get('set-cookie'), null, 'a stale cookie is left: it may have raced a rotation');
      const count2 = await kv.httpRequestCount();
      if (count0 === null) {
        t.diagnostic('staykv exports no staykv_http_requests_total; HTTP request counting not checked');
      } else {
        assert.ok(count1 > count0, `HTTP API requests during a guarded page view: ${count1 - count0}`);
        assert.ok(count2 > count1, `HTTP API requests during a rejected page view: ${count2 - count1}`);
      }
    });

    it('"log out everywhere" logs the other browser out too', async (t) => {
      if (skipIfUnprepared(t)) return;
      const a = (await sessionCookie(ctxA)).value;
      const b = (await sessionCookie(ctxB)).value;
      await pageA.goto(`${origin}/dashboard`);
      await Promise.all([pageA.waitForURL(`${origin}/login`), pageA.click('[data-testid=logout-everywhere]')]);
      await pageB.goto(`${origin}/dashboard`);
      assert.equal(new URL(pageB.url()).pathname, '/login', 'B was logged out');
      await shot(pageB, 'other-context-logged-out');
      for (const token of [a, b]) assert.equal((await rawGet('/api/me', token)).status, 401);
      assert.equal(await admin.exists(`session:${sha256(a)}`, `session:${sha256(b)}`), 0);
    });

    it('"log out this device" revokes one session from the list', async (t) => {
      if (skipIfUnprepared(t)) return;
      await logIn(pageA);
      await logIn(pageB);
      const bId = sha256((await sessionCookie(ctxB)).value);
      await pageA.reload();
      assert.equal((await sessionIdsOnPage(pageA)).length, 2);
      await Promise.all([
        pageA.waitForURL(`${origin}/dashboard`),
        pageA.click(`[data-session-id="${bId}"] [data-testid=revoke]`),
      ]);
      await pageA.waitForLoadState();
      assert.equal((await sessionIdsOnPage(pageA)).length, 1);
      await shot(pageA, 'revoked-one-device');
      await pageB.reload();
      assert.equal(new URL(pageB.url()).pathname, '/login');
    });

    it('after logout, replaying the old cookie is rejected', async (t) => {
      if (skipIfUnprepared(t)) return;
      await pageA.goto(`${origin}/dashboard`);
      const old = (await sessionCookie(ctxA)).value;
      assert.equal((await rawGet('/api/me', old)).status, 200);
      await Promise.all([pageA.waitForURL(`${origin}/login`), pageA.click('[data-testid=logout]')]);
      assert.equal(await sessionCookie(ctxA), undefined, 'the browser dropped the cookie');
      assert.equal((await rawGet('/api/me', old)).status, 401);
      const replay = await rawGet('/dashboard', old);
      assert.equal(replay.status, 307);
      assert.equal(replay.headers.get('x-staykv-session'), 'invalid');
      await ctxA.addCookies([{ name: COOKIE, value: old, domain: 'localhost', path: '/', secure: true, httpOnly: true, sameSite: 'Lax' }]);
      assert.equal((await sessionCookie(ctxA)).value, old, 'old cookie put back into the browser');
      await pageA.goto(`${origin}/dashboard`);
      assert.equal(new URL(pageA.url()).pathname, '/login');
      await shot(pageA, 'replayed-cookie-rejected');
    });
  });
}
