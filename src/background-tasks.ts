import type { Logger } from 'pino';

/**
 * Work done off the request path (mail, the account-dependent half of a reset
 * request), so that a response's timing never depends on it. Failures are
 * logged, never thrown at a caller; `settled()` lets shutdown and tests wait.
 */
export class BackgroundTasks {
  readonly #pending = new Set<Promise<void>>();

  constructor(private readonly logger: Logger) {}

  run(label: string, work: () => Promise<void>): void {
    // setImmediate: the response is written before any of the work starts.
    const task: Promise<void> = new Promise<void>((resolve) => setImmediate(resolve))
      .then(work)
      .catch((error: unknown) => this.logger.error({ err: error, task: label }, 'background task failed'))
      .finally(() => this.#pending.delete(task));
    this.#pending.add(task);
  }

  /** Resolves when every task started so far (and any they started) has finished. */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  get size(): number {
    return this.#pending.size;
  }
}
