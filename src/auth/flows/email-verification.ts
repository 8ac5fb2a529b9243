import type { Kysely, Transaction } from 'kysely';
import type { Clock } from '../../clock.js';
import { RampartError } from '../../errors.js';
import type { SecurityEvents } from '../../events/security-events.js';
import type { Mailer } from '../../mail/mailer.js';
import type { PiiService } from '../../pii/pii-service.js';
import type { PasswordTokenRepository } from '../../store/repositories/password-tokens.js';
import type { UserRepository } from '../../store/repositories/users.js';
import type { MainDB } from '../../store/schema.js';
import { toPublicUser, type PublicUser } from '../../users/public-user.js';
import type { MailedLinkOptions, PasswordTokens } from './password-tokens.js';
import type { RequestMeta } from './request-meta.js';

/** A verification link lives 24 hours: it proves control of a mailbox, not a credential change. */
export const VERIFICATION_TOKEN_TTL_MS = 24 * 3_600_000;

/** How many verification mails an account may still receive (the rate-limit feature wires one). */
export interface VerificationMailBudget {
  /** Takes one mail from the account's budget: false when it is spent; throws when its store does not answer. */
  takeVerificationMail(userId: string): Promise<boolean>;
}

export type EmailVerificationOptions = MailedLinkOptions;

/**
 * What a flow that mails a secret to the address calls inside its transaction once the secret
 * came back: the user's row is marked now, and the returned recording of the event runs with
 * the flow's own events (null: the address was verified already).
 */
export type AddressProof = (userId: string, meta: RequestMeta, trx: Transaction<MainDB>) => Promise<(() => Promise<void>) | null>;

/** How an address was proved: a verification link, or another secret mailed to it. */
export type VerifiedVia = 'link' | 'password_reset' | 'invitation';

/**
 * Proof that an account's address is its user's (`emailVerified`). A signed-in user asks for
 * a link (`POST /v1/me/email/verification`, budgeted per account and hour); opening it
 * (`POST /v1/email/verify {token}`) marks the address verified. The link is single use,
 * 256 random bits stored only as their SHA-256, and a newer one voids the older. A completed
 * password reset or an accepted invitation, each a secret mailed to the same address, prove
 * it too (`proveAddress` inside their transactions).
 */
export class EmailVerificationFlow {
  #mailBudget: VerificationMailBudget | null = null;

  constructor(
    private readonly db: Kysely<MainDB>,
    private readonly users: UserRepository,
    private readonly pii: PiiService,
    private readonly tokenRepo: PasswordTokenRepository,
    private readonly tokens: PasswordTokens,
    private readonly events: SecurityEvents,
    private readonly mailer: Mailer,
    private readonly clock: Clock,
    private readonly options: EmailVerificationOptions,
  ) {}

  setMailBudget(budget: VerificationMailBudget): void {
    this.#mailBudget = budget;
  }

  /**
   * Mails a verification link to the user's address. `already_verified` (409) when there is
   * nothing to prove; `rate_limited` (429) once the account's hourly budget is spent (the last
   * link stays valid). The mail is sent before the answer: a relay that refuses it is a 503
   * `mail_unavailable`.
   */
  async requestLink(userId: string, meta: RequestMeta): Promise<void> {
    const user = await this.users.findById(userId);
    const profile = user ? await this.pii.getProfile(userId) : null;
    if (!user || !profile || user.status !== 'active') throw new RampartError('unauthenticated');
    if (user.email_verified === 1) throw new RampartError('already_verified');
    if (this.#mailBudget && !(await this.#mailBudget.takeVerificationMail(userId))) {
      throw new RampartError('rate_limited', {
        headers: { 'retry-after': '3600' },
        publicDetail: 'Too many verification mails for this account; use the last one, or try again within the hour.',
      });
    }
    const { token, row } = this.tokens.issue(userId, 'verify_email', VERIFICATION_TOKEN_TTL_MS);
    await this.db.transaction().execute(async (trx) => {
      const voided = await this.tokenRepo.deleteForUser(userId, 'verify_email', trx);
      await this.tokenRepo.insert(row, trx);
      await this.events.record({
        action: 'email.verification_sent', actor: { type: 'user', id: userId }, target: { type: 'user', id: userId },
        origin: meta, outcome: 'success', details: { voided },
      }, trx);
    });
    const message = {
      to: profile.email,
      subject: `Confirm your ${this.options.productName} email address`,
      text: [
        `To confirm that this address belongs to your ${this.options.productName} account, open this link within 24 hours:`,
        '',
        `${this.options.publicUrl()}/verify-email?token=${token}`,
        '',
        'The link works once. If you did not ask for it, ignore this mail.',
        '',
      ].join('\n'),
    };
    try {
      await this.mailer.send(message);
    } catch (error) {
      // The link stored above was never seen: the user asks again (503, retry), and the next link voids it.
      throw new RampartError('mail_unavailable', {
        headers: { 'retry-after': '60' },
        detail: `verification mail not sent: ${(error as Error).message}`,
        cause: error,
      });
    }
  }

  /** Redeems a verification link: the account's address is verified. Throws invalid_token. */
  async verify(token: string, meta: RequestMeta): Promise<PublicUser> {
    const claimed = await this.tokens.claim(token, 'verify_email', meta);
    const user = await this.db.transaction().execute(async (trx) => {
      // The user's row before the link's (lock order: see UserRepository.holdRow).
      await this.users.holdRow(claimed.userId, trx);
      if (!(await this.tokenRepo.consume(claimed.tokenHash, claimed.claimId, trx))) throw new RampartError('invalid_token');
      const held = await this.users.findById(claimed.userId, trx);
      if (!held || held.status !== 'active') throw new RampartError('invalid_token');
      const record = await this.proveAddress(claimed.userId, 'link', meta, trx);
      await record?.();
      return { ...held, email_verified: 1 };
    });
    const profile = await this.pii.getProfile(user.id);
    if (!profile) throw new RampartError('invalid_token');
    return toPublicUser(user, profile);
  }

  /**
   * Marks the address verified inside the caller's transaction, unless it already is: the
   * user's row (and then the user's verification links) now, the event later. It returns
   * the event's recording, or null when nothing changed: the caller runs it with its own
   * events, after every row lock it takes (ARCHITECTURE.md "Lock order": the audit chain's
   * head comes last).
   */
  async proveAddress(userId: string, via: VerifiedVia, meta: RequestMeta, trx: Transaction<MainDB>): Promise<(() => Promise<void>) | null> {
    if (!(await this.users.markEmailVerified(userId, this.clock.now(), trx))) return null;
    // Links of the address that is now proved have nothing left to do.
    await this.tokenRepo.deleteForUser(userId, 'verify_email', trx);
    return () => this.events.record({
      action: 'email.verified', actor: { type: 'user', id: userId }, target: { type: 'user', id: userId },
      origin: meta, outcome: 'success', details: { via },
    }, trx);
  }
}
