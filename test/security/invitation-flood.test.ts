/**
 * Threat: resource exhaustion and mail through invitations. Each invitation is a row and a
 * mail to an address the inviter chose; the per-account mail budget slows one admin, but
 * nothing bounded what an org could have pending, and expired invitations were never
 * deleted. Now an org has at most MAX_PENDING_INVITATIONS_PER_ORG pending (ASVS V2.1.3):
 * past it `409 invitation_limit_reached`, refused before any mail goes out (requests racing
 * past that check are refused again under the org lock, after their mail, whose link then
 * fails closed: test/integration/invitation-cap-race.test.ts); re-inviting a
 * pending address replaces its link and needs no room; the hourly sweep deletes
 * invitations that expired unused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sweepExpired } from '../../src/monitoring/background.js';
import { INVITATION_TTL_MS } from '../../src/orgs/org-service.js';
import { startTestServer, type TestServer, uniqueEmail } from '../helpers/harness.js';
import { createOrgWithRoles, invitationTokensFor, type OrgFixture } from '../helpers/orgs.js';

const LIMIT = 2;

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`pending invitations of an org are capped and expired ones swept (${store})`, () => {
    let t: TestServer;
    let org: OrgFixture;
    before(async () => {
      t = await startTestServer({ store, env: { MAX_PENDING_INVITATIONS_PER_ORG: String(LIMIT) } });
      org = await createOrgWithRoles(t, 'inv-flood');
    });
    after(() => t.close());

    const invite = (email: string) => org.users.admin.client.post(`/v1/orgs/${org.orgId}/invitations`, { email, role: 'member' });
    const rows = () => t.server.services.stores.main.db.selectFrom('org_invitations').select(['id', 'expires_at', 'accepted_at']).where('org_id', '=', org.orgId).execute();

    test('past the cap: 409 invitation_limit_reached, no mail, no row; re-inviting a pending address still works; expired invitations make room and are swept', async () => {
      const first = uniqueEmail('inv-a');
      const second = uniqueEmail('inv-b');
      assert.equal((await invite(first)).status, 201);
      assert.equal((await invite(second)).status, 201);
      const third = uniqueEmail('inv-c');
      const refused = await invite(third);
      assert.equal(refused.status, 409, refused.text);
      assert.equal(refused.body.code, 'invitation_limit_reached');
      assert.match(refused.body.detail, /2 pending invitations; at most 2/);
      assert.deepEqual(invitationTokensFor(t, third), [], 'no mail for a refused invitation');
      assert.equal((await rows()).length, 2);

      // A new link for an address already invited replaces the old one: no room needed.
      assert.equal((await invite(first)).status, 201);
      assert.equal(invitationTokensFor(t, first).length, 2);
      assert.equal((await rows()).length, 2);

      // Once they expire, they no longer count, and the sweep deletes them. (Moved into the past
      // rather than the clock moved a week ahead, which would also end the admin's session.)
      assert.ok((await rows()).every((row) => row.expires_at === t.clock.now() + INVITATION_TTL_MS));
      await t.server.services.stores.main.db.updateTable('org_invitations').set({ expires_at: t.clock.now() }).where('org_id', '=', org.orgId).execute();
      assert.equal((await invite(third)).status, 201, 'expired invitations make room');
      const counts = await sweepExpired(t.server.services);
      assert.equal(counts['invitations'], 2);
      const left = await rows();
      assert.equal(left.length, 1);
      assert.ok(left[0]!.expires_at > t.clock.now());
    });
  });
}
