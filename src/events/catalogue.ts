/**
 * The closed catalogue of security events, named `noun.past_verb`. Every event
 * recorded anywhere must be listed here with what it means; the audit log,
 * alerts, webhooks and the user's security-events feed all read these names,
 * so a shipped name is never renamed or reused.
 */
export const EVENT_CATALOGUE = {
  'user.created': 'An account was created (signup or import).',
  'login.succeeded': 'A login completed and a session was created.',
  'login.failed': 'A login attempt failed (details.reason says why, never which part was wrong to the client).',
  'session.created': 'A session was created for a user.',
  'session.revoked': 'A session was ended before its expiry (details.reason: logout, user, all_others, …).',
  'session.rotated': 'A session received a new secret (privilege change, password change).',
  'reauth.succeeded': 'A session re-authenticated for a sensitive action (step-up; details.method).',
  'reauth.failed': 'A step-up attempt failed (details.method).',
  'user.locked': 'An account was locked; its sessions and tokens were revoked (details.revoked counts them).',
  'user.unlocked': 'A locked account was unlocked.',
  'api_token.created': 'A user created an API token (details: scopes, expiresAt, orgId; never the token).',
  'api_token.revoked': 'An API token was revoked (details.reason: user, account_locked, account_deleted).',
  'api_token.used': 'An API token authenticated a request; recorded at most once a minute per token, with the address.',
  'api_token.rejected': 'A well-formed API token was refused (details.reason: unknown, revoked, expired, owner_inactive).',
} as const satisfies Record<string, string>;

export type EventAction = keyof typeof EVENT_CATALOGUE;

export function isEventAction(value: string): value is EventAction {
  return Object.hasOwn(EVENT_CATALOGUE, value);
}
