/**
 * Switching MFA_REQUIRED_FOR_ALL on or off changes who may sign in without a
 * second factor: an attacker with operator access who quietly switches it off
 * (and back on) must leave a trace in the hash-chained audit log, not only a
 * start-up log line. The `serve` start that changes the `server_settings` row
 * records one `server_setting.changed` event in the same transaction; a start
 * with an unchanged value records none.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { SecurityEvents } from '../../src/events/security-events.js';
import { deploymentMfaSince, MFA_REQUIRED_FOR_ALL_SINCE } from '../../src/policy/deployment-mfa.js';
import { ServerSettingRepository } from '../../src/store/repositories/server-settings.js';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { createPgSchema, type PgSchema } from '../helpers/pg.js';

const HOUR = 3_600_000;
const ON = { MFA_REQUIRED_FOR_ALL: 'true' };

for (const store of ['sqlite', 'postgres'] as const) describe(`MFA_REQUIRED_FOR_ALL changes are audited (${store})`, () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-test-mfa-all-audit-'));
  const clock = new ManualClock(Date.now());
  /** The same stores across restarts: on PostgreSQL, schemas this file owns. */
  const storeEnv: Record<string, string> = {};
  const schemas: PgSchema[] = [];
  before(async () => {
    if (store === 'postgres') {
      schemas.push(await createPgSchema('main'), await createPgSchema('pii'));
      storeEnv['DATABASE_URL'] = schemas[0]!.url;
      storeEnv['PII_DATABASE_URL'] = schemas[1]!.url;
    }
  });
  after(async () => {
    for (const schema of schemas) await schema.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function withServer<T>(env: Record<string, string>, run: (t: TestServer) => Promise<T>): Promise<T> {
    const t = await startTestServer({ dataDir, clock, env: { ...storeEnv, ...env } });
    try {
      return await run(t);
    } finally {
      await t.close({ keepData: true });
    }
  }

  async function settingChanges(t: TestServer) {
    const rows = await t.server.services.stores.main.db.selectFrom('audit_events').select(['seq', 'actor_type', 'details', 'time'])
      .where('action', '=', 'server_setting.changed').orderBy('seq').execute();
    return rows.map((row) => ({ ...row, details: JSON.parse(row.details) as Record<string, unknown> }));
  }

  test('off then on records one event; the same value again records none; off records one', async () => {
    await withServer({}, async (t) => {
      assert.deepEqual(await settingChanges(t), [], 'off on a fresh deployment: nothing changed');
    });

    clock.advance(HOUR);
    const switchedOn = clock.now();
    await withServer(ON, async (t) => {
      const changes = await settingChanges(t);
      assert.equal(changes.length, 1, 'switched on: one event');
      assert.equal(changes[0]!.actor_type, 'system');
      assert.deepEqual(changes[0]!.details, { setting: 'MFA_REQUIRED_FOR_ALL', enabled: true, since: new Date(switchedOn).toISOString() });
      assert.equal(Number(changes[0]!.time), switchedOn);
      assert.equal((await t.server.services.audit.verify()).valid, true, 'in the hash chain');
    });

    clock.advance(HOUR);
    await withServer(ON, async (t) => {
      assert.equal((await settingChanges(t)).length, 1, 'on again: no new event');
    });

    clock.advance(HOUR);
    await withServer({}, async (t) => {
      const changes = await settingChanges(t);
      assert.equal(changes.length, 2, 'switched off: one more event');
      assert.deepEqual(changes[1]!.details, { setting: 'MFA_REQUIRED_FOR_ALL', enabled: false });
    });
    await withServer({}, async (t) => {
      assert.equal((await settingChanges(t)).length, 2, 'off again: no new event');
      assert.equal((await t.server.services.audit.verify()).valid, true);
    });
  });

  test('the setting and its event commit together: an event that cannot be recorded leaves the setting as it was', async () => {
    await withServer({}, async (t) => {
      const db = t.server.services.stores.main.db;
      const settings = new ServerSettingRepository(db);
      const failing = new SecurityEvents(clock);
      failing.addSink({
        record() {
          throw new Error('audit append failed');
        },
      });
      await assert.rejects(deploymentMfaSince({ mfaRequiredForAll: true }, settings, clock, { record: true, db, events: failing }), /audit append failed/);
      assert.equal(await settings.get(MFA_REQUIRED_FOR_ALL_SINCE), null, 'not switched on without its event');

      await deploymentMfaSince({ mfaRequiredForAll: true }, settings, clock, { record: true, db, events: t.server.services.events });
      assert.equal(await settings.get(MFA_REQUIRED_FOR_ALL_SINCE), String(clock.now()));
      await assert.rejects(deploymentMfaSince({ mfaRequiredForAll: false }, settings, clock, { record: true, db, events: failing }), /audit append failed/);
      assert.equal(await settings.get(MFA_REQUIRED_FOR_ALL_SINCE), String(clock.now()), 'not switched off without its event');
      assert.equal((await settingChanges(t)).length, 3, 'only the switch that committed was recorded');
    });
  });
});
