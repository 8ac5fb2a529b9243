import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hmacSha256 } from '../../src/crypto/hash.js';
import { randomId } from '../../src/crypto/random.js';
import { normalizeEmail } from '../../src/pii/pii-service.js';
import { signUp, startTestServer, strongPassword, type StoreKind, type TestServer, uniqueEmail } from '../helpers/harness.js';
import { createOrgWithRoles, invitationTokenFor, type OrgFixture } from '../helpers/orgs.js';
import { rampartWith } from '../helpers/cli.js';
import { Resources } from '../helpers/resources.js';

for (const store of ['sqlite', 'postgres'] as const satisfies readonly StoreKind[]) {
  describe(`email blind-index key rotation on ${store}`, () => {
    let t: TestServer;
    let org: OrgFixture;
    const open = new Resources();
    before(async () => {
      t = open.add(await startTestServer({ store }), (server) => server.close());
      org = await createOrgWithRoles(t, 'blind');
    });
    after(() => open.close());

    const piiDb = () => t.server.services.stores.pii.db;
    const indexes = async () => new Map((await piiDb().selectFrom('pii_users').select(['user_id', 'email_index']).execute()).map((row) => [row.user_id, row.email_index]));
    const login = (email: string, password: string) => t.client().post('/v1/login', { email, password });
    const keyVersions = async () => (await piiDb().selectFrom('keyring').select('version').where('purpose', '=', 'blind-index').orderBy('version').execute()).map((row) => Number(row.version));
    const invite = (email: string) => org.users.admin.client.post(`/v1/orgs/${org.orgId}/invitations`, { email, role: 'member' });
    const pendingFor = async (emailIndexes: string[]) => piiDbMain().selectFrom('org_invitations').select(['id', 'email_index'])
      .where('org_id', '=', org.orgId).where('accepted_at', 'is', null).where('email_index', 'in', emailIndexes).execute();
    const piiDbMain = () => t.server.services.stores.main.db;

    test('`rampart keys rotate-blind-index` re-keys every stored index; a running server keeps finding every address; retiring waits for invitations under the old key', async () => {
      const alice = await signUp(t, 'Blind-Alice');
      const bob = await signUp(t, 'blind-bob');
      // An invitation to an address with no account yet: it holds the index under version 1, and only the index.
      const carolEmail = uniqueEmail('blind-carol');
      assert.equal((await invite(carolEmail)).status, 201);
      const carolToken = invitationTokenFor(t, carolEmail);
      const v1 = (await t.server.services.piiKeyring.keyAt('blind-index', 1))!;
      const before = await indexes();
      assert.equal(before.get(alice.userId), hmacSha256(v1, `email:${normalizeEmail(alice.email)}`), 'version 1 is the bare HMAC');

      const rotated = await rampartWith(t.env, 'keys', 'rotate-blind-index');
      assert.equal(rotated.code, 0, rotated.stderr);
      assert.equal(rotated.stdout, `blind index key rotated: version 2; ${before.size} indexes re-keyed\n`);
      const v2 = (await t.server.services.piiKeyring.keyAt('blind-index', 2))!;
      const afterRotation = await indexes();
      assert.equal(afterRotation.size, before.size);
      for (const [userId, index] of afterRotation) {
        assert.match(index, /^k2\.[A-Za-z0-9_-]{43}$/);
        assert.notEqual(index, before.get(userId));
      }
      assert.equal(afterRotation.get(bob.userId), `k2.${hmacSha256(v2, `email:${normalizeEmail(bob.email)}`)}`);
      const rotatedEvent = (await t.server.services.audit.latest({ limit: 10 })).events.find((e) => e.action === 'blind_index_key.rotated');
      assert.deepEqual(rotatedEvent?.details, { version: 2, reindexed: before.size, unreadable: 0, conflicts: 0 });

      // The server started before the rotation and held only version 1: its first miss makes it read version 2.
      assert.equal((await login(alice.email.toUpperCase(), alice.password)).status, 200, 'an address indexed under version 2 logs in');
      assert.equal((await login(bob.email, 'not-the-password-at-all')).status, 401);
      assert.equal((await login(uniqueEmail('nobody'), strongPassword())).status, 401);
      // The address stays taken, whatever its case.
      const again = await t.client().post('/v1/signup', { email: alice.email.toUpperCase(), password: strongPassword(), name: 'Again' });
      assert.equal(again.status, 409, again.text);
      assert.equal(again.body.code, 'email_taken');
      // New profiles are indexed under version 2.
      const carol = await signUpAs(t, carolEmail);
      assert.equal((await indexes()).get(carol.userId), `k2.${hmacSha256(v2, `email:${normalizeEmail(carolEmail)}`)}`);

      // The invitation mailed before the rotation still holds its version-1 index.
      const carolIndexes = [hmacSha256(v1, `email:${normalizeEmail(carolEmail)}`), `k2.${hmacSha256(v2, `email:${normalizeEmail(carolEmail)}`)}`];
      assert.deepEqual((await pendingFor(carolIndexes)).map((row) => row.email_index), [carolIndexes[0]]);

      // Retiring version 1 waits until every server has read version 2…
      const early = await rampartWith(t.env, 'keys', 'retire-blind-index');
      assert.equal(early.code, 1);
      assert.match(early.stderr, /nothing retired: version 2 is less than 2 minutes old/);
      await piiDb().updateTable('keyring').set({ created_at: Date.now() - 3 * 60_000 }).where('purpose', '=', 'blind-index').where('version', '=', 2).execute();
      // …re-keys a profile a server that had not read it yet indexed under version 1…
      await piiDb().updateTable('pii_users').set({ email_index: hmacSha256(v1, `email:${normalizeEmail(bob.email)}`) }).where('user_id', '=', bob.userId).execute();
      // …and refuses while a pending invitation holds a version-1 index (it cannot be re-keyed: no address is stored with it).
      const held = await rampartWith(t.env, 'keys', 'retire-blind-index');
      assert.equal(held.code, 1);
      assert.match(held.stderr, /nothing retired: 1 pending invitation is \(the last expires [0-9T:.-]+Z\) still indexed under an older key version/);
      assert.deepEqual(await keyVersions(), [1, 2]);
      assert.equal((await indexes()).get(bob.userId), `k2.${hmacSha256(v2, `email:${normalizeEmail(bob.email)}`)}`, 'the straggler was re-keyed');

      // The version-1 invitation is accepted by its address, through the older key.
      const accepted = await carol.client.post('/v1/invitations/accept', { token: carolToken });
      assert.equal(accepted.status, 200, accepted.text);

      const retired = await rampartWith(t.env, 'keys', 'retire-blind-index');
      assert.equal(retired.code, 0, retired.stderr);
      assert.equal(retired.stdout, 'blind index key versions retired: 1; version 2 is the only one left\n');
      assert.deepEqual(await keyVersions(), [2]);
      const retiredEvent = (await t.server.services.audit.latest({ limit: 10 })).events.find((e) => e.action === 'blind_index_key.retired');
      assert.deepEqual(retiredEvent?.details, { versions: [1], current: 2, reindexed: 0 });
      assert.equal((await login(bob.email, bob.password)).status, 200);
      const nothing = await rampartWith(t.env, 'keys', 'retire-blind-index');
      assert.equal(nothing.code, 0, nothing.stderr);
      assert.equal(nothing.stdout, 'nothing to retire: version 2 is the only blind index key\n');
      assert.equal((await t.server.services.audit.verify()).valid, true);
    });

    test('a re-invitation replaces a pending invitation indexed under an older key version; a profile whose email does not open, or whose new index another profile holds, is left and counted', async () => {
      const daveEmail = uniqueEmail('blind-dave');
      assert.equal((await invite(daveEmail)).status, 201);
      const [older] = await pendingFor(await t.server.services.pii.emailIndexes(daveEmail));
      const rotated = await rampartWith(t.env, 'keys', 'rotate-blind-index');
      assert.equal(rotated.code, 0, rotated.stderr);
      const current = await t.server.services.piiKeyring.current('blind-index');
      assert.equal(current?.version, 3);
      assert.equal((await invite(daveEmail)).status, 201);
      const pending = await pendingFor([older!.email_index, `k3.${hmacSha256(current!.key, `email:${normalizeEmail(daveEmail)}`)}`]);
      assert.equal(pending.length, 1, 'only the newest link for an address works');
      assert.match(pending[0]!.email_index, /^k3\./);

      const erin = await signUp(t, 'blind-erin');
      await piiDb().updateTable('pii_users').set({ email_enc: 'AAAA', email_index: 'k3.tampered' }).where('user_id', '=', erin.userId).execute();
      const partial = await rampartWith(t.env, 'keys', 'rotate-blind-index');
      assert.equal(partial.code, 1);
      assert.match(partial.stdout, /^blind index key rotated: version 4; \d+ indexes re-keyed; left as they were: 1 did not decrypt\n$/);
      assert.equal((await indexes()).get(erin.userId), 'k3.tampered');
      const event = (await t.server.services.audit.latest({ limit: 5 })).events.find((e) => e.action === 'blind_index_key.rotated');
      assert.equal(event?.outcome, 'failure');
      assert.equal(event?.details?.['unreadable'], 1);

      // Two profiles of one address under different versions (a server that had not yet read the
      // new version took a signup): re-keying the second collides on the unique index; it is
      // counted and left, and the run goes on.
      const frank = await signUp(t, 'blind-frank');
      const v4 = (await t.server.services.piiKeyring.keyAt('blind-index', 4))!;
      await piiDb().updateTable('pii_users').set({ email_index: `k3.${hmacSha256((await t.server.services.piiKeyring.keyAt('blind-index', 3))!, `email:${normalizeEmail(frank.email)}`)}` }).where('user_id', '=', frank.userId).execute();
      const twin = randomId('usr');
      await t.server.services.pii.createProfile(twin, frank.email, 'Twin');
      assert.equal((await indexes()).get(twin), `k4.${hmacSha256(v4, `email:${normalizeEmail(frank.email)}`)}`);
      const collided = await rampartWith(t.env, 'keys', 'rotate-blind-index');
      assert.equal(collided.code, 1, collided.stderr);
      assert.match(collided.stdout, /^blind index key rotated: version 5; \d+ indexes re-keyed; left as they were: 1 did not decrypt, 1 collided with an address already indexed under the new version\n$/);
      const after = await indexes();
      assert.equal([after.get(frank.userId), after.get(twin)].filter((index) => index?.startsWith('k5.')).length, 1, 'one of the two took the new index, the other kept its own');
      const rotatedAgain = (await t.server.services.audit.latest({ limit: 5 })).events.find((e) => e.action === 'blind_index_key.rotated');
      assert.equal(rotatedAgain?.details?.['conflicts'], 1);
    });
  });
}

async function signUpAs(t: TestServer, email: string) {
  const client = t.client();
  const response = await client.post('/v1/signup', { email, password: strongPassword(), name: 'Invited' });
  assert.equal(response.status, 201, response.text);
  return { client, userId: response.body.user.id as string };
}
