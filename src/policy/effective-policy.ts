import type { Config } from '../config/load.js';
import type { PasswordPolicy } from '../auth/password/policy.js';
import type { SessionLimits } from '../sessions/session-service.js';
import { defaultOrgPolicy, type OrgPolicy } from './org-policy.js';

/**
 * The rules that apply to one user: the server defaults, tightened by every org
 * they belong to (`strictestPolicy`).
 */
export interface EffectivePolicy {
  password: PasswordPolicy;
  session: SessionLimits;
  mfa: OrgPolicy['mfa'];
  tokens: OrgPolicy['tokens'];
  /** Context-specific words banned inside passwords (product name, org names). */
  contextWords: string[];
  /** The orgs whose policies were combined (empty for a user in no org). */
  orgIds: string[];
  /**
   * Each of those orgs' own IP allowlist (not merged: each applies to its own org;
   * empty = every address). The login rule reads them from here.
   */
  orgNetworks: Array<{ orgId: string; ipAllowlist: string[] }>;
  /**
   * The factor methods each org that requires MFA accepts (empty when none does). `mfa.methods`
   * is what every one of them accepts; when they accept nothing in common it is every method
   * any of them accepts instead (no factor could ever count for all, and the login would be
   * refused for good), and each org's own list is then held on that org's routes.
   */
  orgMfa: Array<{ orgId: string; methods: OrgPolicy['mfa']['methods'] }>;
  /**
   * When an MFA requirement first applied to this user (epoch ms): the latest of
   * "the org turned mfa.required on" and "the user joined that org", over the
   * requiring orgs (the earliest such time wins). null when no org requires MFA.
   * The grace period runs from here.
   */
  mfaRequiredSince: number | null;
  /** MFA_REQUIRED_FOR_ALL: the deployment itself requires a second factor of this user. */
  mfaRequiredByDeployment: boolean;
}

export interface PolicyResolver {
  /** The policy for a user; `null` for a user who does not exist yet (signup). */
  forUser(userId: string | null): Promise<EffectivePolicy>;
}

/**
 * The server-wide base policy: API.md defaults with the configured password and
 * session settings, and with MFA_REQUIRED_FOR_ALL a second factor (TOTP or
 * WebAuthn) required of everyone, as if by an org: orgs may only tighten it.
 */
export function basePolicy(config: Config): OrgPolicy {
  const policy = defaultOrgPolicy();
  if (config.mfaRequiredForAll) policy.mfa = { required: true, methods: ['totp', 'webauthn'], gracePeriodHours: config.mfaRequiredGraceHours };
  policy.password.minLength = config.passwordMinLength;
  policy.password.minStrength = config.passwordMinStrength;
  policy.session.idleTimeoutMinutes = config.sessionIdleTimeoutMinutes;
  policy.session.absoluteTimeoutHours = config.sessionAbsoluteTimeoutHours;
  return policy;
}

export function toEffectivePolicy(
  policy: OrgPolicy, contextWords: string[], orgIds: string[], mfaRequiredSince: number | null = null, mfaRequiredByDeployment = false,
  orgNetworks: EffectivePolicy['orgNetworks'] = [],
  orgMfa: EffectivePolicy['orgMfa'] = [],
): EffectivePolicy {
  return {
    mfaRequiredSince: policy.mfa.required ? mfaRequiredSince : null,
    mfaRequiredByDeployment: policy.mfa.required && mfaRequiredByDeployment,
    password: { ...policy.password },
    session: { ...policy.session },
    mfa: { ...policy.mfa, methods: [...policy.mfa.methods] },
    tokens: { ...policy.tokens },
    contextWords,
    orgIds,
    orgNetworks,
    orgMfa,
  };
}

/**
 * Server defaults only; the orgs feature replaces this with the strictest-of-orgs
 * resolver (which also knows when MFA_REQUIRED_FOR_ALL reached each user: here a
 * deployment-wide requirement has no start and so fails closed).
 */
export class ConfigPolicyResolver implements PolicyResolver {
  constructor(private readonly config: Config) {}

  async forUser(): Promise<EffectivePolicy> {
    return toEffectivePolicy(basePolicy(this.config), [this.config.productName], []);
  }
}
