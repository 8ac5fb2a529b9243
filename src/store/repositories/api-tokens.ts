import type { Kysely, Transaction } from 'kysely';
import { preparedQuery } from '../prepared.js';
import { holdUserRow } from './users.js';
import type { ApiTokenTable, MainDB } from '../schema.js';

export type ApiTokenRow = ApiTokenTable;
type Executor = Kysely<MainDB> | Transaction<MainDB>;

/** A token joined with its owner's account state: what authenticating a request needs. */
export interface ApiTokenWithOwner extends ApiTokenRow {
  user_status: string;
}

/** API tokens: looked up by their HMAC only, never by the raw value. */
export class ApiTokenRepository {
  readonly #findByHash: (tokenHash: string) => Promise<ApiTokenWithOwner[]>;
  readonly #findById: (id: string) => Promise<ApiTokenWithOwner[]>;

  constructor(private readonly db: Kysely<MainDB>, private readonly postgres = false) {
    // Compiled once: these run on every token-authenticated request.
    this.#findByHash = preparedQuery<ApiTokenWithOwner, [string]>(db, 1, (hash) => this.#withOwner().where('api_tokens.token_hash', '=', hash));
    this.#findById = preparedQuery<ApiTokenWithOwner, [string]>(db, 1, (id) => this.#withOwner().where('api_tokens.id', '=', id));
  }

  #withOwner() {
    return this.db
      .selectFrom('api_tokens')
      .innerJoin('users', 'users.id', 'api_tokens.user_id')
      .selectAll('api_tokens')
      .select('users.status as user_status');
  }

  async insert(row: ApiTokenRow, executor: Executor = this.db): Promise<void> {
    await executor.insertInto('api_tokens').values(row).execute();
  }

  /** One indexed read (unique token_hash) joined with the owner. */
  async findByHash(tokenHash: string): Promise<ApiTokenWithOwner | undefined> {
    return (await this.#findByHash(tokenHash))[0];
  }

  /** By public id (an access JWT's `tid`), joined with the owner. */
  async findById(id: string): Promise<ApiTokenWithOwner | undefined> {
    return (await this.#findById(id))[0];
  }

  /** Tokens not revoked (expired ones included, so their owner sees them end). */
  async listForUser(userId: string): Promise<ApiTokenRow[]> {
    return this.db
      .selectFrom('api_tokens')
      .selectAll()
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .orderBy('created_at', 'desc')
      .execute();
  }

  /**
   * How many of the user's tokens are neither revoked nor expired at `now`, counted for
   * the creation cap inside the creating transaction. On PostgreSQL the user's row is
   * locked first, until that transaction ends: under READ COMMITTED concurrent creations
   * by one user would otherwise all count the same number and all insert. FOR NO KEY
   * UPDATE queues the creators on each other yet lets other transactions insert rows
   * referencing the user (their foreign-key check takes FOR KEY SHARE, which FOR UPDATE
   * would block). SQLite needs no lock: its transactions are serializable.
   */
  async countLiveForUserHeld(userId: string, now: number, trx: Transaction<MainDB>): Promise<number> {
    await holdUserRow(trx, userId, this.postgres);
    const row = await trx
      .selectFrom('api_tokens')
      .select((eb) => eb.fn.countAll<number | string>().as('count'))
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
      .executeTakeFirstOrThrow();
    return Number(row.count);
  }

  /**
   * Records a use, at most once per `throttleMs` per token: the condition makes
   * concurrent requests of a hot token write once. Returns whether it wrote.
   */
  async touch(id: string, now: number, ipEnc: string | null, throttleMs: number): Promise<boolean> {
    const result = await this.db
      .updateTable('api_tokens')
      .set({ last_used_at: now, last_used_ip_enc: ipEnc })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<=', now - throttleMs)]))
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Revokes one token of the user (scoped by owner: another user's id answers like a missing one). */
  async revoke(userId: string, id: string, now: number, reason: string, executor: Executor = this.db): Promise<boolean> {
    const result = await this.#revokeLive(executor, userId, now, reason).where('id', '=', id).executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Revokes the user's live tokens bound to one org; returns their ids. */
  async revokeAllForUserInOrg(userId: string, orgId: string, now: number, reason: string, executor: Executor): Promise<string[]> {
    const rows = await this.#revokeLive(executor, userId, now, reason).where('org_id', '=', orgId).returning('id').execute();
    return rows.map((row) => row.id);
  }

  async revokeAllForUser(userId: string, now: number, reason: string, executor: Executor = this.db): Promise<number> {
    const result = await this.#revokeLive(executor, userId, now, reason).executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /** Live tokens (neither revoked nor expired at `now`) with their stored HMAC, for the key retirement's count. */
  async listLive(now: number, executor: Executor = this.db): Promise<Array<Pick<ApiTokenRow, 'id' | 'user_id' | 'org_id' | 'token_hash'>>> {
    return executor.selectFrom('api_tokens').select(['id', 'user_id', 'org_id', 'token_hash'])
      .where('revoked_at', 'is', null)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
      .orderBy('id')
      .execute();
  }

  /** Revokes these tokens (those still unrevoked) in one statement; returns the ids it revoked. */
  async revokeByIds(ids: readonly string[], now: number, reason: string, executor: Executor): Promise<string[]> {
    if (ids.length === 0) return [];
    const rows = await executor.updateTable('api_tokens').set({ revoked_at: now, revoked_reason: reason })
      .where('id', 'in', ids).where('revoked_at', 'is', null).returning('id').execute();
    return rows.map((row) => row.id);
  }

  /** The revocation of the user's live (not yet revoked) tokens; callers narrow it further. */
  #revokeLive(executor: Executor, userId: string, now: number, reason: string) {
    return executor
      .updateTable('api_tokens')
      .set({ revoked_at: now, revoked_reason: reason })
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null);
  }
}
