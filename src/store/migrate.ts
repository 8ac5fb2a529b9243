import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type Kysely, type Migration, type MigrationProvider, type MigrationResultSet, Migrator, PostgresAdapter, sql } from 'kysely';
import type { Stores } from './db.js';

const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'migrations');

/**
 * Loads every migration file of one store from `migrations/<store>/`, in name
 * order. Names are date-prefixed; a migration is frozen once shipped.
 */
class DirectoryMigrationProvider implements MigrationProvider {
  constructor(private readonly folder: string) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    const migrations: Record<string, Migration> = {};
    const files = readdirSync(this.folder)
      .filter((name) => /^\d{4}-\d{2}-\d{2}-\d{3}-[a-z0-9-]+\.(ts|js)$/.test(name))
      .sort();
    for (const file of files) {
      const module = (await import(pathToFileURL(join(this.folder, file)).href)) as Migration;
      migrations[file.replace(/\.(ts|js)$/, '')] = module;
    }
    return migrations;
  }
}

export interface MigrationReport {
  store: 'main' | 'pii';
  applied: string[];
}

async function migratorOf(db: Kysely<any>, folder: 'main' | 'pii'): Promise<Migrator> {
  // On PostgreSQL the bookkeeping tables live in the connection's current schema, so two
  // stores (or test runs) sharing one database in different schemas never see each other's.
  const schema = db.getExecutor().adapter instanceof PostgresAdapter
    ? (await sql<{ schema: string }>`select current_schema() as schema`.execute(db)).rows[0]?.schema
    : undefined;
  return new Migrator({
    db,
    provider: new DirectoryMigrationProvider(join(MIGRATIONS_DIR, folder)),
    ...(schema ? { migrationTableSchema: schema } : {}),
  });
}

async function migrateOne(db: Kysely<any>, folder: 'main' | 'pii'): Promise<MigrationReport> {
  const migrator = await migratorOf(db, folder);
  let outcome: MigrationResultSet = await migrator.migrateToLatest();
  // Kysely checks for its bookkeeping table by listing the tables of EVERY schema; when
  // another schema of the same database is dropped meanwhile (parallel test runs, other
  // tenants), PostgreSQL answers 3F000 "schema … does not exist" for that other schema, or,
  // when a table goes while its columns are listed, 42703 or 42P01 from pg_get_serial_sequence
  // (seen in CI). Nothing was applied then (a failing migration rolls back): retry a few times.
  for (let attempt = 1; attempt < 4 && isSchemaDroppedMeanwhile(outcome.error); attempt++) {
    outcome = await migrator.migrateToLatest();
  }
  const { error, results } = outcome;
  if (error) {
    const failed = results?.find((result) => result.status === 'Error');
    throw new Error(`migration of the ${folder} store failed${failed ? ` at ${failed.migrationName}` : ''}`, { cause: error });
  }
  return { store: folder, applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName) };
}

const CATALOG_RACE_CODES = new Set(['3F000', '42703', '42P01']);

function isSchemaDroppedMeanwhile(error: unknown): boolean {
  return typeof error === 'object' && error !== null && CATALOG_RACE_CODES.has(String((error as { code?: unknown }).code));
}

/**
 * Refuses to go on when a store's schema is behind this code (MIGRATE_ON_START=false: a
 * runtime database role without DDL rights, the schema owner migrating separately). Reads
 * the migration bookkeeping only; changes nothing.
 */
export async function assertStoresMigrated(stores: Stores): Promise<void> {
  for (const [folder, db] of [['main', stores.main.db], ['pii', stores.pii.db]] as const) {
    const pending = (await (await migratorOf(db, folder)).getMigrations()).filter((migration) => migration.executedAt === undefined);
    if (pending.length > 0) {
      throw new Error(`the ${folder} store's schema is behind this version (${pending.length} migration${pending.length === 1 ? '' : 's'} pending, first ${pending[0]!.name}): run \`rampart migrate\` as the schema's owner (MIGRATE_ON_START is false)`);
    }
  }
}

/** Brings both stores to the latest schema. Each migration runs in its own transaction. */
export async function migrateStores(stores: Stores): Promise<MigrationReport[]> {
  return [await migrateOne(stores.main.db, 'main'), await migrateOne(stores.pii.db, 'pii')];
}
