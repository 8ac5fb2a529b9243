import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { defaultOrgPolicy, type OrgPolicy } from '../../src/policy/org-policy.js';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';
import { enrollTOTP } from '../helpers/mfa.js';
import { captureEvents, createBareUser, createOrgWithRoles, type OrgFixture, stepUp, uniqueSlug } from '../helpers/orgs.js';

function policyWith(change: (policy: OrgPolicy) => void): OrgPolicy {
  const policy = defaultOrgPolicy();
  change(policy);
  return policy;
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`organizations: create, read, members, policy (${store})`, () => {
    let t: TestServer;
    let org: OrgFixture;
    let events: ReturnType<typeof captureEvents>;
    before(async () => {
      t = await startTestServer({ store });
      events = captureEvents(t);
      org = await createOrgWithRoles(t, 'core');
    });
    after(async () => {
      await t.close();
    });

    test('the creator becomes owner; the org shows in GET /v1/session', async () => {
      const { owner } = org.users;
      const read = await owner.client.get(`/v1/orgs/${org.orgId}`);
      assert.equal(read.status, 200);
      assert.equal(read.body.org.id, org.orgId);
      assert.equal(read.body.org.slug, org.slug);
      assert.equal(read.body.org.role, 'owner');
      assert.match(read.body.org.createdAt, /^\d{4}-\d\d-\d\dT/);
      const session = await owner.client.get('/v1/session');
      assert.deepEqual(session.body.orgs, [{ id: org.orgId, name: read.body.org.name, slug: org.slug, role: 'owner' }]);
      const created = events.find((e) => e.action === 'org.created' && e.orgId === org.orgId);
      assert.ok(created?.inTransaction, 'org.created is recorded with the write');
    });

    test('a taken slug answers 409 slug_taken; malformed names and slugs 400', async () => {
      const { client } = org.users.member;
      const taken = await client.post('/v1/orgs', { name: 'Copy', slug: org.slug });
      assert.equal(taken.status, 409);
      assert.equal(taken.body.code, 'slug_taken');
      for (const body of [
        { name: 'X', slug: 'Has Spaces' }, { name: 'X', slug: '-lead' }, { name: 'X', slug: 'a' }, { name: 'X', slug: 'x'.repeat(64) },
        { name: '', slug: uniqueSlug() }, { name: 'line\nbreak', slug: uniqueSlug() }, { name: 'X', slug: uniqueSlug(), extra: 1 }, { name: 'X' },
      ]) {
        const response = await client.post('/v1/orgs', body);
        assert.equal(response.status, 400, JSON.stringify(body));
      }
    });

    test('members are listed with email, name, role and MFA state, for every role', async () => {
      for (const role of ['owner', 'admin', 'auditor', 'member'] as const) {
        const response = await org.users[role].client.get(`/v1/orgs/${org.orgId}/members`);
        assert.equal(response.status, 200, role);
        const byRole = Object.fromEntries(response.body.members.map((m: { role: string; email: string }) => [m.role, m]));
        for (const expected of ['owner', 'admin', 'auditor', 'member'] as const) {
          assert.equal(byRole[expected].email, org.users[expected].email);
          assert.equal(byRole[expected].userId, org.users[expected].userId);
          assert.equal(byRole[expected].mfaEnabled, false);
          assert.equal(typeof byRole[expected].name, 'string');
        }
      }
    });

    test('members page with limit and after (the audit log\'s style); without them the body is as before', async () => {
      const fresh = await createOrgWithRoles(t, 'paged');
      // Members joining in the same millisecond still page in a stable order (joinedAt, then userId).
      for (let i = 0; i < 3; i++) {
        await t.server.services.orgs.addMember(fresh.orgId, await createBareUser(t, `paged-${i}`), 'member', { type: 'system', id: null });
      }
      const { client } = fresh.users.member;
      const whole = await client.get(`/v1/orgs/${fresh.orgId}/members`);
      assert.equal(whole.status, 200);
      assert.equal(whole.body.members.length, 7);
      assert.equal(whole.body.next, null, 'one page holds a small org: unpaged clients see every member');
      const seen: string[] = [];
      let after: string | null = null;
      let pages = 0;
      do {
        const query: string = `limit=3${after ? `&after=${encodeURIComponent(after)}` : ''}`;
        const page = await client.get(`/v1/orgs/${fresh.orgId}/members?${query}`);
        assert.equal(page.status, 200, page.text);
        assert.ok(page.body.members.length <= 3);
        seen.push(...page.body.members.map((m: { userId: string }) => m.userId));
        after = page.body.next;
        pages++;
      } while (after !== null && pages < 10);
      assert.equal(pages, 3);
      assert.deepEqual(seen, whole.body.members.map((m: { userId: string }) => m.userId), 'every member once, in the same order');
      for (const bad of ['limit=0', 'limit=1001', 'limit=x', 'after=%27%20or%201%3D1', `after=${'9'.repeat(16)}.usr_x`, 'cursor=abc']) {
        assert.equal((await client.get(`/v1/orgs/${fresh.orgId}/members?${bad}`)).status, 400, bad);
      }
      const outsider = await client.get(`/v1/orgs/${org.orgId}/members?limit=1`);
      assert.equal(outsider.status, 404, 'paging does not open another org');
    });

    test('an unknown org and another org answer the same 404', async () => {
      const outsider = await signUp(t, 'outsider');
      const foreign = await outsider.client.get(`/v1/orgs/${org.orgId}`);
      const missing = await outsider.client.get('/v1/orgs/org_doesnotexist0000000000');
      assert.equal(foreign.status, 404);
      assert.equal(missing.status, 404);
      assert.deepEqual(foreign.body, missing.body);
      assert.equal((await t.client().get(`/v1/orgs/${org.orgId}`)).status, 401);
    });

    test('assertAllowed: a token needs the scope AND its owner\'s current role, and stays in its org', async () => {
      const orgs = t.server.services.orgs;
      const bearer = (userId: string, scopes: string[], orgId: string | null = null) => ({ kind: 'bearer' as const, userId, scopes, orgId, credentialId: 'tok_test' });
      const code = async (promise: Promise<unknown>) => promise.then(() => 'ok', (error: { code?: string }) => error.code);
      const { owner, member } = org.users;
      assert.equal(await code(orgs.assertAllowed(bearer(owner.userId, ['org:read']), org.orgId, 'org.read')), 'ok');
      assert.equal(await code(orgs.assertAllowed(bearer(owner.userId, ['org:read']), org.orgId, 'members.invite')), 'insufficient_scope');
      assert.equal(await code(orgs.assertAllowed(bearer(owner.userId, ['org:admin']), org.orgId, 'audit.read')), 'insufficient_scope');
      assert.equal(await code(orgs.assertAllowed(bearer(owner.userId, ['org:admin']), org.orgId, 'members.invite')), 'ok');
      assert.equal(await code(orgs.assertAllowed(bearer(member.userId, ['org:admin', 'audit:read']), org.orgId, 'members.invite')), 'forbidden');
      assert.equal(await code(orgs.assertAllowed(bearer(member.userId, ['org:admin', 'audit:read']), org.orgId, 'audit.read')), 'forbidden');
      assert.equal(await code(orgs.assertAllowed(bearer(owner.userId, ['org:read'], 'org_other'), org.orgId, 'org.read')), 'not_found');
      assert.equal(await code(orgs.assertAllowed(bearer(owner.userId, ['org:read'], org.orgId), org.orgId, 'org.read')), 'ok');
      assert.equal(await code(orgs.assertAllowed({ kind: 'session', userId: member.userId, scopes: null }, org.orgId, 'members.remove')), 'forbidden');
      assert.equal(await code(orgs.assertAllowed({ kind: 'session', userId: member.userId, scopes: null }, 'org_missing', 'org.read')), 'not_found');
    });

    test('GET policy gives the secure defaults to every member', async () => {
      const response = await org.users.member.client.get(`/v1/orgs/${org.orgId}/policy`);
      assert.equal(response.status, 200);
      assert.deepEqual(response.body, defaultOrgPolicy());
    });

    test('PUT policy needs admin+ and a step-up; member and auditor are refused', async () => {
      const body = policyWith((p) => { p.password.minLength = 14; });
      const { admin, member, auditor } = org.users;
      const noStepUp = await admin.client.put(`/v1/orgs/${org.orgId}/policy`, body);
      assert.equal(noStepUp.status, 403);
      assert.equal(noStepUp.body.code, 'reauth_required');
      for (const user of [member, auditor]) {
        await stepUp(user);
        const refused = await user.client.put(`/v1/orgs/${org.orgId}/policy`, body);
        assert.equal(refused.status, 403);
        assert.equal(refused.body.code, 'forbidden');
      }
      assert.equal((await member.client.get(`/v1/orgs/${org.orgId}/policy`)).body.password.minLength, 12, 'unchanged');
      await stepUp(admin);
      const ok = await admin.client.put(`/v1/orgs/${org.orgId}/policy`, body);
      assert.equal(ok.status, 200);
      assert.equal(ok.body.password.minLength, 14);
      assert.equal((await member.client.get(`/v1/orgs/${org.orgId}/policy`)).body.password.minLength, 14);
      const denied = events.filter((e) => e.action === 'access.denied' && e.orgId === org.orgId);
      assert.ok(denied.some((e) => e.actor.id === member.userId && e.details?.['action'] === 'policy.update'), 'refusals are audited');
    });

    test('policy.updated carries before and after and commits with the change', async () => {
      const { owner } = org.users;
      await stepUp(owner);
      const before = (await owner.client.get(`/v1/orgs/${org.orgId}/policy`)).body;
      const body = policyWith((p) => { p.session.idleTimeoutMinutes = 15; p.tokens.maxLifetimeDays = 30; });
      const response = await owner.client.put(`/v1/orgs/${org.orgId}/policy`, body);
      assert.equal(response.status, 200);
      const event = events.findLast((e) => e.action === 'policy.updated' && e.orgId === org.orgId)!;
      assert.ok(event.inTransaction);
      assert.deepEqual(event.details?.['before'], before);
      assert.deepEqual(event.details?.['after'], body);
      assert.equal(event.actor.id, owner.userId);
    });

    test('PUT policy validates strictly: unknown members, bounds, CIDRs, wrong shapes', async () => {
      const { owner } = org.users;
      await stepUp(owner);
      const bad: unknown[] = [
        [],
        { mfa: null },
        { network: { ipAllowlist: '10.0.0.0/8' } },
        { ...defaultOrgPolicy(), extra: true },
        policyWith((p) => { (p.password as Record<string, unknown>)['composition'] = true; }),
        policyWith((p) => { p.password.minLength = 7; }),
        policyWith((p) => { p.password.minLength = 65; }),
        policyWith((p) => { p.mfa.methods = []; }),
        policyWith((p) => { (p.mfa.methods as string[]) = ['sms']; }),
        policyWith((p) => { p.session.idleTimeoutMinutes = 0; }),
        policyWith((p) => { p.tokens.maxLifetimeDays = 1000; }),
        policyWith((p) => { (p.password as Record<string, unknown>)['minLength'] = '12'; }),
        policyWith((p) => { p.network.ipAllowlist = ['10.0.0.1/8']; }),
        policyWith((p) => { p.network.ipAllowlist = ['10.0.0.0/33']; }),
        policyWith((p) => { p.network.ipAllowlist = ['example.com']; }),
        policyWith((p) => { p.network.ipAllowlist = ['127.1']; }),
        policyWith((p) => { p.network.ipAllowlist = ['fe80::1%eth0']; }),
        policyWith((p) => { p.network.ipAllowlist = ['2001:db8::1/32']; }),
        policyWith((p) => { p.network.ipAllowlist = Array.from({ length: 101 }, (_, i) => `10.0.${i}.0/24`); }),
      ];
      for (const body of bad) {
        const response = await owner.client.put(`/v1/orgs/${org.orgId}/policy`, body);
        assert.equal(response.status, 400, JSON.stringify(body).slice(0, 200));
        assert.equal(response.body.code, 'invalid_request');
      }
      const cidr = await owner.client.put(`/v1/orgs/${org.orgId}/policy`, policyWith((p) => { p.network.ipAllowlist = ['127.0.0.0/8', '10.0.0.1/8']; }));
      assert.deepEqual(cidr.body.invalidEntries, ['10.0.0.1/8']);
      assert.equal((await owner.client.put(`/v1/orgs/${org.orgId}/policy?force=maybe`, defaultOrgPolicy())).status, 400);
      assert.equal((await owner.client.put(`/v1/orgs/${org.orgId}/policy?other=1`, defaultOrgPolicy())).status, 400);
    });

    test('PUT policy takes any part of the policy: what is left out keeps its current value (never a silent reset)', async () => {
      const { owner } = org.users;
      await stepUp(owner);
      const allowlisted = policyWith((p) => { p.network.ipAllowlist = ['127.0.0.0/8']; p.tokens.maxLifetimeDays = 30; });
      assert.equal((await owner.client.put(`/v1/orgs/${org.orgId}/policy`, allowlisted)).status, 200);
      const partial = await owner.client.put(`/v1/orgs/${org.orgId}/policy`, { password: { minLength: 14 } });
      assert.equal(partial.status, 200, partial.text);
      assert.equal(partial.body.password.minLength, 14);
      assert.equal(partial.body.password.historyCount, allowlisted.password.historyCount, 'the rest of the section stays');
      assert.deepEqual(partial.body.network.ipAllowlist, ['127.0.0.0/8'], 'the allowlist is not reset to "everyone"');
      assert.equal(partial.body.tokens.maxLifetimeDays, 30);
      assert.deepEqual((await owner.client.get(`/v1/orgs/${org.orgId}/policy`)).body, partial.body);
      // The merged result is what is checked: an allowlist that excludes the caller still needs ?force=true.
      const lockout = await owner.client.put(`/v1/orgs/${org.orgId}/policy`, { network: { ipAllowlist: ['10.0.0.0/8'] } });
      assert.equal(lockout.status, 409);
      assert.equal(lockout.body.code, 'would_lock_out_self');
      const invalid = await owner.client.put(`/v1/orgs/${org.orgId}/policy`, { session: { idleTimeoutMinutes: 0 } });
      assert.equal(invalid.status, 400, 'bounds apply to the merged policy');
      assert.equal((await owner.client.put(`/v1/orgs/${org.orgId}/policy`, defaultOrgPolicy())).status, 200, 'a whole policy replaces it, as before');
    });

    test('mfa.required records when it was turned on, keeps it while on, clears it when off', async () => {
      const { owner } = org.users;
      const db = t.server.services.stores.main.db;
      const since = async () => (await db.selectFrom('orgs').select('mfa_required_since').where('id', '=', org.orgId).executeTakeFirstOrThrow()).mfa_required_since;
      // Once MFA is required, a session that has not proved a factor may only enroll one
      // (mfa-org-enforcement.test.ts): the owner turns on a factor first, which steps up too.
      await enrollTOTP(t, owner.client, owner.password);
      const on = policyWith((p) => { p.mfa.required = true; });
      assert.equal((await owner.client.put(`/v1/orgs/${org.orgId}/policy`, on)).status, 200);
      const turnedOnAt = t.clock.now();
      assert.equal(await since(), turnedOnAt);
      t.clock.advance(60_000);
      on.mfa.gracePeriodHours = 24;
      assert.equal((await owner.client.put(`/v1/orgs/${org.orgId}/policy`, on)).status, 200);
      assert.equal(await since(), turnedOnAt, 'a later edit does not restart the grace period');
      const policy = await t.server.services.policies.forUser(org.users.member.userId);
      assert.equal(policy.mfa.required, true);
      assert.equal(policy.mfa.gracePeriodHours, 24);
      assert.equal(policy.mfaRequiredSince, turnedOnAt);
      assert.equal((await owner.client.put(`/v1/orgs/${org.orgId}/policy`, defaultOrgPolicy())).status, 200);
      assert.equal(await since(), null);
      assert.equal((await t.server.services.policies.forUser(org.users.member.userId)).mfaRequiredSince, null);
    });

    test('the effective policy is the strictest of the user\'s orgs, with their names as context words', async () => {
      const other = await createOrgWithRoles(t, 'strict');
      const user = org.users.member;
      await t.server.services.orgs.addMember(other.orgId, user.userId, 'member', { type: 'system', id: null });
      await stepUp(org.users.owner);
      await stepUp(other.users.owner);
      assert.equal((await org.users.owner.client.put(`/v1/orgs/${org.orgId}/policy`, policyWith((p) => { p.password.minLength = 14; p.session.absoluteTimeoutHours = 8; }))).status, 200);
      assert.equal((await other.users.owner.client.put(`/v1/orgs/${other.orgId}/policy`, policyWith((p) => { p.password.minLength = 16; p.session.absoluteTimeoutHours = 10; }))).status, 200);
      const policy = await t.server.services.policies.forUser(user.userId);
      assert.equal(policy.password.minLength, 16);
      assert.equal(policy.session.absoluteTimeoutHours, 8);
      assert.deepEqual(new Set(policy.orgIds), new Set([org.orgId, other.orgId]));
      const names = (await user.client.get('/v1/session')).body.orgs.map((o: { name: string }) => o.name);
      for (const name of names) assert.ok(policy.contextWords.includes(name));
      assert.ok(policy.contextWords.includes(t.server.services.config.productName));
      const stranger = await t.server.services.policies.forUser(null);
      assert.equal(stranger.password.minLength, 12);
      assert.deepEqual(stranger.orgIds, []);
    });
  });
}
