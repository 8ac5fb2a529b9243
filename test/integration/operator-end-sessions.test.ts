/**
 * An operator ends sessions without locking anyone (ASVS V7.4.5): of one account,
 * or of every account in an incident. `rampart sessions end` runs beside a
 * serving instance; the server refuses the ended sessions at their next request.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { rampart } from '../helpers/cli.js';
import { enrollTOTP, passwordStep, totpNow } from '../helpers/mfa.js';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`operator ends sessions (${store})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer({ store });
    });
    after(async () => {
      await t.close();
    });

    test('one account: its sessions and pending login steps end, its API tokens and every other account stay; audited', async () => {
      const target = await signUp(t, 'ended');
      const bystander = await signUp(t, 'bystander');
      const token = (await target.client.post('/v1/me/tokens', { name: 'ci', scopes: ['profile:read'] })).body.token as string;
      const { secret } = await enrollTOTP(t, target.client, target.password);
      const pending = await passwordStep(t.client(), target.email, target.password);
      assert.equal((await target.client.get('/v1/session')).status, 200, 'kept in memory before it ends');

      const ended = await t.server.services.accounts.endSessions(target.userId, { type: 'system', id: 'cli' }, 'suspicious activity');
      assert.deepEqual({ sessions: ended['sessions'], steps: ended['mfa_login_steps'], tokens: ended['api_tokens'] }, { sessions: 1, steps: 1, tokens: 0 });

      assert.equal((await target.client.get('/v1/session')).status, 401);
      const late = await t.client().post('/v1/login/mfa', { mfaToken: pending.mfaToken, totp: totpNow(t, secret) });
      assert.equal(late.status, 401, 'the half-done login is over too');
      assert.deepEqual(late.setCookies, []);
      assert.equal((await t.client().get('/v1/session', { headers: { authorization: `Bearer ${token}` } })).status, 200, 'API tokens are separate credentials');
      assert.equal((await bystander.client.get('/v1/session')).status, 200);
      assert.equal((await t.server.services.users.findById(target.userId))?.status, 'active', 'nobody is locked');

      const { events } = await t.server.services.audit.list({ action: 'sessions.ended_by_operator', userId: target.userId, limit: 5 });
      assert.equal(events.length, 1);
      assert.deepEqual(events[0]!.actor, { type: 'system', id: 'cli' });
      assert.deepEqual(events[0]!.details, { scope: 'user', ended: ended, reason: 'suspicious activity' });
    });

    test('every account: all sessions end at once', async () => {
      const one = await signUp(t, 'everyone-1');
      const two = await signUp(t, 'everyone-2');
      const ended = await t.server.services.accounts.endSessions(null, { type: 'system', id: 'cli' }, null);
      assert.ok(ended['sessions']! >= 2);
      assert.equal(ended['api_tokens'], undefined, 'API tokens take no part');
      assert.equal((await one.client.get('/v1/session')).status, 401);
      assert.equal((await two.client.get('/v1/session')).status, 401);
      const count = await t.server.services.stores.main.db.selectFrom('sessions').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      assert.equal(Number(count.n), 0);
    });

    if (store === 'sqlite') {
      test('rampart sessions end, beside the serving instance', async () => {
        const cli = (...args: string[]) => rampart('sessions', 'end', ...args, '--data-dir', t.dataDir);
        const target = await signUp(t, 'cli-ended');
        const bystander = await signUp(t, 'cli-bystander');
        assert.equal((await target.client.get('/v1/session')).status, 200);

        const one = await cli('--user', target.email, '--reason', 'ticket 42');
        assert.equal(one.code, 0, one.stderr);
        assert.equal(one.stdout, `ended 1 session(s) and 0 pending login step(s) of ${target.userId}\n`);
        assert.equal((await target.client.get('/v1/session')).status, 401, 'the server sees the other process\'s write');
        assert.equal((await bystander.client.get('/v1/session')).status, 200);

        const unconfirmed = await cli('--all');
        assert.equal(unconfirmed.code, 1);
        assert.match(unconfirmed.stderr, /^rampart: --all signs every user out: add --yes to confirm\n$/);
        assert.equal((await bystander.client.get('/v1/session')).status, 200, 'nothing ended without --yes');
        const neither = await cli();
        assert.equal(neither.code, 1);
        assert.match(neither.stderr, /either --user <email> or --all/);
        const unknown = await cli('--user', 'nobody@example.com');
        assert.equal(unknown.code, 1);
        assert.match(unknown.stderr, /no account has that email/);

        const all = await cli('--all', '--yes');
        assert.equal(all.code, 0, all.stderr);
        assert.match(all.stdout, /^ended \d+ session\(s\) and \d+ pending login step\(s\) of every account\n$/);
        assert.equal((await bystander.client.get('/v1/session')).status, 401);
      });
    }
  });
}
