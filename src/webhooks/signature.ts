import { createHmac } from 'node:crypto';
import { constantTimeEqual } from '../crypto/constant-time.js';

export const SIGNATURE_HEADER = 'rampart-signature';

/** `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`: the timestamp is signed too, so a replay can be dated. */
export function signWebhook(secret: string, timestampSeconds: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${timestampSeconds}.${body}`).digest('hex');
  return `t=${timestampSeconds},v1=${mac}`;
}

/**
 * What a receiver does: parse the header, recompute the HMAC over the raw body,
 * compare in constant time, and refuse a timestamp further than `toleranceSeconds`
 * from now (a replayed delivery).
 */
export function verifyWebhookSignature(secret: string, header: string | undefined, body: string, nowSeconds: number, toleranceSeconds = 300): boolean {
  if (!header) return false;
  const parts = new Map<string, string[]>();
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) return false;
    const key = part.slice(0, eq).trim();
    parts.set(key, [...(parts.get(key) ?? []), part.slice(eq + 1).trim()]);
  }
  const timestamp = Number(parts.get('t')?.[0]);
  if (!Number.isSafeInteger(timestamp) || Math.abs(nowSeconds - timestamp) > toleranceSeconds) return false;
  const expected = signWebhook(secret, timestamp, body).split('v1=')[1]!;
  return (parts.get('v1') ?? []).some((candidate) => constantTimeEqual(candidate, expected));
}
