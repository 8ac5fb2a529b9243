/**
 * API.md's scope table and step-up marks, as an integrator reads them:
 *  - `profile:read` grants reads under /v1/me (the token list and the data export included);
 *  - `org:read` grants the org reads the owner's role allows (webhooks included);
 *  - `org:admin` grants policy changes (a session still needs its step-up there);
 *  - actions the contract does not mark step-up but that hand out lasting power (an `org:admin`
 *    API token, a webhook) work right after a login, and need a step-up once the session's
 *    sign-in is more than 10 minutes old (a cookie stolen from an old session is not enough).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { REAUTH_WINDOW_MS } from '../../src/auth/flows/step-up.js';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';
import { createOrgWithRoles, createToken, type OrgFixture, stepUp } from '../helpers/orgs.js';
import { Resources } from '../helpers/resources.js';
import { LOOPBACK_RECEIVERS } from '../helpers/webhooks.js';

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` }, noCookies: true });

describe('scopes and recent authentication as API.md states them', () => {
  let t: TestServer;
  let org: OrgFixture;
  const open = new Resources();
  before(async () => {
    t = open.add(await startTestServer({ env: LOOPBACK_RECEIVERS }), (server) => server.close());
    org = await createOrgWithRoles(t, 'scopes');
  });
  after(() => open.close());

  test('profile:read reads everything under /v1/me, the token list and the export included; it changes nothing there', async () => {
    const user = await signUp(t, 'scopes-profile');
    const token = await createToken(user, ['profile:read']);
    const anon = t.client();
    for (const path of ['/v1/session', '/v1/me/sessions', '/v1/me/mfa', '/v1/me/tokens', '/v1/me/security-events', '/v1/me/export']) {
      const read = await anon.get(path, bearer(token));
      assert.equal(read.status, 200, `${path}: ${read.text}`);
    }
    const listed = await anon.get('/v1/me/tokens', bearer(token));
    assert.equal(listed.body.tokens.length, 1);
    assert.equal(listed.body.tokens[0].token, undefined, 'never the token itself');
    const exported = await anon.get('/v1/me/export', bearer(token));
    assert.equal(exported.body.user.email, user.email);
    assert.ok(!exported.text.includes(token), 'no credential in the export');
    const onlyOrg = await createToken(user, ['org:read']);
    const refused = await anon.get('/v1/me/export', bearer(onlyOrg));
    assert.equal(refused.status, 403);
    assert.equal(refused.body.code, 'insufficient_scope');
    const created = await anon.post('/v1/me/tokens', { name: 'x', scopes: ['profile:read'] }, bearer(token));
    assert.equal(created.status, 403, 'no token makes a token');
  });

  test('org:read lists the webhooks where the owner\'s role allows it; a member\'s does not', async () => {
    const ownerRead = await createToken(org.users.owner, ['org:read']);
    const memberRead = await createToken(org.users.member, ['org:read']);
    const anon = t.client();
    const listed = await anon.get(`/v1/orgs/${org.orgId}/webhooks`, bearer(ownerRead));
    assert.equal(listed.status, 200, listed.text);
    assert.ok(Array.isArray(listed.body.webhooks));
    const member = await anon.get(`/v1/orgs/${org.orgId}/webhooks`, bearer(memberRead));
    assert.equal(member.status, 403, member.text);
    const create = await anon.post(`/v1/orgs/${org.orgId}/webhooks`, { url: 'https://127.0.0.1:9/hook', events: ['*'] }, bearer(ownerRead));
    assert.equal(create.status, 403);
    assert.equal(create.body.code, 'insufficient_scope', 'changes need org:admin');
  });

  test('org:admin changes the policy with a token (API.md\'s scope table); a session still needs its step-up', async () => {
    const policy = (await org.users.owner.client.get(`/v1/orgs/${org.orgId}/policy`)).body;
    const adminToken = await createToken(org.users.admin, ['org:admin']);
    const changed = await t.client().put(`/v1/orgs/${org.orgId}/policy`, { ...policy, tokens: { maxLifetimeDays: 30 } }, bearer(adminToken));
    assert.equal(changed.status, 200, changed.text);
    assert.equal(changed.body.tokens.maxLifetimeDays, 30);
    const readOnly = await createToken(org.users.admin, ['org:read']);
    assert.equal((await t.client().put(`/v1/orgs/${org.orgId}/policy`, policy, bearer(readOnly))).body.code, 'insufficient_scope');
    const memberAdmin = await createToken(org.users.member, ['org:admin']);
    assert.equal((await t.client().put(`/v1/orgs/${org.orgId}/policy`, policy, bearer(memberAdmin))).status, 403, 'never more than the owner\'s role');
    const bySession = await org.users.admin.client.put(`/v1/orgs/${org.orgId}/policy`, policy);
    assert.equal(bySession.status, 403);
    assert.equal(bySession.body.code, 'reauth_required', 'a login alone does not count (API.md: step-up)');
    await stepUp(org.users.admin);
    assert.equal((await org.users.admin.client.put(`/v1/orgs/${org.orgId}/policy`, policy)).status, 200);
  });

  test('an org:admin token and a webhook right after a login; once the sign-in is over 10 minutes old, only after a step-up', async () => {
    const fresh = await createOrgWithRoles(t, 'recent');
    const owner = fresh.users.owner;
    const made = await owner.client.post('/v1/me/tokens', { name: 'ci', scopes: ['org:admin'] });
    assert.equal(made.status, 201, made.text);
    const hook = await owner.client.post(`/v1/orgs/${fresh.orgId}/webhooks`, { url: 'https://127.0.0.1:9/hook', events: ['member.added'] });
    assert.equal(hook.status, 201, hook.text);

    t.clock.advance(REAUTH_WINDOW_MS + 1_000);
    const staleToken = await owner.client.post('/v1/me/tokens', { name: 'ci2', scopes: ['org:admin'] });
    assert.equal(staleToken.status, 403);
    assert.equal(staleToken.body.code, 'reauth_required');
    const staleHook = await owner.client.post(`/v1/orgs/${fresh.orgId}/webhooks`, { url: 'https://127.0.0.1:9/hook2', events: ['member.added'] });
    assert.equal(staleHook.status, 403);
    assert.equal(staleHook.body.code, 'reauth_required');
    const plain = await owner.client.post('/v1/me/tokens', { name: 'read', scopes: ['profile:read'] });
    assert.equal(plain.status, 201, 'a token that changes nothing needs no fresh sign-in');

    await stepUp(owner);
    assert.equal((await owner.client.post('/v1/me/tokens', { name: 'ci3', scopes: ['org:admin'] })).status, 201);
    assert.equal((await owner.client.post(`/v1/orgs/${fresh.orgId}/webhooks`, { url: 'https://127.0.0.1:9/hook3', events: ['member.added'] })).status, 201);

    // A new login counts as a recent sign-in again.
    t.clock.advance(REAUTH_WINDOW_MS + 1_000);
    const again = t.client();
    assert.equal((await again.post('/v1/login', { email: owner.email, password: owner.password })).status, 200);
    assert.equal((await again.post('/v1/me/tokens', { name: 'ci4', scopes: ['org:admin'] })).status, 201);
  });

  test('an access JWT minted from a session carries that session\'s proofs and no more: a stale cookie cannot skip the step-up through one', async () => {
    const fresh = await createOrgWithRoles(t, 'jwt-proof');
    const owner = fresh.users.owner;
    const policy = (await owner.client.get(`/v1/orgs/${fresh.orgId}/policy`)).body;
    t.clock.advance(REAUTH_WINDOW_MS + 60_000);
    const jwt = await owner.client.post('/v1/token/access', { scopes: ['org:admin'] });
    assert.equal(jwt.status, 200, jwt.text);
    const token = jwt.body.accessToken as string;
    const weakened = await t.client().put(`/v1/orgs/${fresh.orgId}/policy`, { ...policy, network: { ipAllowlist: [] } }, bearer(token));
    assert.equal(weakened.status, 403, weakened.text);
    assert.equal(weakened.body.code, 'reauth_required');
    const hook = await t.client().post(`/v1/orgs/${fresh.orgId}/webhooks`, { url: 'https://127.0.0.1:9/jwt-hook', events: ['*'] }, bearer(token));
    assert.equal(hook.status, 403, hook.text);
    assert.equal(hook.body.code, 'reauth_required');
    // The session steps up: the JWT it minted before now carries the step-up too (it is checked on the session).
    await stepUp(owner);
    assert.equal((await t.client().put(`/v1/orgs/${fresh.orgId}/policy`, policy, bearer(token))).status, 200);
    assert.equal((await t.client().post(`/v1/orgs/${fresh.orgId}/webhooks`, { url: 'https://127.0.0.1:9/jwt-hook', events: ['*'] }, bearer(token))).status, 201);
    // A JWT minted from an org:admin API token needs none: the token's creation asked for the proof.
    t.clock.advance(REAUTH_WINDOW_MS + 60_000);
    await stepUp(owner);
    const apiToken = await createToken(owner, ['org:admin']);
    t.clock.advance(REAUTH_WINDOW_MS + 60_000);
    const fromToken = await t.client().post('/v1/token/access', { scopes: ['org:admin'] }, bearer(apiToken));
    assert.equal(fromToken.status, 200, fromToken.text);
    assert.equal((await t.client().put(`/v1/orgs/${fresh.orgId}/policy`, policy, bearer(fromToken.body.accessToken))).status, 200);
  });
});
