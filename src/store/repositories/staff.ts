import type { Kysely, Transaction } from 'kysely';
import type { MainDB, StaffAssumptionTable, StaffRoleTable } from '../schema.js';

export type StaffRoleRow = StaffRoleTable;
export type StaffAssumptionRow = StaffAssumptionTable;
type Executor = Kysely<MainDB> | Transaction<MainDB>;

/** Staff role grants and assumptions: the only SQL of staff separation of roles. */
export class StaffRepository {
  constructor(private readonly db: Kysely<MainDB>, private readonly postgres = false) {}

  /** Inserts a grant; false when the user already holds the role. */
  async grant(row: StaffRoleRow, executor: Executor = this.db): Promise<boolean> {
    if (await this.holds(row.user_id, row.role, executor)) return false;
    await executor.insertInto('staff_roles').values(row).execute();
    return true;
  }

  async revoke(userId: string, role: string, executor: Executor = this.db): Promise<boolean> {
    const result = await executor.deleteFrom('staff_roles').where('user_id', '=', userId).where('role', '=', role).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async rolesOf(userId: string, executor: Executor = this.db): Promise<string[]> {
    const rows = await executor.selectFrom('staff_roles').select('role').where('user_id', '=', userId).orderBy('role').execute();
    return rows.map((row) => row.role);
  }

  async holds(userId: string, role: string, executor: Executor = this.db): Promise<boolean> {
    return (await this.#grantQuery(executor, userId, role).executeTakeFirst()) !== undefined;
  }

  #grantQuery(executor: Executor, userId: string, role: string) {
    return executor.selectFrom('staff_roles').select('role').where('user_id', '=', userId).where('role', '=', role);
  }

  /**
   * Whether the user holds the role, read inside the transaction about to act on
   * it. On PostgreSQL the grant row is share-locked until that transaction ends,
   * so a concurrent revocation waits for it (and then ends what it stored); on
   * SQLite the write transaction already serializes them.
   */
  async holdGrant(userId: string, role: string, trx: Transaction<MainDB>): Promise<boolean> {
    const query = this.#grantQuery(trx, userId, role);
    return (await (this.postgres ? query.forShare() : query).executeTakeFirst()) !== undefined;
  }

  async findAssumption(sessionPublicId: string, executor: Executor = this.db): Promise<StaffAssumptionRow | undefined> {
    return executor.selectFrom('staff_assumptions').selectAll().where('session_public_id', '=', sessionPublicId).executeTakeFirst();
  }

  async assumptionsOfUser(userId: string, executor: Executor = this.db): Promise<StaffAssumptionRow[]> {
    return executor.selectFrom('staff_assumptions').selectAll().where('user_id', '=', userId).execute();
  }

  async insertAssumption(row: StaffAssumptionRow, executor: Executor = this.db): Promise<void> {
    await executor.insertInto('staff_assumptions').values(row).execute();
  }

  async deleteAssumption(sessionPublicId: string, executor: Executor = this.db): Promise<StaffAssumptionRow | undefined> {
    const row = await this.findAssumption(sessionPublicId, executor);
    if (row) await executor.deleteFrom('staff_assumptions').where('session_public_id', '=', sessionPublicId).execute();
    return row;
  }

  /** Ends the user's live assumptions of one role (the role was revoked). */
  async deleteAssumptionsOfRole(userId: string, role: string, executor: Executor = this.db): Promise<number> {
    const result = await executor.deleteFrom('staff_assumptions').where('user_id', '=', userId).where('role', '=', role).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
