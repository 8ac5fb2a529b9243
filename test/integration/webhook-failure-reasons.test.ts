/**
 * A failed webhook delivery is shown to the org's admins as a category (`lastFailure.reason`
 * in GET /v1/orgs/{orgId}/webhooks), never as the raw error: the raw text can name addresses
 * or hosts behind the receiver's name. webhooks.test.ts and webhook-untrusted-cert.test.ts
 * provoke `http_status`, `destination_refused` and `tls`; these provoke the network ones
 * against real sockets on loopback:
 *
 *   - `timeout`: a receiver that takes the connection and the request but never answers (the
 *     delivery's own 10 s deadline, which is not configurable, so that test takes ~10 s);
 *   - `connection`: a port nobody listens on (ECONNREFUSED), and a receiver that resets the
 *     connection once the request arrives (ECONNRESET);
 *   - `dns`: a host under the reserved `.invalid` TLD (RFC 6761), which never resolves. A URL
 *     that does not resolve is refused at registration, so the webhook is registered for a
 *     name that resolves and its stored URL is then changed (as a DNS record removed later
 *     would do); every delivery resolves the host again.
 *
 * Each time the delivery stays pending (retried after the back-off, not given up), and the
 * raw error goes only to the job's `last_error` (for operators), not into the API.
 */
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { type AddressInfo, createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { after, afterEach, before, describe, test } from 'node:test';
import { signUp, type TestServer, startTestServer } from '../helpers/harness.js';
import { stepUp, uniqueSlug } from '../helpers/orgs.js';
import { freePort } from '../helpers/ports.js';
import { Resources } from '../helpers/resources.js';
import { type Delivery, LOOPBACK_RECEIVERS, startReceiver } from '../helpers/webhooks.js';

interface Receiver {
  url: string;
  deliveries: Delivery[];
  close(): Promise<void>;
}

/** The first retry's back-off (DELIVERY_RETRY.baseDelayMs in webhook-service.ts). */
const FIRST_RETRY_MS = 10_000;

/** Words of Node's network errors and of the service's own raw messages, none of which an org admin may see. */
const RAW_ERROR_WORDS = ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'hang up', 'timed out', 'delivery failed', 'destination refused', 'does not resolve', 'connect '];

async function listen<S extends HttpServer | TcpServer>(server: S): Promise<S> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

function portOf(server: HttpServer | TcpServer): number {
  return (server.address() as AddressInfo).port;
}

/** Like startReceiver (test/helpers/webhooks.ts), always answering 200, on a given port. */
async function startReceiverOn(port: number): Promise<Receiver> {
  const deliveries: Delivery[] = [];
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      deliveries.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return { url: `http://127.0.0.1:${port}/hooks/rampart`, deliveries, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe('webhook delivery failures: the category is recorded, the delivery stays pending, the raw error is not shown', () => {
  const open = new Resources();
  let t: TestServer;

  before(async () => {
    t = open.add(await startTestServer({ env: LOOPBACK_RECEIVERS }), (server) => server.close());
  });
  after(() => open.close());
  // The tests share the server and its clock: a delivery one test left pending (the silent
  // receiver's) must not be retried by the next test's clock advance.
  const hooks: string[] = [];
  afterEach(async () => {
    if (hooks.length > 0) await t.server.services.stores.main.db.deleteFrom('jobs').where('ref', 'in', hooks.splice(0)).execute();
  });

  interface Provoked {
    hookId: string;
    orgId: string;
    owner: Awaited<ReturnType<typeof signUp>>;
    job: { id: string; attempts: number; failed_at: number | null; run_at: number; last_error: string | null };
    /** How long the one attempt (drain) took, in ms of real time. */
    elapsedMs: number;
  }

  /**
   * A fresh org with one webhook for `member.added` registered for `registerUrl` (delivered to
   * `deliverUrl` when given: its stored URL is changed after registration), one member added,
   * and that one delivery attempted once.
   */
  async function provoke(label: string, registerUrl: string, deliverUrl?: string): Promise<Provoked> {
    const owner = await signUp(t, `hooks-${label}`);
    const created = await owner.client.post('/v1/orgs', { name: `Hooks ${label}`, slug: uniqueSlug(`hooks-${label}`) });
    assert.equal(created.status, 201, created.text);
    const orgId = created.body.org.id as string;
    await stepUp(owner);
    const registered = await owner.client.post(`/v1/orgs/${orgId}/webhooks`, { url: registerUrl, events: ['member.added'] });
    assert.equal(registered.status, 201, registered.text);
    const hookId = registered.body.id as string;
    hooks.push(hookId);
    if (deliverUrl !== undefined) {
      await t.server.services.stores.main.db.updateTable('webhooks').set({ url: deliverUrl }).where('id', '=', hookId).execute();
    }
    const member = await signUp(t, `hooks-${label}-member`);
    await t.server.services.orgs.addMember(orgId, member.userId, 'member', { type: 'system', id: null });
    const started = Date.now();
    await t.server.services.jobs.drain();
    const elapsedMs = Date.now() - started;
    const jobs = await jobsOf(hookId);
    assert.equal(jobs.length, 1, 'the delivery is still there (not dropped, not completed)');
    return { hookId, orgId, owner, job: jobs[0]!, elapsedMs };
  }

  const jobsOf = (hookId: string) => t.server.services.stores.main.db.selectFrom('jobs').selectAll().where('ref', '=', hookId).execute();

  /** What the org admin sees, and that it is the category only: pending, kept for retry, no raw error in the API. */
  async function assertRecorded(provoked: Provoked, reason: string): Promise<void> {
    const { job, owner, orgId, hookId } = provoked;
    assert.equal(job.attempts, 1);
    assert.equal(job.failed_at, null, 'not given up');
    assert.equal(Number(job.run_at), t.clock.now() + FIRST_RETRY_MS, 'rescheduled after the first back-off');
    const one = await owner.client.get(`/v1/orgs/${orgId}/webhooks/${hookId}`);
    assert.equal(one.status, 200, one.text);
    assert.deepEqual(one.body.deliveries, {
      pending: 1, abandoned: 0, lastDeliveredAt: null,
      lastFailure: { at: new Date(t.clock.now()).toISOString(), reason, status: null },
    });
    const listed = await owner.client.get(`/v1/orgs/${orgId}/webhooks`);
    assert.equal(listed.status, 200, listed.text);
    const inList = (listed.body.webhooks as Array<{ id: string; deliveries: unknown }>).find((hook) => hook.id === hookId);
    assert.deepEqual(inList?.deliveries, one.body.deliveries, 'the list shows the same');
    // The raw error is kept for operators (the job's last_error), and is nowhere in what admins get.
    assert.ok(job.last_error, 'the raw error is kept on the job');
    for (const text of [one.text, listed.text]) {
      assert.ok(!text.includes(job.last_error), `the raw error "${job.last_error}" is not in the answer`);
      for (const word of RAW_ERROR_WORDS) assert.ok(!text.includes(word), `"${word}" is not in the answer`);
    }
  }

  /** The same delivery is retried after the back-off and reaches a working receiver: nothing was lost. */
  async function assertDeliveredOnRetry(provoked: Provoked, receiver: Receiver): Promise<void> {
    const before = receiver.deliveries.length;
    t.clock.advance(FIRST_RETRY_MS);
    await t.server.services.jobs.drain();
    const received = receiver.deliveries.slice(before);
    assert.equal(received.length, 1, 'the retry reached the receiver');
    assert.equal(received[0]!.headers['rampart-delivery'], provoked.job.id, 'the very delivery that failed');
    assert.equal(JSON.parse(received[0]!.body).attempt, 2);
    assert.deepEqual(await jobsOf(provoked.hookId), [], 'delivered: no longer pending');
    const shown = (await provoked.owner.client.get(`/v1/orgs/${provoked.orgId}/webhooks/${provoked.hookId}`)).body as { deliveries: { pending: number; lastDeliveredAt: string } };
    assert.equal(shown.deliveries.pending, 0);
    assert.equal(shown.deliveries.lastDeliveredAt, new Date(t.clock.now()).toISOString());
  }

  test('timeout: a receiver that takes the request and never answers is given up on at the delivery deadline', async () => {
    let requests = 0;
    const silent = open.add(await listen(createHttpServer((req) => {
      requests++;
      req.resume(); // reads the request, never answers
    })), (server) => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }));
    const provoked = await provoke('timeout', `http://127.0.0.1:${portOf(silent)}/hooks/rampart`);
    assert.equal(requests, 1, 'the request reached the receiver: it is its answer that never came');
    assert.ok(provoked.elapsedMs >= 5_000, `the attempt waited for the deadline (${provoked.elapsedMs} ms)`);
    assert.ok(provoked.elapsedMs < 60_000, `and did not wait for ever (${provoked.elapsedMs} ms)`);
    assert.equal(provoked.job.last_error, 'delivery failed: timed out');
    await assertRecorded(provoked, 'timeout');
  });

  test('connection: a port nobody listens on (connection refused); the delivery is not lost and arrives once a receiver listens there', async () => {
    const port = await freePort();
    const provoked = await provoke('refused', `http://127.0.0.1:${port}/hooks/rampart`);
    assert.match(provoked.job.last_error ?? '', /^delivery failed: connect ECONNREFUSED 127\.0\.0\.1:\d+$/);
    await assertRecorded(provoked, 'connection');

    // The receiver comes up on that very port: the same delivery gets there on its retry.
    const receiver = open.add(await startReceiverOn(port), (r) => r.close());
    await assertDeliveredOnRetry(provoked, receiver);
  });

  test('connection: a receiver that resets the connection once the request arrives', async () => {
    const sockets = new Set<Socket>();
    let resets = 0;
    const resetter = open.add(await listen(createTcpServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.once('data', () => {
        resets++;
        socket.resetAndDestroy();
      });
    })), (server) => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }));
    const provoked = await provoke('reset', `http://127.0.0.1:${portOf(resetter)}/hooks/rampart`);
    assert.equal(resets, 1, 'the receiver accepted the connection and reset it');
    assert.match(provoked.job.last_error ?? '', /^delivery failed: (read ECONNRESET|socket hang up|write EPIPE|write ECONNRESET)$/);
    await assertRecorded(provoked, 'connection');
  });

  test('dns: a host that does not resolve (.invalid); the delivery is not lost and arrives once the name points to a receiver again', async () => {
    const receiver = open.add(await startReceiver(), (r) => r.close());
    const port = new URL(receiver.url).port;
    // Registration resolves the host (an unresolvable one is refused there): register a name that resolves, then lose it.
    const provoked = await provoke('dns', `http://localhost:${port}/hooks/rampart`, `http://rampart-webhook-test.invalid:${port}/hooks/rampart`);
    assert.equal(receiver.deliveries.length, 0, 'nothing was sent anywhere');
    assert.equal(provoked.job.last_error, 'destination refused: the host does not resolve');
    await assertRecorded(provoked, 'dns');
    assert.match(await t.server.services.metrics.registry.getSingleMetricAsString('rampart_webhook_deliveries_total'), /outcome="refused"\} [1-9]/);

    await t.server.services.stores.main.db.updateTable('webhooks').set({ url: receiver.url }).where('id', '=', provoked.hookId).execute();
    await assertDeliveredOnRetry(provoked, receiver);
  });
});
