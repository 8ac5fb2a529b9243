import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { ChangeFeed, StoreChange, TableChange } from './change-feed.js';

const KINDS: ReadonlySet<string> = new Set(['insert', 'update', 'delete']);
/** Longest message accepted from the channel (a transaction's worth of table changes). */
const MAX_MESSAGE_BYTES = 64 * 1024;

export interface ChangeFanoutOptions {
  /** The feeds of the stores other instances share (PostgreSQL), by a name all instances agree on. */
  feeds: Readonly<Record<string, ChangeFeed>>;
  /**
   * Publishes (the shared connection, no offline queue: a command fails at once while
   * Redis is down); the subscribing connection is its duplicate (a subscribed connection
   * can do nothing else).
   */
  publisher: Redis;
  channel: string;
  logger: Logger;
}

/**
 * Revocation fan-out (DESIGN: "Redis: … revocation fan-out"). Instances that
 * share a PostgreSQL store cannot see each other's writes, so their read caches
 * keep nothing — unless this fan-out runs: each instance publishes the changes
 * its caches care about (table, kind, columns; never a row or a key) once they
 * are committed, and announces the other instances' changes on its own feeds.
 * The feeds are trusted only while the subscription is up; losing it or gaining
 * it empties every cache.
 *
 * What remains: a change reaches the other instances a Redis round trip after
 * its commit (a request there within that window may still see the old row),
 * and a message lost between a successful PUBLISH and a connected subscriber,
 * which Redis does not do, would leave a stale entry for at most the caches'
 * maximum age (a minute).
 */
export class ChangeFanout {
  readonly #instance = randomBytes(12).toString('base64url');
  readonly #subscriber: Redis;
  readonly #unsubscribes: Array<() => void> = [];
  readonly #inFlight = new Set<Promise<unknown>>();
  #closed = false;
  #lastWarning = 0;

  constructor(private readonly options: ChangeFanoutOptions) {
    // Resubscribing is ours to do, so that trust returns only once the subscription is confirmed.
    this.#subscriber = options.publisher.duplicate({ autoResubscribe: false });
    this.#subscriber.on('ready', () => void this.#subscribe());
    for (const event of ['close', 'end', 'reconnecting'] as const) this.#subscriber.on(event, () => this.#distrust());
    this.#subscriber.on('error', (error: Error) => this.#warn('change fan-out: redis unavailable; read caches off until it is back', error));
    this.#subscriber.on('message', (channel: string, message: string) => {
      if (channel === options.channel) this.#receive(message);
    });
    for (const [store, feed] of Object.entries(options.feeds)) {
      this.#unsubscribes.push(feed.subscribe((change, origin) => {
        if (origin === 'local') this.#publish(store, feed, change);
      }));
    }
  }

  /** Resolves once the subscription is up (or after `timeoutMs`, leaving the caches off until it is). */
  async ready(timeoutMs: number): Promise<boolean> {
    const feeds = Object.values(this.options.feeds);
    const deadline = Date.now() + timeoutMs;
    while (!feeds.every((feed) => feed.trusted) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    return feeds.every((feed) => feed.trusted);
  }

  /** Stops listening, after the changes already committed have been published (a CLI command exits right after). */
  async close(): Promise<void> {
    this.#closed = true;
    for (const unsubscribe of this.#unsubscribes) unsubscribe();
    await Promise.allSettled([...this.#inFlight]);
    this.#distrust();
    this.#subscriber.disconnect();
  }

  async #subscribe(): Promise<void> {
    try {
      await this.#subscriber.subscribe(this.options.channel);
    } catch (error) {
      this.#warn('change fan-out: subscribing failed; read caches off', error);
      return;
    }
    if (this.#closed || this.#subscriber.status !== 'ready') return;
    for (const feed of Object.values(this.options.feeds)) feed.setTrusted(true);
  }

  #distrust(): void {
    for (const feed of Object.values(this.options.feeds)) feed.setTrusted(false);
  }

  #publish(store: string, feed: ChangeFeed, change: StoreChange): void {
    const relevant = feed.relevant(change);
    if (relevant === null) return;
    const message = JSON.stringify({ from: this.#instance, store, change: relevant });
    // Runs inside the writer's COMMIT path: nothing may throw from here (the write is already durable).
    const sent = Promise.resolve()
      .then(() => this.options.publisher.publish(this.options.channel, message))
      .catch((error: unknown) => {
        // The other instances may miss this change: their entries still end within the caches' maximum age.
        this.#warn('change fan-out: publishing failed; other instances may keep a changed row for up to a minute', error);
      });
    this.#inFlight.add(sent);
    void sent.finally(() => this.#inFlight.delete(sent));
  }

  #receive(message: string): void {
    if (message.length > MAX_MESSAGE_BYTES) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(message);
    } catch {
      return;
    }
    const { from, store, change } = (parsed ?? {}) as { from?: unknown; store?: unknown; change?: unknown };
    if (from === this.#instance || typeof store !== 'string' || !Object.hasOwn(this.options.feeds, store)) return;
    const feed = this.options.feeds[store]!;
    // Anything this instance cannot read as a list of table changes empties its caches.
    feed.announce(isTableChanges(change) ? change : 'anything', 'remote');
  }

  #warn(message: string, error: unknown): void {
    if (Date.now() - this.#lastWarning < 30_000) return;
    this.#lastWarning = Date.now();
    this.options.logger.warn({ err: { message: error instanceof Error ? error.message : String(error) } }, message);
  }
}

function isTableChanges(value: unknown): value is TableChange[] {
  return Array.isArray(value) && value.every((item: unknown) => {
    const change = item as Partial<TableChange> | null;
    return typeof change === 'object' && change !== null && typeof change.table === 'string' && typeof change.kind === 'string' && KINDS.has(change.kind)
      && (change.columns === null || (Array.isArray(change.columns) && change.columns.every((column) => typeof column === 'string')));
  });
}
