import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hasRecentReauth, REAUTH_WINDOW_MS } from '../../src/auth/flows/step-up.js';
import { SESSION_COOKIE } from '../../src/http/auth.js';
import { signUp, startTestServer, strongPassword, type TestServer } from '../helpers/harness.js';

describe('step-up (POST /v1/me/reauth) and account lock', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(async () => {
    await t.close();
  });

  test('a wrong password is refused and marks nothing', async () => {
    const { client } = await signUp(t, 'stepup');
    const wrong = await client.post('/v1/me/reauth', { password: strongPassword() });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.code, 'invalid_credentials');
    assert.equal((await client.get('/v1/session')).status, 200, 'a failed step-up does not end the session');
  });

  test('the right password rotates the session secret; the CSRF token stays valid', async () => {
    const { client, password, userId } = await signUp(t, 'stepup');
    const before = client.cookies.get(SESSION_COOKIE)!;
    const csrf = client.csrfToken;
    const ok = await client.post('/v1/me/reauth', { password });
    assert.equal(ok.status, 204);
    const after = client.cookies.get(SESSION_COOKIE)!;
    assert.notEqual(after, before, 'new secret after re-authentication (ASVS V7.2.4)');
    const replay = await t.client().get('/v1/session', { headers: { cookie: `${SESSION_COOKIE}=${before}` } });
    assert.equal(replay.status, 401, 'the old secret is dead');
    const session = await client.get('/v1/session');
    assert.equal(session.status, 200);
    assert.equal(session.body.csrfToken, csrf);
    const rows = await t.server.services.stores.main.db.selectFrom('sessions').select('reauth_at').where('user_id', '=', userId).execute();
    assert.equal(rows[0]!.reauth_at, t.clock.now());
  });

  test('the step-up window is 10 minutes and never counts a future time', () => {
    const now = 1_000_000_000;
    assert.equal(hasRecentReauth({ reauth_at: null }, now), false);
    assert.equal(hasRecentReauth({ reauth_at: now - REAUTH_WINDOW_MS + 1 }, now), true);
    assert.equal(hasRecentReauth({ reauth_at: now - REAUTH_WINDOW_MS }, now), false);
    assert.equal(hasRecentReauth({ reauth_at: now + 1 }, now), false);
  });

  test('reauth needs a session and a well-formed body', async () => {
    const { client } = await signUp(t, 'stepup');
    assert.equal((await client.post('/v1/me/reauth', {})).status, 400);
    assert.equal((await client.post('/v1/me/reauth', { password: 'a', totp: '123456' })).status, 400);
    assert.equal((await t.client().post('/v1/me/reauth', { password: 'x' })).status, 401);
  });

  test('locking an account ends every session at once and refuses login', async () => {
    const { client, email, password, userId } = await signUp(t, 'locked');
    const second = t.client();
    await second.post('/v1/login', { email, password });
    await t.server.services.accounts.lock(userId, { type: 'system', id: null }, null, 'test');
    assert.equal((await client.get('/v1/session')).status, 401);
    assert.equal((await second.get('/v1/session')).status, 401);
    const login = await t.client().post('/v1/login', { email, password });
    assert.equal(login.status, 403);
    assert.equal(login.body.code, 'account_locked');
    const wrong = await t.client().post('/v1/login', { email, password: strongPassword() });
    assert.equal(wrong.body.code, 'invalid_credentials', 'the lock is only revealed to someone who knows the password');
    await t.server.services.accounts.unlock(userId, { type: 'system', id: null }, null);
    assert.equal((await t.client().post('/v1/login', { email, password })).status, 200);
  });
});
