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
   * When an MFA requirement first applied to this user (epoch ms): the latest of
   * "the org turned mfa.required on" and "the user joined that org", over the
   * requiring orgs (the earliest such time wins). null when no org requires MFA.
   * The grace period runs from here.
   */
  mfaRequiredSince: number | null;
}

export interface PolicyResolver {
  /** The policy for a user; `null` for a user who does not exist yet (signup). */
  forUser(userId: string | null): Promise<EffectivePolicy>;
}

/** The server-wide base policy: API.md defaults with the configured password and session settings. */
export function basePolicy(config: Config): OrgPolicy {
  const policy = defaultOrgPolicy();
  policy.password.minLength = config.passwordMinLength;
  policy.password.minStrength = config.passwordMinStrength;
  policy.session.idleTimeoutMinutes = config.sessionIdleTimeoutMinutes;
  policy.session.absoluteTimeoutHours = config.sessionAbsoluteTimeoutHours;
  return policy;
}

export function toEffectivePolicy(policy: OrgPolicy, contextWords: string[], orgIds: string[], mfaRequiredSince: number | null = null): EffectivePolicy {
  return {
    mfaRequiredSince: policy.mfa.required ? mfaRequiredSince : null,
    password: { ...policy.password },
    session: { ...policy.session },
    mfa: { ...policy.mfa, methods: [...policy.mfa.methods] },
    tokens: { ...policy.tokens },
    contextWords,
    orgIds,
  };
}

/** Server defaults only; the orgs feature replaces this with the strictest-of-orgs resolver. */
export class ConfigPolicyResolver implements PolicyResolver {
  constructor(private readonly config: Config) {}

  async forUser(): Promise<EffectivePolicy> {
    return toEffectivePolicy(basePolicy(this.config), [this.config.productName], []);
  }
}
