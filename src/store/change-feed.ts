import type { CompiledQuery, DatabaseConnection, Dialect, Driver, QueryCompiler, QueryResult, TransactionSettings } from 'kysely';

/** One committed write to a table, as the statement that made it describes it. */
export interface TableChange {
  table: string;
  kind: 'insert' | 'update' | 'delete';
  /** The columns an UPDATE sets; null when any column may have changed (an upsert). */
  columns: readonly string[] | null;
}

/** What changed: some tables, or anything at all (a statement we cannot read, another process). */
export type StoreChange = readonly TableChange[] | 'anything';

/** Where a change was made: by this process (through Kysely, or found by `poll`), or by another instance (fan-out). */
export type ChangeOrigin = 'local' | 'remote';

export type ChangeListener = (change: StoreChange, origin: ChangeOrigin) => void;

/** How often at most `ChangeFeed.poll` asks the store whether another process wrote to it. */
export const EXTERNAL_POLL_INTERVAL_MS = 1;

/**
 * Committed writes to one store, as this process sees them: every INSERT,
 * UPDATE and DELETE that Kysely runs is classified from its query tree (not its
 * SQL text) and announced once it is durable — at once outside a transaction,
 * at COMMIT inside one, never after a ROLLBACK. A statement whose tables cannot
 * be read from its tree announces 'anything'. Writes by other processes cannot
 * be seen this way: `poll` asks the store whether any happened (SQLite's
 * `data_version`) and announces 'anything' when they did.
 *
 * In-process read caches (`ReadCache`) listen here; nothing else should.
 */
export class ChangeFeed {
  readonly #listeners = new Set<ChangeListener>();
  /** What the listeners care about (`subscribe`'s `interest`), so the fan-out publishes only that. */
  readonly #interests = new Set<(change: TableChange) => boolean>();
  #externalProbe: (() => unknown) | null = null;
  #externalMark: unknown = undefined;
  /** When the store was last asked (performance.now()), so that it is asked at most once per EXTERNAL_POLL_INTERVAL_MS. */
  #polledAt = -Infinity;
  #trusted: boolean;

  /**
   * @param trusted whether this feed sees every write that matters: true for an
   *   embedded SQLite file (this process's own writes, plus `poll` for others);
   *   false for a server store that other instances write to unseen, until a
   *   fan-out (`ChangeFanout`) brings their changes and says so.
   */
  constructor(trusted: boolean) {
    this.#trusted = trusted;
  }

  /** Whether a cache may trust this feed to announce every change (else it must read the store every time). */
  get trusted(): boolean {
    return this.#trusted;
  }

  /**
   * Trust gained or lost (the fan-out connected or lost its connection). Either
   * way everything kept so far is forgotten: while untrusted, changes may have
   * gone unannounced.
   */
  setTrusted(trusted: boolean): void {
    if (trusted === this.#trusted) return;
    this.#trusted = trusted;
    this.announce('anything', 'remote');
  }

  /** `interest`: which table changes the listener cares about (the fan-out publishes only those). */
  subscribe(listener: ChangeListener, interest?: (change: TableChange) => boolean): () => void {
    this.#listeners.add(listener);
    if (interest) this.#interests.add(interest);
    return () => {
      this.#listeners.delete(listener);
      if (interest) this.#interests.delete(interest);
    };
  }

  /** The part of a change some listener cares about, or null when none does. */
  relevant(change: StoreChange): StoreChange | null {
    if (change === 'anything') return change;
    const kept = change.filter((tableChange) => {
      for (const interest of this.#interests) if (interest(tableChange)) return true;
      return false;
    });
    return kept.length > 0 ? kept : null;
  }

  announce(change: StoreChange, origin: ChangeOrigin = 'local'): void {
    for (const listener of this.#listeners) listener(change, origin);
  }

  /**
   * A cheap way to learn whether another process wrote to the store: `probe`
   * returns a value that changes when one did (SQLite's `PRAGMA data_version`).
   */
  watchExternalWrites(probe: () => unknown): void {
    this.#externalProbe = probe;
    this.#externalMark = probe();
  }

  /**
   * Announces 'anything' if another process wrote to the store since the last
   * poll. Asks the store at most once per `EXTERNAL_POLL_INTERVAL_MS`: the probe
   * costs about a microsecond, as much as the rest of a kept session check, and
   * every request polls; so a write by another process (a CLI command) is seen
   * within a millisecond of its commit rather than at once.
   */
  poll(): void {
    if (this.#externalProbe === null) return;
    const now = performance.now();
    if (now - this.#polledAt < EXTERNAL_POLL_INTERVAL_MS) return;
    this.#polledAt = now;
    const mark = this.#externalProbe();
    if (mark === this.#externalMark) return;
    this.#externalMark = mark;
    this.announce('anything');
  }
}

/** A Kysely dialect whose every committed write is announced on `feed`. */
export function trackChanges(dialect: Dialect, feed: ChangeFeed): Dialect {
  return {
    createAdapter: () => dialect.createAdapter(),
    createIntrospector: (db) => dialect.createIntrospector(db),
    createQueryCompiler: () => dialect.createQueryCompiler(),
    createDriver: () => new TrackingDriver(dialect.createDriver(), feed),
  };
}

/** The writes a statement makes, read from its query tree; null for a read, 'anything' when unreadable. */
export function changeOf(query: CompiledQuery): StoreChange | null {
  const node = query.query as unknown as QueryNode;
  // A common table expression may write (PostgreSQL's data-modifying WITH), whatever the outer statement.
  if (node.with) return 'anything';
  switch (node.kind) {
    case 'SelectQueryNode':
      return null;
    case 'InsertQueryNode': {
      const table = tableName(node.into);
      if (table === null) return 'anything';
      // An upsert may update any column of an existing row.
      return node.onConflict || node.onDuplicateKey ? [{ table, kind: 'update', columns: null }] : [{ table, kind: 'insert', columns: null }];
    }
    case 'UpdateQueryNode': {
      const table = tableName(node.table);
      if (table === null || node.from || node.joins) return 'anything';
      const columns = (node.updates ?? []).map((update) => identifier(update.column));
      return columns.every((column): column is string => column !== null) ? [{ table, kind: 'update', columns }] : [{ table, kind: 'update', columns: null }];
    }
    case 'DeleteQueryNode': {
      const froms = node.from?.froms ?? [];
      const table = froms.length === 1 && !node.using && !node.joins ? tableName(froms[0]) : null;
      return table === null ? 'anything' : [{ table, kind: 'delete', columns: null }];
    }
    case 'RawNode': {
      // Raw SQL is read as text only to tell reads and transaction control from writes.
      const text = query.sql.trimStart().slice(0, 16).toLowerCase();
      return /^(select|with|pragma|begin|commit|rollback|savepoint|release|set|show|explain)\b/.test(text) ? null : 'anything';
    }
    default:
      return 'anything';
  }
}

interface QueryNode {
  kind: string;
  with?: unknown;
  into?: unknown;
  table?: unknown;
  from?: { froms: readonly unknown[] };
  using?: unknown;
  joins?: unknown;
  onConflict?: unknown;
  onDuplicateKey?: unknown;
  updates?: ReadonlyArray<{ column: unknown }>;
}

function tableName(node: unknown): string | null {
  const candidate = node as { kind?: string; node?: unknown; table?: { identifier?: { name?: unknown } } } | undefined;
  if (candidate?.kind === 'AliasNode') return tableName(candidate.node);
  if (candidate?.kind !== 'TableNode') return null;
  const name = candidate.table?.identifier?.name;
  return typeof name === 'string' ? name : null;
}

function identifier(node: unknown): string | null {
  const column = node as { kind?: string; column?: { name?: unknown } } | undefined;
  return column?.kind === 'ColumnNode' && typeof column.column?.name === 'string' ? column.column.name : null;
}

/** A connection that remembers the writes of its open transaction until it ends. */
class TrackedConnection implements DatabaseConnection {
  /** Writes of the open transaction; null outside one. */
  pending: TableChange[] | 'anything' | null = null;

  constructor(readonly inner: DatabaseConnection, private readonly feed: ChangeFeed) {}

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const node = compiledQuery.query as unknown as QueryNode;
    const reads = node.kind === 'SelectQueryNode' && !node.with;
    let result: QueryResult<R>;
    try {
      result = await this.inner.executeQuery<R>(compiledQuery);
    } catch (error) {
      // A write whose answer was lost (a connection dropped after an autocommit) may have happened.
      if (!reads) this.#add(changeOf(compiledQuery) ?? 'anything');
      throw error;
    }
    if (!reads) this.#record(compiledQuery, result);
    return result;
  }

  streamQuery<R>(compiledQuery: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    // Kysely streams only SELECTs; anything else is announced as a change of anything.
    const node = compiledQuery.query as unknown as QueryNode;
    if (node.kind !== 'SelectQueryNode' || node.with) this.#add('anything');
    return this.inner.streamQuery<R>(compiledQuery, chunkSize);
  }

  #record(compiledQuery: CompiledQuery, result: QueryResult<unknown>): void {
    const change = changeOf(compiledQuery);
    if (change === null) return;
    // A statement that changed no row changed nothing (a DELETE of expired rows that found none).
    if (result.numAffectedRows === 0n && change !== 'anything') return;
    this.#add(change);
  }

  #add(change: StoreChange): void {
    if (this.pending === null) {
      this.feed.announce(change);
    } else if (this.pending !== 'anything') {
      if (change === 'anything') this.pending = 'anything';
      else this.pending.push(...change);
    }
  }
}

class TrackingDriver implements Driver {
  readonly #connections = new WeakMap<DatabaseConnection, TrackedConnection>();

  constructor(private readonly inner: Driver, private readonly feed: ChangeFeed) {}

  init(): Promise<void> {
    return this.inner.init();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    const connection = await this.inner.acquireConnection();
    let tracked = this.#connections.get(connection);
    if (!tracked) {
      tracked = new TrackedConnection(connection, this.feed);
      this.#connections.set(connection, tracked);
    }
    return tracked;
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    const tracked = connection as TrackedConnection;
    await this.inner.beginTransaction(tracked.inner, settings);
    tracked.pending = [];
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    const tracked = connection as TrackedConnection;
    const pending = tracked.pending;
    tracked.pending = null;
    try {
      await this.inner.commitTransaction(tracked.inner);
    } finally {
      // Announced once durable; and also when COMMIT failed, since whether it took effect is then unknown.
      if (pending === 'anything' || (pending !== null && pending.length > 0)) this.feed.announce(pending);
    }
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    const tracked = connection as TrackedConnection;
    tracked.pending = null;
    await this.inner.rollbackTransaction(tracked.inner);
  }

  async savepoint(connection: DatabaseConnection, name: string, compileQuery: QueryCompiler['compileQuery']): Promise<void> {
    if (!this.inner.savepoint) throw new Error('this store does not support savepoints');
    await this.inner.savepoint((connection as TrackedConnection).inner, name, compileQuery);
  }

  // A rollback to a savepoint keeps the writes it undid in `pending`: announcing a change that did
  // not happen costs a cache refill, missing one would serve stale data.
  async rollbackToSavepoint(connection: DatabaseConnection, name: string, compileQuery: QueryCompiler['compileQuery']): Promise<void> {
    if (!this.inner.rollbackToSavepoint) throw new Error('this store does not support savepoints');
    await this.inner.rollbackToSavepoint((connection as TrackedConnection).inner, name, compileQuery);
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string, compileQuery: QueryCompiler['compileQuery']): Promise<void> {
    if (!this.inner.releaseSavepoint) throw new Error('this store does not support savepoints');
    await this.inner.releaseSavepoint((connection as TrackedConnection).inner, name, compileQuery);
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    const tracked = connection as TrackedConnection;
    // A connection given back with a transaction still open (a failed BEGIN/ROLLBACK): whatever it wrote is unknown.
    if (tracked.pending !== null) {
      const pending = tracked.pending;
      tracked.pending = null;
      if (pending === 'anything' || pending.length > 0) this.feed.announce('anything');
    }
    await this.inner.releaseConnection(tracked.inner);
  }

  destroy(): Promise<void> {
    return this.inner.destroy();
  }
}
