import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { ChangeFeed, trackChanges } from './change-feed.js';
import type { MainDB, PiiDB } from './schema.js';

export type Dialect = 'sqlite' | 'postgres';

export interface Store<DB> {
  readonly db: Kysely<DB>;
  readonly dialect: Dialect;
  /** Where it lives, for doctor (a path, or a URL without its password). */
  readonly location: string;
  /** Every committed write, for in-process read caches (see `ReadCache`). */
  readonly changes: ChangeFeed;
}

export interface Stores {
  readonly main: Store<MainDB>;
  readonly pii: Store<PiiDB>;
  close(): Promise<void>;
}

export interface StoreLocations {
  dataDir: string;
  databaseUrl: string | null;
  piiDatabaseUrl: string | null;
}

export function openStores(locations: StoreLocations): Stores {
  const main = openStore<MainDB>(locations.databaseUrl, join(locations.dataDir, 'rampart.db'));
  const pii = openStore<PiiDB>(locations.piiDatabaseUrl, join(locations.dataDir, 'pii.db'));
  return {
    main,
    pii,
    async close() {
      await Promise.all([main.db.destroy(), pii.db.destroy()]);
    },
  };
}

export function openStore<DB>(url: string | null, sqlitePath: string): Store<DB> {
  if (url) {
    const pool = new pg.Pool({
      connectionString: url,
      max: 10,
      // int8 (epoch milliseconds, counts) as numbers: every value we store fits in 2^53.
      types: {
        getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
          oid === 20 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
      },
    });
    // Other instances write to the same database unseen, so no read cache may trust this feed.
    const changes = new ChangeFeed(false);
    return { db: new Kysely<DB>({ dialect: trackChanges(new PostgresDialect({ pool }), changes) }), dialect: 'postgres', location: redactURL(url), changes };
  }
  mkdirSync(join(sqlitePath, '..'), { recursive: true, mode: 0o700 });
  const database = new Database(sqlitePath);
  // WAL: readers never block the writer; synchronous=NORMAL keeps the database
  // consistent across crashes (only the last commits may be lost on power failure).
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.pragma('foreign_keys = ON');
  database.pragma('busy_timeout = 5000');
  // This process sees its own writes through Kysely; data_version changes when another
  // connection (a CLI command, a second server on the same file) commits one.
  const changes = new ChangeFeed(true);
  const dataVersion = database.prepare('PRAGMA data_version').pluck();
  changes.watchExternalWrites(() => dataVersion.get());
  return { db: new Kysely<DB>({ dialect: trackChanges(new SqliteDialect({ database: withStatementCache(database) }), changes) }), dialect: 'sqlite', location: sqlitePath, changes };
}

const STATEMENT_CACHE_SIZE = 256;

/**
 * Kysely's SQLite driver prepares every query anew; preparing costs more than
 * running a point lookup. Reusing prepared statements (keyed by SQL text, which
 * holds only placeholders, never values) keeps the hot paths to one indexed read.
 */
function withStatementCache(database: Database.Database) {
  const cache = new Map<string, Database.Statement>();
  return {
    close: () => database.close(),
    prepare(sqlText: string) {
      let statement = cache.get(sqlText);
      if (statement) {
        // Refresh recency (Map keeps insertion order: the first key is the least recent).
        cache.delete(sqlText);
      } else {
        statement = database.prepare(sqlText);
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
      }
      cache.set(sqlText, statement);
      return statement;
    },
  };
}

/** Whether the store answers a trivial query. */
export async function isStoreReachable(store: Store<any>): Promise<boolean> {
  try {
    await sql`select 1`.execute(store.db);
    return true;
  } catch {
    return false;
  }
}

export function redactURL(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}
