import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { createPgSchema, type PgSchema } from '../../test/helpers/pg.js';
import { openStore, type Store } from './db.js';
import { preparedInsert, preparedQuery, preparedStatement } from './prepared.js';

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`preparedQuery (${kind})`, () => {
    let store: Store<any>;
    let dir: string;
    let schema: PgSchema | null = null;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'prepared-'));
      if (kind === 'postgres') schema = await createPgSchema('prep');
      store = openStore(schema?.url ?? null, join(dir, 'x.db'));
      await sql`create table t (a text, b text, n integer)`.execute(store.db);
      await sql`insert into t values ('x', 'y', 1), ('x', 'z', 2), ('w', 'y', 3)`.execute(store.db);
    });
    after(async () => {
      await store.db.destroy();
      await schema?.drop();
      rmSync(dir, { recursive: true, force: true });
    });

    test('substitutes parameters by placeholder, whatever their order, and keeps constants', async () => {
      const find = preparedQuery<{ n: number }, [string, string]>(store.db, 2, (a, b) =>
        store.db.selectFrom('t').select('n').where('b', '=', b).where('n', '<', 3).where('a', '=', a).orderBy('n'));
      assert.deepEqual((await find('x', 'y')).map((r) => Number(r.n)), [1]);
      assert.deepEqual((await find('x', 'z')).map((r) => Number(r.n)), [2]);
      assert.deepEqual((await find('w', 'y')).map((r) => Number(r.n)), [], 'the constant n < 3 still applies');
      assert.deepEqual(await find("x' or '1'='1", 'y'), [], 'values stay bound parameters');
    });

    test('a prepared statement runs inside a transaction, and rolls back with it', async () => {
      const bump = preparedStatement<never, [number, string]>(2, (by, a) =>
        store.db.updateTable('t').set((eb) => ({ n: eb('n', '+', by as unknown as number) })).where('a', '=', a));
      await store.db.transaction().execute(async (trx) => {
        await bump(trx, 10, 'w');
        assert.equal(Number((await trx.selectFrom('t').select('n').where('a', '=', 'w').executeTakeFirstOrThrow()).n), 13, 'seen inside');
      });
      await assert.rejects(store.db.transaction().execute(async (trx) => {
        await bump(trx, 100, 'w');
        throw new Error('abort');
      }));
      assert.equal(Number((await store.db.selectFrom('t').select('n').where('a', '=', 'w').executeTakeFirstOrThrow()).n), 13, 'rolled back');
      await bump(store.db, -10, 'w');
    });

    test('a prepared insert stores exactly the row; a row with a missing or extra column takes the builder', async () => {
      await sql`create table ins (k text primary key, v text, n integer default 7)`.execute(store.db);
      const insert = preparedInsert<{ k: string; v: string | null; n: number }>('ins', ['k', 'v', 'n']);
      await insert(store.db, { k: 'a', v: 'x', n: 1 });
      await insert(store.db, { k: 'b', v: null, n: 2 });
      await insert(store.db, { k: 'c', v: 'z' } as never);
      await assert.rejects(insert(store.db, { k: 'd', v: 'w', n: 3, extra: 1 } as never));
      const rows = await store.db.selectFrom('ins').selectAll().orderBy('k').execute();
      assert.deepEqual(rows.map((r) => [r.k, r.v, Number(r.n)]), [['a', 'x', 1], ['b', null, 2], ['c', 'z', 7]]);
    });

    test('refuses a build that ignores a placeholder', async () => {
      const broken = preparedQuery(store.db, 1, () => store.db.selectFrom('t').select('n'));
      await assert.rejects(broken('x'), TypeError);
    });
  });
}
