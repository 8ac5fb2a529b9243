import type { Services } from '../services.js';

export interface Background {
  stop(): Promise<void>;
}

const SWEEP_INTERVAL_MS = 10 * 60_000;
const RETENTION_INTERVAL_MS = 24 * 3_600_000;

/**
 * The server's periodic work for issue 7: forgetting finished login back-off
 * streaks, and audit retention when AUDIT_RETENTION_DAYS is set. Every instance
 * runs it; each step is safe to run concurrently (pruning serializes on the
 * audit head).
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
  every(SWEEP_INTERVAL_MS, 'login back-off sweep', () => services.loginBackoff.sweep());
  if (config.auditRetentionDays !== null) {
    const days = config.auditRetentionDays;
    every(RETENTION_INTERVAL_MS, 'audit retention', async () => {
      const result = await services.audit.prune(clock.now() - days * 86_400_000, { type: 'system', id: 'retention' });
      if (result.deleted > 0) logger.info({ deleted: result.deleted, firstSeq: result.firstSeq }, 'audit retention pruned events');
    });
  }
  return {
    async stop() {
      for (const timer of timers) clearInterval(timer);
    },
  };
}
