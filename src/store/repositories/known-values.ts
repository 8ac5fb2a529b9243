import type { Kysely } from 'kysely';
import type { PiiDB } from '../schema.js';

/** PII store: the HMACs of values a user was seen with (addresses, devices, token addresses). */
export class KnownValueRepository {
  constructor(private readonly db: Kysely<PiiDB>) {}

  /**
   * Remembers a value; returns whether it is new, and whether it is the first of
   * its kind for this user. The insert is the arbiter: of two instances seeing
   * the same new value at once, only one gets `isNew`. A known value costs the
   * insert that finds it and, at most once an hour, the write of its last sighting.
   */
  async remember(userId: string, kind: string, valueHash: string, now: number): Promise<{ isNew: boolean; firstOfKind: boolean }> {
    const inserted = await this.db
      .insertInto('pii_known_values')
      .values({ user_id: userId, kind, value_hash: valueHash, first_seen_at: now, last_seen_at: now })
      .onConflict((oc) => oc.columns(['user_id', 'kind', 'value_hash']).doNothing())
      .returning('user_id')
      .executeTakeFirst();
    if (!inserted) {
      await this.db.updateTable('pii_known_values').set({ last_seen_at: now })
        .where('user_id', '=', userId).where('kind', '=', kind).where('value_hash', '=', valueHash)
        .where('last_seen_at', '<', now - LAST_SEEN_RESOLUTION_MS)
        .execute();
      return { isNew: false, firstOfKind: false };
    }
    const other = await this.db.selectFrom('pii_known_values').select('value_hash')
      .where('user_id', '=', userId).where('kind', '=', kind).where('value_hash', '!=', valueHash).limit(1).executeTakeFirst();
    return { isNew: true, firstOfKind: other === undefined };
  }
}

/** A value's last sighting is kept to the hour: no write on every login from a known device. */
const LAST_SEEN_RESOLUTION_MS = 3_600_000;
