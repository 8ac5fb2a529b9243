/**
 * Threat (ASVS V11.2.3, V11.3.1, V11.4.1, V11.5.1, V11.6.1): a weak primitive
 * creeps in: an MD5 or SHA-1 hash used for security, ECB mode, RSA PKCS#1 v1.5
 * encryption padding, Math.random for a secret, or a certificate whose key or
 * signature is below 128-bit security. The JWKS side (Ed25519/EdDSA only) is
 * covered by test/integration/access-tokens.test.ts and
 * test/security/jwt-attacks.test.ts; this file covers the TLS certificate the
 * server generates and serves, and the source itself (white-box).
 *
 * Permitted legacy uses are allow-listed by file with the reason (see
 * docs/cryptography.md, "Permitted uses of legacy algorithms"); an allow-list
 * entry that no longer matches anything fails too, so the list cannot go stale.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import type { X509Certificate } from 'node:crypto';
import { X509Certificate as Certificate } from 'node:crypto';
import { generate } from 'selfsigned';
import { loadTlsMaterial } from '../../src/tls/certificate.js';
import { assessCertificate, signatureAlgorithmOid as derSignatureOid, STRONG_SIGNATURE_OIDS } from '../../src/tls/certificate-strength.js';
import { startTestServer, type TestServer } from '../helpers/harness.js';

// ---------------------------------------------------------------- certificates

/** ≥ 128-bit security, SHA-256+ signature, in validity: the same check `rampart doctor` applies. */
function assertStrongCertificate(cert: X509Certificate, where: string): void {
  const { status, detail } = assessCertificate(cert, Date.now());
  assert.equal(status, 'ok', `${where}: ${detail}`);
  assert.ok(cert.verify(cert.publicKey), `${where}: self-signature verifies`);
}

const signatureAlgorithmOid = (cert: X509Certificate) => derSignatureOid(cert.raw);

describe('the generated TLS certificate has ≥ 128-bit security (ASVS V11.2.3, V11.4.1, V11.6.1)', () => {
  let t: TestServer;
  let dataDir: string;
  before(async () => {
    t = await startTestServer();
    dataDir = mkdtempSync(join(tmpdir(), 'rampart-cert-'));
  });
  after(async () => {
    await t.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('a freshly generated certificate: EC P-256, ecdsa-with-SHA256', async () => {
    const material = await loadTlsMaterial({ dataDir, certFile: null, keyFile: null });
    assert.equal(material.origin, 'self-signed');
    const cert = new Certificate(material.cert);
    assertStrongCertificate(cert, 'generated');
    assert.equal(STRONG_SIGNATURE_OIDS[signatureAlgorithmOid(cert)], 'ecdsa-with-SHA256');
    assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  });

  test('the certificate a running server presents in the handshake', async () => {
    const { hostname, port } = new URL(t.url);
    const cert = await new Promise<X509Certificate>((resolve, reject) => {
      const socket = connect({ host: hostname, port: Number(port), ca: t.ca!, servername: 'localhost' }, () => {
        const peer = socket.getPeerX509Certificate();
        socket.end();
        if (peer) resolve(peer);
        else reject(new Error('no peer certificate'));
      });
      socket.on('error', reject);
    });
    assertStrongCertificate(cert, 'served');
  });

  test('control: the checks refuse RSA-2048 and a SHA-1 signature', async () => {
    const weak = await generate([{ name: 'commonName', value: 'weak' }], { keyType: 'rsa', keySize: 2048, algorithm: 'sha1' } as Parameters<typeof generate>[1]);
    const cert = new Certificate(weak.cert);
    assert.throws(() => assertStrongCertificate(cert, 'weak'), /RSA 2048/);
    assert.equal(assessCertificate(cert, Date.now()).status, 'fail', 'SHA-1 signature fails');
    assert.equal(signatureAlgorithmOid(cert), '2a864886f70d010105', 'sha1WithRSAEncryption');
    assert.ok(!(signatureAlgorithmOid(cert) in STRONG_SIGNATURE_OIDS));
  });
});

// ------------------------------------------------------------------- white-box

interface Rule {
  name: string;
  pattern: RegExp;
}

/** Code shapes of weak primitives; comments that merely name an algorithm do not match. */
const RULES: Rule[] = [
  { name: 'MD5/SHA-1/MD4/RIPEMD hash', pattern: /create(?:Hash|Hmac)\(\s*['"`](?:md5|md4|sha1|sha-1|ripemd\d*)['"`]/i },
  { name: 'one-shot hash with a weak algorithm', pattern: /\bhash\(\s*['"`](?:md5|sha1)['"`]/i },
  { name: 'ECB mode', pattern: /['"`][a-z0-9]+-\d*-?ecb['"`]|-ecb['"`]/i },
  { name: 'CBC/DES/RC4/Blowfish cipher', pattern: /['"`](?:aes-\d+-cbc|des(?:-[a-z0-9-]+|3)?|rc4(?:-[a-z0-9-]+)?|bf-[a-z]+)['"`]/i },
  { name: 'createCipher without an IV (deprecated, MD5 key derivation)', pattern: /\bcreateCipher\(/ },
  { name: 'RSA PKCS#1 v1.5 encryption padding', pattern: /RSA_PKCS1_PADDING/ },
  { name: 'Math.random', pattern: /Math\.random\s*\(/ },
  { name: 'JOSE RS256/HS* (RSASSA-PKCS1-v1_5 or a shared secret)', pattern: /['"`](?:RS256|RS384|RS512|HS256|HS384|HS512)['"`]|-257\b/ },
  { name: 'TOTP/HOTP HMAC-SHA-1', pattern: /['"`]SHA1['"`]/ },
];

/** Legitimate uses, by file and rule, each with its reason. */
const ALLOWED: Array<{ file: string; rule: string; reason: string }> = [
  { file: 'src/auth/mfa/totp.ts', rule: 'TOTP/HOTP HMAC-SHA-1', reason: 'RFC 6238 HMAC-SHA-1 is what authenticator apps implement; an HMAC does not rely on collision resistance (ASVS 5.0 Appendix C permits HMAC-SHA-1 for OTP)' },
  { file: 'src/auth/password/breached.ts', rule: 'MD5/SHA-1/MD4/RIPEMD hash', reason: 'the k-anonymity range protocol of the breached-password API is keyed by SHA-1; only 20 bits leave and nothing is protected by it' },
  { file: 'src/auth/mfa/webauthn/relying-party.ts', rule: 'JOSE RS256/HS* (RSASSA-PKCS1-v1_5 or a shared secret)', reason: 'COSE -257 (RS256) verifies signatures of existing authenticators (Windows Hello); Rampart never generates or signs with such a key. Listed as a finding in docs/cryptography.md' },
];

function sourceFiles(root: string): string[] {
  return (readdirSync(root, { recursive: true }) as string[])
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.test.ts'))
    .map((file) => join(root, file).replaceAll('\\', '/'));
}

function violations(files: Array<{ file: string; text: string }>): Array<{ file: string; rule: string; line: number }> {
  const found: Array<{ file: string; rule: string; line: number }> = [];
  for (const { file, text } of files) {
    text.split('\n').forEach((line, index) => {
      for (const rule of RULES) if (rule.pattern.test(line)) found.push({ file, rule: rule.name, line: index + 1 });
    });
  }
  return found;
}

describe('no weak primitive in src/ (ASVS V11.3.1, V11.4.1, V11.5.1 white-box)', () => {
  test('control: every rule flags its weak shape', () => {
    const planted = [
      "createHash('md5')", "createHmac('sha1', key)", "createHash(\"SHA1\")", "createCipheriv('aes-256-ecb', k, null)",
      "createCipheriv('aes-128-cbc', k, iv)", "createCipheriv('des-ede3-cbc', k, iv)", "createCipher('aes192', pw)", 'crypto.constants.RSA_PKCS1_PADDING',
      'Math.random()', "{ alg: 'RS256' }", "algorithm: 'SHA1'", "hash('sha1', data)",
    ];
    const found = violations(planted.map((text, i) => ({ file: `planted${i}`, text })));
    assert.deepEqual(new Set(found.map((v) => v.file)).size, planted.length, JSON.stringify(found));
    // And the approved shapes pass.
    assert.deepEqual(violations([{ file: 'ok', text: "createHash('sha256'); createCipheriv('aes-256-gcm', k, n); randomBytes(32); alg: 'EdDSA'; orderBy('seq', 'desc')" }]), []);
  });

  test('src/ uses none outside the allow-list, and every allow-list entry is still needed', () => {
    const files = sourceFiles('src').map((file) => ({ file, text: readFileSync(file, 'utf8') }));
    assert.ok(files.length > 50, `scanned ${files.length} files`);
    const found = violations(files);
    const unexpected = found.filter((v) => !ALLOWED.some((a) => a.file === v.file && a.rule === v.rule));
    assert.deepEqual(unexpected, [], 'weak primitives outside the allow-list');
    for (const allowed of ALLOWED) {
      assert.ok(found.some((v) => v.file === allowed.file && v.rule === allowed.rule), `stale allow-list entry: ${allowed.file} (${allowed.rule})`);
    }
  });

  test('the one AEAD is AES-256-GCM with a 96-bit random nonce and a 128-bit tag', () => {
    const aead = readFileSync('src/crypto/aead.ts', 'utf8');
    assert.match(aead, /createCipheriv\('aes-256-gcm'/);
    assert.match(aead, /const NONCE_BYTES = 12;/);
    assert.match(aead, /const TAG_BYTES = 16;/);
    assert.match(aead, /const nonce = randomBytes\(NONCE_BYTES\)/);
    // Nothing else in src/ sets up a cipher of its own.
    const ciphers = sourceFiles('src').filter((file) => /createCipheriv|createDecipheriv/.test(readFileSync(file, 'utf8')));
    assert.deepEqual(ciphers, ['src/crypto/aead.ts']);
  });
});
