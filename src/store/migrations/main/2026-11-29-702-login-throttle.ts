import type { Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
//
// Per-account login back-off, shared by every instance through the main store
// (and driven by the injected clock). `key` is an HMAC of the account's email
// blind index, alone (the account) or with the client address (the pair):
// neither the email nor the address is stored.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('login_throttle')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('failures', 'integer', (c) => c.notNull())
    .addColumn('last_failure_at', 'bigint', (c) => c.notNull())
    .addColumn('blocked_until', 'bigint', (c) => c.notNull())
    // Pairs only: when the account last logged in from this address (a known address).
    .addColumn('succeeded_at', 'bigint')
    .execute();
  await db.schema.createIndex('login_throttle_last_failure_at').on('login_throttle').column('last_failure_at').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('login_throttle').execute();
}
