import type { Kysely } from 'kysely';
import type { BackgroundTasks } from '../../background-tasks.js';
import { RampartError } from '../../errors.js';
import type { SecurityEvents } from '../../events/security-events.js';
import type { Mailer } from '../../mail/mailer.js';
import type { PiiService } from '../../pii/pii-service.js';
import type { PasswordTokenRepository } from '../../store/repositories/password-tokens.js';
import type { UserRepository } from '../../store/repositories/users.js';
import type { MainDB } from '../../store/schema.js';
import type { PasswordService } from '../password/password-service.js';
import type { AddressProof } from './email-verification.js';
import type { MailedLinkOptions, PasswordTokens } from './password-tokens.js';
import type { RequestMeta } from './request-meta.js';

/** A reset link lives 30 minutes (OWASP Forgot Password Cheat Sheet: short-lived, single use). */
export const RESET_TOKEN_TTL_MS = 30 * 60_000;

/** How many reset mails an account may still receive (the rate-limit feature wires one). */
export interface ResetMailBudget {
  /** Takes one mail from the account's budget: false when it is spent; throws when its store does not answer. */
  takeResetMail(userId: string): Promise<boolean>;
}

export type PasswordResetOptions = MailedLinkOptions;

/**
 * Forgotten passwords.
 *
 * `requestReset` answers the same, in the same time, whether or not the
 * address belongs to an account (no enumeration, ASVS V6.3.8): everything that
 * depends on the account — the look-up, the token, the mail — runs off the
 * request path, so the response has nothing to wait for in either case. An
 * account's reset mails are budgeted per hour (anyone who knows the address can
 * ask): past the budget nothing is sent and the last link stays valid.
 *
 * `reset` redeems the link once, applies policy and history, revokes every
 * session and session-derived credential, and signs nobody in: the next login
 * goes through every gate, the second factor included (ASVS V6.4.3).
 */
export class PasswordResetFlow {
  #mailBudget: ResetMailBudget | null = null;

  constructor(
    private readonly db: Kysely<MainDB>,
    private readonly users: UserRepository,
    private readonly pii: PiiService,
    private readonly tokenRepo: PasswordTokenRepository,
    private readonly tokens: PasswordTokens,
    private readonly passwords: PasswordService,
    private readonly events: SecurityEvents,
    private readonly mailer: Mailer,
    private readonly background: BackgroundTasks,
    private readonly options: PasswordResetOptions,
  ) {}

  setMailBudget(budget: ResetMailBudget): void {
    this.#mailBudget = budget;
  }

  /** Called inside a completed reset's transaction: the mailed link proved the user's address. */
  #addressProof: AddressProof | null = null;

  /** The one proof of address (email verification); set once at wiring. */
  setAddressProof(proof: AddressProof): void {
    this.#addressProof = proof;
  }

  /** Returns at once; the account-dependent work happens in the background. */
  requestReset(email: string, meta: RequestMeta): void {
    this.background.run('password-reset-request', () => this.#sendResetLink(email, meta));
  }

  async #sendResetLink(email: string, meta: RequestMeta): Promise<void> {
    const userId = await this.pii.findUserIdByEmail(email);
    const user = userId ? await this.users.findById(userId) : undefined;
    const profile = user ? await this.pii.getProfile(user.id) : null;
    const base = { origin: meta };
    if (!user || !profile || user.status !== 'active') {
      await this.events.record({
        ...base, action: 'password.reset_requested', actor: { type: 'anonymous', id: null },
        ...(user ? { target: { type: 'user', id: user.id } } : {}),
        outcome: 'failure', details: { reason: user ? 'account_not_active' : 'unknown_account' },
      });
      return;
    }
    // A budget store that does not answer throws: the task fails, logged, and nothing is sent
    // (a mail a stranger can trigger is not worth failing open for).
    if (this.#mailBudget && !(await this.#mailBudget.takeResetMail(user.id))) {
      // Nothing changes: no mail, and the link already sent (if any) stays the valid one.
      await this.events.record({
        ...base, action: 'password.reset_requested', actor: { type: 'anonymous', id: null }, target: { type: 'user', id: user.id },
        outcome: 'denied', details: { reason: 'reset_mail_budget_spent' },
      });
      return;
    }
    const { token, row } = this.tokens.issue(user.id, 'reset', RESET_TOKEN_TTL_MS);
    await this.db.transaction().execute(async (trx) => {
      // A newer request voids every older link of the account.
      const voided = await this.tokenRepo.deleteForUser(user.id, 'reset', trx);
      await this.tokenRepo.insert(row, trx);
      await this.events.record({
        ...base, action: 'password.reset_requested', actor: { type: 'anonymous', id: null }, target: { type: 'user', id: user.id },
        outcome: 'success', details: { voided },
      }, trx);
    });
    const link = `${this.options.publicUrl()}/reset-password?token=${token}`;
    // To the address on file, never the one typed (which may differ in case or Unicode form).
    await this.mailer.send({
      to: profile.email,
      subject: `Reset your ${this.options.productName} password`,
      text: [
        `Someone asked to reset the password of the ${this.options.productName} account for this address.`,
        'To choose a new password, open this link within 30 minutes:',
        '',
        link,
        '',
        'The link works once. If you did not ask for it, ignore this mail: your password has not changed.',
        '',
      ].join('\n'),
    });
  }

  /** Sets a new password through a reset link. Throws invalid_token, weak_password or password_reused. */
  async reset(token: string, password: string, meta: RequestMeta): Promise<void> {
    const claimed = await this.tokens.claim(token, 'reset', meta);
    let prepared;
    let profile;
    try {
      const user = await this.users.findById(claimed.userId);
      profile = user ? await this.pii.getProfile(user.id) : null;
      if (!user || !profile || user.status !== 'active') throw new RampartError('invalid_token');
      prepared = await this.passwords.prepare(user, profile, password);
    } catch (error) {
      // The user may try again with a better password while the link is valid.
      await this.tokens.release(claimed);
      throw error;
    }
    await this.db.transaction().execute(async (trx) => {
      // The user's row before the link's (lock order: see UserRepository.holdRow).
      await this.users.holdRow(claimed.userId, trx);
      // Voided by a newer request or a password change since the claim: nothing happens.
      if (!(await this.tokenRepo.consume(claimed.tokenHash, claimed.claimId, trx))) throw new RampartError('invalid_token');
      // The mailed link proves the address: the user's row now, its event after every row lock.
      const recordProof = await this.#addressProof?.(claimed.userId, meta, trx);
      await this.passwords.apply(trx, prepared, {
        reason: 'password_reset', via: 'reset', actor: { type: 'user', id: claimed.userId }, meta,
      });
      await recordProof?.();
    });
    this.passwords.notifyChanged(profile, 'reset');
  }
}
