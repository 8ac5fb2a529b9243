import type { Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// Password history (no reuse of the last N) and the single-use tokens of the
// password flows (reset links, expired-password change tokens).
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('password_history')
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    // 1, 2, 3… per user: the order of the passwords even when the clock did not move.
    .addColumn('seq', 'integer', (c) => c.notNull())
    // A password the user had before the current one (argon2id PHC string, or an imported hash).
    .addColumn('password_hash', 'text', (c) => c.notNull())
    // When that password stopped being the current one.
    .addColumn('replaced_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('password_history_pk', ['user_id', 'seq'])
    .execute();

  await db.schema
    .createTable('password_tokens')
    // SHA-256 (hex) of a 256-bit random token; the token itself is never stored.
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    // 'reset' (mailed link) | 'change' (expired password, handed out by login)
    .addColumn('purpose', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    // A redemption in progress holds the token so parallel redemptions do no work.
    .addColumn('claim_id', 'text')
    .addColumn('claim_expires_at', 'bigint')
    .execute();
  await db.schema.createIndex('password_tokens_user').on('password_tokens').column('user_id').execute();
  await db.schema.createIndex('password_tokens_expires_at').on('password_tokens').column('expires_at').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('password_tokens').execute();
  await db.schema.dropTable('password_history').execute();
}
