import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { generate } from 'selfsigned';
import { loadConfig } from '../config/load.js';
import { loadTlsMaterial } from '../tls/certificate.js';
import { checkControls } from './controls.js';

test('doctor reports the TLS certificate: generated EC P-256 ok (a warning off loopback), a supplied RSA 2048 warns, SHA-1 or unreadable fails, and who issued a supplied one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-doctor-tls-'));
  const certificateRow = (env: Record<string, string>) => checkControls(loadConfig({ env: { RAMPART_DATA_DIR: dir, ...env }, flags: {} })).find((check) => check.control === 'TLS certificate');
  try {
    assert.equal(certificateRow({}), undefined, 'nothing generated yet: no row');
    await loadTlsMaterial({ dataDir: dir, certFile: null, keyFile: null });
    const generated = certificateRow({});
    assert.equal(generated?.status, 'ok', generated?.detail);
    assert.match(generated?.detail ?? '', /cert\.pem: EC prime256v1, ecdsa-with-SHA256/);

    const supplied = async (name: string, options: Record<string, unknown>) => {
      const pems = await generate([{ name: 'commonName', value: 'rampart.example' }], options as Parameters<typeof generate>[1]);
      writeFileSync(join(dir, `${name}.pem`), pems.cert);
      writeFileSync(join(dir, `${name}.key`), pems.private, { mode: 0o600 });
      return certificateRow({ TLS_CERT_FILE: join(dir, `${name}.pem`), TLS_KEY_FILE: join(dir, `${name}.key`) });
    };
    const rsa = await supplied('rsa2048', { keyType: 'rsa', keySize: 2048, algorithm: 'sha256' });
    assert.equal(rsa?.status, 'warn');
    assert.match(rsa?.detail ?? '', /RSA 2048 gives 112-bit security/);
    // Who issued it: a self-signed certificate is no publicly trusted one (ASVS V12.2.2).
    const issuerRow = (env: Record<string, string>) => checkControls(loadConfig({ env: { RAMPART_DATA_DIR: dir, TLS_CERT_FILE: join(dir, 'rsa2048.pem'), TLS_KEY_FILE: join(dir, 'rsa2048.key'), ...env }, flags: {} })).find((check) => check.control === 'TLS certificate issuer');
    const onLoopback = issuerRow({});
    assert.equal(onLoopback?.status, 'ok');
    assert.match(onLoopback?.detail ?? '', /not publicly trusted \(self-signed, not a publicly trusted root\); fine on loopback/);
    const exposedIssuer = issuerRow({ RAMPART_HOST: '0.0.0.0' });
    assert.equal(exposedIssuer?.status, 'warn');
    assert.match(exposedIssuer?.detail ?? '', /clients off this machine will refuse it/);
    const sha1 = await supplied('sha1', { keyType: 'rsa', keySize: 3072, algorithm: 'sha1' });
    assert.equal(sha1?.status, 'fail');

    // The generated self-signed certificate is fine on loopback, a warning once reachable from the network.
    const tlsRow = (env: Record<string, string>) => checkControls(loadConfig({ env: { RAMPART_DATA_DIR: dir, ...env }, flags: {} })).find((check) => check.control === 'TLS');
    assert.equal(tlsRow({})?.status, 'ok');
    const exposed = tlsRow({ RAMPART_HOST: '0.0.0.0' });
    assert.equal(exposed?.status, 'warn');
    assert.match(exposed?.detail ?? '', /self-signed certificate while bound to 0\.0\.0\.0/);

    writeFileSync(join(dir, 'garbage.pem'), 'not a certificate');
    writeFileSync(join(dir, 'garbage.key'), 'x', { mode: 0o600 });
    const garbage = certificateRow({ TLS_CERT_FILE: join(dir, 'garbage.pem'), TLS_KEY_FILE: join(dir, 'garbage.key') });
    assert.equal(garbage?.status, 'fail');
    assert.match(garbage?.detail ?? '', /not a readable PEM certificate/);
    const garbageRows = checkControls(loadConfig({ env: { RAMPART_DATA_DIR: dir, TLS_CERT_FILE: join(dir, 'garbage.pem'), TLS_KEY_FILE: join(dir, 'garbage.key') }, flags: {} }));
    assert.equal(garbageRows.find((check) => check.control === 'TLS certificate issuer'), undefined, 'one failure, not a second row about an issuer it cannot read');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
