import { X509Certificate } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/load.js';
import { isLoopbackHost, OPTIONS } from '../config/schema.js';
import { readKeys } from '../crypto/master-key-command.js';
import { masterKeyCommandOptions } from '../crypto/master-keys.js';
import { isFileShared, parseMasterKeyFile } from '../crypto/master-key-file.js';
import { readFileSync } from 'node:fs';
import { redactURL } from '../store/db.js';
import { checkOperationsControls } from './controls-operations.js';
import { assessCertificate, chainsToTrustedRoot } from '../tls/certificate-strength.js';
import { rootCertificates } from 'node:tls';

export type ControlStatus = 'ok' | 'warn' | 'fail';

export interface ControlCheck {
  control: string;
  status: ControlStatus;
  detail: string;
}

/**
 * Each security control and whether the current configuration keeps it. `fail`
 * means insecure (doctor exits non-zero); `warn` means an explicitly chosen
 * insecure option or something an operator should look at.
 */
export function checkControls(config: Config): ControlCheck[] {
  const checks: ControlCheck[] = [];
  const add = (control: string, status: ControlStatus, detail: string) => checks.push({ control, status, detail });

  if (config.insecurePlainHttpOnLoopback) {
    add('TLS', 'warn', 'INSECURE option RAMPART_INSECURE_PLAIN_HTTP_ON_LOOPBACK: plain HTTP on loopback; TLS must be terminated by a local proxy');
  } else if (config.tlsCertFile && config.tlsKeyFile) {
    add('TLS', 'ok', `TLS 1.2+ with forward-secret AEAD suites only, HSTS 1 year; certificate ${config.tlsCertFile}`);
    add('TLS key file', fileModeStatus(config.tlsKeyFile), fileModeDetail(config.tlsKeyFile));
    const read = readCertificate(config.tlsCertFile);
    add('TLS certificate', ...certificateCheck(config.tlsCertFile, read));
    // Who issued it, once it reads at all (an unreadable file already failed above).
    if (!(read instanceof Error)) add('TLS certificate issuer', ...issuerCheck(config.tlsCertFile, read.pem, config.host));
  } else {
    // A self-signed certificate is what a first start on a laptop needs, and what no client off
    // this machine can trust (ASVS V12.2.2): fine on loopback, to be replaced once reachable.
    if (isLoopbackHost(config.host)) add('TLS', 'ok', 'TLS 1.2+ with forward-secret AEAD suites only, HSTS 1 year; self-signed certificate for localhost (set TLS_CERT_FILE/TLS_KEY_FILE for production)');
    else add('TLS', 'warn', `TLS 1.2+ with forward-secret AEAD suites only, HSTS 1 year; but a self-signed certificate while bound to ${config.host}: clients off this machine cannot trust it; set TLS_CERT_FILE/TLS_KEY_FILE to a certificate from a trusted CA`);
    const keyPath = join(config.dataDir, 'tls', 'key.pem');
    if (existsSync(keyPath)) add('TLS key file', fileModeStatus(keyPath), fileModeDetail(keyPath));
    const certPath = join(config.dataDir, 'tls', 'cert.pem');
    if (existsSync(certPath)) add('TLS certificate', ...certificateCheck(certPath, readCertificate(certPath)));
  }

  if (isLoopbackHost(config.host)) add('Bind address', 'ok', `${config.host} (loopback only)`);
  else add('Bind address', 'warn', `${config.host}: reachable from the network; prefer loopback behind a reverse proxy`);

  if (config.masterKeyCommand !== null) {
    // Running the command is asynchronous: `checkMasterKeyCommand` adds its row. A key file
    // left from before the move to the secrets manager still holds keys on this disk.
    if (existsSync(config.masterKeyFile)) add('Master key file', 'warn', `${config.masterKeyFile} is still on disk although MASTER_KEY_COMMAND supplies the keys: once its keys are in the secret, delete it`);
  } else if (existsSync(config.masterKeyFile)) {
    let status = fileModeStatus(config.masterKeyFile);
    let detail = fileModeDetail(config.masterKeyFile);
    try {
      const keys = parseMasterKeyFile(readFileSync(config.masterKeyFile, 'utf8'), config.masterKeyFile);
      detail += `; ${keys.length} key(s), current ${keys[0]!.id}`;
    } catch (error) {
      status = 'fail';
      detail = (error as Error).message;
    }
    add('Master key file', status, detail);
  } else {
    add('Master key file', 'ok', `${config.masterKeyFile} will be generated (mode 0600) on first start`);
  }

  if (existsSync(config.dataDir)) {
    const shared = (statSync(config.dataDir).mode & 0o077) !== 0;
    add('Data directory', shared ? 'warn' : 'ok', `${config.dataDir}${shared ? ' is accessible to other users (chmod 700 it)' : ' (mode 0700)'}`);
  }

  for (const [key, path] of Object.entries(config.secretFiles)) {
    const option = OPTIONS.find((o) => o.key === key)?.env ?? key;
    const everyone = (statSync(path).mode & 0o007) !== 0;
    add(`Secret file ${option}_FILE`, everyone ? 'warn' : 'ok', `${path}${everyone ? ' is readable by every user on this host (chmod 400 or 440 it)' : ' (not readable by other users)'}`);
  }

  add('Main store', 'ok', config.databaseUrl ? `PostgreSQL ${redactURL(config.databaseUrl)}` : `SQLite ${join(config.dataDir, 'rampart.db')} (WAL)`);
  if (config.piiDatabaseUrl) {
    add('PII store', 'ok', `PostgreSQL ${redactURL(config.piiDatabaseUrl)} (separate database; email and name AES-256-GCM per user)`);
  } else if (config.databaseUrl) {
    add('PII store', 'warn', `SQLite ${join(config.dataDir, 'pii.db')} while the main store is PostgreSQL: set PII_DATABASE_URL for a shared deployment`);
  } else {
    add('PII store', 'ok', `SQLite ${join(config.dataDir, 'pii.db')} (separate file; email and name AES-256-GCM per user)`);
  }

  add('Password storage', 'ok', `argon2id m=${config.argon2MemoryKiB} KiB t=${config.argon2Iterations} p=1, off the event loop, ${config.passwordHashConcurrency} at once, queue ${config.passwordHashQueue}`);
  add('Password policy', 'ok', `min ${config.passwordMinLength} characters, zxcvbn score >= ${config.passwordMinStrength}, common passwords (zxcvbn-ts + SecLists top 10,000) and user context blocked, history of 5, no composition rules; orgs may tighten`);
  add('Breached passwords', 'ok', config.breachedPasswordApiUrl
    ? `k-anonymity range API ${config.breachedPasswordApiUrl} (5 hex digits of SHA-1 leave; fails open after ${config.breachedPasswordTimeoutMs} ms, logged and counted)`
    : 'offline lists only (set BREACHED_PASSWORD_API_URL for a k-anonymity range check)');
  add('Imported password hashes', 'ok', 'bcrypt ($2a$/$2b$/$2y$, never past 72 bytes) and argon2 verify; re-hashed with argon2id at the next login');
  add('Sessions', 'ok', `server-side, 256-bit ids stored as SHA-256; idle ${config.sessionIdleTimeoutMinutes} min, absolute ${config.sessionAbsoluteTimeoutHours} h; __Host- cookie, SameSite=Strict, CSRF token`);

  // Off by default (self-service signup would otherwise start every account enrollment-only): a
  // warning, not a failure, so doctor still passes on the defaults.
  if (config.mfaRequiredForAll) {
    add('Second factor', 'ok', `required of every account (MFA_REQUIRED_FOR_ALL): TOTP or WebAuthn, ${config.mfaRequiredGraceHours} h grace from account creation or the switch-on; org policies may tighten`);
  } else {
    add('Second factor', 'warn', 'required only where an org policy requires it (ASVS 5.0 V6.3.3 L2 relaxation); set MFA_REQUIRED_FOR_ALL=true to require it of every account');
  }

  if (config.insecureAllowEternalApiTokens) {
    add('API tokens', 'warn', 'INSECURE option RAMPART_INSECURE_ALLOW_ETERNAL_API_TOKENS: tokens without expiry may be created (where no org policy limits them)');
  } else {
    add('API tokens', 'ok', 'rpat_ + 256 random bits + CRC32 checksum, stored as HMAC-SHA256, scoped, expiring (90 days by default, capped by org policy), revocable');
  }

  add('Access JWTs', 'ok', `EdDSA (Ed25519) via jose, typ at+jwt, ${config.accessTokenTtlSeconds} s lifetime, signing key rotated every ${config.signingKeyRotationDays} days (private keys wrapped by the master key); audience ${config.accessTokenAudience ?? 'PUBLIC_URL/v1'}`);

  // A range holding every client (a /0, ::ffff:0:0/96) is refused when the configuration loads.
  if (config.trustedProxies.length === 0) add('Client address', 'ok', 'socket address; X-Forwarded-For ignored (no TRUSTED_PROXIES)');
  else add('Client address', 'ok', `X-Forwarded-For believed only from ${config.trustedProxies.join(', ')}`);

  if (config.staffConflictingRoles.includes('*')) add('Staff roles', 'ok', 'dormant until assumed with MFA, step-up and a reason; at most 60 minutes; one role at a time');
  else add('Staff roles', 'warn', `STAFF_CONFLICTING_ROLES relaxes one-role-at-a-time: only ${config.staffConflictingRoles.join(', ') || '(no pair)'} may not be held together`);

  add('CORS', 'ok', config.corsOrigins.length === 0 ? 'disabled' : `exact origins only: ${config.corsOrigins.join(', ')}`);

  if (!config.smtpUrl) add('Mail', 'ok', `outbox ${join(config.dataDir, 'outbox')} (set SMTP_URL to deliver)`);
  else if (config.insecureSmtpWithoutTls) add('Mail', 'warn', `INSECURE option RAMPART_INSECURE_SMTP_WITHOUT_TLS: ${redactURL(config.smtpUrl)} without STARTTLS`);
  else add('Mail', 'ok', `SMTP ${redactURL(config.smtpUrl)} with TLS required`);

  checks.push(...checkOperationsControls(config));
  return checks;
}

function fileModeStatus(path: string): ControlStatus {
  return isFileShared(path) ? 'fail' : 'ok';
}

function fileModeDetail(path: string): string {
  const mode = (statSync(path).mode & 0o777).toString(8).padStart(4, '0');
  return `${path} mode ${mode}${isFileShared(path) ? ' (accessible to other users: chmod 600)' : ''}`;
}

/** A certificate file read once: its text and its first certificate, or what kept it from reading. */
function readCertificate(path: string): { pem: string; certificate: X509Certificate } | Error {
  try {
    const pem = readFileSync(path, 'utf8');
    return { pem, certificate: new X509Certificate(pem) };
  } catch (error) {
    return error as Error;
  }
}

/** The certificate's key size, signature and validity (ASVS V11.2.3, V11.4.1, V11.6.1). */
function certificateCheck(path: string, read: { certificate: X509Certificate } | Error): [ControlStatus, string] {
  if (read instanceof Error) return ['fail', `${path}: not a readable PEM certificate (${read.message})`];
  const { certificate } = read;
  const { status, detail } = assessCertificate(certificate, Date.now());
  return [status, `${path}: ${detail}`];
}

/**
 * Whether clients can trust the supplied certificate (ASVS V12.2.2): it must chain to a root
 * Node trusts. Off loopback an untrusted one is a warning; on loopback (behind a local proxy, or
 * an internal deployment) it is reported as such.
 */
function issuerCheck(path: string, pem: string, host: string): [ControlStatus, string] {
  let verdict: { trusted: boolean; reason: string };
  try {
    verdict = chainsToTrustedRoot(pem, rootCertificates);
  } catch (error) {
    return ['fail', `${path}: not a readable PEM certificate (${(error as Error).message})`];
  }
  if (verdict.trusted) return ['ok', `${path}: publicly trusted, ${verdict.reason}`];
  if (isLoopbackHost(host)) return ['ok', `${path}: not publicly trusted (${verdict.reason}); fine on loopback behind a proxy that presents a trusted one`];
  return ['warn', `${path}: not publicly trusted (${verdict.reason}) while bound to ${host}: clients off this machine will refuse it unless they trust its CA`];
}

/**
 * The master keys from MASTER_KEY_COMMAND: the command is run as `serve` would run it; the
 * row says how many keys it printed and which is current, or why it failed (never its output).
 */
export async function checkMasterKeyCommand(config: Config): Promise<ControlCheck> {
  try {
    const keys = await readKeys(masterKeyCommandOptions(config));
    return { control: 'Master key', status: 'ok', detail: `from MASTER_KEY_COMMAND (a secrets manager, not a file on this host): ${keys.keyIds().length} key(s), current ${keys.currentKeyId}` };
  } catch (error) {
    return { control: 'Master key', status: 'fail', detail: (error as Error).message };
  }
}
