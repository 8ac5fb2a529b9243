import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { describe, test } from 'node:test';
import { generate } from 'selfsigned';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import { loadTlsMaterial } from './certificate.js';
import { assessCertificate, chainsToTrustedRoot, signatureAlgorithmOid } from './certificate-strength.js';

type Options = Parameters<typeof generate>[1];
const make = async (options: Record<string, unknown>) => new X509Certificate((await generate([{ name: 'commonName', value: 'test' }], options as Options)).cert);
const DAY = 86_400_000;

describe('assessCertificate (ASVS V11.2.3, V11.4.1, V11.6.1)', () => {
  test('EC P-256 with ecdsa-with-SHA256, well inside its validity: ok', async () => {
    const cert = await make({ keyType: 'ec', curve: 'P-256', algorithm: 'sha256' });
    const result = assessCertificate(cert, Date.now());
    assert.equal(result.status, 'ok', result.detail);
    assert.match(result.detail, /^EC prime256v1, ecdsa-with-SHA256, valid until /);
  });

  test('RSA 2048 is a warning (112-bit), RSA 3072 is ok, a SHA-1 signature fails', async () => {
    const rsa2048 = assessCertificate(await make({ keyType: 'rsa', keySize: 2048, algorithm: 'sha256' }), Date.now());
    assert.equal(rsa2048.status, 'warn');
    assert.match(rsa2048.detail, /RSA 2048 gives 112-bit security/);
    const rsa3072 = assessCertificate(await make({ keyType: 'rsa', keySize: 3072, algorithm: 'sha256' }), Date.now());
    assert.equal(rsa3072.status, 'ok', rsa3072.detail);
    const sha1 = assessCertificate(await make({ keyType: 'rsa', keySize: 3072, algorithm: 'sha1' }), Date.now());
    assert.equal(sha1.status, 'fail');
    assert.match(sha1.detail, /signature sha1WithRSAEncryption is not SHA-256\+/);
  });

  test('expired or not yet valid fails; expiring within 14 days warns', async () => {
    const cert = await make({ keyType: 'ec', curve: 'P-256', algorithm: 'sha256' });
    const notAfter = Date.parse(cert.validTo);
    assert.equal(assessCertificate(cert, notAfter + DAY).status, 'fail');
    assert.match(assessCertificate(cert, notAfter + DAY).detail, /expired/);
    assert.equal(assessCertificate(cert, Date.parse(cert.validFrom) - DAY).status, 'fail');
    const soon = assessCertificate(cert, notAfter - 3 * DAY);
    assert.equal(soon.status, 'warn');
    assert.match(soon.detail, /expires in [23] day/);
  });

  test('a truncated or foreign DER is refused, never read past its end', () => {
    assert.throws(() => signatureAlgorithmOid(Buffer.from([0x30, 0x82, 0xff])), TypeError);
    assert.throws(() => signatureAlgorithmOid(Buffer.from([0x04, 0x01, 0x00])), TypeError);
    assert.throws(() => signatureAlgorithmOid(Buffer.alloc(0)), TypeError);
  });

  test('a supplied certificate with a SHA-1 signature or RSA 1024 refuses start-up; RSA 2048 starts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-cert-strength-'));
    try {
      const supply = async (name: string, options: Record<string, unknown>) => {
        const pems = await generate([{ name: 'commonName', value: 'rampart.example' }], options as Options);
        writeFileSync(join(dir, `${name}.pem`), pems.cert);
        writeFileSync(join(dir, `${name}.key`), pems.private, { mode: 0o600 });
        return loadTlsMaterial({ dataDir: dir, certFile: join(dir, `${name}.pem`), keyFile: join(dir, `${name}.key`) });
      };
      await assert.rejects(supply('sha1', { keyType: 'rsa', keySize: 3072, algorithm: 'sha1' }), (error: unknown) => error instanceof ConfigError && /too weak .*sha1WithRSAEncryption/.test(error.message));
      await assert.rejects(supply('rsa1024', { keyType: 'rsa', keySize: 1024, algorithm: 'sha256' }), (error: unknown) => error instanceof ConfigError && /RSA 1024 is below 112-bit/.test(error.message));
      assert.equal((await supply('rsa2048', { keyType: 'rsa', keySize: 2048, algorithm: 'sha256' })).origin, 'configured');
      writeFileSync(join(dir, 'junk.pem'), 'junk');
      writeFileSync(join(dir, 'junk.key'), 'junk', { mode: 0o600 });
      await assert.rejects(loadTlsMaterial({ dataDir: dir, certFile: join(dir, 'junk.pem'), keyFile: join(dir, 'junk.key') }), /is not a PEM certificate/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('chainsToTrustedRoot (ASVS V12.2.2)', () => {
  const caExtensions = [{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true }];
  const ec = { keyType: 'ec', curve: 'P-256', algorithm: 'sha256', days: 2 };

  test('a leaf chains through the intermediate in its file to a trusted root; not to another root, nor when self-signed', async () => {
    const root = await generate([{ name: 'commonName', value: 'Test Root' }], { ...ec, extensions: caExtensions } as Options);
    const intermediate = await generate([{ name: 'commonName', value: 'Test Intermediate' }], { ...ec, extensions: caExtensions, ca: { key: root.private, cert: root.cert } } as Options);
    const leaf = await generate([{ name: 'commonName', value: 'rampart.example' }], { ...ec, ca: { key: intermediate.private, cert: intermediate.cert } } as Options);
    const other = await generate([{ name: 'commonName', value: 'Other Root' }], { ...ec, extensions: caExtensions } as Options);

    const trusted = chainsToTrustedRoot(`${leaf.cert}\n${intermediate.cert}`, [root.cert]);
    assert.equal(trusted.trusted, true, trusted.reason);
    assert.match(trusted.reason, /CN=Test Root/);
    assert.deepEqual(chainsToTrustedRoot(leaf.cert, [root.cert]), { trusted: false, reason: 'its issuer is neither in the file nor a publicly trusted root' }, 'the intermediate missing from the file');
    assert.equal(chainsToTrustedRoot(`${leaf.cert}\n${intermediate.cert}`, [other.cert]).trusted, false, 'another root');
    assert.deepEqual(chainsToTrustedRoot(other.cert, [root.cert]), { trusted: false, reason: 'self-signed, not a publicly trusted root' });
    // A certificate that names the root as issuer but was signed by another key is not issued by it.
    const forged = await generate([{ name: 'commonName', value: 'rampart.example' }], { ...ec, ca: { key: other.private, cert: root.cert } } as Options).catch(() => null);
    if (forged) assert.equal(chainsToTrustedRoot(forged.cert, [root.cert]).trusted, false, 'the signature is checked, not only the names');
  });
});
