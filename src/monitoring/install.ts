import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { PostgresAdapter } from 'kysely';
import { Alerts } from '../alerts/alerts.js';
import { KnownValues } from '../alerts/known-values.js';
import { LoginBackoff } from '../auth/login-backoff.js';
import { JobQueue } from '../jobs/job-queue.js';
import { Metrics } from '../metrics/metrics.js';
import { RateLimits } from '../ratelimit/rate-limits.js';
import { ChangeFanout } from '../store/change-fanout.js';
import type { ChangeFeed } from '../store/change-feed.js';
import type { Config } from '../config/load.js';
import type { Services } from '../services.js';
import { JobRepository } from '../store/repositories/jobs.js';
import { KnownValueRepository } from '../store/repositories/known-values.js';
import { LoginThrottleRepository } from '../store/repositories/login-throttle.js';
import { WebhookRepository } from '../store/repositories/webhooks.js';
import { WebhookService } from '../webhooks/webhook-service.js';

/** How long start-up waits for Redis before serving anyway (credential routes then fail closed). */
const REDIS_READY_TIMEOUT_MS = 5000;

/**
 * Wires the security-operations features (issue 7) into the services: metrics,
 * rate limits (in memory, or Redis when REDIS_URL is set), the per-account login
 * back-off, the job queue, alerts and webhooks. Called once by createServices.
 */
export async function installSecurityOperations(services: Services): Promise<Partial<Services>> {
  const { config, logger, keyring, stores, clock, events, pii, audit } = services;
  const metrics = new Metrics();
  events.addSink(metrics.sink());
  audit.onAppend((appended) => metrics.auditAppends.inc(appended.length));

  const redis = config.redisUrl ? await connectRedis(config.redisUrl, redisTls(config), logger) : null;
  // Instances sharing a PostgreSQL store learn of each other's writes through Redis; without it
  // their read caches keep nothing (SQLite stores need no fan-out: one host, data_version).
  const shared: Record<string, ChangeFeed> = {};
  if (stores.main.dialect === 'postgres') shared['main'] = stores.main.changes;
  if (stores.pii.dialect === 'postgres') shared['pii'] = stores.pii.changes;
  let changeFanout: ChangeFanout | null = null;
  if (redis && Object.keys(shared).length > 0) {
    changeFanout = new ChangeFanout({ feeds: shared, publisher: redis, channel: `${config.redisKeyPrefix}changes`, logger });
    // Waits only when Redis answered above: connectRedis already spent its time on one that does not.
    if (!(await changeFanout.ready(redis.status === 'ready' ? REDIS_READY_TIMEOUT_MS : 0))) logger.warn('change fan-out not subscribed at start-up; read caches stay off until it is');
  }
  const rateLimits = new RateLimits({
    perMinute: {
      anon: config.rateLimitAnonPerMinute,
      auth: config.rateLimitAuthPerMinute,
      account: config.rateLimitAccountPerMinute,
      // Failed credential presentations from one address: as many as anonymous requests.
      badauth: config.rateLimitAnonPerMinute,
    },
    signupTakenPerHour: config.signupEmailTakenPerHour,
    redis,
    keyPrefix: config.redisKeyPrefix,
    keyring,
    resetMailsPerHour: config.passwordResetMailsPerHour,
  });
  const loginBackoff = new LoginBackoff(new LoginThrottleRepository(stores.main.db), pii, keyring, events, metrics, clock, {
    pairThreshold: config.loginBackoffAfterFailures,
    accountThreshold: config.loginAccountBackoffAfterFailures,
    maxDelaySeconds: config.loginBackoffMaxSeconds,
  });
  services.login.setAttemptGuard(loginBackoff);
  services.passwordReset.setMailBudget(rateLimits);
  services.emailVerification.setMailBudget(rateLimits);

  // After-commit work: a durable queue in the main store, run by every instance (src/monitoring/background.ts).
  const postgres = stores.main.db.getExecutor().adapter instanceof PostgresAdapter;
  const jobRepository = new JobRepository(stores.main.db, postgres);
  const jobs = new JobQueue(jobRepository, clock, logger, config.jobPollIntervalMs);
  const alerts = new Alerts(audit, events, new KnownValues(new KnownValueRepository(stores.pii.db), pii, clock), jobs, services.mailer, pii, {
    productName: config.productName,
    publicUrl: () => services.publicUrl,
    orgs: () => services.orgs,
  });
  const webhooks = new WebhookService(stores.main.db, new WebhookRepository(stores.main.db, postgres), jobRepository, keyring, events, jobs, audit, metrics, clock, logger, {
    allowPrivate: config.insecureWebhooksToPrivateNetworks,
    allowedHosts: config.webhookAllowedHosts,
  });
  // Both run inside every audit append, so their jobs commit (or roll back) with the event.
  audit.onAppend(alerts.listener());
  audit.onAppend(webhooks.listener());

  await Promise.all([rateLimits.init(), loginBackoff.init(), webhooks.init()]);
  return { metrics, redis, changeFanout, rateLimits, loginBackoff, jobs, alerts, webhooks };
}

/**
 * ioredis with no offline queue: while Redis is down a command fails at once
 * (and the rate limiter fails open or closed) instead of piling up in memory.
 */
/**
 * TLS options beyond rediss://'s defaults (which verify the server's certificate against the
 * system CAs): REDIS_CA_FILE names the CA of an internal Redis, REDIS_CERT_FILE and
 * REDIS_KEY_FILE the client certificate a Redis with tls-auth-clients asks for.
 */
function redisTls(config: Pick<Config, 'redisCaFile' | 'redisCertFile' | 'redisKeyFile'>): ConnectionOptions | null {
  if (!config.redisCaFile && !config.redisCertFile) return null;
  return {
    ...(config.redisCaFile ? { ca: readFileSync(config.redisCaFile, 'utf8') } : {}),
    ...(config.redisCertFile && config.redisKeyFile ? { cert: readFileSync(config.redisCertFile, 'utf8'), key: readFileSync(config.redisKeyFile, 'utf8') } : {}),
  };
}

async function connectRedis(url: string, tls: ConnectionOptions | null, logger: Logger): Promise<Redis> {
  const redis = new Redis(url, {
    ...(tls ? { tls } : {}),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    retryStrategy: (attempt) => Math.min(attempt * 250, 2000),
  });
  let lastWarning = 0;
  redis.on('error', (error: Error) => {
    // ioredis emits one error per reconnect attempt; one line every 30 s is enough.
    if (Date.now() - lastWarning > 30_000) {
      lastWarning = Date.now();
      logger.warn({ err: { message: error.message } }, 'redis unavailable');
    }
  });
  const ready = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), REDIS_READY_TIMEOUT_MS);
    redis.once('ready', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  if (!ready) logger.warn('redis not ready at start-up; rate limits fail closed on credential routes and open elsewhere until it is');
  return redis;
}
