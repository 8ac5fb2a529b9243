import type { Transaction } from 'kysely';
import type { SessionService } from '../sessions/session-service.js';
import type { MainDB } from '../store/schema.js';

/**
 * Why a user's credentials are being revoked. Each kind of credential decides
 * what a reason means for it: sessions end for every reason; API tokens are
 * separate credentials and survive a password change, but not a lock or a
 * deletion (API.md, issue "API tokens").
 */
export type RevocationReason =
  | 'password_changed'
  | 'password_reset'
  | 'account_locked'
  | 'account_deleted'
  | 'mfa_reset'
  | 'factor_removed'
  /** An operator ended sessions (`rampart sessions end`): session-bound credentials only. */
  | 'operator_request';

export interface RevokeOptions {
  /** Keep this session alive (the one that changed its own password). */
  exceptSessionIdHash?: string | null;
}

/** One kind of credential a user can hold (sessions, API tokens, access-JWT families…). */
export interface CredentialRevoker {
  readonly name: string;
  revokeForUser(userId: string, reason: RevocationReason, transaction: Transaction<MainDB>, options: RevokeOptions): Promise<number>;
  /** Ends this kind of credential for every user (`revokeEveryone`); absent for kinds that outlive a session sweep (API tokens). */
  revokeEveryone?(reason: RevocationReason, transaction: Transaction<MainDB>): Promise<number>;
}

/**
 * Revokes every credential of a user at once, inside the caller's transaction,
 * so the change that demands it (a new password, a lock) and the revocation
 * commit together or not at all.
 */
export class CredentialRevocation {
  readonly #revokers: CredentialRevoker[] = [];

  constructor(sessions: SessionService) {
    this.add({
      name: 'sessions',
      revokeForUser: (userId, _reason, transaction, options) =>
        sessions.revokeAllForUser(userId, options.exceptSessionIdHash ?? null, transaction),
      revokeEveryone: (_reason, transaction) => sessions.revokeEveryone(transaction),
    });
  }

  add(revoker: CredentialRevoker): void {
    this.#revokers.push(revoker);
  }

  /**
   * Ends the session-bound credentials of every user at once (an incident: session
   * secrets may have leaked). Kinds without `revokeEveryone` (API tokens) are kept.
   */
  async revokeEveryone(reason: RevocationReason, transaction: Transaction<MainDB>): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const revoker of this.#revokers) {
      if (revoker.revokeEveryone) counts[revoker.name] = await revoker.revokeEveryone(reason, transaction);
    }
    return counts;
  }

  /** Returns how many credentials of each kind ended. */
  async revokeAllForUser(userId: string, reason: RevocationReason, transaction: Transaction<MainDB>, options: RevokeOptions = {}): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const revoker of this.#revokers) counts[revoker.name] = await revoker.revokeForUser(userId, reason, transaction, options);
    return counts;
  }
}
