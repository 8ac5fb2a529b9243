import type { Compilable, CompiledQuery, Kysely, QueryResult } from 'kysely';

/** Where a statement runs: the store itself or a transaction of it. */
export interface QueryRunner {
  executeQuery<R>(query: CompiledQuery<R>): Promise<QueryResult<R>>;
}

/**
 * A statement built and compiled by Kysely once, then executed with new
 * parameters on the store or inside a transaction: for the statements of every
 * request and every login, building and compiling the query each time cost
 * several times the SQLite statement itself.
 *
 * `build` receives placeholder values; whatever positions Kysely gives them in
 * the compiled SQL, each run substitutes the real parameters there, and any
 * constant the query itself carries stays in place.
 */
export function preparedStatement<Row, Params extends readonly unknown[]>(
  arity: Params['length'],
  build: (...placeholders: string[]) => Compilable<Row>,
): (runner: QueryRunner, ...params: Params) => Promise<QueryResult<Row>> {
  let compiled: CompiledQuery<Row> | null = null;
  const sentinels = Array.from({ length: arity }, (_, i) => `\u0000rampart-param-${i}\u0000`);
  let positions: Array<number | null> = [];
  return async (runner, ...params) => {
    if (!compiled) {
      const candidate = build(...sentinels).compile();
      positions = candidate.parameters.map((value) => {
        const index = sentinels.indexOf(value as string);
        return index === -1 ? null : index;
      });
      if (sentinels.some((_, i) => !positions.includes(i))) throw new TypeError('preparedStatement: every placeholder must be used');
      compiled = candidate;
    }
    const parameters = positions.map((position, i) => (position === null ? compiled!.parameters[i] : params[position]));
    return runner.executeQuery<Row>({ ...compiled, parameters });
  };
}

/** A prepared read on the store itself; resolves to its rows. */
export function preparedQuery<Row, Params extends readonly unknown[]>(
  db: Kysely<any>,
  arity: Params['length'],
  build: (...placeholders: string[]) => Compilable<Row>,
): (...params: Params) => Promise<Row[]> {
  const statement = preparedStatement<Row, Params>(arity, build);
  return async (...params) => (await statement(db, ...params)).rows;
}

/**
 * A prepared single-row INSERT of exactly `columns` into `table`. A row that lacks
 * one of them (a column left to its default) or carries another goes through the
 * query builder instead, so the statement never differs from `insertInto(table).values(row)`.
 */
export function preparedInsert<Row extends object>(
  table: string,
  columns: ReadonlyArray<keyof Row & string>,
): (runner: QueryRunner & Pick<Kysely<any>, 'insertInto'>, row: Row) => Promise<void> {
  let statement: ((runner: QueryRunner, ...params: unknown[]) => Promise<QueryResult<unknown>>) | null = null;
  return async (runner, row) => {
    const record = row as Record<string, unknown>;
    if (Object.keys(record).length !== columns.length || columns.some((column) => record[column] === undefined)) {
      await runner.insertInto(table).values(record).execute();
      return;
    }
    statement ??= preparedStatement<unknown, unknown[]>(columns.length, (...placeholders) =>
      runner.insertInto(table).values(Object.fromEntries(columns.map((column, i) => [column, placeholders[i]]))));
    await statement(runner, ...columns.map((column) => record[column]));
  };
}
