import type { Kysely } from 'kysely';
import { preparedStatement } from '../prepared.js';
import type { PiiDB } from '../schema.js';

/** PII store: the HMACs of values a user was seen with (addresses, devices, token addresses). */
export class KnownValueRepository {
  // Run after every login, compiled once (see prepared.ts).
  readonly #insert = preparedStatement<{ user_id: string }, [string, string, string, number]>(4, (userId, kind, valueHash, now) => this.db
    .insertInto('pii_known_values')
    .values({ user_id: userId!, kind: kind!, value_hash: valueHash!, first_seen_at: now as unknown as number, last_seen_at: now as unknown as number })
    .onConflict((oc) => oc.columns(['user_id', 'kind', 'value_hash']).doNothing())
    .returning('user_id'));
  readonly #touch = preparedStatement<never, [number, string, string, string, number]>(5, (now, userId, kind, valueHash, seenBefore) => this.db
    .updateTable('pii_known_values').set({ last_seen_at: now as unknown as number })
    .where('user_id', '=', userId!).where('kind', '=', kind!).where('value_hash', '=', valueHash!)
    .where('last_seen_at', '<', seenBefore as unknown as number));

  constructor(private readonly db: Kysely<PiiDB>) {}

  /**
   * Remembers a value; returns whether it is new, and whether it is the first of
   * its kind for this user. The insert is the arbiter: of two instances seeing
   * the same new value at once, only one gets `isNew`. A known value costs the
   * insert that finds it and, at most once an hour, the write of its last sighting.
   */
  async remember(userId: string, kind: string, valueHash: string, now: number): Promise<{ isNew: boolean; firstOfKind: boolean }> {
    const inserted = (await this.#insert(this.db, userId, kind, valueHash, now)).rows[0];
    if (!inserted) {
      await this.#touch(this.db, now, userId, kind, valueHash, now - LAST_SEEN_RESOLUTION_MS);
      return { isNew: false, firstOfKind: false };
    }
    const other = await this.db.selectFrom('pii_known_values').select('value_hash')
      .where('user_id', '=', userId).where('kind', '=', kind).where('value_hash', '!=', valueHash).limit(1).executeTakeFirst();
    return { isNew: true, firstOfKind: other === undefined };
  }
}

/** A value's last sighting is kept to the hour: no write on every login from a known device. */
const LAST_SEEN_RESOLUTION_MS = 3_600_000;
