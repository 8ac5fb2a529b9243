import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { type AuditEvent, chainHash } from '../../src/audit/chain.js';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';
import { createOrgWithRoles, type OrgFixture } from '../helpers/orgs.js';

function withoutChain({ prevHash: _p, hash: _h, ...body }: AuditEvent) {
  return body;
}

describe('org audit API and the security-events feed', () => {
  let t: TestServer;
  let org: OrgFixture;
  let otherOrgId: string;
  let outsider: Awaited<ReturnType<typeof signUp>>;
  before(async () => {
    t = await startTestServer();
    org = await createOrgWithRoles(t, 'audit');
    outsider = await signUp(t, 'outsider');
    const other = await outsider.client.post('/v1/orgs', { name: 'Other', slug: `other-${process.pid}-${Date.now()}` });
    otherOrgId = other.body.org.id;
    // A member logs in after joining: the org's admins see it, with where it came from.
    const login = await t.client().post('/v1/login', { email: org.users.member.email, password: org.users.member.password }, {
      headers: { 'user-agent': 'audit-test-agent/1.0' },
    });
    assert.equal(login.status, 200);
  });
  after(async () => {
    await t.close();
  });

  test('owner, admin and auditor read the audit; a member gets 403 and an outsider 404', async () => {
    for (const role of ['owner', 'admin', 'auditor'] as const) {
      const response = await org.users[role].client.get(`/v1/orgs/${org.orgId}/audit`);
      assert.equal(response.status, 200, role);
    }
    const member = await org.users.member.client.get(`/v1/orgs/${org.orgId}/audit`);
    assert.equal(member.status, 403);
    assert.equal(member.body.code, 'forbidden');
    for (const path of ['audit', 'audit/export', 'audit/verify']) {
      assert.equal((await outsider.client.get(`/v1/orgs/${org.orgId}/${path}`)).status, 404, path);
      assert.equal((await org.users.member.client.get(`/v1/orgs/${org.orgId}/${path}`)).status, 403, path);
    }
  });

  test("the org sees its own events and its members' logins, with time, actor, address, agent and request id; never another org's", async () => {
    const { events } = (await org.users.auditor.client.get(`/v1/orgs/${org.orgId}/audit?limit=1000`)).body as { events: AuditEvent[] };
    assert.ok(events.some((e) => e.action === 'org.created' && e.orgId === org.orgId));
    const login = events.find((e) => e.action === 'login.succeeded' && e.actor.id === org.users.member.userId);
    assert.ok(login, 'the member login is in the org audit');
    assert.equal(login.ip, '127.0.0.1');
    assert.equal(login.userAgent, 'audit-test-agent/1.0');
    assert.match(login.requestId ?? '', /^[0-9a-f-]{36}$/);
    assert.match(login.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(login.outcome, 'success');
    assert.ok(!events.some((e) => e.orgId === otherOrgId), 'nothing of the other org');
    assert.ok(!events.some((e) => e.actor.id === outsider.userId), "nothing about a non-member's own events");
    for (const event of events) assert.equal(event.hash, chainHash(event.prevHash, withoutChain(event)), 'each hash recomputes from the event');
    // Every event caused by a request (it has the client's address) names that request.
    for (const event of events.filter((e) => e.ip !== null)) assert.match(event.requestId ?? '', /^[0-9a-f-]{36}$/, `${event.action} has its request id`);
  });

  test('the request id in an event is the x-request-id of the response that caused it', async () => {
    const client = t.client();
    const login = await client.post('/v1/login', { email: org.users.admin.email, password: org.users.admin.password });
    assert.equal(login.status, 200);
    const { events } = (await org.users.auditor.client.get(`/v1/orgs/${org.orgId}/audit?limit=5&action=login.succeeded&actorId=${org.users.admin.userId}`)).body as { events: AuditEvent[] };
    assert.equal(events[0]?.requestId, login.headers['x-request-id']);
  });

  test('cursor paging walks every event once; filters by action and actor', async () => {
    const client = org.users.admin.client;
    const all = (await client.get(`/v1/orgs/${org.orgId}/audit?limit=1000`)).body.events as AuditEvent[];
    const seen: number[] = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; body: { events: AuditEvent[]; next: string | null } } =
        await client.get(`/v1/orgs/${org.orgId}/audit?limit=2${cursor ? `&after=${cursor}` : ''}`);
      assert.equal(page.status, 200);
      assert.ok(page.body.events.length <= 2);
      seen.push(...page.body.events.map((e) => e.seq));
      cursor = page.body.next;
    } while (cursor);
    assert.deepEqual(seen, all.map((e) => e.seq));
    assert.ok(seen.every((seq, i) => i === 0 || seq > seen[i - 1]!));

    const added = (await client.get(`/v1/orgs/${org.orgId}/audit?action=member.added`)).body.events as AuditEvent[];
    assert.equal(added.length, 4, 'the owner at creation and three added members');
    assert.ok(added.every((e) => e.action === 'member.added'));
    const byOwner = (await client.get(`/v1/orgs/${org.orgId}/audit?actorId=${org.users.owner.userId}`)).body.events as AuditEvent[];
    assert.ok(byOwner.length > 0 && byOwner.every((e) => e.actor.id === org.users.owner.userId));
    for (const query of ['limit=0', 'limit=1001', 'after=-1', 'after=abc', 'action=DROP%20TABLE', 'actorId=a%27b', 'extra=1']) {
      assert.equal((await client.get(`/v1/orgs/${org.orgId}/audit?${query}`)).status, 400, query);
    }
  });

  test('export streams NDJSON equal to the list; verify reports the chain', async () => {
    const client = org.users.owner.client;
    const all = (await client.get(`/v1/orgs/${org.orgId}/audit?limit=1000`)).body.events as AuditEvent[];
    const exported = await client.get(`/v1/orgs/${org.orgId}/audit/export`);
    assert.equal(exported.status, 200);
    assert.match(String(exported.headers['content-type']), /^application\/x-ndjson/);
    // A download, never rendered by a browser that opens the link (ASVS V3.2.1).
    assert.equal(exported.headers['content-disposition'], `attachment; filename="audit-${org.orgId}.ndjson"`);
    assert.equal(exported.headers['x-content-type-options'], 'nosniff');
    const lines = exported.text.trimEnd().split('\n').map((line) => JSON.parse(line) as AuditEvent);
    assert.deepEqual(lines.map((e) => e.seq), all.map((e) => e.seq));
    assert.deepEqual(lines[0], all[0]);

    const verify = await client.get(`/v1/orgs/${org.orgId}/audit/verify`);
    assert.equal(verify.status, 200);
    assert.equal(verify.body.valid, true);
    assert.equal(verify.body.count, all.length);
    assert.match(verify.body.headHash, /^[0-9a-f]{64}$/);
  });

  test('a bearer token needs audit:read, and the API has no way to change or delete an event', async () => {
    const { owner } = org.users;
    const make = async (scopes: string[]) => (await owner.client.post('/v1/me/tokens', { name: `t-${scopes.join()}`, scopes })).body.token as string;
    const [reader, profile] = await Promise.all([make(['audit:read']), make(['profile:read'])]);
    const path = `/v1/orgs/${org.orgId}/audit`;
    const ok = await t.client().get(path, { headers: { authorization: `Bearer ${reader}` } });
    assert.equal(ok.status, 200);
    const refused = await t.client().get(path, { headers: { authorization: `Bearer ${profile}` } });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.code, 'insufficient_scope');
    const seq = ok.body.events[0].seq;
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
      assert.equal((await owner.client.request(method, path)).status, 405, method);
      assert.equal((await owner.client.request(method, `${path}/${seq}`)).status, 404, `${method} one event`);
    }
  });

  test("GET /v1/me/security-events lists the user's own events, newest first, with address and agent", async () => {
    const { member } = org.users;
    const response = await member.client.get('/v1/me/security-events');
    assert.equal(response.status, 200);
    const events = response.body.events as Array<{ id: string; time: string; action: string; ip: string | null; userAgent: string | null }>;
    const login = events.find((e) => e.action === 'login.succeeded');
    assert.equal(login?.ip, '127.0.0.1');
    assert.equal(login?.userAgent, 'audit-test-agent/1.0');
    assert.ok(events.some((e) => e.action === 'user.created'));
    assert.ok(!('hash' in events[0]!) && !('actor' in events[0]!), 'the feed shows the user their events, not the chain');
    const times = events.map((e) => Date.parse(e.time));
    assert.deepEqual(times, [...times].sort((a, b) => b - a));
    const page = await member.client.get('/v1/me/security-events?limit=1');
    assert.equal(page.body.events.length, 1);
    const rest = await member.client.get(`/v1/me/security-events?before=${page.body.next}`);
    assert.equal(rest.body.events[0].id, events[1]!.id);
    const outsiderFeed = (await outsider.client.get('/v1/me/security-events')).body.events as Array<{ id: string }>;
    assert.ok(!outsiderFeed.some((e) => events.some((own) => own.id === e.id)), "no one sees another user's events");
  });

  test('the API verification walks the chain at most once a minute, and shows a tampered row', async () => {
    const client = org.users.auditor.client;
    const path = `/v1/orgs/${org.orgId}/audit/verify`;
    const first = (await client.get(path)).body;
    await t.server.services.events.record({ action: 'session.revoked', orgId: org.orgId, actor: { type: 'system', id: null }, outcome: 'success' });
    const reused = (await client.get(path)).body;
    assert.deepEqual(reused, first, 'within a minute the last walk answers, for the range it covered');

    // Someone with database access removes the triggers and edits an event of this org.
    const db = t.server.services.stores.main.db;
    await sql`drop trigger audit_events_no_update`.execute(db);
    const victim = (await client.get(`/v1/orgs/${org.orgId}/audit?limit=1`)).body.events[0] as AuditEvent;
    await db.updateTable('audit_events').set({ outcome: 'failure' }).where('seq', '=', victim.seq).execute();
    t.clock.advance(60_000);
    const tampered = (await client.get(path)).body;
    assert.equal(tampered.headSeq > first.headSeq, true, 'a minute later the chain is walked again');
    assert.equal(tampered.valid, false);
    assert.equal(tampered.brokenAt, victim.seq);
  });
});
