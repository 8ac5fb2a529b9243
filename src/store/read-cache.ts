import type { ChangeFeed, StoreChange, TableChange } from './change-feed.js';

/**
 * Whether a change can alter rows of `table` that a cache keeps: a new row
 * cannot (a missing row is never kept), nor an UPDATE of `bookkeeping` columns
 * only (written by the cache's owner, which drops its own entry: a session's
 * idle-time touch, a token's last use).
 */
export function altersRows(change: TableChange, table: string, bookkeeping: readonly string[] = []): boolean {
  if (change.table !== table || change.kind === 'insert') return false;
  return change.kind !== 'update' || change.columns === null || change.columns.length === 0 || !change.columns.every((column) => bookkeeping.includes(column));
}

export interface ReadCacheOptions {
  /** The store whose committed writes invalidate this cache. */
  feed: ChangeFeed;
  /** Whether a change to a table can alter what this cache holds; any such change empties it. */
  dependsOn: (change: TableChange) => boolean;
  /** At most this many entries (the cache empties when full: simpler than LRU, and refills in one read each). Default 20,000. */
  maxEntries?: number;
  /** An entry is reread after this long even if no change was announced (a bound on any missed announcement). Default a minute. */
  maxAgeMs?: number;
  /** Milliseconds now (the services' clock, so tests can move time). */
  now: () => number;
}

/**
 * Rows of a store kept in memory between requests, exact as long as the store's
 * `ChangeFeed` announces every committed write: any change to a table the cache
 * depends on empties it, before the writer's request answers. A read that was
 * in flight when a change arrived is not kept (it may have seen the old row).
 * When the feed cannot be trusted to see every write (a PostgreSQL store shared
 * by other instances, without a connected fan-out through Redis) the cache keeps
 * nothing and every `get` reads the store.
 *
 * Values are shared between requests: callers must not mutate them.
 */
export class ReadCache<K, V> {
  readonly #entries = new Map<K, { value: V; at: number }>();
  readonly #options: Required<ReadCacheOptions>;
  /** Bumped by every relevant change: a load started before a change must not store its result. */
  #generation = 0;

  constructor(options: ReadCacheOptions) {
    this.#options = { maxEntries: 20_000, maxAgeMs: 60_000, ...options };
    options.feed.subscribe((change) => this.#onChange(change), options.dependsOn);
  }

  /** The kept value, or undefined (after asking the store whether another process wrote to it). */
  peek(key: K): V | undefined {
    if (!this.#options.feed.trusted) return undefined;
    this.#options.feed.poll();
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (this.#options.now() - entry.at >= this.#options.maxAgeMs) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /** Reads through `load` and keeps the result, unless a relevant change arrived meanwhile. Undefined and null are not kept. */
  async load(key: K, load: (key: K) => Promise<V>): Promise<V> {
    const generation = this.#generation;
    const value = await load(key);
    if (value !== undefined && value !== null && generation === this.#generation && this.#options.feed.trusted) {
      if (this.#entries.size >= this.#options.maxEntries) this.#entries.clear();
      this.#entries.set(key, { value, at: this.#options.now() });
    }
    return value;
  }

  /**
   * `peek`, else `load`. `load` is given the key, so callers can pass one function made
   * once instead of a closure per call (closures are named at run time under tsx).
   */
  async get(key: K, load: (key: K) => Promise<V>): Promise<V> {
    const kept = this.peek(key);
    return kept === undefined ? this.load(key, load) : kept;
  }

  /** Forgets one entry (after this process changed what it came from in a way the feed ignores). */
  delete(key: K): void {
    this.#entries.delete(key);
  }

  get size(): number {
    return this.#entries.size;
  }

  #onChange(change: StoreChange): void {
    if (change !== 'anything' && !change.some(this.#options.dependsOn)) return;
    this.#generation++;
    this.#entries.clear();
  }
}
