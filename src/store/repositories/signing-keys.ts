import type { Kysely, Transaction } from 'kysely';
import type { MainDB, SigningKeyTable } from '../schema.js';

export type SigningKeyRow = SigningKeyTable;
type Executor = Kysely<MainDB> | Transaction<MainDB>;

export class SigningKeyRepository {
  constructor(private readonly db: Kysely<MainDB>) {}

  /** Every key still stored, newest first (a handful at most). */
  async list(executor: Executor = this.db): Promise<SigningKeyRow[]> {
    return executor.selectFrom('signing_keys').selectAll().orderBy('created_at', 'desc').orderBy('kid', 'desc').execute();
  }

  async insert(row: SigningKeyRow, executor: Executor = this.db): Promise<void> {
    await executor.insertInto('signing_keys').values(row).execute();
  }

  /** Retires a key and destroys its private half; false when another instance already did. */
  async retire(kid: string, now: number, executor: Executor = this.db): Promise<boolean> {
    const result = await executor
      .updateTable('signing_keys')
      .set({ retired_at: now, private_key_wrapped: null })
      .where('kid', '=', kid)
      .where('retired_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Removes retired keys whose last token has expired. */
  async deleteRetiredBefore(cutoff: number, executor: Executor = this.db): Promise<number> {
    const result = await executor.deleteFrom('signing_keys').where('retired_at', 'is not', null).where('retired_at', '<=', cutoff).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
