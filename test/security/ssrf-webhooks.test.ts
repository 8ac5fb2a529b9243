/**
 * Threat: server-side request forgery through webhooks. An org admin (or a
 * stolen admin token) registers a webhook pointing into the server's own network
 * (loopback services, cloud metadata at 169.254.169.254, private ranges), in any
 * of the spellings parsers disagree on, or a name that resolves there at
 * delivery time (DNS rebinding). Rampart refuses them at registration and again
 * before every delivery, and connects only to the address it checked.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';
import { test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { JobQueue } from '../../src/jobs/job-queue.js';
import { JobRepository } from '../../src/store/repositories/jobs.js';
import { WebhookRepository } from '../../src/store/repositories/webhooks.js';
import type { Resolver } from '../../src/webhooks/ssrf.js';
import { WebhookService } from '../../src/webhooks/webhook-service.js';
import { signUp, startTestServer, type TestServer } from '../helpers/harness.js';
import { stepUp, uniqueSlug } from '../helpers/orgs.js';
import { Resources } from '../helpers/resources.js';

test('webhook URLs into private, loopback or link-local space are refused, and checked again at delivery', async () => {
  let hits = 0;
  const open = new Resources();
  try {
    const listener = createServer((_req, res) => {
      hits++;
      res.end('ok');
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    open.add(listener, (server) => server.close());
    const port = (listener.address() as AddressInfo).port;
    const clock = new ManualClock(Date.now());
    // First with the loudly named option on, to plant a loopback webhook as if DNS had changed since.
    let t: TestServer | null = await startTestServer({ clock, env: { RAMPART_INSECURE_WEBHOOKS_TO_PRIVATE_NETWORKS: 'true', JOB_POLL_INTERVAL_MS: '3600000' } });
    const dataDir = t.dataDir;
    open.defer(() => rmSync(dataDir, { recursive: true, force: true }));
    // Whichever server is running when the test ends.
    open.defer(() => t?.close({ keepData: true }));
    const user = await signUp(t, 'ssrf');
    const orgId = (await user.client.post('/v1/orgs', { name: 'SSRF', slug: uniqueSlug('ssrf') })).body.org.id as string;
    await stepUp(user);
    const planted = await user.client.post(`/v1/orgs/${orgId}/webhooks`, { url: `http://127.0.0.1:${port}/`, events: ['*'] });
    assert.equal(planted.status, 201);
    await t.close({ keepData: true });
    t = null;

    // Now with the option off (the default).
    t = await startTestServer({ clock, dataDir, env: { JOB_POLL_INTERVAL_MS: '3600000' } });
    const client = t.client();
    await client.post('/v1/login', { email: user.email, password: user.password });
    await client.post('/v1/me/reauth', { password: user.password });
    for (const url of [
      `http://127.0.0.1:${port}/`, `https://127.0.0.1:${port}/`, `https://127.1:${port}/`, `https://2130706433:${port}/`,
      `https://0x7f000001:${port}/`, `https://[::ffff:127.0.0.1]:${port}/`, `https://[::1]:${port}/`, 'file:///etc/passwd',
      'https://169.254.169.254/latest/meta-data/', 'https://[fe80::1]/', 'https://10.0.0.1/', 'https://172.16.5.4/',
      'https://192.168.1.1/', 'https://100.64.0.1/', 'https://0.0.0.0/', 'https://localhost/', 'https://user:pw@example.com/',
    ]) {
      const response = await client.post(`/v1/orgs/${orgId}/webhooks`, { url, events: ['*'] });
      assert.equal(response.status, 400, url);
      assert.equal(response.body.code, 'webhook_url_not_allowed', url);
    }
    // The planted webhook's deliveries (the login, the refusals…) are refused at delivery time.
    await t.server.services.jobs.drain();
    assert.equal(hits, 0, 'nothing ever reached the loopback listener');
    const jobs = await t.server.services.stores.main.db.selectFrom('jobs').select(['last_error']).where('kind', '=', 'webhook.deliver').execute();
    assert.ok(jobs.length > 0 && jobs.every((job) => /destination refused/.test(job.last_error ?? '')), JSON.stringify(jobs));
  } finally {
    await open.close();
  }
});

test('a delivery connects to the address that was checked, never to a fresh lookup of the name (DNS rebinding)', async () => {
  const hosts: string[] = [];
  const open = new Resources();
  try {
    const listener = createServer((req, res) => {
      hosts.push(String(req.headers.host));
      res.end('ok');
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    open.add(listener, (server) => server.close());
    const port = (listener.address() as AddressInfo).port;
    const t = open.add(await startTestServer({ env: { JOB_POLL_INTERVAL_MS: '3600000' } }), (server) => server.close());
    const services = t.server.services;
    const user = await signUp(t, 'rebind');
    const orgId = (await user.client.post('/v1/orgs', { name: 'Rebind', slug: uniqueSlug('rebind') })).body.org.id as string;
    // The checking resolver answers loopback (allowed here) for a name no system resolver knows (.invalid, RFC 2606):
    // the listener is reached only if the connection goes to the checked address.
    const resolver: Resolver = async () => [{ address: '127.0.0.1', family: 4 }];
    const db = services.stores.main.db;
    const jobRepo = new JobRepository(db, false);
    const webhooks = new WebhookService(db, new WebhookRepository(db), jobRepo, services.keyring, services.events,
      new JobQueue(jobRepo, services.clock, services.logger, 3_600_000), services.audit, services.metrics, services.clock, services.logger,
      { allowPrivate: true, resolver });
    const hook = await webhooks.create(orgId, { type: 'user', id: user.userId }, { url: `http://receiver.invalid:${port}/`, events: ['*'] }, { ip: '203.0.113.9', userAgent: null });
    const [event] = (await services.audit.latest({ limit: 1 })).events;
    await webhooks.deliver(hook.id, event!.seq, 'dlv_rebind', 1);
    assert.deepEqual(hosts, [`receiver.invalid:${port}`], 'delivered to the pinned address, under the URL\'s host name');
  } finally {
    await open.close();
  }
});
