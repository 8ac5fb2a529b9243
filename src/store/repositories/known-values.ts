import type { Kysely } from 'kysely';
import type { PiiDB } from '../schema.js';

/** PII store: the HMACs of values a user was seen with (addresses, devices, token addresses). */
export class KnownValueRepository {
  constructor(private readonly db: Kysely<PiiDB>) {}

  /**
   * Remembers a value; returns whether it is new, and whether it is the first of
   * its kind for this user. The insert is the arbiter: of two instances seeing
   * the same new value at once, only one gets `isNew`.
   */
  async remember(userId: string, kind: string, valueHash: string, now: number): Promise<{ isNew: boolean; firstOfKind: boolean }> {
    const existing = await this.db.selectFrom('pii_known_values').select('value_hash')
      .where('user_id', '=', userId).where('kind', '=', kind).limit(1).executeTakeFirst();
    const inserted = await this.db
      .insertInto('pii_known_values')
      .values({ user_id: userId, kind, value_hash: valueHash, first_seen_at: now, last_seen_at: now })
      .onConflict((oc) => oc.columns(['user_id', 'kind', 'value_hash']).doNothing())
      .returning('user_id')
      .executeTakeFirst();
    if (!inserted) {
      await this.db.updateTable('pii_known_values').set({ last_seen_at: now })
        .where('user_id', '=', userId).where('kind', '=', kind).where('value_hash', '=', valueHash).execute();
    }
    return { isNew: inserted !== undefined, firstOfKind: existing === undefined };
  }
}
