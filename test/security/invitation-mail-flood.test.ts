/**
 * Threat: Rampart as a mail cannon. Anyone may sign up, create an org (its name
 * is theirs to choose, and goes into the subject and body) and invite any
 * address: each invitation is a mail from the deployment's domain to a stranger.
 * Only the per-session tier (1200 a minute by default) limited it. Invitations
 * now also spend a per-account mail budget (RATE_LIMIT_ACCOUNT_PER_MINUTE, 10 by
 * default, kept apart from the account's step-up budget), whatever org, session
 * or token sends them, and fail closed (ASVS V2.4.1).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer, uniqueEmail } from '../helpers/harness.js';
import { createOrgWithRoles, outboxMailTo, stepUp, uniqueSlug } from '../helpers/orgs.js';

const PER_ACCOUNT = 3;

describe('invitation mail is limited per inviting account', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ env: { RATE_LIMIT_ACCOUNT_PER_MINUTE: String(PER_ACCOUNT) } });
  });
  after(async () => {
    await t.close();
  });

  test('past the account budget, invitations are refused and no mail goes out; other inviters are unaffected', async () => {
    const org = await createOrgWithRoles(t, 'flood');
    const { owner, admin } = org.users;
    const sent: string[] = [];
    for (let i = 0; i < PER_ACCOUNT; i++) {
      const to = uniqueEmail('flood-target');
      const response = await owner.client.post(`/v1/orgs/${org.orgId}/invitations`, { email: to, role: 'member' });
      assert.equal(response.status, 201, response.text);
      sent.push(to);
    }
    const victim = uniqueEmail('flood-victim');
    const refused = await owner.client.post(`/v1/orgs/${org.orgId}/invitations`, { email: victim, role: 'member' });
    assert.equal(refused.status, 429, refused.text);
    assert.equal(refused.body.code, 'rate_limited');
    assert.ok(Number(refused.headers['retry-after']) >= 1);
    assert.deepEqual(outboxMailTo(t, victim), [], 'no mail to the refused address');
    for (const to of sent) assert.equal(outboxMailTo(t, to).length, 1);

    // A second org or a fresh session is the same account; its step-up budget is not spent by mail.
    await stepUp(owner);
    const other = await owner.client.post('/v1/orgs', { name: 'Second', slug: uniqueSlug('flood2') });
    assert.equal(other.status, 201);
    assert.equal((await owner.client.post(`/v1/orgs/${other.body.org.id}/invitations`, { email: uniqueEmail('x'), role: 'member' })).status, 429);
    const again = t.client();
    assert.equal((await again.post('/v1/login', { email: owner.email, password: owner.password })).status, 200);
    assert.equal((await again.post(`/v1/orgs/${org.orgId}/invitations`, { email: uniqueEmail('y'), role: 'member' })).status, 429);

    // Another admin of the same org has their own budget.
    assert.equal((await admin.client.post(`/v1/orgs/${org.orgId}/invitations`, { email: uniqueEmail('z'), role: 'member' })).status, 201);
  });
});
