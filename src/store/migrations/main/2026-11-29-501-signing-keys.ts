import type { Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('signing_keys')
    .addColumn('kid', 'text', (c) => c.primaryKey())
    .addColumn('alg', 'text', (c) => c.notNull())
    // The public JWK (JSON); published in the JWKS while tokens it signed may live.
    .addColumn('public_jwk', 'text', (c) => c.notNull())
    // PKCS#8 private key wrapped by the master key; set to null (destroyed) at retirement.
    .addColumn('private_key_wrapped', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('retired_at', 'bigint')
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('signing_keys').execute();
}
