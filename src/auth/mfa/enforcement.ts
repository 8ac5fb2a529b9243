import type { EffectivePolicy } from '../../policy/effective-policy.js';

/** The second factors a user can hold. */
export type FactorMethod = 'totp' | 'webauthn';
/** What a login's second step may be completed with. */
export type LoginMethod = FactorMethod | 'recovery_code';

export const FACTOR_METHODS: readonly FactorMethod[] = ['totp', 'webauthn'];

/**
 * What a login with a correct password must do next:
 *  - `none`: no factor and none required: the session is made;
 *  - `challenge`: the user must prove one of `methods`; with `enrollmentOnly`,
 *    the factors at hand do not satisfy an org's `mfa.methods`, so the session
 *    will be limited to enrolling one that does (during the grace period);
 *  - `enroll`: no factor that counts, within the grace period: an
 *    enrollment-only session is made; `enrollBefore` ends the grace;
 *  - `refuse`: the grace period is over: `403 mfa_enrollment_required`.
 */
export type MfaDecision =
  | { kind: 'none' }
  | { kind: 'challenge'; methods: FactorMethod[]; enrollmentOnly: boolean }
  | { kind: 'enroll'; enrollBefore: number }
  | { kind: 'refuse' };

export interface MfaDecisionInput {
  /** The user's confirmed factors. */
  own: readonly FactorMethod[];
  policy: Pick<EffectivePolicy, 'mfa' | 'mfaRequiredSince'>;
  now: number;
  /** An admin reset restarts the grace period from this time. */
  graceRestartedAt: number | null;
}

/** The factor methods that satisfy the policy (all of them when no org requires MFA). */
export function countingMethods(own: readonly FactorMethod[], policy: Pick<EffectivePolicy, 'mfa'>): FactorMethod[] {
  return policy.mfa.required ? own.filter((method) => policy.mfa.methods.includes(method)) : [...own];
}

/**
 * When the grace period ends, or null when no org requires MFA. It runs from
 * `mfaRequiredSince` (the later of "the org turned the requirement on" and "the
 * user joined"), or from an admin reset when that is later. A requirement
 * without a start time fails closed: the grace is over (and only an admin reset
 * opens one).
 */
export function graceEndsAt(policy: Pick<EffectivePolicy, 'mfa' | 'mfaRequiredSince'>, graceRestartedAt: number | null): number | null {
  if (!policy.mfa.required) return null;
  const since = Math.max(policy.mfaRequiredSince ?? Number.NEGATIVE_INFINITY, graceRestartedAt ?? Number.NEGATIVE_INFINITY);
  return since === Number.NEGATIVE_INFINITY ? Number.NEGATIVE_INFINITY : since + policy.mfa.gracePeriodHours * 3_600_000;
}

export function decideMfa(input: MfaDecisionInput): MfaDecision {
  const { own, policy, now } = input;
  if (!policy.mfa.required) return own.length > 0 ? { kind: 'challenge', methods: [...own], enrollmentOnly: false } : { kind: 'none' };
  const counting = countingMethods(own, policy);
  // Members with a factor that counts must use it; there is no grace for them.
  if (counting.length > 0) return { kind: 'challenge', methods: counting, enrollmentOnly: false };
  const graceEnd = graceEndsAt(policy, input.graceRestartedAt)!;
  if (now >= graceEnd) return { kind: 'refuse' };
  // A factor the org does not accept is still the user's own: they prove it, then may only enroll.
  if (own.length > 0) return { kind: 'challenge', methods: [...own], enrollmentOnly: true };
  return { kind: 'enroll', enrollBefore: graceEnd };
}

/**
 * Whether a session satisfies the org requirement: MFA-verified with a method
 * the policy counts (a recovery code stands for the factor it backs up).
 */
export function sessionSatisfiesPolicy(
  session: { mfa_verified: number; mfa_method: string | null },
  policy: Pick<EffectivePolicy, 'mfa'>,
): boolean {
  if (!policy.mfa.required) return true;
  if (session.mfa_verified !== 1 || session.mfa_method === null) return false;
  return session.mfa_method === 'recovery_code' || (policy.mfa.methods as readonly string[]).includes(session.mfa_method);
}
