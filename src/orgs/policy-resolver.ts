import type { Clock } from '../clock.js';
import type { Config } from '../config/load.js';
import { deploymentMfaSinceForUser } from '../policy/deployment-mfa.js';
import { basePolicy, type EffectivePolicy, type PolicyResolver, toEffectivePolicy } from '../policy/effective-policy.js';
import { strictestPolicy } from '../policy/org-policy.js';
import type { MembershipWithOrg, OrgRepository } from '../store/repositories/orgs.js';
import { parseStoredPolicy } from './policy-document.js';

/** MFA_REQUIRED_FOR_ALL as the resolver sees it (see src/policy/deployment-mfa.ts). */
export interface DeploymentMfa {
  /** When the option took effect (stored once in the main store). */
  switchedOnAt: number;
  /** When an account was created, or null when there is no such account. */
  createdAt(userId: string): Promise<number | null>;
  clock: Clock;
}

/**
 * The policy of a user: the server's base policy (with MFA_REQUIRED_FOR_ALL, a
 * second factor required of everyone) tightened by every org they belong to
 * (`strictestPolicy`). Context words banned inside passwords are the product
 * name and the names of the user's orgs (ASVS V6.2.11).
 */
export class OrgPolicyResolver implements PolicyResolver {
  constructor(
    private readonly config: Config,
    private readonly repo: OrgRepository,
    private readonly deploymentMfa: DeploymentMfa | null = null,
  ) {}

  async forUser(userId: string | null): Promise<EffectivePolicy> {
    const [memberships, createdAt] = await Promise.all([
      userId === null ? [] : this.repo.listMembershipsOfUser(userId),
      userId === null || this.deploymentMfa === null ? null : this.deploymentMfa.createdAt(userId),
    ]);
    const deployment = this.deploymentMfa;
    const since = deployment === null ? null : deploymentMfaSinceForUser(deployment.switchedOnAt, createdAt, deployment.clock.now());
    return resolvePolicy(this.config, memberships, since);
  }
}

/**
 * `deploymentMfaSince`: when MFA_REQUIRED_FOR_ALL reached this user (ignored when
 * the option is off; with it on and no start known, the requirement fails closed).
 */
export function resolvePolicy(config: Config, memberships: readonly MembershipWithOrg[], deploymentMfaSince: number | null = null): EffectivePolicy {
  const policies = memberships.map((membership) => parseStoredPolicy(membership.policy));
  const merged = strictestPolicy(policies, basePolicy(config));
  const contextWords = [config.productName, ...new Set(memberships.map((membership) => membership.name))];
  const orgSince = mfaRequiredSince(memberships, policies);
  const since = config.mfaRequiredForAll
    ? withDeploymentRequirement(orgSince, strictestPolicy(policies).mfa.gracePeriodHours, deploymentMfaSince, config.mfaRequiredGraceHours, merged.mfa.gracePeriodHours)
    : orgSince;
  const networks = memberships.map((membership, i) => ({ orgId: membership.org_id, ipAllowlist: [...policies[i]!.network.ipAllowlist] }));
  const orgMfa = memberships.flatMap((membership, i) => (policies[i]!.mfa.required ? [{ orgId: membership.org_id, methods: [...policies[i]!.mfa.methods] }] : []));
  if (merged.mfa.required && merged.mfa.methods.length === 0) {
    // The requiring orgs accept no method in common: any method one of them accepts lets the
    // user in, and each org holds its own list on its routes (OrgService.assertRequestAllowed).
    merged.mfa.methods = [...new Set(orgMfa.flatMap((org) => org.methods))];
  }
  return toEffectivePolicy(merged, contextWords, memberships.map((membership) => membership.org_id), since, config.mfaRequiredForAll, networks, orgMfa);
}

const HOUR_MS = 3_600_000;

/**
 * The start of the grace period when MFA_REQUIRED_FOR_ALL adds its requirement
 * to the orgs': each requirement has its own deadline (its start plus its grace)
 * and the earliest deadline applies, so an org that is stricter still wins, but
 * an org whose requirement is older with a longer grace does not end at once the
 * grace existing accounts get from the switch-on. Returned as the start that,
 * with the merged (shortest) grace period, ends at that deadline. A deployment
 * requirement without a known start fails closed (null).
 */
function withDeploymentRequirement(
  orgSince: number | null, orgGraceHours: number, deploymentSince: number | null, deploymentGraceHours: number, mergedGraceHours: number,
): number | null {
  if (deploymentSince === null) return null;
  const deploymentDeadline = deploymentSince + deploymentGraceHours * HOUR_MS;
  const deadline = orgSince === null ? deploymentDeadline : Math.min(deploymentDeadline, orgSince + orgGraceHours * HOUR_MS);
  return deadline - mergedGraceHours * HOUR_MS;
}

/**
 * For each org that requires MFA, the requirement reached this user at the later
 * of "the org turned it on" and "the user joined"; the earliest of those over
 * the requiring orgs starts the grace period.
 */
function mfaRequiredSince(memberships: readonly MembershipWithOrg[], policies: ReturnType<typeof parseStoredPolicy>[]): number | null {
  let since: number | null = null;
  memberships.forEach((membership, index) => {
    if (!policies[index]!.mfa.required) return;
    const start = Math.max(membership.mfa_required_since ?? membership.joined_at, membership.joined_at);
    since = since === null ? start : Math.min(since, start);
  });
  return since;
}
