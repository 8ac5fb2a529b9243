import { type Kysely, sql, type Transaction } from 'kysely';
import { preparedInsert, preparedStatement } from '../prepared.js';
import type { AuditEventTable, AuditHeadTable, MainDB } from '../schema.js';

export type AuditEventRow = AuditEventTable;
export type AuditHeadRow = AuditHeadTable;
type Executor = Kysely<MainDB> | Transaction<MainDB>;
const INSERT_CHUNK = 500;

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
  // The statements of every append, compiled once (see prepared.ts).
  readonly #reserve = preparedStatement<{ seq: number; hash: string }, [number]>(1, (count) =>
    this.db.updateTable('audit_head').set((eb) => ({ seq: eb('seq', '+', count as unknown as number) })).where('id', '=', 1).returning(['seq', 'hash']));
  readonly #setHeadHash = preparedStatement<never, [string]>(1, (hash) => this.db.updateTable('audit_head').set({ hash }).where('id', '=', 1));
  readonly #insertOne = preparedInsert<AuditEventRow>('audit_events', ['seq', 'id', 'time', 'org_id', 'actor_type', 'actor_id', 'action', 'target_type', 'target_id', 'user_id', 'ip_enc', 'user_agent_enc', 'outcome', 'details', 'request_id', 'prev_hash', 'hash']);
  readonly #orgsOfUser = preparedStatement<{ user_id: string; org_id: string }, [string]>(1, (userId) =>
    this.db.selectFrom('org_memberships').select(['user_id', 'org_id']).where('user_id', '=', userId));
  // One event by its seq (the primary key): every login's alert job and every webhook fan-out reads one.
  readonly #bySeq = preparedStatement<AuditEventRow, [number]>(1, (seq) =>
    this.db.selectFrom('audit_events').selectAll().where('seq', '=', seq as unknown as number));

  constructor(private readonly db: Kysely<MainDB>) {}

  /**
   * Reserves `count` sequence numbers by moving the head forward. This UPDATE is
   * the first write of the append, so it takes the head row's lock (PostgreSQL)
   * or the database write lock (SQLite) until the transaction ends: concurrent
   * appenders, in this process or another, queue here and chain in order.
   * Lock order (ARCHITECTURE.md "Lock order"): this lock comes last; a transaction
   * takes every user or org row lock it needs before its first append, or it can
   * deadlock with one that holds such a row and waits here.
   * Returns the last reserved seq and the hash the first new event links to.
   */
  async reserve(count: number, trx: Transaction<MainDB>): Promise<{ lastSeq: number; prevHash: string }> {
    const row = (await this.#reserve(trx, count)).rows[0];
    if (!row) throw new Error('audit: the chain head row is missing');
    return { lastSeq: Number(row.seq), prevHash: row.hash };
  }

  async insert(rows: AuditEventRow[], trx: Transaction<MainDB>): Promise<void> {
    if (rows.length === 1) return this.#insertOne(trx, rows[0]!);
    // Multi-row inserts within SQLite's bound-parameter limit (17 columns a row).
    for (let i = 0; i < rows.length; i += INSERT_CHUNK) await trx.insertInto('audit_events').values(rows.slice(i, i + INSERT_CHUNK)).execute();
  }

  async setHeadHash(hash: string, trx: Transaction<MainDB>): Promise<void> {
    await this.#setHeadHash(trx, hash);
  }

  async head(executor: Executor = this.db): Promise<AuditHeadRow> {
    const row = await executor.selectFrom('audit_head').selectAll().where('id', '=', 1).executeTakeFirstOrThrow();
    return { ...row, seq: Number(row.seq), first_seq: Number(row.first_seq) };
  }

  /** The event with this seq, or undefined (pruned, or never appended). */
  async findBySeq(seq: number): Promise<AuditEventRow | undefined> {
    const [row] = (await this.#bySeq(this.db, seq)).rows;
    return row && { ...row, seq: Number(row.seq), time: Number(row.time) };
  }

  async find(query: AuditQuery, executor: Executor = this.db): Promise<AuditEventRow[]> {
    let select = query.orgId === undefined
      ? executor.selectFrom('audit_events as e').selectAll('e')
      // An org sees the events linked to it (its own, and its members' while they were members).
      : executor.selectFrom('audit_event_orgs as l').innerJoin('audit_events as e', 'e.seq', 'l.seq').selectAll('e').where('l.org_id', '=', query.orgId);
    // Range conditions on the column the index orders by: l.seq for an org, e.seq otherwise.
    const seqColumn = sql.ref<number>(query.orgId === undefined ? 'e.seq' : 'l.seq');
    if (query.userId !== undefined) select = select.where('e.user_id', '=', query.userId);
    if (query.action !== undefined) select = select.where('e.action', '=', query.action);
    if (query.actorId !== undefined) select = select.where('e.actor_id', '=', query.actorId);
    if (query.afterSeq !== undefined) select = select.where(seqColumn, '>', query.afterSeq);
    if (query.beforeSeq !== undefined) select = select.where(seqColumn, '<', query.beforeSeq);
    if (query.maxSeq !== undefined) select = select.where(seqColumn, '<=', query.maxSeq);
    const rows = await select.orderBy(seqColumn, query.order === 'desc' ? 'desc' : 'asc').limit(query.limit).execute();
    return rows.map((row) => ({ ...row, seq: Number(row.seq), time: Number(row.time) }));
  }

  /** The orgs each of these users belongs to now (read inside the appending transaction). */
  async orgsOfUsers(userIds: readonly string[], trx: Transaction<MainDB>): Promise<Map<string, string[]>> {
    const byUser = new Map<string, string[]>();
    if (userIds.length === 0) return byUser;
    const rows = userIds.length === 1
      ? (await this.#orgsOfUser(trx, userIds[0]!)).rows
      : await trx.selectFrom('org_memberships').select(['user_id', 'org_id']).where('user_id', 'in', [...userIds]).execute();
    for (const row of rows) byUser.set(row.user_id, [...(byUser.get(row.user_id) ?? []), row.org_id]);
    return byUser;
  }

  async insertOrgLinks(links: Array<{ org_id: string; seq: number }>, trx: Transaction<MainDB>): Promise<void> {
    for (let i = 0; i < links.length; i += INSERT_CHUNK) await trx.insertInto('audit_event_orgs').values(links.slice(i, i + INSERT_CHUNK)).execute();
  }

  async countForOrg(orgId: string, fromSeq: number, toSeq: number, executor: Executor = this.db): Promise<number> {
    const row = await executor
      .selectFrom('audit_event_orgs')
      .select((eb) => eb.fn.countAll<number>().as('count'))
      .where('org_id', '=', orgId)
      .where('seq', '>=', fromSeq)
      .where('seq', '<=', toSeq)
      .executeTakeFirstOrThrow();
    return Number(row.count);
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
    await trx.deleteFrom('audit_event_orgs').where('seq', '<=', lastSeq).execute();
    const anchor = { seq: lastSeq + 1, prevHash: last.hash };
    await trx.updateTable('audit_head').set({ first_seq: anchor.seq, first_prev_hash: anchor.prevHash }).where('id', '=', 1).execute();
    return { deleted: Number(result.numDeletedRows), anchor };
  }
}
