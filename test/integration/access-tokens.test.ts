import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import type { TestClient } from '../helpers/client.js';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` }, noCookies: true });

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`access JWTs and the JWKS (${store})`, () => {
    let t: TestServer;
    let owner: { client: TestClient; password: string; userId: string; email: string };
    let anon: TestClient;

    before(async () => {
      t = await startTestServer({ store });
      owner = await signUp(t, 'jwt');
      anon = t.client();
    });
    after(async () => {
      await t.close();
    });

    const login = async () => {
      assert.equal((await owner.client.post('/v1/login', { email: owner.email, password: owner.password })).status, 200);
    };

    test('the JWKS publishes Ed25519 public keys only, cacheable briefly', async () => {
      const response = await anon.get('/.well-known/jwks.json');
      assert.equal(response.status, 200);
      assert.equal(response.headers['cache-control'], 'public, max-age=60');
      assert.match(String(response.headers['content-type']), /^application\/jwk-set\+json/);
      assert.ok(response.body.keys.length >= 1);
      for (const key of response.body.keys) {
        assert.deepEqual(Object.keys(key).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x']);
        assert.equal(key.kty, 'OKP');
        assert.equal(key.crv, 'Ed25519');
        assert.equal(key.alg, 'EdDSA');
      }
    });

    test('a session exchanges for a short-lived at+jwt carrying ids and scopes only', async () => {
      const response = await owner.client.post('/v1/token/access', {});
      assert.equal(response.status, 200);
      const { accessToken, expiresIn, scopes } = response.body;
      assert.equal(expiresIn, 600);
      assert.deepEqual(scopes, ['profile:read', 'org:read', 'audit:read']);
      const header = decodeProtectedHeader(accessToken);
      assert.deepEqual(Object.keys(header).sort(), ['alg', 'kid', 'typ']);
      assert.equal(header.alg, 'EdDSA');
      assert.equal(header.typ, 'at+jwt');
      const jwks = (await anon.get('/.well-known/jwks.json')).body.keys;
      assert.ok(jwks.some((key: { kid: string }) => key.kid === header.kid));
      const claims = decodeJwt(accessToken);
      const publicUrl = t.server.services.publicUrl;
      assert.deepEqual(Object.keys(claims).sort(), ['aud', 'exp', 'iat', 'iss', 'jti', 'scope', 'sid', 'sub']);
      assert.equal(claims.iss, publicUrl);
      assert.equal(claims.aud, `${publicUrl}/v1`);
      assert.equal(claims.sub, owner.userId);
      assert.equal(claims.sid, (await owner.client.get('/v1/session')).body.session.id);
      assert.equal(claims.exp! - claims.iat!, 600);
      assert.ok(claims.exp! - claims.iat! <= 900);
      assert.equal(claims.iat, Math.floor(t.clock.now() / 1000));
      assert.ok(!JSON.stringify(claims).includes(owner.email) && !JSON.stringify(claims).includes('Test'), 'no personal data');

      const used = await anon.get('/v1/session', bearer(accessToken));
      assert.equal(used.status, 200);
      assert.equal(used.body.user.id, owner.userId);
      const sessionOnly = await anon.post('/v1/me/tokens', { name: 'x', scopes: ['profile:read'] }, bearer(accessToken));
      assert.equal(sessionOnly.status, 403);
      const narrowed = await owner.client.post('/v1/token/access', { scopes: ['org:read'] });
      assert.equal((await anon.get('/v1/session', bearer(narrowed.body.accessToken))).body.code, 'insufficient_scope');
      assert.equal((await owner.client.post('/v1/token/access', { scopes: ['introspect'] })).status, 400, 'introspect is for API tokens only');
      const chained = await anon.post('/v1/token/access', {}, bearer(accessToken));
      assert.equal(chained.status, 403, 'an access JWT cannot mint another');
      assert.equal((await anon.post('/v1/token/access', {})).status, 401);
      assert.equal((await owner.client.post('/v1/token/access')).status, 200, 'a body is optional');
      // ASVS V14.2.1: credentials never travel in a URL; a token in the query string authenticates nothing.
      assert.equal((await anon.get(`/v1/session?access_token=${accessToken}`)).status, 401);
    });

    test('a session-derived JWT dies with its session; it expires after its TTL', async () => {
      const { accessToken } = (await owner.client.post('/v1/token/access', {})).body;
      t.clock.advance(599_000);
      assert.equal((await anon.get('/v1/session', bearer(accessToken))).status, 200);
      t.clock.advance(1_000);
      assert.equal((await anon.get('/v1/session', bearer(accessToken))).status, 401, 'expired');

      await login();
      const { accessToken: second } = (await owner.client.post('/v1/token/access', {})).body;
      assert.equal((await anon.get('/v1/session', bearer(second))).status, 200);
      assert.equal((await owner.client.post('/v1/logout')).status, 204);
      assert.equal((await anon.get('/v1/session', bearer(second))).status, 401, 'logout ends the JWT on this server at once');
      await login();
    });

    test('an API token exchanges for a JWT within its scopes; revoking the token ends the JWT', async () => {
      const created = await owner.client.post('/v1/me/tokens', { name: 'svc', scopes: ['profile:read', 'introspect'], expiresInDays: 1 });
      const apiToken = created.body.token;
      const exchanged = await anon.post('/v1/token/access', {}, bearer(apiToken));
      assert.equal(exchanged.status, 200);
      assert.deepEqual(exchanged.body.scopes, ['profile:read']);
      const claims = decodeJwt(exchanged.body.accessToken);
      assert.equal(claims.tid, created.body.id);
      assert.equal(claims.sid, undefined);
      assert.equal(claims.scope, 'profile:read');
      assert.equal((await anon.post('/v1/token/access', { scopes: ['org:admin'] }, bearer(apiToken))).status, 403, 'no scope beyond the token');
      assert.equal((await anon.get('/v1/session', bearer(exchanged.body.accessToken))).status, 200);
      assert.equal((await owner.client.delete(`/v1/me/tokens/${created.body.id}`)).status, 204);
      assert.equal((await anon.get('/v1/session', bearer(exchanged.body.accessToken))).status, 401);
      assert.equal((await anon.post('/v1/token/access', {}, bearer(apiToken))).status, 401);
    });

    test('the JWT never outlives its API token', async () => {
      const created = await owner.client.post('/v1/me/tokens', { name: 'short', scopes: ['profile:read'], expiresInDays: 1 });
      t.clock.advance(86_400_000 - 120_000);
      const exchanged = await anon.post('/v1/token/access', {}, bearer(created.body.token));
      assert.equal(exchanged.body.expiresIn, 120);
      await login();
    });

    if (store === 'sqlite') {
      test('rampart keys rotate switches the running server to a new key', async () => {
        const before = decodeProtectedHeader((await owner.client.post('/v1/token/access', {})).body.accessToken).kid;
        const run = spawnSync(process.execPath, ['bin/rampart.js', 'keys', 'rotate', '--data-dir', t.dataDir], { encoding: 'utf8', env: { ...process.env, LOG_LEVEL: 'warn' } });
        assert.equal(run.status, 0, run.stderr);
        const kid = /now signing with (\S+);/.exec(run.stdout)?.[1];
        assert.ok(kid && kid !== before);
        t.clock.advance(61_000);
        const after = decodeProtectedHeader((await owner.client.post('/v1/token/access', {})).body.accessToken).kid;
        assert.equal(after, kid, 'picked up within the key cache interval');
      });
    }

    test('rotation: tokens signed before stay valid until they expire; the old key leaves the JWKS after', async () => {
      const before = (await owner.client.post('/v1/token/access', {})).body.accessToken;
      const oldKid = decodeProtectedHeader(before).kid;
      const newKid = await t.server.services.signingKeys.rotate('manual');
      assert.notEqual(newKid, oldKid);
      const after = (await owner.client.post('/v1/token/access', {})).body.accessToken;
      assert.equal(decodeProtectedHeader(after).kid, newKid);
      assert.equal((await anon.get('/v1/session', bearer(before))).status, 200, 'issued before the rotation, still valid');
      assert.equal((await anon.get('/v1/session', bearer(after))).status, 200);
      let kids = (await anon.get('/.well-known/jwks.json')).body.keys.map((key: { kid: string }) => key.kid);
      assert.ok(kids.includes(oldKid) && kids.includes(newKid));
      t.clock.advance(t.server.services.signingKeys.publishAfterRetirementMs);
      kids = (await anon.get('/.well-known/jwks.json')).body.keys.map((key: { kid: string }) => key.kid);
      assert.deepEqual(kids, [newKid], 'the old key is gone once its last token has expired');
      await login();
    });

    test('the schedule rotates a key older than SIGNING_KEY_ROTATION_DAYS', async () => {
      const created = await owner.client.post('/v1/me/tokens', { name: 'long', scopes: ['profile:read'], expiresInDays: 60 });
      const first = decodeProtectedHeader((await anon.post('/v1/token/access', {}, bearer(created.body.token))).body.accessToken).kid;
      t.clock.advance(30 * 86_400_000);
      const second = decodeProtectedHeader((await anon.post('/v1/token/access', {}, bearer(created.body.token))).body.accessToken).kid;
      assert.notEqual(second, first);
      await login();
    });

  });
}
