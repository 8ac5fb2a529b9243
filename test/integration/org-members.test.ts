import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sha256Hex } from '../../src/crypto/hash.js';
import { INVITATION_TTL_MS } from '../../src/orgs/org-service.js';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';
import { captureEvents, createOrgWithRoles, invitationTokenFor, type OrgFixture, outboxMailTo, stepUp } from '../helpers/orgs.js';

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`org invitations, roles and removal (${store})`, () => {
    let t: TestServer;
    let org: OrgFixture;
    let events: ReturnType<typeof captureEvents>;
    before(async () => {
      t = await startTestServer({ store });
      events = captureEvents(t);
      org = await createOrgWithRoles(t, 'members');
    });
    after(async () => {
      await t.close();
    });

    const invite = (by: OrgFixture['users'][keyof OrgFixture['users']], email: string, role = 'member') =>
      by.client.post(`/v1/orgs/${org.orgId}/invitations`, { email, role });

    test('an invitation is mailed as a single-use link; only its hash is stored', async () => {
      const invitee = await signUp(t, 'invitee');
      const response = await invite(org.users.admin, invitee.email, 'auditor');
      assert.equal(response.status, 201);
      assert.match(response.body.id, /^inv_/);
      assert.equal(Date.parse(response.body.expiresAt), t.clock.now() + INVITATION_TTL_MS);
      const mail = outboxMailTo(t, invitee.email)[0]!;
      assert.ok(mail.includes(`${t.server.services.publicUrl}/invitations/accept?token=`), 'link on the public origin');
      const token = invitationTokenFor(t, invitee.email);
      assert.match(token, /^[A-Za-z0-9_-]{43}$/, '256 random bits');
      const row = await t.server.services.stores.main.db.selectFrom('org_invitations').selectAll().where('id', '=', response.body.id).executeTakeFirstOrThrow();
      assert.equal(row.token_hash, sha256Hex(token));
      assert.ok(!JSON.stringify(row).includes(token));
      assert.ok(!JSON.stringify(row).includes(invitee.email), 'no address in the main store');
      assert.ok(!t.logs.some((line) => line.includes(token)), 'the token never reaches the log');
      const created = events.findLast((e) => e.action === 'invitation.created')!;
      assert.ok(created.inTransaction);
      assert.ok(!JSON.stringify(created).includes(invitee.email) && !JSON.stringify(created).includes(token));

      assert.equal((await t.client().post('/v1/invitations/accept', { token })).status, 401, 'accepting needs a signed-in account');
      const accepted = await invitee.client.post('/v1/invitations/accept', { token });
      assert.equal(accepted.status, 200);
      assert.equal(accepted.body.org.id, org.orgId);
      assert.equal(accepted.body.org.role, 'auditor');
      assert.equal((await invitee.client.get(`/v1/orgs/${org.orgId}`)).status, 200);
      const again = await invitee.client.post('/v1/invitations/accept', { token });
      assert.equal(again.status, 400);
      assert.equal(again.body.code, 'invalid_token');
      assert.ok(events.some((e) => e.action === 'member.added' && e.target?.id === invitee.userId && e.details?.['via'] === 'invitation'));
    });

    test('only the invited address can accept; the link is not used up by someone else', async () => {
      const invitee = await signUp(t, 'target');
      const intruder = await signUp(t, 'intruder');
      assert.equal((await invite(org.users.owner, invitee.email)).status, 201);
      const token = invitationTokenFor(t, invitee.email);
      const wrong = await intruder.client.post('/v1/invitations/accept', { token });
      assert.equal(wrong.status, 403);
      assert.equal(wrong.body.code, 'invitation_email_mismatch');
      assert.equal((await intruder.client.get(`/v1/orgs/${org.orgId}`)).status, 404);
      assert.equal((await invitee.client.post('/v1/invitations/accept', { token })).status, 200);
    });

    test('who may invite: admin+; the owner role only by an owner; never an existing member', async () => {
      const email = (await signUp(t, 'candidate')).email;
      for (const role of ['member', 'auditor'] as const) {
        const refused = await invite(org.users[role], email);
        assert.equal(refused.status, 403, role);
        assert.equal(refused.body.code, 'forbidden');
      }
      const ownerByAdmin = await invite(org.users.admin, email, 'owner');
      assert.equal(ownerByAdmin.status, 403);
      assert.equal((await invite(org.users.owner, email, 'owner')).status, 201);
      const existing = await invite(org.users.admin, org.users.member.email.toUpperCase());
      assert.equal(existing.status, 409);
      assert.equal(existing.body.code, 'already_member');
      assert.equal((await invite(org.users.admin, 'not-an-email')).status, 400);
      assert.equal((await org.users.admin.client.post(`/v1/orgs/${org.orgId}/invitations`, { email, role: 'superuser' })).status, 400);
    });

    test('role changes: admin+; owner role only by an owner; the last owner cannot be demoted', async () => {
      const fresh = await createOrgWithRoles(t, 'roles');
      const path = (userId: string) => `/v1/orgs/${fresh.orgId}/members/${userId}`;
      const { owner, admin, auditor, member } = fresh.users;
      assert.equal((await member.client.patch(path(auditor.userId), { role: 'member' })).status, 403);
      assert.equal((await auditor.client.patch(path(member.userId), { role: 'admin' })).status, 403);
      const promoted = await admin.client.patch(path(member.userId), { role: 'auditor' });
      assert.equal(promoted.status, 200);
      assert.equal(promoted.body.member.role, 'auditor');
      assert.equal(promoted.body.member.email, member.email);
      assert.ok(events.some((e) => e.action === 'member.role_changed' && e.orgId === fresh.orgId && e.details?.['to'] === 'auditor' && e.inTransaction));
      assert.equal((await admin.client.patch(path(member.userId), { role: 'owner' })).status, 403, 'an admin cannot grant owner');
      assert.equal((await admin.client.patch(path(admin.userId), { role: 'owner' })).status, 403, 'nor take it');
      assert.equal((await admin.client.patch(path(owner.userId), { role: 'member' })).status, 403, 'nor demote an owner');
      const last = await owner.client.patch(path(owner.userId), { role: 'admin' });
      assert.equal(last.status, 409);
      assert.equal(last.body.code, 'last_owner');
      assert.equal((await owner.client.patch(path(admin.userId), { role: 'owner' })).status, 200);
      assert.equal((await owner.client.patch(path(owner.userId), { role: 'admin' })).status, 200, 'with a second owner, stepping down works');
      const lastAgain = await admin.client.patch(path(admin.userId), { role: 'member' });
      assert.equal(lastAgain.body.code, 'last_owner');
      assert.equal((await owner.client.patch(path('usr_nobody'), { role: 'member' })).status, 404);
      assert.equal((await admin.client.patch(path(member.userId), { role: 'root' })).status, 400);
      assert.equal((await admin.client.patch(path(member.userId), { role: 'member', extra: 1 })).status, 400);
    });

    test('two owners demoting each other at once leave one owner', async () => {
      const fresh = await createOrgWithRoles(t, 'race');
      const { owner, admin } = fresh.users;
      assert.equal((await owner.client.patch(`/v1/orgs/${fresh.orgId}/members/${admin.userId}`, { role: 'owner' })).status, 200);
      const [a, b] = await Promise.all([
        owner.client.patch(`/v1/orgs/${fresh.orgId}/members/${admin.userId}`, { role: 'member' }),
        admin.client.patch(`/v1/orgs/${fresh.orgId}/members/${owner.userId}`, { role: 'member' }),
      ]);
      // The loser either finds the last owner (409) or has itself just been demoted (403).
      const statuses = [a.status, b.status].sort();
      assert.equal(statuses[0], 200, `${a.status} ${b.status}`);
      assert.ok([403, 409].includes(statuses[1]!), `${a.status} ${b.status}`);
      assert.equal(await t.server.services.stores.main.db.selectFrom('org_memberships').select('user_id')
        .where('org_id', '=', fresh.orgId).where('role', '=', 'owner').execute().then((rows) => rows.length), 1);
    });

    test('removal: the removed member\'s session and tokens lose the org at once; leaving; the last owner stays', async () => {
      const fresh = await createOrgWithRoles(t, 'remove');
      const { owner, admin, auditor, member } = fresh.users;
      await stepUp(member);
      const token = await member.client.post('/v1/me/tokens', { name: 'bound', scopes: ['org:read', 'profile:read'], orgId: fresh.orgId });
      assert.equal(token.status, 201);
      const bearer = { authorization: `Bearer ${token.body.token}` };
      assert.equal((await t.client().get(`/v1/orgs/${fresh.orgId}`, { headers: bearer })).status, 200);
      assert.equal((await member.client.get(`/v1/orgs/${fresh.orgId}`)).status, 200);

      assert.equal((await auditor.client.delete(`/v1/orgs/${fresh.orgId}/members/${member.userId}`)).status, 403);
      const removal = await admin.client.delete(`/v1/orgs/${fresh.orgId}/members/${member.userId}`);
      assert.equal(removal.status, 204);
      assert.equal((await member.client.get(`/v1/orgs/${fresh.orgId}`)).status, 404, 'the live session lost the org');
      assert.deepEqual((await member.client.get('/v1/session')).body.orgs, []);
      assert.equal((await t.client().get(`/v1/orgs/${fresh.orgId}`, { headers: bearer })).status, 401, 'the org-bound token ended with the membership');
      assert.equal((await t.client().get('/v1/session', { headers: bearer })).status, 401, 'and is good for nothing else');
      assert.equal((await admin.client.delete(`/v1/orgs/${fresh.orgId}/members/${member.userId}`)).status, 404);
      assert.ok(events.some((e) => e.action === 'member.removed' && e.orgId === fresh.orgId && e.target?.id === member.userId && e.inTransaction));
      // The removal revoked the bound token: taking the person back later does not revive it.
      const revoked = events.find((e) => e.action === 'api_token.revoked' && e.target?.id === token.body.id);
      assert.equal(revoked?.details?.['reason'], 'membership_ended');
      assert.equal(revoked?.orgId, fresh.orgId);
      assert.ok(revoked?.inTransaction, 'revoked in the transaction that ended the membership');
      const removalRequestId = String(removal.headers['x-request-id']);
      assert.match(removalRequestId, /^[0-9a-f-]{36}$/);
      assert.equal(revoked?.requestId, removalRequestId, 'the revocation names the removal request');
      assert.equal(revoked?.ip, '127.0.0.1', 'and its client address');
      assert.ok(!(await member.client.get('/v1/me/tokens')).body.tokens.some((x: { id: string }) => x.id === token.body.id));
      await t.server.services.orgs.addMember(fresh.orgId, member.userId, 'member', { type: 'system', id: null });
      assert.equal((await member.client.get(`/v1/orgs/${fresh.orgId}`)).status, 200, 'control: the member is back');
      assert.equal((await t.client().get(`/v1/orgs/${fresh.orgId}`, { headers: bearer })).status, 401, 'the old token stays dead');
      assert.equal((await admin.client.delete(`/v1/orgs/${fresh.orgId}/members/${member.userId}`)).status, 204);

      assert.equal((await admin.client.delete(`/v1/orgs/${fresh.orgId}/members/${owner.userId}`)).status, 403, 'an admin cannot remove an owner');
      assert.equal((await auditor.client.delete(`/v1/orgs/${fresh.orgId}/members/${auditor.userId}`)).status, 204, 'anyone may leave');
      const lastOwner = await owner.client.delete(`/v1/orgs/${fresh.orgId}/members/${owner.userId}`);
      assert.equal(lastOwner.status, 409);
      assert.equal(lastOwner.body.code, 'last_owner');
      assert.equal((await owner.client.get(`/v1/orgs/${fresh.orgId}`)).status, 200);
    });

    test('expired, replaced, malformed and unknown tokens are invalid_token', async () => {
      const invitee = await signUp(t, 'late');
      assert.equal((await invite(org.users.admin, invitee.email)).status, 201);
      const first = invitationTokenFor(t, invitee.email);
      assert.equal((await invite(org.users.admin, invitee.email)).status, 201);
      const second = invitationTokenFor(t, invitee.email, [first]);
      assert.notEqual(first, second);
      const replaced = await invitee.client.post('/v1/invitations/accept', { token: first });
      assert.equal(replaced.body.code, 'invalid_token', 'a new invitation replaces the older link');
      // Runs last: the clock jump ends every session of the fixture.
      t.clock.advance(INVITATION_TTL_MS);
      assert.equal((await invitee.client.post('/v1/login', { email: invitee.email, password: invitee.password })).status, 200);
      const expired = await invitee.client.post('/v1/invitations/accept', { token: second });
      assert.equal(expired.status, 400);
      assert.equal(expired.body.code, 'invalid_token');
      for (const token of ['x', 'A'.repeat(43), `${second.slice(0, 42)}!`]) {
        assert.equal((await invitee.client.post('/v1/invitations/accept', { token })).body.code, 'invalid_token');
      }
      assert.equal((await invitee.client.post('/v1/invitations/accept', { token: 'x'.repeat(129) })).status, 400);
      assert.equal((await invitee.client.get(`/v1/orgs/${org.orgId}`)).status, 404);
    });

    test('the invitation mail names the org and the role, with the link on its own line', () => {
      const file = readdirSync(join(t.dataDir, 'outbox')).sort().at(-1)!;
      const raw = readFileSync(join(t.dataDir, 'outbox', file), 'utf8');
      assert.match(raw, /^Subject: You are invited to join /m);
      assert.doesNotMatch(raw, /<html/i, 'plain text only');
    });
  });
}
