import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SESSION_COOKIE } from '../../src/http/auth.js';
import { defaultOrgPolicy, type OrgPolicy } from '../../src/policy/org-policy.js';
import type { TestClient } from '../helpers/client.js';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';
import { enrollTOTP, nextStep, passwordStep, stepUp, totpNow } from '../helpers/mfa.js';
import { captureEvents, createOrgWithRoles, type OrgFixture, type OrgUser } from '../helpers/orgs.js';
import { SoftwareAuthenticator } from '../helpers/software-authenticator.js';

const HOUR = 3_600_000;

function mfaPolicy(methods: OrgPolicy['mfa']['methods'] = ['totp', 'webauthn'], gracePeriodHours = 72): OrgPolicy {
  const policy = defaultOrgPolicy();
  policy.mfa = { required: true, methods, gracePeriodHours };
  return policy;
}

for (const store of ['sqlite', 'postgres'] as const) describe(`org-enforced MFA (${store})`, () => {
  let t: TestServer;
  let events: ReturnType<typeof captureEvents>;
  before(async () => {
    t = await startTestServer({ store });
    events = captureEvents(t);
  });
  after(async () => {
    await t.close();
  });

  /** An org whose owner has TOTP (so they keep administering) and that requires MFA from now. */
  async function requiringOrg(label: string, policy: OrgPolicy): Promise<OrgFixture & { ownerSecret: string; since: number }> {
    const org = await createOrgWithRoles(t, label);
    const { secret } = await enrollTOTP(t, org.users.owner.client, org.users.owner.password);
    await stepUp(org.users.owner.client, org.users.owner.password);
    const since = t.clock.now();
    const put = await org.users.owner.client.put(`/v1/orgs/${org.orgId}/policy`, policy);
    assert.equal(put.status, 200, put.text);
    return { ...org, ownerSecret: secret, since };
  }

  /** The mail in the outbox, as raw RFC 5322 text. */
  function outbox(): string[] {
    const dir = join(t.dataDir, 'outbox');
    return existsSync(dir) ? readdirSync(dir).map((file) => readFileSync(join(dir, file), 'utf8')) : [];
  }

  async function expectEnrollmentOnly(client: TestClient, orgId: string) {
    for (const [method, path] of [['GET', `/v1/orgs/${orgId}`], ['GET', '/v1/me/sessions'], ['POST', '/v1/me/tokens'], ['DELETE', '/v1/me/sessions']] as const) {
      const response = await client.request(method, path, method === 'POST' ? { json: { name: 'x', scopes: ['profile:read'] } } : {});
      assert.equal(response.status, 403, `${method} ${path}`);
      assert.equal(response.body.code, 'mfa_enrollment_required', `${method} ${path}`);
    }
    assert.equal((await client.get('/v1/session')).status, 200, 'the session can be read');
    assert.equal((await client.get('/v1/me/mfa')).body.enrollmentRequired, true);
  }

  test('during the grace period a member without a factor may only enroll; enrolling opens the session', async () => {
    const mailBefore = outbox().length;
    const org = await requiringOrg('grace', mfaPolicy());
    const member = org.users.member;

    // Turning the requirement on is audited with the change, before and after.
    const turnedOn = events.findLast((e) => e.action === 'policy.updated' && e.orgId === org.orgId)!;
    assert.equal(turnedOn.inTransaction, true);
    assert.equal(turnedOn.actor.id, org.users.owner.userId);
    assert.equal((turnedOn.details?.['before'] as OrgPolicy).mfa.required, false);
    assert.deepEqual((turnedOn.details?.['after'] as OrgPolicy).mfa, mfaPolicy().mfa);

    // Turning the requirement on mails every member without a factor, with the deadline; not the owner.
    await t.server.services.mfaNotifier.settled();
    const mails = outbox().slice(mailBefore);
    const recipients = mails.map((mail) => /^To: (.+)$/m.exec(mail)?.[1]?.trim());
    assert.deepEqual(new Set(recipients), new Set([org.users.admin.email, org.users.auditor.email, member.email]));
    const deadline = new Date(org.since + 72 * HOUR).toISOString().replace('T', ' ').slice(0, 16);
    for (const mail of mails) {
      assert.match(mail, /requires a second factor/);
      assert.ok(mail.includes(deadline), 'the grace deadline is in the mail');
    }
    assert.ok(events.some((e) => e.action === 'mfa_requirement.notified' && e.orgId === org.orgId && e.details?.['count'] === 3));
    // A session from before the policy is held to it at once.
    await expectEnrollmentOnly(member.client, org.orgId);

    t.clock.advance(71 * HOUR);
    const browser = t.client();
    const login = await browser.post('/v1/login', { email: member.email, password: member.password });
    assert.equal(login.status, 200);
    assert.equal(login.body.enrollmentRequired, true);
    assert.equal(login.body.enrollBefore, new Date(org.since + 72 * HOUR).toISOString());
    assert.equal(login.body.session.mfaVerified, false);
    assert.ok(browser.cookies.get(SESSION_COOKIE));
    await expectEnrollmentOnly(browser, org.orgId);
    const status = (await browser.get('/v1/me/mfa')).body;
    assert.equal(status.enrollBefore, new Date(org.since + 72 * HOUR).toISOString());

    // Enrollment is open: step-up, TOTP, confirmation. The session proves the factor and is upgraded.
    const { secret } = await enrollTOTP(t, browser, member.password);
    assert.equal((await browser.get(`/v1/orgs/${org.orgId}`)).status, 200);
    assert.equal((await browser.get('/v1/me/mfa')).body.enrollmentRequired, false);

    // From now on the member must use the factor, grace or not.
    t.clock.advance(2 * HOUR);
    const step = await passwordStep(t.client(), member.email, member.password);
    assert.deepEqual(step.methods, ['totp', 'recovery_code']);
    const done = await t.client().post('/v1/login/mfa', { mfaToken: step.mfaToken, totp: totpNow(t, secret) });
    assert.equal(done.status, 200);
    assert.equal(done.body.enrollmentRequired, undefined);
  });

  test('after the grace period login is refused until staff reset the member', async () => {
    const org = await requiringOrg('late', mfaPolicy(['totp', 'webauthn'], 24));
    const auditor = org.users.auditor;
    t.clock.advance(24 * HOUR);
    const refused = await t.client().post('/v1/login', { email: auditor.email, password: auditor.password });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.code, 'mfa_enrollment_required');
    assert.ok(!refused.setCookies.some((c) => c.startsWith(`${SESSION_COOKIE}=`)));
    assert.ok(events.some((e) => e.action === 'login.failed' && e.actor.id === auditor.userId && e.details?.['reason'] === 'mfa_enrollment_required'));
    const wrong = await t.client().post('/v1/login', { email: auditor.email, password: `${auditor.password}x` });
    assert.equal(wrong.body.code, 'invalid_credentials', 'only someone with the password learns about the requirement');

    // Staff reset: the grace restarts for this member only.
    const resetAt = t.clock.now();
    await t.server.services.mfa.reset(auditor.userId, { type: 'staff', id: org.users.owner.userId }, null);
    assert.ok(events.some((e) => e.action === 'mfa.reset' && e.target?.id === auditor.userId));
    const after = await t.client().post('/v1/login', { email: auditor.email, password: auditor.password });
    assert.equal(after.status, 200);
    assert.equal(after.body.enrollmentRequired, true);
    assert.equal(after.body.enrollBefore, new Date(resetAt + 24 * HOUR).toISOString());
    const admin = await t.client().post('/v1/login', { email: org.users.admin.email, password: org.users.admin.password });
    assert.equal(admin.body.code, 'mfa_enrollment_required', 'the others are still refused');
  });

  test('API tokens of a member without a factor work during the grace period and stop after it, like the login', async () => {
    // The member makes an org-bound token before the org requires MFA.
    const org = await createOrgWithRoles(t, 'tokens');
    const member = org.users.member;
    await stepUp(member.client, member.password);
    const created = await member.client.post('/v1/me/tokens', { name: 'ci', scopes: ['profile:read', 'org:read'], orgId: org.orgId });
    assert.equal(created.status, 201, created.text);
    const bearer = { noCookies: true, headers: { authorization: `Bearer ${created.body.token}` } };
    const admin = org.users.admin;
    await enrollTOTP(t, admin.client, admin.password);
    await stepUp(admin.client, admin.password);
    const adminToken = await admin.client.post('/v1/me/tokens', { name: 'ci', scopes: ['org:read'], orgId: org.orgId });
    const adminBearer = { noCookies: true, headers: { authorization: `Bearer ${adminToken.body.token}` } };
    const introspector = await admin.client.post('/v1/me/tokens', { name: 'backend', scopes: ['introspect'] });
    const { secret } = await enrollTOTP(t, org.users.owner.client, org.users.owner.password);
    void secret;
    await stepUp(org.users.owner.client, org.users.owner.password);
    assert.equal((await org.users.owner.client.put(`/v1/orgs/${org.orgId}/policy`, mfaPolicy(['totp', 'webauthn'], 24))).status, 200);

    t.clock.advance(23 * HOUR);
    assert.equal((await t.client().get(`/v1/orgs/${org.orgId}`, bearer)).status, 200, 'within the grace period the token still works');
    t.clock.advance(HOUR);
    for (const path of [`/v1/orgs/${org.orgId}`, '/v1/session']) {
      const refused = await t.client().get(path, bearer);
      assert.equal(refused.status, 403, path);
      assert.equal(refused.body.code, 'mfa_enrollment_required', path);
    }
    // A member with a factor keeps using their tokens.
    assert.equal((await t.client().get(`/v1/orgs/${org.orgId}`, adminBearer)).status, 200);
    // A product backend asking about the member's token hears that it is not active.
    const asked = (token: string) => t.client().post('/v1/introspect', { token }, { noCookies: true, headers: { authorization: `Bearer ${introspector.body.token}` } });
    assert.deepEqual((await asked(created.body.token)).body, { active: false });
    assert.equal((await asked(adminToken.body.token)).body.active, true);
    // Staff reset restarts the grace: the token works again while the member can enroll.
    await t.server.services.mfa.reset(member.userId, { type: 'staff', id: org.users.owner.userId }, null);
    assert.equal((await t.client().get(`/v1/orgs/${org.orgId}`, bearer)).status, 200);
    assert.equal((await asked(created.body.token)).body.active, true);
  });

  test('mfa.methods decides which factors count; the last counting factor cannot be removed', async () => {
    const org = await requiringOrg('methods', mfaPolicy(['webauthn']));
    const member: OrgUser = org.users.member;
    // The member has TOTP, which this org does not count.
    const { secret } = await enrollTOTP(t, member.client, member.password);
    const step = await passwordStep(t.client(), member.email, member.password);
    assert.deepEqual(step.methods, ['totp', 'recovery_code'], 'the own factor must still be proved');
    const browser = t.client();
    const login = await browser.post('/v1/login/mfa', { mfaToken: step.mfaToken, totp: totpNow(t, secret) });
    assert.equal(login.status, 200);
    assert.equal(login.body.session.mfaVerified, false, 'TOTP does not satisfy this org');
    await expectEnrollmentOnly(browser, org.orgId);
    nextStep(t);

    // Register a passkey: the session is upgraded.
    assert.equal((await browser.post('/v1/me/reauth', { totp: totpNow(t, secret) })).status, 204);
    const options = (await browser.post('/v1/me/mfa/webauthn/options')).body;
    const key = new SoftwareAuthenticator(t.server.services.publicUrl);
    const registered = await browser.post('/v1/me/mfa/webauthn', { name: 'Passkey', response: key.register(options) });
    assert.equal(registered.status, 201);
    assert.equal((await browser.get(`/v1/orgs/${org.orgId}`)).status, 200);
    nextStep(t);

    // Now only WebAuthn (and recovery codes) complete a login.
    const next = await passwordStep(t.client(), member.email, member.password);
    assert.deepEqual(next.methods, ['webauthn', 'recovery_code']);
    const viaTotp = await t.client().post('/v1/login/mfa', { mfaToken: next.mfaToken, totp: totpNow(t, secret) });
    assert.equal(viaTotp.status, 401);
    assert.equal(viaTotp.body.code, 'invalid_mfa');
    nextStep(t);

    // Removing TOTP is fine (it does not count); removing the passkey is not.
    await stepUp(browser, member.password);
    assert.equal((await browser.delete('/v1/me/mfa/totp')).status, 204);
    const last = await browser.delete(`/v1/me/mfa/webauthn/${registered.body.id}`);
    assert.equal(last.status, 409);
    assert.equal(last.body.code, 'mfa_required_by_org');
    assert.equal((await browser.get('/v1/me/mfa')).body.webauthn.length, 1, 'nothing was removed');
  });

  test('staff reset removes every factor and ends every session', async () => {
    const { client, email, password, userId } = await signUp(t, 'reset');
    await enrollTOTP(t, client, password);
    await t.server.services.mfa.reset(userId, { type: 'staff', id: null }, { ip: '127.0.0.1', userAgent: null });
    assert.equal((await client.get('/v1/session')).status, 401);
    const login = await t.client().post('/v1/login', { email, password });
    assert.equal(login.status, 200);
    assert.equal(login.body.mfaRequired, undefined, 'no factor left');
    assert.equal(login.body.user.mfaEnabled, false);
    const event = events.find((e) => e.action === 'mfa.reset' && e.target?.id === userId)!;
    assert.equal(event.inTransaction, true);
    assert.deepEqual(event.details, { totp: true, webauthn: 0, recoveryCodes: 10, revoked: event.details?.['revoked'] });
  });
  test('two requiring orgs that accept no method in common: either factor signs in, each org holds its own list, and neither org loses its last factor', async () => {
    const totpOrg = await requiringOrg('disjoint-totp', mfaPolicy(['totp']));
    const keyOrg = await requiringOrg('disjoint-key', mfaPolicy(['webauthn']));
    const member: OrgUser = totpOrg.users.member;
    await t.server.services.orgs.addMember(keyOrg.orgId, member.userId, 'member', { type: 'system', id: null });
    const policy = await t.server.services.policies.forUser(member.userId);
    assert.deepEqual([...policy.mfa.methods].sort(), ['totp', 'webauthn'], 'any method one of them accepts');
    assert.deepEqual(policy.orgMfa.map((org) => [org.orgId, org.methods]).sort(), [[totpOrg.orgId, ['totp']], [keyOrg.orgId, ['webauthn']]].sort());

    const { secret } = await enrollTOTP(t, member.client, member.password);
    // Long past both grace periods: the login must not be refused for good, as it was when no factor could count.
    t.clock.advance(100 * HOUR);
    const step = await passwordStep(t.client(), member.email, member.password);
    assert.deepEqual(step.methods, ['totp', 'recovery_code']);
    const browser = t.client();
    const login = await browser.post('/v1/login/mfa', { mfaToken: step.mfaToken, totp: totpNow(t, secret) });
    assert.equal(login.status, 200, login.text);
    assert.equal(login.body.session.mfaVerified, true);
    assert.equal((await browser.get(`/v1/orgs/${totpOrg.orgId}`)).status, 200);
    const refused = await browser.get(`/v1/orgs/${keyOrg.orgId}`);
    assert.equal(refused.status, 403);
    assert.equal(refused.body.code, 'mfa_enrollment_required');
    assert.match(refused.body.detail, /accepts only webauthn/);
    assert.equal((await browser.get('/v1/me/sessions')).status, 200, 'the account itself is open');
    nextStep(t);

    // A passkey, then a login with it: the other org opens, the first closes.
    assert.equal((await browser.post('/v1/me/reauth', { totp: totpNow(t, secret) })).status, 204);
    const key = new SoftwareAuthenticator(t.server.services.publicUrl);
    const registered = await browser.post('/v1/me/mfa/webauthn', { name: 'Passkey', response: key.register((await browser.post('/v1/me/mfa/webauthn/options')).body) });
    assert.equal(registered.status, 201, registered.text);
    nextStep(t);
    const keyStep = await passwordStep(t.client(), member.email, member.password);
    const laptop = t.client();
    const options = (await laptop.post('/v1/login/webauthn/options', { mfaToken: keyStep.mfaToken })).body;
    assert.equal((await laptop.post('/v1/login/mfa', { mfaToken: keyStep.mfaToken, webauthn: key.assert(options) })).status, 200);
    assert.equal((await laptop.get(`/v1/orgs/${keyOrg.orgId}`)).status, 200);
    assert.equal((await laptop.get(`/v1/orgs/${totpOrg.orgId}`)).status, 403);

    // Each org keeps a factor it counts: TOTP is the first org's only one, the passkey the second's.
    await stepUp(laptop, member.password);
    const lastTotp = await laptop.delete('/v1/me/mfa/totp');
    assert.equal(lastTotp.status, 409);
    assert.equal(lastTotp.body.code, 'mfa_required_by_org');
    const lastKey = await laptop.delete(`/v1/me/mfa/webauthn/${registered.body.id}`);
    assert.equal(lastKey.status, 409);
    assert.deepEqual((await laptop.get('/v1/me/mfa')).body.totp, true, 'nothing was removed');
  });
});
