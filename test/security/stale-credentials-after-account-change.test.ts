/**
 * Attack: a stolen session cookie (or an access JWT minted from it) that keeps
 * working after the victim reacts. The victim changes or resets the password,
 * deletes the account, or an admin locks it — and the attacker's copy must die
 * at that moment, not at its natural expiry (ASVS V7.4.2, V7.4.3). Each kind of
 * revocation is checked with an old cookie and a session-derived access JWT
 * held by a second, "attacker" client.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SESSION_COOKIE } from '../../src/http/auth.js';
import type { TestClient } from '../helpers/client.js';
import { readOutbox, resetTokenFrom } from '../helpers/mail.js';
import { signUp, startTestServer, strongPassword, type TestServer } from '../helpers/harness.js';

interface Stolen {
  cookie: string;
  accessToken: string;
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`old credentials die with every kind of revocation (${store})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer({ store });
    });
    after(async () => {
      await t.close();
    });

    /** A second session of the victim, as an attacker would hold it: its cookie and an access JWT minted from it. */
    async function steal(email: string, password: string): Promise<Stolen> {
      const attacker = t.client();
      assert.equal((await attacker.post('/v1/login', { email, password })).status, 200);
      const minted = await attacker.post('/v1/token/access', {});
      assert.equal(minted.status, 200);
      const stolen = { cookie: attacker.cookies.get(SESSION_COOKIE)!, accessToken: minted.body.accessToken as string };
      await assertAlive(stolen);
      return stolen;
    }

    async function assertAlive(stolen: Stolen): Promise<void> {
      assert.equal((await t.client().get('/v1/session', { headers: { cookie: `${SESSION_COOKIE}=${stolen.cookie}` } })).status, 200);
      assert.equal((await t.client().get('/v1/session', { headers: { authorization: `Bearer ${stolen.accessToken}` }, noCookies: true })).status, 200);
    }

    async function assertDead(stolen: Stolen, what: string): Promise<void> {
      const byCookie = await t.client().get('/v1/session', { headers: { cookie: `${SESSION_COOKIE}=${stolen.cookie}` } });
      assert.equal(byCookie.status, 401, `${what}: the old cookie is refused`);
      const byJwt = await t.client().get('/v1/session', { headers: { authorization: `Bearer ${stolen.accessToken}` }, noCookies: true });
      assert.equal(byJwt.status, 401, `${what}: the session-derived access JWT is refused`);
    }

    test('password change', async () => {
      const { client, email, password } = await signUp(t, 'victim');
      const stolen = await steal(email, password);
      assert.equal((await client.post('/v1/me/password', { currentPassword: password, newPassword: strongPassword() })).status, 204);
      await assertDead(stolen, 'password change');
    });

    test('password reset', async () => {
      const { email, password } = await signUp(t, 'victim');
      const stolen = await steal(email, password);
      await t.client().post('/v1/password/forgot', { email });
      await t.server.services.background.settled();
      const token = resetTokenFrom(readOutbox(t.dataDir).find((mail) => mail.to === email && /Reset/.test(mail.subject))!);
      assert.equal((await t.client().post('/v1/password/reset', { token, password: strongPassword() })).status, 204);
      await assertDead(stolen, 'password reset');
    });

    test('admin lock', async () => {
      const { email, password, userId } = await signUp(t, 'victim');
      const stolen = await steal(email, password);
      await t.server.services.accounts.lock(userId, { type: 'staff', id: 'usr_staff' }, null, 'compromised');
      await assertDead(stolen, 'lock');
    });

    test('account deletion (DELETE /v1/me, step-up), with an API token too', async () => {
      const { client, email, password } = await signUp(t, 'victim');
      const stolen = await steal(email, password);
      const apiToken = (await client.post('/v1/me/tokens', { name: 'ci', scopes: ['profile:read'] })).body.token as string;
      assert.equal((await deleteAccount(client, password)).status, 204);
      await assertDead(stolen, 'deletion');
      const byApiToken = await t.client().get('/v1/session', { headers: { authorization: `Bearer ${apiToken}` }, noCookies: true });
      assert.equal(byApiToken.status, 401, 'deletion: API tokens end too');
    });
  });
}

async function deleteAccount(client: TestClient, password: string) {
  assert.equal((await client.post('/v1/me/reauth', { password })).status, 204);
  return client.delete('/v1/me');
}
