/**
 * Threat: a function reachable without the permission it needs (ASVS V8.2.1,
 * V8.3.1), found by calling the API directly, the way no page would.
 *
 * The walk below is driven by every registered route (`app.rampart.routes`),
 * so a route added later is covered without anyone remembering to list it:
 *  - a route that forgets `config.auth` is public by default, so the public
 *    routes must be exactly the ones API.md documents as such;
 *  - without a credential, every other route answers 401 before its handler;
 *  - API.md: "no token can change a password, a second factor, a token, the
 *    account's existence or a staff role: those need a session". Every
 *    session-only route refuses an API token holding every scope, and an
 *    access JWT minted with every scope it may carry;
 *  - a bearer route refuses a token that holds every scope but the route's own.
 * (Roles inside orgs are walked by cross-tenant-access.test.ts; staff roles by staff.test.ts.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RouteEntry } from '../../src/http/auth.js';
import { API_TOKEN_SCOPES } from '../../src/tokens/api-token-service.js';
import type { TestClient } from '../helpers/client.js';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';
import { stepUp } from '../helpers/mfa.js';

/** API.md: the routes anyone may call without a credential. */
const PUBLIC_ROUTES = [
  'GET /healthz', 'GET /readyz', 'GET /security', 'GET /.well-known/security.txt', 'GET /.well-known/jwks.json',
  'POST /v1/signup', 'POST /v1/login', 'POST /v1/login/mfa', 'POST /v1/login/webauthn/options',
  'POST /v1/password/forgot', 'POST /v1/password/reset', 'POST /v1/password/change-expired', 'POST /v1/email/verify',
].sort();

const key = (route: RouteEntry) => `${route.method} ${route.url}`;
/** A concrete path for a route: each `:param` gets an id of the right shape that names nothing. */
const pathOf = (route: RouteEntry) => route.url.replace(/:([A-Za-z]+)/g, (_m, name: string) => `${name.toLowerCase().slice(0, 3)}_AAAAAAAAAAAAAAAAAAAAAA`);
const scopesOf = (route: RouteEntry): readonly string[] => (route.scope === undefined ? [] : typeof route.scope === 'string' ? [route.scope] : route.scope);

describe('function-level access: every route, by what the caller presents', () => {
  let t: TestServer;
  let routes: RouteEntry[];
  let anon: TestClient;
  /** An API token holding every scope, and an access JWT holding every scope a JWT may carry. */
  let bearers: Array<{ kind: string; token: string }>;
  before(async () => {
    t = await startTestServer();
    routes = t.server.app.rampart.routes;
    anon = t.client();
    const { client, password } = await signUp(t, 'bearer');
    await stepUp(client, password); // org:admin needs a fresh step-up
    const apiToken = await client.post('/v1/me/tokens', { name: 'every scope', scopes: [...API_TOKEN_SCOPES] });
    assert.equal(apiToken.status, 201);
    const jwt = await client.post('/v1/token/access', { scopes: API_TOKEN_SCOPES.filter((scope) => scope !== 'introspect') });
    assert.equal(jwt.status, 200);
    bearers = [{ kind: 'API token', token: apiToken.body.token }, { kind: 'access JWT', token: jwt.body.accessToken }];
  });
  after(async () => {
    await t.close();
  });

  function call(route: RouteEntry, headers: Record<string, string> = {}) {
    return anon.request(route.method, pathOf(route), { headers, noCookies: true, ...(route.method === 'GET' || route.method === 'DELETE' ? {} : { json: {} }) });
  }

  test('the public routes are exactly the documented ones; every other route authenticates', () => {
    assert.ok(routes.length > 40, 'the walk sees the routes');
    assert.deepEqual(routes.filter((route) => route.auth === 'none').map(key).sort(), PUBLIC_ROUTES);
  });

  test('without a credential every non-public route answers 401 unauthenticated', async () => {
    for (const route of routes.filter((r) => r.auth !== 'none')) {
      const response = await call(route);
      assert.equal(response.status, 401, key(route));
      assert.equal(response.body.code, 'unauthenticated', key(route));
    }
  });

  test('a safe method never reaches a state-changing route: GET and HEAD of a path that only changes state answer 405 (ASVS V3.5.3)', async () => {
    const safe = new Set(routes.filter((r) => r.method === 'GET' || r.method === 'HEAD').map((r) => r.url));
    const changing = [...new Set(routes.filter((r) => !['GET', 'HEAD', 'OPTIONS'].includes(r.method) && !safe.has(r.url)).map((r) => r.url))];
    assert.ok(changing.length > 20, 'the walk sees the state-changing paths');
    const session = (await signUp(t, 'safe-methods')).client;
    for (const url of changing) {
      for (const method of ['GET', 'HEAD'] as const) {
        const response = await session.request(method, pathOf({ url } as RouteEntry));
        assert.equal(response.status, 405, `${method} ${url}`);
        if (method === 'GET') assert.equal(response.body.code, 'method_not_allowed', `${method} ${url}`);
      }
    }
  });

  test('no bearer credential reaches a session-only route, whatever its scopes', async () => {
    const sessionOnly = routes.filter((r) => r.auth === 'session');
    assert.ok(sessionOnly.some((r) => key(r) === 'POST /v1/me/password') && sessionOnly.some((r) => key(r) === 'POST /v1/admin/assume'));
    for (const { kind, token } of bearers) {
      for (const route of sessionOnly) {
        const response = await call(route, { authorization: `Bearer ${token}` });
        assert.equal(response.status, 403, `${kind}: ${key(route)}`);
        assert.equal(response.body.code, 'insufficient_scope', `${kind}: ${key(route)}`);
      }
    }
  });

  test('a bearer route needs its own scope: every other scope is not enough', async () => {
    const { client, password } = await signUp(t, 'scoped');
    await stepUp(client, password);
    const walked: string[] = [];
    for (const route of routes.filter((r) => r.auth === 'user')) {
      const others = API_TOKEN_SCOPES.filter((scope) => !scopesOf(route).includes(scope));
      if (others.length === 0) continue; // POST /v1/token/access takes a token holding any scope
      const created = await client.post('/v1/me/tokens', { name: 'others', scopes: others });
      assert.equal(created.status, 201);
      const response = await call(route, { authorization: `Bearer ${created.body.token}` });
      assert.equal(response.status, 403, key(route));
      assert.equal(response.body.code, 'insufficient_scope', key(route));
      assert.equal((await client.delete(`/v1/me/tokens/${created.body.id}`)).status, 204);
      walked.push(key(route));
    }
    assert.ok(walked.includes('GET /v1/session') && walked.includes('POST /v1/introspect') && walked.includes('GET /v1/orgs/:orgId/audit'));
  });
});

describe('no default account (ASVS V6.3.2)', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(async () => {
    await t.close();
  });

  test('a fresh install holds no account and no staff grant: the usual defaults are refused like any unknown login', async () => {
    const db = t.server.services.stores.main.db;
    const count = async (table: 'users' | 'staff_roles') => Number((await db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    assert.equal(await count('users'), 0);
    assert.equal(await count('staff_roles'), 0);
    const client = t.client();
    for (const [email, password] of [['admin@example.com', 'admin'], ['root@example.com', 'root'], ['test@example.com', 'test'], ['admin@rampart.local', 'password'], ['sa@example.com', 'changeme']]) {
      const response = await client.post('/v1/login', { email, password });
      assert.equal(response.status, 401, email);
      assert.equal(response.body.code, 'invalid_credentials', email);
      assert.equal(response.setCookies.length, 0, email);
    }
  });
});
