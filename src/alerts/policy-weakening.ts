import type { OrgPolicy } from '../policy/org-policy.js';

/**
 * The settings a policy change made less strict (empty when none), by path.
 * Password expiry is left out on purpose: NIST 800-63B treats forced rotation as
 * no gain, so dropping it is not a weakening.
 */
export function weakenedPolicyFields(before: OrgPolicy, after: OrgPolicy): string[] {
  const weakened: string[] = [];
  const lower = (path: string, a: number, b: number) => {
    if (b < a) weakened.push(path);
  };
  const higher = (path: string, a: number, b: number) => {
    if (b > a) weakened.push(path);
  };
  lower('password.minLength', before.password.minLength, after.password.minLength);
  lower('password.minStrength', before.password.minStrength, after.password.minStrength);
  lower('password.historyCount', before.password.historyCount, after.password.historyCount);
  if (before.password.blockCommon && !after.password.blockCommon) weakened.push('password.blockCommon');
  if (before.mfa.required && !after.mfa.required) weakened.push('mfa.required');
  if (after.mfa.methods.some((method) => !before.mfa.methods.includes(method))) weakened.push('mfa.methods');
  higher('mfa.gracePeriodHours', before.mfa.gracePeriodHours, after.mfa.gracePeriodHours);
  higher('session.idleTimeoutMinutes', before.session.idleTimeoutMinutes, after.session.idleTimeoutMinutes);
  higher('session.absoluteTimeoutHours', before.session.absoluteTimeoutHours, after.session.absoluteTimeoutHours);
  const wasRestricted = before.network.ipAllowlist.length > 0;
  if (wasRestricted && (after.network.ipAllowlist.length === 0 || after.network.ipAllowlist.some((cidr) => !before.network.ipAllowlist.includes(cidr)))) {
    weakened.push('network.ipAllowlist');
  }
  higher('tokens.maxLifetimeDays', before.tokens.maxLifetimeDays, after.tokens.maxLifetimeDays);
  return weakened;
}
