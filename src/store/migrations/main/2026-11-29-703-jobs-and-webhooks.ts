import type { Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
//
// `jobs` is the durable queue of work done after a commit (alert evaluation,
// alert mail, webhook deliveries): a job is written in the same transaction as
// the event that causes it, so a crash or restart loses nothing. Payloads hold
// ids only (no personal data, no secrets).
//
// `webhooks`: org admins' endpoints; the signing secret is AES-256-GCM under the
// keyring's "webhook-secret" key (it must be usable to sign, so it is not hashed).
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('jobs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    // What the job belongs to (a webhook id), to drop its pending work at once.
    .addColumn('ref', 'text')
    .addColumn('run_at', 'bigint', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('locked_until', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('last_error', 'text')
    // Set when the job gave up (kept for inspection, swept later).
    .addColumn('failed_at', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('jobs_due').on('jobs').columns(['failed_at', 'run_at']).execute();
  await db.schema.createIndex('jobs_ref').on('jobs').column('ref').execute();

  await db.schema
    .createTable('webhooks')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('url', 'text', (c) => c.notNull())
    // JSON array of event actions, or ["*"].
    .addColumn('events', 'text', (c) => c.notNull())
    .addColumn('secret_enc', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('webhooks_org').on('webhooks').column('org_id').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('webhooks').execute();
  await db.schema.dropTable('jobs').execute();
}
