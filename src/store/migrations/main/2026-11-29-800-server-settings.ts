import type { Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
//
// `server_settings`: small facts about the deployment that must outlive a
// restart and be shared by every instance, such as when MFA_REQUIRED_FOR_ALL
// first took effect (the grace period of existing accounts runs from there).
// Values are plain text; no secrets and no personal data belong here.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('server_settings')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('server_settings').execute();
}
