import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { SESSION_COOKIE } from '../../src/http/auth.js';
import { deploymentMfaSince, MFA_REQUIRED_FOR_ALL_SINCE } from '../../src/policy/deployment-mfa.js';
import { ServerSettingRepository } from '../../src/store/repositories/server-settings.js';
import type { TestClient } from '../helpers/client.js';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';
import { enrollTOTP, passwordStep, stepUp, totpNow } from '../helpers/mfa.js';

const HOUR = 3_600_000;
const ON = { MFA_REQUIRED_FOR_ALL: 'true' };

async function expectEnrollmentOnly(client: TestClient) {
  assert.equal((await client.get('/v1/session')).status, 200, 'the session can be read');
  const org = await client.post('/v1/orgs', { name: 'Not yet', slug: `not-yet-${Math.random().toString(36).slice(2, 8)}` });
  assert.equal(org.status, 403);
  assert.equal(org.body.code, 'mfa_enrollment_required');
  assert.equal((await client.get('/v1/me/sessions')).body.code, 'mfa_enrollment_required');
  assert.equal((await client.get('/v1/me/mfa')).body.enrollmentRequired, true);
}

for (const store of ['sqlite', 'postgres'] as const) describe(`MFA_REQUIRED_FOR_ALL (${store})`, () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ store, env: ON });
  });
  after(async () => {
    await t.close();
  });

  test('a new account starts enrollment-only; enrolling TOTP opens the session and later logins need the factor', async () => {
    const client = t.client();
    const email = `all.${Math.random().toString(36).slice(2, 10)}@example.com`;
    const password = 'violet-Tractor-signup-harbor-Quill';
    const createdAt = t.clock.now();
    const signup = await client.post('/v1/signup', { email, password, name: 'Everyone' });
    assert.equal(signup.status, 201, signup.text);
    assert.equal(signup.body.enrollmentRequired, true);
    assert.equal(signup.body.enrollBefore, new Date(createdAt + 72 * HOUR).toISOString());
    assert.equal(signup.body.session.mfaVerified, false);
    await expectEnrollmentOnly(client);
    assert.equal((await client.get('/v1/me/mfa')).body.enrollBefore, new Date(createdAt + 72 * HOUR).toISOString());

    // A login within the grace period: another enrollment-only session.
    t.clock.advance(HOUR);
    const browser = t.client();
    const login = await browser.post('/v1/login', { email, password });
    assert.equal(login.status, 200);
    assert.equal(login.body.enrollmentRequired, true);
    await expectEnrollmentOnly(browser);

    // Enrolling TOTP upgrades the session.
    const { secret } = await enrollTOTP(t, browser, password);
    assert.equal((await browser.get('/v1/me/sessions')).status, 200);
    assert.equal((await browser.get('/v1/me/mfa')).body.enrollmentRequired, false);

    // From now on every login stops at the factor, and the session it makes is full.
    t.clock.advance(100 * HOUR);
    const step = await passwordStep(t.client(), email, password);
    assert.deepEqual(step.methods, ['totp', 'recovery_code']);
    const next = t.client();
    const done = await next.post('/v1/login/mfa', { mfaToken: step.mfaToken, totp: totpNow(t, secret) });
    assert.equal(done.status, 200);
    assert.equal(done.body.enrollmentRequired, undefined);
    assert.equal(done.body.session.mfaVerified, true);
    assert.equal((await next.get('/v1/me/sessions')).status, 200);
  });

  test('after the grace period an account without a factor is refused at login until staff reset it', async () => {
    const user = await signUp(t, 'late');
    t.clock.advance(72 * HOUR);
    const refused = await t.client().post('/v1/login', { email: user.email, password: user.password });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.code, 'mfa_enrollment_required');
    assert.match(refused.body.detail, /This service requires a second factor of every account/);
    assert.ok(!refused.setCookies.some((c) => c.startsWith(`${SESSION_COOKIE}=`)));
    const wrong = await t.client().post('/v1/login', { email: user.email, password: `${user.password}x` });
    assert.equal(wrong.body.code, 'invalid_credentials', 'only someone with the password learns about the requirement');

    const resetAt = t.clock.now();
    await t.server.services.mfa.reset(user.userId, { type: 'staff', id: null }, null);
    const again = await t.client().post('/v1/login', { email: user.email, password: user.password });
    assert.equal(again.status, 200);
    assert.equal(again.body.enrollmentRequired, true);
    assert.equal(again.body.enrollBefore, new Date(resetAt + 72 * HOUR).toISOString());
  });

  test('the only factor cannot be removed: 409 mfa_required_by_org', async () => {
    const user = await signUp(t, 'only');
    await enrollTOTP(t, user.client, user.password);
    await stepUp(user.client, user.password);
    const removed = await user.client.delete('/v1/me/mfa/totp');
    assert.equal(removed.status, 409);
    assert.equal(removed.body.code, 'mfa_required_by_org');
    assert.match(removed.body.detail, /This service requires a second factor of every account/);
    assert.equal((await user.client.get('/v1/me/mfa')).body.totp, true, 'nothing was removed');
  });
});

describe('MFA_REQUIRED_FOR_ALL switched on for existing accounts (sqlite)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-test-mfa-all-'));
  const clock = new ManualClock(Date.now());
  after(() => {
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function withServer<T>(env: Record<string, string>, run: (t: TestServer) => Promise<T>): Promise<T> {
    const t = await startTestServer({ dataDir, clock, env });
    try {
      return await run(t);
    } finally {
      await t.close({ keepData: true });
    }
  }

  test('an account created before the switch-on gets its grace from the first start with the option on', async () => {
    const old = await withServer({}, async (t) => {
      const user = await signUp(t, 'before');
      const login = await t.client().post('/v1/login', { email: user.email, password: user.password });
      assert.equal(login.body.enrollmentRequired, undefined, 'off: no factor needed');
      return user;
    });
    clock.advance(500 * HOUR);

    const switchedOn = clock.now();
    const graceEnd = new Date(switchedOn + 72 * HOUR).toISOString();
    await withServer(ON, async (t) => {
      const login = await t.client().post('/v1/login', { email: old.email, password: old.password });
      assert.equal(login.status, 200, 'not locked out at once');
      assert.equal(login.body.enrollmentRequired, true);
      assert.equal(login.body.enrollBefore, graceEnd);
    });

    // A restart with the option still on keeps the instant it first took effect.
    clock.advance(71 * HOUR);
    await withServer(ON, async (t) => {
      const login = await t.client().post('/v1/login', { email: old.email, password: old.password });
      assert.equal(login.body.enrollBefore, graceEnd);
      // Other commands (report, staff, import) run with the option off do not forget the instant.
      const settings = new ServerSettingRepository(t.server.services.stores.main.db);
      assert.equal(await deploymentMfaSince({ mfaRequiredForAll: false }, settings, clock, { record: false }), null);
      assert.equal(await settings.get(MFA_REQUIRED_FOR_ALL_SINCE), String(switchedOn));
      // A new account gets its own grace from its creation.
      const fresh = await signUp(t, 'after');
      const freshLogin = await t.client().post('/v1/login', { email: fresh.email, password: fresh.password });
      assert.equal(freshLogin.body.enrollBefore, new Date(clock.now() + 72 * HOUR).toISOString());
      t.clock.advance(HOUR);
      const refused = await t.client().post('/v1/login', { email: old.email, password: old.password });
      assert.equal(refused.status, 403);
      assert.equal(refused.body.code, 'mfa_enrollment_required');
    });

    // Off forgets the instant: switching it on again later opens a fresh grace period.
    await withServer({}, async (t) => {
      const login = await t.client().post('/v1/login', { email: old.email, password: old.password });
      assert.equal(login.status, 200);
      assert.equal(login.body.enrollmentRequired, undefined);
    });
    clock.advance(10 * HOUR);
    await withServer({ ...ON, MFA_REQUIRED_GRACE_HOURS: '24' }, async (t) => {
      const login = await t.client().post('/v1/login', { email: old.email, password: old.password });
      assert.equal(login.status, 200);
      assert.equal(login.body.enrollBefore, new Date(clock.now() + 24 * HOUR).toISOString());
    });
  });
});
