import type { Services } from '../../src/services.js';
import { defaultOrgPolicy } from '../../src/policy/org-policy.js';
import { toEffectivePolicy } from '../../src/policy/effective-policy.js';

export interface ExpiringPasswords {
  /** Users whose password expires after `maxAgeDays` (as if an org chose it); everyone else keeps the real policy. */
  expiring: Set<string>;
  /** Of those, users also under an org-style MFA requirement (TOTP or WebAuthn, 72 h grace) started at the given time. */
  mfaRequiredSince: Map<string, number>;
  /** How many times each user's policy was resolved. */
  resolutions: Map<string, number>;
}

/**
 * Replaces the server's policy resolver (flows read `services.policies` late) so
 * that chosen users have a password that expires after `maxAgeDays`.
 */
export function expiringPasswords(services: Pick<Services, 'policies'>, maxAgeDays: number): ExpiringPasswords {
  const state: ExpiringPasswords = { expiring: new Set(), mfaRequiredSince: new Map(), resolutions: new Map() };
  const original = services.policies;
  services.policies = {
    async forUser(userId) {
      if (userId) state.resolutions.set(userId, (state.resolutions.get(userId) ?? 0) + 1);
      if (!userId || !state.expiring.has(userId)) return original.forUser(userId);
      const policy = defaultOrgPolicy();
      policy.password.maxAgeDays = maxAgeDays;
      const since = state.mfaRequiredSince.get(userId) ?? null;
      if (since !== null) policy.mfa = { required: true, methods: ['totp', 'webauthn'], gracePeriodHours: 72 };
      return toEffectivePolicy(policy, ['Rampart'], [], since);
    },
  };
  return state;
}
