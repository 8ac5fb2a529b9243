import type { Config } from '../config/load.js';
import { isLoopbackHost } from '../config/schema.js';

/**
 * The questionnaire items of the product-security guide (its "Product" section and
 * the ops items a product can carry itself), answered from the live configuration.
 * Every answer names the tests that prove it; test/contract/report.test.ts fails if
 * a named test does not exist, so the report can never point at missing evidence.
 */

export interface Evidence {
  /** Repository-relative test file. */
  file: string;
  /** The exact name of a test (or describe block) in that file. */
  test: string;
}

export interface LiveFacts {
  orgCount: number;
  orgsRequiringMfa: number;
  orgsWithIpAllowlist: number;
  orgsWithPasswordExpiry: number;
}

export interface ReportItem {
  id: string;
  section: 'Product' | 'Ops' | 'Development';
  question: string;
  /** 'yes' when the control is in force, 'partial' when it depends on a choice, 'no' when off. */
  status: 'yes' | 'partial' | 'no';
  answer: string;
  evidence: Evidence[];
}

type Item = Omit<ReportItem, 'status' | 'answer'> & {
  answer(config: Config, facts: LiveFacts | null): { status: ReportItem['status']; text: string };
};

const T = (file: string, test: string): Evidence => ({ file, test });

const orgs = (facts: LiveFacts | null, count: keyof LiveFacts, what: string) =>
  facts ? ` Live: ${facts[count]} of ${facts.orgCount} organizations ${what}.` : '';

export const QUESTIONNAIRE: readonly Item[] = [
  {
    id: 'password-storage',
    section: 'Product',
    question: 'How are passwords stored?',
    answer: (c) => ({
      status: 'yes',
      text: `argon2id (memory ${c.argon2MemoryKiB} KiB, ${c.argon2Iterations} iterations, parallelism 1: the OWASP parameters or stronger), salted per password by the library, computed on worker threads with admission control. Hashes weaker than the current parameters (or imported bcrypt hashes) are replaced at the next login. Plaintext passwords are never stored or logged.`,
    }),
    evidence: [
      T('src/auth/password/hasher.test.ts', 'produces argon2id PHC strings with the configured parameters and verifies them'),
      T('src/auth/password/hasher.test.ts', 'flags weaker stored parameters for rehash, and refuses absurd ones without computing them'),
      T('test/security/data-at-rest-and-logs.test.ts', 'the raw main and PII database files (with their WAL) hold no email, name, password or session secret'),
      T('test/security/data-at-rest-and-logs.test.ts', 'the logs hold no password, session secret, CSRF token, email or name'),
    ],
  },
  {
    id: 'password-strength',
    section: 'Product',
    question: 'Do you enforce a minimum password strength?',
    answer: (c) => ({
      status: 'yes',
      text: `Yes: at least ${c.passwordMinLength} characters (up to 256), a zxcvbn score of at least ${c.passwordMinStrength} of 4 computed with the user's email, name, organization names and the product name as known words, and common passwords refused. No composition rules (NIST SP 800-63B). Organizations can raise every threshold.`,
    }),
    evidence: [
      T('test/security/fuzz-no-5xx.test.ts', 'nothing is half-written: a refused signup leaves no account or profile behind'),
      T('test/integration/orgs.test.ts', 'the effective policy is the strictest of the user\'s orgs, with their names as context words'),
      T('test/integration/password-policy.test.ts', 'common: a top breached password that meets the length policy (ASVS V6.2.4)'),
      T('test/integration/password-policy.test.ts', 'contains_user_info: the product name, the name, the email (ASVS V6.2.11)'),
      T('test/integration/password-policy.test.ts', 'breached: the range service knows the password (ASVS V6.2.12)'),
      T('test/integration/org-password-policy.test.ts', 'a member is held to the org policy: length, org name as a context word, expiry'),
      T('test/security/password-strength-dos.test.ts', 'other requests are answered promptly while crafted passwords are being scored'),
    ],
  },
  {
    id: 'password-expiry',
    section: 'Product',
    question: 'Do you have a configurable password expiration policy?',
    answer: (_c, f) => ({
      status: 'yes',
      text: `Yes, per organization (password.maxAgeDays), off by default as NIST SP 800-63B and OWASP ASVS 5.0 (V6.2.10) advise; an expired password must be changed at the next login. When the user has a second factor, the new password takes effect only once the factor is proved: knowing the expired password alone changes nothing.${orgs(f, 'orgsWithPasswordExpiry', 'set an expiry')}`,
    }),
    evidence: [
      T('test/integration/orgs.test.ts', 'PUT policy validates strictly: unknown members, bounds, CIDRs, wrong shapes'),
      T('test/integration/password-expiry.test.ts', 'past maxAgeDays a correct login creates no session and answers a change token'),
      T('test/integration/password-expiry.test.ts', 'change-expired sets the new password and completes the login; the token is single use'),
      T('test/integration/password-expiry.test.ts', 'off by default: years later a correct login just works (ASVS V6.2.10)'),
      T('test/security/password-flows-keep-mfa.test.ts', 'an abandoned MFA step changes nothing, and the hash dies with the token'),
      T('test/security/password-flows-keep-mfa.test.ts', 'three wrong factors kill the step: the old password stays, the new one never works'),
      T('test/security/password-flows-keep-mfa.test.ts', 'the factor proved, the new password is committed with its event, mail and revocation'),
    ],
  },
  {
    id: 'password-reuse',
    section: 'Product',
    question: 'Do you prevent password reuse when changing a password?',
    answer: () => ({ status: 'yes', text: 'Yes: the last N password hashes are kept (password.historyCount, default 5, per organization); a change or reset to any of them is refused.' }),
    evidence: [
      T('test/integration/password-change.test.ts', 'history: each of the last N passwords is refused, the N+1th is accepted'),
      T('test/integration/password-reset.test.ts', 'policy and history apply; a refused password leaves the link usable'),
    ],
  },
  {
    id: 'password-reset',
    section: 'Product',
    question: 'How can a password be reset when needed?',
    answer: (c) => ({
      status: 'yes',
      text: `Self-service by email: the request always answers the same way whether or not the account exists; the link carries a 256-bit single-use token stored only as a hash, valid 30 minutes and voided by a newer request or any password change. An account receives at most ${c.passwordResetMailsPerHour} reset mails an hour, however many addresses ask. A reset ends every session and every login half done with the old password, and never signs the user in, so a second factor is still required at the next login.`,
    }),
    evidence: [
      T('test/integration/password-reset.test.ts', 'the forgot answer is identical for known and unknown addresses (no enumeration)'),
      T('test/integration/password-reset.test.ts', 'reset sets the password, ends every session, signs nobody in; the token is single use'),
      T('test/integration/password-reset.test.ts', 'a token expires after 30 minutes'),
      T('test/integration/password-reset.test.ts', 'a newer request voids the older link'),
      T('test/integration/password-reset.test.ts', 'any password change voids outstanding links'),
      T('test/security/stale-credentials-after-account-change.test.ts', 'password reset through the mail link voids the step and its WebAuthn challenge'),
      T('test/security/reset-mail-flood.test.ts', 'past the hourly budget: 202, no mail, the last link still works, the refusal audited'),
      T('test/security/reset-token-race.test.ts', '20 parallel redemptions: exactly one succeeds, and its password is the one in force'),
      T('test/security/reset-enumeration.test.ts', 'same status and body, and similar timing, for known and unknown addresses'),
    ],
  },
  {
    id: 'mfa-user',
    section: 'Product',
    question: 'Can a user enable a second factor login requirement?',
    answer: () => ({ status: 'yes', text: 'Yes: TOTP authenticator apps (RFC 6238, replay-protected), passkeys and security keys (WebAuthn), and ten single-use recovery codes stored hashed. Removing a factor needs a fresh re-authentication. Neither a password reset nor an expired-password change bypasses the factor.' }),
    evidence: [
      T('test/integration/step-up-and-lock.test.ts', 'the step-up window is 10 minutes and never counts a future time'),
      T('test/integration/mfa-totp-flow.test.ts', 'enroll → logout → login with TOTP → recovery code → regenerate'),
      T('src/auth/mfa/totp.test.ts', 'RFC 6238 Appendix B: every vector generates, verifies and maps to its time step'),
      T('test/security/totp-replay.test.ts', 'a code that logged in once is refused for a second login, within its window'),
      T('test/integration/mfa-webauthn.test.ts', 'register two named credentials, log in with one, counters checked, remove them'),
      T('test/security/webauthn-forgery.test.ts', 'assertion: phishing origin, no UV, wrong key, tampered signature, foreign challenge, expired token'),
      T('test/security/recovery-code-double-spend.test.ts', '20 parallel logins with one recovery code: exactly one succeeds'),
      T('test/security/mfa-brute-force.test.ts', 'five failures lock the user; the right code is refused until the wait is over; the wait doubles'),
      T('test/integration/mfa-step-up.test.ts', 'without a reauth in the last 10 minutes every factor change answers 403 reauth_required'),
      T('test/security/mfa-secrets-leak.test.ts', 'no canary in any log line (trace level)'),
      T('test/security/password-flows-keep-mfa.test.ts', 'after a reset, the next login still stops at the MFA step'),
      T('test/security/password-flows-keep-mfa.test.ts', 'three wrong factors kill the step: the old password stays, the new one never works'),
    ],
  },
  {
    id: 'mfa-org',
    section: 'Product',
    question: 'Can an organization enforce 2 factor login for all users?',
    answer: (c, f) => ({ status: 'yes', text: `Yes: mfa.required in the organization policy, with a grace period during which a member can only enroll a factor; afterwards login is refused, and the member's API tokens stop working, until an administrator of the service resets the member's second factor, which restarts their grace period. Members without a factor are mailed when the requirement starts; members with one must use it. The organization can limit which methods count. The operator can also require a second factor of every account with MFA_REQUIRED_FOR_ALL (ASVS 5.0 V6.3.3), through the same enforcement, with a grace period of MFA_REQUIRED_GRACE_HOURS from account creation or from the first start with the option on; ${c.mfaRequiredForAll ? `it is on here (${c.mfaRequiredGraceHours} h grace).` : 'it is off here, so a second factor is required only where an organization requires it.'}${orgs(f, 'orgsRequiringMfa', 'require a second factor')}` }),
    evidence: [
      T('test/integration/orgs.test.ts', 'mfa.required records when it was turned on, keeps it while on, clears it when off'),
      T('test/integration/mfa-org-enforcement.test.ts', 'during the grace period a member without a factor may only enroll; enrolling opens the session'),
      T('test/integration/mfa-org-enforcement.test.ts', 'after the grace period login is refused until staff reset the member'),
      T('test/integration/mfa-org-enforcement.test.ts', 'mfa.methods decides which factors count; the last counting factor cannot be removed'),
      T('test/integration/mfa-org-enforcement.test.ts', 'API tokens of a member without a factor work during the grace period and stop after it, like the login'),
      T('test/integration/mfa-required-for-all.test.ts', 'a new account starts enrollment-only; enrolling TOTP opens the session and later logins need the factor'),
      T('test/integration/mfa-required-for-all.test.ts', 'after the grace period an account without a factor is refused at login until staff reset it'),
      T('test/integration/mfa-required-for-all.test.ts', 'an account created before the switch-on gets its grace from the first start with the option on'),
      T('src/orgs/policy-resolver.test.ts', 'MFA_REQUIRED_FOR_ALL: a baseline under the orgs; the earliest deadline applies, a stricter org wins'),
    ],
  },
  {
    id: 'api-tokens',
    section: 'Product',
    question: 'Are API tokens treated with the same care as passwords?',
    answer: () => ({
      status: 'yes',
      text: 'Yes: 256 random bits with a checksum that secret scanners recognize, shown once, stored only as a keyed hash (HMAC-SHA256), scoped, expiring (90 days by default, capped by organization policy), revocable, last use recorded, bound to an organization\'s IP allowlist, and never more powerful than their owner\'s current role. Tokens cannot change passwords, factors, tokens or the account.',
    }),
    evidence: [
      T('test/integration/api-tokens.test.ts', 'a dump of the stores and the logs hold no usable token'),
      T('test/integration/api-tokens.test.ts', 'a missing scope is 403 insufficient_scope; session-only routes refuse every token'),
      T('test/integration/api-tokens.test.ts', 'password change keeps tokens; lock and deletion end them'),
      T('test/security/cross-tenant-access.test.ts', 'a token never grants more than its owner\'s role, and needs the route\'s scope'),
    ],
  },
  {
    id: 'ip-allowlist',
    section: 'Product',
    question: 'Can an organization restrict access to specified IP addresses or ranges?',
    answer: (c, f) => ({
      status: 'yes',
      text: `Yes: per-organization IPv4/IPv6 CIDR allowlists enforced at login, on every session request touching the organization and on every use of a token bound to it; a change that would lock out the admin making it is refused unless forced. The client address is the socket's${c.trustedProxies.length > 0 ? `, or X-Forwarded-For from the trusted proxies ${c.trustedProxies.join(', ')}` : '; X-Forwarded-For is ignored because no proxy is trusted'}.${orgs(f, 'orgsWithIpAllowlist', 'have an allowlist')}`,
    }),
    evidence: [
      T('test/integration/orgs.test.ts', 'PUT policy validates strictly: unknown members, bounds, CIDRs, wrong shapes'),
      T('test/integration/ip-allowlist.test.ts', 'session requests touching the org are refused from outside, with an ip.blocked event; others are not'),
      T('test/integration/ip-allowlist.test.ts', 'login: refused from outside when no org of the user admits the address'),
      T('test/integration/ip-allowlist.test.ts', 'credentials bound to the org are held to its list on every route; unbound ones on the org\'s routes'),
      T('test/integration/ip-allowlist.test.ts', 'a list that shuts out the caller is refused with 409 unless ?force=true'),
      T('test/integration/ip-allowlist.test.ts', 'the proxy\'s X-Forwarded-For is the client address; anyone else\'s is ignored'),
      T('src/net/cidr.test.ts', 'every generated CIDR parses, and an address is inside exactly when the model says so'),
    ],
  },
  {
    id: 'sessions',
    section: 'Product',
    question: 'When an account is deleted or has a password changed, are all existing sessions deleted?',
    answer: (c) => ({
      status: 'yes',
      text: `Yes: sessions are server-side and end at once on password change or reset, account deletion, lock, and second-factor reset; tokens derived from a session die with it. Sessions also end after ${c.sessionIdleTimeoutMinutes} idle minutes and ${c.sessionAbsoluteTimeoutHours} hours at most; users see and end their own sessions, and operators end one account's or every account's sessions with \`rampart sessions end\`.`,
    }),
    evidence: [
      T('test/integration/step-up-and-lock.test.ts', 'locking an account ends every session at once and refuses login'),
      T('test/integration/session-expiry.test.ts', 'an idle session ends after the idle timeout, and its row is deleted'),
      T('test/integration/session-expiry.test.ts', 'an active session still ends at the absolute timeout'),
      T('test/integration/auth-flow.test.ts', 'login issues a new session id each time; logout deletes it server-side'),
      T('test/integration/access-tokens.test.ts', 'a session-derived JWT dies with its session; it expires after its TTL'),
      T('test/security/stale-credentials-after-account-change.test.ts', 'password change'),
      T('test/security/stale-credentials-after-account-change.test.ts', 'password reset'),
      T('test/security/stale-credentials-after-account-change.test.ts', 'admin lock'),
      T('test/security/stale-credentials-after-account-change.test.ts', 'account deletion (DELETE /v1/me, step-up), with an API token too'),
      T('test/integration/password-change.test.ts', 'other sessions end, the current one gets a new secret, the new password works (ASVS V7.4.3, V7.2.4)'),
      T('test/integration/operator-end-sessions.test.ts', 'one account: its sessions and pending login steps end, its API tokens and every other account stay; audited'),
      T('test/integration/operator-end-sessions.test.ts', 'every account: all sessions end at once'),
    ],
  },
  {
    id: 'client-side',
    section: 'Product',
    question: 'Is confidential data kept out of cookies and browser storage?',
    answer: () => ({ status: 'yes', text: 'Yes: the only cookie is __Host-rampart_session (Secure, HttpOnly, SameSite=Strict) holding an opaque random id; access JWTs carry ids and scopes only, no personal data.' }),
    evidence: [
      T('test/integration/auth-flow.test.ts', 'signup creates the account and a session, with a hardened cookie'),
      T('test/integration/access-tokens.test.ts', 'a session exchanges for a short-lived at+jwt carrying ids and scopes only'),
    ],
  },
  {
    id: 'secure-defaults',
    section: 'Product',
    question: 'Are secure defaults enforced out of the box?',
    answer: (c) => {
      const insecure = [
        c.insecurePlainHttpOnLoopback && 'RAMPART_INSECURE_PLAIN_HTTP_ON_LOOPBACK',
        c.insecureSmtpWithoutTls && 'RAMPART_INSECURE_SMTP_WITHOUT_TLS',
      ].filter(Boolean);
      return insecure.length === 0
        ? { status: 'yes', text: 'Yes: every control is on by default; insecure choices exist only behind loudly named options, which `rampart doctor` reports, and none is set.' }
        : { status: 'partial', text: `Every control is on by default, but this deployment sets: ${insecure.join(', ')} (reported by \`rampart doctor\`).` };
    },
    evidence: [
      T('src/config/load.test.ts', 'insecure or unknown values stop start-up with a one-line reason'),
      T('test/integration/cli.test.ts', 'doctor passes on the defaults and fails on a shared master key file'),
    ],
  },
  {
    id: 'security-page',
    section: 'Product',
    question: 'Do you publish a security policy, incident response and disclosure process?',
    answer: () => ({ status: 'yes', text: 'Yes: /security lists the controls in force (from the live configuration), the incident-response process and how to report a vulnerability; /.well-known/security.txt follows RFC 9116.' }),
    evidence: [
      T('test/integration/disclosure.test.ts', 'the security page lists the controls from the live configuration, escaped, under a strict CSP'),
      T('test/integration/disclosure.test.ts', 'security.txt follows RFC 9116: Contact, a future Expires under a year, served as UTF-8 text over HTTPS'),
    ],
  },
  {
    id: 'tls',
    section: 'Ops',
    question: 'Is all communication encrypted (TLS)?',
    answer: (c) => c.insecurePlainHttpOnLoopback
      ? { status: 'partial', text: 'This deployment serves plain HTTP on loopback behind a TLS-terminating proxy (RAMPART_INSECURE_PLAIN_HTTP_ON_LOOPBACK); the proxy must provide TLS 1.2+.' }
      : { status: 'yes', text: `Yes: HTTPS only, TLS 1.2 and 1.3 with forward-secret AEAD suites (no CBC, no RSA key exchange), HSTS one year; ${c.tlsCertFile ? 'the operator\'s certificate' : 'a generated certificate (replace it with TLS_CERT_FILE for production)'}. Outbound mail requires TLS.` },
    evidence: [
      T('test/integration/tls.test.ts', 'TLS 1.3 and 1.2 work; 1.1 and 1.0 are refused'),
      T('test/integration/tls.test.ts', 'TLS 1.2 negotiates only forward-secret AEAD suites; CBC and RSA key exchange are refused'),
      T('test/integration/testssl.test.ts', 'testssl.sh finds nothing LOW or worse beyond the self-signed test certificate'),
    ],
  },
  {
    id: 'data-security',
    section: 'Ops',
    question: 'Is data encrypted at rest, is PII stored separately, and is deletion real?',
    answer: (c) => ({
      status: 'yes',
      text: `Personal data (email, name, addresses kept for the user) lives in its own store (${c.piiDatabaseUrl ? 'a separate PostgreSQL database' : 'a separate SQLite file'}), encrypted with AES-256-GCM under a per-user key that the master key wraps; lookups use a keyed blind index. Deleting a user destroys the key (crypto-shredding); a user can download everything held about them (GET /v1/me/export). The master keys ${c.masterKeyCommand !== null ? 'come from a secrets manager (MASTER_KEY_COMMAND) and never sit on the server\'s disk' : 'sit in a 0600 file on the server (MASTER_KEY_COMMAND can take them from a secrets manager instead)'}; they rotate without downtime, and so do the keys that encrypt audit-event addresses and webhook secrets (rampart keys rotate-audit, and rampart keys rotate-webhook, which re-encrypts).`,
    }),
    evidence: [
      T('test/contract/store.test.ts', 'PII: encrypted profile, blind-index lookup in any case, crypto-shredding'),
      T('test/integration/account-deletion.test.ts', 'deletes the account: sessions end, personal data is unrecoverable, the audit trail keeps the id'),
      T('test/security/data-at-rest-and-logs.test.ts', 'no table of either store holds the secrets in clear'),
      T('test/integration/master-key-rotation.test.ts', 'master key rotation re-wraps every data key while the server keeps serving, then retires the old key'),
      T('test/integration/master-key-command.test.ts', 'master keys from MASTER_KEY_COMMAND: none on disk, readable after a restart, rotated from the secret store while the server serves'),
      T('test/integration/webhook-key-rotation.test.ts', '`rampart keys rotate-webhook` re-encrypts every secret under a new key version; deliveries keep their signatures; new secrets take the new version'),
      T('test/integration/data-export.test.ts', 'everything held about the user, decrypted, with no credential in it; audited'),
    ],
  },
  {
    id: 'public-footprint',
    section: 'Ops',
    question: 'Is the public footprint minimal?',
    answer: (c) => isLoopbackHost(c.host)
      ? { status: 'yes', text: `The server binds ${c.host} (loopback) by default; metrics are not on the public listener.` }
      : { status: 'partial', text: `The server binds ${c.host}, reachable from the network; prefer loopback behind a reverse proxy.` },
    evidence: [T('src/config/load.test.ts', 'secure defaults: loopback, TLS, 8443, data dir files')],
  },
  {
    id: 'audit',
    section: 'Ops',
    question: 'Is the use of privileges audited, and can the audit trail be trusted?',
    answer: () => ({ status: 'yes', text: 'Every security-relevant event and every use of privilege is appended to a hash-chained audit log (each entry carries the hash of the previous one); the database refuses updates and deletes of events, `rampart audit verify` names the first broken link, and organization admins list, export and verify their organization\'s events. The client address and user agent of each event are encrypted (AES-256-GCM) under a key derived for that event from an audit key that rotates with `rampart keys rotate-audit`.' }),
    evidence: [
      T('test/integration/audit-chain.test.ts', 'altering or deleting one row makes `rampart audit verify` fail and name it'),
      T('test/integration/audit-chain.test.ts', 'two server instances on one PostgreSQL append one valid chain'),
      T('test/integration/crash-consistency.test.ts', 'killed four times under concurrent signups, org and token creations, then restarted'),
      T('test/integration/audit-key-rotation.test.ts', '`rampart keys rotate-audit` adds a version that a running server seals with within a minute; every version still opens'),
      T('test/integration/audit-api.test.ts', 'a bearer token needs audit:read, and the API has no way to change or delete an event'),
    ],
  },
  {
    id: 'rate-limits',
    section: 'Ops',
    question: 'Is the API rate limited, with unauthenticated requests far lower?',
    answer: () => ({ status: 'yes', text: 'Yes: per-route-class limits, unauthenticated credential routes far lower than authenticated traffic, per address and per account, shared through Redis when configured; consecutive failures slow an account down without letting an attacker lock its owner out. Signup\'s "address taken" answer, which the API contract keeps, is capped per client address and hour (SIGNUP_EMAIL_TAKEN_PER_HOUR), so addresses cannot be tested in bulk.' }),
    evidence: [
      T('test/integration/rate-limits.test.ts', '429 after the limit with Retry-After and RateLimit-* headers; the anonymous tier is far lower than the authenticated one'),
      T('test/integration/rate-limits.test.ts', 'two server instances on one Redis share their counters; keys hold no address or email'),
      T('test/integration/rate-limits.test.ts', 'Redis down: credential routes fail closed, the rest fail open and are counted'),
      T('test/security/brute-force-login.test.ts', 'one address: exponential back-off that refuses even the right password; the owner logs in from elsewhere'),
      T('test/security/brute-force-login.test.ts', 'guessing spread over many addresses hits the account limit and raises one alert; known addresses keep working'),
      T('test/security/signup-enumeration.test.ts', 'after 3 email_taken answers an address gets 429 for every signup, taken or not, for the hour'),
      T('test/security/signup-enumeration.test.ts', 'parallel probes from one address get at most the budget of email_taken answers'),
    ],
  },
  {
    id: 'monitoring',
    section: 'Ops',
    question: 'Does monitoring alert on suspicious events?',
    answer: () => ({ status: 'yes', text: 'Alert rules over the event stream (sign-in from a new address or device, brute force against an account, staff role assumed, policy weakened, token used from a new address, new API token) notify the user, organization admins and webhooks; Prometheus metrics on a separate loopback listener.' }),
    evidence: [
      T('test/integration/audit-api.test.ts', 'owner, admin and auditor read the audit; a member gets 403 and an outsider 404'),
      T('test/integration/alerts.test.ts', 'a login from a new address mails the user naming it and enters their security events; known addresses stay quiet'),
      T('test/integration/alerts.test.ts', 'a new API token is told to its owner: a stolen session could mint one that outlives a password reset'),
      T('test/integration/alerts.test.ts', 'brute force against a member alerts the member and the org\'s owners and admins, and enters the org audit'),
      T('test/integration/webhooks.test.ts', 'a delivery is a signed POST the receiver can verify; the secret is shown once'),
      T('test/integration/webhooks.test.ts', 'deliveries survive a server restart'),
      T('test/security/ssrf-webhooks.test.ts', 'webhook URLs into private, loopback or link-local space are refused, and checked again at delivery'),
      T('test/integration/metrics.test.ts', 'Prometheus metrics on their own loopback listener, never on the public one'),
    ],
  },
  {
    id: 'staff-mfa-and-roles',
    section: 'Ops',
    question: 'Is two-factor enforced for staff, and are staff roles separated?',
    answer: () => ({ status: 'yes', text: 'Staff roles (support, operator, security, auditor) are dormant until assumed, one at a time, for at most 60 minutes, by a session that passed a second factor and a fresh re-authentication, with a reason recorded in the audit log. Staff accounts must have a second factor.' }),
    evidence: [
      T('test/integration/staff.test.ts', 'a granted role gives no power before it is assumed'),
      T('test/integration/staff.test.ts', 'assuming needs a step-up, an MFA-verified session, a held role and a reason; never a token'),
      T('test/integration/staff.test.ts', 'one role at a time: assuming another replaces it, in this session and the user\'s others'),
      T('test/integration/staff.test.ts', 'an assumed role expires on time, and ends at once on release or revocation'),
      T('test/integration/staff.test.ts', 'an assumed operator locks and unlocks, each action audited with the reason; the session secret rotates'),
      T('test/integration/staff.test.ts', 'granting needs an account with a second factor'),
    ],
  },
  {
    id: 'crypto-primitives',
    section: 'Development',
    question: 'Are encryption primitives standard rather than homegrown?',
    answer: () => ({ status: 'yes', text: 'Yes: node:crypto (AES-256-GCM, HMAC-SHA256, SHA-256, CSPRNG), jose (JWS), @node-rs/argon2, otpauth, @simplewebauthn/server; verified against RFC test vectors.' }),
    evidence: [
      T('src/crypto/crypto.test.ts', 'a flipped bit anywhere, another AAD or another key fails closed (null, no throw)'),
      T('test/contract/jose-vectors.test.ts', 'RFC 8037 A.5: the RFC JWS verifies; one flipped bit does not'),
    ],
  },
  {
    id: 'architecture',
    section: 'Development',
    question: 'Is there a current product architecture and threat model?',
    answer: () => ({ status: 'yes', text: 'ARCHITECTURE.md describes the modules, data flow and trust boundaries and is kept current with every change; security regressions have one test file per threat.' }),
    evidence: [T('test/security/fuzz-no-5xx.test.ts', 'random JSON bodies'), T('test/security/fuzz-no-5xx.test.ts', 'bodies generated from each route\'s own schema, valid and hostile, never yield a 5xx or a non-problem error')],
  },
];

export function buildReport(config: Config, facts: LiveFacts | null): ReportItem[] {
  return QUESTIONNAIRE.map(({ answer, ...item }) => {
    const { status, text } = answer(config, facts);
    return { ...item, status, answer: text };
  });
}

export function renderReportMarkdown(items: readonly ReportItem[], generatedAt: string): string {
  const lines = [`# Security questionnaire answers`, '', `Generated ${generatedAt} from the live configuration by \`rampart report\`.`, ''];
  for (const section of ['Product', 'Ops', 'Development'] as const) {
    lines.push(`## ${section}`, '');
    for (const item of items.filter((i) => i.section === section)) {
      lines.push(`### ${item.question}`, '', `**${item.status.toUpperCase()}** — ${item.answer}`, '');
      if (item.evidence.length > 0) {
        lines.push('Proven by:');
        for (const evidence of item.evidence) lines.push(`- \`${evidence.file}\`: “${evidence.test}”`);
        lines.push('');
      }
    }
  }
  return lines.join('\n');
}
