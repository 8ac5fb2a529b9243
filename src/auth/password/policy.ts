import { RampartError } from '../../errors.js';
import { isCommonPassword } from './common-passwords.js';
import { estimateStrength, type StrengthResult, userContextWords } from './strength.js';

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
 * the user's own words (ASVS V6.2.11), and the common-password lists (V6.2.4):
 * zxcvbn-ts's dictionaries plus the shipped top-10,000 breached passwords.
 * The online breach check (V6.2.12) is `PasswordRules`' business.
 */
export function checkPassword(password: string, policy: PasswordPolicy, context: PasswordContext): WeakPasswordReason[] {
  const length = [...password].length;
  const inputs = strengthInputs(context);
  const strength = length > PASSWORD_MAX_LENGTH ? null : estimateStrength(password, inputs);
  return reasonsFor(password, policy, strength, inputs);
}

/** The same as `checkPassword`, with zxcvbn run by `estimate` (a worker thread in the server). */
export async function checkPasswordWith(
  estimate: (password: string, userInputs: readonly string[]) => Promise<StrengthResult>,
  password: string,
  policy: PasswordPolicy,
  context: PasswordContext,
): Promise<WeakPasswordReason[]> {
  const length = [...password].length;
  const inputs = strengthInputs(context);
  const strength = length > PASSWORD_MAX_LENGTH ? null : await estimate(password, inputs);
  return reasonsFor(password, policy, strength, inputs);
}

/** The user's own words for zxcvbn: email and its parts, name, product and org names. */
export function strengthInputs(context: PasswordContext): string[] {
  return userContextWords(context.email, context.name, context.extraWords);
}

/** The reasons, given zxcvbn's verdict (null: too long to be scored). */
function reasonsFor(password: string, policy: PasswordPolicy, strength: StrengthResult | null, inputs: readonly string[]): WeakPasswordReason[] {
  const reasons: WeakPasswordReason[] = [];
  if ([...password].length < policy.minLength) reasons.push('too_short');
  if (!strength) {
    reasons.push('too_long');
    return reasons;
  }
  if (strength.score < policy.minStrength) reasons.push('too_weak');
  if (policy.blockCommon && (strength.isCommon || isCommonPassword(password))) reasons.push('common');
  if (strength.containsUserInfo || containsContextWord(password, inputs)) reasons.push('contains_user_info');
  return reasons;
}

/** Context words of 4+ characters anywhere in the password, ignoring case (zxcvbn may explain a name by another dictionary). */
const MIN_CONTEXT_WORD = 4;

export function containsContextWord(password: string, words: readonly string[]): boolean {
  const haystack = password.normalize('NFKC').toLowerCase();
  return words.some((word) => word.length >= MIN_CONTEXT_WORD && haystack.includes(word.normalize('NFKC').toLowerCase()));
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
