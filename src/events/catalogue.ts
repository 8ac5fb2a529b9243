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
  'master_key.rotated': 'A new master key became current and the wrapped keys were re-wrapped under it (details.keyId).',
  'user.locked': 'An account was locked; its sessions and tokens were revoked (details.revoked counts them).',
  'user.unlocked': 'A locked account was unlocked.',
  'api_token.created': 'A user created an API token (details: scopes, expiresAt, orgId; never the token).',
  'api_token.revoked': 'An API token was revoked (details.reason: user, account_locked, account_deleted).',
  'api_token.used': 'An API token authenticated a request; recorded at most once a minute per token, with the address.',
  'signing_key.rotated': 'A new access-token signing key took over (details.reason: initial, scheduled, manual; previousKid).',
  'access_token.issued': 'A session or API token was exchanged for an access JWT (details: jti, scopes, source).',
  'api_token.rejected': 'A known API token was refused (details.reason: revoked, expired, owner_inactive); unknown tokens are not recorded.',
  'org.created': 'An organization was created; its creator became the owner (details.slug).',
  'member.added': 'A user joined an org (details.role; details.via: org_created, invitation, direct).',
  'member.role_changed': 'A member\'s org role changed (details.from, details.to).',
  'member.removed': 'A membership ended: removed by an admin or left (details.self); the member\'s sessions and tokens lost the org at once.',
  'invitation.created': 'An invitation to an org was mailed (details.role, details.expiresAt; never the address or the token).',
  'invitation.accepted': 'An invitation was used by the invited account (details.role).',
  'policy.updated': 'An org policy was replaced (details.before, details.after; details.forced when the allowlist excluded the caller).',
  'ip.blocked': 'A request, login or token use was refused by an org IP allowlist (details.via: login, request, token, invitation).',
  'staff_role.granted': 'A staff role was granted from the command line (details.role, details.via); it does nothing until assumed.',
  'staff_role.revoked': 'A staff role was revoked; sessions that had assumed it lost it at once (details.role, details.endedAssumptions).',
  'staff_role.assumed': 'A session assumed a granted staff role after MFA and step-up (details.role, details.reason, details.minutes, details.expiresAt, details.replaced).',
  'staff_role.released': 'A session dropped its assumed staff role before it expired (details.role, details.reason).',
  'staff_action.performed': 'A staff member used an assumed role (details.action, details.staffRole, details.reason; the target user, if any).',
  'access.denied': 'An authorization check refused a caller (details.action and role, or details.reason: not_a_member, no_staff_role…).',
  'audit.pruned': 'Retention pruning deleted the oldest audit events and anchored the chain at the first kept one (details.firstSeq, details.anchorHash).',
  'mfa.failed': 'A second-factor attempt failed or was throttled (details.method, details.stage: login | reauth | enroll, details.reason).',
  'mfa.reset': 'Staff removed every second factor of a user and ended their sessions (details count what was removed).',
  'totp.enrolled': 'A user confirmed a TOTP authenticator; it is now a second factor.',
  'totp.removed': 'A user removed their TOTP authenticator (details.revoked: other sessions ended).',
  'webauthn.registered': 'A user registered a WebAuthn credential (security key or passkey).',
  'webauthn.removed': 'A user removed a WebAuthn credential (details.revoked: other sessions ended).',
  'recovery_codes.generated': 'A new set of recovery codes was issued; the previous set no longer works.',
  'mfa_requirement.notified': 'Members of an org who lack a counting second factor were mailed that the org now requires one (details.count).',
  'recovery_code.used': 'A recovery code completed a login (details.left: unused codes remaining).',
  'user.deleted': 'An account was deleted by its owner (step-up): credentials revoked (details.revoked), personal data crypto-shredded, account row removed; the id is never reused.',
  'user.imported': 'A `rampart users import` run finished (details: imported, skipped, failed counts); each account it created also has its user.created event.',
  'password.changed': 'A password was changed (details.via: change | expired); other sessions and session-derived credentials were revoked (details.revoked).',
  'password.change_failed': 'A password change was refused because the current password was wrong.',
  'password.reset_requested': 'A reset link was asked for (outcome failure with details.reason when no active account has that address; the caller always sees 202).',
  'password.reset': 'A password was set through a reset link; every session and session-derived credential was revoked.',
  'password.reset_failed': 'A reset or expired-password change token was presented that is unknown, expired, used or voided (details.purpose).',
  'password.expired': 'A correct login was interrupted because the password is older than the policy\'s maxAgeDays; a change token was issued.',
  'password.rehashed': 'A stored password hash was upgraded at login (an imported bcrypt hash or weaker argon2 parameters; details.from).',
} as const satisfies Record<string, string>;

export type EventAction = keyof typeof EVENT_CATALOGUE;

export function isEventAction(value: string): value is EventAction {
  return Object.hasOwn(EVENT_CATALOGUE, value);
}
