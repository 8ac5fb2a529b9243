import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signatures, for Rampart (which signs) and for receivers (the SDK verifies):
 * `Rampart-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`,
 * with a second `v1` while a rolled-over secret still signs.
 */
export const SIGNATURE_HEADER = 'rampart-signature';

/** Both sides hashed first, so timingSafeEqual sees equal lengths and no length leaks (as src/crypto/constant-time.ts, which the SDK cannot import). */
function sameMac(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`: the timestamp is signed too, so a replay can be dated. */
export function signWebhook(secret: string, timestampSeconds: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${timestampSeconds}.${body}`).digest('hex');
  return `t=${timestampSeconds},v1=${mac}`;
}

/**
 * One header signed with each secret: `t=<unix>,v1=<mac>,v1=<mac>` while a rolled-over
 * secret still signs beside the new one; a receiver accepts any `v1` its secret matches.
 */
export function signWebhookWithEach(secrets: readonly string[], timestampSeconds: number, body: string): string {
  return [`t=${timestampSeconds}`, ...secrets.map((secret) => signWebhook(secret, timestampSeconds, body).split(',')[1]!)].join(',');
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
  return (parts.get('v1') ?? []).some((candidate) => sameMac(candidate, expected));
}
