import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hmacSha256 } from '../../src/crypto/hash.js';
import { signUp, startTestServer, type StoreKind, type TestServer } from '../helpers/harness.js';
import { rampartWith } from '../helpers/cli.js';
import { Resources } from '../helpers/resources.js';

for (const store of ['sqlite', 'postgres'] as const satisfies readonly StoreKind[]) {
  describe(`CSRF key rotation on ${store}`, () => {
    let t: TestServer;
    const open = new Resources();
    before(async () => {
      t = open.add(await startTestServer({ store }), (server) => server.close());
    });
    after(() => open.close());

    test('`rampart keys rotate-csrf`: within a minute a running server refuses tokens of the old key and hands out the new one; a second server on the same store follows at its first mismatch', async () => {
      const user = await signUp(t, 'csrf-rotation');
      const oldToken = user.client.csrfToken!;
      const revokeOthers = (token: string) => user.client.delete('/v1/me/sessions', { headers: { 'x-csrf-token': token } });
      assert.equal((await revokeOthers(oldToken)).status, 204);
      const { public_id: publicId } = await t.server.services.stores.main.db.selectFrom('sessions').select('public_id').where('user_id', '=', user.userId).executeTakeFirstOrThrow();
      const v1 = (await t.server.services.keyring.keyAt('csrf', 1))!;
      assert.equal(oldToken, hmacSha256(v1, `csrf:${publicId}`));

      const rotated = await rampartWith(t.env, 'keys', 'rotate-csrf');
      assert.equal(rotated.code, 0, rotated.stderr);
      assert.match(rotated.stdout, /^CSRF key rotated: version 2;/);
      const v2 = (await t.server.services.keyring.keyAt('csrf', 2))!;
      const newToken = hmacSha256(v2, `csrf:${publicId}`);

      // A second server on the same stores, started after the rotation, makes version-2 tokens at once.
      const second = open.add(await startTestServer({ dataDir: t.dataDir, env: storesOf(t) }), (server) => server.close());
      assert.equal(await second.server.services.sessions.csrfToken(publicId), newToken);

      // The first server still holds version 1 (read under a minute ago): a version-2 token makes it read the keyring again.
      assert.equal((await revokeOthers(newToken)).status, 204, 'a token of the newer version is accepted at once');
      const refused = await revokeOthers(oldToken);
      assert.equal(refused.status, 403);
      assert.equal(refused.body.code, 'csrf_failed');
      const session = await user.client.get('/v1/session');
      assert.equal(session.body.csrfToken, newToken, 'GET /v1/session hands out the new token');
      assert.equal((await user.client.delete('/v1/me/sessions')).status, 204);

      // Without a newer token to see, a server reads the keyring again within a minute.
      const third = await rampartWith(t.env, 'keys', 'rotate-csrf');
      assert.equal(third.code, 0, third.stderr);
      assert.equal((await revokeOthers(newToken)).status, 204, 'before the minute is out, the version-2 token still works here');
      t.clock.advance(61_000);
      assert.equal((await revokeOthers(newToken)).status, 403, 'after it, only version 3');
      const v3 = (await t.server.services.keyring.keyAt('csrf', 3))!;
      assert.equal((await user.client.get('/v1/session')).body.csrfToken, hmacSha256(v3, `csrf:${publicId}`));

      const events = (await t.server.services.audit.latest({ limit: 20 })).events.filter((e) => e.action === 'csrf_key.rotated');
      assert.deepEqual(events.map((e) => e.details).reverse(), [{ version: 2 }, { version: 3 }]);
      assert.equal((await t.server.services.audit.verify()).valid, true);
    });
  });
}

/** The configuration that points a second server at the first one's stores (with its data dir: the same master key and SQLite files). */
function storesOf(t: TestServer): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ['DATABASE_URL', 'PII_DATABASE_URL']) if (t.env[name]) env[name] = t.env[name]!;
  return env;
}
