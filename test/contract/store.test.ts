/**
 * One storage contract, run against every backend: SQLite and real PostgreSQL
 * (each PostgreSQL run in its own schemas). Repositories must behave the same.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { ManualClock } from '../../src/clock.js';
import { Keyring } from '../../src/crypto/keyring.js';
import { StaticKeyProvider } from '../../src/crypto/key-provider.js';
import { normalizeEmail, PiiService } from '../../src/pii/pii-service.js';
import { openStores, type Stores } from '../../src/store/db.js';
import { isUniqueViolation } from '../../src/store/errors.js';
import { migrateStores } from '../../src/store/migrate.js';
import { JobRepository } from '../../src/store/repositories/jobs.js';
import { KnownValueRepository } from '../../src/store/repositories/known-values.js';
import { SessionRepository } from '../../src/store/repositories/sessions.js';
import { UserRepository } from '../../src/store/repositories/users.js';
import { createPgSchema, type PgSchema } from '../helpers/pg.js';

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`store contract (${kind})`, () => {
    let stores: Stores;
    let dataDir: string;
    const schemas: PgSchema[] = [];
    const keys = new StaticKeyProvider([{ id: 'k1', key: randomBytes(32) }]);
    const clock = new ManualClock(Date.UTC(2026, 10, 29));

    before(async () => {
      dataDir = mkdtempSync(join(tmpdir(), 'rampart-store-'));
      let databaseUrl: string | null = null;
      let piiDatabaseUrl: string | null = null;
      if (kind === 'postgres') {
        schemas.push(await createPgSchema('cmain'), await createPgSchema('cpii'));
        databaseUrl = schemas[0]!.url;
        piiDatabaseUrl = schemas[1]!.url;
      }
      stores = openStores({ dataDir, databaseUrl, piiDatabaseUrl });
      await migrateStores(stores);
    });
    after(async () => {
      await stores.close();
      for (const schema of schemas) await schema.drop();
      rmSync(dataDir, { recursive: true, force: true });
    });

    test('migrations are idempotent', async () => {
      const again = await migrateStores(stores);
      assert.deepEqual(again.map((r) => r.applied), [[], []]);
    });

    test('users: insert, read back with numeric times, update, unique ids', async () => {
      const users = new UserRepository(stores.main.db);
      const row = { id: 'usr_contract1', status: 'active', password_hash: '$argon2id$x', password_changed_at: clock.now(), email_verified: 0, mfa_enabled: 0, created_at: clock.now(), updated_at: clock.now() };
      await users.insert(row);
      const read = await users.findById('usr_contract1');
      assert.deepEqual(read, row);
      assert.equal(typeof read!.created_at, 'number', 'bigint columns come back as numbers');
      await users.update('usr_contract1', { status: 'locked' });
      assert.equal((await users.findById('usr_contract1'))!.status, 'locked');
      await assert.rejects(users.insert(row), (error) => isUniqueViolation(error));
      assert.equal(await users.findById('usr_missing'), undefined);
    });

    test('sessions: lookup by hash joins the user; rotation, scoped deletes and expiry sweeps', async () => {
      const users = new UserRepository(stores.main.db);
      const sessions = new SessionRepository(stores.main.db);
      const now = clock.now();
      for (const id of ['usr_s1', 'usr_s2']) {
        await users.insert({ id, status: 'active', password_hash: 'h', password_changed_at: now, email_verified: 0, mfa_enabled: 1, created_at: now, updated_at: now });
      }
      const base = { created_at: now, last_seen_at: now, idle_timeout_ms: 3_600_000, mfa_verified: 0, mfa_method: null, reauth_at: null, ip_enc: null, user_agent_enc: null };
      await sessions.insert({ ...base, id_hash: 'h1', public_id: 'ses_1', user_id: 'usr_s1', expires_at: now + 1000 });
      await sessions.insert({ ...base, id_hash: 'h2', public_id: 'ses_2', user_id: 'usr_s1', expires_at: now + 1000 });
      await sessions.insert({ ...base, id_hash: 'h3', public_id: 'ses_3', user_id: 'usr_s2', expires_at: now - 1 });
      const found = await sessions.findByIdHash('h1');
      assert.equal(found?.user_id, 'usr_s1');
      assert.equal(found?.user_status, 'active');
      assert.equal(found?.user_mfa_enabled, 1);
      assert.equal(await sessions.rotateIdHash('h1', 'h1b'), true);
      assert.equal(await sessions.findByIdHash('h1'), undefined);
      assert.equal((await sessions.findByIdHash('h1b'))?.public_id, 'ses_1');
      assert.equal(await sessions.rotateIdHash('nope', 'x'), false);
      assert.equal(await sessions.deleteByPublicId('usr_s2', 'ses_2'), false, 'scoped to the owner');
      assert.equal(await sessions.deleteAllForUser('usr_s1', 'h1b'), 1);
      assert.equal((await sessions.listForUser('usr_s1')).length, 1);
      assert.equal(await sessions.deleteExpired(now), 1);
      assert.equal((await sessions.listForUser('usr_s2')).length, 0);
      await users.delete('usr_s1');
      assert.equal(await sessions.findByIdHash('h1b'), undefined, 'sessions cascade with their user');
    });

    test('keyring: one key per purpose, shared by concurrent callers and instances', async () => {
      const a = new Keyring(stores.main.db, keys);
      const b = new Keyring(stores.main.db, keys);
      const [{ key: k1 }, { key: k2 }] = await Promise.all([a.current('contract-test'), b.current('contract-test')]);
      assert.deepEqual(k1, k2);
      assert.equal(k1.length, 32);
      assert.notDeepEqual((await a.current('another-purpose')).key, k1);
      const rows = await stores.main.db.selectFrom('keyring').selectAll().where('purpose', '=', 'contract-test').execute();
      assert.equal(rows.length, 1);
      assert.ok(!rows[0]!.wrapped_key.includes(k1.toString('base64url')), 'stored wrapped, not raw');
    });

    test('keyring versions: current creates version 1 once, rotate adds the next, keyAt opens each, deleted versions are gone', async () => {
      const a = new Keyring(stores.main.db, keys);
      const b = new Keyring(stores.main.db, keys);
      const [first, same] = await Promise.all([a.current('contract-rotating'), b.current('contract-rotating')]);
      assert.equal(first.version, 1);
      assert.deepEqual(same, first, 'concurrent instances agree on version 1');
      assert.deepEqual(await a.keyAt('contract-rotating', 1), first.key, 'keyAt(1) is version 1 of the same purpose');
      assert.equal(await b.rotate('contract-rotating'), 2);
      const second = await a.current('contract-rotating');
      assert.equal(second.version, 2, 'another instance sees the rotation at its next read');
      assert.notDeepEqual(second.key, first.key);
      assert.deepEqual(await b.keyAt('contract-rotating', 1), first.key);
      assert.deepEqual((await a.versionsOf('contract-rotating')).map((v) => v.version), [2, 1]);
      assert.equal(await a.deleteVersionsBelow('contract-rotating', 2), 1);
      assert.equal(await a.keyAt('contract-rotating', 1), null, 'a deleted version no longer opens, even from the memo');
      assert.deepEqual(await a.keyAt('contract-rotating', 2), second.key);
    });

    test('PII: encrypted profile, blind-index lookup in any case, crypto-shredding', async () => {
      const pii = new PiiService(stores.pii, keys, new Keyring(stores.pii.db, keys), clock);
      const profile = await pii.createProfile('usr_p1', 'Mixed.Case@Example.COM', 'Ada Lovelace');
      assert.equal(profile.email, 'Mixed.Case@Example.COM');
      assert.equal(await pii.findUserIdByEmail('mixed.case@example.com'), 'usr_p1');
      assert.equal(await pii.findUserIdByEmail('  MIXED.CASE@EXAMPLE.COM '), 'usr_p1');
      assert.equal(await pii.findUserIdByEmail('other@example.com'), null);
      const read = await pii.getProfile('usr_p1');
      assert.equal(read?.name, 'Ada Lovelace');
      await assert.rejects(pii.createProfile('usr_p2', 'mixed.case@example.com', null), (error) => isUniqueViolation(error));
      const row = await stores.pii.db.selectFrom('pii_users').selectAll().where('user_id', '=', 'usr_p1').executeTakeFirstOrThrow();
      assert.ok(!JSON.stringify(row).toLowerCase().includes('mixed.case'));
      assert.notEqual(row.email_index, normalizeEmail('Mixed.Case@Example.COM'));
      await pii.deleteProfile('usr_p1');
      assert.equal(await pii.getProfile('usr_p1'), null);
      assert.equal(await pii.findUserIdByEmail('mixed.case@example.com'), null);
    });

    test('known values: the insert decides what is new; the first of a kind is told apart; a sighting is written at most hourly', async () => {
      const known = new KnownValueRepository(stores.pii.db);
      const pii = new PiiService(stores.pii, keys, new Keyring(stores.pii.db, keys), clock);
      await pii.createProfile('usr_k1', 'known.one@example.com', null);
      await pii.createProfile('usr_k2', 'known.two@example.com', null);
      const t0 = clock.now();
      const lastSeen = async (hash: string) => Number((await stores.pii.db.selectFrom('pii_known_values').select('last_seen_at')
        .where('user_id', '=', 'usr_k1').where('kind', '=', 'ip').where('value_hash', '=', hash).executeTakeFirstOrThrow()).last_seen_at);
      assert.deepEqual(await known.remember('usr_k1', 'ip', 'h-a', t0), { isNew: true, firstOfKind: true });
      assert.deepEqual(await known.remember('usr_k1', 'ip', 'h-a', t0 + 1000), { isNew: false, firstOfKind: false });
      assert.equal(await lastSeen('h-a'), t0, 'a sighting within the hour is not written');
      assert.deepEqual(await known.remember('usr_k1', 'ip', 'h-b', t0 + 2000), { isNew: true, firstOfKind: false });
      assert.deepEqual(await known.remember('usr_k1', 'device', 'h-a', t0 + 3000), { isNew: true, firstOfKind: true }, 'kinds are separate');
      assert.deepEqual(await known.remember('usr_k2', 'ip', 'h-a', t0 + 4000), { isNew: true, firstOfKind: true }, 'users are separate');
      await known.remember('usr_k1', 'ip', 'h-a', t0 + 3_600_001);
      assert.equal(await lastSeen('h-a'), t0 + 3_600_001, 'after an hour the sighting is written');
    });

    test('jobs: a claim leases the due jobs in order and counts the attempt; leased, future and failed jobs wait; complete deletes one or many', async () => {
      const jobs = new JobRepository(stores.main.db, kind === 'postgres');
      const t0 = clock.now();
      const job = (id: string, runAt: number, failedAt: number | null = null) => ({ id, kind: 'test', payload: '{}', ref: null, run_at: runAt, attempts: 0, locked_until: 0, last_error: null, failed_at: failedAt, created_at: t0 });
      await jobs.insert([job('job_b', t0 - 10)]);
      await jobs.insert([job('job_a', t0 - 20), job('job_future', t0 + 60_000), job('job_failed', t0 - 30, t0)]);
      const claimed = await jobs.claim(t0, t0 + 30_000, 10);
      assert.deepEqual(claimed.map((row) => [row.id, row.attempts, row.locked_until]), [['job_a', 1, t0 + 30_000], ['job_b', 1, t0 + 30_000]]);
      assert.deepEqual(await jobs.claim(t0 + 1000, t0 + 31_000, 10), [], 'leased jobs are not claimed again');
      assert.deepEqual((await jobs.claim(t0 + 30_000, t0 + 60_000, 1)).map((row) => [row.id, row.attempts]), [['job_a', 2]], 'an expired lease is claimed again, oldest first, up to the limit');
      await jobs.complete(['job_a']);
      assert.deepEqual((await jobs.list('test')).map((row) => row.id).sort(), ['job_b', 'job_failed', 'job_future']);
      await jobs.complete([]);
      await jobs.complete(['job_b', 'job_future', 'job_gone']);
      assert.deepEqual((await jobs.list('test')).map((row) => row.id), ['job_failed'], 'a batch of ids is deleted at once; an id already gone is no error');
    });
  });
}
