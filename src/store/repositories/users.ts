import type { Kysely, Transaction } from 'kysely';
import { preparedStatement } from '../prepared.js';
import type { MainDB, UserTable } from '../schema.js';

export type UserRow = UserTable;
type Executor = Kysely<MainDB> | Transaction<MainDB>;

export class UserRepository {
  readonly #findById = preparedStatement<UserRow, [string]>(1, (id) => this.db.selectFrom('users').selectAll().where('id', '=', id));

  constructor(private readonly db: Kysely<MainDB>) {}

  async insert(row: UserRow, executor: Executor = this.db): Promise<void> {
    await executor.insertInto('users').values(row).execute();
  }

  async findById(id: string, executor: Executor = this.db): Promise<UserRow | undefined> {
    return (await this.#findById(executor, id)).rows[0];
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

  async delete(id: string, executor: Executor = this.db): Promise<void> {
    await executor.deleteFrom('users').where('id', '=', id).execute();
  }
}
