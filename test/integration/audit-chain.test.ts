import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import type { SecurityEventInput } from '../../src/events/security-events.js';
import type { Services } from '../../src/services.js';
import { signUp, startTestServer, strongPassword, type StoreKind, type TestServer } from '../helpers/harness.js';
import { Resources } from '../helpers/resources.js';
import { rampartWith } from '../helpers/cli.js';
import { startTestServices, type TestServices } from '../helpers/services.js';

const BIN = new URL('../../bin/rampart.js', import.meta.url).pathname;

/** Runs the real CLI (`rampart audit verify`) against the same stores. */
function cliVerify(env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, 'audit', 'verify'], { env: { PATH: process.env.PATH, ...env } }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

function event(n: number): SecurityEventInput {
  return {
    action: 'session.revoked', actor: { type: 'user', id: `usr_${n}` }, target: { type: 'session', id: `ses_${n}` },
    origin: { ip: `10.0.0.${n % 250}`, userAgent: 'test-agent' }, outcome: 'success', details: { reason: 'test', n },
  };
}

/** Half the events inside a transaction of another write, half on their own, all at once. */
async function recordConcurrently(services: Services, count: number): Promise<void> {
  await Promise.all(Array.from({ length: count }, (_, n) => n % 2 === 0
    ? services.events.record(event(n))
    : services.stores.main.db.transaction().execute((trx) => services.events.record(event(n), trx))));
}

async function allRows(services: Services) {
  return services.stores.main.db.selectFrom('audit_events').select(['seq', 'prev_hash', 'hash', 'action', 'request_id']).orderBy('seq').execute();
}

for (const store of ['sqlite', 'postgres'] as const satisfies readonly StoreKind[]) {
  describe(`audit chain on ${store}`, () => {
    let t: TestServer;
    let s: TestServices;
    const open = new Resources();
    before(async () => {
      // One after the other: with Promise.all, a failure of one start would leave the other unclosed.
      t = open.add(await startTestServer({ store }), (server) => server.close());
      s = open.add(await startTestServices({ store }), (services) => services.close());
    });
    after(() => open.close());

    test('events from concurrent requests chain in order and verify', async () => {
      const { email, password } = await signUp(t, 'audit');
      const logins = Array.from({ length: 12 }, (_, n) =>
        t.client().post('/v1/login', { email, password: n % 2 === 0 ? password : strongPassword() }));
      const [responses] = await Promise.all([Promise.all(logins), recordConcurrently(t.server.services, 40)]);
      assert.deepEqual(responses.map((r) => r.status).sort(), [...Array(6).fill(200), ...Array(6).fill(401)]);

      const rows = await allRows(t.server.services);
      assert.deepEqual(rows.map((row) => Number(row.seq)), rows.map((_, i) => i + 1), 'gapless sequence');
      for (let i = 1; i < rows.length; i++) assert.equal(rows[i]!.prev_hash, rows[i - 1]!.hash, `seq ${i + 1} links to seq ${i}`);
      assert.equal(rows.filter((row) => row.action === 'login.succeeded').length, 6);
      assert.equal(rows.filter((row) => row.action === 'login.failed').length, 6);
      assert.ok(rows.filter((row) => row.action.startsWith('login.')).every((row) => row.request_id), 'events of a request carry its id');

      const result = await t.server.services.audit.verify();
      assert.equal(result.valid, true, JSON.stringify(result.broken));
      assert.equal(result.count, rows.length);
    });

    test('`rampart audit export --after SEQ` ships the events after SEQ as NDJSON, each linking to the one before, for a separate log store (ASVS V16.4.3)', async () => {
      await recordConcurrently(t.server.services, 6);
      const exportAll = await rampartWith(t.env, 'audit', 'export');
      assert.equal(exportAll.code, 0, exportAll.stderr);
      const events = exportAll.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { seq: number; prevHash: string; hash: string; ip: string | null });
      const rows = await allRows(t.server.services);
      assert.deepEqual(events.map((e) => e.seq), rows.map((row) => Number(row.seq)), 'every event, oldest first');
      for (let i = 1; i < events.length; i++) assert.equal(events[i]!.prevHash, events[i - 1]!.hash, `seq ${events[i]!.seq} links to the one before`);
      assert.ok(events.some((e) => e.ip === '10.0.0.1'), 'fields are opened, as the org export gives them');
      // The next shipment starts after the last one shipped and continues its chain.
      const last = events[events.length - 3]!;
      const next = await rampartWith(t.env, 'audit', 'export', '--after', String(last.seq));
      const shipped = next.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { seq: number; prevHash: string });
      assert.deepEqual(shipped.map((e) => e.seq), events.slice(-2).map((e) => e.seq));
      assert.equal(shipped[0]!.prevHash, last.hash);
      assert.equal((await rampartWith(t.env, 'audit', 'export', '--after', '-1')).code, 1);
    });

    test('the database refuses updates and deletes of events', async () => {
      await s.services.events.record(event(1));
      const db = s.services.stores.main.db;
      await assert.rejects(db.updateTable('audit_events').set({ outcome: 'failure' }).execute(), /append-only/);
      await assert.rejects(db.deleteFrom('audit_events').execute(), /append-only/);
      if (store === 'postgres') await assert.rejects(sql`truncate audit_events`.execute(db), /append-only/);
    });

    test('altering or deleting one row makes `rampart audit verify` fail and name it', async () => {
      const { services } = s;
      for (let n = 0; n < 6; n++) await services.events.record(event(n));
      const db = services.stores.main.db;
      const valid = await cliVerify(s.env);
      assert.equal(valid.code, 0, valid.stderr);
      assert.match(valid.stdout, /audit chain valid: 7 events/);

      // An attacker with database access first removes the append-only triggers.
      if (store === 'postgres') {
        await sql`drop trigger audit_events_append_only on audit_events`.execute(db);
      } else {
        await sql`drop trigger audit_events_no_update`.execute(db);
        await sql`drop trigger audit_events_no_delete`.execute(db);
      }
      const victim = await db.selectFrom('audit_events').select(['id', 'details']).where('seq', '=', 4).executeTakeFirstOrThrow();
      await db.updateTable('audit_events').set({ details: '{"n":99,"reason":"test"}' }).where('seq', '=', 4).execute();
      const altered = await cliVerify(s.env);
      assert.equal(altered.code, 1);
      assert.equal(altered.stderr.trim(), `rampart: audit chain broken at seq 4 (${victim.id}): the hash does not match the event's content`);

      // Restoring the row restores the chain.
      await db.updateTable('audit_events').set({ details: victim.details }).where('seq', '=', 4).execute();
      assert.equal((await services.audit.verify()).valid, true);
      // Deleting the newest event is caught by the head; deleting one in the middle by the gap.
      await db.deleteFrom('audit_events').where('seq', '=', 7).execute();
      assert.deepEqual((await services.audit.verify()).broken, { seq: 7, id: null, reason: 'event 7 is missing (the head is at 7)' });
      await db.deleteFrom('audit_events').where('seq', '=', 3).execute();
      const deleted = await cliVerify(s.env);
      assert.equal(deleted.code, 1);
      assert.equal(deleted.stderr.trim(), 'rampart: audit chain broken at seq 3: event 3 is missing');
    });

    test('get(seq) returns that one event, decrypted, and null past the head', async () => {
      await s.services.events.record(event(7));
      const last = await s.services.stores.main.db.selectFrom('audit_events').select(['seq', 'id', 'action']).orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow();
      const got = await s.services.audit.get(Number(last.seq));
      assert.ok(got);
      assert.equal(got.id, last.id);
      assert.equal(got.seq, Number(last.seq));
      assert.equal(got.action, 'session.revoked');
      assert.equal(got.ip, '10.0.0.7', 'the address is decrypted');
      assert.equal(await s.services.audit.get(Number(last.seq) + 1), null);
    });
  });
}

test('two server instances on one PostgreSQL append one valid chain', async () => {
  // Registered as soon as each exists: if B fails to start, A is still closed (else the file hangs).
  const open = new Resources();
  try {
    const a = open.add(await startTestServer({ store: 'postgres' }), (server) => server.close());
    const { databaseUrl, piiDatabaseUrl } = a.server.services.config;
    const b = open.add(
      await startTestServer({ dataDir: a.dataDir, env: { DATABASE_URL: databaseUrl!, PII_DATABASE_URL: piiDatabaseUrl! } }),
      (server) => server.close({ keepData: true }),
    );
    const { email } = await signUp(a, 'two');
    const failures = [a, b, a, b, a, b].map((server) => server.client().post('/v1/login', { email, password: strongPassword() }));
    await Promise.all([...failures, recordConcurrently(a.server.services, 60), recordConcurrently(b.server.services, 60)]);
    const rows = await allRows(a.server.services);
    assert.equal(rows.length, 2 + 6 + 120);
    assert.deepEqual(rows.map((row) => Number(row.seq)), rows.map((_, i) => i + 1));
    const [fromA, fromB] = await Promise.all([a.server.services.audit.verify(), b.server.services.audit.verify()]);
    assert.equal(fromA.valid, true, JSON.stringify(fromA.broken));
    assert.deepEqual(fromB, fromA);
  } finally {
    await open.close();
  }
});

test('retention pruning deletes a prefix, anchors the chain and records itself', async () => {
  const s = await startTestServices();
  try {
    for (let n = 0; n < 5; n++) await s.services.events.record(event(n));
    s.clock.advance(40 * 86_400_000);
    for (let n = 5; n < 8; n++) await s.services.events.record(event(n));
    const pruned = await s.services.audit.prune(s.clock.now() - 30 * 86_400_000, { type: 'system', id: null });
    assert.deepEqual(pruned, { deleted: 5, firstSeq: 6 });
    const result = await s.services.audit.verify();
    assert.equal(result.valid, true, JSON.stringify(result.broken));
    assert.equal(result.count, 4, 'three kept events and the audit.pruned record');
    const { events } = await s.services.audit.list({ limit: 10 });
    assert.equal(events[0]!.seq, 6);
    assert.equal(events.at(-1)!.action, 'audit.pruned');
    const head = await s.services.stores.main.db.selectFrom('audit_head').select('first_prev_hash').executeTakeFirstOrThrow();
    assert.equal(events.at(-1)!.details['anchorHash'], head.first_prev_hash);
  } finally {
    await s.close();
  }
});
