import type { Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// Staff separation of roles: granted roles (dormant) and the one role a session has assumed.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('staff_roles')
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('granted_at', 'bigint', (c) => c.notNull())
    .addColumn('granted_by', 'text')
    .addPrimaryKeyConstraint('staff_roles_pk', ['user_id', 'role'])
    .execute();

  await db.schema
    .createTable('staff_assumptions')
    // One assumed role per session; it ends with the session.
    .addColumn('session_public_id', 'text', (c) => c.primaryKey().references('sessions.public_id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('assumed_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('staff_assumptions_user_id').on('staff_assumptions').column('user_id').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('staff_assumptions').execute();
  await db.schema.dropTable('staff_roles').execute();
}
