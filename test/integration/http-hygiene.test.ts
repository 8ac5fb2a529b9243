import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Response } from '../helpers/client.js';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';
import { createOrgWithRoles } from '../helpers/orgs.js';
import { sql } from 'kysely';

function assertSecurityHeaders(response: Response, context: string, { corsAllowed = false } = {}): void {
  const h = response.headers;
  assert.equal(h['strict-transport-security'], 'max-age=31536000; includeSubDomains', context);
  assert.match(String(h['content-security-policy']), /default-src 'none'/, context);
  assert.match(String(h['content-security-policy']), /frame-ancestors 'none'/, context);
  assert.match(String(h['content-security-policy']), /base-uri 'none'/, context);
  assert.match(String(h['content-security-policy']), /form-action 'none'/, context);
  assert.equal(h['x-content-type-options'], 'nosniff', context);
  assert.equal(h['referrer-policy'], 'no-referrer', context);
  assert.equal(h['cache-control'], 'no-store', context);
  assert.equal(h['x-frame-options'], 'DENY', context);
  assert.equal(h['server'], undefined, context);
  assert.equal(h['x-powered-by'], undefined, context);
  if (!corsAllowed) assert.equal(h['access-control-allow-origin'], undefined, `${context}: no CORS unless configured`);
  assert.match(String(h['x-request-id']), /^[0-9a-f-]{36}$/, context);
}

function assertProblem(response: Response, status: number, code: string): void {
  assert.equal(response.status, status, response.text);
  assert.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8');
  assert.equal(response.body.type, 'about:blank');
  assert.equal(response.body.status, status);
  assert.equal(response.body.code, code);
  assert.equal(typeof response.body.title, 'string');
}

describe('HTTP hygiene', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(async () => {
    await t.close();
  });

  test('security headers on success, client-error and auth-error responses alike', async () => {
    const client = t.client();
    const origin = { origin: 'https://evil.example' };
    for (const [method, path] of [['GET', '/healthz'], ['GET', '/readyz'], ['GET', '/nope'], ['GET', '/v1/session'], ['POST', '/v1/login'], ['PUT', '/v1/login']] as const) {
      const response = await client.request(method, path, { headers: origin, json: method === 'POST' ? {} : undefined });
      assertSecurityHeaders(response, `${method} ${path}`);
    }
  });

  test('health and readiness', async () => {
    const client = t.client();
    assert.deepEqual((await client.get('/healthz')).body, { status: 'ok' });
    assert.deepEqual((await client.get('/readyz')).body, { status: 'ok' });
  });

  test('a body-less POST sent with Content-Type: application/json and no body is accepted (clients that set the header on every request)', async () => {
    const { client } = await signUp(t, 'empty-json');
    const loggedOut = await client.post('/v1/logout', undefined, { raw: '', headers: { 'content-type': 'application/json' } });
    assert.equal(loggedOut.status, 204, loggedOut.text);
    assertProblem(await client.get('/v1/session'), 401, 'unauthenticated');
  });

  test('every problem body carries type, title, status, code and detail (API.md\'s example)', async () => {
    const client = t.client();
    for (const response of [await client.get('/v1/session'), await client.get('/nope'), await client.request('TRACE', '/v1/session'),
      await client.post('/v1/login', { email: 'nobody@example.com', password: 'long enough password here' })]) {
      assert.deepEqual(Object.keys(response.body).filter((key) => ['type', 'title', 'status', 'code', 'detail'].includes(key)).sort(), ['code', 'detail', 'status', 'title', 'type'], response.text);
      assert.equal(typeof response.body.detail, 'string');
      assert.ok(response.body.detail.length > 0);
    }
  });

  test('404, 405, 413, 415 and validation errors are problem bodies with stable codes', async () => {
    const client = t.client();
    assertProblem(await client.get('/does-not-exist'), 404, 'not_found');
    assertProblem(await client.get('/.git/HEAD'), 404, 'not_found');
    const wrongMethod = await client.get('/v1/login');
    assertProblem(wrongMethod, 405, 'method_not_allowed');
    assert.equal(wrongMethod.headers['allow'], 'POST');
    assertProblem(await client.request('TRACE', '/v1/session'), 405, 'method_not_allowed');
    assertProblem(await client.request('DELETE', '/v1/me/sessions/x/y'), 404, 'not_found');
    assertProblem(await client.post('/v1/login', undefined, { raw: JSON.stringify({ email: 'a@b.co', password: 'x'.repeat(100_000) }), headers: { 'content-type': 'application/json' } }), 413, 'payload_too_large');
    assertProblem(await client.post('/v1/login', undefined, { raw: 'email=a&password=b', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 415, 'unsupported_media_type');
    assertProblem(await client.post('/v1/login', undefined, { raw: '{"email":"a@b.co","password":"x"}', headers: { 'content-type': 'text/plain' } }), 415, 'unsupported_media_type');
    assertProblem(await client.post('/v1/login', undefined, { raw: '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>', headers: { 'content-type': 'application/xml' } }), 415, 'unsupported_media_type');
    assertProblem(await client.post('/v1/login', undefined, { raw: '{"email":', headers: { 'content-type': 'application/json' } }), 400, 'invalid_json');
    // An empty body with a JSON content type is no body: a route that needs one says so by its schema.
    assertProblem(await client.post('/v1/login', undefined, { raw: '', headers: { 'content-type': 'application/json' } }), 400, 'invalid_request');
    assertProblem(await client.post('/v1/login', undefined, { raw: ' ', headers: { 'content-type': 'application/json' } }), 400, 'invalid_json');
    const invalid = await client.post('/v1/login', { email: 'a@b.co', password: 'x', role: 'owner' });
    assertProblem(invalid, 400, 'invalid_request');
    assert.ok(Array.isArray(invalid.body.errors));
    assertProblem(await client.post('/v1/login', { email: { $ne: null }, password: 'x' }), 400, 'invalid_request');
    assertProblem(await client.post('/v1/login', { email: 'a@b.co', password: 12345678 }), 400, 'invalid_request');
    assertProblem(await client.post('/v1/signup', { email: 'a@b.co\r\nBcc: c@d.co', password: 'x' }), 400, 'invalid_request');
    assertProblem(await client.post('/v1/signup', { email: 'z@example.com', password: 'correct horse battery staple', name: 'Bad\u0000Name' }), 400, 'invalid_request');
  });

  test('no source-control metadata, secrets, docs, debug, test or index routes are served (ASVS V13.4.1–V13.4.5, V15.2.3, V4.3.2)', async () => {
    const client = t.client();
    const paths = ['/.git/HEAD', '/.git/config', '/.svn/entries', '/.env', '/config.json', '/rampart.config.json', '/data/keys/master.key',
      '/docs', '/swagger', '/openapi.json', '/documentation/json', '/metrics', '/debug/vars', '/graphql', '/test', '/seed', '/dev/login', '/__e2e',
      '/static/', '/assets/', '/.well-known/', '/v1/', '/', '/package.json', '/node_modules/', '/src/app.ts'];
    for (const path of paths) {
      for (const method of ['GET', 'POST']) {
        const response = await client.request(method, path, method === 'POST' ? { json: {} } : {});
        assertProblem(response, 404, 'not_found');
      }
    }
    for (const method of ['TRACE', 'TRACK', 'PROPFIND', 'SEARCH']) {
      const response = await client.request(method, '/healthz');
      assert.ok(response.status === 405 || response.status === 400, `${method} → ${response.status}`);
      assert.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8', method);
      assert.ok(!response.text.includes('/healthz'), `${method}: nothing echoed`);
    }
  });

  test('an unexpected failure is a bare internal_error whose incident id the log holds, with the cause; the body names nothing internal (ASVS V16.5.1)', async () => {
    const org = await createOrgWithRoles(t, 'incident');
    const db = t.server.services.stores.main.db;
    // A real fault in the real store: the table a route reads is gone.
    await sql`ALTER TABLE webhooks RENAME TO webhooks_gone_for_test`.execute(db);
    let response: Response;
    try {
      response = await org.users.owner.client.get(`/v1/orgs/${org.orgId}/webhooks`);
    } finally {
      await sql`ALTER TABLE webhooks_gone_for_test RENAME TO webhooks`.execute(db);
    }
    assertProblem(response, 500, 'internal_error');
    assertSecurityHeaders(response, 'a 500');
    assert.deepEqual(Object.keys(response.body).sort(), ['code', 'detail', 'incidentId', 'status', 'title', 'type']);
    assert.equal(response.body.detail, response.body.title, 'nothing of the cause in the detail either');
    assert.match(response.body.incidentId, /^[0-9a-f-]{36}$/);
    assert.doesNotMatch(response.text, /webhooks|SQLITE|no such table|select|\.ts:|node_modules/i);
    const line = t.logs.map((entry) => JSON.parse(entry) as Record<string, any>).find((entry) => entry['incidentId'] === response.body.incidentId);
    assert.ok(line, 'the incident id leads to the log line');
    assert.equal(line['level'], 50);
    assert.match(String(line['err']?.message), /no such table/, 'the operator gets the cause');
    assert.equal((await org.users.owner.client.get(`/v1/orgs/${org.orgId}/webhooks`)).status, 200, 'and the route works again');
  });

  test('prototype pollution attempts are refused and change nothing', async () => {
    const client = t.client();
    const response = await client.post('/v1/signup', undefined, {
      raw: '{"email":"proto@example.com","password":"x","__proto__":{"isAdmin":true}}',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(response.status, 400);
    assert.equal(response.body.code, 'invalid_json', 'refused by the JSON parser itself, before any schema');
    const constructorPoison = await client.post('/v1/signup', undefined, {
      raw: '{"email":"proto@example.com","password":"x","constructor":{"prototype":{"isAdmin":true}}}',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(constructorPoison.body.code, 'invalid_json');
    assert.equal(({} as Record<string, unknown>)['isAdmin'], undefined);
  });

  test('authenticated responses are never cacheable and JSON says so', async () => {
    const { client } = await signUp(t, 'hygiene');
    const session = await client.get('/v1/session');
    assert.equal(session.headers['cache-control'], 'no-store');
    assert.equal(session.headers['content-type'], 'application/json; charset=utf-8');
  });

  test('the access log names the path without its query string (where careless clients put secrets)', async () => {
    const client = t.client();
    const canary = `qs-canary-${Date.now()}`;
    for (const path of [`/healthz?token=${canary}`, `/v1/nope?password=${canary}`, `/v1/session?access_token=${canary}`]) {
      await client.get(path);
    }
    const lines = t.logs.map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.ok(lines.some((line) => line['msg'] === 'request completed' && line['path'] === '/healthz' && line['statusCode'] === 200), 'the line is there, with its path');
    assert.ok(lines.some((line) => line['path'] === '/v1/nope' && line['statusCode'] === 404));
    assert.ok(!t.logs.join('\n').includes(canary), 'no query string reached the log');
  });

  test('every refused request leaves a line naming its code, never the refused values (ASVS V16.3.3, V16.2.5)', async () => {
    const client = t.client();
    const canary = `refused-canary-${Date.now()}`;
    const refusals: Array<[Response, string]> = [
      [await client.post('/v1/login', { email: 'a@b.co', password: canary, role: 'owner' }), 'invalid_request'],
      [await client.post('/v1/login', undefined, { raw: `{"email":"a@b.co","password":"${canary}"`, headers: { 'content-type': 'application/json' } }), 'invalid_json'],
      [await client.post('/v1/login', undefined, { raw: `password=${canary}`, headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 'unsupported_media_type'],
    ];
    const lines = t.logs.map((line) => JSON.parse(line) as Record<string, unknown>);
    for (const [response, code] of refusals) {
      assert.equal(response.body.code, code);
      const line = lines.find((entry) => entry['reqId'] === response.headers['x-request-id'] && entry['code'] === code);
      assert.ok(line, `a log line for ${code}`);
      assert.equal(line['msg'], 'request refused');
    }
    const schemaLine = lines.find((entry) => entry['reqId'] === refusals[0]![0].headers['x-request-id'] && entry['code'] === 'invalid_request');
    assert.deepEqual(schemaLine?.['errors'], [{ in: 'body', pointer: '/', message: 'must NOT have additional properties' }], 'where, not what');
    assert.ok(!t.logs.join('\n').includes(canary), 'no refused value reached the log');
  });

  test('a client-chosen request id is not echoed into our logs', async () => {
    const client = t.client();
    const response = await client.get('/healthz', { headers: { 'x-request-id': 'forged-id-123' } });
    assert.notEqual(response.headers['x-request-id'], 'forged-id-123');
    assert.ok(!t.logs.join('\n').includes('forged-id-123'));
  });

  test('ending the session tells the browser to drop what it holds for this origin (ASVS V14.3.1)', async () => {
    const { client } = await signUp(t, 'clear-site');
    const signedIn = await client.get('/v1/session');
    assert.equal(signedIn.headers['clear-site-data'], undefined, 'only an ending session clears anything');
    const logout = await client.post('/v1/logout');
    assert.equal(logout.status, 204);
    assert.ok(logout.setCookies.some((cookie) => /^__Host-rampart_session=;.*Max-Age=0/.test(cookie)), 'the session cookie itself is expired by name');
    assert.equal(logout.headers['clear-site-data'], '"cache", "storage"');

    // Revoking the current session from the sessions list ends it just the same.
    const { client: listing } = await signUp(t, 'clear-site-list');
    const current = (await listing.get('/v1/me/sessions')).body.sessions.find((session: { current: boolean }) => session.current);
    const revoked = await listing.delete(`/v1/me/sessions/${current.id}`);
    assert.equal(revoked.status, 204);
    assert.equal(revoked.headers['clear-site-data'], '"cache", "storage"');
    assert.ok(revoked.setCookies.some((cookie) => /^__Host-rampart_session=;.*Max-Age=0/.test(cookie)));

    const leaving = await signUp(t, 'clear-site-delete');
    assert.equal((await leaving.client.post('/v1/me/reauth', { password: leaving.password })).status, 204);
    const deleted = await leaving.client.delete('/v1/me');
    assert.equal(deleted.status, 204);
    assert.equal(deleted.headers['clear-site-data'], '"cache", "storage"');
  });

  test('a state-changing request with a session cookie but no CSRF header is refused even with a JSON body', async () => {
    const { client } = await signUp(t, 'csrf');
    const token = client.csrfToken;
    client.csrfToken = null;
    const response = await client.delete('/v1/me/sessions', { headers: { origin: 'https://evil.example' } });
    assertProblem(response, 403, 'csrf_failed');
    client.csrfToken = token;
  });
});

describe('CORS, when configured, allows exact origins only', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ env: { CORS_ORIGINS: 'https://app.example.com' } });
  });
  after(async () => {
    await t.close();
  });

  test('the configured origin is allowed with credentials; others and null get nothing', async () => {
    const client = t.client();
    const allowed = await client.get('/healthz', { headers: { origin: 'https://app.example.com' } });
    assert.equal(allowed.headers['access-control-allow-origin'], 'https://app.example.com');
    assert.equal(allowed.headers['access-control-allow-credentials'], 'true');
    for (const origin of ['https://evil.example', 'null', 'https://app.example.com.evil.example']) {
      const refused = await client.get('/healthz', { headers: { origin } });
      assert.equal(refused.headers['access-control-allow-origin'], undefined, origin);
    }
    const preflight = await client.request('OPTIONS', '/v1/login', { headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' } });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers['access-control-allow-origin'], 'https://app.example.com');
  });

  test('a foreign origin gets no CORS header at all, credentials included; preflights carry the security headers (ASVS V3.4.1, V3.4.2)', async () => {
    const client = t.client();
    for (const origin of ['https://evil.example', 'null']) {
      for (const response of [
        await client.get('/healthz', { headers: { origin } }),
        await client.request('OPTIONS', '/v1/login', { headers: { origin, 'access-control-request-method': 'POST' } }),
      ]) {
        const cors = Object.keys(response.headers).filter((name) => name.startsWith('access-control-'));
        assert.deepEqual(cors, [], `${origin}: ${cors.join(', ')}`);
        if (response.status >= 400) assertProblem(response, response.status, response.body.code);
      }
    }
    const preflight = await client.request('OPTIONS', '/v1/login', { headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' } });
    assertSecurityHeaders(preflight, 'preflight', { corsAllowed: true });
    // A malformed preflight from the allowed origin is not answered in plain text.
    const malformed = await client.request('OPTIONS', '/v1/login', { headers: { origin: 'https://app.example.com' } });
    assert.ok(malformed.status < 400 || malformed.headers['content-type'] === 'application/problem+json; charset=utf-8', `${malformed.status} ${malformed.text}`);
  });
});
