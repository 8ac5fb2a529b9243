import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SESSION_COOKIE } from '../../src/http/auth.js';
import { expiringPasswords } from '../helpers/policies.js';
import { signUp, startTestServer, strongPassword, type TestServer } from '../helpers/harness.js';

const DAY = 86_400_000;

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`password expiry (${store})`, () => {
    let t: TestServer;
    let expiring: Set<string>;
    /** Policy resolutions per user. */
    let resolutions: Map<string, number>;
    before(async () => {
      t = await startTestServer({ store });
      // Users in this set are under a 90-day maxAgeDays policy (an org's choice); everyone else has the default (never).
      ({ expiring, resolutions } = expiringPasswords(t.server.services, 90));
    });
    after(async () => {
      await t.close();
    });

    test('off by default: years later a correct login just works (ASVS V6.2.10)', async () => {
      const { email, password } = await signUp(t, 'noexpiry');
      t.clock.advance(3 * 365 * DAY);
      const login = await t.client().post('/v1/login', { email, password });
      assert.equal(login.status, 200);
      assert.ok(login.body.session);
    });

    test('a login resolves the policy once, shared by its gates (expiry, MFA) and its session', async () => {
      const { email, password, userId } = await signUp(t, 'onepolicy');
      resolutions.delete(userId);
      const login = await t.client().post('/v1/login', { email, password });
      assert.equal(login.status, 200);
      assert.ok(login.body.session);
      assert.equal(resolutions.get(userId), 1);
    });

    test('past maxAgeDays a correct login creates no session and answers a change token', async () => {
      const { email, password, userId } = await signUp(t, 'expired');
      expiring.add(userId);
      t.clock.advance(89 * DAY);
      assert.equal((await t.client().post('/v1/login', { email, password })).body.passwordChangeRequired, undefined, 'day 89: fine');
      t.clock.advance(1 * DAY);
      const client = t.client();
      const login = await client.post('/v1/login', { email, password });
      assert.equal(login.status, 200);
      assert.deepEqual(Object.keys(login.body).sort(), ['changeToken', 'passwordChangeRequired']);
      assert.equal(login.body.passwordChangeRequired, true);
      assert.match(login.body.changeToken, /^[A-Za-z0-9_-]{43}$/);
      assert.deepEqual(login.setCookies, [], 'no session before the change');
      const sessions = await t.server.services.stores.main.db.selectFrom('sessions').select('id_hash').where('user_id', '=', userId).execute();
      const wrong = await t.client().post('/v1/login', { email, password: strongPassword() });
      assert.equal(wrong.status, 401, 'a wrong password still gets only invalid_credentials');
      assert.ok(sessions.length <= 2, 'only the sessions of earlier logins exist');
    });

    test('change-expired sets the new password and completes the login; the token is single use', async () => {
      const { client: first, email, password, userId } = await signUp(t, 'expired');
      expiring.add(userId);
      const oldCookie = first.cookies.get(SESSION_COOKIE)!;
      t.clock.advance(91 * DAY);
      const { changeToken } = (await t.client().post('/v1/login', { email, password })).body;

      const same = await t.client().post('/v1/password/change-expired', { changeToken, password });
      assert.equal(same.status, 400);
      assert.equal(same.body.code, 'password_reused', 'the expired password cannot be set again');
      const weak = await t.client().post('/v1/password/change-expired', { changeToken, password: 'short' });
      assert.equal(weak.body.code, 'weak_password');

      const newPassword = strongPassword();
      const client = t.client();
      const done = await client.post('/v1/password/change-expired', { changeToken, password: newPassword });
      assert.equal(done.status, 200);
      assert.equal(done.body.user.id, userId);
      assert.ok(done.body.session && done.body.csrfToken, 'a full login');
      assert.ok(client.cookies.get(SESSION_COOKIE), 'with its cookie');
      assert.equal((await client.get('/v1/session')).status, 200);
      const stale = await t.client().get('/v1/session', { headers: { cookie: `${SESSION_COOKIE}=${oldCookie}` } });
      assert.equal(stale.status, 401, 'sessions from before the change ended');

      const replay = await t.client().post('/v1/password/change-expired', { changeToken, password: strongPassword() });
      assert.equal(replay.status, 400);
      assert.equal(replay.body.code, 'invalid_token');
      const login = await t.client().post('/v1/login', { email, password: newPassword });
      assert.ok(login.body.session, 'the new password is fresh: a plain login');
    });

    test('a change token is short-lived (10 minutes) and a reset token is not a change token', async () => {
      const { email, password, userId } = await signUp(t, 'expired');
      expiring.add(userId);
      t.clock.advance(100 * DAY);
      const { changeToken } = (await t.client().post('/v1/login', { email, password })).body;
      t.clock.advance(10 * 60_000);
      const late = await t.client().post('/v1/password/change-expired', { changeToken, password: strongPassword() });
      assert.equal(late.body.code, 'invalid_token');
      const second = (await t.client().post('/v1/login', { email, password })).body.changeToken;
      const asReset = await t.client().post('/v1/password/reset', { token: second, password: strongPassword() });
      assert.equal(asReset.body.code, 'invalid_token', 'tokens are bound to their purpose');
      assert.equal((await t.client().post('/v1/password/change-expired', { changeToken: second, password: strongPassword() })).status, 200);
    });
  });
}
