/**
 * Threat: slipping past an org's IP allowlist through the second login step.
 *
 * Attack: the password step is checked against the member's org allowlists, but
 * the mfaToken it returns is a bearer secret that can travel: an attacker relays
 * it (or the allowlist tightens in between) and completes the login from an
 * address the org refuses, getting a session it never should have had. The MFA
 * step re-applies the allowlist before looking at the factor (ASVS V6.3.4:
 * every path to a session has the same strength).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { defaultOrgPolicy } from '../../src/policy/org-policy.js';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { enrollTOTP, passwordStep, stepUp, totpNow } from '../helpers/mfa.js';
import { captureEvents, createOrgWithRoles } from '../helpers/orgs.js';

describe('IP allowlist at the MFA step', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(async () => {
    await t.close();
  });

  test('a login whose second step comes from a refused address gets no session', async () => {
    const events = captureEvents(t);
    const org = await createOrgWithRoles(t, 'allow');
    const member = org.users.member;
    const { secret } = await enrollTOTP(t, member.client, member.password);
    const { mfaToken } = await passwordStep(t.client(), member.email, member.password);

    // The allowlist now excludes the loopback address the test client uses.
    await stepUp(org.users.admin.client, org.users.admin.password);
    const policy = defaultOrgPolicy();
    policy.network.ipAllowlist = ['10.0.0.0/8'];
    assert.equal((await org.users.admin.client.put(`/v1/orgs/${org.orgId}/policy?force=true`, policy)).status, 200);

    const refused = await t.client().post('/v1/login/mfa', { mfaToken, totp: totpNow(t, secret) });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.code, 'ip_not_allowed');
    assert.ok(!refused.setCookies.some((cookie) => cookie.startsWith('__Host-rampart_session=') && !cookie.startsWith('__Host-rampart_session=;')));
    assert.ok(events.some((e) => e.action === 'ip.blocked' && e.actor.id === member.userId && e.details?.['via'] === 'login'));
    assert.ok(!events.some((e) => e.action === 'mfa.failed' && e.actor.id === member.userId), 'the factor was never checked');
  });
});
