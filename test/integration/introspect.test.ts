import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestClient } from '../helpers/client.js';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` }, noCookies: true });

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`POST /v1/introspect (RFC 7662) (${store})`, () => {
    let t: TestServer;
    let owner: { client: TestClient; password: string; userId: string; email: string };
    let anon: TestClient;
    let introspector: string;

    before(async () => {
      t = await startTestServer({ store });
      owner = await signUp(t, 'introspect');
      anon = t.client();
      introspector = (await owner.client.post('/v1/me/tokens', { name: 'backend', scopes: ['introspect'] })).body.token;
    });
    after(async () => {
      await t.close();
    });

    const introspect = (token: string, caller = introspector) => anon.post('/v1/introspect', { token }, bearer(caller));

    test('an API token: active with its owner, org, scopes and expiry; revocation shows at once as {active:false} only', async () => {
      const created = (await owner.client.post('/v1/me/tokens', { name: 'app', scopes: ['profile:read', 'org:read'], expiresInDays: 2 })).body;
      const active = await introspect(created.token);
      assert.equal(active.status, 200);
      assert.equal(active.headers['cache-control'], 'no-store');
      assert.deepEqual(active.body, {
        active: true, tokenType: 'api_token', sub: owner.userId, orgId: null, scopes: ['profile:read', 'org:read'], scope: 'profile:read org:read',
        exp: Math.floor(Date.parse(created.expiresAt) / 1000), iat: Math.floor(t.clock.now() / 1000), tid: created.id,
      });
      assert.equal((await owner.client.delete(`/v1/me/tokens/${created.id}`)).status, 204);
      assert.deepEqual((await introspect(created.token)).body, { active: false });
    });

    test('an access JWT: active while its session lives; inactive right after logout', async () => {
      const second = t.client();
      await second.post('/v1/login', { email: owner.email, password: owner.password });
      const jwt = (await second.post('/v1/token/access', {})).body.accessToken;
      const active = (await introspect(jwt)).body;
      assert.equal(active.active, true);
      assert.equal(active.tokenType, 'access_token');
      assert.equal(active.sub, owner.userId);
      assert.equal(active.iss, t.server.services.publicUrl);
      assert.equal(active.sid, (await second.get('/v1/session')).body.session.id);
      assert.deepEqual(active.scopes, ['profile:read', 'org:read', 'audit:read']);
      assert.equal((await second.post('/v1/logout')).status, 204);
      assert.deepEqual((await introspect(jwt)).body, { active: false });
    });

    test('garbage, a bad checksum, an expired token: {active:false}', async () => {
      for (const token of ['nonsense', 'rpat_' + 'A'.repeat(49), 'a.b.c', introspector.slice(0, -1) + (introspector.endsWith('A') ? 'B' : 'A')]) {
        assert.deepEqual((await introspect(token)).body, { active: false }, token);
      }
      const short = (await owner.client.post('/v1/me/tokens', { name: 'short', scopes: ['profile:read'], expiresInDays: 1 })).body;
      t.clock.advance(86_400_000);
      assert.deepEqual((await introspect(short.token)).body, { active: false });
      assert.equal((await owner.client.post('/v1/login', { email: owner.email, password: owner.password })).status, 200);
    });

    test('only an API token with the introspect scope may introspect', async () => {
      const reader = (await owner.client.post('/v1/me/tokens', { name: 'reader', scopes: ['profile:read'] })).body.token;
      const refused = await introspect(reader, reader);
      assert.equal(refused.status, 403);
      assert.equal(refused.body.code, 'insufficient_scope');
      const bySession = await owner.client.post('/v1/introspect', { token: reader });
      assert.equal(bySession.status, 403, 'a session is not an API token');
      assert.equal((await anon.post('/v1/introspect', { token: reader })).status, 401);
      assert.equal((await introspect(reader)).status, 200);
      assert.equal((await anon.post('/v1/introspect', { token: reader, extra: 1 }, bearer(introspector))).status, 400);
    });

    test('an introspector bound to an org learns nothing about tokens outside it', async () => {
      const org = (await owner.client.post('/v1/orgs', { name: 'Intro Org', slug: `intro-${store}-${Date.now()}` })).body.org;
      const bound = (await owner.client.post('/v1/me/tokens', { name: 'org backend', scopes: ['introspect'], orgId: org.id })).body.token;
      const mine = (await owner.client.post('/v1/me/tokens', { name: 'member token', scopes: ['profile:read'] })).body.token;
      assert.equal((await introspect(mine, bound)).body.active, true, "a member's token");
      const stranger = await signUp(t, 'stranger');
      const theirs = (await stranger.client.post('/v1/me/tokens', { name: 'x', scopes: ['profile:read'] })).body.token;
      assert.deepEqual((await introspect(theirs, bound)).body, { active: false }, "a non-member's token");
      assert.equal((await introspect(theirs)).body.active, true, 'an unbound introspector sees it');
    });
  });
}
