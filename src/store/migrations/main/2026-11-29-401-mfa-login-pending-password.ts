import type { Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one.
// An expired password's replacement waits on the login's second step: the
// argon2id hash of the new password (policy and history already checked)
// rides on the mfaToken row and becomes the password only when the factor is
// proved, in the transaction that consumes the token. It dies with the row
// (expiry sweep, spent attempts, MFA reset, account deletion). Numbered after
// 400, which creates the table.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('mfa_login_tokens').addColumn('pending_password_hash', 'text').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('mfa_login_tokens').dropColumn('pending_password_hash').execute();
}
