import type { Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('pii_users')
    .addColumn('user_id', 'text', (c) => c.primaryKey())
    .addColumn('email_index', 'text', (c) => c.notNull().unique())
    .addColumn('email_enc', 'text', (c) => c.notNull())
    .addColumn('name_enc', 'text')
    .addColumn('wrapped_dek', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('keyring')
    .addColumn('purpose', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('wrapped_key', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('keyring_pk', ['purpose', 'version'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('keyring').execute();
  await db.schema.dropTable('pii_users').execute();
}
