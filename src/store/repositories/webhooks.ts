import type { Kysely, Transaction } from 'kysely';
import type { MainDB, WebhookTable } from '../schema.js';

export type WebhookRow = WebhookTable;
type Executor = Kysely<MainDB> | Transaction<MainDB>;

/** Webhooks, always looked up within their org. */
export class WebhookRepository {
  constructor(private readonly db: Kysely<MainDB>, private readonly postgres = false) {}

  async insert(row: WebhookRow, trx: Executor = this.db): Promise<void> {
    await trx.insertInto('webhooks').values(row).execute();
  }

  async listForOrg(orgId: string, executor: Executor = this.db): Promise<WebhookRow[]> {
    return executor.selectFrom('webhooks').selectAll().where('org_id', '=', orgId).orderBy('created_at').execute();
  }

  /**
   * How many webhooks the org has, counted for the cap inside the creating transaction.
   * On PostgreSQL the org's row is locked first, until that transaction ends: under READ
   * COMMITTED concurrent creations would otherwise all count the same number and all
   * insert. FOR NO KEY UPDATE queues the creators on each other yet lets other
   * transactions insert rows referencing the org (memberships, invitations). SQLite
   * needs no lock: its transactions are serializable.
   */
  async countForOrgHeld(orgId: string, trx: Transaction<MainDB>): Promise<number> {
    if (this.postgres) await trx.selectFrom('orgs').select('id').where('id', '=', orgId).forNoKeyUpdate().execute();
    const row = await trx.selectFrom('webhooks').select((eb) => eb.fn.countAll<number | string>().as('count')).where('org_id', '=', orgId).executeTakeFirstOrThrow();
    return Number(row.count);
  }

  async find(orgId: string, id: string, executor: Executor = this.db): Promise<WebhookRow | undefined> {
    return executor.selectFrom('webhooks').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
  }

  async findById(id: string): Promise<WebhookRow | undefined> {
    return this.db.selectFrom('webhooks').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async forOrgs(orgIds: readonly string[], trx: Executor): Promise<WebhookRow[]> {
    if (orgIds.length === 0) return [];
    return trx.selectFrom('webhooks').selectAll().where('org_id', 'in', [...orgIds]).execute();
  }

  async delete(orgId: string, id: string, trx: Executor): Promise<boolean> {
    const result = await trx.deleteFrom('webhooks').where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  /** A delivery reached the receiver. */
  async recordDelivered(id: string, at: number): Promise<void> {
    await this.db.updateTable('webhooks').set({ last_delivered_at: at }).where('id', '=', id).execute();
  }

  /** A delivery attempt failed, for the reason given (and the receiver's status, if it answered). */
  async recordFailed(id: string, at: number, reason: string, status: number | null): Promise<void> {
    await this.db.updateTable('webhooks').set({ last_failed_at: at, last_failure_reason: reason, last_failure_status: status }).where('id', '=', id).execute();
  }

  /** Every webhook's id and sealed secrets (key rotation). */
  async allSecrets(trx: Executor): Promise<Array<Pick<WebhookRow, 'id' | 'secret_enc' | 'previous_secret_enc'>>> {
    return trx.selectFrom('webhooks').select(['id', 'secret_enc', 'previous_secret_enc']).orderBy('id').execute();
  }

  /** Replaces a sealed secret only if it is still the one read (a concurrent delete or rotation wins). */
  async replaceSecret(id: string, previous: string, sealed: string, trx: Executor): Promise<boolean> {
    const result = await trx.updateTable('webhooks').set({ secret_enc: sealed }).where('id', '=', id).where('secret_enc', '=', previous).executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** Re-seals the previous secret of a rollover, only if it is still the one read. */
  async replacePreviousSecret(id: string, previous: string, sealed: string, trx: Executor): Promise<boolean> {
    const result = await trx.updateTable('webhooks').set({ previous_secret_enc: sealed }).where('id', '=', id).where('previous_secret_enc', '=', previous).executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** A rollover: the new secret becomes current, the one it replaces signs beside it until `previousExpiresAt` (none when null). */
  async rollSecret(orgId: string, id: string, current: string, sealed: string, previous: string | null, previousExpiresAt: number | null, trx: Executor): Promise<boolean> {
    const result = await trx.updateTable('webhooks')
      .set({ secret_enc: sealed, previous_secret_enc: previous, previous_secret_expires_at: previousExpiresAt })
      .where('org_id', '=', orgId).where('id', '=', id).where('secret_enc', '=', current)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }
}
