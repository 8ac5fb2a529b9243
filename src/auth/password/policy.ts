import { RampartError } from '../../errors.js';
import { estimateStrength, userContextWords } from './strength.js';

/** The password block of an org policy (API.md); the server defaults come from config. */
export interface PasswordPolicy {
  minLength: number;
  minStrength: number;
  historyCount: number;
  maxAgeDays: number | null;
  blockCommon: boolean;
}

/** NIST 800-63B §5.1.1.2: verifiers SHOULD permit at least 64 characters; we allow 256. */
export const PASSWORD_MAX_LENGTH = 256;

export type WeakPasswordReason = 'too_short' | 'too_long' | 'too_weak' | 'common' | 'contains_user_info' | 'breached';

export interface PasswordContext {
  email: string | null;
  name: string | null;
  /** Org names, the product name: context-specific words (ASVS V6.2.11). */
  extraWords?: readonly string[];
}

/**
 * Reasons the password fails the policy, empty when it passes. No composition
 * rules (NIST 800-63B and ASVS V6.2.5 forbid them): length, zxcvbn strength with
 * the user's own words, and the common-password lists.
 */
export function checkPassword(password: string, policy: PasswordPolicy, context: PasswordContext): WeakPasswordReason[] {
  const reasons: WeakPasswordReason[] = [];
  const length = [...password].length;
  if (length < policy.minLength) reasons.push('too_short');
  if (length > PASSWORD_MAX_LENGTH) {
    reasons.push('too_long');
    return reasons;
  }
  const strength = estimateStrength(password, userContextWords(context.email, context.name, context.extraWords));
  if (strength.score < policy.minStrength) reasons.push('too_weak');
  if (policy.blockCommon && strength.isCommon) reasons.push('common');
  if (strength.containsUserInfo) reasons.push('contains_user_info');
  return reasons;
}

const MESSAGES: Record<WeakPasswordReason, string> = {
  too_short: 'is too short',
  too_long: 'is too long',
  too_weak: 'is too easy to guess',
  common: 'is a commonly used password',
  contains_user_info: 'contains your name, email or the product name',
  breached: 'has appeared in a data breach',
};

/** Throws `weak_password` with machine-readable reasons when `reasons` is not empty. */
export function assertStrongPassword(reasons: readonly WeakPasswordReason[], policy: PasswordPolicy): void {
  if (reasons.length === 0) return;
  const parts = reasons.map((reason) => MESSAGES[reason]);
  const hint = reasons.includes('too_short') ? ` Use at least ${policy.minLength} characters.` : '';
  throw new RampartError('weak_password', {
    publicDetail: `The password ${parts.join(', ')}.${hint} A few unrelated words make a strong, memorable password.`,
    extensions: { reasons: [...reasons] },
  });
}
