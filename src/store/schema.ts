/**
 * Row types of both stores. Conventions, chosen to behave the same on SQLite and
 * PostgreSQL: times are epoch milliseconds (bigint), booleans are integers 0/1,
 * binary values (ciphertexts, wrapped keys) are base64url text, ids are text.
 * Each domain adds its tables here, beside a migration that creates them.
 */

/** Main store: accounts, sessions, credentials, policies, audit. No email or name. */
export interface MainDB {
  users: UserTable;
  sessions: SessionTable;
  keyring: KeyringTable;
  api_tokens: ApiTokenTable;
  orgs: OrgTable;
  org_memberships: OrgMembershipTable;
  org_invitations: OrgInvitationTable;
  staff_roles: StaffRoleTable;
  staff_assumptions: StaffAssumptionTable;
  audit_events: AuditEventTable;
  audit_head: AuditHeadTable;
  audit_prune_permit: { id: number };
  signing_keys: SigningKeyTable;
  audit_event_orgs: { org_id: string; seq: number };
  mfa_totp: MfaTotpTable;
  mfa_recovery_codes: MfaRecoveryCodeTable;
  mfa_webauthn_credentials: MfaWebAuthnCredentialTable;
  mfa_login_tokens: MfaLoginTokenTable;
  mfa_webauthn_challenges: MfaWebAuthnChallengeTable;
  mfa_user_state: MfaUserStateTable;
  password_history: PasswordHistoryTable;
  password_tokens: PasswordTokenTable;
  login_throttle: LoginThrottleTable;
  jobs: JobTable;
  webhooks: WebhookTable;
  server_settings: ServerSettingTable;
}

export interface UserTable {
  id: string;
  /** 'active' | 'locked' */
  status: string;
  /** argon2id PHC string (or an imported bcrypt hash until the next login). */
  password_hash: string;
  password_changed_at: number;
  email_verified: number;
  mfa_enabled: number;
  created_at: number;
  updated_at: number;
}

export interface SessionTable {
  /** SHA-256 (hex) of the cookie secret; the secret itself is never stored. */
  id_hash: string;
  /** Public handle for listing and revoking; never the secret. */
  public_id: string;
  user_id: string;
  created_at: number;
  last_seen_at: number;
  /** Absolute expiry (login time + absolute timeout). */
  expires_at: number;
  idle_timeout_ms: number;
  mfa_verified: number;
  /** Which factor completed login (null: password only). */
  mfa_method: string | null;
  /** Last step-up (POST /v1/me/reauth) time, or null. */
  reauth_at: number | null;
  /** Client address and user agent, encrypted under the user's data key. */
  ip_enc: string | null;
  user_agent_enc: string | null;
}

/** A user's TOTP factor (one per user); pending until `confirmed_at` is set. */
export interface MfaTotpTable {
  user_id: string;
  /** The base32 seed sealed with the user's data key (AES-256-GCM); never in clear. */
  secret_enc: string;
  created_at: number;
  confirmed_at: number | null;
  /** The last RFC 6238 time step accepted; a code of this step or an earlier one is refused (§5.2). */
  last_used_step: number | null;
}

/** Single-use recovery codes: 120 random bits each, stored as HMAC-SHA256 under a keyring key. */
export interface MfaRecoveryCodeTable {
  id: string;
  user_id: string;
  code_hash: string;
  created_at: number;
  used_at: number | null;
}

/** WebAuthn credentials (passkeys, security keys): public keys only. */
export interface MfaWebAuthnCredentialTable {
  /** Public handle (`wac_…`). */
  id: string;
  user_id: string;
  /** The authenticator's credential id, base64url. */
  credential_id: string;
  /** COSE public key, base64url. */
  public_key: string;
  /** Last signature counter seen (a counter that does not grow betrays a cloned authenticator). */
  counter: number;
  /** JSON array of transports, or null. */
  transports: string | null;
  /** 'singleDevice' | 'multiDevice' */
  device_type: string;
  backed_up: number;
  /** The user's name for it, sealed with the user's data key. */
  name_enc: string;
  created_at: number;
  last_used_at: number | null;
}

/** The pending second step of a login (`mfaToken`): SHA-256 of a 256-bit secret, 5 minutes, single use. */
export interface MfaLoginTokenTable {
  token_hash: string;
  user_id: string;
  /** JSON array of the methods this login may complete with. */
  methods: string;
  /** 1: the factors at hand do not satisfy an org's `mfa.methods`; the session will only enroll. */
  enrollment_only: number;
  /** Factor attempts made with this token (reserved before each check). */
  attempts: number;
  created_at: number;
  expires_at: number;
  /**
   * argon2id hash of the new password chosen for an expired one: it becomes the
   * password only when this step's factor is proved (null: an ordinary login).
   */
  pending_password_hash: string | null;
}

/** Outstanding WebAuthn challenges: single use, expiring, bound to a session or an mfaToken. */
export interface MfaWebAuthnChallengeTable {
  /** SHA-256 of the challenge. */
  challenge_hash: string;
  user_id: string;
  /** 'register' | 'login' */
  purpose: string;
  /** Session public id (register) or mfaToken hash (login). */
  binding: string;
  expires_at: number;
}

/** Per-user second-factor state: failure throttle and an admin-restarted grace period. */
export interface MfaUserStateTable {
  user_id: string;
  /** Consecutive factor attempts not (yet) followed by a success. */
  failures: number;
  locked_until: number | null;
  /** When an admin reset restarted the org-MFA grace period for this user. */
  grace_restarted_at: number | null;
  updated_at: number;
}

/** Passwords a user had before the current one (issue: password security). */
export interface PasswordHistoryTable {
  user_id: string;
  /** 1, 2, 3… per user, in the order the passwords were replaced. */
  seq: number;
  /** argon2id PHC string (or an imported bcrypt hash). */
  password_hash: string;
  /** When it stopped being the current password. */
  replaced_at: number;
}

/** Single-use tokens of the password flows, stored as SHA-256 of 256 random bits. */
export interface PasswordTokenTable {
  token_hash: string;
  user_id: string;
  /** 'reset' (mailed link) | 'change' (expired password at login). */
  purpose: string;
  created_at: number;
  expires_at: number;
  /** Set while one redemption is in progress (parallel redemptions fail fast). */
  claim_id: string | null;
  claim_expires_at: number | null;
}

/** Facts about the deployment shared by every instance (e.g. when MFA_REQUIRED_FOR_ALL took effect). */
export interface ServerSettingTable {
  name: string;
  value: string;
  updated_at: number;
}

/** Random purpose keys (CSRF, token HMAC, signing keys…), each wrapped by the master key. */
export interface KeyringTable {
  purpose: string;
  version: number;
  wrapped_key: string;
  created_at: number;
}

/** API tokens (issue 5). Only an HMAC of the token is stored; the token is shown once. */
export interface ApiTokenTable {
  /** Public handle (`tok_…`) for listing and revoking. */
  id: string;
  /** HMAC-SHA256 (keyring purpose `api-token`, base64url) of the whole token. */
  token_hash: string;
  user_id: string;
  /** The org the token is bound to, or null. */
  org_id: string | null;
  name: string;
  /** Space-separated scopes. */
  scopes: string;
  /** The first characters of the token (`rpat_` + 4), to recognise it in a list; not enough to use it. */
  prefix: string;
  created_at: number;
  /** null only when RAMPART_INSECURE_ALLOW_ETERNAL_API_TOKENS allowed an eternal token. */
  expires_at: number | null;
  last_used_at: number | null;
  /** Last client address, encrypted under the owner's data key. */
  last_used_ip_enc: string | null;
  revoked_at: number | null;
  revoked_reason: string | null;
}

export interface OrgTable {
  id: string;
  name: string;
  slug: string;
  /** The org policy document as JSON (validated before it is written). */
  policy: string;
  /** When mfa.required was last turned on (epoch ms); null while it is off. */
  mfa_required_since: number | null;
  created_at: number;
  updated_at: number;
}

export interface OrgMembershipTable {
  org_id: string;
  user_id: string;
  /** 'owner' | 'admin' | 'auditor' | 'member' */
  role: string;
  joined_at: number;
}

export interface OrgInvitationTable {
  id: string;
  org_id: string;
  /** Keyed blind index (HMAC) of the invited address; the address itself lives nowhere in this store. */
  email_index: string;
  role: string;
  /** SHA-256 (hex) of the mailed 256-bit token. */
  token_hash: string;
  invited_by: string | null;
  created_at: number;
  expires_at: number;
  accepted_at: number | null;
  accepted_by: string | null;
}

/** One hash-chained audit event (append-only: triggers refuse UPDATE and unpermitted DELETE). */
export interface AuditEventTable {
  seq: number;
  id: string;
  time: number;
  org_id: string | null;
  actor_type: string;
  actor_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  /** The user the event concerns (actor or target), for the user's security feed. */
  user_id: string | null;
  /** Client address and user agent, AES-256-GCM under the keyring's "audit" key. */
  ip_enc: string | null;
  user_agent_enc: string | null;
  outcome: string;
  /** JSON text. */
  details: string;
  request_id: string | null;
  prev_hash: string;
  hash: string;
}

/** The durable queue of after-commit work (issue 7): alert evaluation and mail, webhook deliveries. */
export interface JobTable {
  id: string;
  kind: string;
  /** JSON; ids only, never personal data or secrets. */
  payload: string;
  ref: string | null;
  run_at: number;
  attempts: number;
  locked_until: number;
  last_error: string | null;
  failed_at: number | null;
  created_at: number;
}

/** An org's webhook endpoint (issue 7). */
export interface WebhookTable {
  id: string;
  org_id: string;
  url: string;
  /** JSON array of event actions, or ["*"]. */
  events: string;
  /** The signing secret, AES-256-GCM under the keyring's "webhook-secret" key. */
  secret_enc: string;
  created_by: string | null;
  created_at: number;
  /** When a delivery last reached the receiver (2xx). */
  last_delivered_at: number | null;
  last_failed_at: number | null;
  /** A `DeliveryFailureReason`, never the raw error. */
  last_failure_reason: string | null;
  /** The receiver's HTTP status when the reason is `http_status`. */
  last_failure_status: number | null;
  /** After a rollover: the previous secret, sealed like `secret_enc`, still signing until it expires. */
  previous_secret_enc: string | null;
  previous_secret_expires_at: number | null;
}

/** Login back-off counters (issue 7): an account, or an account with one client address. */
export interface LoginThrottleTable {
  /** HMAC (keyring purpose "login-throttle") of the email's blind index, alone or with the address. */
  key: string;
  failures: number;
  last_failure_at: number;
  /** Attempts are refused until then (epoch ms; 0 when not blocked). */
  blocked_until: number;
  /** Pairs only: the last successful login of the account from this address. */
  succeeded_at: number | null;
}

/** The single row (id 1) holding the chain head and its anchor (first retained event). */
export interface AuditHeadTable {
  id: number;
  seq: number;
  hash: string;
  first_seq: number;
  first_prev_hash: string;
}

/** Access-JWT signing keys (issue 5). */
export interface SigningKeyTable {
  kid: string;
  /** JWS algorithm: 'EdDSA' (Ed25519). */
  alg: string;
  /** Public JWK as JSON. */
  public_jwk: string;
  /** PKCS#8 DER (base64url) wrapped by the master key; null once retired (key destroyed). */
  private_key_wrapped: string | null;
  created_at: number;
  /** When it stopped signing; it stays in the JWKS until its last token has expired. */
  retired_at: number | null;
}

/** A staff role granted by `rampart staff grant` (dormant until assumed). */
export interface StaffRoleTable {
  user_id: string;
  /** 'support' | 'operator' | 'security' | 'auditor' */
  role: string;
  granted_at: number;
  granted_by: string | null;
}

/** The staff role a session has assumed (at most one), with the reason given and its expiry. */
export interface StaffAssumptionTable {
  session_public_id: string;
  user_id: string;
  role: string;
  reason: string;
  assumed_at: number;
  expires_at: number;
}

/** PII store: personal data, encrypted per user (envelope encryption). */
export interface PiiDB {
  pii_users: PiiUserTable;
  pii_known_values: PiiKnownValueTable;
  keyring: KeyringTable;
}

/** What alert rules remember per user (issue 7): HMACs under a key derived from the user's data key. */
export interface PiiKnownValueTable {
  user_id: string;
  /** 'ip' | 'device' | 'token:<id>' */
  kind: string;
  value_hash: string;
  first_seen_at: number;
  last_seen_at: number;
}

export interface PiiUserTable {
  user_id: string;
  /** HMAC-SHA256 blind index of the normalized email, for lookups. */
  email_index: string;
  email_enc: string;
  name_enc: string | null;
  /** The user's data key, wrapped by the master key. Deleting it shreds the data. */
  wrapped_dek: string;
  created_at: number;
  updated_at: number;
}
