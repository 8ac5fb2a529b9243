import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { ConfigError } from '../errors.js';
import { assessCertificate } from './certificate-strength.js';

export interface TlsMaterial {
  cert: string;
  key: string;
  /** 'configured' (TLS_CERT_FILE) or 'self-signed' (generated into the data dir). */
  origin: 'configured' | 'self-signed';
  certPath: string;
  keyPath: string;
}

/** Renew a generated certificate this long before it expires. */
const RENEW_BEFORE_MS = 14 * 86_400_000;

/**
 * The certificate to serve: the configured pair, or a self-signed ECDSA P-256
 * certificate for localhost/127.0.0.1/::1 generated on first start (key mode
 * 0600). A key file readable by other users refuses start-up.
 */
export async function loadTlsMaterial(options: { dataDir: string; certFile: string | null; keyFile: string | null }): Promise<TlsMaterial> {
  if (options.certFile && options.keyFile) {
    assertPrivateKeyFile(options.keyFile);
    const cert = readFileSync(options.certFile, 'utf8');
    assertStrongCertificate(options.certFile, cert);
    return {
      cert,
      key: readFileSync(options.keyFile, 'utf8'),
      origin: 'configured',
      certPath: options.certFile,
      keyPath: options.keyFile,
    };
  }
  const dir = join(options.dataDir, 'tls');
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  if (existsSync(certPath) && existsSync(keyPath) && !isExpiringSoon(readFileSync(certPath, 'utf8'))) {
    assertPrivateKeyFile(keyPath);
    return { cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8'), origin: 'self-signed', certPath, keyPath };
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + 365 * 86_400_000),
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }, { type: 7, ip: '::1' }] },
    ],
  });
  writeFileSync(keyPath, pems.private, { mode: 0o600 });
  writeFileSync(certPath, pems.cert, { mode: 0o644 });
  return { cert: pems.cert, key: pems.private, origin: 'self-signed', certPath, keyPath };
}

export function isKeyFileShared(path: string): boolean {
  return (statSync(path).mode & 0o077) !== 0;
}

function assertPrivateKeyFile(path: string): void {
  if (!existsSync(path)) throw new ConfigError(`TLS key file ${path} does not exist`);
  if (isKeyFileShared(path)) throw new ConfigError(`TLS key file ${path} is accessible to other users; run: chmod 600 ${path}`);
}

/**
 * A supplied certificate with a weak key or signature (RSA < 2048, SHA-1, an unapproved
 * curve) refuses start-up; RSA 2048 and a near or past expiry are `rampart doctor`'s to
 * report, since refusing to start would turn a lapsed renewal into an outage of everything.
 */
function assertStrongCertificate(path: string, pem: string): void {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(pem);
  } catch {
    throw new ConfigError(`TLS certificate file ${path} is not a PEM certificate`);
  }
  const { weakCrypto, detail } = assessCertificate(certificate, Date.now());
  if (weakCrypto) throw new ConfigError(`TLS certificate ${path} is too weak (${detail})`);
}

function isExpiringSoon(certPem: string): boolean {
  try {
    return Date.parse(new X509Certificate(certPem).validTo) - Date.now() < RENEW_BEFORE_MS;
  } catch {
    return true;
  }
}

/**
 * TLS 1.2+ with forward-secret AEAD suites only (no CBC, no RSA key exchange):
 * TLS 1.3 suites are always AEAD; for 1.2, ECDHE with AES-GCM or ChaCha20-Poly1305.
 * Node's default list includes CBC suites, which testssl flags (LUCKY13).
 */
export const TLS_CIPHERS = [
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'TLS_AES_128_GCM_SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
].join(':');

export function httpsServerOptions(material: TlsMaterial) {
  return {
    key: material.key,
    cert: material.cert,
    minVersion: 'TLSv1.2' as const,
    ciphers: TLS_CIPHERS,
    honorCipherOrder: true,
    ecdhCurve: 'X25519:P-256:P-384',
  };
}
