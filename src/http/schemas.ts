/**
 * Shared JSON schemas. Every request schema sets additionalProperties:false and
 * bounds every string; every route declares its response schema, so a handler
 * can never leak a field it did not mean to (fast-json-stringify drops the rest).
 */

/** An email address: one @, a dot in the domain, no whitespace or control characters (no header injection). */
export const emailSchema = {
  type: 'string',
  minLength: 3,
  maxLength: 254,
  pattern: '^[^\\s@\\p{Cc}]+@[^\\s@\\p{Cc}]+\\.[^\\s@\\p{Cc}]+$',
} as const;

/** A password: bounded here; length and strength rules give `weak_password` reasons. */
export const passwordSchema = { type: 'string', minLength: 1, maxLength: 1024 } as const;

/** A display name: no control characters or line separators. */
export const nameSchema = { type: 'string', minLength: 1, maxLength: 200, pattern: '^[^\\p{Cc}\\u2028\\u2029]+$' } as const;

/** An opaque id in a path. */
export const idParamSchema = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' } as const;

export const userSchema = {
  type: 'object',
  required: ['id', 'email', 'name', 'emailVerified', 'mfaEnabled', 'createdAt'],
  properties: {
    id: { type: 'string' },
    email: { type: 'string' },
    name: { type: ['string', 'null'] },
    emailVerified: { type: 'boolean' },
    mfaEnabled: { type: 'boolean' },
    createdAt: { type: 'string' },
  },
} as const;

export const sessionSchema = {
  type: 'object',
  required: ['id', 'createdAt', 'lastSeenAt', 'expiresAt', 'mfaVerified', 'ip', 'userAgent'],
  properties: {
    id: { type: 'string' },
    createdAt: { type: 'string' },
    lastSeenAt: { type: 'string' },
    expiresAt: { type: 'string' },
    mfaVerified: { type: 'boolean' },
    ip: { type: ['string', 'null'] },
    userAgent: { type: ['string', 'null'] },
    current: { type: 'boolean' },
  },
} as const;

export const loginResponseSchema = {
  type: 'object',
  properties: {
    user: userSchema,
    session: sessionSchema,
    csrfToken: { type: 'string' },
    mfaRequired: { type: 'boolean' },
    mfaToken: { type: 'string' },
    methods: { type: 'array', items: { type: 'string' } },
    passwordChangeRequired: { type: 'boolean' },
    changeToken: { type: 'string' },
    enrollmentRequired: { type: 'boolean' },
    enrollBefore: { type: 'string' },
  },
} as const;
