import type { Kysely, Transaction } from 'kysely';
import type { Clock } from '../../clock.js';
import { RampartError } from '../../errors.js';
import type { SecurityEvents } from '../../events/security-events.js';
import type { PiiService, Profile } from '../../pii/pii-service.js';
import type { EffectivePolicy, PolicyResolver } from '../../policy/effective-policy.js';
import type { IssuedSession, SessionService } from '../../sessions/session-service.js';
import type { UserRepository, UserRow } from '../../store/repositories/users.js';
import type { MainDB } from '../../store/schema.js';
import { type PublicUser, toPublicUser } from '../../users/public-user.js';
import type { PasswordHasher } from '../password/hasher.js';
import type { RequestMeta } from './request-meta.js';

export interface LoginGateInput {
  user: UserRow;
  profile: Profile;
  meta: RequestMeta;
  /**
   * The user's effective policy, resolved on first call and shared by every gate
   * of this login and by its session (one resolution per login request).
   */
  policy(): Promise<EffectivePolicy>;
  /**
   * Extra public members a gate that lets the login continue adds to the login
   * body (e.g. `enrollmentRequired` for an org-MFA enrollment-only session).
   */
  responseExtras: Record<string, unknown>;
  /**
   * A new password chosen for an expired one (resumed logins only). It is not
   * the password yet: a gate that interrupts this login must `hold` it on what
   * it stores (the MFA step does), and a login that reaches the session
   * `commit`s it in the session's transaction.
   */
  pendingPassword?: PendingPassword;
}

/** See `LoginGateInput.pendingPassword` and `PasswordExpiryFlow`. */
export interface PendingPassword {
  /** argon2id hash of the new password; policy and history are already checked. */
  readonly hash: string;
  /** Runs in the transaction that stores the interruption holding `hash` (consumes the change token). */
  hold(trx: Transaction<MainDB>): Promise<void>;
  /** Runs first in the transaction that creates the session: makes `hash` the password. */
  commit(trx: Transaction<MainDB>): Promise<void>;
}

/**
 * A step between a verified password and a session (second factor, password
 * expiry, IP allowlist, org MFA enforcement…). It throws a RampartError to
 * refuse, returns a response body to interrupt the login (no session is made),
 * or returns null to let the login continue.
 */
export interface LoginGate {
  readonly name: string;
  /**
   * Where the gate runs: lower first, equal values in the order added. Default
   * 100. Password expiry is 50, so a user with an expired password changes it
   * before the second factor (MFA, default order) and the MFA step cannot skip it.
   */
  readonly order?: number;
  /** Every gate of a login gets the same input: read-only but for `responseExtras`. */
  check(input: LoginGateInput): Promise<Record<string, unknown> | null>;
}

export const DEFAULT_GATE_ORDER = 100;
/**
 * Brute-force defence around the password check (the rate-limit feature wires
 * one). `beforeAttempt` throws (429) to refuse without checking the password;
 * the other two are told the outcome. Unknown emails go through the same calls.
 */
export interface LoginAttemptGuard {
  beforeAttempt(email: string, meta: RequestMeta): Promise<void>;
  failed(email: string, userId: string | null, meta: RequestMeta): Promise<void>;
  succeeded(email: string, userId: string, meta: RequestMeta): Promise<void>;
}

export interface CompletedLogin {
  kind: 'session';
  user: PublicUser;
  issued: IssuedSession;
  csrfToken: string;
  profile: Profile;
  /** Members added to the login body by gates (see LoginGateInput.responseExtras). */
  responseExtras?: Record<string, unknown>;
}

export type LoginResult = CompletedLogin | { kind: 'interrupted'; body: Record<string, unknown> };

export interface CompleteLoginInput {
  user: UserRow;
  profile: Profile;
  meta: RequestMeta;
  mfaVerified: boolean;
  mfaMethod: string | null;
  /** Runs first in the session's transaction (a pending password's commit): both happen or neither. */
  beforeSession?: (trx: Transaction<MainDB>) => Promise<void>;
  /** The policy the login's gates already resolved; read now when absent. */
  policy?: () => Promise<EffectivePolicy>;
}

/**
 * Password login. Unknown email and wrong password take the same path through
 * one argon2 verification (a dummy hash for unknown users) and end in the same
 * `invalid_credentials`, so neither the body nor the timing tells them apart.
 */
export class LoginService {
  readonly #gates: LoginGate[] = [];
  #guard: LoginAttemptGuard | null = null;

  constructor(
    private readonly db: Kysely<MainDB>,
    private readonly users: UserRepository,
    private readonly pii: PiiService,
    private readonly hasher: PasswordHasher,
    private readonly sessions: SessionService,
    private readonly policies: PolicyResolver,
    private readonly events: SecurityEvents,
    private readonly clock: Clock,
  ) {}

  /** Adds a gate; gates run by `order`, then in the order they were added. */
  addGate(gate: LoginGate): void {
    const order = gate.order ?? DEFAULT_GATE_ORDER;
    const index = this.#gates.findIndex((other) => (other.order ?? DEFAULT_GATE_ORDER) > order);
    if (index === -1) this.#gates.push(gate);
    else this.#gates.splice(index, 0, gate);
  }

  /**
   * Continues an interrupted login after the step that interrupted it (an
   * expired password given a replacement): the gates after `gateName` run (the
   * second factor among them), then the session is created. A pending password
   * goes to the gates; when none interrupts, it is committed with the session.
   */
  async resume(gateName: string, input: Omit<LoginGateInput, 'responseExtras' | 'policy'>): Promise<LoginResult> {
    const index = this.#gates.findIndex((gate) => gate.name === gateName);
    if (index === -1) throw new TypeError(`no login gate named ${gateName}`);
    return this.#runGates(this.#gates.slice(index + 1), input);
  }

  setAttemptGuard(guard: LoginAttemptGuard): void {
    this.#guard = guard;
  }

  async login(email: string, password: string, meta: RequestMeta): Promise<LoginResult> {
    await this.#guard?.beforeAttempt(email, meta);
    const userId = await this.pii.findUserIdByEmail(email);
    const user = userId ? await this.users.findById(userId) : undefined;
    const profile = user ? await this.pii.getProfile(user.id) : null;
    if (!user || !profile) {
      await this.hasher.verifyDummy(password);
      await this.events.record({
        action: 'login.failed', actor: { type: 'anonymous', id: null }, origin: meta,
        outcome: 'failure', details: { reason: 'unknown_account' },
      });
      await this.#guard?.failed(email, null, meta);
      throw new RampartError('invalid_credentials');
    }
    const { valid, needsRehash } = await this.hasher.verify(user.password_hash, password);
    if (!valid) {
      await this.events.record({
        action: 'login.failed', actor: { type: 'user', id: user.id }, target: { type: 'user', id: user.id },
        origin: meta, outcome: 'failure', details: { reason: 'bad_password' },
      });
      await this.#guard?.failed(email, user.id, meta);
      throw new RampartError('invalid_credentials');
    }
    await this.#guard?.succeeded(email, user.id, meta);
    if (user.status !== 'active') {
      await this.events.record({
        action: 'login.failed', actor: { type: 'user', id: user.id }, target: { type: 'user', id: user.id },
        origin: meta, outcome: 'denied', details: { reason: 'account_locked' },
      });
      throw new RampartError('account_locked');
    }
    if (needsRehash) {
      // Upgrade imported or weaker hashes while the plaintext is at hand.
      const previous = user.password_hash;
      const from = previous.startsWith('$2') ? 'bcrypt' : previous.split('$')[1] ?? 'unknown';
      const upgraded = await this.hasher.hash(password);
      await this.db.transaction().execute(async (trx) => {
        if (!(await this.users.replacePasswordHash(user.id, previous, upgraded, this.clock.now(), trx))) return;
        user.password_hash = upgraded;
        await this.events.record({
          action: 'password.rehashed', actor: { type: 'system', id: null }, target: { type: 'user', id: user.id },
          origin: meta, outcome: 'success', details: { from, to: 'argon2id' },
        }, trx);
      });
    }
    return this.#runGates(this.#gates, { user, profile, meta });
  }

  /**
   * Checks the password of a known account outside a login (step-up, password
   * change) under the login's brute-force guard: it counts in the same back-off
   * as a login, and while that holds even the right password is refused (429).
   * A stolen session must not become a way to guess the password that the
   * login's back-off does not see (ASVS V6.3.1, V6.3.4).
   */
  async verifyPasswordOf(user: UserRow, email: string, password: string, meta: RequestMeta): Promise<boolean> {
    await this.#guard?.beforeAttempt(email, meta);
    const { valid } = await this.hasher.verify(user.password_hash, password);
    if (valid) await this.#guard?.succeeded(email, user.id, meta);
    else await this.#guard?.failed(email, user.id, meta);
    return valid;
  }

  /**
   * Runs the gates in turn (the first that answers interrupts the login), then
   * creates the session, committing a pending password in its transaction. The
   * policy is resolved at most once, for the gates and the session alike.
   */
  async #runGates(gates: readonly LoginGate[], input: Omit<LoginGateInput, 'responseExtras' | 'policy'>): Promise<LoginResult> {
    const { user, profile, meta, pendingPassword } = input;
    const policy = oncePerLogin(() => this.policies.forUser(user.id));
    const responseExtras: Record<string, unknown> = {};
    // One input for every gate, built member by member: a spread copy per gate cost
    // more than some gates' checks.
    const gateInput: LoginGateInput = pendingPassword ? { user, profile, meta, policy, responseExtras, pendingPassword } : { user, profile, meta, policy, responseExtras };
    for (const gate of gates) {
      const body = await gate.check(gateInput);
      if (body) return { kind: 'interrupted', body };
    }
    const completed = await this.completeLogin({
      user,
      profile,
      meta,
      policy,
      mfaVerified: false,
      mfaMethod: null,
      ...(pendingPassword ? { beforeSession: (trx: Transaction<MainDB>) => pendingPassword.commit(trx) } : {}),
    });
    return Object.keys(responseExtras).length > 0 ? { ...completed, responseExtras } : completed;
  }

  /** Creates the session of a finished login (also the last step of MFA and expired-password flows). */
  async completeLogin(input: CompleteLoginInput): Promise<CompletedLogin> {
    const policy = await (input.policy ? input.policy() : this.policies.forUser(input.user.id));
    const issued = await this.db.transaction().execute(async (trx) => {
      await input.beforeSession?.(trx);
      const created = await this.sessions.create({
        userId: input.user.id,
        profile: input.profile,
        ip: input.meta.ip,
        userAgent: input.meta.userAgent,
        mfaVerified: input.mfaVerified,
        mfaMethod: input.mfaMethod,
        limits: policy.session,
      }, trx);
      await this.events.record({
        action: 'login.succeeded', actor: { type: 'user', id: input.user.id }, target: { type: 'session', id: created.row.public_id },
        origin: input.meta, outcome: 'success',
        details: { mfa: input.mfaVerified, method: input.mfaMethod ?? 'password' },
      }, trx);
      return created;
    });
    return {
      kind: 'session',
      user: toPublicUser(input.user, input.profile),
      issued,
      csrfToken: await this.sessions.csrfToken(issued.row.public_id),
      profile: input.profile,
    };
  }
}

/**
 * The first call's promise, shared by every later call. A factory rather than a
 * local arrow: tsx keeps function names, and naming a fresh closure (an
 * `Object.defineProperty`) on every login cost more than the closure itself.
 */
function oncePerLogin<T>(resolve: () => Promise<T>): () => Promise<T> {
  let resolved: Promise<T> | undefined;
  return () => (resolved ??= resolve());
}
