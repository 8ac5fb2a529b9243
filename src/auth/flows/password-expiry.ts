import type { Kysely, Transaction } from 'kysely';
import type { Clock } from '../../clock.js';
import { RampartError } from '../../errors.js';
import type { SecurityEvents } from '../../events/security-events.js';
import type { PiiService, Profile } from '../../pii/pii-service.js';
import type { PolicyResolver } from '../../policy/effective-policy.js';
import type { PasswordTokenRepository } from '../../store/repositories/password-tokens.js';
import type { UserRepository, UserRow } from '../../store/repositories/users.js';
import type { MainDB } from '../../store/schema.js';
import type { PasswordService } from '../password/password-service.js';
import type { LoginGate, LoginGateInput, LoginResult, LoginService, PendingPassword } from './login.js';
import type { PasswordTokens } from './password-tokens.js';
import type { RequestMeta } from './request-meta.js';

export const PASSWORD_EXPIRY_GATE = 'password-expiry';
/** Before the second factor (default order 100): see `LoginGate.order`. */
export const PASSWORD_EXPIRY_GATE_ORDER = 50;
/** The change token of an expired password: long enough to pick a new password, no more. */
export const CHANGE_TOKEN_TTL_MS = 10 * 60_000;
const DAY_MS = 86_400_000;

/**
 * Optional password expiry (the policy's `maxAgeDays`, null = never, the
 * default: NIST 800-63B and ASVS V6.2.10 advise against forced rotation; PCI
 * DSS buyers ask for it). Past the age a correct login creates no session: it
 * answers `{passwordChangeRequired, changeToken}`, and
 * `POST /v1/password/change-expired` checks the new password (policy,
 * history), then resumes the login through the remaining gates.
 *
 * The new password is not committed there. Knowing an expired password proves
 * little (it may be why it expired), so for a user with a second factor the
 * new hash is held on the MFA step (`{mfaRequired, mfaToken, methods}`, the
 * change token consumed) and becomes the password, with its mail, event and
 * revocations, only in the transaction that consumes a proved mfaToken
 * (`POST /v1/login/mfa`). A step that expires or is spent on wrong factors
 * takes the hash with it: the old password stays and no session exists. A
 * user without a factor (or with only an org's enrollment grace) gets the
 * password committed in the transaction that creates the session.
 */
export class PasswordExpiryFlow {
  constructor(
    private readonly db: Kysely<MainDB>,
    private readonly users: UserRepository,
    private readonly pii: PiiService,
    private readonly policies: PolicyResolver,
    private readonly tokenRepo: PasswordTokenRepository,
    private readonly tokens: PasswordTokens,
    private readonly passwords: PasswordService,
    private readonly login: LoginService,
    private readonly events: SecurityEvents,
    private readonly clock: Clock,
  ) {}

  /** The login gate; `createServices` adds it. */
  gate(): LoginGate {
    return {
      name: PASSWORD_EXPIRY_GATE,
      order: PASSWORD_EXPIRY_GATE_ORDER,
      check: (input) => this.#check(input),
    };
  }

  async #check({ user, meta, policy }: LoginGateInput): Promise<Record<string, unknown> | null> {
    const { maxAgeDays } = (await policy()).password;
    if (maxAgeDays === null || this.clock.now() < user.password_changed_at + maxAgeDays * DAY_MS) return null;
    const { token, row } = this.tokens.issue(user.id, 'change', CHANGE_TOKEN_TTL_MS);
    await this.db.transaction().execute(async (trx) => {
      // One change token at a time per account.
      await this.tokenRepo.deleteForUser(user.id, 'change', trx);
      await this.tokenRepo.insert(row, trx);
      await this.events.record({
        action: 'password.expired', actor: { type: 'user', id: user.id }, target: { type: 'user', id: user.id },
        origin: meta, outcome: 'denied',
        details: { maxAgeDays, passwordChangedAt: user.password_changed_at },
      }, trx);
    });
    return { passwordChangeRequired: true, changeToken: token };
  }

  /**
   * Redeems a change token: checks the new password (policy, history, never
   * the expired one again) and hashes it, then resumes the login after this
   * gate with the hash pending. Returns a full login (password committed with
   * the session, other sessions revoked) or the MFA step holding the password.
   * Until one of the two is stored nothing changed and the token is released.
   */
  async changeExpired(changeToken: string, password: string, meta: RequestMeta): Promise<LoginResult> {
    const claimed = await this.tokens.claim(changeToken, 'change', meta);
    let prepared;
    let user;
    let profile;
    try {
      user = await this.users.findById(claimed.userId);
      profile = user ? await this.pii.getProfile(user.id) : null;
      if (!user || !profile || user.status !== 'active') throw new RampartError('invalid_token');
      prepared = await this.passwords.prepare(user, profile, password, { refuseCurrent: true });
    } catch (error) {
      await this.tokens.release(claimed);
      throw error;
    }
    const ready = prepared;
    // Set inside the transactions below; a rollback after them leaves the claim to lapse (a minute).
    let stored = false;
    let committed = false;
    const consume = async (trx: Transaction<MainDB>): Promise<void> => {
      // The user's row before the token's (lock order: see UserRepository.holdRow).
      await this.users.holdRow(claimed.userId, trx);
      if (!(await this.tokenRepo.consume(claimed.tokenHash, claimed.claimId, trx))) throw new RampartError('invalid_token');
    };
    const pendingPassword: PendingPassword = {
      hash: ready.hash,
      hold: async (trx) => {
        await consume(trx);
        stored = true;
      },
      commit: async (trx) => {
        await consume(trx);
        await this.passwords.apply(trx, ready, {
          reason: 'password_changed', via: 'expired', actor: { type: 'user', id: claimed.userId }, meta,
        });
        stored = true;
        committed = true;
      },
    };
    let result: LoginResult;
    try {
      result = await this.login.resume(PASSWORD_EXPIRY_GATE, { user, profile, meta, pendingPassword });
    } catch (error) {
      // Refused before anything was stored (mfa_enrollment_required after the grace): nothing changed.
      if (!stored) await this.tokens.release(claimed);
      throw error;
    }
    if (committed) this.passwords.notifyChanged(profile, 'expired');
    // A gate that interrupted without holding the password dropped it: nothing changed.
    else if (!stored) await this.tokens.release(claimed);
    return result;
  }

  /**
   * The commit of a new password an MFA step held (`MfaService.verifyLoginFactor`
   * runs it in the transaction that consumes the proved mfaToken). The policy
   * (history length) is read now, outside that transaction.
   */
  async prepareHeldCommit(user: UserRow, passwordHash: string, meta: RequestMeta): Promise<(trx: Transaction<MainDB>) => Promise<void>> {
    const policy = await this.policies.forUser(user.id);
    return async (trx) => {
      await this.passwords.apply(trx, { userId: user.id, hash: passwordHash, policy }, {
        reason: 'password_changed', via: 'expired', actor: { type: 'user', id: user.id }, meta,
      });
    };
  }

  /** After a held password was committed: the "password changed" mail. */
  heldCommitted(profile: Pick<Profile, 'email'>): void {
    this.passwords.notifyChanged(profile, 'expired');
  }
}
