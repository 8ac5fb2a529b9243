import type { Kysely } from 'kysely';
import { preparedQuery } from '../prepared.js';
import type { PiiDB, PiiUserTable } from '../schema.js';

export type PiiUserRow = PiiUserTable;

/** The only SQL that touches personal data. */
export class PiiUserRepository {
  readonly #findByUserId: (userId: string) => Promise<PiiUserRow[]>;
  readonly #findByEmailIndex: (emailIndex: string) => Promise<PiiUserRow[]>;

  constructor(private readonly db: Kysely<PiiDB>) {
    this.#findByUserId = preparedQuery<PiiUserRow, [string]>(db, 1, (userId) => db.selectFrom('pii_users').selectAll().where('user_id', '=', userId));
    this.#findByEmailIndex = preparedQuery<PiiUserRow, [string]>(db, 1, (index) => db.selectFrom('pii_users').selectAll().where('email_index', '=', index));
  }

  async insert(row: PiiUserRow): Promise<void> {
    await this.db.insertInto('pii_users').values(row).execute();
  }

  async findByUserId(userId: string): Promise<PiiUserRow | undefined> {
    return (await this.#findByUserId(userId))[0];
  }

  async findByEmailIndex(emailIndex: string): Promise<PiiUserRow | undefined> {
    return (await this.#findByEmailIndex(emailIndex))[0];
  }

  async update(userId: string, changes: Partial<Omit<PiiUserRow, 'user_id'>>): Promise<void> {
    await this.db.updateTable('pii_users').set(changes).where('user_id', '=', userId).execute();
  }

  /** User ids of profiles created at or before `before`, in id order after `afterUserId`, at most `limit`. */
  async idsCreatedBefore(before: number, afterUserId: string, limit: number): Promise<string[]> {
    const rows = await this.db.selectFrom('pii_users').select('user_id')
      .where('created_at', '<=', before).where('user_id', '>', afterUserId)
      .orderBy('user_id').limit(limit).execute();
    return rows.map((row) => row.user_id);
  }

  /** The rows' blind indexes and what re-computing them needs, in id order after `afterUserId` (re-keying). */
  async indexPage(afterUserId: string, limit: number): Promise<Array<Pick<PiiUserRow, 'user_id' | 'email_index' | 'email_enc' | 'wrapped_dek'>>> {
    return this.db.selectFrom('pii_users').select(['user_id', 'email_index', 'email_enc', 'wrapped_dek'])
      .where('user_id', '>', afterUserId).orderBy('user_id').limit(limit).execute();
  }

  /** Sets a new blind index if the row still holds `from`; whether it did. */
  async replaceEmailIndex(userId: string, from: string, to: string, now: number): Promise<boolean> {
    const result = await this.db.updateTable('pii_users').set({ email_index: to, updated_at: now })
      .where('user_id', '=', userId).where('email_index', '=', from).executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Rows whose blind index does not start with `prefix` (a key version's `k<version>.`). */
  async countIndexesNotUnder(prefix: string): Promise<number> {
    const row = await this.db.selectFrom('pii_users').select((eb) => eb.fn.countAll<number>().as('n'))
      .where('email_index', 'not like', `${prefix}%`).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** Deletes the row and with it the wrapped data key: the data becomes unrecoverable. */
  async delete(userId: string): Promise<void> {
    await this.db.deleteFrom('pii_users').where('user_id', '=', userId).execute();
  }
}
