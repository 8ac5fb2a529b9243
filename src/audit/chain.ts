import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';

/** The prevHash of the first event ever appended. */
export const GENESIS_HASH = '0'.repeat(64);

/** An audit event as the API shows it, without its chain fields. These are exactly the hashed members. */
export interface AuditEventBody {
  id: string;
  seq: number;
  /** ISO 8601 UTC with milliseconds. */
  time: string;
  orgId: string | null;
  actor: { type: string; id: string | null };
  action: string;
  target: { type: string; id: string } | null;
  ip: string | null;
  userAgent: string | null;
  outcome: string;
  details: Record<string, unknown>;
  requestId: string | null;
}

export interface AuditEvent extends AuditEventBody {
  prevHash: string;
  hash: string;
}

/**
 * hash = SHA-256(prevHash || canonicalJson(event body)), hex. prevHash is the
 * 64-character hex hash of the previous event (GENESIS_HASH for the first), and
 * the body is the event as the API and the export show it, minus prevHash and
 * hash; so an exported chain can be checked with nothing but SHA-256.
 */
export function chainHash(prevHash: string, body: AuditEventBody): string {
  const { id, seq, time, orgId, actor, action, target, ip, userAgent, outcome, details, requestId } = body;
  const canonical = canonicalJson({ id, seq, time, orgId, actor, action, target, ip, userAgent, outcome, details, requestId });
  return createHash('sha256').update(prevHash, 'utf8').update(canonical, 'utf8').digest('hex');
}
