/**
 * Threat: one code path that sets the session cookie without its protections (a missing
 * Secure, HttpOnly or SameSite on, say, the MFA completion) exposes the session on exactly
 * that path (ASVS V3.3.1, V3.3.2, V3.3.4, V7.2.4). Every response that sets or clears the
 * cookie is checked here: signup, password login, MFA completion, step-up (new secret), the
 * session upgrade of a TOTP enrollment, a password change (new secret) and logout.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SESSION_COOKIE } from '../../src/http/auth.js';
import type { TestClient } from '../helpers/client.js';
import { signUp, startTestServer, strongPassword, type TestServer } from '../helpers/harness.js';
import { nextStep, passwordStep, totpNow } from '../helpers/mfa.js';

describe('every response that sets the session cookie sets it hardened', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(() => t.close());

  function hardened(response: Awaited<ReturnType<TestClient['post']>>, where: string, cleared = false): void {
    const cookies = response.setCookies.filter((c) => c.startsWith(`${SESSION_COOKIE}=`));
    assert.equal(cookies.length, 1, `${where}: one session cookie`);
    const cookie = cookies[0]!;
    for (const attribute of [/; Secure(;|$)/, /; HttpOnly(;|$)/, /; SameSite=Strict(;|$)/, /; Path=\/(;|$)/]) assert.match(cookie, attribute, `${where}: ${cookie}`);
    assert.doesNotMatch(cookie, /Domain=/i, where);
    if (cleared) assert.match(cookie, /Max-Age=0|Expires=Thu, 01 Jan 1970/i, `${where}: cleared`);
    else assert.match(cookie, new RegExp(`^${SESSION_COOKIE}=[A-Za-z0-9_-]{43};`), `${where}: a 256-bit secret`);
  }

  test('signup, login, MFA completion, step-up, TOTP enrollment, password change and logout', async () => {
    const user = await signUp(t, 'cookie-paths');
    const client = t.client();
    hardened(await client.post('/v1/login', { email: user.email, password: user.password }), 'login');
    hardened(await client.post('/v1/me/reauth', { password: user.password }), 'step-up');
    const start = await client.post('/v1/me/mfa/totp');
    assert.equal(start.status, 200, start.text);
    const confirm = await client.post('/v1/me/mfa/totp/confirm', { code: totpNow(t, start.body.secret) });
    assert.equal(confirm.status, 200, confirm.text);
    hardened(confirm, 'TOTP enrollment (session upgraded)');
    nextStep(t);

    const step = await passwordStep(t.client(), user.email, user.password);
    const browser = t.client();
    const mfa = await browser.post('/v1/login/mfa', { mfaToken: step.mfaToken, totp: totpNow(t, start.body.secret) });
    assert.equal(mfa.status, 200, mfa.text);
    hardened(mfa, 'MFA completion');
    nextStep(t);

    const newPassword = strongPassword();
    const changed = await browser.post('/v1/me/password', { currentPassword: user.password, newPassword });
    assert.equal(changed.status, 204, changed.text);
    hardened(changed, 'password change (new secret)');
    const logout = await browser.post('/v1/logout');
    assert.equal(logout.status, 204);
    hardened(logout, 'logout', true);
  });
});
