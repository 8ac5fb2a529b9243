/**
 * The org security policy (API.md "Policy"): its schema, its secure defaults and
 * how several orgs' policies combine for one user (the strictest wins).
 * Storage and the HTTP API belong to the orgs feature; every feature reads the
 * policy through this model.
 */

export interface OrgPolicy {
  password: {
    minLength: number;
    minStrength: number;
    historyCount: number;
    /** null: passwords never expire (the default; NIST 800-63B, ASVS V6.2.10). */
    maxAgeDays: number | null;
    blockCommon: boolean;
  };
  mfa: {
    required: boolean;
    methods: Array<'totp' | 'webauthn'>;
    gracePeriodHours: number;
  };
  session: {
    idleTimeoutMinutes: number;
    absoluteTimeoutHours: number;
  };
  network: {
    /** IPv4/IPv6 CIDRs; empty allows every address. */
    ipAllowlist: string[];
  };
  tokens: {
    maxLifetimeDays: number;
  };
}

// Frozen to the leaves: copies share nothing with it (see copyOrgPolicy), and a
// mistaken write through one would throw instead of changing every later default.
export const DEFAULT_ORG_POLICY: Readonly<OrgPolicy> = Object.freeze({
  password: Object.freeze({ minLength: 12, minStrength: 3, historyCount: 5, maxAgeDays: null, blockCommon: true }),
  mfa: Object.freeze({ required: false, methods: Object.freeze(['totp', 'webauthn']), gracePeriodHours: 72 }),
  session: Object.freeze({ idleTimeoutMinutes: 60, absoluteTimeoutHours: 12 }),
  network: Object.freeze({ ipAllowlist: Object.freeze([]) }),
  tokens: Object.freeze({ maxLifetimeDays: 90 }),
}) as unknown as Readonly<OrgPolicy>;

/** Limits a policy may not go beyond: the secure floor (ASVS L2, NIST 800-63B). */
export const POLICY_LIMITS = {
  minLength: { min: 8, max: 64 },
  minStrength: { min: 0, max: 4 },
  historyCount: { min: 0, max: 24 },
  maxAgeDays: { min: 1, max: 3650 },
  gracePeriodHours: { min: 0, max: 720 },
  idleTimeoutMinutes: { min: 1, max: 1440 },
  absoluteTimeoutHours: { min: 1, max: 720 },
  ipAllowlist: { maxItems: 100 },
  maxLifetimeDays: { min: 1, max: 366 },
} as const;

/**
 * JSON schema of a full policy document (PUT replaces the whole policy; every
 * member is required so a client cannot weaken a setting by omitting it).
 * CIDR syntax is checked again by `parseCIDR` in the orgs service.
 */
export const orgPolicySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['password', 'mfa', 'session', 'network', 'tokens'],
  properties: {
    password: {
      type: 'object',
      additionalProperties: false,
      required: ['minLength', 'minStrength', 'historyCount', 'maxAgeDays', 'blockCommon'],
      properties: {
        minLength: { type: 'integer', minimum: POLICY_LIMITS.minLength.min, maximum: POLICY_LIMITS.minLength.max },
        minStrength: { type: 'integer', minimum: POLICY_LIMITS.minStrength.min, maximum: POLICY_LIMITS.minStrength.max },
        historyCount: { type: 'integer', minimum: POLICY_LIMITS.historyCount.min, maximum: POLICY_LIMITS.historyCount.max },
        maxAgeDays: { type: ['integer', 'null'], minimum: POLICY_LIMITS.maxAgeDays.min, maximum: POLICY_LIMITS.maxAgeDays.max },
        blockCommon: { type: 'boolean' },
      },
    },
    mfa: {
      type: 'object',
      additionalProperties: false,
      required: ['required', 'methods', 'gracePeriodHours'],
      properties: {
        required: { type: 'boolean' },
        methods: { type: 'array', minItems: 1, maxItems: 2, uniqueItems: true, items: { type: 'string', enum: ['totp', 'webauthn'] } },
        gracePeriodHours: { type: 'integer', minimum: POLICY_LIMITS.gracePeriodHours.min, maximum: POLICY_LIMITS.gracePeriodHours.max },
      },
    },
    session: {
      type: 'object',
      additionalProperties: false,
      required: ['idleTimeoutMinutes', 'absoluteTimeoutHours'],
      properties: {
        idleTimeoutMinutes: { type: 'integer', minimum: POLICY_LIMITS.idleTimeoutMinutes.min, maximum: POLICY_LIMITS.idleTimeoutMinutes.max },
        absoluteTimeoutHours: { type: 'integer', minimum: POLICY_LIMITS.absoluteTimeoutHours.min, maximum: POLICY_LIMITS.absoluteTimeoutHours.max },
      },
    },
    network: {
      type: 'object',
      additionalProperties: false,
      required: ['ipAllowlist'],
      properties: {
        ipAllowlist: { type: 'array', maxItems: POLICY_LIMITS.ipAllowlist.maxItems, uniqueItems: true, items: { type: 'string', minLength: 2, maxLength: 64 } },
      },
    },
    tokens: {
      type: 'object',
      additionalProperties: false,
      required: ['maxLifetimeDays'],
      properties: {
        maxLifetimeDays: { type: 'integer', minimum: POLICY_LIMITS.maxLifetimeDays.min, maximum: POLICY_LIMITS.maxLifetimeDays.max },
      },
    },
  },
} as const;

/**
 * The body `PUT /v1/orgs/{orgId}/policy` takes: the policy, or any part of it (every section
 * and every member optional, nothing unknown); what is left out keeps its current value
 * (`mergePolicy`), so sending `{"mfa": {"required": true}}` cannot reset the allowlist.
 */
export const orgPolicyUpdateSchema = {
  ...orgPolicySchema,
  required: [],
  properties: Object.fromEntries(Object.entries(orgPolicySchema.properties).map(([name, section]) => [name, { ...section, required: [] }])),
} as const;

/** `current` with the members `update` names replaced (arrays whole); the result is validated by the caller. */
export function mergePolicy(current: Readonly<OrgPolicy>, update: unknown): unknown {
  if (typeof update !== 'object' || update === null || Array.isArray(update)) return update;
  const merged: Record<string, unknown> = { ...copyOrgPolicy(current) };
  for (const [name, section] of Object.entries(update)) {
    const base = merged[name];
    merged[name] = typeof section === 'object' && section !== null && !Array.isArray(section) && typeof base === 'object' && base !== null
      ? { ...base, ...section }
      : section;
  }
  return merged;
}

/** A deep copy of the default policy. */
export function defaultOrgPolicy(): OrgPolicy {
  return copyOrgPolicy(DEFAULT_ORG_POLICY);
}

/**
 * A deep copy of a policy. Written out rather than `structuredClone`, which
 * serializes the whole object graph and cost more than the rest of a login's
 * policy resolution (it ran two or three times per login). The sections hold
 * scalars and two string arrays; a new array member must be copied here too.
 */
export function copyOrgPolicy(policy: Readonly<OrgPolicy>): OrgPolicy {
  return {
    password: { ...policy.password },
    mfa: copyMfaPolicy(policy.mfa),
    session: { ...policy.session },
    network: { ...policy.network, ipAllowlist: [...policy.network.ipAllowlist] },
    tokens: { ...policy.tokens },
  };
}

function copyMfaPolicy(mfa: Readonly<OrgPolicy['mfa']>): OrgPolicy['mfa'] {
  return { ...mfa, methods: [...mfa.methods] };
}

/**
 * The strictest combination of several policies, for a user in several orgs:
 * longer and stronger passwords, longer history, the earliest expiry, MFA if any
 * org requires it (methods every requiring org accepts, the shortest grace),
 * the shortest session limits and token lifetimes. IP allowlists are not merged:
 * each applies to its own org.
 */
export function strictestPolicy(policies: readonly OrgPolicy[], base: OrgPolicy = defaultOrgPolicy()): OrgPolicy {
  const result = copyOrgPolicy(base);
  for (const policy of policies) {
    result.password.minLength = Math.max(result.password.minLength, policy.password.minLength);
    result.password.minStrength = Math.max(result.password.minStrength, policy.password.minStrength);
    result.password.historyCount = Math.max(result.password.historyCount, policy.password.historyCount);
    result.password.maxAgeDays = minNullable(result.password.maxAgeDays, policy.password.maxAgeDays);
    result.password.blockCommon ||= policy.password.blockCommon;
    if (policy.mfa.required) {
      if (result.mfa.required) {
        result.mfa.methods = result.mfa.methods.filter((method) => policy.mfa.methods.includes(method));
        result.mfa.gracePeriodHours = Math.min(result.mfa.gracePeriodHours, policy.mfa.gracePeriodHours);
      } else {
        result.mfa = copyMfaPolicy(policy.mfa);
      }
    }
    result.session.idleTimeoutMinutes = Math.min(result.session.idleTimeoutMinutes, policy.session.idleTimeoutMinutes);
    result.session.absoluteTimeoutHours = Math.min(result.session.absoluteTimeoutHours, policy.session.absoluteTimeoutHours);
    result.tokens.maxLifetimeDays = Math.min(result.tokens.maxLifetimeDays, policy.tokens.maxLifetimeDays);
  }
  result.network.ipAllowlist = [];
  return result;
}

function minNullable(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.min(a, b);
}
