/**
 * THE table of staff powers (the vendor's own people; API.md "Staff"). A
 * granted role grants nothing until a session assumes it; a session holds at
 * most one; each staff route asks `StaffService.assertActing(…, action)`, which
 * reads only this table.
 *
 *  - support:  find a user by email (to answer a ticket);
 *  - operator: lock, unlock, reset a user's second factors;
 *  - security: the operator's powers plus the platform-wide audit log;
 *  - auditor:  the platform-wide audit log, read only.
 */
import { ConfigError } from '../errors.js';

export const STAFF_ROLES = ['support', 'operator', 'security', 'auditor'] as const;
export type StaffRole = (typeof STAFF_ROLES)[number];

export const STAFF_ACTIONS = ['users.read', 'users.lock', 'users.unlock', 'users.reset_mfa', 'audit.read'] as const;
export type StaffAction = (typeof STAFF_ACTIONS)[number];

/** Frozen all the way down: nothing at run time can widen a role. */
export const STAFF_PERMISSIONS: Readonly<Record<StaffRole, readonly StaffAction[]>> = Object.freeze({
  support: Object.freeze(['users.read'] as const),
  operator: Object.freeze(['users.lock', 'users.unlock', 'users.reset_mfa'] as const),
  security: Object.freeze(['users.lock', 'users.unlock', 'users.reset_mfa', 'audit.read'] as const),
  auditor: Object.freeze(['audit.read'] as const),
});

/** API.md: an assumed role lasts at most 60 minutes. */
export const MAX_ASSUMPTION_MINUTES = 60;
/** When the request names no duration: long enough for one task, short enough to lapse unnoticed. */
export const DEFAULT_ASSUMPTION_MINUTES = 30;

export function isStaffRole(value: unknown): value is StaffRole {
  return typeof value === 'string' && (STAFF_ROLES as readonly string[]).includes(value);
}

export function staffRoleAllows(role: StaffRole, action: StaffAction): boolean {
  return STAFF_PERMISSIONS[role].includes(action);
}

/** Which pairs of roles one person may not hold assumed at the same time (in any of their sessions). */
export interface StaffConflicts {
  conflict(a: StaffRole, b: StaffRole): boolean;
}

/**
 * Parses STAFF_CONFLICTING_ROLES: `*` (every pair conflicts: one role at a time,
 * the default) or pairs `a:b`. A role always conflicts with itself being held
 * twice. The list is validated at boot: an unknown role refuses start-up.
 */
export function parseStaffConflicts(entries: readonly string[]): StaffConflicts {
  if (entries.includes('*')) {
    if (entries.length > 1) throw new ConfigError('STAFF_CONFLICTING_ROLES: "*" (every pair) stands alone');
    return { conflict: () => true };
  }
  const pairs = new Set<string>();
  for (const entry of entries) {
    const [a, b, extra] = entry.split(':');
    if (extra !== undefined || !isStaffRole(a) || !isStaffRole(b) || a === b) {
      throw new ConfigError(`STAFF_CONFLICTING_ROLES: "${entry}" is not a pair of two staff roles (${STAFF_ROLES.join(', ')}) like support:operator`);
    }
    pairs.add(`${a}:${b}`).add(`${b}:${a}`);
  }
  return { conflict: (a, b) => a === b || pairs.has(`${a}:${b}`) };
}
