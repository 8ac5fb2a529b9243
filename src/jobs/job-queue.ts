import type { Transaction } from 'kysely';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { randomId } from '../crypto/random.js';
import { type JobRepository, type JobRow } from '../store/repositories/jobs.js';
import type { MainDB } from '../store/schema.js';

export interface RetryPolicy {
  /** Wait after the first failure; doubles with each further one. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Attempts in all, the first included; then the job gives up. */
  maxAttempts: number;
}

/** Throw from a handler to give up at once (a permanent failure: no retry helps). */
export class PermanentJobError extends Error {
  override name = 'PermanentJobError';
}

export type JobHandler = (payload: Record<string, unknown>, job: JobRow) => Promise<void>;

interface Registration {
  handler: JobHandler;
  retry: RetryPolicy;
  ordered: boolean;
}

export interface EnqueueOptions {
  /** Write the job in this transaction: it exists exactly when the transaction commits. */
  trx?: Transaction<MainDB>;
  ref?: string | null;
  runAt?: number;
}

/** A lease long enough for any handler (deliveries time out after 10 s); a crashed worker's jobs return after it. */
const LEASE_MS = 5 * 60_000;
const BATCH = 20;

/**
 * A durable queue in the main store, processed by every server instance: jobs
 * are written in the transaction of the change that causes them, claimed with
 * a lease (SKIP LOCKED on PostgreSQL), and retried with exponential back-off
 * on the injected clock. A restart loses nothing: a job is deleted only after
 * its handler succeeded (a batch's finished jobs in one statement).
 */
export class JobQueue {
  readonly #handlers = new Map<string, Registration>();
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #stopped = true;

  constructor(
    private readonly repo: JobRepository,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly pollIntervalMs: number,
  ) {}

  /**
   * `ordered` jobs of a batch run one after the other in claim order (alert
   * evaluation must see logins in the order they happened); the others run side
   * by side, so a slow webhook endpoint never holds up the rest.
   */
  register(kind: string, options: { retry: RetryPolicy; ordered?: boolean }, handler: JobHandler): void {
    this.#handlers.set(kind, { handler, retry: options.retry, ordered: options.ordered ?? false });
  }

  async enqueue(kind: string, payload: Record<string, unknown>, options: EnqueueOptions = {}): Promise<void> {
    await this.enqueueMany([{ kind, payload, ref: options.ref ?? null }], options);
  }

  async enqueueMany(jobs: Array<{ kind: string; payload: Record<string, unknown>; ref?: string | null }>, options: EnqueueOptions = {}): Promise<void> {
    if (jobs.length === 0) return;
    const now = this.clock.now();
    await this.repo.insert(jobs.map((job) => {
      if (!this.#handlers.has(job.kind)) throw new TypeError(`no job handler for ${job.kind}`);
      return {
        id: randomId('job'), kind: job.kind, payload: JSON.stringify(job.payload), ref: job.ref ?? null,
        run_at: options.runAt ?? now, attempts: 0, locked_until: 0, last_error: null, failed_at: null, created_at: now,
      };
    }), options.trx);
  }

  start(): void {
    this.#stopped = false;
    this.#schedule(this.pollIntervalMs);
  }

  /** Stops polling and waits for the jobs in hand. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running;
  }

  /** Forgets jobs that gave up before `before`. */
  async sweepFailed(before: number): Promise<number> {
    return this.repo.sweepFailed(before);
  }

  /** Runs every due job now (and what they enqueue), until none is due; for tests and the CLI. */
  async drain(maxRounds = 50): Promise<number> {
    let total = 0;
    for (let round = 0; round < maxRounds; round++) {
      const ran = await this.#runOnce();
      total += ran;
      if (ran === 0) break;
    }
    return total;
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#running = this.#runOnce()
        .catch((error: unknown) => {
          this.logger.warn({ err: error }, 'job queue poll failed');
          return 0;
        })
        .then((ran) => this.#schedule(ran >= BATCH ? 0 : this.pollIntervalMs));
    }, delayMs);
    this.#timer.unref();
  }

  async #runOnce(): Promise<number> {
    const now = this.clock.now();
    const jobs = await this.repo.claim(now, now + LEASE_MS, BATCH);
    if (jobs.length === 0) return 0;
    const ordered = jobs.filter((job) => this.#handlers.get(job.kind)?.ordered);
    const parallel = jobs.filter((job) => !this.#handlers.get(job.kind)?.ordered);
    const done: string[] = [];
    await Promise.all([
      (async () => {
        for (const job of ordered) if (await this.#run(job)) done.push(job.id);
      })(),
      ...parallel.map(async (job) => {
        if (await this.#run(job)) done.push(job.id);
      }),
    ]);
    // One DELETE for the batch's finished jobs instead of one per job (each was its own
    // commit). Until it runs they stay leased, so no instance takes them again; a crash
    // before it runs them once more after the lease, as a crash right after a handler did.
    if (done.length > 0) await this.repo.complete(done);
    return jobs.length;
  }

  /** Runs one claimed job: true when its handler succeeded (the caller deletes it), false when it was rescheduled or gave up. */
  async #run(job: JobRow): Promise<boolean> {
    const registration = this.#handlers.get(job.kind);
    if (!registration) {
      await this.repo.giveUp(job.id, this.clock.now(), `no handler for ${job.kind}`);
      return false;
    }
    try {
      await registration.handler(JSON.parse(job.payload) as Record<string, unknown>, job);
      return true;
    } catch (error) {
      const message = (error instanceof Error ? error.message : String(error)).slice(0, 500);
      const now = this.clock.now();
      if (error instanceof PermanentJobError || job.attempts >= registration.retry.maxAttempts) {
        this.logger.warn({ job: { id: job.id, kind: job.kind, attempts: job.attempts }, reason: message }, 'job gave up');
        await this.repo.giveUp(job.id, now, message);
        return false;
      }
      const delay = Math.min(registration.retry.maxDelayMs, registration.retry.baseDelayMs * 2 ** (job.attempts - 1));
      this.logger.info({ job: { id: job.id, kind: job.kind, attempts: job.attempts }, retryInMs: delay, reason: message }, 'job failed; will retry');
      await this.repo.reschedule(job.id, now + delay, message);
      return false;
    }
  }
}
