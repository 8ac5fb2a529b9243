/**
 * The per-org cap on pending invitations (MAX_PENDING_INVITATIONS_PER_ORG) is checked twice
 * in OrgService.invite: once before the mail goes out, and once more inside the transaction
 * under the org lock. Requests that all pass the first check while the others are still
 * mailing must still leave at most `cap` pending: the second check refuses them with
 * `409 invitation_limit_reached`. test/security/invitation-flood.test.ts covers only the
 * first check (sequential requests).
 *
 * The mail is sent BEFORE the transaction (see `invite`), so an invitation the second check
 * refuses has had its mail sent: its link names no invitation and fails closed
 * (`invalid_token`). That is what is asserted for the refused ones, not "no mail".
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sha256Hex } from '../../src/crypto/hash.js';
import type { MailMessage } from '../../src/mail/mailer.js';
import { signUp, startTestServer, type TestServer, uniqueEmail } from '../helpers/harness.js';
import { captureEvents, createOrgWithRoles, invitationTokensFor, type OrgFixture } from '../helpers/orgs.js';

const CAP = 3;
const CONCURRENT = 10;

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`the pending-invitation cap holds under concurrent invitations (${store})`, () => {
    let t: TestServer;
    let events: ReturnType<typeof captureEvents>;
    before(async () => {
      t = await startTestServer({ store, env: { MAX_PENDING_INVITATIONS_PER_ORG: String(CAP) } });
      events = captureEvents(t);
    });
    after(() => t.close());

    /** A fresh org holding CAP-1 pending invitations. */
    async function orgOneBelowCap(label: string): Promise<OrgFixture> {
      const org = await createOrgWithRoles(t, label);
      for (let i = 0; i < CAP - 1; i++) {
        const response = await invite(org, uniqueEmail(`${label}-fill`));
        assert.equal(response.status, 201, response.text);
      }
      return org;
    }
    const invite = (org: OrgFixture, email: string) => org.users.admin.client.post(`/v1/orgs/${org.orgId}/invitations`, { email, role: 'member' });
    const pendingRows = (org: OrgFixture) => t.server.services.stores.main.db.selectFrom('org_invitations').select(['id', 'token_hash'])
      .where('org_id', '=', org.orgId).where('accepted_at', 'is', null).where('expires_at', '>', t.clock.now()).execute();

    /** Fires CONCURRENT invitations at once; checks the answers, the rows, the audit and the mailed links. */
    async function raceAndCheck(org: OrgFixture): Promise<{ mailedRefused: number }> {
      const emails = Array.from({ length: CONCURRENT }, () => uniqueEmail('race'));
      const responses = await Promise.all(emails.map((email) => invite(org, email)));

      const winners = emails.filter((_, i) => responses[i]!.status === 201);
      assert.equal(winners.length, 1, `exactly one 201: ${responses.map((r) => r.status).join(',')}`);
      responses.forEach((response, i) => {
        if (response.status === 201) return;
        assert.equal(response.status, 409, `${emails[i]}: ${response.text}`);
        assert.equal(response.body.code, 'invitation_limit_reached');
        assert.match(response.body.detail, new RegExp(`${CAP} pending invitations; at most ${CAP}`));
      });

      const rows = await pendingRows(org);
      assert.equal(rows.length, CAP, 'exactly the cap is pending');
      const winnerIndex = emails.indexOf(winners[0]!);
      assert.ok(rows.some((row) => row.id === responses[winnerIndex]!.body.id), 'the 201 is a stored invitation');
      const created = events.filter((e) => e.action === 'invitation.created' && e.orgId === org.orgId);
      assert.equal(created.length, CAP, 'one invitation.created per stored invitation, none for the refused');

      // The winner's link is the stored one; a refused invitation mailed before the second
      // check refused it has a link that names nothing and fails closed.
      const [winnerToken] = invitationTokensFor(t, winners[0]!);
      assert.ok(winnerToken, 'the winner was mailed');
      assert.ok(rows.some((row) => row.token_hash === sha256Hex(winnerToken)));
      const stranger = await signUp(t, 'race-stranger');
      let mailedRefused = 0;
      for (const email of emails) {
        if (email === winners[0]) continue;
        for (const token of invitationTokensFor(t, email)) {
          mailedRefused++;
          assert.ok(!rows.some((row) => row.token_hash === sha256Hex(token)));
          const accepted = await stranger.client.post('/v1/invitations/accept', { token });
          assert.equal(accepted.status, 400, accepted.text);
          assert.equal(accepted.body.code, 'invalid_token');
        }
      }
      return { mailedRefused };
    }

    test('concurrent invitations as they come: one 201, the rest 409, exactly the cap pending', async () => {
      const org = await orgOneBelowCap('race-free');
      await raceAndCheck(org);
    });

    test('every request past the first check while the others mail: only the in-transaction check can refuse them', async () => {
      const org = await orgOneBelowCap('race-held');
      // Holds each invitation mail until all CONCURRENT requests are sending theirs: all of
      // them have then passed the first check (none has committed yet), so only the check
      // under the org lock stands between them and CAP + CONCURRENT - 1 pending invitations.
      const mailer = t.server.services.mailer;
      const send = mailer.send;
      const waiting: Array<() => void> = [];
      let timer: NodeJS.Timeout | undefined;
      const releaseAll = () => { clearTimeout(timer); waiting.splice(0).forEach((go) => go()); };
      mailer.send = async (message: MailMessage) => {
        await new Promise<void>((resolve) => {
          waiting.push(resolve);
          if (waiting.length === CONCURRENT) releaseAll();
          // Never deadlock the test if fewer arrive (asserted below).
          else timer ??= setTimeout(releaseAll, 5_000);
        });
        return send.call(mailer, message);
      };
      try {
        const { mailedRefused } = await raceAndCheck(org);
        assert.equal(mailedRefused, CONCURRENT - 1, 'every refused request passed the first check and was mailed: the second check refused it');
      } finally {
        clearTimeout(timer);
        mailer.send = send;
      }
    });
  });
}
