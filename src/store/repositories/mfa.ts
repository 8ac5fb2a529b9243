import type { Kysely, Transaction } from 'kysely';
import { preparedStatement } from '../prepared.js';
import type {
  MainDB,
  MfaLoginTokenTable,
  MfaRecoveryCodeTable,
  MfaTotpTable,
  MfaUserStateTable,
  MfaWebAuthnChallengeTable,
  MfaWebAuthnCredentialTable,
} from '../schema.js';

export type TotpRow = MfaTotpTable;
export type RecoveryCodeRow = MfaRecoveryCodeTable;
export type WebAuthnCredentialRow = MfaWebAuthnCredentialTable;
export type LoginTokenRow = MfaLoginTokenTable;
export type WebAuthnChallengeRow = MfaWebAuthnChallengeTable;
export type MfaUserStateRow = MfaUserStateTable;
type Executor = Kysely<MainDB> | Transaction<MainDB>;

/**
 * Every SQL statement of the second-factor feature. Single-use resources are
 * consumed with one conditional UPDATE or DELETE whose row count decides who
 * won, so that parallel requests cannot use one thing twice (ASVS V2.3.4).
 */
export class MfaRepository {
  // Read on every login (which factors count), compiled once (see prepared.ts).
  readonly #findTotp = preparedStatement<TotpRow, [string]>(1, (userId) => this.db.selectFrom('mfa_totp').selectAll().where('user_id', '=', userId));
  readonly #countCredentials = preparedStatement<{ count: number }, [string]>(1, (userId) =>
    this.db.selectFrom('mfa_webauthn_credentials').select((eb) => eb.fn.countAll<number>().as('count')).where('user_id', '=', userId));
  readonly #findUserState = preparedStatement<MfaUserStateRow, [string]>(1, (userId) => this.db.selectFrom('mfa_user_state').selectAll().where('user_id', '=', userId));

  constructor(private readonly db: Kysely<MainDB>) {}

  // --- TOTP ---------------------------------------------------------------

  async findTotp(userId: string, executor: Executor = this.db): Promise<TotpRow | undefined> {
    return (await this.#findTotp(executor, userId)).rows[0];
  }

  /** Stores a pending (unconfirmed) TOTP seed, replacing a pending one; never a confirmed one. */
  async putPendingTotp(row: TotpRow, executor: Executor = this.db): Promise<boolean> {
    await this.deletePendingTotp(row.user_id, executor);
    const result = await executor.insertInto('mfa_totp').values(row).onConflict((oc) => oc.column('user_id').doNothing()).executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
  }

  /** Turns a pending TOTP on, recording the step of the confirming code. */
  async confirmTotp(userId: string, confirmedAt: number, step: number, executor: Executor = this.db): Promise<boolean> {
    const result = await executor
      .updateTable('mfa_totp')
      .set({ confirmed_at: confirmedAt, last_used_step: step })
      .where('user_id', '=', userId)
      .where('confirmed_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /**
   * Records `step` as used when it is later than every step used before; false
   * when it was already used (or an earlier step arrived late): RFC 6238 §5.2.
   */
  async useTotpStep(userId: string, step: number, executor: Executor = this.db): Promise<boolean> {
    const result = await executor
      .updateTable('mfa_totp')
      .set({ last_used_step: step })
      .where('user_id', '=', userId)
      .where('confirmed_at', 'is not', null)
      .where((eb) => eb.or([eb('last_used_step', 'is', null), eb('last_used_step', '<', step)]))
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async deletePendingTotp(userId: string, executor: Executor = this.db): Promise<void> {
    await executor.deleteFrom('mfa_totp').where('user_id', '=', userId).where('confirmed_at', 'is', null).execute();
  }

  async deleteTotp(userId: string, executor: Executor = this.db): Promise<boolean> {
    const result = await executor.deleteFrom('mfa_totp').where('user_id', '=', userId).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  // --- recovery codes -------------------------------------------------------

  /** Replaces every recovery code of the user (the old ones die). */
  async replaceRecoveryCodes(userId: string, rows: RecoveryCodeRow[], executor: Executor = this.db): Promise<void> {
    await executor.deleteFrom('mfa_recovery_codes').where('user_id', '=', userId).execute();
    if (rows.length > 0) await executor.insertInto('mfa_recovery_codes').values(rows).execute();
  }

  /** Marks an unused code as used; true for exactly one caller however many race. */
  async useRecoveryCode(userId: string, codeHash: string, usedAt: number, executor: Executor = this.db): Promise<boolean> {
    const result = await executor
      .updateTable('mfa_recovery_codes')
      .set({ used_at: usedAt })
      .where('user_id', '=', userId)
      .where('code_hash', '=', codeHash)
      .where('used_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async countUnusedRecoveryCodes(userId: string, executor: Executor = this.db): Promise<number> {
    const row = await executor
      .selectFrom('mfa_recovery_codes')
      .select((eb) => eb.fn.countAll<number>().as('count'))
      .where('user_id', '=', userId)
      .where('used_at', 'is', null)
      .executeTakeFirst();
    return Number(row?.count ?? 0);
  }

  /** Every unused recovery code with its owner and stored HMAC, for the key retirement's count. */
  async listUnusedRecoveryCodes(executor: Executor = this.db): Promise<Array<{ id: string; user_id: string; code_hash: string }>> {
    return executor.selectFrom('mfa_recovery_codes').select(['id', 'user_id', 'code_hash']).where('used_at', 'is', null).orderBy('id').execute();
  }

  /** Deletes these recovery codes (those still unused) in one statement; returns how many. */
  async deleteUnusedRecoveryCodesByIds(ids: readonly string[], executor: Executor): Promise<number> {
    if (ids.length === 0) return 0;
    const result = await executor.deleteFrom('mfa_recovery_codes').where('id', 'in', ids).where('used_at', 'is', null).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async deleteRecoveryCodes(userId: string, executor: Executor = this.db): Promise<number> {
    const result = await executor.deleteFrom('mfa_recovery_codes').where('user_id', '=', userId).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  // --- WebAuthn credentials --------------------------------------------------

  async listCredentials(userId: string, executor: Executor = this.db): Promise<WebAuthnCredentialRow[]> {
    return executor.selectFrom('mfa_webauthn_credentials').selectAll().where('user_id', '=', userId).orderBy('created_at', 'asc').execute();
  }

  async countCredentials(userId: string, executor: Executor = this.db): Promise<number> {
    const row = (await this.#countCredentials(executor, userId)).rows[0];
    return Number(row?.count ?? 0);
  }

  async findCredentialByCredentialId(userId: string, credentialId: string, executor: Executor = this.db): Promise<WebAuthnCredentialRow | undefined> {
    return executor
      .selectFrom('mfa_webauthn_credentials')
      .selectAll()
      .where('user_id', '=', userId)
      .where('credential_id', '=', credentialId)
      .executeTakeFirst();
  }

  async insertCredential(row: WebAuthnCredentialRow, executor: Executor = this.db): Promise<void> {
    await executor.insertInto('mfa_webauthn_credentials').values(row).execute();
  }

  /**
   * Stores the new signature counter, only if it has not moved meanwhile
   * (two assertions racing with one counter value: one of them loses).
   */
  async updateCredentialCounter(id: string, expectedCounter: number, newCounter: number, usedAt: number, executor: Executor = this.db): Promise<boolean> {
    const result = await executor
      .updateTable('mfa_webauthn_credentials')
      .set({ counter: newCounter, last_used_at: usedAt })
      .where('id', '=', id)
      .where('counter', '=', expectedCounter)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async deleteCredential(userId: string, id: string, executor: Executor = this.db): Promise<boolean> {
    const result = await executor.deleteFrom('mfa_webauthn_credentials').where('user_id', '=', userId).where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async deleteCredentials(userId: string, executor: Executor = this.db): Promise<number> {
    const result = await executor.deleteFrom('mfa_webauthn_credentials').where('user_id', '=', userId).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  // --- MFA login tokens -------------------------------------------------------

  async insertLoginToken(row: LoginTokenRow, executor: Executor = this.db): Promise<void> {
    await executor.insertInto('mfa_login_tokens').values(row).execute();
  }

  async findLiveLoginToken(tokenHash: string, now: number, maxAttempts: number): Promise<LoginTokenRow | undefined> {
    return this.db
      .selectFrom('mfa_login_tokens')
      .selectAll()
      .where('token_hash', '=', tokenHash)
      .where('expires_at', '>', now)
      .where('attempts', '<', maxAttempts)
      .executeTakeFirst();
  }

  /**
   * Reserves one factor attempt on a live token (one statement: parallel
   * requests can never make more than `maxAttempts` guesses with it). Returns
   * the token after the increment, or undefined when it is unknown, expired or
   * spent.
   */
  async reserveLoginTokenAttempt(tokenHash: string, now: number, maxAttempts: number): Promise<LoginTokenRow | undefined> {
    return this.db
      .updateTable('mfa_login_tokens')
      .set((eb) => ({ attempts: eb('attempts', '+', 1) }))
      .where('token_hash', '=', tokenHash)
      .where('expires_at', '>', now)
      .where('attempts', '<', maxAttempts)
      .returningAll()
      .executeTakeFirst();
  }

  /** Consumes a token; true for exactly one caller. */
  async deleteLoginToken(tokenHash: string, executor: Executor = this.db): Promise<boolean> {
    const result = await executor.deleteFrom('mfa_login_tokens').where('token_hash', '=', tokenHash).executeTakeFirst();
    return Number(result.numDeletedRows) === 1;
  }

  /** The user's pending login steps; every user's with `null`. */
  async deleteLoginTokensOf(userId: string | null, executor: Executor = this.db): Promise<number> {
    let query = executor.deleteFrom('mfa_login_tokens');
    if (userId !== null) query = query.where('user_id', '=', userId);
    const result = await query.executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  // --- WebAuthn challenges ---------------------------------------------------------

  /** Stores a challenge; any earlier challenge with the same purpose and binding dies. */
  async putChallenge(row: WebAuthnChallengeRow, executor: Executor = this.db): Promise<void> {
    await executor.deleteFrom('mfa_webauthn_challenges').where('purpose', '=', row.purpose).where('binding', '=', row.binding).execute();
    await executor.insertInto('mfa_webauthn_challenges').values(row).execute();
  }

  /** Consumes a live challenge; true for exactly one caller. */
  async consumeChallenge(challengeHash: string, userId: string, purpose: string, binding: string, now: number): Promise<boolean> {
    const result = await this.db
      .deleteFrom('mfa_webauthn_challenges')
      .where('challenge_hash', '=', challengeHash)
      .where('user_id', '=', userId)
      .where('purpose', '=', purpose)
      .where('binding', '=', binding)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return Number(result.numDeletedRows) === 1;
  }

  async deleteChallengesOf(userId: string, executor: Executor = this.db): Promise<number> {
    const result = await executor.deleteFrom('mfa_webauthn_challenges').where('user_id', '=', userId).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Removes the user's login challenges (each bound to an mfaToken); enrollment challenges stay. */
  /** The user's login WebAuthn challenges; every user's with `null`. */
  async deleteLoginChallengesOf(userId: string | null, executor: Executor = this.db): Promise<number> {
    let query = executor.deleteFrom('mfa_webauthn_challenges').where('purpose', '=', 'login');
    if (userId !== null) query = query.where('user_id', '=', userId);
    const result = await query.executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Removes expired login tokens and challenges. */
  async deleteExpired(now: number): Promise<number> {
    const tokens = await this.db.deleteFrom('mfa_login_tokens').where('expires_at', '<=', now).executeTakeFirst();
    const challenges = await this.db.deleteFrom('mfa_webauthn_challenges').where('expires_at', '<=', now).executeTakeFirst();
    return Number(tokens.numDeletedRows) + Number(challenges.numDeletedRows);
  }

  // --- per-user state -----------------------------------------------------------------

  async findUserState(userId: string, executor: Executor = this.db): Promise<MfaUserStateRow | undefined> {
    return (await this.#findUserState(executor, userId)).rows[0];
  }

  async ensureUserState(userId: string, now: number, executor: Executor = this.db): Promise<void> {
    await executor
      .insertInto('mfa_user_state')
      .values({ user_id: userId, failures: 0, locked_until: null, grace_restarted_at: null, updated_at: now })
      .onConflict((oc) => oc.column('user_id').doNothing())
      .execute();
  }

  /** Compare-and-set of the failure count: true when `expectedFailures` was still current. */
  async casFailures(userId: string, expectedFailures: number, failures: number, lockedUntil: number | null, now: number): Promise<boolean> {
    const result = await this.db
      .updateTable('mfa_user_state')
      .set({ failures, locked_until: lockedUntil, updated_at: now })
      .where('user_id', '=', userId)
      .where('failures', '=', expectedFailures)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async resetFailures(userId: string, now: number, executor: Executor = this.db): Promise<void> {
    await executor
      .updateTable('mfa_user_state')
      .set({ failures: 0, locked_until: null, updated_at: now })
      .where('user_id', '=', userId)
      .execute();
  }

  async restartGrace(userId: string, now: number, executor: Executor = this.db): Promise<void> {
    await this.ensureUserState(userId, now, executor);
    await executor
      .updateTable('mfa_user_state')
      .set({ grace_restarted_at: now, failures: 0, locked_until: null, updated_at: now })
      .where('user_id', '=', userId)
      .execute();
  }
}
