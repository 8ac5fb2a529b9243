import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';

const MINUTE = 60_000;

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`session expiry with an injected clock (${store})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer({ store, env: { SESSION_IDLE_TIMEOUT_MINUTES: '60', SESSION_ABSOLUTE_TIMEOUT_HOURS: '12' } });
    });
    after(async () => {
      await t.close();
    });

    async function lastSeen(userId: string): Promise<number> {
      const row = await t.server.services.stores.main.db.selectFrom('sessions').select('last_seen_at').where('user_id', '=', userId).executeTakeFirstOrThrow();
      return row.last_seen_at;
    }

    test('an idle session ends after the idle timeout, and its row is deleted', async () => {
      const { client, userId } = await signUp(t, 'idle');
      t.clock.advance(59 * MINUTE);
      assert.equal((await client.get('/v1/session')).status, 200, 'still alive at 59 minutes');
      t.clock.advance(59 * MINUTE);
      assert.equal((await client.get('/v1/session')).status, 200, 'activity moved the idle deadline');
      t.clock.advance(60 * MINUTE);
      const expired = await client.get('/v1/session');
      assert.equal(expired.status, 401);
      assert.equal(expired.body.code, 'unauthenticated');
      const rows = await t.server.services.stores.main.db.selectFrom('sessions').select('id_hash').where('user_id', '=', userId).execute();
      assert.equal(rows.length, 0);
    });

    test('an active session still ends at the absolute timeout', async () => {
      const { client } = await signUp(t, 'absolute');
      for (let step = 1; step <= 13; step++) {
        t.clock.advance(55 * MINUTE);
        assert.equal((await client.get('/v1/session')).status, 200, `alive after ${step * 55} active minutes`);
      }
      // 11 h 55 min in; ten more minutes of activity cross 12 h without ever idling an hour.
      t.clock.advance(10 * MINUTE);
      assert.equal((await client.get('/v1/session')).status, 401);
    });

    test('idle bookkeeping writes at most about once a minute, never on every request', async () => {
      const { client, userId } = await signUp(t, 'touch');
      const created = await lastSeen(userId);
      for (let i = 0; i < 5; i++) {
        t.clock.advance(10_000);
        await client.get('/v1/session');
      }
      assert.equal(await lastSeen(userId), created, 'no write within the first minute');
      t.clock.advance(20_000);
      await client.get('/v1/session');
      assert.equal(await lastSeen(userId), created + 70_000, 'one write after a minute');
      t.clock.advance(1_000);
      await client.get('/v1/session');
      assert.equal(await lastSeen(userId), created + 70_000);
    });

    test('the reported expiry is the earlier of the idle and absolute deadlines', async () => {
      const { client } = await signUp(t, 'report');
      const body = (await client.get('/v1/session')).body;
      const lastSeenAt = Date.parse(body.session.lastSeenAt);
      assert.equal(Date.parse(body.session.expiresAt), lastSeenAt + 60 * MINUTE);
    });
  });
}
