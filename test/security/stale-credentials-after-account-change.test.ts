/**
 * Attack: a stolen session cookie (or an access JWT minted from it) that keeps
 * working after the victim reacts. The victim changes or resets the password,
 * deletes the account, or an admin locks it — and the attacker's copy must die
 * at that moment, not at its natural expiry (ASVS V7.4.2, V7.4.3). Each kind of
 * revocation is checked with an old cookie and a session-derived access JWT
 * held by a second, "attacker" client.
 *
 * The same holds for a login half done: an mfaToken won with the old password
 * (and a WebAuthn challenge bound to it) must not finish the login once the
 * password changed or the account was locked, even with the right factor.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SESSION_COOKIE } from '../../src/http/auth.js';
import type { TestClient } from '../helpers/client.js';
import { readOutbox, resetTokenFrom } from '../helpers/mail.js';
import { enrollTOTP, passwordStep, stepUp, totpNow } from '../helpers/mfa.js';
import { signUp, startTestServer, strongPassword, type TestServer } from '../helpers/harness.js';
import { SoftwareAuthenticator } from '../helpers/software-authenticator.js';

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

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`a pending MFA login step dies with the password it was won with (${store})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer({ store });
    });
    after(async () => {
      await t.close();
    });

    /** Live second steps of the user's logins, and WebAuthn login challenges bound to them. */
    async function pending(userId: string): Promise<{ steps: number; challenges: number }> {
      const db = t.server.services.stores.main.db;
      const steps = await db.selectFrom('mfa_login_tokens').select('token_hash').where('user_id', '=', userId).execute();
      const challenges = await db.selectFrom('mfa_webauthn_challenges').select('challenge_hash')
        .where('user_id', '=', userId).where('purpose', '=', 'login').execute();
      return { steps: steps.length, challenges: challenges.length };
    }

    /** The old step with the right code: the step is gone, so no session. */
    async function assertStepDead(mfaToken: string, secret: string, what: string): Promise<void> {
      const late = t.client();
      const response = await late.post('/v1/login/mfa', { mfaToken, totp: totpNow(t, secret) });
      assert.equal(response.status, 401, `${what}: the old mfaToken is refused`);
      assert.equal(response.body.code, 'mfa_token_expired', what);
      assert.deepEqual(response.setCookies, [], `${what}: no session`);
    }

    test('password reset through the mail link voids the step and its WebAuthn challenge', async () => {
      const { client, email, password, userId } = await signUp(t, 'mfastep-reset');
      const { secret } = await enrollTOTP(t, client, password);
      await stepUp(client, password);
      const key = new SoftwareAuthenticator(t.server.services.publicUrl);
      const registration = (await client.post('/v1/me/mfa/webauthn/options')).body;
      assert.equal((await client.post('/v1/me/mfa/webauthn', { name: 'key', response: key.register(registration) })).status, 201);

      const attacker = t.client();
      const { mfaToken, methods } = await passwordStep(attacker, email, password);
      assert.ok(methods.includes('totp') && methods.includes('webauthn'));
      const request = await attacker.post('/v1/login/webauthn/options', { mfaToken });
      assert.equal(request.status, 200);
      assert.deepEqual(await pending(userId), { steps: 1, challenges: 1 });

      await t.client().post('/v1/password/forgot', { email });
      await t.server.services.background.settled();
      const token = resetTokenFrom(readOutbox(t.dataDir).find((mail) => mail.to === email && /Reset/.test(mail.subject))!);
      assert.equal((await t.client().post('/v1/password/reset', { token, password: strongPassword() })).status, 204);

      assert.deepEqual(await pending(userId), { steps: 0, challenges: 0 }, 'the reset removed the step and its challenge');
      await assertStepDead(mfaToken, secret, 'reset');
      const byKey = await attacker.post('/v1/login/mfa', { mfaToken, webauthn: key.assert(request.body) });
      assert.equal(byKey.body.code, 'mfa_token_expired', 'reset: nor with the security key');
      const event = await t.server.services.stores.main.db.selectFrom('audit_events').select('details')
        .where('user_id', '=', userId).where('action', '=', 'password.reset').executeTakeFirstOrThrow();
      assert.equal((JSON.parse(String(event.details)) as { revoked: Record<string, number> }).revoked['mfa_login_steps'], 1, 'the audit event counts the voided step');
    });

    test('password change from another session voids the step', async () => {
      const { client, email, password, userId } = await signUp(t, 'mfastep-change');
      const { secret } = await enrollTOTP(t, client, password);
      const { mfaToken } = await passwordStep(t.client(), email, password);
      assert.equal((await client.post('/v1/me/password', { currentPassword: password, newPassword: strongPassword() })).status, 204);
      assert.deepEqual(await pending(userId), { steps: 0, challenges: 0 });
      await assertStepDead(mfaToken, secret, 'password change');
      assert.equal((await client.get('/v1/session')).status, 200, 'the session that changed the password lives on');
    });

    test('a lock voids the step: unlocking does not revive it', async () => {
      const { client, email, password, userId } = await signUp(t, 'mfastep-lock');
      const { secret } = await enrollTOTP(t, client, password);
      const { mfaToken } = await passwordStep(t.client(), email, password);
      const staff = { type: 'staff' as const, id: 'usr_staff' };
      await t.server.services.accounts.lock(userId, staff, null, 'compromised');
      assert.deepEqual(await pending(userId), { steps: 0, challenges: 0 });
      await t.server.services.accounts.unlock(userId, staff, null);
      await assertStepDead(mfaToken, secret, 'lock then unlock');
    });

    test('account deletion voids the step in its own transaction', async () => {
      const { client, email, password, userId } = await signUp(t, 'mfastep-delete');
      await enrollTOTP(t, client, password);
      await passwordStep(t.client(), email, password);
      assert.equal((await deleteAccount(client, password)).status, 204);
      assert.deepEqual(await pending(userId), { steps: 0, challenges: 0 });
      const event = await t.server.services.stores.main.db.selectFrom('audit_events').select('details')
        .where('user_id', '=', userId).where('action', '=', 'user.deleted').executeTakeFirstOrThrow();
      assert.equal((JSON.parse(String(event.details)) as { revoked: Record<string, number> }).revoked['mfa_login_steps'], 1, 'counted before the user row went');
    });
  });
}

async function deleteAccount(client: TestClient, password: string) {
  assert.equal((await client.post('/v1/me/reauth', { password })).status, 204);
  return client.delete('/v1/me');
}
