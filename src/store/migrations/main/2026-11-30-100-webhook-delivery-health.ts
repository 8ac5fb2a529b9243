import type { Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
//
// What an org admin needs to see why deliveries do not arrive: when the webhook last
// delivered, and when and why it last failed, as a category ("tls", "timeout", an
// HTTP status…), never the raw error (it could name addresses behind the receiver).
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('webhooks').addColumn('last_delivered_at', 'bigint').execute();
  await db.schema.alterTable('webhooks').addColumn('last_failed_at', 'bigint').execute();
  await db.schema.alterTable('webhooks').addColumn('last_failure_reason', 'text').execute();
  await db.schema.alterTable('webhooks').addColumn('last_failure_status', 'integer').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const column of ['last_failure_status', 'last_failure_reason', 'last_failed_at', 'last_delivered_at']) {
    await db.schema.alterTable('webhooks').dropColumn(column).execute();
  }
}
