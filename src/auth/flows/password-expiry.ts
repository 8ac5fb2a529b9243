import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import { RampartError } from '../../errors.js';
import type { SecurityEvents } from '../../events/security-events.js';
import type { PiiService } from '../../pii/pii-service.js';
import type { PolicyResolver } from '../../policy/effective-policy.js';
import type { PasswordTokenRepository } from '../../store/repositories/password-tokens.js';
import type { UserRepository } from '../../store/repositories/users.js';
import type { MainDB } from '../../store/schema.js';
import type { PasswordService } from '../password/password-service.js';
import type { LoginGate, LoginGateInput, LoginResult, LoginService } from './login.js';
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
 * `POST /v1/password/change-expired` sets the new password, then resumes the
 * login through the remaining gates — the second factor among them, so a user
 * with MFA still proves it before any session exists.
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

  async #check({ user, meta }: LoginGateInput): Promise<Record<string, unknown> | null> {
    const { maxAgeDays } = (await this.policies.forUser(user.id)).password;
    if (maxAgeDays === null || this.clock.now() < user.password_changed_at + maxAgeDays * DAY_MS) return null;
    const { token, row } = this.tokens.issue(user.id, 'change', CHANGE_TOKEN_TTL_MS);
    await this.db.transaction().execute(async (trx) => {
      // One change token at a time per account.
      await this.tokenRepo.deleteForUser(user.id, 'change', trx);
      await this.tokenRepo.insert(row, trx);
      await this.events.record({
        action: 'password.expired', actor: { type: 'user', id: user.id }, target: { type: 'user', id: user.id },
        ip: meta.ip, userAgent: meta.userAgent, outcome: 'denied',
        details: { maxAgeDays, passwordChangedAt: user.password_changed_at },
      }, trx);
    });
    return { passwordChangeRequired: true, changeToken: token };
  }

  /**
   * Redeems a change token: sets the new password (policy, history, and never
   * the expired one again), revokes the user's sessions, then resumes the login
   * after this gate. Returns a full login, or the next interruption (MFA).
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
    await this.db.transaction().execute(async (trx) => {
      if (!(await this.tokenRepo.consume(claimed.tokenHash, claimed.claimId, trx))) throw new RampartError('invalid_token');
      await this.passwords.apply(trx, prepared, {
        reason: 'password_changed', via: 'expired', actor: { type: 'user', id: claimed.userId }, meta,
      });
    });
    this.passwords.notifyChanged(profile, 'expired');
    const updated = await this.users.findById(claimed.userId);
    if (!updated) throw new RampartError('invalid_token');
    return this.login.resume(PASSWORD_EXPIRY_GATE, { user: updated, profile, meta });
  }
}
