/**
 * THE permission table of organizations (ASVS V8.1.1): which role may do which
 * action, and which token scope a bearer credential needs for it. Every org
 * route asks `OrgService.assertAllowed(auth, orgId, action)`, which reads only
 * this file; no handler decides on roles by itself.
 *
 * Reading the table:
 *  - `member`  sees the org, its members and its policy (members must know the rules they live by);
 *  - `auditor` adds the audit log (read-only);
 *  - `admin`   manages members, invitations, policy and webhooks, but never the owner role;
 *  - `owner`   everything, including granting and removing the owner role.
 * Every role may leave the org (`members.leave`), except the last owner (the service refuses).
 */

export const ORG_ROLES = ['owner', 'admin', 'auditor', 'member'] as const;
export type OrgRole = (typeof ORG_ROLES)[number];

export const ORG_ACTIONS = [
  'org.read',
  'members.read',
  'members.invite',
  'members.update_role',
  'members.remove',
  'members.leave',
  /** Grant the owner role, or change or remove an owner (API.md: only an owner). */
  'members.manage_owners',
  'policy.read',
  'policy.update',
  'audit.read',
  /** List and read the webhooks (their URLs and delivery health; never a secret). */
  'webhooks.read',
  'webhooks.manage',
] as const;
export type OrgAction = (typeof ORG_ACTIONS)[number];

const MEMBER: readonly OrgAction[] = ['org.read', 'members.read', 'policy.read', 'members.leave'];
const AUDITOR: readonly OrgAction[] = [...MEMBER, 'audit.read'];
const ADMIN: readonly OrgAction[] = [
  ...AUDITOR, 'members.invite', 'members.update_role', 'members.remove', 'policy.update', 'webhooks.read', 'webhooks.manage',
];
const OWNER: readonly OrgAction[] = [...ADMIN, 'members.manage_owners'];

/** Frozen all the way down: nothing at run time can widen a role. */
export const ROLE_PERMISSIONS: Readonly<Record<OrgRole, readonly OrgAction[]>> = Object.freeze({
  owner: Object.freeze(OWNER),
  admin: Object.freeze(ADMIN),
  auditor: Object.freeze(AUDITOR),
  member: Object.freeze(MEMBER),
});

/**
 * The scope a bearer credential needs for each action (API.md "API token scopes"); a list
 * means any one of them. A token is also limited by its owner's CURRENT role: both must
 * allow the action.
 */
export const ACTION_SCOPES: Readonly<Record<OrgAction, string | readonly string[]>> = Object.freeze({
  'org.read': 'org:read',
  'members.read': 'org:read',
  'policy.read': 'org:read',
  'members.invite': 'org:admin',
  'members.update_role': 'org:admin',
  'members.remove': 'org:admin',
  'members.leave': 'org:admin',
  'members.manage_owners': 'org:admin',
  'policy.update': 'org:admin',
  'webhooks.manage': 'org:admin',
  // A read (org:read), and what a token that manages the webhooks must see (org:admin).
  'webhooks.read': Object.freeze(['org:read', 'org:admin']),
  'audit.read': 'audit:read',
});

export function isOrgRole(value: unknown): value is OrgRole {
  return typeof value === 'string' && (ORG_ROLES as readonly string[]).includes(value);
}

export function roleAllows(role: OrgRole, action: OrgAction): boolean {
  return ROLE_PERMISSIONS[role].includes(action);
}
