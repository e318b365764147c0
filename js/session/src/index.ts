export { createSessionStore, SessionStore, SessionStoreError } from './store.js';
export type { Session, SessionInfo, CreatedSession, SessionStoreOptions } from './store.js';
export { ioredisAdapter } from './adapters/ioredis.js';
export type { IORedisLike } from './adapters/ioredis.js';
export { nodeRedisAdapter } from './adapters/node-redis.js';
export type { NodeRedisLike, NodeRedisMultiLike } from './adapters/node-redis.js';
export { upstashAdapter } from './adapters/upstash.js';
export type { UpstashRedisLike, UpstashPipelineLike } from './adapters/upstash.js';
export type { SessionAdapter, StoreCommand, ScoreBound } from './adapters/types.js';
export {
  generateToken,
  isWellFormedToken,
  isWellFormedSessionId,
  sessionIdForToken,
  sha256Hex,
  timingSafeEqual,
} from './crypto.js';
export {
  sessionCookieName,
  sessionCookieOptions,
  clearedCookieOptions,
  serializeCookie,
  readCookie,
  HOST_PREFIX,
} from './cookie.js';
export type { SessionCookieOptions } from './cookie.js';
export { verifyOrigin, verifyCsrfToken } from './csrf.js';
export type { VerifyOriginOptions, RequestLike } from './csrf.js';
