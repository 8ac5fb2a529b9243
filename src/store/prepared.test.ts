import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { createPgSchema, type PgSchema } from '../../test/helpers/pg.js';
import { openStore, type Store } from './db.js';
import { preparedQuery } from './prepared.js';

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

    test('refuses a build that ignores a placeholder', async () => {
      const broken = preparedQuery(store.db, 1, () => store.db.selectFrom('t').select('n'));
      await assert.rejects(broken('x'), TypeError);
    });
  });
}
