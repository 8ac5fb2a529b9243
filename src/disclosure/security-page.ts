import { createHash } from 'node:crypto';
import type { Config } from '../config/load.js';

/**
 * The published security page (`/security`) and RFC 9116 `security.txt`, built
 * from the live configuration so they never claim a control that is not in
 * force. Nothing here names a file path, a key id or an internal address.
 */

export interface DisclosureInput {
  config: Config;
  publicUrl: string;
  now: number;
}

/** The contact for vulnerability reports: SECURITY_CONTACT, or security@ the public host. */
export function securityContact(config: Config, publicUrl: string): string {
  return config.securityContact ?? `mailto:security@${new URL(publicUrl).hostname}`;
}

/** RFC 9116 §2.5.5: Expires is required and should be less than a year ahead; we say 180 days. */
export function renderSecurityTxt({ config, publicUrl, now }: DisclosureInput): string {
  const expires = new Date(now + 180 * 86_400_000);
  expires.setUTCHours(0, 0, 0, 0);
  return [
    `Contact: ${securityContact(config, publicUrl)}`,
    `Expires: ${expires.toISOString().replace('.000Z', 'Z')}`,
    'Preferred-Languages: en',
    `Canonical: ${publicUrl}/.well-known/security.txt`,
    `Policy: ${publicUrl}/security`,
    '',
  ].join('\n');
}

/** The controls in force, in the words a security reviewer uses. */
export function publicControls(config: Config): Array<[string, string]> {
  return [
    ['Transport security', config.insecurePlainHttpOnLoopback
      ? 'TLS is terminated by a reverse proxy in front of this service.'
      : 'HTTPS only: TLS 1.2 and 1.3 with forward-secret AEAD cipher suites; HSTS for one year including subdomains.'],
    ['Password storage', `argon2id (${Math.round(config.argon2MemoryKiB / 1024)} MiB, ${config.argon2Iterations} passes), salted per password; never stored or logged in clear.`],
    ['Password policy', `At least ${config.passwordMinLength} characters, strength-checked against common passwords and the user's own details; organizations can require more, keep a history against reuse, and set expiry.`],
    ['Second factors', 'TOTP authenticator apps, passkeys/security keys (WebAuthn) and single-use recovery codes; organizations can require a second factor for every member.'],
    ['Sessions', `Server-side sessions that end after ${config.sessionIdleTimeoutMinutes} minutes of inactivity and ${config.sessionAbsoluteTimeoutHours} hours at most, and at once on logout, password change, account lock or deletion. Users can see and end their sessions.`],
    ['API tokens', 'Scoped, expiring, revocable tokens, stored only as keyed hashes, shown once, with a checksum that secret scanners recognize.'],
    ['Network restrictions', 'Organizations can restrict access to IP address ranges for their members and tokens.'],
    ['Personal data', 'Email addresses and names are kept in a separate store, encrypted per user (AES-256-GCM); deleting an account destroys its key.'],
    ['Audit', 'Security-relevant events are appended to a hash-chained audit log that organization admins can review, export and verify.'],
    ['Abuse protection', 'Rate limits on every endpoint, much lower for unauthenticated requests, and per-account brute-force back-off.'],
    ['Staff access', 'Vendor staff roles are dormant until assumed, one at a time, for a limited time, with a second factor and a recorded reason.'],
  ];
}

const STYLE = 'body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#111}h1,h2{line-height:1.2}dt{font-weight:600;margin-top:.75rem}';
/** CSP hash of the one inline style block; no script at all. */
export const SECURITY_PAGE_STYLE_HASH = `'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`;

export function renderSecurityPage({ config, publicUrl }: DisclosureInput): string {
  const product = escapeHtml(config.productName);
  const contact = securityContact(config, publicUrl);
  const controls = publicControls(config)
    .map(([name, text]) => `<dt>${escapeHtml(name)}</dt><dd>${escapeHtml(text)}</dd>`)
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Security at ${product}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>Security at ${product}</h1>
<p>This page describes the security controls in force for ${product}'s identity service, how we respond to incidents, and how to report a vulnerability.</p>
<h2>Controls in force</h2>
<dl>
${controls}
</dl>
<h2>Incident response</h2>
<p>Security events are monitored and alert the affected users and organization administrators (new sign-in locations, brute-force attempts, privilege use). On a suspected incident we contain first (revoke sessions and tokens, lock affected accounts), then investigate using the tamper-evident audit log, notify affected customers without undue delay, and publish what we learned.</p>
<h2>Reporting a vulnerability</h2>
<p>Please report security issues to <a href="${escapeHtml(contact)}">${escapeHtml(contact.replace(/^mailto:/, ''))}</a>. We acknowledge reports within three business days, keep you informed, and will not pursue good-faith research that avoids privacy violations, data destruction and service disruption. Machine-readable contact details are in <a href="/.well-known/security.txt">security.txt</a>.</p>
</body>
</html>
`;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
