import type { Kysely, Transaction } from 'kysely';
import type { ChangeFeed } from '../change-feed.js';
import { preparedStatement } from '../prepared.js';
import { altersRows, ReadCache } from '../read-cache.js';
import type { MainDB, UserTable } from '../schema.js';

export type UserRow = UserTable;
type Executor = Kysely<MainDB> | Transaction<MainDB>;

export class UserRepository {
  readonly #findById = preparedStatement<UserRow, [string]>(1, (id) => this.db.selectFrom('users').selectAll().where('id', '=', id));
  /** Account rows read on the store itself, by id (see `ReadCache`); null: every call reads. */
  readonly #kept: ReadCache<string, UserRow | undefined> | null;

  constructor(private readonly db: Kysely<MainDB>, changes: ChangeFeed | null = null, now: () => number = Date.now, private readonly postgres = false) {
    this.#kept = changes && new ReadCache({ feed: changes, dependsOn: (change) => altersRows(change, 'users'), now });
  }

  async insert(row: UserRow, executor: Executor = this.db): Promise<void> {
    await executor.insertInto('users').values(row).execute();
  }

  /**
   * The account row (a copy the caller may change). Read on the store itself it
   * may come from memory; inside a transaction it is always read.
   */
  async findById(id: string, executor: Executor = this.db): Promise<UserRow | undefined> {
    if (executor !== this.db || this.#kept === null) return (await this.#findById(executor, id)).rows[0];
    const kept = await this.#kept.get(id, this.#readById);
    return kept && { ...kept };
  }

  readonly #readById = async (id: string): Promise<UserRow | undefined> => (await this.#findById(this.db, id)).rows[0];

  /** Marks the address verified unless it already was; whether this call changed it. */
  async markEmailVerified(id: string, now: number, executor: Executor = this.db): Promise<boolean> {
    const result = await executor.updateTable('users').set({ email_verified: 1, updated_at: now })
      .where('id', '=', id).where('email_verified', '=', 0).executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async update(id: string, changes: Partial<Omit<UserRow, 'id'>>, executor: Executor = this.db): Promise<void> {
    await executor.updateTable('users').set(changes).where('id', '=', id).execute();
  }

  /** Replaces the hash only if it is still `expected` (a rehash must never undo a concurrent password change). */
  async replacePasswordHash(id: string, expected: string, replacement: string, updatedAt: number, executor: Executor = this.db): Promise<boolean> {
    const result = await executor
      .updateTable('users')
      .set({ password_hash: replacement, updated_at: updatedAt })
      .where('id', '=', id)
      .where('password_hash', '=', expected)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /**
   * Locks the account row until the transaction ends (PostgreSQL FOR NO KEY UPDATE; SQLite
   * runs one write transaction at a time: nothing to do). For a transaction that would
   * otherwise lock one of the user's rows (a reset link, a login step) before the user's
   * own: an account's deletion holds the user and then deletes those rows by cascade, so
   * the other order deadlocks. Lock order (ARCHITECTURE.md "Lock order"): the user's row
   * first, then the user's other rows, the orgs, the audit chain.
   */
  async holdRow(id: string, trx: Transaction<MainDB>): Promise<void> {
    await holdUserRow(trx, id, this.postgres);
  }

  /** Which of `ids` have an account (read from the store, never from the cache). */
  async existingIds(ids: readonly string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    return (await this.db.selectFrom('users').select('id').where('id', 'in', [...ids]).execute()).map((row) => row.id);
  }

  /**
   * The account row, read for its deletion with the row lock the DELETE will need
   * (PostgreSQL FOR UPDATE) taken now, at the start of the transaction. Lock order
   * (ARCHITECTURE.md "Lock order"): the user's row before the audit chain's head. The
   * deletion appends `user.deleted` before it deletes the row; locking only at the
   * DELETE took the head first and then waited for the row, while a token creation, a
   * lock or a login of the same account held the row and waited for the head: a
   * deadlock. SQLite runs one write transaction at a time: a plain read.
   */
  async findByIdForDeletion(id: string, trx: Transaction<MainDB>): Promise<UserRow | undefined> {
    const query = trx.selectFrom('users').selectAll().where('id', '=', id);
    return (this.postgres ? query.forUpdate() : query).executeTakeFirst();
  }

  async delete(id: string, executor: Executor = this.db): Promise<void> {
    await executor.deleteFrom('users').where('id', '=', id).execute();
  }
}

/**
 * The user-row lock of `UserRepository.holdRow`, for repositories that take it before
 * counting what the user owns (creation caps): FOR NO KEY UPDATE on PostgreSQL, nothing
 * on SQLite (serializable transactions).
 */
export async function holdUserRow(trx: Transaction<MainDB>, userId: string, postgres: boolean): Promise<void> {
  if (postgres) await trx.selectFrom('users').select('id').where('id', '=', userId).forNoKeyUpdate().execute();
}
