// Process helpers for the end-to-end test: StayKV, `next build` / `next start`, ports.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const appRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const repoRoot = path.resolve(appRoot, '../..');
export const staykvBin = process.env.STAYKV_BIN ?? path.join(repoRoot, 'target/debug/staykv');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Runs a command to completion; rejects with its output on failure. */
export function run(cmd, args, { cwd, env, quiet = false } = {}) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const onData = (d) => {
      out += d.toString();
      if (!quiet) process.stderr.write(d.toString().replace(/^/gm, `    [${path.basename(cmd)}] `));
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) resolve({ out, ms: Date.now() - started });
      else reject(Object.assign(new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited with ${code}\n${out.slice(-4000)}`), { out }));
    });
  });
}

function tail(child) {
  let out = '';
  const keep = (d) => (out = (out + d.toString()).slice(-20000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => out;
}

function pingResp(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    let buf = '';
    const done = (ok) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
  });
}

async function waitUntil(what, fn, child, log, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}:\n${log()}`);
    if (await fn()) return;
    await sleep(100);
  }
  throw new Error(`${what} not ready after ${timeoutMs} ms:\n${log ? log() : ''}`);
}

/**
 * A StayKV server with a fixed data dir and fixed ports, so it can be killed (SIGKILL) and
 * started again on the same data.
 */
export class StayKV {
  constructor() {
    this.dir = mkdtempSync(path.join(tmpdir(), 'staykv-e2e-'));
    this.token = 'e2e-' + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
    this.readonlyToken = 'e2e-ro-' + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
    this.child = null;
  }

  async start() {
    if (!existsSync(staykvBin)) throw new Error(`${staykvBin} not found: run \`cargo build\` at the repository root first (or set STAYKV_BIN)`);
    this.port ??= await freePort();
    this.httpPort ??= await freePort();
    const args = ['--port', String(this.port), '--http-port', String(this.httpPort), '--dir', this.dir, '--fsync', 'always',
      '--http-token', this.token, '--http-readonly-token', this.readonlyToken];
    this.child = spawn(staykvBin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const log = tail(this.child);
    this.log = log;
    await waitUntil('staykv (RESP)', () => pingResp(this.port), this.child, log);
    await waitUntil(
      'staykv (HTTP API)',
      async () => {
        try {
          const r = await fetch(`${this.httpUrl}/`, {
            method: 'POST',
            headers: { authorization: `Bearer ${this.token}` },
            body: '["PING"]',
            signal: AbortSignal.timeout(1000),
          });
          return (await r.json()).result === 'PONG';
        } catch {
          return false;
        }
      },
      this.child,
      log,
      10_000,
    );
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }
  get httpUrl() {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  /** kill -9: no shutdown hook runs; only what was fsynced survives. */
  async kill9() {
    const exited = new Promise((r) => this.child.once('exit', (code, signal) => r(signal)));
    this.child.kill('SIGKILL');
    return exited;
  }

  async stop() {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }

  /** Sum of staykv_http_requests_total over all labels, or null if not exported. */
  async httpRequestCount() {
    try {
      const text = await (await fetch(`${this.httpUrl}/metrics`, { headers: { authorization: `Bearer ${this.token}` } })).text();
      const lines = text.split('\n').filter((l) => l.startsWith('staykv_http_requests_total'));
      if (lines.length === 0) return null;
      return lines.reduce((sum, l) => sum + Number(l.trim().split(/\s+/).pop()), 0);
    } catch {
      return null;
    }
  }
}

/** `next start` of an already built app. */
export class NextServer {
  constructor(appDir, env) {
    this.appDir = appDir;
    this.env = env;
  }

  async start() {
    this.port = await freePort();
    const nextBin = path.join(this.appDir, 'node_modules/next/dist/bin/next');
    this.child = spawn(process.execPath, [nextBin, 'start', '-p', String(this.port), '-H', '127.0.0.1'], {
      cwd: this.appDir,
      env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1', NODE_ENV: 'production', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.log = tail(this.child);
    await waitUntil(
      'next start',
      async () => {
        try {
          const r = await fetch(`http://127.0.0.1:${this.port}/login`, { signal: AbortSignal.timeout(5000) });
          return r.status === 200;
        } catch {
          return false;
        }
      },
      this.child,
      this.log,
      60_000,
    );
  }

  /** The origin the browser uses: localhost is a secure context, so `__Host-` cookies work over http. */
  get origin() {
    return `http://localhost:${this.port}`;
  }

  async stop() {
    if (!this.child || this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
}
