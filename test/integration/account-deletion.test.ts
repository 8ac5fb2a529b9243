import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SESSION_COOKIE } from '../../src/http/auth.js';
import { signUp, startTestServer, strongPassword, type TestServer } from '../helpers/harness.js';
import { createOrgWithRoles, stepUp } from '../helpers/orgs.js';

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`DELETE /v1/me (${store})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer({ store });
    });
    after(async () => {
      await t.close();
    });

    test('needs a session, CSRF and a recent step-up', async () => {
      const { client } = await signUp(t, 'delete');
      assert.equal((await t.client().delete('/v1/me')).status, 401);
      const noStepUp = await client.delete('/v1/me');
      assert.equal(noStepUp.status, 403);
      assert.equal(noStepUp.body.code, 'reauth_required', 'a login alone is not enough');
      assert.equal((await client.delete('/v1/me', { headers: { 'x-csrf-token': 'forged' } })).body.code, 'csrf_failed');
      assert.equal((await client.get('/v1/session')).status, 200, 'nothing happened');
    });

    test('deletes the account: sessions end, personal data is unrecoverable, the audit trail keeps the id', async () => {
      const { client, email, password, userId } = await signUp(t, 'delete');
      const other = t.client();
      await other.post('/v1/login', { email, password });
      const services = t.server.services;
      const piiBefore = await services.stores.pii.db.selectFrom('pii_users').selectAll().where('user_id', '=', userId).executeTakeFirst();
      assert.ok(piiBefore, 'the profile exists before');

      assert.equal((await client.post('/v1/me/reauth', { password })).status, 204);
      const deleted = await client.delete('/v1/me');
      assert.equal(deleted.status, 204);
      assert.ok(deleted.setCookies.some((cookie) => cookie.startsWith(`${SESSION_COOKIE}=;`)), 'cookie cleared');
      assert.equal((await other.get('/v1/session')).status, 401, 'every other session ended');

      // Crypto-shredding: the encrypted profile and its wrapped data key are gone from the PII store.
      assert.equal(await services.stores.pii.db.selectFrom('pii_users').selectAll().where('user_id', '=', userId).executeTakeFirst(), undefined);
      assert.equal(await services.pii.getProfile(userId), null);
      assert.equal(await services.users.findById(userId), undefined, 'the account row is removed');
      for (const table of ['sessions', 'password_history', 'password_tokens', 'api_tokens'] as const) {
        const rows = await services.stores.main.db.selectFrom(table).select('user_id').where('user_id', '=', userId).execute();
        assert.equal(rows.length, 0, `${table} holds nothing of the user`);
      }
      const audit = await services.stores.main.db.selectFrom('audit_events').select(['action']).where('user_id', '=', userId).orderBy('seq').execute();
      assert.equal(audit.at(-1)?.action, 'user.deleted', 'the last audit event of the id is its deletion');

      const login = await t.client().post('/v1/login', { email, password });
      assert.equal(login.status, 401);
      assert.equal(login.body.code, 'invalid_credentials');
      await t.client().post('/v1/password/forgot', { email });
      await services.background.settled();
      const again = await t.client().post('/v1/signup', { email, password: strongPassword() });
      assert.equal(again.status, 201, 'the address is free again');
      assert.notEqual(again.body.user.id, userId, 'ids are never reused');
    });

    test('the last owner of an org cannot delete the account (409 last_owner); a plain member can', async () => {
      const org = await createOrgWithRoles(t, 'deletion');
      await stepUp(org.users.owner);
      const refused = await org.users.owner.client.delete('/v1/me');
      assert.equal(refused.status, 409);
      assert.equal(refused.body.code, 'last_owner');
      assert.equal((await org.users.owner.client.get('/v1/session')).status, 200, 'nothing was deleted');
      await stepUp(org.users.member);
      assert.equal((await org.users.member.client.delete('/v1/me')).status, 204);
      const members = await org.users.owner.client.get(`/v1/orgs/${org.orgId}/members`);
      assert.ok(!members.body.members.some((m: { userId: string }) => m.userId === org.users.member.userId), 'the membership went with the account');
    });
  });
}
