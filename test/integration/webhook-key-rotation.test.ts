import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { encrypt } from '../../src/crypto/aead.js';
import { signUp, startTestServer, type StoreKind, type TestServer } from '../helpers/harness.js';
import { stepUp, uniqueSlug } from '../helpers/orgs.js';
import { rampartWith } from '../helpers/cli.js';
import { Resources } from '../helpers/resources.js';
import { LOOPBACK_RECEIVERS, startReceiver, verified } from '../helpers/webhooks.js';

for (const store of ['sqlite', 'postgres'] as const satisfies readonly StoreKind[]) {
  describe(`webhook secret key rotation on ${store}`, () => {
    let t: TestServer;
    let receiver: Awaited<ReturnType<typeof startReceiver>>;
    const open = new Resources();
    before(async () => {
      receiver = open.add(await startReceiver(), (r) => r.close());
      t = open.add(await startTestServer({ store, env: LOOPBACK_RECEIVERS }), (server) => server.close());
    });
    after(() => open.close());

    test('`rampart keys rotate-webhook` re-encrypts every secret under a new key version; deliveries keep their signatures; new secrets take the new version', async () => {
      const owner = await signUp(t, 'hook-rotation');
      const org = await owner.client.post('/v1/orgs', { name: 'Rotation', slug: uniqueSlug('hook-rot') });
      const orgId = org.body.org.id as string;
      await stepUp(owner);
      const create = async () => {
        const response = await owner.client.post(`/v1/orgs/${orgId}/webhooks`, { url: receiver.url, events: ['member.role_changed', 'webhook.created'] });
        assert.equal(response.status, 201, response.text);
        return response.body as { id: string; secret: string };
      };
      const db = t.server.services.stores.main.db;
      const sealedOf = async (id: string) => (await db.selectFrom('webhooks').select('secret_enc').where('id', '=', id).executeTakeFirstOrThrow()).secret_enc;
      const first = await create();
      const second = await create();
      const before = { first: await sealedOf(first.id), second: await sealedOf(second.id) };
      assert.match(before.first, /^k1\./);
      // A secret stored before key versions: the bare sealed value under version 1.
      const v1 = (await t.server.services.keyring.keyAt('webhook-secret', 1))!;
      await db.updateTable('webhooks').set({ secret_enc: encrypt(v1, second.secret, `webhook:${second.id}`) }).where('id', '=', second.id).execute();

      // A rolled-over secret still signing moves with the key too.
      const rolled = await owner.client.post(`/v1/orgs/${orgId}/webhooks/${first.id}/rotate-secret`, { overlapHours: 2 });
      assert.equal(rolled.status, 200, rolled.text);
      const firstNew = rolled.body.secret as string;
      const previousSealedOf = async (id: string) => (await db.selectFrom('webhooks').select('previous_secret_enc').where('id', '=', id).executeTakeFirstOrThrow()).previous_secret_enc;
      assert.match(String(await previousSealedOf(first.id)), /^k1\./);

      const rotated = await rampartWith(t.env, 'keys', 'rotate-webhook');
      assert.equal(rotated.code, 0, rotated.stderr);
      assert.match(String(await previousSealedOf(first.id)), /^k2\./, 'the previous secret is re-encrypted as well');
      assert.match(rotated.stdout, /^webhook secret key rotated: version 2; 2 secrets re-encrypted\n$/);
      for (const hook of [first, second]) {
        const sealed = await sealedOf(hook.id);
        assert.match(sealed, /^k2\./);
        assert.ok(!sealed.includes(hook.secret.slice(6)));
      }
      const events = (await t.server.services.audit.latest({ limit: 5 })).events.filter((e) => e.action === 'webhook_key.rotated');
      assert.deepEqual(events.map((e) => e.details), [{ version: 2, reencrypted: 2, unreadable: 0 }]);

      // The running server opens the re-encrypted secrets: each delivery is signed with its webhook's own, unchanged secret.
      const third = await create();
      assert.match(await sealedOf(third.id), /^k2\./, 'a new secret is sealed under the new version');
      const start = receiver.deliveries.length;
      await t.server.services.jobs.drain();
      const delivered = receiver.deliveries.slice(start);
      const now = Math.floor(t.clock.now() / 1000);
      for (const hook of [first, { ...first, secret: firstNew }, second, third]) {
        const signedWith = delivered.filter((d) => {
          try {
            verified(d, hook.secret, now);
            return true;
          } catch {
            return false;
          }
        });
        assert.ok(signedWith.length > 0, `a delivery signed with ${hook.id}'s secret`);
      }

      // A secret that does not open is left as it was, counted, and the command says so.
      await db.updateTable('webhooks').set({ secret_enc: 'k2.AAAA' }).where('id', '=', third.id).execute();
      const partial = await rampartWith(t.env, 'keys', 'rotate-webhook');
      assert.equal(partial.code, 1);
      assert.match(partial.stdout, /version 3; 2 secrets re-encrypted; 1 did not decrypt and were left as they were/);
      assert.equal(await sealedOf(third.id), 'k2.AAAA');
      assert.match(await sealedOf(first.id), /^k3\./);
      assert.equal((await t.server.services.audit.verify()).valid, true);
    });
  });
}
