import type { Kysely, Transaction } from 'kysely';
import type { MainDB, PasswordHistoryTable } from '../schema.js';

export type PasswordHistoryRow = PasswordHistoryTable;
type Executor = Kysely<MainDB> | Transaction<MainDB>;

/** Former password hashes of each user, newest first. */
export class PasswordHistoryRepository {
  constructor(private readonly db: Kysely<MainDB>) {}

  /** The newest `limit` former hashes of the user. */
  async recent(userId: string, limit: number, executor: Executor = this.db): Promise<string[]> {
    if (limit <= 0) return [];
    const rows = await executor
      .selectFrom('password_history')
      .select('password_hash')
      .where('user_id', '=', userId)
      .orderBy('seq', 'desc')
      .limit(limit)
      .execute();
    return rows.map((row) => row.password_hash);
  }

  /** Appends a former hash after the user's newest one. */
  async push(userId: string, passwordHash: string, replacedAt: number, executor: Executor = this.db): Promise<void> {
    const last = await executor
      .selectFrom('password_history')
      .select((eb) => eb.fn.max<number | null>('seq').as('seq'))
      .where('user_id', '=', userId)
      .executeTakeFirst();
    const seq = Number(last?.seq ?? 0) + 1;
    await executor.insertInto('password_history').values({ user_id: userId, seq, password_hash: passwordHash, replaced_at: replacedAt }).execute();
  }

  /** Keeps only the newest `keep` rows of the user; returns how many were deleted. */
  async prune(userId: string, keep: number, executor: Executor = this.db): Promise<number> {
    let query = executor.deleteFrom('password_history').where('user_id', '=', userId);
    if (keep > 0) {
      const boundary = await executor
        .selectFrom('password_history')
        .select('seq')
        .where('user_id', '=', userId)
        .orderBy('seq', 'desc')
        .offset(keep - 1)
        .limit(1)
        .executeTakeFirst();
      if (!boundary) return 0;
      query = query.where('seq', '<', Number(boundary.seq));
    }
    const result = await query.executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async deleteForUser(userId: string, executor: Executor = this.db): Promise<number> {
    const result = await executor.deleteFrom('password_history').where('user_id', '=', userId).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
