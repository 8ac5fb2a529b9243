/**
 * Every configuration option, its source names, its default and the reason for
 * that default. This one table drives loading, validation, `rampart doctor` and
 * the README's configuration table (`npm run rampart -- config-table`).
 *
 * Precedence: command-line flag > environment > config file > default.
 * The config file (`rampart.config.json` in the data dir, or `--config FILE`)
 * uses the `key` names below.
 */
import { existsSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { ConfigError } from '../errors.js';
import { isAddressInRanges, parseCIDRList } from '../net/cidr.js';
import { parseStaffConflicts } from '../staff/staff-roles.js';

export type OptionType = 'string' | 'int' | 'bool' | 'list';

export interface OptionDef<T = unknown> {
  key: string;
  env: string;
  /** Long command-line flag without the dashes, when one exists. */
  flag?: string;
  type: OptionType;
  /** A value, a function of the already-resolved options, or null for "unset". */
  default: T | null | ((resolved: Record<string, unknown>) => T | null);
  /** Shown in the README and by doctor: what it is and why the default is safe. */
  doc: string;
  /** Throws ConfigError with a one-line reason when the value is unacceptable. */
  validate?: (value: T, resolved: Record<string, unknown>) => void;
  min?: number;
  max?: number;
  /** Never printed (doctor and the config table print "(set)" instead). */
  secret?: boolean;
}

function def<T>(option: OptionDef<T>): OptionDef<T> {
  return option;
}

function assertURL(name: string, value: string, protocols: readonly string[]): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${name} is not a valid URL`);
  }
  if (!protocols.includes(url.protocol)) {
    throw new ConfigError(`${name} must use ${protocols.join(' or ')}`);
  }
  return url;
}

export const OPTIONS = [
  def<number>({
    key: 'port', env: 'RAMPART_PORT', flag: 'port', type: 'int', default: 8443, min: 0, max: 65535,
    doc: 'TCP port to listen on (0 picks a free port). 8443 needs no root.',
  }),
  def<string>({
    key: 'host', env: 'RAMPART_HOST', flag: 'host', type: 'string', default: '127.0.0.1',
    doc: 'Address to bind. Loopback by default: expose it deliberately, or through a reverse proxy.',
    validate: (value) => {
      if (isIP(value) === 0 && value !== 'localhost') throw new ConfigError('host must be an IP address or "localhost"');
    },
  }),
  def<string>({
    key: 'dataDir', env: 'RAMPART_DATA_DIR', flag: 'data-dir', type: 'string', default: './data',
    doc: 'Directory for the SQLite stores, keys, certificate and mail outbox (created with mode 0700).',
  }),
  def<string>({
    key: 'publicUrl', env: 'PUBLIC_URL', type: 'string', default: null,
    doc: 'Origin users reach (mail links, WebAuthn RP ID and origin, JWT issuer). Default: https://localhost:<listening port>.',
    validate: (value, resolved) => {
      const url = assertURL('PUBLIC_URL', value, ['https:', 'http:']);
      if (url.protocol === 'http:' && !resolved['insecurePlainHttpOnLoopback']) {
        throw new ConfigError('PUBLIC_URL must be https (browsers only send __Host- cookies over TLS)');
      }
      if (url.pathname !== '/' || url.search || url.hash || url.username) {
        throw new ConfigError('PUBLIC_URL must be an origin only (scheme, host, port)');
      }
    },
  }),
  def<string>({
    key: 'databaseUrl', env: 'DATABASE_URL', type: 'string', default: null, secret: true,
    doc: 'PostgreSQL URL of the main store. Unset: SQLite at DATA_DIR/rampart.db (WAL mode). Off loopback it needs verified TLS: `?sslmode=verify-full`, with `&sslrootcert=/path/ca.pem` for a server an internal CA signed. To authenticate by client certificate instead of a password (pg_hba `cert`), add `&sslcert=/path/client.pem&sslkey=/path/client-key.pem` (the certificate\'s CN is the role).',
    validate: (value, resolved) => {
      assertURL('DATABASE_URL', value, ['postgres:', 'postgresql:']);
      assertProtectedBackend('DATABASE_URL', value, resolved);
    },
  }),
  def<string>({
    key: 'piiDatabaseUrl', env: 'PII_DATABASE_URL', type: 'string', default: null, secret: true,
    doc: 'PostgreSQL URL of the personal-data store (use another database and role). Unset: SQLite at DATA_DIR/pii.db.',
    validate: (value, resolved) => {
      assertURL('PII_DATABASE_URL', value, ['postgres:', 'postgresql:']);
      assertProtectedBackend('PII_DATABASE_URL', value, resolved);
      if (value === resolved['databaseUrl']) {
        throw new ConfigError('PII_DATABASE_URL must differ from DATABASE_URL: personal data lives in its own store');
      }
    },
  }),
  def<string>({
    key: 'masterKeyFile', env: 'MASTER_KEY_FILE', type: 'string', default: null,
    doc: 'Master key file (mode 0600) that wraps every data key. Default: DATA_DIR/keys/master.key, generated on first start. Not with MASTER_KEY_COMMAND.',
  }),
  def<string>({
    key: 'masterKeyCommand', env: 'MASTER_KEY_COMMAND', type: 'string', default: null,
    doc: 'Shell command that prints the master keys in the key file\'s format (current first), e.g. `vault kv get -field=keys secret/rampart`: the keys come from a secrets manager and never sit on this host\'s disk. Run at start, then at most every MASTER_KEY_COMMAND_REFRESH_SECONDS before a wrap; its output is never logged.',
    validate: (value) => {
      if (value.trim() === '') throw new ConfigError('MASTER_KEY_COMMAND is empty');
    },
  }),
  def<number>({
    key: 'masterKeyCommandTimeoutSeconds', env: 'MASTER_KEY_COMMAND_TIMEOUT_SECONDS', type: 'int', default: 10, min: 1, max: 120,
    doc: 'How long MASTER_KEY_COMMAND may run before it is killed (start-up then refuses).',
  }),
  def<number>({
    key: 'masterKeyCommandRefreshSeconds', env: 'MASTER_KEY_COMMAND_REFRESH_SECONDS', type: 'int', default: 60, min: 1, max: 3600,
    doc: 'Age after which the keys MASTER_KEY_COMMAND printed are read again before the next wrap: how long servers may keep wrapping under a key after it stopped being current.',
  }),
  def<string>({
    key: 'tlsCertFile', env: 'TLS_CERT_FILE', type: 'string', default: null,
    doc: 'PEM certificate chain. Unset: a self-signed certificate for localhost is generated into DATA_DIR/tls. A weak key or signature (RSA < 2048, SHA-1) refuses start-up; `rampart doctor` warns on RSA 2048 and on expiry within 14 days.',
    validate: (_value, resolved) => {
      if (!resolved['tlsKeyFile']) throw new ConfigError('TLS_CERT_FILE needs TLS_KEY_FILE as well');
    },
  }),
  def<string>({
    key: 'tlsKeyFile', env: 'TLS_KEY_FILE', type: 'string', default: null,
    doc: 'PEM private key for TLS_CERT_FILE (must not be readable by other users).',
    validate: (_value, resolved) => {
      if (!resolved['tlsCertFile']) throw new ConfigError('TLS_KEY_FILE needs TLS_CERT_FILE as well');
    },
  }),
  def<boolean>({
    key: 'insecurePlainHttpOnLoopback', env: 'RAMPART_INSECURE_PLAIN_HTTP_ON_LOOPBACK', flag: 'insecure-plain-http-on-loopback',
    type: 'bool', default: false,
    doc: 'INSECURE: serve plain HTTP. Only for a TLS-terminating reverse proxy on the same host; refused unless bound to loopback.',
    validate: (value, resolved) => {
      if (value && !isLoopbackHost(String(resolved['host']))) {
        throw new ConfigError('plain HTTP is only allowed on a loopback address (behind a local TLS-terminating proxy)');
      }
    },
  }),
  def<boolean>({
    key: 'insecureAllowEternalApiTokens', env: 'RAMPART_INSECURE_ALLOW_ETERNAL_API_TOKENS', type: 'bool', default: false,
    doc: 'INSECURE: let users create API tokens that never expire (expiresInDays: null), when no org policy limits them. A leaked eternal token works until someone notices.',
  }),
  def<number>({
    key: 'accessTokenTtlSeconds', env: 'ACCESS_TOKEN_TTL_SECONDS', type: 'int', default: 600, min: 60, max: 900,
    doc: 'Lifetime of access JWTs (POST /v1/token/access). Offline verifiers cannot see a revocation, so 10 minutes bounds how long a revoked credential lives on there; API.md caps it at 15.',
  }),
  def<string>({
    key: 'accessTokenAudience', env: 'ACCESS_TOKEN_AUDIENCE', type: 'string', default: null,
    doc: 'The `aud` of access JWTs, which every verifier (Rampart and the SDK) pins. Default: PUBLIC_URL + "/v1", the API these tokens are for.',
    validate: (value) => {
      if (value.length > 256 || !/^[\x21-\x7e]+$/.test(value)) throw new ConfigError('ACCESS_TOKEN_AUDIENCE must be printable ASCII without spaces, at most 256 characters');
    },
  }),
  def<number>({
    key: 'signingKeyRotationDays', env: 'SIGNING_KEY_ROTATION_DAYS', type: 'int', default: 30, min: 1, max: 365,
    doc: 'An access-token signing key signs this long, then a new one takes over (old public keys stay in the JWKS until their tokens expire). Monthly limits what one key compromise exposes.',
  }),
  def<string[]>({
    key: 'trustedProxies', env: 'TRUSTED_PROXIES', type: 'list', default: [],
    doc: 'CIDRs of reverse proxies whose X-Forwarded-For is believed (the rightmost hop not in this list is the client). Empty: the socket address is the client address. A forwarded value that is not a bare IP address (with a port, `unknown`) is refused with 400.',
    validate: (value) => {
      const ranges = parseCIDRList(value, 'TRUSTED_PROXIES');
      // A range holding every client (0.0.0.0/0, ::/0, or ::ffff:0:0/96, every IPv4 client in
      // IPv6 notation) would let anyone write their own address into X-Forwarded-For.
      ranges.forEach((range, index) => {
        for (const [family, lowest, highest] of [['IPv4', '0.0.0.0', '255.255.255.255'], ['IPv6', '::', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff']] as const) {
          if (isAddressInRanges(lowest, [range]) && isAddressInRanges(highest, [range])) {
            throw new ConfigError(`TRUSTED_PROXIES: ${value[index]} covers every ${family} address; anyone could forge X-Forwarded-For. List the proxies' own addresses`);
          }
        }
      });
    },
  }),
  def<string[]>({
    key: 'corsOrigins', env: 'CORS_ORIGINS', type: 'list', default: [],
    doc: 'Origins allowed to call the API from a browser (exact https origins). Empty: no CORS headers at all.',
    validate: (value) => {
      for (const origin of value) {
        const url = assertURL('CORS_ORIGINS', origin, ['https:']);
        if (url.origin !== origin) throw new ConfigError(`CORS_ORIGINS entry ${origin} must be a bare origin like https://app.example.com`);
      }
    },
  }),
  def<string>({
    key: 'logLevel', env: 'LOG_LEVEL', type: 'string', default: 'info',
    doc: 'pino log level. Passwords, tokens, cookies and Authorization headers are always redacted.',
    validate: (value) => {
      if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(value)) {
        throw new ConfigError('LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent');
      }
    },
  }),
  def<number>({
    key: 'bodyLimitBytes', env: 'BODY_LIMIT_BYTES', type: 'int', default: 65536, min: 1024, max: 1048576,
    doc: 'Largest accepted request body. 64 KiB is ample for every JSON body in the API.',
  }),
  def<number>({
    key: 'sessionIdleTimeoutMinutes', env: 'SESSION_IDLE_TIMEOUT_MINUTES', type: 'int', default: 60, min: 1, max: 1440,
    doc: 'A session unused this long ends (an org policy may shorten it). NIST 800-63B AAL2 allows up to 30-60 min of inactivity.',
  }),
  def<number>({
    key: 'sessionAbsoluteTimeoutHours', env: 'SESSION_ABSOLUTE_TIMEOUT_HOURS', type: 'int', default: 12, min: 1, max: 720,
    doc: 'A session ends this long after login, however active (NIST 800-63B AAL2: re-authenticate every 12 h at most).',
  }),
  def<number>({
    key: 'passwordMinLength', env: 'PASSWORD_MIN_LENGTH', type: 'int', default: 12, min: 8, max: 64,
    doc: 'Shortest password accepted (NIST 800-63B requires at least 8; 12 by default). Org policies may raise it.',
  }),
  def<number>({
    key: 'passwordMinStrength', env: 'PASSWORD_MIN_STRENGTH', type: 'int', default: 3, min: 2, max: 4,
    doc: 'Minimum zxcvbn score (0-4), computed with the user\'s email and name as known words.',
  }),
  def<boolean>({
    key: 'mfaRequiredForAll', env: 'MFA_REQUIRED_FOR_ALL', type: 'bool', default: false,
    doc: 'Require a second factor (TOTP or WebAuthn) of every account, as if every user were in an org with mfa.required (ASVS 5.0 V6.3.3, level 2). Off by default because self-service signup would otherwise start every new account in an enrollment-only session; with it off, MFA is required only where an org policy requires it. Existing accounts get MFA_REQUIRED_GRACE_HOURS from the first start with it on; new accounts from their creation. Org policies may still be stricter.',
  }),
  def<number>({
    key: 'mfaRequiredGraceHours', env: 'MFA_REQUIRED_GRACE_HOURS', type: 'int', default: 72, min: 1, max: 720,
    doc: 'With MFA_REQUIRED_FOR_ALL: how long an account without a second factor may still log in, to an enrollment-only session, before login is refused (403 mfa_enrollment_required) until staff reset its MFA. An org with a shorter grace period wins for its members.',
  }),
  def<number>({
    key: 'argon2MemoryKiB', env: 'ARGON2_MEMORY_KIB', type: 'int', default: 19456, min: 7168, max: 1048576,
    doc: 'argon2id memory cost (OWASP: 19 MiB with t=2). Combinations weaker than the OWASP table refuse start-up.',
    validate: (value, resolved) => {
      const iterations = Number(resolved['argon2Iterations']);
      const needed = argon2MinimumMemoryKiB(iterations);
      if (value < needed) {
        throw new ConfigError(`argon2id with ${iterations} iteration${iterations === 1 ? '' : 's'} needs at least ${needed} KiB of memory (OWASP: 47104/t=1, 19456/t=2, 12288/t=3, 9216/t=4, 7168/t=5+)`);
      }
    },
  }),
  def<number>({
    key: 'argon2Iterations', env: 'ARGON2_ITERATIONS', type: 'int', default: 2, min: 1, max: 20,
    doc: 'argon2id time cost (passes).',
  }),
  def<number>({
    key: 'passwordHashConcurrency', env: 'PASSWORD_HASH_CONCURRENCY', type: 'int', default: null, min: 1, max: 64,
    doc: 'Password hashes computed at once, off the event loop. Default: one per CPU core.',
  }),
  def<number>({
    key: 'passwordHashQueue', env: 'PASSWORD_HASH_QUEUE', type: 'int', default: null, min: 0, max: 4096,
    doc: 'Hashes allowed to wait for a free slot; beyond it logins answer 503 with Retry-After. Default: 8 per slot.',
  }),
  def<string>({
    key: 'smtpUrl', env: 'SMTP_URL', type: 'string', default: null, secret: true,
    doc: 'smtps:// or smtp:// (STARTTLS required) URL of the mail relay. Unset: mail is written to DATA_DIR/outbox as .eml files.',
    validate: (value) => void assertURL('SMTP_URL', value, ['smtp:', 'smtps:']),
  }),
  def<string>({
    key: 'smtpCaFile', env: 'SMTP_CA_FILE', type: 'string', default: null,
    doc: 'PEM file of the CA (or self-signed certificate) that signs the SMTP relay\'s certificate, for an internal relay. Unset: the system CAs. Certificates are always verified.',
    validate: (value) => {
      assertFileExists('SMTP_CA_FILE', value);
    },
  }),
  def<boolean>({
    key: 'insecureSmtpWithoutTls', env: 'RAMPART_INSECURE_SMTP_WITHOUT_TLS', type: 'bool', default: false,
    doc: 'INSECURE: allow an smtp:// relay without STARTTLS (a local test relay only).',
  }),
  def<string>({
    key: 'mailFrom', env: 'MAIL_FROM', type: 'string', default: 'Rampart <no-reply@localhost>',
    doc: 'From address of the mail Rampart sends.',
    validate: (value) => {
      if (/[\r\n]/.test(value)) throw new ConfigError('MAIL_FROM must be a single line');
    },
  }),
  def<string>({
    key: 'securityContact', env: 'SECURITY_CONTACT', type: 'string', default: null,
    doc: 'Where vulnerability reports go (a mailto: or https: URI), published in /security and security.txt. Default: mailto:security@<PUBLIC_URL host>.',
    validate: (value) => {
      const url = assertURL('SECURITY_CONTACT', value, ['mailto:', 'https:']);
      if (/[\s<>"]/.test(value) || (url.protocol === 'mailto:' && !/^mailto:[^@\s]+@[^@\s]+$/.test(value))) {
        throw new ConfigError('SECURITY_CONTACT must be a mailto:address or an https: URL');
      }
    },
  }),
  def<string[]>({
    key: 'staffConflictingRoles', env: 'STAFF_CONFLICTING_ROLES', type: 'list', default: ['*'],
    doc: 'Staff roles one person may not hold assumed at once: "*" (every pair: one role at a time, the default, the strictest separation) or pairs like support:operator.',
    validate: (value) => void parseStaffConflicts(value),
  }),
  def<string>({
    key: 'breachedPasswordApiUrl', env: 'BREACHED_PASSWORD_API_URL', type: 'string', default: null,
    doc: 'k-anonymity range API for breached passwords (e.g. https://api.pwnedpasswords.com/range/); only 5 hex digits of the SHA-1 leave. Unset (default): offline lists only, no outbound traffic. Fails open when unreachable.',
    validate: (value) => {
      const url = assertURL('BREACHED_PASSWORD_API_URL', value, ['https:', 'http:']);
      if (url.protocol === 'http:' && !isLoopbackUrl(url)) {
        throw new ConfigError('BREACHED_PASSWORD_API_URL must be https (http only for a service on loopback)');
      }
      if (url.search || url.hash || url.username || url.password) {
        throw new ConfigError('BREACHED_PASSWORD_API_URL must be a plain base URL (the prefix is appended to it)');
      }
    },
  }),
  def<number>({
    key: 'breachedPasswordTimeoutMs', env: 'BREACHED_PASSWORD_TIMEOUT_MS', type: 'int', default: 1500, min: 50, max: 10000,
    doc: 'How long a breached-password look-up may take before it fails open: short, so a slow third party never stalls a signup or a reset.',
  }),
  def<string>({
    key: 'productName', env: 'PRODUCT_NAME', type: 'string', default: 'Rampart',
    doc: 'Product name shown in mail and blocked inside passwords (a context-specific word, ASVS V6.2.11).',
    validate: (value) => {
      if (value.length > 64 || /[\r\n<>]/.test(value)) throw new ConfigError('PRODUCT_NAME must be a short single line without < or >');
    },
  }),
  // ---- issue 7: rate limits, brute-force defence, audit retention, metrics ----
  def<string>({
    key: 'redisUrl', env: 'REDIS_URL', type: 'string', default: null, secret: true,
    doc: 'redis:// or rediss:// URL. Set: rate-limit counters live in Redis and every instance shares them, and instances sharing a PostgreSQL store tell each other of their writes, so their read caches stay exact (without it they keep nothing). Unset: in-memory counters per process (right for one instance).',
    validate: (value, resolved) => {
      assertURL('REDIS_URL', value, ['redis:', 'rediss:']);
      assertProtectedBackend('REDIS_URL', value, resolved);
    },
  }),
  def<string>({
    key: 'redisCaFile', env: 'REDIS_CA_FILE', type: 'string', default: null,
    doc: 'PEM file of the CA (or self-signed certificate) that signs a rediss:// server\'s certificate, for an internal Redis. Unset: the system CAs. Certificates are always verified.',
    validate: (value, resolved) => {
      assertFileExists('REDIS_CA_FILE', value);
      if (typeof resolved['redisUrl'] !== 'string' || !resolved['redisUrl'].startsWith('rediss:')) throw new ConfigError('REDIS_CA_FILE needs a rediss:// REDIS_URL');
    },
  }),
  def<string>({
    key: 'redisCertFile', env: 'REDIS_CERT_FILE', type: 'string', default: null,
    doc: 'PEM client certificate Rampart presents to a rediss:// Redis that authenticates clients by certificate (redis-server tls-auth-clients yes), with REDIS_KEY_FILE: a credential that never crosses the wire, instead of a password in REDIS_URL.',
    validate: (value, resolved) => {
      assertFileExists('REDIS_CERT_FILE', value);
      if (!resolved['redisKeyFile']) throw new ConfigError('REDIS_CERT_FILE needs REDIS_KEY_FILE as well');
      if (typeof resolved['redisUrl'] !== 'string' || !resolved['redisUrl'].startsWith('rediss:')) throw new ConfigError('REDIS_CERT_FILE needs a rediss:// REDIS_URL');
    },
  }),
  def<string>({
    key: 'redisKeyFile', env: 'REDIS_KEY_FILE', type: 'string', default: null,
    doc: 'PEM private key of REDIS_CERT_FILE; like TLS_KEY_FILE it must not be accessible to other users (start-up refuses it otherwise).',
    validate: (value, resolved) => {
      assertFileExists('REDIS_KEY_FILE', value);
      if ((statSync(value).mode & 0o077) !== 0) throw new ConfigError(`REDIS_KEY_FILE ${value} is accessible to other users; run: chmod 600 ${value}`);
      if (!resolved['redisCertFile']) throw new ConfigError('REDIS_KEY_FILE needs REDIS_CERT_FILE as well');
    },
  }),
  def<string>({
    key: 'redisKeyPrefix', env: 'REDIS_KEY_PREFIX', type: 'string', default: 'rampart:',
    doc: 'Prefix of every Redis key Rampart writes, so deployments (or test runs) sharing a Redis never mix counters.',
    validate: (value) => {
      if (!/^[A-Za-z0-9:._-]{1,64}$/.test(value)) throw new ConfigError('REDIS_KEY_PREFIX must be 1-64 characters of A-Z a-z 0-9 : . _ -');
    },
  }),
  def<number>({
    key: 'rateLimitAnonPerMinute', env: 'RATE_LIMIT_ANON_PER_MINUTE', type: 'int', default: 120, min: 1, max: 1_000_000,
    doc: 'Requests per minute per client address (IPv6: per /64) without a valid credential: signup, login, MFA completion, password reset, public pages. Far below the authenticated tier, because this is where guessing and stuffing happen, yet high enough that a customer office behind one NAT address can sign in at the start of the day (guessing at one account is capped separately by RATE_LIMIT_ACCOUNT_PER_MINUTE and the login back-off); health probes are exempt.',
  }),
  def<number>({
    key: 'rateLimitAuthPerMinute', env: 'RATE_LIMIT_AUTH_PER_MINUTE', type: 'int', default: 1200, min: 1, max: 1_000_000,
    doc: 'Requests per minute per session or API token. Ten times the anonymous limit: an authenticated caller is accountable, and apps poll.',
  }),
  def<number>({
    key: 'rateLimitAccountPerMinute', env: 'RATE_LIMIT_ACCOUNT_PER_MINUTE', type: 'int', default: 10, min: 1, max: 1_000_000,
    doc: 'Credential requests per minute per account (keyed on the email\'s blind index, or the user for step-up), from all addresses together: caps guessing spread over many addresses and mail bombing.',
  }),
  def<number>({
    key: 'signupEmailTakenPerHour', env: 'SIGNUP_EMAIL_TAKEN_PER_HOUR', type: 'int', default: 10, min: 1, max: 1_000_000,
    doc: 'Signups answered 409 email_taken per client address (IPv6: per /64) per hour. That answer (the HTTP contract) tells whether an address has an account; past this budget every signup from the address answers 429 until the hour is over, whatever the address asked about, so one client cannot test addresses in bulk (ASVS V6.3.8). Each signup holds a point until it is answered: more than this many signups at the same instant from one address also wait.',
  }),
  def<number>({
    key: 'passwordResetMailsPerHour', env: 'PASSWORD_RESET_MAILS_PER_HOUR', type: 'int', default: 5, min: 1, max: 1000,
    doc: 'Password-reset mails per account per hour, however many addresses ask: anyone who knows an address can ask for a link, and each one is a mail to its owner. Requests beyond it still answer 202 (no enumeration), send nothing and leave the last link valid; they are audited as password.reset_requested with outcome denied.',
  }),
  def<string[]>({
    key: 'webhookAllowedHosts', env: 'WEBHOOK_ALLOWED_HOSTS', type: 'list', default: [],
    doc: 'The only hosts org webhooks may be registered for and delivered to: comma-separated host names, `*.example.com` for any subdomain (ASVS V13.2.4, V13.2.5). Empty: any public host (private, loopback and link-local addresses are refused either way). A host taken off the list stops receiving at the next delivery.',
    validate: (value) => {
      for (const entry of value) {
        if (!/^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/.test(entry)) {
          throw new ConfigError(`WEBHOOK_ALLOWED_HOSTS: "${entry}" is not a lower-case host name or *.domain`);
        }
      }
    },
  }),
  def<boolean>({
    key: 'migrateOnStart', env: 'MIGRATE_ON_START', type: 'bool', default: true,
    doc: 'Bring both stores to the latest schema at start. false: start only when they already are (else a one-line refusal), so the server can run as a database role without DDL rights that cannot alter or drop the audit table\'s protections; the schema owner runs `rampart migrate` (README "A runtime role without DDL rights").',
  }),
  def<boolean>({
    key: 'insecureBackendsWithoutTls', env: 'RAMPART_INSECURE_BACKENDS_WITHOUT_TLS', type: 'bool', default: false,
    doc: 'INSECURE: let DATABASE_URL, PII_DATABASE_URL or REDIS_URL reach a host off loopback without TLS, or with TLS that does not verify the certificate (sslmode=no-verify). Off: start-up refuses such a URL (use sslmode=verify-full, rediss://, a Unix socket or loopback): sessions, audit events and password hashes would cross the network in clear.',
  }),
  def<boolean>({
    key: 'insecureDisableRateLimits', env: 'RAMPART_INSECURE_DISABLE_RATE_LIMITS', type: 'bool', default: false,
    doc: 'INSECURE: no request rate limits at all (benchmarks only). Per-account login back-off and the reset-mail budget stay on.',
  }),
  def<number>({
    key: 'loginBackoffAfterFailures', env: 'LOGIN_BACKOFF_AFTER_FAILURES', type: 'int', default: 5, min: 1, max: 1_000_000,
    doc: 'Consecutive failed logins of one account from one address before that pair must wait: 1 s, then doubling per further failure up to LOGIN_BACKOFF_MAX_SECONDS. A success from that address resets it. Five tolerates typos.',
  }),
  def<number>({
    key: 'loginAccountBackoffAfterFailures', env: 'LOGIN_ACCOUNT_BACKOFF_AFTER_FAILURES', type: 'int', default: 20, min: 1, max: 1_000_000,
    doc: 'Failed logins of one account from all addresses (within 24 h of each other) before the account waits, doubling, for addresses it has never logged in from; an alert goes out when it is crossed. Addresses the owner logged in from keep working, so guessing cannot lock the owner out.',
  }),
  def<number>({
    key: 'loginBackoffMaxSeconds', env: 'LOGIN_BACKOFF_MAX_SECONDS', type: 'int', default: 900, min: 1, max: 86_400,
    doc: 'Longest login back-off (15 min): long enough to make guessing hopeless (at most ~100 guesses a day per address), short enough that no one is locked out for good.',
  }),
  def<number>({
    key: 'auditRetentionDays', env: 'AUDIT_RETENTION_DAYS', type: 'int', default: null, min: 30, max: 36_500,
    doc: 'Delete audit events older than this many days (checked daily; the chain is re-anchored and stays verifiable). Unset: keep every event.',
  }),
  def<number>({
    key: 'jobPollIntervalMs', env: 'JOB_POLL_INTERVAL_MS', type: 'int', default: 1000, min: 10, max: 3_600_000,
    doc: 'How often each instance looks for due background jobs (alert evaluation and mail, webhook deliveries). One second keeps alerts prompt at one cheap indexed query a second.',
  }),
  def<number>({
    key: 'maxPendingInvitationsPerOrg', env: 'MAX_PENDING_INVITATIONS_PER_ORG', type: 'int', default: 500, min: 1, max: 100_000,
    doc: 'Invitations an organization may have pending (mailed, not yet accepted or expired) before POST /v1/orgs/{orgId}/invitations answers 409 invitation_limit_reached (ASVS V2.1.3 business limits): each is a mail to an address the inviter chose. Expired invitations are deleted by the hourly sweep.',
  }),
  def<number>({
    key: 'maxOrgsPerUser', env: 'MAX_ORGS_PER_USER', type: 'int', default: 20, min: 1, max: 10_000,
    doc: 'Organizations one user may own before POST /v1/orgs answers 409 org_limit_reached (ASVS V2.4.1 anti-automation): any signed-up account can create orgs, so without a cap one script fills the store. Twenty covers a consultant or a team with many tenants; raise it for such deployments.',
  }),
  def<boolean>({
    key: 'insecureWebhooksToPrivateNetworks', env: 'RAMPART_INSECURE_WEBHOOKS_TO_PRIVATE_NETWORKS', type: 'bool', default: false,
    doc: 'INSECURE: let webhooks reach private, loopback and link-local addresses, over plain http too (a receiver on this host or network). Off: such URLs are refused at registration and at every delivery (SSRF).',
  }),
  def<number>({
    key: 'metricsPort', env: 'METRICS_PORT', type: 'int', default: 9464, min: 0, max: 65535,
    doc: 'Port of the separate Prometheus listener (GET /metrics), never the public one; 0 picks a free port. If the port is taken the server still starts and logs a warning.',
  }),
  def<string>({
    key: 'metricsHost', env: 'METRICS_HOST', type: 'string', default: '127.0.0.1',
    doc: 'Address of the metrics listener. Loopback by default: metrics reveal traffic patterns; expose them to the scraper deliberately.',
    validate: (value) => {
      if (isIP(value) === 0 && value !== 'localhost') throw new ConfigError('METRICS_HOST must be an IP address or "localhost"');
    },
  }),
] as const;

export type OptionKey = (typeof OPTIONS)[number]['key'];

/** Whether a URL's host is a loopback name or address (IPv6 brackets removed). */
export function isLoopbackUrl(url: URL): boolean {
  return isLoopbackHost(url.hostname.replace(/^\[|\]$/g, ''));
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * The least argon2id memory (KiB) the OWASP Password Storage Cheat Sheet (and ASVS 5.0
 * Appendix C) allows with `iterations` passes, p = 1: m=47104/t=1, 19456/t=2, 12288/t=3,
 * 9216/t=4, 7168/t=5. More passes than five do not lower it further.
 */
export function argon2MinimumMemoryKiB(iterations: number): number {
  const table = [47104, 19456, 12288, 9216, 7168];
  return table[Math.min(Math.max(iterations, 1), table.length) - 1]!;
}

/**
 * Why a PostgreSQL or Redis URL does not protect its connection (null when it does):
 * loopback and Unix sockets need no TLS; otherwise PostgreSQL needs an sslmode that
 * node-postgres verifies (verify-full, or require/verify-ca/prefer, which it treats as
 * verify-full unless uselibpqcompat asks for libpq's weaker meaning) and Redis rediss://.
 */
export function backendTransportProblem(text: string): string | null {
  const url = new URL(text);
  const socketHost = url.searchParams.get('host');
  if (isLoopbackUrl(url) || (url.hostname === '' && (socketHost === null || socketHost.startsWith('/')))) return null;
  if (url.protocol === 'redis:') return 'plaintext (use rediss://)';
  if (url.protocol === 'rediss:') return null;
  const sslmode = url.searchParams.get('sslmode');
  const ssl = url.searchParams.get('ssl');
  if (sslmode === null || sslmode === 'disable' || sslmode === 'allow') {
    return ssl === 'true' || ssl === '1' ? null : 'plaintext (add sslmode=verify-full)';
  }
  if (sslmode === 'no-verify') return 'TLS without certificate verification (sslmode=no-verify)';
  if (url.searchParams.get('uselibpqcompat') === 'true' && sslmode !== 'verify-full') return `the server's certificate or name is not verified (libpq sslmode=${sslmode})`;
  return null;
}

/** A store or Redis URL that would cross the network unprotected stops start-up unless the loud option allows it. */
function assertProtectedBackend(name: string, value: string, resolved: Record<string, unknown>): void {
  const problem = backendTransportProblem(value);
  if (problem && resolved['insecureBackendsWithoutTls'] !== true) {
    throw new ConfigError(`${name} would reach its server unprotected (${problem}): refused (ASVS V12.3.1); set RAMPART_INSECURE_BACKENDS_WITHOUT_TLS=true to allow it`);
  }
}

function assertFileExists(name: string, path: string): void {
  if (!existsSync(path)) throw new ConfigError(`${name} ${path} does not exist`);
}
