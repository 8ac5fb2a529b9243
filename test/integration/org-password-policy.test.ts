import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { defaultOrgPolicy, type OrgPolicy } from '../../src/policy/org-policy.js';
import { createOrgWithRoles, type OrgFixture, stepUp } from '../helpers/orgs.js';
import { startTestServer, strongPassword, type TestServer } from '../helpers/harness.js';

function policyWith(change: (policy: OrgPolicy) => void): OrgPolicy {
  const policy = defaultOrgPolicy();
  change(policy);
  return policy;
}

describe('org password policy: validated by the policy API, enforced on members', () => {
  let t: TestServer;
  let org: OrgFixture;
  before(async () => {
    t = await startTestServer();
    org = await createOrgWithRoles(t, 'pwpolicy');
    await stepUp(org.users.owner);
  });
  after(async () => {
    await t.close();
  });

  test('nonsense password settings are refused with 400 and change nothing', async () => {
    const nonsense: Array<[string, (p: OrgPolicy) => void]> = [
      ['minLength 3', (p) => { p.password.minLength = 3; }],
      ['minLength 7 (below NIST 800-63B)', (p) => { p.password.minLength = 7; }],
      ['minLength 1000', (p) => { p.password.minLength = 1000; }],
      ['historyCount -1', (p) => { p.password.historyCount = -1; }],
      ['historyCount 1.5', (p) => { p.password.historyCount = 1.5; }],
      ['minStrength 5', (p) => { p.password.minStrength = 5; }],
      ['maxAgeDays 0', (p) => { p.password.maxAgeDays = 0; }],
      ['blockCommon "yes"', (p) => { (p.password as Record<string, unknown>)['blockCommon'] = 'yes'; }],
    ];
    for (const [label, change] of nonsense) {
      const response = await org.users.owner.client.put(`/v1/orgs/${org.orgId}/policy`, policyWith(change));
      assert.equal(response.status, 400, label);
      assert.equal(response.body.code, 'invalid_request', label);
    }
    const missing = policyWith(() => undefined) as unknown as { password: Record<string, unknown> };
    delete missing.password['historyCount'];
    // Omitting a field cannot weaken it: it keeps its current value.
    assert.equal((await org.users.owner.client.put(`/v1/orgs/${org.orgId}/policy`, missing)).status, 200);
    assert.deepEqual((await org.users.owner.client.get(`/v1/orgs/${org.orgId}/policy`)).body.password, defaultOrgPolicy().password);
  });

  test('a member is held to the org policy: length, org name as a context word, expiry', async () => {
    const orgName = (await org.users.owner.client.get(`/v1/orgs/${org.orgId}`)).body.org.name as string;
    const updated = await org.users.owner.client.put(`/v1/orgs/${org.orgId}/policy`, policyWith((p) => {
      p.password.minLength = 40;
      p.password.maxAgeDays = 30;
    }));
    assert.equal(updated.status, 200);
    const member = org.users.member;
    const short = await member.client.post('/v1/me/password', { currentPassword: member.password, newPassword: strongPassword() });
    assert.equal(short.status, 400);
    assert.ok(short.body.reasons.includes('too_short'));
    const withOrgName = `${orgName.split(' ')[1]}-${strongPassword()}`;
    const named = await member.client.post('/v1/me/password', { currentPassword: member.password, newPassword: withOrgName });
    assert.ok(named.body.reasons.includes('contains_user_info'), 'the org name is banned inside passwords');

    t.clock.advance(31 * 86_400_000);
    const login = await t.client().post('/v1/login', { email: member.email, password: member.password });
    assert.equal(login.body.passwordChangeRequired, true, 'the org turned expiry on for its members');
    const outsider = await t.client().post('/v1/signup', { email: `outsider.${Date.now()}@example.com`, password: strongPassword() });
    assert.equal(outsider.status, 201, 'users outside the org keep the defaults');
  });

  test('the IP allowlist gate runs before the expiry gate: a refused address gets no change token', async () => {
    const fresh = await createOrgWithRoles(t, 'pwallow');
    await stepUp(fresh.users.owner);
    const blocked = await fresh.users.owner.client.put(`/v1/orgs/${fresh.orgId}/policy?force=true`, policyWith((p) => {
      p.password.maxAgeDays = 30;
      p.network.ipAllowlist = ['10.0.0.0/8'];
    }));
    assert.equal(blocked.status, 200);
    t.clock.advance(31 * 86_400_000);
    const login = await t.client().post('/v1/login', { email: fresh.users.member.email, password: fresh.users.member.password });
    assert.equal(login.status, 403);
    assert.equal(login.body.code, 'ip_not_allowed');
    assert.equal(login.body.changeToken, undefined);
  });
});
