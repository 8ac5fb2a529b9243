import type { Kysely, Transaction } from 'kysely';
import type { MainDB, PasswordTokenTable } from '../schema.js';

export type PasswordTokenRow = PasswordTokenTable;
/** `reset`: a mailed reset link; `change`: an expired password's change step; `verify_email`: a mailed verification link. */
export type PasswordTokenPurpose = 'reset' | 'change' | 'verify_email';
type Executor = Kysely<MainDB> | Transaction<MainDB>;

/**
 * Single-use tokens, looked up by their hash only. Redemption is two-phase:
 * `claim` marks a live token as held by one redemption (an atomic conditional
 * update, so of N parallel redemptions exactly one gets it), `consume` deletes
 * it inside the transaction that applies the change, and `release` gives it
 * back when the redemption failed on the user's input (a weak password).
 */
export class PasswordTokenRepository {
  constructor(private readonly db: Kysely<MainDB>) {}

  async insert(row: PasswordTokenRow, executor: Executor = this.db): Promise<void> {
    await executor.insertInto('password_tokens').values(row).execute();
  }

  /** Holds a live, unheld token for one redemption; returns its owner, or null. */
  async claim(tokenHash: string, purpose: PasswordTokenPurpose, claimId: string, now: number, holdMs: number): Promise<string | null> {
    const result = await this.db
      .updateTable('password_tokens')
      .set({ claim_id: claimId, claim_expires_at: now + holdMs })
      .where('token_hash', '=', tokenHash)
      .where('purpose', '=', purpose)
      .where('expires_at', '>', now)
      .where((eb) => eb.or([eb('claim_id', 'is', null), eb('claim_expires_at', '<=', now)]))
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) !== 1) return null;
    const row = await this.db
      .selectFrom('password_tokens')
      .select('user_id')
      .where('token_hash', '=', tokenHash)
      .where('claim_id', '=', claimId)
      .executeTakeFirst();
    return row?.user_id ?? null;
  }

  /** Deletes the token if this redemption still holds it (it may have been voided meanwhile). */
  async consume(tokenHash: string, claimId: string, executor: Executor = this.db): Promise<boolean> {
    const result = await executor
      .deleteFrom('password_tokens')
      .where('token_hash', '=', tokenHash)
      .where('claim_id', '=', claimId)
      .executeTakeFirst();
    return Number(result.numDeletedRows) === 1;
  }

  async release(tokenHash: string, claimId: string): Promise<void> {
    await this.db
      .updateTable('password_tokens')
      .set({ claim_id: null, claim_expires_at: null })
      .where('token_hash', '=', tokenHash)
      .where('claim_id', '=', claimId)
      .execute();
  }

  /** Voids the user's tokens (of one purpose, or all); returns how many. */
  async deleteForUser(userId: string, purpose: PasswordTokenPurpose | null, executor: Executor = this.db): Promise<number> {
    let query = executor.deleteFrom('password_tokens').where('user_id', '=', userId);
    if (purpose) query = query.where('purpose', '=', purpose);
    const result = await query.executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async deleteExpired(now: number, executor: Executor = this.db): Promise<number> {
    const result = await executor.deleteFrom('password_tokens').where('expires_at', '<=', now).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
