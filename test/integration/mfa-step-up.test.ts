import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { REAUTH_WINDOW_MS } from '../../src/auth/flows/step-up.js';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';
import { enrollTOTP, nextStep, passwordStep, totpNow } from '../helpers/mfa.js';

/** Every factor-changing route that API.md marks "step-up". */
const STEP_UP_ROUTES: Array<[method: 'POST' | 'DELETE', path: string]> = [
  ['POST', '/v1/me/mfa/totp'],
  ['DELETE', '/v1/me/mfa/totp'],
  ['POST', '/v1/me/mfa/webauthn/options'],
  ['DELETE', '/v1/me/mfa/webauthn/wac_doesnotexist'],
  ['POST', '/v1/me/mfa/recovery-codes'],
];

describe('step-up for second-factor changes', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(async () => {
    await t.close();
  });

  test('without a reauth in the last 10 minutes every factor change answers 403 reauth_required', async () => {
    const { client, email, password } = await signUp(t, 'stale');
    const { secret, recoveryCodes } = await enrollTOTP(t, client, password);
    const enrolledAt = t.clock.now() - 30_000; // enrollTOTP moved one step on after its reauth
    t.clock.set(enrolledAt + REAUTH_WINDOW_MS);
    for (const [method, path] of STEP_UP_ROUTES) {
      const response = await client.request(method, path);
      assert.equal(response.status, 403, `${method} ${path}`);
      assert.equal(response.body.code, 'reauth_required', `${method} ${path}`);
    }
    // A login, even with MFA, is not a step-up: a cookie stolen right after login must not remove a factor.
    const fresh = t.client();
    const step = await passwordStep(fresh, email, password);
    assert.equal((await fresh.post('/v1/login/mfa', { mfaToken: step.mfaToken, totp: totpNow(t, secret) })).status, 200);
    for (const [method, path] of STEP_UP_ROUTES) {
      assert.equal((await fresh.request(method, path)).body.code, 'reauth_required', `fresh login: ${method} ${path}`);
    }
    nextStep(t);

    // A TOTP step-up opens the window for 10 minutes on that session only.
    assert.equal((await fresh.post('/v1/me/reauth', { totp: totpNow(t, secret) })).status, 204);
    t.clock.advance(REAUTH_WINDOW_MS - 1);
    assert.equal((await client.delete('/v1/me/mfa/totp')).body.code, 'reauth_required', 'the other session did not step up');
    const regenerated = await fresh.post('/v1/me/mfa/recovery-codes');
    assert.equal(regenerated.status, 200);
    assert.ok(!regenerated.body.recoveryCodes.includes(recoveryCodes[0]));
    assert.equal((await fresh.delete('/v1/me/mfa/webauthn/wac_doesnotexist')).status, 404, 'existence is only answered after step-up');

    const removed = await fresh.delete('/v1/me/mfa/totp');
    assert.equal(removed.status, 204);
    assert.equal((await client.get('/v1/session')).status, 401, 'other sessions ended with the factor (ASVS V7.4.3)');
    const status = await fresh.get('/v1/me/mfa');
    assert.deepEqual({ totp: status.body.totp, recoveryCodesLeft: status.body.recoveryCodesLeft }, { totp: false, recoveryCodesLeft: 0 });
    assert.equal((await fresh.get('/v1/session')).body.user.mfaEnabled, false);
    t.clock.advance(1);
    const expired = await fresh.post('/v1/me/mfa/totp');
    assert.equal(expired.body.code, 'reauth_required', 'the window closes at 10 minutes');
  });

  test('TOTP step-up is refused for a user without TOTP, and a pending enrollment does not count', async () => {
    const { client, password } = await signUp(t, 'pending');
    const response = await client.post('/v1/me/reauth', { totp: '123456' });
    assert.equal(response.status, 401);
    assert.equal(response.body.code, 'invalid_mfa');
    await client.post('/v1/me/reauth', { password });
    const start = await client.post('/v1/me/mfa/totp');
    const pending = await client.post('/v1/me/reauth', { totp: totpNow(t, start.body.secret) });
    assert.equal(pending.status, 401, 'an unconfirmed seed is not a factor');
    // A pending enrollment expires after 15 minutes.
    t.clock.advance(15 * 60_000);
    const late = await client.post('/v1/me/mfa/totp/confirm', { code: totpNow(t, start.body.secret) });
    assert.equal(late.status, 409);
    assert.equal(late.body.code, 'totp_not_pending');
  });
});
