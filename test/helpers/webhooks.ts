import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AuditEvent } from '../../src/audit/chain.js';
import { verifyWebhookSignature } from '../../src/sdk/webhook-signature.js';

export interface Delivery {
  headers: IncomingMessage['headers'];
  body: string;
}

/** A real HTTP receiver on loopback that records what it gets and answers what it is told. */
export async function startReceiver(): Promise<{ url: string; deliveries: Delivery[]; status: number[]; close(): Promise<void> }> {
  const deliveries: Delivery[] = [];
  const status: number[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      deliveries.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(status.shift() ?? 200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/rampart`,
    deliveries,
    status,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The receiver's side of the contract: check the signature over the raw body, then trust the JSON. */
export function verified(delivery: Delivery, secret: string, nowSeconds: number): { id: string; type: string; event: AuditEvent } {
  const header = delivery.headers['rampart-signature'];
  assert.ok(verifyWebhookSignature(secret, typeof header === 'string' ? header : undefined, delivery.body, nowSeconds), 'the signature verifies');
  return JSON.parse(delivery.body) as { id: string; type: string; event: AuditEvent };
}

// The receiver lives on loopback, so servers that deliver to it run with the loudly named option that allows private destinations.
export const LOOPBACK_RECEIVERS = { RAMPART_INSECURE_WEBHOOKS_TO_PRIVATE_NETWORKS: 'true', JOB_POLL_INTERVAL_MS: '3600000' };
