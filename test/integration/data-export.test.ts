import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';
import { enrollTOTP, stepUp } from '../helpers/mfa.js';

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`GET /v1/me/export (${store})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer({ store });
    });
    after(async () => {
      await t.close();
    });

    test('everything held about the user, decrypted, with no credential in it; audited', async () => {
      const { client, email, password, userId } = await signUp(t, 'export');
      const { secret, recoveryCodes } = await enrollTOTP(t, client, password);
      const org = await client.post('/v1/orgs', { name: 'Export Org', slug: `export-${Date.now()}` });
      assert.equal(org.status, 201);
      const orgId = org.body.org.id as string;
      await stepUp(client, password);
      const created = await client.post('/v1/me/tokens', { name: 'ci', scopes: ['profile:read'] });
      assert.equal(created.status, 201);

      const response = await client.get('/v1/me/export', { headers: { 'user-agent': 'export-test/1.0' } });
      assert.equal(response.status, 200);
      assert.match(String(response.headers['content-disposition']), /attachment; filename="rampart-export\.json"/);
      assert.equal(response.headers['cache-control'], 'no-store');
      const data = response.body;
      assert.equal(data.format, 'rampart.user-export.v1');
      assert.equal(data.user.id, userId);
      assert.equal(data.user.email, email);
      assert.ok(data.sessions.length >= 1 && data.sessions.every((s: { ip: string }) => s.ip === '127.0.0.1'), 'sessions with their decrypted address');
      assert.deepEqual(data.organizations.map((o: { id: string; role: string }) => [o.id, o.role]), [[orgId, 'owner']]);
      assert.equal(data.secondFactors.totp, true);
      assert.equal(data.secondFactors.recoveryCodesLeft, 10);
      assert.deepEqual(data.apiTokens.map((tk: { name: string; scopes: string[] }) => [tk.name, tk.scopes]), [['ci', ['profile:read']]]);
      const actions = data.securityEvents.map((e: { action: string }) => e.action);
      for (const action of ['user.created', 'totp.enrolled', 'org.created', 'api_token.created']) assert.ok(actions.includes(action), `${action} in ${actions.join(', ')}`);
      assert.equal(data.securityEventsTruncated, false);

      // Nothing that works as a credential: no token secret, no factor secret or recovery code,
      // no password or its hash, no session secret.
      const text = response.text;
      for (const secretValue of [created.body.token, secret, ...recoveryCodes, password]) assert.ok(!text.includes(secretValue), 'no secret in the export');
      assert.ok(!text.includes('$argon2'), 'no password hash');
      const cookie = client.cookies.get('__Host-rampart_session');
      assert.ok(cookie && !text.includes(cookie), 'no session secret');

      const audit = await t.server.services.stores.main.db.selectFrom('audit_events').select(['action']).where('user_id', '=', userId).orderBy('seq', 'desc').executeTakeFirst();
      assert.equal(audit?.action, 'user.data_exported');
    });

    test('a signed-in person or a profile:read token (API.md: reads under /v1/me); no cookie is 401, another scope is refused', async () => {
      assert.equal((await t.client().get('/v1/me/export')).status, 401);
      const { client, password } = await signUp(t, 'export-token');
      await stepUp(client, password);
      const created = await client.post('/v1/me/tokens', { name: 'reader', scopes: ['profile:read'] });
      const viaToken = await t.client().get('/v1/me/export', { noCookies: true, headers: { authorization: `Bearer ${created.body.token}` } });
      assert.equal(viaToken.status, 200, viaToken.text);
      assert.ok(!viaToken.text.includes(created.body.token), 'no credential in the export');
      const exported = (await t.server.services.audit.latest({ limit: 20 })).events.find((event) => event.action === 'user.data_exported' && event.actor.id === created.body.id);
      assert.deepEqual(exported?.actor, { type: 'token', id: created.body.id }, 'the event names the token that asked');
      const other = await client.post('/v1/me/tokens', { name: 'org reader', scopes: ['org:read'] });
      const refused = await t.client().get('/v1/me/export', { noCookies: true, headers: { authorization: `Bearer ${other.body.token}` } });
      assert.equal(refused.status, 403);
      assert.equal(refused.body.code, 'insufficient_scope');
    });
  });
}
