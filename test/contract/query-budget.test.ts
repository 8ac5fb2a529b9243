import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
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

test('GET /v1/session reads the session, the profile and the memberships: three statements, no write', async () => {
  const { client } = await signUp(server, 'budget');
  assert.equal((await client.get('/v1/session')).status, 200);
  statements.length = 0;
  counting = true;
  const response = await client.get('/v1/session');
  counting = false;
  assert.equal(response.status, 200);
  assert.equal(statements.length, 3, statements.join('\n'));
  assert.ok(statements.every((sql) => /^\s*select/i.test(sql)), statements.join('\n'));
});

test('a login reads the memberships once: the IP-allowlist gate takes them from the login\'s one policy resolution', async () => {
  const { client, email, password } = await signUp(server, 'budget-login');
  const csrf = (await client.get('/v1/session')).body.csrfToken as string;
  assert.equal((await client.post('/v1/logout', undefined, { headers: { 'x-csrf-token': csrf } })).status, 204);
  statements.length = 0;
  counting = true;
  const response = await client.post('/v1/login', { email, password });
  counting = false;
  assert.equal(response.status, 200);
  // The membership read that carries each org's policy (the audit append's org links read ids only).
  const membershipReads = statements.filter((sql) => /from "org_memberships"/i.test(sql) && /"orgs"\."policy"/i.test(sql));
  assert.equal(membershipReads.length, 1, membershipReads.join('\n'));
});
