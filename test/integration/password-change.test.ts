import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SESSION_COOKIE } from '../../src/http/auth.js';
import { defaultOrgPolicy } from '../../src/policy/org-policy.js';
import { toEffectivePolicy } from '../../src/policy/effective-policy.js';
import { readOutbox } from '../helpers/mail.js';
import { signUp, startTestServer, strongPassword, type TestServer } from '../helpers/harness.js';

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`POST /v1/me/password (${store})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer({ store });
    });
    after(async () => {
      await t.close();
    });

    test('needs the right current password; a wrong one changes nothing (ASVS V6.2.3)', async () => {
      const { client, email, password } = await signUp(t, 'change');
      const wrong = await client.post('/v1/me/password', { currentPassword: strongPassword(), newPassword: strongPassword() });
      assert.equal(wrong.status, 401);
      assert.equal(wrong.body.code, 'invalid_credentials');
      assert.equal((await client.get('/v1/session')).status, 200, 'the session survives a failed attempt');
      assert.equal((await t.client().post('/v1/login', { email, password })).status, 200, 'the old password still works');
      const missing = await client.post('/v1/me/password', { newPassword: strongPassword() });
      assert.equal(missing.status, 400);
    });

    test('a session only: no session is 401, a missing CSRF header is 403', async () => {
      const { client, password } = await signUp(t, 'change');
      assert.equal((await t.client().post('/v1/me/password', { currentPassword: password, newPassword: strongPassword() })).status, 401);
      const noCsrf = await client.post('/v1/me/password', { currentPassword: password, newPassword: strongPassword() }, { headers: { 'x-csrf-token': 'nope' } });
      assert.equal(noCsrf.status, 403);
      assert.equal(noCsrf.body.code, 'csrf_failed');
    });

    test('the new password follows the policy (weak_password) and must differ from the current one', async () => {
      const { client, password } = await signUp(t, 'change');
      const weak = await client.post('/v1/me/password', { currentPassword: password, newPassword: 'short' });
      assert.equal(weak.status, 400);
      assert.equal(weak.body.code, 'weak_password');
      const same = await client.post('/v1/me/password', { currentPassword: password, newPassword: password });
      assert.equal(same.status, 400);
      assert.equal(same.body.code, 'password_reused');
    });

    test('other sessions end, the current one gets a new secret, the new password works (ASVS V7.4.3, V7.2.4)', async () => {
      const { client, email, password, userId } = await signUp(t, 'change');
      const other = t.client();
      assert.equal((await other.post('/v1/login', { email, password })).status, 200);
      const otherCookie = other.cookies.get(SESSION_COOKIE)!;
      const oldCookie = client.cookies.get(SESSION_COOKIE)!;
      const sessionId = (await client.get('/v1/session')).body.session.id;
      const newPassword = strongPassword();

      const changed = await client.post('/v1/me/password', { currentPassword: password, newPassword });
      assert.equal(changed.status, 204);
      const newCookie = client.cookies.get(SESSION_COOKIE)!;
      assert.ok(changed.setCookies.some((cookie) => cookie.startsWith(`${SESSION_COOKIE}=`) && /HttpOnly/.test(cookie)), 'a new cookie in the 204');
      assert.notEqual(newCookie, oldCookie);

      const stale = await t.client().get('/v1/session', { headers: { cookie: `${SESSION_COOKIE}=${oldCookie}` } });
      assert.equal(stale.status, 401, 'the old secret of the current session is dead');
      const otherStale = await t.client().get('/v1/session', { headers: { cookie: `${SESSION_COOKIE}=${otherCookie}` } });
      assert.equal(otherStale.status, 401, 'every other session is dead');
      const current = await client.get('/v1/session');
      assert.equal(current.status, 200, 'the current session lives on with its new secret');
      assert.equal(current.body.session.id, sessionId, 'same session, new secret');
      assert.equal((await client.post('/v1/logout')).status, 204, 'the CSRF token still matches');

      assert.equal((await t.client().post('/v1/login', { email, password })).status, 401, 'old password refused');
      assert.equal((await t.client().post('/v1/login', { email, password: newPassword })).status, 200, 'new password works');
      const row = await t.server.services.users.findById(userId);
      assert.match(row!.password_hash, /^\$argon2id\$/);
      await t.server.services.background.settled();
      assert.ok(readOutbox(t.dataDir).some((mail) => mail.to === email && /password was changed/.test(mail.subject)), 'the user is told (ASVS V6.3.7)');
    });

    test('history: each of the last N passwords is refused, the N+1th is accepted', async () => {
      const { client, password: first } = await signUp(t, 'history');
      const n = (await t.server.services.policies.forUser(null)).password.historyCount;
      assert.equal(n, 5, 'the default policy keeps 5');
      const passwords = [first];
      for (let i = 1; i <= n; i++) {
        const next = strongPassword();
        const response = await client.post('/v1/me/password', { currentPassword: passwords.at(-1)!, newPassword: next });
        assert.equal(response.status, 204, `change ${i}`);
        passwords.push(next);
      }
      const current = passwords.at(-1)!;
      // passwords[n] is current; passwords[1..n] are the last N; passwords[0] is the N+1th.
      for (let i = n; i >= 1; i--) {
        const reuse = await client.post('/v1/me/password', { currentPassword: current, newPassword: passwords[i] });
        assert.equal(reuse.status, 400, `password ${i} of the last ${n} is refused`);
        assert.equal(reuse.body.code, 'password_reused');
      }
      const oldest = await client.post('/v1/me/password', { currentPassword: current, newPassword: passwords[0] });
      assert.equal(oldest.status, 204, 'the N+1th password is accepted again');
    });

    test('the history follows the effective policy (historyCount 2) and the user\'s org words', async () => {
      const { client, password: p0, userId } = await signUp(t, 'history2');
      const services = t.server.services;
      const original = services.policies;
      const policy = defaultOrgPolicy();
      policy.password.historyCount = 2;
      services.policies = { forUser: async (id) => toEffectivePolicy(policy, id === userId ? ['Rampart', 'Globex'] : ['Rampart'], []) };
      try {
        const orgWord = await client.post('/v1/me/password', { currentPassword: p0, newPassword: 'globex-violet-tractor-quill' });
        assert.equal(orgWord.status, 400);
        assert.ok(orgWord.body.reasons.includes('contains_user_info'), 'an org name is a context word');
        const p1 = strongPassword();
        assert.equal((await client.post('/v1/me/password', { currentPassword: p0, newPassword: p1 })).status, 204);
        const p2 = strongPassword();
        assert.equal((await client.post('/v1/me/password', { currentPassword: p1, newPassword: p2 })).status, 204);
        assert.equal((await client.post('/v1/me/password', { currentPassword: p2, newPassword: p1 })).status, 400, 'the last 2 include p1');
        assert.equal((await client.post('/v1/me/password', { currentPassword: p2, newPassword: p0 })).status, 204, 'p0 is the 3rd: allowed');
        const kept = await services.stores.main.db.selectFrom('password_history').select('seq').where('user_id', '=', userId).execute();
        assert.equal(kept.length, 1, 'N - 1 former hashes kept, older ones deleted');
      } finally {
        services.policies = original;
      }
    });
  });
}
