import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { hmacSha256 } from '../../src/crypto/hash.js';
import { normalizeEmail } from '../../src/pii/pii-service.js';
import { signUp, startTestServer, type StoreKind, type TestServer } from '../helpers/harness.js';
import { rampartWith } from '../helpers/cli.js';
import { Resources } from '../helpers/resources.js';

/**
 * A store error other than the unique index's, met while re-keying a row, stops
 * `rampart keys rotate-blind-index` (exit 1, naming the error): it is not counted as a
 * collision, the row keeps an index that finds its address, and a re-run completes.
 * The fault is a real one: a trigger in the PII store refusing that one row's update.
 */
for (const store of ['sqlite', 'postgres'] as const satisfies readonly StoreKind[]) {
  describe(`email blind-index re-keying meets a store fault on ${store}`, () => {
    let t: TestServer;
    const open = new Resources();
    before(async () => {
      t = open.add(await startTestServer({ store }), (server) => server.close());
    });
    after(() => open.close());

    const piiDb = () => t.server.services.stores.pii.db;
    const indexes = async () => new Map((await piiDb().selectFrom('pii_users').select(['user_id', 'email_index']).execute()).map((row) => [row.user_id, row.email_index]));
    const login = (email: string, password: string) => t.client().post('/v1/login', { email, password });

    async function refuseUpdatesOf(userId: string): Promise<void> {
      if (store === 'sqlite') {
        await sql.raw(`CREATE TRIGGER rekey_fault BEFORE UPDATE OF email_index ON pii_users WHEN old.user_id = '${userId}' BEGIN SELECT RAISE(ABORT, 'disk says no'); END`).execute(piiDb());
      } else {
        // 58030 io_error: anything but 23505 unique_violation.
        await sql.raw(`CREATE FUNCTION rekey_fault() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk says no' USING ERRCODE = '58030'; END $$`).execute(piiDb());
        await sql.raw(`CREATE TRIGGER rekey_fault BEFORE UPDATE OF email_index ON pii_users FOR EACH ROW WHEN (old.user_id = '${userId}') EXECUTE FUNCTION rekey_fault()`).execute(piiDb());
      }
    }

    async function removeFault(): Promise<void> {
      if (store === 'sqlite') {
        await sql.raw('DROP TRIGGER rekey_fault').execute(piiDb());
      } else {
        await sql.raw('DROP TRIGGER rekey_fault ON pii_users').execute(piiDb());
        await sql.raw('DROP FUNCTION rekey_fault()').execute(piiDb());
      }
    }

    test('a non-unique error stops the run, is not counted as a collision, leaves the row findable; a re-run completes', async () => {
      const users = [await signUp(t, 'fault-a'), await signUp(t, 'fault-b'), await signUp(t, 'fault-c')].sort((a, b) => (a.userId < b.userId ? -1 : 1));
      // Re-keying goes in user-id order: one row before the faulty one, one after it.
      const [first, faulty, last] = users as [typeof users[0], typeof users[0], typeof users[0]];
      const v1 = (await t.server.services.piiKeyring.keyAt('blind-index', 1))!;
      const before = await indexes();
      assert.equal(before.get(faulty.userId), hmacSha256(v1, `email:${normalizeEmail(faulty.email)}`));

      await refuseUpdatesOf(faulty.userId);
      const failed = await rampartWith(t.env, 'keys', 'rotate-blind-index');
      assert.equal(failed.code, 1, `${failed.stdout}${failed.stderr}`);
      assert.match(failed.stderr, /^rampart: .*disk says no/m, 'the failure is named');
      assert.doesNotMatch(`${failed.stdout}${failed.stderr}`, /collided/, 'the fault is not reported as a collision');
      assert.equal(failed.stdout, '', 'no summary: the run did not finish');
      const rotatedEvents = (await t.server.services.audit.latest({ limit: 20 })).events.filter((e) => e.action === 'blind_index_key.rotated');
      assert.deepEqual(rotatedEvents, [], 'no event claims a finished rotation (nor counts a conflict)');

      const v2 = (await t.server.services.piiKeyring.keyAt('blind-index', 2))!;
      assert.ok(v2, 'the failed run had added version 2');
      const afterFault = await indexes();
      assert.equal(afterFault.get(first.userId), `k2.${hmacSha256(v2, `email:${normalizeEmail(first.email)}`)}`, 'the row before the fault was re-keyed');
      assert.equal(afterFault.get(faulty.userId), before.get(faulty.userId), 'the refused row keeps its index');
      assert.equal(afterFault.get(last.userId), before.get(last.userId), 'the run stopped at the fault: the row after it was not re-keyed');
      // The running server still finds every address: the faulty row's and the one left behind under version 1, and the one re-keyed to version 2.
      for (const user of users) assert.equal((await login(user.email, user.password)).status, 200, `${user.email} logs in`);

      await removeFault();
      const rerun = await rampartWith(t.env, 'keys', 'rotate-blind-index');
      assert.equal(rerun.code, 0, rerun.stderr);
      assert.equal(rerun.stdout, `blind index key rotated: version 3; ${before.size} indexes re-keyed\n`);
      const v3 = (await t.server.services.piiKeyring.keyAt('blind-index', 3))!;
      const final = await indexes();
      assert.equal(final.size, before.size);
      for (const user of users) {
        assert.equal(final.get(user.userId), `k3.${hmacSha256(v3, `email:${normalizeEmail(user.email)}`)}`, 'every profile is under the new version');
      }
      const event = (await t.server.services.audit.latest({ limit: 20 })).events.find((e) => e.action === 'blind_index_key.rotated');
      assert.deepEqual(event?.details, { version: 3, reindexed: before.size, unreadable: 0, conflicts: 0 });
      for (const user of users) assert.equal((await login(user.email, user.password)).status, 200, `${user.email} logs in after the re-run`);
    });
  });
}
