import type { Kysely } from 'kysely';
import { preparedStatement } from '../prepared.js';
import type { LoginThrottleTable, MainDB } from '../schema.js';

export type LoginThrottleRow = LoginThrottleTable;

/** Back-off counters: read two keys, count a failure atomically, mark a success. */
export class LoginThrottleRepository {
  // A login's two statements, compiled once (see prepared.ts).
  readonly #findPair = preparedStatement<LoginThrottleRow, [string, string]>(2, (first, second) =>
    this.db.selectFrom('login_throttle').selectAll().where('key', 'in', [first!, second!]));
  readonly #markSuccess = preparedStatement<never, [string, number]>(2, (key, now) => {
    const at = now as unknown as number;
    return this.db
      .insertInto('login_throttle')
      .values({ key: key!, failures: 0, last_failure_at: 0, blocked_until: 0, succeeded_at: at })
      .onConflict((oc) => oc.column('key').doUpdateSet({ failures: 0, blocked_until: 0, succeeded_at: at }));
  });

  constructor(private readonly db: Kysely<MainDB>) {}

  /** The rows of an attempt's two keys (account, and account with address), those that exist. */
  async find(accountKey: string, pairKey: string): Promise<LoginThrottleRow[]> {
    const { rows } = await this.#findPair(this.db, accountKey, pairKey);
    return rows.map((row) => ({ ...row, last_failure_at: Number(row.last_failure_at), blocked_until: Number(row.blocked_until), succeeded_at: row.succeeded_at === null ? null : Number(row.succeeded_at) }));
  }

  /**
   * Adds one failure in a single statement (concurrent failures never lose a
   * count); a streak older than `resetBefore` starts again at one. Returns the
   * new count.
   */
  async addFailure(key: string, now: number, resetBefore: number): Promise<number> {
    const row = await this.db
      .insertInto('login_throttle')
      .values({ key, failures: 1, last_failure_at: now, blocked_until: 0, succeeded_at: null })
      .onConflict((oc) => oc.column('key').doUpdateSet((eb) => ({
        failures: eb.case().when('login_throttle.last_failure_at', '<', resetBefore).then(1).else(eb('login_throttle.failures', '+', 1)).end(),
        last_failure_at: now,
      })))
      .returning('failures')
      .executeTakeFirstOrThrow();
    return Number(row.failures);
  }

  async block(key: string, until: number): Promise<void> {
    await this.db.updateTable('login_throttle').set({ blocked_until: until }).where('key', '=', key).where('blocked_until', '<', until).execute();
  }

  /** A success clears the pair's streak and remembers the address as known. */
  async markSuccess(key: string, now: number): Promise<void> {
    await this.#markSuccess(this.db, key, now);
  }

  /** Forgets streaks that ended long ago, except pairs still remembered as known addresses. */
  async sweep(failuresBefore: number, knownBefore: number): Promise<number> {
    const result = await this.db
      .deleteFrom('login_throttle')
      .where('last_failure_at', '<', failuresBefore)
      .where('blocked_until', '<', failuresBefore)
      .where((eb) => eb.or([eb('succeeded_at', 'is', null), eb('succeeded_at', '<', knownBefore)]))
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
