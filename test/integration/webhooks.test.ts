import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { chainHash } from '../../src/audit/chain.js';
import { ManualClock } from '../../src/clock.js';
import { verifyWebhookSignature } from '../../src/sdk/index.js';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';
import { stepUp, uniqueSlug } from '../helpers/orgs.js';
import { Resources } from '../helpers/resources.js';
import { LOOPBACK_RECEIVERS, startReceiver, verified } from '../helpers/webhooks.js';


describe('webhooks', () => {
  let t: TestServer;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let owner: Awaited<ReturnType<typeof signUp>> & { orgId: string };
  const open = new Resources();
  before(async () => {
    receiver = open.add(await startReceiver(), (r) => r.close());
    t = open.add(await startTestServer({ env: LOOPBACK_RECEIVERS }), (server) => server.close());
    const user = await signUp(t, 'hooks');
    const org = await user.client.post('/v1/orgs', { name: 'Hooks', slug: uniqueSlug('hooks') });
    owner = { ...user, orgId: org.body.org.id };
    await stepUp(owner);
  });
  after(() => open.close());

  async function createHook(events: string[], url = receiver.url) {
    const response = await owner.client.post(`/v1/orgs/${owner.orgId}/webhooks`, { url, events });
    assert.equal(response.status, 201, response.text);
    return response.body as { id: string; secret: string; url: string; events: string[] };
  }

  test('a delivery is a signed POST the receiver can verify; the secret is shown once', async () => {
    const hook = await createHook(['webhook.created', 'member.added']);
    assert.match(hook.secret, /^whsec_[A-Za-z0-9_-]{43}$/);
    const listed = await owner.client.get(`/v1/orgs/${owner.orgId}/webhooks`);
    assert.equal(listed.status, 200);
    assert.ok(!listed.text.includes(hook.secret), 'never shown again');
    assert.deepEqual((await owner.client.get(`/v1/orgs/${owner.orgId}/webhooks/${hook.id}`)).body.events, ['member.added', 'webhook.created']);
    const row = await t.server.services.stores.main.db.selectFrom('webhooks').selectAll().where('id', '=', hook.id).executeTakeFirstOrThrow();
    assert.ok(!JSON.stringify(row).includes(hook.secret.slice(6)), 'stored encrypted');

    const before = receiver.deliveries.length;
    await t.server.services.jobs.drain();
    const delivery = receiver.deliveries.slice(before).find((d) => d.headers['rampart-event'] === 'webhook.created')!;
    assert.ok(delivery, 'the creation itself is delivered (the webhook subscribed to it)');
    assert.equal(delivery.headers['content-type'], 'application/json');
    const payload = verified(delivery, hook.secret, Math.floor(t.clock.now() / 1000));
    assert.equal(payload.type, 'webhook.created');
    assert.equal(payload.event.orgId, owner.orgId);
    assert.equal(payload.id, delivery.headers['rampart-delivery']);
    const { prevHash, hash, ...body } = payload.event;
    assert.equal(hash, chainHash(prevHash, body), 'the event is the audit event, hash included');
    assert.equal(verifyWebhookSignature('whsec_wrong', String(delivery.headers['rampart-signature']), delivery.body, Math.floor(t.clock.now() / 1000)), false);
  });

  test('a failed delivery is retried with back-off until the receiver takes it', async () => {
    const hook = await createHook(['member.role_changed']);
    const member = await signUp(t, 'hooks-member');
    await t.server.services.orgs.addMember(owner.orgId, member.userId, 'member', { type: 'system', id: null });
    await t.server.services.jobs.drain();
    const start = receiver.deliveries.length;
    receiver.status.push(500);
    assert.equal((await owner.client.patch(`/v1/orgs/${owner.orgId}/members/${member.userId}`, { role: 'auditor' })).status, 200);
    await t.server.services.jobs.drain();
    assert.equal(receiver.deliveries.length, start + 1, 'first attempt, answered 500');
    const health = async () => ((await owner.client.get(`/v1/orgs/${owner.orgId}/webhooks/${hook.id}`)).body as { deliveries: Record<string, unknown> }).deliveries;
    const failedAt = new Date(t.clock.now()).toISOString();
    assert.deepEqual(await health(), { pending: 1, abandoned: 0, lastDeliveredAt: null, lastFailure: { at: failedAt, reason: 'http_status', status: 500 } });
    await t.server.services.jobs.drain();
    assert.equal(receiver.deliveries.length, start + 1, 'no retry before the back-off');
    t.clock.advance(10_000);
    await t.server.services.jobs.drain();
    assert.equal(receiver.deliveries.length, start + 2, 'retried after 10 s');
    assert.deepEqual(await health(), { pending: 0, abandoned: 0, lastDeliveredAt: new Date(t.clock.now()).toISOString(), lastFailure: { at: failedAt, reason: 'http_status', status: 500 } });
    const listed = (await owner.client.get(`/v1/orgs/${owner.orgId}/webhooks`)).body as { webhooks: Array<{ id: string; deliveries: unknown }> };
    assert.deepEqual(listed.webhooks.find((w) => w.id === hook.id)!.deliveries, await health(), 'the list shows the same');
    const [first, second] = receiver.deliveries.slice(start);
    assert.equal(first!.headers['rampart-delivery'], second!.headers['rampart-delivery'], 'one delivery id: receivers can de-duplicate');
    const payload = verified(second!, hook.secret, Math.floor(t.clock.now() / 1000));
    assert.equal(payload.event.action, 'member.role_changed');
    assert.deepEqual(payload.event.details, { from: 'member', to: 'auditor' });
    const metric = await t.server.services.metrics.registry.getSingleMetricAsString('rampart_webhook_deliveries_total');
    assert.match(metric, /outcome="failed"\} [1-9]/);
    assert.match(metric, /outcome="delivered"\} [1-9]/);
  });

  test('a receiver\'s redirect is not followed: the target gets nothing and the delivery counts as failed (ASVS V15.3.2)', async () => {
    const target = open.add(await startReceiver(), (r) => r.close());
    let redirected = 0;
    const redirector = open.add(createServer((req, res) => {
      redirected++;
      req.resume();
      res.writeHead(307, { location: target.url }).end();
    }), (server) => new Promise<void>((resolve) => server.close(() => resolve())));
    await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve));
    await createHook(['member.role_changed'], `http://127.0.0.1:${(redirector.address() as AddressInfo).port}/hook`);
    const member = await signUp(t, 'hooks-redirect');
    await t.server.services.orgs.addMember(owner.orgId, member.userId, 'member', { type: 'system', id: null });
    await t.server.services.jobs.drain();
    const failed = async () => /outcome="failed"\} (\d+)/.exec(await t.server.services.metrics.registry.getSingleMetricAsString('rampart_webhook_deliveries_total'))?.[1] ?? '0';
    const failedBefore = Number(await failed());
    assert.equal((await owner.client.patch(`/v1/orgs/${owner.orgId}/members/${member.userId}`, { role: 'auditor' })).status, 200);
    await t.server.services.jobs.drain();
    assert.equal(redirected, 1, 'the registered URL got the delivery');
    assert.equal(target.deliveries.length, 0, 'the redirect target got nothing');
    assert.equal(Number(await failed()), failedBefore + 1, 'a redirect is not a delivery');
  });

  test('a deleted webhook loses its pending deliveries; an unsubscribed event is not sent', async () => {
    const hook = await createHook(['member.removed']);
    const count = () => t.server.services.stores.main.db.selectFrom('jobs').select('id').where('ref', '=', hook.id).execute();
    assert.equal((await count()).length, 0, 'webhook.created is not among its events');
    const member = await signUp(t, 'hooks-gone');
    await t.server.services.orgs.addMember(owner.orgId, member.userId, 'member', { type: 'system', id: null });
    assert.equal((await owner.client.delete(`/v1/orgs/${owner.orgId}/members/${member.userId}`)).status, 204);
    assert.equal((await count()).length, 1);
    assert.equal((await owner.client.delete(`/v1/orgs/${owner.orgId}/webhooks/${hook.id}`)).status, 204);
    assert.equal((await count()).length, 0);
    assert.equal((await owner.client.get(`/v1/orgs/${owner.orgId}/webhooks/${hook.id}`)).status, 404);
  });

  test("another org's admin neither sees, deletes nor receives this org's webhooks and events", async () => {
    const ours = await createHook(['*']);
    const otherReceiver = open.add(await startReceiver(), (r) => r.close());
    const other = await signUp(t, 'hooks-other');
    const otherOrgId = (await other.client.post('/v1/orgs', { name: 'Other', slug: uniqueSlug('other') })).body.org.id as string;
    await stepUp(other);
    const theirs = await other.client.post(`/v1/orgs/${otherOrgId}/webhooks`, { url: otherReceiver.url, events: ['*'] });
    assert.equal(theirs.status, 201, theirs.text);
    // Our webhook's id through their own org's path: not found, and not deleted.
    assert.equal((await other.client.get(`/v1/orgs/${otherOrgId}/webhooks/${ours.id}`)).status, 404);
    assert.equal((await other.client.delete(`/v1/orgs/${otherOrgId}/webhooks/${ours.id}`)).status, 404);
    assert.ok(!(await other.client.get(`/v1/orgs/${otherOrgId}/webhooks`)).text.includes(ours.id));
    assert.equal((await owner.client.get(`/v1/orgs/${owner.orgId}/webhooks/${ours.id}`)).status, 200, 'still there');
    await t.server.services.jobs.drain();
    const start = otherReceiver.deliveries.length;
    await createHook(['member.added']); // webhook.created in our org
    await t.server.services.jobs.drain();
    const received = otherReceiver.deliveries.slice(start).map((d) => verified(d, (theirs.body as { secret: string }).secret, Math.floor(t.clock.now() / 1000)));
    assert.ok(received.every((payload) => payload.event.orgId !== owner.orgId), JSON.stringify(received.map((p) => p.event.orgId)));
    assert.ok(received.length === 0 || received.every((payload) => payload.event.orgId === otherOrgId));
  });

  test('only owners and admins manage webhooks; a session needs a recent sign-in or step-up to add one', async () => {
    const member = await signUp(t, 'hooks-plain');
    await t.server.services.orgs.addMember(owner.orgId, member.userId, 'member', { type: 'system', id: null });
    assert.equal((await member.client.get(`/v1/orgs/${owner.orgId}/webhooks`)).status, 403);
    const admin = await signUp(t, 'hooks-admin');
    await t.server.services.orgs.addMember(owner.orgId, admin.userId, 'admin', { type: 'system', id: null });
    // The admin signed up just now: a recent sign-in. Ten minutes later it is not.
    t.clock.advance(11 * 60_000);
    const noStepUp = await admin.client.post(`/v1/orgs/${owner.orgId}/webhooks`, { url: receiver.url, events: ['*'] });
    assert.equal(noStepUp.status, 403);
    assert.equal(noStepUp.body.code, 'reauth_required');
    assert.equal((await admin.client.post('/v1/me/reauth', { password: admin.password })).status, 204);
    assert.equal((await owner.client.post('/v1/me/reauth', { password: owner.password })).status, 204);
    for (const body of [{ url: receiver.url, events: [] }, { url: receiver.url, events: ['no.such_event'] }, { url: receiver.url }, { url: receiver.url, events: ['*'], extra: 1 }]) {
      assert.equal((await owner.client.post(`/v1/orgs/${owner.orgId}/webhooks`, body)).status, 400, JSON.stringify(body));
    }
  });
});

test('deliveries survive a server restart', async () => {
  const clock = new ManualClock(Date.now());
  const open = new Resources();
  try {
    const receiver = open.add(await startReceiver(), (r) => r.close());
    let t: TestServer | null = await startTestServer({ env: LOOPBACK_RECEIVERS, clock });
    const dataDir = t.dataDir;
    open.defer(() => rmSync(dataDir, { recursive: true, force: true }));
    // Whichever server is running when the test ends (the first, or the one after the restart).
    open.defer(() => t?.close({ keepData: true }));
    const user = await signUp(t, 'restart');
    const orgId = (await user.client.post('/v1/orgs', { name: 'Restart', slug: uniqueSlug('restart') })).body.org.id as string;
    await stepUp(user);
    receiver.status.push(503);
    const hook = (await user.client.post(`/v1/orgs/${orgId}/webhooks`, { url: receiver.url, events: ['webhook.created'] })).body as { secret: string };
    await t.server.services.jobs.drain();
    assert.equal(receiver.deliveries.length, 1, 'the first attempt failed (503)');

    await t.close({ keepData: true });
    t = null;
    t = await startTestServer({ env: LOOPBACK_RECEIVERS, clock, dataDir });
    clock.advance(10_000);
    await t.server.services.jobs.drain();
    assert.equal(receiver.deliveries.length, 2, 'the new process delivered it');
    assert.equal(verified(receiver.deliveries[1]!, hook.secret, Math.floor(clock.now() / 1000)).type, 'webhook.created');
  } finally {
    await open.close();
  }
});

test('WEBHOOK_ALLOWED_HOSTS: registration and every delivery only to the hosts the operator named (ASVS V13.2.4, V13.2.5)', async () => {
  const open = new Resources();
  try {
    const receiver = open.add(await startReceiver(), (r) => r.close());
    const t = open.add(await startTestServer({ env: { ...LOOPBACK_RECEIVERS, WEBHOOK_ALLOWED_HOSTS: '127.0.0.1,*.hooks.example' } }), (server) => server.close());
    const user = await signUp(t, 'hooks-allowlist');
    const orgId = (await user.client.post('/v1/orgs', { name: 'Allowlist', slug: uniqueSlug('hooks-allow') })).body.org.id as string;
    await stepUp(user);
    const port = new URL(receiver.url).port;
    const refused = await user.client.post(`/v1/orgs/${orgId}/webhooks`, { url: `http://localhost:${port}/hooks/rampart`, events: ['member.role_changed'] });
    assert.equal(refused.body.code, 'webhook_url_not_allowed', refused.text);
    assert.match(refused.body.detail, /WEBHOOK_ALLOWED_HOSTS/);
    const created = await user.client.post(`/v1/orgs/${orgId}/webhooks`, { url: receiver.url, events: ['member.role_changed'] });
    assert.equal(created.status, 201, created.text);

    // A host the list no longer names (as after the operator narrowed it) gets no delivery.
    await t.server.services.stores.main.db.updateTable('webhooks').set({ url: `http://localhost:${port}/hooks/rampart` }).where('id', '=', created.body.id).execute();
    const member = await signUp(t, 'hooks-allowlist-member');
    await t.server.services.orgs.addMember(orgId, member.userId, 'member', { type: 'system', id: null });
    assert.equal((await user.client.patch(`/v1/orgs/${orgId}/members/${member.userId}`, { role: 'auditor' })).status, 200);
    await t.server.services.jobs.drain();
    assert.equal(receiver.deliveries.length, 0, 'nothing reached the receiver');
    assert.match(await t.server.services.metrics.registry.getSingleMetricAsString('rampart_webhook_deliveries_total'), /outcome="refused"\} [1-9]/);
    const shown = (await user.client.get(`/v1/orgs/${orgId}/webhooks/${created.body.id}`)).body as { deliveries: { pending: number; lastFailure: { reason: string } } };
    assert.equal(shown.deliveries.pending, 1);
    assert.equal(shown.deliveries.lastFailure.reason, 'destination_refused');
  } finally {
    await open.close();
  }
});

test('a delivery that fails every retry is abandoned after twelve attempts, its admins see it, and queue it again once the receiver works', async () => {
  const open = new Resources();
  try {
    const receiver = open.add(await startReceiver(), (r) => r.close());
    const t = open.add(await startTestServer({ env: LOOPBACK_RECEIVERS }), (server) => server.close());
    const user = await signUp(t, 'hooks-abandon');
    const orgId = (await user.client.post('/v1/orgs', { name: 'Abandon', slug: uniqueSlug('abandon') })).body.org.id as string;
    await stepUp(user);
    const hook = (await user.client.post(`/v1/orgs/${orgId}/webhooks`, { url: receiver.url, events: ['member.added'] })).body as { id: string };
    const member = await signUp(t, 'hooks-abandon-member');
    for (let i = 0; i < 12; i++) receiver.status.push(503);
    await t.server.services.orgs.addMember(orgId, member.userId, 'member', { type: 'system', id: null });
    for (let i = 0; i < 12; i++) {
      await t.server.services.jobs.drain();
      t.clock.advance(3_600_000);
    }
    assert.equal(receiver.deliveries.length, 12, 'twelve attempts');
    await t.server.services.jobs.drain();
    assert.equal(receiver.deliveries.length, 12, 'no thirteenth');
    const admin = t.client();
    assert.equal((await admin.post('/v1/login', { email: user.email, password: user.password })).status, 200);
    const shown = ((await admin.get(`/v1/orgs/${orgId}/webhooks/${hook.id}`)).body as { deliveries: { pending: number; abandoned: number; lastDeliveredAt: string | null; lastFailure: { reason: string; status: number } } }).deliveries;
    assert.equal(shown.pending, 0);
    assert.equal(shown.abandoned, 1);
    assert.equal(shown.lastDeliveredAt, null);
    assert.deepEqual({ reason: shown.lastFailure.reason, status: shown.lastFailure.status }, { reason: 'http_status', status: 503 });

    // The receiver works again: the admin queues the abandoned delivery once more, same delivery id.
    const firstId = receiver.deliveries[0]!.headers['rampart-delivery'];
    const redeliver = await admin.post(`/v1/orgs/${orgId}/webhooks/${hook.id}/redeliver`, {});
    assert.equal(redeliver.status, 200, redeliver.text);
    assert.deepEqual(redeliver.body, { requeued: 1 });
    await t.server.services.jobs.drain();
    assert.equal(receiver.deliveries.length, 13);
    const again = receiver.deliveries[12]!;
    assert.equal(again.headers['rampart-delivery'], firstId, 'the same delivery id: receivers de-duplicate');
    assert.equal(JSON.parse(again.body).attempt, 1);
    const healed = ((await admin.get(`/v1/orgs/${orgId}/webhooks/${hook.id}`)).body as { deliveries: { pending: number; abandoned: number; lastDeliveredAt: string } }).deliveries;
    assert.deepEqual([healed.pending, healed.abandoned, healed.lastDeliveredAt], [0, 0, new Date(t.clock.now()).toISOString()]);
    assert.deepEqual((await admin.post(`/v1/orgs/${orgId}/webhooks/${hook.id}/redeliver`, {})).body, { requeued: 0 }, 'nothing left to queue');
    const events = (await t.server.services.audit.latest({ limit: 20 })).events.filter((e) => e.action === 'webhook.redelivered');
    assert.deepEqual(events.map((e) => e.details.requeued).sort(), [0, 1]);
  } finally {
    await open.close();
  }
});

test('a webhook secret rolls over: the new one answered once, the previous one signs beside it until its overlap ends (0: at once); step-up and org admin needed; audited without a secret', async () => {
  const open = new Resources();
  try {
    const receiver = open.add(await startReceiver(), (r) => r.close());
    const t = open.add(await startTestServer({ env: LOOPBACK_RECEIVERS }), (server) => server.close());
    const user = await signUp(t, 'hooks-roll');
    const orgId = (await user.client.post('/v1/orgs', { name: 'Roll', slug: uniqueSlug('roll') })).body.org.id as string;
    await stepUp(user);
    const hook = (await user.client.post(`/v1/orgs/${orgId}/webhooks`, { url: receiver.url, events: ['member.role_changed'] })).body as { id: string; secret: string };
    const member = await signUp(t, 'hooks-roll-member');
    await t.server.services.orgs.addMember(orgId, member.userId, 'member', { type: 'system', id: null });
    let role = 'member';
    let admin = user;
    /** One delivery (a role change), and which of the given secrets its signature verifies with. */
    const deliverOne = async (...secrets: string[]) => {
      role = role === 'member' ? 'auditor' : 'member';
      assert.equal((await admin.client.patch(`/v1/orgs/${orgId}/members/${member.userId}`, { role })).status, 200);
      const start = receiver.deliveries.length;
      await t.server.services.jobs.drain();
      const [delivery] = receiver.deliveries.slice(start);
      assert.ok(delivery, 'delivered');
      const header = String(delivery.headers['rampart-signature']);
      return secrets.map((secret) => verifyWebhookSignature(secret, header, delivery.body, Math.floor(t.clock.now() / 1000)));
    };

    // No body: the default overlap.
    const rolled = await user.client.request('POST', `/v1/orgs/${orgId}/webhooks/${hook.id}/rotate-secret`);
    assert.equal(rolled.status, 200, rolled.text);
    const second = rolled.body as { secret: string; previousSecretExpiresAt: string; id: string };
    assert.match(second.secret, /^whsec_[A-Za-z0-9_-]{43}$/);
    assert.notEqual(second.secret, hook.secret);
    assert.equal(second.previousSecretExpiresAt, new Date(t.clock.now() + 24 * 3_600_000).toISOString(), 'a day by default');
    const shown = await user.client.get(`/v1/orgs/${orgId}/webhooks/${hook.id}`);
    assert.equal(shown.body.previousSecretExpiresAt, second.previousSecretExpiresAt);
    assert.ok(!shown.text.includes(second.secret) && !shown.text.includes(hook.secret), 'never shown again');
    const row = await t.server.services.stores.main.db.selectFrom('webhooks').selectAll().where('id', '=', hook.id).executeTakeFirstOrThrow();
    assert.ok(!JSON.stringify(row).includes(hook.secret.slice(6)) && !JSON.stringify(row).includes(second.secret.slice(6)), 'both stored encrypted');

    assert.deepEqual(await deliverOne(second.secret, hook.secret), [true, true], 'both secrets verify during the overlap');
    t.clock.advance(24 * 3_600_000);
    // (The first session has ended with the day: sign in again.)
    const login = t.client();
    assert.equal((await login.post('/v1/login', { email: user.email, password: user.password })).status, 200);
    admin = { ...user, client: login };
    assert.deepEqual(await deliverOne(second.secret, hook.secret), [true, false], 'the previous one stops at the end of the overlap');
    assert.equal((await admin.client.get(`/v1/orgs/${orgId}/webhooks/${hook.id}`)).body.previousSecretExpiresAt, null);

    // After a leak: no overlap, the old secret stops at once.
    const stale = await admin.client.post(`/v1/orgs/${orgId}/webhooks/${hook.id}/rotate-secret`, { overlapHours: 0 });
    assert.equal(stale.body.code, 'reauth_required', 'a session needs a recent step-up');
    await stepUp(admin);
    const third = (await admin.client.post(`/v1/orgs/${orgId}/webhooks/${hook.id}/rotate-secret`, { overlapHours: 0 })).body as { secret: string; previousSecretExpiresAt: string | null };
    assert.equal(third.previousSecretExpiresAt, null);
    assert.deepEqual(await deliverOne(third.secret, second.secret, hook.secret), [true, false, false]);

    for (const body of [{ overlapHours: 169 }, { overlapHours: -1 }, { overlapHours: 1.5 }, { extra: true }]) {
      assert.equal((await admin.client.post(`/v1/orgs/${orgId}/webhooks/${hook.id}/rotate-secret`, body)).status, 400, JSON.stringify(body));
    }
    assert.equal((await admin.client.post(`/v1/orgs/${orgId}/webhooks/whk_${'A'.repeat(22)}/rotate-secret`, {})).status, 404);
    const outsider = await signUp(t, 'hooks-roll-outsider');
    await stepUp(outsider);
    assert.equal((await outsider.client.post(`/v1/orgs/${orgId}/webhooks/${hook.id}/rotate-secret`, {})).status, 404, 'not a member: the org is not found');
    await t.server.services.orgs.addMember(orgId, outsider.userId, 'member', { type: 'system', id: null });
    assert.equal((await outsider.client.post(`/v1/orgs/${orgId}/webhooks/${hook.id}/rotate-secret`, {})).status, 403, 'a member is not an admin');

    const events = (await t.server.services.audit.latest({ limit: 50 })).events.filter((e) => e.action === 'webhook.secret_rotated');
    assert.equal(events.length, 2);
    assert.deepEqual(events.map((e) => e.details.previousSecretExpiresAt).sort(), [null, second.previousSecretExpiresAt].sort());
    const logged = JSON.stringify(events) + t.logs.join('\n');
    for (const secret of [hook.secret, second.secret, third.secret]) assert.ok(!logged.includes(secret.slice(6)), 'no secret in the audit log or the logs');
  } finally {
    await open.close();
  }
});
