import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { EXTERNAL_POLL_INTERVAL_MS } from '../../src/store/change-feed.js';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';

// GET /v1/session answers from memory once it has read a session, its profile and its
// memberships (src/store/read-cache.ts). These tests change what it keeps behind its back:
// from another process (a second connection to the SQLite file, as a CLI command would be)
// (seen within EXTERNAL_POLL_INTERVAL_MS) and through the API, and expect the next request to see the change.
describe('kept sessions follow the store', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(async () => {
    await t.close();
  });

  /** Runs `run` on a connection of its own, then waits until the server polls for such writes again. */
  async function otherProcess<T>(run: (db: Database.Database) => T): Promise<T> {
    const db = new Database(join(t.dataDir, 'rampart.db'));
    try {
      return run(db);
    } finally {
      db.close();
      await new Promise((resolve) => setTimeout(resolve, EXTERNAL_POLL_INTERVAL_MS + 1));
    }
  }

  test('a session deleted by another process is refused at the next request', async () => {
    const { client, userId } = await signUp(t, 'cache-delete');
    assert.equal((await client.get('/v1/session')).status, 200);
    assert.equal((await client.get('/v1/session')).status, 200);
    assert.equal(await otherProcess((db) => db.prepare('delete from sessions where user_id = ?').run(userId).changes), 1);
    assert.equal((await client.get('/v1/session')).status, 401);
  });

  test('an account locked by another process is refused at the next request', async () => {
    const { client, userId } = await signUp(t, 'cache-lock');
    assert.equal((await client.get('/v1/session')).status, 200);
    await otherProcess((db) => db.prepare("update users set status = 'locked' where id = ?").run(userId));
    assert.equal((await client.get('/v1/session')).status, 401);
  });

  test('an org created through the API is in the very next session answer', async () => {
    const { client } = await signUp(t, 'cache-org');
    const before = await client.get('/v1/session');
    assert.deepEqual(before.body.orgs, []);
    const created = await client.post('/v1/orgs', { name: 'Cache Org', slug: `cache-org-${Date.now()}` }, { headers: { 'x-csrf-token': before.body.csrfToken } });
    assert.equal(created.status, 201);
    const after = await client.get('/v1/session');
    assert.deepEqual(after.body.orgs.map((org: { id: string }) => org.id), [created.body.org.id]);
  });

  test('a session revoked through the API by another of its user\'s sessions dies at once', async () => {
    const { client, email, password } = await signUp(t, 'cache-revoke');
    const second = t.client();
    assert.equal((await second.post('/v1/login', { email, password })).status, 200);
    assert.equal((await second.get('/v1/session')).status, 200);
    const csrf = (await client.get('/v1/session')).body.csrfToken as string;
    assert.equal((await client.delete('/v1/me/sessions', { headers: { 'x-csrf-token': csrf } })).status, 204);
    assert.equal((await second.get('/v1/session')).status, 401);
    assert.equal((await client.get('/v1/session')).status, 200);
  });

  /** A new API token of the client's user, used twice: the first use writes its last use (and drops the kept row), the second keeps it. */
  async function keptApiToken(client: ReturnType<TestServer['client']>): Promise<{ headers: { authorization: string }; noCookies: true }> {
    const csrf = (await client.get('/v1/session')).body.csrfToken as string;
    const created = await client.post('/v1/me/tokens', { name: 'cache', scopes: ['profile:read'] }, { headers: { 'x-csrf-token': csrf } });
    assert.equal(created.status, 201);
    const bearer = { headers: { authorization: `Bearer ${created.body.token as string}` }, noCookies: true as const };
    assert.equal((await client.get('/v1/session', bearer)).status, 200);
    assert.equal((await client.get('/v1/session', bearer)).status, 200);
    return bearer;
  }

  test('an API token revoked by another process is refused at the next request', async () => {
    const { client, userId } = await signUp(t, 'cache-token');
    const bearer = await keptApiToken(client);
    await otherProcess((db) => db.prepare('update api_tokens set revoked_at = ? where user_id = ?').run(Date.now(), userId));
    assert.equal((await client.get('/v1/session', bearer)).status, 401);
  });

  test('an API token whose owner another process locked is refused at the next request', async () => {
    const { client, userId } = await signUp(t, 'cache-token-lock');
    const bearer = await keptApiToken(client);
    await otherProcess((db) => db.prepare("update users set status = 'locked' where id = ?").run(userId));
    assert.equal((await client.get('/v1/session', bearer)).status, 401);
  });

  test('an API token revoked through the API dies at once', async () => {
    const { client } = await signUp(t, 'cache-token-api');
    const bearer = await keptApiToken(client);
    const session = await client.get('/v1/session');
    const listed = await client.get('/v1/me/tokens');
    const id = (listed.body.tokens as Array<{ id: string }>)[0]!.id;
    assert.equal((await client.delete(`/v1/me/tokens/${id}`, { headers: { 'x-csrf-token': session.body.csrfToken } })).status, 204);
    assert.equal((await client.get('/v1/session', bearer)).status, 401);
  });

  test('an account whose row alone changes in this process (no session or token row touched) is refused at once, by session and by token', async () => {
    const { client, userId } = await signUp(t, 'cache-users-only');
    const bearer = await keptApiToken(client);
    assert.equal((await client.get('/v1/session')).status, 200);
    await t.server.services.stores.main.db.updateTable('users').set({ status: 'locked' }).where('id', '=', userId).execute();
    assert.equal((await client.get('/v1/session', bearer)).status, 401, 'the kept token follows its owner');
    assert.equal((await client.get('/v1/session')).status, 401, 'the kept session follows its user');
  });

  test('a handler changing the session it is given does not change the kept one', async () => {
    const { client } = await signUp(t, 'cache-copy');
    const first = (await client.get('/v1/session')).body;
    const kept = await t.server.services.sessions.authenticate(client.cookies.get('__Host-rampart_session')!);
    assert.ok(kept);
    kept.mfa_verified = 1;
    kept.user_status = 'locked';
    const again = await client.get('/v1/session');
    assert.equal(again.status, 200);
    assert.equal(again.body.session.mfaVerified, first.session.mfaVerified);
  });
});
