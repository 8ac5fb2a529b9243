import type { Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// Organizations, their members, their policy (JSON) and pending invitations.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('orgs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('slug', 'text', (c) => c.notNull().unique())
    // The whole policy document (API.md "Policy"), validated before it is written.
    .addColumn('policy', 'text', (c) => c.notNull())
    // When mfa.required was last turned on (epoch ms); null while it is off.
    .addColumn('mfa_required_since', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('org_memberships')
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('joined_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('org_memberships_pk', ['org_id', 'user_id'])
    .execute();
  await db.schema.createIndex('org_memberships_user_id').on('org_memberships').column('user_id').execute();

  await db.schema
    .createTable('org_invitations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    // Keyed blind index of the invited address (the PII store's HMAC); never the address itself.
    .addColumn('email_index', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    // SHA-256 of the 256-bit token sent by mail; the token itself is never stored.
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('invited_by', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('accepted_at', 'bigint')
    .addColumn('accepted_by', 'text')
    .execute();
  await db.schema.createIndex('org_invitations_org_email').on('org_invitations').columns(['org_id', 'email_index']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('org_invitations').execute();
  await db.schema.dropTable('org_memberships').execute();
  await db.schema.dropTable('orgs').execute();
}
