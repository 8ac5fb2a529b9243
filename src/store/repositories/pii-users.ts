import type { Kysely } from 'kysely';
import type { PiiDB, PiiUserTable } from '../schema.js';

export type PiiUserRow = PiiUserTable;

/** The only SQL that touches personal data. */
export class PiiUserRepository {
  constructor(private readonly db: Kysely<PiiDB>) {}

  async insert(row: PiiUserRow): Promise<void> {
    await this.db.insertInto('pii_users').values(row).execute();
  }

  async findByUserId(userId: string): Promise<PiiUserRow | undefined> {
    return this.db.selectFrom('pii_users').selectAll().where('user_id', '=', userId).executeTakeFirst();
  }

  async findByEmailIndex(emailIndex: string): Promise<PiiUserRow | undefined> {
    return this.db.selectFrom('pii_users').selectAll().where('email_index', '=', emailIndex).executeTakeFirst();
  }

  async update(userId: string, changes: Partial<Omit<PiiUserRow, 'user_id'>>): Promise<void> {
    await this.db.updateTable('pii_users').set(changes).where('user_id', '=', userId).execute();
  }

  /** Deletes the row and with it the wrapped data key: the data becomes unrecoverable. */
  async delete(userId: string): Promise<void> {
    await this.db.deleteFrom('pii_users').where('user_id', '=', userId).execute();
  }
}
