import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { hasValidApiTokenChecksum } from '../../src/sdk/api-token-format.js';
import { LAST_USED_THROTTLE_MS } from '../../src/tokens/api-token-service.js';
import type { TestClient } from '../helpers/client.js';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';
import { createOrgWithRoles, stepUp } from '../helpers/orgs.js';

const DAY = 86_400_000;
const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` }, noCookies: true });

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`API tokens over HTTPS (${store})`, () => {
    let t: TestServer;
    let owner: { client: TestClient; password: string; userId: string; email: string };
    let anon: TestClient;
    const issued: string[] = [];

    const create = async (body: Record<string, unknown>) => {
      const response = await owner.client.post('/v1/me/tokens', body);
      if (response.status === 201) issued.push(response.body.token);
      return response;
    };

    before(async () => {
      t = await startTestServer({ store });
      owner = await signUp(t, 'tokens');
      anon = t.client();
    });
    after(async () => {
      await t.close();
    });

    test('create shows the token once; list never shows it', async () => {
      const created = await create({ name: 'ci deploy', scopes: ['profile:read'] });
      assert.equal(created.status, 201);
      const { id, token, prefix, scopes, expiresAt } = created.body;
      assert.ok(hasValidApiTokenChecksum(token));
      assert.match(id, /^tok_/);
      assert.ok(token.startsWith(prefix) && prefix.length === 9);
      assert.deepEqual(scopes, ['profile:read']);
      assert.equal(Date.parse(expiresAt), t.clock.now() + 90 * DAY, 'default lifetime: 90 days');
      const list = await owner.client.get('/v1/me/tokens');
      assert.equal(list.status, 200);
      const item = list.body.tokens.find((x: { id: string }) => x.id === id);
      assert.deepEqual({ ...item }, {
        id, name: 'ci deploy', prefix, scopes: ['profile:read'], orgId: null, createdAt: new Date(t.clock.now()).toISOString(),
        expiresAt, lastUsedAt: null, lastUsedIp: null,
      });
      assert.ok(!list.text.includes(token));
    });

    test('a token authenticates within its scope; last use recorded at most once a minute', async () => {
      const { body } = await create({ name: 'reader', scopes: ['profile:read'] });
      const session = await anon.get('/v1/session', bearer(body.token));
      assert.equal(session.status, 200);
      assert.equal(session.body.user.id, owner.userId);
      assert.equal(session.body.csrfToken, undefined, 'no CSRF token for a bearer caller');
      assert.equal((await anon.get('/v1/me/sessions', bearer(body.token))).status, 200);

      const firstUse = t.clock.now();
      const listed = async () => (await owner.client.get('/v1/me/tokens')).body.tokens.find((x: { id: string }) => x.id === body.id);
      assert.equal((await listed()).lastUsedAt, new Date(firstUse).toISOString());
      assert.equal((await listed()).lastUsedIp, '127.0.0.1');
      const raw = await t.server.services.stores.main.db.selectFrom('api_tokens').select('last_used_ip_enc').where('id', '=', body.id).executeTakeFirstOrThrow();
      assert.ok(raw.last_used_ip_enc && !raw.last_used_ip_enc.includes('127.0.0.1'), 'the address is stored encrypted');

      t.clock.advance(LAST_USED_THROTTLE_MS - 1_000);
      assert.equal((await anon.get('/v1/session', bearer(body.token))).status, 200);
      assert.equal((await listed()).lastUsedAt, new Date(firstUse).toISOString(), 'a hot token does not write on every request');
      t.clock.advance(1_000);
      assert.equal((await anon.get('/v1/session', bearer(body.token))).status, 200);
      assert.equal((await listed()).lastUsedAt, new Date(t.clock.now()).toISOString());
    });

    test('a missing scope is 403 insufficient_scope; session-only routes refuse every token', async () => {
      const { body } = await create({ name: 'org reader', scopes: ['org:read', 'introspect'] });
      const refused = await anon.get('/v1/session', bearer(body.token));
      assert.equal(refused.status, 403);
      assert.equal(refused.body.code, 'insufficient_scope');
      const all = await create({ name: 'all', scopes: ['profile:read', 'org:read', 'audit:read', 'introspect'] });
      // No token can manage tokens, sessions or the account (API.md); reading the list is a read under /v1/me.
      assert.equal((await anon.get('/v1/me/tokens', bearer(all.body.token))).status, 200, 'profile:read lists the tokens');
      for (const [method, path] of [['POST', '/v1/me/tokens'], ['DELETE', `/v1/me/tokens/${body.id}`], ['DELETE', '/v1/me/sessions'], ['POST', '/v1/logout'], ['POST', '/v1/me/reauth']] as const) {
        const response = await anon.request(method, path, { ...bearer(all.body.token), ...(method === 'POST' ? { json: { name: 'x', scopes: ['profile:read'] } } : {}) });
        assert.equal(response.status, 403, `${method} ${path}`);
        assert.equal(response.body.code, 'insufficient_scope');
      }
    });

    test('expiry: capped by policy, refused past its end (manual clock)', async () => {
      const capped = await create({ name: 'long', scopes: ['profile:read'], expiresInDays: 400 });
      assert.equal(Date.parse(capped.body.expiresAt), t.clock.now() + 90 * DAY, 'capped at tokens.maxLifetimeDays');
      const eternal = await owner.client.post('/v1/me/tokens', { name: 'forever', scopes: ['profile:read'], expiresInDays: null });
      assert.equal(eternal.status, 400, 'no eternal token without the insecure option');
      const short = await create({ name: 'short', scopes: ['profile:read'], expiresInDays: 1 });
      assert.equal((await anon.get('/v1/session', bearer(short.body.token))).status, 200);
      t.clock.advance(DAY - 1);
      assert.equal((await anon.get('/v1/session', bearer(short.body.token))).status, 200);
      t.clock.advance(1);
      const expired = await anon.get('/v1/session', bearer(short.body.token));
      assert.equal(expired.status, 401);
      assert.equal(expired.body.code, 'unauthenticated');
      // The owner's session idled out meanwhile; sign in again for the next tests.
      assert.equal((await owner.client.post('/v1/login', { email: owner.email, password: owner.password })).status, 200);
    });

    test('revocation ends a token at once; another user cannot revoke it', async () => {
      const { body } = await create({ name: 'to revoke', scopes: ['profile:read'] });
      const other = await signUp(t, 'other');
      assert.equal((await other.client.delete(`/v1/me/tokens/${body.id}`)).status, 404);
      assert.equal((await anon.get('/v1/session', bearer(body.token))).status, 200);
      assert.equal((await owner.client.delete(`/v1/me/tokens/${body.id}`)).status, 204);
      assert.equal((await anon.get('/v1/session', bearer(body.token))).status, 401);
      assert.equal((await owner.client.delete(`/v1/me/tokens/${body.id}`)).status, 404);
      assert.ok(!(await owner.client.get('/v1/me/tokens')).body.tokens.some((x: { id: string }) => x.id === body.id));
      const events = await t.server.services.stores.main.db.selectFrom('audit_events').select(['action', 'actor_type', 'actor_id'])
        .where((eb) => eb.or([eb('target_id', '=', body.id), eb('actor_id', '=', body.id)])).orderBy('seq').execute();
      assert.deepEqual(events.map((e) => e.action), ['api_token.created', 'api_token.used', 'api_token.revoked', 'api_token.rejected'], 'each step is in the audit log');
    });

    test('admin scopes need a recent sign-in or step-up; an org binding needs membership', async () => {
      // The owner signed in more than 10 minutes ago (the expiry test moved the clock a day and logged in again since; move past the window).
      t.clock.advance(11 * 60_000);
      const refused = await owner.client.post('/v1/me/tokens', { name: 'admin', scopes: ['org:admin'] });
      assert.equal(refused.status, 403);
      assert.equal(refused.body.code, 'reauth_required');
      assert.equal((await owner.client.post('/v1/me/reauth', { password: owner.password })).status, 204);
      assert.equal((await create({ name: 'admin', scopes: ['org:admin'] })).status, 201);
      const foreign = await owner.client.post('/v1/me/tokens', { name: 'bound', scopes: ['org:read'], orgId: 'org_not_mine' });
      assert.equal(foreign.status, 404);
      assert.equal((await owner.client.post('/v1/me/tokens', { name: 'x', scopes: ['everything'] })).status, 400);
      assert.equal((await owner.client.post('/v1/me/tokens', { name: 'x', scopes: [] })).status, 400);
      assert.equal((await owner.client.post('/v1/me/tokens', { name: 'x', scopes: ['org:read'], extra: 1 })).status, 400);
    });

    test('an org binding needs membership; the org policy caps the lifetime; the token reaches only its org', async () => {
      const org = (await owner.client.post('/v1/orgs', { name: 'Token Org', slug: `tok-${store}-${Date.now()}` })).body.org;
      const otherOrg = (await owner.client.post('/v1/orgs', { name: 'Other Org', slug: `oth-${store}-${Date.now()}` })).body.org;
      assert.equal((await owner.client.post('/v1/me/reauth', { password: owner.password })).status, 204);
      const policy = (await owner.client.get(`/v1/orgs/${org.id}/policy`)).body;
      policy.tokens.maxLifetimeDays = 7;
      assert.equal((await owner.client.put(`/v1/orgs/${org.id}/policy`, policy)).status, 200);
      const bound = await create({ name: 'bound', scopes: ['org:read'], orgId: org.id, expiresInDays: 30 });
      assert.equal(bound.status, 201);
      assert.equal(bound.body.orgId, org.id);
      assert.equal(Date.parse(bound.body.expiresAt), t.clock.now() + 7 * DAY, "capped by the org's tokens.maxLifetimeDays");
      const unbound = await create({ name: 'unbound', scopes: ['org:read'], expiresInDays: 30 });
      assert.equal(Date.parse(unbound.body.expiresAt), t.clock.now() + 7 * DAY, "the strictest policy of the user's orgs applies to unbound tokens too");
      assert.equal((await anon.get(`/v1/orgs/${org.id}`, bearer(bound.body.token))).status, 200);
      assert.equal((await anon.get(`/v1/orgs/${otherOrg.id}`, bearer(bound.body.token))).status, 404, 'a bound token reaches only its org');
      assert.equal((await anon.get(`/v1/orgs/${otherOrg.id}`, bearer(unbound.body.token))).status, 200);
      const stranger = await signUp(t, 'stranger');
      const refused = await stranger.client.post('/v1/me/tokens', { name: 'x', scopes: ['org:read'], orgId: org.id });
      assert.equal(refused.status, 404, 'non-members cannot bind a token to an org');
    });

    // Threat: org enumeration through token creation. A stranger who guesses or
    // learns an org id must not learn from POST /v1/me/tokens that it exists:
    // the answer for a real org they are not in is byte for byte the one for an
    // id that was never issued, and no token is made.
    test('binding a token to an org the caller is not in answers exactly like a missing org', async () => {
      const org = (await owner.client.post('/v1/orgs', { name: 'Hidden Org', slug: `hid-${store}-${Date.now()}` })).body.org;
      const stranger = await signUp(t, 'prober');
      const before = (await stranger.client.get('/v1/me/tokens')).body.tokens.length;
      const body = (orgId: string) => ({ name: 'probe', scopes: ['org:read'], orgId });
      const real = await stranger.client.post('/v1/me/tokens', body(org.id));
      const missing = await stranger.client.post('/v1/me/tokens', body(`org_${'x'.repeat(22)}`));
      assert.equal(real.status, 404);
      assert.equal(real.headers['content-type'], missing.headers['content-type']);
      assert.deepEqual(real.body, missing.body);
      assert.equal((await stranger.client.get('/v1/me/tokens')).body.tokens.length, before, 'no token was made');
      const denied = await t.server.services.stores.main.db.selectFrom('audit_events').select(['action', 'outcome'])
        .where('actor_id', '=', stranger.userId).where('target_id', '=', org.id).execute();
      assert.deepEqual(denied, [{ action: 'access.denied', outcome: 'denied' }], 'the probe is in the audit log');
    });

    test('a bad checksum is refused as malformed; a typo never reaches a lookup', async () => {
      const { body } = await create({ name: 'typo', scopes: ['profile:read'] });
      const typo = body.token.slice(0, 20) + (body.token[20] === 'a' ? 'b' : 'a') + body.token.slice(21);
      const response = await anon.get('/v1/session', bearer(typo));
      assert.equal(response.status, 401);
      assert.equal(response.body.code, 'invalid_token_format');
    });

    test('password change keeps tokens; lock and deletion end them', async () => {
      const user = await signUp(t, 'lockme');
      const { body } = await user.client.post('/v1/me/tokens', { name: 'svc', scopes: ['profile:read'] });
      issued.push(body.token);
      const services = t.server.services;
      await services.stores.main.db.transaction().execute((trx) => services.revocation.revokeAllForUser(user.userId, 'password_changed', trx));
      assert.equal((await anon.get('/v1/session', bearer(body.token))).status, 200, 'a password change does not end API tokens');
      await services.accounts.lock(user.userId, { type: 'system', id: null }, null, 'test');
      assert.equal((await anon.get('/v1/session', bearer(body.token))).status, 401);
      await services.accounts.unlock(user.userId, { type: 'system', id: null }, null);
      assert.equal((await anon.get('/v1/session', bearer(body.token))).status, 401, 'unlocking does not bring tokens back');
      const second = await signUp(t, 'deleteme');
      const other = await second.client.post('/v1/me/tokens', { name: 'svc', scopes: ['profile:read'] });
      await services.stores.main.db.transaction().execute((trx) => services.revocation.revokeAllForUser(second.userId, 'account_deleted', trx));
      assert.equal((await anon.get('/v1/session', bearer(other.body.token))).status, 401);
    });

    test('a dump of the stores and the logs hold no usable token', async () => {
      assert.ok(issued.length >= 5);
      assert.ok(t.logs.some((line) => line.includes('"req"') || line.includes('request')), 'control: the logs were captured');
      const dump = await dumpStores(t, store);
      for (const token of issued) {
        assert.ok(dump.includes(token.slice(0, 9)), 'control: the dump does hold the token rows');
        assert.ok(!dump.includes(token.slice(9, 30)), 'no part of the secret beyond the display prefix');
        // Not an unkeyed hash either: a stolen row cannot be checked against guesses without the master key.
        for (const encoding of ['hex', 'base64url'] as const) assert.ok(!dump.includes(createHash('sha256').update(token).digest(encoding)));
        assert.ok(!t.logs.some((line) => line.includes(token.slice(9))), 'never in a log line');
      }
    });
  });
}

/** Every row of every table of both stores (and, for SQLite, the raw files with their WAL). */
async function dumpStores(t: TestServer, store: 'sqlite' | 'postgres'): Promise<string> {
  if (store === 'sqlite') {
    return readdirSync(t.dataDir).filter((name) => name.includes('.db')).map((name) => readFileSync(join(t.dataDir, name)).toString('latin1')).join('\n');
  }
  const parts: string[] = [];
  for (const db of [t.server.services.stores.main.db, t.server.services.stores.pii.db] as const) {
    const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
    for (const table of (await db.introspection.getTables()).filter((x) => x.schema === rows[0]!.schema)) {
      parts.push(JSON.stringify(await (db as any).selectFrom(table.name).selectAll().execute()));
    }
  }
  return parts.join('\n');
}

describe('eternal API tokens only behind RAMPART_INSECURE_ALLOW_ETERNAL_API_TOKENS', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ env: { RAMPART_INSECURE_ALLOW_ETERNAL_API_TOKENS: 'true' } });
  });
  after(async () => {
    await t.close();
  });

  test('allowed for a user in no org; refused once an org policy applies', async () => {
    const user = await signUp(t, 'eternal');
    const eternal = await user.client.post('/v1/me/tokens', { name: 'forever', scopes: ['profile:read'], expiresInDays: null });
    assert.equal(eternal.status, 201);
    assert.equal(eternal.body.expiresAt, null);
    t.clock.advance(5 * 365 * DAY);
    assert.equal((await t.client().get('/v1/session', bearer(eternal.body.token))).status, 200);
    await user.client.post('/v1/login', { email: user.email, password: user.password });
    assert.equal((await user.client.post('/v1/orgs', { name: 'Capped', slug: `capped-${Date.now()}` })).status, 201);
    const refused = await user.client.post('/v1/me/tokens', { name: 'forever 2', scopes: ['profile:read'], expiresInDays: null });
    assert.equal(refused.status, 400);
  });
});

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`binding a token to an org while the member is removed (${store})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer({ store });
    });
    after(async () => {
      await t.close();
    });

    test('a member removed after the org gate but before the insert gets no token', async () => {
      const org = await createOrgWithRoles(t, 'bind-race');
      const member = org.users.member;
      await stepUp(member);
      const orgs = t.server.services.orgs;
      const gate = orgs.assertRequestAllowed.bind(orgs);
      // The removal commits right after the gate let the request through (the race, made deterministic).
      orgs.assertRequestAllowed = async (caller, orgId, meta) => {
        await gate(caller, orgId, meta);
        orgs.assertRequestAllowed = gate;
        await orgs.removeMember({ kind: 'session', userId: org.users.owner.userId, scopes: null }, org.orgId, member.userId, meta);
      };
      try {
        const response = await member.client.post('/v1/me/tokens', { name: 'late', scopes: ['org:read'], orgId: org.orgId });
        assert.equal(response.status, 404, response.text);
      } finally {
        orgs.assertRequestAllowed = gate;
      }
      const rows = await t.server.services.stores.main.db.selectFrom('api_tokens').select(['id', 'revoked_at']).where('user_id', '=', member.userId).where('org_id', '=', org.orgId).execute();
      assert.deepEqual(rows.filter((row) => row.revoked_at === null), [], 'no live token bound to an org the user left');
    });
  });
}
