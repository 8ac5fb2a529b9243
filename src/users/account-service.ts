import type { Kysely, Transaction } from 'kysely';
import type { Logger } from 'pino';
import type { RequestMeta } from '../auth/flows/request-meta.js';
import type { Clock } from '../clock.js';
import { RampartError } from '../errors.js';
import type { ActorType, SecurityEvents } from '../events/security-events.js';
import type { PiiService } from '../pii/pii-service.js';
import type { UserRepository } from '../store/repositories/users.js';
import type { MainDB } from '../store/schema.js';
import type { CredentialRevocation } from './credential-revocation.js';

export interface Actor {
  type: ActorType;
  id: string | null;
}

/** A check that may refuse an account deletion (it throws a RampartError), run inside the deletion's transaction. */
export type DeletionGuard = (userId: string, transaction: Transaction<MainDB>) => Promise<void>;

/** Account state changes that end credentials: lock, unlock and deletion. */
export class AccountService {
  readonly #deletionGuards: DeletionGuard[] = [];

  constructor(
    private readonly db: Kysely<MainDB>,
    private readonly users: UserRepository,
    private readonly revocation: CredentialRevocation,
    private readonly events: SecurityEvents,
    private readonly clock: Clock,
    private readonly pii: PiiService,
    private readonly logger?: Logger,
  ) {}

  /**
   * Deletes the account (`DELETE /v1/me`, after a step-up).
   *
   * 1. One main-store transaction: every credential revoked (reason
   *    `account_deleted`: sessions, API tokens, session-derived tokens), the
   *    `user.deleted` event, and the account row removed — which cascades to
   *    every row that references it ON DELETE CASCADE (sessions, password
   *    history and tokens, org memberships, …).
   * 2. Then the PII row and with it the user's wrapped data key: email, name
   *    and every field sealed under that key (session IPs, …) become
   *    unrecoverable, in backups too (crypto-shredding).
   *
   * The audit trail stays meaningful without personal data: events name the
   * user by an opaque random id that is never reused, and the last of them is
   * `user.deleted`. Removing the row rather than keeping a tombstone means no
   * feature can keep treating a deleted user as a member, owner or holder of
   * anything. Main store first: a crash between the two steps (or a PII store
   * refusing the second) leaves an orphan profile that signs in nobody, which the
   * hourly orphan sweep deletes (`sweepOrphanProfiles`) and the next signup for the
   * address releases; never a live account without its data.
   */
  async delete(userId: string, actor: Actor, meta: RequestMeta | null): Promise<Record<string, number>> {
    const revoked = await this.db.transaction().execute(async (trx) => {
      // The row lock first, before the revocations and the audit append (see findByIdForDeletion).
      const user = await this.users.findByIdForDeletion(userId, trx);
      if (!user) throw new RampartError('not_found');
      for (const guard of this.#deletionGuards) await guard(userId, trx);
      const counts = await this.revocation.revokeAllForUser(userId, 'account_deleted', trx);
      await this.events.record({
        action: 'user.deleted', actor, target: { type: 'user', id: userId }, origin: meta,
        outcome: 'success', details: { revoked: counts },
      }, trx);
      await this.users.delete(userId, trx);
      return counts;
    });
    try {
      await this.pii.deleteProfile(userId);
    } catch (error) {
      // The account is gone (committed above): an error answer would tell the user it was not.
      this.logger?.error({ err: error, userId }, 'account deleted; its profile could not be deleted now and is left to the orphan sweep');
    }
    return revoked;
  }

  /** Adds a check run before every deletion (the orgs feature refuses to orphan an org: `409 last_owner`). */
  addDeletionGuard(guard: DeletionGuard): void {
    this.#deletionGuards.push(guard);
  }

  /** Locks the account: no login, and every session and token ends at once. */
  async lock(userId: string, actor: Actor, meta: RequestMeta | null, reason: string | null = null): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const user = await this.users.findById(userId, trx);
      if (!user) throw new RampartError('not_found');
      await this.users.update(userId, { status: 'locked', updated_at: this.clock.now() }, trx);
      const revoked = await this.revocation.revokeAllForUser(userId, 'account_locked', trx);
      await this.events.record({
        action: 'user.locked', actor, target: { type: 'user', id: userId }, origin: meta,
        outcome: 'success', details: { revoked, ...(reason ? { reason } : {}) },
      }, trx);
    });
  }

  /**
   * Ends session-bound credentials without locking anyone (`rampart sessions end`):
   * every session and pending login step of one account, or, with `userId` null,
   * of every account (an incident). API tokens are separate credentials and stay;
   * access JWTs minted from the ended sessions fail introspection at once and
   * expire within their lifetime offline. One transaction with its event.
   */
  async endSessions(userId: string | null, actor: Actor, reason: string | null): Promise<Record<string, number>> {
    return this.db.transaction().execute(async (trx) => {
      let counts: Record<string, number>;
      if (userId === null) {
        counts = await this.revocation.revokeEveryone('operator_request', trx);
      } else {
        if (!(await this.users.findById(userId, trx))) throw new RampartError('not_found');
        counts = await this.revocation.revokeAllForUser(userId, 'operator_request', trx);
      }
      await this.events.record({
        action: 'sessions.ended_by_operator', actor, ...(userId ? { target: { type: 'user', id: userId } } : {}), origin: null,
        outcome: 'success', details: { scope: userId ? 'user' : 'everyone', ended: counts, ...(reason ? { reason } : {}) },
      }, trx);
      return counts;
    });
  }

  async unlock(userId: string, actor: Actor, meta: RequestMeta | null, reason: string | null = null): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const user = await this.users.findById(userId, trx);
      if (!user) throw new RampartError('not_found');
      await this.users.update(userId, { status: 'active', updated_at: this.clock.now() }, trx);
      await this.events.record({
        action: 'user.unlocked', actor, target: { type: 'user', id: userId }, origin: meta,
        outcome: 'success', details: reason ? { reason } : {},
      }, trx);
    });
  }
}
