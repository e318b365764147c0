// Starts real servers for the tests: the staykv binary of this repository and Debian's
// redis-server, each on ephemeral ports with a throwaway data directory.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../../..');
export const staykvBin = process.env.STAYKV_BIN ?? path.join(repoRoot, 'target/debug/staykv');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One PING over a raw socket; true on +PONG. */
function pingResp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    let buf = '';
    const done = (ok: boolean) => {
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

async function waitForResp(port: number, proc: ChildProcess, what: string, log: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`${what} exited with ${proc.exitCode}:\n${log()}`);
    if (await pingResp(port)) return;
    await sleep(50);
  }
  throw new Error(`${what} did not answer PING on port ${port} within 15 s:\n${log()}`);
}

export interface ServerHandle {
  name: string;
  port: number;
  stop(): Promise<void>;
}

export interface StayKVHandle extends ServerHandle {
  httpPort: number;
  httpToken: string;
  httpUrl: string;
  /** null when the HTTP API answers, else why it does not. */
  httpUnavailableReason: string | null;
}

function collect(proc: ChildProcess): () => string {
  let out = '';
  proc.stdout?.on('data', (d) => (out = (out + d.toString()).slice(-8000)));
  proc.stderr?.on('data', (d) => (out = (out + d.toString()).slice(-8000)));
  return () => out;
}

function stopper(proc: ChildProcess, cleanup: () => void): () => Promise<void> {
  return async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    cleanup();
  };
}

export async function startStayKV(): Promise<StayKVHandle> {
  if (!existsSync(staykvBin)) {
    throw new Error(`${staykvBin} not found: build it first with \`cargo build\` at the repository root (or set STAYKV_BIN)`);
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'staykv-session-test-'));
  const port = await freePort();
  const httpPort = await freePort();
  const httpToken = 'test-token-' + Math.random().toString(36).slice(2);
  const proc = spawn(
    staykvBin,
    ['--port', String(port), '--http-port', String(httpPort), '--dir', dir, '--http-token', httpToken, '--loglevel', 'warn'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const log = collect(proc);
  const stop = stopper(proc, () => rmSync(dir, { recursive: true, force: true }));
  try {
    await waitForResp(port, proc, 'staykv', log);
  } catch (e) {
    await stop();
    throw e;
  }
  const httpUrl = `http://127.0.0.1:${httpPort}`;
  const httpUnavailableReason = await probeHttp(httpUrl, httpToken, log);
  return { name: 'staykv', port, httpPort, httpToken, httpUrl, httpUnavailableReason, stop };
}

/** Does the HTTP API (Upstash REST dialect) answer `["PING"]` and `/multi-exec`? */
async function probeHttp(url: string, token: string, log: () => string): Promise<string | null> {
  const deadline = Date.now() + 3000;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const r = await fetch(url + '/', {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(['PING']),
        signal: AbortSignal.timeout(1000),
      });
      const body = (await r.json()) as { result?: unknown };
      if (body.result !== 'PONG') return `HTTP API answered ${r.status} ${JSON.stringify(body)} to ["PING"]`;
      const m = await fetch(url + '/multi-exec', {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify([['PING']]),
        signal: AbortSignal.timeout(1000),
      });
      if (!m.ok) return `HTTP API has no /multi-exec (status ${m.status})`;
      return null;
    } catch (e) {
      last = (e as Error).cause ? String((e as Error & { cause: unknown }).cause) : String(e);
    }
    await sleep(100);
  }
  const hint = /not part of this build[^\n]*/.exec(log())?.[0];
  return `no HTTP API on ${url} (${hint ? `staykv says: "${hint}"` : last})`;
}

export async function startRedisServer(): Promise<ServerHandle> {
  const bin = process.env.REDIS_SERVER_BIN ?? '/usr/bin/redis-server';
  if (!existsSync(bin)) throw new Error(`${bin} not found: apt-get install redis-server`);
  const dir = mkdtempSync(path.join(tmpdir(), 'redis-session-test-'));
  const port = await freePort();
  const proc = spawn(
    bin,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const log = collect(proc);
  const stop = stopper(proc, () => rmSync(dir, { recursive: true, force: true }));
  try {
    await waitForResp(port, proc, 'redis-server', log);
  } catch (e) {
    await stop();
    throw e;
  }
  return { name: 'redis-server', port, stop };
}
