import type { Kysely, Transaction } from 'kysely';
import type { MainDB } from '../schema.js';

type Executor = Kysely<MainDB> | Transaction<MainDB>;

/** Main store: named facts about the deployment (`server_settings`). */
export class ServerSettingRepository {
  constructor(private readonly db: Kysely<MainDB>) {}

  async get(name: string, executor: Executor = this.db): Promise<string | null> {
    const row = await executor.selectFrom('server_settings').select('value').where('name', '=', name).executeTakeFirst();
    return row?.value ?? null;
  }

  /**
   * Stores `value` unless the name already has one; true when this call stored it.
   * The insert is the arbiter: of several instances starting at once, the first
   * one's value stays (on PostgreSQL the others wait for its commit, then insert nothing).
   */
  async insertIfAbsent(name: string, value: string, now: number, executor: Executor = this.db): Promise<boolean> {
    const result = await executor.insertInto('server_settings').values({ name, value, updated_at: now })
      .onConflict((oc) => oc.column('name').doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  async delete(name: string, executor: Executor = this.db): Promise<boolean> {
    const result = await executor.deleteFrom('server_settings').where('name', '=', name).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}
