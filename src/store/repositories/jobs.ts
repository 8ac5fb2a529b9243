import type { Kysely, Transaction } from 'kysely';
import { preparedInsert, preparedStatement } from '../prepared.js';
import type { JobTable, MainDB } from '../schema.js';

export type JobRow = JobTable;
type Executor = Kysely<MainDB> | Transaction<MainDB>;

/** The durable job queue: enqueue in the caller's transaction, claim with a lease, finish or reschedule. */
export class JobRepository {
  // The worker's statements, compiled once (see prepared.ts).
  readonly #claim = preparedStatement<JobRow, [number, number, number]>(3, (now, leaseUntil, limit) => this.db
    .updateTable('jobs')
    .set((eb) => ({ locked_until: leaseUntil as unknown as number, attempts: eb('attempts', '+', 1) }))
    .where('id', 'in', (eb) => {
      const due = eb.selectFrom('jobs').select('id')
        .where('failed_at', 'is', null)
        .where('run_at', '<=', now as unknown as number)
        .where('locked_until', '<=', now as unknown as number)
        .orderBy('run_at')
        .limit(limit as unknown as number);
      return this.postgres ? due.forUpdate().skipLocked() : due;
    })
    .returningAll());
  readonly #completeOne = preparedStatement<never, [string]>(1, (id) => this.db.deleteFrom('jobs').where('id', '=', id));
  readonly #insertOne = preparedInsert<JobRow>('jobs', ['id', 'kind', 'payload', 'ref', 'run_at', 'attempts', 'locked_until', 'last_error', 'failed_at', 'created_at']);

  constructor(private readonly db: Kysely<MainDB>, private readonly postgres: boolean) {}

  async insert(rows: JobRow[], executor: Executor = this.db): Promise<void> {
    if (rows.length === 1) return this.#insertOne(executor, rows[0]!);
    for (let i = 0; i < rows.length; i += 500) await executor.insertInto('jobs').values(rows.slice(i, i + 500)).execute();
  }

  /**
   * Takes up to `limit` due jobs and leases them until `leaseUntil`, in one
   * statement. On PostgreSQL `FOR UPDATE SKIP LOCKED` lets several instances
   * claim side by side without taking the same job; SQLite has one writer.
   */
  async claim(now: number, leaseUntil: number, limit: number): Promise<JobRow[]> {
    const { rows } = await this.#claim(this.db, now, leaseUntil, limit);
    return rows.map((row) => ({ ...row, run_at: Number(row.run_at), locked_until: Number(row.locked_until), created_at: Number(row.created_at) }))
      .sort((a, b) => a.run_at - b.run_at || a.created_at - b.created_at);
  }

  /** Deletes finished jobs: one statement for up to 500 of them. */
  async complete(ids: readonly string[]): Promise<void> {
    if (ids.length === 1) {
      await this.#completeOne(this.db, ids[0]!);
      return;
    }
    for (let i = 0; i < ids.length; i += 500) await this.db.deleteFrom('jobs').where('id', 'in', ids.slice(i, i + 500)).execute();
  }

  async reschedule(id: string, runAt: number, error: string): Promise<void> {
    await this.db.updateTable('jobs').set({ run_at: runAt, locked_until: 0, last_error: error }).where('id', '=', id).execute();
  }

  /** Per ref: jobs waiting to run (or run again), and jobs that gave up. */
  async countByRef(refs: readonly string[]): Promise<Map<string, { pending: number; abandoned: number }>> {
    const counts = new Map<string, { pending: number; abandoned: number }>();
    if (refs.length === 0) return counts;
    for (const state of ['pending', 'abandoned'] as const) {
      const rows = await this.db.selectFrom('jobs')
        .select((eb) => ['ref', eb.fn.countAll<number | string>().as('count')])
        .where('ref', 'in', [...refs])
        .where('failed_at', state === 'pending' ? 'is' : 'is not', null)
        .groupBy('ref')
        .execute();
      for (const row of rows) {
        const entry = counts.get(row.ref!) ?? { pending: 0, abandoned: 0 };
        entry[state] = Number(row.count);
        counts.set(row.ref!, entry);
      }
    }
    return counts;
  }

  /** Runs the jobs of `ref` that gave up again, from their first attempt, now; returns how many. */
  async requeueFailedByRef(ref: string, now: number, executor: Executor = this.db): Promise<number> {
    const result = await executor.updateTable('jobs')
      .set({ failed_at: null, attempts: 0, run_at: now, locked_until: 0, last_error: null })
      .where('ref', '=', ref).where('failed_at', 'is not', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  async giveUp(id: string, now: number, error: string): Promise<void> {
    await this.db.updateTable('jobs').set({ failed_at: now, locked_until: 0, last_error: error }).where('id', '=', id).execute();
  }

  async deleteByRef(ref: string, executor: Executor = this.db): Promise<number> {
    const result = await executor.deleteFrom('jobs').where('ref', '=', ref).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async list(kind?: string): Promise<JobRow[]> {
    let query = this.db.selectFrom('jobs').selectAll();
    if (kind) query = query.where('kind', '=', kind);
    return query.orderBy('created_at').execute();
  }

  async sweepFailed(before: number): Promise<number> {
    const result = await this.db.deleteFrom('jobs').where('failed_at', '<', before).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
