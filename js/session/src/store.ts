import type { SessionAdapter, StoreCommand } from './adapters/types.js';
import {
  generateToken,
  isWellFormedSessionId,
  isWellFormedToken,
  sha256Hex,
  timingSafeEqual,
} from './crypto.js';

const SECOND = 1000;
const DAY = 24 * 60 * 60 * SECOND;
/**
 * How long a rotated session's old id still leads to the new one: far longer than a destroy
 * takes between reading a session and deleting it, which a rotation may fall between.
 */
const ROTATED_POINTER_MS = 60 * SECOND;
/** The most rotations a destroy follows (each one within the pointer's life adds one). */
const MAX_ROTATION_HOPS = 10;

export interface SessionStoreOptions {
  /** The store client, wrapped by `ioredisAdapter`, `nodeRedisAdapter` or `upstashAdapter`. */
  adapter: SessionAdapter;
  /**
   * Idle lifetime in ms (default 7 days). A session not renewed for this long expires.
   * `touch` renews it once less than half of it remains.
   */
  idleTimeout?: number;
  /** Absolute lifetime in ms from sign-in (default 30 days); renewal never goes past it. */
  absoluteTimeout?: number;
  /** Prefix of session keys (default `"session:"`). */
  keyPrefix?: string;
  /** Prefix of the per-user index keys (default `"user-sessions:"`). */
  userIndexPrefix?: string;
  /** Clock in Unix ms (default `Date.now`). Must agree with the store server's clock. */
  now?: () => number;
}

/** A live session as seen by the application. */
export interface Session<T> {
  /**
   * Public session id: hex SHA-256 of the token. Safe to show to the session's owner (e.g. in
   * a "your devices" list) and to use for revocation; it is not a credential.
   */
  id: string;
  userId: string;
  data: T;
  /** When the user signed in (Unix ms). Kept across rotations unless the user changes. */
  createdAt: number;
  /** Last time the expiry was moved (creation, renewal or rotation). */
  renewedAt: number;
  /** When the session expires unless renewed; always equal to the store key's expiry. */
  expiresAt: number;
  /** Hard cap: `createdAt + absoluteTimeout`. */
  absoluteExpiresAt: number;
  /** Per-session secret for the synchronizer-token CSRF pattern (see `verifyCsrfToken`). */
  csrfToken: string;
}

/** A session in `listUserSessions`: everything but the CSRF secret. */
export type SessionInfo<T> = Omit<Session<T>, 'csrfToken'>;

export interface CreatedSession<T> {
  /** The secret for the cookie. Returned once; the store only holds its SHA-256. */
  token: string;
  session: Session<T>;
}

/** What is stored under `<keyPrefix><id>` (JSON). The user data lives under `…:data`. */
interface MetaRecord {
  v: 1;
  userId: string;
  createdAt: number;
  renewedAt: number;
  expiresAt: number;
  absoluteExpiresAt: number;
  csrf: string;
}

/**
 * The store could not be reached, or refused a command: whether the session exists is
 * unknown. Catch it to answer 503 rather than 500; never treat it as "signed out" (the
 * session may be live) nor as "signed in". The `cause` is the client's error, or, when it
 * names the command it failed (`@upstash/redis` in its message, ioredis in a `command`
 * property), a stand-in with the message's first line only: a session's commands carry its
 * CSRF secret and its data, which must not reach the application's logs.
 */
export class SessionStoreError extends Error {
  override readonly name = 'SessionStoreError';
  constructor(adapter: string, cause: unknown) {
    const message = cause instanceof Error ? cause.message : String(cause);
    const text = redactCommand(message);
    const clean = cause instanceof Error && text === message && !('command' in cause);
    super(`the session store (${adapter}) failed: ${text}`, { cause: clean ? cause : redacted(cause, text) });
  }
}

/** A stand-in for the client's error `cause`, with only `text` of its message. */
function redacted(cause: unknown, text: string): Error {
  const copy = new Error(text);
  if (cause instanceof Error) copy.name = cause.name;
  return copy;
}

/** A client error's message without the command a client may append to it, first line only. */
function redactCommand(message: string): string {
  const firstLine = message.split('\n', 1)[0] ?? '';
  const cut = firstLine.search(/,? command was:/);
  return (cut >= 0 ? firstLine.slice(0, cut) : firstLine).slice(0, 300);
}

export class SessionStore<T = Record<string, unknown>> {
  readonly adapter: SessionAdapter;
  /** `adapter` with its failures turned into `SessionStoreError`s. */
  private readonly io: SessionAdapter;
  readonly idleTimeout: number;
  readonly absoluteTimeout: number;
  readonly keyPrefix: string;
  readonly userIndexPrefix: string;
  private readonly now: () => number;
  private warned = false;

  constructor(options: SessionStoreOptions) {
    if (!options || !options.adapter) throw new TypeError('createSessionStore: `adapter` is required');
    this.adapter = options.adapter;
    this.io = failingAsStoreErrors(options.adapter);
    this.idleTimeout = options.idleTimeout ?? 7 * DAY;
    this.absoluteTimeout = options.absoluteTimeout ?? 30 * DAY;
    this.keyPrefix = options.keyPrefix ?? 'session:';
    this.userIndexPrefix = options.userIndexPrefix ?? 'user-sessions:';
    this.now = options.now ?? Date.now;
    for (const [name, v] of [
      ['idleTimeout', this.idleTimeout],
      ['absoluteTimeout', this.absoluteTimeout],
    ] as const) {
      if (!Number.isFinite(v) || v < SECOND) throw new RangeError(`createSessionStore: ${name} must be at least 1000 ms`);
    }
  }

  /** Store key of the session record with this id. */
  metaKey(id: string): string {
    return this.keyPrefix + id;
  }
  /** Store key of the session's data with this id. */
  dataKey(id: string): string {
    return this.keyPrefix + id + ':data';
  }
  /**
   * Store key of a rotated session's successor (`{"next": id}`), kept for a minute so that
   * a destroy racing the rotation destroys the session it became.
   */
  rotatedKey(id: string): string {
    return this.keyPrefix + id + ':rotated';
  }
  /** Store key of a user's session index (sorted set: member = session id, score = expiresAt). */
  userIndexKey(userId: string): string {
    return this.userIndexPrefix + userId;
  }

  /**
   * Starts a new session for `userId` with a fresh 256-bit token. Call it on every sign-in
   * (and destroy the previous session, if any): a new token on login defeats session fixation.
   */
  async createSession(userId: string, data: T): Promise<CreatedSession<T>> {
    checkUserId(userId);
    const now = this.now();
    const token = generateToken();
    const id = await sha256Hex(token);
    const absoluteExpiresAt = now + this.absoluteTimeout;
    const meta: MetaRecord = {
      v: 1,
      userId,
      createdAt: now,
      renewedAt: now,
      expiresAt: Math.min(now + this.idleTimeout, absoluteExpiresAt),
      absoluteExpiresAt,
      csrf: generateToken(),
    };
    const index = this.userIndexKey(userId);
    const replies = await this.io.multi([
      { cmd: 'set', key: this.metaKey(id), value: JSON.stringify(meta), pxat: meta.expiresAt, condition: 'NX' },
      { cmd: 'set', key: this.dataKey(id), value: encodeData(data), pxat: meta.expiresAt, condition: 'NX' },
      { cmd: 'zremrangebyscore', key: index, min: '-inf', max: now },
      { cmd: 'zadd', key: index, score: meta.expiresAt, member: id },
      ...this.indexExpiry(index, absoluteExpiresAt),
    ]);
    try {
      // The last two replies are the index expiry's: PEXPIREAT NX/GT needs Redis 7 semantics
      // (an older server refuses it as it is queued, which aborts the whole transaction).
      this.throwIfError(replies.slice(0, 4));
      if (replies[0] !== 'OK' || replies[1] !== 'OK') {
        throw new Error('createSession: the store did not create the session');
      }
    } catch (error) {
      // A transaction does not roll back: the commands before the failing one ran. Take
      // back what they stored, a session whose token nobody was given. (Best effort: the
      // keys expire with the session anyway.)
      await this.io
        .multi([
          { cmd: 'del', keys: [this.metaKey(id), this.dataKey(id)] },
          { cmd: 'zrem', key: index, members: [id] },
        ])
        .catch(() => undefined);
      throw error;
    }
    return { token, session: toSession(id, meta, data) };
  }

  /**
   * The session for `token`, or null when the token is malformed, unknown, destroyed, or
   * expired (idle or absolute). Read-only: it never renews (see `touch`).
   */
  async getSession(token: string): Promise<Session<T> | null> {
    const found = await this.load(token);
    return found ? toSession(found.id, found.meta, found.data) : null;
  }

  /**
   * `getSession` plus sliding renewal: when less than half of `idleTimeout` remains, the
   * expiry moves to `now + idleTimeout` (never past `absoluteExpiresAt`). The renewal is one
   * MULTI with `SET … XX PXAT`, which can only overwrite an existing key: it can never bring
   * back a session destroyed concurrently. Its index entry is added back if missing (`ZADD
   * GT`): an app instance whose clock runs ahead may have pruned it as expired, and "log out
   * everywhere" must still find the session. Returns null if the session is gone. A
   * renewal the store refuses (a read-only token, a disk that refuses writes) returns the
   * session as it was read, unrenewed, and logs one warning per store.
   */
  async touch(token: string): Promise<Session<T> | null> {
    const found = await this.load(token);
    if (!found) return null;
    const { id, meta, data } = found;
    const now = this.now();
    if (meta.expiresAt - now >= this.idleTimeout / 2) return toSession(id, meta, data);
    const expiresAt = Math.min(now + this.idleTimeout, meta.absoluteExpiresAt);
    if (expiresAt <= meta.expiresAt) return toSession(id, meta, data);
    const renewed: MetaRecord = { ...meta, expiresAt, renewedAt: now };
    let replies: unknown[];
    try {
      replies = await this.io.multi([
        { cmd: 'set', key: this.metaKey(id), value: JSON.stringify(renewed), pxat: expiresAt, condition: 'XX' },
        { cmd: 'pexpireat', key: this.dataKey(id), at: expiresAt },
        { cmd: 'zadd', key: this.userIndexKey(meta.userId), score: expiresAt, member: id, condition: 'GT' },
      ]);
      this.throwIfError(replies);
    } catch (e) {
      // The read just succeeded, the write did not: a read-only token, or a store whose
      // disk refuses writes. The session is valid until its current expiry, so it is served
      // unrenewed (the safe direction: it can only end sooner) rather than failing the request.
      this.warnOnce(`a session renewal failed, so sessions are served without renewal: ${(e as Error).message}`);
      return toSession(id, meta, data);
    }
    if (replies[0] !== 'OK') {
      // Destroyed or rotated away in the meantime: take back the index entry just added.
      await this.io.multi([{ cmd: 'zrem', key: this.userIndexKey(meta.userId), members: [id] }]);
      return null;
    }
    return toSession(id, renewed, data);
  }

  /**
   * Replaces the session's data (pass a function to derive it from the current data). The
   * expiry is untouched (`SET … XX KEEPTTL`); returns null if the session is gone. Two
   * concurrent updates of the same session: the last one wins.
   */
  async updateSession(token: string, update: T | ((current: T) => T)): Promise<Session<T> | null> {
    const found = await this.load(token);
    if (!found) return null;
    const data = typeof update === 'function' ? (update as (current: T) => T)(found.data) : update;
    const replies = await this.io.multi([
      { cmd: 'set', key: this.dataKey(found.id), value: encodeData(data), keepTtl: true, condition: 'XX' },
    ]);
    this.throwIfError(replies);
    if (replies[0] !== 'OK') return null;
    return toSession(found.id, found.meta, data);
  }

  /**
   * Moves the session to a new token and deletes the old one, atomically (`RENAME` inside
   * MULTI: if the old session was destroyed concurrently, nothing is created). Use it on
   * privilege changes (and on sign-in when you keep pre-login data). Options:
   * - `data`: replace the data at the same time;
   * - `userId`: move the session to another user (a sign-in): this also restarts the
   *   absolute lifetime.
   * The CSRF token is regenerated and the idle expiry restarts. Returns null (and creates
   * nothing) if the old session is gone.
   */
  async rotateSession(
    token: string,
    options: { data?: T; userId?: string } = {},
  ): Promise<CreatedSession<T> | null> {
    const found = await this.load(token);
    if (!found) return null;
    const { id, meta } = found;
    const userId = options.userId ?? meta.userId;
    checkUserId(userId);
    const now = this.now();
    const userChanged = userId !== meta.userId;
    const absoluteExpiresAt = userChanged ? now + this.absoluteTimeout : meta.absoluteExpiresAt;
    const expiresAt = Math.min(now + this.idleTimeout, absoluteExpiresAt);
    if (expiresAt <= now) return null;
    const next: MetaRecord = {
      v: 1,
      userId,
      createdAt: userChanged ? now : meta.createdAt,
      renewedAt: now,
      expiresAt,
      absoluteExpiresAt,
      csrf: generateToken(),
    };
    const newToken = generateToken();
    const newId = await sha256Hex(newToken);
    const oldIndex = this.userIndexKey(meta.userId);
    const newIndex = this.userIndexKey(userId);
    const replaceData = options.data !== undefined;
    const data = replaceData ? (options.data as T) : found.data;
    const commands: StoreCommand[] = [
      // Both RENAMEs fail if the session is gone; then nothing below creates a session (the
      // ZADD leaves an index entry pointing at nothing, removed right after).
      { cmd: 'rename', key: this.metaKey(id), to: this.metaKey(newId) },
      { cmd: 'rename', key: this.dataKey(id), to: this.dataKey(newId) },
      { cmd: 'set', key: this.metaKey(newId), value: JSON.stringify(next), pxat: expiresAt, condition: 'XX' },
      replaceData
        ? { cmd: 'set', key: this.dataKey(newId), value: encodeData(data), pxat: expiresAt, condition: 'XX' }
        : { cmd: 'pexpireat', key: this.dataKey(newId), at: expiresAt },
      { cmd: 'zrem', key: oldIndex, members: [id] },
      // In the same transaction, so "log out everywhere" can never miss the new session.
      { cmd: 'zadd', key: newIndex, score: expiresAt, member: newId },
      // And a sign-out that read the old session just before cannot miss it either. Only
      // the rotation whose RENAMEs moved the session writes it (NX): one that lost a race
      // runs after the winner's transaction and would point the old id at nothing.
      {
        cmd: 'set',
        key: this.rotatedKey(id),
        value: JSON.stringify({ next: newId }),
        pxat: Math.min(expiresAt, now + ROTATED_POINTER_MS),
        condition: 'NX',
      },
    ];
    // Always: for the same user, a ZREM of its only session deletes the index, and the ZADD
    // recreates it without an expiry.
    commands.push(...this.indexExpiry(newIndex, absoluteExpiresAt));
    const replies = await this.io.multi(commands);
    if (replies[0] instanceof Error || replies[1] instanceof Error) {
      // The session vanished between our read and the transaction. Drop the index entry
      // the transaction added for a session that does not exist, and the pointer to it if
      // ours was the first (the session was destroyed, not rotated): no other rotation of
      // the old id can succeed now, so a pointer naming our id is ours alone.
      await this.io.multi([{ cmd: 'zrem', key: newIndex, members: [newId] }]);
      if ((await this.rotatedTo(id, 0)) === newId) await this.io.multi([{ cmd: 'del', keys: [this.rotatedKey(id)] }]);
      if (isNoSuchKey(replies[0])) return null; // any other error is thrown just below
    }
    this.throwIfError(replies.slice(0, 7)); // see createSession for the index-expiry replies
    if (replies[2] !== 'OK') return null;
    return { token: newToken, session: toSession(newId, next, data) };
  }

  /** Destroys the session of `token` (sign-out). Returns whether it existed. */
  async destroySession(token: string): Promise<boolean> {
    if (!isWellFormedToken(token)) return false;
    const id = await sha256Hex(token);
    return this.destroyById(id, null);
  }

  /**
   * Destroys the session `sessionId` if it belongs to `userId` ("log out this device" from a
   * session list). Returns false for unknown ids and for sessions of other users.
   */
  async destroySessionById(userId: string, sessionId: string): Promise<boolean> {
    if (!isWellFormedSessionId(sessionId) || typeof userId !== 'string') return false;
    return this.destroyById(sessionId, userId);
  }

  /**
   * The live sessions of `userId`, newest first. Prunes index entries of expired or missing
   * sessions.
   */
  async listUserSessions(userId: string): Promise<SessionInfo<T>[]> {
    checkUserId(userId);
    const now = this.now();
    const index = this.userIndexKey(userId);
    const replies = await this.io.multi([
      { cmd: 'zremrangebyscore', key: index, min: '-inf', max: now },
      { cmd: 'zrangebyscore', key: index, min: `(${now}`, max: '+inf' },
    ]);
    this.throwIfError(replies);
    const ids = (replies[1] as unknown[]).map(String);
    if (ids.length === 0) return [];
    const values = await this.io.mget(ids.flatMap((id) => [this.metaKey(id), this.dataKey(id)]));
    const sessions: SessionInfo<T>[] = [];
    const stale: string[] = [];
    ids.forEach((id, i) => {
      const meta = decodeMeta(values[2 * i]);
      const data = decodeData<T>(values[2 * i + 1]);
      if (!meta || data === undefined || meta.userId !== userId) {
        stale.push(id);
        return;
      }
      if (!isLive(meta, this.now())) return;
      const { csrfToken: _omit, ...info } = toSession(id, meta, data.value);
      sessions.push(info);
    });
    if (stale.length > 0) await this.io.multi([{ cmd: 'zrem', key: index, members: stale }]);
    return sessions.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? -1 : 1));
  }

  /**
   * Destroys every session of `userId` ("log out everywhere", password change), except the
   * one whose id is `except` if given. Returns how many sessions were destroyed. It reads the
   * index and deletes what it read, repeating until a read finds nothing left to delete, so
   * a session created while it runs is caught by the next round.
   */
  async destroyUserSessions(userId: string, options: { except?: string } = {}): Promise<number> {
    checkUserId(userId);
    const index = this.userIndexKey(userId);
    const except = options.except;
    let destroyed = 0;
    for (let round = 0; round < 10; round++) {
      const ids = await this.io.zrangebyscore(index, '-inf', '+inf');
      const targets = ids.filter((id) => !(except !== undefined && timingSafeEqual(id, except)));
      if (targets.length === 0) return destroyed;
      const replies = await this.io.multi([
        { cmd: 'del', keys: targets.map((id) => this.metaKey(id)) },
        { cmd: 'del', keys: targets.map((id) => this.dataKey(id)) },
        { cmd: 'zrem', key: index, members: targets },
      ]);
      this.throwIfError(replies);
      destroyed += Number(replies[0]) || 0;
    }
    throw new Error(`destroyUserSessions: sessions of ${JSON.stringify(userId)} keep appearing; gave up after 10 rounds`);
  }

  // ---------------------------------------------------------------------------------------

  private async load(token: string): Promise<{ id: string; meta: MetaRecord; data: T } | null> {
    if (!isWellFormedToken(token)) return null;
    const id = await sha256Hex(token);
    const [rawMeta, rawData] = await this.io.mget([this.metaKey(id), this.dataKey(id)]);
    const meta = decodeMeta(rawMeta);
    const data = decodeData<T>(rawData);
    if (!meta || data === undefined || !isLive(meta, this.now())) return null;
    return { id, meta, data: data.value };
  }

  /**
   * Destroys session `id` (of `owner`, when given). A rotation may move it between the read
   * and the delete, or just before the read: then the session it became is destroyed, found
   * through the rotated id's pointer (`hops` followed so far).
   */
  private async destroyById(id: string, owner: string | null, hops = 0): Promise<boolean> {
    const meta = decodeMeta(await this.io.get(this.metaKey(id)));
    if (!meta) {
      const next = await this.rotatedTo(id, hops);
      if (next) return this.destroyById(next, owner, hops + 1);
    }
    if (owner !== null) {
      if (!meta) {
        await this.io.multi([{ cmd: 'zrem', key: this.userIndexKey(owner), members: [id] }]);
        return false;
      }
      if (!timingSafeEqual(meta.userId, owner)) return false;
    }
    const commands: StoreCommand[] = [{ cmd: 'del', keys: [this.metaKey(id), this.dataKey(id)] }];
    if (meta) commands.push({ cmd: 'zrem', key: this.userIndexKey(meta.userId), members: [id] });
    const replies = await this.io.multi(commands);
    this.throwIfError(replies);
    if (!meta) return false;
    if (Number(replies[0]) > 0) return true;
    const next = await this.rotatedTo(id, hops);
    return next ? this.destroyById(next, owner, hops + 1) : false;
  }

  /** The id session `id` was rotated to within the last minute, if any (and `hops` allow). */
  private async rotatedTo(id: string, hops: number): Promise<string | null> {
    if (hops >= MAX_ROTATION_HOPS) return null;
    const pointer = decodeJson(await this.io.get(this.rotatedKey(id))) as { next?: unknown } | undefined;
    const next = pointer && typeof pointer === 'object' ? pointer.next : undefined;
    return typeof next === 'string' && isWellFormedSessionId(next) ? next : null;
  }

  /** Logs `message` the first time this store has one to log (a library should not flood). */
  private warnOnce(message: string): void {
    if (this.warned) return;
    this.warned = true;
    console.warn(`@staykv/session: ${message}`);
  }

  /** Throws the first command error among `replies`, as a `SessionStoreError`. */
  private throwIfError(replies: unknown[]): void {
    const e = firstError(replies);
    if (e) throw new SessionStoreError(this.adapter.name, e);
  }

  /**
   * Keeps the index key alive as long as its longest-lived session could be: set an expiry
   * if it has none (NX), raise it if this one is later (GT). Never lowers it.
   */
  private indexExpiry(index: string, at: number): StoreCommand[] {
    return [
      { cmd: 'pexpireat', key: index, at, option: 'NX' },
      { cmd: 'pexpireat', key: index, at, option: 'GT' },
    ];
  }
}

/** Creates a session store over an adapter. `T` is the type of the per-session data. */
export function createSessionStore<T = Record<string, unknown>>(options: SessionStoreOptions): SessionStore<T> {
  return new SessionStore<T>(options);
}

function checkUserId(userId: unknown): asserts userId is string {
  if (typeof userId !== 'string' || userId.length === 0 || userId.length > 512) {
    throw new TypeError('userId must be a non-empty string of at most 512 characters');
  }
}

function toSession<T>(id: string, meta: MetaRecord, data: T): Session<T> {
  return {
    id,
    userId: meta.userId,
    data,
    createdAt: meta.createdAt,
    renewedAt: meta.renewedAt,
    expiresAt: meta.expiresAt,
    absoluteExpiresAt: meta.absoluteExpiresAt,
    csrfToken: meta.csrf,
  };
}

function isLive(meta: MetaRecord, now: number): boolean {
  return now < meta.expiresAt && now < meta.absoluteExpiresAt;
}

/** Values may arrive as strings, or already JSON-decoded (Upstash automatic deserialization). */
function decodeJson(raw: unknown): unknown {
  if (raw === null || raw === undefined) return undefined;
  if (typeof raw === 'string') {
    try {
      return JSON.parse(raw);
    } catch {
      return undefined;
    }
  }
  if (raw instanceof Uint8Array) return decodeJson(new TextDecoder().decode(raw));
  return raw;
}

function decodeMeta(raw: unknown): MetaRecord | null {
  const m = decodeJson(raw) as Partial<MetaRecord> | undefined;
  if (
    !m ||
    typeof m !== 'object' ||
    m.v !== 1 ||
    typeof m.userId !== 'string' ||
    typeof m.csrf !== 'string' ||
    !Number.isFinite(m.createdAt) ||
    !Number.isFinite(m.renewedAt) ||
    !Number.isFinite(m.expiresAt) ||
    !Number.isFinite(m.absoluteExpiresAt)
  ) {
    return null;
  }
  return m as MetaRecord;
}

/** Data is stored wrapped (`{"d": …}`) so that it is always a JSON object on the wire. */
function encodeData(data: unknown): string {
  return JSON.stringify({ d: data });
}

function decodeData<T>(raw: unknown): { value: T } | undefined {
  const w = decodeJson(raw);
  if (!w || typeof w !== 'object' || Array.isArray(w)) return undefined;
  return { value: (w as { d: T }).d };
}

function firstError(replies: unknown[]): Error | undefined {
  return replies.find((r): r is Error => r instanceof Error);
}

/** `adapter`, with every failure of its calls (a rejection, or a throw) a `SessionStoreError`. */
function failingAsStoreErrors(adapter: SessionAdapter): SessionAdapter {
  const guard = async <R>(call: () => Promise<R>): Promise<R> => {
    try {
      return await call();
    } catch (e) {
      throw new SessionStoreError(adapter.name, e);
    }
  };
  return {
    name: adapter.name,
    get: (key) => guard(() => adapter.get(key)),
    mget: (keys) => guard(() => adapter.mget(keys)),
    zrangebyscore: (key, min, max) => guard(() => adapter.zrangebyscore(key, min, max)),
    multi: (commands) => guard(() => adapter.multi(commands)),
  };
}

function isNoSuchKey(e: unknown): boolean {
  return e instanceof Error && /no such key/i.test(e.message);
}
