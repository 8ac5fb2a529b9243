/**
 * Attack: a password reset (or an expired-password change) used as a way
 * around the second factor. Whoever controls the mailbox, or knows the old
 * password, must still prove the factor before any session exists (ASVS V6.4.3).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SESSION_COOKIE } from '../../src/http/auth.js';
import { defaultOrgPolicy } from '../../src/policy/org-policy.js';
import { toEffectivePolicy } from '../../src/policy/effective-policy.js';
import { readOutbox, resetTokenFrom } from '../helpers/mail.js';
import { enrollTOTP, totpNow } from '../helpers/mfa.js';
import { signUp, startTestServer, strongPassword, type TestServer } from '../helpers/harness.js';

describe('password reset and expiry never bypass the second factor', () => {
  let t: TestServer;
  const expiring = new Set<string>();
  before(async () => {
    t = await startTestServer();
    const services = t.server.services;
    const original = services.policies;
    services.policies = {
      async forUser(userId) {
        if (!userId || !expiring.has(userId)) return original.forUser(userId);
        const policy = defaultOrgPolicy();
        policy.password.maxAgeDays = 30;
        return toEffectivePolicy(policy, ['Rampart'], []);
      },
    };
  });
  after(async () => {
    await t.close();
  });

  test('after a reset, the next login still stops at the MFA step', async () => {
    const { client, email, password } = await signUp(t, 'mfareset');
    await enrollTOTP(t, client, password);
    await t.client().post('/v1/password/forgot', { email });
    await t.server.services.background.settled();
    const token = resetTokenFrom(readOutbox(t.dataDir).find((mail) => mail.to === email && /Reset/.test(mail.subject))!);
    const newPassword = strongPassword();
    const reset = await t.client().post('/v1/password/reset', { token, password: newPassword });
    assert.equal(reset.status, 204);
    assert.deepEqual(reset.setCookies, []);
    const login = await t.client().post('/v1/login', { email, password: newPassword });
    assert.equal(login.body.mfaRequired, true, 'the factor is still required');
    assert.equal(login.body.session, undefined);
  });

  test('an expired password is changed first, then the second factor, then the session', async () => {
    const { client, email, password, userId } = await signUp(t, 'mfaexpiry');
    const { secret } = await enrollTOTP(t, client, password);
    expiring.add(userId);
    t.clock.advance(31 * 86_400_000);
    const first = await t.client().post('/v1/login', { email, password });
    assert.equal(first.body.passwordChangeRequired, true, 'expiry is checked before the factor');
    const fresh = t.client();
    const changed = await fresh.post('/v1/password/change-expired', { changeToken: first.body.changeToken, password: strongPassword() });
    assert.equal(changed.status, 200);
    assert.equal(changed.body.mfaRequired, true, 'the second factor comes next');
    assert.equal(changed.body.session, undefined);
    assert.equal(fresh.cookies.get(SESSION_COOKIE), undefined, 'no session before the factor');
    const done = await fresh.post('/v1/login/mfa', { mfaToken: changed.body.mfaToken, totp: totpNow(t, secret) });
    assert.equal(done.status, 200);
    assert.equal(done.body.session.mfaVerified, true);
  });
});
