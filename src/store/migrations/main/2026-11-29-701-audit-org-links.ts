import type { Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
//
// Which orgs see which audit events: the event's own org, and, for an event about
// a user (a login, a factor change…), every org the user belonged to when it was
// appended. An org's audit read is one index range scan over (org_id, seq).
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('audit_event_orgs')
    .addColumn('org_id', 'text', (c) => c.notNull())
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('audit_event_orgs_pk', ['org_id', 'seq'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('audit_event_orgs').execute();
}
