import type { AuditLog } from '../audit/audit-log.js';
import type { MfaService } from '../auth/mfa/mfa-service.js';
import { type Clock, iso } from '../clock.js';
import type { PiiService } from '../pii/pii-service.js';
import { type PublicSession, toPublicSession } from '../sessions/public-session.js';
import type { SessionService } from '../sessions/session-service.js';
import type { UserRepository } from '../store/repositories/users.js';
import { type ApiTokenService, scopesOf } from '../tokens/api-token-service.js';
import { type PublicUser, toPublicUser } from './public-user.js';

/** The services an export reads from (a subset of `Services`). */
export interface ExportSources {
  readonly clock: Clock;
  readonly users: UserRepository;
  readonly pii: PiiService;
  readonly sessions: SessionService;
  readonly mfa: MfaService;
  readonly apiTokens: ApiTokenService;
  readonly audit: AuditLog;
  orgsOfUser(userId: string): Promise<Array<{ id: string; name: string; slug: string; role: string }>>;
}

/** At most this many of the user's own security events (newest first); `securityEventsTruncated` says when more exist. */
export const EXPORT_MAX_EVENTS = 10_000;
const EVENT_PAGE = 500;

export interface UserDataExport {
  format: 'rampart.user-export.v1';
  exportedAt: string;
  user: PublicUser;
  sessions: PublicSession[];
  organizations: Array<{ id: string; name: string; slug: string; role: string }>;
  secondFactors: { totp: boolean; webauthn: Array<{ id: string; name: string; createdAt: string }>; recoveryCodesLeft: number };
  apiTokens: Array<{ id: string; name: string; prefix: string; scopes: string[]; orgId: string | null; createdAt: string; expiresAt: string | null; lastUsedAt: string | null; lastUsedIp: string | null }>;
  securityEvents: Array<{ id: string; time: string; action: string; outcome: string; ip: string | null; userAgent: string | null; details: Record<string, unknown> }>;
  securityEventsTruncated: boolean;
}

/**
 * Everything Rampart holds about one user, decrypted, as one JSON document
 * (`GET /v1/me/export`; GDPR art. 15 and 20). It holds what the user may see
 * and nothing that works as a credential: no password hash, no factor secret,
 * no recovery code, no token secret (only its public prefix), no session secret
 * (only the public session id).
 */
export async function exportUserData(sources: ExportSources, userId: string): Promise<UserDataExport | null> {
  const [user, profile] = await Promise.all([sources.users.findById(userId), sources.pii.getProfile(userId)]);
  if (!user || !profile) return null;
  const [sessions, organizations, mfa, tokens] = await Promise.all([
    sources.sessions.list(userId, profile),
    sources.orgsOfUser(userId),
    sources.mfa.status(userId, profile, null),
    sources.apiTokens.list(userId, profile),
  ]);
  const events: UserDataExport['securityEvents'] = [];
  let before: number | undefined;
  let truncated = false;
  for (;;) {
    const page = await sources.audit.latest({ userId, before, limit: EVENT_PAGE });
    for (const event of page.events) {
      if (events.length >= EXPORT_MAX_EVENTS) break;
      events.push({ id: event.id, time: event.time, action: event.action, outcome: event.outcome, ip: event.ip, userAgent: event.userAgent, details: event.details });
    }
    if (page.next === null) break;
    if (events.length >= EXPORT_MAX_EVENTS) {
      truncated = true;
      break;
    }
    before = Number(page.next);
  }
  return {
    format: 'rampart.user-export.v1',
    exportedAt: iso(sources.clock.now()),
    user: toPublicUser(user, profile),
    sessions: sessions.map((session) => toPublicSession(sources.sessions, session, profile)),
    organizations,
    secondFactors: {
      totp: mfa.totp,
      webauthn: mfa.webauthn.map((credential) => ({ id: credential.id, name: credential.name, createdAt: iso(credential.createdAt) })),
      recoveryCodesLeft: mfa.recoveryCodesLeft,
    },
    apiTokens: tokens.map((token) => ({
      id: token.id,
      name: token.name,
      prefix: token.prefix,
      scopes: scopesOf(token),
      orgId: token.org_id,
      createdAt: iso(token.created_at),
      expiresAt: token.expires_at === null ? null : iso(token.expires_at),
      lastUsedAt: token.last_used_at === null ? null : iso(token.last_used_at),
      lastUsedIp: token.lastUsedIp,
    })),
    securityEvents: events,
    securityEventsTruncated: truncated,
  };
}
