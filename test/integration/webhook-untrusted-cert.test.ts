/**
 * Webhook deliveries verify the receiver's TLS certificate (ASVS V12.3.2): a receiver with a
 * self-signed certificate, or one issued by a CA this process does not trust, gets no request
 * at all, and the attempt is recorded as a failed delivery (the job keeps its reason and is
 * retried; the failed counter rises). Nothing in the delivery code sets `rejectUnauthorized`
 * or `ca`: this pins Node's default so that a change to the HTTP client, or an "allow
 * self-signed" shortcut, shows up here.
 *
 * The control: the very same pending delivery, retried once the server process trusts the
 * private CA, reaches the CA-signed receiver, while the self-signed one is still refused, so
 * the difference is the certificate's trust and nothing else. Rampart has no setting for
 * extra webhook CAs, and NODE_EXTRA_CA_CERTS is read only at process start, so the test adds
 * the CA the way that variable would, for the default trust store of this process only, and
 * only for the retry.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import tls from 'node:tls';
import { generate } from 'selfsigned';
import { signUp, startTestServer } from '../helpers/harness.js';
import { stepUp, uniqueSlug } from '../helpers/orgs.js';
import { Resources } from '../helpers/resources.js';
import { type Delivery, LOOPBACK_RECEIVERS, verified } from '../helpers/webhooks.js';

const LEAF_EXTENSIONS = [
  { name: 'basicConstraints', cA: false, critical: true },
  { name: 'keyUsage', digitalSignature: true, critical: true },
  { name: 'extKeyUsage', serverAuth: true },
  { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] },
];

/** A real HTTPS receiver on loopback serving `cert`; it records every request that reaches it. */
async function startHttpsReceiver(cert: string, key: string): Promise<{ url: string; deliveries: Delivery[]; close(): Promise<void> }> {
  const deliveries: Delivery[] = [];
  const server: Server = createServer({ cert, key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      deliveries.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200).end('ok');
    });
  });
  server.on('tlsClientError', () => undefined); // the refused handshakes
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/rampart`,
    deliveries,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** Trusts `caCert` in this process's default trust store (as NODE_EXTRA_CA_CERTS would) until the returned function runs. */
function trustExtraCa(caCert: string): () => void {
  const original = tls.createSecureContext;
  tls.createSecureContext = (options?: tls.SecureContextOptions) => original(options?.ca ? options : { ...options, ca: [...tls.rootCertificates, caCert] });
  return () => {
    tls.createSecureContext = original;
  };
}

test('a webhook receiver whose certificate is not trusted gets nothing, and the attempt is a recorded failed delivery', async () => {
  const open = new Resources();
  try {
    const selfSigned = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
      keyType: 'ec', curve: 'P-256', algorithm: 'sha256', days: 1, extensions: LEAF_EXTENSIONS,
    } as never);
    const ca = await generate([{ name: 'commonName', value: 'Rampart test private CA' }], {
      keyType: 'ec', curve: 'P-256', algorithm: 'sha256', days: 1,
      extensions: [{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true }],
    } as never);
    const issued = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
      keyType: 'ec', curve: 'P-256', algorithm: 'sha256', days: 1, extensions: LEAF_EXTENSIONS, ca: { key: ca.private, cert: ca.cert },
    } as never);
    const selfSignedReceiver = open.add(await startHttpsReceiver(selfSigned.cert, selfSigned.private), (r) => r.close());
    const unknownCaReceiver = open.add(await startHttpsReceiver(issued.cert, issued.private), (r) => r.close());

    const t = open.add(await startTestServer({ env: LOOPBACK_RECEIVERS }), (server) => server.close());
    const owner = await signUp(t, 'hooks-tls');
    const orgId = (await owner.client.post('/v1/orgs', { name: 'Hooks TLS', slug: uniqueSlug('hooks-tls') })).body.org.id as string;
    await stepUp(owner);
    const register = async (url: string) => {
      const response = await owner.client.post(`/v1/orgs/${orgId}/webhooks`, { url, events: ['member.added'] });
      assert.equal(response.status, 201, response.text);
      return response.body as { id: string; secret: string };
    };
    const selfSignedHook = await register(selfSignedReceiver.url);
    const unknownCaHook = await register(unknownCaReceiver.url);
    const jobOf = (hookId: string) => t.server.services.stores.main.db.selectFrom('jobs').selectAll().where('ref', '=', hookId).execute();
    const counter = async (outcome: string) => Number(new RegExp(`outcome="${outcome}"\\} (\\d+)`)
      .exec(await t.server.services.metrics.registry.getSingleMetricAsString('rampart_webhook_deliveries_total'))?.[1] ?? '0');
    const failedBefore = await counter('failed');
    const deliveredBefore = await counter('delivered');

    const member = await signUp(t, 'hooks-tls-member');
    await t.server.services.orgs.addMember(orgId, member.userId, 'member', { type: 'system', id: null });
    await t.server.services.jobs.drain();

    // (a) Neither receiver got a request: the TLS handshake was refused before any byte of the body.
    assert.equal(selfSignedReceiver.deliveries.length, 0, 'the self-signed receiver got nothing');
    assert.equal(unknownCaReceiver.deliveries.length, 0, 'the receiver with an unknown CA got nothing');
    // (b) Each is a failed delivery, kept for retry with the certificate problem as its reason.
    const [selfSignedJob] = await jobOf(selfSignedHook.id);
    const [unknownCaJob] = await jobOf(unknownCaHook.id);
    assert.ok(selfSignedJob && unknownCaJob, 'both deliveries are still pending (not dropped, not completed)');
    for (const job of [selfSignedJob, unknownCaJob]) {
      assert.equal(job.kind, 'webhook.deliver');
      assert.equal(job.attempts, 1);
      assert.equal(job.failed_at, null, 'not given up: it is retried with back-off');
      assert.ok(Number(job.run_at) > t.clock.now(), 'rescheduled for later');
    }
    assert.match(selfSignedJob.last_error ?? '', /^delivery failed: self[- ]signed certificate$/);
    assert.match(unknownCaJob.last_error ?? '', /^delivery failed: unable to verify the first certificate$/);
    assert.equal(await counter('failed'), failedBefore + 2, 'counted as failed deliveries');
    // Its admins see why, as a category only (not the raw error).
    for (const hook of [selfSignedHook, unknownCaHook]) {
      const shown = (await owner.client.get(`/v1/orgs/${orgId}/webhooks/${hook.id}`)).body as { deliveries: unknown };
      assert.deepEqual(shown.deliveries, { pending: 1, abandoned: 0, lastDeliveredAt: null, lastFailure: { at: new Date(t.clock.now()).toISOString(), reason: 'tls', status: null } });
    }
    assert.equal(await counter('delivered'), deliveredBefore, 'and not as delivered');

    // (c) Control: the same pending deliveries, retried once this process trusts the private CA.
    t.clock.advance(10_000);
    const untrust = trustExtraCa(ca.cert);
    try {
      await t.server.services.jobs.drain();
    } finally {
      untrust();
    }
    assert.equal(unknownCaReceiver.deliveries.length, 1, 'a certificate from a trusted CA gets the delivery');
    const payload = verified(unknownCaReceiver.deliveries[0]!, unknownCaHook.secret, Math.floor(t.clock.now() / 1000));
    assert.equal(payload.type, 'member.added');
    assert.equal(payload.id, unknownCaJob.id, 'the very delivery that failed before');
    assert.deepEqual(await jobOf(unknownCaHook.id), [], 'delivered: no longer pending');
    const healed = (await owner.client.get(`/v1/orgs/${orgId}/webhooks/${unknownCaHook.id}`)).body as { deliveries: { pending: number; lastDeliveredAt: string } };
    assert.equal(healed.deliveries.pending, 0);
    assert.equal(healed.deliveries.lastDeliveredAt, new Date(t.clock.now()).toISOString());
    assert.equal(selfSignedReceiver.deliveries.length, 0, 'the self-signed receiver is still refused');
    const [retried] = await jobOf(selfSignedHook.id);
    assert.equal(retried?.attempts, 2);
    assert.match(retried?.last_error ?? '', /^delivery failed: self[- ]signed certificate$/);
    assert.equal(await counter('delivered'), deliveredBefore + 1);
    assert.equal(await counter('failed'), failedBefore + 3);
  } finally {
    await open.close();
  }
});
