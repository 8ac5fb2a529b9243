import type { Config } from '../config/load.js';
import type { PasswordPolicy } from '../auth/password/policy.js';
import type { SessionLimits } from '../sessions/session-service.js';

/** The rules that apply to one user: the server defaults, tightened by every org they belong to. */
export interface EffectivePolicy {
  password: PasswordPolicy;
  session: SessionLimits;
  /** Context-specific words banned inside passwords (product name, org names). */
  contextWords: string[];
}

export interface PolicyResolver {
  /** The policy for a user; `null` for a user who does not exist yet (signup). */
  forUser(userId: string | null): Promise<EffectivePolicy>;
}

/** Server-wide defaults from configuration; the orgs feature layers org policies on top. */
export function defaultPolicy(config: Config): EffectivePolicy {
  return {
    password: {
      minLength: config.passwordMinLength,
      minStrength: config.passwordMinStrength,
      historyCount: 5,
      maxAgeDays: null,
      blockCommon: true,
    },
    session: {
      idleTimeoutMinutes: config.sessionIdleTimeoutMinutes,
      absoluteTimeoutHours: config.sessionAbsoluteTimeoutHours,
    },
    contextWords: [config.productName],
  };
}

export class ConfigPolicyResolver implements PolicyResolver {
  constructor(private readonly config: Config) {}

  async forUser(): Promise<EffectivePolicy> {
    return defaultPolicy(this.config);
  }
}
