import type { Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
//
// What the alert rules remember per user: addresses and devices they logged in
// from, addresses each of their API tokens was used from. Only an HMAC under a
// key derived from the user's data key is stored, so the values cannot be read
// or matched across users, and deleting the user's profile (crypto-shredding)
// takes them along (cascade).
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('pii_known_values')
    .addColumn('user_id', 'text', (c) => c.notNull().references('pii_users.user_id').onDelete('cascade'))
    // 'ip' | 'device' | 'token:<id>'
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('value_hash', 'text', (c) => c.notNull())
    .addColumn('first_seen_at', 'bigint', (c) => c.notNull())
    .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('pii_known_values_pk', ['user_id', 'kind', 'value_hash'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('pii_known_values').execute();
}
