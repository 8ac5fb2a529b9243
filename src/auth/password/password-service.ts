import type { Transaction } from 'kysely';
import type { BackgroundTasks } from '../../background-tasks.js';
import type { Clock } from '../../clock.js';
import { RampartError } from '../../errors.js';
import type { ActorType, SecurityEvents } from '../../events/security-events.js';
import type { Mailer } from '../../mail/mailer.js';
import type { Profile } from '../../pii/pii-service.js';
import type { EffectivePolicy } from '../../policy/effective-policy.js';
import type { PasswordHistoryRepository } from '../../store/repositories/password-history.js';
import type { PasswordTokenRepository } from '../../store/repositories/password-tokens.js';
import type { UserRepository, UserRow } from '../../store/repositories/users.js';
import type { MainDB } from '../../store/schema.js';
import type { CredentialRevocation, RevocationReason } from '../../users/credential-revocation.js';
import type { RequestMeta } from '../flows/request-meta.js';
import type { PasswordHasher } from './hasher.js';
import type { PasswordRules } from './password-rules.js';

/** A new password that passed policy and history, hashed and ready to store. */
export interface PreparedPassword {
  readonly userId: string;
  readonly hash: string;
  readonly policy: EffectivePolicy;
}

export interface PrepareOptions {
  /** Refuse the current password even when the policy keeps no history (a change must change something). */
  refuseCurrent?: boolean;
}

export interface ApplyOptions {
  /** Why other credentials end: 'password_changed' keeps API tokens, 'password_reset' too (see CredentialRevocation). */
  reason: Extract<RevocationReason, 'password_changed' | 'password_reset'>;
  /** How the password was set, for the event. */
  via: 'change' | 'reset' | 'expired';
  actor: { type: ActorType; id: string | null };
  meta: RequestMeta | null;
  /** The session that changed its own password survives (it gets a new secret instead). */
  exceptSessionIdHash?: string | null;
}

/**
 * Setting a password, whatever the flow (change, reset, expired change): the
 * policy (`PasswordRules`), no reuse of the last N passwords (N = the policy's
 * historyCount, the current one included), and one transaction that stores
 * the hash, rolls the history, voids every outstanding reset and change token,
 * revokes the user's other credentials and records the event.
 */
export class PasswordService {
  constructor(
    private readonly users: UserRepository,
    private readonly history: PasswordHistoryRepository,
    private readonly tokens: PasswordTokenRepository,
    private readonly hasher: PasswordHasher,
    readonly rules: PasswordRules,
    private readonly revocation: CredentialRevocation,
    private readonly events: SecurityEvents,
    private readonly mailer: Mailer,
    private readonly background: BackgroundTasks,
    private readonly productName: string,
    private readonly clock: Clock,
  ) {}

  /** Checks the new password against policy and history and hashes it. Throws weak_password or password_reused. */
  async prepare(user: UserRow, profile: Pick<Profile, 'email' | 'name'>, password: string, options: PrepareOptions = {}): Promise<PreparedPassword> {
    const policy = await this.rules.assertAcceptable(password, { userId: user.id, email: profile.email, name: profile.name });
    await this.assertNotReused(user, password, Math.max(policy.password.historyCount, options.refuseCurrent ? 1 : 0));
    return { userId: user.id, hash: await this.hasher.hash(password), policy };
  }

  /**
   * Throws `password_reused` when the password is one of the user's last
   * `count` passwords: the current one and the `count - 1` before it.
   * Sequential on purpose: a reused password usually matches the newest hashes
   * first, and the hasher's slots stay free for logins.
   */
  async assertNotReused(user: UserRow, password: string, count: number): Promise<void> {
    if (count <= 0) return;
    const hashes = [user.password_hash, ...(await this.history.recent(user.id, count - 1))];
    for (const hash of hashes) {
      if ((await this.hasher.verify(hash, password)).valid) {
        throw new RampartError('password_reused', {
          publicDetail: count === 1
            ? 'The new password must differ from the current one.'
            : `The password must differ from your last ${count} passwords.`,
        });
      }
    }
  }

  /** Stores a prepared password inside the caller's transaction. Returns how many credentials of each kind ended. */
  async apply(trx: Transaction<MainDB>, prepared: PreparedPassword, options: ApplyOptions): Promise<Record<string, number>> {
    const now = this.clock.now();
    const user = await this.users.findById(prepared.userId, trx);
    if (!user) throw new RampartError('not_found');
    // The current password joins the history; N - 1 former ones plus the current make the last N.
    const keep = Math.max(prepared.policy.password.historyCount - 1, 0);
    if (keep > 0) await this.history.push(user.id, user.password_hash, now, trx);
    await this.history.prune(user.id, keep, trx);
    await this.users.update(user.id, { password_hash: prepared.hash, password_changed_at: now, updated_at: now }, trx);
    // Any password change voids every reset link and change token still out there.
    const tokensVoided = await this.tokens.deleteForUser(user.id, null, trx);
    const revoked = await this.revocation.revokeAllForUser(user.id, options.reason, trx, { exceptSessionIdHash: options.exceptSessionIdHash ?? null });
    await this.events.record({
      action: options.via === 'reset' ? 'password.reset' : 'password.changed',
      actor: options.actor,
      target: { type: 'user', id: user.id },
      origin: options.meta,
      outcome: 'success',
      details: { via: options.via, revoked, tokensVoided },
    }, trx);
    return revoked;
  }

  /** Tells the user, off the request path, that their password changed (ASVS V6.3.7). */
  notifyChanged(profile: Pick<Profile, 'email'>, via: ApplyOptions['via']): void {
    const how = via === 'reset' ? 'through a reset link' : 'from a signed-in session';
    this.background.run('password-changed-mail', () => this.mailer.send({
      to: profile.email,
      subject: `Your ${this.productName} password was changed`,
      text: [
        `The password of your ${this.productName} account was just changed ${how}.`,
        'Every other signed-in session has been signed out.',
        '',
        'If this was not you, reset your password now and contact your administrator.',
        '',
      ].join('\n'),
    }));
  }
}
