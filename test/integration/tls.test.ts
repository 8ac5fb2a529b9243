import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type ConnectionOptions, type SecureVersion } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/harness.js';

function handshake(port: number, options: Partial<ConnectionOptions>): Promise<{ ok: true; protocol: string | null; cipher: string } | { ok: false; error: string }> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options }, () => {
      const result = { ok: true as const, protocol: socket.getProtocol(), cipher: socket.getCipher().name };
      socket.end();
      resolve(result);
    });
    socket.on('error', (error) => resolve({ ok: false, error: error.message }));
  });
}

describe('TLS by default', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(async () => {
    await t.close();
  });

  test('serves HTTPS with a generated certificate for localhost whose key is private (0600)', () => {
    assert.match(t.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(statSync(join(t.dataDir, 'tls', 'key.pem')).mode & 0o777, 0o600);
    assert.equal(statSync(join(t.dataDir, 'keys', 'master.key')).mode & 0o777, 0o600);
  });

  test('TLS 1.3 and 1.2 work; 1.1 and 1.0 are refused', async () => {
    const v13 = await handshake(t.server.port, { minVersion: 'TLSv1.3' });
    assert.ok(v13.ok && v13.protocol === 'TLSv1.3');
    const v12 = await handshake(t.server.port, { maxVersion: 'TLSv1.2' });
    assert.ok(v12.ok && v12.protocol === 'TLSv1.2');
    for (const version of ['TLSv1.1', 'TLSv1'] as SecureVersion[]) {
      const old = await handshake(t.server.port, { minVersion: version, maxVersion: version, ciphers: 'DEFAULT@SECLEVEL=0' });
      assert.equal(old.ok, false, `${version} must be refused`);
    }
  });

  test('TLS 1.2 negotiates only forward-secret AEAD suites; CBC and RSA key exchange are refused', async () => {
    for (const cipher of ['AES128-SHA', 'AES256-GCM-SHA384', 'ECDHE-ECDSA-AES128-SHA', 'ECDHE-ECDSA-AES256-SHA384', 'ECDHE-RSA-AES128-SHA256']) {
      const result = await handshake(t.server.port, { maxVersion: 'TLSv1.2', ciphers: cipher });
      assert.equal(result.ok, false, `${cipher} must be refused`);
    }
    for (const cipher of ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305']) {
      const result = await handshake(t.server.port, { maxVersion: 'TLSv1.2', ciphers: cipher });
      assert.ok(result.ok && result.cipher === cipher, `${cipher} must work`);
    }
  });

  test('a client that does not trust the certificate fails verification (no silent downgrade)', async () => {
    const result = await handshake(t.server.port, { rejectUnauthorized: true });
    assert.equal(result.ok, false);
  });
});

describe('plain HTTP only with the loudly named option, and only on loopback', () => {
  test('the option serves HTTP on loopback, still with HSTS and Secure cookies for the proxy', async () => {
    const t = await startTestServer({ env: { RAMPART_INSECURE_PLAIN_HTTP_ON_LOOPBACK: 'true' } });
    try {
      assert.match(t.url, /^http:\/\/127\.0\.0\.1:/);
      const response = await t.client().get('/healthz');
      assert.equal(response.status, 200);
      assert.ok(response.headers['strict-transport-security']);
    } finally {
      await t.close();
    }
  });

  test('the option with a non-loopback host refuses to start', async () => {
    await assert.rejects(
      startTestServer({ env: { RAMPART_INSECURE_PLAIN_HTTP_ON_LOOPBACK: 'true', RAMPART_HOST: '0.0.0.0' } }),
      /only allowed on a loopback address/,
    );
  });
});
