import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { randomId } from '../../src/crypto/random.js';
import { SESSION_COOKIE } from '../../src/http/auth.js';
import { ORPHAN_AGE_MS } from '../../src/users/orphan-profiles.js';
import { signUp, startTestServer, strongPassword, type TestServer, uniqueEmail } from '../helpers/harness.js';

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`signup, login, session, logout over HTTPS (${store})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer({ store });
    });
    after(async () => {
      await t.close();
    });

    test('signup creates the account and a session, with a hardened cookie', async () => {
      const client = t.client();
      const email = uniqueEmail('alice');
      const response = await client.post('/v1/signup', { email, password: strongPassword(), name: 'Alice Example' });
      assert.equal(response.status, 201);
      assert.equal(response.body.user.email, email);
      assert.equal(response.body.user.name, 'Alice Example');
      assert.equal(response.body.user.emailVerified, false);
      assert.equal(response.body.user.mfaEnabled, false);
      assert.match(response.body.user.id, /^usr_/);
      assert.match(response.body.session.id, /^ses_/);
      assert.equal(typeof response.body.csrfToken, 'string');
      assert.equal(response.body.user.passwordHash, undefined);
      const cookie = response.setCookies.find((c) => c.startsWith(`${SESSION_COOKIE}=`));
      assert.ok(cookie, 'session cookie set');
      assert.match(cookie, /; Secure/);
      assert.match(cookie, /; HttpOnly/);
      assert.match(cookie, /; SameSite=Strict/);
      assert.match(cookie, /; Path=\//);
      assert.doesNotMatch(cookie, /Domain=/i);
      const secret = client.cookies.get(SESSION_COOKIE)!;
      assert.match(secret, /^[A-Za-z0-9_-]{43}$/, '256-bit base64url secret');
      assert.ok(!response.text.includes(secret), 'the cookie secret never appears in a body');
      assert.notEqual(response.body.session.id, secret);
      assert.equal(response.headers['cache-control'], 'no-store');

      const session = await client.get('/v1/session');
      assert.equal(session.status, 200);
      assert.equal(session.body.user.email, email);
      assert.equal(session.body.session.id, response.body.session.id);
      assert.deepEqual(session.body.orgs, []);
      assert.equal(session.body.csrfToken, response.body.csrfToken);
      assert.equal(session.body.session.ip, '127.0.0.1');
    });

    test('a taken email answers 409 email_taken, whatever its case', async () => {
      const { email } = await signUp(t, 'taken');
      const again = await t.client().post('/v1/signup', { email: email.toUpperCase(), password: strongPassword() });
      assert.equal(again.status, 409);
      assert.equal(again.body.code, 'email_taken');
    });

    test('an address held only by a profile without an account (a crash between the stores) is free once that profile is 10 minutes old', async () => {
      const services = t.server.services;
      const orphan = async (label: string, ageMs: number) => {
        const email = uniqueEmail(label);
        const userId = randomId('usr');
        await services.pii.createProfile(userId, email, null);
        await services.stores.pii.db.updateTable('pii_users').set({ created_at: t.clock.now() - ageMs }).where('user_id', '=', userId).execute();
        return { email, userId };
      };
      // Younger: it may be a signup still writing its account.
      const young = await orphan('orphan-young', ORPHAN_AGE_MS - 60_000);
      const refused = await t.client().post('/v1/signup', { email: young.email, password: strongPassword() });
      assert.equal(refused.status, 409);
      assert.equal(refused.body.code, 'email_taken');
      // Older: a leftover, released for the new account.
      const old = await orphan('orphan-old', ORPHAN_AGE_MS);
      const signup = await t.client().post('/v1/signup', { email: old.email, password: strongPassword() });
      assert.equal(signup.status, 201, signup.text);
      assert.notEqual(signup.body.user.id, old.userId);
      assert.equal(await services.pii.getProfile(old.userId), null, 'the leftover profile is gone');
    });

    test('login issues a new session id each time; logout deletes it server-side', async () => {
      const { email, password, client: first } = await signUp(t, 'bob');
      const firstSecret = first.cookies.get(SESSION_COOKIE);
      const second = t.client();
      const login = await second.post('/v1/login', { email: email.toUpperCase(), password });
      assert.equal(login.status, 200);
      assert.equal(login.body.user.email, email);
      const secondSecret = second.cookies.get(SESSION_COOKIE);
      assert.ok(secondSecret && secondSecret !== firstSecret);
      assert.notEqual(login.body.session.id, (await first.get('/v1/session')).body.session.id);

      const logout = await second.post('/v1/logout');
      assert.equal(logout.status, 204);
      assert.ok(logout.setCookies.some((c) => c.startsWith(`${SESSION_COOKIE}=;`)), 'cookie cleared');
      // Replaying the old cookie after logout must fail: the row is gone.
      const replay = await second.get('/v1/session', { headers: { cookie: `${SESSION_COOKIE}=${secondSecret}` } });
      assert.equal(replay.status, 401);
      assert.equal(replay.body.code, 'unauthenticated');
      assert.equal((await first.get('/v1/session')).status, 200, 'other sessions live on');
    });

    test('unknown email and wrong password give the identical 401 body', async () => {
      const { email } = await signUp(t, 'carol');
      const wrong = await t.client().post('/v1/login', { email, password: strongPassword() });
      const unknown = await t.client().post('/v1/login', { email: uniqueEmail('nobody'), password: strongPassword() });
      assert.equal(wrong.status, 401);
      assert.equal(unknown.status, 401);
      assert.deepEqual(wrong.body, unknown.body);
      assert.equal(wrong.body.code, 'invalid_credentials');
      assert.equal(wrong.headers['content-type'], 'application/problem+json; charset=utf-8');
      assert.equal(wrong.setCookies.length, 0);
    });

    test('passwords are verified exactly: no truncation, case or whitespace folding', async () => {
      const client = t.client();
      const email = uniqueEmail('exact');
      const password = `${strongPassword()}-${'é'.repeat(40)}-${'x'.repeat(30)}`; // > 72 bytes, multi-byte
      assert.equal((await client.post('/v1/signup', { email, password })).status, 201);
      const bytes = Buffer.from(password, 'utf8');
      for (const attempt of [bytes.subarray(0, 72).toString('utf8'), password.toUpperCase(), `${password} `, password.slice(0, -1)]) {
        assert.equal((await t.client().post('/v1/login', { email, password: attempt })).status, 401);
      }
      assert.equal((await t.client().post('/v1/login', { email, password })).status, 200);
    });

    test('a user lists their sessions, revokes one, then all others; another user\'s id is 404', async () => {
      const { email, password, client: a1 } = await signUp(t, 'dave');
      const a2 = t.client();
      const a3 = t.client();
      await a2.post('/v1/login', { email, password });
      await a3.post('/v1/login', { email, password });
      const list = await a1.get('/v1/me/sessions');
      assert.equal(list.status, 200);
      assert.equal(list.body.sessions.length, 3);
      assert.equal(list.body.sessions.filter((s: { current: boolean }) => s.current).length, 1);
      const a2Id = (await a2.get('/v1/session')).body.session.id;

      const { client: other } = await signUp(t, 'eve');
      const foreign = await other.delete(`/v1/me/sessions/${a2Id}`);
      assert.equal(foreign.status, 404);
      assert.equal(foreign.body.code, 'not_found');
      assert.equal((await a2.get('/v1/session')).status, 200, 'untouched by another user');
      assert.equal((await other.delete('/v1/me/sessions/ses_doesnotexist')).status, 404);

      assert.equal((await a1.delete(`/v1/me/sessions/${a2Id}`)).status, 204);
      assert.equal((await a2.get('/v1/session')).status, 401);
      assert.equal((await a1.delete('/v1/me/sessions')).status, 204);
      assert.equal((await a3.get('/v1/session')).status, 401);
      const remaining = await a1.get('/v1/me/sessions');
      assert.equal(remaining.body.sessions.length, 1);
      assert.equal(remaining.body.sessions[0].current, true);
    });

    test('unsafe cookie-authenticated requests need the session\'s CSRF token', async () => {
      const { client } = await signUp(t, 'frank');
      const { client: other } = await signUp(t, 'grace');
      const missing = await client.post('/v1/logout', undefined, { headers: { 'x-csrf-token': '' } });
      assert.equal(missing.status, 403);
      assert.equal(missing.body.code, 'csrf_failed');
      const forged = await client.post('/v1/logout', undefined, { headers: { 'x-csrf-token': 'A'.repeat(43) } });
      assert.equal(forged.status, 403);
      const crossed = await client.post('/v1/logout', undefined, { headers: { 'x-csrf-token': other.csrfToken! } });
      assert.equal(crossed.status, 403, 'a token bound to another session is refused');
      assert.equal((await client.get('/v1/session')).status, 200, 'still signed in');
      assert.equal((await client.post('/v1/logout')).status, 204);
    });

    test('forged, malformed and missing cookies are 401, never 500', async () => {
      const client = t.client();
      for (const cookie of [`${SESSION_COOKIE}=${'A'.repeat(43)}`, `${SESSION_COOKIE}=short`, `${SESSION_COOKIE}=%00%ff`, `${SESSION_COOKIE}=`, 'garbage', '']) {
        const response = await client.get('/v1/session', { headers: { cookie } });
        assert.equal(response.status, 401, cookie);
        assert.equal(response.body.code, 'unauthenticated');
      }
    });
  });
}
