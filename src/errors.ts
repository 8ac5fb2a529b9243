/**
 * The one registry of public error codes (fastify keeps FST_ERR_* in one file).
 *
 * Two kinds of failure exist, as in jose:
 *  - programmer or configuration mistakes throw at once (TypeError, ConfigError);
 *  - untrusted input that fails becomes a RampartError with a stable `code`.
 *
 * A shipped code is never renamed or reused. `test/contract/errors.test.ts` checks
 * this table against the codes that API.md documents.
 */

export const ERRORS = {
  // generic request problems
  invalid_request: { status: 400, title: 'The request is not valid' },
  invalid_json: { status: 400, title: 'The request body is not valid JSON' },
  unauthenticated: { status: 401, title: 'Authentication is required' },
  forbidden: { status: 403, title: 'Not allowed' },
  csrf_failed: { status: 403, title: 'Missing or invalid CSRF token' },
  not_found: { status: 404, title: 'Not found' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  conflict: { status: 409, title: 'Conflict' },
  payload_too_large: { status: 413, title: 'Request body too large' },
  request_headers_too_large: { status: 431, title: 'Request headers too large' },
  request_timeout: { status: 408, title: 'The request did not arrive in time' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type' },
  rate_limited: { status: 429, title: 'Too many requests' },
  rate_limiter_unavailable: { status: 503, title: 'Rate limiting is unavailable; retry shortly' },

  // webhooks (issue 7)
  webhook_url_not_allowed: { status: 400, title: 'The webhook URL is not allowed' },
  webhook_limit_reached: { status: 409, title: 'The organization has reached its webhook limit' },
  internal_error: { status: 500, title: 'Internal server error' },
  server_busy: { status: 503, title: 'The server is busy; retry shortly' },
  not_ready: { status: 503, title: 'The service is not ready' },
  mail_unavailable: { status: 503, title: 'Mail cannot be sent right now; retry shortly' },

  // accounts and login
  invalid_credentials: { status: 401, title: 'Invalid email or password' },
  weak_password: { status: 400, title: 'The password does not meet the policy' },
  email_taken: { status: 409, title: 'An account with this email already exists' },
  already_verified: { status: 409, title: 'The email address is already verified' },
  account_locked: { status: 403, title: 'The account is locked' },
  ip_not_allowed: { status: 403, title: 'Access from this address is not allowed' },

  // passwords (issue: password security)
  invalid_token: { status: 400, title: 'The token is invalid or expired' },
  password_reused: { status: 400, title: 'The password was used recently' },

  // second factors
  invalid_mfa: { status: 401, title: 'The second factor is not valid' },
  mfa_token_expired: { status: 401, title: 'The MFA step expired; log in again' },
  mfa_enrollment_required: { status: 403, title: 'A second factor must be enrolled first' },
  mfa_required_by_org: { status: 409, title: 'An organization requires a second factor' },
  reauth_required: { status: 403, title: 'Recent re-authentication is required' },
  totp_already_enabled: { status: 409, title: 'TOTP is already turned on; remove it before enrolling again' },
  totp_not_pending: { status: 409, title: 'No TOTP enrollment is waiting for confirmation' },
  mfa_not_enabled: { status: 409, title: 'Turn on a second factor first' },
  webauthn_registration_failed: { status: 400, title: 'The security key or passkey registration could not be verified' },
  webauthn_limit_reached: { status: 409, title: 'Too many security keys and passkeys; remove one first' },

  // tokens and scopes
  insufficient_scope: { status: 403, title: 'The token lacks the required scope' },
  invalid_token_format: { status: 401, title: 'The bearer token is malformed' },
  token_limit_reached: { status: 409, title: 'Too many live API tokens' },

  // organizations
  would_lock_out_self: { status: 409, title: 'The change would lock you out' },
  last_owner: { status: 409, title: 'An organization must keep at least one owner' },
  slug_taken: { status: 409, title: 'An organization with this slug already exists' },
  already_member: { status: 409, title: 'This address already belongs to a member' },
  org_limit_reached: { status: 409, title: 'You own as many organizations as allowed' },
  invitation_limit_reached: { status: 409, title: 'The organization has as many pending invitations as allowed' },
  staff_mfa_required: { status: 403, title: 'Staff roles need an account with a second factor and a session that used it' },
  invitation_email_mismatch: { status: 403, title: 'The invitation was sent to another address; sign in with that one' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERRORS;

export interface RampartErrorOptions {
  /** Private detail for the log; never sent to the client. */
  detail?: string;
  /** Public detail; safe for any client to read. */
  publicDetail?: string;
  /** Extra public members of the problem body (e.g. `reasons` for weak_password). */
  extensions?: Record<string, unknown>;
  /** Response headers (e.g. Retry-After). */
  headers?: Record<string, string>;
  cause?: unknown;
}

/** A failure caused by untrusted input or state; becomes an RFC 9457 problem body. */
export class RampartError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly title: string;
  readonly publicDetail: string | undefined;
  readonly extensions: Record<string, unknown> | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(code: ErrorCode, options: RampartErrorOptions = {}) {
    super(options.detail ?? ERRORS[code].title, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RampartError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.title = ERRORS[code].title;
    this.publicDetail = options.publicDetail;
    this.extensions = options.extensions;
    this.headers = options.headers;
  }
}

/** A configuration mistake: refuses start-up with a one-line reason. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export function isRampartError(error: unknown): error is RampartError {
  return error instanceof RampartError;
}
