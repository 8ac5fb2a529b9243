import { iso } from '../clock.js';
import type { Profile } from '../pii/pii-service.js';
import type { SessionService } from './session-service.js';
import type { SessionRow } from '../store/repositories/sessions.js';

/** `session` as API.md defines it; `id` is the public handle, never the cookie secret. */
export interface PublicSession {
  id: string;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
  mfaVerified: boolean;
  ip: string | null;
  userAgent: string | null;
}

export function toPublicSession(sessions: SessionService, row: SessionRow, profile: Pick<Profile, 'userId' | 'dataKey'>): PublicSession {
  const { ip, userAgent } = sessions.describe(row, profile);
  return {
    id: row.public_id,
    createdAt: iso(row.created_at),
    lastSeenAt: iso(row.last_seen_at),
    expiresAt: iso(sessions.effectiveExpiry(row)),
    mfaVerified: row.mfa_verified === 1,
    ip,
    userAgent,
  };
}
