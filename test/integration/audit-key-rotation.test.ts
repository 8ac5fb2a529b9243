import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { AUDIT_KEY_REFRESH_MS } from '../../src/audit/field-keys.js';
import type { SecurityEventInput } from '../../src/events/security-events.js';
import type { StoreKind } from '../helpers/harness.js';
import { rampartWith } from '../helpers/cli.js';
import { Resources } from '../helpers/resources.js';
import { startTestServices, type TestServices } from '../helpers/services.js';

function event(ip: string, userAgent: string): SecurityEventInput {
  return {
    action: 'session.revoked', actor: { type: 'user', id: 'usr_rot' }, target: { type: 'session', id: 'ses_rot' },
    origin: { ip, userAgent }, outcome: 'success', details: { reason: 'test' },
  };
}

for (const store of ['sqlite', 'postgres'] as const satisfies readonly StoreKind[]) {
  describe(`audit key rotation on ${store}`, () => {
    let s: TestServices;
    const open = new Resources();
    before(async () => {
      s = open.add(await startTestServices({ store }), (services) => services.close());
    });
    after(() => open.close());

    const stored = (id: string) => s.services.stores.main.db.selectFrom('audit_events').select(['seq', 'id', 'ip_enc', 'user_agent_enc']).where('id', '=', id).executeTakeFirstOrThrow();
    const newest = async () => (await s.services.audit.latest({ limit: 1 })).events[0]!;

    test('`rampart keys rotate-audit` adds a version that a running server seals with within a minute; every version still opens', async () => {
      const { services, clock } = s;
      await services.events.record(event('198.51.100.1', 'Before/1.0'));
      const before = await newest();
      const beforeRow = await stored(before.id);
      assert.match(beforeRow.ip_enc!, /^k1\./);
      assert.match(beforeRow.user_agent_enc!, /^k1\./);
      assert.ok(!beforeRow.ip_enc!.includes('198.51.100.1'));

      const rotated = await rampartWith(s.env, 'keys', 'rotate-audit');
      assert.equal(rotated.code, 0, rotated.stderr);
      assert.match(rotated.stdout, /^audit key rotated: new events are sealed under version 2;/);
      const rotation = await newest();
      assert.equal(rotation.action, 'audit_key.rotated');
      assert.deepEqual(rotation.target, { type: 'audit_key', id: '2' });
      const keyring = await services.stores.main.db.selectFrom('keyring').select(['version', 'wrapped_key']).where('purpose', '=', 'audit').orderBy('version').execute();
      assert.deepEqual(keyring.map((row) => Number(row.version)), [1, 2]);
      assert.notEqual(keyring[0]!.wrapped_key, keyring[1]!.wrapped_key);

      // This server read version 1 less than a minute ago: it keeps sealing with it …
      await services.events.record(event('198.51.100.2', 'Soon/1.0'));
      assert.match((await stored((await newest()).id)).ip_enc!, /^k1\./);
      // … and takes version 2 once the minute has passed.
      clock.advance(AUDIT_KEY_REFRESH_MS);
      await services.events.record(event('198.51.100.3', 'After/2.0'));
      const after = await newest();
      const afterRow = await stored(after.id);
      assert.match(afterRow.ip_enc!, /^k2\./);
      assert.match(afterRow.user_agent_enc!, /^k2\./);

      // Every event opens, whichever version sealed it; the chain holds.
      const read = await services.audit.get(Number(beforeRow.seq));
      assert.equal(read?.ip, '198.51.100.1');
      assert.equal(read?.userAgent, 'Before/1.0');
      assert.equal(after.ip, '198.51.100.3');
      assert.equal(after.userAgent, 'After/2.0');
      assert.equal((await services.audit.verify()).valid, true);
      const verified = await rampartWith(s.env, 'audit', 'verify');
      assert.equal(verified.code, 0, verified.stderr);

      // A second rotation from another process: version 3, the older ones kept.
      assert.match((await rampartWith(s.env, 'keys', 'rotate-audit')).stdout, /version 3;/);
      clock.advance(AUDIT_KEY_REFRESH_MS);
      await services.events.record(event('198.51.100.4', 'Third/3.0'));
      assert.match((await stored((await newest()).id)).ip_enc!, /^k3\./);
      assert.equal((await services.audit.verify()).valid, true);
    });

    test('master-key rotation re-wraps every version of the audit key, more than one page of keyring rows, before the old master key is retired', async () => {
      const { services, clock } = s;
      // More versions than one page of the re-wrap's walk (500 rows), the newest in use.
      let version = 0;
      for (let i = 0; i < 510; i++) version = await services.keyring.rotate('audit');
      clock.advance(AUDIT_KEY_REFRESH_MS);
      await services.events.record(event('203.0.113.77', 'Late/9.0'));
      assert.match((await stored((await newest()).id)).ip_enc!, new RegExp(`^k${version}\\.`));

      const rotated = await rampartWith(s.env, 'keys', 'rotate-master');
      assert.equal(rotated.code, 0, rotated.stderr);
      const retired = await rampartWith(s.env, 'keys', 'rotate-master', '--retire');
      assert.equal(retired.code, 0, retired.stderr);
      const wrappedBy = new Set((await services.stores.main.db.selectFrom('keyring').select('wrapped_key').execute()).map((row) => row.wrapped_key.split('.')[0]));
      assert.equal(wrappedBy.size, 1, 'every keyring row is wrapped by the one master key left');
      // A new process, with only the new master key, opens every event (verify decrypts each).
      const verified = await rampartWith(s.env, 'audit', 'verify');
      assert.equal(verified.code, 0, verified.stderr);
      assert.match(verified.stdout, /audit chain valid/);
    });

    test('a field relabelled with another version, or copied from another event, does not open: the event reads as damaged and verify names it', async () => {
      const { services, clock } = s;
      clock.advance(AUDIT_KEY_REFRESH_MS);
      await services.events.record(event('192.0.2.10', 'Victim/1.0'));
      const victim = await stored((await newest()).id);
      await services.events.record(event('192.0.2.11', 'Other/1.0'));
      const other = await stored((await newest()).id);
      const db = services.stores.main.db;
      // An attacker with database access first removes the append-only triggers.
      if (store === 'postgres') {
        await sql`drop trigger audit_events_append_only on audit_events`.execute(db);
      } else {
        await sql`drop trigger audit_events_no_update`.execute(db);
        await sql`drop trigger audit_events_no_delete`.execute(db);
      }
      const damaged = `the encrypted address or user agent does not decrypt`;
      for (const forged of [victim.ip_enc!.replace(/^k\d+\./, 'k1.'), other.ip_enc!]) {
        await db.updateTable('audit_events').set({ ip_enc: forged }).where('id', '=', victim.id).execute();
        const result = await services.audit.verify();
        assert.equal(result.valid, false);
        assert.deepEqual(result.broken, { seq: Number(victim.seq), id: victim.id, reason: damaged });
        const listed = await services.audit.get(Number(victim.seq));
        assert.equal(listed?.ip, null, 'no address is made up');
      }
      await db.updateTable('audit_events').set({ ip_enc: victim.ip_enc }).where('id', '=', victim.id).execute();
      assert.equal((await services.audit.verify()).valid, true, 'restored, the chain holds again');
    });
  });
}
