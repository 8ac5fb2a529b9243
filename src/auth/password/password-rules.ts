import type { EffectivePolicy, PolicyResolver } from '../../policy/effective-policy.js';
import type { BreachedPasswordChecker } from './breached.js';
import { assertStrongPassword, checkPasswordWith, type WeakPasswordReason } from './policy.js';
import type { StrengthEstimator } from './strength-estimator.js';

/** Who the password is for: their own words are banned inside it. */
export interface PasswordSubject {
  /** null at signup (no account yet): the server's base policy applies. */
  userId: string | null;
  email: string | null;
  name: string | null;
}

/**
 * The one place a new password is judged (signup, change, reset, expired
 * change): the user's effective policy — the strictest of their orgs'
 * (`services.policies.forUser`) — its context words (product and org names),
 * the offline common lists, and the optional online breach check.
 */
export class PasswordRules {
  constructor(
    private readonly policies: PolicyResolver,
    private readonly strength: StrengthEstimator,
    private readonly breached: BreachedPasswordChecker | null,
  ) {}

  /** The reasons the password is refused (empty: acceptable), with the policy that decided. */
  async evaluate(password: string, subject: PasswordSubject): Promise<{ reasons: WeakPasswordReason[]; policy: EffectivePolicy }> {
    const policy = await this.policies.forUser(subject.userId);
    const reasons = await checkPasswordWith((value, inputs) => this.strength.estimate(value, inputs), password, policy.password, {
      email: subject.email,
      name: subject.name,
      extraWords: policy.contextWords,
    });
    // Only a password that passes everything else costs a network round trip.
    if (reasons.length === 0 && this.breached && (await this.breached.isBreached(password)) === true) reasons.push('breached');
    return { reasons, policy };
  }

  /** Throws `weak_password` (with `reasons`) unless the password is acceptable; returns the policy. */
  async assertAcceptable(password: string, subject: PasswordSubject): Promise<EffectivePolicy> {
    const { reasons, policy } = await this.evaluate(password, subject);
    assertStrongPassword(reasons, policy.password);
    return policy;
  }
}
