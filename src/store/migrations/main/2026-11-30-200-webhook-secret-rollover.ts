import type { Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
//
// A webhook's signing secret can be rolled over: the previous secret, sealed like the
// current one, keeps signing deliveries beside it until `previous_secret_expires_at`,
// so receivers switch to the new secret without missing a delivery.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('webhooks').addColumn('previous_secret_enc', 'text').execute();
  await db.schema.alterTable('webhooks').addColumn('previous_secret_expires_at', 'bigint').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('webhooks').dropColumn('previous_secret_expires_at').execute();
  await db.schema.alterTable('webhooks').dropColumn('previous_secret_enc').execute();
}
