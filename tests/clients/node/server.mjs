// Starts a real server for the client tests: the workspace's `staykv` binary (built by
// `cargo build`; override with STAYKV_BIN) or Debian's `redis-server`, on a free loopback
// port with a temporary data directory, and stops it afterwards.
//
// startServer('redis') resolves to null when redis-server is not installed (the caller skips
// with `skipReason`), unless STAYKV_REQUIRE_REDIS=1, when it throws: CI cannot pass by skipping.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, existsSync, closeSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const STAYKV_BIN = process.env.STAYKV_BIN ?? path.resolve(here, '../../../target/debug/staykv');

export const skipReason = 'redis-server is not installed (apt-get install redis-server, or run ./scripts/test)';

function onPath(program) {
  return spawnSync('sh', ['-c', `command -v ${program}`]).status === 0;
}

/** A loopback port free right now (the OS's pick, released at once). */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Send PING on a raw socket; resolves to the first reply line, or null on any failure. */
function ping(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    let data = '';
    const done = (value) => {
      sock.destroy();
      resolve(value);
    };
    sock.setTimeout(1000, () => done(null));
    sock.on('error', () => done(null));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (chunk) => {
      data += chunk.toString('latin1');
      if (data.includes('\r\n')) done(data.split('\r\n')[0]);
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * @param {'staykv' | 'redis'} kind
 * @returns {Promise<null | { kind: string, port: number, url: string, stop: () => Promise<void>, log: () => string }>}
 */
export async function startServer(kind) {
  if (kind === 'redis' && !onPath('redis-server')) {
    if (process.env.STAYKV_REQUIRE_REDIS === '1') {
      throw new Error(`${skipReason}; STAYKV_REQUIRE_REDIS=1 forbids skipping`);
    }
    return null;
  }
  if (kind === 'staykv' && !existsSync(STAYKV_BIN)) {
    throw new Error(`${STAYKV_BIN} does not exist: run \`cargo build\` first (or set STAYKV_BIN)`);
  }
  const root = mkdtempSync(path.join(tmpdir(), `staykv-node-${kind}-`));
  const logPath = path.join(root, 'server.log');
  const log = () => (existsSync(logPath) ? readFileSync(logPath, 'utf8') : '');
  for (let attempt = 0; attempt < 8; attempt++) {
    const port = await freePort();
    const args =
      kind === 'staykv'
        ? ['--port', String(port), '--http-port', '0', '--dir', path.join(root, 'data')]
        : ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', root];
    const fd = openSync(logPath, 'a');
    const child = spawn(kind === 'staykv' ? STAYKV_BIN : 'redis-server', args, {
      stdio: ['ignore', fd, fd],
      env: { ...process.env, NO_COLOR: '1' },
    });
    closeSync(fd);
    let exited = null;
    child.on('exit', (code, signal) => {
      exited = { code, signal };
    });
    const deadline = Date.now() + 30_000;
    while (exited === null && Date.now() < deadline) {
      if ((await ping(port)) === '+PONG') {
        return {
          kind,
          port,
          url: `redis://127.0.0.1:${port}`,
          log,
          stop: async () => {
            if (exited === null) {
              const gone = new Promise((r) => child.once('exit', r));
              child.kill('SIGKILL');
              await gone;
            }
            rmSync(root, { recursive: true, force: true });
          },
        };
      }
      await sleep(20);
    }
    if (exited === null) {
      child.kill('SIGKILL');
      throw new Error(`${kind} did not answer PING within 30 s; log:\n${log()}`);
    }
    if (!/in use|cannot listen/.test(log())) {
      throw new Error(`${kind} exited (${JSON.stringify(exited)}) before answering PING; log:\n${log()}`);
    }
  }
  throw new Error(`${kind}: no free port after 8 attempts; log:\n${log()}`);
}
