/**
 * Threat: TOTP code replay.
 *
 * Attack: an attacker who sees a valid code (over a shoulder, through a
 * real-time phishing proxy, in a screen share) submits it again while it is
 * still inside its ±1-step window — up to 90 seconds. RFC 6238 §5.2: "the
 * verifier MUST NOT accept the second attempt of the same OTP after the
 * successful validation has been issued for the first OTP" (ASVS V6.5.1). We
 * store the last accepted time step per user and accept only later steps.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { generateTOTP } from '../../src/auth/mfa/totp.js';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';
import { enrollTOTP, nextStep, passwordStep, totpNow } from '../helpers/mfa.js';

describe('TOTP replay', () => {
  let t: TestServer;
  let email: string;
  let password: string;
  let secret: string;
  before(async () => {
    t = await startTestServer();
    const user = await signUp(t, 'replay');
    ({ email, password } = user);
    ({ secret } = await enrollTOTP(t, user.client, password));
  });
  after(async () => {
    await t.close();
  });

  test('a code that logged in once is refused for a second login, within its window', async () => {
    const code = totpNow(t, secret);
    const victim = await t.client().post('/v1/login/mfa', { mfaToken: (await passwordStep(t.client(), email, password)).mfaToken, totp: code });
    assert.equal(victim.status, 200);
    t.clock.advance(10_000);
    const attacker = await t.client().post('/v1/login/mfa', { mfaToken: (await passwordStep(t.client(), email, password)).mfaToken, totp: code });
    assert.equal(attacker.status, 401);
    assert.equal(attacker.body.code, 'invalid_mfa');
    assert.ok(!attacker.setCookies.some((c) => c.includes('rampart_session=') && !c.includes('rampart_session=;')));
    nextStep(t);
  });

  test('an older step is refused once a later one was used (no going back inside the window)', async () => {
    const previous = generateTOTP(secret, t.clock.now() - 30_000);
    const current = totpNow(t, secret);
    assert.equal((await t.client().post('/v1/login/mfa', { mfaToken: (await passwordStep(t.client(), email, password)).mfaToken, totp: current })).status, 200);
    const late = await t.client().post('/v1/login/mfa', { mfaToken: (await passwordStep(t.client(), email, password)).mfaToken, totp: previous });
    assert.equal(late.status, 401, 'step T-1 after T was accepted');
    nextStep(t);
    assert.equal((await t.client().post('/v1/login/mfa', { mfaToken: (await passwordStep(t.client(), email, password)).mfaToken, totp: totpNow(t, secret) })).status, 200, 'the next step works');
    nextStep(t);
  });

  test('a code used for step-up cannot log in, nor the other way round; nor the enrollment code', async () => {
    const user = await signUp(t, 'replay2');
    const { secret: seed } = await enrollTOTP(t, user.client, user.password);
    t.clock.advance(-30_000); // back to the enrollment step
    const enrollmentCode = totpNow(t, seed);
    const reuse = await t.client().post('/v1/login/mfa', { mfaToken: (await passwordStep(t.client(), user.email, user.password)).mfaToken, totp: enrollmentCode });
    assert.equal(reuse.status, 401, 'the confirming code is spent');
    t.clock.advance(30_000);
    const code = totpNow(t, seed);
    assert.equal((await user.client.post('/v1/me/reauth', { totp: code })).status, 204);
    const login = await t.client().post('/v1/login/mfa', { mfaToken: (await passwordStep(t.client(), user.email, user.password)).mfaToken, totp: code });
    assert.equal(login.status, 401);
  });
});
