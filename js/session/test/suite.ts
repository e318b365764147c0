// The library's behaviour suite. session.test.ts runs it once per (server, client) pair.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import type { Redis as IORedis } from 'ioredis';

import {
  createSessionStore,
  generateToken,
  SessionStoreError,
  type CreatedSession,
  type SessionAdapter,
  type SessionStore,
  type SessionStoreOptions,
} from '../src/index.js';
import { sessionMiddleware } from '../src/next/middleware.js';
import { sleep } from './harness.js';

export interface TargetConnection {
  adapter: SessionAdapter;
  /** ioredis over RESP to the same server, for inspecting what is stored. */
  admin: IORedis;
  close(): Promise<void>;
}

interface Data {
  name: string;
  role: 'user' | 'admin';
  n?: number;
}

const SECOND = 1000;
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

export function defineSessionSuite(
  title: string,
  options: { skip?: string | false; connect: () => Promise<TargetConnection> },
): void {
  describe(title, { skip: options.skip || false }, () => {
    let conn: TargetConnection;
    let admin: IORedis;
    const clock = { offset: 0 };
    const issued = new Set<string>();
    let storeSeq = 0;

    /** A store with its own key prefixes (tests do not see each other's keys). */
    function makeStore(opts: Partial<SessionStoreOptions> = {}): SessionStore<Data> {
      const n = ++storeSeq;
      const store = createSessionStore<Data>({
        adapter: conn.adapter,
        keyPrefix: `t${n}:session:`,
        userIndexPrefix: `t${n}:user-sessions:`,
        now: () => Date.now() + clock.offset,
        ...opts,
      });
      // Remember every token handed out, to look for it in the store at the end.
      const record = <R extends CreatedSession<Data> | null>(c: R): R => {
        if (c) issued.add(c.token);
        return c;
      };
      const create = store.createSession.bind(store);
      const rotate = store.rotateSession.bind(store);
      store.createSession = async (u, d) => record(await create(u, d));
      store.rotateSession = async (t, o) => record(await rotate(t, o));
      return store;
    }

    /** Creates a session as if it had been created `ago` ms in the past. */
    async function createAgo(store: SessionStore<Data>, ago: number, userId = 'alice', data?: Data) {
      clock.offset = -ago;
      try {
        return await store.createSession(userId, data ?? { name: userId, role: 'user' });
      } finally {
        clock.offset = 0;
      }
    }

    before(async () => {
      conn = await options.connect();
      admin = conn.admin;
      await admin.flushall();
    });
    after(async () => {
      await conn?.close();
    });

    it('creates a session with a 256-bit base64url token, keyed by SHA-256(token)', async () => {
      const store = makeStore();
      const { token, session } = await store.createSession('alice', { name: 'Alice', role: 'user' });
      assert.match(token, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(Buffer.from(token, 'base64url').length, 32);
      assert.equal(session.id, sha256(token));
      assert.equal(session.userId, 'alice');
      assert.deepEqual(session.data, { name: 'Alice', role: 'user' });
      assert.equal(await admin.exists(store.metaKey(sha256(token))), 1);
      assert.equal(await admin.exists(store.dataKey(sha256(token))), 1);
      const again = await store.getSession(token);
      assert.deepEqual(again, session);
      const tokens = new Set(await Promise.all(Array.from({ length: 20 }, async () => (await store.createSession('bob', { name: 'b', role: 'user' })).token)));
      assert.equal(tokens.size, 20);
    });

    it('rejects tampered, unknown and malformed tokens', async () => {
      const store = makeStore();
      const { token, session } = await store.createSession('alice', { name: 'Alice', role: 'user' });
      const flip = (t: string, i: number) => t.slice(0, i) + (t[i] === 'A' ? 'B' : 'A') + t.slice(i + 1);
      const bad: unknown[] = [
        flip(token, 0),
        flip(token, 21),
        flip(token, 42),
        token.slice(0, 42),
        token + 'A',
        ` ${token}`,
        token.toUpperCase() === token ? token.toLowerCase() : token.toUpperCase(),
        generateToken(),
        session.id, // the public id is not a credential
        store.metaKey(session.id),
        '',
        'undefined',
        '*',
        '../' + token,
        null,
        undefined,
        42,
        { token },
      ];
      for (const b of bad) {
        assert.equal(await store.getSession(b as string), null, `getSession(${JSON.stringify(b)})`);
        assert.equal(await store.touch(b as string), null, `touch(${JSON.stringify(b)})`);
        assert.equal(await store.rotateSession(b as string), null, `rotateSession(${JSON.stringify(b)})`);
        assert.equal(await store.updateSession(b as string, { name: 'x', role: 'admin' }), null);
        assert.equal(await store.destroySession(b as string), false);
      }
      assert.deepEqual(await store.getSession(token), session, 'the real session is untouched');
    });

    it('does not renew while more than half of the idle lifetime remains', async () => {
      const store = makeStore({ idleTimeout: 60 * SECOND, absoluteTimeout: 3600 * SECOND });
      const { token, session } = await createAgo(store, 20 * SECOND); // 40 s left of 60
      const touched = await store.touch(token);
      assert.ok(touched);
      assert.equal(touched.expiresAt, session.expiresAt);
      assert.equal(touched.renewedAt, session.renewedAt);
      assert.equal(await admin.pexpiretime(store.metaKey(session.id)), session.expiresAt);
    });

    it('renews when less than half remains, and keeps the store TTL equal to the expiry', async () => {
      const store = makeStore({ idleTimeout: 60 * SECOND, absoluteTimeout: 3600 * SECOND });
      const { token, session } = await createAgo(store, 40 * SECOND); // 20 s left of 60
      assert.equal(await admin.pexpiretime(store.metaKey(session.id)), session.expiresAt);
      const before = Date.now();
      const touched = await store.touch(token);
      assert.ok(touched);
      assert.ok(touched.expiresAt >= before + 60 * SECOND && touched.expiresAt <= Date.now() + 60 * SECOND);
      for (const key of [store.metaKey(session.id), store.dataKey(session.id)]) {
        assert.equal(await admin.pexpiretime(key), touched.expiresAt, `PEXPIRETIME ${key}`);
      }
      const score = await admin.zscore(store.userIndexKey('alice'), session.id);
      assert.equal(Number(score), touched.expiresAt, 'index score = expiry');
      assert.deepEqual(await store.getSession(token), touched);
      // Data survives renewal.
      assert.deepEqual(touched.data, session.data);
    });

    it('never renews past the absolute cap, and the session ends at the cap', async () => {
      const store = makeStore({ idleTimeout: 4 * SECOND, absoluteTimeout: 5 * SECOND });
      const { token, session } = await createAgo(store, 3500); // cap in 1.5 s, expiry in 0.5 s
      assert.equal(session.absoluteExpiresAt - session.createdAt, 5 * SECOND);
      const touched = await store.touch(token);
      assert.ok(touched);
      assert.equal(touched.expiresAt, session.absoluteExpiresAt, 'renewal capped');
      assert.equal(await admin.pexpiretime(store.metaKey(session.id)), session.absoluteExpiresAt);
      assert.equal(await admin.pexpiretime(store.dataKey(session.id)), session.absoluteExpiresAt);
      await sleep(session.absoluteExpiresAt - Date.now() + 50);
      assert.equal(await store.touch(token), null);
      assert.equal(await store.getSession(token), null);
      assert.equal(await admin.exists(store.metaKey(session.id), store.dataKey(session.id)), 0, 'store expired it');
    });

    it('updates data without changing the expiry', async () => {
      const store = makeStore();
      const { token, session } = await store.createSession('alice', { name: 'Alice', role: 'user', n: 1 });
      const updated = await store.updateSession(token, (d) => ({ ...d, n: (d.n ?? 0) + 1 }));
      assert.equal(updated?.data.n, 2);
      assert.equal((await store.getSession(token))?.data.n, 2);
      assert.equal(await admin.pexpiretime(store.dataKey(session.id)), session.expiresAt);
      await store.destroySession(token);
      assert.equal(await store.updateSession(token, { name: 'x', role: 'admin' }), null);
      assert.equal(await admin.exists(store.dataKey(session.id)), 0, 'update never recreates');
    });

    it('rotation issues a new token and deletes the old session', async () => {
      const store = makeStore();
      const { token, session } = await store.createSession('alice', { name: 'Alice', role: 'user' });
      const rotated = await store.rotateSession(token, { data: { name: 'Alice', role: 'admin' } });
      assert.ok(rotated);
      assert.notEqual(rotated.token, token);
      assert.equal(rotated.session.id, sha256(rotated.token));
      assert.notEqual(rotated.session.csrfToken, session.csrfToken);
      assert.equal(rotated.session.createdAt, session.createdAt);
      assert.equal(rotated.session.absoluteExpiresAt, session.absoluteExpiresAt);
      assert.equal(await store.getSession(token), null, 'old token is dead');
      assert.equal(await admin.exists(store.metaKey(session.id), store.dataKey(session.id)), 0, 'old keys deleted');
      assert.deepEqual((await store.getSession(rotated.token))?.data, { name: 'Alice', role: 'admin' });
      const ids = await admin.zrange(store.userIndexKey('alice'), 0, -1);
      assert.deepEqual(ids, [rotated.session.id]);
      for (const key of [store.metaKey(rotated.session.id), store.dataKey(rotated.session.id)]) {
        assert.equal(await admin.pexpiretime(key), rotated.session.expiresAt);
      }
      // The index of the user's only session was emptied and refilled: it still expires.
      assert.equal(await admin.pexpiretime(store.userIndexKey('alice')), session.absoluteExpiresAt);
      // Without `data`, the data moves along.
      const again = await store.rotateSession(rotated.token);
      assert.deepEqual(again?.session.data, { name: 'Alice', role: 'admin' });
      // Rotating a dead token creates nothing.
      assert.equal(await store.rotateSession(token), null);
      assert.equal(await store.rotateSession(rotated.token), null);
      assert.deepEqual(await admin.zrange(store.userIndexKey('alice'), 0, -1), [again!.session.id]);
    });

    it('rotation to another user (sign-in) moves the index entry and restarts the absolute lifetime', async () => {
      const store = makeStore({ idleTimeout: 60 * SECOND, absoluteTimeout: 3600 * SECOND });
      const { token, session } = await createAgo(store, 30 * SECOND, 'anonymous-1');
      const rotated = await store.rotateSession(token, { userId: 'carol' });
      assert.ok(rotated);
      assert.equal(rotated.session.userId, 'carol');
      assert.ok(rotated.session.createdAt > session.createdAt);
      assert.deepEqual(await admin.zrange(store.userIndexKey('anonymous-1'), 0, -1), []);
      assert.deepEqual(await admin.zrange(store.userIndexKey('carol'), 0, -1), [rotated.session.id]);
      assert.equal((await store.listUserSessions('carol')).length, 1);
    });

    it('destroySession removes the session and its index entry', async () => {
      const store = makeStore();
      const { token, session } = await store.createSession('alice', { name: 'Alice', role: 'user' });
      assert.equal(await store.destroySession(token), true);
      assert.equal(await store.getSession(token), null);
      assert.equal(await admin.exists(store.metaKey(session.id), store.dataKey(session.id)), 0);
      assert.equal(await admin.zscore(store.userIndexKey('alice'), session.id), null);
      assert.equal(await store.destroySession(token), false);
    });

    it('50 parallel touches racing a destroy never bring the session back (x8)', async () => {
      const store = makeStore({ idleTimeout: 60 * SECOND, absoluteTimeout: 3600 * SECOND });
      let renewedBeforeDestroy = 0;
      for (let round = 0; round < 8; round++) {
        // 20 s of 60 left: every touch that reads the record wants to renew it.
        const { token, session } = await createAgo(store, 40 * SECOND);
        const touches = Array.from({ length: 50 }, (_, i) =>
          (async () => {
            if (i % 5 === 0) await sleep(Math.random() * 3);
            return store.touch(token);
          })(),
        );
        const destroy = (async () => {
          await sleep(round % 3 === 0 ? 0 : Math.random() * 4);
          return store.destroySession(token);
        })();
        const results = await Promise.all([...touches, destroy]);
        renewedBeforeDestroy += results.filter((r) => r && typeof r === 'object' && r.expiresAt > session.expiresAt).length;
        assert.equal(results[50], true, 'destroy found the session');
        await sleep(20);
        assert.equal(await store.getSession(token), null, `round ${round}: session came back`);
        assert.equal(await store.touch(token), null);
        assert.equal(await admin.exists(store.metaKey(session.id), store.dataKey(session.id)), 0, `round ${round}: keys came back`);
        assert.equal(await admin.zscore(store.userIndexKey('alice'), session.id), null, `round ${round}: index entry came back`);
      }
      assert.ok(renewedBeforeDestroy > 0, 'some touches renewed before the destroy (the race was real)');
    });

    it('parallel touches racing a rotation leave exactly the rotated session', async () => {
      const store = makeStore({ idleTimeout: 60 * SECOND, absoluteTimeout: 3600 * SECOND });
      for (let round = 0; round < 4; round++) {
        const { token, session } = await createAgo(store, 40 * SECOND, 'dave');
        const touches = Array.from({ length: 30 }, () => store.touch(token));
        const rotation = (async () => {
          await sleep(Math.random() * 3);
          return store.rotateSession(token);
        })();
        const [rotated] = await Promise.all([rotation, ...touches]);
        assert.ok(rotated);
        assert.equal(await store.getSession(token), null);
        assert.equal(await admin.exists(store.metaKey(session.id), store.dataKey(session.id)), 0);
        assert.ok(await store.getSession(rotated.token));
        await store.destroySession(rotated.token);
      }
      assert.deepEqual(await admin.zrange(store.userIndexKey('dave'), 0, -1), []);
    });

    it('a sign-out racing a rotation destroys the session the rotation made', async () => {
      for (const moment of ['between its read and its delete', 'just before its read']) {
        let hook: (() => Promise<void>) | null = null;
        let watched = '';
        // The rotation runs inside the sign-out's GET of the session: after it, or before it.
        const adapter: SessionAdapter = {
          ...conn.adapter,
          async get(key: string) {
            const run = key === watched ? hook : null;
            if (run) hook = null;
            if (run && moment === 'just before its read') await run();
            const value = await conn.adapter.get(key);
            if (run && moment === 'between its read and its delete') await run();
            return value;
          },
        };
        const store = makeStore({ adapter });
        const { token, session } = await store.createSession('erin', { name: 'Erin', role: 'user' });
        let rotated: CreatedSession<Data> | null = null;
        watched = store.metaKey(session.id);
        hook = async () => {
          rotated = await store.rotateSession(token, { data: { name: 'Erin', role: 'admin' } });
        };
        assert.equal(await store.destroySession(token), true, moment);
        const made = rotated as CreatedSession<Data> | null;
        assert.ok(made, `${moment}: the rotation ran`);
        assert.equal(await store.getSession(made.token), null, `${moment}: the rotated session outlived the sign-out`);
        const newId = made.session.id;
        assert.equal(await admin.exists(store.metaKey(newId), store.dataKey(newId)), 0, moment);
        assert.equal(await admin.zscore(store.userIndexKey('erin'), newId), null, moment);
      }
    });

    it('a sign-out with the old cookie after two racing rotations destroys the one that won', async () => {
      const store = makeStore();
      for (let trial = 0; trial < 20; trial++) {
        const { token, session } = await store.createSession('gina', { name: 'Gina', role: 'user' });
        // A double submit: both read the session, one moves it, the other finds it gone.
        const [a, b] = await Promise.all([store.rotateSession(token), store.rotateSession(token)]);
        const won = a ?? b;
        assert.ok(won && !(a && b), `trial ${trial}: exactly one rotation wins`);
        assert.equal(await store.destroySession(token), true, `trial ${trial}: the sign-out found the session`);
        assert.equal(await store.getSession(won.token), null, `trial ${trial}: the rotated session outlived the sign-out`);
        assert.equal(await admin.exists(store.rotatedKey(session.id)), 1, `trial ${trial}`);
      }
      assert.deepEqual(await admin.zrange(store.userIndexKey('gina'), 0, -1), []);
    });

    it('a rotation that finds its session destroyed leaves no pointer behind', async () => {
      let hook: (() => Promise<void>) | null = null;
      const adapter: SessionAdapter = {
        ...conn.adapter,
        async multi(commands) {
          const run = hook;
          hook = null;
          if (run) await run();
          return conn.adapter.multi(commands);
        },
      };
      const store = makeStore({ adapter });
      const { token, session } = await store.createSession('hugo', { name: 'Hugo', role: 'user' });
      // The session is destroyed between the rotation's read and its transaction.
      hook = async () => {
        await store.destroySession(token);
      };
      assert.equal(await store.rotateSession(token), null);
      assert.equal(await admin.exists(store.rotatedKey(session.id)), 0);
      assert.deepEqual(await admin.zrange(store.userIndexKey('hugo'), 0, -1), []);
    });

    it('a renewal the store refuses serves the session unrenewed, its error free of the command', async () => {
      let refuse = false;
      const secret = 'csrf-secret-in-the-command';
      const adapter: SessionAdapter = {
        ...conn.adapter,
        async multi(commands) {
          if (!refuse) return conn.adapter.multi(commands);
          // As @upstash/redis words a refusal: the command it sent comes after the reason.
          throw new Error(`NOPERM this user has no permissions to run the 'set' command, command was: [["set","x","${secret}"]]`);
        },
      };
      const store = makeStore({ adapter, idleTimeout: 10 * SECOND, absoluteTimeout: 3600 * SECOND });
      const { token, session } = await createAgo(store, 6 * SECOND, 'ivan'); // past half its idle life
      refuse = true;
      const warnings: string[] = [];
      const warn = console.warn;
      console.warn = (message: string) => warnings.push(message);
      try {
        const served = await store.touch(token);
        assert.ok(served, 'the session was refused with the renewal');
        assert.equal(served.expiresAt, session.expiresAt, 'served as it was, not renewed');
        assert.ok(await store.touch(token));
      } finally {
        console.warn = warn;
      }
      assert.equal(warnings.length, 1, `warned once: ${warnings.join(' | ')}`);
      assert.ok(warnings[0]?.includes('NOPERM') && !warnings[0].includes(secret), warnings[0]);
      // Any other refused write is a SessionStoreError whose message and cause leave the command out.
      const failure = await store.createSession('ivan', { name: 'Ivan', role: 'user' }).catch((e: unknown) => e);
      assert.ok(failure instanceof SessionStoreError, String(failure));
      assert.ok(failure.message.includes('NOPERM') && !failure.message.includes(secret), failure.message);
      assert.ok(!String((failure.cause as Error).message).includes(secret));
    });

    it('lists a user’s sessions and prunes expired index entries', async () => {
      const store = makeStore({ idleTimeout: 2 * SECOND, absoluteTimeout: 3600 * SECOND });
      const index = store.userIndexKey('erin');
      const short = await createAgo(store, 1000, 'erin'); // expires in ~1 s
      const live1 = await store.createSession('erin', { name: 'Erin', role: 'user' });
      const live2 = await store.createSession('erin', { name: 'Erin', role: 'user' });
      await store.createSession('frank', { name: 'Frank', role: 'user' });
      // An index entry whose session is already gone (e.g. lost in some crash) and an
      // entry that expired long ago.
      const ghost = sha256('ghost');
      await admin.zadd(index, Date.now() + 60_000, ghost);
      await admin.zadd(index, Date.now() - 60_000, sha256('stale'));
      assert.equal(await admin.zcard(index), 5);
      await sleep(short.session.expiresAt - Date.now() + 50);
      const list = await store.listUserSessions('erin');
      assert.deepEqual(list.map((s) => s.id).sort(), [live1.session.id, live2.session.id].sort());
      assert.ok(list.every((s) => !('csrfToken' in s)));
      assert.deepEqual(
        (await admin.zrange(index, 0, -1)).sort(),
        [live1.session.id, live2.session.id].sort(),
        'expired and dangling entries pruned',
      );
      // createSession prunes expired entries too.
      await admin.zadd(index, Date.now() - 1, sha256('stale-2'));
      await store.createSession('erin', { name: 'Erin', role: 'user' });
      assert.equal(await admin.zscore(index, sha256('stale-2')), null);
      assert.equal(await admin.zcard(index), 3);
      // The index key itself expires with the latest absolute expiry.
      const indexExpiry = await admin.pexpiretime(index);
      assert.ok(indexExpiry > Date.now() + 3500 * SECOND && indexExpiry <= Date.now() + 3600 * SECOND, `index PEXPIRETIME ${indexExpiry}`);
    });

    it('destroyUserSessions logs out everywhere (optionally except one); destroySessionById checks the owner', async () => {
      const store = makeStore();
      const a = await store.createSession('gina', { name: 'Gina', role: 'user' });
      const b = await store.createSession('gina', { name: 'Gina', role: 'user' });
      const c = await store.createSession('gina', { name: 'Gina', role: 'user' });
      const other = await store.createSession('hank', { name: 'Hank', role: 'user' });

      assert.equal(await store.destroySessionById('hank', a.session.id), false, 'not hank’s session');
      assert.ok(await store.getSession(a.token));
      assert.equal(await store.destroySessionById('gina', c.session.id), true);
      assert.equal(await store.getSession(c.token), null);

      assert.equal(await store.destroyUserSessions('gina', { except: a.session.id }), 1);
      assert.ok(await store.getSession(a.token));
      assert.equal(await store.getSession(b.token), null);
      assert.equal(await store.destroyUserSessions('gina'), 1);
      assert.equal(await store.getSession(a.token), null);
      assert.deepEqual(await store.listUserSessions('gina'), []);
      assert.equal(await admin.exists(store.userIndexKey('gina')), 0);
      assert.ok(await store.getSession(other.token), 'other users unaffected');
    });

    it('edge middleware helper redirects without a live session and passes with one', async () => {
      const store = makeStore();
      const mw = sessionMiddleware(store, { loginPath: '/login' });
      const { token } = await store.createSession('ivy', { name: 'Ivy', role: 'user' });
      const req = (cookie?: string) =>
        new Request('https://app.example/dashboard?tab=1', { headers: cookie ? { cookie } : {} });
      assert.equal(await mw(req(`a=b; __Host-session=${token}`)), undefined);
      const missing = await mw(req());
      assert.equal(missing?.status, 307);
      assert.equal(missing?.headers.get('location'), 'https://app.example/login?next=%2Fdashboard%3Ftab%3D1');
      assert.equal(missing?.headers.get('set-cookie'), null);
      await store.destroySession(token);
      const invalid = await mw(req(`__Host-session=${token}`));
      assert.equal(invalid?.status, 307);
      assert.equal(invalid?.headers.get('x-staykv-session'), 'invalid');
      // Not deleted: this request may have raced a rotation whose new cookie it would erase.
      assert.equal(invalid?.headers.get('set-cookie'), null);
      // A POST (a Server Action) is sent to sign in with a GET, not repeated there.
      const post = await mw(new Request('https://app.example/dashboard', { method: 'POST', body: 'x' }));
      assert.equal(post?.status, 303);
      assert.equal(post?.headers.get('location'), 'https://app.example/login?next=%2Fdashboard');
    });

    it('a command the store refuses surfaces as a SessionStoreError carrying its reply', async () => {
      const store = makeStore();
      await admin.set(store.userIndexKey('jay'), 'not a sorted set');
      await assert.rejects(store.createSession('jay', { name: 'Jay', role: 'user' }), (e: unknown) => {
        assert.ok(e instanceof SessionStoreError, String(e));
        assert.match(String((e.cause as Error).message), /WRONGTYPE/);
        assert.match(e.message, new RegExp(`session store \\(${conn.adapter.name}\\) failed: .*WRONGTYPE`));
        return true;
      });
      // The transaction's SETs ran before its ZADD failed: the library took them back, so no
      // session that no token reaches is left in the store.
      assert.deepEqual(await admin.keys(`${store.keyPrefix}*`), []);
      await admin.del(store.userIndexKey('jay'));
    });

    it('the store never holds a raw token (all keys and values scanned)', async () => {
      assert.ok(issued.size > 50, `tokens issued in this suite: ${issued.size}`);
      const needles: string[] = [];
      for (const t of issued) {
        const bytes = Buffer.from(t, 'base64url');
        needles.push(t, bytes.toString('hex'), bytes.toString('base64'), bytes.toString('latin1'));
      }
      let keys = 0;
      let cursor = '0';
      do {
        const [next, batch] = await admin.scan(cursor, 'COUNT', 500);
        cursor = next;
        for (const key of batch) {
          keys++;
          const type = await admin.type(key);
          let contents: string[];
          if (type === 'string') contents = [(await admin.get(key)) ?? ''];
          else if (type === 'zset') contents = await admin.zrange(key, 0, -1, 'WITHSCORES');
          else if (type === 'hash') contents = Object.entries(await admin.hgetall(key)).flat();
          else if (type === 'set') contents = await admin.smembers(key);
          else if (type === 'list') contents = await admin.lrange(key, 0, -1);
          else throw new Error(`unexpected key type ${type} for ${key}`);
          for (const hay of [key, ...contents]) {
            for (const n of needles) assert.ok(!hay.includes(n), `raw token found in ${key}`);
          }
          if (/:session:[0-9a-f]{64}$/.test(key)) {
            const meta = JSON.parse(contents[0]!);
            assert.deepEqual(Object.keys(meta).sort(), ['absoluteExpiresAt', 'createdAt', 'csrf', 'expiresAt', 'renewedAt', 'userId', 'v']);
          }
        }
      } while (cursor !== '0');
      assert.ok(keys > 10, `scanned ${keys} keys`);
      // And every live session key is the SHA-256 of a token we issued.
      const hashes = new Set([...issued].map(sha256));
      const all = await admin.keys('*:session:*');
      const sessionKeys = all.filter((k) => !k.endsWith(':data') && !k.endsWith(':rotated'));
      assert.ok(sessionKeys.length > 0);
      for (const k of sessionKeys) assert.ok(hashes.has(k.split(':').pop()!), `${k} is SHA-256 of an issued token`);
      // A rotated session's pointer leads from one such hash to another.
      const pointers = all.filter((k) => k.endsWith(':rotated'));
      assert.ok(pointers.length > 0);
      for (const k of pointers) {
        const next = JSON.parse((await admin.get(k)) ?? '{}').next;
        assert.ok(hashes.has(k.split(':').at(-2)!) && hashes.has(next), `${k} -> ${next}`);
      }
    });
  });
}
