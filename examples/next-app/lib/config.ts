// Shared by the Node code (RESP) and the middleware/proxy (HTTP): both must agree on
// lifetimes and key names. No Node-only imports here.
export interface SessionData {
  email: string;
  name: string;
  /** Shown in the "your devices" list. */
  userAgent: string;
}

export const sessionConfig = {
  idleTimeout: 2 * 60 * 60 * 1000, // 2 h of inactivity
  absoluteTimeout: 7 * 24 * 60 * 60 * 1000, // re-login after 7 days
  keyPrefix: 'session:',
  userIndexPrefix: 'user-sessions:',
};

export const cookieName = 'session'; // → __Host-session

function required(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`environment variable ${name} is not set (see README.md)`);
  return v;
}

export const env = {
  /** RESP endpoint for Node code, e.g. redis://127.0.0.1:6379 */
  redisUrl: () => required('STAYKV_URL'),
  /** HTTP API for the middleware/proxy, e.g. http://127.0.0.1:8079 */
  httpUrl: () => required('STAYKV_HTTP_URL'),
  /** The middleware only reads: the HTTP API's read-only token (`staykv --http-readonly-token`). */
  httpReadonlyToken: () => required('STAYKV_HTTP_READONLY_TOKEN'),
};
