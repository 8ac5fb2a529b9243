/**
 * Threat: a TLS configuration that accepts old protocols, CBC suites (LUCKY13),
 * static RSA key exchange or lacks HSTS. testssl.sh (Debian package, installed by
 * .ci/run) must report nothing LOW or worse, except the findings that only say the
 * generated test certificate is self-signed (as ASVS checklist §9.1 gates it).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startTestServer } from '../helpers/harness.js';

const TESTSSL = spawnSync('sh', ['-c', 'command -v testssl || command -v testssl.sh'], { encoding: 'utf8' }).stdout.trim();
const CERTIFICATE_ONLY = new Set(['cert_chain_of_trust', 'cert_expirationStatus', 'cert_notAfter', 'cert_revocation', 'cert_trust']);

test('testssl.sh finds nothing LOW or worse beyond the self-signed test certificate', { skip: TESTSSL === '' ? 'testssl is not installed (bash .ci/run installs it)' : false, timeout: 600_000 }, async () => {
  const t = await startTestServer();
  try {
    const out = mkdtempSync(join(tmpdir(), 'testssl-'));
    const json = join(out, 'testssl.json');
    // Asynchronous: the server under scan lives in this process and must keep serving.
    const args = [
      '--quiet', '--color', '0', '--warnings', 'off', '--nodns', 'none', '--connect-timeout', '30', '--openssl-timeout', '30',
      '-p', '-s', '-f', '-S', '-h', '-U', '--jsonfile', json, '--ip', '127.0.0.1', `https://localhost:${t.server.port}/`,
    ];
    const status = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(TESTSSL, args, { stdio: 'ignore' });
      const timer = setTimeout(() => child.kill('SIGKILL'), 540_000);
      child.once('error', reject);
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
    assert.ok(status !== null, 'testssl did not finish in time');
    const findings = JSON.parse(readFileSync(json, 'utf8')) as Array<{ id: string; severity: string; finding: string }>;
    const bad = findings.filter((f) => ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'].includes(f.severity) && !CERTIFICATE_ONLY.has(f.id));
    assert.deepEqual(bad.map((f) => `${f.severity} ${f.id}: ${f.finding}`), []);
    const byId = new Map(findings.map((f) => [f.id, f.finding]));
    assert.match(byId.get('TLS1') ?? '', /not offered/);
    assert.match(byId.get('TLS1_1') ?? '', /not offered/);
    assert.match(byId.get('HSTS_time') ?? '', /31536000/);
  } finally {
    await t.close();
  }
});
