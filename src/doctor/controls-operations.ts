import type { Config } from '../config/load.js';
import { backendTransportProblem, isLoopbackHost, isLoopbackUrl } from '../config/schema.js';
import { redactURL } from '../store/db.js';
import type { ControlCheck } from './controls.js';

/** Rate limits, login back-off and the audit log (issue 7). */
export function checkOperationsControls(config: Config): ControlCheck[] {
  const checks: ControlCheck[] = [];
  const add = (control: string, status: ControlCheck['status'], detail: string) => checks.push({ control, status, detail });

  const tiers = `${config.rateLimitAnonPerMinute}/min per address without credentials, ${config.rateLimitAuthPerMinute}/min per session or token, ${config.rateLimitAccountPerMinute}/min per account on credential routes, ${config.passwordResetMailsPerHour} reset mails per account per hour`;
  if (config.insecureDisableRateLimits) {
    add('Rate limits', 'warn', 'INSECURE option RAMPART_INSECURE_DISABLE_RATE_LIMITS: no request rate limits (login back-off and the reset-mail budget stay on)');
  } else if (config.redisUrl) {
    add('Rate limits', 'ok', `${tiers}; counters in Redis ${redactURL(config.redisUrl)}, shared by every instance; credential routes fail closed, others fail open while Redis is down`);
  } else if (config.databaseUrl) {
    add('Rate limits', 'warn', `${tiers}; counters in memory per process: with several instances each counts alone (set REDIS_URL)`);
  } else {
    add('Rate limits', 'ok', `${tiers}; counters in memory (one instance)`);
  }
  if (config.rateLimitAnonPerMinute > config.rateLimitAuthPerMinute) {
    add('Rate limit tiers', 'warn', 'RATE_LIMIT_ANON_PER_MINUTE is above RATE_LIMIT_AUTH_PER_MINUTE: anonymous traffic should get the lower limit');
  }
  add('Login back-off', 'ok', `per account and address after ${config.loginBackoffAfterFailures} failures, per account (unknown addresses) after ${config.loginAccountBackoffAfterFailures}; waits double from 1 s to ${config.loginBackoffMaxSeconds} s; known addresses exempt from the account-wide wait`);
  add('Audit log', 'ok', `hash-chained (SHA-256), append-only triggers, verify with \`rampart audit verify\`; addresses and user agents AES-256-GCM under per-event keys (rotate with \`rampart keys rotate-audit\`); retention ${config.auditRetentionDays === null ? 'unlimited' : `${config.auditRetentionDays} days (re-anchored)`}`);
  if (config.insecureWebhooksToPrivateNetworks) {
    add('Webhooks', 'warn', 'INSECURE option RAMPART_INSECURE_WEBHOOKS_TO_PRIVATE_NETWORKS: webhooks may reach private, loopback and link-local addresses over plain http (SSRF)');
  } else {
    const destinations = config.webhookAllowedHosts.length > 0 ? `only to ${config.webhookAllowedHosts.join(', ')} (WEBHOOK_ALLOWED_HOSTS)` : 'to any public host (narrow with WEBHOOK_ALLOWED_HOSTS)';
    add('Webhooks', 'ok', `https only, ${destinations}; private, loopback, link-local and reserved destinations refused at registration and at every delivery (pinned to the checked address); payloads signed HMAC-SHA256`);
  }
  const backends: Array<[string, string]> = [];
  for (const [name, url] of [['DATABASE_URL', config.databaseUrl], ['PII_DATABASE_URL', config.piiDatabaseUrl], ['REDIS_URL', config.redisUrl]] as const) {
    if (url !== null) backends.push([name, url]);
  }
  if (backends.length > 0) {
    const problems = backends.flatMap(([name, url]) => {
      const problem = backendTransportProblem(url);
      return problem ? [`${name} ${redactURL(url)}: ${problem}`] : [];
    });
    add('Backend connections', problems.length > 0 ? 'warn' : 'ok', problems.length > 0
      ? `INSECURE option RAMPART_INSECURE_BACKENDS_WITHOUT_TLS: ${problems.join('; ')} (ASVS V12.3.1: sessions, audit events and password hashes cross the network in clear or to an unverified peer)`
      : `${backends.map(([name]) => name).join(', ')}: TLS with certificate verification, or loopback`);
  }
  if (config.redisUrl) {
    if (config.redisCertFile) {
      // (Start-up refuses a key file other users can access.)
      add('Redis authentication', 'ok', `client certificate ${config.redisCertFile}`);
    } else if (new URL(config.redisUrl).password !== '') {
      add('Redis authentication', 'ok', 'password in REDIS_URL (REDIS_URL_FILE keeps it out of the environment; REDIS_CERT_FILE/REDIS_KEY_FILE authenticate by certificate instead)');
    } else {
      const local = isLoopbackUrl(new URL(config.redisUrl));
      add('Redis authentication', local ? 'ok' : 'warn', `none${local ? ' (loopback)' : `: anyone who reaches ${redactURL(config.redisUrl)} can read and reset the rate-limit counters; set a password or REDIS_CERT_FILE/REDIS_KEY_FILE`}`);
    }
  }
  if (config.databaseUrl) {
    add('Database role', 'ok', config.migrateOnStart
      ? 'serve migrates at start, so its role owns the schema and could drop the audit log\'s triggers; for a runtime role without DDL rights set MIGRATE_ON_START=false (README "A runtime role without DDL rights")'
      : 'MIGRATE_ON_START=false: serve only checks the schema, so it can run as a role without DDL rights (README grants); run `rampart migrate` as the owner on upgrade');
  }
  const metricsOnLoopback = isLoopbackHost(config.metricsHost);
  add('Metrics', metricsOnLoopback ? 'ok' : 'warn', `Prometheus on http://${config.metricsHost}:${config.metricsPort}/metrics, a separate listener${metricsOnLoopback ? ' on loopback' : ': reachable from the network, restrict it to the scraper'}`);
  return checks;
}
