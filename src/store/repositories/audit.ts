import type { Kysely, Transaction } from 'kysely';
import type { AuditEventTable, AuditHeadTable, MainDB } from '../schema.js';

export type AuditEventRow = AuditEventTable;
export type AuditHeadRow = AuditHeadTable;
type Executor = Kysely<MainDB> | Transaction<MainDB>;

export interface AuditQuery {
  orgId?: string;
  userId?: string;
  action?: string;
  actorId?: string;
  /** Only events with a larger seq (keyset paging). */
  afterSeq?: number;
  /** Only events with a smaller seq (newest-first paging). */
  beforeSeq?: number;
  /** Only events up to this seq (a stable end for streams and verification). */
  maxSeq?: number;
  limit: number;
  order?: 'asc' | 'desc';
}

/** The audit table: append, read in seq order, prune behind an anchor. No update exists. */
export class AuditRepository {
  constructor(private readonly db: Kysely<MainDB>) {}

  /**
   * Reserves `count` sequence numbers by moving the head forward. This UPDATE is
   * the first write of the append, so it takes the head row's lock (PostgreSQL)
   * or the database write lock (SQLite) until the transaction ends: concurrent
   * appenders, in this process or another, queue here and chain in order.
   * Returns the last reserved seq and the hash the first new event links to.
   */
  async reserve(count: number, trx: Transaction<MainDB>): Promise<{ lastSeq: number; prevHash: string }> {
    const row = await trx
      .updateTable('audit_head')
      .set((eb) => ({ seq: eb('seq', '+', count) }))
      .where('id', '=', 1)
      .returning(['seq', 'hash'])
      .executeTakeFirstOrThrow();
    return { lastSeq: Number(row.seq), prevHash: row.hash };
  }

  async insert(rows: AuditEventRow[], trx: Transaction<MainDB>): Promise<void> {
    await trx.insertInto('audit_events').values(rows).execute();
  }

  async setHeadHash(hash: string, trx: Transaction<MainDB>): Promise<void> {
    await trx.updateTable('audit_head').set({ hash }).where('id', '=', 1).execute();
  }

  async head(executor: Executor = this.db): Promise<AuditHeadRow> {
    const row = await executor.selectFrom('audit_head').selectAll().where('id', '=', 1).executeTakeFirstOrThrow();
    return { ...row, seq: Number(row.seq), first_seq: Number(row.first_seq) };
  }

  async find(query: AuditQuery, executor: Executor = this.db): Promise<AuditEventRow[]> {
    let select = executor.selectFrom('audit_events').selectAll();
    if (query.orgId !== undefined) select = select.where('org_id', '=', query.orgId);
    if (query.userId !== undefined) select = select.where('user_id', '=', query.userId);
    if (query.action !== undefined) select = select.where('action', '=', query.action);
    if (query.actorId !== undefined) select = select.where('actor_id', '=', query.actorId);
    if (query.afterSeq !== undefined) select = select.where('seq', '>', query.afterSeq);
    if (query.beforeSeq !== undefined) select = select.where('seq', '<', query.beforeSeq);
    if (query.maxSeq !== undefined) select = select.where('seq', '<=', query.maxSeq);
    const rows = await select.orderBy('seq', query.order ?? 'asc').limit(query.limit).execute();
    return rows.map((row) => ({ ...row, seq: Number(row.seq), time: Number(row.time) }));
  }

  async countOlderThan(time: number, executor: Executor = this.db): Promise<{ count: number; lastSeq: number | null }> {
    const row = await executor
      .selectFrom('audit_events')
      .select((eb) => [eb.fn.countAll<number>().as('count'), eb.fn.max('seq').as('last_seq')])
      .where('time', '<', time)
      .executeTakeFirstOrThrow();
    return { count: Number(row.count), lastSeq: row.last_seq === null ? null : Number(row.last_seq) };
  }

  /**
   * Deletes every event up to and including `lastSeq` and anchors the chain at
   * the first kept event. The permit row lets the append-only trigger allow the
   * DELETE for this transaction only (other transactions never see it).
   */
  async pruneThrough(lastSeq: number, trx: Transaction<MainDB>): Promise<{ deleted: number; anchor: { seq: number; prevHash: string } }> {
    const last = await trx.selectFrom('audit_events').select(['seq', 'hash']).where('seq', '=', lastSeq).executeTakeFirstOrThrow();
    await trx.insertInto('audit_prune_permit').values({ id: 1 }).execute();
    const result = await trx.deleteFrom('audit_events').where('seq', '<=', lastSeq).executeTakeFirst();
    await trx.deleteFrom('audit_prune_permit').execute();
    const anchor = { seq: lastSeq + 1, prevHash: last.hash };
    await trx.updateTable('audit_head').set({ first_seq: anchor.seq, first_prev_hash: anchor.prevHash }).where('id', '=', 1).execute();
    return { deleted: Number(result.numDeletedRows), anchor };
  }
}
