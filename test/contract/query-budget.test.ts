import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { SUCCESS_RESOLUTION_MS } from '../../src/auth/login-backoff.js';
import { EXTERNAL_POLL_INTERVAL_MS } from '../../src/store/change-feed.js';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';

// GET /v1/session is the route every page of a product calls: its statements are
// counted (not timed) so that a change that adds a query to it is noticed.
const statements: string[] = [];
let counting = false;
const prototype = Database.prototype as unknown as { prepare(sql: string): Record<string, (...args: unknown[]) => unknown> };
const originalPrepare = prototype.prepare;

let server: TestServer;
before(async () => {
  prototype.prepare = function prepare(this: unknown, sql: string) {
    const statement = originalPrepare.call(this, sql);
    for (const method of ['get', 'all', 'run', 'iterate']) {
      const original = statement[method]!;
      statement[method] = function counted(this: unknown, ...args: unknown[]) {
        if (counting) statements.push(sql);
        return original.apply(this, args);
      };
    }
    return statement;
  };
  server = await startTestServer();
});
after(async () => {
  prototype.prepare = originalPrepare;
  await server?.close();
});

const isPoll = (sql: string) => /^\s*pragma data_version/i.test(sql);

test('GET /v1/session reads the session, the profile and the memberships once (three selects), then from memory until a write changes them', async () => {
  const { client, email, password } = await signUp(server, 'budget');
  statements.length = 0;
  counting = true;
  let response = await client.get('/v1/session');
  counting = false;
  assert.equal(response.status, 200);
  let reads = statements.filter((sql) => !isPoll(sql));
  assert.equal(reads.length, 3, reads.join('\n'));
  assert.ok(reads.every((sql) => /^\s*select/i.test(sql)), reads.join('\n'));

  // Kept: only the polls that ask SQLite whether another process wrote (at most one per interval).
  await new Promise((resolve) => setTimeout(resolve, EXTERNAL_POLL_INTERVAL_MS + 1));
  statements.length = 0;
  counting = true;
  response = await client.get('/v1/session');
  counting = false;
  assert.equal(response.status, 200);
  assert.deepEqual(statements.filter((sql) => !isPoll(sql)), []);
  assert.ok(statements.length >= 1, 'a kept answer still polls for other writers');

  // A second session of the same user, then revoked by the first: a delete in `sessions` empties the cache.
  const other = server.client();
  assert.equal((await other.post('/v1/login', { email, password })).status, 200);
  const otherId = (await other.get('/v1/session')).body.session.id as string;
  const csrf = response.body.csrfToken as string;
  assert.equal((await client.delete(`/v1/me/sessions/${otherId}`, { headers: { 'x-csrf-token': csrf } })).status, 204);
  statements.length = 0;
  counting = true;
  response = await client.get('/v1/session');
  counting = false;
  assert.equal(response.status, 200);
  reads = statements.filter((sql) => !isPoll(sql));
  assert.ok(reads.some((sql) => /from "sessions"/i.test(sql)), reads.join('\n'));
  assert.equal((await other.get('/v1/session')).status, 401);
});

test('a login reads the memberships once (the IP-allowlist gate takes them from the login\'s one policy resolution), and not at all while they are kept', async () => {
  const { client, email, password } = await signUp(server, 'budget-login');
  const membershipReads = () => statements.filter((sql) => /from "org_memberships"/i.test(sql) && /"orgs"\."policy"/i.test(sql));
  const logout = async () => {
    const csrf = (await client.get('/v1/session')).body.csrfToken as string;
    assert.equal((await client.post('/v1/logout', undefined, { headers: { 'x-csrf-token': csrf } })).status, 204);
  };
  await logout();
  // A membership written anywhere empties the kept memberships: this login reads them cold.
  const { client: other } = await signUp(server, 'budget-other');
  const otherCsrf = (await other.get('/v1/session')).body.csrfToken as string;
  assert.equal((await other.post('/v1/orgs', { name: 'Budget Org', slug: `budget-${Date.now()}` }, { headers: { 'x-csrf-token': otherCsrf } })).status, 201);
  statements.length = 0;
  counting = true;
  assert.equal((await client.post('/v1/login', { email, password })).status, 200);
  counting = false;
  // The membership read that carries each org's policy (the audit append's org links read ids only).
  assert.equal(membershipReads().length, 1, membershipReads().join('\n'));

  await logout();
  statements.length = 0;
  counting = true;
  assert.equal((await client.post('/v1/login', { email, password })).status, 200);
  counting = false;
  assert.deepEqual(membershipReads(), [], 'kept since the last login');
});

test('GET /v1/session with an API token, once its token, account, profile and memberships are kept: no read, no write', async () => {
  const { client } = await signUp(server, 'budget-token');
  const csrf = (await client.get('/v1/session')).body.csrfToken as string;
  const created = await client.post('/v1/me/tokens', { name: 'budget', scopes: ['profile:read'] }, { headers: { 'x-csrf-token': csrf } });
  assert.equal(created.status, 201);
  const bearer = { headers: { authorization: `Bearer ${created.body.token as string}` }, noCookies: true };
  // The first use writes the token's last use (and drops the kept row); the second reads it back and keeps it.
  assert.equal((await client.get('/v1/session', bearer)).status, 200);
  assert.equal((await client.get('/v1/session', bearer)).status, 200);
  await new Promise((resolve) => setTimeout(resolve, EXTERNAL_POLL_INTERVAL_MS + 1));
  statements.length = 0;
  counting = true;
  const response = await client.get('/v1/session', bearer);
  counting = false;
  assert.equal(response.status, 200);
  assert.deepEqual(statements.filter((sql) => !isPoll(sql)), []);
});

test('a repeated login from the same address writes nothing to the back-off counters until the hour is up', async () => {
  const { email, password } = await signUp(server, 'budget-repeat');
  const throttleWrites = async () => {
    statements.length = 0;
    counting = true;
    const response = await server.client().post('/v1/login', { email, password });
    counting = false;
    assert.equal(response.status, 200);
    return statements.filter((sql) => /login_throttle/i.test(sql) && !/^\s*select/i.test(sql));
  };
  assert.equal((await throttleWrites()).length, 1, 'the first success from an address marks it known');
  assert.deepEqual(await throttleWrites(), [], 'nothing to reset, and the address is known since moments ago');
  server.clock.advance(SUCCESS_RESOLUTION_MS);
  assert.equal((await throttleWrites()).length, 1, 'an hour later the success is written again (the known window moves on)');
});
