import { startMetricsListener } from '../metrics/listener.js';
import type { Services } from '../services.js';
import { sweepOrphanProfiles } from '../users/orphan-profiles.js';

export interface Background {
  /** The metrics listener's port (null when it could not bind). */
  metricsPort: number | null;
  stop(): Promise<void>;
}

const SWEEP_INTERVAL_MS = 10 * 60_000;
const RETENTION_INTERVAL_MS = 24 * 3_600_000;
/** A whole pass over the PII store's profiles: hourly, so a deleted account's data is gone within about an hour of a crash. */
const ORPHAN_SWEEP_INTERVAL_MS = 3_600_000;
/** Jobs that gave up stay this long for inspection. */
const FAILED_JOB_RETENTION_MS = 30 * 86_400_000;

/** What expires and is deleted by the sweep: rows refused anyway, kept from piling up (or lingering, for secrets). */
const EXPIRY_SWEEPS: ReadonlyArray<readonly [string, (services: Services) => Promise<number>]> = [
  ['sessions', (services) => services.sessions.sweepExpired()],
  ['passwordTokens', (services) => services.passwordTokens.sweepExpired()],
  // Login steps may hold a new password's argon2id hash (expired-password change): it goes with them.
  ['mfaLoginState', (services) => services.mfa.sweepExpired()],
  ['invitations', (services) => services.orgs.sweepExpiredInvitations()],
];

/**
 * Deletes expired sessions, reset and change tokens, MFA login steps and
 * WebAuthn challenges, by the services' clock. One failing sweep is logged and
 * does not stop the others. Returns how many rows each deleted.
 */
export async function sweepExpired(services: Services): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  // One after the other: on SQLite every write waits for the one connection anyway.
  for (const [name, sweep] of EXPIRY_SWEEPS) {
    try {
      counts[name] = await sweep(services);
    } catch (error) {
      services.logger.warn({ err: error }, `${name} sweep failed`);
    }
  }
  return counts;
}

/**
 * The server's background work for issue 7: the job queue (alerts, webhook
 * deliveries), the metrics listener, the expiry sweep, forgetting finished
 * login back-off streaks and failed jobs, profiles left without an account, and audit retention
 * when AUDIT_RETENTION_DAYS is set. Every
 * instance runs it; each step is safe to run concurrently (jobs are leased,
 * pruning serializes on the audit head).
 */
export async function startBackground(services: Services): Promise<Background> {
  const { logger, config, clock } = services;
  const timers: NodeJS.Timeout[] = [];
  const every = (intervalMs: number, name: string, work: () => Promise<unknown>) => {
    const timer = setInterval(() => {
      work().catch((error: unknown) => logger.warn({ err: error }, `${name} failed`));
    }, intervalMs);
    timer.unref();
    timers.push(timer);
  };
  every(SWEEP_INTERVAL_MS, 'expiry sweep', () => sweepExpired(services));
  every(SWEEP_INTERVAL_MS, 'login back-off sweep', () => services.loginBackoff.sweep());
  every(SWEEP_INTERVAL_MS, 'failed job sweep', () => services.jobs.sweepFailed(clock.now() - FAILED_JOB_RETENTION_MS));
  every(ORPHAN_SWEEP_INTERVAL_MS, 'orphan profile sweep', async () => {
    const deleted = await sweepOrphanProfiles(services.pii, services.users, clock.now());
    if (deleted > 0) logger.info({ deleted }, 'deleted profiles left without an account (an interrupted signup, import or account deletion)');
  });
  if (config.auditRetentionDays !== null) {
    const days = config.auditRetentionDays;
    every(RETENTION_INTERVAL_MS, 'audit retention', async () => {
      const result = await services.audit.prune(clock.now() - days * 86_400_000, { type: 'system', id: 'retention' });
      if (result.deleted > 0) logger.info({ deleted: result.deleted, firstSeq: result.firstSeq }, 'audit retention pruned events');
    });
  }
  const metrics = await startMetricsListener(services.metrics, config.metricsHost, config.metricsPort, logger);
  services.jobs.start();
  return {
    metricsPort: metrics.port,
    async stop() {
      for (const timer of timers) clearInterval(timer);
      await services.jobs.stop();
      await metrics.close();
    },
  };
}
