// ioredis over TLS against the real `staykv` binary, with certificates made by openssl for
// the test (issue: "redis-cli --tls and ioredis with tls connect"; redis-cli is covered by
// crates/server/tests/tls.rs). A plaintext client to the TLS port must fail, not hang.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import Redis from 'ioredis';

import { STAYKV_BIN, freePort } from './server.mjs';

function openssl(dir, args) {
  const run = spawnSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  assert.equal(run.status, 0, `openssl ${args.join(' ')}: ${run.stderr}`);
}

/** A CA and a server certificate for 127.0.0.1, signed by it. */
function makeCertificates(dir) {
  openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem',
    '-days', '2', '-subj', '/CN=test-ca']);
  openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr',
    '-subj', '/CN=server']);
  writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl(dir, ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'server.pem', '-days', '2', '-extfile', 'san.ext']);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

describe('ioredis with tls', () => {
  let dir;
  let child;
  let port;
  let ca;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'staykv-node-tls-'));
    makeCertificates(dir);
    ca = readFileSync(path.join(dir, 'ca.pem'));
    port = await freePort();
    child = spawn(STAYKV_BIN, ['--port', String(port), '--http-port', '0', '--dir', path.join(dir, 'data'),
      '--tls-cert', path.join(dir, 'server.pem'), '--tls-key', path.join(dir, 'server.key')],
      { stdio: 'ignore' });
    // Ready once a TLS client gets PONG (a plaintext PING cannot tell).
    const deadline = Date.now() + 30_000;
    for (;;) {
      const probe = new Redis({ port, host: '127.0.0.1', tls: { ca }, lazyConnect: true, maxRetriesPerRequest: 0,
        retryStrategy: () => null });
      probe.on('error', () => {});
      try {
        await probe.connect();
        if ((await probe.ping()) === 'PONG') break;
      } catch {
        // not listening yet
      } finally {
        probe.disconnect();
      }
      assert.ok(Date.now() < deadline, 'staykv with TLS did not answer within 30 s');
      await sleep(50);
    }
  });

  after(() => {
    child?.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('connects, verifies the certificate against the CA, and runs commands', async () => {
    const client = new Redis({ port, host: '127.0.0.1', tls: { ca } });
    try {
      assert.equal(await client.set('tls:k', 'v', 'EX', 60), 'OK');
      assert.equal(await client.get('tls:k'), 'v');
      assert.equal(await client.incr('tls:n'), 1);
    } finally {
      client.disconnect();
    }
  });

  it('refuses a certificate it cannot verify', async () => {
    const client = new Redis({ port, host: '127.0.0.1', tls: {}, lazyConnect: true, maxRetriesPerRequest: 0,
      retryStrategy: () => null });
    const errors = [];
    client.on('error', (e) => errors.push(String(e.message ?? e)));
    await assert.rejects(client.connect());
    client.disconnect();
    assert.ok(
      errors.some((e) => /self[- ]signed|unable to (get|verify)|certificate/i.test(e)),
      `no certificate error among ${JSON.stringify(errors)}`,
    );
  });

  it('a plaintext client to the TLS port fails instead of hanging', async () => {
    const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0,
      retryStrategy: () => null, connectTimeout: 5000, commandTimeout: 5000 });
    client.on('error', () => {});
    await client.connect().catch(() => {});
    await assert.rejects(client.ping());
    client.disconnect();
  });
});
