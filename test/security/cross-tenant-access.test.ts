/**
 * Threat: cross-tenant access (IDOR/BOLA across organizations; ASVS V8.2.1,
 * V8.2.2, V8.4.1). The attacker is a real customer: the owner of org B, with a
 * session and API tokens holding every scope. They replay EVERY org-scoped route
 * with org A's ids, and org A's own owner replays them with org B's object ids,
 * hoping one route forgets to check membership or to scope a sub-resource by
 * org. Each must answer exactly as for an id that does not exist (404), so
 * nobody can even learn that org A exists. Then each role of org A calls each
 * route, by session and by token, against the permission table written from API.md.
 *
 * The routes are discovered from the running app, so a route added later is
 * walked too, and its missing sample (test/helpers/org-routes.ts) fails the test.
 * That includes routes that name the org in the body (POST /v1/me/tokens with
 * `orgId`), where the path guard of org routes cannot see it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { randomId } from '../../src/crypto/random.js';
import { ORG_ROLES } from '../../src/orgs/permissions.js';
import type { TestClient } from '../helpers/client.js';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import type { RouteEntry } from '../../src/http/auth.js';
import {
  BODY_ORG_ROUTE_SAMPLES, fillPath, NOT_TENANT_ROUTES, ORG_ROUTE_SAMPLES, type OrgRouteContext, type OrgRouteRequest,
} from '../helpers/org-routes.js';
import { createBareUser, createOrgWithRoles, createToken, type OrgFixture, stepUp } from '../helpers/orgs.js';

const ALL_ORG_SCOPES = ['org:read', 'org:admin', 'audit:read', 'profile:read'];

function send(client: TestClient, sample: { method: string; url: string }, orgId: string, request: OrgRouteRequest, headers: Record<string, string> = {}) {
  return client.request(sample.method, fillPath(sample.url, orgId, request), {
    headers, ...(request.body !== undefined ? { json: request.body } : {}),
  });
}

/** A route that names the org in its body or query string (no path params). */
function sendNamed(client: TestClient, sample: { method: string; url: string }, request: OrgRouteRequest, headers: Record<string, string> = {}) {
  return client.request(sample.method, request.query ? `${sample.url}?${request.query}` : sample.url, {
    headers, ...(request.body !== undefined ? { json: request.body } : {}),
  });
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`tenant isolation: every org route, every role (${store})`, () => {
    let t: TestServer;
    let a: OrgFixture;
    let b: OrgFixture;
    let ctx: OrgRouteContext;
    let orgRoutes: RouteEntry[];
    let namingRoutes: RouteEntry[];
    const tokens: Record<string, string> = {};

    before(async () => {
      t = await startTestServer({ store });
      a = await createOrgWithRoles(t, 'victim');
      b = await createOrgWithRoles(t, 'attacker');
      const memberOf = async (orgId: string) => {
        const userId = await createBareUser(t);
        await t.server.services.orgs.addMember(orgId, userId, 'member', { type: 'system', id: null });
        return userId;
      };
      ctx = {
        t, orgId: a.orgId, memberId: await memberOf(a.orgId),
        foreign: { orgId: b.orgId, memberId: b.users.member.userId },
        newMember: () => memberOf(a.orgId),
      };
      for (const user of [...Object.values(a.users), b.users.owner]) await stepUp(user);
      for (const role of ORG_ROLES) tokens[role] = await createToken(a.users[role], ALL_ORG_SCOPES);
      tokens['attacker'] = await createToken(b.users.owner, ALL_ORG_SCOPES);
      tokens['attackerBound'] = await createToken(b.users.owner, ALL_ORG_SCOPES, b.orgId);
      tokens['ownerNoOrgScope'] = await createToken(a.users.owner, ['profile:read']);
      orgRoutes = t.server.app.rampart.routes.filter((route) => route.orgIdIn.includes('path'));
      namingRoutes = t.server.app.rampart.routes.filter((route) => route.orgIdIn.length > 0 && !route.orgIdIn.includes('path'));
    });
    after(async () => {
      await t.close();
    });

    test('the walk sees the org routes, and every one has a sample', () => {
      assert.ok(orgRoutes.length >= 7, `found ${orgRoutes.length} org routes`);
      const missing = orgRoutes.filter((route) => !ORG_ROUTE_SAMPLES.some((s) => s.method === route.method && s.url === route.url));
      assert.deepEqual(missing.map((r) => `${r.method} ${r.url}`), [], 'add a sample for each of these routes to test/helpers/org-routes.ts');
      for (const route of orgRoutes) assert.notEqual(route.auth, 'none', `${route.method} ${route.url} must authenticate`);
    });

    test('every route that names an org in its body or query is walked, or listed as not a tenant\'s with a reason', () => {
      const names = namingRoutes.map((route) => `${route.method} ${route.url}`);
      // Control: the discovery reads schemas, so it does see the one such route API.md has.
      assert.ok(names.includes('POST /v1/me/tokens'), names.join(', '));
      const missing = names.filter((name) => !BODY_ORG_ROUTE_SAMPLES.some((s) => `${s.method} ${s.url}` === name) && !(name in NOT_TENANT_ROUTES));
      assert.deepEqual(missing, [], 'add a BODY_ORG_ROUTE_SAMPLES entry (or a reason in NOT_TENANT_ROUTES) to test/helpers/org-routes.ts');
      const stale = [...BODY_ORG_ROUTE_SAMPLES.map((s) => `${s.method} ${s.url}`), ...Object.keys(NOT_TENANT_ROUTES)].filter((name) => !names.includes(name));
      assert.deepEqual(stale, [], 'samples for routes the app no longer has');
      for (const route of namingRoutes) assert.notEqual(route.auth, 'none', `${route.method} ${route.url} must authenticate`);
    });

    test('naming another org in the body answers exactly like naming a missing org, and changes nothing', async () => {
      const attacker = b.users.owner.client;
      for (const sample of BODY_ORG_ROUTE_SAMPLES) {
        const route = namingRoutes.find((r) => r.method === sample.method && r.url === sample.url)!;
        const credentials: Array<[string, TestClient, Record<string, string>]> = [
          ['session', attacker, {}],
          ['token with every scope', t.client(), { authorization: `Bearer ${tokens['attacker']}` }],
          ['token bound to the attacker\'s org', t.client(), { authorization: `Bearer ${tokens['attackerBound']}` }],
        ];
        for (const [label, client, headers] of credentials) {
          const foreign = await sendNamed(client, sample, sample.build(a.orgId), headers);
          const missing = await sendNamed(client, sample, sample.build(randomId('org')), headers);
          const what = `${sample.method} ${sample.url} with ${label}: ${foreign.text.slice(0, 200)}`;
          if (route.auth === 'user' || label === 'session') assert.equal(foreign.status, 404, what);
          assert.equal(foreign.status, missing.status, what);
          assert.deepEqual(foreign.body, missing.body, what);
        }
        // Control: the same request naming the attacker's own org works, so the 404 above is the org check.
        assert.equal((await sendNamed(attacker, sample, sample.build(b.orgId))).status, sample.ok, `${sample.method} ${sample.url} own org`);
      }
      const bound = await t.server.services.stores.main.db.selectFrom('api_tokens').select('id')
        .where('org_id', '=', a.orgId).where('user_id', '=', b.users.owner.userId).execute();
      assert.deepEqual(bound, [], 'no token of the attacker is bound to org A');
    });

    test('each role names its own org in the body as API.md allows', async () => {
      for (const sample of BODY_ORG_ROUTE_SAMPLES) {
        for (const role of ORG_ROLES) {
          const response = await sendNamed(a.users[role].client, sample, sample.build(a.orgId));
          const what = `${role} ${sample.method} ${sample.url}: ${response.text.slice(0, 200)}`;
          assert.equal(response.status, sample.allowed.includes(role) ? sample.ok : 403, what);
        }
      }
    });

    test('a member of another org gets exactly the answer for a missing org, on every route', async () => {
      const attacker = b.users.owner.client;
      const credentials: Array<[string, Record<string, string>]> = [
        ['session', {}],
        ['token with every scope', { authorization: `Bearer ${tokens['attacker']}` }],
        ['token bound to the attacker\'s org', { authorization: `Bearer ${tokens['attackerBound']}` }],
      ];
      for (const route of orgRoutes) {
        const sample = ORG_ROUTE_SAMPLES.find((s) => s.method === route.method && s.url === route.url);
        const request = sample ? await sample.build(ctx) : { body: {} };
        for (const [label, headers] of credentials) {
          const client = label === 'session' ? attacker : t.client();
          const foreign = await send(client, route, a.orgId, request, headers);
          const missing = await send(client, route, randomId('org'), request, headers);
          const what = `${route.method} ${route.url} with ${label}`;
          if (route.auth === 'user' || label === 'session') assert.equal(foreign.status, 404, what);
          assert.equal(foreign.status, missing.status, what);
          assert.deepEqual(foreign.body, missing.body, what);
        }
      }
      // Nothing changed in org A.
      const members = await a.users.owner.client.get(`/v1/orgs/${a.orgId}/members`);
      assert.ok(!members.body.members.some((m: { userId: string }) => m.userId === b.users.owner.userId));
    });

    test('an id from another org answers like a missing id, even for the owner of the org in the path', async () => {
      for (const sample of ORG_ROUTE_SAMPLES.filter((s) => s.foreign)) {
        const foreign = await send(a.users.owner.client, sample, a.orgId, sample.foreign!(ctx));
        const request = sample.foreign!(ctx);
        const missing = await send(a.users.owner.client, sample, a.orgId, { ...request, params: Object.fromEntries(Object.keys(request.params ?? {}).map((k) => [k, randomId('usr')])) });
        assert.equal(foreign.status, 404, `${sample.method} ${sample.url}`);
        assert.deepEqual(foreign.body, missing.body, `${sample.method} ${sample.url}`);
      }
      // And org B's member is untouched.
      const members = await b.users.owner.client.get(`/v1/orgs/${b.orgId}/members`);
      assert.equal(members.body.members.find((m: { userId: string }) => m.userId === b.users.member.userId).role, 'member');
    });

    test('each role, by session, gets exactly what the permission table allows on each route', async () => {
      for (const sample of ORG_ROUTE_SAMPLES) {
        for (const role of ORG_ROLES) {
          const response = await send(a.users[role].client, sample, a.orgId, await sample.build(ctx));
          const what = `${role} ${sample.method} ${sample.url}: ${response.text.slice(0, 200)}`;
          if (sample.allowed.includes(role)) {
            assert.equal(response.status, sample.ok, what);
          } else {
            assert.equal(response.status, 403, what);
            assert.equal(response.body.code, 'forbidden', what);
          }
        }
      }
    });

    test('a token never grants more than its owner\'s role, and needs the route\'s scope', async () => {
      for (const sample of ORG_ROUTE_SAMPLES) {
        const route = orgRoutes.find((r) => r.method === sample.method && r.url === sample.url)!;
        for (const role of ORG_ROLES) {
          const response = await send(t.client(), sample, a.orgId, await sample.build(ctx), { authorization: `Bearer ${tokens[role]}` });
          const what = `${role} token ${sample.method} ${sample.url}: ${response.text.slice(0, 200)}`;
          if (route.auth === 'session') {
            assert.equal(response.body.code, 'insufficient_scope', what);
          } else if (sample.allowed.includes(role)) {
            assert.equal(response.status, sample.ok, what);
          } else {
            assert.equal(response.status, 403, what);
            assert.equal(response.body.code, 'forbidden', what);
          }
        }
        const noScope = await send(t.client(), sample, a.orgId, await sample.build(ctx), { authorization: `Bearer ${tokens['ownerNoOrgScope']}` });
        assert.equal(noScope.status, 403, `${sample.method} ${sample.url}`);
        assert.equal(noScope.body.code, 'insufficient_scope', `${sample.method} ${sample.url}`);
      }
    });

    test('a role taken away is gone at the next request, for sessions and tokens alike', async () => {
      const { admin } = a.users;
      const invite = ORG_ROUTE_SAMPLES.find((s) => s.url === '/v1/orgs/:orgId/invitations')!;
      assert.equal((await send(admin.client, invite, a.orgId, await invite.build(ctx))).status, 201);
      assert.equal((await a.users.owner.client.patch(`/v1/orgs/${a.orgId}/members/${admin.userId}`, { role: 'member' })).status, 200);
      assert.equal((await send(admin.client, invite, a.orgId, await invite.build(ctx))).status, 403);
      assert.equal((await send(t.client(), invite, a.orgId, await invite.build(ctx), { authorization: `Bearer ${tokens['admin']}` })).status, 403);
    });
  });
}
