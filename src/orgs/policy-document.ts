import { Ajv } from 'ajv';
import { RampartError } from '../errors.js';
import { invalidCIDRs } from '../net/cidr.js';
import { defaultOrgPolicy, type OrgPolicy, orgPolicySchema } from '../policy/org-policy.js';

const ajv = new Ajv({ removeAdditional: false, useDefaults: false, coerceTypes: false, allErrors: false, strict: true });
const isValidPolicyShape = ajv.compile<OrgPolicy>(orgPolicySchema as object);

/**
 * Checks a whole policy document: the JSON schema (every member required,
 * bounded, no unknown members) and then each allowlist entry with `parseCIDR`
 * (strict syntax, no host bits below the prefix, no zone ids). Throws
 * `invalid_request` naming what is wrong.
 */
export function assertValidPolicy(input: unknown): OrgPolicy {
  if (!isValidPolicyShape(input)) {
    const issue = isValidPolicyShape.errors?.[0];
    throw new RampartError('invalid_request', { publicDetail: `The policy ${issue?.instancePath || '/'} ${issue?.message ?? 'is invalid'}.` });
  }
  const bad = invalidCIDRs(input.network.ipAllowlist);
  if (bad.length > 0) {
    throw new RampartError('invalid_request', {
      publicDetail: 'network.ipAllowlist holds entries that are not IPv4/IPv6 CIDRs with a clean network address.',
      extensions: { invalidEntries: bad.slice(0, 10) },
    });
  }
  return structuredClone(input);
}

/**
 * A stored policy, read back. Members missing from an older document take their
 * secure default, so a policy written before a new setting existed still loads.
 */
export function parseStoredPolicy(json: string): OrgPolicy {
  const stored = JSON.parse(json) as Partial<Record<keyof OrgPolicy, object>>;
  const policy = defaultOrgPolicy();
  for (const section of Object.keys(policy) as Array<keyof OrgPolicy>) {
    const value = stored[section];
    if (value && typeof value === 'object') Object.assign(policy[section], value);
  }
  return policy;
}
