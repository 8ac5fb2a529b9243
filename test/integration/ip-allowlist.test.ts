/**
 * Org IP allowlists: enforced at login, on every session request touching the
 * org, and on every use of a credential bound to the org; `403 ip_not_allowed`
 * and an `ip.blocked` event. Two real source addresses drive it: 127.0.0.1 and
 * 127.0.0.2 (a second loopback address), so the socket address itself is tested,
 * then a forged X-Forwarded-For (ignored unless TRUSTED_PROXIES names the proxy).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { defaultOrgPolicy } from '../../src/policy/org-policy.js';
import { SESSION_COOKIE } from '../../src/http/auth.js';
import type { TestClient } from '../helpers/client.js';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';
import { BODY_ORG_ROUTE_SAMPLES, NOT_TENANT_ROUTES } from '../helpers/org-routes.js';
import { captureEvents, createOrgWithRoles, createToken, invitationTokenFor, type OrgFixture, type OrgUser, stepUp } from '../helpers/orgs.js';

const ALLOWED = '127.0.0.2';
const BLOCKED = '127.0.0.1';

function allowlist(...entries: string[]) {
  const policy = defaultOrgPolicy();
  policy.network.ipAllowlist = entries;
  return policy;
}

/** A new signed-in client for `user` whose connections come from `address`. */
async function loginFrom(t: TestServer, user: OrgUser, address: string, headers: Record<string, string> = {}): Promise<{ client: TestClient; status: number; code?: string }> {
  const client = t.client();
  client.localAddress = address;
  const response = await client.post('/v1/login', { email: user.email, password: user.password }, { headers });
  return { client, status: response.status, code: response.body?.code };
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`IP allowlists by socket address (${store})`, () => {
    let t: TestServer;
    let org: OrgFixture;
    let events: ReturnType<typeof captureEvents>;
    let ownerAllowed: TestClient;
    before(async () => {
      t = await startTestServer({ store });
      events = captureEvents(t);
      org = await createOrgWithRoles(t, 'fenced');
    });
    after(async () => {
      await t.close();
    });

    test('a list that shuts out the caller is refused with 409 unless ?force=true', async () => {
      const { owner } = org.users;
      await stepUp(owner);
      const refused = await owner.client.put(`/v1/orgs/${org.orgId}/policy`, allowlist(`${ALLOWED}/32`));
      assert.equal(refused.status, 409);
      assert.equal(refused.body.code, 'would_lock_out_self');
      assert.deepEqual((await owner.client.get(`/v1/orgs/${org.orgId}/policy`)).body.network.ipAllowlist, []);
      const including = await owner.client.put(`/v1/orgs/${org.orgId}/policy`, allowlist('127.0.0.0/8'));
      assert.equal(including.status, 200, 'a list that includes the caller needs no force');
      const forced = await owner.client.put(`/v1/orgs/${org.orgId}/policy?force=true`, allowlist(`${ALLOWED}/32`, '2001:db8::/32'));
      assert.equal(forced.status, 200);
      assert.equal(events.findLast((e) => e.action === 'policy.updated')?.details?.['forced'], true);
      const lockedOut = await owner.client.get(`/v1/orgs/${org.orgId}`);
      assert.equal(lockedOut.status, 403, 'forced, the owner is outside the list like anyone else');
      assert.equal(lockedOut.body.code, 'ip_not_allowed');
      const fromInside = await loginFrom(t, owner, ALLOWED);
      assert.equal(fromInside.status, 200);
      ownerAllowed = fromInside.client;
      assert.equal((await ownerAllowed.get(`/v1/orgs/${org.orgId}`)).status, 200);
    });

    test('session requests touching the org are refused from outside, with an ip.blocked event; others are not', async () => {
      const { member } = org.users;
      const blocked = await member.client.get(`/v1/orgs/${org.orgId}/members`);
      assert.equal(blocked.status, 403);
      assert.equal(blocked.body.code, 'ip_not_allowed');
      assert.ok(!blocked.text.includes(member.email), 'nothing of the org leaks');
      const event = events.findLast((e) => e.action === 'ip.blocked' && e.actor.id === member.userId)!;
      assert.equal(event.orgId, org.orgId);
      assert.equal(event.ip, BLOCKED);
      assert.equal(event.outcome, 'denied');
      assert.equal(event.details?.['via'], 'request');
      assert.equal((await member.client.get('/v1/session')).status, 200, 'the account itself is not the org\'s');
      const forged = await member.client.get(`/v1/orgs/${org.orgId}`, { headers: { 'x-forwarded-for': ALLOWED } });
      assert.equal(forged.status, 403, 'X-Forwarded-For from a client is not believed');
    });

    // Threat: a session from outside the list mints a token bound to the org and
    // so touches the org from an address the org refuses (the org id rides in
    // the body, not the path, so the path guard alone would not see it).
    test('binding a token to the org from outside is refused like any org request; unbound tokens are the user\'s', async () => {
      const { member } = org.users;
      const outside = await member.client.post('/v1/me/tokens', { name: 'bound', scopes: ['org:read'], orgId: org.orgId });
      assert.equal(outside.status, 403);
      assert.equal(outside.body.code, 'ip_not_allowed');
      const event = events.findLast((e) => e.action === 'ip.blocked' && e.actor.id === member.userId)!;
      assert.equal(event.orgId, org.orgId);
      assert.equal(event.ip, BLOCKED);
      assert.equal(event.details?.['via'], 'request');
      assert.ok(!events.some((e) => e.action === 'api_token.created' && e.actor.id === member.userId), 'no token was made');
      assert.equal((await member.client.post('/v1/me/tokens', { name: 'unbound', scopes: ['profile:read'] })).status, 201);
      const inside = (await loginFrom(t, member, ALLOWED)).client;
      const bound = await inside.post('/v1/me/tokens', { name: 'bound', scopes: ['org:read'], orgId: org.orgId });
      assert.equal(bound.status, 201, bound.text);
      assert.equal(bound.body.orgId, org.orgId);
    });

    test('every org route, present and future, answers ip_not_allowed from outside', async () => {
      const routes = t.server.app.rampart.routes.filter((route) => route.orgIdIn.includes('path'));
      assert.ok(routes.length >= 7);
      for (const route of routes) {
        const path = route.url.replace(/:([A-Za-z]+)/g, (_, name: string) => (name === 'orgId' ? org.orgId : org.users.member.userId));
        const response = await org.users.owner.client.request(route.method, path, route.method === 'GET' || route.method === 'DELETE' ? {} : { json: {} });
        assert.equal(response.status, 403, `${route.method} ${route.url}`);
        assert.equal(response.body.code, 'ip_not_allowed', `${route.method} ${route.url}`);
      }
      // Routes that name the org in the body are held to the same list (their samples are valid requests).
      const naming = t.server.app.rampart.routes.filter((route) => route.orgIdIn.length > 0 && !route.orgIdIn.includes('path'))
        .filter((route) => !(`${route.method} ${route.url}` in NOT_TENANT_ROUTES));
      assert.ok(naming.some((route) => route.url === '/v1/me/tokens'), 'control: POST /v1/me/tokens is discovered');
      for (const route of naming) {
        const sample = BODY_ORG_ROUTE_SAMPLES.find((s) => s.method === route.method && s.url === route.url);
        assert.ok(sample, `no sample for ${route.method} ${route.url} in test/helpers/org-routes.ts`);
        const request = sample.build(org.orgId);
        const response = await org.users.owner.client.request(route.method, request.query ? `${route.url}?${request.query}` : route.url, { json: request.body });
        assert.equal(response.status, 403, `${route.method} ${route.url}`);
        assert.equal(response.body.code, 'ip_not_allowed', `${route.method} ${route.url}`);
      }
    });

    test('login: refused from outside when no org of the user admits the address', async () => {
      const { member } = org.users;
      const outside = await loginFrom(t, member, BLOCKED);
      assert.equal(outside.status, 403);
      assert.equal(outside.code, 'ip_not_allowed');
      assert.equal(outside.client.cookies.get(SESSION_COOKIE), undefined, 'no session');
      assert.equal(events.findLast((e) => e.action === 'ip.blocked')?.details?.['via'], 'login');
      const forged = await loginFrom(t, member, BLOCKED, { 'x-forwarded-for': ALLOWED });
      assert.equal(forged.status, 403);
      const inside = await loginFrom(t, member, ALLOWED);
      assert.equal(inside.status, 200);
      assert.equal((await inside.client.get(`/v1/orgs/${org.orgId}`)).status, 200);
      assert.equal((await inside.client.get('/v1/session')).body.session.ip, ALLOWED);
      const wrongPassword = t.client();
      const bad = await wrongPassword.post('/v1/login', { email: member.email, password: 'not-the-password-at-all' });
      assert.equal(bad.body.code, 'invalid_credentials', 'the allowlist is only revealed after the password is right');
    });

    test('a user in two orgs: login passes when one admits the address; the fenced org stays fenced', async () => {
      const other = await createOrgWithRoles(t, 'open');
      const { auditor } = org.users;
      await t.server.services.orgs.addMember(other.orgId, auditor.userId, 'member', { type: 'system', id: null });
      const login = await loginFrom(t, auditor, BLOCKED);
      assert.equal(login.status, 200);
      assert.equal((await login.client.get(`/v1/orgs/${other.orgId}`)).status, 200);
      assert.equal((await login.client.get(`/v1/orgs/${org.orgId}`)).status, 403);
    });

    test('credentials bound to the org are held to its list on every route; unbound ones on the org\'s routes', async () => {
      const member = (await loginFrom(t, org.users.member, ALLOWED)).client;
      await member.post('/v1/me/reauth', { password: org.users.member.password });
      const asMember = { ...org.users.member, client: member };
      const bound = await createToken(asMember, ['profile:read', 'org:read'], org.orgId);
      const unbound = await createToken(asMember, ['profile:read', 'org:read']);
      const from = (address: string) => { const client = t.client(); client.localAddress = address; return client; };
      const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

      const outside = await from(BLOCKED).get('/v1/session', bearer(bound));
      assert.equal(outside.status, 403);
      assert.equal(outside.body.code, 'ip_not_allowed');
      const event = events.findLast((e) => e.action === 'ip.blocked')!;
      assert.equal(event.details?.['via'], 'token');
      assert.equal(event.orgId, org.orgId);
      assert.equal((await from(ALLOWED).get('/v1/session', bearer(bound))).status, 200);
      assert.equal((await from(ALLOWED).get(`/v1/orgs/${org.orgId}`, bearer(bound))).status, 200);
      assert.equal((await from(BLOCKED).get(`/v1/orgs/${org.orgId}`, bearer(bound))).status, 403);

      assert.equal((await from(BLOCKED).get('/v1/session', bearer(unbound))).status, 200, 'an unbound token is the user\'s, not the org\'s');
      assert.equal((await from(BLOCKED).get(`/v1/orgs/${org.orgId}`, bearer(unbound))).body.code, 'ip_not_allowed');

      // An access JWT minted from the bound token inside carries the org, and the list, with it.
      const minted = await from(ALLOWED).post('/v1/token/access', undefined, bearer(bound));
      assert.equal(minted.status, 200, minted.text);
      const jwt = minted.body.accessToken as string;
      assert.equal((await from(ALLOWED).get('/v1/session', bearer(jwt))).status, 200);
      const jwtOutside = await from(BLOCKED).get('/v1/session', bearer(jwt));
      assert.equal(jwtOutside.status, 403);
      assert.equal(jwtOutside.body.code, 'ip_not_allowed');
      assert.equal((await from(BLOCKED).post('/v1/token/access', undefined, bearer(bound))).status, 403, 'nor can it be minted outside');
    });

    test('accepting an invitation to a fenced org from outside is refused', async () => {
      const invitee = await signUp(t, 'fenced-invitee');
      assert.equal((await ownerAllowed.post(`/v1/orgs/${org.orgId}/invitations`, { email: invitee.email, role: 'member' })).status, 201);
      const token = invitationTokenFor(t, invitee.email);
      const outside = await invitee.client.post('/v1/invitations/accept', { token });
      assert.equal(outside.status, 403);
      assert.equal(outside.body.code, 'ip_not_allowed');
      const inside = await loginFrom(t, invitee as OrgUser, ALLOWED);
      assert.equal((await inside.client.post('/v1/invitations/accept', { token })).status, 200, 'the link was not used up');
    });

    test('emptying the list opens the org again', async () => {
      await ownerAllowed.post('/v1/me/reauth', { password: org.users.owner.password });
      assert.equal((await ownerAllowed.put(`/v1/orgs/${org.orgId}/policy`, defaultOrgPolicy())).status, 200);
      assert.equal((await org.users.member.client.get(`/v1/orgs/${org.orgId}`)).status, 200);
    });
  });
}

describe('IP allowlists behind a trusted proxy (TRUSTED_PROXIES=127.0.0.1/32)', () => {
  let t: TestServer;
  let org: OrgFixture;
  before(async () => {
    t = await startTestServer({ env: { TRUSTED_PROXIES: '127.0.0.1/32' } });
    org = await createOrgWithRoles(t, 'proxied');
  });
  after(async () => {
    await t.close();
  });

  test('the proxy\'s X-Forwarded-For is the client address; anyone else\'s is ignored', async () => {
    const { owner, member } = org.users;
    await stepUp(owner);
    const viaProxy = (address: string) => ({ headers: { 'x-forwarded-for': address } });
    // The caller's own address is the forwarded one, so this list does not lock the owner out.
    const saved = await owner.client.put(`/v1/orgs/${org.orgId}/policy`, allowlist('203.0.113.0/24', '2001:db8::/32'), viaProxy('203.0.113.5'));
    assert.equal(saved.status, 200);
    const lockout = await owner.client.put(`/v1/orgs/${org.orgId}/policy`, allowlist('198.51.100.0/24'), viaProxy('203.0.113.5'));
    assert.equal(lockout.body.code, 'would_lock_out_self', 'judged by the forwarded address');
    const outside = await owner.client.put(`/v1/orgs/${org.orgId}/policy`, allowlist('198.51.100.0/24'), viaProxy('198.51.100.1'));
    assert.equal(outside.body.code, 'ip_not_allowed', 'and from outside the current list nothing can be changed');

    assert.equal((await member.client.get(`/v1/orgs/${org.orgId}`, viaProxy('203.0.113.7'))).status, 200);
    assert.equal((await member.client.get(`/v1/orgs/${org.orgId}`, viaProxy('2001:db8::7'))).status, 200);
    assert.equal((await member.client.get(`/v1/orgs/${org.orgId}`, viaProxy('198.51.100.1'))).status, 403);
    assert.equal((await member.client.get(`/v1/orgs/${org.orgId}`)).status, 403, 'the proxy itself is not in the list');
    // A client behind the proxy cannot prepend an address: the rightmost untrusted hop counts.
    assert.equal((await member.client.get(`/v1/orgs/${org.orgId}`, viaProxy('203.0.113.7, 198.51.100.1'))).status, 403);
    assert.equal((await member.client.get(`/v1/orgs/${org.orgId}`, viaProxy('198.51.100.1, 203.0.113.7'))).status, 200);

    // From 127.0.0.2, which is not a trusted proxy, the same header is ignored.
    const direct = t.client();
    direct.localAddress = '127.0.0.2';
    const login = await direct.post('/v1/login', { email: member.email, password: member.password }, viaProxy('203.0.113.7'));
    assert.equal(login.status, 403);
    assert.equal(login.body.code, 'ip_not_allowed');

    const proxied = t.client();
    const viaLogin = await proxied.post('/v1/login', { email: member.email, password: member.password }, viaProxy('203.0.113.9'));
    assert.equal(viaLogin.status, 200);
    assert.equal(viaLogin.body.session.ip, '203.0.113.9');
  });
});
