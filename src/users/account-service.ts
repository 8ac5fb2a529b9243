import type { Kysely } from 'kysely';
import type { RequestMeta } from '../auth/flows/request-meta.js';
import type { Clock } from '../clock.js';
import { RampartError } from '../errors.js';
import type { ActorType, SecurityEvents } from '../events/security-events.js';
import type { UserRepository } from '../store/repositories/users.js';
import type { MainDB } from '../store/schema.js';
import type { CredentialRevocation } from './credential-revocation.js';

export interface Actor {
  type: ActorType;
  id: string | null;
}

/** Account state changes that end credentials: lock and unlock (deletion lives with the password feature). */
export class AccountService {
  constructor(
    private readonly db: Kysely<MainDB>,
    private readonly users: UserRepository,
    private readonly revocation: CredentialRevocation,
    private readonly events: SecurityEvents,
    private readonly clock: Clock,
  ) {}

  /** Locks the account: no login, and every session and token ends at once. */
  async lock(userId: string, actor: Actor, meta: RequestMeta | null, reason: string | null = null): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const user = await this.users.findById(userId, trx);
      if (!user) throw new RampartError('not_found');
      await this.users.update(userId, { status: 'locked', updated_at: this.clock.now() }, trx);
      const revoked = await this.revocation.revokeAllForUser(userId, 'account_locked', trx);
      await this.events.record({
        action: 'user.locked', actor, target: { type: 'user', id: userId }, ip: meta?.ip ?? null, userAgent: meta?.userAgent ?? null,
        outcome: 'success', details: { revoked, ...(reason ? { reason } : {}) },
      }, trx);
    });
  }

  async unlock(userId: string, actor: Actor, meta: RequestMeta | null, reason: string | null = null): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const user = await this.users.findById(userId, trx);
      if (!user) throw new RampartError('not_found');
      await this.users.update(userId, { status: 'active', updated_at: this.clock.now() }, trx);
      await this.events.record({
        action: 'user.unlocked', actor, target: { type: 'user', id: userId }, ip: meta?.ip ?? null, userAgent: meta?.userAgent ?? null,
        outcome: 'success', details: reason ? { reason } : {},
      }, trx);
    });
  }
}
