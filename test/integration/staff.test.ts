/**
 * Staff separation of roles (API.md "Staff"): a granted role is dormant until a
 * session assumes it (MFA-verified session, fresh step-up, a reason, ≤ 60
 * minutes); one role at a time; every assumption and staff action is audited
 * with its reason. Real TOTP logins throughout.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SESSION_COOKIE } from '../../src/http/auth.js';
import { rampart } from '../helpers/cli.js';
import type { TestClient } from '../helpers/client.js';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';
import { enrollTOTP, nextStep, passwordStep, totpNow } from '../helpers/mfa.js';
import { captureEvents, createToken } from '../helpers/orgs.js';


interface Person {
  client: TestClient;
  email: string;
  password: string;
  userId: string;
  secret?: string;
}

async function mfaLogin(t: TestServer, person: Person): Promise<TestClient> {
  const client = t.client();
  const { mfaToken } = await passwordStep(client, person.email, person.password);
  nextStep(t);
  const response = await client.post('/v1/login/mfa', { mfaToken, totp: totpNow(t, person.secret!) });
  assert.equal(response.status, 200, response.text);
  assert.equal(response.body.session.mfaVerified, true);
  return client;
}

async function stepUp(client: TestClient, person: Person): Promise<void> {
  const response = await client.post('/v1/me/reauth', { password: person.password });
  assert.equal(response.status, 204, response.text);
}

async function assume(client: TestClient, person: Person, role: string, reason = `ticket SUP-${role} for the test`, minutes?: number) {
  await stepUp(client, person);
  return client.post('/v1/admin/assume', { role, reason, ...(minutes ? { minutes } : {}) });
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`staff separation of roles (${store})`, () => {
    let t: TestServer;
    let events: ReturnType<typeof captureEvents>;
    let staff: Person;
    /** A session of the staff member opened before they enrolled a factor (never MFA-verified). */
    let passwordOnly: TestClient;
    let target: Person;

    before(async () => {
      t = await startTestServer({ store });
      events = captureEvents(t);
      staff = await signUp(t, 'staff');
      passwordOnly = t.client();
      assert.equal((await passwordOnly.post('/v1/login', { email: staff.email, password: staff.password })).status, 200);
      staff.secret = (await enrollTOTP(t, staff.client, staff.password)).secret;
      for (const role of ['support', 'operator', 'auditor']) await t.server.services.staff.grant(staff.email, role, 'test');
      target = await signUp(t, 'customer');
    });
    after(async () => {
      await t.close();
    });

    test('granting needs an account with a second factor', async () => {
      await assert.rejects(t.server.services.staff.grant(target.email, 'support', 'test'), { code: 'staff_mfa_required' });
      await assert.rejects(t.server.services.staff.grant('nobody@example.com', 'support', 'test'), { code: 'not_found' });
      assert.deepEqual(await t.server.services.staff.rolesOf(target.userId), []);
      assert.deepEqual(await t.server.services.staff.rolesOf(staff.userId), ['auditor', 'operator', 'support']);
    });

    test('a granted role gives no power before it is assumed', async () => {
      const client = await mfaLogin(t, staff);
      await stepUp(client, staff);
      const lock = await client.post(`/v1/admin/users/${target.userId}/lock`);
      assert.equal(lock.status, 403);
      assert.equal(lock.body.code, 'forbidden');
      assert.equal((await client.get(`/v1/admin/users?email=${encodeURIComponent(target.email)}`)).status, 403);
      assert.equal((await client.get('/v1/admin/audit')).status, 403);
      assert.equal((await target.client.get('/v1/session')).status, 200, 'the customer was not touched');
      assert.ok(events.some((e) => e.action === 'access.denied' && e.actor.id === staff.userId && e.details?.['reason'] === 'no_assumed_role'));
    });

    test('assuming needs a step-up, an MFA-verified session, a held role and a reason; never a token', async () => {
      const client = await mfaLogin(t, staff);
      const noStepUp = await client.post('/v1/admin/assume', { role: 'support', reason: 'ticket SUP-1 lookup' });
      assert.equal(noStepUp.status, 403);
      assert.equal(noStepUp.body.code, 'reauth_required');
      await stepUp(client, staff);
      for (const body of [
        { role: 'support' }, { role: 'support', reason: 'x' }, { role: 'support', reason: 'line\nbreak here' },
        { role: 'support', reason: 'ticket SUP-1', minutes: 61 }, { role: 'support', reason: 'ticket SUP-1', minutes: 0 },
        { role: 'root', reason: 'ticket SUP-1' }, { role: 'support', reason: 'ticket SUP-1', extra: true },
      ]) {
        assert.equal((await client.post('/v1/admin/assume', body)).status, 400, JSON.stringify(body));
      }
      const notHeld = await client.post('/v1/admin/assume', { role: 'security', reason: 'ticket SEC-1 incident' });
      assert.equal(notHeld.status, 403);
      assert.equal(notHeld.body.code, 'forbidden');

      await stepUp(passwordOnly, staff);
      const unverified = await passwordOnly.post('/v1/admin/assume', { role: 'support', reason: 'ticket SUP-1 lookup' });
      assert.equal(unverified.status, 403, 'a session that never passed MFA cannot assume');
      assert.equal(unverified.body.code, 'staff_mfa_required');

      const token = await createToken({ ...staff, client }, ['profile:read']);
      const byToken = await t.client().post('/v1/admin/assume', { role: 'support', reason: 'ticket SUP-1 lookup' }, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(byToken.status, 403);
      assert.equal(byToken.body.code, 'insufficient_scope');
    });

    test('an assumed operator locks and unlocks, each action audited with the reason; the session secret rotates', async () => {
      const client = await mfaLogin(t, staff);
      const before = client.cookies.get(SESSION_COOKIE)!;
      const reason = 'ticket OPS-7: customer reports a takeover';
      const assumed = await assume(client, staff, 'operator', reason);
      assert.equal(assumed.status, 200, assumed.text);
      assert.equal(assumed.body.role, 'operator');
      assert.equal(Date.parse(assumed.body.expiresAt), t.clock.now() + 30 * 60_000, 'default 30 minutes');
      assert.notEqual(client.cookies.get(SESSION_COOKIE), before, 'privilege change: new session secret');
      assert.equal((await t.client().get('/v1/session', { headers: { cookie: `${SESSION_COOKIE}=${before}` } })).status, 401);
      const assumedEvent = events.findLast((e) => e.action === 'staff_role.assumed')!;
      assert.equal(assumedEvent.details?.['reason'], reason);
      assert.ok(assumedEvent.inTransaction);

      assert.equal((await client.post(`/v1/admin/users/${target.userId}/lock`)).status, 204);
      assert.equal((await target.client.get('/v1/session')).status, 401, 'the locked customer\'s sessions ended');
      const locked = events.findLast((e) => e.action === 'user.locked')!;
      assert.deepEqual(locked.actor, { type: 'staff', id: staff.userId });
      assert.equal(locked.details?.['reason'], reason);
      const performed = events.findLast((e) => e.action === 'staff_action.performed')!;
      assert.deepEqual(performed.details, { action: 'users.lock', staffRole: 'operator', reason });
      assert.deepEqual(performed.target, { type: 'user', id: target.userId });

      assert.equal((await client.get(`/v1/admin/users?email=${encodeURIComponent(target.email)}`)).status, 403, 'operator cannot look users up');
      assert.equal((await client.get('/v1/admin/audit')).status, 403, 'nor read the audit log');
      assert.equal((await client.post('/v1/admin/users/usr_nobody/lock')).status, 404);
      assert.equal((await client.post(`/v1/admin/users/${target.userId}/unlock`)).status, 204);
      assert.equal(events.findLast((e) => e.action === 'user.unlocked')?.details?.['reason'], reason);
      const relogin = t.client();
      assert.equal((await relogin.post('/v1/login', { email: target.email, password: target.password })).status, 200);
      target.client = relogin;
    });

    test('one role at a time: assuming another replaces it, in this session and the user\'s others', async () => {
      const first = await mfaLogin(t, staff);
      assert.equal((await assume(first, staff, 'support')).status, 200);
      const lookup = await first.get(`/v1/admin/users?email=${encodeURIComponent(target.email.toUpperCase())}`);
      assert.equal(lookup.status, 200);
      assert.equal(lookup.body.users.length, 1);
      assert.equal(lookup.body.users[0].id, target.userId);
      assert.equal(lookup.body.users[0].email, target.email);
      assert.deepEqual((await first.get('/v1/admin/users?email=nobody%40example.com')).body.users, []);
      assert.equal((await first.get('/v1/admin/users?email=not-an-email')).status, 400);

      assert.equal((await assume(first, staff, 'operator')).status, 200);
      assert.equal((await first.get(`/v1/admin/users?email=${encodeURIComponent(target.email)}`)).status, 403, 'support was replaced');
      assert.deepEqual(events.findLast((e) => e.action === 'staff_role.assumed')?.details?.['replaced'], ['support']);

      const second = await mfaLogin(t, staff);
      assert.equal((await assume(second, staff, 'support')).status, 200);
      assert.equal((await first.post(`/v1/admin/users/${target.userId}/unlock`)).status, 403, 'the other session lost operator');
      assert.equal((await second.get(`/v1/admin/users?email=${encodeURIComponent(target.email)}`)).status, 200);
      assert.deepEqual(events.findLast((e) => e.action === 'staff_role.assumed')?.details?.['replaced'], ['operator']);
    });

    test('an assumed role expires on time, and ends at once on release or revocation', async () => {
      const client = await mfaLogin(t, staff);
      const assumed = await assume(client, staff, 'auditor', 'quarterly access review Q1', 5);
      assert.equal(Date.parse(assumed.body.expiresAt), t.clock.now() + 5 * 60_000);
      const page = await client.get('/v1/admin/audit?limit=1000');
      assert.equal(page.status, 200);
      assert.ok(page.body.events.some((e: { action: string }) => e.action === 'staff_role.assumed'));
      const read = events.findLast((e) => e.action === 'staff_action.performed');
      assert.deepEqual(read?.actor, { type: 'staff', id: staff.userId }, 'the platform-wide read is itself audited');
      assert.deepEqual(JSON.parse(JSON.stringify(read?.details)), { action: 'audit.read', staffRole: 'auditor', reason: 'quarterly access review Q1', filter: { limit: 1000 } });
      t.clock.advance(5 * 60_000 - 1);
      assert.equal((await client.get('/v1/admin/audit')).status, 200);
      t.clock.advance(1);
      assert.equal((await client.get('/v1/admin/audit')).status, 403, 'expired');

      assert.equal((await assume(client, staff, 'support')).status, 200);
      assert.equal((await client.delete('/v1/admin/assume')).status, 204);
      assert.equal((await client.get(`/v1/admin/users?email=${encodeURIComponent(target.email)}`)).status, 403);
      assert.equal(events.findLast((e) => e.action === 'staff_role.released')?.details?.['role'], 'support');

      assert.equal((await assume(client, staff, 'support')).status, 200);
      await t.server.services.staff.revoke(staff.email, 'support', 'test');
      assert.equal((await client.get(`/v1/admin/users?email=${encodeURIComponent(target.email)}`)).status, 403, 'revoked: gone at once');
      await t.server.services.staff.grant(staff.email, 'support', 'test');
    });

    test('reset-mfa removes the customer\'s factors and sessions, audited with the reason', async () => {
      const customer = await signUp(t, 'locked-out');
      await enrollTOTP(t, customer.client, customer.password);
      assert.equal(await t.server.services.mfa.hasFactor(customer.userId), true);
      const client = await mfaLogin(t, staff);
      const reason = 'ticket OPS-9: lost phone, identity re-proofed on a call';
      assert.equal((await assume(client, staff, 'operator', reason)).status, 200);
      assert.equal((await client.post(`/v1/admin/users/${customer.userId}/reset-mfa`)).status, 204);
      assert.equal(await t.server.services.mfa.hasFactor(customer.userId), false);
      assert.equal((await customer.client.get('/v1/session')).status, 401);
      assert.deepEqual(events.findLast((e) => e.action === 'mfa.reset')?.actor, { type: 'staff', id: staff.userId });
      assert.deepEqual(events.findLast((e) => e.action === 'staff_action.performed')?.details, { action: 'users.reset_mfa', staffRole: 'operator', reason });
    });

    test('a staff member who loses their second factor loses the role', async () => {
      const client = await mfaLogin(t, staff);
      assert.equal((await assume(client, staff, 'support')).status, 200);
      // The session is now kept in memory (with its user's mfa_enabled): the change below must reach it.
      assert.equal((await client.get('/v1/session')).status, 200);
      await t.server.services.stores.main.db.updateTable('users').set({ mfa_enabled: 0 }).where('id', '=', staff.userId).execute();
      try {
        assert.equal((await client.get(`/v1/admin/users?email=${encodeURIComponent(target.email)}`)).status, 403);
        const again = await assume(client, staff, 'support');
        assert.equal(again.body.code, 'staff_mfa_required');
      } finally {
        await t.server.services.stores.main.db.updateTable('users').set({ mfa_enabled: 1 }).where('id', '=', staff.userId).execute();
      }
    });

    test('each staff request re-checks the grant itself, not only the assumption', async () => {
      const client = await mfaLogin(t, staff);
      assert.equal((await assume(client, staff, 'support')).status, 200);
      // The grant row goes without revoke()'s clean-up of assumptions: the check on each request must still see it.
      const db = t.server.services.stores.main.db;
      await db.deleteFrom('staff_roles').where('user_id', '=', staff.userId).where('role', '=', 'support').execute();
      try {
        const lookup = await client.get(`/v1/admin/users?email=${encodeURIComponent(target.email)}`);
        assert.equal(lookup.status, 403);
        assert.ok(events.some((e) => e.action === 'access.denied' && e.actor.id === staff.userId && e.details?.['reason'] === 'staff_role_not_granted'));
      } finally {
        await t.server.services.staff.grant(staff.email, 'support', 'test');
      }
    });

    if (store === 'sqlite') {
      test('rampart staff grant|revoke from the command line', async () => {
        const cli = (...args: string[]) => rampart('staff', ...args, '--data-dir', t.dataDir);
        const granted = await cli('grant', staff.email, 'security');
        assert.equal(granted.code, 0, granted.stderr);
        assert.equal(granted.stdout, `granted security to ${staff.userId}\n`);
        assert.ok((await t.server.services.staff.rolesOf(staff.userId)).includes('security'));
        const noFactor = await cli('grant', target.email, 'support');
        assert.equal(noFactor.code, 1);
        assert.match(noFactor.stderr, /^rampart: .*second factor.*\n$/);
        const badRole = await cli('grant', staff.email, 'root');
        assert.equal(badRole.code, 1);
        assert.match(badRole.stderr, /unknown staff role/);
        const unknown = await cli('grant', 'nobody@example.com', 'support');
        assert.equal(unknown.code, 1);
        assert.match(unknown.stderr, /no account with that email/);
        const revoked = await cli('revoke', staff.email, 'security');
        assert.equal(revoked.code, 0, revoked.stderr);
        assert.equal(revoked.stdout, `revoked security from ${staff.userId}\n`);
        assert.ok(!(await t.server.services.staff.rolesOf(staff.userId)).includes('security'));
        assert.match((await cli('--help')).stdout, /grant/);
      });
    }
  });
}

