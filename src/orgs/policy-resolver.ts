import type { Config } from '../config/load.js';
import { basePolicy, type EffectivePolicy, type PolicyResolver, toEffectivePolicy } from '../policy/effective-policy.js';
import { strictestPolicy } from '../policy/org-policy.js';
import type { MembershipWithOrg, OrgRepository } from '../store/repositories/orgs.js';
import { parseStoredPolicy } from './policy-document.js';

/**
 * The policy of a user: the server's base policy tightened by every org they
 * belong to (`strictestPolicy`). Context words banned inside passwords are the
 * product name and the names of the user's orgs (ASVS V6.2.11).
 */
export class OrgPolicyResolver implements PolicyResolver {
  constructor(
    private readonly config: Config,
    private readonly repo: OrgRepository,
  ) {}

  async forUser(userId: string | null): Promise<EffectivePolicy> {
    const memberships = userId === null ? [] : await this.repo.listMembershipsOfUser(userId);
    return resolvePolicy(this.config, memberships);
  }
}

export function resolvePolicy(config: Config, memberships: readonly MembershipWithOrg[]): EffectivePolicy {
  const policies = memberships.map((membership) => parseStoredPolicy(membership.policy));
  const merged = strictestPolicy(policies, basePolicy(config));
  const contextWords = [config.productName, ...new Set(memberships.map((membership) => membership.name))];
  return toEffectivePolicy(merged, contextWords, memberships.map((membership) => membership.org_id), mfaRequiredSince(memberships, policies));
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
