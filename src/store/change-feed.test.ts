import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { sql } from 'kysely';
import { createPgSchema, type PgSchema } from '../../test/helpers/pg.js';
import { EXTERNAL_POLL_INTERVAL_MS, type StoreChange } from './change-feed.js';
import { openStore, type Store } from './db.js';
import { preparedInsert, preparedStatement } from './prepared.js';

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`ChangeFeed (${kind})`, () => {
    let store: Store<any>;
    let dir: string;
    let schema: PgSchema | null = null;
    const seen: StoreChange[] = [];
    let unsubscribe: () => void = () => undefined;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'feed-'));
      if (kind === 'postgres') schema = await createPgSchema('feed');
      store = openStore(schema?.url ?? null, join(dir, 'x.db'));
      await store.db.schema.createTable('t').addColumn('id', 'text', (c) => c.primaryKey()).addColumn('a', 'integer').addColumn('b', 'integer').execute();
      await store.db.schema.createTable('u').addColumn('id', 'text', (c) => c.primaryKey()).execute();
      unsubscribe = store.changes.subscribe((change) => seen.push(change));
    });
    afterEach(() => {
      seen.length = 0;
    });
    after(async () => {
      unsubscribe();
      await store.db.destroy();
      await schema?.drop();
      rmSync(dir, { recursive: true, force: true });
    });

    test('trusted only on an embedded SQLite file (other instances write to a PostgreSQL store unseen)', () => {
      assert.equal(store.changes.trusted, kind === 'sqlite');
    });

    test('reads announce nothing; each write announces its table, kind and updated columns once it is committed', async () => {
      await store.db.selectFrom('t').selectAll().execute();
      assert.deepEqual(seen, []);
      await store.db.insertInto('t').values({ id: 'r1', a: 1, b: 1 }).execute();
      assert.deepEqual(seen, [[{ table: 't', kind: 'insert', columns: null }]]);
      await store.db.updateTable('t').set({ a: 2 }).where('id', '=', 'r1').execute();
      await store.db.updateTable('t as x').set({ a: 3, b: 3 }).where('x.id', '=', 'r1').execute();
      await store.db.deleteFrom('t').where('id', '=', 'r1').execute();
      assert.deepEqual(seen.slice(1), [
        [{ table: 't', kind: 'update', columns: ['a'] }],
        [{ table: 't', kind: 'update', columns: ['a', 'b'] }],
        [{ table: 't', kind: 'delete', columns: null }],
      ]);
    });

    test('a statement that changed no row announces nothing', async () => {
      await store.db.updateTable('t').set({ a: 1 }).where('id', '=', 'nobody').execute();
      await store.db.deleteFrom('t').where('id', '=', 'nobody').execute();
      assert.deepEqual(seen, []);
    });

    test('an upsert announces an update of any column', async () => {
      await store.db.insertInto('u').values({ id: 'k' }).onConflict((c) => c.column('id').doNothing()).execute();
      assert.deepEqual(seen, [[{ table: 'u', kind: 'update', columns: null }]]);
    });

    test('inside a transaction nothing is announced before COMMIT, everything at it; a ROLLBACK announces nothing', async () => {
      await store.db.transaction().execute(async (trx) => {
        await trx.insertInto('t').values({ id: 'r2', a: 1, b: 1 }).execute();
        await trx.updateTable('t').set({ b: 2 }).where('id', '=', 'r2').execute();
        assert.deepEqual(seen, [], 'not before the commit');
      });
      assert.deepEqual(seen, [[{ table: 't', kind: 'insert', columns: null }, { table: 't', kind: 'update', columns: ['b'] }]]);
      seen.length = 0;
      await assert.rejects(store.db.transaction().execute(async (trx) => {
        await trx.deleteFrom('t').where('id', '=', 'r2').execute();
        throw new Error('abandon');
      }), /abandon/);
      assert.deepEqual(seen, []);
      assert.equal((await store.db.selectFrom('t').select('id').where('id', '=', 'r2').execute()).length, 1, 'the delete was rolled back');
    });

    test('prepared statements are classified like built ones, inside and outside transactions', async () => {
      const insert = preparedInsert<{ id: string; a: number; b: number }>('t', ['id', 'a', 'b']);
      const setA = preparedStatement<never, [number, string]>(2, (a, id) => store.db.updateTable('t').set({ a: a as unknown as number }).where('id', '=', id));
      await insert(store.db, { id: 'p1', a: 1, b: 1 });
      await store.db.transaction().execute(async (trx) => {
        await setA(trx, 5, 'p1');
      });
      assert.deepEqual(seen, [[{ table: 't', kind: 'insert', columns: null }], [{ table: 't', kind: 'update', columns: ['a'] }]]);
    });

    test('a statement with a common table expression announces anything (a CTE may write)', async () => {
      await store.db.with('x', (db) => db.selectFrom('t').select('id')).selectFrom('x').selectAll().execute();
      assert.deepEqual(seen, ['anything']);
    });

    test('a write that fails is announced all the same (its effect is unknown when the answer is lost)', async () => {
      await store.db.insertInto('u').values({ id: 'dup' }).execute();
      seen.length = 0;
      await assert.rejects(store.db.insertInto('u').values({ id: 'dup' }).execute());
      assert.deepEqual(seen, [[{ table: 'u', kind: 'insert', columns: null }]]);
    });

    test('raw SQL that writes announces anything; raw reads announce nothing', async () => {
      await sql`select count(*) from t`.execute(store.db);
      assert.deepEqual(seen, []);
      await sql`update t set b = b + 1`.execute(store.db);
      assert.deepEqual(seen, ['anything']);
    });

    if (kind === 'sqlite') {
      const nextPoll = () => new Promise((resolve) => setTimeout(resolve, EXTERNAL_POLL_INTERVAL_MS + 1));

      test('a write by another connection (another process) is announced as anything at the next poll, and only once', async () => {
        await nextPoll();
        const askedAt = performance.now();
        store.changes.poll();
        assert.deepEqual(seen, []);
        const other = new Database(join(dir, 'x.db'));
        try {
          other.prepare('delete from t').run();
        } finally {
          other.close();
        }
        // Only meaningful while still inside the interval (a loaded machine may take longer than
        // EXTERNAL_POLL_INTERVAL_MS to open, write and close the other connection).
        const stillInside = performance.now() - askedAt < EXTERNAL_POLL_INTERVAL_MS;
        store.changes.poll();
        if (stillInside) assert.deepEqual(seen, [], 'asked at most once per interval: this one already asked');
        await nextPoll();
        store.changes.poll();
        await nextPoll();
        store.changes.poll();
        assert.deepEqual(seen, ['anything']);
      });

      test('this process\'s own writes do not trip the poll (they are announced precisely)', async () => {
        await nextPoll();
        store.changes.poll();
        await store.db.insertInto('t').values({ id: 'own', a: 1, b: 1 }).execute();
        seen.length = 0;
        await nextPoll();
        store.changes.poll();
        assert.deepEqual(seen, []);
      });
    }
  });
}
