import type { Kysely } from 'kysely';
import type { MainDB } from '../schema.js';

/** Main store: named facts about the deployment (`server_settings`). */
export class ServerSettingRepository {
  constructor(private readonly db: Kysely<MainDB>) {}

  async get(name: string): Promise<string | null> {
    const row = await this.db.selectFrom('server_settings').select('value').where('name', '=', name).executeTakeFirst();
    return row?.value ?? null;
  }

  /**
   * The stored value, or `value` stored now when there is none. The insert is the
   * arbiter: of several instances starting at once, the first one's value stays.
   */
  async getOrInsert(name: string, value: string, now: number): Promise<string> {
    await this.db.insertInto('server_settings').values({ name, value, updated_at: now })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
    return (await this.get(name))!;
  }

  async delete(name: string): Promise<boolean> {
    const result = await this.db.deleteFrom('server_settings').where('name', '=', name).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}
