/**
 * Redis over TLS (ASVS V12.3.2, V12.3.4): a rediss:// Redis whose certificate an internal CA
 * signed is trusted only when REDIS_CA_FILE names that CA; without it the certificate is
 * refused, Redis counts as down, and credential routes fail closed. Against a real
 * redis-server started here with TLS on a free loopback port (skipped, saying so, when this
 * redis-server was built without TLS).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { generate } from 'selfsigned';
import { rampartWith } from '../helpers/cli.js';
import { startTestServer, strongPassword, uniqueEmail } from '../helpers/harness.js';
import { Resources } from '../helpers/resources.js';
import { freePort } from '../helpers/ports.js';

/**
 * Whether this redis-server speaks TLS: it reads its directives in order and stops at the first
 * it does not know, so with a made-up directive after `tls-port` it names `tls-port` only when
 * built without TLS (and the made-up one otherwise), without starting.
 */
function redisHasTls(): boolean {
  const probe = spawnSync('redis-server', ['--port', '0', '--tls-port', '1', '--made-up-directive', '1'], { encoding: 'utf8' });
  if (probe.error) return false;
  return /made-up-directive/.test(probe.stderr ?? '') && !/'tls-port/.test(probe.stderr ?? '');
}
const hasTls = redisHasTls();


/** A redis-server on a free loopback port speaking only TLS with this certificate and key, and `extra` directives. */
async function startTlsRedis(open: Resources, certFile: string, keyFile: string, extra: string[]): Promise<string> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', '0', '--tls-port', String(port), '--tls-cert-file', certFile, '--tls-key-file', keyFile,
    ...extra, '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  open.add(child, (c) => new Promise<void>((resolve) => {
    c.once('exit', () => resolve());
    c.kill('SIGTERM');
  }));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      if (/Ready to accept connections/.test(out)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${out.slice(-500)}`)));
  });
  return `rediss://127.0.0.1:${port}`;
}

describe('Redis over TLS with an internal CA', { skip: hasTls ? false : 'redis-server has no TLS support here' }, () => {
  const open = new Resources();
  let url: string;
  let caFile: string;
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-redis-tls-'));
    open.defer(() => rmSync(dir, { recursive: true, force: true }));
    const pems = await generate([{ name: 'commonName', value: 'redis.internal' }], {
      keyType: 'ec', curve: 'P-256', algorithm: 'sha256', days: 1,
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }, { type: 2, value: 'localhost' }] }],
    } as never);
    caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, pems.cert);
    writeFileSync(join(dir, 'key.pem'), pems.private, { mode: 0o600 });
    url = await startTlsRedis(open, caFile, join(dir, 'key.pem'), ['--tls-auth-clients', 'no']);
  });
  after(() => open.close());

  test('with REDIS_CA_FILE the counters live in the TLS Redis; without it its certificate is refused and credential routes fail closed', async () => {
    const prefix = `rampart-tls-${process.pid}:`;
    const trusted = await startTestServer({ env: { REDIS_URL: url, REDIS_CA_FILE: caFile, REDIS_KEY_PREFIX: prefix, RATE_LIMIT_ANON_PER_MINUTE: '3' } });
    try {
      assert.equal(trusted.server.services.redis!.status, 'ready');
      const email = uniqueEmail('redis-tls');
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await trusted.client().post('/v1/login', { email, password: strongPassword() })).status);
      assert.deepEqual(statuses, [401, 401, 401, 429]);
      const redis = new Redis(url, { tls: { ca: readFileSync(caFile, 'utf8') } });
      try {
        assert.ok((await redis.keys(`${prefix}rl:anon:*`)).length > 0, 'the anonymous counter is in the TLS Redis');
      } finally {
        redis.disconnect();
      }
    } finally {
      await trusted.close();
    }

    const untrusted = await startTestServer({ env: { REDIS_URL: url, REDIS_KEY_PREFIX: prefix } });
    try {
      assert.notEqual(untrusted.server.services.redis!.status, 'ready', 'a certificate no trusted CA signed is refused');
      const login = await untrusted.client().post('/v1/login', { email: uniqueEmail('redis-tls-untrusted'), password: strongPassword() });
      assert.equal(login.status, 503);
      assert.equal(login.body.code, 'rate_limiter_unavailable');
      assert.ok(untrusted.logs.some((line) => /redis unavailable/.test(line) && /certificate/i.test(line)), 'the refusal is logged with its reason');
    } finally {
      await untrusted.close();
    }
  });
});

describe('Redis that authenticates clients by certificate', { skip: hasTls ? false : 'redis-server has no TLS support here' }, () => {
  const open = new Resources();
  after(() => open.close());

  test('with REDIS_CERT_FILE and REDIS_KEY_FILE the server connects and counts in it; without them that Redis refuses it and credential routes fail closed; a key file others can read refuses start-up', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-redis-mtls-'));
    open.defer(() => rmSync(dir, { recursive: true, force: true }));
    // One key signs the server certificate and the client certificate: it is the CA of both.
    const pems = await generate([{ name: 'commonName', value: 'redis.internal' }], {
      keyType: 'ec', curve: 'P-256', algorithm: 'sha256', days: 1, clientCertificate: { cn: 'rampart' },
      extensions: [{ name: 'basicConstraints', cA: true }, { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
    } as never) as { cert: string; private: string; clientcert: string; clientprivate: string };
    const file = (name: string, text: string, mode = 0o600) => {
      writeFileSync(join(dir, name), text, { mode });
      return join(dir, name);
    };
    const ca = file('ca.pem', pems.cert, 0o644);
    const url = await startTlsRedis(open, ca, file('server-key.pem', pems.private), ['--tls-auth-clients', 'yes', '--tls-ca-cert-file', ca]);
    const clientCert = file('client.pem', pems.clientcert, 0o644);
    const clientKey = file('client-key.pem', pems.clientprivate);
    const prefix = `rampart-mtls-${process.pid}:`;

    const env = { REDIS_URL: url, REDIS_CA_FILE: ca, REDIS_CERT_FILE: clientCert, REDIS_KEY_FILE: clientKey, REDIS_KEY_PREFIX: prefix, RATE_LIMIT_ANON_PER_MINUTE: '2' };
    const withCert = await startTestServer({ env });
    try {
      assert.equal(withCert.server.services.redis!.status, 'ready');
      const email = uniqueEmail('redis-mtls');
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) statuses.push((await withCert.client().post('/v1/login', { email, password: strongPassword() })).status);
      assert.deepEqual(statuses, [401, 401, 429], 'the counters are in that Redis');
      const doctor = await rampartWith({ ...env, RAMPART_DATA_DIR: withCert.dataDir }, 'doctor');
      assert.match(doctor.stdout, new RegExp(`OK +Redis authentication +client certificate ${clientCert}\n`));
    } finally {
      await withCert.close();
    }
    // Like TLS_KEY_FILE, a key others can read refuses start-up.
    chmodSync(clientKey, 0o640);
    await assert.rejects(startTestServer({ env }), new RegExp(`REDIS_KEY_FILE ${clientKey} is accessible to other users; run: chmod 600`));
    chmodSync(clientKey, 0o600);

    const without = await startTestServer({ env: { REDIS_URL: url, REDIS_CA_FILE: ca, REDIS_KEY_PREFIX: prefix } });
    try {
      assert.notEqual(without.server.services.redis!.status, 'ready', 'no certificate, no connection');
      const login = await without.client().post('/v1/login', { email: uniqueEmail('redis-mtls-none'), password: strongPassword() });
      assert.equal(login.status, 503);
      assert.equal(login.body.code, 'rate_limiter_unavailable');
    } finally {
      await without.close();
    }
    await assert.rejects(startTestServer({ env: { REDIS_URL: url, REDIS_CERT_FILE: clientCert } }), /REDIS_CERT_FILE needs REDIS_KEY_FILE as well/);
    await assert.rejects(startTestServer({ env: { REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CERT_FILE: clientCert, REDIS_KEY_FILE: clientKey } }), /REDIS_CERT_FILE needs a rediss:\/\/ REDIS_URL/);
  });
});
