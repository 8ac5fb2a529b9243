import type { Kysely, Transaction } from 'kysely';
import { preparedInsert, preparedQuery } from '../prepared.js';
import type { MainDB, SessionTable } from '../schema.js';

export type SessionRow = SessionTable;
type Executor = Kysely<MainDB> | Transaction<MainDB>;

/** A session joined with the owner's account state: what every authenticated request needs. */
export interface SessionWithUser extends SessionRow {
  user_status: string;
  user_mfa_enabled: number;
  user_email_verified: number;
  user_created_at: number;
  user_password_changed_at: number;
}

export class SessionRepository {
  readonly #findByIdHash: (idHash: string) => Promise<SessionWithUser[]>;
  readonly #findByPublicId: (publicId: string) => Promise<SessionWithUser[]>;
  readonly #insert: ReturnType<typeof preparedInsert<SessionRow>>;

  constructor(private readonly db: Kysely<MainDB>) {
    this.#findByIdHash = preparedQuery<SessionWithUser, [string]>(db, 1, (idHash) => this.#withUser().where('sessions.id_hash', '=', idHash));
    this.#findByPublicId = preparedQuery<SessionWithUser, [string]>(db, 1, (publicId) => this.#withUser().where('sessions.public_id', '=', publicId));
    this.#insert = preparedInsert<SessionRow>('sessions', ['id_hash', 'public_id', 'user_id', 'created_at', 'last_seen_at', 'expires_at', 'idle_timeout_ms', 'mfa_verified', 'mfa_method', 'reauth_at', 'ip_enc', 'user_agent_enc']);
  }

  async insert(row: SessionRow, executor: Executor = this.db): Promise<void> {
    await this.#insert(executor, row);
  }

  /** One indexed read (primary key) joined with the user row; runs on every authenticated request. */
  async findByIdHash(idHash: string): Promise<SessionWithUser | undefined> {
    return (await this.#findByIdHash(idHash))[0];
  }

  /** By public id (an access JWT's `sid`), joined with the user row. */
  async findByPublicId(publicId: string): Promise<SessionWithUser | undefined> {
    return (await this.#findByPublicId(publicId))[0];
  }

  #withUser() {
    return this.db
      .selectFrom('sessions')
      .innerJoin('users', 'users.id', 'sessions.user_id')
      .selectAll('sessions')
      .select([
        'users.status as user_status',
        'users.mfa_enabled as user_mfa_enabled',
        'users.email_verified as user_email_verified',
        'users.created_at as user_created_at',
        'users.password_changed_at as user_password_changed_at',
      ]);
  }

  async listForUser(userId: string): Promise<SessionRow[]> {
    return this.db.selectFrom('sessions').selectAll().where('user_id', '=', userId).orderBy('created_at', 'desc').execute();
  }

  async touch(idHash: string, lastSeenAt: number): Promise<void> {
    await this.db.updateTable('sessions').set({ last_seen_at: lastSeenAt }).where('id_hash', '=', idHash).execute();
  }

  async update(idHash: string, changes: Partial<Omit<SessionRow, 'id_hash' | 'public_id' | 'user_id'>>, executor: Executor = this.db): Promise<void> {
    await executor.updateTable('sessions').set(changes).where('id_hash', '=', idHash).execute();
  }

  /** Replaces the secret of a session (rotation); keeps its public id and history. */
  async rotateIdHash(oldIdHash: string, newIdHash: string, executor: Executor = this.db): Promise<boolean> {
    const result = await executor.updateTable('sessions').set({ id_hash: newIdHash }).where('id_hash', '=', oldIdHash).executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async deleteByIdHash(idHash: string, executor: Executor = this.db): Promise<boolean> {
    const result = await executor.deleteFrom('sessions').where('id_hash', '=', idHash).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async deleteByPublicId(userId: string, publicId: string, executor: Executor = this.db): Promise<boolean> {
    const result = await executor
      .deleteFrom('sessions')
      .where('user_id', '=', userId)
      .where('public_id', '=', publicId)
      .executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  /** Deletes every session of the user except `exceptIdHash`; returns how many. */
  async deleteAllForUser(userId: string, exceptIdHash: string | null = null, executor: Executor = this.db): Promise<number> {
    let query = executor.deleteFrom('sessions').where('user_id', '=', userId);
    if (exceptIdHash) query = query.where('id_hash', '!=', exceptIdHash);
    const result = await query.executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async deleteAll(executor: Executor = this.db): Promise<number> {
    const result = await executor.deleteFrom('sessions').executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async deleteExpired(now: number, executor: Executor = this.db): Promise<number> {
    const result = await executor.deleteFrom('sessions').where('expires_at', '<=', now).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
