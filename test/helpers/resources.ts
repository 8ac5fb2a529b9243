/**
 * What a test opened (servers, stores, listeners, Redis clients, child
 * processes), closed newest first from ONE `finally` or `after`. Each thing is
 * registered the moment it exists, so when the second of two servers fails to
 * start, the first is still closed; and every closer runs even when an earlier
 * one throws. Without this, one failed start-up leaves a listener open and the
 * whole test file hangs instead of failing.
 *
 *   const open = new Resources();
 *   try {
 *     const a = open.add(await startTestServer(), (s) => s.close());
 *     const b = open.add(await startTestServer({ dataDir: a.dataDir }), (s) => s.close({ keepData: true }));
 *     …
 *   } finally {
 *     await open.close();
 *   }
 */
export class Resources {
  readonly #closers: Array<() => unknown> = [];

  /** Registers how to close `resource`, which was just opened, and returns it. */
  add<T>(resource: T, close: (resource: T) => unknown): T {
    this.#closers.push(() => close(resource));
    return resource;
  }

  /** Registers a clean-up step that is not one value (a temporary directory, a server that is replaced). */
  defer(close: () => unknown): void {
    this.#closers.push(close);
  }

  /** Closes everything, newest first; runs every closer, then throws the first failure. Safe to call twice. */
  async close(): Promise<void> {
    const errors: unknown[] = [];
    for (let close = this.#closers.pop(); close; close = this.#closers.pop()) {
      try {
        await close();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `${errors.length} resources failed to close`);
  }
}
