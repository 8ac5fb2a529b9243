import type { AuthenticationResponseJSON, AuthenticatorTransportFuture, PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import type { Kysely, Transaction } from 'kysely';
import type { Clock } from '../../clock.js';
import { sha256Hex } from '../../crypto/hash.js';
import { findUnderAnyVersion, KeyVersions, storedHmac } from '../../crypto/hmac-key-versions.js';
import type { Keyring } from '../../crypto/keyring.js';
import { randomId, randomToken } from '../../crypto/random.js';
import { RampartError } from '../../errors.js';
import type { SecurityEventInput, SecurityEvents } from '../../events/security-events.js';
import type { PiiService, Profile } from '../../pii/pii-service.js';
import type { EffectivePolicy, PolicyResolver } from '../../policy/effective-policy.js';
import type { ActiveSession, SessionService } from '../../sessions/session-service.js';
import { isUniqueViolation } from '../../store/errors.js';
import type { MfaRepository, WebAuthnCredentialRow } from '../../store/repositories/mfa.js';
import type { UserRepository, UserRow } from '../../store/repositories/users.js';
import type { MainDB } from '../../store/schema.js';
import type { Actor } from '../../users/account-service.js';
import type { CredentialRevocation, CredentialRevoker } from '../../users/credential-revocation.js';
import type { RequestMeta } from '../flows/request-meta.js';
import { countingMethods, decideMfa, type FactorMethod, graceEndsAt, type LoginMethod, sessionSatisfiesPolicy } from './enforcement.js';
import { generateRecoveryCodes, normalizeRecoveryCode, RECOVERY_CODE_COUNT } from './recovery-codes.js';
import { generateTOTPSecret, matchTOTPStep, totpURI } from './totp.js';
import { authenticationOptions, verifyAuthentication } from './webauthn/authentication.js';
import { registrationOptions, verifyRegistration } from './webauthn/registration.js';
import { relyingPartyFor, type RelyingParty, WEBAUTHN_TIMEOUT_MS } from './webauthn/relying-party.js';

/** The second step of a login lives this long (API.md: 5 minutes). */
export const MFA_TOKEN_TTL_MS = 5 * 60_000;
/** Factor attempts one mfaToken allows; then it dies and the password must be given again. */
export const MFA_TOKEN_MAX_ATTEMPTS = 3;
/** Consecutive failed factor attempts per user before each further attempt must wait. */
export const MFA_FREE_FAILURES = 5;
/** The wait doubles from 1 minute with each further failure, up to this. */
export const MFA_MAX_LOCK_MS = 60 * 60_000;
/** A TOTP enrollment must be confirmed within this time. */
export const TOTP_PENDING_TTL_MS = 15 * 60_000;
/** Named WebAuthn credentials a user may hold (ASVS V2.3.2: a documented limit). */
export const MAX_WEBAUTHN_CREDENTIALS = 10;

/** AAD labels for what is sealed with the user's data key. */
const TOTP_FIELD = 'totp-secret';
const WEBAUTHN_NAME_FIELD = 'webauthn-name';

export type MfaProof =
  | { method: 'totp'; code: string }
  | { method: 'recovery_code'; code: string }
  | { method: 'webauthn'; response: AuthenticationResponseJSON };

export interface MfaChallengeInput {
  user: UserRow;
  profile: Profile;
  meta: RequestMeta;
  /** A new password for an expired one, to hold on the mfaToken until the factor is proved. */
  pendingPassword?: HeldPassword;
  /** The policy the login already resolved (see `LoginGateInput.policy`); read now when absent. */
  policy?: () => Promise<EffectivePolicy>;
}

/** A password that becomes the user's only when the login's second factor is proved. */
export interface HeldPassword {
  /** argon2id hash of the new password. */
  readonly hash: string;
  /** Runs in the transaction that stores the mfaToken holding `hash`. */
  hold(trx: Transaction<MainDB>): Promise<void>;
}

/**
 * Prepares (outside any transaction: SQLite has one connection) the commit of
 * a password an mfaToken held; the returned function makes it the password
 * inside the transaction that consumes the token.
 */
export type HeldPasswordCommitter = (user: UserRow, passwordHash: string) => Promise<(trx: Transaction<MainDB>) => Promise<void>>;

export interface LoginFactorHooks {
  /** Re-checks the password step's gates (the IP allowlist) before any factor is checked; throws to refuse. */
  admit?: (user: UserRow) => Promise<void>;
  /** Commits a password the token held; a token holding one without this hook is refused. */
  commitHeldPassword?: HeldPasswordCommitter;
}

/** The login continues to a session (`enrollBefore`: the session may only enroll a factor until then). */
export type MfaLoginStep =
  | { kind: 'challenge'; body: { mfaRequired: true; mfaToken: string; methods: LoginMethod[] } }
  | { kind: 'continue'; enrollBefore: number | null };

export interface VerifiedFactor {
  user: UserRow;
  profile: Profile;
  method: LoginMethod;
  /** false when the factor proved does not satisfy an org's `mfa.methods` (enrollment-only session). */
  mfaVerified: boolean;
  /** The step held a new password (expired-password change) and it is now the password. */
  passwordChanged: boolean;
}

export interface MfaStatus {
  totp: boolean;
  webauthn: Array<{ id: string; name: string; createdAt: number }>;
  recoveryCodesLeft: number;
  /** The session may only enroll a factor (an org requires one that this session has not proved). */
  enrollmentRequired: boolean;
  /** End of the grace period, when an org requires MFA that the user has not yet enrolled. */
  enrollBefore: number | null;
}

/** A session change the HTTP layer must apply (a new cookie after the session was upgraded). */
export interface RotatedSession {
  secret: string;
}

export interface MfaServiceDeps {
  db: Kysely<MainDB>;
  repo: MfaRepository;
  users: UserRepository;
  pii: PiiService;
  keyring: Keyring;
  sessions: SessionService;
  revocation: CredentialRevocation;
  events: SecurityEvents;
  /** Read on every call: the orgs feature replaces the resolver after wiring. */
  policies: PolicyResolver;
  clock: Clock;
  productName: string;
  /** PUBLIC_URL, known once the server listens. */
  publicUrl: () => string;
}

/** The keyring purpose of the recovery codes' HMAC key (`rampart keys rotate-hmac recovery-code`). */
export const RECOVERY_CODE_KEY_PURPOSE = 'recovery-code';

/**
 * Second factors: TOTP, WebAuthn credentials and recovery codes; the second step
 * of a login (`mfaToken`); failure throttling; org enforcement decisions; and
 * the staff reset. No Fastify here: routes call these methods.
 */
export class MfaService {
  readonly #d: MfaServiceDeps;
  /** The versions of the recovery codes' HMAC key: new sets take the newest, a presented code is tried under each. */
  readonly recoveryCodeKeys: KeyVersions;

  constructor(deps: MfaServiceDeps) {
    this.#d = deps;
    this.recoveryCodeKeys = new KeyVersions(deps.keyring, RECOVERY_CODE_KEY_PURPOSE);
  }

  get relyingParty(): RelyingParty {
    return relyingPartyFor(this.#d.publicUrl(), this.#d.productName);
  }

  // --- what a user has -------------------------------------------------------------

  /** The user's confirmed factors ('totp', 'webauthn'). */
  async methodsOf(userId: string, executor: Kysely<MainDB> | Transaction<MainDB> = this.#d.db): Promise<FactorMethod[]> {
    const [totp, credentials] = await Promise.all([
      this.#d.repo.findTotp(userId, executor),
      this.#d.repo.countCredentials(userId, executor),
    ]);
    const methods: FactorMethod[] = [];
    if (totp && totp.confirmed_at !== null) methods.push('totp');
    if (credentials > 0) methods.push('webauthn');
    return methods;
  }

  async hasFactor(userId: string): Promise<boolean> {
    return (await this.methodsOf(userId)).length > 0;
  }

  async status(userId: string, profile: Profile, session: Pick<ActiveSession, 'mfa_verified' | 'mfa_method'> | null): Promise<MfaStatus> {
    const [totp, credentials, recoveryCodesLeft, policy, state] = await Promise.all([
      this.#d.repo.findTotp(userId),
      this.#d.repo.listCredentials(userId),
      this.#d.repo.countUnusedRecoveryCodes(userId),
      this.#d.policies.forUser(userId),
      this.#d.repo.findUserState(userId),
    ]);
    const own: FactorMethod[] = [];
    if (totp?.confirmed_at != null) own.push('totp');
    if (credentials.length > 0) own.push('webauthn');
    const enrolled = countingMethods(own, policy).length > 0;
    return {
      totp: totp?.confirmed_at != null,
      webauthn: credentials.map((row) => ({
        id: row.id,
        name: this.#d.pii.openForUser(profile, row.name_enc, WEBAUTHN_NAME_FIELD) ?? '',
        createdAt: row.created_at,
      })),
      recoveryCodesLeft,
      enrollmentRequired: session !== null && !sessionSatisfiesPolicy(session, policy),
      enrollBefore: policy.mfa.required && !enrolled ? graceEndsAt(policy, state?.grace_restarted_at ?? null) : null,
    };
  }

  /**
   * When the user must have enrolled a factor their orgs count (the end of the
   * grace period, possibly already past), or null when no org requires one they lack.
   */
  async enrollmentDeadline(userId: string): Promise<number | null> {
    // The policy first: where no factor is required (the common case) that is the only read.
    const policy = await this.#d.policies.forUser(userId);
    if (!policy.mfa.required) return null;
    const [own, state] = await Promise.all([this.methodsOf(userId), this.#d.repo.findUserState(userId)]);
    if (countingMethods(own, policy).length > 0) return null;
    return graceEndsAt(policy, state?.grace_restarted_at ?? null);
  }

  /**
   * Whether a second factor is required of the user, they have none that counts,
   * and the grace period to enroll one is over: their login is refused, and so is
   * every bearer credential they own (API tokens, access JWTs, introspection).
   */
  async isPastEnrollmentDeadline(userId: string): Promise<boolean> {
    const deadline = await this.enrollmentDeadline(userId);
    return deadline !== null && deadline <= this.#d.clock.now();
  }

  /** Whether a session may do more than enroll a factor (org MFA enforcement). */
  async sessionSatisfiesPolicy(session: ActiveSession): Promise<boolean> {
    return sessionSatisfiesPolicy(session, await this.#d.policies.forUser(session.user_id));
  }

  // --- the second step of a login -----------------------------------------------------

  /**
   * The login gate's decision after a correct password. Creates the mfaToken when
   * a factor must be proved; throws `mfa_enrollment_required` when an org
   * requires a factor the user lacks and the grace period is over.
   */
  async startLogin(input: MfaChallengeInput): Promise<MfaLoginStep> {
    const { user, meta } = input;
    const now = this.#d.clock.now();
    const [own, policy] = await Promise.all([
      this.methodsOf(user.id),
      input.policy ? input.policy() : this.#d.policies.forUser(user.id),
    ]);
    // The grace restart counts only where a factor is required and none of the user's
    // counts (see decideMfa): the state is read then, not on every login.
    const state = policy.mfa.required && countingMethods(own, policy).length === 0 ? await this.#d.repo.findUserState(user.id) : undefined;
    const decision = decideMfa({ own, policy, now, graceRestartedAt: state?.grace_restarted_at ?? null });
    switch (decision.kind) {
      case 'none':
        return { kind: 'continue', enrollBefore: null };
      case 'enroll':
        return { kind: 'continue', enrollBefore: decision.enrollBefore };
      case 'refuse':
        await this.#d.events.record({
          action: 'login.failed', actor: { type: 'user', id: user.id }, target: { type: 'user', id: user.id },
          origin: meta, outcome: 'denied', details: { reason: 'mfa_enrollment_required' },
        });
        throw new RampartError('mfa_enrollment_required', {
          publicDetail: `${policy.mfaRequiredByDeployment ? 'This service requires a second factor of every account' : 'An organization requires a second factor'} and the grace period to enroll one is over; ask an administrator to reset your second factor.`,
        });
      case 'challenge': {
        const methods: LoginMethod[] = [...decision.methods];
        if ((await this.#d.repo.countUnusedRecoveryCodes(user.id)) > 0) methods.push('recovery_code');
        const token = randomToken(32);
        await this.#d.repo.deleteExpired(now);
        const row = {
          token_hash: sha256Hex(token),
          user_id: user.id,
          methods: JSON.stringify(methods),
          enrollment_only: decision.enrollmentOnly ? 1 : 0,
          attempts: 0,
          created_at: now,
          expires_at: now + MFA_TOKEN_TTL_MS,
          pending_password_hash: input.pendingPassword?.hash ?? null,
        };
        const held = input.pendingPassword;
        if (held) {
          // The new password of an expired one waits on this step, taken over in one
          // transaction (its change token consumed); it is committed only when the factor is proved.
          await this.#d.db.transaction().execute(async (trx) => {
            await held.hold(trx);
            await this.#d.repo.insertLoginToken(row, trx);
          });
        } else {
          await this.#d.repo.insertLoginToken(row);
        }
        return { kind: 'challenge', body: { mfaRequired: true, mfaToken: token, methods } };
      }
    }
  }

  /** CONTRACTS.md: the `{mfaRequired, mfaToken, methods}` body when a factor must be proved, else null. */
  async beginChallenge(input: MfaChallengeInput): Promise<Record<string, unknown> | null> {
    const step = await this.startLogin(input);
    return step.kind === 'challenge' ? step.body : null;
  }

  /**
   * The credential revoker for half-done logins: an mfaToken was won with the
   * password of the moment, so it ends, with the WebAuthn challenges bound to
   * it and any new password it holds, whenever the user's credentials are
   * revoked (a password change or reset, a lock, a deletion, a factor removed).
   * Counted as `mfa_login_steps` in the event's `details.revoked`.
   */
  revoker(): CredentialRevoker {
    return {
      name: 'mfa_login_steps',
      revokeForUser: async (userId, _reason, transaction) => {
        await this.#d.repo.deleteLoginChallengesOf(userId, transaction);
        return this.#d.repo.deleteLoginTokensOf(userId, transaction);
      },
      revokeEveryone: async (_reason, transaction) => {
        await this.#d.repo.deleteLoginChallengesOf(null, transaction);
        return this.#d.repo.deleteLoginTokensOf(null, transaction);
      },
    };
  }

  /**
   * Deletes expired login steps (with any new password they held, as an
   * argon2id hash) and expired WebAuthn challenges. They are refused anyway;
   * the periodic sweep keeps them from lingering when no new challenge comes.
   */
  async sweepExpired(): Promise<number> {
    return this.#d.repo.deleteExpired(this.#d.clock.now());
  }

  /** WebAuthn request options for the second step of a login; the challenge is bound to the mfaToken. */
  async loginWebAuthnOptions(mfaToken: string): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const now = this.#d.clock.now();
    const tokenHash = sha256Hex(mfaToken);
    const token = await this.#d.repo.findLiveLoginToken(tokenHash, now, MFA_TOKEN_MAX_ATTEMPTS);
    if (!token) throw new RampartError('mfa_token_expired');
    if (!(JSON.parse(token.methods) as string[]).includes('webauthn')) {
      throw new RampartError('invalid_request', { publicDetail: 'This login cannot be completed with a security key or passkey.' });
    }
    const credentials = await this.#d.repo.listCredentials(token.user_id);
    const options = await authenticationOptions(this.relyingParty, credentials.map(toDescriptor));
    await this.#d.repo.putChallenge({
      challenge_hash: sha256Hex(options.challenge),
      user_id: token.user_id,
      purpose: 'login',
      binding: tokenHash,
      expires_at: Math.min(token.expires_at, now + WEBAUTHN_TIMEOUT_MS),
    });
    return options;
  }

  /**
   * Checks the second factor of a login and consumes the mfaToken. Each attempt
   * is reserved on the token (at most 3) and on the user (5 free, then a doubling
   * wait) before the factor is checked, so parallel guesses gain nothing. A
   * password the token held is committed in the transaction that consumes it;
   * a token that dies unproved takes it along, and the old password stays.
   */
  async verifyLoginFactor(mfaToken: string, proof: MfaProof, meta: RequestMeta, hooks: LoginFactorHooks = {}): Promise<VerifiedFactor> {
    const { admit = async () => {}, commitHeldPassword } = hooks;
    const now = this.#d.clock.now();
    const tokenHash = sha256Hex(mfaToken);
    const token = await this.#d.repo.reserveLoginTokenAttempt(tokenHash, now, MFA_TOKEN_MAX_ATTEMPTS);
    if (!token) throw new RampartError('mfa_token_expired');
    const user = await this.#d.users.findById(token.user_id);
    const profile = user ? await this.#d.pii.getProfile(user.id) : null;
    if (!user || !profile) {
      await this.#d.repo.deleteLoginToken(tokenHash);
      throw new RampartError('mfa_token_expired');
    }
    if (user.status !== 'active') {
      await this.#d.repo.deleteLoginToken(tokenHash);
      throw new RampartError('account_locked');
    }
    // The login's other gates (the IP allowlist) hold at this step too, before any factor is checked.
    await admit(user);
    const base = { actor: { type: 'user' as const, id: user.id }, target: { type: 'user', id: user.id }, origin: meta };
    await this.#reserveAttempt(user.id, { ...base, details: { method: proof.method, stage: 'login' } });

    const methods = JSON.parse(token.methods) as LoginMethod[];
    let reason: string | null;
    if (!methods.includes(proof.method)) {
      reason = 'method_not_allowed';
    } else if (proof.method === 'totp') {
      reason = await this.#checkTOTP(user.id, profile, proof.code);
    } else if (proof.method === 'recovery_code') {
      reason = await this.#redeemRecoveryCode(user.id, proof.code);
    } else {
      reason = await this.#checkAssertion(user.id, proof.response, tokenHash);
    }

    if (reason !== null) {
      const spent = token.attempts >= MFA_TOKEN_MAX_ATTEMPTS;
      if (spent) await this.#d.repo.deleteLoginToken(tokenHash);
      await this.#d.events.record({ ...base, action: 'mfa.failed', outcome: 'failure', details: { method: proof.method, stage: 'login', reason, tokenSpent: spent } });
      throw new RampartError('invalid_mfa');
    }
    // Single use: of two requests that both proved a factor, one logs in.
    let commitHeld: ((trx: Transaction<MainDB>) => Promise<void>) | null = null;
    if (token.pending_password_hash !== null) {
      if (!commitHeldPassword) throw new TypeError('an mfaToken holding a password needs commitHeldPassword');
      commitHeld = await commitHeldPassword(user, token.pending_password_hash);
    }
    const consumed = await this.#d.db.transaction().execute(async (trx) => {
      // A held password changes the user's row: that row before the step's (lock order: see UserRepository.holdRow).
      if (commitHeld) await this.#d.users.holdRow(user.id, trx);
      if (!(await this.#d.repo.deleteLoginToken(tokenHash, trx))) return false;
      if (commitHeld) {
        await commitHeld(trx);
        // Other second steps were begun with the old password (and may hold other new ones): they end with it.
        await this.#d.repo.deleteLoginTokensOf(user.id, trx);
      }
      return true;
    });
    if (!consumed) throw new RampartError('mfa_token_expired');
    await this.#d.repo.resetFailures(user.id, now);
    if (proof.method === 'recovery_code') {
      const left = await this.#d.repo.countUnusedRecoveryCodes(user.id);
      await this.#d.events.record({ ...base, action: 'recovery_code.used', outcome: 'success', details: { left } });
    }
    return { user, profile, method: proof.method, mfaVerified: token.enrollment_only === 0, passwordChanged: commitHeld !== null };
  }

  /** The step-up verifier for `{totp}` (POST /v1/me/reauth): throttled and replay-proof like login. */
  async verifyTOTPForStepUp(userId: string, code: string, meta: RequestMeta | null = null): Promise<boolean> {
    const profile = await this.#d.pii.getProfile(userId);
    if (!profile) return false;
    const base = { actor: { type: 'user' as const, id: userId }, target: { type: 'user', id: userId }, origin: meta };
    await this.#reserveAttempt(userId, { ...base, details: { method: 'totp', stage: 'reauth' } });
    const reason = await this.#checkTOTP(userId, profile, code);
    if (reason !== null) return false;
    await this.#d.repo.resetFailures(userId, this.#d.clock.now());
    return true;
  }

  // --- TOTP enrollment ---------------------------------------------------------------------

  /** Starts (or restarts) a TOTP enrollment: a new seed, pending until confirmed. */
  async startTOTPEnrollment(userId: string, profile: Profile): Promise<{ secret: string; otpauthUri: string }> {
    const existing = await this.#d.repo.findTotp(userId);
    if (existing?.confirmed_at != null) throw new RampartError('totp_already_enabled');
    const secret = generateTOTPSecret();
    const stored = await this.#d.repo.putPendingTotp({
      user_id: userId,
      secret_enc: this.#d.pii.sealForUser(profile, secret, TOTP_FIELD),
      created_at: this.#d.clock.now(),
      confirmed_at: null,
      last_used_step: null,
    });
    if (!stored) throw new RampartError('totp_already_enabled');
    return { secret, otpauthUri: totpURI(secret, this.#d.productName, profile.email) };
  }

  /**
   * Confirms a pending TOTP with a code from the app: turns it on, issues ten
   * recovery codes (old ones die) and, when the session had not proved a factor,
   * upgrades it (a new secret: privilege change, ASVS V7.2.4).
   */
  async confirmTOTP(session: ActiveSession, profile: Profile, code: string, meta: RequestMeta): Promise<{ recoveryCodes: string[]; rotated: RotatedSession | null }> {
    const userId = session.user_id;
    const now = this.#d.clock.now();
    const row = await this.#d.repo.findTotp(userId);
    if (!row || row.confirmed_at !== null) throw new RampartError('totp_not_pending');
    if (now - row.created_at >= TOTP_PENDING_TTL_MS) {
      await this.#d.repo.deletePendingTotp(userId);
      throw new RampartError('totp_not_pending', { publicDetail: 'The enrollment expired; start again.' });
    }
    const base = { actor: { type: 'user' as const, id: userId }, target: { type: 'user', id: userId }, origin: meta };
    await this.#reserveAttempt(userId, { ...base, details: { method: 'totp', stage: 'enroll' } });
    const secret = this.#openTOTPSecret(profile, row.secret_enc);
    const step = matchTOTPStep(secret, code, now);
    if (step === null) {
      await this.#d.events.record({ ...base, action: 'mfa.failed', outcome: 'failure', details: { method: 'totp', stage: 'enroll', reason: 'invalid' } });
      throw new RampartError('invalid_mfa');
    }
    const codes = generateRecoveryCodes();
    const codeRows = await this.#recoveryCodeRows(userId, codes, now);
    const rotated = await this.#d.db.transaction().execute(async (trx) => {
      await this.#lockUser(userId, now, trx);
      if (!(await this.#d.repo.confirmTotp(userId, now, step, trx))) throw new RampartError('totp_not_pending');
      await this.#d.repo.replaceRecoveryCodes(userId, codeRows, trx);
      await this.#d.users.update(userId, { mfa_enabled: 1 }, trx);
      const upgraded = await this.#upgradeSession(session, 'totp', trx);
      await this.#d.events.record({ ...base, action: 'totp.enrolled', outcome: 'success', details: { sessionUpgraded: upgraded !== null } }, trx);
      await this.#d.events.record({ ...base, action: 'recovery_codes.generated', outcome: 'success', details: { count: codes.length } }, trx);
      return upgraded;
    });
    await this.#d.repo.resetFailures(userId, now);
    return { recoveryCodes: codes, rotated };
  }

  /** Removes TOTP; other sessions end (ASVS V7.4.3). `409 mfa_required_by_org` when it is the last factor an org counts. */
  async removeTOTP(session: ActiveSession, meta: RequestMeta): Promise<void> {
    await this.#removeFactor(session, meta, 'totp', async (trx) => this.#d.repo.deleteTotp(session.user_id, trx), null);
  }

  // --- WebAuthn enrollment -------------------------------------------------------------------

  async webAuthnRegistrationOptions(session: ActiveSession, profile: Profile): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const now = this.#d.clock.now();
    const credentials = await this.#d.repo.listCredentials(session.user_id);
    if (credentials.length >= MAX_WEBAUTHN_CREDENTIALS) throw new RampartError('webauthn_limit_reached');
    const options = await registrationOptions(
      this.relyingParty,
      { id: session.user_id, name: profile.email, displayName: profile.name ?? profile.email },
      credentials.map(toDescriptor),
    );
    await this.#d.repo.deleteExpired(now);
    await this.#d.repo.putChallenge({
      challenge_hash: sha256Hex(options.challenge),
      user_id: session.user_id,
      purpose: 'register',
      binding: session.public_id,
      expires_at: now + WEBAUTHN_TIMEOUT_MS,
    });
    return options;
  }

  /** Verifies an attestation made for this session's challenge and stores the credential under `name`. */
  async registerWebAuthn(session: ActiveSession, profile: Profile, name: string, response: RegistrationResponseJSON, meta: RequestMeta): Promise<{ id: string; name: string; rotated: RotatedSession | null }> {
    const userId = session.user_id;
    const base = { actor: { type: 'user' as const, id: userId }, target: { type: 'user', id: userId }, origin: meta };
    const outcome = await verifyRegistration(this.relyingParty, response, async (challenge) =>
      this.#d.repo.consumeChallenge(sha256Hex(challenge), userId, 'register', session.public_id, this.#d.clock.now()));
    if (!outcome.ok) {
      await this.#d.events.record({ ...base, action: 'mfa.failed', outcome: 'failure', details: { method: 'webauthn', stage: 'enroll', reason: outcome.reason } });
      throw new RampartError('webauthn_registration_failed', { detail: outcome.reason });
    }
    const now = this.#d.clock.now();
    const id = randomId('wac');
    const { credential } = outcome;
    try {
      const rotated = await this.#d.db.transaction().execute(async (trx) => {
        await this.#lockUser(userId, now, trx);
        if ((await this.#d.repo.countCredentials(userId, trx)) >= MAX_WEBAUTHN_CREDENTIALS) throw new RampartError('webauthn_limit_reached');
        await this.#d.repo.insertCredential({
          id,
          user_id: userId,
          credential_id: credential.credentialId,
          public_key: Buffer.from(credential.publicKey).toString('base64url'),
          counter: credential.counter,
          transports: credential.transports ? JSON.stringify(credential.transports) : null,
          device_type: credential.deviceType,
          backed_up: credential.backedUp ? 1 : 0,
          name_enc: this.#d.pii.sealForUser(profile, name, WEBAUTHN_NAME_FIELD),
          created_at: now,
          last_used_at: null,
        }, trx);
        await this.#d.users.update(userId, { mfa_enabled: 1 }, trx);
        const upgraded = await this.#upgradeSession(session, 'webauthn', trx);
        await this.#d.events.record({ ...base, action: 'webauthn.registered', target: { type: 'webauthn_credential', id }, outcome: 'success', details: { sessionUpgraded: upgraded !== null } }, trx);
        return upgraded;
      });
      return { id, name, rotated };
    } catch (error) {
      if (isUniqueViolation(error)) throw new RampartError('conflict', { publicDetail: 'This authenticator is already registered.' });
      throw error;
    }
  }

  async removeWebAuthn(session: ActiveSession, id: string, meta: RequestMeta): Promise<void> {
    await this.#removeFactor(session, meta, 'webauthn', async (trx) => this.#d.repo.deleteCredential(session.user_id, id, trx), { type: 'webauthn_credential', id });
  }

  // --- recovery codes ------------------------------------------------------------------------------

  /** Ten new codes; the old ones die. Needs a factor for them to back up. */
  async regenerateRecoveryCodes(userId: string, meta: RequestMeta): Promise<string[]> {
    const now = this.#d.clock.now();
    const codes = generateRecoveryCodes();
    const rows = await this.#recoveryCodeRows(userId, codes, now);
    await this.#d.db.transaction().execute(async (trx) => {
      await this.#lockUser(userId, now, trx);
      if ((await this.methodsOf(userId, trx)).length === 0) throw new RampartError('mfa_not_enabled');
      await this.#d.repo.replaceRecoveryCodes(userId, rows, trx);
      await this.#d.events.record({
        action: 'recovery_codes.generated', actor: { type: 'user', id: userId }, target: { type: 'user', id: userId },
        origin: meta, outcome: 'success', details: { count: codes.length },
      }, trx);
    });
    return codes;
  }

  /** Redeems a code outside a login (tests of single use; the login path uses the same statement). */
  async redeemRecoveryCode(userId: string, code: string): Promise<boolean> {
    return (await this.#redeemRecoveryCode(userId, code)) === null;
  }

  // --- staff ----------------------------------------------------------------------------------------

  /**
   * Removes every factor and recovery code of a user, ends their sessions
   * (reason `mfa_reset`) and restarts their org-MFA grace period, in one
   * transaction with its audit event. For staff (POST /v1/admin/users/{id}/reset-mfa).
   */
  async reset(userId: string, actor: Actor, meta: RequestMeta | null): Promise<void> {
    const now = this.#d.clock.now();
    await this.#d.db.transaction().execute(async (trx) => {
      const user = await this.#d.users.findById(userId, trx);
      if (!user) throw new RampartError('not_found');
      await this.#d.users.update(userId, { mfa_enabled: 0, updated_at: now }, trx);
      const totp = await this.#d.repo.deleteTotp(userId, trx);
      const webauthn = await this.#d.repo.deleteCredentials(userId, trx);
      const recoveryCodes = await this.#d.repo.deleteRecoveryCodes(userId, trx);
      await this.#d.repo.deleteLoginTokensOf(userId, trx);
      await this.#d.repo.deleteChallengesOf(userId, trx);
      await this.#d.repo.restartGrace(userId, now, trx);
      const revoked = await this.#d.revocation.revokeAllForUser(userId, 'mfa_reset', trx);
      await this.#d.events.record({
        action: 'mfa.reset', actor, target: { type: 'user', id: userId }, origin: meta,
        outcome: 'success', details: { totp, webauthn, recoveryCodes, revoked },
      }, trx);
    });
  }

  // --- internals -----------------------------------------------------------------------------------

  /**
   * Reserves one factor attempt for the user: the count grows before the check
   * and a success resets it. After MFA_FREE_FAILURES, each attempt must wait
   * 1, 2, 4 … minutes (at most an hour) after the previous one: 6-digit codes
   * cannot be guessed online (ASVS V6.6.3), while only someone who knows the
   * password can cause the wait. Compare-and-set on the count: parallel
   * requests cannot slip past it.
   */
  async #reserveAttempt(userId: string, event: Omit<SecurityEventInput, 'action' | 'outcome'>): Promise<void> {
    const now = this.#d.clock.now();
    for (let round = 0; round < 8; round++) {
      const state = await this.#d.repo.findUserState(userId);
      if (!state) {
        await this.#d.repo.ensureUserState(userId, now);
        continue;
      }
      if (state.locked_until !== null && state.locked_until > now) {
        await this.#d.events.record({ ...event, action: 'mfa.failed', outcome: 'denied', details: { ...event.details, reason: 'throttled' } });
        throw new RampartError('rate_limited', {
          publicDetail: 'Too many failed second-factor attempts; wait before trying again.',
          headers: { 'retry-after': String(Math.max(1, Math.ceil((state.locked_until - now) / 1000))) },
        });
      }
      const failures = state.failures + 1;
      const lockedUntil = failures >= MFA_FREE_FAILURES ? now + Math.min(2 ** (failures - MFA_FREE_FAILURES) * 60_000, MFA_MAX_LOCK_MS) : null;
      if (await this.#d.repo.casFailures(userId, state.failures, failures, lockedUntil, now)) return;
    }
    throw new RampartError('rate_limited', { headers: { 'retry-after': '1' } });
  }

  /** null when the code is valid for a step not used before; else why not. */
  async #checkTOTP(userId: string, profile: Profile, code: string): Promise<string | null> {
    const row = await this.#d.repo.findTotp(userId);
    if (!row || row.confirmed_at === null) return 'no_totp';
    const step = matchTOTPStep(this.#openTOTPSecret(profile, row.secret_enc), code, this.#d.clock.now());
    if (step === null) return 'invalid';
    // RFC 6238 §5.2: "the verifier MUST NOT accept the second attempt of the same OTP
    // after the successful validation has been issued for the first OTP".
    if (!(await this.#d.repo.useTotpStep(userId, step))) return 'replayed';
    return null;
  }

  async #redeemRecoveryCode(userId: string, input: string): Promise<string | null> {
    const code = normalizeRecoveryCode(input);
    if (code === null) return 'malformed';
    const now = this.#d.clock.now();
    const { found } = await findUnderAnyVersion(this.recoveryCodeKeys, `${userId}:${code}`,
      async (codeHash) => (await this.#d.repo.useRecoveryCode(userId, codeHash, now)) || undefined);
    return found ? null : 'invalid';
  }

  async #checkAssertion(userId: string, response: AuthenticationResponseJSON, tokenHash: string): Promise<string | null> {
    const row = await this.#d.repo.findCredentialByCredentialId(userId, response.id);
    if (!row) return 'unknown_credential';
    const outcome = await verifyAuthentication(this.relyingParty, response, {
      credentialId: row.credential_id,
      publicKey: new Uint8Array(Buffer.from(row.public_key, 'base64url')),
      counter: row.counter,
      transports: parseTransports(row.transports),
    }, async (challenge) => this.#d.repo.consumeChallenge(sha256Hex(challenge), userId, 'login', tokenHash, this.#d.clock.now()));
    if (!outcome.ok) return outcome.reason;
    if (!(await this.#d.repo.updateCredentialCounter(row.id, row.counter, outcome.newCounter, this.#d.clock.now()))) return 'counter_race';
    return null;
  }

  async #recoveryCodeRows(userId: string, codes: string[], now: number) {
    if (codes.length !== RECOVERY_CODE_COUNT) throw new TypeError('unexpected recovery code count');
    // Read now, not as held: a rotation must not leave new codes under the old key for a minute.
    const key = (await this.recoveryCodeKeys.reread())[0]!;
    return codes.map((code) => ({
      id: randomId('rc'),
      user_id: userId,
      code_hash: storedHmac(key, `${userId}:${normalizeRecoveryCode(code)!}`),
      created_at: now,
      used_at: null,
    }));
  }

  #openTOTPSecret(profile: Profile, sealed: string): string {
    // openForUser throws when the ciphertext does not authenticate; null cannot come from a stored value.
    const secret = this.#d.pii.openForUser(profile, sealed, TOTP_FIELD);
    if (secret === null) throw new Error(`no TOTP secret for ${profile.userId}`);
    return secret;
  }

  /**
   * Serializes factor changes of one user: the first write of the transaction
   * takes the user row's lock (PostgreSQL; SQLite serializes every write), so
   * two removals cannot each see the other's factor and leave none.
   */
  async #lockUser(userId: string, now: number, trx: Transaction<MainDB>): Promise<void> {
    await this.#d.users.update(userId, { updated_at: now }, trx);
  }

  /** Marks the session MFA-verified after it proved a new factor; a new secret goes with it. */
  async #upgradeSession(session: ActiveSession, method: FactorMethod, trx: Transaction<MainDB>): Promise<RotatedSession | null> {
    if (session.mfa_verified === 1) return null;
    const rotated = await this.#d.sessions.rotate(session.id_hash, { mfa_verified: 1, mfa_method: method }, trx);
    if (!rotated) throw new RampartError('unauthenticated');
    return { secret: rotated.secret };
  }

  async #removeFactor(
    session: ActiveSession,
    meta: RequestMeta,
    method: FactorMethod,
    remove: (trx: Transaction<MainDB>) => Promise<boolean>,
    target: { type: string; id: string } | null,
  ): Promise<void> {
    const userId = session.user_id;
    const now = this.#d.clock.now();
    // Read before the transaction: on SQLite a query outside it would wait for it forever.
    const policy: EffectivePolicy = await this.#d.policies.forUser(userId);
    await this.#d.db.transaction().execute(async (trx) => {
      await this.#lockUser(userId, now, trx);
      const before = await this.methodsOf(userId, trx);
      if (!(await remove(trx))) throw new RampartError('not_found');
      const after = await this.methodsOf(userId, trx);
      // The last factor the effective policy counts, or the last one some requiring org counts
      // (they differ when the orgs accept no method in common).
      const loses = (methods: EffectivePolicy['mfa']['methods']) => {
        const rule = { mfa: { ...policy.mfa, methods } };
        return countingMethods(before, rule).length > 0 && countingMethods(after, rule).length === 0;
      };
      if (policy.mfa.required && (loses(policy.mfa.methods) || policy.orgMfa.some((org) => loses(org.methods)))) {
        throw new RampartError('mfa_required_by_org', {
          publicDetail: policy.mfaRequiredByDeployment
            ? 'This service requires a second factor of every account; add another one (of a kind your organizations accept) before removing this one.'
            : 'An organization you belong to requires a second factor; add another one before removing this one.',
        });
      }
      if (after.length === 0) {
        await this.#d.repo.deleteRecoveryCodes(userId, trx);
        await this.#d.users.update(userId, { mfa_enabled: 0 }, trx);
      }
      const revoked = await this.#d.revocation.revokeAllForUser(userId, 'factor_removed', trx, { exceptSessionIdHash: session.id_hash });
      await this.#d.events.record({
        action: method === 'totp' ? 'totp.removed' : 'webauthn.removed',
        actor: { type: 'user', id: userId },
        target: target ?? { type: 'user', id: userId },
        origin: meta, outcome: 'success',
        details: { revoked, factorsLeft: after.length },
      }, trx);
    });
  }
}

function parseTransports(value: string | null): AuthenticatorTransportFuture[] | undefined {
  if (value === null) return undefined;
  const parsed = JSON.parse(value) as unknown;
  return Array.isArray(parsed) ? (parsed as AuthenticatorTransportFuture[]) : undefined;
}

function toDescriptor(row: WebAuthnCredentialRow): { id: string; transports: AuthenticatorTransportFuture[] | undefined } {
  return { id: row.credential_id, transports: parseTransports(row.transports) };
}
